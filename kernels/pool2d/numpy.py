"""CPU pooling: Numba-compiled window loops, one pass over the input, (n, c) planes over Numba's threads.

Measured against NumPy formulations (kernels/pool2d/README.md): reductions over strided views and
sub-grid maxima pay one memory pass per window tap plus the arg-max bookkeeping (3.4x as slow as this at
best), while a compiled loop reads each input element once and keeps the running maximum and its index
in registers. The planes are spread over Numba's threads (``prange``). That once made a LeNet-5 step 4x
slower (8.9 -> 35 ms: the OpenBLAS threads of the preceding GEMM still spinning on both cores fought the
Numba threads); since the small GEMMs of a step run with the BLAS on one thread (``kernels.blas``), its
workers stay asleep, and the threads halve the pooling time inside the step as they do alone.

The loops read windows through the tables of ``geometry`` (first in-bounds index and tap count per
output row and column), so padding, dilation, ceil_mode and adaptive windows share one kernel each.
The backward kernels zero their plane of ``dx`` just before scattering into it: ``np.zeros`` is a
single-threaded memset of the whole array that the scatter then reads back from memory (max-pool
backward: 0.62 ms against 0.31 ms). Indices are cast to ``uintp``: they are non-negative by construction,
and unsigned indices spare Numba's negative-index wraparound test on every load (max-pool forward:
2.34 ms against 1.43 ms).

Numba has no float16 arithmetic; half inputs are computed in float32 and rounded back, as PyTorch's CPU
kernels accumulate half in float.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange, uintp

from kernels import blas
from kernels.registry import register


@njit(cache=True, parallel=True)
def _max_forward(x, first_h, count_h, first_w, count_w, dh, dw, y, indices):
    """y[n, p, q] = max over the window, indices = h*W + w of the first maximum (the last NaN, if any)."""
    W = uintp(x.shape[2])
    for n in prange(x.shape[0]):
        for p in range(y.shape[1]):
            for q in range(y.shape[2]):
                h, w = uintp(first_h[p]), uintp(first_w[q])
                best, best_index = x[n, h, w], h * W + w
                for i in range(count_h[p]):
                    h = uintp(first_h[p] + i * dh)
                    for j in range(count_w[q]):
                        w = uintp(first_w[q] + j * dw)
                        v = x[n, h, w]
                        if v > best or np.isnan(v):  # PyTorch's rule: first maximum, but NaN always wins
                            best, best_index = v, h * W + w
                y[n, p, q] = best
                indices[n, p, q] = best_index


@njit(cache=True, parallel=True)
def _max_backward(dy, indices, dx):
    """dx[n] = 0, then dx[n, indices[n, k]] += dy[n, k]; returns how many indices lay outside the plane."""
    size = uintp(dx.shape[1])
    outside = 0
    for n in prange(dy.shape[0]):
        dx[n] = 0
        for k in range(dy.shape[1]):
            target = uintp(indices[n, k])  # a negative index wraps to a huge one: one test catches both
            if target < size:
                dx[n, target] += dy[n, k]
            else:
                outside += 1
    return outside


@njit(cache=True, parallel=True)
def _window_sum(x, first_h, count_h, first_w, count_w, divisor, y):
    """y[n, p, q] = (sum of x over the window) / divisor[p, q], accumulated in float64."""
    for n in prange(x.shape[0]):
        for p in range(y.shape[1]):
            for q in range(y.shape[2]):
                total = 0.0
                for h in range(uintp(first_h[p]), uintp(first_h[p] + count_h[p])):
                    for w in range(uintp(first_w[q]), uintp(first_w[q] + count_w[q])):
                        total += x[n, h, w]
                y[n, p, q] = total / divisor[p, q]


@njit(cache=True, parallel=True)
def _window_sum_backward(dy, first_h, count_h, first_w, count_w, divisor, dx):
    """dx[n] = 0, then dx[n, window(p, q)] += dy[n, p, q] / divisor[p, q]: the adjoint of ``_window_sum``."""
    for n in prange(dy.shape[0]):
        dx[n] = 0
        for p in range(dy.shape[1]):
            for q in range(dy.shape[2]):
                share = dx.dtype.type(dy[n, p, q] / divisor[p, q])
                for h in range(uintp(first_h[p]), uintp(first_h[p] + count_h[p])):
                    for w in range(uintp(first_w[q]), uintp(first_w[q] + count_w[q])):
                        dx[n, h, w] += share


@njit(cache=True, parallel=True)
def _row_sum(x, first_h, count_h, lo, hi, sw, pw, dw, divisor, y):
    """y[n, p, q] = (sum of x over the window) / divisor[p, q] a row of outputs at a time: for each input
    row and column tap of the window, the tap is added into all outputs q that read it (float64 row acc).
    Strides 1 and 2 get loops of their own, so LLVM sees a constant stride and vectorises the loads."""
    for n in prange(x.shape[0]):
        acc = np.empty(y.shape[2])
        for p in range(y.shape[1]):
            for q in range(y.shape[2]):
                acc[q] = 0.0
            for h in range(uintp(first_h[p]), uintp(first_h[p] + count_h[p])):
                for j in range(lo.shape[0]):
                    offset = j * dw - pw
                    if sw == 1:
                        for q in range(lo[j], hi[j]):
                            acc[q] += x[n, h, uintp(q + offset)]
                    elif sw == 2:
                        for q in range(lo[j], hi[j]):
                            acc[q] += x[n, h, uintp(2 * q + offset)]
                    else:
                        for q in range(lo[j], hi[j]):
                            acc[q] += x[n, h, uintp(sw * q + offset)]
            for q in range(y.shape[2]):
                y[n, p, q] = acc[q] / divisor[p, q]


@njit(cache=True, parallel=True)
def _row_sum_backward(dy, first_h, count_h, lo, hi, sw, pw, dw, divisor, dx):
    """The adjoint of ``_row_sum``: dx[n] = 0, then each output's share dy / divisor added to every input
    of its window, a row of outputs at a time with the outputs q innermost."""
    for n in prange(dy.shape[0]):
        share = np.empty(dy.shape[2], dx.dtype)
        dx[n] = 0
        for p in range(dy.shape[1]):
            for q in range(dy.shape[2]):
                share[q] = dy[n, p, q] / divisor[p, q]
            for h in range(uintp(first_h[p]), uintp(first_h[p] + count_h[p])):
                for j in range(lo.shape[0]):
                    offset = j * dw - pw
                    if sw == 2:
                        for q in range(uintp(lo[j]), uintp(hi[j])):
                            dx[n, h, uintp(2 * q + offset)] += share[q]
                    else:
                        for q in range(uintp(lo[j]), uintp(hi[j])):
                            dx[n, h, uintp(sw * q + offset)] += share[q]


def _planes(array):
    """(N, C, H, W) -> contiguous (N*C, H, W) in a dtype Numba computes in (float16 -> float32)."""
    dtype = np.float32 if array.dtype == np.float16 else array.dtype
    N, C, H, W = array.shape
    return np.ascontiguousarray(array, dtype=dtype).reshape(N * C, H, W)


def _unplanes(planes, shape, dtype):
    """Back to (N, C, ...) and the caller's dtype; ``astype`` copies only for float16."""
    return planes.reshape(shape).astype(dtype, copy=False)


def _window_areas(g) -> np.ndarray:
    """(P, Q) float64: how many input elements each window covers."""
    (_, count_h), (_, count_w) = g.windows()
    return np.outer(count_h, count_w).astype(np.float64)


def _avg_divisor(g, count_include_pad: bool, divisor_override) -> np.ndarray:
    """PyTorch's divisor per output (P, Q): the override, else the window size clipped to the padded
    input (padding counts, but a ceil_mode window running past it does not), else the real elements."""
    if divisor_override is not None:
        return np.full((g.P, g.Q), float(divisor_override))
    if not count_include_pad:
        return _window_areas(g)

    def padded_sizes(size, out, kernel, stride, padding):
        start = np.arange(out) * stride - padding
        return np.minimum(start + kernel, size + padding) - start

    return np.outer(
        padded_sizes(g.H, g.P, g.kernel[0], g.stride[0], g.padding[0]),
        padded_sizes(g.W, g.Q, g.kernel[1], g.stride[1], g.padding[1]),
    ).astype(np.float64)


def _avg_forward(x, g, divisor):
    planes = _planes(x)
    y = np.empty((planes.shape[0], g.P, g.Q), dtype=planes.dtype)
    (first_h, count_h), (first_w, count_w) = g.windows()
    _window_sum(planes, first_h, count_h, first_w, count_w, divisor, y)
    return _unplanes(y, g.y_shape, x.dtype)


def _avg_backward(dy, g, divisor):
    planes = _planes(dy)
    dx = np.empty((planes.shape[0], g.H, g.W), dtype=planes.dtype)
    (first_h, count_h), (first_w, count_w) = g.windows()
    _window_sum_backward(planes, first_h, count_h, first_w, count_w, divisor, dx)
    return _unplanes(dx, g.x_shape, dy.dtype)


# Output rows shorter than this are summed window by window (v0's loop): the row loops' overhead per
# (input row, tap) outweighs their vector work (LeNet's 5-wide pool2: 0.151 ms against 0.119).
ROWS_MIN_Q = 8


def _rows_forward(x, g, divisor):
    if g.Q < ROWS_MIN_Q:
        return _avg_forward(x, g, divisor)
    planes = _planes(x)
    y = np.empty((planes.shape[0], g.P, g.Q), dtype=planes.dtype)
    (first_h, count_h), _ = g.windows()
    lo, hi = g.column_taps()
    _row_sum(planes, first_h, count_h, lo, hi, g.stride[1], g.padding[1], g.dilation[1], divisor, y)
    return _unplanes(y, g.y_shape, x.dtype)


def _rows_backward(dy, g, divisor):
    planes = _planes(dy)
    dx = np.empty((planes.shape[0], g.H, g.W), dtype=planes.dtype)
    (first_h, count_h), _ = g.windows()
    lo, hi = g.column_taps()
    _row_sum_backward(planes, first_h, count_h, lo, hi, g.stride[1], g.padding[1], g.dilation[1], divisor, dx)
    return _unplanes(dx, g.x_shape, dy.dtype)


@register("max_pool2d_forward", "numpy", "v0_window_loop", default=True)
def max_pool2d_forward(x, g):
    """Compiled window scan per output, running maximum and its index in registers; one pass over the input."""
    planes = _planes(x)
    y = np.empty((planes.shape[0], g.P, g.Q), dtype=planes.dtype)
    indices = np.empty((planes.shape[0], g.P, g.Q), dtype=np.int64)
    (first_h, count_h), (first_w, count_w) = g.windows()
    _max_forward(planes, first_h, count_h, first_w, count_w, g.dilation[0], g.dilation[1], y, indices)
    return _unplanes(y, g.y_shape, x.dtype), indices.reshape(g.y_shape)


@register("max_pool2d_backward", "numpy", "v0_window_loop", default=True)
def max_pool2d_backward(dy, indices, g):
    """Scatter-add of dy to the chosen inputs, one thread per plane (overlapping windows add up)."""
    planes = _planes(dy).reshape(g.N * g.C, g.P * g.Q)
    dx = np.empty((planes.shape[0], g.H * g.W), dtype=planes.dtype)
    flat_indices = np.ascontiguousarray(indices, dtype=np.int64).reshape(planes.shape)
    outside = _max_backward(planes, flat_indices, dx)
    if outside:
        raise ValueError(
            f"max_pool2d indices must lie in [0, H*W) = [0, {g.H * g.W}) for input size {(g.H, g.W)}; "
            f"{outside} do not"
        )
    return _unplanes(dx, g.x_shape, dy.dtype)


@register("avg_pool2d_forward", "numpy", "v1_output_rows", default=True)
def avg_pool2d_forward_rows(x, g, count_include_pad, divisor_override):
    """A row of outputs at a time, outputs innermost: each (input row, column tap) added into the outputs
    that read it, a loop LLVM vectorises; same sums in the same order as v0, whose loop it runs for rows
    of fewer than ``ROWS_MIN_Q`` outputs."""
    return _rows_forward(x, g, _avg_divisor(g, count_include_pad, divisor_override))


@register("avg_pool2d_backward", "numpy", "v1_output_rows", default=True)
def avg_pool2d_backward_rows(dy, g, count_include_pad, divisor_override):
    """A row of output shares added into each (input row, column tap) of their windows, outputs innermost."""
    return _rows_backward(dy, g, _avg_divisor(g, count_include_pad, divisor_override))


@register("avg_pool2d_forward", "numpy", "v0_window_loop")
def avg_pool2d_forward(x, g, count_include_pad, divisor_override):
    """Compiled window sum per output over the in-bounds taps, divided by PyTorch's divisor."""
    return _avg_forward(x, g, _avg_divisor(g, count_include_pad, divisor_override))


@register("avg_pool2d_backward", "numpy", "v0_window_loop")
def avg_pool2d_backward(dy, g, count_include_pad, divisor_override):
    """Each output's gradient divided by its divisor and added to its window, one thread per plane."""
    return _avg_backward(dy, g, _avg_divisor(g, count_include_pad, divisor_override))


def _lp_divisor(g):
    """PyTorch computes lp_pool2d as avg_pool2d(x**p) * kh*kw, so a ceil_mode window clipped at the input's
    edge is scaled by kh*kw / (its clipped size), not summed: ``avg_pool2d``'s divisor over kh*kw."""
    return _avg_divisor(g, True, None) / (g.kernel[0] * g.kernel[1])


def _lp_forward(x, g, norm_type, window_sum):
    """(window sum of x**p) ** (1/p) on the given window sum; NaN/inf arise where PyTorch's do."""
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        return np.power(window_sum(np.power(x, norm_type), g, _lp_divisor(g)), 1.0 / norm_type)


def _lp_backward(dy, x, y, g, norm_type, window_sum_adjoint):
    """dx = x**(p-1) * window_sum_adjoint(dy * y**(1-p)); zero where y == 0 (PyTorch's relu mask)."""
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        dsum = np.where(y == 0, 0, dy * np.power(y, 1.0 - norm_type)).astype(dy.dtype, copy=False)
        return window_sum_adjoint(dsum, g, _lp_divisor(g)) * np.power(x, norm_type - 1.0)


@register("lp_pool2d_forward", "numpy", "v1_output_rows", default=True)
def lp_pool2d_forward_rows(x, g, norm_type):
    """(window sum of x**p) ** (1/p), the window sums a row of outputs at a time (as avg_pool2d's v1)."""
    return _lp_forward(x, g, norm_type, _rows_forward)


@register("lp_pool2d_backward", "numpy", "v1_output_rows", default=True)
def lp_pool2d_backward_rows(dy, x, y, g, norm_type):
    """x**(p-1) * the adjoint of the window sum of dy * y**(1-p), the adjoint a row of outputs at a time."""
    return _lp_backward(dy, x, y, g, norm_type, _rows_backward)


@register("lp_pool2d_forward", "numpy", "v0_window_loop")
def lp_pool2d_forward(x, g, norm_type):
    """(window sum of x**p) ** (1/p) on the compiled window sum; NaN/inf arise where PyTorch's do."""
    return _lp_forward(x, g, norm_type, _avg_forward)


@register("lp_pool2d_backward", "numpy", "v0_window_loop")
def lp_pool2d_backward(dy, x, y, g, norm_type):
    """dx = x**(p-1) * window_sum_adjoint(dy * y**(1-p)); zero where y == 0 (PyTorch's relu mask)."""
    return _lp_backward(dy, x, y, g, norm_type, _avg_backward)


@register("adaptive_avg_pool2d_forward", "numpy", "v0_window_loop", default=True)
def adaptive_avg_pool2d_forward(x, g):
    """Global average as one BLAS matrix-vector product (N*C, H*W) @ (H*W,); else the window sum."""
    if (g.P, g.Q) == (1, 1):
        planes = np.ascontiguousarray(x).reshape(g.N * g.C, g.H * g.W)
        with blas.one_thread():  # a threaded gemv would leave the BLAS's workers spinning (kernels/blas.py)
            return (planes @ np.full(g.H * g.W, 1.0 / (g.H * g.W), dtype=x.dtype)).reshape(g.y_shape)
    return _avg_forward(x, g, _window_areas(g))


@register("adaptive_avg_pool2d_backward", "numpy", "v0_window_loop", default=True)
def adaptive_avg_pool2d_backward(dy, g):
    """Global average: dy / (H*W) broadcast over each plane; else the window sum's adjoint."""
    if (g.P, g.Q) == (1, 1):
        return np.broadcast_to(dy / (g.H * g.W), g.x_shape).astype(dy.dtype)
    return _avg_backward(dy, g, _window_areas(g))
