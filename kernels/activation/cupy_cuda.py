"""The activation gradients on a GPU through CuPy: the CuPy expression (v0, the baseline) and the one-pass
CUDA C kernels of ``activation.cu`` (v2, the default). Importing this module never needs CUDA."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from kernels.activation.numpy import expression
from kernels.cuda_tools import contiguous, grid_1d, raw_module
from kernels.device_arrays import empty
from kernels.registry import register

SOURCE = Path(__file__).with_name("activation.cu")
_SUFFIX = {np.dtype(np.float32): "f32", np.dtype(np.float64): "f64"}
THREADS = 256
MAX_BLOCKS = 4096  # a grid-stride loop covers the rest

CUDA_SOURCES = [
    (SOURCE, [f"activation_backward_{name}_{suffix}" for name in ("relu", "tanh", "sigmoid")
              for suffix in ("f32", "f64")], True)
]


register("activation_backward", "cupy", "v0_expression", device="cuda")(expression)


@register("activation_backward", "cupy", "v2_one_pass", device="cuda", default=True)
def one_pass(name, g, y):
    """CUDA C grid-stride kernel: reads g and y once, writes the gradient once (the expression for other dtypes)."""
    if g.dtype != y.dtype or np.dtype(g.dtype) not in _SUFFIX:
        return expression(name, g, y)
    out = empty(g.shape, g.dtype, like=g)
    if out.size:
        kernel = raw_module(SOURCE).get_function(f"activation_backward_{name}_{_SUFFIX[np.dtype(g.dtype)]}")
        blocks = min(grid_1d(out.size, THREADS), MAX_BLOCKS)
        kernel((blocks,), (THREADS,), (contiguous(g), contiguous(y), out, np.int64(out.size)))
    return out
