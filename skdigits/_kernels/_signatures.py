"""The signatures the kernels' entry points may be compiled for (issue 20,
item 2).

An entry point is a kernel called from Python (by the engine, the models or
the estimators). Each one compiles a specialisation per distinct tuple of
argument types, and each costs seconds of a cold start. ``ALLOWED`` lists,
per entry point and argument, the Numba types that argument may have; a
signature is allowed when each of its arguments has one of them. The engine
makes every argument canonical in Python (``_engine._models.KernelData``:
read-only inputs, int64 indices, float64 CSR data and weights, the data's
float dtype in an argument of its own), so the only axes left are those of
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
        ('readonly array(float32, 2d, C)', 'readonly array(float64, 2d, C)'),  # 3 X
        ('none', 'readonly array(int64, 1d, C)'),  # 4 indptr
        ('none', 'readonly array(int64, 1d, C)'),  # 5 indices
        ('none', 'readonly array(float64, 1d, C)'),  # 6 data
        ('array(int64, 1d, C)',),  # 7 y
        ('array(uint8, 2d, C)',),  # 8 Y
        ('readonly array(float64, 1d, C)',),  # 9 w
        ('array(int64, 1d, C)',),  # 10 order
        ('readonly array(float32, 2d, C)', 'readonly array(float64, 2d, C)'),  # 11 Xalt
        ('bool',),  # 12 direct
        ('int64',),  # 13 ld
        ('array(float32, 1d, C)', 'array(float64, 1d, C)'),  # 14 theta
        ('array(float32, 1d, C)', 'array(float64, 1d, C)'),  # 15 grad
        ('array(float32, 1d, C)', 'array(float64, 1d, C)'),  # 16 s1
        ('array(float32, 1d, C)', 'array(float64, 1d, C)'),  # 17 s2
        ('array(float32, 3d, C)', 'array(float64, 3d, C)'),  # 18 Xb
        ('array(int32, 3d, C)',),  # 19 lists
        ('array(int64, 2d, C)',),  # 20 counts
        ('array(int64, 2d, C)',),  # 21 yb
        ('array(float32, 2d, C)', 'array(float64, 2d, C)'),  # 22 wb
        ('array(float32, 2d, C)', 'array(float64, 2d, C)'),  # 23 Z
        ('array(uint8, 1d, C)',),  # 24 mark
        ('array(int64, 1d, C)',),  # 25 touched
        ('array(int64, 1d, C)',),  # 26 n_touched
        ('array(float64, 2d, A)',),  # 27 class_loss
        ('array(float64, 2d, A)',),  # 28 class_weight
        ('array(float64, 2d, A)',),  # 29 col_loss
        ('array(float64, 2d, A)',),  # 30 stats
        ('array(int64, 1d, C)',),  # 31 iopt
        ('array(float64, 1d, C)',),  # 32 fopt
        ('int64',),  # 33 t
    ),
    '_linear.linear_forward': (
        ('int64',),  # 0 tid
        ('int64',),  # 1 n_threads
        ('array(int64, 1d, C)',),  # 2 sync
        ('readonly array(float64, 2d, C)',),  # 3 X
        ('readonly array(float32, 2d, C)',),  # 4 Xalt
        ('none', 'readonly array(int64, 1d, C)'),  # 5 indptr
        ('none', 'readonly array(int64, 1d, C)'),  # 6 indices
        ('none', 'readonly array(float64, 1d, C)'),  # 7 data
        ('array(int64, 1d, C)',),  # 8 rows
        ('int64',),  # 9 ld
        ('array(float64, 1d, C)',),  # 10 theta
        ('array(float64, 3d, C)',),  # 11 Xb
        ('array(int32, 3d, C)',),  # 12 lists
        ('array(int64, 2d, C)',),  # 13 counts
        ('array(float64, 3d, C)',),  # 14 Z
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
        ('readonly array(float32, 2d, C)', 'readonly array(float64, 2d, C)'),  # 3 X
        ('none', 'readonly array(int64, 1d, C)'),  # 4 indptr
        ('none', 'readonly array(int64, 1d, C)'),  # 5 indices
        ('none', 'readonly array(float64, 1d, C)'),  # 6 data
        ('array(int64, 1d, C)',),  # 7 y
        ('array(uint8, 2d, C)',),  # 8 Y
        ('readonly array(float64, 1d, C)',),  # 9 w
        ('array(int64, 1d, C)',),  # 10 order
        ('readonly array(float32, 2d, C)', 'readonly array(float64, 2d, C)'),  # 11 Xalt
        ('bool',),  # 12 direct
        ('array(float32, 1d, C)', 'array(float64, 1d, C)'),  # 13 scale
        ('array(float32, 1d, C)', 'array(float64, 1d, C)'),  # 14 shift
        ('array(float32, 2d, C)', 'array(float64, 2d, C)'),  # 15 beff
        ('array(int64, 1d, C)',),  # 16 sizes
        ('array(int64, 1d, C)',),  # 17 w_off
        ('array(int64, 1d, C)',),  # 18 b_off
        ('array(int64, 1d, C)',),  # 19 ld
        ('array(float32, 1d, C)', 'array(float64, 1d, C)'),  # 20 theta
        ('array(float32, 1d, C)', 'array(float64, 1d, C)'),  # 21 grad
        ('array(float32, 1d, C)', 'array(float64, 1d, C)'),  # 22 s1
        ('array(float32, 1d, C)', 'array(float64, 1d, C)'),  # 23 s2
        ('array(float32, 1d, C)', 'array(float64, 1d, C)'),  # 24 Wt
        ('array(int64, 1d, C)',),  # 25 t_off
        ('array(float32, 3d, C)', 'array(float64, 3d, C)'),  # 26 Xb
        ('array(int32, 3d, C)',),  # 27 lists
        ('array(int64, 2d, C)',),  # 28 counts
        ('array(int64, 2d, C)',),  # 29 yb
        ('array(float32, 2d, C)', 'array(float64, 2d, C)'),  # 30 wb
        ('array(int32, 2d, C)',),  # 31 dense
        ('array(int64, 1d, C)',),  # 32 dense_counts
        ('array(float32, 1d, C)', 'array(float64, 1d, C)'),  # 33 H
        ('array(float32, 1d, C)', 'array(float64, 1d, C)'),  # 34 D
        ('array(int64, 1d, C)',),  # 35 a_off
        ('array(float32, 3d, C)', 'array(float64, 3d, C)'),  # 36 Zp
        ('array(float32, 2d, C)', 'array(float64, 2d, C)'),  # 37 Z
        ('array(float64, 2d, A)',),  # 38 class_loss
        ('array(float64, 2d, A)',),  # 39 class_weight
        ('array(float64, 2d, A)',),  # 40 col_loss
        ('array(float64, 2d, A)',),  # 41 stats
        ('array(int64, 1d, C)',),  # 42 iopt
        ('array(float64, 1d, C)',),  # 43 fopt
        ('int64',),  # 44 t
    ),
    '_mlp.mlp_forward': (
        ('int64',),  # 0 tid
        ('int64',),  # 1 n_threads
        ('array(int64, 1d, C)',),  # 2 sync
        ('readonly array(float64, 2d, C)',),  # 3 X
        ('readonly array(float32, 2d, C)',),  # 4 Xalt
        ('none', 'readonly array(int64, 1d, C)'),  # 5 indptr
        ('none', 'readonly array(int64, 1d, C)'),  # 6 indices
        ('none', 'readonly array(float64, 1d, C)'),  # 7 data
        ('array(int64, 1d, C)',),  # 8 rows
        ('array(int64, 1d, C)',),  # 9 sizes
        ('array(int64, 1d, C)',),  # 10 w_off
        ('array(int64, 1d, C)',),  # 11 b_off
        ('array(int64, 1d, C)',),  # 12 ld
        ('array(float64, 1d, C)',),  # 13 theta
        ('int64',),  # 14 activation
        ('array(float64, 3d, C)',),  # 15 Xb
        ('array(int32, 3d, C)',),  # 16 lists
        ('array(int64, 2d, C)',),  # 17 counts
        ('array(float64, 2d, C)',),  # 18 H
        ('array(int64, 1d, C)',),  # 19 a_off
        ('array(int32, 2d, C)',),  # 20 dense
        ('array(int64, 1d, C)',),  # 21 dense_counts
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
    return {key: [tuple(str(t) for t in sig) for sig in disp.signatures]
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
    "_linear.linear_epoch": ("theta", "indptr"),
    "_linear.linear_forward": ("theta", "indptr"),
    # called from Python on one row of the accumulators (C), from the
    # kernels on a chunk's (any layout): the tests call it with either
    "_losses.loss_grad": ("Z", "class_loss"),
    "_mlp.mlp_epoch": ("theta", "indptr"),
    "_mlp.mlp_epoch_deep": ("theta", "indptr"),
    "_mlp.mlp_forward": ("theta", "indptr"),
    "_rng.shuffle": (),
    "_stats.column_moments": ("X",),
    # the estimator passes int64 indices; the kernel tests, scipy's int32
    "_stats.sparse_column_moments": ("indices",),
}


def _axes_of(key, signature):
    import inspect

    names = list(inspect.signature(dispatchers()[key].py_func).parameters)
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
    import inspect

    lines = ["ALLOWED = {"]
    for key, disp in sorted(dispatchers().items()):
        sigs = signatures.get(key)
        if not sigs:
            continue
        names = list(inspect.signature(disp.py_func).parameters)
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
