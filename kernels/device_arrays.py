"""Arrays on the "cuda" device: CuPy arrays on a real GPU, or ``SimulatedDeviceArray`` under Numba's CUDA
simulator (``NUMBA_ENABLE_CUDASIM=1``), where device memory is host memory.

The simulated array is a NumPy subclass that only marks where the data "lives": NumPy operations keep the
subclass, so every op dispatches to the "cuda" variants (the Numba CUDA kernels, run by the simulator) and
device plumbing (transfers, device checks, ``model.to("cuda")``) is exercised without a GPU.
"""

from __future__ import annotations

import os

import numpy as np


class SimulatedDeviceArray(np.ndarray):
    """A NumPy array standing in for device memory under the CUDA simulator.

    Results of NumPy functions and ufuncs on it stay simulated device arrays (0-d results included), the
    way CuPy keeps results on the GPU.
    """

    def __array_wrap__(self, array, context=None, return_scalar=False):
        return np.asarray(array).view(SimulatedDeviceArray)

    # Reading a device value on the host synchronises with the GPU, which a graph capture forbids: the
    # simulated capture makes these raise where CuPy would (see check_host_access).
    def __bool__(self):
        check_host_access("bool() of a device array")
        return super().__bool__()

    def __float__(self):
        check_host_access("float() of a device array")
        return super().__float__()

    def __int__(self):
        check_host_access("int() of a device array")
        return super().__int__()

    def item(self, *args):
        check_host_access("item() of a device array")
        return super().item(*args)

    def tolist(self):
        check_host_access("tolist() of a device array")
        return super().tolist()

    def __array_function__(self, func, types, args, kwargs):
        result = func(*_host_views(args), **_host_views(kwargs))
        return _device_views(result)

    # CuPy refuses host arrays where device memory meets them: in an assignment's value and as an operand of
    # an elementwise operation (numbers and 0-d arrays pass). Refusing them here too makes the simulator
    # tier catch code that would only fail on a GPU.
    def __setitem__(self, index, value):
        if _is_host_array(value):
            raise ValueError(f"assigning a host {type(value).__name__} into a device array: CuPy refuses it "
                             "(move it to the device first)")
        super().__setitem__(index, value)

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        operands = (inputs[0],) + inputs[2:] if method == "at" else inputs  # at's second argument is an index
        for operand in operands + tuple(kwargs.get("out", ())):
            if _is_host_array(operand):
                raise TypeError(f"{ufunc.__name__}.{method} of a device array with a host "
                                f"{type(operand).__name__}: CuPy refuses it (move it to the device first)")
        out = kwargs.get("out")
        if out is not None:
            kwargs["out"] = _host_views(out)
        result = getattr(ufunc, method)(*_host_views(inputs), **kwargs)
        if out is not None:  # the caller's own arrays, as NumPy and CuPy return them
            return out[0] if len(out) == 1 else out
        return _device_results(result)


def _device_results(value):
    """A ufunc's results as device arrays, 0-d results (NumPy scalars) included."""
    if isinstance(value, (np.ndarray, np.generic)):
        return np.asarray(value).view(SimulatedDeviceArray)
    if isinstance(value, tuple):
        return tuple(_device_results(item) for item in value)
    return value


def _is_host_array(value) -> bool:
    """A host array or sequence that CuPy would not take next to a device array (numbers and 0-d arrays,
    which CuPy takes as scalars, excluded)."""
    if isinstance(value, (list, tuple)):
        return True
    return isinstance(value, np.ndarray) and not isinstance(value, SimulatedDeviceArray) and value.ndim > 0


def _host_views(value):
    if isinstance(value, SimulatedDeviceArray):
        return value.view(np.ndarray)
    if isinstance(value, (list, tuple)):
        return type(value)(_host_views(item) for item in value)
    if isinstance(value, dict):
        return {key: _host_views(item) for key, item in value.items()}
    return value


def _device_views(value):
    if isinstance(value, np.ndarray):
        return value.view(SimulatedDeviceArray)
    if isinstance(value, (list, tuple)) and any(isinstance(item, np.ndarray) for item in value):
        return type(value)(_device_views(item) for item in value)
    return value


class CaptureError(RuntimeError):
    """Work that a CUDA graph cannot capture ran while capturing (a host synchronisation or transfer)."""


_simulated_capture = False


def set_simulated_capture(active: bool):
    """Arm (or disarm) the host-access checks of a simulated graph capture (tensorlib.graphs)."""
    global _simulated_capture
    _simulated_capture = active


def check_host_access(what: str):
    """Raise CaptureError during a simulated graph capture: ``what`` would synchronise the host with the GPU
    (or copy between them), which a real capture refuses with cudaErrorStreamCaptureUnsupported."""
    if _simulated_capture:
        raise CaptureError(f"{what} during a CUDA graph capture: a captured step must not read device values "
                           "on the host or copy between host and device")


def capturing(array=None) -> bool:
    """Whether device work is being captured into a CUDA graph now (on CuPy: the current stream captures).

    ``array``, when given, limits the question to its device: host arrays are never captured."""
    if array is not None and not is_device_array(array):
        return False
    if simulating():
        return _simulated_capture
    import sys

    cupy = sys.modules.get("cupy")
    return cupy is not None and cupy.cuda.get_current_stream().is_capturing()


def simulating() -> bool:
    """Whether Numba's CUDA simulator is on (it must be set before numba is imported)."""
    return os.environ.get("NUMBA_ENABLE_CUDASIM", "0") not in ("", "0")


def is_device_array(array) -> bool:
    return isinstance(array, SimulatedDeviceArray) or type(array).__module__.startswith("cupy")


class SimulatedModule:
    """The simulator's cupy: numpy, with creation functions returning simulated device arrays, so that
    ``array_module(x).zeros(...)`` stays on the simulated device as it stays on the GPU with CuPy."""

    def __getattr__(self, name):
        attribute = getattr(np, name)
        if name in ("asarray", "array"):
            return lambda data, *args, **kwargs: _simulated_upload(attribute, data, *args, **kwargs)
        if name in ("zeros", "ones", "empty", "full", "arange", "eye", "linspace"):
            return lambda *args, **kwargs: np.asarray(attribute(*args, **kwargs)).view(SimulatedDeviceArray)
        return attribute


SIMULATED_MODULE = SimulatedModule()


def _simulated_upload(make, data, *args, **kwargs):
    """``cupy.asarray``/``cupy.array`` in the simulator: host data is a host-to-device copy."""
    if not isinstance(data, SimulatedDeviceArray):
        check_host_access("a host-to-device copy")
    return np.asarray(make(data, *args, **kwargs)).view(SimulatedDeviceArray)


def array_module(array):
    """cupy for CuPy arrays; the simulator's stand-in for cupy (``SimulatedModule``) for simulated device
    arrays; numpy for NumPy arrays and scalars."""
    if isinstance(array, SimulatedDeviceArray):
        return SIMULATED_MODULE
    if type(array).__module__.startswith("cupy"):
        import cupy

        return cupy
    return np


def to_device(array):
    """A device copy of a host array: CuPy on a GPU, a simulated device array under the simulator."""
    if simulating():
        check_host_access("a host-to-device copy")
        return np.array(array, copy=True).view(SimulatedDeviceArray)
    import cupy

    if cupy.cuda.get_current_stream().is_capturing():  # the copy would be recorded from host memory, or refused
        raise CaptureError("a host-to-device copy during a CUDA graph capture: a captured step must not copy "
                           "between host and device")
    return cupy.asarray(array)


def to_host(array) -> np.ndarray:
    if isinstance(array, SimulatedDeviceArray):
        check_host_access("a device-to-host copy")
        return np.array(array.view(np.ndarray), copy=True)
    if type(array).__module__.startswith("cupy"):
        return array.get()
    return np.asarray(array)


def empty(shape, dtype, like):
    """An uninitialised array on the same device as ``like``."""
    if isinstance(like, SimulatedDeviceArray):
        return np.empty(shape, dtype).view(SimulatedDeviceArray)
    if type(like).__module__.startswith("cupy"):
        import cupy

        return cupy.empty(shape, dtype)
    return np.empty(shape, dtype)


def zeros(shape, dtype, like):
    out = empty(shape, dtype, like)
    out[...] = 0
    return out
