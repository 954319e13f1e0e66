"""Test tiers (see DESIGN.md): markers ``cudasim``, ``gpu`` and ``compile`` skip, with the reason, where their
tier cannot run.

- ``cudasim``: only with ``NUMBA_ENABLE_CUDASIM=1`` (set before numba is imported, so its own process:
  ``NUMBA_ENABLE_CUDASIM=1 pytest -m cudasim``). Unmarked tests still run under the simulator.
- ``gpu``: only where CuPy sees a GPU and the simulator is off (``pytest -m gpu``).
- ``compile``: only where ``kernels.cuda_tools.compile_available()`` (numba-cuda + nvJitLink, NVRTC or nvcc).
"""

import functools

import pytest

from kernels.device_arrays import simulating


@functools.cache
def _gpu_usable() -> tuple[bool, str]:
    if simulating():
        return False, "NUMBA_ENABLE_CUDASIM=1: the GPU tier runs without the simulator"
    try:
        import cupy
    except ImportError:
        return False, "cupy is not installed"
    try:
        if cupy.is_available():
            return True, ""
    except Exception as error:  # a broken driver install raises instead of answering False
        return False, f"cupy cannot use a GPU: {error}"
    return False, "no CUDA GPU available to cupy"


@functools.cache
def _compile_usable() -> tuple[bool, str]:
    from kernels.cuda_tools import compile_available

    return compile_available()


def pytest_generate_tests(metafunc):
    """A test that takes a ``tier`` argument runs on the "cuda" device twice: in the simulator tier and in the
    gpu tier (one body for both, each skipped where its tier cannot run)."""
    if "tier" in metafunc.fixturenames:
        metafunc.parametrize("tier", [pytest.param("simulator", marks=pytest.mark.cudasim),
                                      pytest.param("gpu", marks=pytest.mark.gpu)])


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.get_closest_marker("cudasim") and not simulating():
            item.add_marker(pytest.mark.skip(reason="needs NUMBA_ENABLE_CUDASIM=1 (run: NUMBA_ENABLE_CUDASIM=1 pytest -m cudasim)"))
        if item.get_closest_marker("gpu"):
            ok, reason = _gpu_usable()
            if not ok:
                item.add_marker(pytest.mark.skip(reason=reason))
        if item.get_closest_marker("compile"):
            ok, reason = _compile_usable()
            if not ok:
                item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture
def small_blocks_in_the_simulator(monkeypatch):
    """In the simulator (about 1 ms per simulated thread) the Numba CUDA batch-norm and softmax cross-entropy
    kernels launch 16- and 32-thread blocks instead of their defaults (256 and 128). For the device tests that
    train or capture whole steps (dispatch, transfers, graphs); the kernel tests keep the default blocks
    (test_batchnorm_cuda.py, test_softmax_xent_cuda.py)."""
    if simulating():
        from kernels.batchnorm import numba_cuda as batchnorm
        from kernels.softmax_xent import numba_cuda as softmax_xent

        monkeypatch.setattr(batchnorm, "REDUCE_THREADS", 16)
        monkeypatch.setattr(batchnorm, "ELEMENT_THREADS", 32)
        monkeypatch.setattr(softmax_xent, "THREADS", 16)
    yield
