"""matmul throughput of every CPU variant at square GEMM sizes (run: make bench)."""

import numpy as np
import pytest

import kernels
from bench.machine import blas_pools
from kernels import matmul as mm

SIZES = [128, 256, 512, 1024, 2048, 4096]
CPU_VARIANTS = [v for v in kernels.variants("matmul") if v.device == "cpu"]


@pytest.mark.parametrize("variant", CPU_VARIANTS, ids=lambda v: v.key)
@pytest.mark.parametrize("n", SIZES)
def bench_matmul(benchmark, variant, n):
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    with kernels.use(matmul=variant.key):
        benchmark.pedantic(mm.matmul, (a, b), rounds=max(3, min(50, 2 * 10**9 // (2 * n**3))), warmup_rounds=1)
    flops = 2 * n**3
    benchmark.extra_info.update(gflops=flops / benchmark.stats["median"] / 1e9, flops=flops, blas=", ".join(blas_pools()))
