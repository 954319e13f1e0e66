"""``DataLoader``: iterate over a dataset in (shuffled) batches, in the calling process, with worker processes,
or with the next batch prepared on a thread."""

from __future__ import annotations

import collections.abc
import itertools
import multiprocessing
import numbers
import queue
import random
import sys
import threading
import time

import numpy as np

from kernels import device_arrays
from nn.data.collate import default_collate, default_convert
from nn.data.dataset import IterableDataset, get_batch_applies
from nn.data.distributed import DistributedShard
from nn.data.sampler import BatchSampler, RandomSampler, Sampler, SequentialSampler
from nn.data.worker import _POLL_S, WorkerPool, unpack
from tensorlib import Tensor
from tensorlib.random import generator_or_default, get_rng_state, set_rng_state


class DataLoader:
    """Batches of ``dataset``, as ``torch.utils.data.DataLoader`` (same arguments, same checks).

    - Order: ``shuffle`` builds a ``RandomSampler`` (a fresh permutation each epoch, drawn from ``generator``, a
      ``tensorlib.random.Generator`` or ``numpy.random.Generator``, or else from the global generator, so
      ``tl.manual_seed`` makes the order reproducible), otherwise a ``SequentialSampler``. ``sampler`` (any
      iterable of indices) replaces that order; ``batch_sampler`` (an iterable of lists of indices) gives the
      batches themselves. As in PyTorch, ``sampler`` excludes ``shuffle``, and ``batch_sampler`` excludes
      ``batch_size``, ``shuffle``, ``sampler`` and ``drop_last``. Indices are drawn lazily, as iteration
      reaches them, always in the calling process.
    - ``len(loader)`` is the number of batches; ``drop_last`` drops a last partial batch.
    - Batches come from ``collate_fn`` (default: ``default_collate``) applied to the list of samples. Without
      a ``collate_fn``, a dataset with ``get_batch(indices)`` (``TensorDataset``, the in-memory image datasets,
      their ``Subset``\\s) builds each batch with one gather per array instead of one call per sample, unless
      its class overrides ``__getitem__`` without ``get_batch`` (see ``nn.data.dataset.get_batch_applies``).
      ``batch_size=None`` turns batching off: each sample comes alone, through ``collate_fn`` if given, else
      ``default_convert`` (NumPy arrays become tensors).
    - An ``IterableDataset`` is batched in the order it streams its samples (``drop_last`` drops a last short
      batch); ``shuffle``, ``sampler`` and ``batch_sampler`` are refused, as in PyTorch, and ``len(loader)`` is
      derived from ``len(dataset)`` (a TypeError where the dataset has none). Each worker streams its own copy
      of the dataset (see ``IterableDataset`` to split the stream between them); the batches come from the
      workers in turn, a worker whose stream has ended being skipped.
    - ``num_workers > 0`` fetches batches in that many worker processes (see ``nn.data.worker``): the same
      batches in the same order as ``num_workers=0`` (unless ``in_order=False``, which hands each batch out as
      soon as it is ready), with ``prefetch_factor`` batches in flight per worker, ``worker_init_fn(worker_id)``
      run in each, errors raised here naming the worker, and ``timeout`` seconds (0: no limit) to wait for a
      batch. Random transforms in a worker draw from its own generator, seeded with a base seed drawn from
      ``generator`` (or the global one) plus the worker's id, so they differ from ``num_workers=0``'s.
      Workers are forked (``multiprocessing_context`` picks another start method; the dataset and
      ``collate_fn`` must then be picklable); they get a copy of the dataset as it is when they start:
      each epoch, or once with ``persistent_workers``. A ``DistributedShard`` is the exception: its current
      epoch (``set_epoch``) is mapped to base-dataset indices here, so even persistent workers follow it.
      Batches cross a pipe pickled, so they must be CPU data: move them to the GPU in the training loop.
      Forked workers refuse a dataset whose samples hold data on "cuda" (a forked process cannot use its
      parent's CUDA context): once CuPy is loaded (or under the simulator) the first sample of the epoch is
      fetched in this process to check it before the workers start, leaving the random generators as they were.
    - Every ``iter(loader)`` draws one base seed for the workers from ``generator`` (or the global generator),
      as PyTorch does, even with ``num_workers=0``: the shuffles that follow are the same whatever
      ``num_workers`` is.
    - ``pin_memory`` (and ``pin_memory_device``) are accepted and change nothing: batches are never pinned.
    - ``prefetch`` (tensorlib's own, with ``num_workers=0``): a daemon thread prepares the next batch while the
      caller works on the current one; its exceptions are raised in the caller, and it stops when the iterator
      is dropped or exhausted. Random transforms then draw from the global generator on that thread,
      interleaved with the caller's own draws, so augmentations are only reproducible without ``prefetch``.
    """

    def __init__(self, dataset, batch_size: int | None = 1, shuffle: bool | None = None, sampler=None,
                 batch_sampler=None, num_workers: int = 0, collate_fn=None, pin_memory: bool = False,
                 drop_last: bool = False, timeout: float = 0, worker_init_fn=None, multiprocessing_context=None,
                 generator=None, *, prefetch_factor: int | None = None, persistent_workers: bool = False,
                 pin_memory_device: str = "", in_order: bool = True, prefetch: bool = False):
        _check_workers(num_workers, timeout, prefetch_factor, persistent_workers, worker_init_fn, prefetch)
        self._context = _context(multiprocessing_context, num_workers)
        generator_or_default(generator)  # type-checked now rather than at the first epoch
        self._streaming = isinstance(dataset, IterableDataset)
        if self._streaming:
            for name, value, unspecified in (("shuffle", shuffle, (None, False)), ("sampler", sampler, (None,)),
                                             ("batch_sampler", batch_sampler, (None,))):
                if not any(value is allowed for allowed in unspecified):
                    raise ValueError(f"DataLoader with IterableDataset: expected unspecified {name} option, but got "
                                     f"{name}={value!r}")
            sampler = _InfiniteConstantSampler()
        if sampler is not None and shuffle:
            raise ValueError("sampler option is mutually exclusive with shuffle")
        if batch_sampler is not None and (batch_size != 1 or shuffle or sampler is not None or drop_last):
            raise ValueError("batch_sampler option is mutually exclusive with batch_size, shuffle, sampler, and "
                             "drop_last")
        if batch_size is None and drop_last:
            raise ValueError("batch_size=None option disables auto-batching and is mutually exclusive with "
                             "drop_last")
        if sampler is None:
            sampler = RandomSampler(dataset, generator=generator) if shuffle else SequentialSampler(dataset)
        if batch_sampler is not None:
            batch_size, drop_last = None, False  # as in PyTorch: the batches' sizes are the batch sampler's
        elif batch_size is not None:
            batch_sampler = BatchSampler(sampler, batch_size, drop_last)
        self.dataset, self.batch_size, self.drop_last = dataset, batch_size, drop_last
        self.sampler, self.batch_sampler, self.generator = sampler, batch_sampler, generator
        self.collate_fn = collate_fn or (default_collate if batch_sampler is not None else default_convert)
        self.num_workers, self.prefetch_factor = num_workers, (prefetch_factor or 2) if num_workers else None
        self.timeout, self.worker_init_fn, self.in_order = timeout, worker_init_fn, in_order
        self.persistent_workers, self.pin_memory, self.pin_memory_device = persistent_workers, pin_memory, \
            pin_memory_device
        self.prefetch = prefetch
        self._pool = None  # the workers kept across epochs with persistent_workers
        self._streams_started = 0  # the epochs of an IterableDataset begun: each starts a new iterator of it

    @property
    def multiprocessing_context(self):
        return self._context

    def __len__(self) -> int:
        if self._streaming:
            length = len(self.dataset)
            if self.batch_size is not None:
                length = length // self.batch_size if self.drop_last else -(-length // self.batch_size)
            return length
        return len(self.batch_sampler if self.batch_sampler is not None else self.sampler)

    def __iter__(self):
        # As in PyTorch, every epoch draws the workers' base seed, with or without workers: the draws of the
        # sampler that follow, and so the batches, do not depend on num_workers.
        base_seed = int(generator_or_default(self.generator).integers(2**63))
        batched = self.batch_sampler is not None
        dataset = self.dataset
        if self._streaming:
            # each task names the epoch; a fetcher (in each worker: its copy) streams it from a new iterator
            self._streams_started += 1
            index_batches = itertools.repeat(self._streams_started)
            fetch = _StreamFetcher(dataset, self.batch_size, self.drop_last, self.collate_fn)
        else:
            index_batches = iter(self.batch_sampler if batched else self.sampler)
            if isinstance(dataset, DistributedShard):  # this epoch's shard, resolved here rather than in the workers
                dataset, index_batches = dataset.dataset, _base_indices(dataset.base_indices, index_batches, batched)
            fetch = _Fetcher(dataset, batched, self.collate_fn)
        if self.num_workers:
            if self._pool is not None and not self._pool.closed:
                pool = self._pool
            else:
                if not self._streaming:
                    index_batches = _refuse_device_data_in_forked_workers(self._context, self.num_workers, fetch,
                                                                          index_batches)
                pool = WorkerPool(self._context, fetch, self.dataset, self.num_workers, base_seed,
                                  self.worker_init_fn)
                if self.persistent_workers:
                    self._pool = pool
            return _WorkerIterator(pool, index_batches, self, owns_pool=not self.persistent_workers)
        if self.prefetch:
            return _PrefetchIterator(fetch, index_batches)
        return _until_stream_end(map(fetch, index_batches))

    def __del__(self):
        if getattr(self, "_pool", None) is not None:
            self._pool.close()


class _InfiniteConstantSampler(Sampler):
    """The sampler of a DataLoader over an ``IterableDataset``, as PyTorch's: None, forever (the dataset orders
    its samples itself). It stands in ``loader.sampler`` and under ``loader.batch_sampler``; an epoch streams
    the dataset instead of iterating them."""

    def __iter__(self):
        return itertools.repeat(None)


def _check_workers(num_workers, timeout, prefetch_factor, persistent_workers, worker_init_fn, prefetch):
    """PyTorch's checks of the worker options, plus their types."""
    if not isinstance(num_workers, numbers.Integral) or isinstance(num_workers, bool):
        raise ValueError(f"num_workers should be an int (0: load in the calling process), got {num_workers!r}")
    if num_workers < 0:
        raise ValueError(f"num_workers option should be non-negative; use num_workers=0 to disable "
                         f"multiprocessing, got num_workers={num_workers}")
    if not isinstance(timeout, numbers.Real) or isinstance(timeout, bool) or timeout < 0:
        raise ValueError(f"timeout option should be non-negative (seconds; 0: no limit), got timeout={timeout!r}")
    if num_workers == 0 and prefetch_factor is not None:
        raise ValueError(f"prefetch_factor option could only be specified in multiprocessing: let num_workers > 0 "
                         f"to enable multiprocessing, otherwise set prefetch_factor to None, got "
                         f"prefetch_factor={prefetch_factor!r}")
    if prefetch_factor is not None and (not isinstance(prefetch_factor, numbers.Integral)
                                        or isinstance(prefetch_factor, bool) or prefetch_factor < 1):
        raise ValueError(f"prefetch_factor should be a positive int (batches in flight per worker), got "
                         f"prefetch_factor={prefetch_factor!r}")
    if persistent_workers and num_workers == 0:
        raise ValueError("persistent_workers option needs num_workers > 0")
    if worker_init_fn is not None and not callable(worker_init_fn):
        raise TypeError(f"worker_init_fn should be callable (it is called with the worker id), got "
                        f"{type(worker_init_fn).__name__} {worker_init_fn!r}")
    if prefetch and num_workers:
        raise ValueError(f"prefetch=True prepares batches on a thread of the calling process; with "
                         f"num_workers={num_workers} the workers already prepare them: pass one or the other")


def _context(multiprocessing_context, num_workers: int):
    """The multiprocessing context the workers start in: fork where the platform has it, as PyTorch on Linux."""
    if multiprocessing_context is None:
        if "fork" in multiprocessing.get_all_start_methods():
            return multiprocessing.get_context("fork")
        return multiprocessing.get_context()
    if not num_workers:
        raise ValueError(f"multiprocessing_context can only be used with multi-process loading (num_workers > 0), "
                         f"but got num_workers={num_workers}")
    if isinstance(multiprocessing_context, str):
        methods = multiprocessing.get_all_start_methods()
        if multiprocessing_context not in methods:
            raise ValueError(f"multiprocessing_context option should specify a valid start method in {methods}, "
                             f"but got multiprocessing_context={multiprocessing_context!r}")
        return multiprocessing.get_context(multiprocessing_context)
    if not isinstance(multiprocessing_context, multiprocessing.context.BaseContext):
        raise TypeError(f"multiprocessing_context option should be a valid context object or a string specifying "
                        f"the start method, but got multiprocessing_context={multiprocessing_context!r}")
    return multiprocessing_context


def _base_indices(base_indices: np.ndarray, index_batches, batched: bool):
    """The sampler's positions in a ``DistributedShard`` -> the indices of its base dataset, with the shard's
    epoch as it is now."""
    if batched:
        return (base_indices[np.asarray(indices, dtype=np.int64)].tolist() for indices in index_batches)
    return (int(base_indices[index]) for index in index_batches)


def _refuse_device_data_in_forked_workers(context, num_workers: int, fetch, index_batches):
    """``index_batches`` unchanged; raises if forked workers would load data on "cuda".

    A forked process cannot use its parent's CUDA context, so forked workers must only handle host data.
    Where device arrays can exist at all (CuPy imported, or the simulator), the first sample of the epoch is
    fetched here to look at it, leaving the random generators as they were; one that cannot be fetched outside
    a worker (it asks ``get_worker_info()``, say) is left to the workers.
    """
    if context.get_start_method() != "fork" or not (device_arrays.simulating() or "cupy" in sys.modules):
        return index_batches
    first = next(index_batches, None)
    if first is None:
        return index_batches
    index_batches = itertools.chain([first], index_batches)
    indices = first if fetch.batched else [first]
    if not len(indices):
        return index_batches
    random_state, generator_state = random.getstate(), get_rng_state()
    try:
        sample = fetch.dataset[indices[0]]
    except Exception:
        sample = None
    finally:
        random.setstate(random_state)
        set_rng_state(generator_state)
    device_data = _device_data_in(sample)
    if device_data is not None:
        raise RuntimeError(
            f"num_workers={num_workers} forks worker processes, but the dataset's sample {indices[0]} holds a "
            f"{device_data} on 'cuda', and a forked process cannot use its parent's CUDA context: keep the dataset "
            f"on the CPU and move each batch to the GPU in the training loop, load in this process "
            f"(num_workers=0), or start the workers without forking (multiprocessing_context='spawn')")
    return index_batches


def _device_data_in(sample) -> str | None:
    """The type name of the first tensor or array on "cuda" in a sample (nested in tuples, lists and mappings),
    or None."""
    if isinstance(sample, Tensor):
        return "Tensor" if device_arrays.is_device_array(sample.array) else None
    if device_arrays.is_device_array(sample):
        return type(sample).__name__
    if isinstance(sample, collections.abc.Mapping):
        sample = list(sample.values())
    if isinstance(sample, (tuple, list)):
        return next((found for item in sample if (found := _device_data_in(item)) is not None), None)
    return None


class _Fetcher:
    """Index batch (or single index) -> batch. A plain object, so that a spawned worker can receive it pickled."""

    def __init__(self, dataset, batched: bool, collate_fn):
        self.dataset, self.batched, self.collate_fn = dataset, batched, collate_fn
        self.gathers = batched and collate_fn is default_collate and get_batch_applies(dataset)

    def __call__(self, indices):
        if not self.batched:
            return self.collate_fn(self.dataset[indices])
        if self.gathers:
            return self.dataset.get_batch(np.asarray(indices, dtype=np.int64))
        return self.collate_fn([self.dataset[i] for i in indices])


class _StreamEnd:
    """What a ``_StreamFetcher`` answers once its stream has ended (the class itself: it pickles by name, so a
    worker's answer unpickles to this very object)."""


class _StreamFetcher:
    """Epoch number -> the next batch of an ``IterableDataset``'s stream in that epoch (a new epoch starts a new
    iterator), or ``_StreamEnd``. In a worker process it streams the worker's copy of the dataset."""

    def __init__(self, dataset, batch_size: int | None, drop_last: bool, collate_fn):
        self.dataset, self.batch_size, self.drop_last, self.collate_fn = dataset, batch_size, drop_last, collate_fn
        self._epoch, self._samples = None, None

    def __call__(self, epoch):
        if epoch != self._epoch:
            self._epoch, self._samples = epoch, iter(self.dataset)
        if self._samples is None:
            return _StreamEnd
        if self.batch_size is None:
            sample = next(self._samples, _StreamEnd)
            if sample is _StreamEnd:
                self._samples = None
                return _StreamEnd
            return self.collate_fn(sample)
        samples = list(itertools.islice(self._samples, self.batch_size))
        if len(samples) < self.batch_size:
            self._samples = None  # the stream has ended: a short last batch is the last
            if not samples or self.drop_last:
                return _StreamEnd
        return self.collate_fn(samples)


def _until_stream_end(batches):
    for batch in batches:
        if batch is _StreamEnd:
            return
        yield batch


class _WorkerIterator:
    """One epoch of batches fetched by a ``WorkerPool``: indices are drawn and sent here, batches come back."""

    def __init__(self, pool: WorkerPool, index_batches, loader: DataLoader, owns_pool: bool):
        self._pool, self._owns_pool = pool, owns_pool
        self._epoch = pool.start_epoch()
        self._index_batches = index_batches
        self._timeout, self._in_order = loader.timeout, loader.in_order
        self._num_workers = loader.num_workers
        self._workers_left = set(range(loader.num_workers))  # all but those whose stream has ended
        self._next_worker = 0  # batch k goes to worker k % num_workers, skipping those whose stream has ended
        self._worker_of = {}  # batch index -> the worker fetching it
        self._sent, self._next_index, self._exhausted, self._finished = 0, 0, False, False
        self._outstanding, self._ready = set(), {}
        for _ in range(loader.prefetch_factor * loader.num_workers):
            self._send()

    def __iter__(self):
        return self

    def __next__(self):
        if self._finished:
            raise StopIteration
        if self._pool.epoch != self._epoch:
            raise RuntimeError("this iterator of a DataLoader with persistent_workers=True was replaced by a later "
                               "iter(loader): its workers now serve that one")
        while True:
            if self._in_order:
                while self._next_index not in self._ready:
                    if self._next_index not in self._outstanding:
                        return self._stop()
                    self._receive()
                batch_index = self._next_index
                self._next_index += 1
            else:
                while not self._ready:
                    if not self._outstanding:
                        return self._stop()
                    self._receive()
                batch_index = min(self._ready)
            answer = self._ready.pop(batch_index)
            worker = self._worker_of.pop(batch_index)
            try:
                batch = unpack(answer)
            except BaseException:
                self.close()
                raise
            if batch is _StreamEnd:  # that worker's stream has ended: no batch here, and no more tasks for it
                self._workers_left.discard(worker)
                self._send()
                continue
            self._send()
            return batch

    def _send(self):
        if self._exhausted:
            return
        indices = next(self._index_batches, None)
        if indices is None or not self._workers_left:
            self._exhausted = True
            return
        worker = self._next_worker % self._num_workers
        while worker not in self._workers_left:
            self._next_worker += 1
            worker = self._next_worker % self._num_workers
        self._next_worker += 1
        self._pool.submit(worker, self._epoch, self._sent, indices)
        self._worker_of[self._sent] = worker
        self._outstanding.add(self._sent)
        self._sent += 1

    def _receive(self):
        """Wait for one answer of this epoch, checking on the workers (and the timeout) while none comes."""
        deadline = time.monotonic() + self._timeout if self._timeout else None
        while True:
            wait = _POLL_S if deadline is None else max(min(_POLL_S, deadline - time.monotonic()), 0)
            try:
                epoch, batch_index, answer = self._pool.results.get(timeout=wait)
            except queue.Empty:
                try:
                    self._pool.check_alive()
                except RuntimeError:
                    self._finished = True
                    raise
                if deadline is not None and time.monotonic() >= deadline:
                    self._finished = True
                    self._pool.close(wait=False)  # the workers' state is unknown: even persistent ones go
                    raise RuntimeError(f"DataLoader timed out after {self._timeout} seconds waiting for a batch "
                                       "from its workers") from None
                continue
            if epoch == self._epoch:  # else the answer to an abandoned epoch of persistent workers
                self._outstanding.discard(batch_index)
                self._ready[batch_index] = answer
                return

    def _stop(self):
        self.close()
        raise StopIteration

    def close(self):
        """Stop this epoch; the workers stop too unless they persist across epochs."""
        self._finished = True
        if self._owns_pool:
            self._pool.close()

    __del__ = close


class _PrefetchIterator:
    """``fetch(b) for b in index_batches``, each batch fetched on a daemon thread while the previous one is in use.
    The indices are drawn here, in the caller's thread, one batch ahead of the one handed out."""

    def __init__(self, fetch, index_batches):
        self._index_batches = index_batches
        self._tasks, self._results = queue.Queue(), queue.Queue()
        self._pending, self._finished = 0, False
        # The thread gets no reference to this object, so dropping the iterator runs __del__, which stops it.
        threading.Thread(target=_fetch_on_thread, name="nn.data prefetch", daemon=True,
                         args=(fetch, self._tasks, self._results)).start()
        self._request()

    def __iter__(self):
        return self

    def _request(self):
        indices = next(self._index_batches, None)
        if indices is not None:
            self._tasks.put(indices)
            self._pending += 1

    def __next__(self):
        if self._finished or not self._pending:
            self.close()
            raise StopIteration
        self._request()  # the thread fetches the next batch while the caller uses this one
        kind, value = self._results.get()
        self._pending -= 1
        if kind == "error":
            self.close()
            raise value
        if value is _StreamEnd:
            self.close()
            raise StopIteration
        return value

    def close(self):
        """Stop the thread; it finishes at most the batch it is fetching."""
        self._finished = True
        self._tasks.put(None)

    __del__ = close


def _fetch_on_thread(fetch, tasks, results):
    while (indices := tasks.get()) is not None:
        try:
            results.put(("batch", fetch(indices)))
        except BaseException as error:  # handed to the consumer, which raises it
            results.put(("error", error))
            return
