"""Vector operations for Numba CPU kernels, written as LLVM IR through ``numba.extending.intrinsic``.

Why not plain loops: Numba runs LLVM's loop vectoriser only (its SLP vectoriser is off), which cannot keep a
block of accumulators in registers across a reduction loop, and on AVX-512 parts it prefers 256-bit vectors.
These intrinsics emit one 64-byte vector operation each (16 float32 or 8 float64 lanes: zmm registers on
AVX-512, split into two ymm by LLVM on AVX2). They act on arrays at a lane offset; on an array from
``stack_array`` whose offsets are compile-time constants, LLVM's SROA turns every slice into a register,
so a block of ``fma_lanes`` over such an array is a register-blocked FMA kernel with no loads or stores
of the accumulators. Loads and stores are unaligned; no bounds are checked.

Beyond loads, stores and FMA: lane-wise maximum and its reduction over the lanes, lane
sums, differences and scaling, and ``exp_lanes``, an exponential within one unit in the last place (Cody-Waite range
reduction, a Taylor polynomial, ``2^n`` from the exponent bits; ``_ExpConstants`` has the figures).
"""

from __future__ import annotations

import math
from decimal import Decimal, localcontext

import numpy as np
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


def _pairwise(context, builder, signature, args, combine):
    """One value from the vector at (args[0], args[1]): ``combine(low half, high half)`` until one lane is
    left, a fixed order whatever the compiler."""
    source, vector = _vector_at(context, builder, signature.args[0], args[0], args[1])
    value, count = builder.load(source, align=1), vector.count
    while count > 1:
        count //= 2
        index = ir.VectorType(ir.IntType(32), count)
        low = builder.shuffle_vector(value, value, ir.Constant(index, list(range(count))))
        high = builder.shuffle_vector(value, value, ir.Constant(index, list(range(count, 2 * count))))
        value = combine(low, high)
    return builder.extract_element(value, ir.Constant(ir.IntType(32), 0))


@intrinsic
def sum_lanes(typingctx, acc, i):
    """The sum of acc[i : i + lanes] as a pairwise tree: the upper half added to the lower half until one
    lane is left (a fixed order, so the result does not depend on the compiler)."""

    def codegen(context, builder, signature, args):
        return _pairwise(context, builder, signature, args, builder.fadd)

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


def _splat(builder, vector, scalar):
    """A vector with ``scalar`` in every lane."""
    one = builder.insert_element(ir.Constant(vector, None), scalar, ir.Constant(ir.IntType(32), 0))
    return builder.shuffle_vector(one, one, ir.Constant(ir.VectorType(ir.IntType(32), vector.count), None))


def _bits(vector):
    """32 or 64: the width of a float vector's elements."""
    return 64 if isinstance(vector.element, ir.DoubleType) else 32


def _call(builder, name, vector, *operands):
    """The LLVM intrinsic ``llvm.<name>`` on vectors of ``vector``'s type."""
    kind = f"v{vector.count}f{_bits(vector)}"
    function = cgutils.get_or_insert_function(builder.module, ir.FunctionType(vector, [vector] * len(operands)),
                                              f"llvm.{name}.{kind}")
    return builder.call(function, list(operands))


@intrinsic
def max_lanes(typingctx, acc, i, src, j):
    """acc[i : i + lanes] = where(src[j : j + lanes] > acc[i : ...], src, acc), lane by lane. A NaN lane is not
    carried: callers that need NaN to propagate get it from the values themselves (``exp_lanes`` of a NaN)."""

    def codegen(context, builder, signature, args):
        target, _ = _vector_at(context, builder, signature.args[0], args[0], args[1])
        source, _ = _vector_at(context, builder, signature.args[2], args[2], args[3])
        old, new = builder.load(target, align=1), builder.load(source, align=1)
        builder.store(builder.select(builder.fcmp_ordered(">", new, old), new, old), target, align=1)
        return context.get_dummy_value()

    return types.none(acc, i, src, j), codegen


@intrinsic
def max_of_lanes(typingctx, acc, i):
    """The largest of acc[i : i + lanes] (a pairwise tree of comparisons, as ``max_lanes``)."""

    def codegen(context, builder, signature, args):
        def larger(low, high):
            return builder.select(builder.fcmp_ordered(">", high, low), high, low)

        return _pairwise(context, builder, signature, args, larger)

    return acc.dtype(acc, i), codegen


def _update(combine):
    """The codegen of ``acc[i : i + lanes] = combine(acc[i : i + lanes], src[j : j + lanes])``."""

    def codegen(context, builder, signature, args):
        target, _ = _vector_at(context, builder, signature.args[0], args[0], args[1])
        source, _ = _vector_at(context, builder, signature.args[2], args[2], args[3])
        result = getattr(builder, combine)(builder.load(target, align=1), builder.load(source, align=1))
        builder.store(result, target, align=1)
        return context.get_dummy_value()

    return codegen


@intrinsic
def add_lanes(typingctx, acc, i, src, j):
    """acc[i : i + lanes] += src[j : j + lanes]."""
    return types.none(acc, i, src, j), _update("fadd")


@intrinsic
def sub_lanes(typingctx, acc, i, src, j):
    """acc[i : i + lanes] -= src[j : j + lanes]."""
    return types.none(acc, i, src, j), _update("fsub")


@intrinsic
def scale_lanes(typingctx, acc, i, factor):
    """acc[i : i + lanes] *= factor."""

    def codegen(context, builder, signature, args):
        target, vector = _vector_at(context, builder, signature.args[0], args[0], args[1])
        product = builder.fmul(builder.load(target, align=1), _splat(builder, vector, args[2]))
        builder.store(product, target, align=1)
        return context.get_dummy_value()

    return types.none(acc, i, acc.dtype), codegen


class _ExpConstants:
    """The numbers of ``exp_lanes`` for one float type: e**x = 2**n * e**r with n = rint(x / ln 2) and
    r = x - n ln 2 in [-ln 2 / 2, ln 2 / 2], where e**r is its Taylor polynomial of the given degree (the
    first term left out is below half a unit in the last place: 0.3466**8 / 8! = 5e-9 for float32,
    0.3466**14 / 14! = 4e-18 for float64). ln 2 is split into ``ln2_hi`` (ln 2 rounded to the type) and
    ``ln2_lo`` (the rest), so that x - n ln2_hi is exact (a fused multiply-add) and r keeps its precision
    (Cody and Waite's reduction). x is clamped to [``low``, ``high``], where e**x is already 0 (below half
    the smallest subnormal) or inf, so that n fits the exponent; 2**n is built from its exponent bits in
    two halves, 2**(n // 2) * 2**(n - n // 2), so that every n of the clamped range, and subnormal results, come
    out right."""

    def __init__(self, dtype, degree, low, high):
        self.dtype = np.dtype(dtype)
        with localcontext() as context:
            context.prec = 60
            ln2 = Decimal(2).ln()
            self.ln2_hi = float(self.dtype.type(float(ln2)))
            self.ln2_lo = float(self.dtype.type(float(ln2 - Decimal(self.ln2_hi))))
        self.log2e = 1 / math.log(2)
        self.taylor = [1 / math.factorial(k) for k in range(degree + 1)]
        self.low, self.high = low, high
        self.mantissa_bits = self.dtype.type(0).nbytes * 8 - 1 - (8 if self.dtype == np.float32 else 11)
        self.bias = 127 if self.dtype == np.float32 else 1023


EXP_CONSTANTS = {32: _ExpConstants(np.float32, 7, -104.0, 89.0), 64: _ExpConstants(np.float64, 13, -746.0, 710.0)}


def _exp_vector(builder, x, vector):
    """e**x lane by lane (see ``_ExpConstants``); NaN gives NaN, -inf 0 and inf inf."""
    numbers = EXP_CONSTANTS[_bits(vector)]
    integer = ir.VectorType(ir.IntType(_bits(vector)), vector.count)

    def constant(value):
        return ir.Constant(vector, [value] * vector.count)

    def whole(value):
        return ir.Constant(integer, [value] * vector.count)

    nan = builder.fcmp_unordered("uno", x, x)
    clamped = builder.select(builder.fcmp_ordered("<", x, constant(numbers.low)), constant(numbers.low), x)
    clamped = builder.select(builder.fcmp_ordered(">", clamped, constant(numbers.high)), constant(numbers.high),
                             clamped)
    clamped = builder.select(nan, constant(0.0), clamped)  # no NaN reaches the integer conversion
    n = _call(builder, "rint", vector, builder.fmul(clamped, constant(numbers.log2e)))
    r = _call(builder, "fma", vector, builder.fneg(n), constant(numbers.ln2_hi), clamped)
    r = _call(builder, "fma", vector, builder.fneg(n), constant(numbers.ln2_lo), r)
    polynomial = constant(numbers.taylor[-1])
    for coefficient in reversed(numbers.taylor[:-1]):
        polynomial = _call(builder, "fma", vector, polynomial, r, constant(coefficient))
    exponent = builder.fptosi(n, integer)
    half = builder.ashr(exponent, whole(1))
    result = polynomial
    for part in (half, builder.sub(exponent, half)):
        bits = builder.shl(builder.add(part, whole(numbers.bias)), whole(numbers.mantissa_bits))
        result = builder.fmul(result, builder.bitcast(bits, vector))
    return builder.select(nan, x, result)


@intrinsic
def exp_lanes(typingctx, dst, i, src, j, shift):
    """dst[i : i + lanes] = exp(src[j : j + lanes] - shift): a polynomial on vectors (``_ExpConstants``),
    within 2 units in the last place of the exact value, subnormal results included."""

    def codegen(context, builder, signature, args):
        target, vector = _vector_at(context, builder, signature.args[0], args[0], args[1])
        source, _ = _vector_at(context, builder, signature.args[2], args[2], args[3])
        x = builder.fsub(builder.load(source, align=1), _splat(builder, vector, args[4]))
        builder.store(_exp_vector(builder, x, vector), target, align=1)
        return context.get_dummy_value()

    return types.none(dst, i, src, j, dst.dtype), codegen
