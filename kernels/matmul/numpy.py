"""CPU matmul: NumPy's matmul calls the BLAS GEMM it is linked against (OpenBLAS in the wheels)."""

import numpy as np

from kernels.registry import register


@register("matmul", "numpy", "v0_blas", default=True)
def matmul_blas(a, b):
    """numpy.matmul: a BLAS GEMM per matrix of the broadcast batch."""
    return np.matmul(a, b)
