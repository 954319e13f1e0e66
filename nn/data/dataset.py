"""Map-style datasets, as in ``torch.utils.data``: ``Dataset``, ``TensorDataset``, ``Subset``, ``ConcatDataset``,
``random_split``.

A dataset may also define ``get_batch(indices)``: the batch ``default_collate([self[i] for i in indices])``
would give, built with one fancy-indexing operation per array instead of one Python call per sample.
``DataLoader`` uses it when present (and no ``collate_fn`` is given).
"""

from __future__ import annotations

import bisect
import math
import numbers

import numpy as np

import tensorlib as tl
from nn.data.collate import default_collate
from tensorlib.device import array_module
from tensorlib.random import generator_or_default


class Dataset:
    """A map from indices ``0 .. len(self) - 1`` to samples. Subclasses define ``__getitem__`` and ``__len__``."""

    def __getitem__(self, index):
        raise NotImplementedError(f"{type(self).__name__} must define __getitem__")

    def __len__(self) -> int:
        raise NotImplementedError(f"{type(self).__name__} must define __len__")

    def __add__(self, other) -> ConcatDataset:
        """``a + b``: the samples of ``a`` followed by those of ``b``."""
        return ConcatDataset([self, other])


class TensorDataset(Dataset):
    """Sample ``i`` is ``tuple(t[i] for t in tensors)``; the tensors (or arrays) must agree in their first dim."""

    def __init__(self, *tensors):
        if not tensors:
            raise ValueError("TensorDataset needs at least one tensor")
        self.tensors = tuple(t if isinstance(t, tl.Tensor) else tl.tensor(t) for t in tensors)
        shapes = [tuple(t.shape) for t in self.tensors]
        if any(len(s) == 0 for s in shapes) or len({s[0] for s in shapes}) != 1:
            raise ValueError(f"TensorDataset: size mismatch between tensors: the first dims of shapes {shapes} differ")

    def __getitem__(self, index):
        return tuple(t[index] for t in self.tensors)

    def __len__(self) -> int:
        return self.tensors[0].shape[0]

    def get_batch(self, indices):
        return [tl.Tensor._make(t.array[array_module(t.array).asarray(indices)]) for t in self.tensors]


class Subset(Dataset):
    """The samples of ``dataset`` at ``indices``, in that order."""

    def __init__(self, dataset, indices):
        self.dataset = dataset
        self.indices = np.asarray(indices, dtype=np.int64).reshape(-1)

    def __getitem__(self, index):
        return self.dataset[int(self.indices[index])]

    def __len__(self) -> int:
        return len(self.indices)

    def get_batch(self, indices):
        if hasattr(self.dataset, "get_batch"):
            return self.dataset.get_batch(self.indices[indices])
        return default_collate([self[i] for i in indices])


class ConcatDataset(Dataset):
    """The samples of ``datasets``, one dataset after the other (sample ``len(datasets[0])`` is ``datasets[1][0]``)."""

    def __init__(self, datasets):
        self.datasets = list(datasets)
        if not self.datasets:
            raise ValueError("ConcatDataset: datasets should not be an empty iterable")
        self.cumulative_sizes = np.cumsum([len(d) for d in self.datasets]).tolist()

    def __len__(self) -> int:
        return self.cumulative_sizes[-1]

    def __getitem__(self, index):
        if index < 0:
            if -index > len(self):
                raise ValueError(f"ConcatDataset: absolute value of index {index} should not exceed dataset length "
                                 f"{len(self)}")
            index += len(self)
        part = bisect.bisect_right(self.cumulative_sizes, index)
        if part == len(self.datasets):
            raise IndexError(f"ConcatDataset: index {index} is out of range for {len(self)} samples")
        return self.datasets[part][index - (self.cumulative_sizes[part - 1] if part else 0)]


def random_split(dataset, lengths, generator=None) -> list[Subset]:
    """Split ``dataset`` into disjoint random ``Subset``\\s of the given lengths, as ``torch.utils.data.random_split``.

    ``lengths`` are ints summing to ``len(dataset)``, or fractions summing to 1: each part then gets
    ``floor(fraction * len(dataset))`` samples and the remainder goes one by one to the parts in order.
    ``generator`` is a ``tensorlib.random.Generator`` or a ``numpy.random.Generator`` (None: the global
    generator, see ``tl.manual_seed``); the same seed gives the same split.
    """
    n = len(dataset)
    lengths = list(lengths)
    if math.isclose(sum(lengths), 1) and sum(lengths) <= 1:
        if any(not 0 <= f <= 1 for f in lengths):
            raise ValueError(f"fractions must lie in [0, 1], got {lengths}")
        counts = [math.floor(n * f) for f in lengths]
        for i in range(n - sum(counts)):
            counts[i % len(counts)] += 1
        lengths = counts
    if any(not isinstance(k, numbers.Integral) or k < 0 for k in lengths):
        raise ValueError(f"lengths must be non-negative ints or fractions summing to 1, got {lengths}")
    if sum(lengths) != n:
        raise ValueError(f"the lengths {lengths} sum to {sum(lengths)}, but the dataset has {n} samples")
    order = generator_or_default(generator).permutation(n)
    bounds = np.cumsum([0, *lengths])
    return [Subset(dataset, order[start:stop]) for start, stop in zip(bounds[:-1], bounds[1:])]
