"""Pooling on the GPU in Python: Numba CUDA kernels, one thread per output (forward) or per input element
(backward), on (N*C, H, W) planes.

Windows are computed in the kernel from kernel size, stride, padding and dilation (``floor``/``ceil``
bounds for adaptive pooling) rather than read from the CPU variant's tables: a few integer operations
per output cost less than uploading and caching tables per geometry.

Backward passes gather instead of scatter: the thread of input element (h, w) visits the outputs whose
windows contain it (a row range ``p_lo..p_hi`` found in O(1), filtered by the dilation grid) and sums
their contributions. Each dx element has one writer, so there are no atomics, no zero-fill pass and the
result is deterministic (float atomics would add in a different order every run). It is what PyTorch's
CUDA max-pool backward does too; for max pooling a window contributes only if its recorded index is this
element. Global average pooling (output 1x1) is one block per plane with a shared-memory tree sum, so a
7x7 or 8x8 plane is read by 64 threads, not one.
"""

from __future__ import annotations

import numba
import numpy as np

from kernels.cuda_tools import compile_kernel, grid_1d, kernel_factory, launch
from kernels.device_arrays import array_module, empty
from kernels.registry import register

try:
    from numba import cuda
except ImportError:  # numba-cuda is optional: the registry then reports the backend unavailable
    cuda = None

_A3 = "{t}[:, :, ::1]"
_I3 = "int64[:, :, ::1]"
_WINDOW = "int32, int32, int32, int32, int32, int32"  # kh, kw, sh, sw, ph, pw
_DILATED = _WINDOW + ", int32, int32"  # ..., dh, dw





def _planes(array, g, rows, cols):
    """(N, C, rows, cols) -> C-contiguous (N*C, rows, cols) on the same device."""
    if not array.flags.c_contiguous:
        out = array_module(array).ascontiguousarray(array)
        array = out.view(type(array)) if isinstance(array, np.ndarray) else out
    return array.reshape(g.N * g.C, rows, cols)


def _window_args(g):
    return (*g.kernel, *g.stride, *g.padding, *g.dilation)


# ---------------------------------------------------------------- max


@kernel_factory(f"void({_A3}, {_A3}, {_I3}, {_DILATED})")
def _max_forward(T):
    def max_forward(x, y, indices, kh, kw, sh, sw, ph, pw, dh, dw):
        # one thread per output; the geometry guarantees every window has at least one tap inside
        i = cuda.grid(1)
        planes, P, Q = y.shape
        if i >= planes * P * Q:
            return
        q, p, nc = i % Q, i // Q % P, i // (Q * P)
        H, W = x.shape[1], x.shape[2]
        best, best_index = T(0), -1
        for t in range(kh):
            h = p * sh - ph + t * dh
            if 0 <= h < H:
                for u in range(kw):
                    col = q * sw - pw + u * dw
                    if 0 <= col < W:
                        v = x[nc, h, col]
                        # the first tap seeds the maximum; later ones win only if strictly greater, and a
                        # NaN always wins (PyTorch's rule), so ties keep the first in row-major order
                        if best_index < 0 or v > best or v != v:
                            best, best_index = v, h * W + col
        y[nc, p, q] = best
        indices[nc, p, q] = best_index

    return max_forward


@kernel_factory(f"void({_A3}, {_I3}, {_A3}, {_DILATED})")
def _max_backward(T):
    def max_backward(dy, indices, dx, kh, kw, sh, sw, ph, pw, dh, dw):
        # gather: the outputs whose windows contain (h, col) and whose recorded index is (h, col)
        i = cuda.grid(1)
        planes, H, W = dx.shape
        if i >= planes * H * W:
            return
        col, h, nc = i % W, i // W % H, i // (W * H)
        P, Q = dy.shape[1], dy.shape[2]
        me = h * W + col
        acc = T(0)
        reach_h, reach_w = h + ph - (kh - 1) * dh, col + pw - (kw - 1) * dw
        p_lo = 0 if reach_h <= 0 else (reach_h + sh - 1) // sh
        q_lo = 0 if reach_w <= 0 else (reach_w + sw - 1) // sw
        for p in range(p_lo, min(P, (h + ph) // sh + 1)):
            if (h + ph - p * sh) % dh == 0:
                for q in range(q_lo, min(Q, (col + pw) // sw + 1)):
                    if (col + pw - q * sw) % dw == 0 and indices[nc, p, q] == me:
                        acc += dy[nc, p, q]
        dx[nc, h, col] = acc

    return max_backward


@register("max_pool2d_forward", "numba_cuda", "v1_direct", device="cuda", default=True)
def max_pool2d_forward(x, g, threads=128):
    """One thread per output scans its window; running maximum and index in registers."""
    xs = _planes(x, g, g.H, g.W)
    y = empty((g.N * g.C, g.P, g.Q), x.dtype, like=x)
    indices = empty((g.N * g.C, g.P, g.Q), np.int64, like=x)
    launch(compile_kernel(_max_forward, x.dtype), grid_1d(y.size, threads), threads, xs, y, indices, *_window_args(g))
    return y.reshape(g.y_shape), indices.reshape(g.y_shape)


@register("max_pool2d_backward", "numba_cuda", "v1_gather", device="cuda", default=True)
def max_pool2d_backward(dy, indices, g, threads=128):
    """One thread per input element gathers dy from the windows that chose it: no atomics, deterministic."""
    dys = _planes(dy, g, g.P, g.Q)
    idx = _planes(indices.astype(np.int64, copy=False), g, g.P, g.Q)
    dx = empty((g.N * g.C, g.H, g.W), dy.dtype, like=dy)
    launch(compile_kernel(_max_backward, dy.dtype), grid_1d(dx.size, threads), threads, dys, idx, dx, *_window_args(g))
    return dx.reshape(g.x_shape)


# ---------------------------------------------------------------- average and Lp


@kernel_factory(f"void({_A3}, {_A3}, {_WINDOW}, int32, int32, {{t}})")
def _window_power_sum(T):
    def window_power_sum(x, y, kh, kw, sh, sw, ph, pw, include_pad, override, norm):
        # y = (sum of x**norm over the window / divisor) ** (1/norm); norm 1 is the average (no pow).
        # divisor: the override; else the window clipped to the padded input (count_include_pad; Lp pooling
        # passes it too and rescales by kh*kw); else the in-bounds taps
        i = cuda.grid(1)
        planes, P, Q = y.shape
        if i >= planes * P * Q:
            return
        q, p, nc = i % Q, i // Q % P, i // (Q * P)
        H, W = x.shape[1], x.shape[2]
        h0, w0 = p * sh - ph, q * sw - pw
        h_lo, h_hi, w_lo, w_hi = max(h0, 0), min(h0 + kh, H), max(w0, 0), min(w0 + kw, W)
        total = T(0)
        for h in range(h_lo, h_hi):
            for col in range(w_lo, w_hi):
                total += x[nc, h, col] if norm == 1 else x[nc, h, col] ** norm
        if override != 0:
            divisor = override
        elif include_pad:
            divisor = (min(h0 + kh, H + ph) - h0) * (min(w0 + kw, W + pw) - w0)
        else:
            divisor = (h_hi - h_lo) * (w_hi - w_lo)
        if norm == 1:
            y[nc, p, q] = total / T(divisor)
        else:
            y[nc, p, q] = (total * T(kh * kw) / T(divisor)) ** (T(1) / norm)

    return window_power_sum


@kernel_factory(f"void({_A3}, {_A3}, {_A3}, {_A3}, {_WINDOW}, int32, int32, {{t}})")
def _window_power_sum_backward(T):
    def window_power_sum_backward(dy, x, y, dx, kh, kw, sh, sw, ph, pw, include_pad, override, norm):
        # gather of the forward's adjoint: dx = sum over windows containing (h, col) of dy / divisor, times,
        # for Lp, x**(norm-1) * y**(1-norm) * kh*kw; windows with y == 0 send nothing (PyTorch's mask)
        i = cuda.grid(1)
        planes, H, W = dx.shape
        if i >= planes * H * W:
            return
        col, h, nc = i % W, i // W % H, i // (W * H)
        P, Q = dy.shape[1], dy.shape[2]
        reach_h, reach_w = h + ph - kh + 1, col + pw - kw + 1
        p_lo = 0 if reach_h <= 0 else (reach_h + sh - 1) // sh
        q_lo = 0 if reach_w <= 0 else (reach_w + sw - 1) // sw
        acc = T(0)
        for p in range(p_lo, min(P, (h + ph) // sh + 1)):
            h0 = p * sh - ph
            rows = min(h0 + kh, H) - max(h0, 0)
            for q in range(q_lo, min(Q, (col + pw) // sw + 1)):
                w0 = q * sw - pw
                if override != 0:
                    divisor = override
                elif include_pad:
                    divisor = (min(h0 + kh, H + ph) - h0) * (min(w0 + kw, W + pw) - w0)
                else:
                    divisor = rows * (min(w0 + kw, W) - max(w0, 0))
                if norm == 1:
                    acc += dy[nc, p, q] / T(divisor)
                elif y[nc, p, q] != 0:
                    acc += dy[nc, p, q] * y[nc, p, q] ** (T(1) - norm) * T(kh * kw) / T(divisor)
        dx[nc, h, col] = acc if norm == 1 else acc * x[nc, h, col] ** (norm - T(1))

    return window_power_sum_backward


def _power_sum(x, g, include_pad, override, norm, threads):
    xs = _planes(x, g, g.H, g.W)
    y = empty((g.N * g.C, g.P, g.Q), x.dtype, like=x)
    launch(
        compile_kernel(_window_power_sum, x.dtype), grid_1d(y.size, threads), threads,
        xs, y, *g.kernel, *g.stride, *g.padding, int(include_pad), override or 0, norm,
    )
    return y.reshape(g.y_shape)


def _power_sum_backward(dy, x, y, g, include_pad, override, norm, threads):
    dys = _planes(dy, g, g.P, g.Q)
    # the average's backward reads neither x nor y; dy's planes stand in for both
    xs = dys if x is None else _planes(x, g, g.H, g.W)
    ys = dys if y is None else _planes(y, g, g.P, g.Q)
    dx = empty((g.N * g.C, g.H, g.W), dy.dtype, like=dy)
    launch(
        compile_kernel(_window_power_sum_backward, dy.dtype), grid_1d(dx.size, threads), threads,
        dys, xs, ys, dx, *g.kernel, *g.stride, *g.padding, int(include_pad), override or 0, norm,
    )
    return dx.reshape(g.x_shape)


@register("avg_pool2d_forward", "numba_cuda", "v1_direct", device="cuda", default=True)
def avg_pool2d_forward(x, g, count_include_pad, divisor_override, threads=128):
    """One thread per output sums its in-bounds taps and divides by PyTorch's divisor."""
    return _power_sum(x, g, count_include_pad, divisor_override, 1.0, threads)


@register("avg_pool2d_backward", "numba_cuda", "v1_gather", device="cuda", default=True)
def avg_pool2d_backward(dy, g, count_include_pad, divisor_override, threads=128):
    """One thread per input element sums dy / divisor over the windows containing it."""
    return _power_sum_backward(dy, None, None, g, count_include_pad, divisor_override, 1.0, threads)


@register("lp_pool2d_forward", "numba_cuda", "v1_direct", device="cuda", default=True)
def lp_pool2d_forward(x, g, norm_type, threads=128):
    """(window sum of x**p, rescaled like PyTorch at clipped ceil_mode edges) ** (1/p), one thread per output."""
    return _power_sum(x, g, True, None, norm_type, threads)


@register("lp_pool2d_backward", "numba_cuda", "v1_gather", device="cuda", default=True)
def lp_pool2d_backward(dy, x, y, g, norm_type, threads=128):
    """x**(p-1) times the gathered dy * y**(1-p) of the windows containing the element (0 where y == 0)."""
    return _power_sum_backward(dy, x, y, g, True, None, norm_type, threads)


# ---------------------------------------------------------------- adaptive average


@kernel_factory(f"void({_A3}, {_A3})")
def _adaptive_forward(T):
    def adaptive_forward(x, y):
        # window p covers rows [floor(p*H/P), ceil((p+1)*H/P)), likewise columns
        i = cuda.grid(1)
        planes, P, Q = y.shape
        if i >= planes * P * Q:
            return
        q, p, nc = i % Q, i // Q % P, i // (Q * P)
        H, W = x.shape[1], x.shape[2]
        h_lo, h_hi = p * H // P, ((p + 1) * H + P - 1) // P
        w_lo, w_hi = q * W // Q, ((q + 1) * W + Q - 1) // Q
        total = T(0)
        for h in range(h_lo, h_hi):
            for col in range(w_lo, w_hi):
                total += x[nc, h, col]
        y[nc, p, q] = total / T((h_hi - h_lo) * (w_hi - w_lo))

    return adaptive_forward


@kernel_factory("void({t}[:, ::1], {t}[::1])")
def _global_average(T, THREADS):
    def global_average(x, y):
        # one block per plane: threads stride over it (coalesced), then a shared-memory tree sum
        buf = cuda.shared.array(THREADS, T)
        tid, nc = cuda.threadIdx.x, cuda.blockIdx.x
        size = x.shape[1]
        acc = T(0)
        for j in range(tid, size, THREADS):
            acc += x[nc, j]
        buf[tid] = acc
        cuda.syncthreads()
        step = THREADS // 2  # THREADS is a power of two
        while step > 0:
            if tid < step:
                buf[tid] += buf[tid + step]
            cuda.syncthreads()  # this level's partial sums are written before the next level reads them
            step //= 2
        if tid == 0:
            y[nc] = buf[0] / T(size)

    return global_average


@kernel_factory(f"void({_A3}, {_A3})")
def _adaptive_backward(T):
    def adaptive_backward(dy, dx):
        # gather: windows containing row h are p in [floor(h*P/H), floor(((h+1)*P - 1)/H)], likewise columns
        i = cuda.grid(1)
        planes, H, W = dx.shape
        if i >= planes * H * W:
            return
        col, h, nc = i % W, i // W % H, i // (W * H)
        P, Q = dy.shape[1], dy.shape[2]
        acc = T(0)
        for p in range(h * P // H, min(P, ((h + 1) * P - 1) // H + 1)):
            rows = ((p + 1) * H + P - 1) // P - p * H // P
            for q in range(col * Q // W, min(Q, ((col + 1) * Q - 1) // W + 1)):
                cols = ((q + 1) * W + Q - 1) // Q - q * W // Q
                acc += dy[nc, p, q] / T(rows * cols)
        dx[nc, h, col] = acc

    return adaptive_backward


@register("adaptive_avg_pool2d_forward", "numba_cuda", "v1_direct", device="cuda", default=True)
def adaptive_avg_pool2d_forward(x, g, threads=128, global_threads=64):
    """One thread per output over its adaptive window; global pooling as one block-wide tree sum per plane."""
    y = empty(g.y_shape, x.dtype, like=x)
    if (g.P, g.Q) == (1, 1):
        if y.size:
            launch(
                compile_kernel(_global_average, x.dtype, global_threads), g.N * g.C, global_threads,
                _planes(x, g, g.H, g.W).reshape(g.N * g.C, g.H * g.W), y.reshape(-1),
            )
        return y
    launch(
        compile_kernel(_adaptive_forward, x.dtype), grid_1d(y.size, threads), threads,
        _planes(x, g, g.H, g.W), y.reshape(g.N * g.C, g.P, g.Q),
    )
    return y


@register("adaptive_avg_pool2d_backward", "numba_cuda", "v1_gather", device="cuda", default=True)
def adaptive_avg_pool2d_backward(dy, g, threads=128):
    """One thread per input element sums dy / window size over the adaptive windows containing it."""
    dx = empty((g.N * g.C, g.H, g.W), dy.dtype, like=dy)
    launch(compile_kernel(_adaptive_backward, dy.dtype), grid_1d(dx.size, threads), threads, _planes(dy, g, g.P, g.Q), dx)
    return dx.reshape(g.x_shape)


KERNELS = [
    (factory(numba.float32, *config), factory.signature.format(t="float32"), tuned)
    for factory, config, tuned in [
        (_max_forward, (), True),
        (_max_backward, (), True),
        (_window_power_sum, (), True),
        (_window_power_sum_backward, (), True),
        (_adaptive_forward, (), True),
        (_global_average, (64,), True),
        (_adaptive_backward, (), True),
    ]
]
