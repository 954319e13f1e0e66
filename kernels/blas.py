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

``gemm(dtype)`` is the same OpenBLAS's ``cblas_sgemm`` / ``cblas_dgemm`` as a ctypes function, for Numba
kernels that run GEMMs on their own (OpenMP) threads, inside ``one_thread``: ``kernels/conv2d/winograd.py``.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import itertools
import threading

import numpy as np

_lock = threading.Lock()
_depth = 0
_saved: list[int] = []
_functions = None  # [(get_num_threads, set_num_threads)] of each pthreads OpenBLAS NumPy uses
_NAMINGS = list(itertools.product(("", "scipy_"), ("", "64_", "_64")))  # (prefix, suffix) of the symbols


def _libraries():
    """The pthreads OpenBLAS libraries loaded in the process (NumPy's), as threadpoolctl finds them."""
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:
        return []
    controllers = ThreadpoolController().select(internal_api="openblas").lib_controllers
    return [lib for lib in controllers if getattr(lib, "threading_layer", None) != "openmp"]


def _find():
    """The ctypes get/set functions of every pthreads OpenBLAS loaded in the process (NumPy's)."""
    found = []
    for lib in _libraries():
        for prefix, suffix in _NAMINGS:
            get = getattr(lib.dynlib, f"{prefix}openblas_get_num_threads{suffix}", None)
            set_ = getattr(lib.dynlib, f"{prefix}openblas_set_num_threads{suffix}", None)
            if get is not None and set_ is not None:
                found.append((get, set_))
                break
    return found


@functools.lru_cache(maxsize=2)
def gemm(dtype):
    """``cblas_?gemm(order, trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc)`` of NumPy's
    OpenBLAS for float32 or float64 as a ctypes function Numba can call (pointers as integers), or None
    where there is none. Its integers are 64-bit in the ILP64 builds NumPy ships (symbols ending 64_)."""
    letter = {np.dtype(np.float32): "s", np.dtype(np.float64): "d"}.get(np.dtype(dtype))
    if letter is None:
        return None
    scalar = ctypes.c_float if letter == "s" else ctypes.c_double
    for lib in _libraries():
        for prefix, suffix in _NAMINGS:
            function = getattr(lib.dynlib, f"{prefix}cblas_{letter}gemm{suffix}", None)
            if function is None:
                continue
            integer = ctypes.c_int64 if "64" in suffix else ctypes.c_int
            pointer = ctypes.c_void_p
            function.argtypes = [ctypes.c_int] * 3 + [integer] * 3 + [scalar, pointer, integer, pointer, integer,
                                                                      scalar, pointer, integer]
            function.restype = None
            return function
    return None


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
