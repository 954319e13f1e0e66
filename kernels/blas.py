"""NumPy's BLAS held to one thread around a call, for a fraction of a microsecond.

Why: after every multi-threaded call, OpenBLAS's worker threads spin for a long while waiting for more
work. Inside a training step the next op is usually one of our Numba kernels, whose own threads then share
the two cores with spinning BLAS threads: a LeNet-5 step on a 2-core machine went from 4.4 ms (BLAS on one
thread) to 27 ms. The GEMMs of a small CNN are too small for the BLAS's threads to pay for that, so the
kernels that call the BLAS on small problems run it on one thread (``kernels/conv2d/README.md``, "Threads").

``one_thread()`` sets OpenBLAS's thread count through its own ``openblas_set_num_threads`` (found with
threadpoolctl once) and restores it afterwards: about 2 us with the Python around it, against about 0.3 ms
for threadpoolctl's ``threadpool_limits``, which re-reads every library's state. Nested and concurrent uses share one
limit (the first sets it, the last restores it). Other BLAS libraries, or an OpenBLAS built on OpenMP
(whose limit is per thread anyway), are left alone.
"""

from __future__ import annotations

import contextlib
import itertools
import threading

_lock = threading.Lock()
_depth = 0
_saved: list[int] = []
_functions = None  # [(get_num_threads, set_num_threads)] of each pthreads OpenBLAS NumPy uses


def _find():
    """The ctypes get/set functions of every pthreads OpenBLAS loaded in the process (NumPy's)."""
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:
        return []
    found = []
    for lib in ThreadpoolController().select(internal_api="openblas").lib_controllers:
        if getattr(lib, "threading_layer", None) == "openmp":
            continue
        for prefix, suffix in itertools.product(("", "scipy_"), ("", "64_", "_64")):
            get = getattr(lib.dynlib, f"{prefix}openblas_get_num_threads{suffix}", None)
            set_ = getattr(lib.dynlib, f"{prefix}openblas_set_num_threads{suffix}", None)
            if get is not None and set_ is not None:
                found.append((get, set_))
                break
    return found


def _openblas():
    global _functions
    if _functions is None:
        _functions = _find()
    return _functions


@contextlib.contextmanager
def one_thread():
    """While the block runs, NumPy's OpenBLAS uses one thread (its workers are not woken)."""
    global _depth, _saved
    functions = _openblas()
    with _lock:
        if _depth == 0:
            _saved = [get() for get, _ in functions]
            for _, set_ in functions:
                set_(1)
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                for (_, set_), threads in zip(functions, _saved):
                    set_(threads)


def threads() -> int:
    """NumPy's OpenBLAS thread count (1 inside ``one_thread``); 1 where no OpenBLAS was found."""
    return max([1] + [get() for get, _ in _openblas()])
