"""CPU conv2d as a register-blocked direct convolution: no column matrix, no GEMM packing, each output
written once. ``numba.v2_direct_blocked``; kernels/conv2d/README.md has the measurements.

One kernel computes a block of QB output positions x KW output channels at a time, in QB*KW/V vector
registers (V = 16 float32 or 8 float64 lanes, one AVX-512 register; see ``simd``):

    for each image: copy it into a zero-bordered buffer (one per thread, in L2), then
    for each group, block of KW output channels, block of QB positions (flattened over P x Q):
        acc[j, :] = bias                                          QB x KW/V registers
        for t in taps (c, r, s):                                  one loop, offsets from a table
            acc[j, :] += x[position j + offset t] * w[t, :]       a broadcast and KW/V FMAs per position
        y[k, position j] = acc[j, k]                              through a stack scratch (a transpose)

Output channels are the vector lanes, so any stride or dilation costs nothing (positions are broadcast
loads at offsets from a table), and LeNet's 10x10 or ResNet's 8x8 planes fill whole vectors; a group with
fewer than V output channels leaves lanes idle. The weight is packed as (groups, K-blocks, taps, KW),
zero-padded to whole vectors, so each tap's weights are KW contiguous elements. The last position block
of an image repeats the last position instead of running short. Every product is summed in tap order, one
FMA at a time, in its own accumulator: no reassociation, the only fast-math is the fused multiply-add.

The kernel source is a template specialised per (QB, KW/V) -- the QB positions and their FMAs are written
out so that every accumulator slice sits at a constant offset (LLVM then keeps them in registers; loops over
the positions were 20% slower: LLVM recomputed each address inside the tap loop). The template is compiled
on first use, per dtype and configuration (about 0.5 s each; generated source cannot use Numba's cache).

backward_input at stride 1 is the same kernel on dy: dx = conv(dy padded by (R-1)*d - p, the weight with
K and C swapped and the taps flipped). Other strides, and bias, are v0's. Where a group has few input
channels (LeNet C3: 6) that kernel's lanes, the input channels, would mostly idle, so ``backward_input_lanes``
turns the roles around: dy is transposed per image into a zero-bordered buffer with its output channels as
the lanes, each accumulator is one (position, input channel) pair summing tap by tap the lane-wise products
of a dy vector and a weight vector, and its lanes are added up once at the end (a fixed pairwise tree).

backward_weight swaps the roles of taps and positions: TB taps x KW output channels accumulate in registers
(starting from the thread's partial dw, stored back after each chunk of positions), and per position one
vector of dy (transposed per image to positions x channels) meets TB broadcast loads of the buffered image.

Threads: the images are split into one part per Numba thread, each part run by the serial kernel in a
``prange`` of a small parallel wrapper (``_RUNNERS``) with its own scratch buffers; below
PARALLEL_MIN_FLOPS, or with one thread (``NUMBA_NUM_THREADS=1``), the kernel runs alone. No BLAS runs meanwhile.
"""

from __future__ import annotations

import functools

import numba
import numpy as np
from numba import njit, uint64

from kernels import cache
from kernels import simd
from kernels.conv2d.epilogue import fuses
from kernels.registry import register, variant

# Forward FLOPs from which the images are split over threads (below it the hand-off costs more).
PARALLEL_MIN_FLOPS = 10e6
# backward_weight: bytes of dy's transposed lanes that every tap block reads while they are in L1.
CHUNK_BYTES = 8192

@njit(nogil=True, inline="always")
def _fill_buffer(xf, bf, n, C, H, W, Hp, Wp, ph, pw):
    """Image n of x (flat, (N, C, H, W)) into the interior of the flat (C, Hp, Wp) buffer, shifted by the
    padding (negative: cropped); the buffer's border stays zero."""
    u0, u1, v0, v1 = max(0, -ph), min(H, Hp - ph), max(0, -pw), min(W, Wp - pw)
    for c in range(C):
        for u in range(u0, u1):
            src, dst = ((n * C + c) * H + u) * W, (c * Hp + u + ph) * Wp + pw
            for v in range(v0, v1):
                bf[uint64(dst + v)] = xf[uint64(src + v)]


def _offsets(Cg, R, S, P, Q, stride, dilation):
    """The zero-padded image buffer's (Hp, Wp), and flat offsets into it: of each tap (c, r, s) of a
    filter, and of each output position (p, q)'s window."""
    (sh, sw), (dh, dw) = stride, dilation
    Hp, Wp = (P - 1) * sh + (R - 1) * dh + 1, (Q - 1) * sw + (S - 1) * dw + 1
    c, r, s = np.ogrid[:Cg, :R, :S]
    taps = (c * Hp * Wp + r * dh * Wp + s * dw).reshape(-1).astype(np.int64)
    m = np.arange(P * Q)
    positions = (m // Q * sh * Wp + m % Q * sw).astype(np.int64)
    return Hp, Wp, taps, positions


def _padded(offsets, multiple):
    """``offsets`` extended to a whole number of blocks of ``multiple`` by repeating its last entry."""
    return offsets[np.minimum(np.arange(-(-len(offsets) // multiple) * multiple), len(offsets) - 1)]


@functools.lru_cache(maxsize=256)
def _tables(Cg, R, S, P, Q, stride, dilation, tap_block=1, position_block=1, scale=1):
    """``_offsets`` times ``scale`` (elements per buffer position), the taps and positions padded to whole
    blocks: the same few tables serve every call of a layer (about 20 us of NumPy each to build). Shared
    between calls: the kernels only read them."""
    Hp, Wp, taps, positions = _offsets(Cg, R, S, P, Q, stride, dilation)
    return Hp, Wp, _padded(taps * scale, tap_block), _padded(positions * scale, position_block)


_TEMPLATE = """
def kernel(x, buffer, taps, positions, w, bias, y, n0, n1, ph, pw, relu):
    N, C, H, W = x.shape
    _, K, P, Q = y.shape
    G, blocks, T, _ = w.shape
    Cg, Kg, M = C // G, K // G, P * Q
    Hp, Wp = buffer.shape[1], buffer.shape[2]
    xf, bf, wf, yf = x.reshape(-1), buffer.reshape(-1), w.reshape(-1), y.reshape(-1)
    acc = carray(stack_array({NA}, y.dtype), ({NA},))
    out = carray(stack_array({NA}, y.dtype), ({NA},))
    for n in range(n0, n1):
        fill_buffer(xf, bf, n, C, H, W, Hp, Wp, ph, pw)
        for gi in range(G):
            image = gi * Cg * Hp * Wp
            for kb in range(blocks):
                block = gi * blocks + kb
                for m0 in range(0, M, {QB}):
{POSITIONS}
{INIT}
                    for t in range(T):
                        o = taps[t]
                        wt = (block * T + t) * {KW}
{FMAS}
                    if relu:
{RELU}
{SPILL}
                    for l in range(min({KW}, Kg - kb * {KW})):
                        row = (n * K + gi * Kg + kb * {KW} + l) * M
                        for j in range({QB}):
                            yf[uint64(row + min(m0 + j, M - 1))] = out[j * {KW} + l]
"""


def _lines(indent, items):
    return "\n".join(" " * indent + item for item in items)


def _source(QB, KW, V):
    """The kernel's source for QB positions x KW channels; accumulator of position j, lanes l: acc[j*KW + l]."""
    slices = [(j, l) for j in range(QB) for l in range(0, KW, V)]
    fmas = []
    for j in range(QB):
        fmas.append(f"x{j} = bf[uint64(b{j} + o)]")
        fmas += [f"fma_lanes(acc, {j * KW + l}, wf, wt + {l}, x{j})" for l in range(0, KW, V)]
    return _TEMPLATE.format(
        QB=QB, KW=KW, NA=QB * KW,
        POSITIONS=_lines(20, [f"b{j} = image + positions[m0 + {j}]" for j in range(QB)]),
        INIT=_lines(20, [f"copy_lanes(acc, {j * KW + l}, bias, block * {KW} + {l})" for j, l in slices]),
        FMAS=_lines(24, fmas),
        RELU=_lines(24, [f"relu_lanes(acc, {j * KW + l})" for j, l in slices]),
        SPILL=_lines(20, [f"copy_lanes(out, {j * KW + l}, acc, {j * KW + l})" for j, l in slices]),
    )


_WEIGHT_TEMPLATE = """
def kernel(x, dy, buffer, lanes, taps, positions, chunk, dw, n0, n1, ph, pw):
    N, C, H, W = x.shape
    _, K, P, Q = dy.shape
    G, blocks, T, _ = dw.shape
    Cg, Kg, M = C // G, K // G, P * Q
    Hp, Wp = buffer.shape[1], buffer.shape[2]
    xf, yf, bf, lf, wf = x.reshape(-1), dy.reshape(-1), buffer.reshape(-1), lanes.reshape(-1), dw.reshape(-1)
    acc = carray(stack_array({NA}, dw.dtype), ({NA},))
    for n in range(n0, n1):
        fill_buffer(xf, bf, n, C, H, W, Hp, Wp, ph, pw)
        # dy[n] as (G, K-blocks, M, KW): channels become lanes, padding lanes stay zero. In tiles of V
        # positions x V channels, each a vector transpose where it is whole; the rest element by element,
        # a channel's V consecutive positions at a time (README, "backward_weight's dy transpose")
        for block in range(G * blocks):
            k0 = block // blocks * Kg + block % blocks * {KW}
            width = min({KW}, (block // blocks + 1) * Kg - k0)
            for m0 in range(0, M, {V}):
                m1, l0 = min(M, m0 + {V}), 0
                if m1 - m0 == {V}:
                    while l0 + {V} <= width:
                        transpose_lanes(lf, (block * M + m0) * {KW} + l0, {KW}, yf, (n * K + k0 + l0) * M + m0, M)
                        l0 += {V}
                for l in range(l0, width):
                    src, dst = (n * K + k0 + l) * M, block * M * {KW} + l
                    for m in range(m0, m1):
                        lf[uint64(dst + m * {KW})] = yf[uint64(src + m)]
        for gi in range(G):
            image = gi * Cg * Hp * Wp
            for kb in range(blocks):
                block = gi * blocks + kb
                row = block * M * {KW}
                for m0 in range(0, M, chunk):  # a chunk of dy's lanes stays in L1 over all tap blocks
                    for t0 in range(0, T, {TB}):
{TAPS}
{LOAD}
                        for m in range(m0, min(M, m0 + chunk)):
                            o = positions[m]
                            d = row + m * {KW}
{FMAS}
{STORE}
"""


def _weight_source(TB, KW, V):
    """backward_weight's source for TB taps x KW channels; accumulator of tap j, lanes l: acc[j*KW + l]. The
    last tap block repeats the last tap (its accumulators compute and store the same sums)."""
    slices = [(j, l) for j in range(TB) for l in range(0, KW, V)]
    taps = []
    for j in range(TB):
        taps += [f"b{j} = image + taps[t0 + {j}]", f"d{j} = (block * T + min(t0 + {j}, T - 1)) * {KW}"]
    fmas = []
    for j in range(TB):
        fmas.append(f"x{j} = bf[uint64(b{j} + o)]")
        fmas += [f"fma_lanes(acc, {j * KW + l}, lf, d + {l}, x{j})" for l in range(0, KW, V)]
    return _WEIGHT_TEMPLATE.format(
        TB=TB, KW=KW, V=V, NA=TB * KW,
        TAPS=_lines(24, taps),
        LOAD=_lines(24, [f"copy_lanes(acc, {j * KW + l}, wf, d{j} + {l})" for j, l in slices]),
        FMAS=_lines(28, fmas),
        STORE=_lines(24, [f"copy_lanes(wf, d{j} + {l}, acc, {j * KW + l})" for j, l in slices]),
    )


_LANES_TEMPLATE = """
def kernel(dy, buffer, taps, positions, w, dx, n0, n1, top, left):
    N, K, P, Q = dy.shape
    _, C, H, W = dx.shape
    G, Cb, T, V = w.shape
    Cg, Kg, M, L, TV = C // G, K // G, H * W, P * Q, T * V
    kblocks, Hp, Wp = buffer.shape[0], buffer.shape[1], buffer.shape[2]
    yf, bf, wf, xf = dy.reshape(-1), buffer.reshape(-1), w.reshape(-1), dx.reshape(-1)
    acc = carray(stack_array({NA}, dx.dtype), ({NA},))
    u0, u1, v0, v1 = max(0, -top), min(P, Hp - top), max(0, -left), min(Q, Wp - left)
    for n in range(n0, n1):
        for gi in range(G):
            # dy[n]'s channels of group gi become the lanes of the buffer (kblocks, Hp, Wp, V), shifted by
            # (top, left); the border and the lanes past Kg stay zero
            for k0 in range(0, Kg, V):
                src = (n * K + gi * Kg + k0) * L
                for u in range(u0, u1):
                    for v in range(v0, v1):
                        dst = ((k0 // V * Hp + u + top) * Wp + v + left) * V
                        for l in range(min(V, Kg - k0)):
                            bf[uint64(dst + l)] = yf[uint64(src + l * L + u * Q + v)]
            for c0 in range(0, Cb, {CB}):
                cw = min({CB}, Cg - c0)
                wrow = (gi * Cb + c0) * TV
                for m0 in range(0, M, {QB}):
{POSITIONS}
{INIT}
                    for t in range(T):
                        o = taps[t]
                        wt = wrow + t * V
{FMAS}
                    row = (n * C + gi * Cg + c0) * M
{STORE}
"""


def _lanes_source(QB, CB, V):
    """backward_input's source with dy's channels as the lanes: QB positions x CB input channels, one vector
    accumulator each (acc[(j*CB + i)*V]), summed across its lanes at the end."""
    pairs = [(j, i) for j in range(QB) for i in range(CB)]
    stores = []
    for j, i in pairs:
        index = f"row + {i} * M + min(m0 + {j}, M - 1)"
        stores += [f"if {i} < cw:", f"    xf[uint64({index})] = sum_lanes(acc, {(j * CB + i) * V})"]
    return _LANES_TEMPLATE.format(
        QB=QB, CB=CB, NA=QB * CB * V,
        POSITIONS=_lines(20, [f"b{j} = positions[m0 + {j}]" for j in range(QB)]),
        INIT=_lines(20, [f"zero_lanes(acc, {(j * CB + i) * V})" for j, i in pairs]),
        FMAS=_lines(24, [f"fma_vectors(acc, {(j * CB + i) * V}, bf, b{j} + o, wf, wt + {i} * TV)" for j, i in pairs]),
        STORE=_lines(20, stores),
    )


def _config(Kg, V):
    """(QB, KW): 1, 2 or 4 vectors of channels per block, 8 positions (4 with 4 vectors): 8-16 accumulator
    registers, enough independent FMAs to cover their 4-cycle latency on two FMA ports."""
    vectors = min(4, -(-Kg // V))
    vectors = 4 if vectors == 3 else vectors
    return (8 if vectors <= 2 else 4), vectors * V


# One prange iteration per part of the images, each part run by the serial kernel with its own scratch
# arrays (the leading axis of ``buffers`` etc.): Numba's threading layer keeps its threads waiting for work,
# where Python threads handed work through a queue took 60-80 us per hand-off on a 2-core VM (waking an idle
# core), more than a LeNet-sized convolution gains from the second core (README, "Threads").
_RUNNERS = {
    "forward": """
@njit(parallel=True, nogil=True, cache=True)
def run(bounds, buffers, x, taps, positions, w, bias, y, ph, pw, relu):
    for i in prange(bounds.size - 1):
        kernel(x, buffers[i], taps, positions, w, bias, y, bounds[i], bounds[i + 1], ph, pw, relu)
""",
    "lanes": """
@njit(parallel=True, nogil=True, cache=True)
def run(bounds, buffers, dy, taps, positions, w, dx, top, left):
    for i in prange(bounds.size - 1):
        kernel(dy, buffers[i], taps, positions, w, dx, bounds[i], bounds[i + 1], top, left)
""",
    "weight": """
@njit(parallel=True, nogil=True, cache=True)
def run(bounds, buffers, lanes, partials, x, dy, taps, positions, chunk, ph, pw):
    for i in prange(bounds.size - 1):
        kernel(x, dy, buffers[i], lanes[i], taps, positions, chunk, partials[i], bounds[i], bounds[i + 1], ph, pw)
""",
}

_HEADER = """# Generated by kernels/conv2d/numba_blocked.py ({NAME}): a cache, safe to delete.
from numba import carray, njit, prange, uint64

from kernels.conv2d.numba_blocked import _fill_buffer as fill_buffer
from kernels.simd import (copy_lanes, fma_lanes, fma_vectors, relu_lanes, stack_array, sum_lanes,
                          transpose_lanes, zero_lanes)

"""


def _module_text(source, runner, name):
    return (_HEADER.format(NAME=name) + "@njit(nogil=True, cache=True)" + source
            + _RUNNERS[runner])


def _compile(source, runner, name):
    """(kernel, run): the kernel's source and its parallel runner as a module. Written to the kernel cache
    (``cache.load_module``) and imported, so Numba caches their machine code on disk and a new process
    loads them instead of compiling (about 0.5-1 s each); compiled in memory where there is no cache."""
    module = cache.load_module("conv2d_blocked", _module_text(source, runner, name), f"conv2d v2_direct_blocked {name}")
    return module.kernel, module.run


@functools.lru_cache(maxsize=None)
def _kernel(QB, KW, V):
    return _compile(_source(QB, KW, V), "forward", f"QB={QB} KW={KW} V={V}")


@functools.lru_cache(maxsize=None)
def _weight_kernel(TB, KW, V):
    return _compile(_weight_source(TB, KW, V), "weight", f"backward_weight TB={TB} KW={KW} V={V}")


@functools.lru_cache(maxsize=None)
def _lanes_kernel(QB, CB, V):
    return _compile(_lanes_source(QB, CB, V), "lanes", f"backward_input lanes QB={QB} CB={CB} V={V}")


def _lanes_config(Cg):
    """(QB, CB): input channels in blocks of at most 6, as even as possible, and as many positions as keep
    the QB*CB accumulators, QB dy vectors and CB weight vectors within the 32 vector registers."""
    blocks = -(-Cg // 6)
    CB = -(-Cg // blocks)
    return min(8, (28 - CB) // (CB + 1)), CB


def _pack(w, groups, KW):
    """(K, C/g, R, S) -> (groups, K-blocks, C/g*R*S, KW), output channels zero-padded to whole blocks."""
    K, Cg, R, S = w.shape
    Kg = K // groups
    blocks = -(-Kg // KW)
    packed = np.zeros((groups, blocks * KW, Cg * R * S), w.dtype)
    packed[:, :Kg] = w.reshape(groups, Kg, -1)
    return np.ascontiguousarray(packed.reshape(groups, blocks, KW, -1).transpose(0, 1, 3, 2))


def _bounds(N, flops):
    """Image bounds of the parts the images are split into: one part per Numba thread when the convolution
    is large enough (PARALLEL_MIN_FLOPS), else one; an int64 array [0, ..., N]."""
    parts = max(1, min(N, numba.get_num_threads())) if flops >= PARALLEL_MIN_FLOPS else 1
    return np.array([N * i // parts for i in range(parts + 1)], np.int64)


def _direct(x, w, bias, out_shape, stride, dilation, padding, groups, relu):
    """y (N, K, P, Q) = conv(x, w) + bias over the input zero-padded by ``padding`` (negative: cropped);
    x and w of the same float type, C-contiguous."""
    N, C, H, W = x.shape
    K, Cg, R, S = w.shape
    _, _, P, Q = out_shape
    ph, pw = padding
    V = simd.lanes(x.dtype)
    QB, KW = _config(K // groups, V)
    packed = _pack(w, groups, KW)
    blocks = packed.shape[1]
    padded_bias = np.zeros((groups, blocks * KW), x.dtype)
    if bias is not None:
        padded_bias[:, : K // groups] = bias.reshape(groups, -1)
    Hp, Wp, taps, positions = _tables(Cg, R, S, P, Q, stride, dilation, position_block=QB)
    y = np.empty(out_shape, x.dtype)
    kernel, run = _kernel(QB, KW, V)
    bounds = _bounds(N, 2 * N * K * P * Q * Cg * R * S)
    buffers = np.zeros((bounds.size - 1, C, Hp, Wp), x.dtype)
    if not y.size:
        return y
    if bounds.size == 2:
        kernel(x, buffers[0], taps, positions, packed, padded_bias, y, 0, N, ph, pw, relu)
    else:
        run(bounds, buffers, x, taps, positions, packed, padded_bias, y, ph, pw, relu)
    return y


def _operand(array):
    """C-contiguous float32 or float64 (the kernels are compiled for these two)."""
    if array.dtype in (np.float32, np.float64):
        return np.ascontiguousarray(array)
    return np.ascontiguousarray(array, np.float32 if array.itemsize < 4 else np.float64)


def forward_blocked(x, w, b, g, activation=None):
    """The blocked kernel on any geometry (what the registered variant runs where ``prefers`` holds)."""
    dtype, x = x.dtype, _operand(x)
    w = _operand(w).astype(x.dtype, copy=False)
    b = None if b is None else _operand(b).astype(x.dtype, copy=False)
    y = _direct(x, w, b, g.y_shape, g.stride, g.dilation, g.padding, g.groups, activation == "relu")
    return y.astype(dtype, copy=False)


def backward_input_blocked(dy, w, g):
    """Stride 1 only: the blocked kernel on dy with the transposed, flipped weight."""
    if g.stride != (1, 1):
        raise ValueError(f"backward_input_blocked needs stride (1, 1), got {g.stride}")
    dtype, dy = dy.dtype, _operand(dy)
    w = _operand(w).astype(dy.dtype, copy=False)
    Kg, Cg = g.K // g.groups, g.C // g.groups
    # w'[c, k, r, s] = w[k, c, R-1-r, S-1-s] within each group
    flipped = w.reshape(g.groups, Kg, Cg, g.R, g.S)[:, :, :, ::-1, ::-1].transpose(0, 2, 1, 3, 4)
    flipped = np.ascontiguousarray(flipped).reshape(g.C, Kg, g.R, g.S)
    (dh, dw), (ph, pw) = g.dilation, g.padding
    padding = ((g.R - 1) * dh - ph, (g.S - 1) * dw - pw)
    dx = _direct(dy, flipped, None, g.x_shape, (1, 1), g.dilation, padding, g.groups, False)
    return dx.astype(dtype, copy=False)


def backward_input_lanes(dy, w, g):
    """Stride 1 only, for groups with few input channels: dx[c, position] = sum over taps t and output
    channels k of dy[k, position + t] * w'[c, t, k], with dy's output channels as the vector lanes (dy
    transposed per image into a zero-bordered (K-blocks, Hp, Wp, V) buffer) and QB positions x CB input
    channels of vector accumulators, each summed across its lanes once at the end."""
    if g.stride != (1, 1):
        raise ValueError(f"backward_input_lanes needs stride (1, 1), got {g.stride}")
    dtype, dy = dy.dtype, _operand(dy)
    w = _operand(w).astype(dy.dtype, copy=False)
    V = simd.lanes(dy.dtype)
    G, Kg, Cg = g.groups, g.K // g.groups, g.C // g.groups
    QB, CB = _lanes_config(Cg)
    kblocks, Cb = -(-Kg // V), -(-Cg // CB) * CB
    # packed[g, c, (kb, r, s), l] = w[g*Kg + kb*V + l, c, R-1-r, S-1-s], zero for padding channels
    flipped = w.reshape(G, Kg, Cg, g.R, g.S)[:, :, :, ::-1, ::-1].transpose(0, 2, 1, 3, 4)
    packed = np.zeros((G, Cb, kblocks * V, g.R, g.S), dy.dtype)
    packed[:, :Cg, :Kg] = flipped
    packed = packed.reshape(G, Cb, kblocks, V, g.R, g.S).transpose(0, 1, 2, 4, 5, 3)
    packed = np.ascontiguousarray(packed).reshape(G, Cb, kblocks * g.R * g.S, V)
    (dh, dw), (ph, pw) = g.dilation, g.padding
    # the buffer holds dy (K-blocks, Hp, Wp, V): its taps are those of a stride-1 conv over K-blocks "channels"
    # with output H x W, in units of V elements
    Hp, Wp, taps, positions = _tables(kblocks, g.R, g.S, g.H, g.W, (1, 1), g.dilation, position_block=QB, scale=V)
    dx = np.empty(g.x_shape, dy.dtype)
    kernel, run = _lanes_kernel(QB, CB, V)
    bounds = _bounds(g.N, 2 * g.N * g.C * g.H * g.W * Kg * g.R * g.S)
    buffers = np.zeros((bounds.size - 1, kblocks, Hp, Wp, V), dy.dtype)
    top, left = (g.R - 1) * dh - ph, (g.S - 1) * dw - pw
    if dx.size and bounds.size == 2:
        kernel(dy, buffers[0], taps, positions, packed, dx, 0, g.N, top, left)
    elif dx.size:
        run(bounds, buffers, dy, taps, positions, packed, dx, top, left)
    return dx.astype(dtype, copy=False)


def backward_weight_blocked(dy, x, g):
    """dw[k, t] = sum over images and positions of dy[n, k, m] * x[n, position m + tap t]: TB taps x KW output
    channels in registers, the positions streamed; each thread sums its images into its own dw, and the
    threads' partial sums are added in image order."""
    dtype, dy = dy.dtype, _operand(dy)
    x = _operand(x).astype(dy.dtype, copy=False)
    ph, pw = g.padding
    Kg, M, T = g.K // g.groups, g.P * g.Q, g.C // g.groups * g.R * g.S
    V = simd.lanes(dy.dtype)
    TB, KW = _config(Kg, V)
    blocks = -(-Kg // KW)
    Hp, Wp, taps, positions = _tables(g.C // g.groups, g.R, g.S, g.P, g.Q, g.stride, g.dilation, tap_block=TB)
    chunk = max(1, CHUNK_BYTES // (KW * dy.itemsize))
    kernel, run = _weight_kernel(TB, KW, V)
    bounds = _bounds(g.N, 2 * g.N * g.K * M * T)
    parts = bounds.size - 1
    buffers = np.zeros((parts, g.C, Hp, Wp), dy.dtype)
    lanes = np.zeros((parts, g.groups, blocks, M, KW), dy.dtype)
    partials = np.zeros((parts, g.groups, blocks, T, KW), dy.dtype)
    if parts == 1:
        kernel(x, dy, buffers[0], lanes[0], taps, positions, chunk, partials[0], 0, g.N, ph, pw)
    else:
        run(bounds, buffers, lanes, partials, x, dy, taps, positions, chunk, ph, pw)
    total = partials[0]
    for part in partials[1:]:  # in image order, so the sum does not depend on thread timing
        total = total + part
    dw = total.transpose(0, 1, 3, 2).reshape(g.groups, blocks * KW, T)[:, :Kg]
    return np.ascontiguousarray(dw.reshape(g.w_shape), dtype)


def deep(depth: int, positions: int) -> bool:
    """Whether a pass is deep enough for v0's BLAS GEMM to beat the blocked kernel: a reduction of 2304 or
    more (256 channels at 3x3), or 1152 or more over at most 64 positions (VGG's 128 -> 256 at 8x8).
    Measured on VGG-11's CIFAR layers at batch 64 and on 256@28x28, 512@14x14 at batch 8
    (kernels/conv2d/README.md, "Deep layers")."""
    return depth >= 2304 or (depth >= 1152 and positions <= 64)


def deep_weight(depth: int, positions: int) -> bool:
    """The same for backward_weight, whose blocked kernel holds up longer: a reduction of 4608 or more (512
    channels at 3x3), or 2304 or more over at most 16 positions (measured as ``deep``)."""
    return depth >= 4608 or (depth >= 2304 and positions <= 16)


# Channels per group from which Winograd's forward and backward_input beat the blocked kernel on any plane:
# 96 -> 96 at 16x16 and 32x32, 128 -> 128 at 16x16 and 28x28 (0.6-0.87 of its time); 64 channels lost or tied.
WINOGRAD_WIDTH = 96
# Rows of Winograd's 16 GEMMs (tiles of the pass's output over the batch) from which its forward and
# backward_input beat v0: below, the GEMMs are too thin to pay for reading the transformed filters U, 16/9
# times the weights' bytes (512 -> 512 at 2x2: v0 faster at batch 8-32, Winograd from 64; at 4x4 from 16).
WINOGRAD_MIN_ROWS = 64


def prefers_winograd(g, op) -> bool:
    """Whether a 3x3 stride-1 pass runs numpy.v3_winograd: backward_weight on deep passes (``deep``);
    forward and backward_input on deep passes or with 96 or more input and output channels per group, once
    the batch gives its GEMMs ``WINOGRAD_MIN_ROWS`` rows (kernels/conv2d/README.md, "Winograd")."""
    from kernels.conv2d.winograd import applies, gemm_rows  # here: importing it first would make v0 the default

    Cg, Kg = g.C // g.groups, g.K // g.groups
    if op == "conv2d_backward_weight":
        return deep(Cg * 9, g.P * g.Q) and applies(g)
    backward_input = op == "conv2d_backward_input"
    depth, positions = (Kg * 9, g.H * g.W) if backward_input else (Cg * 9, g.P * g.Q)
    wide = min(Cg, Kg) >= WINOGRAD_WIDTH
    return ((wide or deep(depth, positions)) and gemm_rows(g, backward_input) >= WINOGRAD_MIN_ROWS
            and applies(g, backward_input))


def prefers_forward(g):
    """Whether the blocked forward beats v0 here: with 6 or more channels per group a block's lanes are at
    least 6/16 busy, and v0's GEMMs are slower still (kernels/conv2d/README.md, v2 measurements); but not
    on deep layers, where v0's one large GEMM per batch block (or Winograd's 16) wins."""
    return g.K // g.groups >= 6 and not deep(g.C // g.groups * g.R * g.S, g.P * g.Q)


def prefers_backward_input(g):
    """Which kernel backward_input runs: "lanes" at stride 1 for groups of fewer than 16 input channels and
    16 or more output channels (dy's channels fill the lanes: LeNet C3 0.41 ms against the blocked 0.70 and
    v0's 1.04), else "blocked" at stride 1 with 6 or more input channels per group, else None (v0's: a
    stride, a 1x1 filter, where v0 is one plain GEMM per image, both channel counts small, or a deep layer);
    figures in kernels/conv2d/README.md."""
    if g.stride != (1, 1) or g.R * g.S == 1 or deep(g.K // g.groups * g.R * g.S, g.H * g.W):
        return None
    if g.C // g.groups < 16 and g.K // g.groups >= 16:
        return "lanes"
    return "blocked" if g.C // g.groups >= 6 else None


def prefers_backward_weight(g):
    """As the forward: 6 or more output channels per group (the lanes); faster than v0 on every measured
    LeNet and ResNet shape, 1x1 and stride 2 included, but not on the deepest layers (``deep_weight``)."""
    return g.K // g.groups >= 6 and not deep_weight(g.C // g.groups * g.R * g.S, g.P * g.Q)


@register("conv2d_forward", "numba", "v2_direct_blocked", default=True)
@fuses("relu")
def conv2d_forward(x, w, b, g, activation=None):
    """Winograd on deep or wide 3x3 stride-1 layers (``prefers_winograd``); else the register-blocked direct
    convolution (positions x output-channel lanes), threads over images; v0 on the other deep layers and
    where groups have fewer than 6 output channels."""
    if prefers_winograd(g, "conv2d_forward"):
        return variant("conv2d_forward", "numpy.v3_winograd").fn(x, w, b, g, activation)
    if prefers_forward(g):
        return forward_blocked(x, w, b, g, activation)
    return variant("conv2d_forward", "numpy.v0_im2col").fn(x, w, b, g, activation)


@register("conv2d_backward_input", "numba", "v2_direct_blocked", default=True)
def conv2d_backward_input(dy, w, g):
    """Stride 1, not 1x1: the kernel with dy's channels as lanes where groups have few input channels and
    16+ output channels, else the blocked kernel on dy with the flipped, transposed weight where groups have
    6+ input channels; before either, Winograd on deep or wide 3x3 layers (``prefers_winograd``); v0
    otherwise."""
    if prefers_winograd(g, "conv2d_backward_input"):
        return variant("conv2d_backward_input", "numpy.v3_winograd").fn(dy, w, g)
    kernel = prefers_backward_input(g)
    if kernel == "lanes":
        return backward_input_lanes(dy, w, g)
    if kernel == "blocked":
        return backward_input_blocked(dy, w, g)
    return variant("conv2d_backward_input", "numpy.v0_im2col").fn(dy, w, g)


@register("conv2d_backward_weight", "numba", "v2_direct_blocked", default=True)
def conv2d_backward_weight(dy, x, g):
    """Winograd on deep 3x3 stride-1 layers (``prefers_winograd``); else with 6+ output channels per group
    the blocked kernel with taps and positions swapped, per-thread partial sums; v0 otherwise."""
    if prefers_winograd(g, "conv2d_backward_weight"):
        return variant("conv2d_backward_weight", "numpy.v3_winograd").fn(dy, x, g)
    if prefers_backward_weight(g):
        return backward_weight_blocked(dy, x, g)
    return variant("conv2d_backward_weight", "numpy.v0_im2col").fn(dy, x, g)
