"""batchnorm: training-mode batch normalisation over dim 1 of an (N, C, ...) array, forward and backward.

Per channel c over its M = N * prod(spatial) values: ``mean``, the biased variance ``var`` (divide by M,
what normalises, as in PyTorch), ``inv_std = 1 / sqrt(var + eps)`` and ``y = (x - mean) * inv_std * w + b``.
The caller derives the unbiased variance for the running statistics as ``var * M / (M - 1)``. The backward
pass is the closed form (x_hat = (x - mean) * inv_std)::

    dbias = sum(dy)    dweight = sum(dy * x_hat)
    dx    = w * inv_std / M * (M * dy - dbias - x_hat * dweight)

Eval mode normalises with running statistics, which is elementwise and needs no kernel of its own.

| variant                       | idea                                                                  | runs on |
|-------------------------------|-----------------------------------------------------------------------|---------|
| reference                     | float64 loops per channel: two-pass mean and variance, then each element (tests only) | cpu |
| numpy.v0_channel_reduce       | vectorised NumPy on the (N, C, L) view: one einsum per statistic, the normalisation and the input gradient in place | cpu |
| numba.v1_channel_loops       | compiled loops, one channel at a time so its three passes read L2, not memory (CPU default) | cpu |
| numba_cuda.v1_channel_blocks  | one block per channel reduces its statistics in shared memory (two-pass variance; backward: both sums in one pass), then one thread per element normalises or forms dx | cuda |

Entry points take raw arrays (NumPy or CuPy), validate them, and dispatch to the variant the registry
selects for the input's device. Variants receive C-contiguous (N, C, L) arrays and ``None`` for a
missing weight or bias, and return fresh arrays; the entry points restore the caller's shape.
"""

from __future__ import annotations

import math

import numpy as np

from kernels import registry
from kernels.device_arrays import array_module

__all__ = ["batchnorm_forward_train", "batchnorm_backward"]


def _contiguous(array, dtype=None):
    """C-contiguous (a copy only if needed) on the array's device: NumPy's ``ascontiguousarray`` would drop
    the simulated-device subclass."""
    out = array_module(array).ascontiguousarray(array, dtype=dtype)
    return out.view(type(array)) if isinstance(array, np.ndarray) else out


def _check_float(op, name, array):
    if getattr(array.dtype, "kind", None) != "f":
        raise TypeError(f"{op} {name} must be a floating-point array, got dtype {array.dtype}")


def _as_ncl(op, name, x):
    """x (N, C, ...) as a C-contiguous (N, C, L) array with at least one value per channel."""
    _check_float(op, name, x)
    if x.ndim < 2:
        raise ValueError(f"{op} {name} must have shape (N, C, ...), got {tuple(x.shape)}")
    N, C = x.shape[:2]
    L = math.prod(x.shape[2:])
    if N * L == 0:
        raise ValueError(f"{op} needs at least one value per channel, got {name} shape {tuple(x.shape)}")
    return _contiguous(x).reshape(N, C, L)


def _check_channel_vector(op, name, array, x, optional=True):
    if array is None and optional:
        return None
    _check_float(op, name, array)
    if tuple(array.shape) != (x.shape[1],):
        raise ValueError(f"{op} {name} must have shape ({x.shape[1]},), got {tuple(array.shape)}")
    return array.astype(x.dtype, copy=False)


def batchnorm_forward_train(x, weight=None, bias=None, eps=1e-5):
    """(y, mean, var, inv_std): y has x's shape; the three statistics are (C,), var the biased variance."""
    x3 = _as_ncl("batchnorm_forward_train", "input", x)
    weight = _check_channel_vector("batchnorm_forward_train", "weight", weight, x3)
    bias = _check_channel_vector("batchnorm_forward_train", "bias", bias, x3)
    if not (isinstance(eps, (int, float, np.integer, np.floating)) and eps >= 0):
        raise ValueError(f"eps must be a non-negative number, got {eps!r}")
    forward = registry.get("batchnorm_forward_train", registry.array_device(x))
    y, mean, var, inv_std = forward(x3, weight, bias, float(eps))
    return y.reshape(x.shape), mean, var, inv_std


def batchnorm_backward(dy, x, weight, mean, inv_std):
    """(dx, dweight, dbias) from the output gradient, the forward input and its saved statistics; a
    missing weight counts as ones (dweight is then the gradient such a weight would get)."""
    op = "batchnorm_backward"
    x3 = _as_ncl(op, "input", x)
    if tuple(dy.shape) != tuple(x.shape):
        raise ValueError(f"{op} grad_output must have the input's shape {tuple(x.shape)}, got {tuple(dy.shape)}")
    dy3 = _as_ncl(op, "grad_output", dy).astype(x3.dtype, copy=False)
    weight = _check_channel_vector(op, "weight", weight, x3)
    mean = _check_channel_vector(op, "mean", mean, x3, optional=False)
    inv_std = _check_channel_vector(op, "inv_std", inv_std, x3, optional=False)
    backward = registry.get("batchnorm_backward", registry.array_device(x))
    dx, dweight, dbias = backward(dy3, x3, weight, mean, inv_std)
    return dx.reshape(x.shape), dweight, dbias


from kernels.batchnorm import numba_cpu  # noqa: E402,F401  (the CPU default, registered first)
from kernels.batchnorm import numpy as _numpy  # noqa: E402,F401  (the NumPy CPU variant)
from kernels.batchnorm import numba_cuda  # noqa: E402,F401  (GPU variant; imports without CUDA)
