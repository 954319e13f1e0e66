"""kernels.blas.one_thread: NumPy's OpenBLAS on one thread inside, its own count restored after (nested and
from several threads), and the CPU matmul running small products inside it."""

import threading

import numpy as np
import pytest

from kernels import blas
from kernels.matmul import numpy as matmul_cpu

needs_openblas = pytest.mark.skipif(not blas._openblas(), reason="NumPy is not linked against a pthreads OpenBLAS")


@needs_openblas
def test_one_thread_sets_and_restores_nested():
    before = blas.threads()
    with blas.one_thread():
        assert blas.threads() == 1
        with blas.one_thread():
            assert blas.threads() == 1
        assert blas.threads() == 1
    assert blas.threads() == before


@needs_openblas
def test_one_thread_restores_after_an_error():
    before = blas.threads()
    with pytest.raises(RuntimeError):
        with blas.one_thread():
            raise RuntimeError("inside")
    assert blas.threads() == before


@needs_openblas
def test_concurrent_users_share_one_limit():
    """Threads entering and leaving in any order: the count is 1 while any is inside, restored after the last."""
    before, inside, barrier = blas.threads(), [], threading.Barrier(4)

    def user():
        with blas.one_thread():
            barrier.wait()
            inside.append(blas.threads())
            barrier.wait()

    threads = [threading.Thread(target=user) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert inside == [1, 1, 1, 1] and blas.threads() == before


@needs_openblas
@pytest.mark.parametrize("shape_a, shape_b, one_thread", [((64, 400), (400, 120), True),
                                                          ((3, 64, 400), (400, 120), True),
                                                          ((512, 512), (512, 512), False)])
def test_matmul_holds_the_blas_to_one_thread_below_the_threshold(shape_a, shape_b, one_thread, monkeypatch):
    seen = []
    original = np.matmul
    monkeypatch.setattr(matmul_cpu.np, "matmul", lambda a, b: seen.append(blas.threads()) or original(a, b))
    a, b = np.ones(shape_a, np.float32), np.ones(shape_b, np.float32)
    np.testing.assert_array_equal(matmul_cpu.matmul_blas(a, b), original(a, b))
    if blas.threads() > 1:  # with a one-thread BLAS both cases look alike
        assert (seen == [1]) == one_thread
