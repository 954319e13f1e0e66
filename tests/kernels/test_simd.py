"""The LLVM-IR vector intrinsics of kernels/conv2d/simd.py on their own, at offsets and strides that are not
multiples of a vector, in both float types (16 and 8 lanes)."""

import numpy as np
import pytest
from numba import njit

from kernels.conv2d import simd


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
