"""conv2d in CUDA C (``conv2d_implicit_gemm.cu``), launched through CuPy: v4, the default on a GPU.

Implicit GEMM for all three passes: per group, forward is (K/groups x C/groups*R*S) @ (C/groups*R*S x
N*P*Q) with the right operand's tiles gathered from the input as they are loaded, backward_input the
same with the filters transposed and the gathered dy on the stride grid, and backward_weight (K/groups x
N*P*Q) @ (N*P*Q x C/groups*R*S) split over N*P*Q into partial products summed by a second kernel (the
output is small and the reduction long, so without the split a ResNet layer fills a handful of blocks).
Depthwise layers go to direct kernels in the same file. Both forward kernels have a ``_relu`` instance that
clamps the output in its epilogue (``activation="relu"``). The kernel source and launch constants live in
the ``.cu`` file; this module only computes grids and allocates. Importing it never needs CUDA.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from kernels.conv2d.epilogue import fuses
from kernels.cuda_tools import ceil_div, contiguous, grid_1d, raw_module
from kernels.device_arrays import empty
from kernels.registry import register

SOURCE = Path(__file__).with_name("conv2d_implicit_gemm.cu")
_SUFFIX = {np.dtype(np.float32): "f32", np.dtype(np.float64): "f64"}
_TILE, _THREADS, _DEPTH = 64, 256, 8  # BM = BN, THREADS and BK of the .cu file
# an H100 has 132 SMs; two blocks of 256 threads per SM is the split target of backward_weight
_TARGET_BLOCKS = 264
_NULL = np.uint64(0)  # a null pointer argument (a missing bias): 8 bytes, like the pointer it replaces

CUDA_SOURCES = [
    (
        SOURCE,
        [
            f"{kernel}_{suffix}"
            for suffix in ("f32", "f64")
            for kernel in (
                "conv2d_forward_implicit_gemm",
                "conv2d_forward_implicit_gemm_relu",
                "conv2d_backward_input_implicit_gemm",
                "conv2d_backward_weight_implicit_gemm",
                "sum_splits",
                "depthwise_forward",
                "depthwise_forward_relu",
                "depthwise_backward_input",
                "depthwise_backward_weight",
            )
        ],
        True,
    )
]


def _kernel(name, dtype):
    return raw_module(SOURCE).get_function(f"{name}_{_SUFFIX[np.dtype(dtype)]}")


def _geometry_args(g):
    """The CONV_PARAMS of the .cu file, as 32-bit ints."""
    values = (g.N, g.C, g.H, g.W, g.K, g.R, g.S, g.P, g.Q, *g.stride, *g.padding, *g.dilation, g.groups)
    return tuple(np.int32(v) for v in values)


def _depthwise(g):
    return g.groups == g.C == g.K


@register("conv2d_forward", "cupy", "v4_implicit_gemm", device="cuda", default=True)
@fuses("relu")
def forward_implicit_gemm(x, w, b, g, activation=None):
    """Implicit GEMM: 64x64 tiles, 4x4 register blocks, the input gathered into shared memory on the fly."""
    x, w = contiguous(x), contiguous(w)
    bias = _NULL if b is None else contiguous(b)
    epilogue = "_relu" if activation == "relu" else ""
    y = empty(g.y_shape, x.dtype, like=x)
    if y.size == 0:
        return y
    if _depthwise(g):
        grid = (grid_1d(y.size, _THREADS),)
        _kernel("depthwise_forward" + epilogue, x.dtype)(grid, (_THREADS,), (x, w, bias, y, *_geometry_args(g)))
        return y
    grid = (ceil_div(g.N * g.P * g.Q, _TILE), ceil_div(g.K // g.groups, _TILE), g.groups)
    kernel = _kernel("conv2d_forward_implicit_gemm" + epilogue, x.dtype)
    kernel(grid, (_THREADS,), (x, w, bias, y, *_geometry_args(g)))
    return y


@register("conv2d_backward_input", "cupy", "v4_implicit_gemm", device="cuda", default=True)
def backward_input_implicit_gemm(dy, w, g):
    """Implicit GEMM of the transposed filters with dy gathered on the stride grid (zeros between steps)."""
    dy, w = contiguous(dy), contiguous(w)
    dx = empty(g.x_shape, dy.dtype, like=dy)
    if dx.size == 0:
        return dx
    if _depthwise(g):
        grid = (grid_1d(dx.size, _THREADS),)
        _kernel("depthwise_backward_input", dy.dtype)(grid, (_THREADS,), (dy, w, dx, *_geometry_args(g)))
        return dx
    grid = (ceil_div(g.N * g.H * g.W, _TILE), ceil_div(g.C // g.groups, _TILE), g.groups)
    _kernel("conv2d_backward_input_implicit_gemm", dy.dtype)(grid, (_THREADS,), (dy, w, dx, *_geometry_args(g)))
    return dx


def weight_splits(g) -> tuple[int, int]:
    """(splits, chunk): N*P*Q cut into ``splits`` runs of ``chunk`` (a multiple of the tile depth) so the
    grid reaches about two blocks per SM, each run at least 32 tile steps long."""
    depth, reduction = (g.C // g.groups) * g.R * g.S, g.N * g.P * g.Q
    tiles = g.groups * ceil_div(g.K // g.groups, _TILE) * ceil_div(depth, _TILE)
    splits = max(1, min(ceil_div(_TARGET_BLOCKS, tiles), reduction // (32 * _DEPTH)))
    chunk = ceil_div(ceil_div(reduction, splits), _DEPTH) * _DEPTH
    return ceil_div(reduction, chunk), chunk


@register("conv2d_backward_weight", "cupy", "v4_implicit_gemm", device="cuda", default=True)
def backward_weight_implicit_gemm(dy, x, g):
    """Implicit GEMM over N*P*Q, split into partial products for parallelism and summed deterministically."""
    dy, x = contiguous(dy), contiguous(x)
    dw = empty(g.w_shape, dy.dtype, like=dy)
    args = _geometry_args(g)
    if dw.size == 0:  # no channels: nothing to launch (and no tiles to split the reduction over)
        return dw
    if g.N * g.P * g.Q == 0:
        dw[...] = 0
        return dw
    if _depthwise(g):
        _kernel("depthwise_backward_weight", dy.dtype)((dw.size,), (_THREADS,), (dy, x, dw, *args))
        return dw
    splits, chunk = weight_splits(g)
    partial = dw if splits == 1 else empty((splits,) + g.w_shape, dy.dtype, like=dy)
    grid = (ceil_div(dw[0].size, _TILE), ceil_div(g.K // g.groups, _TILE), g.groups * splits)
    kernel = _kernel("conv2d_backward_weight_implicit_gemm", dy.dtype)
    kernel(grid, (_THREADS,), (dy, x, partial, np.int32(chunk), *args))
    if splits > 1:
        _kernel("sum_splits", dy.dtype)(
            (grid_1d(dw.size, _THREADS),), (_THREADS,), (partial, dw, np.int32(dw.size), np.int32(splits))
        )
    return dw
