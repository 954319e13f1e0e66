"""softmax_xent: softmax cross-entropy of class-index targets over (N, C) logits, forward and backward fused.

The forward pass returns the per-sample losses ``logsumexp(x_i) - x_i[t_i]`` (0 where ``t_i ==
ignore_index``) and the row softmax, which is all the backward pass needs:
``dL/dx_i = (softmax(x_i) - onehot(t_i)) * g_i`` with ``g_i`` the gradient of sample i's loss (0 for an
ignored row). Every variant subtracts the row maximum before exponentiating, so no exponent is positive
and logits of any magnitude are safe. A NaN logit makes its row NaN, as in PyTorch.

| variant                         | idea                                                                 | runs on |
|---------------------------------|----------------------------------------------------------------------|---------|
| reference                       | float64 loops, one row at a time: max, sum of exponentials, loss, softmax (tests only) | cpu |
| numpy.v0_rowwise                | vectorised NumPy over the whole (N, C) array, one pass per step, softmax normalised in place | cpu |
| numba.v1_row_loops              | Numba loops row by row (maximum, exponentials and sum, loss, normalisation) while the row is in cache, rows over threads for large batches | cpu |
| numba.v2_vector_exp             | v1 with the row's maximum, exponentials, sum and scaling on 64-byte vectors (``kernels/simd.py``'s polynomial exponential, within 1 ulp); CPU default | cpu |
| numba_cuda.v1_block_per_row     | one block per row: max and sum as shared-memory tree reductions, then the row's loss and softmax (forward) or gradient (backward) | cuda |

Entry points take raw arrays (NumPy or CuPy), validate them, and dispatch to the variant the registry
selects for the logits' device. Variants receive int64 targets and return fresh arrays.
"""

from __future__ import annotations

import numpy as np

from kernels import registry
from kernels.device_arrays import array_module, capturing

__all__ = ["softmax_xent_forward", "softmax_xent_backward"]


def _contiguous(array, dtype=None):
    """C-contiguous (a copy only if needed) on the array's device: NumPy's ``ascontiguousarray`` would drop
    the simulated-device subclass."""
    out = array_module(array).ascontiguousarray(array, dtype=dtype)
    return out.view(type(array)) if isinstance(array, np.ndarray) else out


def _check_logits(op, logits):
    if getattr(logits.dtype, "kind", None) != "f":
        raise TypeError(f"{op} logits must be a floating-point array, got dtype {logits.dtype}")
    if logits.ndim != 2 or logits.shape[1] == 0:
        raise ValueError(f"{op} logits must have shape (N, C) with C >= 1, got {tuple(logits.shape)}")


def _check_ignore_index(ignore_index):
    if isinstance(ignore_index, (bool, np.bool_)) or not isinstance(ignore_index, (int, np.integer)):
        raise TypeError(f"ignore_index must be an int, got {ignore_index!r}")
    return int(ignore_index)


def _check_targets(op, targets, rows, classes, ignore_index, check_values=True):
    """int64 targets of shape (rows,); with ``check_values``, each a class index or ``ignore_index``
    (PyTorch raises the same IndexError).

    Checking values reads the device on the host, so it is skipped while a CUDA graph captures (the
    kernels then give an out-of-range target a NaN loss, so nothing is silently wrong) and in the backward
    pass, which only compares targets with column indices and so never reads out of bounds.
    """
    if getattr(targets.dtype, "kind", None) not in "iu":
        raise TypeError(f"{op} targets must hold class indices (integers), got dtype {targets.dtype}")
    if tuple(targets.shape) != (rows,):
        raise ValueError(f"{op} targets must have shape ({rows},), got {tuple(targets.shape)}")
    targets = _contiguous(targets, np.int64)
    if check_values and not capturing(targets):
        bad = (targets != ignore_index) & ((targets < 0) | (targets >= classes))
        if bad.any():
            raise IndexError(f"target value {int(targets[bad][0])} is out of range for {classes} classes")
    return targets


def softmax_xent_forward(logits, targets, ignore_index=-100):
    """(losses (N,), softmax (N, C)): per-sample cross-entropy, 0 for rows whose target is ``ignore_index``."""
    _check_logits("softmax_xent_forward", logits)
    ignore_index = _check_ignore_index(ignore_index)
    targets = _check_targets("softmax_xent_forward", targets, *logits.shape, ignore_index)
    return registry.get("softmax_xent_forward", registry.array_device(logits))(logits, targets, ignore_index)


def softmax_xent_backward(probs, targets, grad_losses, ignore_index=-100):
    """dL/dlogits (N, C) = (probs - onehot(targets)) * grad_losses[:, None], 0 for ignored rows."""
    _check_logits("softmax_xent_backward", probs)
    ignore_index = _check_ignore_index(ignore_index)
    targets = _check_targets("softmax_xent_backward", targets, *probs.shape, ignore_index, check_values=False)
    if tuple(grad_losses.shape) != (probs.shape[0],):
        raise ValueError(f"softmax_xent_backward grad_losses must have shape ({probs.shape[0]},), "
                         f"got {tuple(grad_losses.shape)}")
    grad_losses = grad_losses.astype(probs.dtype, copy=False)
    backward = registry.get("softmax_xent_backward", registry.array_device(probs))
    return backward(probs, targets, grad_losses, ignore_index)


from kernels.softmax_xent import numba_cpu  # noqa: E402,F401  (registers the CPU default first)
from kernels.softmax_xent import numpy as _numpy  # noqa: E402,F401  (registers the CPU baseline)
from kernels.softmax_xent import numba_cuda  # noqa: E402,F401  (GPU variant; imports without CUDA)
