"""conv2d in CUDA C (``conv2d_implicit_gemm.cu``), launched through CuPy: v4-v6 (v6 the default on a GPU).

Implicit GEMM for all three passes: per group, forward is (K/groups x C/groups*R*S) @ (C/groups*R*S x
N*P*Q) with the right operand's tiles gathered from the input as they are loaded, backward_input the
same with the filters transposed and the gathered dy on the stride grid, and backward_weight (K/groups x
N*P*Q) @ (N*P*Q x C/groups*R*S) split over N*P*Q into partial products summed by a second kernel (the
output is small and the reduction long, so without the split a ResNet layer fills a handful of blocks).
v4 computes 64 x 64 tiles; v5 is the same code with the tile shaped by the GEMM's row count (16 x 256 for
up to 16 rows, 32 x 128 up to 32), so the 16- and 32-channel layers of a CIFAR ResNet stop computing rows
of zeros. v6 is v5 with each reduction index decomposed into its addressing terms once per 8-deep slab
(in shared memory, or once per thread where its loads share the index) instead of once per gathered
load. Depthwise layers go to direct kernels in the same file. Both forward kernels have a ``_relu``
instance that clamps the output in its epilogue (``activation="relu"``). The kernel source and launch
constants live in the ``.cu`` file; this module only picks tiles, computes grids and allocates. Importing
it never needs CUDA.
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
_THREADS, _DEPTH = 256, 8  # THREADS and BK of the .cu file
# (BM, BN, entry-point infix) of the tiles the .cu file instantiates: v4's square tile, v5's narrow ones
SQUARE = (64, 64, "")
NARROW = ((16, 256, "_m16"), (32, 128, "_m32"))
# an H100 has 132 SMs; two blocks of 256 threads per SM is the split target of backward_weight
_TARGET_BLOCKS = 264
_NULL = np.uint64(0)  # a null pointer argument (a missing bias): 8 bytes, like the pointer it replaces
_GEMMS = ("conv2d_forward_implicit_gemm", "conv2d_forward_implicit_gemm_relu", "conv2d_backward_input_implicit_gemm",
          "conv2d_backward_weight_implicit_gemm")
_DIRECT = ("sum_splits", "depthwise_forward", "depthwise_forward_relu", "depthwise_backward_input",
           "depthwise_backward_weight")

CUDA_SOURCES = [
    (
        SOURCE,
        [f"{kernel}{infix}{taps}_{suffix}" for suffix in ("f32", "f64") for kernel in _GEMMS
         for infix in [SQUARE[2]] + [tile[2] for tile in NARROW] for taps in ("", "_taps")]
        + [f"{kernel}_{suffix}" for suffix in ("f32", "f64") for kernel in _DIRECT],
        True,
    )
]


def tile_for(rows: int, shaped: bool) -> tuple[int, int, str]:
    """The GEMM tile (BM, BN, infix) for ``rows`` output rows: v4's 64 x 64, or with ``shaped`` (v5) the
    narrowest tile that holds the rows, 64 x 64 above 32."""
    if shaped:
        for tile in NARROW:
            if rows <= tile[0]:
                return tile
    return SQUARE


def _taps(taps: bool) -> str:
    """The entry-point infix of the kernels that decompose each reduction index once per slab (v6)."""
    return "_taps" if taps else ""


def _kernel(name, dtype):
    return raw_module(SOURCE).get_function(f"{name}_{_SUFFIX[np.dtype(dtype)]}")


def _geometry_args(g):
    """The CONV_PARAMS of the .cu file, as 32-bit ints."""
    values = (g.N, g.C, g.H, g.W, g.K, g.R, g.S, g.P, g.Q, *g.stride, *g.padding, *g.dilation, g.groups)
    return tuple(np.int32(v) for v in values)


def _depthwise(g):
    return g.groups == g.C == g.K


def _forward(x, w, b, g, activation, shaped, taps):
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
    rows, cols, infix = tile_for(g.K // g.groups, shaped)
    grid = (ceil_div(g.N * g.P * g.Q, cols), ceil_div(g.K // g.groups, rows), g.groups)
    kernel = _kernel("conv2d_forward_implicit_gemm" + epilogue + infix + _taps(taps), x.dtype)
    kernel(grid, (_THREADS,), (x, w, bias, y, *_geometry_args(g)))
    return y


def _backward_input(dy, w, g, shaped, taps):
    dy, w = contiguous(dy), contiguous(w)
    dx = empty(g.x_shape, dy.dtype, like=dy)
    if dx.size == 0:
        return dx
    if _depthwise(g):
        grid = (grid_1d(dx.size, _THREADS),)
        _kernel("depthwise_backward_input", dy.dtype)(grid, (_THREADS,), (dy, w, dx, *_geometry_args(g)))
        return dx
    rows, cols, infix = tile_for(g.C // g.groups, shaped)
    grid = (ceil_div(g.N * g.H * g.W, cols), ceil_div(g.C // g.groups, rows), g.groups)
    kernel = _kernel("conv2d_backward_input_implicit_gemm" + infix + _taps(taps), dy.dtype)
    kernel(grid, (_THREADS,), (dy, w, dx, *_geometry_args(g)))
    return dx


def weight_splits(g, tile=SQUARE) -> tuple[int, int]:
    """(splits, chunk): N*P*Q cut into ``splits`` runs of ``chunk`` (a multiple of the tile depth) so the
    grid of ``tile``s reaches about two blocks per SM, each run at least 32 tile steps long."""
    rows, cols, _ = tile
    depth, reduction = (g.C // g.groups) * g.R * g.S, g.N * g.P * g.Q
    tiles = g.groups * ceil_div(g.K // g.groups, rows) * ceil_div(depth, cols)
    splits = max(1, min(ceil_div(_TARGET_BLOCKS, tiles), reduction // (32 * _DEPTH)))
    chunk = ceil_div(ceil_div(reduction, splits), _DEPTH) * _DEPTH
    return ceil_div(reduction, chunk), chunk


def _backward_weight(dy, x, g, shaped, taps):
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
    tile = tile_for(g.K // g.groups, shaped)
    rows, cols, infix = tile
    splits, chunk = weight_splits(g, tile)
    partial = dw if splits == 1 else empty((splits,) + g.w_shape, dy.dtype, like=dy)
    grid = (ceil_div(dw[0].size, cols), ceil_div(g.K // g.groups, rows), g.groups * splits)
    kernel = _kernel("conv2d_backward_weight_implicit_gemm" + infix + _taps(taps), dy.dtype)
    kernel(grid, (_THREADS,), (dy, x, partial, np.int32(chunk), *args))
    if splits > 1:
        _kernel("sum_splits", dy.dtype)(
            (grid_1d(dw.size, _THREADS),), (_THREADS,), (partial, dw, np.int32(dw.size), np.int32(splits))
        )
    return dw


@register("conv2d_forward", "cupy", "v4_implicit_gemm", device="cuda")
@fuses("relu")
def forward_implicit_gemm(x, w, b, g, activation=None):
    """Implicit GEMM: 64x64 tiles, 4x4 register blocks, the input gathered into shared memory on the fly."""
    return _forward(x, w, b, g, activation, shaped=False, taps=False)


@register("conv2d_backward_input", "cupy", "v4_implicit_gemm", device="cuda")
def backward_input_implicit_gemm(dy, w, g):
    """Implicit GEMM of the transposed filters with dy gathered on the stride grid (zeros between steps)."""
    return _backward_input(dy, w, g, shaped=False, taps=False)


@register("conv2d_backward_weight", "cupy", "v4_implicit_gemm", device="cuda")
def backward_weight_implicit_gemm(dy, x, g):
    """Implicit GEMM over N*P*Q, split into partial products for parallelism and summed deterministically."""
    return _backward_weight(dy, x, g, shaped=False, taps=False)


@register("conv2d_forward", "cupy", "v5_implicit_gemm_shaped", device="cuda")
@fuses("relu")
def forward_implicit_gemm_shaped(x, w, b, g, activation=None):
    """v4 with the tile shaped by the output channels per group: 16x256 up to 16, 32x128 up to 32, else 64x64."""
    return _forward(x, w, b, g, activation, shaped=True, taps=False)


@register("conv2d_backward_input", "cupy", "v5_implicit_gemm_shaped", device="cuda")
def backward_input_implicit_gemm_shaped(dy, w, g):
    """v4 with the tile shaped by the input channels per group: 16x256 up to 16, 32x128 up to 32, else 64x64."""
    return _backward_input(dy, w, g, shaped=True, taps=False)


@register("conv2d_backward_weight", "cupy", "v5_implicit_gemm_shaped", device="cuda")
def backward_weight_implicit_gemm_shaped(dy, x, g):
    """v4 with the tile shaped by the output channels per group, the split recomputed for that tile."""
    return _backward_weight(dy, x, g, shaped=True, taps=False)


@register("conv2d_forward", "cupy", "v6_implicit_gemm_taps", device="cuda", default=True)
@fuses("relu")
def forward_implicit_gemm_taps(x, w, b, g, activation=None):
    """v5 with each reduction index decomposed once per slab (no integer division per gathered load)."""
    return _forward(x, w, b, g, activation, shaped=True, taps=True)


@register("conv2d_backward_input", "cupy", "v6_implicit_gemm_taps", device="cuda", default=True)
def backward_input_implicit_gemm_taps(dy, w, g):
    """v5 with each reduction index decomposed once per slab (no integer division per gathered load)."""
    return _backward_input(dy, w, g, shaped=True, taps=True)


@register("conv2d_backward_weight", "cupy", "v6_implicit_gemm_taps", device="cuda", default=True)
def backward_weight_implicit_gemm_taps(dy, x, g):
    """v5 with each reduction index decomposed once per slab (no integer division per gathered load)."""
    return _backward_weight(dy, x, g, shaped=True, taps=True)
