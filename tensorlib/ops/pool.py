"""Pooling as differentiable ops over the pool2d kernel family (signatures of torch.nn.functional)."""

from __future__ import annotations

from kernels import pool2d as pool_kernels
from tensorlib.autograd import Function
from tensorlib.device import array_module
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
    y, indices = pool_kernels.max_pool2d_forward(input.array, *args)
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


def _adaptive_output_size(input, output_size):
    """``output_size`` with each None replaced by the input's size along that axis."""
    if isinstance(output_size, (tuple, list)):
        if len(output_size) != 2:  # unlike kernel sizes, PyTorch does not expand a one-element output_size
            raise TypeError(f"output_size must be an int or a pair (None keeps the input's size), got {output_size!r}")
        if input.ndim == 4:  # other ranks are rejected, naming their shape, by the geometry's checks
            output_size = tuple(size if size is not None else input.shape[axis]
                                for size, axis in zip(output_size, (2, 3)))
    return output_size


@_batched
def adaptive_avg_pool2d(input, output_size):
    """Average over PyTorch's adaptive windows; ``output_size=1`` is global average pooling, and None in a
    pair keeps the input's size along that axis (``(None, 1)`` averages each row)."""
    return AdaptiveAvgPool2d.apply(input, _adaptive_output_size(input, output_size))


class AdaptiveMaxPool2d(Function):
    """Receives the forward's output and argmax indices (like MaxPool2d); backward adds each output's gradient
    to the input element its index names. Windows overlap where the sizes do not divide, so an element can
    collect several gradients."""

    def forward(self, x, y, indices):
        self.shape, self.indices = x.shape, indices
        return y

    def backward(self, g):
        xp = array_module(g)
        N, C, H, W = self.shape
        planes = xp.arange(N * C)
        g, indices = g.reshape(N * C, -1), self.indices.reshape(N * C, -1)
        dx = xp.zeros((N * C, H * W), dtype=g.dtype)
        for k in range(indices.shape[1]):  # one index per plane at each output: no repeats within an update
            dx[planes, indices[:, k]] += g[:, k]
        return dx.reshape(self.shape), None, None


def _window_argmax(window):
    """Position of the maximum along the last axis, as PyTorch's max pooling picks it: the first maximum, or
    the last NaN where the window holds one (a NaN beats everything, and each later NaN beats the one before)."""
    xp = array_module(window)
    first_max = window.argmax(axis=-1)
    is_nan = xp.isnan(window)
    last_nan = window.shape[-1] - 1 - is_nan[..., ::-1].argmax(axis=-1)
    return xp.where(is_nan.any(axis=-1), last_nan, first_max)


def _adaptive_max_pool2d(x, g):
    """(y, indices) of adaptive max pooling on a raw (N, C, H, W) array: a loop over the outputs, each taking
    the max over its window [floor(i*H/P), ceil((i+1)*H/P)) x [floor(j*W/Q), ceil((j+1)*W/Q)); ``g`` is the
    validated ``AdaptiveGeometry``."""
    xp = array_module(x)
    (row_first, row_count), (col_first, col_count) = g.windows()
    y = xp.empty(g.y_shape, dtype=x.dtype)
    indices = xp.empty(g.y_shape, dtype=xp.int64)
    for i in range(g.P):
        top, height = int(row_first[i]), int(row_count[i])
        for j in range(g.Q):
            left, width = int(col_first[j]), int(col_count[j])
            window = x[:, :, top : top + height, left : left + width].reshape(g.N, g.C, height * width)
            best = _window_argmax(window)
            y[:, :, i, j] = xp.take_along_axis(window, best[..., None], axis=-1)[..., 0]
            indices[:, :, i, j] = (top + best // width) * g.W + left + best % width
    return y, indices


@_batched
def adaptive_max_pool2d(input, output_size, return_indices=False):
    """``torch.nn.functional.adaptive_max_pool2d``: the max over PyTorch's adaptive windows (row window i
    covers ``[floor(i*H/P), ceil((i+1)*H/P))``, likewise the columns); None in a pair keeps the input's size
    along that axis. Indices are flat positions h*W + w in each input plane; ties go to the first maximum in
    row-major window order, and a window holding NaN gives NaN with the index of its last NaN, as in PyTorch.
    Backward sends each gradient to the element the forward picked."""
    if input.ndim != 4:  # 3-D inputs arrive here with a batch axis added
        raise ValueError(f"adaptive_max_pool2d input must be 3-D (C, H, W) or 4-D (N, C, H, W), "
                         f"got shape {input.shape}")
    output_size = _adaptive_output_size(input, output_size)
    geometry = pool_kernels.adaptive_pool2d_geometry("adaptive_max_pool2d", input.shape, output_size)
    if input.dtype.kind != "f":
        raise TypeError(f"adaptive_max_pool2d input must be a floating-point tensor, got dtype {input.dtype}")
    y, indices = _adaptive_max_pool2d(input.array, geometry)
    out = AdaptiveMaxPool2d.apply(input, y, indices)
    return (out, Tensor._make(indices)) if return_indices else out
