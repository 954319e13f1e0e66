"""The float64 oracle for conv2d: the textbook loops, for tests and benchmarks on tiny shapes only.

Forward is the "flashlight" picture of a convolutional layer: pad the input with zeros, then for every
output position (n, k, p, q) put filter k over its receptive field -- the input window that starts at
(p*stride, q*stride) and samples every ``dilation``-th pixel -- multiply elementwise and sum, and add the
bias. With groups, filter k only sees the C/groups input channels of its group.

The backward passes are written as their own loops: every output gradient dy[n, k, p, q] flows back
through the same window, to the input (scaled by the filter) and to the filter (scaled by the input).
"""

import numpy as np

from kernels.conv2d.geometry import conv2d_geometry


def _pad(x, padding):
    (ph, pw) = padding
    return np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))


def _window(g, p, q):
    """Row and column slices of the receptive field of output position (p, q) in the padded input."""
    (sh, sw), (dh, dw) = g.stride, g.dilation
    rows = slice(p * sh, p * sh + (g.R - 1) * dh + 1, dh)
    cols = slice(q * sw, q * sw + (g.S - 1) * dw + 1, dw)
    return rows, cols


def _group_channels(g, k):
    """The input channels filter k sees."""
    per_group_in, per_group_out = g.C // g.groups, g.K // g.groups
    first = (k // per_group_out) * per_group_in
    return slice(first, first + per_group_in)


def conv2d_forward(x, w, b=None, stride=1, padding=0, dilation=1, groups=1):
    """y[n, k, p, q] = b[k] + sum over (c, r, s) of w[k, c, r, s] * receptive field of (p, q)."""
    g = conv2d_geometry(x.shape, w.shape, stride, padding, dilation, groups)
    padded = _pad(np.asarray(x, np.float64), g.padding)
    w = np.asarray(w, np.float64)
    y = np.zeros(g.y_shape)
    for n in range(g.N):
        for k in range(g.K):
            channels = _group_channels(g, k)
            for p in range(g.P):
                for q in range(g.Q):
                    rows, cols = _window(g, p, q)
                    field = padded[n, channels, rows, cols]
                    y[n, k, p, q] = np.sum(field * w[k])
            if b is not None:
                y[n, k] += float(b[k])
    return y


def conv2d_backward_input(dy, w, x_shape, stride=1, padding=0, dilation=1, groups=1):
    """dx: each dy[n, k, p, q] scatters w[k] * dy into the receptive field of (p, q); padding is cut off."""
    g = conv2d_geometry(x_shape, w.shape, stride, padding, dilation, groups)
    dy, w = np.asarray(dy, np.float64), np.asarray(w, np.float64)
    (ph, pw) = g.padding
    padded = np.zeros((g.N, g.C, g.H + 2 * ph, g.W + 2 * pw))
    for n in range(g.N):
        for k in range(g.K):
            channels = _group_channels(g, k)
            for p in range(g.P):
                for q in range(g.Q):
                    rows, cols = _window(g, p, q)
                    padded[n, channels, rows, cols] += dy[n, k, p, q] * w[k]
    return padded[:, :, ph : ph + g.H, pw : pw + g.W]


def conv2d_backward_weight(dy, x, w_shape, stride=1, padding=0, dilation=1, groups=1):
    """dw[k]: the sum over (n, p, q) of dy[n, k, p, q] times the receptive field of (p, q)."""
    g = conv2d_geometry(x.shape, w_shape, stride, padding, dilation, groups)
    dy = np.asarray(dy, np.float64)
    padded = _pad(np.asarray(x, np.float64), g.padding)
    dw = np.zeros(g.w_shape)
    for n in range(g.N):
        for k in range(g.K):
            channels = _group_channels(g, k)
            for p in range(g.P):
                for q in range(g.Q):
                    rows, cols = _window(g, p, q)
                    dw[k] += dy[n, k, p, q] * padded[n, channels, rows, cols]
    return dw


def conv2d_backward_bias(dy):
    """db[k]: the sum of dy[n, k, p, q] over n, p, q."""
    dy = np.asarray(dy, np.float64)
    N, K, P, Q = dy.shape
    db = np.zeros(K)
    for n in range(N):
        for k in range(K):
            for p in range(P):
                for q in range(Q):
                    db[k] += dy[n, k, p, q]
    return db
