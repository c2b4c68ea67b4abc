"""The signatures the kernels' entry points may be compiled for (issue 20,
item 2).

An entry point is a kernel called from Python (by the engine, the models or
the estimators). Each one compiles a specialisation per distinct tuple of
argument types, and each costs seconds of a cold start. ``ALLOWED`` lists,
per entry point and argument, the Numba types that argument may have; a
signature is allowed when each of its arguments has one of them. Arguments
that are named tuples (``_boundary``) are spelled out field by field
(``data.X``, ``params.theta``: ``flat_names``, ``flatten``). The engine
makes every argument canonical in Python (``_engine._models.KernelData``:
read-only inputs, int64 row pointers, int32 column indices and the values in
the model's dtype for the epochs' CSR data, int64 indices and float64 values
for the forward passes', float64 weights, dense rows in the other float
dtype in an argument of their own), so the only axes left are those of
``AXES``: the model's dtype and dense or CSR data, the depth being an entry
point of its own. ``repeated`` finds an entry point holding two signatures
for one value of them, ``outside_table`` one outside the table; the suite
fails on either (``tests/conftest.py``). Listing each argument's types rather
than whole signatures keeps the table readable and lets it hold the
combinations of known axes that the randomised tests reach only on some runs.

When a change legitimately adds a specialisation, add its types here; when a
change removes one, remove it. ``observed()`` and ``table_source`` give the
dispatchers' signatures and the table's text.
"""

import importlib

#: The entry points, by kernel module.
ENTRY_POINTS = {
    "_linear": ("linear_epoch", "linear_forward"),
    "_losses": ("loss_grad",),
    "_mlp": ("mlp_epoch", "mlp_epoch_deep", "mlp_forward"),
    "_rng": ("shuffle",),
    "_stats": ("column_moments", "sparse_column_moments"),
}

#: Types each argument of an entry point may have: ``"module.name"`` ->
#: one tuple of type names per argument.
ALLOWED = {
    '_linear.linear_epoch': (
        ('int64',),  # 0 tid
        ('int64',),  # 1 n_threads
        ('array(int64, 1d, C)',),  # 2 sync
        (  # 3 data.X
            'readonly array(float32, 2d, C)',
            'readonly array(float64, 2d, C)',
        ),
        ('none', 'readonly array(int64, 1d, C)'),  # 4 data.indptr
        ('none', 'readonly array(int32, 1d, C)'),  # 5 data.indices
        (  # 6 data.data: in the model's dtype
            'none',
            'readonly array(float32, 1d, C)',
            'readonly array(float64, 1d, C)',
        ),
        ('array(int64, 1d, C)',),  # 7 data.y
        ('array(uint8, 2d, C)',),  # 8 data.Y
        ('readonly array(float64, 1d, C)',),  # 9 data.w
        ('array(int64, 1d, C)',),  # 10 data.order
        (  # 11 data.Xalt
            'readonly array(float32, 2d, C)',
            'readonly array(float64, 2d, C)',
        ),
        ('bool',),  # 12 data.direct
        ('int64',),  # 13 ld
        ('array(float32, 1d, C)', 'array(float64, 1d, C)'),  # 14 params.theta
        ('array(float32, 1d, C)', 'array(float64, 1d, C)'),  # 15 params.grad
        ('array(float32, 1d, C)', 'array(float64, 1d, C)'),  # 16 params.s1
        ('array(float32, 1d, C)', 'array(float64, 1d, C)'),  # 17 params.s2
        ('array(float32, 3d, C)', 'array(float64, 3d, C)'),  # 18 work.Xb
        ('array(int32, 3d, C)',),  # 19 work.lists
        ('array(int64, 2d, C)',),  # 20 work.counts
        ('array(int64, 2d, C)',),  # 21 work.yb
        ('array(float32, 2d, C)', 'array(float64, 2d, C)'),  # 22 work.wb
        ('array(float32, 2d, C)', 'array(float64, 2d, C)'),  # 23 work.Z
        ('array(uint8, 1d, C)',),  # 24 work.mark
        ('array(int64, 1d, C)',),  # 25 work.touched
        ('array(int64, 1d, C)',),  # 26 work.n_touched
        ('array(float64, 2d, A)',),  # 27 sums.class_loss
        ('array(float64, 2d, A)',),  # 28 sums.class_weight
        ('array(float64, 2d, A)',),  # 29 sums.col_loss
        ('array(float64, 2d, A)',),  # 30 sums.stats
        ('array(int64, 1d, C)',),  # 31 opts.iopt
        ('array(float64, 1d, C)',),  # 32 opts.fopt
        ('int64',),  # 33 t
    ),
    '_linear.linear_forward': (
        ('int64',),  # 0 tid
        ('int64',),  # 1 n_threads
        ('array(int64, 1d, C)',),  # 2 sync
        ('readonly array(float64, 2d, C)',),  # 3 rows.X
        ('readonly array(float32, 2d, C)',),  # 4 rows.Xalt
        ('none', 'readonly array(int64, 1d, C)'),  # 5 rows.indptr
        ('none', 'readonly array(int64, 1d, C)'),  # 6 rows.indices
        ('none', 'readonly array(float64, 1d, C)'),  # 7 rows.data
        ('array(int64, 1d, C)',),  # 8 rows.rows
        ('int64',),  # 9 ld
        ('array(float64, 1d, C)',),  # 10 theta
        ('array(float64, 3d, C)',),  # 11 work.Xb
        ('array(int32, 3d, C)',),  # 12 work.lists
        ('array(int64, 2d, C)',),  # 13 work.counts
        ('array(float64, 3d, C)',),  # 14 work.Z
        ('array(float64, 2d, C)',),  # 15 out
    ),
    '_losses.loss_grad': (
        (  # 0 Z
            'array(float32, 2d, A)',
            'array(float64, 2d, A)',
            'array(float64, 2d, C)',
        ),
        ('array(int64, 1d, C)',),  # 1 y
        ('array(uint8, 2d, C)',),  # 2 Y
        ('array(float32, 1d, C)', 'array(float64, 1d, C)'),  # 3 w
        ('int64',),  # 4 n_rows
        ('int64',),  # 5 loss
        ('float64',),  # 6 scale
        ('float64',),  # 7 smooth
        ('array(float64, 1d, A)', 'array(float64, 1d, C)'),  # 8 class_loss
        ('array(float64, 1d, A)', 'array(float64, 1d, C)'),  # 9 class_weight
        ('array(float64, 1d, A)', 'array(float64, 1d, C)'),  # 10 col_loss
        ('array(float64, 1d, A)', 'array(float64, 1d, C)'),  # 11 stats
    ),
    '_mlp.mlp_epoch': (
        ('int64',),  # 0 tid
        ('int64',),  # 1 n_threads
        ('array(int64, 1d, C)',),  # 2 sync
        (  # 3 data.X
            'readonly array(float32, 2d, C)',
            'readonly array(float64, 2d, C)',
        ),
        ('none', 'readonly array(int64, 1d, C)'),  # 4 data.indptr
        ('none', 'readonly array(int32, 1d, C)'),  # 5 data.indices
        (  # 6 data.data: in the model's dtype
            'none',
            'readonly array(float32, 1d, C)',
            'readonly array(float64, 1d, C)',
        ),
        ('array(int64, 1d, C)',),  # 7 data.y
        ('array(uint8, 2d, C)',),  # 8 data.Y
        ('readonly array(float64, 1d, C)',),  # 9 data.w
        ('array(int64, 1d, C)',),  # 10 data.order
        (  # 11 data.Xalt
            'readonly array(float32, 2d, C)',
            'readonly array(float64, 2d, C)',
        ),
        ('bool',),  # 12 data.direct
        ('array(int64, 1d, C)',),  # 13 net.sizes
        ('array(int64, 1d, C)',),  # 14 net.w_off
        ('array(int64, 1d, C)',),  # 15 net.b_off
        ('array(int64, 1d, C)',),  # 16 net.ld
        ('array(int64, 1d, C)',),  # 17 net.t_off
        ('array(int64, 1d, C)',),  # 18 net.a_off
        ('array(float32, 1d, C)', 'array(float64, 1d, C)'),  # 19 net.scale
        ('array(float32, 1d, C)', 'array(float64, 1d, C)'),  # 20 net.shift
        ('array(float32, 1d, C)', 'array(float64, 1d, C)'),  # 21 params.theta
        ('array(float32, 1d, C)', 'array(float64, 1d, C)'),  # 22 params.grad
        ('array(float32, 1d, C)', 'array(float64, 1d, C)'),  # 23 params.s1
        ('array(float32, 1d, C)', 'array(float64, 1d, C)'),  # 24 params.s2
        ('array(float32, 1d, C)', 'array(float64, 1d, C)'),  # 25 work.Wt
        ('array(float32, 2d, C)', 'array(float64, 2d, C)'),  # 26 work.beff
        ('array(float32, 3d, C)', 'array(float64, 3d, C)'),  # 27 work.Xb
        ('array(int32, 3d, C)',),  # 28 work.lists
        ('array(int64, 2d, C)',),  # 29 work.counts
        ('array(int64, 2d, C)',),  # 30 work.yb
        ('array(float32, 2d, C)', 'array(float64, 2d, C)'),  # 31 work.wb
        ('array(int32, 2d, C)',),  # 32 work.dense
        ('array(int64, 1d, C)',),  # 33 work.dense_counts
        ('array(float32, 1d, C)', 'array(float64, 1d, C)'),  # 34 work.H
        ('array(float32, 1d, C)', 'array(float64, 1d, C)'),  # 35 work.D
        ('array(float32, 3d, C)', 'array(float64, 3d, C)'),  # 36 work.Zp
        ('array(float32, 2d, C)', 'array(float64, 2d, C)'),  # 37 work.Z
        ('array(float64, 2d, A)',),  # 38 sums.class_loss
        ('array(float64, 2d, A)',),  # 39 sums.class_weight
        ('array(float64, 2d, A)',),  # 40 sums.col_loss
        ('array(float64, 2d, A)',),  # 41 sums.stats
        ('array(int64, 1d, C)',),  # 42 opts.iopt
        ('array(float64, 1d, C)',),  # 43 opts.fopt
        ('int64',),  # 44 t
    ),
    '_mlp.mlp_forward': (
        ('int64',),  # 0 tid
        ('int64',),  # 1 n_threads
        ('array(int64, 1d, C)',),  # 2 sync
        ('readonly array(float64, 2d, C)',),  # 3 rows.X
        ('readonly array(float32, 2d, C)',),  # 4 rows.Xalt
        ('none', 'readonly array(int64, 1d, C)'),  # 5 rows.indptr
        ('none', 'readonly array(int64, 1d, C)'),  # 6 rows.indices
        ('none', 'readonly array(float64, 1d, C)'),  # 7 rows.data
        ('array(int64, 1d, C)',),  # 8 rows.rows
        ('array(int64, 1d, C)',),  # 9 layout.sizes
        ('array(int64, 1d, C)',),  # 10 layout.w_off
        ('array(int64, 1d, C)',),  # 11 layout.b_off
        ('array(int64, 1d, C)',),  # 12 layout.ld
        ('array(int64, 1d, C)',),  # 13 layout.a_off
        ('array(float64, 1d, C)',),  # 14 theta
        ('int64',),  # 15 activation
        ('array(float64, 3d, C)',),  # 16 work.Xb
        ('array(int32, 3d, C)',),  # 17 work.lists
        ('array(int64, 2d, C)',),  # 18 work.counts
        ('array(float64, 2d, C)',),  # 19 work.H
        ('array(int32, 2d, C)',),  # 20 work.dense
        ('array(int64, 1d, C)',),  # 21 work.dense_counts
        ('array(float64, 2d, C)',),  # 22 out
    ),
    '_rng.shuffle': (
        ('array(int64, 1d, C)',),  # 0 order
        ('array(uint64, 1d, C)',),  # 1 state
    ),
    '_stats.column_moments': (
        (  # 0 X
            'array(float32, 2d, C)',
            'array(float64, 2d, C)',
            'readonly array(float32, 2d, C)',
            'readonly array(float64, 2d, C)',
        ),
        ('array(int64, 1d, C)',),  # 1 rows
        (  # 2 w
            'array(float32, 1d, C)',
            'array(float64, 1d, C)',
            'readonly array(float64, 1d, C)',
        ),
        ('array(float64, 1d, C)',),  # 3 mean
        ('array(float64, 1d, C)',),  # 4 var
    ),
    '_stats.sparse_column_moments': (
        (  # 0 indptr
            'array(int32, 1d, C)',
            'array(int64, 1d, C)',
            'readonly array(int64, 1d, C)',
        ),
        (  # 1 indices
            'array(int32, 1d, C)',
            'array(int64, 1d, C)',
            'readonly array(int64, 1d, C)',
        ),
        ('array(float64, 1d, C)', 'readonly array(float64, 1d, C)'),  # 2 data
        ('array(int64, 1d, C)',),  # 3 rows
        ('array(float64, 1d, C)', 'readonly array(float64, 1d, C)'),  # 4 w
        ('array(float64, 1d, C)',),  # 5 mean
        ('array(float64, 1d, C)',),  # 6 var
    ),
}
# the deep epoch takes the same arguments as the shallow one
ALLOWED["_mlp.mlp_epoch_deep"] = ALLOWED["_mlp.mlp_epoch"]


def _tuples(key):
    """``{parameter: named tuple class}`` of entry point ``key``'s
    arguments that are named tuples (``_boundary``)."""
    from . import _boundary as b

    work = {"_mlp.mlp_epoch": b.MLPWork, "_mlp.mlp_epoch_deep": b.MLPWork,
            "_linear.linear_epoch": b.LinearWork, "_mlp.mlp_forward": b.ForwardWork,
            "_linear.linear_forward": b.LinearForwardWork}
    if key not in work:
        return {}
    return {"data": b.Data, "net": b.Net, "params": b.Params, "sums": b.Sums,
            "opts": b.Options, "rows": b.Rows, "layout": b.Layout, "work": work[key]}


def flat_names(key):
    """The names of entry point ``key``'s arguments, each named tuple
    spelled out field by field (``"data.X"``, ``"params.theta"``): the
    positions of ``ALLOWED`` and of the signatures ``observed`` returns."""
    import inspect

    tuples = _tuples(key)
    names = []
    for name in inspect.signature(dispatchers()[key].py_func).parameters:
        cls = tuples.get(name)
        names.extend([f"{name}.{f}" for f in cls._fields] if cls else [name])
    return names


def flatten(signature):
    """A compiled signature (Numba types) as type names, each named tuple
    spelled out field by field."""
    from numba.core import types

    out = []
    for t in signature:
        if isinstance(t, types.BaseNamedTuple):
            out.extend(str(f) for f in t.types)
        else:
            out.append(str(t))
    return tuple(out)


def dispatchers():
    """``{"module.name": dispatcher}`` of every entry point."""
    out = {}
    for module, names in ENTRY_POINTS.items():
        mod = importlib.import_module(f"skdigits._kernels.{module}")
        for name in names:
            out[f"{module}.{name}"] = getattr(mod, name)
    return out


def observed():
    """``{"module.name": [signature, ...]}``: the signatures the entry points
    hold now (compiled or loaded from the cache in this process), each a
    tuple of type names."""
    return {key: [flatten(sig) for sig in disp.signatures]
            for key, disp in dispatchers().items()}


def why_not_allowed(key, signature):
    """Why ``signature`` (a tuple of type names) of entry point ``key`` is
    outside ``ALLOWED``, or None when it is allowed."""
    allowed = ALLOWED.get(key)
    if allowed is None:
        return f"{key} has no entry in the table"
    if len(signature) != len(allowed):
        return (f"{key} takes {len(allowed)} arguments in the table, "
                f"not {len(signature)}")
    bad = [f"argument {i}: {t}" for i, (t, ok) in enumerate(zip(signature, allowed))
           if t not in ok]
    return f"{key}: " + "; ".join(bad) if bad else None


#: The arguments that name an entry point's specialisation, by kernel: the
#: model's dtype (the parameters', or the data's for a kernel of the data
#: alone) and the kind of data (the CSR row pointers, None for dense data).
#: Everything else is made canonical in Python (``_engine._models``), so each
#: entry point compiles at most one signature per value of these: per (model
#: dtype, dense or CSR), the depth being an entry point of its own
#: (``mlp_epoch``, ``mlp_epoch_deep``).
AXES = {
    # named tuples' fields by "tuple.field" (see flat_names)
    "_linear.linear_epoch": ("params.theta", "data.indptr"),
    "_linear.linear_forward": ("theta", "rows.indptr"),
    # called from Python on one row of the accumulators (C), from the
    # kernels on a chunk's (any layout): the tests call it with either
    "_losses.loss_grad": ("Z", "class_loss"),
    "_mlp.mlp_epoch": ("params.theta", "data.indptr"),
    "_mlp.mlp_epoch_deep": ("params.theta", "data.indptr"),
    "_mlp.mlp_forward": ("theta", "rows.indptr"),
    "_rng.shuffle": (),
    "_stats.column_moments": ("X",),
    # the estimator passes int64 indices; the kernel tests, scipy's int32
    "_stats.sparse_column_moments": ("indices",),
}


def _axes_of(key, signature):
    names = flat_names(key)
    return tuple(signature[names.index(name)] for name in AXES[key])


def repeated(signatures=None):
    """``[(key, axes, [signature, ...])]`` for every entry point holding more
    than one signature for one value of its ``AXES`` (``observed()`` by
    default): a specialisation along an axis that Python should have made
    canonical."""
    signatures = observed() if signatures is None else signatures
    out = []
    for key, sigs in sorted(signatures.items()):
        groups = {}
        for sig in sigs:
            groups.setdefault(_axes_of(key, sig), []).append(sig)
        out.extend((key, axes, group) for axes, group in sorted(groups.items())
                   if len(group) > 1)
    return out


def outside_table():
    """``[(key, signature, reason)]`` for every signature an entry point holds
    that the table does not allow."""
    return [(key, sig, why)
            for key, sigs in observed().items() for sig in sigs
            if (why := why_not_allowed(key, sig)) is not None]


def table_source(signatures):
    """The text of ``ALLOWED`` for ``{"module.name": [signature, ...]}``
    (as ``observed`` returns), to paste here."""
    lines = ["ALLOWED = {"]
    for key in sorted(dispatchers()):
        sigs = signatures.get(key)
        if not sigs:
            continue
        names = flat_names(key)
        lines.append(f"    {key!r}: (")
        for i in range(len(sigs[0])):
            types = tuple(sorted({sig[i] for sig in sigs}))
            line = f"        {types!r},  # {i} {names[i]}"
            if len(line) <= 88:
                lines.append(line)
                continue
            lines.append(f"        (  # {i} {names[i]}")
            lines.extend(f"            {t!r}," for t in types)
            lines.append("        ),")
        lines.append("    ),")
    lines.append("}")
    return "\n".join(lines)
