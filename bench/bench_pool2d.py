"""pool2d throughput of every CPU variant at the benchmark shapes (run: make bench).

Pooling does a few comparisons or additions per element, so it is memory-bound: the figure of merit is
GB/s, the bytes the pass must move (inputs read once, outputs written once) over the median time.
Each case is checked against the float64 reference on a few planes before it is timed.
"""

import numpy as np
import pytest

import kernels
from kernels import pool2d
from kernels.pool2d import reference

MAX_SHAPE, GLOBAL_SHAPE = (128, 16, 32, 32), (128, 64, 8, 8)


def cpu_variants(op):
    return [v for v in kernels.variants(op) if v.device == "cpu"]


def arrays(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def assert_matches_reference_on_first_planes(out, ref_fn, *inputs):
    """The reference is a Python loop: compare the first two planes of image 0 only."""
    ref = ref_fn(*(a[:1, :2] for a in inputs))
    np.testing.assert_allclose(out[:1, :2], ref, rtol=1e-4, atol=1e-6)


def record(benchmark, nbytes):
    benchmark.extra_info.update(gb_per_s=nbytes / benchmark.stats["median"] / 1e9, bytes=nbytes)


@pytest.mark.parametrize("variant", cpu_variants("max_pool2d_forward"), ids=lambda v: v.key)
def bench_max_pool2d_2x2_forward(benchmark, variant):
    x = arrays(MAX_SHAPE)
    with kernels.use(max_pool2d_forward=variant.key):
        y, indices = pool2d.max_pool2d_forward(x, 2)
        g = pool2d.pool2d_geometry("max_pool2d", x[:1, :2].shape, 2)
        assert_matches_reference_on_first_planes(y, lambda a: reference.max_pool2d_forward(a, g)[0], x)
        benchmark(pool2d.max_pool2d_forward, x, 2)
    record(benchmark, x.nbytes + y.nbytes + indices.nbytes)


@pytest.mark.parametrize("variant", cpu_variants("max_pool2d_backward"), ids=lambda v: v.key)
def bench_max_pool2d_2x2_forward_backward(benchmark, variant):
    x = arrays(MAX_SHAPE)
    y, indices = pool2d.max_pool2d_forward(x, 2)
    dy = arrays(y.shape, seed=1)

    def forward_backward():
        _, indices = pool2d.max_pool2d_forward(x, 2)
        return pool2d.max_pool2d_backward(dy, indices, x.shape, 2)

    with kernels.use(max_pool2d_backward=variant.key):
        g = pool2d.pool2d_geometry("max_pool2d", x[:1, :2].shape, 2)
        assert_matches_reference_on_first_planes(
            forward_backward(), lambda d, i: reference.max_pool2d_backward(d, i, g), dy, indices
        )
        benchmark(forward_backward)
    # forward: x in, y and indices out; backward: dy and indices in, dx out
    record(benchmark, 2 * x.nbytes + 2 * y.nbytes + 2 * indices.nbytes)


@pytest.mark.parametrize("variant", cpu_variants("avg_pool2d_forward"), ids=lambda v: v.key)
@pytest.mark.parametrize("kernel, stride, padding", [(2, 2, 0), (3, 2, 1)], ids=["2x2s2", "3x3s2p1"])
def bench_avg_pool2d_forward(benchmark, variant, kernel, stride, padding):
    x = arrays(MAX_SHAPE)
    with kernels.use(avg_pool2d_forward=variant.key):
        y = pool2d.avg_pool2d_forward(x, kernel, stride, padding)
        g = pool2d.pool2d_geometry("avg_pool2d", x[:1, :2].shape, kernel, stride, padding)
        assert_matches_reference_on_first_planes(y, lambda a: reference.avg_pool2d_forward(a, g, True, None), x)
        benchmark(pool2d.avg_pool2d_forward, x, kernel, stride, padding)
    record(benchmark, x.nbytes + y.nbytes)


@pytest.mark.parametrize("variant", cpu_variants("adaptive_avg_pool2d_forward"), ids=lambda v: v.key)
def bench_global_avg_pool2d_forward(benchmark, variant):
    x = arrays(GLOBAL_SHAPE)
    with kernels.use(adaptive_avg_pool2d_forward=variant.key):
        y = pool2d.adaptive_avg_pool2d_forward(x, 1)
        g = pool2d.adaptive_pool2d_geometry("adaptive_avg_pool2d", x[:1, :2].shape, 1)
        assert_matches_reference_on_first_planes(y, lambda a: reference.adaptive_avg_pool2d_forward(a, g), x)
        benchmark(pool2d.adaptive_avg_pool2d_forward, x, 1)
    record(benchmark, x.nbytes + y.nbytes)
