"""Shared plumbing for the CUDA variants of every op family: compile reports, launch arithmetic, and the
bridge between CuPy arrays/streams and Numba kernels.

Compile reports (the "compile" test tier) need no GPU and no driver:

- ``numba_kernel_report(kernel, signature)`` compiles a Numba kernel to PTX with ``numba.cuda.compile_ptx``
  and links it for sm_90 with nvJitLink (the machine's ``ptxas`` may be older than the PTX ISA that
  numba-cuda's NVVM emits; nvJitLink ships in the same wheels as NVVM, so the two always match).
- ``cuda_source_report(path)`` compiles a ``.cu`` file to a cubin with NVRTC (the compiler CuPy uses at
  run time, so what is reported is what runs), or with ``nvcc`` when the NVRTC bindings are missing.

Both return rows ``dict(name, registers, spill_stores, spill_loads, shared_bytes, local_bytes)``;
``format_report(rows)`` renders them as a table.

Numba kernels are written as factories ``f(element_type, *config)`` decorated with ``kernel_factory(signature)``
and compiled once per (dtype, config) by ``compile_kernel``; ``launch`` and ``contiguous`` are shared by every
family's launchers. Launching Numba kernels on CuPy arrays: ``as_numba_array(x)`` wraps a CuPy array without the implicit
stream synchronisation Numba performs by default for foreign arrays (what ``NUMBA_CUDA_ARRAY_INTERFACE_SYNC=0``
does globally), and ``numba_stream()`` is CuPy's current stream seen by Numba. Launching on that stream keeps
stream order with the CuPy work before and after the kernel, so no sync is needed; launching elsewhere
would need one. Under the simulator both are the identity / the default stream.
"""

from __future__ import annotations

import functools
import math
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from kernels.device_arrays import array_module, simulating

ARCH = "sm_90"


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def grid_1d(n: int, block: int) -> int:
    """Blocks of ``block`` threads covering ``n`` items, at least one (a zero-size grid is a launch error)."""
    return max(1, ceil_div(n, block))


MAX_GRID_Z = 65535  # the hardware limit on gridDim.z (and y); batch launchers split larger batches


def as_batch(x, rows: int, cols: int, batch: tuple[int, ...]):
    """``x`` (..., rows, cols) as a C-contiguous (B, rows, cols) array for the broadcast ``batch`` shape.

    An operand with a single matrix stays (1, rows, cols) and is shared by every batch entry (the kernels
    read entry 0 or use a batch stride of 0), so the common ``(B, M, K) @ (K, N)`` copies nothing; only a
    batch that broadcasts partly, e.g. (2, 1) against (1, 3), is materialised.
    """
    xp = array_module(x)
    if math.prod(x.shape[:-2]) == 1:
        x = x.reshape(1, rows, cols)
    elif tuple(x.shape[:-2]) == tuple(batch):
        x = x.reshape(-1, rows, cols)
    else:
        x = xp.broadcast_to(x, tuple(batch) + (rows, cols)).reshape(-1, rows, cols)
    return xp.ascontiguousarray(x)


def batch_chunks(batch: int):
    """``(start, stop)`` ranges of at most MAX_GRID_Z batch entries, one launch each."""
    return [(z, min(z + MAX_GRID_Z, batch)) for z in range(0, batch, MAX_GRID_Z)]


# --- Numba launches on CuPy memory -------------------------------------------------------------------------

def as_numba_array(x):
    """``x`` as an array a Numba kernel accepts: CuPy arrays are wrapped without a stream sync."""
    if type(x).__module__.startswith("cupy"):
        from numba import cuda

        return cuda.as_cuda_array(x, sync=False)
    if isinstance(x, np.ndarray) and not x.flags.writeable:
        return x.copy()  # the simulator copies every array argument back after a launch: a read-only view fails
    return x


def numba_stream():
    """CuPy's current stream as a Numba stream (0, the default stream, under the simulator)."""
    if simulating():
        return 0
    import cupy
    from numba import cuda

    return cuda.external_stream(cupy.cuda.get_current_stream().ptr)


# --- CUDA C through CuPy -----------------------------------------------------------------------------------

def kernel_factory(signature: str):
    """Decorator for a kernel factory ``f(element_type, *config) -> kernel body``: attaches its signature
    template (``{t}`` stands for the element type), so the kernel compiles eagerly with explicit types."""

    def attach(factory):
        factory.signature = signature
        return factory

    return attach


@functools.lru_cache(maxsize=None)
def compile_kernel(factory, dtype, *config):
    """The factory's kernel for ``dtype`` (float32 or float64) and ``config``, compiled once."""
    import numba
    from numba import cuda

    element = {np.dtype(np.float32): numba.float32, np.dtype(np.float64): numba.float64}.get(np.dtype(dtype))
    if element is None:
        raise TypeError(f"{factory.__name__}: the Numba CUDA kernels take float32 or float64, got {np.dtype(dtype)}")
    return cuda.jit(factory.signature.format(t=element.name))(factory(element, *config))


def launch(kernel, grid, block, *args):
    """Launch on CuPy's current stream (stream order replaces a sync), CuPy arrays wrapped for Numba."""
    kernel[grid, block, numba_stream()](*(as_numba_array(a) for a in args))


def contiguous(array):
    """A C-contiguous array on the same device (a simulated device array stays one)."""
    if array.flags.c_contiguous:
        return array
    if isinstance(array, np.ndarray):
        return np.ascontiguousarray(array).view(type(array))
    return array.copy()


def data_pointer(array) -> int:
    """The address of an array's first element: CuPy's device pointer, or NumPy's host pointer (the CUDA C
    launchers also run on NumPy arrays, on the host, in the emulation tests)."""
    if type(array).__module__.startswith("cupy"):
        return array.data.ptr
    return array.ctypes.data


def read_source(path) -> str:
    return Path(path).read_text()


@functools.lru_cache(maxsize=None)
def _raw_module(device_id: int, path: str, options: tuple[str, ...]):
    import cupy

    return cupy.RawModule(code=read_source(path), options=options)


def raw_module(path, options=()):
    """The ``cupy.RawModule`` of the ``.cu`` file ``path``, compiled once per (device, path, options).

    The module compiles lazily on its first ``get_function``; CuPy also keeps an on-disk cache of cubins.
    """
    import cupy

    return _raw_module(cupy.cuda.Device().id, str(path), tuple(options))


# --- compile reports ---------------------------------------------------------------------------------------

def _nvrtc():
    try:
        from cuda.bindings import nvrtc

        return nvrtc
    except ImportError:
        return None


def _nvjitlink():
    try:
        from cuda.bindings import nvjitlink

        return nvjitlink
    except ImportError:
        return None


def compile_available() -> tuple[bool, str]:
    """Whether both compile reports can run here, and if not, why."""
    if simulating():
        return False, "NUMBA_ENABLE_CUDASIM=1: the simulator replaces the CUDA compiler"
    try:
        from numba import cuda
    except ImportError:
        return False, "numba-cuda is not installed"
    if not hasattr(cuda, "compile_ptx"):
        return False, "this numba has no cuda.compile_ptx"
    if _nvjitlink() is None:
        return False, "cuda.bindings.nvjitlink is missing (install numba-cuda[cu13])"
    if _nvrtc() is None and shutil.which("nvcc") is None:
        return False, "neither cuda.bindings.nvrtc nor nvcc is available to compile CUDA C"
    return True, "numba-cuda + nvJitLink; " + ("NVRTC" if _nvrtc() is not None else "nvcc")


_ENTRY = re.compile(r"Compiling entry function '([^']+)'")
_SPILLS = re.compile(r"(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads")
_PTXAS_USAGE = re.compile(r"Used (\d+) registers(?:.*?(\d+) bytes smem)?")
_LINK_USAGE = re.compile(r"used (\d+) registers.*?(\d+) bytes lmem")
_PTX_SHARED = re.compile(r"^\s*(?:\.visible\s+|\.extern\s+)?\.shared\s+\.align\s+\d+\s+\.b8\s+\w+\[(\d+)\];", re.M)


def _parse_ptxas_log(log: str) -> list[dict]:
    """Rows from ``ptxas -v`` output: one per "Compiling entry function" section."""
    parts = _ENTRY.split(log)
    names, bodies = parts[1::2], parts[2::2]
    out = []
    for name, body in zip(names, bodies):
        spills = _SPILLS.search(body)
        usage = _PTXAS_USAGE.search(body)
        out.append(
            dict(
                name=name,
                registers=int(usage.group(1)) if usage else 0,
                spill_stores=int(spills.group(2)) if spills else 0,
                spill_loads=int(spills.group(3)) if spills else 0,
                shared_bytes=int(usage.group(2) or 0) if usage else 0,
                local_bytes=int(spills.group(1)) if spills else 0,
            )
        )
    return out


def numba_kernel_report(kernel, signature, cc=(9, 0)) -> dict:
    """Registers, spills, shared and local memory of a Numba CUDA kernel compiled for ``cc``.

    ``kernel`` is a Python function or a ``cuda.jit`` dispatcher; ``signature`` a Numba signature (string or
    object). Shared memory is the static shared arrays declared in the PTX, the figure ``ptxas -v`` gives
    for CUDA C (nvJitLink's own figure adds the 1 KiB per block that sm_80+ reserve for the system).
    """
    from numba import cuda

    nvjitlink = _nvjitlink()
    pyfunc = getattr(kernel, "py_func", kernel)
    ptx, _ = cuda.compile_ptx(pyfunc, signature, cc=cc)
    arch = f"-arch=sm_{cc[0]}{cc[1]}"
    handle = nvjitlink.create(2, [arch, "-verbose"])
    try:
        nvjitlink.add_data(handle, nvjitlink.InputType.PTX, ptx.encode(), len(ptx), pyfunc.__name__)
        try:
            nvjitlink.complete(handle)
        except nvjitlink.nvJitLinkError as error:
            size = nvjitlink.get_error_log_size(handle)
            buf = bytearray(size)
            nvjitlink.get_error_log(handle, buf)
            raise RuntimeError(f"nvJitLink failed for {pyfunc.__qualname__}: {buf.decode(errors='replace')}") from error
        size = nvjitlink.get_info_log_size(handle)
        buf = bytearray(size)
        nvjitlink.get_info_log(handle, buf)
    finally:
        nvjitlink.destroy(handle)
    log = buf.decode(errors="replace").rstrip("\x00")
    ptxas_row = _parse_ptxas_log(log)[0]
    link = _LINK_USAGE.search(log)
    return dict(
        name=f"{pyfunc.__module__}.{pyfunc.__qualname__}",
        registers=int(link.group(1)) if link else ptxas_row["registers"],
        spill_stores=ptxas_row["spill_stores"],
        spill_loads=ptxas_row["spill_loads"],
        shared_bytes=sum(int(size) for size in _PTX_SHARED.findall(ptx)),
        local_bytes=int(link.group(2)) if link else ptxas_row["local_bytes"],
    )


def _nvrtc_compile_log(source: str, name: str, options: list[str]) -> str:
    nvrtc = _nvrtc()

    def check(result, what):
        status = result[0] if isinstance(result, tuple) else result
        if status != nvrtc.nvrtcResult.NVRTC_SUCCESS:
            raise RuntimeError(f"NVRTC {what} failed: {status!r}")
        return result

    _, program = check(nvrtc.nvrtcCreateProgram(source.encode(), name.encode(), 0, [], []), "create")
    try:
        encoded = [opt.encode() for opt in options]
        status = nvrtc.nvrtcCompileProgram(program, len(encoded), encoded)[0]
        _, size = check(nvrtc.nvrtcGetProgramLogSize(program), "log size")
        buf = b" " * size
        check(nvrtc.nvrtcGetProgramLog(program, buf), "log")
        log = buf.decode(errors="replace").rstrip("\x00")
        if status != nvrtc.nvrtcResult.NVRTC_SUCCESS:
            raise RuntimeError(f"NVRTC could not compile {name}:\n{log}")
        return log
    finally:
        nvrtc.nvrtcDestroyProgram(program)


def _nvcc_compile_log(source: str, name: str, arch: str, options: list[str]) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, os.path.basename(name))
        Path(src).write_text(source)
        cmd = ["nvcc", f"-arch={arch}", "-cubin", "-Xptxas", "-v", *options, "-o", os.path.join(tmp, "out.cubin"), src]
        done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"nvcc could not compile {name}:\n{done.stderr}")
    return done.stdout + done.stderr


def cuda_source_report(path_or_source, kernel_names=None, arch: str = ARCH, options=()) -> list[dict]:
    """Per-kernel registers, spills and memory of a CUDA C file (or source string) compiled for ``arch``.

    ``kernel_names`` restricts and orders the rows (extern "C" names); a name that is missing raises.
    """
    if isinstance(path_or_source, Path) or (isinstance(path_or_source, str) and path_or_source.endswith(".cu")):
        name, source = str(path_or_source), read_source(path_or_source)
    else:
        name, source = "source.cu", path_or_source
    if _nvrtc() is not None:
        log = _nvrtc_compile_log(source, name, [f"-arch={arch}", "--ptxas-options=-v", *options])
    else:
        log = _nvcc_compile_log(source, name, arch, list(options))
    rows = _parse_ptxas_log(log)
    if kernel_names is None:
        return rows
    by_name = {row["name"]: row for row in rows}
    missing = [k for k in kernel_names if k not in by_name]
    if missing:
        raise KeyError(f"{name} has no kernels {missing}; it has {sorted(by_name)}")
    return [by_name[k] for k in kernel_names]


_COLUMNS = ("name", "registers", "spill_stores", "spill_loads", "shared_bytes", "local_bytes")


def format_report(rows) -> str:
    """A fixed-width table of report rows (extra keys, e.g. "tuned", become trailing columns)."""
    rows = list(rows)
    if not rows:
        return "(no kernels)"
    columns = list(_COLUMNS) + [k for k in rows[0] if k not in _COLUMNS]
    cells = [[str(row.get(c, "")) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(columns, widths)))]
    lines.append("  ".join("-" * w for w in widths))
    for r in cells:
        lines.append("  ".join(v.ljust(w) if i == 0 else v.rjust(w) for i, (v, w) in enumerate(zip(r, widths))))
    return "\n".join(lines)
