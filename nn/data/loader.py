"""``DataLoader``: iterate over a dataset in (shuffled) batches, optionally preparing the next batch on a thread."""

from __future__ import annotations

import numbers
import queue
import threading

import numpy as np

from nn.data.collate import default_collate, default_convert
from nn.data.dataset import as_generator


class DataLoader:
    """Batches of ``dataset``, as ``torch.utils.data.DataLoader`` with a single process.

    - ``shuffle``: a fresh permutation each epoch (each ``iter``), drawn from ``generator`` (an int seed or a
      ``numpy.random.Generator``, kept across epochs) or else from tensorlib's global generator, so
      ``tl.manual_seed`` makes the order reproducible.
    - ``sampler`` (an iterable of indices, e.g. a ``DistributedSampler``) replaces that order; ``batch_sampler``
      (an iterable of lists of indices) gives the batches themselves. Each is iterated once per epoch; as in
      PyTorch, ``sampler`` excludes ``shuffle``, and ``batch_sampler`` excludes ``batch_size``, ``shuffle``,
      ``sampler`` and ``drop_last``.
    - ``len(loader)`` is the number of batches; ``drop_last`` drops a last partial batch.
    - Batches come from ``collate_fn`` (default: ``default_collate``) applied to the list of samples. Without
      a ``collate_fn``, a dataset with ``get_batch(indices)`` (``TensorDataset``, the in-memory image datasets,
      their ``Subset``\\s) builds each batch with one gather per array instead of one call per sample.
      ``batch_size=None`` turns batching off: each sample comes alone, through ``collate_fn`` if given, else
      ``default_convert`` (NumPy arrays become tensors).
    - ``prefetch``: a daemon thread prepares the next batch while the caller works on the current one (one
      batch ahead); its exceptions are raised in the caller, and it stops when the iterator is dropped or
      exhausted. Random transforms then draw from the global generator on that thread, interleaved with the
      caller's own draws, so augmentations are only reproducible without ``prefetch``.
    - ``num_workers=0``, ``pin_memory=False`` and ``persistent_workers=False`` are accepted for PyTorch's
      signature and change nothing (there are no worker processes and no pinned memory); other values are
      refused, as is any other worker option.
    """

    def __init__(self, dataset, batch_size: int | None = 1, shuffle: bool | None = None, sampler=None,
                 batch_sampler=None, num_workers: int = 0, collate_fn=None, pin_memory: bool = False,
                 drop_last: bool = False, *, generator=None, persistent_workers: bool = False, prefetch: bool = False):
        if batch_size is not None and (not isinstance(batch_size, numbers.Integral) or isinstance(batch_size, bool)
                                       or batch_size < 1):
            raise ValueError(f"batch_size must be a positive int or None (no batching), got {batch_size!r}")
        if sampler is not None and shuffle:
            raise ValueError("DataLoader: sampler option is mutually exclusive with shuffle")
        if batch_sampler is not None and (batch_size != 1 or shuffle or sampler is not None or drop_last):
            raise ValueError("DataLoader: batch_sampler option is mutually exclusive with batch_size, shuffle, "
                             "sampler, and drop_last")
        if batch_size is None and drop_last:
            raise ValueError("DataLoader: batch_size=None option disables auto-batching and is mutually exclusive "
                             "with drop_last")
        for name, value, supported in (("num_workers", num_workers, 0), ("pin_memory", pin_memory, False),
                                       ("persistent_workers", persistent_workers, False)):
            if value != supported:
                raise ValueError(f"DataLoader: {name}={value!r} is not supported: this loader runs in the calling "
                                 f"process without pinned memory, so only {name}={supported!r} (use prefetch=True "
                                 "to prepare the next batch on a thread)")
        self.batch_size = None if batch_size is None else int(batch_size)
        if batch_sampler is not None:
            self.batch_size = None  # as in PyTorch: the batches' sizes are the batch sampler's
        self.dataset, self.shuffle, self.drop_last = dataset, bool(shuffle), drop_last
        self.sampler, self.batch_sampler = sampler, batch_sampler
        self.generator = None if generator is None else as_generator(generator)
        self.collate_fn, self.prefetch = collate_fn, prefetch

    def __len__(self) -> int:
        if self.batch_sampler is not None:
            return len(self.batch_sampler)
        n = len(self.sampler) if self.sampler is not None else len(self.dataset)
        if self.batch_size is None:
            return n
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self):
        batches = self._index_batches()  # drawn here, in the caller's thread, whatever ``prefetch`` says
        fetch = self._fetch if self.batch_size is not None or self.batch_sampler is not None else self._fetch_one
        if self.prefetch:
            return _PrefetchIterator(fetch, batches)
        return map(fetch, batches)

    def _index_batches(self) -> list:
        if self.batch_sampler is not None:
            return [np.asarray(list(batch), dtype=np.int64) for batch in self.batch_sampler]
        if self.sampler is not None:
            order = np.fromiter(iter(self.sampler), dtype=np.int64)
        else:
            n = len(self.dataset)
            order = as_generator(self.generator).permutation(n) if self.shuffle else np.arange(n)
        if self.batch_size is None:
            return [int(i) for i in order]
        stop = len(order) - len(order) % self.batch_size if self.drop_last else len(order)
        return [order[start:start + self.batch_size] for start in range(0, stop, self.batch_size)]

    def _fetch(self, indices: np.ndarray):
        if self.collate_fn is None and hasattr(self.dataset, "get_batch"):
            return self.dataset.get_batch(indices)
        return (self.collate_fn or default_collate)([self.dataset[int(i)] for i in indices])

    def _fetch_one(self, index: int):
        return (self.collate_fn or default_convert)(self.dataset[index])


class _PrefetchIterator:
    """``fetch(b) for b in batches``, each batch fetched on a daemon thread while the previous one is in use."""

    def __init__(self, fetch, batches):
        self._results = queue.Queue()
        self._may_fetch = threading.Semaphore(1)  # released as each batch is taken: keeps the worker one batch ahead
        self._stop = threading.Event()
        self._finished = False
        # The worker gets no reference to this object, so dropping the iterator runs __del__, which stops it.
        self._thread = threading.Thread(target=_fetch_ahead, name="nn.data prefetch", daemon=True,
                                        args=(fetch, batches, self._results, self._may_fetch, self._stop))
        self._thread.start()

    def __iter__(self):
        return self

    def __next__(self):
        if self._finished:
            raise StopIteration
        kind, value = self._results.get()
        if kind == "batch":
            self._may_fetch.release()
            return value
        self.close()
        if kind == "error":
            raise value
        raise StopIteration

    def close(self):
        """Stop the worker; it finishes at most the batch it is fetching."""
        self._finished = True
        self._stop.set()
        self._may_fetch.release()

    __del__ = close


def _fetch_ahead(fetch, batches, results, may_fetch, stop):
    try:
        for indices in batches:
            may_fetch.acquire()
            if stop.is_set():
                return
            results.put(("batch", fetch(indices)))
        results.put(("end", None))
    except BaseException as error:  # handed to the consumer, which raises it
        results.put(("error", error))
