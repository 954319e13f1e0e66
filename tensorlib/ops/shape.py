"""Ops that move elements without arithmetic: reshape, permute, squeeze, expand, indexing, cat, stack,
pad, and the device/dtype move."""

from __future__ import annotations

import functools
import numbers

import numpy as np

from kernels import device_arrays
from tensorlib.autograd import Function
from tensorlib.device import array_device, array_module, move, scatter_add
from tensorlib.ops.elementwise import _promote
from tensorlib.tensor import Tensor


def _dims_arg(args) -> tuple:
    """``f(2, 3)`` and ``f((2, 3))`` both mean (2, 3)."""
    if len(args) == 1 and isinstance(args[0], (tuple, list)):
        return tuple(args[0])
    return tuple(args)


def _axis(dim: int, ndim: int, name: str = "dim") -> int:
    if not isinstance(dim, (int, np.integer)) or isinstance(dim, bool):
        raise TypeError(f"{name} must be an int, got {dim!r}")
    if not -ndim <= dim < ndim:
        raise IndexError(f"{name} {dim} is out of range for a tensor of {ndim} dimensions")
    return int(dim) % ndim


class Reshape(Function):
    returns_view = True

    def forward(self, x, shape):
        self.shape = x.shape
        return x.reshape(shape)

    def backward(self, g):
        return g.reshape(self.shape)


def reshape(x, *shape):
    shape = _dims_arg(shape)
    known = int(np.prod([s for s in shape if s != -1]))
    if shape.count(-1) > 1 or (-1 not in shape and known != x.numel()) or (
        -1 in shape and (known == 0 or x.numel() % known)
    ):
        raise ValueError(f"shape {shape} is invalid for a tensor of shape {x.shape} ({x.numel()} elements)")
    return Reshape.apply(x, shape)


class Permute(Function):
    returns_view = True

    def forward(self, x, dims):
        self.inverse = tuple(np.argsort(dims))
        return x.transpose(dims)

    def backward(self, g):
        return g.transpose(self.inverse)


def permute(x, *dims):
    dims = _dims_arg(dims)
    if len(dims) != x.ndim:
        raise ValueError(f"permute needs {x.ndim} dims for shape {x.shape}, got {dims}")
    axes = tuple(_axis(d, x.ndim) for d in dims)
    if sorted(axes) != list(range(x.ndim)):
        raise ValueError(f"permute dims {dims} are not a permutation of {x.ndim} dimensions")
    return Permute.apply(x, axes)


def transpose(x, dim0, dim1):
    axes = list(range(x.ndim))
    a, b = _axis(dim0, x.ndim, "dim0"), _axis(dim1, x.ndim, "dim1")
    axes[a], axes[b] = axes[b], axes[a]
    return Permute.apply(x, tuple(axes))


def flatten(x, start_dim=0, end_dim=-1):
    if x.ndim == 0:
        return reshape(x, 1)
    start, end = _axis(start_dim, x.ndim, "start_dim"), _axis(end_dim, x.ndim, "end_dim")
    if start > end:
        raise ValueError(f"flatten start_dim {start_dim} comes after end_dim {end_dim}")
    shape = x.shape[:start] + (int(np.prod(x.shape[start:end + 1])),) + x.shape[end + 1:]
    return Reshape.apply(x, shape)


def squeeze(x, dim=None):
    if dim is None:
        dims = [i for i, s in enumerate(x.shape) if s == 1]
    else:
        dims = [_axis(d, max(x.ndim, 1)) for d in ((dim,) if isinstance(dim, int) else dim)]
        dims = [d for d in dims if x.ndim and x.shape[d] == 1]  # PyTorch leaves other sizes alone
    return Reshape.apply(x, tuple(s for i, s in enumerate(x.shape) if i not in dims))


def unsqueeze(x, dim):
    axis = _axis(dim, x.ndim + 1)
    return Reshape.apply(x, x.shape[:axis] + (1,) + x.shape[axis:])


class Expand(Function):
    returns_view = True

    def forward(self, x, shape):
        return array_module(x).broadcast_to(x, shape)

    def backward(self, g):
        return g  # the engine sums the expanded dimensions back down


def expand(x, *sizes):
    sizes = _dims_arg(sizes)
    if len(sizes) < x.ndim:
        raise ValueError(f"expand sizes {sizes} have fewer dimensions than the tensor's shape {x.shape}")
    lead = len(sizes) - x.ndim
    shape = []
    for i, size in enumerate(sizes):
        old = x.shape[i - lead] if i >= lead else None
        if size == -1:
            if old is None:
                raise ValueError(f"expand size -1 is not allowed in a new leading dimension (sizes {sizes})")
            size = old
        if old is not None and old != 1 and old != size:
            raise ValueError(f"expand: size {size} does not match the tensor's size {old} at dim {i} (shape {x.shape})")
        shape.append(size)
    return Expand.apply(x, tuple(shape))


def normalize_index(index):
    """Tensors inside an index become arrays; lists become integer or boolean arrays."""
    items = index if isinstance(index, tuple) else (index,)
    out = []
    for item in items:
        if isinstance(item, Tensor):
            item = item.data
        elif isinstance(item, list):
            item = np.asarray(item)
            if item.dtype.kind not in "iub":
                raise IndexError(f"index lists must hold ints or bools, got dtype {item.dtype}")
        out.append(item)
    return tuple(out)


def check_device_index(shape, index):
    """Raise IndexError, as NumPy does, for an integer array in ``index`` that reaches past its axis of
    ``shape``, when the array is on the device: CuPy wraps such indices silently. It reads the index's
    bounds on the host, so it is skipped while a CUDA graph captures (where no host read is allowed)."""
    consumed = sum(item.ndim if _is_mask(item) else 1 for item in index if item is not None and item is not Ellipsis)
    axis = 0
    for item in index:
        if item is None:
            continue
        if item is Ellipsis:
            axis += len(shape) - consumed
            continue
        if _is_mask(item):
            axis += item.ndim
            continue
        if (hasattr(item, "dtype") and item.dtype.kind in "iu" and item.size and axis < len(shape)
                and array_device(item) == "cuda" and not device_arrays.capturing(item)):
            low, high, size = int(item.min()), int(item.max()), shape[axis]
            if low < -size or high >= size:
                raise IndexError(f"index {high if high >= size else low} is out of bounds for axis {axis} with size {size}")
        axis += 1


def _is_mask(item) -> bool:
    return hasattr(item, "dtype") and item.dtype.kind == "b" and item.ndim > 0


def _has_integer_array(index) -> bool:
    return any(hasattr(item, "dtype") and item.dtype.kind in "iu" and item.ndim > 0 for item in index)


class GetItem(Function):
    returns_view = True

    def forward(self, x, index):
        self.shape, self.dtype, self.index = x.shape, x.dtype, index
        return x[index]

    def backward(self, g):
        xp = array_module(g)
        gx = xp.zeros(self.shape, dtype=self.dtype)
        if _has_integer_array(self.index):
            scatter_add(gx, self.index, g)  # repeated indices must add up, not overwrite
        else:
            gx[self.index] = g
        return gx


def prepare_index(index, shape, device):
    """``index`` for an array of ``shape`` on ``device`` (reading or assigning): normalized, its arrays moved
    to the device, and checked there (``check_device_index``)."""
    index = normalize_index(index)
    index = tuple(move(i, device) if hasattr(i, "dtype") and array_device(i) != device else i for i in index)
    check_device_index(shape, index)
    return index


def getitem(x, index):
    return GetItem.apply(x, prepare_index(index, x.shape, x.device))


class Gather(Function):
    def forward(self, x, index, axis):
        xp = array_module(x)
        self.shape, self.axis = x.shape, axis
        # index may be smaller than x along the other axes: gather from the matching corner of x
        corner = tuple(slice(0, n) if i != axis else slice(None) for i, n in enumerate(index.shape))
        self.index = index
        return xp.take_along_axis(x[corner], index, axis=axis)

    def backward(self, g):
        xp = array_module(g)
        gx = xp.zeros(self.shape, dtype=g.dtype)
        # every index position's coordinates, as arrays broadcasting against the index (an open grid)
        ndim = self.index.ndim
        positions = [xp.arange(n).reshape((1,) * i + (n,) + (1,) * (ndim - i - 1))
                     for i, n in enumerate(self.index.shape)]
        positions[self.axis] = self.index
        scatter_add(gx, tuple(positions), g)  # an index repeated along dim adds up
        return gx, None, None


def gather(x, dim, index):
    """out[i][j][k] = x[index[i][j][k]][j][k] for dim 0 (and likewise along other dims), as torch.gather."""
    axis = _axis(dim, x.ndim)
    if not isinstance(index, Tensor) or index.dtype.kind not in "iu":
        raise TypeError(f"gather: index must be an integer tensor, got {getattr(index, 'dtype', type(index).__name__)}")
    if index.ndim != x.ndim:
        raise ValueError(f"gather: index has {index.ndim} dimensions but the input has {x.ndim} (shapes {index.shape}, {x.shape})")
    for i, (n_index, n_x) in enumerate(zip(index.shape, x.shape)):
        if i != axis and n_index > n_x:
            raise ValueError(f"gather: index shape {index.shape} is larger than the input's {x.shape} at dim {i}")
    if index.numel() and not device_arrays.capturing(index.data):  # a host read: skipped while a graph captures
        low, high = int(index.data.min()), int(index.data.max())
        if low < 0 or high >= x.shape[axis]:
            raise IndexError(f"gather: index {low if low < 0 else high} is out of range for dim {dim} of size {x.shape[axis]}")
    return Gather.apply(x, move(index.data, x.device), axis)


class Cat(Function):
    def forward(self, *arrays, dim):
        self.dim = dim
        self.bounds = np.cumsum([a.shape[dim] for a in arrays])[:-1]
        return array_module(arrays[0]).concatenate(arrays, axis=dim)

    def backward(self, g):
        return tuple(array_module(g).split(g, self.bounds, axis=self.dim))


def _common_dtype(tensors):
    """The tensors cast to their common dtype by PyTorch's promotion (int64 with float32 gives float32)."""
    dtype = functools.reduce(_promote, (t.dtype for t in tensors))
    return [t if t.dtype == dtype else t.to(dtype) for t in tensors]


def cat(tensors, dim=0):
    tensors = list(tensors)
    if not tensors:
        raise ValueError("cat needs at least one tensor")
    tensors = _common_dtype(tensors)
    ndim = tensors[0].ndim
    axis = _axis(dim, ndim)
    for i, t in enumerate(tensors[1:], 1):
        if t.ndim != ndim or t.shape[:axis] + t.shape[axis + 1:] != tensors[0].shape[:axis] + tensors[0].shape[axis + 1:]:
            raise ValueError(f"cat: tensor {i} has shape {t.shape}, which does not fit {tensors[0].shape} along dim {dim}")
    return Cat.apply(*tensors, dim=axis)


class Stack(Function):
    def forward(self, *arrays, dim):
        self.dim = dim
        return array_module(arrays[0]).stack(arrays, axis=dim)

    def backward(self, g):
        xp = array_module(g)
        return tuple(xp.take(g, i, axis=self.dim) for i in range(g.shape[self.dim]))


def stack(tensors, dim=0):
    tensors = list(tensors)
    if not tensors:
        raise ValueError("stack needs at least one tensor")
    tensors = _common_dtype(tensors)
    for i, t in enumerate(tensors[1:], 1):
        if t.shape != tensors[0].shape:
            raise ValueError(f"stack: tensor {i} has shape {t.shape}, tensor 0 has shape {tensors[0].shape}")
    return Stack.apply(*tensors, dim=_axis(dim, tensors[0].ndim + 1))


_PAD_MODES = ("reflect", "replicate", "circular")


def _source_positions(xp, n, lo, hi, mode):
    """The index along an axis of size ``n`` that each of the ``lo + n + hi`` padded positions copies, made
    on the input's device: a host-made index array would be a host-to-device copy in every step."""
    i = xp.arange(-lo, n + hi)
    if mode == "circular":
        return i % n
    if mode == "replicate":
        return xp.clip(i, 0, n - 1)
    i = xp.abs(i)  # reflect: mirrored at 0, then at n - 1, edges not repeated (pads are smaller than n)
    return xp.where(i > n - 1, 2 * (n - 1) - i, i)


class ConstantPad(Function):
    """Zero/constant padding; negative amounts crop, as in PyTorch."""

    def forward(self, x, widths, value):
        xp = array_module(x)
        shape = tuple(n + lo + hi for n, (lo, hi) in zip(x.shape, widths))
        if min(shape, default=1) < 0:
            raise ValueError(f"pad widths {widths} would give a negative size for input shape {x.shape}")
        out = xp.full(shape, value, dtype=x.dtype)
        self.src = tuple(slice(max(-lo, 0), n - max(-hi, 0)) for n, (lo, hi) in zip(x.shape, widths))
        self.dst = tuple(slice(max(lo, 0), m - max(hi, 0)) for m, (lo, hi) in zip(shape, widths))
        self.shape = x.shape
        out[self.dst] = x[self.src]
        return out

    def backward(self, g):
        gx = array_module(g).zeros(self.shape, dtype=g.dtype)
        gx[self.src] = g[self.dst]
        return gx, None, None


class IndexPad(Function):
    """Reflect / replicate / circular padding as a gather along each padded dim; backward scatter-adds."""

    def forward(self, x, widths, mode):
        xp = array_module(x)
        self.shape, self.gathers = x.shape, []
        for axis, (lo, hi) in enumerate(widths):
            if lo or hi:
                positions = _source_positions(xp, x.shape[axis], lo, hi, mode)
                self.gathers.append((axis, positions, x.shape[axis]))
                x = xp.take(x, positions, axis=axis)
        return x

    def backward(self, g):
        xp = array_module(g)
        for axis, positions, size in reversed(self.gathers):
            shape = list(g.shape)
            shape[axis] = size
            scattered = xp.zeros(shape, dtype=g.dtype)
            scatter_add(scattered, (slice(None),) * axis + (positions,), g)
            g = scattered
        return g, None, None


def pad(x, pad, mode="constant", value=0.0):
    """``torch.nn.functional.pad``: ``pad`` lists (before, after) pairs starting from the last dim."""
    pad = tuple(pad)
    if len(pad) % 2 or len(pad) // 2 > x.ndim:
        raise ValueError(f"pad must hold (before, after) pairs for at most {x.ndim} dims, got {pad}")
    if not all(isinstance(p, (int, np.integer)) for p in pad):
        raise TypeError(f"pad amounts must be ints, got {pad}")
    widths = [(0, 0)] * x.ndim
    for i in range(len(pad) // 2):
        widths[x.ndim - 1 - i] = (int(pad[2 * i]), int(pad[2 * i + 1]))
    widths = tuple(widths)
    if mode == "constant":
        if not isinstance(value, numbers.Number):
            raise TypeError(f"pad value must be a number, got {value!r}")
        return ConstantPad.apply(x, widths, value)
    if mode not in _PAD_MODES:
        raise ValueError(f"pad mode must be 'constant', 'reflect', 'replicate' or 'circular', got {mode!r}")
    for (lo, hi), n in zip(widths, x.shape):
        if min(lo, hi) < 0:
            raise ValueError(f"pad mode {mode!r} needs non-negative amounts, got {pad}")
        if mode == "reflect" and max(lo, hi) >= max(n, 1) and (lo or hi):
            raise ValueError(f"reflect padding {pad} must be smaller than the input size {n} (shape {x.shape})")
        if mode == "replicate" and n == 0 and (lo or hi):
            raise ValueError(f"replicate padding {pad} needs a non-empty input along each padded dim (shape {x.shape})")
        if mode == "circular" and max(lo, hi) > n:
            raise ValueError(f"circular padding {pad} must not exceed the input size {n} (shape {x.shape})")
    return IndexPad.apply(x, widths, mode)


class ToDevice(Function):
    def forward(self, x, device, dtype):
        self.device, self.dtype = array_device(x), x.dtype
        moved = move(x, device)
        return moved.astype(dtype, copy=moved is x)

    def backward(self, g):
        return move(g, self.device).astype(self.dtype, copy=False)
