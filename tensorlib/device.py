"""Devices: "cpu" keeps data in NumPy arrays, "cuda" in CuPy arrays. The array module follows the data.

Under Numba's CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``, no GPU needed) "cuda" is simulated: its arrays
are ``kernels.device_arrays.SimulatedDeviceArray`` (host memory marked as device memory), so every op
dispatches to the Numba CUDA kernels, run by the simulator, and transfers and device checks are real.

``tensorlib.device`` is this module and, as PyTorch's ``torch.device``, the constructor of ``Device``
objects: ``tl.device("cuda")``, ``tl.device("cuda", 0)``, ``tl.device("cuda:0")``; ``isinstance(d,
tl.device)`` tests for one. ``Tensor.device`` returns one. ``tl.cuda`` answers PyTorch's ``torch.cuda`` queries.
"""

from __future__ import annotations

import importlib.util
import numbers
import sys
import types

import numpy as np

from kernels import device_arrays

DEVICES = ("cpu", "cuda")


def _parse(device, index=None) -> tuple[str, int | None]:
    """(type, index) of "cpu", "cuda", "cuda:N" (a Device, or any object whose ``str`` is one of those) and an
    optional separate index."""
    if isinstance(device, (numbers.Number, np.generic)):
        raise TypeError(f"device must be a str or a device, got {type(device).__name__} {device!r}")
    name = str(device)
    kind, colon, number = name.partition(":")
    if kind not in DEVICES or (colon and not (number.isascii() and number.isdigit())):
        raise ValueError(f"device must be 'cpu', 'cuda' or 'cuda:N', got {device!r}")
    if index is not None:
        if colon:
            raise ValueError(f"device: the type {name!r} must not include an index when index={index!r} is "
                             "passed as well")
        if not isinstance(index, (int, np.integer)) or isinstance(index, bool):
            raise TypeError(f"device: index must be an int, got {type(index).__name__} {index!r}")
        if index < 0:
            raise ValueError(f"device: index must be >= 0, got {index}")
        return kind, int(index)
    return kind, int(number) if colon else None


class Device(str):
    """A device as PyTorch's ``torch.device``: ``.type`` ("cpu" or "cuda") and ``.index`` (None or an int),
    ``repr`` ``device(type='cuda', index=0)``; as a ``str`` its value is its name, ``cpu``, ``cuda`` or ``cuda:0``
    (what ``str()``, f-strings, ``+`` and ``json`` give).

    A process computes on one GPU, CuPy's current device (a distributed run gives each rank its own), so a
    device is identified by its type alone and the index only says which GPU that is. The rule for ``==`` and
    ``hash``, consistent both ways: a device equals every device of its type, whatever the indices
    (``device("cuda") == device("cuda:0") == device("cuda:1")``), and the plain string of its type ("cpu",
    "cuda"), and hashes as that string. So ``tensor.device == "cuda"`` holds and a device finds, and is
    found under, "cpu"/"cuda" keys of a dict or set. A string with an index (``"cuda:0"``) equals no device
    (as in PyTorch, where no device equals any string): compare with ``device("cuda:0")`` or ``.type``."""

    def __new__(cls, type, index=None):  # noqa: A002  (PyTorch's argument name)
        if isinstance(type, Device) and index is None:
            return type
        kind, number = _parse(type, index)
        device = super().__new__(cls, kind if number is None else f"{kind}:{number}")
        device.type, device.index = kind, number
        return device

    def __repr__(self):
        index = "" if self.index is None else f", index={self.index}"
        return f"device(type='{self.type}'{index})"

    def __eq__(self, other):
        if other is self:  # tensors on one device share one Device object: the common case, kept fast
            return True
        if isinstance(other, Device):
            return other.type == self.type
        if isinstance(other, str):
            return str.__eq__(other, self.type)
        return NotImplemented

    def __ne__(self, other):
        equal = self.__eq__(other)
        return equal if equal is NotImplemented else not equal

    def __hash__(self):
        return hash(self.type)

    def __reduce__(self):
        return Device, (self.type, self.index)


CPU = Device("cpu")
_CUDA = {}  # index -> Device("cuda", index), made once each


def device_of(array) -> Device:
    """The Device of an array: cpu, or cuda with the GPU's index (0 under the simulator)."""
    if not device_arrays.is_device_array(array):
        return CPU
    index = getattr(array.device, "id", 0)  # a CuPy array's GPU; a simulated device array's is NumPy's "cpu"
    if index not in _CUDA:
        _CUDA[index] = Device("cuda", index)
    return _CUDA[index]


def normalize_device(device) -> str:
    """"cpu", "cuda" or "cuda:0" (or a Device) -> "cpu" or "cuda"."""
    if device is None:
        return "cpu"
    return _parse(device)[0]


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


def cuda_device_count() -> int:
    """How many GPUs tensors can use here: 0 without one, 1 under the simulator."""
    if cuda_unavailable_reason() is not None:
        return 0
    if device_arrays.simulating():
        return 1
    import cupy

    return cupy.cuda.runtime.getDeviceCount()


def cuda_current_device() -> int:
    """The index of the GPU new "cuda" tensors go to."""
    require_cuda()
    if device_arrays.simulating():
        return 0
    import cupy

    return cupy.cuda.Device().id


def cuda_synchronize() -> None:
    """Wait for the work queued on the current GPU (nothing to wait for under the simulator)."""
    require_cuda()
    if not device_arrays.simulating():
        import cupy

        cupy.cuda.Device().synchronize()


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


# the dtypes CuPy's scatter_add (an atomic add on the GPU) takes
_CUPY_SCATTER_ADD_DTYPES = frozenset(np.dtype(t) for t in (np.int32, np.uint32, np.uint64, np.float16, np.float32,
                                                           np.float64))


def scatter_add(target, index, values):
    """``target[index] += values`` with repeated indices adding up (``numpy.add.at``; cupyx on CuPy).

    On CuPy, whose atomic add takes only some dtypes, an int64 target adds as uint64 (two's-complement addition
    wraps around to the same bits), and narrower integers and bools add in int32 and are cast back (wrapping as
    NumPy's add.at does; a bool is True where its sum is nonzero, NumPy's logical or)."""
    if not type(target).__module__.startswith("cupy"):
        np.add.at(target, index, values)
        return
    import cupy
    import cupyx

    if target.dtype in _CUPY_SCATTER_ADD_DTYPES:
        cupyx.scatter_add(target, index, values)
    elif target.dtype == np.int64:
        as_unsigned = cupy.ascontiguousarray(cupy.asarray(values, dtype=np.int64)).view(np.uint64)
        cupyx.scatter_add(target.view(np.uint64), index, as_unsigned)
    else:
        wide = target.astype(np.int32)
        cupyx.scatter_add(wide, index, cupy.asarray(values).astype(np.int32))
        target[...] = wide.astype(target.dtype)


# ``tl.cuda``: the queries of PyTorch's ``torch.cuda`` that programs make before choosing a device
cuda = types.SimpleNamespace(
    is_available=cuda_is_available, device_count=cuda_device_count, current_device=cuda_current_device,
    get_device_name=cuda_device_name, synchronize=cuda_synchronize,
)


class _CallableModule(types.ModuleType):
    """This module's type: calling the module makes a Device (``tl.device("cuda")``, as ``torch.device``) and
    ``isinstance(d, tl.device)`` tests for one, while ``from tensorlib.device import ...`` works as ever."""

    def __call__(self, type, index=None):  # noqa: A002
        return Device(type, index)

    def __instancecheck__(self, instance):
        return isinstance(instance, Device)


sys.modules[__name__].__class__ = _CallableModule
