"""The worker processes of ``DataLoader(num_workers=N)``, and ``get_worker_info`` for code running in one.

The main process draws the batches' indices and sends batch ``k`` to worker ``k % N`` (round robin, at most
``prefetch_factor * N`` batches outstanding); each worker fetches and collates its batches and sends them back
pickled, and the main process hands them out in order. Each worker is seeded with ``base_seed + worker_id``
(tensorlib's global generator and Python's ``random``), so random transforms differ between workers and are
reproducible for a given ``base_seed``; ``worker_init_fn(worker_id)`` runs after that seeding.

An exception in a worker is sent back with its traceback and raised in the main process as
"Caught KeyError in DataLoader worker process 1. Original Traceback ...". A worker that dies (killed, or a
crash in native code) is noticed within ``_POLL_S`` and reported as a RuntimeError; a worker whose main
process died exits by itself. Workers ignore Ctrl-C: the main process gets it and stops them.
"""

from __future__ import annotations

import os
import pickle
import queue
import random
import signal
import sys
import time
import traceback
from dataclasses import dataclass

import tensorlib as tl

_POLL_S = 0.2  # how often a waiting process checks that the other side is still alive
_JOIN_S = 2.0  # how long close() waits for the workers to exit before terminating them


@dataclass(frozen=True)
class WorkerInfo:
    """What a worker process knows about itself: its ``id`` in ``0 .. num_workers - 1``, its ``seed`` and its
    copy of the ``dataset``."""

    id: int
    num_workers: int
    seed: int
    dataset: object


_worker_info: WorkerInfo | None = None


def get_worker_info() -> WorkerInfo | None:
    """In a ``DataLoader`` worker process, its ``WorkerInfo``; None in the main process (as PyTorch's)."""
    return _worker_info


class WorkerPool:
    """``num_workers`` processes, each reading tasks ``(epoch, batch_index, indices)`` from its own queue and
    answering ``(epoch, batch_index, pickled result)`` on one shared queue.

    ``epoch`` tells the batches of successive iterations apart: a pool kept across epochs
    (``persistent_workers``) may still be answering tasks of an iteration that was abandoned; the current
    iteration skips those answers. ``dataset`` is what ``get_worker_info().dataset`` gives: the loader's, which
    ``fetch`` reads through or, for a ``DistributedShard``, around (from its base dataset).
    """

    def __init__(self, context, fetch, dataset, num_workers: int, base_seed: int, worker_init_fn):
        self.epoch, self.closed = 0, False
        self.results = context.Queue()
        self._done = context.Event()  # set by close(): workers drop the tasks still queued
        self._tasks = [context.Queue() for _ in range(num_workers)]
        self.processes = []
        for worker_id in range(num_workers):
            process = context.Process(
                target=_worker_loop, name=f"nn.data worker {worker_id}", daemon=True,
                args=(fetch, dataset, self._tasks[worker_id], self.results, self._done, worker_id, num_workers,
                      base_seed + worker_id, worker_init_fn, os.getpid()))
            process.start()
            self.processes.append(process)

    def start_epoch(self) -> int:
        self.epoch += 1
        return self.epoch

    def submit(self, worker_id: int, epoch: int, batch_index: int, indices):
        self._tasks[worker_id].put((epoch, batch_index, indices))

    def check_alive(self):
        """Raise (after closing the pool) if a worker has exited: none does before ``close``."""
        dead = [process for process in self.processes if not process.is_alive()]
        if dead:
            self.close(wait=False)
            exits = ", ".join(f"worker {self.processes.index(p)} (pid {p.pid}, exit code {p.exitcode})" for p in dead)
            raise RuntimeError(f"DataLoader worker exited unexpectedly: {exits}; a negative exit code is the "
                               "signal that killed it")

    def close(self, wait: bool = True):
        """Stop the workers: ask each to exit, wait up to ``_JOIN_S`` (unless not ``wait``: after a timeout or a
        crash they may be stuck), then terminate the ones left."""
        if self.closed:
            return
        self.closed = True
        self._done.set()  # each worker sees it within _POLL_S
        if not sys.is_finalizing():
            # Wake the workers now. Not at interpreter exit: a first put starts the queue's feeder thread,
            # and threads no longer run then, so the put would wait for it forever.
            for tasks in self._tasks:
                tasks.put(None)
        deadline = time.monotonic() + (_JOIN_S if wait else 0)
        for process in self.processes:
            process.join(max(deadline - time.monotonic(), 0))
        for process in self.processes:
            if process.is_alive():
                process.terminate()
                process.join(_JOIN_S)
        for channel in (*self._tasks, self.results):
            channel.cancel_join_thread()  # nothing left to deliver: never block the exit on a pipe
            channel.close()


def _worker_loop(fetch, dataset, tasks, results, done, worker_id, num_workers, seed, worker_init_fn, parent_pid):
    global _worker_info
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    results.cancel_join_thread()  # at exit, do not wait to flush answers that nobody will read
    _worker_info = WorkerInfo(worker_id, num_workers, seed, dataset)
    tl.manual_seed(seed)
    random.seed(seed)
    setup_failure = None
    try:
        if worker_init_fn is not None:
            worker_init_fn(worker_id)
    except Exception:
        setup_failure = _failure(worker_id)  # the answer to every task: the main process raises it at once
    while True:
        try:
            task = tasks.get(timeout=_POLL_S)
        except queue.Empty:
            if done.is_set() or os.getppid() != parent_pid:
                return  # closed without a wake-up (at the main process's exit), or the main process died
            continue
        if task is None or done.is_set():
            return
        epoch, batch_index, indices = task
        results.put((epoch, batch_index, setup_failure or _answer(fetch, indices, worker_id)))


def _answer(fetch, indices, worker_id: int) -> bytes:
    """The batch at ``indices``, or the exception fetching it raised, pickled. Pickled here rather than by the
    queue's feeder thread, which could only print a failure and leave the main process waiting."""
    try:
        batch = fetch(indices)
    except Exception:
        return _failure(worker_id)
    try:
        return pickle.dumps(("batch", batch), protocol=pickle.HIGHEST_PROTOCOL)
    except Exception:
        return _failure(worker_id, " (pickling the batch, to send it to the main process)")


def _failure(worker_id: int, where: str = "") -> bytes:
    """The exception being handled, pickled as (its type, a message holding the worker's traceback)."""
    error_type = sys.exc_info()[0]
    message = (f"Caught {error_type.__name__} in DataLoader worker process {worker_id}{where}.\n"
               f"Original {traceback.format_exc()}")
    try:
        return pickle.dumps(("error", error_type, message))
    except Exception:  # a class the main process cannot import by name (one defined inside a function)
        return pickle.dumps(("error", RuntimeError, message))


class _KeyErrorMessage(str):
    """KeyError shows its argument with repr(), which would print the traceback on one line with \\n escapes."""

    def __repr__(self) -> str:
        return str(self)


def unpack(answer: bytes):
    """A worker's answer: the batch, or the worker's exception raised in this process."""
    kind, *content = pickle.loads(answer)
    if kind == "batch":
        return content[0]
    error_type, message = content
    try:
        error = error_type(_KeyErrorMessage(message) if issubclass(error_type, KeyError) else message)
    except Exception:  # an exception class whose constructor wants other arguments
        error = RuntimeError(message)
    raise error
