"""``default_collate`` (a list of samples -> one batch) and ``default_convert`` (one sample, unbatched), as
``torch.utils.data``'s."""

from __future__ import annotations

import collections.abc
import copy

import numpy as np

import tensorlib as tl

_STRING_OR_OBJECT_KINDS = "SUOV"  # NumPy arrays of these kinds have no tensor dtype


def default_collate(batch):
    """Collate a list of samples into a batch along a new dim 0, with PyTorch's rules (checked against torch 2.13).

    By the type of the first sample:

    - Tensors are stacked (``tl.stack``: mixed dtypes promote as in PyTorch, int32 with float32 gives float32);
      every sample must then be a Tensor. NumPy arrays are each made a tensor and stacked the same way;
      arrays of strings or objects are refused with a TypeError.
    - Python floats give float64 (PyTorch collates them with ``torch.tensor(batch, dtype=torch.float64)``, not
      in the default float32). Python ints and bools give what ``tl.tensor`` infers from the whole list:
      bool if all are bools, int64 if all are ints or bools, the default float dtype if a float follows.
      NumPy scalars keep their dtype, promoted across the batch as PyTorch promotes (``np.float32`` with
      ``np.int64`` gives float32). No value is ever truncated to the first sample's type.
    - Strings and bytes: the batch unchanged.
    - Mappings: one batch per key, in a mapping of the first sample's type (a dict, an OrderedDict, ...).
    - Named tuples: the same named tuple of batched fields. Other tuples give a *list* of batched fields, as
      in PyTorch (``images, labels = batch`` unpacks either); lists (and other mutable sequences) keep their
      type. All samples must have the same length.

    Training data keeps its types: images arrive as tensors or arrays (float32 after ``ToTensor``) and stay
    so, int labels become int64. A dataset returning Python float targets gets float64 ones, as in PyTorch.
    """
    if not batch:
        raise ValueError("default_collate: the batch is empty: it needs at least one sample")
    first = batch[0]
    if isinstance(first, tl.Tensor):
        for i, sample in enumerate(batch):
            if not isinstance(sample, tl.Tensor):
                raise TypeError(f"default_collate: sample 0 is a Tensor, so every sample must be one, but sample {i} "
                                f"is of type {type(sample).__name__}")
        return tl.stack(batch)
    if isinstance(first, np.ndarray):
        if first.dtype.kind in _STRING_OR_OBJECT_KINDS:
            raise TypeError(f"default_collate: batch must contain tensors, numpy arrays, numbers, dicts or lists; "
                            f"found an array of dtype {first.dtype}")
        return tl.stack([tl.as_tensor(sample) for sample in batch])
    if isinstance(first, (np.bool_, np.number)):
        return _numbers(batch, None)
    if isinstance(first, float):
        return _numbers(batch, tl.float64)
    if isinstance(first, int):
        return _numbers(batch, None)
    if isinstance(first, (str, bytes)):
        return batch
    if isinstance(first, collections.abc.Mapping):
        return _collate_mapping(batch, first)
    if isinstance(first, collections.abc.Sequence):
        return _collate_sequence(batch, first)
    raise TypeError(f"default_collate: batch must contain tensors, numpy arrays, numbers, dicts or lists; "
                    f"found {type(first).__name__}")


def _numbers(batch, dtype):
    """Python or NumPy numbers as a 1-d tensor of ``dtype``, or else of their promoted dtype (PyTorch's inference:
    Python bool -> bool, int -> int64, float -> the default float dtype; a NumPy scalar -> its own dtype)."""
    for i, value in enumerate(batch):
        if not isinstance(value, (int, float, np.bool_, np.number)) or isinstance(value, np.complexfloating):
            raise TypeError(f"default_collate: sample 0 is a number, so every sample must be a real number, but "
                            f"sample {i} is {type(value).__name__} {value!r}")
    if dtype is None and len(set(map(type, batch))) == 1:
        dtype = _number_dtype(batch[0])
    elif dtype is None:
        dtype = tl.result_type(*(tl.zeros((), dtype=_number_dtype(value)) for value in batch))
    return tl.Tensor._make(np.array(batch, dtype=dtype))


def _number_dtype(value) -> np.dtype:
    if isinstance(value, (np.bool_, np.number)):
        return value.dtype
    if isinstance(value, bool):
        return tl.bool_
    return tl.int64 if isinstance(value, int) else tl.get_default_dtype()


def default_convert(sample):
    """One sample as ``torch.utils.data.default_convert`` gives it (a ``DataLoader`` with ``batch_size=None``):
    NumPy arrays and scalars become tensors (arrays of strings or objects stay arrays), containers are converted
    element by element as ``default_collate`` rebuilds them (a tuple gives a list), anything else is unchanged."""
    if isinstance(sample, np.ndarray):
        return sample if sample.dtype.kind in _STRING_OR_OBJECT_KINDS else tl.as_tensor(sample)
    if isinstance(sample, (np.bool_, np.number)):
        return tl.as_tensor(sample)
    if isinstance(sample, collections.abc.Mapping):
        return _rebuilt_mapping(sample, {key: default_convert(sample[key]) for key in sample})
    if isinstance(sample, collections.abc.Sequence) and not isinstance(sample, (str, bytes)):
        return _rebuilt_sequence(sample, [default_convert(value) for value in sample])
    return sample


def _collate_mapping(batch, first):
    for i, sample in enumerate(batch):
        missing = [key for key in first if key not in sample]
        if missing:
            raise KeyError(f"default_collate: sample {i} has no key {missing[0]!r}, which sample 0 has")
    return _rebuilt_mapping(first, {key: default_collate([sample[key] for sample in batch]) for key in first})


def _collate_sequence(batch, first):
    if any(len(sample) != len(first) for sample in batch):
        raise RuntimeError("each element in list of batch should be of equal size")
    return _rebuilt_sequence(first, [default_collate(samples) for samples in zip(*batch)])  # strings stay a tuple


def _rebuilt_mapping(like, values: dict):
    """``values`` in a mapping of ``like``'s type (a dict, an OrderedDict, ...), or a dict if it cannot be built."""
    try:
        if isinstance(like, collections.abc.MutableMapping):
            result = copy.copy(like)  # keeps the type and any attributes (a defaultdict's default, ...)
            result.update(values)
            return result
        return type(like)(values)
    except TypeError:
        return values


def _rebuilt_sequence(like, fields: list):
    """``fields`` as PyTorch rebuilds the sequence ``like``: a named tuple of the same type, a list for other
    tuples, the same type for lists and other sequences (a list if that type cannot be built)."""
    if isinstance(like, tuple):
        return type(like)(*fields) if hasattr(like, "_fields") else fields
    try:
        if isinstance(like, collections.abc.MutableSequence):
            result = copy.copy(like)
            for i, field in enumerate(fields):
                result[i] = field
            return result
        return type(like)(fields)
    except TypeError:
        return fields
