"""Compile tier (``pytest -m compile``): every CUDA kernel of every op family compiles for sm_90 with the real
compilers, and the tuned ones do not spill. Runs without a GPU or driver (see ``kernels.cuda_tools``).

Discovery convention, for each family listed in ``FAMILIES``:

- ``<family>.numba_cuda`` (if the module exists) exposes ``KERNELS = [(kernel, signature, tuned), ...]``:
  ``kernel`` a Python kernel function or ``cuda.jit`` dispatcher, ``signature`` an explicit Numba signature
  (e.g. ``"void(float32[:, :, ::1], float32[:, :, ::1], float32[:, :, ::1])"``), ``tuned`` whether the
  variant claims to be tuned (then it must not spill registers to local memory).
- ``<family>.cupy_cuda`` (if the module exists) exposes ``CUDA_SOURCES = [(path, [kernel names], tuned),
  ...]``: a ``.cu`` file and the ``extern "C"`` kernels it must define.

A listed module that exists but fails to import fails the test. Each family's table (registers, spills,
shared and local memory per kernel) is printed (``-s`` shows it) and included in every assertion message.
"""

import importlib
import importlib.util

import pytest

from kernels.cuda_tools import cuda_source_report, format_report, numba_kernel_report

FAMILIES = ["kernels.matmul", "kernels.conv2d", "kernels.pool2d", "kernels.softmax_xent", "kernels.batchnorm",
            "kernels.activation"]


def _module(name):
    return importlib.import_module(name) if importlib.util.find_spec(name) is not None else None


def family_report(family: str) -> list[dict]:
    rows = []
    numba_module = _module(f"{family}.numba_cuda")
    for kernel, signature, tuned in getattr(numba_module, "KERNELS", []):
        rows.append(dict(numba_kernel_report(kernel, signature), tuned=tuned))
    cupy_module = _module(f"{family}.cupy_cuda")
    for path, names, tuned in getattr(cupy_module, "CUDA_SOURCES", []):
        rows.extend(dict(row, tuned=tuned) for row in cuda_source_report(path, names))
    return rows


@pytest.mark.compile
@pytest.mark.parametrize("family", FAMILIES)
def test_family_compiles_for_sm90(family):
    rows = family_report(family)
    if not rows:
        pytest.skip(f"{family} has no CUDA kernels")
    table = format_report(rows)
    print(f"\n{family} (sm_90)\n{table}")
    spilling = [r["name"] for r in rows if r["tuned"] and (r["spill_stores"] or r["spill_loads"])]
    assert not spilling, f"tuned kernels spill: {spilling}\n{table}"
    assert all(r["registers"] > 0 for r in rows), table
