"""Samplers, as in ``torch.utils.data``: the order in which a ``DataLoader`` visits a dataset's indices.

``SequentialSampler`` and ``RandomSampler`` are what ``DataLoader(shuffle=False/True)`` builds itself;
``SubsetRandomSampler`` shuffles a given set of indices (a validation split without a ``Subset``),
``WeightedRandomSampler`` draws indices in proportion to per-sample weights (rebalancing classes), and
``BatchSampler`` groups any sampler's indices into lists, the batches.

Random samplers draw from their ``generator`` (a ``tensorlib.random.Generator`` or a ``numpy.random.Generator``),
else from the global generator (``tl.manual_seed``), when they are iterated, as PyTorch's do: each ``iter``
is a fresh draw.
"""

from __future__ import annotations

import numbers

import numpy as np

import tensorlib as tl
from tensorlib.random import generator_or_default


def _is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def _check_positive_int(name: str, value):
    if not _is_int(value) or value <= 0:
        raise ValueError(f"{name} should be a positive integer value, but got {name}={value!r}")


def _check_bool(name: str, value, error=ValueError):
    if not isinstance(value, (bool, np.bool_)):
        raise error(f"{name} should be a boolean value, but got {name}={value!r}")


class Sampler:
    """Iterates over dataset indices. Subclasses define ``__iter__`` and, where it is known, ``__len__``."""

    def __iter__(self):
        raise NotImplementedError(f"{type(self).__name__} must define __iter__")


class SequentialSampler(Sampler):
    """``0, 1, ..., len(data_source) - 1``."""

    def __init__(self, data_source):
        self.data_source = data_source

    def __iter__(self):
        return iter(range(len(self.data_source)))

    def __len__(self) -> int:
        return len(self.data_source)


class RandomSampler(Sampler):
    """Random indices of ``data_source``: a permutation by default; with ``replacement`` ``num_samples`` independent
    uniform draws. Without replacement, a ``num_samples`` beyond ``len(data_source)`` chains fresh permutations
    (each index appears ``num_samples // n`` or one more times). ``num_samples`` defaults to the dataset's
    length, read at each iteration."""

    def __init__(self, data_source, replacement: bool = False, num_samples: int | None = None, generator=None):
        _check_bool("replacement", replacement, TypeError)
        generator_or_default(generator)  # type-checked now rather than at the first iteration
        self.data_source, self.replacement, self.generator = data_source, bool(replacement), generator
        self._num_samples = num_samples
        _check_positive_int("num_samples", self.num_samples)

    @property
    def num_samples(self) -> int:
        return len(self.data_source) if self._num_samples is None else self._num_samples

    def __iter__(self):
        n, count = len(self.data_source), self.num_samples
        rng = generator_or_default(self.generator)
        if self.replacement:
            yield from rng.integers(0, n, size=count).tolist()
            return
        for _ in range(count // n):
            yield from rng.permutation(n).tolist()
        if count % n:
            yield from rng.permutation(n)[:count % n].tolist()

    def __len__(self) -> int:
        return self.num_samples


class SubsetRandomSampler(Sampler):
    """The given ``indices`` in a random order (a fresh permutation of them at each iteration)."""

    def __init__(self, indices, generator=None):
        generator_or_default(generator)
        self.indices, self.generator = indices, generator

    def __iter__(self):
        for position in generator_or_default(self.generator).permutation(len(self.indices)).tolist():
            yield self.indices[position]

    def __len__(self) -> int:
        return len(self.indices)


class WeightedRandomSampler(Sampler):
    """``num_samples`` indices in ``0 .. len(weights) - 1``, index ``i`` drawn with probability proportional to
    ``weights[i]`` (the weights need not sum to 1).

    With ``replacement`` (the default) the draws are independent. Without it, each draw takes an index not yet
    drawn, with probability proportional to its weight among those left (``num_samples`` must not exceed
    ``len(weights)``); once every index of positive weight is drawn, the zero-weight ones follow in a uniformly
    random order, as ``torch.multinomial`` does. ``weights`` are kept as a float64 tensor.
    """

    def __init__(self, weights, num_samples: int, replacement: bool = True, generator=None):
        _check_positive_int("num_samples", num_samples)
        _check_bool("replacement", replacement)
        generator_or_default(generator)
        values = weights.numpy() if isinstance(weights, tl.Tensor) else np.asarray(weights)
        values = values.astype(np.float64)
        if values.ndim != 1:
            raise ValueError(f"weights should be a 1d sequence but given weights have shape {values.shape}")
        _check_distribution(values, num_samples, replacement)
        self.weights = tl.tensor(values, dtype=tl.float64)
        self.num_samples, self.replacement, self.generator = int(num_samples), bool(replacement), generator
        self._weights = values

    def __iter__(self):
        rng, weights = generator_or_default(self.generator), self._weights
        if self.replacement:
            cumulative = np.cumsum(weights)
            # a uniform point of [0, total) falls in the interval of index i with probability weights[i] / total;
            # side="right" steps over the empty intervals of zero weights
            draws = np.searchsorted(cumulative, rng.random(self.num_samples) * cumulative[-1], side="right")
            last_positive = np.flatnonzero(weights)[-1]  # where a draw rounded up to the total belongs
            yield from np.minimum(draws, last_positive).tolist()
            return
        # Sequential weighted draws without replacement are the order of the keys E_i / w_i, E_i standard
        # exponential (the smallest key wins with probability w_i / sum w, and the rest stay exponential)
        exponentials = rng.standard_exponential(len(weights))
        with np.errstate(divide="ignore"):
            keys = np.where(weights > 0, exponentials / weights, np.inf)
        order = np.lexsort((exponentials, keys))  # the zero weights (key inf) last, shuffled by their exponentials
        yield from order[:self.num_samples].tolist()

    def __len__(self) -> int:
        return self.num_samples


def _check_distribution(weights: np.ndarray, num_samples: int, replacement: bool):
    """torch.multinomial's checks of a sampling distribution, with the offending weight named."""
    if np.isinf(weights).any():
        index = int(np.flatnonzero(np.isinf(weights))[0])
        raise RuntimeError(f"invalid multinomial distribution (encountering probability entry = infinity or NaN): "
                           f"weights[{index}] = {weights[index]}")
    if not (weights >= 0).all():
        index = int(np.flatnonzero(~(weights >= 0))[0])
        raise RuntimeError(f"invalid multinomial distribution (encountering probability entry < 0): "
                           f"weights[{index}] = {weights[index]}")
    if not weights.sum() > 0:
        raise RuntimeError(f"invalid multinomial distribution (sum of probabilities <= 0): the {len(weights)} "
                           "weights sum to 0")
    if not replacement and num_samples > len(weights):
        raise RuntimeError(f"cannot sample n_sample > prob_dist.size(-1) samples without replacement: "
                           f"num_samples={num_samples} but there are {len(weights)} weights")


class BatchSampler(Sampler):
    """The indices of ``sampler`` in lists of ``batch_size``; the last list is shorter unless ``drop_last``
    drops it."""

    def __init__(self, sampler, batch_size: int, drop_last: bool):
        _check_positive_int("batch_size", batch_size)
        _check_bool("drop_last", drop_last)
        self.sampler, self.batch_size, self.drop_last = sampler, int(batch_size), bool(drop_last)

    def __iter__(self):
        batch = []
        for index in self.sampler:
            batch.append(index)
            if len(batch) == self.batch_size:
                yield batch
                batch = []
        if batch and not self.drop_last:
            yield batch

    def __len__(self) -> int:
        n = len(self.sampler)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)
