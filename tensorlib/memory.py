"""Host memory: keep the buffers of freed arrays in the process instead of handing them back to the OS.

A training step allocates and frees the same large arrays (activations, gradients, temporaries of 0.1-30 MB)
every step. glibc's malloc serves such sizes with fresh ``mmap`` pages, or from the top of its heap and then
returns that top to the OS once more than the trim threshold is free, so each step faults its pages in (and
the kernel zeroes them) again: in a LeNet-5 step on the CPU about 0.9 ms of 6.6 (the README's "Host
memory" has the measurement). Raising the two thresholds keeps the freed memory in the heap for the next
step.

``import tensorlib`` applies ``tune_host_allocator()`` once; ``TENSORLIB_HOST_ALLOCATOR=system`` in the
environment leaves malloc as it is. It is process-wide: the price is that up to ``TRIM_THRESHOLD`` of
freed memory stays with the process rather than going back to the OS.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

# glibc's mallopt parameters (malloc.h) and the limits applied here.
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
MMAP_THRESHOLD = 32 << 20  # glibc's largest allowed value on 64-bit (HEAP_MAX_SIZE / 2)
TRIM_THRESHOLD = 256 << 20
ENV = "TENSORLIB_HOST_ALLOCATOR"

_applied = None


def tune_host_allocator(mmap_threshold: int = MMAP_THRESHOLD, trim_threshold: int = TRIM_THRESHOLD) -> bool:
    """Allocations below ``mmap_threshold`` bytes come from malloc's heap, and up to ``trim_threshold`` bytes of
    freed heap stay with the process. True where glibc's ``mallopt`` accepted both; False elsewhere (another
    C library or OS: nothing is changed)."""
    for name, value in (("mmap_threshold", mmap_threshold), ("trim_threshold", trim_threshold)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{name} must be a non-negative int of bytes, got {value!r}")
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
        libc.gnu_get_libc_version  # glibc only: musl's mallopt accepts nothing
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, mmap_threshold)) and bool(mallopt(M_TRIM_THRESHOLD, trim_threshold))


def host_allocator_tuned() -> bool | None:
    """What ``import tensorlib`` did: True (tuned), False (not possible here), None (left alone by ``ENV``)."""
    return _applied


def _apply_at_import():
    global _applied
    setting = os.environ.get(ENV, "tuned")
    if setting not in ("tuned", "system"):
        raise ValueError(f"{ENV} must be 'tuned' or 'system', got {setting!r}")
    _applied = tune_host_allocator() if setting == "tuned" else None
