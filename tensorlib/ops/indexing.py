"""Ops that pick, place or repeat elements by index or mask, built on the shape ops (expand, getitem,
index_select, repeat): masked_select, take, index_add, index_fill, repeat_interleave, tile, broadcast_to.
Their gradients are those of the ops they are made of, except index_add's, which sits beside its forward."""

from __future__ import annotations

import numbers

import numpy as np

from tensorlib.autograd import Function
from tensorlib.device import array_module, move
from tensorlib.device import scatter_add as add_at  # numpy.add.at (cupyx's on the device)
from tensorlib.ops.elementwise import _as_number, masked_fill
from tensorlib.ops.shape import GetItem, _axis, _check_index_range, expand, index_select, repeat
from tensorlib.tensor import Tensor, _require_tensor


def broadcast_to(input, size):
    """``input`` expanded to ``size`` (NumPy's broadcasting; -1 keeps a size), as ``expand``: a view."""
    _require_tensor("broadcast_to", input, "input")
    return expand(input, *((size,) if isinstance(size, (int, np.integer)) else size))


def masked_select(input, mask):
    """The elements of ``input`` where the bool ``mask`` holds, both broadcast to one shape, as a 1-D tensor in
    row-major order."""
    _require_tensor("masked_select", input, "input")
    if not isinstance(mask, Tensor) or mask.dtype != np.bool_:
        raise TypeError(f"masked_select: mask must be a bool tensor, got {getattr(mask, 'dtype', type(mask).__name__)}")
    try:
        shape = np.broadcast_shapes(input.shape, mask.shape)
    except ValueError:
        raise ValueError(f"masked_select: the mask's shape {mask.shape} does not broadcast with the input's "
                         f"shape {input.shape}") from None
    return expand(input, *shape)[expand(mask, *shape)]


def take(input, index):
    """The elements of ``input``, read as a 1-D tensor in row-major order, at the positions ``index`` (an int64
    tensor of any shape; negative counts from the end): a tensor of index's shape."""
    _require_tensor("take", input, "input")
    if not isinstance(index, Tensor) or index.dtype != np.int64:
        raise TypeError(f"take: index must be an int64 tensor, got {getattr(index, 'dtype', type(index).__name__)}")
    _check_signed_range(index, input.numel(), f"a tensor of {input.numel()} elements", "take")
    # the index as it is: getitem's device check would read it back from the cuda device
    return GetItem.apply(input.reshape(-1), (move(index.array, input.device),))


def _check_signed_range(index, size, what, op):
    """Refuse an index tensor with an element outside [-size, size) (negative ones count from the end), on the cpu.
    On cuda the check would read the device on each call, as PyTorch checks there only in a kernel assertion: an
    index out of range wraps around there."""
    if not index.numel() or index.device != "cpu":
        return
    low, high = int(index.array.min()), int(index.array.max())
    if low < -size or high >= size:
        raise IndexError(f"{op}: index {high if high >= size else low} is out of range for {what}")


def tile(input, dims):
    """``input`` repeated ``dims[i]`` times along dim i; fewer dims than input has are padded with 1s in front, more add
    leading dims (``repeat`` after that padding)."""
    _require_tensor("tile", input, "input")
    dims = (dims,) if isinstance(dims, (int, np.integer)) else tuple(dims)
    return repeat(input, (1,) * (input.ndim - len(dims)) + dims)


def repeat_interleave(input, repeats=None, dim=None, *, output_size=None):
    """Each element (each slice along ``dim``) of ``input`` repeated: ``repeats`` times (an int), or repeats[i]
    times for the i-th (a 1-D integer tensor of the dim's size, or of one element for all). Without ``dim`` input
    is flattened first. ``repeat_interleave(counts)`` alone gives each index i repeated counts[i] times.
    ``output_size``, the result's size along dim, is checked when given."""
    if repeats is None:  # repeat_interleave(counts): the indices 0, 1, ... repeated by counts
        _require_tensor("repeat_interleave", input, "repeats")
        repeats, input = input, Tensor._make(array_module(input.array).arange(input.numel(), dtype=np.int64))
        dim = 0
    _require_tensor("repeat_interleave", input, "input")
    if dim is None:
        input, axis = input.reshape(-1), 0
    else:
        axis = _axis(dim, max(input.ndim, 1))
        input = input.reshape(1) if input.ndim == 0 else input
    size = input.shape[axis]
    if isinstance(repeats, Tensor):
        if repeats.dtype.kind not in "iu" or repeats.ndim > 1:
            raise TypeError(f"repeat_interleave: repeats must be an int or a 0-d or 1-D integer tensor, got dtype "
                            f"{repeats.dtype} and shape {repeats.shape}")
        counts = move(repeats.array, "cpu").reshape(-1).astype(np.int64)
        if counts.size not in (1, size):
            raise ValueError(f"repeat_interleave: repeats must have the input's size {size} along dim {dim} (or "
                             f"one element), got {counts.size}")
    elif isinstance(repeats, (int, np.integer)) and not isinstance(repeats, bool):
        counts = np.array([repeats], dtype=np.int64)
    else:
        raise TypeError(f"repeat_interleave: repeats must be an int or an integer tensor, got {repeats!r}")
    if counts.size and counts.min() < 0:
        raise ValueError(f"repeat_interleave: repeats must be non-negative, got {int(counts.min())}")
    index = np.repeat(np.arange(size), np.broadcast_to(counts, (size,)))
    if output_size is not None and output_size != index.size:
        raise ValueError(f"repeat_interleave: output_size={output_size} but the repeats give {index.size}")
    return index_select(input, axis, Tensor._make(move(index, input.device)))


def _index_along(op, x, dim, index, dtypes):
    """(axis, index array on x's device) of index_add's and index_fill's ``index``: a 0-d or 1-D tensor of
    ``dtypes`` along ``dim`` of ``x`` (a 0-d x counts as 1-D), its values checked to lie in the dim."""
    _require_tensor(op, x, "input")
    axis = _axis(dim, max(x.ndim, 1))
    if not isinstance(index, Tensor) or index.dtype not in dtypes:
        names = " or ".join(str(np.dtype(d)) for d in dtypes)
        raise TypeError(f"{op}: index must be an {names} tensor, got {getattr(index, 'dtype', type(index).__name__)}")
    if index.ndim > 1:
        raise ValueError(f"{op}: index must be 0-d or 1-D, got shape {index.shape}")
    return axis, index


class IndexAdd(Function):
    """x with source's slices along ``axis`` added at the positions ``index`` names (repeats add up). The
    gradient of x is the output's; source's is the output's gradient at those positions (times alpha)."""

    def forward(self, x, index, source, axis, alpha):
        self.index, self.axis, self.alpha = index, axis, alpha
        out = x.copy()
        add_at(out, (slice(None),) * axis + (index,), source if alpha == 1 else source * alpha)
        return out

    def backward(self, g):
        g_source = None
        if self.needs_input_grad[2]:
            g_source = array_module(g).take(g, self.index, axis=self.axis)
            g_source = g_source if self.alpha == 1 else g_source * self.alpha
        return g, None, g_source, None, None


def index_add(input, dim, index, source, *, alpha=1):
    """``input`` with ``alpha * source`` added along ``dim`` at the positions ``index`` (an int32 or int64 0-d or
    1-D tensor) names: for dim 0, out[index[i]] += alpha * source[i]. ``source`` has input's dtype and shape, but
    len(index) along dim."""
    axis, index = _index_along("index_add", input, dim, index, (np.int32, np.int64))
    _require_tensor("index_add", source, "source")
    if source.dtype != input.dtype:
        raise TypeError(f"index_add: source must have the input's dtype {input.dtype}, got {source.dtype}")
    expected = list(input.shape) or [1]
    expected[axis] = index.numel()
    if source.ndim != input.ndim or (input.ndim and list(source.shape) != expected):
        raise ValueError(f"index_add: source must have shape {tuple(expected) if input.ndim else ()} (the input's, "
                         f"with {index.numel()} along dim {dim}), got {source.shape}")
    size = input.shape[axis] if input.ndim else 1
    _check_index_range(index, size, dim, "index_add")
    if not isinstance(alpha, (numbers.Number, np.generic)):
        raise TypeError(f"index_add: alpha must be a number, got {type(alpha).__name__}")
    flat, source = (input.reshape(1), source.reshape(1)) if input.ndim == 0 else (input, source)
    positions = move(index.array.reshape(-1), input.device)
    out = IndexAdd.apply(flat, positions, source, axis, _as_number(alpha, input.dtype))
    return out.reshape(()) if input.ndim == 0 else out


def index_fill(input, dim, index, value):
    """``input`` with ``value`` (a number or a 0-d tensor, cast to input's dtype) written at the positions ``index`` (an
    int64 0-d or 1-D tensor; negative counts from the end) names along ``dim``. Differentiable in input and in a 0-d
    tensor value, as ``masked_fill``."""
    axis, index = _index_along("index_fill", input, dim, index, (np.int64,))
    size = input.shape[axis] if input.ndim else 1
    _check_signed_range(index, size, f"dim {dim} of size {size}", "index_fill")
    if isinstance(value, Tensor) and value.ndim != 0:
        raise ValueError(f"index_fill: value must be a number or a 0-d tensor, got a tensor of shape {value.shape}")
    xp = array_module(input.array)
    chosen = xp.zeros(size, dtype=bool)
    chosen[move(index.array.reshape(-1), input.device)] = True
    mask = chosen.reshape((size,) + (1,) * (input.ndim - axis - 1)) if input.ndim else chosen.reshape(())
    return masked_fill(input, Tensor._make(mask), value)

