"""CPU conv2d as direct loops in Numba: no column matrix, for layers whose GEMM would be too small to pay
for one (few channels, LeNet-sized images).

The input is zero-padded once (a copy the size of x), so no loop tests bounds. Loops per pass, innermost last:

    forward          n, group, p | c, r, q, s | k    acc[q, k] += x[n, c, p*sh + r*dh, q*sw + s*dw] * w[c, r, s, k]
    backward_input   n, group, c, p, r, s, k | q    dx[n, c, p*sh + r*dh, q*sw + s*dw] += w[k, c, r, s] * dy[n, k, p, q]
    backward_weight  n, group, p | c, r, s, q | k   dw[c, r, s, k] += x[n, c, ...] * dy[n, k, p, q]

Forward and backward_weight run over output channels innermost, on the weight re-laid out as (C/g, R, S, K)
and on one output row of dy (or of the result) transposed to (Q, K): K = 16 floats is one AVX-512 vector.
backward_input scatters instead, with the output positions innermost: its K-innermost form would be a
dot product per input element (a horizontal sum each), while q-innermost is a contiguous axpy at stride 1.

Serial on purpose: ``parallel=True`` threads would spin against OpenBLAS's threads inside a training step
(kernels/pool2d/README.md). Indices into the flattened arrays are unsigned so that Numba drops its
negative-index check, which otherwise keeps LLVM from vectorising (kernels/conv2d/README.md, step 2b).
"""

from __future__ import annotations

import numpy as np
from numba import njit, uint64

from kernels.registry import register

# Reassociation lets LLVM vectorise the sums; no nnan/ninf, so infinities and NaNs propagate as in NumPy.
FASTMATH = {"reassoc", "contract"}


@njit(cache=True, nogil=True, fastmath=FASTMATH)
def _forward(xp, wt, bias, y, acc, sh, sw, dh, dw):
    N, C, Hp, Wp = xp.shape
    _, K, P, Q = y.shape
    G, Cg, R, S, Kg = wt.shape
    x, w, out, a = xp.reshape(-1), wt.reshape(-1), y.reshape(-1), acc.reshape(-1)
    for n in range(N):
        for gi in range(G):
            for p in range(P):
                a[:] = 0
                for c in range(Cg):
                    for r in range(R):
                        row = ((n * C + gi * Cg + c) * Hp + p * sh + r * dh) * Wp
                        taps = ((gi * Cg + c) * R + r) * S * Kg
                        for q in range(Q):
                            o = q * Kg
                            for s in range(S):
                                v = x[uint64(row + q * sw + s * dw)]
                                t = taps + s * Kg
                                for k in range(Kg):
                                    a[uint64(o + k)] += v * w[uint64(t + k)]
                for k in range(Kg):
                    base = ((n * K + gi * Kg + k) * P + p) * Q
                    shift = bias[gi * Kg + k]
                    for q in range(Q):
                        out[uint64(base + q)] = a[uint64(q * Kg + k)] + shift


@njit(cache=True, nogil=True, fastmath=FASTMATH)
def _backward_input(dy, w, dxp, G, sh, sw, dh, dw):
    N, C, Hp, Wp = dxp.shape
    _, K, P, Q = dy.shape
    _, Cg, R, S = w.shape
    Kg = K // G
    d, f, dx = dy.reshape(-1), w.reshape(-1), dxp.reshape(-1)
    for n in range(N):
        for gi in range(G):
            for c in range(Cg):
                image = (n * C + gi * Cg + c) * Hp
                for p in range(P):
                    for r in range(R):
                        row = (image + p * sh + r * dh) * Wp
                        for s in range(S):
                            start = row + s * dw
                            for k in range(Kg):
                                v = f[uint64(((gi * Kg + k) * Cg + c) * R * S + r * S + s)]
                                src = ((n * K + gi * Kg + k) * P + p) * Q
                                for q in range(Q):
                                    dx[uint64(start + q * sw)] += v * d[uint64(src + q)]


@njit(cache=True, nogil=True, fastmath=FASTMATH)
def _backward_weight(dy, xp, dwt, t, sh, sw, dh, dw):
    N, C, Hp, Wp = xp.shape
    _, K, P, Q = dy.shape
    G, Cg, R, S, Kg = dwt.shape
    d, x, g, rowt = dy.reshape(-1), xp.reshape(-1), dwt.reshape(-1), t.reshape(-1)
    for n in range(N):
        for gi in range(G):
            for p in range(P):
                for k in range(Kg):  # this output row of dy as (Q, Kg)
                    src = ((n * K + gi * Kg + k) * P + p) * Q
                    for q in range(Q):
                        rowt[uint64(q * Kg + k)] = d[uint64(src + q)]
                for c in range(Cg):
                    for r in range(R):
                        row = ((n * C + gi * Cg + c) * Hp + p * sh + r * dh) * Wp
                        for s in range(S):
                            o = (((gi * Cg + c) * R + r) * S + s) * Kg
                            for q in range(Q):
                                v = x[uint64(row + q * sw + s * dw)]
                                for k in range(Kg):
                                    g[uint64(o + k)] += v * rowt[uint64(q * Kg + k)]


def _operand(array):
    """C-contiguous float32 or float64: the compiled kernels index flat memory and know these two types."""
    if array.dtype in (np.float32, np.float64):
        return np.ascontiguousarray(array)
    return np.ascontiguousarray(array, np.float32 if array.itemsize < 4 else np.float64)


def _padded_shape(g):
    """(N, C, rows, columns) of the padded input the taps read; with a flooring stride, short of H + 2*ph."""
    (sh, sw), (dh, dw) = g.stride, g.dilation
    return g.N, g.C, (g.P - 1) * sh + (g.R - 1) * dh + 1, (g.Q - 1) * sw + (g.S - 1) * dw + 1


def _pad(x, g):
    """x zero-padded (x itself without padding: the kernels take row pitches from the array's shape)."""
    (ph, pw), H, W = g.padding, g.H, g.W
    if ph == pw == 0:
        return x
    shape = _padded_shape(g)
    xp = np.zeros(shape, x.dtype)
    rows, cols = min(H, max(0, shape[2] - ph)), min(W, max(0, shape[3] - pw))
    xp[:, :, ph : ph + rows, pw : pw + cols] = x[:, :, :rows, :cols]
    return xp


def _channels_last(w, g):
    """(K, C/g, R, S) -> (groups, C/g, R, S, K/g), contiguous."""
    Kg = g.K // g.groups
    return np.ascontiguousarray(w.reshape(g.groups, Kg, g.C // g.groups, g.R, g.S).transpose(0, 2, 3, 4, 1))


@register("conv2d_forward", "numba", "v1_direct")
def conv2d_forward(x, w, b, g):
    """Direct loops, output channels innermost on a (C/g, R, S, K) weight; one output row accumulated in L1."""
    dtype, x, w = x.dtype, _operand(x), _operand(w)
    bias = np.zeros(g.K, x.dtype) if b is None else _operand(b).astype(x.dtype, copy=False)
    y = np.empty(g.y_shape, x.dtype)
    if y.size:
        acc = np.empty((g.Q, g.K // g.groups), x.dtype)
        _forward(_pad(x, g), _channels_last(w.astype(x.dtype, copy=False), g), bias, y, acc, *g.stride, *g.dilation)
    return y.astype(dtype, copy=False)


@register("conv2d_backward_input", "numba", "v1_direct")
def conv2d_backward_input(dy, w, g):
    """Scatter of each dy row times each tap into a padded dx, output positions innermost."""
    dtype, dy = dy.dtype, _operand(dy)
    w = _operand(w).astype(dy.dtype, copy=False)
    (ph, pw), H, W = g.padding, g.H, g.W
    shape = _padded_shape(g)
    # wide enough to hold both the region the taps reach and x itself, so cropping never reads past it
    dxp = np.zeros((g.N, g.C, max(shape[2], ph + H), max(shape[3], pw + W)), dy.dtype)
    if dy.size:
        _backward_input(dy, w, dxp, g.groups, *g.stride, *g.dilation)
    return np.ascontiguousarray(dxp[:, :, ph : ph + H, pw : pw + W]).astype(dtype, copy=False)


@register("conv2d_backward_weight", "numba", "v1_direct")
def conv2d_backward_weight(dy, x, g):
    """dw accumulated over n, p, q with output channels innermost, on a (C/g, R, S, K) gradient."""
    dtype, dy, x = dy.dtype, _operand(dy), _operand(x)
    x = x.astype(dy.dtype, copy=False)
    Kg, Cg = g.K // g.groups, g.C // g.groups
    dwt = np.zeros((g.groups, Cg, g.R, g.S, Kg), dy.dtype)
    if dy.size:
        _backward_weight(dy, _pad(x, g), dwt, np.empty((g.Q, Kg), dy.dtype), *g.stride, *g.dilation)
    return np.ascontiguousarray(dwt.transpose(0, 4, 1, 2, 3), dtype).reshape(g.w_shape)
