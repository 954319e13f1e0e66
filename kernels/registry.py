"""The kernel registry: every implementation of an op is a registered *variant*.

A variant is named ``(op, backend, "vN_short_name")``, e.g. ``("conv2d_forward", "numpy", "v0_im2col")``,
and runs on one device ("cpu" or "cuda"). Each op family registers its variants when it is imported and
marks one per device as the default. Which variant an op uses is decided, in this order, by

1. ``kernels.use(op="backend.vN_name")`` (a context manager, innermost wins),
2. the environment variable ``TENSORLIB_KERNELS="op=backend.vN_name,op2=..."``,
3. the family's default for the device: the first variant registered with ``default=True`` whose backend
   is available here (so a CuPy default can fall back to a Numba CUDA one under the simulator).

An override that names a variant of another device, or one whose backend is unavailable, is ignored for
that call and the default is used; ``selected`` reports which variant is used and why.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import threading
from dataclasses import dataclass, field
from typing import Callable

DEVICES = ("cpu", "cuda")


@dataclass(frozen=True)
class Variant:
    op: str
    backend: str
    name: str
    device: str
    fn: Callable = field(compare=False, repr=False)
    doc: str = field(default="", compare=False)

    @property
    def key(self) -> str:
        return f"{self.backend}.{self.name}"

    @property
    def available(self) -> bool:
        return backend_available(self.backend)


_variants: dict[str, dict[str, Variant]] = {}
_defaults: dict[tuple[str, str], list[str]] = {}
_local = threading.local()


def register(op: str, backend: str, name: str, *, device: str = "cpu", default: bool = False):
    """Decorator registering ``fn`` as variant ``backend.name`` of ``op`` on ``device``."""
    if device not in DEVICES:
        raise ValueError(f"device must be one of {DEVICES}, got {device!r}")

    def decorate(fn):
        doc = (fn.__doc__ or "").strip().splitlines()
        variant = Variant(op, backend, name, device, fn, doc[0] if doc else "")
        _variants.setdefault(op, {})[variant.key] = variant
        if default:
            _defaults.setdefault((op, device), []).append(variant.key)
        return fn

    return decorate


def variants(op: str | None = None) -> list[Variant]:
    """All registered variants of ``op`` (or of every op), in registration order."""
    if op is None:
        return [v for table in _variants.values() for v in table.values()]
    if op not in _variants:
        raise KeyError(f"unknown op {op!r}; known ops: {sorted(_variants)}")
    return list(_variants[op].values())


def ops() -> list[str]:
    return sorted(_variants)


def variant(op: str, key: str) -> Variant:
    """The variant ``key`` ("backend.vN_name") of ``op``."""
    table = _variants.get(op)
    if table is None:
        raise KeyError(f"unknown op {op!r}; known ops: {sorted(_variants)}")
    if key not in table:
        raise KeyError(f"op {op!r} has no variant {key!r}; it has {sorted(table)}")
    return table[key]


def _env_overrides() -> dict[str, str]:
    spec = os.environ.get("TENSORLIB_KERNELS", "")
    cached = getattr(_local, "env_cache", None)
    if cached is not None and cached[0] == spec:
        return cached[1]
    parsed = {}
    for item in filter(None, (part.strip() for part in spec.split(","))):
        op, sep, key = item.partition("=")
        if not sep:
            raise ValueError(f"TENSORLIB_KERNELS entry {item!r} is not of the form op=backend.vN_name")
        parsed[op.strip()] = key.strip()
    _local.env_cache = (spec, parsed)
    return parsed


def _use_stack() -> list[dict[str, str]]:
    stack = getattr(_local, "use_stack", None)
    if stack is None:
        stack = _local.use_stack = []
    return stack


def selected(op: str, device: str = "cpu") -> tuple[Variant, str]:
    """The variant ``op`` uses on ``device`` and the reason, e.g. ``(variant, "default")``."""
    table = _variants.get(op)
    if table is None:
        raise KeyError(f"unknown op {op!r}; known ops: {sorted(_variants)}")
    candidates = [(layer[op], "kernels.use") for layer in reversed(_use_stack()) if op in layer]
    env = _env_overrides().get(op)
    if env is not None:
        candidates.append((env, "TENSORLIB_KERNELS"))
    for key, reason in candidates:
        chosen = table.get(key)
        if chosen is None:
            raise KeyError(f"{reason} names variant {key!r} of op {op!r}, which has {sorted(table)}")
        if chosen.device == device and chosen.available:
            return chosen, reason
    defaults = _defaults.get((op, device))
    if not defaults:
        raise NotImplementedError(f"op {op!r} has no variant for device {device!r}")
    for key in defaults:
        if table[key].available:
            return table[key], "default"
    return table[defaults[0]], "default"


def get(op: str, device: str = "cpu") -> Callable:
    """The function of the variant ``op`` uses on ``device``."""
    return selected(op, device)[0].fn


@contextlib.contextmanager
def use(**choices: str):
    """Pick variants for a block: ``with kernels.use(conv2d_forward="numpy.v0_im2col"): ...``."""
    for op, key in choices.items():
        variant(op, key)
    stack = _use_stack()
    stack.append(dict(choices))
    try:
        yield
    finally:
        stack.pop()


def array_device(array) -> str:
    """"cuda" for a CuPy array (or a simulated device array), "cpu" for anything else."""
    from kernels.device_arrays import is_device_array

    return "cuda" if is_device_array(array) else "cpu"


_backend_checks: dict[str, bool] = {}


def backend_available(backend: str) -> bool:
    """Whether a backend can run here; NumPy and reference code always can, GPU backends may not."""
    if backend in ("numpy", "reference"):
        return True
    if backend not in _backend_checks:
        _backend_checks[backend] = _probe_backend(backend)
    return _backend_checks[backend]


def _probe_backend(backend: str) -> bool:
    if backend == "numba":
        return importlib.util.find_spec("numba") is not None
    if backend == "numba_cuda":
        if importlib.util.find_spec("numba") is None:
            return False
        from numba import cuda

        return bool(cuda.is_available())
    if backend == "cupy":
        if importlib.util.find_spec("cupy") is None:
            return False
        try:
            import cupy

            return bool(cupy.is_available())
        except Exception:
            return False
    return False
