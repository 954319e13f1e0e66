"""Making tensors: ``tensor`` and ``as_tensor`` with PyTorch's dtype inference for NumPy scalars, ``arange``
with 0-d tensor bounds, ``zeros``/``ones``/``empty`` with ``size=``, ``Size``, ``meshgrid`` and ``multinomial``
draws. The first ones check and convert their arguments, then call the constructors of ``tensorlib.tensor``."""

from __future__ import annotations

import math
import numbers

import numpy as np

from tensorlib import tensor as _tensor
from tensorlib.device import array_device, move, normalize_device
from tensorlib.ops.elementwise import _promote
from tensorlib.ops.shape import expand
from tensorlib.random import generator_or_default
from tensorlib.tensor import Tensor, bool_, get_default_dtype, int64


class Size(tuple):
    """A tensor's shape as PyTorch's ``torch.Size``: a tuple of ints (``Size([2, 3]) == (2, 3)``) that prints as
    ``tensorlib.Size([2, 3])``, slices and concatenates to a Size, and counts its elements with ``numel()``."""

    def __new__(cls, sizes=()):
        sizes = tuple(sizes)
        for position, size in enumerate(sizes):
            if isinstance(size, (bool, np.bool_)) or not isinstance(size, (numbers.Integral, Tensor)):
                raise TypeError(f"Size takes an iterable of ints (item {position} is {type(size).__name__} "
                                f"{size!r})")
        return super().__new__(cls, (int(size.__index__()) for size in sizes))

    def numel(self) -> int:
        """The number of elements of a tensor of this shape (1 for ``Size([])``)."""
        return math.prod(self)

    def __getitem__(self, index):
        item = super().__getitem__(index)
        return Size(item) if isinstance(index, slice) else item

    def __add__(self, other):
        return Size(tuple(self) + tuple(other))

    def __radd__(self, other):
        return Size(tuple(other) + tuple(self))

    def __repr__(self):
        return f"tensorlib.Size({list(self)})"


# ---- tensor, as_tensor: NumPy scalars keep their dtype --------------------------------------------------
def _type_dtype(kind) -> np.dtype | None:
    """What an element of type ``kind`` asks for, by PyTorch's rule: a NumPy scalar its own dtype, a Python bool
    bool, an int int64, a float the default float dtype (None for anything else)."""
    if issubclass(kind, np.generic):
        return np.dtype(kind)
    if issubclass(kind, bool):
        return bool_
    if issubclass(kind, numbers.Integral):
        return int64
    if issubclass(kind, numbers.Real):
        return get_default_dtype()
    return None


def _nested_dtype(data) -> np.dtype | None:
    """The dtype PyTorch infers for nested lists that hold NumPy scalars or arrays: their elements' dtypes
    promoted together (float64 scalars make a float64 tensor, Python floats beside float32 ones a float32
    one). None where the lists hold none, which ``tensorlib.tensor``'s inference then decides. The elements are
    told apart by their types, a set per list (no Python loop over the numbers themselves)."""
    kinds, arrays, pending = set(), [], [data]
    while pending:
        level = pending.pop()
        level_kinds = set(map(type, level))
        if any(issubclass(kind, (list, tuple)) for kind in level_kinds):
            pending.extend(item for item in level if isinstance(item, (list, tuple)))
        if any(issubclass(kind, (np.ndarray, Tensor)) for kind in level_kinds):
            arrays.extend(item for item in level if isinstance(item, (np.ndarray, Tensor)))
        kinds |= level_kinds
    kinds = {kind for kind in kinds if not issubclass(kind, (list, tuple, np.ndarray, Tensor))}
    if not any(issubclass(kind, np.generic) for kind in kinds) and not any(isinstance(a, np.ndarray) for a in arrays):
        return None
    dtypes = [_type_dtype(kind) for kind in kinds] + [a.dtype for a in arrays]
    if any(d is None for d in dtypes):
        return None
    dtype = None
    for element in dtypes:
        dtype = _promote(dtype, element)
    return dtype


def tensor(data, dtype=None, device=None, requires_grad=False) -> Tensor:
    """A new tensor holding a copy of ``data`` (nested lists, numbers, NumPy/CuPy arrays or tensors). Without
    ``dtype``, PyTorch's inference: Python floats give the default float dtype, ints int64, bools bool, and NumPy
    scalars their own dtype, promoted together (``tensor([np.float64(1.0)])`` is float64)."""
    if dtype is None and isinstance(data, (list, tuple)):
        dtype = _nested_dtype(data)
    return _tensor.tensor(data, dtype=dtype, device=device, requires_grad=requires_grad)


def as_tensor(data, dtype=None, device=None) -> Tensor:
    """``data`` as a tensor, sharing its memory where it can: a tensor of the right dtype and device is returned
    as it is, and a NumPy array (of a bool, integer or float dtype) on the CPU is wrapped without a copy, so
    changes to one show in the other (as ``from_numpy``). Anything else is copied, as by ``tensor``."""
    if isinstance(data, np.ndarray) and array_device(data) == "cpu" and data.dtype.kind in "biuf" and (
        dtype is None or np.dtype(dtype) == data.dtype
    ) and (device is None or normalize_device(device) == "cpu"):
        return Tensor._make(data)
    if isinstance(data, Tensor):
        return _tensor.as_tensor(data, dtype=dtype, device=device)
    return tensor(data, dtype=dtype, device=device)


# ---- arange, zeros, ones, empty -------------------------------------------------------------------------
def _number(name, value):
    """An arange bound or step: a real number, or a 0-d tensor as its Python number."""
    if isinstance(value, Tensor):
        if value.ndim != 0:
            raise TypeError(f"arange: {name} must be a number or a 0-d tensor, got a tensor of shape {value.shape}")
        value = value.item()
    if not isinstance(value, (numbers.Real, np.generic)) or isinstance(value, (bool, np.bool_)):
        raise TypeError(f"arange: {name} must be a real number, got {type(value).__name__} {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"arange: {name} must be finite, got {value}")
    return value.item() if isinstance(value, np.generic) else value


def arange(start, end=None, step=1, *, dtype=None, device=None, requires_grad=False) -> Tensor:
    """Values from ``start`` up to (not including) ``end`` by ``step``; ``arange(n)`` counts from 0. The bounds
    and step are numbers or 0-d tensors; int64 when all are integers, else the default float dtype. A range
    that runs against the sign of step is refused, as in PyTorch."""
    start, step = _number("start", start), _number("step", step)
    end = None if end is None else _number("end", end)
    if end is None:
        start, end = 0, start
    if step == 0:
        raise ValueError("arange: step must be nonzero")
    if (end - start) * step < 0:
        raise ValueError(f"arange: the range from start={start} to end={end} runs against the sign of step={step}")
    return _tensor.arange(start, end, step, dtype=dtype, device=device, requires_grad=requires_grad)


def _size_argument(op, sizes, size):
    """The shape of ``op(2, 3)``, ``op((2, 3))`` or ``op(size=(2, 3))``: one of the two forms."""
    if size is None:
        return sizes
    if sizes:
        raise TypeError(f"{op}() got the size both positionally {sizes} and as size={size!r}")
    return (size,) if isinstance(size, (int, np.integer)) else (tuple(size),)


def zeros(*sizes, size=None, dtype=None, device=None, requires_grad=False) -> Tensor:
    """A tensor of zeros: ``zeros(2, 3)``, ``zeros((2, 3))`` or ``zeros(size=(2, 3))``."""
    return _tensor.zeros(*_size_argument("zeros", sizes, size), dtype=dtype, device=device,
                         requires_grad=requires_grad)


def ones(*sizes, size=None, dtype=None, device=None, requires_grad=False) -> Tensor:
    """A tensor of ones: ``ones(2, 3)``, ``ones((2, 3))`` or ``ones(size=(2, 3))``."""
    return _tensor.ones(*_size_argument("ones", sizes, size), dtype=dtype, device=device, requires_grad=requires_grad)


def empty(*sizes, size=None, dtype=None, device=None, requires_grad=False) -> Tensor:
    """An uninitialised tensor: ``empty(2, 3)``, ``empty((2, 3))`` or ``empty(size=(2, 3))``."""
    return _tensor.empty(*_size_argument("empty", sizes, size), dtype=dtype, device=device,
                         requires_grad=requires_grad)


# ---- meshgrid -------------------------------------------------------------------------------------------
def meshgrid(*tensors, indexing="ij"):
    """Coordinate grids of 0-d or 1-D tensors (of one dtype and device): with ``indexing="ij"`` output k varies
    along dim k, the grids' shape (len(t0), len(t1), ...); with "xy" the first two dims are swapped (len(t1),
    len(t0), ...), as NumPy's default. Each grid is a differentiable expanded view."""
    if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)):
        tensors = tuple(tensors[0])
    if not tensors:
        raise ValueError("meshgrid expects at least one tensor")
    if indexing not in ("ij", "xy"):
        raise ValueError(f"meshgrid: indexing must be 'ij' or 'xy', got {indexing!r}")
    for i, t in enumerate(tensors):
        if not isinstance(t, Tensor):
            raise TypeError(f"meshgrid: tensor {i} must be a Tensor, got {type(t).__name__}")
        if t.ndim > 1:
            raise ValueError(f"meshgrid: expects 0-d or 1-D tensors, got tensor {i} of shape {t.shape}")
        if t.dtype != tensors[0].dtype or t.device != tensors[0].device:
            raise TypeError(f"meshgrid: the tensors must share a dtype and a device, got {tensors[0].dtype} on "
                            f"{tensors[0].device} and {t.dtype} on {t.device} (tensor {i})")
    order = list(range(len(tensors)))
    if indexing == "xy" and len(tensors) > 1:
        order[0], order[1] = 1, 0  # dim 0 of the grids runs along the second tensor
    lengths = [tensors[k].numel() for k in order]
    grids = [None] * len(tensors)
    for position, k in enumerate(order):
        along = [1] * len(tensors)
        along[position] = lengths[position]
        grids[k] = expand(tensors[k].reshape(along), *lengths)
    return tuple(grids)


# ---- multinomial ----------------------------------------------------------------------------------------
def multinomial(input, num_samples, replacement=False, *, generator=None) -> Tensor:
    """Category indices drawn from the weights in the last dim of ``input`` (1-D, or 2-D for one draw per row;
    non-negative, not necessarily summing to 1): ``num_samples`` of them (int64), with or without
    ``replacement``. Without, each draw excludes the categories already drawn: the weighted order of an
    exponential race (each category's exponential draw divided by its weight), so zero weights come last.
    Draws come from the global generator, or ``generator``."""
    if not isinstance(input, Tensor):
        raise TypeError(f"multinomial: input must be a Tensor, got {type(input).__name__}")
    if input.ndim not in (1, 2):
        raise ValueError(f"multinomial: input must be 1-D or 2-D (the weights of each row), got shape {input.shape}")
    if input.dtype.kind != "f":
        raise TypeError(f"multinomial: input must be a floating-point tensor, got {input.dtype}")
    if not isinstance(num_samples, (int, np.integer)) or isinstance(num_samples, bool):
        raise TypeError(f"multinomial: num_samples must be an int, got {num_samples!r}")
    categories = input.shape[-1]
    if num_samples <= 0:
        raise ValueError(f"multinomial: num_samples must be positive, got {num_samples}")
    if not replacement and num_samples > categories:
        raise ValueError(f"multinomial: cannot draw {num_samples} samples without replacement from {categories} "
                         "categories")
    weights = move(input.array, "cpu").astype(np.float64).reshape(-1, categories)
    if not np.isfinite(weights).all() or (weights < 0).any():
        raise ValueError("multinomial: the weights must be finite and non-negative (got inf, NaN or a negative one)")
    totals = weights.sum(axis=1, keepdims=True)
    if (totals <= 0).any():
        raise ValueError("multinomial: each row of weights must have a positive sum")
    rng = generator_or_default(generator)
    if replacement:
        # inverse transform: the category whose cumulative-weight interval holds the uniform draw
        bounds = weights.cumsum(axis=1)
        draws = rng.random((len(weights), num_samples)) * totals
        picks = (bounds[:, None, :] <= draws[:, :, None]).sum(axis=2)
        last_positive = categories - 1 - np.argmax(weights[:, ::-1] > 0, axis=1)
        picks = np.minimum(picks, last_positive[:, None])  # a draw that rounded up to the total
    else:
        with np.errstate(divide="ignore"):
            keys = rng.exponential(size=weights.shape) / weights  # inf for a zero weight: drawn last
        picks = np.argsort(keys, axis=1, kind="stable")[:, :num_samples]
    picks = picks.astype(np.int64).reshape(input.shape[:-1] + (num_samples,))
    return Tensor._make(move(picks, input.device))
