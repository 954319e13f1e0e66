"""The global random generator behind ``rand``, ``randn`` and everything that draws (init, dropout, shuffling)."""

from __future__ import annotations

import numpy as np

from tensorlib.device import move, normalize_device
from tensorlib.tensor import Tensor, _size, get_default_dtype, int64

_generator = np.random.default_rng(0)


def manual_seed(seed: int) -> np.random.Generator:
    """Reseed the global generator in place (holders of it see the new seed); same seed, same draws."""
    _generator.bit_generator.state = np.random.PCG64(int(seed)).state
    return _generator


def default_generator() -> np.random.Generator:
    return _generator


def get_rng_state() -> dict:
    return _generator.bit_generator.state


def set_rng_state(state: dict):
    _generator.bit_generator.state = state


def _drawn(array, dtype, device, requires_grad):
    array = array.astype(dtype or get_default_dtype(), copy=False)
    if requires_grad and array.dtype.kind != "f":
        raise RuntimeError(f"only floating-point tensors can require gradients, got dtype {array.dtype}")
    device = normalize_device(device)
    data = move(array, device)
    return Tensor._make(data, requires_grad=requires_grad)


def _float_dtype(dtype):
    """float32 and float64 are drawn directly in that precision; anything else is drawn in float64."""
    dtype = np.dtype(dtype or get_default_dtype())
    return dtype if dtype in (np.float32, np.float64) else np.dtype(np.float64)


def rand(*size, generator=None, dtype=None, device=None, requires_grad=False) -> Tensor:
    """Uniform on [0, 1)."""
    values = (generator or _generator).random(_size(size), dtype=_float_dtype(dtype))
    return _drawn(values, dtype, device, requires_grad)


def randn(*size, generator=None, dtype=None, device=None, requires_grad=False) -> Tensor:
    """Standard normal."""
    values = (generator or _generator).standard_normal(_size(size), dtype=_float_dtype(dtype))
    return _drawn(values, dtype, device, requires_grad)


def randint(low, high=None, size=(), generator=None, dtype=None, device=None) -> Tensor:
    """Integers uniform on [low, high)."""
    if high is None:
        low, high = 0, low
    return _drawn((generator or _generator).integers(low, high, size=_size((size,))), dtype or int64, device, False)


def randperm(n: int, generator=None, dtype=None, device=None) -> Tensor:
    return _drawn((generator or _generator).permutation(int(n)), dtype or int64, device, False)
