"""Every "cuda" variant of matmul against a float64 oracle, in two tiers of one test body:

- ``cudasim`` (``NUMBA_ENABLE_CUDASIM=1 pytest -m cudasim``): the Numba variants with their real tile sizes on
  tiny shapes, chosen so every edge path runs: sizes that are not multiples of any tile, a second, partial
  block along M and N and a partial K step (derived from each variant's tile), 1xN, Mx1, 1-D operands and
  broadcast batches. The simulator runs ~1 ms per thread, so matrices stay within a few blocks. CuPy
  variants need a GPU and skip here.
- ``gpu`` (``pytest -m gpu``): every variant, CuPy ones included, on real shapes, against float64
  ``numpy.matmul`` (the reference's Python loops are for tiny shapes only).

Outputs are NaN-poisoned before each kernel (every launcher allocates through ``device_arrays.empty``;
cuBLAS allocates its own), so an element a kernel fails to write shows as NaN.
"""

import numpy as np
import pytest

import kernels
from kernels import device_arrays
from kernels import matmul as mm
from kernels.matmul import reference

CUDA_VARIANTS = [v for v in kernels.variants("matmul") if v.device == "cuda"]
# |out - ref| <= rtol * (|a| @ |b|) * sqrt(K): float32 rounding of a K-term dot product. TF32 rounds both
# inputs to 10 mantissa bits (relative error 2^-11 each), so its products are only good to ~1e-3.
RTOL = {np.dtype(np.float32): 1e-4, np.dtype(np.float64): 1e-12}
TF32_RTOL = 2e-3

TINY_SHAPES = [
    ((5, 11), (11, 7)),  # one partial block; K = one full and one partial 8-wide step
    ((1, 9), (9, 6)),  # 1 x N
    ((6, 9), (9, 1)),  # M x 1
    ((7,), (7, 5)),  # 1-D left operand
    ((4, 7), (7,)),  # 1-D right operand
    ((2, 1, 3, 5), (3, 5, 4)),  # batch broadcast both ways: (2, 1) against (3,)
    ((3, 4, 6), (6, 5)),  # one matrix shared by a batch
]


def _tile(variant):
    """(rows, cols, k_step) of the tile a variant's block computes (for shapes one element past it)."""
    from kernels.matmul import numba_cuda

    config = numba_cuda.CONFIGS[variant.name]
    return config.tile + (config.params.get("bk", config.params.get("tile", 32)),)


@pytest.fixture
def poisoned(monkeypatch):
    """Make every array a launcher allocates start as NaN."""
    empty = device_arrays.empty

    def nan_empty(shape, dtype, like):
        out = empty(shape, dtype, like)
        out[...] = np.nan
        return out

    monkeypatch.setattr(device_arrays, "empty", nan_empty)


def check(variant, a, b, expected):
    with kernels.use(matmul=variant.key):
        assert kernels.selected("matmul", "cuda")[0] == variant
        out = mm.matmul(device_arrays.to_device(a), device_arrays.to_device(b))
    assert device_arrays.is_device_array(out)
    out = device_arrays.to_host(out)
    assert out.shape == expected.shape and out.dtype == a.dtype
    assert not np.isnan(out).any(), "elements left unwritten"
    scale = np.abs(a).astype(np.float64) @ np.abs(b).astype(np.float64)
    rtol = TF32_RTOL if "tf32" in variant.name else RTOL[a.dtype]
    bad = np.abs(out - expected) > rtol * (scale + 1) * max(1, a.shape[-1]) ** 0.5
    assert not bad.any(), f"{bad.sum()} of {bad.size} elements off, first at {np.argwhere(bad)[0]}"


def _draw(shapes, dtype, seed):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(s).astype(dtype) for s in shapes]


@pytest.mark.cudasim
@pytest.mark.parametrize("variant", CUDA_VARIANTS, ids=lambda v: v.key)
def test_cuda_variant_simulated(variant, poisoned):
    if variant.backend != "numba_cuda":
        pytest.skip("CuPy variants need a GPU")
    rows, cols, step = _tile(variant)
    edge = ((rows + 3, step + 3), (step + 3, cols + 5))  # a second, partial block along M and N and along K
    for seed, shapes in enumerate(TINY_SHAPES + [edge]):
        a, b = _draw(shapes, np.float32, seed)
        check(variant, a, b, reference.matmul(a, b))
    a, b = _draw(TINY_SHAPES[0], np.float64, 99)
    check(variant, a, b, reference.matmul(a, b))


GPU_SHAPES = [
    ((127, 255), (255, 129)),  # no dimension a multiple of 4 or of any tile: scalar paths and every edge
    ((128, 256), (256, 128)),  # exact tiles, float4 paths
    ((1024, 1024), (1024, 1024)),
    ((1, 1000), (1000, 300)),
    ((300, 1000), (1000, 1)),
    ((8, 96, 64), (64, 80)),  # batch sharing B (stride 0)
    ((2, 1, 33, 40), (3, 40, 17)),  # partial broadcast, materialised
]


@pytest.mark.gpu
@pytest.mark.parametrize("variant", CUDA_VARIANTS, ids=lambda v: v.key)
@pytest.mark.parametrize("shapes", GPU_SHAPES, ids=lambda s: f"{s[0]}@{s[1]}")
def test_cuda_variant_gpu(variant, shapes, poisoned):
    a, b = _draw(shapes, np.float32, 0)
    check(variant, a, b, np.matmul(a.astype(np.float64), b.astype(np.float64)))
