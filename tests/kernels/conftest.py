"""Shared fixture of the CUDA kernel tests: poisoned outputs."""

import sys

import numpy as np
import pytest

from kernels import device_arrays


@pytest.fixture
def poisoned(monkeypatch):
    """``poisoned(*variants)``: each variant's module allocates its outputs filled with NaN (floats) or -7
    (integers), so an element a kernel never writes shows up. CuPy variants are skipped in the simulator."""

    def poison(*variants):
        for variant in variants:
            if variant.backend == "cupy" and device_arrays.simulating():
                pytest.skip("CuPy variants need a GPU")

            def empty(shape, dtype, like):
                out = device_arrays.empty(shape, dtype, like)
                out[...] = np.nan if np.dtype(dtype).kind == "f" else -7
                return out

            monkeypatch.setattr(sys.modules[variant.fn.__module__], "empty", empty)

    return poison
