"""The on-disk cache of generated kernel sources, so that Numba can cache their machine code too.

Kernels written out from a template (``kernels/conv2d/numba_blocked.py``) are source text; compiled with
``exec`` they cannot use Numba's cache, which keys compiled code by a function's file, and each takes
0.5-1 s to compile in every new process. ``kernel_file`` writes the text to a file named by its hash, and
``import_file`` imports it, so ``@njit(cache=True)`` in the text stores and finds the machine code beside the
file (or under ``NUMBA_CACHE_DIR``).

The hash covers the text and what the text depends on but does not contain: the sources of the modules it
imports from this package, and the Numba and llvmlite versions (Numba's cache checks only the file itself).
Files are written atomically (a temporary file, then a rename), so processes sharing the cache, such as the
ranks of a distributed job, never read a half-written one.

Where: ``TENSORLIB_CACHE_DIR``, else ``$XDG_CACHE_HOME/tensorlib``, else ``~/.cache/tensorlib``; in its
``kernels`` folder. ``TENSORLIB_CACHE_DIR=off``, or a folder that cannot be written, compiles in memory as
before.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import os
import sys
from pathlib import Path
from types import SimpleNamespace

ENV = "TENSORLIB_CACHE_DIR"
# The modules whose source generated kernels import (a change there must not reuse stale machine code).
DEPENDENCIES = ("kernels/cache.py", "kernels/conv2d/numba_blocked.py", "kernels/simd.py",
                "kernels/softmax_xent/numba_cpu.py")


def directory() -> Path | None:
    """The folder generated kernel files go to, created if missing; None when disabled or not writable."""
    setting = os.environ.get(ENV)
    if setting == "off":
        return None
    if setting:
        root = Path(setting)
    else:
        root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "tensorlib"
    folder = root / "kernels"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    return folder if os.access(folder, os.W_OK) else None


@functools.lru_cache(maxsize=1)
def _dependency_digest() -> bytes:
    import llvmlite
    import numba

    digest = hashlib.sha256(f"numba {numba.__version__} llvmlite {llvmlite.__version__}".encode())
    package = Path(__file__).resolve().parents[1]
    for name in DEPENDENCIES:
        digest.update((package / name).read_bytes())
    return digest.digest()


def kernel_file(prefix: str, text: str) -> Path | None:
    """The path of a file holding ``text`` (written now if missing), or None where there is no cache."""
    folder = directory()
    if folder is None:
        return None
    name = hashlib.sha256(_dependency_digest() + text.encode()).hexdigest()[:24]
    path = folder / f"{prefix}_{name}.py"
    if not path.exists():
        temporary = folder / f".{path.name}.{os.getpid()}.tmp"
        try:
            temporary.write_text(text)
            os.replace(temporary, path)
        except OSError:
            temporary.unlink(missing_ok=True)
            return None
    return path


def import_file(path: Path):
    """The module of a generated file, imported once per process."""
    name = f"_tensorlib_generated.{path.stem}"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        sys.modules[name] = module
    return sys.modules[name]


def load_module(prefix: str, text: str, name: str):
    """The module of kernel source ``text``, whose kernels say ``cache=True``: imported from its kernel file
    where there is a cache, else run in memory with ``cache=False`` (its code named ``<name>``)."""
    path = kernel_file(prefix, text)
    if path is not None:
        return import_file(path)
    namespace = {}
    exec(compile(text.replace("cache=True", "cache=False"), f"<{name}>", "exec"), namespace)
    return SimpleNamespace(**namespace)
