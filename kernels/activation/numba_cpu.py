"""The activation gradients in one pass on the CPU (v1): the Numba kernels of ``kernels/elementwise.py``
(a ufunc below 64K elements, a ``prange`` loop over the threads above), bit-equal to the expression."""

from __future__ import annotations

from kernels import elementwise
from kernels.activation.numpy import expression
from kernels.registry import register


@register("activation_backward", "numba", "v1_one_pass", default=True)
def one_pass(name, g, y):
    """One pass over g and y (the expression where the kernels do not apply: float16, mixed dtypes, views)."""
    fused = elementwise.activation_grad(name, g, y)
    return expression(name, g, y) if fused is None else fused
