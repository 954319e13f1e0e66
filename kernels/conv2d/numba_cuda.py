"""conv2d on the GPU in Python: Numba CUDA kernels, numbered from naive to tuned (the ladder continues in
CUDA C in ``cupy_cuda.py``).

- v1_direct: one thread per output element walks its receptive field; 1x1 stride-1 layers take a
  pointwise kernel that skips the bounds tests. Every input element is read R*S*K/groups times from
  global memory (L1/L2 absorb most of it), so it is bound by load instructions, not FLOPs.
- v2_direct_smem: a block owns a TP x TQ output tile of one image and KB output channels of one group;
  per input channel it stages the tile's receptive field and the KB filters in shared memory, and each
  thread keeps KB accumulators in registers, so one shared load feeds KB FMAs. Depthwise layers get
  KB = 1 (a group has one output channel).
- v3_im2col_gemm: im2col into a (C*R*S, N*P*Q) column matrix, then a shared-memory tiled GEMM per group
  whose epilogue writes NCHW and adds the bias. Costs the column matrix's round trip through memory.
- Every forward kernel takes a compile-time ``RELU`` flag: with it, each output is clamped at 0 in the
  register that holds it, just before the store (``activation="relu"`` of the launchers).
- backward_input v1_direct: transposed convolution as a gather: one thread per input element sums the
  (output, filter tap) pairs that touch it, so no two threads write the same element and no atomics.
- backward_weight / backward_bias v1_block_reduce: one block per weight element (per output channel for
  the bias) strides over N*P*Q and reduces in shared memory; each block owns its output.

Kernels are built by factories closed over the element type and the tile constants, compiled with
explicit signatures on first use and cached per (dtype, config). Importing this module never needs CUDA.
"""

from __future__ import annotations

import math

import numba

from kernels.conv2d.epilogue import fuses
from kernels.cuda_tools import compile_kernel, contiguous, grid_1d, kernel_factory, launch
from kernels.device_arrays import empty
from kernels.registry import register

try:
    from numba import cuda
except ImportError:  # numba-cuda is optional: the registry then reports the backend unavailable
    cuda = None

_A4 = "{t}[:, :, :, ::1]"
_A2 = "{t}[:, ::1]"
_A1 = "{t}[::1]"


@kernel_factory(f"void({_A4}, {_A4}, {_A1}, {_A4}, int32, int32, int32, int32, int32, int32, int32)")
def _direct_forward(T, RELU):
    def direct_forward(x, w, b, y, sh, sw, ph, pw, dh, dw, has_bias):
        i = cuda.grid(1)
        N, K, P, Q = y.shape
        if i >= N * K * P * Q:
            return
        # q fastest: neighbouring threads read neighbouring input columns and write neighbouring outputs
        q = i % Q
        rest = i // Q
        p = rest % P
        rest //= P
        k = rest % K
        n = rest // K
        Cg, R, S = w.shape[1], w.shape[2], w.shape[3]
        H, W = x.shape[2], x.shape[3]
        c0 = k // (K // (x.shape[1] // Cg)) * Cg
        acc = b[k] if has_bias else T(0)
        h0, w0 = p * sh - ph, q * sw - pw
        for c in range(Cg):
            for r in range(R):
                h = h0 + r * dh
                if 0 <= h < H:  # also keeps the simulator from wrapping negative indices
                    for s in range(S):
                        col = w0 + s * dw
                        if 0 <= col < W:
                            acc += x[n, c0 + c, h, col] * w[k, c, r, s]
        if RELU and acc < T(0):  # a compile-time flag: the plain kernel has no test; NaN stays NaN
            acc = T(0)
        y[n, k, p, q] = acc

    return direct_forward


@kernel_factory(f"void({{t}}[:, :, ::1], {_A2}, {_A1}, {{t}}[:, :, ::1], int32)")
def _pointwise_forward(T, RELU):
    def pointwise_forward(x, w, b, y, has_bias):
        # 1x1, stride 1, no padding: y[n, k] = w[k] @ x[n, group], positions contiguous, no bounds tests
        i = cuda.grid(1)
        N, K, PQ = y.shape
        if i >= N * K * PQ:
            return
        j = i % PQ
        k = (i // PQ) % K
        n = i // (PQ * K)
        Cg = w.shape[1]
        c0 = k // (K // (x.shape[1] // Cg)) * Cg
        acc = b[k] if has_bias else T(0)
        for c in range(Cg):
            acc += x[n, c0 + c, j] * w[k, c]
        if RELU and acc < T(0):
            acc = T(0)
        y[n, k, j] = acc

    return pointwise_forward


def _bias_args(b, w):
    """(bias array, flag); without a bias the weight stands in as a never-read placeholder."""
    return (w.reshape(-1), 0) if b is None else (contiguous(b), 1)


@register("conv2d_forward", "numba_cuda", "v1_direct", device="cuda")
@fuses("relu")
def forward_direct(x, w, b, g, threads=128, activation=None):
    """One thread per output element over its receptive field; a bounds-free pointwise kernel for 1x1."""
    x, w = contiguous(x), contiguous(w)
    bias, has_bias = _bias_args(b, w)
    relu = activation == "relu"
    y = empty(g.y_shape, x.dtype, like=x)
    blocks = grid_1d(y.size, threads)
    if (g.R, g.S, g.stride, g.padding) == (1, 1, (1, 1), (0, 0)):
        kernel = compile_kernel(_pointwise_forward, x.dtype, relu)
        launch(
            kernel, blocks, threads,
            x.reshape(g.N, g.C, g.H * g.W), w.reshape(g.K, -1), bias, y.reshape(g.N, g.K, -1), has_bias
        )
        return y
    kernel = compile_kernel(_direct_forward, x.dtype, relu)
    launch(kernel, blocks, threads, x, w, bias, y, *g.stride, *g.padding, *g.dilation, has_bias)
    return y


# ---------------------------------------------------------------- v2: direct with shared-memory tiles


@kernel_factory(f"void({_A4}, {_A4}, {_A1}, {_A4}, int32, int32, int32)")
def _direct_smem_forward(T, TP, TQ, KB, R, S, sh, sw, dh, dw, RELU):
    # the receptive field of a TP x TQ output tile; fixed per config, so shared arrays are static
    IH, IW = (TP - 1) * sh + (R - 1) * dh + 1, (TQ - 1) * sw + (S - 1) * dw + 1
    THREADS = TP * TQ

    def direct_smem_forward(x, w, b, y, ph, pw, has_bias):
        tile = cuda.shared.array((IH, IW), T)
        filters = cuda.shared.array((KB, R, S), T)
        acc = cuda.local.array(KB, T)
        tq, tp = cuda.threadIdx.x, cuda.threadIdx.y
        tid = tp * TQ + tq
        N, K, P, Q = y.shape
        Cg, H, W = w.shape[1], x.shape[2], x.shape[3]
        groups = x.shape[1] // Cg
        Kg = K // groups
        # one flat grid: (image, group, channel block, row tile, column tile), so no axis hits 65535
        q_tiles, p_tiles, k_blocks = (Q + TQ - 1) // TQ, (P + TP - 1) // TP, (Kg + KB - 1) // KB
        block = cuda.blockIdx.x
        q0 = block % q_tiles * TQ
        block //= q_tiles
        p0 = block % p_tiles * TP
        block //= p_tiles
        kb = block % k_blocks
        block //= k_blocks
        grp = block % groups
        n = block // groups
        k0 = grp * Kg + kb * KB
        k_count = min(KB, Kg - kb * KB)
        for j in range(KB):
            acc[j] = b[k0 + j] if has_bias and j < k_count else T(0)
        h_base, w_base = p0 * sh - ph, q0 * sw - pw
        for c in range(Cg):
            for e in range(tid, IH * IW, THREADS):
                h, col = h_base + e // IW, w_base + e % IW
                tile[e // IW, e % IW] = x[n, grp * Cg + c, h, col] if 0 <= h < H and 0 <= col < W else T(0)
            for e in range(tid, KB * R * S, THREADS):
                j, r, s = e // (R * S), e // S % R, e % S
                filters[j, r, s] = w[k0 + j, c, r, s] if j < k_count else T(0)
            cuda.syncthreads()  # the tile and the filters are complete before anyone reads them
            for r in range(R):
                for s in range(S):
                    v = tile[tp * sh + r * dh, tq * sw + s * dw]
                    for j in range(KB):
                        acc[j] += v * filters[j, r, s]
            cuda.syncthreads()  # everyone is done reading before the next channel overwrites them
        p, q = p0 + tp, q0 + tq
        if p < P and q < Q:
            for j in range(KB):
                if j < k_count:
                    v = acc[j]
                    if RELU and v < T(0):
                        v = T(0)
                    y[n, k0 + j, p, q] = v

    return direct_smem_forward


@register("conv2d_forward", "numba_cuda", "v2_direct_smem", device="cuda", default=True)
@fuses("relu")
def forward_direct_smem(x, w, b, g, tile=(8, 16), k_block=8, activation=None):
    """Output tile per block with its receptive field and KB filters in shared memory, KB accumulators per
    thread; KB = 1 for depthwise."""
    x, w = contiguous(x), contiguous(w)
    bias, has_bias = _bias_args(b, w)
    y = empty(g.y_shape, x.dtype, like=x)
    TP, TQ = tile
    Kg = g.K // g.groups
    KB = min(k_block, Kg)
    kernel = compile_kernel(
        _direct_smem_forward, x.dtype, TP, TQ, KB, g.R, g.S, *g.stride, *g.dilation, activation == "relu"
    )
    blocks = g.N * g.groups * math.ceil(Kg / KB) * math.ceil(g.P / TP) * math.ceil(g.Q / TQ)
    if blocks:
        launch(kernel, blocks, (TQ, TP), x, w, bias, y, *g.padding, has_bias)
    return y


# ---------------------------------------------------------------- v3: im2col + tiled GEMM


@kernel_factory(f"void({_A4}, {_A2}, int32, int32, int32, int32, int32, int32, int32, int32, int32, int32)")
def _im2col(T):
    def im2col(x, cols, R, S, P, Q, sh, sw, ph, pw, dh, dw):
        # row (c, r, s), column (n, p, q); columns fastest so writes coalesce and, at stride 1, reads too
        i = cuda.grid(1)
        rows, ncols = cols.shape
        if i >= rows * ncols:
            return
        j, row = i % ncols, i // ncols
        q = j % Q
        p = j // Q % P
        n = j // (P * Q)
        s = row % S
        r = row // S % R
        c = row // (R * S)
        h, col = p * sh - ph + r * dh, q * sw - pw + s * dw
        H, W = x.shape[2], x.shape[3]
        cols[row, j] = x[n, c, h, col] if 0 <= h < H and 0 <= col < W else T(0)

    return im2col


@kernel_factory(f"void({_A2}, {_A2}, {_A1}, {{t}}[:, :, ::1], int32, int32)")
def _gemm_nchw(T, TILE, RELU):
    def gemm_nchw(a, cols, b, y, groups, has_bias):
        # y[n, grp*Kg + m, pq] = sum_kk a[grp*Kg + m, kk] * cols[grp*CgRS + kk, n*PQ + pq]: one TILE x TILE
        # output tile per block, A and B staged through shared memory TILE columns of the reduction at a time
        a_tile = cuda.shared.array((TILE, TILE), T)
        b_tile = cuda.shared.array((TILE, TILE), T)
        tx, ty = cuda.threadIdx.x, cuda.threadIdx.y
        grp = cuda.blockIdx.z
        Kg, depth = a.shape[0] // groups, a.shape[1]
        N, K, PQ = y.shape
        m = cuda.blockIdx.y * TILE + ty
        j = cuda.blockIdx.x * TILE + tx
        a_row = cuda.blockIdx.y * TILE + ty
        acc = T(0)
        for t0 in range(0, depth, TILE):
            kk = t0 + tx
            a_tile[ty, tx] = a[grp * Kg + a_row, kk] if a_row < Kg and kk < depth else T(0)
            kk = t0 + ty
            b_tile[ty, tx] = cols[grp * depth + kk, j] if kk < depth and j < N * PQ else T(0)
            cuda.syncthreads()  # both tiles staged
            for t in range(TILE):
                acc += a_tile[ty, t] * b_tile[t, tx]
            cuda.syncthreads()  # both tiles consumed before the next step overwrites them
        if m < Kg and j < N * PQ:
            k = grp * Kg + m
            if has_bias:
                acc += b[k]
            if RELU and acc < T(0):
                acc = T(0)
            y[j // PQ, k, j % PQ] = acc

    return gemm_nchw


@register("conv2d_forward", "numba_cuda", "v3_im2col_gemm", device="cuda")
@fuses("relu")
def forward_im2col_gemm(x, w, b, g, tile=16, threads=256, activation=None):
    """im2col into a (C*R*S, N*P*Q) column matrix, then a shared-memory tiled GEMM per group writing NCHW."""
    x, w = contiguous(x), contiguous(w)
    bias, has_bias = _bias_args(b, w)
    y = empty(g.y_shape, x.dtype, like=x)
    if g.N == 0:
        return y
    cols = empty((g.C * g.R * g.S, g.N * g.P * g.Q), x.dtype, like=x)
    launch(
        compile_kernel(_im2col, x.dtype), grid_1d(cols.size, threads), threads,
        x, cols, g.R, g.S, g.P, g.Q, *g.stride, *g.padding, *g.dilation
    )
    Kg = g.K // g.groups
    grid = (math.ceil(cols.shape[1] / tile), math.ceil(Kg / tile), g.groups)
    launch(
        compile_kernel(_gemm_nchw, x.dtype, tile, activation == "relu"), grid, (tile, tile),
        w.reshape(g.K, -1), cols, bias, y.reshape(g.N, g.K, -1), g.groups, has_bias
    )
    return y


# ---------------------------------------------------------------- backward passes


@kernel_factory(f"void({_A4}, {_A4}, {_A4}, int32, int32, int32, int32, int32, int32)")
def _gather_backward_input(T):
    def gather_backward_input(dy, w, dx, sh, sw, ph, pw, dh, dw):
        # dx[n, c, h, x] = sum over taps (r, s) and the group's k of dy[n, k, p, q] * w[k, c, r, s], where
        # h = p*sh - ph + r*dh: only taps whose (h + ph - r*dh) is a non-negative multiple of sh contribute
        i = cuda.grid(1)
        N, C, H, W = dx.shape
        if i >= N * C * H * W:
            return
        col = i % W
        h = i // W % H
        c = i // (W * H) % C
        n = i // (W * H * C)
        K, Cg, R, S = w.shape
        P, Q = dy.shape[2], dy.shape[3]
        Kg = K // (C // Cg)
        k0, cl = c // Cg * Kg, c % Cg
        acc = T(0)
        for r in range(R):
            hp = h + ph - r * dh
            if hp >= 0 and hp % sh == 0 and hp // sh < P:
                p = hp // sh
                for s in range(S):
                    wq = col + pw - s * dw
                    if wq >= 0 and wq % sw == 0 and wq // sw < Q:
                        q = wq // sw
                        for k in range(k0, k0 + Kg):
                            acc += dy[n, k, p, q] * w[k, cl, r, s]
        dx[n, c, h, col] = acc

    return gather_backward_input


@register("conv2d_backward_input", "numba_cuda", "v1_direct", device="cuda", default=True)
def backward_input_direct(dy, w, g, threads=128):
    """Transposed convolution as a gather: one thread per input element over the taps that reach it."""
    dy, w = contiguous(dy), contiguous(w)
    dx = empty(g.x_shape, dy.dtype, like=dy)
    launch(
        compile_kernel(_gather_backward_input, dy.dtype), grid_1d(dx.size, threads), threads,
        dy, w, dx, *g.stride, *g.padding, *g.dilation
    )
    return dx


@kernel_factory(f"void({_A4}, {_A4}, {_A4}, int32, int32, int32, int32, int32, int32)")
def _block_reduce_backward_weight(T, THREADS):
    def block_reduce_backward_weight(dy, x, grad_w, sh, sw, ph, pw, dh, dw):
        # block = weight element (k, c, r, s); threads stride over (n, p, q) with q fastest (coalesced)
        buf = cuda.shared.array(THREADS, T)
        tid = cuda.threadIdx.x
        K, Cg, R, S = grad_w.shape
        N, P, Q = dy.shape[0], dy.shape[2], dy.shape[3]
        H, W = x.shape[2], x.shape[3]
        e = cuda.blockIdx.x
        s = e % S
        r = e // S % R
        c = e // (S * R) % Cg
        k = e // (S * R * Cg)
        cin = k // (K // (x.shape[1] // Cg)) * Cg + c
        acc = T(0)
        for j in range(tid, N * P * Q, THREADS):
            q = j % Q
            p = j // Q % P
            n = j // (Q * P)
            h, col = p * sh - ph + r * dh, q * sw - pw + s * dw
            if 0 <= h < H and 0 <= col < W:
                acc += dy[n, k, p, q] * x[n, cin, h, col]
        buf[tid] = acc
        cuda.syncthreads()
        step = THREADS // 2  # tree sum into buf[0]; THREADS is a power of two
        while step > 0:
            if tid < step:
                buf[tid] += buf[tid + step]
            cuda.syncthreads()  # this level's partial sums are written before the next level reads them
            step //= 2
        if tid == 0:
            grad_w[k, c, r, s] = buf[0]

    return block_reduce_backward_weight


@register("conv2d_backward_weight", "numba_cuda", "v1_block_reduce", device="cuda", default=True)
def backward_weight_block_reduce(dy, x, g, threads=128):
    """One block per weight element: a strided sum over N*P*Q and a shared-memory tree; no atomics."""
    dy, x = contiguous(dy), contiguous(x)
    dw = empty(g.w_shape, dy.dtype, like=dy)
    launch(
        compile_kernel(_block_reduce_backward_weight, dy.dtype, threads), dw.size, threads,
        dy, x, dw, *g.stride, *g.padding, *g.dilation
    )
    return dw


@kernel_factory(f"void({{t}}[:, :, ::1], {_A1})")
def _block_reduce_backward_bias(T, THREADS):
    def block_reduce_backward_bias(dy, db):
        # block = output channel k; threads stride over (n, position), positions fastest (coalesced)
        buf = cuda.shared.array(THREADS, T)
        tid, k = cuda.threadIdx.x, cuda.blockIdx.x
        N, PQ = dy.shape[0], dy.shape[2]
        acc = T(0)
        for j in range(tid, N * PQ, THREADS):
            acc += dy[j // PQ, k, j % PQ]
        buf[tid] = acc
        cuda.syncthreads()
        step = THREADS // 2  # tree sum into buf[0]; THREADS is a power of two
        while step > 0:
            if tid < step:
                buf[tid] += buf[tid + step]
            cuda.syncthreads()  # this level's partial sums are written before the next level reads them
            step //= 2
        if tid == 0:
            db[k] = buf[0]

    return block_reduce_backward_bias


@register("conv2d_backward_bias", "numba_cuda", "v1_block_reduce", device="cuda", default=True)
def backward_bias_block_reduce(dy, threads=128):
    """One block per output channel: a strided sum over batch and positions and a shared-memory tree."""
    dy = contiguous(dy)
    N, K, P, Q = dy.shape
    db = empty((K,), dy.dtype, like=dy)
    if K:
        launch(compile_kernel(_block_reduce_backward_bias, dy.dtype, threads), K, threads, dy.reshape(N, K, P * Q), db)
    return db


def _with_and_without_relu(factory, *config, tuned=False):
    """Compile-tier entries of a forward kernel factory (RELU is its last config), plain first."""
    signature = factory.signature.format(t="float32")
    return [(factory(numba.float32, *config, relu), signature, tuned) for relu in (False, True)]


# For the compile tier: each kernel at the configuration its launcher uses on a ResNet 3x3 layer.
KERNELS = [
    *_with_and_without_relu(_direct_forward),
    *_with_and_without_relu(_pointwise_forward),
    *_with_and_without_relu(_direct_smem_forward, 8, 16, 8, 3, 3, 1, 1, 1, 1, tuned=True),
    (_im2col(numba.float32), _im2col.signature.format(t="float32"), False),
    *_with_and_without_relu(_gemm_nchw, 16),
    (_gather_backward_input(numba.float32), _gather_backward_input.signature.format(t="float32"), False),
    (
        _block_reduce_backward_weight(numba.float32, 128),
        _block_reduce_backward_weight.signature.format(t="float32"),
        False,
    ),
    (
        _block_reduce_backward_bias(numba.float32, 128),
        _block_reduce_backward_bias.signature.format(t="float32"),
        False,
    ),
]
