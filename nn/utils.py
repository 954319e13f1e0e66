"""Gradient clipping, as in ``torch.nn.utils``: ``clip_grad_norm_`` and ``clip_grad_value_``."""

from __future__ import annotations

import tensorlib as tl
from tensorlib.device import array_device, array_module, move


def _gradients(parameters) -> list:
    """The raw gradient arrays of ``parameters`` (a tensor or an iterable of tensors) that have one."""
    if isinstance(parameters, tl.Tensor):
        parameters = [parameters]
    return [p.grad.data for p in parameters if p.grad is not None]


def _vector_norm(array, norm_type: float):
    return array_module(array).linalg.norm(array.reshape(-1), ord=norm_type)


def clip_grad_norm_(parameters, max_norm: float, norm_type: float = 2.0, error_if_nonfinite: bool = False):
    """Scale the gradients in place so that their joint ``norm_type``-norm (``inf``: the largest magnitude)
    is at most ``max_norm``; return the norm before clipping, as a 0-d tensor.

    As in PyTorch, the gradients are multiplied by ``min(max_norm / (total_norm + 1e-6), 1)``; a NaN or
    infinite norm raises RuntimeError when ``error_if_nonfinite``.
    """
    grads = _gradients(parameters)
    if not grads:
        return tl.tensor(0.0)
    max_norm, norm_type = float(max_norm), float(norm_type)
    xp = array_module(grads[0])
    norms = xp.stack([move(_vector_norm(g, norm_type), array_device(grads[0])) for g in grads])
    total_norm = _vector_norm(norms, norm_type)
    if error_if_nonfinite and not bool(xp.isfinite(total_norm)):
        raise RuntimeError(
            f"The total norm of order {norm_type} for gradients from `parameters` is non-finite, so it cannot be "
            "clipped. To disable this error and scale the gradients by the non-finite norm anyway, set "
            "`error_if_nonfinite=False`"
        )
    clip_coef = xp.minimum(max_norm / (total_norm + 1e-6), 1.0)
    for g in grads:
        g *= move(clip_coef, array_device(g))
    return tl.tensor(total_norm)


def clip_grad_value_(parameters, clip_value: float):
    """Clamp every gradient element in place to ``[-clip_value, clip_value]``."""
    clip_value = float(clip_value)
    for g in _gradients(parameters):
        array_module(g).clip(g, -clip_value, clip_value, out=g)
