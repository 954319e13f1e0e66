"""Backend settings, as PyTorch's ``torch.set_num_threads`` and ``torch.backends``: the CPU threads the kernels
use, and the cuDNN flags ported programs set.

``tl.set_num_threads(n)`` sets the threads of the Numba CPU kernels (conv, pooling; in the calling thread, as
Numba keeps the setting per thread) and of NumPy's BLAS (matmul, the GEMMs of convolutions; process-wide,
through threadpoolctl). Numba's pool has ``NUMBA_NUM_THREADS`` threads (the cores, by default): a larger n
uses them all there, and ``get_num_threads()`` answers the threads Numba uses.

``tl.backends.cudnn.benchmark``, ``.deterministic`` and ``.enabled`` are plain flags that can be read and set
and have no effect: tensorlib never calls cuDNN (its convolutions run on its own kernels, whose results do
not depend on a search among algorithms)."""

from __future__ import annotations

import numbers

import numpy as np


def set_num_threads(n: int) -> None:
    """Use ``n`` threads (a positive int) for the CPU kernels and the BLAS."""
    if not isinstance(n, (numbers.Integral, np.integer)) or isinstance(n, (bool, np.bool_)):
        raise TypeError(f"set_num_threads: n must be an int, got {type(n).__name__} {n!r}")
    if n < 1:
        raise ValueError(f"set_num_threads: n must be a positive int, got {n}")
    import numba
    from threadpoolctl import threadpool_limits

    numba.set_num_threads(min(int(n), numba.config.NUMBA_NUM_THREADS))
    threadpool_limits(limits=int(n), user_api="blas")


def get_num_threads() -> int:
    """The number of threads the Numba CPU kernels use (in the calling thread)."""
    import numba

    return numba.get_num_threads()


class _CudnnFlags:
    """PyTorch's ``torch.backends.cudnn`` flags, settable and without effect here (cuDNN is never called)."""

    def __init__(self):
        self.benchmark = False
        self.deterministic = False
        self.enabled = True

    @staticmethod
    def is_available() -> bool:
        """False: tensorlib does not use cuDNN."""
        return False

    def __repr__(self):
        return (f"cudnn(benchmark={self.benchmark}, deterministic={self.deterministic}, enabled={self.enabled}; "
                "flags without effect: tensorlib never calls cuDNN)")


cudnn = _CudnnFlags()
