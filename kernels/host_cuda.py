"""CUDA C kernels run on the CPU, for testing them without a GPU.

Numba's simulator runs the Numba CUDA kernels on the host; nothing like it runs the CUDA C kernels that go to
the GPU through ``cupy.RawModule``. This module does: ``module(path)`` compiles a ``.cu`` file with the host's
C++ compiler and ``host_cuda.h`` forced in front of it (the header maps the CUDA keywords and built-in
variables to host code, runs each block's threads as fibers with real barriers, and emulates the
tensor-core and asynchronous-copy instructions the TF32 GEMMs use), and returns an object with CuPy's calling convention:
``module(path).get_function(name)(grid, block, args)``. So the launchers in ``kernels/*/cupy_cuda.py`` run
unchanged on NumPy arrays when their ``raw_module`` is replaced by this ``module`` (the host-emulation test
tier does that).

A launch checks what CuPy passes on unchecked:

- each argument against the kernel's parameter: an array for a pointer, of the pointed-to element size and
  C-contiguous (a kernel reads a strided view as if it were dense); a NumPy scalar of the parameter's exact
  width and kind for a value (an ``np.int64`` where the kernel takes ``int`` shifts every later argument);
- the launch configuration (at most 1024 threads a block, grid dimensions within the hardware limits);
- memory next to every array: each array is copied into a buffer with 4 KiB guard bands of 0xFF bytes
  (NaN for floats) on both sides, at the same address alignment modulo 64, so a write past either end is
  reported and a read past it turns the result into NaN. Arrays that share memory are passed as they are.

Asynchronous copies (``cp.async``) complete as late as the PTX ISA allows (a kernel that reads a staged
tile before ``cp.async.wait_group`` reads stale data), or inside ``early_copies()`` as early as it allows
(a kernel that issues the next copy into a buffer before every thread has read it overwrites the data under
them). A pipelined kernel is right only if it is right both ways.

The machine code is cached on disk beside the generated Numba kernels (``kernels/cache.py``), named by a
hash of the source, the header, the options and the compiler, and written atomically.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path

import numpy as np

HEADER = Path(__file__).with_name("host_cuda.h")
CXX_FLAGS = ("-std=c++17", "-O2", "-fPIC", "-fno-strict-aliasing", "-ffp-contract=off", "-w")
GUARD_BYTES = 4096
MAX_GRID = (2**31 - 1, 65535, 65535)
MAX_BLOCK = (1024, 1024, 64)
_KERNEL = re.compile(r'extern\s+"C"\s+__attribute__\(\(used\)\)\s+void\s+(\w+)\s*\(')
_LOCK = threading.Lock()  # the emulator's scheduler is global state: one launch at a time
_copies = threading.local()


@contextlib.contextmanager
def early_copies():
    """Within the block, cp.async copies complete when issued instead of when waited for."""
    previous = getattr(_copies, "early", False)
    _copies.early = True
    try:
        yield
    finally:
        _copies.early = previous


def compiler() -> str | None:
    """The C++ compiler: ``$CXX``, else g++ or c++ on the PATH; None when there is none."""
    for name in (os.environ.get("CXX"), "g++", "c++"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


def available() -> tuple[bool, str]:
    """Whether CUDA C can run on this host, and if not, why."""
    cxx = compiler()
    if cxx is None:
        return False, "no C++ compiler (set CXX, or install g++) to run the CUDA C kernels on the host"
    return True, cxx


@functools.lru_cache(maxsize=None)
def _compiler_version(cxx: str) -> str:
    return subprocess.run([cxx, "--version"], capture_output=True, text=True, check=True).stdout


def _check_options(options) -> list[str]:
    for option in options:
        if not (option.startswith("-D") or option.startswith("-I")):
            raise ValueError(f"options: the host emulation takes -D and -I options only, got {option!r}")
    return list(options)


def _run(command):
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"{Path(command[0]).name} failed ({' '.join(command)}):\n{result.stderr[-4000:]}")
    return result.stdout


def _wrappers(source: Path, names) -> str:
    lines = [f'#include "{source.resolve()}"']
    for name in names:
        lines += [
            f'extern "C" int tl_host_launch_{name}(const unsigned* g, const unsigned* b, void** a) '
            f"{{ return tl_host::launch(&{name}, g, b, a); }}",
            f'extern "C" const char* tl_host_signature_{name}() {{ return tl_host::signature(&{name}); }}',
        ]
    return "\n".join(lines) + "\n"


def _build(source: Path, options: list[str]) -> tuple[Path, list[str]]:
    """The shared library of ``source`` (compiled, or found in the cache) and its kernel names."""
    cxx = compiler()
    if cxx is None:
        raise RuntimeError(available()[1])
    base = [cxx, *CXX_FLAGS, "-x", "c++", "-include", str(HEADER), *options]
    names = sorted(set(_KERNEL.findall(_run([*base, "-E", "-P", str(source)]))))
    if not names:
        raise RuntimeError(f"{source}: no extern \"C\" __global__ kernels found")
    digest = hashlib.sha256()
    for part in (source.read_bytes(), HEADER.read_bytes(), "\0".join(base[1:]).encode(),
                 _compiler_version(cxx).encode()):
        digest.update(part)
    from kernels import cache

    folder = cache.directory() or Path(tempfile.gettempdir())
    library = folder / f"host-{source.stem}-{digest.hexdigest()[:16]}.so"
    if not library.exists():
        with tempfile.TemporaryDirectory() as scratch:
            wrapper = Path(scratch) / "launchers.cpp"
            wrapper.write_text(_wrappers(source, names))
            built = Path(scratch) / library.name
            _run([*base, "-shared", str(wrapper), "-o", str(built)])
            partial = library.with_name(f".{library.name}.{os.getpid()}")
            shutil.copyfile(built, partial)
            os.replace(partial, library)
    return library, names


class HostModule:
    """A ``.cu`` file compiled for the host: ``get_function(name)`` as on ``cupy.RawModule``."""

    def __init__(self, path, options=()):
        self.path = Path(path)
        library, self.names = _build(self.path, _check_options(options))
        self._library = ctypes.CDLL(str(library))
        self._library.tl_host_error.restype = ctypes.c_char_p
        self._library.tl_host_early_copies.argtypes = [ctypes.c_int]

    def get_function(self, name: str) -> "HostKernel":
        if name not in self.names:
            raise ValueError(f"{self.path.name} has no kernel {name!r}; its kernels: {', '.join(self.names)}")
        return HostKernel(self, name)


@functools.lru_cache(maxsize=None)
def _module(path: str, options: tuple[str, ...]) -> HostModule:
    return HostModule(path, options)


def module(path, options=()) -> HostModule:
    """The host build of the ``.cu`` file ``path``: a stand-in for ``kernels.cuda_tools.raw_module``."""
    return _module(str(path), tuple(options))


def _dims(value, name: str, limits) -> tuple[int, int, int]:
    dims = (value,) if isinstance(value, (int, np.integer)) else tuple(value)
    if not 1 <= len(dims) <= 3 or not all(isinstance(d, (int, np.integer)) for d in dims):
        raise TypeError(f"{name} must be an int or a tuple of 1 to 3 ints, got {value!r}")
    dims = tuple(int(d) for d in dims) + (1,) * (3 - len(dims))
    for axis, (d, limit) in enumerate(zip(dims, limits)):
        if not 1 <= d <= limit:
            raise ValueError(f"{name}[{axis}] = {d}: expected 1 to {limit}")
    return dims


class _Guarded:
    """An array copied into a buffer with guard bands on both sides (same alignment modulo 64)."""

    def __init__(self, array: np.ndarray):
        self.array = array
        nbytes = array.nbytes
        self.buffer = np.full(nbytes + 2 * GUARD_BYTES + 64, 0xFF, dtype=np.uint8)
        shift = (array.ctypes.data - self.buffer.ctypes.data - GUARD_BYTES) % 64
        self.start = GUARD_BYTES + shift
        self.inner = self.buffer[self.start:self.start + nbytes]
        self.inner[...] = array.reshape(-1).view(np.uint8)
        self.pointer = self.inner.ctypes.data

    def finish(self, name: str, index: int):
        before, after = self.buffer[:self.start], self.buffer[self.start + self.array.nbytes:]
        for side, guard in (("before", before), ("after", after)):
            if np.any(guard != 0xFF):
                hit = np.flatnonzero(guard != 0xFF)
                offset = (hit[-1] - len(guard) if side == "before" else hit[0]) // self.array.itemsize
                raise RuntimeError(f"{name}: argument {index} was written out of bounds, {side} the array "
                                   f"(element {offset:+d} from its {'start' if side == 'before' else 'end'})")
        if self.array.flags.writeable:
            # the kernel's writes land in the caller's array (a plain view: under the CUDA simulator it is a
            # simulated device array, which refuses host values from anyone but the device itself)
            self.array.view(np.ndarray).reshape(-1).view(np.uint8)[...] = self.inner


class HostKernel:
    """One kernel of a HostModule, called as CuPy's RawKernel: ``kernel(grid, block, args)``."""

    def __init__(self, module: HostModule, name: str):
        self.name = name
        self._launch = module._library[f"tl_host_launch_{name}"]
        self._launch.restype = ctypes.c_int
        self._launch.argtypes = [ctypes.POINTER(ctypes.c_uint), ctypes.POINTER(ctypes.c_uint),
                                 ctypes.POINTER(ctypes.c_void_p)]
        signature = module._library[f"tl_host_signature_{name}"]
        signature.restype = ctypes.c_char_p
        self.parameters = signature().decode().split(",")
        self._error = module._library.tl_host_error
        self._early_copies = module._library.tl_host_early_copies

    def __call__(self, grid, block, args, shared_mem=0, stream=None):
        grid, block = _dims(grid, "grid", MAX_GRID), _dims(block, "block", MAX_BLOCK)
        if block[0] * block[1] * block[2] > 1024:
            raise ValueError(f"block {block}: at most 1024 threads a block")
        if shared_mem:
            raise ValueError("shared_mem: dynamic shared memory is not emulated")
        args = tuple(args)
        if len(args) != len(self.parameters):
            raise TypeError(f"{self.name} takes {len(self.parameters)} arguments ({','.join(self.parameters)}), "
                            f"got {len(args)}")
        arrays = [a for a in args if isinstance(a, np.ndarray)]
        shared = any(np.shares_memory(a, b) for i, a in enumerate(arrays) for b in arrays[i + 1:])
        values, guarded = [], []
        for index, (arg, kind) in enumerate(zip(args, self.parameters)):
            value, guard = self._argument(index, arg, kind, guard=not shared)
            values.append(value)
            if guard is not None:
                guarded.append((index, guard))
        pointers = (ctypes.c_void_p * len(values))(*(ctypes.cast(ctypes.byref(v), ctypes.c_void_p) for v in values))
        with _LOCK:
            self._early_copies(int(getattr(_copies, "early", False)))
            status = self._launch((ctypes.c_uint * 3)(*grid), (ctypes.c_uint * 3)(*block), pointers)
            message = self._error().decode()
        if status != 0:
            raise RuntimeError(f"{self.name} grid {grid} block {block}: {message}")
        for index, guard in guarded:
            guard.finish(self.name, index)

    def _argument(self, index: int, arg, kind: str, guard: bool):
        what, size = kind[0], int(kind[1:])
        where = f"{self.name}: argument {index} ({kind})"
        if what == "p":
            if isinstance(arg, np.ndarray):
                if size and arg.itemsize != size:
                    raise TypeError(f"{where}: the kernel reads {size}-byte elements, got a {arg.dtype} array")
                if not arg.flags.c_contiguous:
                    raise ValueError(f"{where}: arrays passed to a kernel must be C-contiguous, got strides "
                                     f"{arg.strides} for shape {arg.shape}")
                if guard and arg.size:
                    wrapped = _Guarded(arg)
                    return ctypes.c_void_p(wrapped.pointer), wrapped
                return ctypes.c_void_p(arg.ctypes.data if arg.size else None), None
            if isinstance(arg, np.integer) and arg.itemsize == 8 and int(arg) == 0:
                return ctypes.c_void_p(None), None  # a null pointer, passed as 8 bytes of zeros
            raise TypeError(f"{where}: expected an array (or an 8-byte NumPy zero for a null pointer), "
                            f"got {type(arg).__name__} {arg!r}")
        if what in "if":
            expected = np.integer if what == "i" else np.floating
            if not isinstance(arg, expected) or arg.itemsize != size:
                raise TypeError(f"{where}: expected a NumPy {'integer' if what == 'i' else 'float'} scalar of "
                                f"{size} bytes (the kernel's parameter width), got {type(arg).__name__} {arg!r}")
            return _scalar(arg), None
        raise TypeError(f"{where}: parameters passed by value as structs are not supported")


def _scalar(value: np.generic):
    ctype = {("i", 1): ctypes.c_int8, ("i", 2): ctypes.c_int16, ("i", 4): ctypes.c_int32, ("i", 8): ctypes.c_int64,
             ("u", 1): ctypes.c_uint8, ("u", 2): ctypes.c_uint16, ("u", 4): ctypes.c_uint32,
             ("u", 8): ctypes.c_uint64, ("f", 4): ctypes.c_float, ("f", 8): ctypes.c_double}
    return ctype[(value.dtype.kind, value.itemsize)](value.item())
