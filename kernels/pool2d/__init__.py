"""pool2d: 2-D max, average, power-average (Lp) and adaptive average pooling, NCHW, PyTorch semantics.

Output sizes, padding and ceil_mode follow ``torch.nn.functional`` (see ``geometry``). Max pooling returns
the flat index h*W + w of the chosen element inside its (n, c) plane, like ``return_indices=True``; ties go
to the first maximum in row-major window order, a NaN beats everything, and the backward pass sends each
gradient to exactly the recorded index.

| variant              | idea                                                                        | runs on |
|----------------------|-----------------------------------------------------------------------------|---------|
| reference            | float64 loops: each output's window slides over the input like a flashlight (tests only) | cpu |
| numpy.v0_window_loop | Numba-compiled window loops over per-axis window tables, one plane after another; global average as a BLAS matrix-vector product | cpu |
| numpy.v1_output_rows | average and Lp pooling a row of outputs at a time, outputs innermost (a loop LLVM vectorises); CPU default for those ops | cpu |
| numba_cuda.v1_direct | forward: one thread per output scans its window (computed in the kernel); global average as one block-wide tree sum per plane | cuda |
| numba_cuda.v1_gather | backward: one thread per input element gathers from the windows containing it (no atomics, deterministic) | cuda |

Entry points take raw arrays (NumPy or CuPy), validate them, and dispatch to the variant the registry
selects for the array's device. Each variant receives the validated ``PoolGeometry`` (``AdaptiveGeometry``
for adaptive pooling) and returns fresh arrays.
"""

from __future__ import annotations

import math

import numpy as np

from kernels import registry
from kernels.pool2d.geometry import (
    AdaptiveGeometry,
    PoolGeometry,
    adaptive_pool2d_geometry,
    pool2d_geometry,
    pool_output_size,
)

__all__ = [
    "AdaptiveGeometry",
    "PoolGeometry",
    "adaptive_pool2d_geometry",
    "pool2d_geometry",
    "pool_output_size",
    "max_pool2d_forward",
    "max_pool2d_backward",
    "avg_pool2d_forward",
    "avg_pool2d_backward",
    "lp_pool2d_forward",
    "lp_pool2d_backward",
    "adaptive_avg_pool2d_forward",
    "adaptive_avg_pool2d_backward",
]


def _check_kind(op, name, array, kinds, what):
    if getattr(array.dtype, "kind", None) not in kinds:
        raise TypeError(f"{op} {name} must be {what}, got dtype {array.dtype}")


def _check_float(op, name, array):
    _check_kind(op, name, array, "f", "a floating-point array")


def _check_shape(op, name, array, expected):
    if tuple(array.shape) != tuple(expected):
        raise ValueError(f"{op} {name} must have shape {tuple(expected)}, got {tuple(array.shape)}")


def _check_same_dtype(op, names_arrays):
    (first_name, first), *rest = names_arrays
    for name, array in rest:
        if array.dtype != first.dtype:
            raise TypeError(f"{op} {name} dtype {array.dtype} does not match {first_name} dtype {first.dtype}")


def _check_bool(name, value):
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a bool, got {value!r}")
    return bool(value)


def _check_divisor_override(value):
    if value is None:
        return None
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value == 0:
        raise ValueError(f"divisor_override must be None or a non-zero int, got {value!r}")
    return int(value)


def _check_norm_type(value):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"norm_type must be a real number, got {value!r}")
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"norm_type must be positive and finite (use max pooling for inf), got {value!r}")
    return float(value)


def max_pool2d_forward(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
    """(y, indices): the window maxima and their flat int64 indices h*W + w in the input plane."""
    g = pool2d_geometry("max_pool2d", x.shape, kernel_size, stride, padding, dilation, ceil_mode)
    _check_kind("max_pool2d", "input", x, "iuf", "an integer or floating-point array")
    return registry.get("max_pool2d_forward", registry.array_device(x))(x, g)


def max_pool2d_backward(dy, indices, x_shape, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
    """dL/dx: dL/dy scattered (and summed) to the input elements the forward pass chose."""
    g = pool2d_geometry("max_pool2d", x_shape, kernel_size, stride, padding, dilation, ceil_mode)
    _check_float("max_pool2d", "grad_output", dy)
    _check_shape("max_pool2d", "grad_output", dy, g.y_shape)
    _check_kind("max_pool2d", "indices", indices, "iu", "an integer array")
    _check_shape("max_pool2d", "indices", indices, g.y_shape)
    return registry.get("max_pool2d_backward", registry.array_device(dy))(dy, indices, g)


def avg_pool2d_forward(
    x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True, divisor_override=None
):
    """Window means; the divisor counts padding (``count_include_pad``) or is ``divisor_override``."""
    g = pool2d_geometry("avg_pool2d", x.shape, kernel_size, stride, padding, 1, ceil_mode)
    count_include_pad = _check_bool("count_include_pad", count_include_pad)
    divisor_override = _check_divisor_override(divisor_override)
    _check_float("avg_pool2d", "input", x)
    return registry.get("avg_pool2d_forward", registry.array_device(x))(x, g, count_include_pad, divisor_override)


def avg_pool2d_backward(
    dy, x_shape, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True, divisor_override=None
):
    """dL/dx: each output's gradient over its divisor, added to every input element of its window."""
    g = pool2d_geometry("avg_pool2d", x_shape, kernel_size, stride, padding, 1, ceil_mode)
    count_include_pad = _check_bool("count_include_pad", count_include_pad)
    divisor_override = _check_divisor_override(divisor_override)
    _check_float("avg_pool2d", "grad_output", dy)
    _check_shape("avg_pool2d", "grad_output", dy, g.y_shape)
    return registry.get("avg_pool2d_backward", registry.array_device(dy))(dy, g, count_include_pad, divisor_override)


def lp_pool2d_forward(x, norm_type, kernel_size, stride=None, ceil_mode=False):
    """(sum over the window of x**p) ** (1/p), p = ``norm_type``; no padding, as in PyTorch."""
    norm_type = _check_norm_type(norm_type)
    g = pool2d_geometry("lp_pool2d", x.shape, kernel_size, stride, 0, 1, ceil_mode)
    _check_float("lp_pool2d", "input", x)
    return registry.get("lp_pool2d_forward", registry.array_device(x))(x, g, norm_type)


def lp_pool2d_backward(dy, x, y, norm_type, kernel_size, stride=None, ceil_mode=False):
    """dL/dx from dL/dy, the forward input ``x`` and output ``y``; zero where ``y`` is zero."""
    norm_type = _check_norm_type(norm_type)
    g = pool2d_geometry("lp_pool2d", x.shape, kernel_size, stride, 0, 1, ceil_mode)
    _check_float("lp_pool2d", "grad_output", dy)
    _check_shape("lp_pool2d", "grad_output", dy, g.y_shape)
    _check_shape("lp_pool2d", "output", y, g.y_shape)
    _check_same_dtype("lp_pool2d", [("grad_output", dy), ("input", x), ("output", y)])
    return registry.get("lp_pool2d_backward", registry.array_device(dy))(dy, x, y, g, norm_type)


def adaptive_avg_pool2d_forward(x, output_size):
    """Means over PyTorch's adaptive windows [floor(i*H/P), ceil((i+1)*H/P)); output_size 1 is global pooling."""
    g = adaptive_pool2d_geometry("adaptive_avg_pool2d", x.shape, output_size)
    _check_float("adaptive_avg_pool2d", "input", x)
    return registry.get("adaptive_avg_pool2d_forward", registry.array_device(x))(x, g)


def adaptive_avg_pool2d_backward(dy, x_shape, output_size):
    """dL/dx: each output's gradient over its window size, added to every input element of the window."""
    g = adaptive_pool2d_geometry("adaptive_avg_pool2d", x_shape, output_size)
    _check_float("adaptive_avg_pool2d", "grad_output", dy)
    _check_shape("adaptive_avg_pool2d", "grad_output", dy, g.y_shape)
    return registry.get("adaptive_avg_pool2d_backward", registry.array_device(dy))(dy, g)


from kernels.pool2d import numpy as _numpy  # noqa: E402,F401  (registers the CPU variants)
from kernels.pool2d import numba_cuda  # noqa: E402,F401  (GPU variants; import without CUDA)
