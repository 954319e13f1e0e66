"""matmul throughput of every CPU variant at square GEMM sizes (run: make bench)."""

import numpy as np
import pytest

import kernels
from kernels import matmul as mm

SIZES = [128, 256, 512, 1024, 2048, 4096]
CPU_VARIANTS = [v for v in kernels.variants("matmul") if v.device == "cpu"]


def blas_description() -> str:
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "unknown (threadpoolctl not installed)"
    infos = [i for i in threadpool_info() if i.get("user_api") == "blas"]
    return ", ".join(f"{i['internal_api']} {i['version']} {i.get('architecture')} x{i['num_threads']}" for i in infos)


@pytest.mark.parametrize("variant", CPU_VARIANTS, ids=lambda v: v.key)
@pytest.mark.parametrize("n", SIZES)
def bench_matmul(benchmark, variant, n):
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    with kernels.use(matmul=variant.key):
        benchmark.pedantic(mm.matmul, (a, b), rounds=max(3, min(50, 2 * 10**9 // (2 * n**3))), warmup_rounds=1)
    flops = 2 * n**3
    benchmark.extra_info.update(gflops=flops / benchmark.stats["median"] / 1e9, flops=flops, blas=blas_description())
