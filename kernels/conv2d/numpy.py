"""CPU conv2d: im2col + BLAS GEMM over batch blocks whose column matrix stays in L2 while the GEMM reads it.

The input is split into stride *phases*: phase (a, b) holds the zero-padded input at rows a, a+sh, ... and
columns b, b+sw, ... (for stride 1 there is one phase, the padded image). Every filter tap (r, s) then reads
a stride-1 window of one phase, so a row of the column matrix is copied without per-element index math or
padding tests. When the phase width ``Wph`` is close to Q, the output is computed on the phase's full
width (the ``Wph - Q`` extra columns are dropped afterwards): the window of a whole output plane is then
ONE contiguous run of the flattened phase. When the extra columns would cost more GEMM work than the long
runs save (``Wph > 1.15 Q``, small images), the grid keeps Q columns and each output row is its own run.

Layouts of one batch block of ``nb`` images (``L = P * pitch`` output positions, pitch Wph or Q):
  planes  (sh*sw, nb, C, (Hph+1) * Wph)  the input's phases, borders zero
  cols    (C*R*S, nb, L)                 column matrix, rows ordered (c, r, s) like the weight
  wide    (K, nb, L)                     output or output gradient on the grid, extra columns zero

    forward          cols = im2col(phases(x));  wide = W @ cols;  y = narrow(wide) + b
    backward_input   wide = widen(dy);  cols = W^T @ wide;  dx = col2im(cols)
    backward_weight  cols as in forward;  wide = widen(dy);  dw^T = sum over blocks of cols @ wide^T
    1x1, stride 1, no padding: x itself is the column matrix, one GEMM per image.

The GEMMs are NumPy's (OpenBLAS); every copy is a small Numba kernel: their runs (a row of W, Q or Wph
elements) are too short for NumPy's per-run overhead. Scratch buffers are reused between calls, one set
per thread; the arrays returned are always fresh.

Threads: the GEMMs here are too small for the BLAS's own threads to pay off, and the copies between them
would run on one core. So the batch blocks of a convolution of PARALLEL_MIN_FLOPS or more are spread over as
many Python threads as the BLAS may use (the kernels and the GEMMs release the GIL); smaller ones run their
blocks in turn. Either way the BLAS is held to one thread meanwhile (``kernels.blas.one_thread``, about 2 us
to set and lift), so its workers are never woken: after a threaded call they spin for a long while and would
slow the Numba kernels of the next layers (``kernels/blas.py``).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from math import ceil

import numpy as np
from numba import njit, uint64

from kernels import blas
from kernels.conv2d.epilogue import fuses
from kernels.registry import register

# Column-matrix bytes per batch block: the copy fills it and the GEMM reads it while it is still in L2.
BLOCK_BYTES = 1 << 20
# ... unless the weights are large: every block's GEMM streams the whole weight matrix, so a block's column
# matrix grows to twice the weights' bytes, up to this (a 512-channel 3x3 layer: 9.4 MB of weights)
MAX_BLOCK_BYTES = 16 << 20
# Forward FLOPs from which the blocks are spread over threads: below it the thread hand-off (60-80 us on a
# 2-core VM, waking an idle core) costs more than the second core gains.
PARALLEL_MIN_FLOPS = 20e6
# Largest ratio Wph / Q for which the output grid keeps the phase width.
WIDE_GRID_LIMIT = 1.15
# Scratch buffers kept per thread (least recently used dropped first): a few per distinct layer shape.
MAX_BUFFERS = 48

_local = threading.local()


def _buffer(key, shape, dtype):
    """A zero-initialised scratch array owned by this thread, reused by every call with the same key.

    Buffers whose borders must stay zero are only ever written in the same interior region, so their key
    names everything that fixes that region.
    """
    cache = getattr(_local, "buffers", None)
    if cache is None:
        cache = _local.buffers = OrderedDict()
    key = (key, tuple(shape), np.dtype(dtype).str)
    array = cache.get(key)
    if array is None:
        array = cache[key] = np.zeros(shape, dtype)
        if len(cache) > MAX_BUFFERS:
            cache.popitem(last=False)
    else:
        cache.move_to_end(key)
    return array


# The kernels index flat arrays with unsigned integers: Numba then omits its negative-index wraparound
# check, which otherwise keeps LLVM from vectorising the inner loops.


@njit(cache=True, nogil=True)
def _valid_range(offset, stride, size, count):
    """Output indices i in [0, count) whose input index i*stride + offset lies in [0, size)."""
    first = 0 if offset >= 0 else (stride - 1 - offset) // stride
    last = (size - 1 - offset) // stride + 1 if size - 1 - offset >= 0 else 0
    first = min(first, count)
    return first, max(min(last, count), first)


@njit(cache=True, nogil=True)
def _fill_planes(x, start, nb, planes, sh, sw, ph, pw, Hph, Wph):
    """planes[a*sw + b, i, c, u*Wph + v] = x[start + i, c, u*sh + a - ph, v*sw + b - pw] inside x."""
    _, C, H, W = x.shape
    source, target = x.reshape(-1), planes.reshape(-1)
    plane = planes.shape[3]
    for i in range(nb):
        for c in range(C):
            image = ((start + i) * C + c) * H * W
            for a in range(sh):
                u0, u1 = _valid_range(a - ph, sh, H, Hph)
                for b in range(sw):
                    v0, v1 = _valid_range(b - pw, sw, W, Wph)
                    base = ((a * sw + b) * planes.shape[1] + i) * C + c
                    for u in range(u0, u1):
                        row_in = image + (u * sh + a - ph) * W + b - pw
                        row_out = base * plane + u * Wph
                        for v in range(v0, v1):
                            target[uint64(row_out + v)] = source[uint64(row_in + v * sw)]


@njit(cache=True, nogil=True)
def _im2col(x, start, nb, planes, cols, R, S, sh, sw, ph, pw, dh, dw, P, Q, pitch, Wph):
    """Fill the phases of images ``start:start+nb``, then copy every tap's window into its row of cols."""
    Hph = planes.shape[3] // Wph - 1
    _fill_planes(x, start, nb, planes, sh, sw, ph, pw, Hph, Wph)
    C, L = x.shape[1], P * pitch
    source, target = planes.reshape(-1), cols.reshape(-1)
    for c in range(C):
        for r in range(R):
            for s in range(S):
                phase = (r * dh % sh) * sw + s * dw % sw
                shift = (r * dh // sh) * Wph + s * dw // sw
                row = ((c * R + r) * S + s) * cols.shape[1]
                for i in range(nb):
                    run_in = ((phase * planes.shape[1] + i) * C + c) * planes.shape[3] + shift
                    run_out = (row + i) * L
                    if pitch == Wph:  # the whole window is one run
                        for k in range(L):
                            target[uint64(run_out + k)] = source[uint64(run_in + k)]
                    else:
                        for p in range(P):
                            for q in range(Q):
                                target[uint64(run_out + p * Q + q)] = source[uint64(run_in + p * Wph + q)]


@njit(cache=True, nogil=True)
def _narrow(wide, bias, y, start, nb, pitch, relu):
    """y[start + i, k, p, q] = wide[k, i, p*pitch + q] + bias[k], clamped at 0 if ``relu``."""
    _, K, P, Q = y.shape
    source, target = wide.reshape(-1), y.reshape(-1)
    for i in range(nb):
        for k in range(K):
            row_in = (k * wide.shape[1] + i) * wide.shape[2]
            row_out = ((start + i) * K + k) * P * Q
            shift = bias[k]
            for p in range(P):
                for q in range(Q):
                    v = source[uint64(row_in + p * pitch + q)] + shift
                    if relu and v < 0:  # a comparison, so NaN stays NaN; storing 0 keeps v in y's type
                        target[uint64(row_out + p * Q + q)] = 0
                    else:
                        target[uint64(row_out + p * Q + q)] = v


@njit(cache=True, nogil=True)
def _widen(dy, start, nb, wide, pitch):
    """wide[k, i, p*pitch + q] = dy[start + i, k, p, q]; the extra columns are left as they are (zero)."""
    _, K, P, Q = dy.shape
    source, target = dy.reshape(-1), wide.reshape(-1)
    for k in range(K):
        for i in range(nb):
            row_in = ((start + i) * K + k) * P * Q
            row_out = (k * wide.shape[1] + i) * wide.shape[2]
            for p in range(P):
                for q in range(Q):
                    target[uint64(row_out + p * pitch + q)] = source[uint64(row_in + p * Q + q)]


@njit(cache=True, nogil=True)
def _col2im(cols, dx, start, nb, R, S, sh, sw, ph, pw, dh, dw, P, Q, pitch):
    """dx[start + i, c, p*sh + r*dh - ph, q*sw + s*dw - pw] += cols[(c, r, s), i, p*pitch + q] inside dx."""
    _, C, H, W = dx.shape
    source, target = cols.reshape(-1), dx.reshape(-1)
    for i in range(nb):
        for c in range(C):
            image = ((start + i) * C + c) * H * W
            for r in range(R):
                p0, p1 = _valid_range(r * dh - ph, sh, H, P)
                for s in range(S):
                    q0, q1 = _valid_range(s * dw - pw, sw, W, Q)
                    row = (((c * R + r) * S + s) * cols.shape[1] + i) * cols.shape[2]
                    for p in range(p0, p1):
                        row_in = row + p * pitch
                        row_out = image + (p * sh + r * dh - ph) * W + s * dw - pw
                        for q in range(q0, q1):
                            target[uint64(row_out + q * sw)] += source[uint64(row_in + q)]


class _Plan:
    """Phase sizes, output grid, batch blocking and scratch buffers of one geometry and dtype."""

    def __init__(self, g, dtype, workers):
        (sh, sw), (dh, dw) = g.stride, g.dilation
        self.g, self.dtype = g, dtype
        self.Hph = g.P + (g.R - 1) * dh // sh
        self.Wph = g.Q + (g.S - 1) * dw // sw
        self.pitch = self.Wph if self.Wph <= WIDE_GRID_LIMIT * g.Q else g.Q
        self.L = g.P * self.pitch
        per_image = g.C * g.R * g.S * self.L * dtype.itemsize
        weights = g.K * (g.C // g.groups) * g.R * g.S * dtype.itemsize
        budget = min(MAX_BLOCK_BYTES, max(BLOCK_BYTES, 2 * weights))
        self.nb = max(1, min(ceil(g.N / workers), budget // per_image))
        self.args = (g.R, g.S) + g.stride + g.padding + g.dilation + (g.P, g.Q, self.pitch)
        self.key = (g.C, g.H, g.W, g.R, g.S, g.stride, g.padding, g.dilation, self.nb)

    def im2col(self, x, start, nb):
        """The column matrix of images ``start:start+nb`` (a reused buffer, valid until the next call)."""
        g = self.g
        sh, sw = g.stride
        # one spare row: the last tap's slice runs past the used rows by its column shift
        planes = _buffer(("planes",) + self.key, (sh * sw, self.nb, g.C, (self.Hph + 1) * self.Wph), self.dtype)
        cols = self.cols()
        _im2col(x, start, nb, planes, cols, *self.args, self.Wph)
        return cols

    def cols(self):
        g = self.g
        return _buffer("cols", (g.C * g.R * g.S, self.nb, self.L), self.dtype)

    def wide(self):
        return _buffer("wide", (self.g.K, self.nb, self.L), self.dtype)

    def widen(self, dy, start, nb):
        """dy of images ``start:start+nb`` on the wide grid, its extra columns zero."""
        wide = _buffer(("wide_grad",) + self.key, (self.g.K, self.nb, self.L), self.dtype)
        _widen(dy, start, nb, wide, self.pitch)
        return wide


def _grouped(matrix, groups, nb):
    """(rows, nbmax, L) -> (groups, rows/groups, nb*L): the first nb images of each group's rows, a view."""
    return matrix[:, :nb].reshape(groups, matrix.shape[0] // groups, nb * matrix.shape[2])


def _operand(array):
    """C-contiguous float32 or float64: the compiled kernels index flat memory and know these two types."""
    if array.dtype in (np.float32, np.float64):
        return np.ascontiguousarray(array)
    return np.ascontiguousarray(array, np.float32 if array.itemsize < 4 else np.float64)


def _is_pointwise(g):
    return g.R == g.S == 1 and g.stride == (1, 1) and g.padding == (0, 0)


class _Threads:
    """The worker pool and the process-wide one-thread BLAS limit while blocks run in parallel."""

    def __init__(self):
        self.lock = threading.Lock()
        self.pool = None
        self.pool_size = 0

    def workers(self, g):
        """Threads for convolution g: the BLAS's thread count for large ones (1 without OpenBLAS)."""
        if g.flops < PARALLEL_MIN_FLOPS:
            return 1
        return blas.threads()

    def map(self, work, N, nb, workers):
        """[work(start, stop) for each batch block], blocks handed out to ``workers`` threads as they free up."""
        blocks = [(start, min(start + nb, N)) for start in range(0, N, nb)]
        workers = min(workers, len(blocks))
        if workers <= 1:
            with blas.one_thread():
                return [work(start, stop) for start, stop in blocks]
        results = [None] * len(blocks)
        queue = iter(range(len(blocks)))  # next() on a range iterator is atomic under the GIL

        def drain():
            for index in queue:
                results[index] = work(*blocks[index])

        with blas.one_thread():
            with self.lock:
                if self.pool_size < workers - 1:
                    self.pool = ThreadPoolExecutor(workers - 1, thread_name_prefix="conv2d")
                    self.pool_size = workers - 1
            helpers = [self.pool.submit(drain) for _ in range(workers - 1)]
            drain()
            for helper in helpers:
                helper.result()
        return results


_threads = _Threads()


@register("conv2d_forward", "numpy", "v0_im2col", default=True)
@fuses("relu")
def conv2d_forward(x, w, b, g, activation=None):
    """im2col into a reused, L2-sized workspace + one BLAS GEMM per group and batch block; 1x1 as a plain GEMM."""
    dtype, x, w = x.dtype, _operand(x), _operand(w)
    b = None if b is None else _operand(b)
    relu = activation == "relu"
    weights = w.reshape(g.groups, g.K // g.groups, -1)
    y = np.empty(g.y_shape, x.dtype)
    workers = _threads.workers(g)
    if _is_pointwise(g):
        x_groups = x.reshape(g.N, g.groups, g.C // g.groups, g.H * g.W)
        y_groups = y.reshape(g.N, g.groups, g.K // g.groups, g.H * g.W)

        def pointwise(start, stop):
            np.matmul(weights, x_groups[start:stop], out=y_groups[start:stop])
            if b is not None:
                y[start:stop] += b[:, None, None]
            if relu:  # no copy kernel writes this output: clamp the block in place while it is in cache
                np.maximum(y[start:stop], 0, out=y[start:stop])

        _threads.map(pointwise, g.N, max(1, ceil(g.N / workers)), workers)
        return y.astype(dtype, copy=False)
    plan = _Plan(g, x.dtype, workers)
    bias = np.zeros(g.K, x.dtype) if b is None else b

    def block(start, stop):
        nb = stop - start
        cols, wide = plan.im2col(x, start, nb), plan.wide()
        np.matmul(weights, _grouped(cols, g.groups, nb), out=_grouped(wide, g.groups, nb))
        _narrow(wide, bias, y, start, nb, plan.pitch, relu)

    _threads.map(block, g.N, plan.nb, workers)
    return y.astype(dtype, copy=False)


@register("conv2d_backward_input", "numpy", "v0_im2col", default=True)
def conv2d_backward_input(dy, w, g):
    """GEMM of the transposed weight with dy into the column matrix, then col2im."""
    dtype, dy, w = dy.dtype, _operand(dy), _operand(w)
    weights_t = w.reshape(g.groups, g.K // g.groups, -1).transpose(0, 2, 1)
    workers = _threads.workers(g)
    if _is_pointwise(g):
        dx = np.empty(g.x_shape, dy.dtype)
        dy_groups = dy.reshape(g.N, g.groups, g.K // g.groups, g.H * g.W)
        dx_groups = dx.reshape(g.N, g.groups, g.C // g.groups, g.H * g.W)

        def pointwise(start, stop):
            np.matmul(weights_t, dy_groups[start:stop], out=dx_groups[start:stop])

        _threads.map(pointwise, g.N, max(1, ceil(g.N / workers)), workers)
        return dx.astype(dtype, copy=False)
    dx = np.zeros(g.x_shape, dy.dtype)
    plan = _Plan(g, dy.dtype, workers)

    def block(start, stop):
        nb = stop - start
        wide, cols = plan.widen(dy, start, nb), plan.cols()
        np.matmul(weights_t, _grouped(wide, g.groups, nb), out=_grouped(cols, g.groups, nb))
        _col2im(cols, dx, start, nb, *plan.args)

    _threads.map(block, g.N, plan.nb, workers)
    return dx.astype(dtype, copy=False)


@register("conv2d_backward_weight", "numpy", "v0_im2col", default=True)
def conv2d_backward_weight(dy, x, g):
    """Per batch block: im2col of x, then dw^T += cols @ dy^T (the orientation BLAS runs fastest here)."""
    dtype, dy, x = dy.dtype, _operand(dy), _operand(x)
    Kg, Cg = g.K // g.groups, g.C // g.groups
    workers = _threads.workers(g)
    if _is_pointwise(g):
        x_groups = x.reshape(g.N, g.groups, Cg, g.H * g.W)
        dy_groups = dy.reshape(g.N, g.groups, Kg, g.H * g.W)

        def pointwise(start, stop):
            return np.matmul(dy_groups[start:stop], x_groups[start:stop].transpose(0, 1, 3, 2)).sum(axis=0)

        partials = _threads.map(pointwise, g.N, max(1, ceil(g.N / workers)), workers)
        dw = np.sum(partials, axis=0) if partials else np.zeros((g.groups, Kg, Cg), dy.dtype)
        return dw.astype(dtype, copy=False).reshape(g.w_shape)
    plan = _Plan(g, dy.dtype, workers)

    def block(start, stop):
        # the product in dw's own (K, C*R*S) layout: transposing a (C*R*S, K) result afterwards cost more
        # than the GEMM on deep layers (16 ms against 13 at 512 -> 512 @ 4x4, kernels/conv2d/README.md)
        nb = stop - start
        cols = plan.im2col(x, start, nb)
        wide = plan.widen(dy, start, nb)
        return np.matmul(_grouped(wide, g.groups, nb), _grouped(cols, g.groups, nb).transpose(0, 2, 1))

    partials = _threads.map(block, g.N, plan.nb, workers)
    dw = np.sum(partials, axis=0) if partials else np.zeros((g.groups, Kg, Cg * g.R * g.S), dy.dtype)
    return dw.astype(dtype, copy=False).reshape(g.w_shape)


@register("conv2d_backward_bias", "numpy", "v0_im2col", default=True)
def conv2d_backward_bias(dy):
    """Sum of dy over batch and positions: contiguous row sums, then a sum over the batch."""
    N, K, P, Q = dy.shape
    accumulator = np.result_type(dy.dtype, np.float32)  # float16 would round every partial sum
    return dy.reshape(N, K, P * Q).sum(axis=2, dtype=accumulator).sum(axis=0).astype(dy.dtype, copy=False)
