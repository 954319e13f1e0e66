"""Reductions (sum, mean, var, max, min, argmax) and the numerically stable softmax / log_softmax."""

from __future__ import annotations

import builtins
from collections import namedtuple

import numpy as np

from tensorlib.autograd import Function
from tensorlib.device import array_module
from tensorlib.tensor import Tensor, get_default_dtype

MaxResult = namedtuple("MaxResult", ["values", "indices"])
MinResult = namedtuple("MinResult", ["values", "indices"])


def normalize_dims(dim, ndim: int, name: str = "dim") -> tuple[int, ...]:
    """``dim`` (None, an int or a sequence) as a sorted tuple of non-negative axes; None and an empty sequence
    mean all (PyTorch's rule). A 0-d tensor takes dim 0 or -1, which reduce nothing."""
    dims = (dim,) if isinstance(dim, (int, np.integer)) else tuple(dim) if dim is not None else ()
    if not dims:
        return tuple(range(ndim))
    normalized = []
    for d in dims:
        if not -builtins.max(ndim, 1) <= d < builtins.max(ndim, 1):
            raise IndexError(f"{name} {d} is out of range for a tensor of {ndim} dimensions")
        normalized.append(int(d) % builtins.max(ndim, 1))
    if len(set(normalized)) != len(normalized):
        raise ValueError(f"{name} {dim} repeats a dimension")
    return tuple(sorted(normalized)) if ndim else ()


def single_dim(dim, ndim: int, op: str) -> int:
    """``dim`` for an op that works along one dimension (max, argmax, cumsum): one int, as a non-negative axis
    (0 for a 0-d tensor)."""
    if not isinstance(dim, (int, np.integer)) or isinstance(dim, bool):
        raise TypeError(f"{op}: dim must be one int, got {dim!r}")
    axes = normalize_dims(dim, ndim)
    return axes[0] if axes else 0


def _expand_back(g, shape, axes, keepdim):
    """Broadcast a reduced gradient back over the reduced ``axes`` of ``shape``."""
    xp = array_module(g)
    if not keepdim and shape:
        g = xp.expand_dims(g, axes)
    return xp.broadcast_to(g, shape)


class Sum(Function):
    def forward(self, x, axes, keepdim):
        self.shape, self.axes, self.keepdim = x.shape, axes, keepdim
        return x.sum(axis=axes, keepdims=keepdim)

    def backward(self, g):
        return _expand_back(g, self.shape, self.axes, self.keepdim)


class Mean(Function):
    def forward(self, x, axes, keepdim):
        self.shape, self.axes, self.keepdim = x.shape, axes, keepdim
        self.count = int(np.prod([x.shape[a] for a in axes]))
        return x.mean(axis=axes, keepdims=keepdim)

    def backward(self, g):
        return _expand_back(g / self.count, self.shape, self.axes, self.keepdim)


class Var(Function):
    def forward(self, x, axes, keepdim, correction):
        self.shape, self.axes, self.keepdim = x.shape, axes, keepdim
        count = int(np.prod([x.shape[a] for a in axes]))
        self.denominator = builtins.max(count - correction, 0)
        self.centered = x - x.mean(axis=axes, keepdims=True)
        total = (self.centered * self.centered).sum(axis=axes, keepdims=keepdim)
        with np.errstate(divide="ignore", invalid="ignore"):
            return total / x.dtype.type(self.denominator)

    def backward(self, g):
        g = _expand_back(g, self.shape, self.axes, self.keepdim)
        if self.denominator == 0:  # n <= correction: the variance is NaN, and so is its gradient (PyTorch)
            return g * self.centered * np.nan
        return g * self.centered * (2 / self.denominator)


class Std(Var):
    """sqrt(var): its gradient is 0 where the deviation is 0 (constant data), not 0/0, as in PyTorch."""

    def forward(self, x, axes, keepdim, correction):
        self.out = array_module(x).sqrt(super().forward(x, axes, keepdim, correction))
        return self.out

    def backward(self, g):
        xp = array_module(g)
        with np.errstate(divide="ignore", invalid="ignore"):
            g_var = xp.where(self.out == 0, 0, g / (2 * self.out))
        return super().backward(g_var.astype(g.dtype, copy=False))


class Extreme(Function):
    """max or min over all elements: the gradient is shared evenly among tied extremes (PyTorch's rule)."""

    def forward(self, x, largest):
        if x.size == 0:
            raise ValueError("max()/min() of an empty tensor")
        self.x = x
        self.out = x.max() if largest else x.min()
        return self.out

    def backward(self, g):
        xp = array_module(g)
        # a NaN is the extreme (max and min propagate it): the gradient goes to the NaNs
        mask = xp.where(xp.isnan(self.out), xp.isnan(self.x), self.x == self.out)  # no host read on a device
        return g * mask / mask.sum()


class ExtremeAlong(Function):
    """max or min along one dim: the gradient goes to the index returned (the first extreme)."""

    def forward(self, x, dim, keepdim, largest):
        if x.shape[dim] == 0:
            raise ValueError(f"max()/min() along dim {dim} of size 0")
        xp = array_module(x)
        index = (x.argmax if largest else x.argmin)(axis=dim, keepdims=True)
        self.shape, self.dim, self.keepdim, self.index = x.shape, dim, keepdim, index
        values = xp.take_along_axis(x, index, axis=dim)
        self.indices = index if keepdim else index.squeeze(dim)
        return values if keepdim else values.squeeze(dim)

    def backward(self, g):
        xp = array_module(g)
        g = g if self.keepdim else xp.expand_dims(g, self.dim)
        # one-hot of the chosen index along dim, times the gradient (put_along_axis without needing it on CuPy)
        positions = xp.arange(self.shape[self.dim]).reshape((-1,) + (1,) * (len(self.shape) - self.dim - 1))
        return (positions == self.index) * g, None, None, None


def sum(x, dim=None, keepdim=False):
    return Sum.apply(x, normalize_dims(dim, x.ndim), keepdim)


def mean(x, dim=None, keepdim=False):
    if x.dtype.kind != "f":
        raise TypeError(f"mean() needs a floating-point tensor, got dtype {x.dtype}")
    return Mean.apply(x, normalize_dims(dim, x.ndim), keepdim)


def _correction(unbiased, correction) -> int:
    if unbiased is not None and correction is not None:
        raise ValueError("pass either unbiased or correction, not both")
    if correction is not None:
        return correction
    return 0 if unbiased is False else 1


def var(x, dim=None, unbiased=None, keepdim=False, *, correction=None):
    """Variance; ``correction=1`` (the default, Bessel's) divides by n - 1, ``unbiased=False`` by n."""
    if x.dtype.kind != "f":
        raise TypeError(f"var() needs a floating-point tensor, got dtype {x.dtype}")
    return Var.apply(x, normalize_dims(dim, x.ndim), keepdim, _correction(unbiased, correction))


def std(x, dim=None, unbiased=None, keepdim=False, *, correction=None):
    """Standard deviation, the square root of ``var`` with the same arguments."""
    if x.dtype.kind != "f":
        raise TypeError(f"std() needs a floating-point tensor, got dtype {x.dtype}")
    return Std.apply(x, normalize_dims(dim, x.ndim), keepdim, _correction(unbiased, correction))


def _extreme(x, dim, keepdim, largest, result):
    if dim is None:
        return Extreme.apply(x, largest)
    axis = single_dim(dim, x.ndim, "max" if largest else "min")
    if x.ndim == 0:  # dim 0 or -1 of a 0-d tensor: the element itself, at index 0
        return result(x.clone(), Tensor._make(array_module(x.data).zeros((), dtype=np.int64)))
    fn_out = ExtremeAlong.apply(x, axis, keepdim, largest)
    indices = _along_indices(x, axis, keepdim, largest)
    return result(fn_out, indices)


def _along_indices(x, axis, keepdim, largest):
    data = x.data
    index = (data.argmax if largest else data.argmin)(axis=axis, keepdims=keepdim)
    return Tensor._make(index.astype(np.int64))


def max(x, dim=None, keepdim=False):
    """The largest element, or with ``dim`` the pair (values, indices) along it."""
    if isinstance(dim, Tensor):
        from tensorlib.ops.elementwise import maximum

        return maximum(x, dim)
    return _extreme(x, dim, keepdim, True, MaxResult)


def min(x, dim=None, keepdim=False):
    if isinstance(dim, Tensor):
        from tensorlib.ops.elementwise import minimum

        return minimum(x, dim)
    return _extreme(x, dim, keepdim, False, MinResult)


def argmax(x, dim=None, keepdim=False):
    if dim is None or x.ndim == 0:
        if dim is not None:
            single_dim(dim, 0, "argmax")
        return Tensor._make(np.int64(x.data.argmax()) if x.device == "cpu" else x.data.argmax())
    return _along_indices(x, single_dim(dim, x.ndim, "argmax"), keepdim, True)


def argmin(x, dim=None, keepdim=False):
    if dim is None or x.ndim == 0:
        if dim is not None:
            single_dim(dim, 0, "argmin")
        return Tensor._make(np.int64(x.data.argmin()) if x.device == "cpu" else x.data.argmin())
    return _along_indices(x, single_dim(dim, x.ndim, "argmin"), keepdim, False)


class Softmax(Function):
    def forward(self, x, dim):
        xp = array_module(x)
        shifted = x - x.max(axis=dim, keepdims=True)  # exp never overflows: the largest exponent is 0
        e = xp.exp(shifted)
        self.out, self.dim = e / e.sum(axis=dim, keepdims=True), dim
        return self.out

    def backward(self, g):
        y = self.out
        return y * (g - (g * y).sum(axis=self.dim, keepdims=True))


class LogSoftmax(Function):
    def forward(self, x, dim):
        xp = array_module(x)
        shifted = x - x.max(axis=dim, keepdims=True)
        self.out = shifted - xp.log(xp.exp(shifted).sum(axis=dim, keepdims=True))
        self.dim = dim
        return self.out

    def backward(self, g):
        xp = array_module(g)
        return g - xp.exp(self.out) * g.sum(axis=self.dim, keepdims=True)


class LogSumExp(Function):
    def forward(self, x, axes, keepdim):
        xp = array_module(x)
        peak = x.max(axis=axes, keepdims=True)
        peak = xp.where(xp.isfinite(peak), peak, 0)  # all -inf (or an inf) along a row: no inf - inf
        with np.errstate(divide="ignore"):  # a row of -inf sums to 0: its log is -inf, the right answer
            total = xp.log(xp.exp(x - peak).sum(axis=axes, keepdims=True)) + peak
        self.x, self.total, self.axes, self.keepdim = x, total, axes, keepdim
        return total if keepdim else total.reshape([n for i, n in enumerate(x.shape) if i not in axes])

    def backward(self, g):
        xp = array_module(g)
        g = _expand_back(g, self.x.shape, self.axes, self.keepdim)
        return g * xp.exp(self.x - self.total)  # softmax over the reduced dims


def logsumexp(x, dim, keepdim=False):
    """log(sum(exp(x))) over ``dim``, computed after subtracting the max (no overflow)."""
    x = x if x.dtype.kind == "f" else x.to(get_default_dtype())
    return LogSumExp.apply(x, normalize_dims(dim, x.ndim), keepdim)


class CumSum(Function):
    def forward(self, x, axis):
        self.axis = axis
        return x.cumsum(axis=axis) if x.ndim else x.copy()

    def backward(self, g):
        xp = array_module(g)
        if g.ndim == 0:
            return g
        return xp.flip(xp.flip(g, self.axis).cumsum(axis=self.axis), self.axis)  # each input feeds every later sum


def cumsum(x, dim):
    """Running sums along ``dim``; integer and bool tensors sum in int64, as in PyTorch."""
    axis = single_dim(dim, x.ndim, "cumsum")
    if x.dtype.kind in "biu":
        x = x.to(np.int64)
    return CumSum.apply(x, axis)


def _softmax_input(x, dim):
    if x.dtype.kind != "f":
        x = x.to(get_default_dtype())
    return x, single_dim(dim, x.ndim, "softmax")


def softmax(x, dim):
    """exp(x) / sum(exp(x)) along ``dim``, computed after subtracting the max (stable for any logits)."""
    return Softmax.apply(*_softmax_input(x, dim))


def log_softmax(x, dim):
    return LogSoftmax.apply(*_softmax_input(x, dim))
