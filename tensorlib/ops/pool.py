"""Pooling as differentiable ops over the pool2d kernel family (signatures of torch.nn.functional)."""

from __future__ import annotations

from kernels import pool2d as pool_kernels
from tensorlib.autograd import Function
from tensorlib.tensor import Tensor


def _batched(fn):
    """Accept (C, H, W) as well as (N, C, H, W), like PyTorch."""

    def wrapper(input, *args, **kwargs):
        if input.ndim == 3:
            out = fn(input.unsqueeze(0), *args, **kwargs)
            if isinstance(out, tuple):
                return tuple(o.squeeze(0) for o in out)
            return out.squeeze(0)
        return fn(input, *args, **kwargs)

    wrapper.__name__, wrapper.__doc__ = fn.__name__, fn.__doc__
    return wrapper


class MaxPool2d(Function):
    """Receives the kernel's output and argmax indices; backward scatters through the indices."""

    def forward(self, x, y, indices, args):
        self.shape, self.indices, self.args = x.shape, indices, args
        return y

    def backward(self, g):
        return pool_kernels.max_pool2d_backward(g, self.indices, self.shape, *self.args), None, None, None


@_batched
def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    """Max over each window; backward routes each gradient to the element the forward picked (the first
    maximum of the window on ties). Indices are flat positions h*W + w in each input plane."""
    args = (kernel_size, stride, padding, dilation, ceil_mode)
    y, indices = pool_kernels.max_pool2d_forward(input.data, *args)
    out = MaxPool2d.apply(input, y, indices, args)
    return (out, Tensor._make(indices)) if return_indices else out


class AvgPool2d(Function):
    def forward(self, x, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override):
        self.shape = x.shape
        self.args = (kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override)
        return pool_kernels.avg_pool2d_forward(x, *self.args)

    def backward(self, g):
        return pool_kernels.avg_pool2d_backward(g, self.shape, *self.args)


@_batched
def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None):
    return AvgPool2d.apply(input, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override)


class LPPool2d(Function):
    def forward(self, x, norm_type, kernel_size, stride, ceil_mode):
        self.x, self.args = x, (norm_type, kernel_size, stride, ceil_mode)
        self.y = pool_kernels.lp_pool2d_forward(x, *self.args)
        return self.y

    def backward(self, g):
        return pool_kernels.lp_pool2d_backward(g, self.x, self.y, *self.args)


@_batched
def lp_pool2d(input, norm_type, kernel_size, stride=None, ceil_mode=False):
    """``(sum over the window of x**p) ** (1/p)``; ``norm_type=2`` is L2-norm pooling."""
    return LPPool2d.apply(input, float(norm_type), kernel_size, stride, ceil_mode)


class AdaptiveAvgPool2d(Function):
    def forward(self, x, output_size):
        self.shape, self.output_size = x.shape, output_size
        return pool_kernels.adaptive_avg_pool2d_forward(x, output_size)

    def backward(self, g):
        return pool_kernels.adaptive_avg_pool2d_backward(g, self.shape, self.output_size)


@_batched
def adaptive_avg_pool2d(input, output_size):
    """Average over PyTorch's adaptive windows; ``output_size=1`` is global average pooling, and None in a
    pair keeps the input's size along that axis (``(None, 1)`` averages each row)."""
    if isinstance(output_size, (tuple, list)):
        if len(output_size) != 2:  # unlike kernel sizes, PyTorch does not expand a one-element output_size
            raise TypeError(f"output_size must be an int or a pair (None keeps the input's size), got {output_size!r}")
        if input.ndim == 4:  # other ranks are rejected, naming their shape, by the kernel's checks
            output_size = tuple(size if size is not None else input.shape[axis]
                                for size, axis in zip(output_size, (2, 3)))
    return AdaptiveAvgPool2d.apply(input, output_size)
