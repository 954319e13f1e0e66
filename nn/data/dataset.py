"""Datasets, as in ``torch.utils.data``: map-style ``Dataset``, ``TensorDataset``, ``Subset``, ``ConcatDataset``,
``StackDataset``, ``random_split``; streams: ``IterableDataset``, ``ChainDataset``.

A map-style dataset may also define ``get_batch(indices)``: the batch ``default_collate([self[i] for i in
indices])`` would give, built with one fancy-indexing operation per array instead of one Python call per sample.
``DataLoader`` uses it (when no ``collate_fn`` is given) as long as it belongs with the ``__getitem__`` in use
(``get_batch_applies``): a subclass that overrides ``__getitem__`` alone is fetched sample by sample.
"""

from __future__ import annotations

import bisect
import math
import numbers
import warnings

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


def get_batch_applies(dataset) -> bool:
    """Whether ``dataset.get_batch(indices)`` gives what its samples would: the class that defines ``get_batch``
    also provides the ``__getitem__`` that ``dataset``'s class uses. False without ``get_batch``, and for a
    subclass that overrides ``__getitem__`` (a transform, a label remap) but not ``get_batch``."""
    cls = type(dataset)
    owner = next((klass for klass in cls.__mro__ if "get_batch" in vars(klass)), None)
    return owner is not None and cls.__getitem__ is owner.__getitem__


class IterableDataset(Dataset):
    """A stream of samples: subclasses define ``__iter__`` (and ``__len__`` if they know it). ``a + b`` chains
    two streams.

    ``DataLoader`` batches the samples in the order the stream gives them (no sampler, no shuffle). With
    ``num_workers=N`` each worker iterates its own copy of the dataset, so each sample would come N times: to
    split the stream, ask ``get_worker_info()`` (the worker's ``id``, ``num_workers`` and its copy of the
    ``dataset``) in ``__iter__`` or in ``worker_init_fn``, as PyTorch documents.
    """

    def __iter__(self):
        raise NotImplementedError(f"{type(self).__name__} must define __iter__")

    def __len__(self) -> int:
        # a TypeError, as for an object without __len__: list(loader) then takes no length hint
        raise TypeError(f"{type(self).__name__} has no len(): define __len__ on an IterableDataset that knows its "
                        "length")

    def __add__(self, other) -> ChainDataset:
        return ChainDataset([self, other])


class ChainDataset(IterableDataset):
    """The samples of each of ``datasets`` (each an ``IterableDataset``) in turn, chained lazily."""

    def __init__(self, datasets):
        self.datasets = datasets

    def __iter__(self):
        for dataset in self.datasets:
            yield from _checked_stream(dataset)

    def __len__(self) -> int:
        return sum(len(_checked_stream(dataset)) for dataset in self.datasets)


def _checked_stream(dataset):
    if not isinstance(dataset, IterableDataset):
        raise TypeError(f"ChainDataset only supports IterableDataset, got a {type(dataset).__name__}")
    return dataset


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
        # a tensor that requires grad is indexed through the differentiable getitem: its batch keeps the graph
        return [t[indices] if t.requires_grad else tl.Tensor._make(t.array[array_module(t.array).asarray(indices)])
                for t in self.tensors]


class Subset(Dataset):
    """The samples of ``dataset`` at ``indices``, in that order. ``indices`` is kept as given (a list, an array);
    ``subset[[i, j]]`` asks ``dataset`` for the list of the indices at ``i`` and ``j``, as PyTorch does."""

    def __init__(self, dataset, indices):
        self.dataset, self.indices = dataset, indices

    def __getitem__(self, index):
        if isinstance(index, list):
            return self.dataset[[_plain(self.indices[i]) for i in index]]
        return self.dataset[_plain(self.indices[index])]

    def __len__(self) -> int:
        return len(self.indices)

    def get_batch(self, indices):
        if not get_batch_applies(self.dataset):
            return default_collate([self[int(i)] for i in indices])
        if isinstance(self.indices, np.ndarray):
            return self.dataset.get_batch(self.indices[indices])
        return self.dataset.get_batch(np.array([self.indices[int(i)] for i in indices], dtype=np.int64))


def _plain(index):
    """A NumPy integer index as a Python int (what a dataset indexed one sample at a time expects)."""
    return int(index) if isinstance(index, np.integer) else index


class ConcatDataset(Dataset):
    """The samples of ``datasets``, one dataset after the other (sample ``len(datasets[0])`` is ``datasets[1][0]``)."""

    def __init__(self, datasets):
        self.datasets = list(datasets)
        if not self.datasets:
            raise ValueError("ConcatDataset: datasets should not be an empty iterable")
        for index, dataset in enumerate(self.datasets):
            if isinstance(dataset, IterableDataset):
                raise TypeError(f"ConcatDataset does not support IterableDataset (datasets[{index}] is a "
                                f"{type(dataset).__name__}): chain streams with ChainDataset")
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


class StackDataset(Dataset):
    """Sample ``i`` of several datasets of one length together: ``StackDataset(a, b)[i]`` is ``(a[i], b[i])``,
    ``StackDataset(image=a, label=b)[i]`` is ``{"image": a[i], "label": b[i]}``."""

    def __init__(self, *args, **kwargs):
        if args and kwargs:
            raise ValueError("StackDataset takes its datasets either as arguments (tuple samples) or as keyword "
                             "arguments (dict samples), but both were given")
        if not args and not kwargs:
            raise ValueError("StackDataset: at least one dataset should be passed")
        self.datasets = args or kwargs
        named = kwargs or dict(enumerate(args))
        lengths = {name: len(dataset) for name, dataset in named.items()}
        if len(set(lengths.values())) != 1:
            raise ValueError(f"StackDataset: size mismatch between datasets: their lengths are {lengths}")
        self._length = next(iter(lengths.values()))

    def __getitem__(self, index):
        if isinstance(self.datasets, dict):
            return {name: dataset[index] for name, dataset in self.datasets.items()}
        return tuple(dataset[index] for dataset in self.datasets)

    def __len__(self) -> int:
        return self._length

    def get_batch(self, indices):
        def batch_of(dataset):
            if get_batch_applies(dataset):
                return dataset.get_batch(indices)
            return default_collate([dataset[int(i)] for i in indices])

        if isinstance(self.datasets, dict):
            return {name: batch_of(dataset) for name, dataset in self.datasets.items()}
        return [batch_of(dataset) for dataset in self.datasets]


def random_split(dataset, lengths, generator=None) -> list[Subset]:
    """Split ``dataset`` into disjoint random ``Subset``\\s of the given lengths, as ``torch.utils.data.random_split``.

    ``lengths`` are ints summing to ``len(dataset)``, or fractions summing to 1: each part then gets
    ``floor(fraction * len(dataset))`` samples and the remainder goes one by one to the parts in order.
    ``generator`` is a ``tensorlib.random.Generator`` or a ``numpy.random.Generator`` (None: the global
    generator, see ``tl.manual_seed``); the same seed gives the same split. A fraction that leaves a part
    empty draws a warning, as in PyTorch. Each part's ``indices`` is an int64 array.
    """
    n = len(dataset)
    lengths = list(lengths)
    if math.isclose(sum(lengths), 1) and sum(lengths) <= 1:
        if any(not 0 <= f <= 1 for f in lengths):
            raise ValueError(f"fractions must lie in [0, 1], got {lengths}")
        counts = [math.floor(n * f) for f in lengths]
        for i in range(n - sum(counts)):
            counts[i % len(counts)] += 1
        for index, count in enumerate(counts):
            if count == 0:
                warnings.warn(f"Length of split at index {index} is 0. This might result in an empty dataset "
                              f"(fraction {lengths[index]!r} of {n} samples).", UserWarning, stacklevel=2)
        lengths = counts
    if any(not isinstance(k, numbers.Integral) or k < 0 for k in lengths):
        raise ValueError(f"lengths must be non-negative ints or fractions summing to 1, got {lengths}")
    if sum(lengths) != n:
        raise ValueError(f"the lengths {lengths} sum to {sum(lengths)}, but the dataset has {n} samples")
    order = generator_or_default(generator).permutation(n)
    bounds = np.cumsum([0, *lengths])
    return [Subset(dataset, order[start:stop]) for start, stop in zip(bounds[:-1], bounds[1:])]
