"""Devices: "cpu" keeps data in NumPy arrays, "cuda" in CuPy arrays. The array module follows the data.

Under Numba's CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``, no GPU needed) "cuda" is simulated: its arrays
are ``kernels.device_arrays.SimulatedDeviceArray`` (host memory marked as device memory), so every op
dispatches to the Numba CUDA kernels, run by the simulator, and transfers and device checks are real.
"""

from __future__ import annotations

import importlib.util

import numpy as np

from kernels import device_arrays

DEVICES = ("cpu", "cuda")


def normalize_device(device) -> str:
    """"cpu", "cuda" or "cuda:0" (and objects whose ``str`` is one of those) -> "cpu" or "cuda"."""
    if device is None:
        return "cpu"
    name = str(device)
    kind, _, index = name.partition(":")
    if kind not in DEVICES or (index and (kind == "cpu" or not index.isdigit())):
        raise ValueError(f"device must be 'cpu', 'cuda' or 'cuda:N', got {device!r}")
    return kind


def cuda_unavailable_reason() -> str | None:
    """Why tensors cannot live on "cuda" here, or None when they can."""
    if device_arrays.simulating():
        return None
    if importlib.util.find_spec("cupy") is None:
        return "cupy is not installed (pip install 'tensorlib[cuda]')"
    try:
        import cupy

        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as error:  # cupy raises its own runtime errors when no driver is loaded
        return f"no usable CUDA driver ({type(error).__name__}: {error})"
    if count == 0:
        return "no CUDA device found"
    return None


def cuda_is_available() -> bool:
    return cuda_unavailable_reason() is None


def cuda_device_name(index: int | None = None) -> str:
    """The GPU's name as CuPy reports it (bytes in some CuPy versions, str in others); the current device
    by default."""
    import cupy

    props = cupy.cuda.runtime.getDeviceProperties(cupy.cuda.Device().id if index is None else index)
    name = props["name"]
    return name.decode() if isinstance(name, bytes) else str(name)


def require_cuda():
    reason = cuda_unavailable_reason()
    if reason is not None:
        raise RuntimeError(f"device 'cuda' is not usable: {reason}")


def array_device(array) -> str:
    return "cuda" if device_arrays.is_device_array(array) else "cpu"


def array_module(array):
    """cupy for CuPy arrays; the simulator's stand-in for cupy for simulated device arrays; else numpy."""
    return device_arrays.array_module(array)


def module_for(device: str):
    """The array module that creates arrays on ``device``."""
    if device == "cuda":
        require_cuda()
        if device_arrays.simulating():
            return device_arrays.SIMULATED_MODULE
        import cupy

        return cupy
    return np


def move(array, device: str):
    """The array on ``device`` (the same object when it is already there)."""
    if array_device(array) == device:
        return array
    if device == "cuda":
        require_cuda()
        return device_arrays.to_device(array)
    return device_arrays.to_host(array)


def scatter_add(target, index, values):
    """``target[index] += values`` with repeated indices adding up (``numpy.add.at``; cupyx on CuPy)."""
    if type(target).__module__.startswith("cupy"):
        import cupyx

        cupyx.scatter_add(target, index, values)
    else:
        np.add.at(target, index, values)
