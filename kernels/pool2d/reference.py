"""The float64 oracle for pooling: one loop per index, each output's window visited tap by tap.

Think of a flashlight: output (n, c, p, q) lights up the window whose top-left tap sits at
(p*stride - padding, q*stride - padding) and whose taps are ``dilation`` apart; taps that fall outside the
input are padding. The functions take the validated geometry, like the variants, but derive every window
from kernel, stride, padding and dilation themselves -- only the output size is taken from it.
"""

import math

import numpy as np


def _taps(start, kernel, dilation, size):
    """The input positions a window starting at ``start`` reads, padding taps left out."""
    return [start + t * dilation for t in range(kernel) if 0 <= start + t * dilation < size]


def _windows(g):
    """Yield (n, c, p, q, rows, cols) for every output: the in-bounds rows and columns of its window."""
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = g.kernel, g.stride, g.padding, g.dilation
    for n in range(g.N):
        for c in range(g.C):
            for p in range(g.P):
                for q in range(g.Q):
                    yield n, c, p, q, _taps(p * sh - ph, kh, dh, g.H), _taps(q * sw - pw, kw, dw, g.W)


def max_pool2d_forward(x, g):
    """(y, indices): the first maximum in row-major window order; a NaN wins over numbers (the last NaN)."""
    x = np.asarray(x, dtype=np.float64)
    y = np.zeros(g.y_shape)
    indices = np.zeros(g.y_shape, dtype=np.int64)
    for n, c, p, q, rows, cols in _windows(g):
        best, best_index = -math.inf, rows[0] * g.W + cols[0]
        for h in rows:
            for w in cols:
                v = x[n, c, h, w]
                if v > best or math.isnan(v):
                    best, best_index = v, h * g.W + w
        y[n, c, p, q] = best
        indices[n, c, p, q] = best_index
    return y, indices


def max_pool2d_backward(dy, indices, g):
    """Each output's gradient goes to the input element its index names; repeats add up."""
    dx = np.zeros(g.x_shape)
    for n, c, p, q, _, _ in _windows(g):
        h, w = divmod(int(indices[n, c, p, q]), g.W)
        dx[n, c, h, w] += dy[n, c, p, q]
    return dx


def _divisor(g, p, q, rows, cols, count_include_pad, divisor_override):
    """PyTorch's rule: the override; else the window clipped to the padded input (it may run past it in
    ceil_mode); else the number of real input elements in the window."""
    if divisor_override is not None:
        return divisor_override
    if not count_include_pad:
        return len(rows) * len(cols)
    (kh, kw), (sh, sw), (ph, pw) = g.kernel, g.stride, g.padding
    h0, w0 = p * sh - ph, q * sw - pw
    return (min(h0 + kh, g.H + ph) - h0) * (min(w0 + kw, g.W + pw) - w0)


def avg_pool2d_forward(x, g, count_include_pad, divisor_override):
    x = np.asarray(x, dtype=np.float64)
    y = np.zeros(g.y_shape)
    for n, c, p, q, rows, cols in _windows(g):
        total = sum(x[n, c, h, w] for h in rows for w in cols)
        y[n, c, p, q] = total / _divisor(g, p, q, rows, cols, count_include_pad, divisor_override)
    return y


def avg_pool2d_backward(dy, g, count_include_pad, divisor_override):
    dx = np.zeros(g.x_shape)
    for n, c, p, q, rows, cols in _windows(g):
        share = dy[n, c, p, q] / _divisor(g, p, q, rows, cols, count_include_pad, divisor_override)
        for h in rows:
            for w in cols:
                dx[n, c, h, w] += share
    return dx


def _power(base, exponent):
    """``base ** exponent`` as a real number: NaN for a negative base and a fractional exponent."""
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        return float(np.power(np.float64(base), exponent))


def lp_pool2d_forward(x, g, norm_type):
    """PyTorch's definition: avg_pool2d(x**p) * kh*kw, then the p-th root. For a full window that is
    (sum of x**p) ** (1/p); a ceil_mode window clipped at the edge is rescaled to kh*kw elements."""
    x = np.asarray(x, dtype=np.float64)
    y = np.zeros(g.y_shape)
    for n, c, p, q, rows, cols in _windows(g):
        total = sum(_power(x[n, c, h, w], norm_type) for h in rows for w in cols)
        scaled = total * (g.kernel[0] * g.kernel[1]) / _divisor(g, p, q, rows, cols, True, None)
        y[n, c, p, q] = _power(scaled, 1.0 / norm_type)
    return y


def lp_pool2d_backward(dy, x, y, g, norm_type):
    """d y / d x[h, w] = x[h, w]**(p-1) * y**(1-p) * (rescaling of the window); 0 where y == 0."""
    x = np.asarray(x, dtype=np.float64)
    dx = np.zeros(g.x_shape)
    for n, c, p, q, rows, cols in _windows(g):
        out = float(y[n, c, p, q])
        if out == 0:
            continue
        scale = (g.kernel[0] * g.kernel[1]) / _divisor(g, p, q, rows, cols, True, None)
        share = dy[n, c, p, q] * _power(out, 1.0 - norm_type) * scale
        for h in rows:
            for w in cols:
                dx[n, c, h, w] += share * _power(x[n, c, h, w], norm_type - 1.0)
    return dx


def _adaptive_windows(g):
    """Yield (n, c, p, q, rows, cols): window p covers rows floor(p*H/P) .. ceil((p+1)*H/P) - 1."""
    for n in range(g.N):
        for c in range(g.C):
            for p in range(g.P):
                for q in range(g.Q):
                    rows = range(p * g.H // g.P, math.ceil((p + 1) * g.H / g.P))
                    cols = range(q * g.W // g.Q, math.ceil((q + 1) * g.W / g.Q))
                    yield n, c, p, q, rows, cols


def adaptive_avg_pool2d_forward(x, g):
    x = np.asarray(x, dtype=np.float64)
    y = np.zeros(g.y_shape)
    for n, c, p, q, rows, cols in _adaptive_windows(g):
        y[n, c, p, q] = sum(x[n, c, h, w] for h in rows for w in cols) / (len(rows) * len(cols))
    return y


def adaptive_avg_pool2d_backward(dy, g):
    dx = np.zeros(g.x_shape)
    for n, c, p, q, rows, cols in _adaptive_windows(g):
        share = dy[n, c, p, q] / (len(rows) * len(cols))
        for h in rows:
            for w in cols:
                dx[n, c, h, w] += share
    return dx
