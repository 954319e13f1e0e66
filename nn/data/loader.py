"""``DataLoader``: iterate over a dataset in (shuffled) batches, optionally preparing the next batch on a thread."""

from __future__ import annotations

import numbers
import queue
import threading

import numpy as np

from nn.data.collate import default_collate
from nn.data.dataset import as_generator


class DataLoader:
    """Batches of ``dataset``, as ``torch.utils.data.DataLoader`` with a single process.

    - ``shuffle``: a fresh permutation each epoch (each ``iter``), drawn from ``generator`` (an int seed or a
      ``numpy.random.Generator``, kept across epochs) or else from tensorlib's global generator, so
      ``tl.manual_seed`` makes the order reproducible.
    - ``len(loader)`` is the number of batches; ``drop_last`` drops a last partial batch.
    - Batches come from ``collate_fn`` (default: ``default_collate``) applied to the list of samples. Without
      a ``collate_fn``, a dataset with ``get_batch(indices)`` (``TensorDataset``, the in-memory image datasets,
      their ``Subset``\\s) builds each batch with one gather per array instead of one call per sample.
    - ``prefetch``: a daemon thread prepares the next batch while the caller works on the current one (one
      batch ahead); its exceptions are raised in the caller, and it stops when the iterator is dropped or
      exhausted. Random transforms then draw from the global generator on that thread, interleaved with the
      caller's own draws, so augmentations are only reproducible without ``prefetch``.
    """

    def __init__(self, dataset, batch_size: int = 1, shuffle: bool = False, *, drop_last: bool = False, generator=None,
                 collate_fn=None, prefetch: bool = False):
        if not isinstance(batch_size, numbers.Integral) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        self.dataset, self.batch_size, self.shuffle, self.drop_last = dataset, int(batch_size), shuffle, drop_last
        self.generator = None if generator is None else as_generator(generator)
        self.collate_fn, self.prefetch = collate_fn, prefetch

    def __len__(self) -> int:
        n = len(self.dataset)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self):
        batches = self._index_batches()  # drawn here, in the caller's thread, whatever ``prefetch`` says
        if self.prefetch:
            return _PrefetchIterator(self._fetch, batches)
        return map(self._fetch, batches)

    def _index_batches(self) -> list[np.ndarray]:
        n = len(self.dataset)
        order = as_generator(self.generator).permutation(n) if self.shuffle else np.arange(n)
        stop = n - n % self.batch_size if self.drop_last else n
        return [order[start:start + self.batch_size] for start in range(0, stop, self.batch_size)]

    def _fetch(self, indices: np.ndarray):
        if self.collate_fn is None and hasattr(self.dataset, "get_batch"):
            return self.dataset.get_batch(indices)
        return (self.collate_fn or default_collate)([self.dataset[int(i)] for i in indices])


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
