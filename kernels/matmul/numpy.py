"""CPU matmul: NumPy's matmul calls the BLAS GEMM it is linked against (OpenBLAS in the wheels).

Products under ``THREADED_MIN_FLOPS`` run with the BLAS on one thread (``kernels.blas.one_thread``): their
GEMMs gain little from a second thread (LeNet-5's fc1, 64x400 @ 400x120: 41 us on two threads, 47 on one),
and a threaded call leaves OpenBLAS's workers spinning, which slows the Numba kernels that follow it in a
training step several times over (``kernels/blas.py``).
"""

import math

import numpy as np

from kernels import blas
from kernels.matmul import matmul_shape
from kernels.registry import register

THREADED_MIN_FLOPS = 50e6


@register("matmul", "numpy", "v0_blas", default=True)
def matmul_blas(a, b):
    """numpy.matmul: a BLAS GEMM per matrix of the broadcast batch; on one BLAS thread below 50 MFLOP."""
    if 2 * math.prod(matmul_shape(a.shape, b.shape)) * a.shape[-1] < THREADED_MIN_FLOPS:
        with blas.one_thread():
            return np.matmul(a, b)
    return np.matmul(a, b)
