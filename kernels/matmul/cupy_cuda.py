"""CuPy launchers for matmul on a GPU: the cuBLAS baseline (v0) and the CUDA C kernels in this folder (v7-v9).

The ``.cu`` files are compiled by NVRTC through ``cupy.RawModule`` on first use (cached per device and
options). They handle float32 only; other dtypes go to cuBLAS. Operands are batched as ``(B or 1, rows,
cols)`` C-contiguous arrays and a single matrix is shared by the whole batch through a batch stride of 0.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from kernels import cuda_tools, device_arrays
from kernels.cuda_tools import as_batch, batch_chunks, ceil_div, data_pointer, raw_module
from kernels.matmul import matmul_shape
from kernels.registry import register

HERE = Path(__file__).parent
V7_SOURCE = HERE / "sgemm_v7_blocktile.cu"
V8_SOURCE = HERE / "sgemm_v8_tf32_mma.cu"
V9_SOURCE = HERE / "sgemm_v9_tf32_cp_async.cu"

# (path, extern "C" kernel names, tuned): the compile tier compiles each file and expects no spills in tuned ones.
CUDA_SOURCES = [
    (V7_SOURCE, ["sgemm_v7_vec4", "sgemm_v7_scalar"], True),
    (V8_SOURCE, ["sgemm_v8_tf32_vec4", "sgemm_v8_tf32_scalar"], True),
    (V9_SOURCE, ["sgemm_v9_tf32_cp_async_vec4", "sgemm_v9_tf32_cp_async_scalar"], True),
]

# Per source: (entry point prefix, threads per block, rows and columns of C per block).
_LAUNCH = {
    V7_SOURCE: ("sgemm_v7", 256, 128, 128),
    V8_SOURCE: ("sgemm_v8_tf32", 256, 128, 128),
    V9_SOURCE: ("sgemm_v9_tf32_cp_async", 256, 128, 128),
}


@register("matmul", "cupy", "v0_cublas", device="cuda")
def matmul_cublas(a, b):
    """cupy.matmul: cuBLAS (strided-batched) GEMM, the baseline to beat."""
    import cupy

    return cupy.matmul(a, b)


def _launch_source(source: Path, a, b):
    out_shape = matmul_shape(a.shape, b.shape)
    a2 = a.reshape(1, -1) if a.ndim == 1 else a
    b2 = b.reshape(-1, 1) if b.ndim == 1 else b
    (m, depth), n = a2.shape[-2:], b2.shape[-1]
    batch = tuple(np.broadcast_shapes(a2.shape[:-2], b2.shape[:-2]))
    c = device_arrays.empty((math.prod(batch), m, n), np.float32, like=a)
    if c.size == 0:
        return c.reshape(out_shape)
    if depth == 0:
        c[...] = 0
        return c.reshape(out_shape)
    a3, b3 = as_batch(a2, m, depth, batch), as_batch(b2, depth, n, batch)
    prefix, threads, rows, cols = _LAUNCH[source]
    # float4 loads and stores need every row start 16-byte aligned: K and N multiples of 4, aligned bases.
    vec = depth % 4 == 0 and n % 4 == 0 and all(data_pointer(x) % 16 == 0 for x in (a3, b3, c))
    kernel = raw_module(source).get_function(f"{prefix}_{'vec4' if vec else 'scalar'}")
    if ceil_div(m, rows) > cuda_tools.MAX_GRID_Z:
        # more row tiles than gridDim.y takes (over 8.4M rows): one launch per batch entry and run of rows; the
        # rows of a C-contiguous matrix are contiguous, so a run is a plain (run, K) @ (K, N) product
        span = cuda_tools.MAX_GRID_Z * rows
        for z in range(c.shape[0]):
            a_z, b_z = a3[z if a3.shape[0] > 1 else 0], b3[z if b3.shape[0] > 1 else 0]
            for r0 in range(0, m, span):
                r1 = min(m, r0 + span)
                grid = (ceil_div(n, cols), ceil_div(r1 - r0, rows), 1)
                kernel(grid, (threads,), (a_z[r0:r1], b_z, c[z, r0:r1], np.int32(r1 - r0), np.int32(n),
                                          np.int32(depth), np.int64(0), np.int64(0)))
        return c.reshape(out_shape)
    stride_a = np.int64(m * depth if a3.shape[0] > 1 else 0)
    stride_b = np.int64(depth * n if b3.shape[0] > 1 else 0)
    for z0, z1 in batch_chunks(c.shape[0]):
        a_z = a3[z0:z1] if a3.shape[0] > 1 else a3
        b_z = b3[z0:z1] if b3.shape[0] > 1 else b3
        grid = (ceil_div(n, cols), ceil_div(m, rows), z1 - z0)
        kernel(grid, (threads,), (a_z, b_z, c[z0:z1], np.int32(m), np.int32(n), np.int32(depth), stride_a, stride_b))
    return c.reshape(out_shape)


@register("matmul", "cupy", "v7_cuda_blocktile", device="cuda", default=True)
def matmul_cuda_blocktile(a, b):
    """CUDA C: 128x128x8 tiles, 8x8 per thread, float4 loads, k-major A tile (float32; else cuBLAS)."""
    if a.dtype != np.float32:
        return matmul_cublas(a, b)
    return _launch_source(V7_SOURCE, a, b)


@register("matmul", "cupy", "v8_tf32_mma", device="cuda")
def matmul_tf32_mma(a, b):
    """CUDA C: TF32 tensor cores (mma.sync m16n8k8), ~1e-3 relative error; opt-in (float32; else cuBLAS)."""
    if a.dtype != np.float32:
        return matmul_cublas(a, b)
    return _launch_source(V8_SOURCE, a, b)


@register("matmul", "cupy", "v9_tf32_cp_async", device="cuda")
def matmul_tf32_cp_async(a, b):
    """CUDA C: v8 with cp.async double buffering (the next tile loads while this one multiplies); opt-in TF32."""
    if a.dtype != np.float32:
        return matmul_cublas(a, b)
    return _launch_source(V9_SOURCE, a, b)
