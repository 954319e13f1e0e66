"""The LLVM-IR vector intrinsics of kernels/simd.py on their own, at offsets and strides that are not
multiples of a vector, in both float types (16 and 8 lanes); the vector exponential against an exact one
over its whole range."""

import numpy as np
import pytest
from numba import njit

from kernels import simd


@njit
def _transpose(dst, i, dst_stride, src, j, src_stride):
    simd.transpose_lanes(dst, i, dst_stride, src, j, src_stride)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_transpose_lanes_writes_the_transposed_tile_and_nothing_else(dtype):
    V = simd.lanes(np.dtype(dtype))
    rng = np.random.default_rng(0)
    src = rng.standard_normal(V * 40).astype(dtype)
    dst = np.full(V * 50, np.nan, dtype)
    _transpose(dst, 3, V + 5, src, 5, V + 17)
    expected = np.full_like(dst, np.nan)
    for r in range(V):
        for c in range(V):
            expected[3 + c * (V + 5) + r] = src[5 + r * (V + 17) + c]
    np.testing.assert_array_equal(dst, expected)


@njit
def _exp(dst, i, src, j, shift, count):
    V = 64 // src.itemsize
    for k in range(0, count, V):
        simd.exp_lanes(dst, i + k, src, j + k, shift)


def _units_in_last_place(out, exact, dtype):
    """|out - exact| in units of the last place of the dtype at ``exact`` (subnormal spacing below the
    normal range), from long-double arithmetic."""
    spacing = np.spacing(np.abs(exact.astype(dtype))).astype(np.longdouble)
    return np.abs(out.astype(np.longdouble) - exact) / spacing


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_exp_lanes_is_within_two_units_in_the_last_place_everywhere(dtype):
    V, info = simd.lanes(np.dtype(dtype)), np.finfo(dtype)
    numbers = simd.EXP_CONSTANTS[info.bits]
    rng = np.random.default_rng(1)
    below, above = np.log(float(info.smallest_subnormal)), np.log(float(info.max))
    x = np.concatenate([
        rng.uniform(numbers.low - 10, numbers.high + 10, 200_000),  # beyond both clamps
        rng.uniform(below - 1, below + 1, 20_000),  # results around the smallest subnormal
        rng.uniform(np.log(float(info.tiny)) - 2, np.log(float(info.tiny)) + 2, 20_000),  # normal/subnormal edge
        rng.uniform(above - 1, above + 1, 20_000),  # around the largest finite result
        rng.uniform(-1, 1, 20_000), np.arange(-40, 41) * np.log(2),  # near 0 and at multiples of ln 2
        [0.0, -0.0, np.inf, -np.inf, np.nan, -np.nan, float(info.max), -float(info.max)],
    ]).astype(dtype)
    x = np.concatenate([x, np.zeros(-len(x) % V, dtype)])
    src = np.concatenate([np.zeros(3, dtype), x])
    dst = np.full(len(x) + 5, 7.0, dtype)
    _exp(dst, 5, src, 3, dtype(0), len(x))
    assert np.all(dst[:5] == 7.0), "exp_lanes wrote outside its vectors"
    out = dst[5:]
    with np.errstate(over="ignore", under="ignore"):
        exact = np.exp(x.astype(np.longdouble))
    nan = np.isnan(x)
    assert np.isnan(out[nan]).all()
    overflow, underflow = exact > float(info.max), exact < float(info.smallest_subnormal) / 2
    assert np.all(out[overflow] == np.inf) and np.all(out[underflow] == 0)
    rest = ~(nan | overflow | underflow)
    assert np.all(_units_in_last_place(out[rest], exact[rest], dtype) <= 2)
    # the shift is subtracted first: exp(x - shift) for a shift that is not 0
    shifted = np.empty(V * 4, dtype)
    _exp(shifted, 0, x, 0, dtype(1.5), V * 4)
    exact_shifted = np.exp(x[:V * 4].astype(np.longdouble) - dtype(1.5))
    finite = (exact_shifted < float(info.max)) & (exact_shifted > float(info.tiny))
    assert np.all(_units_in_last_place(shifted[finite], exact_shifted[finite], dtype) <= 2)


@njit
def _reductions(src, j, factor):
    V = 64 // src.itemsize
    acc = np.zeros(V + 2, src.dtype)
    simd.copy_lanes(acc, 1, src, j)
    simd.max_lanes(acc, 1, src, j + V)
    peak = simd.max_of_lanes(acc, 1)
    sums = np.zeros(V + 2, src.dtype)
    simd.add_lanes(sums, 2, src, j)
    simd.add_lanes(sums, 2, src, j + V)
    differences = np.zeros(V + 2, src.dtype)
    simd.copy_lanes(differences, 1, src, j)
    simd.sub_lanes(differences, 1, src, j + V)
    scaled = src.copy()
    simd.scale_lanes(scaled, j, factor)
    return acc, peak, sums, differences, scaled


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_max_add_sub_and_scale_lanes(dtype):
    V = simd.lanes(np.dtype(dtype))
    src = np.random.default_rng(2).standard_normal(3 * V).astype(dtype)
    acc, peak, sums, differences, scaled = _reductions(src, 3, dtype(0.5))
    first, second = src[3:3 + V], src[3 + V:3 + 2 * V]
    np.testing.assert_array_equal(acc[1:1 + V], np.maximum(first, second))
    assert acc[0] == 0 and acc[-1] == 0 and peak == np.maximum(first, second).max()
    np.testing.assert_array_equal(sums[2:], first + second)
    assert sums[0] == 0 and sums[1] == 0
    np.testing.assert_array_equal(differences[1:1 + V], first - second)
    assert differences[0] == 0 and differences[-1] == 0
    expected = src.copy()
    expected[3:3 + V] *= dtype(0.5)
    np.testing.assert_array_equal(scaled, expected)
