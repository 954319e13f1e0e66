"""activation: the backward passes of the pointwise activations, from the saved output ``y`` and the
incoming gradient ``g`` (the forward passes are one array operation each: ``maximum``, ``tanh``, ...).

    relu      0 where y <= 0, else g   (PyTorch's threshold_backward: an output of NaN passes its
                                        gradient, a NaN gradient at a clamped output becomes 0)
    tanh      g * (1 - y * y)
    sigmoid   g * y * (1 - y)

| variant                | idea                                                                         | runs on |
|------------------------|------------------------------------------------------------------------------|---------|
| reference              | float64 formulas (tests only)                                                | cpu     |
| numpy.v0_expression    | the array expression: two or three passes, each into a fresh temporary       | cpu     |
| numba.v1_one_pass      | one pass: a Numba ufunc, or a ``prange`` loop over the threads from 64K elements (``kernels/elementwise.py``), bit-equal to v0; default | cpu |
| cupy.v0_expression     | the same expression on CuPy arrays: one kernel per operator; the baseline    | cuda    |
| numba_cuda.v1_one_pass | one pass in a Numba CUDA grid-stride kernel; the default under Numba's simulator | cuda |
| cupy.v2_one_pass       | one pass in CUDA C (``activation.cu``), rounded step by step as NumPy rounds (bit-equal to v0); default on a GPU | cuda |

A one-pass gradient reads g and y and writes the result: 12 bytes per float32 element, against 20-36 for the
expression's passes and temporaries, so on a memory-bound device it should take a half to a third of the
time. ``activation_backward`` takes raw arrays (NumPy or CuPy) of one shape and dispatches to the variant
the registry selects for the gradient's device.
"""

from __future__ import annotations

from kernels import registry

__all__ = ["ACTIVATIONS", "activation_backward"]

ACTIVATIONS = ("relu", "tanh", "sigmoid")


def activation_backward(name: str, g, y):
    """dL/dx of activation ``name`` ("relu", "tanh", "sigmoid") from dL/dy ``g`` and the output ``y``."""
    if name not in ACTIVATIONS:
        raise ValueError(f"activation_backward: name must be one of {ACTIVATIONS}, got {name!r}")
    if tuple(g.shape) != tuple(y.shape):
        raise ValueError(f"activation_backward: the gradient's shape {tuple(g.shape)} differs from the output's "
                         f"{tuple(y.shape)}")
    return registry.get("activation_backward", registry.array_device(g))(name, g, y)


from kernels.activation import cupy_cuda, numba_cpu, numba_cuda, numpy  # noqa: E402,F401  (register; CuPy's default first)
