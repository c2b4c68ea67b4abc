"""Products with sparse (CSR) rows read in place, and the first-layer step
that goes with them: the first layer of the epoch kernels and of the forward
passes when the data is a ``scipy.sparse`` CSR matrix.

A CSR matrix comes as its three arrays: ``indptr`` (one more entry than
rows) and ``indices``, int32 or int64, and ``data`` (float32 or float64,
whatever the model's dtype: each value is cast as it is read; the epochs get
int32 indices and values in the model's dtype, the forward passes int64 and
float64: see ``_engine._models``). Row ``r``
holds ``data[q]`` in column ``indices[q]`` for ``indptr[r] <= q <
indptr[r + 1]``, the columns increasing and distinct (canonical CSR). The
kernels pick rows through an index (``rows[i]``: the minibatch's slice of
the shuffled order), so a minibatch is never copied and nothing of size rows
x features is allocated: the memory a fit needs beyond the data grows with
the parameters, not with the data.

Each output element is a chain of fused multiply-adds over the row's
non-zeros in increasing column order, from zero, and a gradient element
takes the rows in order: the chains the dense products of ``_gemm`` run
(their extra terms have a zero input and leave a sum unchanged). So on the
same data the sparse kernels give the very bits of the dense ones, and like
them the same bits whatever the number of threads. With ``scale`` not
empty each value is read times its column's factor, rounded to the model's
dtype, as the dense kernels copy it; the epochs get the values of
standardised inputs scaled that way already (``KernelData``) and an empty
``scale``.

As in ``_simd``, the products are intrinsics holding their sums (or the
deltas they scatter) in vector registers across a row's non-zeros; they
also ask a few non-zeros ahead for the rows of the weights they will read,
which a wide first layer keeps in memory rather than in cache.
"""

import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from ._batch import F_BETA1, F_BETA2, F_EPS, F_MOMENTUM, I_NESTEROV, I_SOLVER, update
from ._gemm import lanes_of
from ._numba import subroutine
from ._optim import ADAM, GRADIENT, step_row, step_scalars
from ._simd import (
    TILE_VECTORS,
    VECTOR_BYTES,
    _check_float_arrays,
    _const,
    _data,
    _float_type,
    _fma,
    _splat,
    _vload,
    _vstore,
    fma,
)

_I64 = ir.IntType(64)
_I32 = ir.IntType(32)

#: How many non-zeros ahead the sparse tiles ask for the rows they will read,
#: when the weights they read take more than ``FAR_BYTES`` (the rows of a
#: wide first layer come from memory, in no order; a smaller one stays in
#: cache, where asking would only cost time).
AHEAD = 8
FAR_BYTES = 1 << 23


def _scaled_py(data, q, scale, k, dt):
    """Value ``data[q]`` of column ``k`` in the dtype ``dt``, times
    ``scale[k]`` first when ``scale`` is not empty (the product in the wider
    of the two dtypes, then rounded, as ``_gemm.gather_rows_scaled``)."""
    if scale.shape[0] > 0:
        return dt(data[q] * scale[k])
    return dt(data[q])


scaled = subroutine(_scaled_py)


def _convert(builder, x, to):
    """Float ``x`` in the float type ``to`` (rounded to nearest when
    narrower), as Numba casts."""
    if x.type == to:
        return x
    if isinstance(to, ir.DoubleType):
        return builder.fpext(x, to)
    return builder.fptrunc(x, to)


def _csr_value(builder, datap, scalep, idxp, q, T, scaled):
    """Column ``k`` (int64) and value (type ``T``) of non-zero ``q``: the IR
    of ``scaled`` above, the scaling compiled in or out by ``scaled``."""
    k = builder.load(builder.gep(idxp, [q]))
    if k.type != _I64:
        k = builder.sext(k, _I64)
    x = builder.load(builder.gep(datap, [q]))
    if scaled:
        s = builder.load(builder.gep(scalep, [k]))
        wide = x.type if isinstance(x.type, ir.DoubleType) else s.type
        x = builder.fmul(_convert(builder, x, wide), _convert(builder, s, wide))
    return k, _convert(builder, x, T)


def _check_csr(out, B, data, idx, scale):
    """The dtype of ``out`` and ``B`` when the arguments suit the tiles."""
    dtype = _check_float_arrays(out, B)
    floats = (types.float32, types.float64)
    for a in (data, scale):
        if not (isinstance(a, types.Array) and a.dtype in floats):
            return None
    if not (isinstance(idx, types.Array) and idx.dtype in (types.int32, types.int64)):
        return None
    return dtype


def _vector_of(dtype):
    """``(T, L, VT, align)``: the float type of ``dtype``, its lanes in one
    vector, that vector type and the element alignment."""
    T = _float_type(dtype)
    size = 4 if dtype == types.float32 else 8
    L = VECTOR_BYTES // size
    return T, L, ir.VectorType(T, L), size


def _pointers(context, builder, tys, args, positions):
    """Data pointers of the arrays at ``positions`` (their element types)."""
    out = []
    for i in positions:
        dt = tys[i].dtype
        elem = (ir.IntType(dt.bitwidth) if isinstance(dt, types.Integer)
                else _float_type(dt))
        out.append(_data(context, builder, tys[i], args[i], elem))
    return out


def _loop(builder, q0, q1, name):
    """Open a loop ``q = q0 .. q1 - 1`` (skipped when empty); returns the
    block before it, its first block, the block after it and the ``q``
    phi."""
    entry = builder.block
    loop = builder.append_basic_block(f"{name}.loop")
    done = builder.append_basic_block(f"{name}.done")
    builder.cbranch(builder.icmp_signed("<", q0, q1), loop, done)
    builder.position_at_end(loop)
    q = builder.phi(_I64)
    q.add_incoming(q0, entry)
    return entry, loop, done, q


def _prefetch_row(builder, idxp, q, q1, base, ld, n_lines, ahead):
    """Unless ``ahead`` is 0, ask for the row ``base[idx[q + ahead] * ld]``
    (its ``n_lines`` cache lines) to be brought into cache; the last
    non-zero's row near the end. A hint only: nothing is read or written."""
    with builder.if_then(builder.icmp_signed(">", ahead, _const(0))):
        _prefetch(builder, idxp, q, q1, base, ld, n_lines, ahead)


def _prefetch(builder, idxp, q, q1, base, ld, n_lines, ahead):
    qa = builder.add(q, ahead)
    qa = builder.select(builder.icmp_signed("<", qa, q1), qa,
                        builder.sub(q1, _const(1)))
    k = builder.load(builder.gep(idxp, [qa]))
    if k.type != _I64:
        k = builder.sext(k, _I64)
    row = builder.gep(base, [builder.mul(k, ld)])
    i8p = ir.IntType(8).as_pointer()
    fn = cgutils.get_or_insert_function(
        builder.module, ir.FunctionType(ir.VoidType(), [i8p, _I32, _I32, _I32]),
        "llvm.prefetch.p0")
    for line in range(n_lines):
        ptr = builder.bitcast(builder.gep(builder.bitcast(row, i8p),
                                          [_const(64 * line)]), i8p)
        builder.call(fn, [ptr, ir.Constant(_I32, 0), ir.Constant(_I32, 3),
                          ir.Constant(_I32, 1)])


def _make_sparse_dot_tile(V, scaled):
    """``out[o + j] = sum_q x_q * B[b + k_q*ldb + j]`` for ``j < V * lanes``,
    over the non-zeros ``q0 <= q < q1`` of a CSR row in order (column ``k_q
    = idx[q]``, value ``x_q = data[q]``, times ``scale[k_q]`` when
    ``scaled``, cast to the dtype of ``out``): a chain of fused
    multiply-adds from zero, the ``V`` sums held in vector registers."""

    @intrinsic
    def sparse_dot_tile(typingctx, out, o, B, b, ldb, data, idx, scale, q0, q1, ahead):
        dtype = _check_csr(out, B, data, idx, scale)
        if dtype is None:
            return None
        ip = types.intp
        sig = types.void(out, ip, B, ip, ip, data, idx, scale, ip, ip, ip)

        def codegen(context, builder, signature, args):
            _, o_, _, b_, ldb_, _, _, _, q0_, q1_, ahead_ = args
            T, L, VT, align = _vector_of(dtype)
            outp, bp, datap, idxp, scalep = _pointers(context, builder, signature.args,
                                                      args, (0, 2, 5, 6, 7))
            outp = builder.gep(outp, [o_])
            bp = builder.gep(bp, [b_])
            zero = ir.Constant(VT, [0.0] * L)
            entry, loop, done, q = _loop(builder, q0_, q1_, "spdot")
            acc = [builder.phi(VT) for _ in range(V)]
            for v in range(V):
                acc[v].add_incoming(zero, entry)
            _prefetch_row(builder, idxp, q, q1_, bp, ldb_, V, ahead_)
            k, x = _csr_value(builder, datap, scalep, idxp, q, T, scaled)
            xs = _splat(builder, x, VT)
            brow = builder.gep(bp, [builder.mul(k, ldb_)])
            new = [_fma(builder, xs, _vload(builder, builder.gep(brow, [_const(v * L)]),
                                            VT, align), acc[v]) for v in range(V)]
            q1 = builder.add(q, _const(1))
            end = builder.block
            q.add_incoming(q1, end)
            for v in range(V):
                acc[v].add_incoming(new[v], end)
            builder.cbranch(builder.icmp_signed("<", q1, q1_), loop, done)
            builder.position_at_end(done)
            final = [builder.phi(VT) for _ in range(V)]
            for v in range(V):
                final[v].add_incoming(zero, entry)
                final[v].add_incoming(new[v], end)
            for v in range(V):
                _vstore(builder, final[v], builder.gep(outp, [_const(v * L)]), align)
            return context.get_dummy_value()

        return sig, codegen

    return sparse_dot_tile


def _make_sparse_acc_tile(V, scaled):
    """``G[g + k_q*ldg + j] = fma(x_q, D[d + j], .)`` for ``j < V * lanes``
    and each non-zero ``q0 <= q < q1`` of a CSR row in order (``k_q``,
    ``x_q`` as in the dot tile), the ``V`` vectors of ``D`` held in
    registers."""

    @intrinsic
    def sparse_acc_tile(typingctx, G, g, ldg, data, idx, scale, q0, q1, D, d, ahead):
        dtype = _check_csr(G, D, data, idx, scale)
        if dtype is None:
            return None
        ip = types.intp
        sig = types.void(G, ip, ip, data, idx, scale, ip, ip, D, ip, ip)

        def codegen(context, builder, signature, args):
            _, g_, ldg_, _, _, _, q0_, q1_, _, d_, ahead_ = args
            T, L, VT, align = _vector_of(dtype)
            gp, datap, idxp, scalep, dp = _pointers(context, builder, signature.args,
                                                    args, (0, 3, 4, 5, 8))
            gp = builder.gep(gp, [g_])
            dp = builder.gep(dp, [d_])
            dv = [_vload(builder, builder.gep(dp, [_const(v * L)]), VT, align)
                  for v in range(V)]
            _, loop, done, q = _loop(builder, q0_, q1_, "spacc")
            _prefetch_row(builder, idxp, q, q1_, gp, ldg_, V, ahead_)
            k, x = _csr_value(builder, datap, scalep, idxp, q, T, scaled)
            xs = _splat(builder, x, VT)
            grow = builder.gep(gp, [builder.mul(k, ldg_)])
            for v in range(V):
                ptr = builder.gep(grow, [_const(v * L)])
                acc = _fma(builder, xs, dv[v], _vload(builder, ptr, VT, align))
                _vstore(builder, acc, ptr, align)
            q1 = builder.add(q, _const(1))
            q.add_incoming(q1, builder.block)
            builder.cbranch(builder.icmp_signed("<", q1, q1_), loop, done)
            builder.position_at_end(done)
            return context.get_dummy_value()

        return sig, codegen

    return sparse_acc_tile


sparse_dot_tile_4 = _make_sparse_dot_tile(TILE_VECTORS, False)
sparse_dot_tile_1 = _make_sparse_dot_tile(1, False)
sparse_dot_tile_4s = _make_sparse_dot_tile(TILE_VECTORS, True)
sparse_dot_tile_1s = _make_sparse_dot_tile(1, True)
sparse_acc_tile_4 = _make_sparse_acc_tile(TILE_VECTORS, False)
sparse_acc_tile_1 = _make_sparse_acc_tile(1, False)
sparse_acc_tile_4s = _make_sparse_acc_tile(TILE_VECTORS, True)
sparse_acc_tile_1s = _make_sparse_acc_tile(1, True)


def _ahead_of_py(B):
    """How far ahead the tiles ask for the rows of ``B``: ``AHEAD`` when
    ``B`` takes more than ``FAR_BYTES``, else 0 (not at all)."""
    if B.shape[0] * B.shape[1] * B.itemsize > FAR_BYTES:
        return AHEAD
    return 0


ahead_of = subroutine(_ahead_of_py)


def _sparse_dot_rows_py(out, orow, ocol, indptr, indices, data, rows, m, scale, B,
                        c0, c1):
    """``out[orow + i, ocol + j - c0] = sum_q x_q * B[k_q, j]`` for ``i < m``
    and ``c0 <= j < c1``, over the non-zeros ``(k_q, x_q)`` of CSR row
    ``rows[i]`` in column order (``x_q`` times ``scale[k_q]`` when ``scale``
    is not empty). Sets that block of ``out`` in place; an empty row gives
    zeros. ``out`` and ``B`` are C-ordered, of one dtype."""
    dt = out.dtype.type
    zero = dt(0)
    L = lanes_of(out)
    W = L * TILE_VECTORS
    ldo = out.shape[1]
    ldb = B.shape[1]
    scaled_rows = scale.shape[0] > 0
    ahead = ahead_of(B)
    for i in range(m):
        r = rows[i]
        q0 = indptr[r]
        q1 = indptr[r + 1]
        o = (orow + i) * ldo + ocol - c0
        j = c0
        while j + W <= c1:
            if scaled_rows:
                sparse_dot_tile_4s(out, o + j, B, j, ldb, data, indices, scale, q0,
                                   q1, ahead)
            else:
                sparse_dot_tile_4(out, o + j, B, j, ldb, data, indices, scale, q0, q1,
                                  ahead)
            j += W
        while j + L <= c1:
            if scaled_rows:
                sparse_dot_tile_1s(out, o + j, B, j, ldb, data, indices, scale, q0,
                                   q1, ahead)
            else:
                sparse_dot_tile_1(out, o + j, B, j, ldb, data, indices, scale, q0, q1,
                                  ahead)
            j += L
        if j < c1:  # the columns left over, one at a time
            tail = out[orow + i, ocol + j - c0:ocol + c1 - c0]
            for jj in range(c1 - j):
                tail[jj] = zero
            for q in range(q0, q1):
                k = indices[q]
                x = scaled(data, q, scale, k, dt)
                b = B[k, j:c1]
                for jj in range(c1 - j):
                    tail[jj] = fma(x, b[jj], tail[jj])


sparse_dot_rows = subroutine(_sparse_dot_rows_py)


def _sparse_acc_rows_py(G, gcol, indptr, indices, data, rows, m, scale, D, drow,
                        dcol, width):
    """``G[k, gcol + j] += x * D[drow + i, dcol + j]`` for ``j < width``, over
    the rows ``i < m`` in order and the non-zeros ``(k, x)`` of CSR row
    ``rows[i]`` (``x`` times ``scale[k]`` when ``scale`` is not empty), each
    a fused multiply-add. Updates ``G`` in place; its other rows are not
    read. ``G`` and ``D`` are C-ordered, of one dtype."""
    dt = G.dtype.type
    L = lanes_of(G)
    W = L * TILE_VECTORS
    ldg = G.shape[1]
    ldd = D.shape[1]
    scaled_rows = scale.shape[0] > 0
    ahead = ahead_of(G)
    for i in range(m):
        r = rows[i]
        q0 = indptr[r]
        q1 = indptr[r + 1]
        d = (drow + i) * ldd + dcol
        j = 0
        while j + W <= width:
            if scaled_rows:
                sparse_acc_tile_4s(G, gcol + j, ldg, data, indices, scale, q0, q1, D,
                                   d + j, ahead)
            else:
                sparse_acc_tile_4(G, gcol + j, ldg, data, indices, scale, q0, q1, D,
                                  d + j, ahead)
            j += W
        while j + L <= width:
            if scaled_rows:
                sparse_acc_tile_1s(G, gcol + j, ldg, data, indices, scale, q0, q1, D,
                                   d + j, ahead)
            else:
                sparse_acc_tile_1(G, gcol + j, ldg, data, indices, scale, q0, q1, D,
                                  d + j, ahead)
            j += L
        if j < width:  # the columns left over, one at a time
            drest = D[drow + i, dcol + j:dcol + width]
            for q in range(q0, q1):
                k = indices[q]
                x = scaled(data, q, scale, k, dt)
                g = G[k, gcol + j:gcol + width]
                for jj in range(width - j):
                    g[jj] = fma(x, drest[jj], g[jj])


sparse_acc_rows = subroutine(_sparse_acc_rows_py)


def _centred_step_py(P, G, S1, S2, shift, gsum, b, beff, l2, lr, iopt, fopt, t):
    """``_optim.step_block`` of the rows of ``P`` (with the solver settings of
    ``iopt``/``fopt``, as ``_batch.update``) with the centred gradient
    ``G[f] - shift[f] * gsum``, in one sweep that also sets ``beff`` to the
    centred intercepts of the stepped rows, ``b - sum_f shift[f] * P[f]``.

    The same arithmetic, element by element and in the same order, as the
    dense path's ``_mlp.centre_gradient``, then ``_batch.update``, then
    ``_mlp.centred_intercepts`` (rows whose shift is zero are not centred,
    take ``_optim.step_row`` and add nothing to ``beff``): the same bits,
    without the two extra sweeps of the block. Updates ``P``, ``G`` (left
    at zero), ``S1``, ``S2`` and ``beff`` in place; ``P``, ``G``, ``S1`` and ``S2`` are
    C-ordered 2-D arrays of one shape.
    """
    n, width = P.shape
    solver = iopt[I_SOLVER]
    nesterov = iopt[I_NESTEROV] != 0
    scalars = step_scalars(P, l2, lr, fopt[F_MOMENTUM], fopt[F_BETA1], fopt[F_BETA2],
                           fopt[F_EPS], t)
    l2_, lr_, mu, lr_t, b1, b2, c1_, c2_, eps_ = scalars
    zero = P.dtype.type(0)
    for j in range(width):
        beff[j] = b[j]
    if solver == ADAM:
        for f in range(n):
            cf = shift[f]
            p = P[f]
            g = G[f]
            m = S1[f]
            v = S2[f]
            if cf != 0:
                for j in range(width):
                    gj = (g[j] - cf * gsum[j]) + l2_ * p[j]
                    g[j] = zero
                    mj = b1 * m[j] + c1_ * gj
                    vj = b2 * v[j] + c2_ * gj * gj
                    m[j] = mj
                    v[j] = vj
                    pj = p[j] - lr_t * mj / (np.sqrt(vj) + eps_)
                    p[j] = pj
                    beff[j] -= cf * pj
            else:
                step_row(solver, p, g, m, v, nesterov, scalars)
    elif solver == GRADIENT:
        for f in range(n):
            cf = shift[f]
            p = P[f]
            g = G[f]
            s = S1[f]
            if cf != 0:
                for j in range(width):
                    s[j] += (g[j] - cf * gsum[j]) + l2_ * p[j]
                    g[j] = zero
                    beff[j] -= cf * p[j]
            else:
                step_row(solver, p, g, s, S2[f], nesterov, scalars)
    else:
        for f in range(n):
            cf = shift[f]
            p = P[f]
            g = G[f]
            vel = S1[f]
            if cf != 0:
                for j in range(width):
                    gj = (g[j] - cf * gsum[j]) + l2_ * p[j]
                    g[j] = zero
                    v = mu * vel[j] - lr_ * gj
                    vel[j] = v
                    if nesterov:
                        p[j] += mu * v - lr_ * gj
                    else:
                        p[j] += v
                for j in range(width):
                    beff[j] -= cf * p[j]
            else:
                step_row(solver, p, g, vel, S2[f], nesterov, scalars)


centred_step = subroutine(_centred_step_py)


def _sparse_step_py(P, G, S1, S2, shift, gsum, b, beff, l2, lr, iopt, fopt, t):
    """``_batch.update`` of the whole block ``P`` (a first-layer panel) with
    gradient ``G``, for sparse data; with ``shift`` not empty (standardised
    inputs, see ``_mlp``) the step of the centred gradient, ``G[f] -
    shift[f] * gsum`` (``gsum``: the block's intercept gradient, a copy),
    which also leaves in ``beff`` the centred intercepts of the stepped
    block, ``b - sum_f shift[f] * P[f]`` (``b``: the block's intercepts,
    already stepped), so the next forward pass needs no sweep of the block
    (``centred_step``). Updates ``P``, ``G`` (left at zero), ``S1``, ``S2``
    and ``beff`` in place.
    """
    if shift.shape[0] > 0:
        centred_step(P, G, S1, S2, shift, gsum, b, beff, l2, lr, iopt, fopt, t)
        return
    n = P.shape[0] * P.shape[1]
    _I0 = np.int64(0)
    update(P.reshape((1, n)), G.reshape((1, n)), S1.reshape((1, n)),
           S2.reshape((1, n)), _I0, np.int64(1), _I0, n, l2, lr, iopt, fopt, t)


sparse_step = subroutine(_sparse_step_py)
