"""matmul: batched matrix product with NumPy broadcasting of the leading (batch) dimensions.

| variant                     | idea                                                          | runs on |
|-----------------------------|---------------------------------------------------------------|---------|
| reference                   | float64 triple loop (tests only)                              | cpu     |
| numpy.v0_blas               | ``numpy.matmul``: one BLAS GEMM per batch matrix              | cpu     |
| cupy.v0_cublas              | ``cupy.matmul`` (cuBLAS): the GPU baseline, never the default | cuda    |
| numba_cuda.v1_naive         | one thread per output, threadIdx.x over rows (uncoalesced)    | cuda    |
| numba_cuda.v2_coalesced     | one thread per output, threadIdx.x over columns               | cuda    |
| numba_cuda.v3_smem_tiles    | 32x32 shared-memory tiles                                     | cuda    |
| numba_cuda.v4_1d_blocktile  | 64x64x8 tiles, a column of 8 outputs per thread               | cuda    |
| numba_cuda.v5_2d_blocktile  | 128x128x8 tiles, 8x8 register block per thread                | cuda    |
| numba_cuda.v6_vectorized    | v5 + k-major A tile, 4-wide load groups (simulator default)   | cuda    |
| cupy.v7_cuda_blocktile      | CUDA C v6 with float4 loads (GPU default)                     | cuda    |
| cupy.v8_tf32_mma            | TF32 tensor cores, mma.sync; opt-in (~1e-3 relative error)    | cuda    |
| cupy.v9_tf32_cp_async       | v8 with cp.async double buffering; opt-in TF32                | cuda    |

On "cuda" the default is v7 where CuPy has a GPU and v6 under Numba's simulator. The CUDA variants'
progression, compile reports and speeds are in ``kernels/matmul/README.md``.

Shapes follow ``numpy.matmul``: 1-D operands are promoted to matrices and the added axis removed again.
"""

from __future__ import annotations

from kernels import registry


def matmul_shape(a_shape, b_shape) -> tuple[int, ...]:
    """The result shape of ``a @ b``; a ValueError naming both shapes when they do not fit."""
    if len(a_shape) == 0 or len(b_shape) == 0:
        raise ValueError(f"matmul needs operands of at least 1 dimension, got shapes {tuple(a_shape)} and {tuple(b_shape)}")
    a2 = (1,) + tuple(a_shape) if len(a_shape) == 1 else tuple(a_shape)
    b2 = tuple(b_shape) + (1,) if len(b_shape) == 1 else tuple(b_shape)
    if a2[-1] != b2[-2]:
        raise ValueError(
            f"matmul shapes {tuple(a_shape)} and {tuple(b_shape)} do not fit: {a2[-1]} columns against {b2[-2]} rows"
        )
    batch_a, batch_b = a2[:-2], b2[:-2]
    width = max(len(batch_a), len(batch_b))
    batch_a = (1,) * (width - len(batch_a)) + batch_a
    batch_b = (1,) * (width - len(batch_b)) + batch_b
    batch = []
    for da, db in zip(batch_a, batch_b):
        if da != db and 1 not in (da, db):
            raise ValueError(f"matmul batch dimensions of shapes {tuple(a_shape)} and {tuple(b_shape)} do not broadcast")
        batch.append(db if da == 1 else da)
    shape = tuple(batch) + (a2[-2], b2[-1])
    if len(a_shape) == 1:
        shape = shape[:-2] + shape[-1:]
    if len(b_shape) == 1:
        shape = shape[:-1]
    return shape


def matmul(a, b):
    """``a @ b`` with broadcasting, on the variant selected for the operands' device."""
    matmul_shape(a.shape, b.shape)
    if a.dtype != b.dtype:
        raise TypeError(f"matmul operands must share a dtype, got {a.dtype} and {b.dtype}")
    return registry.get("matmul", registry.array_device(a))(a, b)


from kernels.matmul import numpy as _numpy  # noqa: E402,F401  (registers the CPU variant)
try:  # the CUDA variants; cupy_cuda first, since registration order is default preference (v7 before v6)
    from kernels.matmul import cupy_cuda, numba_cuda  # noqa: E402,F401
except ImportError:  # numba (or numba-cuda) missing: the family stays CPU-only
    pass
