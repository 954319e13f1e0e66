"""CPU matmul: NumPy's matmul calls the BLAS GEMM it is linked against (OpenBLAS in the wheels).

Products under ``THREADED_MIN_FLOPS`` run with the BLAS on one thread (``kernels.blas.one_thread``): their
GEMMs gain little from a second thread (LeNet-5's fc1, 64x400 @ 400x120: 41 us on two threads, 47 on one),
and a threaded call leaves OpenBLAS's workers spinning, which slows the Numba kernels that follow it in a
training step several times over (``kernels/blas.py``). Larger products keep the BLAS's threads: splitting
their rows over Python threads with the BLAS on one thread instead measured slower (VGG's fc6, 64x25088 @
25088x4096: 112-116 ms against 85-87; 512^3: 1.85 against 0.95 ms. The split itself ran at 0.99 ms with the
limit held across calls but 1.74 ms when each call set and restored it: restoring the BLAS's thread count
apparently leaves its workers busy while the split's threads run).
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
