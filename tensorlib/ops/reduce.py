"""Reductions (sum, mean, var, prod, norm, max, min, amax, argmax, any, all), the ordering ops (sort,
argsort, topk, median), counting and searching (count_nonzero, nonzero, unique, bincount) and the numerically
stable softmax / log_softmax."""

from __future__ import annotations

import builtins
import math
import numbers
from collections import namedtuple

import numpy as np

from tensorlib.autograd import Function
from tensorlib.device import array_module
from tensorlib.ops.elementwise import _floating, unrecorded
from tensorlib.ops.shape import Gather
from tensorlib.tensor import Tensor, int64

MaxResult = namedtuple("MaxResult", ["values", "indices"])
MinResult = namedtuple("MinResult", ["values", "indices"])
SortResult = namedtuple("SortResult", ["values", "indices"])
MedianResult = namedtuple("MedianResult", ["values", "indices"])
TopkResult = namedtuple("TopkResult", ["values", "indices"])


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
    """The sum over ``axes``, accumulated and returned in ``dtype`` (None: x's, int64 for integers and bools)."""

    def forward(self, x, axes, keepdim, dtype):
        self.shape, self.axes, self.keepdim = x.shape, axes, keepdim
        return x.sum(axis=axes, keepdims=keepdim, dtype=dtype)

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


def _drop_axes(out, axes, keepdim):
    """A reduction's result computed with keepdims=True, as the caller asked for it."""
    return out if keepdim else out.reshape([n for i, n in enumerate(out.shape) if i not in axes])


class Extreme(Function):
    """max or min over ``axes``: the gradient is shared evenly among tied extremes (PyTorch's rule for max()
    without a dim, amax and amin)."""

    def forward(self, x, axes, keepdim, largest):
        self.x, self.shape, self.axes, self.keepdim = x, x.shape, axes, keepdim
        self.out = (x.max if largest else x.min)(axis=axes, keepdims=True)
        return _drop_axes(self.out, axes, keepdim)

    def backward(self, g):
        return _share_among_ties(_expand_back(g, self.shape, self.axes, self.keepdim), self.x, self.out, self.axes)


def _share_among_ties(g, x, out, axes):
    """The gradient of ``out``, a value picked from ``x`` over ``axes`` (kept as size-1 dims), shared evenly
    among the elements of x equal to it; where it is NaN (max, min and median propagate a NaN), among x's NaNs.
    ``g`` is broadcast to x's shape."""
    xp = array_module(g)
    mask = xp.where(xp.isnan(out), xp.isnan(x), x == out)  # no host read on a device
    return g * mask / mask.sum(axis=axes, keepdims=True).astype(g.dtype)


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


def _dim_or_axis(op, dim, axis):
    """``dim``, or its NumPy-style alias ``axis`` (PyTorch takes either, not both)."""
    if axis is None:
        return dim
    if dim is not None:
        raise TypeError(f"{op}: got both dim={dim!r} and its alias axis={axis!r}; pass one")
    return axis


def _cast_for(op, x, dtype):
    """``x`` cast to the ``dtype`` argument of a reduction (None: as it is), before reducing, as PyTorch
    does."""
    if dtype is None:
        return x
    try:
        dtype = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"{op}: dtype must be a dtype, got {dtype!r}") from None
    return x.to(dtype)


def sum(input, dim=None, keepdim=False, *, dtype=None, axis=None):
    """The sum over ``dim`` (an int or a tuple; all dims by default). Integer and bool tensors sum in int64, as
    in PyTorch; ``dtype`` casts the input first."""
    axes = normalize_dims(_dim_or_axis("sum", dim, axis), input.ndim)
    if dtype is None and input.dtype.kind in "biu":  # not uint64 for unsigned ones, as NumPy would give
        return Sum.apply(input, axes, keepdim, np.dtype(np.int64))
    input = _cast_for("sum", input, dtype)
    return Sum.apply(input, axes, keepdim, input.dtype if input.dtype.kind in "biu" else None)  # int32 stays int32


def mean(input, dim=None, keepdim=False, *, dtype=None, axis=None):
    """The mean over ``dim``, of a floating-point tensor or cast to the floating-point ``dtype`` first."""
    if dtype is not None and np.dtype(dtype).kind != "f":
        raise TypeError(f"mean(): dtype must be a floating-point dtype, got {np.dtype(dtype)}")
    input = _cast_for("mean", input, dtype)
    if input.dtype.kind != "f":
        raise TypeError(f"mean() needs a floating-point tensor, got dtype {input.dtype}; pass dtype= to cast it")
    return Mean.apply(input, normalize_dims(_dim_or_axis("mean", dim, axis), input.ndim), keepdim)


def _correction(unbiased, correction) -> int:
    if unbiased is not None and correction is not None:
        raise ValueError("pass either unbiased or correction, not both")
    if correction is not None:
        return correction
    return 0 if unbiased is False else 1


def _spread_arguments(name, x, dim, unbiased):
    """(dim, unbiased) of var/std and their _mean forms, which also take PyTorch's ``var(x, unbiased)``: a bool
    in dim's place."""
    if x.dtype.kind != "f":
        raise TypeError(f"{name}() needs a floating-point tensor, got dtype {x.dtype}")
    if isinstance(dim, (bool, np.bool_)):
        if unbiased is not None:
            raise TypeError(f"{name}(): got unbiased={unbiased!r} after the bool {dim} in dim's place")
        return None, bool(dim)
    return dim, unbiased


def var(input, dim=None, unbiased=None, keepdim=False, *, correction=None):
    """Variance; ``correction=1`` (the default, Bessel's) divides by n - 1, ``unbiased=False`` by n."""
    dim, unbiased = _spread_arguments("var", input, dim, unbiased)
    return Var.apply(input, normalize_dims(dim, input.ndim), keepdim, _correction(unbiased, correction))


def std(input, dim=None, unbiased=None, keepdim=False, *, correction=None):
    """Standard deviation, the square root of ``var`` with the same arguments."""
    dim, unbiased = _spread_arguments("std", input, dim, unbiased)
    return Std.apply(input, normalize_dims(dim, input.ndim), keepdim, _correction(unbiased, correction))


def var_mean(input, dim=None, unbiased=None, keepdim=False, *, correction=None):
    """(var, mean) over the same dims, as two differentiable tensors."""
    dim, unbiased = _spread_arguments("var_mean", input, dim, unbiased)
    spread = Var.apply(input, normalize_dims(dim, input.ndim), keepdim, _correction(unbiased, correction))
    return spread, mean(input, dim, keepdim)


def std_mean(input, dim=None, unbiased=None, keepdim=False, *, correction=None):
    """(std, mean) over the same dims, as two differentiable tensors."""
    dim, unbiased = _spread_arguments("std_mean", input, dim, unbiased)
    spread = Std.apply(input, normalize_dims(dim, input.ndim), keepdim, _correction(unbiased, correction))
    return spread, mean(input, dim, keepdim)


def _extreme(x, dim, keepdim, largest, result):
    if dim is None:
        if x.numel() == 0:
            raise ValueError("max()/min() of an empty tensor")
        return Extreme.apply(x, tuple(range(x.ndim)), False, largest)
    axis = single_dim(dim, x.ndim, "max" if largest else "min")
    if x.ndim == 0:  # dim 0 or -1 of a 0-d tensor: the element itself, at index 0
        return result(x.clone(), Tensor._make(array_module(x.array).zeros((), dtype=np.int64)))
    fn_out = ExtremeAlong.apply(x, axis, keepdim, largest)
    indices = _along_indices(x, axis, keepdim, largest)
    return result(fn_out, indices)


def _along_indices(x, axis, keepdim, largest):
    data = x.array
    index = (data.argmax if largest else data.argmin)(axis=axis, keepdims=keepdim)
    return Tensor._make(index.astype(np.int64))


def max(input, dim=None, keepdim=False, *, other=None, axis=None):
    """The largest element, or with ``dim`` (alias ``axis``) the pair (values, indices) along it; with a tensor
    ``other`` (in dim's place or by name), the elementwise ``maximum``."""
    return _extreme_or_elementwise("max", input, dim, keepdim, other, axis)


def min(input, dim=None, keepdim=False, *, other=None, axis=None):
    """The smallest element, or with ``dim`` (alias ``axis``) the pair (values, indices) along it; with a tensor
    ``other`` (in dim's place or by name), the elementwise ``minimum``."""
    return _extreme_or_elementwise("min", input, dim, keepdim, other, axis)


def _extreme_or_elementwise(op, input, dim, keepdim, other, axis):
    if isinstance(dim, Tensor):
        dim, other = None, dim
    if other is not None:
        if dim is not None or axis is not None:
            raise TypeError(f"{op}(): got other={type(other).__name__} besides dim={dim!r}; pass one")
        from tensorlib.ops.elementwise import maximum, minimum

        return (maximum if op == "max" else minimum)(input, other)
    largest = op == "max"
    return _extreme(input, _dim_or_axis(op, dim, axis), keepdim, largest, MaxResult if largest else MinResult)


def _arg_extreme(x, dim, keepdim, largest):
    name = "argmax" if largest else "argmin"
    if dim is None or x.ndim == 0:
        if dim is not None:
            single_dim(dim, 0, name)
        flat = (x.array.argmax if largest else x.array.argmin)()
        flat = np.int64(flat) if x.device == "cpu" else flat
        # without a dim, keepdim keeps every dim with size 1, as in PyTorch
        return Tensor._make(flat.reshape((1,) * x.ndim) if keepdim else flat)
    return _along_indices(x, single_dim(dim, x.ndim, name), keepdim, largest)


def argmax(input, dim=None, keepdim=False):
    return _arg_extreme(input, dim, keepdim, True)


def argmin(input, dim=None, keepdim=False):
    return _arg_extreme(input, dim, keepdim, False)


def _amax_amin(x, dim, keepdim, largest):
    name = "amax" if largest else "amin"
    axes = normalize_dims(dim, x.ndim)
    if x.numel() == 0:
        if dim is None or (not isinstance(dim, (int, np.integer)) and not dim):
            raise ValueError(f"{name}() of an empty tensor (shape {x.shape}) needs dim, the dims to reduce")
        for axis in axes:
            if x.shape[axis] == 0:
                raise IndexError(f"{name}(): dim {axis} of size 0 has no {'largest' if largest else 'smallest'} "
                                 "element")
    return Extreme.apply(x, axes, keepdim, largest)


def amax(input, dim=(), keepdim=False):
    """The largest elements over ``dim`` (an int or a tuple; all dims by default). Unlike max(dim), the
    gradient is shared evenly among tied maxima."""
    return _amax_amin(input, dim, keepdim, True)


def amin(input, dim=(), keepdim=False):
    return _amax_amin(input, dim, keepdim, False)


def _any_all(x, dim, keepdim, kind):
    # an empty dims list reduces nothing here (PyTorch's any/all), where sum and amax read it as all dims
    axes = () if isinstance(dim, (tuple, list)) and not dim else normalize_dims(dim, x.ndim)
    out = getattr(x.array, kind)(axis=axes, keepdims=keepdim)
    return unrecorded(out.astype(np.uint8) if x.dtype == np.uint8 else out)  # uint8 in, uint8 out (PyTorch)


def any(input, dim=None, keepdim=False):
    """Whether any element over ``dim`` (an int or a tuple; all by default) is nonzero; a bool tensor."""
    return _any_all(input, dim, keepdim, "any")


def all(input, dim=None, keepdim=False):
    return _any_all(input, dim, keepdim, "all")


class Prod(Function):
    """The product along one axis. The gradient of each element is the product of the others, taken as the
    running products before and after it, so zeros in the input need no division."""

    def forward(self, x, axis, keepdim):
        self.x, self.axis, self.keepdim = x, axis, keepdim
        return x.prod(axis=axis, keepdims=keepdim)

    def backward(self, g):
        xp = array_module(g)
        g = _expand_back(g, self.x.shape, (self.axis,), self.keepdim)
        x = xp.moveaxis(self.x, self.axis, -1)
        ones = xp.ones(x.shape[:-1] + (1,), dtype=x.dtype)
        before = xp.cumprod(xp.concatenate([ones, x[..., :-1]], axis=-1), axis=-1)
        after = xp.flip(xp.cumprod(xp.flip(xp.concatenate([x[..., 1:], ones], axis=-1), -1), axis=-1), -1)
        return g * xp.moveaxis(before * after, -1, self.axis)


def prod(input, dim=None, keepdim=False, dtype=None):
    """The product of all elements, or along one ``dim``. Integer and bool tensors multiply in int64, as in
    PyTorch; ``dtype`` casts the input first."""
    if dtype is not None:
        input = input.to(dtype)
    elif input.dtype.kind in "biu":
        input = input.to(int64)
    if dim is None or input.ndim == 0:
        if dim is not None:
            single_dim(dim, 0, "prod")  # dim 0 or -1 of a 0-d tensor: its single element
        return Prod.apply(input.reshape(-1), 0, False)
    return Prod.apply(input, single_dim(dim, input.ndim, "prod"), keepdim)


class VectorNorm(Function):
    """(sum |x|^p)^(1/p) over ``axes`` for a finite p (p = 0: the count of nonzeros, of gradient 0). Its
    gradient sign(x) |x / norm|^(p-1) is taken as 0 where the norm or x is 0 (PyTorch's rule)."""

    def forward(self, x, p, axes, keepdim):
        xp = array_module(x)
        magnitude = xp.abs(x)
        if p == 0:  # the count of nonzeros
            norm = (x != 0).sum(axis=axes, keepdims=True).astype(x.dtype)
        elif p == 2:
            norm = xp.sqrt((magnitude * magnitude).sum(axis=axes, keepdims=True))
        elif p == 1:
            norm = magnitude.sum(axis=axes, keepdims=True)
        else:
            with np.errstate(divide="ignore"):  # 0 ** p for p < 0 is inf, and the norm 0
                norm = (magnitude**p).sum(axis=axes, keepdims=True) ** (1 / p)
        self.x, self.norm, self.p, self.axes, self.keepdim = x, norm, p, axes, keepdim
        return _drop_axes(norm, axes, keepdim)

    def backward(self, g):
        xp = array_module(g)
        g = _expand_back(g, self.x.shape, self.axes, self.keepdim)
        if self.p == 0:
            return xp.zeros_like(g)
        with np.errstate(divide="ignore", invalid="ignore"):  # 0 / 0 where the norm is 0: masked below
            scale = xp.sign(self.x) * (xp.abs(self.x) / self.norm) ** (self.p - 1)
        return g * xp.where((self.norm == 0) | (self.x == 0), 0, scale)  # x = 0 with p < 1: 0 * inf


def norm(input, p="fro", dim=None, keepdim=False, dtype=None):
    """The vector norm of ``input`` over ``dim`` (an int or a tuple; all elements by default): p = 2 or "fro"
    (Euclidean), 1, any other finite p, inf (max |input|), -inf (min |input|) or 0 (the count of nonzeros)."""
    if input.dtype.kind != "f":
        raise TypeError(f"norm() needs a floating-point tensor, got dtype {input.dtype}")
    if dtype is not None:
        input = input.to(dtype)
    if isinstance(p, str):
        if p != "fro":
            unsupported = " (the nuclear norm is not supported)" if p == "nuc" else ""
            raise ValueError(f"norm: p must be a number or 'fro', got {p!r}{unsupported}")
        if dim is not None and not isinstance(dim, (int, np.integer)) and len(dim) > 2:
            raise ValueError(f"norm: p='fro' takes one or two dims, got dim={dim}")
        p = 2
    if not isinstance(p, numbers.Real) or isinstance(p, bool):
        raise TypeError(f"norm: p must be a number or 'fro', got {p!r}")
    axes = normalize_dims(dim, input.ndim)
    if p == math.inf or p == -math.inf:
        return _amax_amin(input.abs(), axes, keepdim, p > 0)
    if p < 0 and builtins.any(input.shape[axis] == 0 for axis in axes):
        raise ValueError(f"norm: p={p} over an empty dim (shape {input.shape}) has no value (the sum of |x|^p is "
                         "empty)")
    return VectorNorm.apply(input, p, axes, keepdim)


def _stable_argsort(data, axis):
    # NumPy's default sort is not stable; CuPy's always is (and older CuPy versions take no ``kind``)
    return data.argsort(axis=axis, kind="stable") if isinstance(data, np.ndarray) else data.argsort(axis=axis)


def _order(data, axis, descending):
    """Indices that sort ``data`` along ``axis``, stably, NaN counted as the largest value (as in PyTorch). A
    descending sort is an ascending one of the reversed data, reversed back: equal values keep their order."""
    if not descending:
        return _stable_argsort(data, axis)
    xp = array_module(data)
    reversed_order = _stable_argsort(xp.flip(data, axis), axis)
    return xp.flip(data.shape[axis] - 1 - reversed_order, axis)


def _sorted_along(x, dim, descending, k, op):
    """The (values, indices) of the first ``k`` elements of ``x`` in order along ``dim``; values gathered
    from x, so their gradient goes back to the positions they came from."""
    axis = single_dim(dim, x.ndim, op)
    flat = x.reshape(1) if x.ndim == 0 else x  # a 0-d tensor sorts as its single element
    indices = _order(flat.array, axis, descending)
    if k is not None and x.ndim:
        indices = indices[(slice(None),) * axis + (slice(0, k),)]
    indices = indices.astype(np.int64, copy=False)
    values = Gather.apply(flat, indices, axis)
    if x.ndim == 0:
        return values.reshape(()), Tensor._make(indices.reshape(()))
    return values, Tensor._make(indices)


def sort(input, dim=-1, descending=False, *, stable=False):
    """(values, indices) of ``input`` sorted along ``dim``; NaN sorts as the largest value. The sort is always
    stable (equal values keep their order), which ``stable=False`` allows."""
    return SortResult(*_sorted_along(input, dim, descending, None, "sort"))


def argsort(input, dim=-1, descending=False, *, stable=False):
    """The indices that sort ``input`` along ``dim`` (those of ``sort``)."""
    return sort(input, dim, descending).indices


def topk(input, k, dim=-1, largest=True, sorted=True):
    """(values, indices) of the ``k`` largest (or smallest) elements along ``dim``, in order (NaN counts
    as the largest), whatever ``sorted`` says."""
    if not isinstance(k, (int, np.integer)) or isinstance(k, bool):
        raise TypeError(f"topk: k must be an int, got {k!r}")
    size = input.shape[single_dim(dim, input.ndim, "topk")] if input.ndim else 1
    if not 0 <= k <= size:
        raise ValueError(f"topk: k={k} is out of range for dim {dim} of size {size}")
    if input.dtype == np.bool_:
        raise TypeError("topk of a bool tensor is not supported")
    return TopkResult(*_sorted_along(input, dim, largest, k, "topk"))


def median(input, dim=None, keepdim=False):
    """The lower median (of an even count, the smaller middle value), or with ``dim`` the pair (values,
    indices) along it; NaN where the values hold a NaN (its index, the first NaN's). With ``dim`` the gradient
    goes to the position of the index returned; without, it is shared evenly among the elements equal to the
    median (the NaNs when it is NaN), as PyTorch does and as for max()."""
    if input.dtype == np.bool_:
        raise TypeError("median of a bool tensor is not supported")
    if dim is None:
        if input.numel() == 0:
            if input.dtype.kind != "f":
                raise ValueError(f"median() of an empty {input.dtype} tensor has no value")
            return Tensor._make(array_module(input.array).full((), np.nan, dtype=input.dtype))
        return Median.apply(input)
    axis = single_dim(dim, input.ndim, "median")
    if input.ndim == 0:  # dim 0 or -1 of a 0-d tensor: the element itself, at index 0
        return MedianResult(input.clone(), Tensor._make(array_module(input.array).zeros((), dtype=np.int64)))
    if input.shape[axis] == 0:
        raise IndexError(f"median(): dim {dim} of size 0 has no median")
    index = _median_index(input.array, axis)
    values = Gather.apply(input, index, axis)
    if not keepdim:
        return MedianResult(values.squeeze(axis), Tensor._make(index.squeeze(axis)))
    return MedianResult(values, Tensor._make(index))


def _median_index(data, axis):
    """Where the lower median of each slice of ``data`` along ``axis`` is (int64, that axis kept with size 1):
    the middle of the stable ascending order, or the first NaN of a slice holding one (NaN sorts last)."""
    xp = array_module(data)
    size = data.shape[axis]
    order = _order(data, axis, False)
    kept = order.shape[:axis] + (1,) + order.shape[axis + 1:]
    if data.dtype.kind == "f":
        nans = xp.isnan(data).sum(axis=axis, keepdims=True)
        position = xp.where(nans > 0, size - nans, (size - 1) // 2)
    else:
        position = xp.full(kept, (size - 1) // 2, dtype=np.int64)
    return xp.take_along_axis(order, xp.broadcast_to(position, kept), axis=axis).astype(np.int64)


class Median(Function):
    """median() of all the elements (a 0-d result); the gradient is shared evenly among the ties."""

    def forward(self, x):
        flat = x.reshape(-1)
        self.x, self.out = x, flat[_median_index(flat, 0)].reshape((1,) * x.ndim)  # x's dims kept, of size 1
        return self.out.reshape(())

    def backward(self, g):
        return _share_among_ties(g, self.x, self.out, tuple(range(self.x.ndim)))


def count_nonzero(input, dim=None):
    """How many elements over ``dim`` (an int or a tuple; all by default) are nonzero; int64."""
    axes = normalize_dims(dim, input.ndim)
    return unrecorded((input.array != 0).sum(axis=axes).astype(np.int64, copy=False))


def nonzero(input, *, as_tuple=False):
    """The indices of the nonzero elements, in row-major order: an (n, input.ndim) int64 tensor, or with
    ``as_tuple`` one 1-D tensor per dim (a 0-d tensor counts as 1-D there)."""
    if not isinstance(input, Tensor):
        raise TypeError(f"nonzero: input must be a Tensor, got {type(input).__name__}")
    data = input.array.reshape(1) if input.ndim == 0 else input.array
    indices = [i.astype(np.int64, copy=False) for i in array_module(data).nonzero(data)]
    if as_tuple:
        return tuple(unrecorded(i) for i in indices)
    stacked = array_module(data).stack(indices, axis=1)
    return unrecorded(stacked[:, :0] if input.ndim == 0 else stacked)  # a 0-d tensor's indices have no coordinates


def unique(input, sorted=True, return_inverse=False, return_counts=False, dim=None):
    """The distinct elements of ``input`` (or with ``dim``, its distinct slices along that dim), in ascending order
    whatever ``sorted`` says; each NaN counts as distinct, as in PyTorch. With ``return_inverse``, also where
    each element (slice) of ``input`` went in the result (input's shape; a 1-D one with ``dim``); with
    ``return_counts``, how often each distinct one occurs (both int64)."""
    xp = array_module(input.array)
    axis = None if dim is None else single_dim(dim, input.ndim, "unique")
    data = input.array.reshape(-1) if axis is None else input.array
    values, inverse, counts = xp.unique(data, return_inverse=True, return_counts=True, axis=axis, equal_nan=False)
    results = [unrecorded(values)]
    if return_inverse:
        results.append(unrecorded(inverse.reshape(input.shape if axis is None else -1).astype(np.int64, copy=False)))
    if return_counts:
        results.append(unrecorded(counts.astype(np.int64, copy=False)))
    return results[0] if len(results) == 1 else tuple(results)


def bincount(input, weights=None, minlength=0):
    """How often each value 0, 1, ..., max(input) occurs in the 1-D tensor ``input`` of non-negative integers (at least
    ``minlength`` counts): int64, or with ``weights`` (input's shape) the sums of the weights, float32 for float32
    weights and float64 for any other (float16 included), as in PyTorch. Not differentiable."""
    if input.ndim != 1 or input.dtype.kind not in "iu":
        raise ValueError(f"bincount: input must be a 1-D tensor of non-negative integers, got shape {input.shape} "
                         f"and dtype {input.dtype}")
    if not isinstance(minlength, (int, np.integer)) or isinstance(minlength, bool) or minlength < 0:
        raise ValueError(f"bincount: minlength must be an int >= 0, got {minlength!r}")
    lowest = int(input.array.min()) if input.numel() else 0  # one read of the device
    if lowest < 0:
        raise ValueError(f"bincount: input must hold non-negative integers, got {lowest}")
    if weights is not None and (not isinstance(weights, Tensor) or weights.shape != input.shape):
        raise ValueError(f"bincount: weights must be a tensor of the input's shape {input.shape}, got "
                         f"{getattr(weights, 'shape', type(weights).__name__)}")
    xp = array_module(input.array)
    counts = xp.bincount(input.array.astype(np.int64, copy=False), None if weights is None else weights.array,
                         minlength=int(minlength))
    dtype = np.int64 if weights is None else np.float32 if weights.dtype == np.float32 else np.float64
    return unrecorded(counts.astype(dtype, copy=False))


class Softmax(Function):
    def forward(self, x, dim):
        xp = array_module(x)
        self.dim = dim
        if x.ndim and x.shape[dim] == 0:  # nothing to normalize: an empty result, as in PyTorch
            self.out = x.copy()
            return self.out
        shifted = x - x.max(axis=dim, keepdims=True)  # exp never overflows: the largest exponent is 0
        e = xp.exp(shifted)
        self.out = e / e.sum(axis=dim, keepdims=True)
        return self.out

    def backward(self, g):
        y = self.out
        return y * (g - (g * y).sum(axis=self.dim, keepdims=True))


class LogSoftmax(Function):
    def forward(self, x, dim):
        xp = array_module(x)
        self.dim = dim
        if x.ndim and x.shape[dim] == 0:
            self.out = x.copy()
            return self.out
        shifted = x - x.max(axis=dim, keepdims=True)
        self.out = shifted - xp.log(xp.exp(shifted).sum(axis=dim, keepdims=True))
        return self.out

    def backward(self, g):
        xp = array_module(g)
        return g - xp.exp(self.out) * g.sum(axis=self.dim, keepdims=True)


class LogSumExp(Function):
    def forward(self, x, axes, keepdim):
        xp = array_module(x)
        if builtins.any(x.shape[axis] == 0 for axis in axes):  # an empty sum: log(0) = -inf, as in PyTorch
            kept = tuple(1 if i in axes else n for i, n in enumerate(x.shape))
            self.x, self.total, self.axes, self.keepdim = x, xp.full(kept, -np.inf, dtype=x.dtype), axes, keepdim
            return _drop_axes(self.total, axes, keepdim)
        peak = x.max(axis=axes, keepdims=True)
        peak = xp.where(xp.isfinite(peak), peak, 0)  # all -inf (or an inf) along a row: no inf - inf
        with np.errstate(divide="ignore"):  # a row of -inf sums to 0: its log is -inf, the right answer
            total = xp.log(xp.exp(x - peak).sum(axis=axes, keepdims=True)) + peak
        self.x, self.total, self.axes, self.keepdim = x, total, axes, keepdim
        return _drop_axes(total, axes, keepdim)

    def backward(self, g):
        xp = array_module(g)
        g = _expand_back(g, self.x.shape, self.axes, self.keepdim)
        return g * xp.exp(self.x - self.total)  # softmax over the reduced dims


def logsumexp(input, dim, keepdim=False):
    """log(sum(exp(input))) over ``dim``, computed after subtracting the max (no overflow); -inf over an empty
    dim."""
    input = _floating(input)
    return LogSumExp.apply(input, normalize_dims(dim, input.ndim), keepdim)


class CumSum(Function):
    def forward(self, x, axis):
        self.axis = axis
        return x.cumsum(axis=axis) if x.ndim else x.copy()

    def backward(self, g):
        xp = array_module(g)
        if g.ndim == 0:
            return g
        return xp.flip(xp.flip(g, self.axis).cumsum(axis=self.axis), self.axis)  # each input feeds every later sum


def _running_input(op, x, dtype):
    """cumsum's and cumprod's input: cast to ``dtype``, or integers and bools to int64 (PyTorch's rule)."""
    if dtype is None and x.dtype.kind in "biu":
        dtype = np.int64
    return _cast_for(op, x, dtype)


def cumsum(input, dim, *, dtype=None):
    """Running sums along ``dim``; integer and bool tensors sum in int64, as in PyTorch; ``dtype`` casts the
    input first."""
    input = _running_input("cumsum", input, dtype)
    return CumSum.apply(input, single_dim(dim, input.ndim, "cumsum"))


class CumProd(Function):
    """Running products along ``axis``. The gradient of x_i is sum over j >= i of g_j * out_j / x_i before the
    first zero of its slice, and 0 after it; at the first zero z it is sum over j >= z of g_j times the running
    product with x_z taken as 1 (no division by zero anywhere)."""

    def forward(self, x, axis):
        self.x, self.axis = x, axis
        self.out = x.cumprod(axis=axis) if x.ndim else x.copy()
        return self.out

    def backward(self, g):
        xp = array_module(g)
        if g.ndim == 0:
            return g
        x, axis = self.x, self.axis
        is_zero = x == 0
        zeros_so_far = is_zero.cumsum(axis=axis)
        before_zero, first_zero = zeros_so_far == 0, is_zero & (zeros_so_far == 1)
        later_sums = xp.flip(xp.flip(g * self.out, axis).cumsum(axis=axis), axis)  # sum over j >= i
        grad = xp.where(before_zero, later_sums / xp.where(before_zero, x, 1), 0)
        skipping_zero = xp.where(first_zero, 1, x).cumprod(axis=axis)
        at_zero = xp.where(zeros_so_far > 0, g * skipping_zero, 0).sum(axis=axis, keepdims=True)
        return xp.where(first_zero, at_zero, grad).astype(g.dtype, copy=False)


def cumprod(input, dim, *, dtype=None):
    """Running products along ``dim``; integer and bool tensors multiply in int64, as in PyTorch; ``dtype``
    casts the input first. The gradient is exact with zeros in the input."""
    input = _running_input("cumprod", input, dtype)
    return CumProd.apply(input, single_dim(dim, input.ndim, "cumprod"))


def _softmax_input(op, x, dim, dtype):
    x = _floating(_cast_for(op, x, dtype))
    return x, single_dim(dim, x.ndim, op)


def softmax(input, dim, dtype=None):
    """exp(input) / sum(exp(input)) along ``dim``, computed after subtracting the max (stable for any logits);
    ``dtype`` casts the input first."""
    return Softmax.apply(*_softmax_input("softmax", input, dim, dtype))


def log_softmax(input, dim, dtype=None):
    return LogSoftmax.apply(*_softmax_input("log_softmax", input, dim, dtype))
