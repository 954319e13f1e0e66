"""CPU conv2d v3: Winograd's minimal filtering F(2x2, 3x3) for 3x3 filters at stride 1 and dilation 1.

A 2x2 block of outputs of a 3x3 correlation needs 36 multiplies when computed directly; Winograd's algorithm
(Lavin and Gray, 2015) gets the same four numbers from 16, at the price of cheap linear transforms before and
after. With d a 4x4 tile of the padded input and g one 3x3 filter,

    y = A^T [ (G g G^T) * (B^T d B) ] A           (* elementwise; 2x2 outputs)

    B^T = [1  0 -1  0]    G = [ 1    0    0 ]    A^T = [1  1  1  0]
          [0  1  1  0]        [1/2  1/2  1/2]          [0  1 -1 -1]
          [0 -1  1  0]        [1/2 -1/2  1/2]
          [0  1  0 -1]        [ 0    0    1 ]

Summed over input channels, each of the 16 elements xi of the transformed tile is a GEMM over the channels:

    V[xi, c, t] = (B^T d B)[xi] of tile t of channel c      (t runs over images x tile rows x tile columns)
    U[xi, k, c] = (G g G^T)[xi] of filter (k, c)
    M[xi]       = U[xi] @ V[xi]                            (K x C times C x T: 16 GEMMs)
    y tile      = A^T M[:, k, t] A

so the GEMMs do 16 multiply-adds per 2x2 outputs and channel pair where im2col's does 36: 2.25x fewer, and
fewer still against padded small planes, since a tile's transform costs the same whether or not it touches the
border. The transforms are Numba loops, two passes of additions over 4 values each.

The backward passes are the same machinery:
    backward_input:  dx is the forward convolution of dy, padded by 2 - padding, with the flipped, transposed
                     filters. Flipping a filter permutes its transform (rows and columns 0 <-> 3), so
                     dM[xi] = U[flip xi]^T @ V_dy[xi] reuses the forward's U.
    backward_weight: dU[xi] = dM[xi] @ V[xi]^T with dM = A dy A^T per tile (the transpose of the output
                     transform), then dw = G^T dU G per filter (the transpose of the filter transform).
Both are exact gradients of the forward's arithmetic, and in exact arithmetic the forward is the convolution.

Rounding: the transforms add and subtract up to 9 numbers, so the error is a few times im2col's; measured on
VGG-11's layers in kernels/conv2d/README.md ("Winograd"). Other geometries (any other filter size, a stride,
a dilation; backward_input with padding over 2) run numpy.v0_im2col.

Work is split into chunks of images whose V and M fit CHUNK_BYTES; inside a chunk the transforms are spread
over threads by images and the 16 GEMMs by xi, with the BLAS held to one thread (as in ``numpy.py``).
"""

from __future__ import annotations

import functools
import threading
from math import ceil
from pathlib import Path

import numba
import numpy as np

from kernels import blas, cache
from kernels.conv2d import numpy as v0
from kernels.conv2d.epilogue import fuses
from kernels.registry import register

# Bytes of V and M (the transformed input and the GEMMs' output) per chunk of images, both reused buffers.
CHUNK_BYTES = 48 << 20
# Each thread's scratch arrays (``_scratch``).
_local = threading.local()
# Filter flip on the transformed tile's rows and columns: 0 <-> 3, 1 and 2 stay.
_FLIP = np.array([(3 - a if a in (0, 3) else a) * 4 + (3 - b if b in (0, 3) else b)
                  for a in range(4) for b in range(4)])


def applies(g, backward_input=False):
    """Whether v3 runs this geometry itself: a 3x3 filter, stride 1, dilation 1 (and for backward_input
    padding of at most 2, the padding of its own forward being 2 - padding)."""
    if (g.R, g.S) != (3, 3) or g.stride != (1, 1) or g.dilation != (1, 1):
        return False
    return not backward_input or max(g.padding) <= 2


def gemm_rows(g, backward_input=False):
    """Rows of a pass's 16 GEMMs (``_Run.tiles`` per image, times the images): the 2x2 tiles of its output,
    y or (backward_input) dx, over the batch."""
    rows, cols = (g.H, g.W) if backward_input else (g.P, g.Q)
    return g.N * ceil(rows / 2) * ceil(cols / 2)


@functools.lru_cache(maxsize=1)
def tiles():
    """The transforms (``winograd_tiles.py``), compiled once per process and cached on disk."""
    path = Path(__file__).with_name("winograd_tiles.py")
    return cache.load_module("conv2d_winograd_tiles", path.read_text(), "conv2d winograd_tiles")


class _Run:
    """Tile counts, chunks of images and the threads of one pass, and its scratch."""

    def __init__(self, g, out_rows, out_cols, in_channels, out_channels, dtype):
        self.TP, self.TQ = ceil(out_rows / 2), ceil(out_cols / 2)
        self.grid, self.tiles = (self.TP, self.TQ), self.TP * self.TQ
        per_image = 16 * self.tiles * (in_channels + out_channels) * dtype.itemsize
        chunks = ceil(g.N / max(1, CHUNK_BYTES // per_image))
        self.chunk = max(1, ceil(g.N / max(1, chunks)))  # as even as whole images allow
        self.parts = numba.get_num_threads() if g.flops >= v0.PARALLEL_MIN_FLOPS else 1
        self.dtype, self.half = dtype, dtype.type(0.5)
        self.gemm = blas.gemm(dtype)
        self.one, self.zero = dtype.type(1), dtype.type(0)

    def chunks(self, N):
        return [(start, min(start + self.chunk, N)) for start in range(0, N, self.chunk)]

    def buffer(self, name, channels):
        """A (16, chunk * tiles, channels) view of this thread's scratch ``name`` (V or M)."""
        return _scratch(name, (16, self.chunk * self.tiles, channels), self.dtype)

    def images(self, name, source, top=None, left=None):
        """Zeroed channels-last scratch, one row per part, for one image of ``source`` (NCHW) each: padded
        by (top, left) into (2 TP + 2) x (2 TQ + 2) tiles' worth for the input transform, or the 2 TP x 2 TQ
        grid of the tiles' outputs if no padding is given. Its key fixes the region the kernels write."""
        rows, cols = 2 * self.TP, 2 * self.TQ
        if top is not None:
            rows, cols = rows + 2, cols + 2
        key = ("winograd image", name, source.shape[1:], top, left, self.TP, self.TQ)
        return v0._buffer(key, (self.parts, rows * cols * source.shape[1]), self.dtype)


def _scratch(name, shape, dtype):
    """A C-contiguous ``shape`` view of the calling thread's flat scratch ``name``, grown when too small: one
    array per name whatever the layer, so a network's scratch is its largest layer's, not the sum of them
    all. Its contents are left over from earlier calls."""
    arrays = getattr(_local, "arrays", None)
    if arrays is None:
        arrays = _local.arrays = {}
    key, size = (name, np.dtype(dtype).str), int(np.prod(shape))
    array = arrays.get(key)
    if array is None or array.size < size:
        array = arrays[key] = np.empty(size, dtype)
    return array[:size].reshape(shape)


def _grouped(matrix, groups):
    """(rows, columns) -> (groups, rows, columns / groups): each group's columns, a view."""
    return matrix.reshape(matrix.shape[0], groups, -1).transpose(1, 0, 2)


def _filters(w, run):
    """U (16, K, C/groups) of the weight w (K, C/groups, 3, 3)."""
    U = _scratch("U", (16,) + w.shape[:2], w.dtype)
    tiles().filters_parallel(w, U, run.half, run.parts)
    return U


# Where NumPy's BLAS is not an OpenBLAS (no CBLAS pointer for the threads to call), the 16 GEMMs run as
# NumPy matmuls in turn, each on one thread.

def _gemms_forward(run, V, U, M, T, groups):
    if run.gemm is not None:
        return tiles().gemms_forward(V, U, M, T, groups, run.gemm, run.one, run.zero)
    for xi in range(16):
        right = U[xi].reshape(groups, -1, U.shape[2]).transpose(0, 2, 1)
        np.matmul(_grouped(V[xi, :T], groups), right, out=_grouped(M[xi, :T], groups))


def _gemms_backward_input(run, V, U, M, T, groups):
    if run.gemm is not None:
        return tiles().gemms_backward_input(V, U, M, T, groups, _FLIP, run.gemm, run.one, run.zero)
    for xi in range(16):
        right = U[_FLIP[xi]].reshape(groups, -1, U.shape[2])
        np.matmul(_grouped(V[xi, :T], groups), right, out=_grouped(M[xi, :T], groups))


def _gemms_backward_weight(run, dM, V, dU, T, groups, accumulate):
    if run.gemm is not None:
        beta = run.one if accumulate else run.zero
        return tiles().gemms_backward_weight(dM, V, dU, T, groups, run.gemm, run.one, beta)
    for xi in range(16):
        left, right = _grouped(dM[xi, :T], groups).transpose(0, 2, 1), _grouped(V[xi, :T], groups)
        out = dU[xi].reshape(groups, -1, dU.shape[2])
        if accumulate:
            out += np.matmul(left, right)
        else:
            np.matmul(left, right, out=out)


@register("conv2d_forward", "numpy", "v3_winograd")
@fuses("relu")
def conv2d_forward(x, w, b, g, activation=None):
    """Winograd F(2x2, 3x3): input and filter transforms, 16 BLAS GEMMs over the channels, output transform;
    3x3 stride 1 dilation 1 only, v0 otherwise."""
    if not applies(g):
        return v0.conv2d_forward(x, w, b, g, activation)
    dtype, x, w = x.dtype, v0._operand(x), v0._operand(w)
    bias = np.zeros(g.K, x.dtype) if b is None else v0._operand(b).astype(x.dtype, copy=False)
    y = np.empty(g.y_shape, x.dtype)
    run = _Run(g, g.P, g.Q, g.C, g.K, x.dtype)
    inputs, outputs = run.images("input", x, *g.padding), run.images("output", y)
    with blas.one_thread():
        U, V, M = _filters(w, run), run.buffer("V", g.C), run.buffer("M", g.K)
        for first, last in run.chunks(g.N):
            tiles().inputs_parallel(x, first, last, *g.padding, *run.grid, V, inputs)
            _gemms_forward(run, V, U, M, (last - first) * run.tiles, g.groups)
            tiles().outputs_parallel(M, bias, y, first, last, *run.grid, activation == "relu", outputs)
    return y.astype(dtype, copy=False)


@register("conv2d_backward_input", "numpy", "v3_winograd")
def conv2d_backward_input(dy, w, g):
    """The forward's Winograd on dy padded by 2 - padding, with the forward's U flipped and transposed;
    v0 where the forward would not apply or the padding exceeds 2."""
    if not applies(g, backward_input=True):
        return v0.conv2d_backward_input(dy, w, g)
    dtype, dy, w = dy.dtype, v0._operand(dy), v0._operand(w)
    dx = np.empty(g.x_shape, dy.dtype)
    run = _Run(g, g.H, g.W, g.K, g.C, dy.dtype)
    top, left = 2 - g.padding[0], 2 - g.padding[1]
    inputs, outputs = run.images("input", dy, top, left), run.images("output", dx)
    zero = np.zeros(g.C, dy.dtype)
    with blas.one_thread():
        U, V, M = _filters(w, run), run.buffer("V_grad", g.K), run.buffer("M_grad", g.C)
        for first, last in run.chunks(g.N):
            tiles().inputs_parallel(dy, first, last, top, left, *run.grid, V, inputs)
            _gemms_backward_input(run, V, U, M, (last - first) * run.tiles, g.groups)
            tiles().outputs_parallel(M, zero, dx, first, last, *run.grid, False, outputs)
    return dx.astype(dtype, copy=False)


@register("conv2d_backward_weight", "numpy", "v3_winograd")
def conv2d_backward_weight(dy, x, g):
    """dU[xi] = dM[xi]^T @ V[xi] summed over chunks of images (dM: dy through the output transform's
    transpose), then dw = G^T dU G; 3x3 stride 1 dilation 1 only, v0 otherwise."""
    if not applies(g):
        return v0.conv2d_backward_weight(dy, x, g)
    dtype, dy, x = dy.dtype, v0._operand(dy), v0._operand(x)
    if g.N == 0:
        return np.zeros(g.w_shape, dtype)
    run = _Run(g, g.P, g.Q, g.C, g.K, dy.dtype)
    inputs, grads = run.images("input", x, *g.padding), run.images("grad", dy)
    dw = np.empty(g.w_shape, dy.dtype)
    with blas.one_thread():
        V, dM = run.buffer("V", g.C), run.buffer("M", g.K)
        dU = _scratch("dU", (16, g.K, g.C // g.groups), dy.dtype)
        for first, last in run.chunks(g.N):
            tiles().inputs_parallel(x, first, last, *g.padding, *run.grid, V, inputs)
            tiles().grads_parallel(dy, first, last, *run.grid, dM, grads, -2 * run.half)
            _gemms_backward_weight(run, dM, V, dU, (last - first) * run.tiles, g.groups, accumulate=first > 0)
        tiles().gradient_parallel(dU, dw, run.half, run.parts)
    return dw.astype(dtype, copy=False)
