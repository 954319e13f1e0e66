"""conv2d throughput of every CPU variant at the benchmark shapes, forward and forward+backward (run: make bench).

The shapes are the ones ``compare_torch_conv2d.py`` measures against PyTorch: LeNet-5's two convolutions
at batch 64, and 3x3 (stride 1 and 2) and 1x1 layers of a small ResNet at batch 128. GFLOP/s counts
2 FLOPs per multiply-accumulate: the forward pass once, forward+backward three times (each backward GEMM
costs what the forward does). Each case is checked against the float64 reference on one image first.
"""

import numpy as np
import pytest
from bench.compare_torch_conv2d import SHAPES, tensorlib_steps

import kernels
from bench.machine import blas_pools
from kernels.conv2d import reference

OPS = ("conv2d_forward", "conv2d_backward_input", "conv2d_backward_weight", "conv2d_backward_bias")
CPU_KEYS = sorted(set.intersection(*({v.key for v in kernels.variants(op) if v.device == "cpu"} for op in OPS)))


def check_first_image(shape, forward):
    x, w, b, _ = shape.arrays()
    y = forward()
    expected = reference.conv2d_forward(x[:1], w, b, shape.stride, shape.padding)
    np.testing.assert_allclose(y[:1], expected, rtol=1e-4, atol=1e-4 * (shape.C * shape.R**2) ** 0.5)


def run(benchmark, shape, key, backward):
    forward, forward_backward = tensorlib_steps(shape)
    with kernels.use(**{op: key for op in OPS}):
        check_first_image(shape, forward)
        benchmark.pedantic(forward_backward if backward else forward, rounds=20, warmup_rounds=3)
    flops = shape.geometry.flops * (3 if backward else 1)
    benchmark.extra_info.update(gflops=flops / benchmark.stats["median"] / 1e9, flops=flops, blas=", ".join(blas_pools()))


@pytest.mark.parametrize("key", CPU_KEYS)
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: s.name)
def bench_conv2d_forward(benchmark, shape, key):
    run(benchmark, shape, key, backward=False)


@pytest.mark.parametrize("key", CPU_KEYS)
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: s.name)
def bench_conv2d_forward_backward(benchmark, shape, key):
    run(benchmark, shape, key, backward=True)
