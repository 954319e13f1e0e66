"""Vector operations for Numba CPU kernels, written as LLVM IR through ``numba.extending.intrinsic``.

Why not plain loops: Numba runs LLVM's loop vectoriser only (its SLP vectoriser is off), which cannot keep a
block of accumulators in registers across a reduction loop, and on AVX-512 parts it prefers 256-bit vectors.
These intrinsics emit one 64-byte vector operation each (16 float32 or 8 float64 lanes: zmm registers on
AVX-512, split into two ymm by LLVM on AVX2). They act on arrays at a lane offset; on an array from
``stack_array`` whose offsets are compile-time constants, LLVM's SROA turns every slice into a register,
so a block of ``fma_lanes`` over such an array is a register-blocked FMA kernel with no loads or stores
of the accumulators. Loads and stores are unaligned; no bounds are checked.
"""

from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.core.errors import RequireLiteralValue
from numba.extending import intrinsic

VECTOR_BYTES = 64


def lanes(dtype) -> int:
    """Lanes of one vector of ``dtype`` (a NumPy dtype)."""
    return VECTOR_BYTES // dtype.itemsize


def _vector_at(context, builder, array_type, array, index):
    """Pointer to the vector starting at element ``index`` of ``array``, and the vector's LLVM type."""
    data = context.make_array(array_type)(context, builder, array).data
    element = context.get_value_type(array_type.dtype)
    vector = ir.VectorType(element, VECTOR_BYTES * 8 // array_type.dtype.bitwidth)
    return builder.bitcast(builder.gep(data, [index]), vector.as_pointer()), vector


@intrinsic
def stack_array(typingctx, count, dtype):
    """Pointer to ``count`` (a literal) uninitialised elements of ``dtype`` in the caller's stack frame;
    wrap it with ``numba.carray``. Allocated once per call of the kernel, wherever this appears."""
    if not isinstance(count, types.IntegerLiteral):
        raise RequireLiteralValue(count)
    size, element_type = count.literal_value, dtype.dtype

    def codegen(context, builder, signature, args):
        element = context.get_value_type(element_type)
        storage = cgutils.alloca_once(builder, ir.ArrayType(element, size))
        return builder.bitcast(storage, element.as_pointer())

    return types.CPointer(element_type)(count, dtype), codegen


@intrinsic
def copy_lanes(typingctx, dst, i, src, j):
    """dst[i : i + lanes] = src[j : j + lanes]."""

    def codegen(context, builder, signature, args):
        target, _ = _vector_at(context, builder, signature.args[0], args[0], args[1])
        source, _ = _vector_at(context, builder, signature.args[2], args[2], args[3])
        builder.store(builder.load(source, align=1), target, align=1)
        return context.get_dummy_value()

    return types.none(dst, i, src, j), codegen


@intrinsic
def fma_lanes(typingctx, acc, i, w, j, x):
    """acc[i : i + lanes] += x * w[j : j + lanes], one fused multiply-add of a broadcast scalar."""

    def codegen(context, builder, signature, args):
        target, vector = _vector_at(context, builder, signature.args[0], args[0], args[1])
        source, _ = _vector_at(context, builder, signature.args[2], args[2], args[3])
        one = builder.insert_element(ir.Constant(vector, None), args[4], ir.Constant(ir.IntType(32), 0))
        splat = builder.shuffle_vector(one, one, ir.Constant(ir.VectorType(ir.IntType(32), vector.count), None))
        name = f"llvm.fma.v{vector.count}f{signature.args[0].dtype.bitwidth}"
        fma = cgutils.get_or_insert_function(builder.module, ir.FunctionType(vector, [vector] * 3), name)
        total = builder.call(fma, [splat, builder.load(source, align=1), builder.load(target, align=1)])
        builder.store(total, target, align=1)
        return context.get_dummy_value()

    return types.none(acc, i, w, j, acc.dtype), codegen


@intrinsic
def relu_lanes(typingctx, acc, i):
    """acc[i : i + lanes] = where(acc < 0, 0, acc): a comparison, so NaN stays NaN (as in torch.relu)."""

    def codegen(context, builder, signature, args):
        target, vector = _vector_at(context, builder, signature.args[0], args[0], args[1])
        value, zero = builder.load(target, align=1), ir.Constant(vector, None)
        builder.store(builder.select(builder.fcmp_ordered("<", value, zero), zero, value), target, align=1)
        return context.get_dummy_value()

    return types.none(acc, i), codegen


@intrinsic
def zero_lanes(typingctx, acc, i):
    """acc[i : i + lanes] = 0."""

    def codegen(context, builder, signature, args):
        target, vector = _vector_at(context, builder, signature.args[0], args[0], args[1])
        builder.store(ir.Constant(vector, None), target, align=1)
        return context.get_dummy_value()

    return types.none(acc, i), codegen


@intrinsic
def fma_vectors(typingctx, acc, i, a, j, b, k):
    """acc[i : i + lanes] += a[j : j + lanes] * b[k : k + lanes], lane by lane (no broadcast)."""

    def codegen(context, builder, signature, args):
        target, vector = _vector_at(context, builder, signature.args[0], args[0], args[1])
        left, _ = _vector_at(context, builder, signature.args[2], args[2], args[3])
        right, _ = _vector_at(context, builder, signature.args[4], args[4], args[5])
        name = f"llvm.fma.v{vector.count}f{signature.args[0].dtype.bitwidth}"
        fma = cgutils.get_or_insert_function(builder.module, ir.FunctionType(vector, [vector] * 3), name)
        operands = [builder.load(left, align=1), builder.load(right, align=1), builder.load(target, align=1)]
        builder.store(builder.call(fma, operands), target, align=1)
        return context.get_dummy_value()

    return types.none(acc, i, a, j, b, k), codegen


@intrinsic
def sum_lanes(typingctx, acc, i):
    """The sum of acc[i : i + lanes] as a pairwise tree: the upper half added to the lower half until one
    lane is left (a fixed order, so the result does not depend on the compiler)."""

    def codegen(context, builder, signature, args):
        source, vector = _vector_at(context, builder, signature.args[0], args[0], args[1])
        value, count = builder.load(source, align=1), vector.count
        while count > 1:
            count //= 2
            index = ir.VectorType(ir.IntType(32), count)
            low = builder.shuffle_vector(value, value, ir.Constant(index, list(range(count))))
            high = builder.shuffle_vector(value, value, ir.Constant(index, list(range(count, 2 * count))))
            value = builder.fadd(low, high)
        return builder.extract_element(value, ir.Constant(ir.IntType(32), 0))

    return acc.dtype(acc, i), codegen


@intrinsic
def transpose_lanes(typingctx, dst, i, dst_stride, src, j, src_stride):
    """A lanes x lanes tile transposed: dst[i + c * dst_stride + r] = src[j + r * src_stride + c]. Its rows are
    loaded as vectors and exchanged in log2(lanes) rounds of two-vector shuffles: round b swaps the upper b
    lanes of row r with the lower b lanes of row r + b (for every r with bit b clear), which transposes every
    2b x 2b block whose b x b blocks are transposed by the rounds after it."""

    def codegen(context, builder, signature, args):
        int64 = ir.IntType(64)
        dst_type, _, _, src_type, _, _ = signature.args
        i, dst_stride, j, src_stride = (context.cast(builder, args[k], signature.args[k], types.int64)
                                        for k in (1, 2, 4, 5))
        _, vector = _vector_at(context, builder, src_type, args[3], j)
        n = vector.count
        rows = []
        for r in range(n):
            pointer, _ = _vector_at(context, builder, src_type, args[3],
                                    builder.add(j, builder.mul(ir.Constant(int64, r), src_stride)))
            rows.append(builder.load(pointer, align=1))
        index = ir.VectorType(ir.IntType(32), n)
        b = n // 2
        while b:
            low = ir.Constant(index, [lane if not lane & b else n + lane - b for lane in range(n)])
            high = ir.Constant(index, [lane + b if not lane & b else n + lane for lane in range(n)])
            for r in range(n):
                if not r & b:
                    rows[r], rows[r + b] = (builder.shuffle_vector(rows[r], rows[r + b], low),
                                            builder.shuffle_vector(rows[r], rows[r + b], high))
            b //= 2
        for c in range(n):
            pointer, _ = _vector_at(context, builder, dst_type, args[0],
                                    builder.add(i, builder.mul(ir.Constant(int64, c), dst_stride)))
            builder.store(rows[c], pointer, align=1)
        return context.get_dummy_value()

    return types.none(dst, i, dst_stride, src, j, src_stride), codegen
