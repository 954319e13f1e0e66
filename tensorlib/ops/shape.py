"""Ops that move elements without arithmetic: reshape, permute, squeeze, expand, indexing, gather/scatter,
split, flip, roll, repeat, index_select, cat, stack, pad, and the device/dtype move."""

from __future__ import annotations

import functools
import numbers
import operator
import os
import sys
import warnings

import numpy as np

from kernels import device_arrays
from tensorlib.autograd import Function
from tensorlib.device import array_device, array_module, module_for, move
from tensorlib.device import scatter_add as add_at  # numpy.add.at; the name scatter_add is the tensor op here
from tensorlib.ops.elementwise import _as_number, _promote
from tensorlib.tensor import Tensor


def _dims_arg(args, keyword=None, name="dims", op="") -> tuple:
    """``f(2, 3)``, ``f((2, 3))`` and, with the keyword argument ``keyword`` named ``name``, ``f(dims=(2, 3))``
    all mean (2, 3), as PyTorch reads the sizes and dims of ``view``, ``permute``, ``flip``, ..."""
    if keyword is not None:
        if args:
            raise TypeError(f"{op}() got {name} both as positional arguments {args} and as {name}={keyword!r}")
        args = (keyword,)
    if len(args) == 1 and isinstance(args[0], (tuple, list)):
        return tuple(args[0])
    return tuple(args)


def _axis(dim: int, ndim: int, name: str = "dim") -> int:
    if not isinstance(dim, (int, np.integer)) or isinstance(dim, bool):
        raise TypeError(f"{name} must be an int, got {dim!r}")
    if not -ndim <= dim < ndim:
        raise IndexError(f"{name} {dim} is out of range for a tensor of {ndim} dimensions")
    return int(dim) % ndim


def _distinct_axes(dims, ndim: int, op: str) -> tuple:
    """``dims`` (a sequence of ints) as non-negative axes, refusing a repeat; a 0-d tensor takes 0 and -1,
    which name no axis."""
    axes = [_axis(d, max(ndim, 1)) for d in dims]
    if len(set(axes)) != len(axes):
        raise ValueError(f"{op}: dims {tuple(dims)} repeat a dimension")
    return tuple(axes) if ndim else ()


class Reshape(Function):
    returns_view = True

    def forward(self, x, shape):
        self.shape = x.shape
        return x.reshape(shape)

    def backward(self, g):
        return g.reshape(self.shape)


def reshape(input, *args, shape=None):
    """``input`` in another shape (a view where the memory allows): ``reshape(x, 2, 3)``, ``reshape(x, (2, 3))``
    or ``reshape(x, shape=(2, 3))``; one size may be -1, inferred."""
    shape = _dims_arg(args, shape, "shape", "reshape")
    known = int(np.prod([s for s in shape if s != -1]))
    if shape.count(-1) > 1 or (-1 not in shape and known != input.numel()) or (
        -1 in shape and (known == 0 or input.numel() % known)
    ):
        raise ValueError(f"shape {shape} is invalid for a tensor of shape {input.shape} ({input.numel()} elements)")
    return Reshape.apply(input, shape)


class Permute(Function):
    returns_view = True

    def forward(self, x, dims):
        self.inverse = tuple(np.argsort(dims))
        return x.transpose(dims)

    def backward(self, g):
        return g.transpose(self.inverse)


def permute(input, *args, dims=None):
    """``input`` with its dims reordered, as a view: ``permute(x, 2, 0, 1)``, ``permute(x, (2, 0, 1))`` or
    ``permute(x, dims=(2, 0, 1))``."""
    dims = _dims_arg(args, dims, "dims", "permute")
    if len(dims) != input.ndim:
        raise ValueError(f"permute needs {input.ndim} dims for shape {input.shape}, got {dims}")
    axes = tuple(_axis(d, input.ndim) for d in dims)
    if sorted(axes) != list(range(input.ndim)):
        raise ValueError(f"permute dims {dims} are not a permutation of {input.ndim} dimensions")
    return Permute.apply(input, axes)


def transpose(input, dim0, dim1):
    axes = list(range(input.ndim))
    a, b = _axis(dim0, input.ndim, "dim0"), _axis(dim1, input.ndim, "dim1")
    axes[a], axes[b] = axes[b], axes[a]
    return Permute.apply(input, tuple(axes))


def flatten(input, start_dim=0, end_dim=-1):
    if input.ndim == 0:
        return reshape(input, 1)
    start, end = _axis(start_dim, input.ndim, "start_dim"), _axis(end_dim, input.ndim, "end_dim")
    if start > end:
        raise ValueError(f"flatten start_dim {start_dim} comes after end_dim {end_dim}")
    shape = input.shape[:start] + (int(np.prod(input.shape[start:end + 1])),) + input.shape[end + 1:]
    return Reshape.apply(input, shape)


def squeeze(input, dim=None):
    if dim is None:
        dims = [i for i, s in enumerate(input.shape) if s == 1]
    else:
        dims = _distinct_axes((dim,) if isinstance(dim, (int, np.integer)) else dim, input.ndim, "squeeze")
        dims = [d for d in dims if input.shape[d] == 1]  # PyTorch leaves other sizes alone
    return Reshape.apply(input, tuple(s for i, s in enumerate(input.shape) if i not in dims))


def unsqueeze(input, dim):
    axis = _axis(dim, input.ndim + 1)
    return Reshape.apply(input, input.shape[:axis] + (1,) + input.shape[axis:])


def unflatten(input, dim, sizes):
    """Dim ``dim`` split into ``sizes`` (one of them may be -1, inferred), as a view."""
    axis = _axis(dim, input.ndim)
    sizes, size = tuple(int(s) for s in sizes), input.shape[axis]
    if not sizes:
        raise ValueError("unflatten: sizes must not be empty")
    known = int(np.prod([s for s in sizes if s != -1]))
    inferred = sizes.count(-1) == 1 and known and size % known == 0
    if not inferred and (-1 in sizes or known != size or min(sizes) < 0):
        raise ValueError(f"unflatten: sizes {sizes} do not multiply to the size {size} of dim {dim}")
    sizes = tuple(size // known if s == -1 else s for s in sizes)
    return Reshape.apply(input, input.shape[:axis] + sizes + input.shape[axis + 1:])


def movedim(input, source, destination):
    """Dims ``source`` (an int or a sequence) moved to positions ``destination``, the others keeping their
    order: a permute."""
    source = (source,) if isinstance(source, (int, np.integer)) else tuple(source)
    destination = (destination,) if isinstance(destination, (int, np.integer)) else tuple(destination)
    if len(source) != len(destination):
        raise ValueError(f"movedim: source {source} and destination {destination} must name as many dims")
    order = [None] * input.ndim
    for s, d in zip(_distinct_axes(source, input.ndim, "movedim source"),
                    _distinct_axes(destination, input.ndim, "movedim destination")):
        order[d] = s
    rest = iter(a for a in range(input.ndim) if a not in order)
    return permute(input, tuple(next(rest) if a is None else a for a in order))


def swapaxes(input, axis0, axis1):
    return transpose(input, axis0, axis1)


def swapdims(input, dim0, dim1):
    return transpose(input, dim0, dim1)


class Expand(Function):
    returns_view = True

    def forward(self, x, shape):
        return array_module(x).broadcast_to(x, shape)

    def backward(self, g):
        return g  # the engine sums the expanded dimensions back down


def expand(input, *sizes, size=None):
    """``input`` broadcast to more or larger dims, as a view: ``expand(x, 4, 3)``, ``expand(x, (4, 3))`` or
    ``expand(x, size=(4, 3))``; -1 keeps a dim's size."""
    sizes = _dims_arg(sizes, size, "size", "expand")
    if len(sizes) < input.ndim:
        raise ValueError(f"expand sizes {sizes} have fewer dimensions than the tensor's shape {input.shape}")
    lead = len(sizes) - input.ndim
    shape = []
    for i, size in enumerate(sizes):
        old = input.shape[i - lead] if i >= lead else None
        if size == -1:
            if old is None:
                raise ValueError(f"expand size -1 is not allowed in a new leading dimension (sizes {sizes})")
            size = old
        if old is not None and old != 1 and old != size:
            raise ValueError(f"expand: size {size} does not match the tensor's size {old} at dim {i} "
                             f"(shape {input.shape})")
        shape.append(size)
    return Expand.apply(input, tuple(shape))


# ---- indexing, read as PyTorch reads an index ----------------------------------------------------------------
# PyTorch applies an index in two steps: its ints, slices, None and Ellipsis first (a view), then its index arrays
# (integer arrays and masks) over the dims that are left. A bool scalar is a new dim of size 1 there, indexed by
# [0] (True) or [] (False) in the second step. NumPy reads the same index in one step and counts an int next to an
# index array as one more index array, which moves the indexed dims: x[0, :, [2, 1]] of shape (2, 3, 3) is (2, 3)
# in NumPy and (3, 2) in PyTorch. Such an index becomes a ``SplitIndex`` (both steps); every other index is a
# tuple, which NumPy and CuPy read as PyTorch does.

# the dtypes an index tensor may have, as in PyTorch (uint8 is a mask, as bool is)
_INDEX_DTYPES = frozenset(np.dtype(t) for t in (np.int64, np.int32, np.uint8, np.bool_))
_MAX_SEQUENCE_AS_TUPLE = 32  # a longer list of ints is one index array, whatever it holds (PyTorch's bound)


class SplitIndex:
    """An index applied in PyTorch's two steps: ``basic`` (ints, slices, None, Ellipsis), then ``advanced`` (the
    index arrays, with full slices elsewhere) on the view that ``basic`` gives, whose shape is ``basic_shape``."""

    __slots__ = ("basic", "advanced", "basic_shape")

    def __init__(self, basic, advanced, basic_shape):
        self.basic, self.advanced, self.basic_shape = basic, advanced, basic_shape


def index_read(array, index):
    """``array`` indexed by a prepared index (a tuple or a SplitIndex)."""
    if type(index) is SplitIndex:
        return array[index.basic][index.advanced]
    return array[index]


def index_write(array, index, value):
    """``array[index] = value`` for a prepared index (a tuple or a SplitIndex), into array's memory."""
    if type(index) is SplitIndex:
        array[index.basic][index.advanced] = value
    else:
        array[index] = value


def index_add(array, index, value):
    """``array[index] += value`` for a prepared index, repeated positions of an integer index array adding up."""
    if type(index) is SplitIndex:
        array, index = array[index.basic], index.advanced
    if _has_integer_array(index):
        add_at(array, index, value)
    else:
        array[index] += value  # each position once: no adding up needed


def _sequence_as_tuple(index: list) -> bool:
    """Whether a list used as the whole index stands for a tuple of indices, as PyTorch still reads one (with a
    deprecation warning) when it holds a sequence, a tensor, an array, a slice, None or Ellipsis."""
    return len(index) < _MAX_SEQUENCE_AS_TUPLE and any(
        item is None or item is Ellipsis or isinstance(item, (slice, list, tuple, Tensor))
        or (hasattr(item, "ndim") and not isinstance(item, np.generic)) for item in index
    )


_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _user_stacklevel() -> int:
    """The ``stacklevel`` that makes a warning raised by the caller point at the first line outside tensorlib
    (the user's indexing), however many of its functions lie between."""
    frame, level = sys._getframe(1), 1
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE):
        frame, level = frame.f_back, level + 1
    return level


def _index_array(array, what):
    """An index tensor's or array's data as NumPy should read it: uint8 as the mask it is in PyTorch (deprecated
    there in favour of bool, with a warning); dtypes PyTorch refuses as indices are refused (``what`` names it)."""
    if array.dtype not in _INDEX_DTYPES:
        raise IndexError(f"index {what} of shape {array.shape} has dtype {array.dtype}; tensors used as indices must "
                         "be int64, int32, bool or uint8 (a mask)")
    if array.dtype.kind == "u":  # uint8, the only unsigned dtype let through
        warnings.warn("indexing with a uint8 tensor reads it as a mask, as PyTorch does (deprecated there); use a "
                      "bool tensor instead", UserWarning, stacklevel=_user_stacklevel())
        return array.astype(bool)
    return array


def normalize_index(index) -> tuple:
    """An index as a tuple of ints, slices, None, Ellipsis, Python bools and integer or bool arrays: tensors
    become their arrays, lists and tuples inside it arrays, 0-d bool arrays Python bools."""
    return _normalized(index)[0]


def _normalized(index):
    """``normalize_index(index)``, and how NumPy may read it: "plain" (ints, slices, None, an Ellipsis: as PyTorch
    reads them, nothing to move or check), "arrays" (as PyTorch reads them, with arrays to move and check) or
    "pytorch" (to be read in PyTorch's two steps where NumPy would read it otherwise: ``_as_pytorch_reads``)."""
    if isinstance(index, tuple):
        items = index
    elif isinstance(index, list) and _sequence_as_tuple(index):
        warnings.warn(f"the list index {index!r} is read as the tuple of indices it holds, as PyTorch does "
                      "(deprecated there); pass a tuple instead", UserWarning, stacklevel=_user_stacklevel())
        items = tuple(index)
    else:
        items = (index,)
    out, arrays, ints, index_arrays, special, ellipses = [], False, False, False, False, 0
    for item in items:
        if type(item) is slice:
            if item.step is not None and item.step < 0:  # NumPy would reverse; PyTorch refuses
                raise ValueError(f"slice step must be greater than zero, got step {item.step} in {item!r}; use "
                                 "flip() to reverse a dim")
        elif item is None:
            pass
        elif type(item) is int:
            ints = True
        elif item is Ellipsis:
            ellipses += 1
        elif isinstance(item, Tensor) or (hasattr(item, "ndim") and not isinstance(item, np.generic)):
            item = _index_array(item.array, "tensor") if isinstance(item, Tensor) else _index_array(item, "array")
            arrays = True
            if item.ndim:
                index_arrays = True
            elif item.dtype.kind == "b":
                item, special = bool(item), True  # a 0-d bool tensor is a bool scalar (on cuda: a read of it)
            else:
                ints = True
        elif isinstance(item, (list, tuple)):
            item = np.asarray(item) if len(item) else np.zeros(0, np.int64)  # [] is no index, not float64's
            if item.dtype.kind not in "iub":
                raise IndexError(f"index lists must hold ints or bools, got dtype {item.dtype}")
            arrays = index_arrays = True
        elif isinstance(item, (bool, np.bool_)):
            item, special = bool(item), True
        elif isinstance(item, np.integer):
            ints = True
        out.append(item)
    if special or ellipses > 1 or (index_arrays and ints):
        return tuple(out), "pytorch"
    return tuple(out), "arrays" if arrays else "plain"


def _is_index_array(item) -> bool:
    return getattr(item, "ndim", 0) > 0


def _is_int(item) -> bool:
    """An int as an index: Python and NumPy ints and 0-d integer arrays (bools are not ints here)."""
    if isinstance(item, bool):
        return False
    return isinstance(item, (int, np.integer)) or (getattr(item, "ndim", None) == 0 and item.dtype.kind in "iu")


def _dims_taken(item) -> int:
    """How many dims of the indexed array ``item`` (a normalized index item) consumes."""
    if item is None or item is Ellipsis or isinstance(item, bool):
        return 0
    if _is_index_array(item) and item.dtype == np.bool_:
        return item.ndim
    return 1


def _single_ellipsis(items, ndim) -> tuple:
    """``items`` with the Ellipses after the first dropped, as PyTorch reads them: each Ellipsis skips the dims
    no other item takes, so a later one spans no dims when there are none to skip, and otherwise moves past the
    last dim, where only full slices (which PyTorch leaves unread) may follow."""
    spare = ndim - sum(_dims_taken(item) for item in items)
    first = next(i for i, item in enumerate(items) if item is Ellipsis)
    second = next(i for i, item in enumerate(items) if item is Ellipsis and i > first)
    if spare:
        if any(item is not Ellipsis and not (isinstance(item, slice) and item == slice(None)) for item in items[second:]):
            raise IndexError(f"an index with two Ellipses ('...') may hold only full slices after the second one "
                             f"when the first spans dims ({spare} here); got {items!r} for a tensor of {ndim} dims")
        items = items[:second]
    return items[:first + 1] + tuple(item for item in items[first + 1:] if item is not Ellipsis)


def _as_pytorch_reads(items, shape, device):
    """The normalized index ``items`` for an array of ``shape`` on ``device`` as NumPy (or CuPy) can apply it with
    PyTorch's result: the items themselves (True as None where that is all it does), or a SplitIndex where NumPy
    would read them otherwise (ints or bool scalars beside index arrays, and False)."""
    ellipses, arrays, ints, bools = 0, False, False, []
    for item in items:
        kind = type(item)
        if kind is slice or item is None:
            continue
        if item is Ellipsis:
            ellipses += 1
        elif kind is bool:
            bools.append(item)
        elif _is_index_array(item):
            arrays = True
        else:
            ints = ints or _is_int(item)
    if ellipses > 1:
        items = _single_ellipsis(items, len(shape))
    if not bools and not (arrays and ints):
        return items
    if bools == [True] and not arrays:
        return tuple(None if item is True else item for item in items)
    spare = len(shape) - sum(_dims_taken(item) for item in items)
    if spare < 0:  # too many indices: NumPy says so
        return items
    basic, advanced, basic_shape, axis = [], [], [], 0
    for item in items:
        taken = spare if item is Ellipsis else _dims_taken(item)
        if item is None:
            basic.append(None)
            advanced.append(slice(None))
            basic_shape.append(1)
        elif isinstance(item, bool):
            basic.append(None)
            advanced.append(module_for(device).zeros(int(item), np.int64))
            basic_shape.append(1)
        elif _is_int(item):
            basic.append(int(item))  # a 0-d array would be an index array to NumPy (PyTorch reads it too)
        elif _is_index_array(item):
            basic.extend([slice(None)] * taken)
            advanced.append(item)
            basic_shape.extend(shape[axis:axis + taken])
        elif isinstance(item, slice) or item is Ellipsis:
            basic.append(item)
            advanced.extend([slice(None)] * taken)
            sizes = shape[axis:axis + taken]
            basic_shape.extend([len(range(*item.indices(sizes[0])))] if isinstance(item, slice) else sizes)
        else:  # not an index: NumPy says so
            basic.append(item)
        axis += taken
    return SplitIndex(tuple(basic), tuple(advanced), tuple(basic_shape))


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
        if type(index) is not tuple:
            return index_read(x, index)
        out = x[index]
        if isinstance(out, np.generic):  # one element by ints: NumPy copies it out; a 0-d view shares its memory
            return x[index + (Ellipsis,)]
        return out

    def backward(self, g):
        gx = array_module(g).zeros(self.shape, dtype=self.dtype)
        index_add(gx, self.index, g)  # repeated indices must add up, not overwrite
        return gx


def prepare_index(index, shape, device):
    """``index`` for an array of ``shape`` on ``device`` (reading or assigning), as PyTorch reads it (a tuple or
    a SplitIndex, see ``_as_pytorch_reads``): normalized, its arrays moved to the device, and checked there
    (``check_device_index``)."""
    items, reading = _normalized(index)
    if reading == "plain":
        return items
    items = tuple(move(i, device) if hasattr(i, "dtype") and array_device(i) != device else i for i in items)
    index = _as_pytorch_reads(items, shape, device) if reading == "pytorch" else items
    if type(index) is SplitIndex:
        check_device_index(index.basic_shape, index.advanced)
    else:
        check_device_index(shape, index)
    return index


def getitem(x, index):
    return GetItem.apply(x, prepare_index(index, x.shape, x.device))


# ---- writes into part of a tensor, as autograd records them ---------------------------------------------------
# A tensor changed in place through a view (or by assignment to an index) gets as its new node an IndexPut: its
# old values with the new ones written at some positions. The view then reads its values back from the tensor
# (ViewOfBase), as PyTorch rebuilds a view's history from its base's. Both find the view's elements in the base by
# the view's Layout: its offset and strides in the base's memory, read with as_strided on the base's array or on
# a gradient laid out as the base's array is.

def _address(array) -> int:
    """Where the first element of ``array`` (NumPy or CuPy) lies in memory."""
    data = array.data
    return data.ptr if hasattr(data, "ptr") else array.__array_interface__["data"][0]


def _as_strided(array, shape, strides):
    """The elements of ``array``'s memory at ``strides`` (in bytes) from its first element: a view, writable
    where ``array`` is, of its kind (subok keeps the simulator's device arrays on the device)."""
    if isinstance(array, np.ndarray):
        return np.lib.stride_tricks.as_strided(array, shape, strides, subok=True)
    return array_module(array).lib.stride_tricks.as_strided(array, shape, strides)


def is_basic(index) -> bool:
    """Whether a prepared index holds only ints, slices, None and Ellipsis (it reads a view)."""
    return type(index) is tuple and not any(getattr(item, "ndim", 0) for item in index)


def overlaps(array) -> bool:
    """Whether several elements of ``array`` lie at one memory location (a dim of size > 1 with stride 0, as in
    an expand()): writing through it elementwise would be ambiguous."""
    return any(s == 0 and n > 1 for n, s in zip(array.shape, array.strides))


class Layout:
    """Where the elements of a view lie in the memory of the tensor at the end of its chain of bases (its root),
    whatever chain of views led there: ``offset`` and ``strides`` in elements, the offset counted from the lowest
    address the root's array spans (``span`` elements, the root's first element at ``root_start``). ``region``
    reads them out of the root's array, or out of any array laid out as it is (``like_root``, ``laid_out``)."""

    __slots__ = ("shape", "strides", "offset", "root_shape", "root_strides", "root_start", "span", "root_compact")

    def __init__(self, view, root):
        size = root.itemsize
        self.root_shape, self.root_strides = root.shape, tuple(s // size for s in root.strides)
        self.root_compact = bool(root.flags.c_contiguous)
        self.root_start = -sum(min(0, (n - 1) * s) for n, s in zip(root.shape, self.root_strides))
        self.span = 1 + self.root_start + sum(max(0, (n - 1) * s) for n, s in zip(root.shape, self.root_strides))
        self.shape, self.strides = view.shape, tuple(s // size for s in view.strides)
        self.offset = (_address(view) - _address(root)) // size + self.root_start
        first = self.offset + sum(min(0, (n - 1) * s) for n, s in zip(self.shape, self.strides))
        last = self.offset + sum(max(0, (n - 1) * s) for n, s in zip(self.shape, self.strides))
        if view.size and root.size and (first < 0 or last >= self.span):
            raise RuntimeError(f"a view of shape {view.shape} no longer lies in the memory of the tensor of shape "
                               f"{root.shape} it was made from (its values were replaced); change that tensor instead")

    def region(self, array, merged=False):
        """The view's elements in ``array`` (laid out as the root is), as a view of its memory. With ``merged``, a
        dim whose elements share one location (stride 0, as after expand()) has size 1 there."""
        shape = self.shape
        if merged:
            shape = tuple(1 if s == 0 else n for n, s in zip(shape, self.strides))
        if 0 in shape:  # no elements, nowhere in memory
            return array_module(array).empty(shape, array.dtype)
        if self.root_compact:
            flat = array.reshape(-1)
        else:
            lowest = tuple(slice(n - 1, n) if s < 0 else slice(0, 1) for n, s in zip(array.shape, array.strides))
            flat = _as_strided(array[lowest], (self.span,), (array.itemsize,))
        return _as_strided(flat[self.offset:], shape, tuple(s * array.itemsize for s in self.strides))

    def like_root(self, xp, dtype):
        """Zeros of the root's shape and dtype ``dtype``, laid out in memory as the root's array is."""
        if self.root_compact:
            return xp.zeros(self.root_shape, dtype)
        flat = xp.zeros(self.span, dtype)
        strides = tuple(s * flat.itemsize for s in self.root_strides)
        return _as_strided(flat[self.root_start:], self.root_shape, strides)

    def laid_out(self, array, copy=False):
        """``array`` (of the root's shape) itself where it is laid out as the root is (unless ``copy``), else a copy
        that is."""
        if not copy and (array.flags.c_contiguous if self.root_compact else
                         tuple(s // array.itemsize for s in array.strides) == self.root_strides):
            return array
        out = self.like_root(array_module(array), array.dtype)
        out[...] = array
        return out

    def zero_strides(self) -> tuple:
        """The view's dims of size > 1 whose elements share one location."""
        return tuple(i for i, (n, s) in enumerate(zip(self.shape, self.strides)) if s == 0 and n > 1)


class ViewOfBase(Function):
    """The array ``view`` (returned as it is), whose elements are those of ``base`` at ``layout`` (a Layout of the
    view in base): the history of a view after its base changed in place. Its gradient goes back to those elements
    of a gradient of base's shape (summed over the dims whose elements share a location, as in an expanded view)."""

    returns_view = True

    def forward(self, base, view, layout):
        self.layout = layout
        return view

    def backward(self, g):
        layout = self.layout
        gx = layout.like_root(array_module(g), g.dtype)
        shared = layout.zero_strides()
        if shared:
            g = g.sum(axis=shared, keepdims=True)
        layout.region(gx, merged=True)[...] = g
        return gx, None, None


class IndexPut(Function):
    """``base`` with ``value`` (a tensor broadcast to the indexed shape, a number or an array) written at ``index``
    (a prepared index) of base itself or, with a ``layout``, of the view of base it describes, into base's own
    memory: the node of a tensor changed in part. The old values get the gradient off the written positions,
    ``value`` the gradient at them; only the written region is indexed."""

    def forward(self, base, value, index, layout=None):
        self.index, self.layout, self.value_ndim = index, layout, getattr(value, "ndim", 0)
        index_write(base if layout is None else layout.region(base), index, value)
        return base

    def backward(self, g):
        layout, g_base, g_value = self.layout, None, None
        if layout is not None:
            g = layout.laid_out(g)
        if self.needs_input_grad[1]:
            g_value = index_read(g if layout is None else layout.region(g), self.index)  # summed down by the engine
            if g_value.ndim < self.value_ndim:  # value had leading dims of size 1, which the write drops
                g_value = g_value.reshape((1,) * (self.value_ndim - g_value.ndim) + g_value.shape)
        if self.needs_input_grad[0]:
            g_base = g.copy() if layout is None else layout.laid_out(g, copy=True)
            index_write(g_base if layout is None else layout.region(g_base), self.index, 0)
        return g_base, g_value, None, None


class Gather(Function):
    def forward(self, x, index, axis):
        xp = array_module(x)
        self.shape, self.axis = x.shape, axis
        # index may be smaller than x along the other axes: gather from the matching corner of x
        corner = tuple(slice(0, n) if i != axis else slice(None) for i, n in enumerate(index.shape))
        self.index = index
        return xp.take_along_axis(x[corner], index, axis=axis)

    def backward(self, g):
        gx = array_module(g).zeros(self.shape, dtype=g.dtype)
        add_at(gx, _index_positions(self.index, self.axis), g)  # an index repeated along dim adds up
        return gx, None, None


def _index_positions(index, axis) -> tuple:
    """The coordinates that ``index`` names along ``axis`` (gather's and scatter's), the other coordinates
    being each index element's own: arrays broadcasting against the index (an open grid)."""
    xp = array_module(index)
    ndim = index.ndim
    positions = [xp.arange(n).reshape((1,) * i + (n,) + (1,) * (ndim - i - 1)) for i, n in enumerate(index.shape)]
    positions[axis] = index
    return tuple(positions)


def _check_index_range(index, size, dim, op):
    """Refuse an index tensor with an element outside [0, size) (gather's, scatter's and index_select's), naming
    the first bound it passes. Its smallest and largest elements come to the host in one read, skipped while a
    CUDA graph captures (which forbids host reads)."""
    if not index.numel() or device_arrays.capturing(index.array):
        return
    data = index.array
    low, high = array_module(data).stack((data.min(), data.max())).tolist()
    if low < 0 or high >= size:
        raise IndexError(f"{op}: index {low if low < 0 else high} is out of range for dim {dim} of size {size}")


def _check_index_fits(index, x, axis, dim, op):
    """gather's and scatter's index: no larger than ``x`` off ``axis``, its values in range along it."""
    for i, (n_index, n_x) in enumerate(zip(index.shape, x.shape)):
        if i != axis and n_index > n_x:
            raise ValueError(f"{op}: index shape {index.shape} is larger than the input's {x.shape} at dim {i}")
    _check_index_range(index, x.shape[axis], dim, op)


def _check_index_tensor(op, index, input):
    """gather's and scatter's ``index``: an integer tensor (int32 or int64) with as many dims as ``input``."""
    if not isinstance(index, Tensor) or index.dtype not in (np.int32, np.int64):
        raise TypeError(f"{op}: index must be an integer tensor of dtype int32 or int64, got "
                        f"{getattr(index, 'dtype', type(index).__name__)}")
    if index.ndim != input.ndim:
        raise ValueError(f"{op}: index has {index.ndim} dimensions but the input has {input.ndim} (shapes "
                         f"{index.shape}, {input.shape})")


def gather(input, dim, index, *, sparse_grad=False):
    """out[i][j][k] = input[index[i][j][k]][j][k] for dim 0 (and likewise along other dims), as torch.gather;
    ``index`` is an int32 or int64 tensor. The gradient is a dense tensor whatever ``sparse_grad`` says (there
    are no sparse tensors here; its values are those of PyTorch's sparse one)."""
    axis = _axis(dim, input.ndim)
    _check_index_tensor("gather", index, input)
    _check_index_fits(index, input, axis, dim, "gather")
    return Gather.apply(input, move(index.array, input.device), axis)


class Scatter(Function):
    """x with src written at the positions ``index`` names along ``axis`` (dim 0: out[index[i][j]][j] =
    src[i][j]), or added there (``add``); ``src`` is a tensor at least index's size, or a number. The gradient of
    x is the output's, less the overwritten positions (none with ``add``); src's is the output's gradient at the
    positions its elements went to."""

    def forward(self, x, index, src, axis, add):
        self.positions, self.add = _index_positions(index, axis), add
        self.src_shape, self.src_corner = getattr(src, "shape", None), tuple(slice(0, n) for n in index.shape)
        part = src[self.src_corner] if hasattr(src, "shape") else src
        out = x.copy()
        if add:
            add_at(out, self.positions, part)
        else:
            out[self.positions] = part
        return out

    def backward(self, g):
        xp = array_module(g)
        gx = g
        if not self.add:
            gx = g.copy()
            gx[self.positions] = 0
        g_src = None
        if self.needs_input_grad[2]:
            g_src = xp.zeros(self.src_shape, dtype=g.dtype)
            g_src[self.src_corner] = g[self.positions]
        return gx, None, g_src, None, None


class ScatterReduce(Function):
    """x with src added at (``reduce`` "add") or multiplied into ("multiply") the positions ``index`` names along
    ``axis``, repeated positions accumulating: scatter's ``reduce`` argument. PyTorch gives it no gradient (its
    scatter_add is the differentiable sum); neither does this."""

    def forward(self, x, index, src, axis, reduce):
        self.reduce = reduce
        positions = _index_positions(index, axis)
        part = src[tuple(slice(0, n) for n in index.shape)] if hasattr(src, "shape") else src
        out = x.copy()
        if reduce == "add":
            add_at(out, positions, part)
            return out
        # numpy.multiply.at, which CuPy lacks, in rounds: one per index along axis. The positions of one round
        # differ (each element's own coordinates off axis), so a plain indexed multiply is exact there.
        for k in range(index.shape[axis]):
            along = (slice(None),) * axis + (slice(k, k + 1),)
            at = tuple(p[along] if i == axis else p for i, p in enumerate(positions))
            out[at] *= part[along] if hasattr(part, "shape") else part
        return out

    def backward(self, g):
        raise RuntimeError(f"scatter with reduce={self.reduce!r} has no gradient, as in PyTorch (its derivative is "
                           "not implemented there); use scatter_add for a differentiable sum")


def _scatter(x, dim, index, src, add, op, reduce=None):
    axis = _axis(dim, x.ndim)
    _check_index_tensor(op, index, x)
    if isinstance(src, Tensor):
        if src.dtype != x.dtype:
            raise TypeError(f"{op}: src must have the input's dtype {x.dtype}, got {src.dtype}")
        if src.ndim != x.ndim or any(n > m for n, m in zip(index.shape, src.shape)):
            raise ValueError(f"{op}: index shape {index.shape} must be no larger than src's {src.shape} in any dim")
    elif not isinstance(src, (numbers.Number, np.generic)):
        raise TypeError(f"{op}: src must be a tensor or a number, got {type(src).__name__}")
    elif reduce is not None:
        src = _as_number(src, x.dtype)  # as PyTorch casts the value, so an integer tensor stays integer
    else:
        src = src.item() if isinstance(src, np.generic) else src
    _check_index_fits(index, x, axis, dim, op)
    if reduce is not None:
        return ScatterReduce.apply(x, move(index.array, x.device), src, axis, reduce)
    return Scatter.apply(x, move(index.array, x.device), src, axis, add)


def scatter(input, dim, index, src=None, value=None, *, reduce=None):
    """``input`` with the elements of ``src`` (a tensor of input's dtype) or ``value`` (a number) written at the
    positions ``index`` names along ``dim``: for dim 0, out[index[i][j]][j] = src[i][j] (a tensor, not a view).
    Where an index repeats along dim, one of the writes wins. With ``reduce`` "add" or "multiply" they are added
    to or multiplied into those positions instead (repeats accumulating, PyTorch's deprecated form of
    scatter_reduce), without a gradient, as in PyTorch."""
    if (src is None) == (value is None):
        raise TypeError("scatter takes one of src (a tensor or a number) and value (a number)")
    if reduce is not None and reduce not in ("add", "multiply"):
        raise ValueError(f"scatter: reduce must be 'add' or 'multiply', got {reduce!r}")
    return _scatter(input, dim, index, src if value is None else value, False, "scatter", reduce)


def scatter_add(input, dim, index, src):
    """``input`` with the elements of ``src`` (a tensor of input's dtype) added at the positions ``index`` names along
    ``dim`` (repeated positions add up): for dim 0, out[index[i][j]][j] += src[i][j]."""
    if not isinstance(src, Tensor):
        raise TypeError(f"scatter_add: src must be a tensor, got {type(src).__name__}")
    return _scatter(input, dim, index, src, True, "scatter_add")


def _slice_along(x, axis, start, stop):
    return GetItem.apply(x, (slice(None),) * axis + (slice(start, stop),))


def narrow(input, dim, start, length):
    """The ``length`` elements from ``start`` (negative: from the end) along ``dim``, as a view."""
    if input.ndim == 0:
        raise ValueError("narrow() needs a tensor of at least one dimension, got a 0-d tensor")
    axis = _axis(dim, input.ndim)
    size, start, length = input.shape[axis], operator.index(start), operator.index(length)
    if not -size <= start <= size:
        raise IndexError(f"narrow: start {start} is out of range for dim {dim} of size {size}")
    start = start + size if start < 0 else start
    if length < 0 or start + length > size:
        raise ValueError(f"narrow: length {length} from start {start} does not fit dim {dim} of size {size}")
    return _slice_along(input, axis, start, start + length)


def split(tensor, split_size_or_sections, dim=0):
    """Views of consecutive pieces along ``dim``: of ``split_size`` elements each (the last may be smaller),
    or of the listed sizes, which must add up to the dim's size."""
    if tensor.ndim == 0:
        raise ValueError("split() needs a tensor of at least one dimension, got a 0-d tensor")
    axis = _axis(dim, tensor.ndim)
    size = tensor.shape[axis]
    if isinstance(split_size_or_sections, (int, np.integer)):
        step = int(split_size_or_sections)
        if step < 0 or (step == 0 and size):
            raise ValueError(f"split: split_size must be positive (0 only for a dim of size 0), got {step} "
                             f"for dim {dim} of size {size}")
        sizes = ([step] * (size // step) + ([size % step] if size % step else [])) if step else []
        sizes = sizes or [0]  # an empty dim splits into one empty piece
    else:
        sizes = [operator.index(n) for n in split_size_or_sections]
        if min(sizes, default=0) < 0 or sum(sizes) != size:
            raise ValueError(f"split: sizes {sizes} must be non-negative and add up to the size {size} of dim {dim}")
    starts = np.cumsum([0] + sizes)
    return tuple(_slice_along(tensor, axis, int(a), int(b)) for a, b in zip(starts[:-1], starts[1:]))


def chunk(input, chunks, dim=0):
    """``split`` into ``chunks`` pieces of equal size, rounded up (so there may be fewer pieces)."""
    if not isinstance(chunks, (int, np.integer)) or isinstance(chunks, bool) or chunks <= 0:
        raise ValueError(f"chunk: chunks must be a positive int, got {chunks!r}")
    if input.ndim == 0:
        raise ValueError("chunk() needs a tensor of at least one dimension, got a 0-d tensor")
    size = input.shape[_axis(dim, input.ndim)]
    return split(input, -(-size // chunks) if size else [0] * int(chunks), dim)


def unbind(input, dim=0):
    """The slices along ``dim``, each without that dim (views)."""
    if input.ndim == 0:
        raise IndexError("unbind() needs a tensor of at least one dimension, got a 0-d tensor")
    axis = _axis(dim, input.ndim)
    return tuple(GetItem.apply(input, (slice(None),) * axis + (i,)) for i in range(input.shape[axis]))


class Flip(Function):
    def forward(self, x, axes):
        self.axes = axes
        return array_module(x).flip(x, axes).copy() if axes else x.copy()  # a copy, as PyTorch's flip

    def backward(self, g):
        return array_module(g).flip(g, self.axes) if self.axes else g, None


def flip(input, *args, dims=None):
    """The order of the elements reversed along each of ``dims`` (a new tensor, not a view): ``flip(x, 0, 1)``,
    ``flip(x, (0, 1))`` or ``flip(x, dims=(0, 1))``."""
    return Flip.apply(input, _distinct_axes(_dims_arg(args, dims, "dims", "flip"), input.ndim, "flip"))


class Roll(Function):
    def forward(self, x, shifts, axes):
        self.shifts, self.axes = shifts, axes
        return array_module(x).roll(x, shifts, axes)

    def backward(self, g):
        back = -self.shifts if self.axes is None else tuple(-s for s in self.shifts)
        return array_module(g).roll(g, back, self.axes), None, None


def roll(input, shifts, dims=None):
    """Elements shifted by ``shifts`` along ``dims`` (ints or sequences of one length), wrapping around; with
    no dims, along the flattened tensor (the shape is kept)."""
    shifts = (shifts,) if isinstance(shifts, (int, np.integer)) else tuple(shifts)
    if dims is None:
        if len(shifts) != 1:
            raise ValueError(f"roll: shifts {shifts} need dims, one per shift")
        return Roll.apply(input, operator.index(shifts[0]), None)
    dims = (dims,) if isinstance(dims, (int, np.integer)) else tuple(dims)
    if not shifts or len(shifts) != len(dims):
        raise ValueError(f"roll: shifts {shifts} and dims {dims} must be non-empty and of one length")
    return Roll.apply(input, tuple(operator.index(s) for s in shifts), tuple(_axis(d, input.ndim) for d in dims))


class Repeat(Function):
    def forward(self, x, repeats):
        self.shape, self.repeats = x.shape, repeats
        return array_module(x).tile(x, repeats)

    def backward(self, g):
        # output dim i holds repeats[i] copies of the input's size n_i: view it as (r_i, n_i) and sum the copies
        sizes = (1,) * (len(self.repeats) - len(self.shape)) + self.shape
        pairs = tuple(v for r, n in zip(self.repeats, sizes) for v in (r, n))
        return g.reshape(pairs).sum(axis=tuple(range(0, len(pairs), 2))).reshape(self.shape), None


def repeat(input, *sizes, repeats=None):
    """The tensor tiled ``sizes[i]`` times along dim i; extra leading sizes add dims (numpy.tile). The counts
    come as ``repeat(x, 2, 3)``, ``repeat(x, (2, 3))`` or ``repeat(x, repeats=(2, 3))``."""
    sizes = _dims_arg(sizes, repeats, "repeats", "repeat")
    if not sizes:
        raise TypeError("repeat() needs the number of repeats of each dimension")
    if len(sizes) < input.ndim:
        raise ValueError(f"repeat: {len(sizes)} repeats for a tensor of {input.ndim} dimensions (shape {input.shape}); "
                         "give at least one per dimension")
    if not all(isinstance(n, (int, np.integer)) and not isinstance(n, bool) and n >= 0 for n in sizes):
        raise ValueError(f"repeat: repeats must be non-negative ints, got {sizes}")
    return Repeat.apply(input, tuple(int(n) for n in sizes))


class IndexSelect(Function):
    def forward(self, x, index, axis):
        self.shape, self.index, self.axis = x.shape, index, axis
        return array_module(x).take(x, index, axis=axis)

    def backward(self, g):
        gx = array_module(g).zeros(self.shape, dtype=g.dtype)
        add_at(gx, (slice(None),) * self.axis + (self.index,), g)  # a repeated index adds up
        return gx, None, None


def index_select(input, dim, index):
    """The entries ``index`` (a 0-d or 1-D integer tensor) of ``input`` along ``dim``, in that order."""
    if not isinstance(index, Tensor) or index.dtype not in (np.int32, np.int64):
        raise TypeError(f"index_select: index must be an int32 or int64 tensor, got "
                        f"{getattr(index, 'dtype', type(index).__name__)}")
    if index.ndim > 1:
        raise ValueError(f"index_select: index must be 0-d or 1-D, got shape {index.shape}")
    axis = _axis(dim, max(input.ndim, 1))
    source = input.reshape(1) if input.ndim == 0 else input  # a 0-d tensor is picked from as its single element
    size = source.shape[axis]
    _check_index_range(index, size, dim, "index_select")
    out = IndexSelect.apply(source, move(index.array.reshape(-1), input.device), axis)
    if input.ndim == 0:
        if index.numel() != 1:
            raise ValueError(f"index_select: a 0-d tensor takes one index, got {index.numel()}")
        return out.reshape(())
    return out


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


def concat(tensors, dim=0):
    """``cat`` by its other name."""
    return cat(tensors, dim)


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
    on the input's device: a host-made index array would be a host-to-device copy in every step. A negative
    amount crops, as in PyTorch: reflect and replicate pad from the whole input (the crop only drops
    positions), circular from what the crop leaves, which it wraps around."""
    if mode == "circular":
        start, kept = max(-lo, 0), n - max(-lo, 0) - max(-hi, 0)
        if not kept:
            return xp.arange(0)
        return start + xp.arange(-max(lo, 0), kept + max(hi, 0)) % kept
    i = xp.arange(-lo, n + hi)
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
            add_at(scattered, (slice(None),) * axis + (positions,), g)
            g = scattered
        return g, None, None


def pad(input, pad, mode="constant", value=0.0):
    """``torch.nn.functional.pad``: ``pad`` lists (before, after) pairs starting from the last dim; negative
    amounts crop, in every mode. ``value`` (None: 0) fills the 'constant' mode."""
    pad = tuple(pad)
    if len(pad) % 2 or len(pad) // 2 > input.ndim:
        raise ValueError(f"pad must hold (before, after) pairs for at most {input.ndim} dims, got {pad}")
    if not all(isinstance(p, (int, np.integer)) for p in pad):
        raise TypeError(f"pad amounts must be ints, got {pad}")
    widths = [(0, 0)] * input.ndim
    for i in range(len(pad) // 2):
        widths[input.ndim - 1 - i] = (int(pad[2 * i]), int(pad[2 * i + 1]))
    widths = tuple(widths)
    if mode != "constant" and mode not in _PAD_MODES:
        raise ValueError(f"pad mode must be 'constant', 'reflect', 'replicate' or 'circular', got {mode!r}")
    for axis, ((lo, hi), n) in enumerate(zip(widths, input.shape)):
        if not (lo or hi):
            continue
        kept = n - max(-lo, 0) - max(-hi, 0)  # what the negative amounts leave
        if kept < 0 and mode in ("constant", "circular"):  # reflect and replicate pad from the whole input
            raise ValueError(f"pad {pad} crops {n - kept} elements from dim {axis} of size {n} (shape {input.shape})")
        if n + lo + hi < 0:
            raise ValueError(f"pad {pad} gives dim {axis} of size {n} the negative size {n + lo + hi} (shape "
                             f"{input.shape})")
        if mode == "reflect" and max(lo, hi) >= n:
            raise ValueError(f"reflect padding {pad} must be smaller than the input size {n} (shape {input.shape})")
        if mode == "replicate" and n == 0:
            raise ValueError(f"replicate padding {pad} needs a non-empty input along each padded dim "
                             f"(shape {input.shape})")
        if mode == "circular" and max(lo, hi) > kept:
            raise ValueError(f"circular padding {pad} must not exceed the input size {kept} left in dim {axis} after "
                             f"cropping (shape {input.shape})")
    first = input.ndim - len(pad) // 2  # the padded dims are the last len(pad) // 2
    padded = [n + lo + hi for (lo, hi), n in zip(widths[first:], input.shape[first:])]
    if mode in ("reflect", "replicate") and padded and max(padded) <= 0:  # PyTorch's rule: all but one may empty
        raise ValueError(f"{mode} padding {pad} leaves no element in the padded dims (shape {input.shape}); the "
                         "padded size of at least one must be positive")
    if mode == "constant":
        value = 0.0 if value is None else value
        if not isinstance(value, numbers.Number):
            raise TypeError(f"pad value must be a number, got {value!r}")
        return ConstantPad.apply(input, widths, value)
    return IndexPad.apply(input, widths, mode)


class ToDevice(Function):
    def forward(self, x, device, dtype):
        self.device, self.dtype = array_device(x), x.dtype
        moved = move(x, device)
        return moved.astype(dtype, copy=moved is x)

    def backward(self, g):
        return move(g, self.device).astype(self.dtype, copy=False)
