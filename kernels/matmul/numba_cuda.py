"""Numba CUDA SGEMM ladder (v1-v6): C = A @ B for row-major matrices, after siboehm's SGEMM_CUDA worklog.

Every kernel takes three C-contiguous 3-D arrays ``a (Ba, M, K)``, ``b (Bb, K, N)``, ``c (B, M, N)``;
``blockIdx.z`` is the batch index, and an operand with a batch of 1 is shared by every batch entry (NumPy
broadcasting without copies). Loads past an edge read zero and stores past an edge are skipped, so any M, N,
K work with the same tile sizes. Kernels are built by factories closing over the dtype and tile sizes (which
Numba folds as compile-time constants) and compiled once per (variant, dtype) with an explicit signature.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
from numba import cuda, float32, float64

from kernels import device_arrays
from kernels.cuda_tools import as_batch, as_numba_array, batch_chunks, ceil_div, numba_stream
from kernels.matmul import matmul_shape
from kernels.registry import register

_NUMBA_TYPES = {np.dtype(np.float32): float32, np.dtype(np.float64): float64}


def _signature(dtype) -> str:
    name = str(_NUMBA_TYPES[np.dtype(dtype)])
    return f"void({name}[:, :, ::1], {name}[:, :, ::1], {name}[:, :, ::1])"


# --- kernel factories --------------------------------------------------------------------------------------

def _v1_naive(dtype):
    def kernel(a, b, c):
        # threadIdx.x walks *rows*: the 32 threads of a warp read 32 different rows of A (32 transactions
        # per load instead of one) and write a column of C. Each thread owns one output c[row, col].
        z = cuda.blockIdx.z
        za = z if a.shape[0] > 1 else 0
        zb = z if b.shape[0] > 1 else 0
        row = cuda.blockIdx.x * cuda.blockDim.x + cuda.threadIdx.x
        col = cuda.blockIdx.y * cuda.blockDim.y + cuda.threadIdx.y
        if row < c.shape[1] and col < c.shape[2]:
            acc = dtype(0)
            for k in range(a.shape[2]):
                acc += a[za, row, k] * b[zb, k, col]
            c[z, row, col] = acc

    return kernel


def _v2_coalesced(dtype):
    def kernel(a, b, c):
        # threadIdx.x walks *columns*: a warp reads 32 consecutive elements of a row of B (one transaction),
        # broadcasts one element of A, and writes 32 consecutive elements of C.
        z = cuda.blockIdx.z
        za = z if a.shape[0] > 1 else 0
        zb = z if b.shape[0] > 1 else 0
        col = cuda.blockIdx.x * cuda.blockDim.x + cuda.threadIdx.x
        row = cuda.blockIdx.y * cuda.blockDim.y + cuda.threadIdx.y
        if row < c.shape[1] and col < c.shape[2]:
            acc = dtype(0)
            for k in range(a.shape[2]):
                acc += a[za, row, k] * b[zb, k, col]
            c[z, row, col] = acc

    return kernel


def _v3_smem_tiles(dtype, tile):
    def kernel(a, b, c):
        # A TILE x TILE block of threads owns a TILE x TILE block of C. Each thread stages one element of the
        # A tile and one of the B tile per step, so every global element is read M/TILE (or N/TILE) times
        # instead of M (or N) times; the dot products then run out of shared memory.
        a_tile = cuda.shared.array((tile, tile), dtype)
        b_tile = cuda.shared.array((tile, tile), dtype)
        z = cuda.blockIdx.z
        za = z if a.shape[0] > 1 else 0
        zb = z if b.shape[0] > 1 else 0
        tx = cuda.threadIdx.x
        ty = cuda.threadIdx.y
        row = cuda.blockIdx.y * tile + ty
        col = cuda.blockIdx.x * tile + tx
        m, n, depth = c.shape[1], c.shape[2], a.shape[2]
        acc = dtype(0)
        for k0 in range(0, depth, tile):
            # Zeros past an edge add nothing to the dot product, so partial tiles need no special inner loop.
            a_tile[ty, tx] = a[za, row, k0 + tx] if row < m and k0 + tx < depth else dtype(0)
            b_tile[ty, tx] = b[zb, k0 + ty, col] if k0 + ty < depth and col < n else dtype(0)
            cuda.syncthreads()  # both tiles complete before anyone reads them
            for k in range(tile):
                acc += a_tile[ty, k] * b_tile[k, tx]
            cuda.syncthreads()  # everyone done reading before the next step overwrites the tiles
        if row < m and col < n:
            c[z, row, col] = acc

    return kernel


def _v4_1d_blocktile(dtype, bm, bn, bk, tm):
    threads = bm * bn // tm
    assert bm * bk == threads and bk * bn == threads, "one A and one B element per thread per step"

    def kernel(a, b, c):
        # Each thread owns TM consecutive rows of one column of the BM x BN block of C. Per k it reads one
        # B value from shared memory and reuses it TM times, so shared-memory traffic per FMA drops ~TM-fold.
        a_tile = cuda.shared.array((bm, bk), dtype)
        b_tile = cuda.shared.array((bk, bn), dtype)
        acc = cuda.local.array(tm, dtype)
        z = cuda.blockIdx.z
        za = z if a.shape[0] > 1 else 0
        zb = z if b.shape[0] > 1 else 0
        tid = cuda.threadIdx.x
        thread_col = tid % bn
        thread_row = tid // bn
        a_row, a_col = tid // bk, tid % bk
        b_row, b_col = tid // bn, tid % bn
        block_row = cuda.blockIdx.y * bm
        block_col = cuda.blockIdx.x * bn
        m, n, depth = c.shape[1], c.shape[2], a.shape[2]
        for i in range(tm):
            acc[i] = dtype(0)
        for k0 in range(0, depth, bk):
            r, k = block_row + a_row, k0 + a_col
            a_tile[a_row, a_col] = a[za, r, k] if r < m and k < depth else dtype(0)
            k, col = k0 + b_row, block_col + b_col
            b_tile[b_row, b_col] = b[zb, k, col] if k < depth and col < n else dtype(0)
            cuda.syncthreads()  # tiles complete before the dot products
            for k in range(bk):
                b_value = b_tile[k, thread_col]
                for i in range(tm):
                    acc[i] += a_tile[thread_row * tm + i, k] * b_value
            cuda.syncthreads()  # tiles consumed before they are overwritten
        col = block_col + thread_col
        for i in range(tm):
            r = block_row + thread_row * tm + i
            if r < m and col < n:
                c[z, r, col] = acc[i]

    return kernel


def _v5_2d_blocktile(dtype, bm, bn, bk, tm, tn):
    threads = (bm // tm) * (bn // tn)

    def kernel(a, b, c):
        # Each thread owns a TM x TN block of C held in registers. Per k it loads TM values of A and TN of
        # B from shared memory into registers and does TM*TN FMAs: an outer product, TM*TN/(TM+TN) FMAs per
        # shared load instead of ~1 (v4: TM/(TM+1)).
        a_tile = cuda.shared.array((bm, bk), dtype)
        b_tile = cuda.shared.array((bk, bn), dtype)
        acc = cuda.local.array((tm, tn), dtype)
        reg_m = cuda.local.array(tm, dtype)
        reg_n = cuda.local.array(tn, dtype)
        z = cuda.blockIdx.z
        za = z if a.shape[0] > 1 else 0
        zb = z if b.shape[0] > 1 else 0
        tid = cuda.threadIdx.x
        thread_row = tid // (bn // tn)
        thread_col = tid % (bn // tn)
        block_row = cuda.blockIdx.y * bm
        block_col = cuda.blockIdx.x * bn
        m, n, depth = c.shape[1], c.shape[2], a.shape[2]
        for i in range(tm):
            for j in range(tn):
                acc[i, j] = dtype(0)
        for k0 in range(0, depth, bk):
            # The tiles hold more elements than the block has threads: each thread stages every
            # THREADS-th element, consecutive threads on consecutive addresses (coalesced).
            for e in range(tid, bm * bk, threads):
                r, k = block_row + e // bk, k0 + e % bk
                a_tile[e // bk, e % bk] = a[za, r, k] if r < m and k < depth else dtype(0)
            for e in range(tid, bk * bn, threads):
                k, col = k0 + e // bn, block_col + e % bn
                b_tile[e // bn, e % bn] = b[zb, k, col] if k < depth and col < n else dtype(0)
            cuda.syncthreads()  # tiles complete before the outer products
            for k in range(bk):
                for i in range(tm):
                    reg_m[i] = a_tile[thread_row * tm + i, k]
                for j in range(tn):
                    reg_n[j] = b_tile[k, thread_col * tn + j]
                for i in range(tm):
                    for j in range(tn):
                        acc[i, j] += reg_m[i] * reg_n[j]
            cuda.syncthreads()  # tiles consumed before they are overwritten
        for i in range(tm):
            r = block_row + thread_row * tm + i
            for j in range(tn):
                col = block_col + thread_col * tn + j
                if r < m and col < n:
                    c[z, r, col] = acc[i, j]

    return kernel


def _v6_vectorized(dtype, bm, bn, bk, tm, tn):
    threads = (bm // tm) * (bn // tn)
    assert bm * bk == 4 * threads and bk * bn == 4 * threads, "one 4-wide group of A and of B per thread"

    def kernel(a, b, c):
        # v5 with A's tile stored transposed (k-major): a thread's TM values of A for one k are then
        # consecutive in shared memory, like its TN values of B, so both register loads are contiguous runs
        # the compiler may merge into wide (LDS.64/128) loads. Global loads are grouped in runs of 4
        # consecutive elements per thread; Numba has no float4, so these stay 4 scalar loads.
        a_tile_t = cuda.shared.array((bk, bm), dtype)
        b_tile = cuda.shared.array((bk, bn), dtype)
        acc = cuda.local.array((tm, tn), dtype)
        reg_m = cuda.local.array(tm, dtype)
        reg_n = cuda.local.array(tn, dtype)
        z = cuda.blockIdx.z
        za = z if a.shape[0] > 1 else 0
        zb = z if b.shape[0] > 1 else 0
        tid = cuda.threadIdx.x
        thread_row = tid // (bn // tn)
        thread_col = tid % (bn // tn)
        a_row, a_col = tid // (bk // 4), (tid % (bk // 4)) * 4
        b_row, b_col = tid // (bn // 4), (tid % (bn // 4)) * 4
        block_row = cuda.blockIdx.y * bm
        block_col = cuda.blockIdx.x * bn
        m, n, depth = c.shape[1], c.shape[2], a.shape[2]
        for i in range(tm):
            for j in range(tn):
                acc[i, j] = dtype(0)
        for k0 in range(0, depth, bk):
            r = block_row + a_row
            for q in range(4):
                k = k0 + a_col + q
                a_tile_t[a_col + q, a_row] = a[za, r, k] if r < m and k < depth else dtype(0)
            k = k0 + b_row
            for q in range(4):
                col = block_col + b_col + q
                b_tile[b_row, b_col + q] = b[zb, k, col] if k < depth and col < n else dtype(0)
            cuda.syncthreads()  # tiles complete before the outer products
            for k in range(bk):
                for i in range(tm):
                    reg_m[i] = a_tile_t[k, thread_row * tm + i]
                for j in range(tn):
                    reg_n[j] = b_tile[k, thread_col * tn + j]
                for i in range(tm):
                    for j in range(tn):
                        acc[i, j] += reg_m[i] * reg_n[j]
            cuda.syncthreads()  # tiles consumed before they are overwritten
        for i in range(tm):
            r = block_row + thread_row * tm + i
            for j in range(tn):
                col = block_col + thread_col * tn + j
                if r < m and col < n:
                    c[z, r, col] = acc[i, j]

    return kernel


# --- variants: factory, tile configuration, launch geometry ------------------------------------------------

@dataclass(frozen=True)
class _Config:
    factory: Callable
    params: dict
    block: tuple[int, ...]  # threads per block
    tile: tuple[int, int]  # (rows, cols) of C one block computes
    doc: str
    tuned: bool = False
    rows_on_x: bool = False  # v1's grid walks rows with x, the uncoalesced mapping it demonstrates

    def grid(self, m: int, n: int, batch: int) -> tuple[int, int, int]:
        rows, cols = ceil_div(m, self.tile[0]), ceil_div(n, self.tile[1])
        return (rows, cols, batch) if self.rows_on_x else (cols, rows, batch)


# v5/v6 tiles are siboehm's for a 4096^2 SGEMM: 128x128 blocks of 256 threads, 8x8 outputs per thread. At
# 1024^2 that is 64 blocks, fewer than the H100's 132 SMs, which the GPU benchmark will show.
CONFIGS = {
    "v1_naive": _Config(_v1_naive, {}, (32, 32), (32, 32), "one thread per output, x over rows (uncoalesced)",
                        rows_on_x=True),
    "v2_coalesced": _Config(_v2_coalesced, {}, (32, 32), (32, 32), "one thread per output, x over columns"),
    "v3_smem_tiles": _Config(_v3_smem_tiles, dict(tile=32), (32, 32), (32, 32), "32x32 shared-memory tiles"),
    "v4_1d_blocktile": _Config(_v4_1d_blocktile, dict(bm=64, bn=64, bk=8, tm=8), (512,), (64, 64),
                               "64x64x8 tiles, 8 outputs (a column) per thread"),
    "v5_2d_blocktile": _Config(_v5_2d_blocktile, dict(bm=128, bn=128, bk=8, tm=8, tn=8), (256,), (128, 128),
                               "128x128x8 tiles, 8x8 register block per thread", tuned=True),
    "v6_vectorized": _Config(_v6_vectorized, dict(bm=128, bn=128, bk=8, tm=8, tn=8), (256,), (128, 128),
                             "v5 with k-major A tile and 4-wide load groups", tuned=True),
}


def _pyfunc(name: str, dtype) -> Callable:
    config = CONFIGS[name]
    kernel = config.factory(_NUMBA_TYPES[np.dtype(dtype)], **config.params)
    kernel.__name__ = kernel.__qualname__ = f"matmul_{name}"  # names the kernel in PTX and reports
    return kernel


@functools.lru_cache(maxsize=None)
def compiled(name: str, dtype) -> Callable:
    """The kernel of variant ``name`` for ``dtype``, compiled on first use (Numba caches per device)."""
    return cuda.jit(_signature(dtype))(_pyfunc(name, dtype))


KERNELS = [(_pyfunc(name, np.float32), _signature(np.float32), config.tuned) for name, config in CONFIGS.items()]


def launch(name: str, a, b):
    """``a @ b`` (numpy.matmul semantics) with the Numba kernel of variant ``name``."""
    dtype = np.dtype(a.dtype)
    if dtype not in _NUMBA_TYPES or b.dtype != dtype:
        raise TypeError(f"matmul {name} supports float32 and float64 operands, got {a.dtype} and {b.dtype}")
    out_shape = matmul_shape(a.shape, b.shape)
    a2 = a.reshape(1, -1) if a.ndim == 1 else a
    b2 = b.reshape(-1, 1) if b.ndim == 1 else b
    (m, depth), n = a2.shape[-2:], b2.shape[-1]
    batch = tuple(np.broadcast_shapes(a2.shape[:-2], b2.shape[:-2]))
    c = device_arrays.empty((math.prod(batch), m, n), dtype, like=a)
    if c.size == 0:
        return c.reshape(out_shape)
    if depth == 0:
        c[...] = 0
        return c.reshape(out_shape)
    config = CONFIGS[name]
    kernel = compiled(name, dtype)
    stream = numba_stream()
    a3, b3 = as_batch(a2, m, depth, batch), as_batch(b2, depth, n, batch)
    for z0, z1 in batch_chunks(c.shape[0]):
        a_z = a3[z0:z1] if a3.shape[0] > 1 else a3
        b_z = b3[z0:z1] if b3.shape[0] > 1 else b3
        grid = config.grid(m, n, z1 - z0)
        kernel[grid, config.block, stream](as_numba_array(a_z), as_numba_array(b_z), as_numba_array(c[z0:z1]))
    return c.reshape(out_shape)


def _register(name: str, default: bool = False):
    def matmul_variant(a, b):
        return launch(name, a, b)

    matmul_variant.__name__ = f"matmul_{name}"
    matmul_variant.__doc__ = f"Numba CUDA: {CONFIGS[name].doc}."
    register("matmul", "numba_cuda", name, device="cuda", default=default)(matmul_variant)


for _name in CONFIGS:
    _register(_name, default=_name == "v6_vectorized")
