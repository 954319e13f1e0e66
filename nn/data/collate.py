"""``default_collate``: a list of samples -> one batch, as ``torch.utils.data.default_collate``."""

from __future__ import annotations

import collections.abc
import numbers

import numpy as np

import tensorlib as tl


def default_collate(batch):
    """Stack a list of samples into a batch along a new dim 0.

    Tensors and NumPy arrays are stacked keeping their dtype; Python or NumPy numbers become a 1-d tensor
    (bools -> bool, ints -> int64, floats -> float32, tensorlib's default dtype); strings stay a list;
    tuples, lists and dicts are collated element by element and keep their container type.
    """
    first = batch[0]
    if isinstance(first, tl.Tensor):
        return tl.stack(batch)
    if isinstance(first, np.ndarray):
        return tl.Tensor._make(np.stack(batch))
    if isinstance(first, (bool, np.bool_)):
        return tl.tensor(batch, dtype=tl.bool_)
    if isinstance(first, numbers.Integral):
        return tl.tensor(batch, dtype=tl.int64)
    if isinstance(first, numbers.Real):
        return tl.tensor(batch, dtype=tl.get_default_dtype())
    if isinstance(first, (str, bytes)):
        return list(batch)
    if isinstance(first, collections.abc.Mapping):
        return {key: default_collate([sample[key] for sample in batch]) for key in first}
    if isinstance(first, collections.abc.Sequence):
        if any(len(sample) != len(first) for sample in batch):
            raise RuntimeError("each element in list of batch should be of equal size")
        fields = [default_collate(list(samples)) for samples in zip(*batch)]
        return type(first)(*fields) if _is_namedtuple(first) else type(first)(fields)
    raise TypeError(f"default_collate: batch must contain tensors, NumPy arrays, numbers, dicts or lists; "
                    f"found {type(first).__name__}")


def _is_namedtuple(value) -> bool:
    return isinstance(value, tuple) and hasattr(value, "_fields")
