"""The activation gradients in one pass in Numba CUDA (v1): a grid-stride loop, one element per thread and
step. The default on the "cuda" device under Numba's simulator; on a GPU the CUDA C v2 is."""

from __future__ import annotations

import numba
import numpy as np
from numba import cuda

from kernels.activation.numpy import expression
from kernels.cuda_tools import compile_kernel, contiguous, grid_1d, kernel_factory, launch
from kernels.device_arrays import empty
from kernels.registry import register

THREADS = 256
MAX_BLOCKS = 4096  # a grid-stride loop covers the rest: about 8 blocks of 256 threads per SM on an H100
_KINDS = {"relu": 0, "tanh": 1, "sigmoid": 2}


@kernel_factory("void({t}[::1], {t}[::1], {t}[::1])")
def _gradient_factory(T, kind):
    one, zero = T(1), T(0)

    def activation_backward(g, y, out):
        for i in range(cuda.grid(1), out.size, cuda.gridsize(1)):
            if kind == 0:
                out[i] = zero if y[i] <= zero else g[i]
            elif kind == 1:
                out[i] = g[i] * (one - y[i] * y[i])
            else:
                out[i] = g[i] * y[i] * (one - y[i])

    return activation_backward


@register("activation_backward", "numba_cuda", "v1_one_pass", device="cuda", default=True)
def one_pass(name, g, y):
    """Grid-stride kernel over the flat arrays (the expression for other dtypes or mixed ones)."""
    if g.dtype != y.dtype or g.dtype not in (np.float32, np.float64):
        return expression(name, g, y)
    out = empty(g.shape, g.dtype, like=g)
    if out.size:
        kernel = compile_kernel(_gradient_factory, g.dtype, _KINDS[name])
        blocks = min(grid_1d(out.size, THREADS), MAX_BLOCKS)
        launch(kernel, blocks, THREADS, contiguous(g).reshape(-1), contiguous(y).reshape(-1), out.reshape(-1))
    return out


KERNELS = [
    (_gradient_factory(numba.float32, kind), _gradient_factory.signature.format(t="float32"), True)
    for kind in _KINDS.values()
]
