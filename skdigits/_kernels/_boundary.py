"""The typed boundary of the kernels' entry points (issue 20, item 1): the
named tuples their arguments come in.

An entry point takes a few of these instead of dozens of positional arrays,
so that a call names what it passes (``data.X``, ``params.theta``) and two
arrays of one type cannot be swapped silently. The engine builds them in one
place per model (``_engine._models``: ``run_epoch`` and ``logits``), from
arguments it has made canonical (``KernelData``), so each tuple has one Numba
type per model dtype and kind of data. An entry point unpacks them and calls
its body, a subroutine that takes the arrays themselves: Numba prunes the
sparse or dense code on whether an argument is None only for plain
arguments.

Numba compiles a named tuple of arrays as a structure of their types, and
its cache keys each specialisation by them, as for plain arguments.
"""

from collections import namedtuple

__all__ = ["Data", "ForwardWork", "Layout", "LinearForwardWork", "LinearWork",
           "MLPWork", "Net", "Options", "Params", "Rows", "Sums"]

#: The training data: dense rows (``X`` in the model's dtype, or ``Xalt`` in
#: the other) or CSR arrays (``indptr``, ``indices``, ``data``, else None),
#: targets, weights, the epoch's row order and whether the rows are read in
#: place (``direct``).
Data = namedtuple("Data", "X indptr indices data y Y w order Xalt direct")

#: An MLP's layout in ``theta`` and its buffers (``_engine._layout``), and
#: the input scaling of standardised data (``scale``, ``shift``; empty when
#: not standardised).
Net = namedtuple("Net", "sizes w_off b_off ld t_off a_off scale shift")

#: The parameters, their gradient and the optimizer's two moments.
Params = namedtuple("Params", "theta grad s1 s2")

#: An MLP epoch's buffers (see ``_mlp.mlp_epoch``).
MLPWork = namedtuple("MLPWork",
                     "Wt beff Xb lists counts yb wb dense dense_counts H D Zp Z")

#: A linear epoch's buffers and the lazy update's (see ``_linear``).
LinearWork = namedtuple("LinearWork",
                        "Xb lists counts yb wb Z mark touched n_touched")

#: The epoch's accumulators, one row per chunk of the loss phase.
Sums = namedtuple("Sums", "class_loss class_weight col_loss stats")

#: The integer and float options (``_batch``).
Options = namedtuple("Options", "iopt fopt")

#: The rows a forward pass reads: float64 ``X`` or float32 ``Xalt`` (the
#: other empty), or CSR arrays (else None), and which rows.
Rows = namedtuple("Rows", "X Xalt indptr indices data rows")

#: An MLP's layout for its forward pass.
Layout = namedtuple("Layout", "sizes w_off b_off ld a_off")

#: A forward pass's buffers, one block per thread.
ForwardWork = namedtuple("ForwardWork", "Xb lists counts H dense dense_counts")
LinearForwardWork = namedtuple("LinearForwardWork", "Xb lists counts Z")
