"""Hand-vectorised building blocks, written as Numba intrinsics (LLVM IR).

Numba's own loops vectorise element-wise work well, but a matrix product
needs its accumulators held in vector registers across the reduction, which
LLVM will not do from plain loops. These intrinsics spell that out with
explicit vectors of ``LANES`` elements (64 bytes: 16 float32 or 8 float64;
LLVM splits them into what the CPU has, so they run on any x86 or ARM CPU).

Every product here accumulates each output element with fused multiply-adds
(``llvm.fma``, one rounding) in the order its index list gives, one term at a
time. So an element's value depends only on its inputs and that order, never
on which thread computes it, how the work is tiled, or whether terms whose
input is exactly zero are skipped (``fma(0, w, acc)`` is ``acc``): that is
what makes skdigits' results bit-identical for any number of threads, and lets
the kernels skip the zeros of MNIST exactly.

On a compile target without a fused multiply-add instruction (``HAS_FMA``
false: an x86 CPU older than Haswell or Bulldozer, a VM that hides FMA,
``NUMBA_CPU_NAME=generic``), ``llvm.fma`` would become a call to libm's
correctly rounded ``fma`` per element, some 30 times slower than the BLAS
floor. There each step is a multiply then an add instead (two roundings): the
results differ from an FMA machine's in the last bits, but each element is
still the same chain of steps in the same order, so they still do not depend
on the thread count or the tiling (``0 * w + acc`` is ``acc`` too). Importing
this module then warns once (``RuntimeWarning``).

All functions take arrays and offsets in elements, and int32 index lists;
callers check bounds.
"""

import re
import warnings

import llvmlite.binding as ll
import llvmlite.ir as ir
import numpy as np
from numba import types
from numba.core import cgutils, config
from numba.extending import intrinsic

_I64 = ir.IntType(64)
_I32 = ir.IntType(32)


def lanes(dtype):
    """Elements per vector for ``dtype`` (float32: 16, float64: 8)."""
    return VECTOR_BYTES // np.dtype(dtype).itemsize


def _float_type(numba_dtype):
    return ir.FloatType() if numba_dtype == types.float32 else ir.DoubleType()


def compile_target(cpu_name=None, cpu_features=None):
    """``(cpu_name, features)`` Numba's JIT compiles for, by its rule.

    The arguments stand for ``numba.config.CPU_NAME`` and ``CPU_FEATURES``
    (``NUMBA_CPU_NAME``, ``NUMBA_CPU_FEATURES``; Numba sets the features to
    ``""`` when the name is ``generic`` and they are unset). As in
    ``numba.core.codegen.JITCPUCodegen``: the host's CPU name when none is
    given, and the host's features (with Numba's ``ENABLE_AVX`` applied) when
    none are given.
    """
    name = cpu_name if cpu_name is not None else ll.get_host_cpu_name()
    if cpu_features is not None:
        return name, cpu_features
    try:
        from numba.core.codegen import get_host_cpu_features
    except ImportError:  # pragma: no cover - older or newer Numba layout
        try:
            return name, ll.get_host_cpu_features().flatten()
        except RuntimeError:
            return name, ""
    return name, get_host_cpu_features()


def target_has_fma(cpu_name, features):
    """Whether code compiled for ``cpu_name`` with ``features`` (an LLVM
    feature string such as ``"+avx2,-fma"``) has a fused multiply-add.

    LLVM itself decides: a function returning ``llvm.fma.f32`` is compiled
    for that target, and the answer is no when the code calls libm's
    ``fmaf`` instead of using an instruction (this follows what a CPU name
    implies, what the feature string adds or removes, and FMA4).
    """
    ll.initialize_native_target()
    ll.initialize_native_asmprinter()
    module = ir.Module(name="skdigits_fma_probe")
    module.triple = ll.get_process_triple()
    f32 = ir.FloatType()
    fnty = ir.FunctionType(f32, [f32, f32, f32])
    fn = ir.Function(module, fnty, "skdigits_fma_probe")
    intrinsic_fn = ir.Function(module, fnty, "llvm.fma.f32")
    builder = ir.IRBuilder(fn.append_basic_block())
    builder.ret(builder.call(intrinsic_fn, fn.args))
    parsed = ll.parse_assembly(str(module))
    machine = ll.Target.from_triple(module.triple).create_target_machine(
        cpu=cpu_name, features=features, opt=2)
    # "fmaf", or "_fmaf" where C symbols take an underscore (macOS)
    return re.search(r"\b_?fmaf\b", machine.emit_assembly(parsed)) is None


def _decide_fma():
    name, features = compile_target(config.CPU_NAME, config.CPU_FEATURES)
    try:
        return name, target_has_fma(name, features)
    except Exception:  # noqa: BLE001 - LLVM refused the probe: trust the flags
        return name, bool({"+fma", "+fma4"} & set(features.split(",")))


#: CPU name the kernels are compiled for (``numba.config.CPU_NAME`` or the
#: host's) and whether it has a fused multiply-add, decided once at import.
CPU_NAME, HAS_FMA = _decide_fma()

if not HAS_FMA:
    warnings.warn(
        f"skdigits: the CPU the kernels are compiled for ({CPU_NAME!r}"
        f"{', from NUMBA_CPU_NAME' if config.CPU_NAME is not None else ''}) "
        "has no fused multiply-add, so each step of a matrix product is a "
        "multiply then an add (two roundings): results differ in the last bits "
        "from those of a machine with FMA (they still do not depend on the "
        "number of threads), and training is slower.",
        RuntimeWarning, stacklevel=2)


def target_vector_bytes(cpu_name, features):
    """Bytes of the widest vector register of code compiled for ``cpu_name``
    with ``features``: 64 (AVX-512), 32 (AVX, AVX2) or 16 (SSE, NEON, or
    unknown). LLVM itself decides: the sum of two 64-byte vectors is
    compiled for that target, and the registers its assembly names tell
    (``zmm``, ``ymm``; anything else counts as 16 bytes)."""
    ll.initialize_native_target()
    ll.initialize_native_asmprinter()
    module = ir.Module(name="skdigits_width_probe")
    module.triple = ll.get_process_triple()
    vt = ir.VectorType(ir.FloatType(), 16)
    fn = ir.Function(module, ir.FunctionType(ir.VoidType(), [vt.as_pointer()] * 3),
                     "skdigits_width_probe")
    builder = ir.IRBuilder(fn.append_basic_block())
    a, b, out = fn.args
    builder.store(builder.fadd(builder.load(a), builder.load(b)), out)
    builder.ret_void()
    machine = ll.Target.from_triple(module.triple).create_target_machine(
        cpu=cpu_name, features=features, opt=2)
    asm = machine.emit_assembly(ll.parse_assembly(str(module)))
    if re.search(r"\bzmm\d", asm):
        return 64
    if re.search(r"\bymm\d", asm):
        return 32
    return 16


def _decide_tiles():
    """``(VECTOR_BYTES, TILE_VECTORS)`` for the compile target: vectors as
    wide as its registers, and tiles of ``TILE_ROWS x TILE_VECTORS``
    vectors whose accumulators fit in its register file (x86 has 32 vector
    registers with AVX-512, 16 before; AArch64 has 32)."""
    name, features = compile_target(config.CPU_NAME, config.CPU_FEATURES)
    try:
        width = target_vector_bytes(name, features)
    except Exception:  # noqa: BLE001 - LLVM refused the probe
        width = 16
    many = width == 64 or ll.get_process_triple().startswith(("aarch64", "arm64"))
    return width, 4 if many else 2


#: Bytes per vector the kernels use, and the tiles' width in vectors: from
#: the compile target (``_decide_tiles``). Each output element is the same
#: chain of steps whatever they are (see ``_gemm``), so they change the
#: speed, never the bits.
VECTOR_BYTES, TILE_VECTORS = _decide_tiles()


def _fma(builder, a, b, c):
    """``a * b + c``: one ``llvm.fma`` where the target has FMA, else a
    multiply then an add (see the module docstring)."""
    if not HAS_FMA:
        return builder.fadd(builder.fmul(a, b), c)
    t = a.type
    elem = t.element if isinstance(t, ir.VectorType) else t
    suffix = "f32" if isinstance(elem, ir.FloatType) else "f64"
    if isinstance(t, ir.VectorType):
        suffix = f"v{t.count}{suffix}"
    fn = cgutils.get_or_insert_function(builder.module,
                                        ir.FunctionType(t, [t, t, t]),
                                        f"llvm.fma.{suffix}")
    return builder.call(fn, [a, b, c])


def _splat(builder, scalar, vt):
    undef = ir.Constant(vt, ir.Undefined)
    one = builder.insert_element(undef, scalar, ir.Constant(_I32, 0))
    mask = ir.Constant(ir.VectorType(_I32, vt.count), [0] * vt.count)
    return builder.shuffle_vector(one, undef, mask)


def _data(context, builder, aryty, value, elem):
    ary = cgutils.create_struct_proxy(aryty)(context, builder, value=value)
    return builder.bitcast(ary.data, elem.as_pointer())


def _vload(builder, ptr, vt, align):
    ld = builder.load(builder.bitcast(ptr, vt.as_pointer()))
    ld.align = align
    return ld


def _vstore(builder, value, ptr, align):
    st = builder.store(value, builder.bitcast(ptr, value.type.as_pointer()))
    st.align = align


def _const(n):
    return ir.Constant(_I64, n)


def _check_float_arrays(*arrays, idx=None):
    if idx is not None and not (isinstance(idx, types.Array)
                                and idx.dtype == types.int32):
        return None
    dtype = arrays[0].dtype
    if dtype not in (types.float32, types.float64):
        return None
    for a in arrays:
        if not isinstance(a, types.Array) or a.dtype != dtype:
            return None
    return dtype


def _make_dot_tile(R, V):
    """``out[r, v]``: ``R`` rows by ``V`` vectors of a product, from zero.

    ``dot_tile(out, o, ldo, A, a0, a1, a2, a3, B, b, ldb, idx, p, n)`` sets,
    for ``r < R`` and ``j < V * lanes``::

        out[o + r*ldo + j] = sum over q < n, in order, of
                             A[a_r + k] * B[b + k*ldb + j],  k = idx[p + q]

    (flat element offsets into C-ordered buffers; row ``r`` of ``A`` starts
    at ``a_r``, so the rows can lie anywhere, e.g. rows of the data picked by
    a minibatch's index).
    """

    @intrinsic
    def dot_tile(typingctx, out, o, ldo, A, a0, a1, a2, a3, B, b, ldb, idx, p, n):
        dtype = _check_float_arrays(out, A, B, idx=idx)
        if dtype is None:
            return None
        ip = types.intp
        sig = types.void(out, ip, ip, A, ip, ip, ip, ip, B, ip, ip, idx, ip, ip)

        def codegen(context, builder, signature, args):
            (out_, o_, ldo_, A_, a0_, a1_, a2_, a3_, B_, b_, ldb_, idx_, p_,
             n_) = args
            T = _float_type(dtype)
            L = VECTOR_BYTES // (4 if dtype == types.float32 else 8)
            VT = ir.VectorType(T, L)
            align = 4 if dtype == types.float32 else 8
            tys = signature.args
            outp = builder.gep(_data(context, builder, tys[0], out_, T), [o_])
            abase = _data(context, builder, tys[3], A_, T)
            arows = [builder.gep(abase, [a]) for a in (a0_, a1_, a2_, a3_)[:R]]
            bp = builder.gep(_data(context, builder, tys[8], B_, T), [b_])
            ip = builder.gep(_data(context, builder, tys[11], idx_, _I32), [p_])
            zero = ir.Constant(VT, [0.0] * L)
            entry = builder.block
            loop = builder.append_basic_block("dot.loop")
            done = builder.append_basic_block("dot.done")
            builder.cbranch(builder.icmp_signed(">", n_, _const(0)), loop, done)
            builder.position_at_end(loop)
            q = builder.phi(_I64)
            q.add_incoming(_const(0), entry)
            acc = [[builder.phi(VT) for _ in range(V)] for _ in range(R)]
            for row in acc:
                for phi in row:
                    phi.add_incoming(zero, entry)
            k = builder.sext(builder.load(builder.gep(ip, [q])), _I64)
            brow = builder.gep(bp, [builder.mul(k, ldb_)])
            bv = [_vload(builder, builder.gep(brow, [_const(v * L)]), VT, align)
                  for v in range(V)]
            new = []
            for r in range(R):
                x = builder.load(builder.gep(arows[r], [k]))
                xs = _splat(builder, x, VT)
                new.append([_fma(builder, xs, bv[v], acc[r][v]) for v in range(V)])
            q1 = builder.add(q, _const(1))
            end = builder.block
            q.add_incoming(q1, end)
            for r in range(R):
                for v in range(V):
                    acc[r][v].add_incoming(new[r][v], end)
            builder.cbranch(builder.icmp_signed("<", q1, n_), loop, done)
            builder.position_at_end(done)
            final = []
            for r in range(R):
                row = []
                for v in range(V):
                    phi = builder.phi(VT)
                    phi.add_incoming(zero, entry)
                    phi.add_incoming(new[r][v], end)
                    row.append(phi)
                final.append(row)
            for r in range(R):
                orow = builder.gep(outp, [builder.mul(_const(r), ldo_)])
                for v in range(V):
                    _vstore(builder, final[r][v], builder.gep(orow, [_const(v * L)]),
                            align)
            return context.get_dummy_value()

        return sig, codegen

    return dot_tile


def _make_acc_tile(R, V):
    """``G[k, v] += sum_r A[r, k] * D[r, v]`` for the ``k`` of an index list.

    ``acc_tile(G, g, ldg, A, a0, a1, a2, a3, D, d, ldd, idx, p, n)`` does,
    for each ``k = idx[p + q]`` (``q < n``) and ``j < V * lanes``, the updates
    ``G[g + k*ldg + j] = fma(A[a_r + k], D[d + r*ldd + j], .)`` for
    ``r = 0 .. R-1`` in order (row ``r`` of ``A`` starts at ``a_r``). The
    ``R x V`` vectors of ``D`` stay in registers.
    """

    @intrinsic
    def acc_tile(typingctx, G, g, ldg, A, a0, a1, a2, a3, D, d, ldd, idx, p, n):
        dtype = _check_float_arrays(G, A, D, idx=idx)
        if dtype is None:
            return None
        ip = types.intp
        sig = types.void(G, ip, ip, A, ip, ip, ip, ip, D, ip, ip, idx, ip, ip)

        def codegen(context, builder, signature, args):
            (G_, g_, ldg_, A_, a0_, a1_, a2_, a3_, D_, d_, ldd_, idx_, p_,
             n_) = args
            T = _float_type(dtype)
            L = VECTOR_BYTES // (4 if dtype == types.float32 else 8)
            VT = ir.VectorType(T, L)
            align = 4 if dtype == types.float32 else 8
            tys = signature.args
            gp = builder.gep(_data(context, builder, tys[0], G_, T), [g_])
            abase = _data(context, builder, tys[3], A_, T)
            arows = [builder.gep(abase, [a]) for a in (a0_, a1_, a2_, a3_)[:R]]
            dp = builder.gep(_data(context, builder, tys[8], D_, T), [d_])
            ip = builder.gep(_data(context, builder, tys[11], idx_, _I32), [p_])
            dv = []
            for r in range(R):
                drow = builder.gep(dp, [builder.mul(_const(r), ldd_)])
                dv.append([_vload(builder, builder.gep(drow, [_const(v * L)]), VT,
                                  align) for v in range(V)])
            entry = builder.block
            loop = builder.append_basic_block("acc.loop")
            done = builder.append_basic_block("acc.done")
            builder.cbranch(builder.icmp_signed(">", n_, _const(0)), loop, done)
            builder.position_at_end(loop)
            q = builder.phi(_I64)
            q.add_incoming(_const(0), entry)
            k = builder.sext(builder.load(builder.gep(ip, [q])), _I64)
            grow = builder.gep(gp, [builder.mul(k, ldg_)])
            xs = [_splat(builder, builder.load(builder.gep(arows[r], [k])), VT)
                  for r in range(R)]
            for v in range(V):
                ptr = builder.gep(grow, [_const(v * L)])
                acc = _vload(builder, ptr, VT, align)
                for r in range(R):
                    acc = _fma(builder, xs[r], dv[r][v], acc)
                _vstore(builder, acc, ptr, align)
            q1 = builder.add(q, _const(1))
            q.add_incoming(q1, builder.block)
            builder.cbranch(builder.icmp_signed("<", q1, n_), loop, done)
            builder.position_at_end(done)
            return context.get_dummy_value()

        return sig, codegen

    return acc_tile


#: Row-group height of the tiles (their width, ``TILE_VECTORS``, is above).
TILE_ROWS = 4

# "4x4": TILE_ROWS x TILE_VECTORS vectors (4 x 2 on targets with 16 vector
# registers); "4x1", "1x4", "1x1" the narrower ones for the edges
dot_tile_4x4 = _make_dot_tile(TILE_ROWS, TILE_VECTORS)
dot_tile_4x1 = _make_dot_tile(TILE_ROWS, 1)
dot_tile_1x4 = _make_dot_tile(1, TILE_VECTORS)
dot_tile_1x1 = _make_dot_tile(1, 1)
acc_tile_4x4 = _make_acc_tile(TILE_ROWS, TILE_VECTORS)
acc_tile_4x1 = _make_acc_tile(TILE_ROWS, 1)
acc_tile_1x4 = _make_acc_tile(1, TILE_VECTORS)
acc_tile_1x1 = _make_acc_tile(1, 1)


@intrinsic
def fma(typingctx, a, b, c):
    """``a * b + c`` with one rounding (the same operation as the tiles')."""
    if not (a == b == c and a in (types.float32, types.float64)):
        return None

    def codegen(context, builder, signature, args):
        return _fma(builder, *args)

    return a(a, b, c), codegen
