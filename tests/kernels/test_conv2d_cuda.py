"""conv2d CUDA variants: every "cuda" variant of each op against an oracle, in two tiers.

- ``cudasim`` (``NUMBA_ENABLE_CUDASIM=1 pytest -m cudasim``): the Numba CUDA variants on tiny shapes that
  reach every code path (partial tiles at every edge, stride 2, padding, dilation 2, groups 2, depthwise,
  batch 1, 1x1), against the float64 reference, with small launch configurations (the simulator runs about
  1 ms per thread) plus the real configurations once on shapes that fit one block. CuPy variants skip.
- ``gpu``: every variant, CuPy included, on LeNet and ResNet-20 layer shapes at batch 128, against the
  CPU variant run in float64 (itself tested against the reference in test_conv2d.py).

Outputs are poisoned: the variant's module allocates through a patched ``empty`` that fills with NaN, so
an element a kernel never writes fails the comparison. Tolerances as in test_conv2d.py: rtol 1e-4 and
atol 1e-5*sqrt(reduction length) for float32.
"""


import numpy as np
import pytest

from kernels import conv2d, device_arrays, registry
from kernels.conv2d import reference
from kernels.device_arrays import simulating, to_device, to_host

OPS = ["conv2d_forward", "conv2d_backward_input", "conv2d_backward_weight", "conv2d_backward_bias"]


def layer(*case, id):
    """A case (x_shape, w_shape, stride, padding, dilation, groups) as one test parameter."""
    return pytest.param(case, id=id)


TINY = [
    layer((1, 2, 5, 5), (3, 2, 3, 3), 1, 1, 1, 1, id="3x3-pad1-batch1"),
    layer((2, 4, 5, 6), (4, 2, 2, 3), 2, (1, 0), (2, 1), 2, id="groups2-stride2-dilation2-nonsquare"),
    layer((1, 3, 4, 5), (5, 3, 1, 1), 1, 0, 1, 1, id="1x1"),
    layer((2, 3, 6, 5), (3, 1, 3, 3), 2, 1, 1, 3, id="depthwise-stride2"),
    layer((1, 2, 7, 6), (4, 1, 3, 2), 1, 2, 2, 2, id="channel-multiplier-dilation2-pad2"),
]
# launch configurations small enough for the simulator; the real ones are tested on one-block shapes below
SIM_CONFIG = {
    "numba_cuda.v1_direct": dict(threads=32),
    "numba_cuda.v2_direct_smem": dict(tile=(2, 3), k_block=2),
    "numba_cuda.v3_im2col_gemm": dict(tile=4, threads=32),
    "numba_cuda.v1_block_reduce": dict(threads=4),
}
ONE_BLOCK = [
    layer((1, 2, 6, 9), (3, 2, 3, 3), 1, 1, 1, 1, id="one-8x16-tile"),
    layer((1, 1, 4, 3), (2, 1, 2, 2), 1, 0, 1, 1, id="one-16x16-gemm-tile"),
]
REAL = [
    layer((128, 1, 28, 28), (6, 1, 5, 5), 1, 2, 1, 1, id="lenet-c1"),
    layer((128, 6, 14, 14), (16, 6, 5, 5), 1, 0, 1, 1, id="lenet-c3"),
    layer((128, 16, 32, 32), (16, 16, 3, 3), 1, 1, 1, 1, id="resnet-16x32x32"),
    layer((128, 64, 8, 8), (64, 64, 3, 3), 1, 1, 1, 1, id="resnet-64x8x8"),
    layer((128, 16, 32, 32), (32, 16, 3, 3), 2, 1, 1, 1, id="resnet-stride2"),
    layer((128, 64, 16, 16), (32, 64, 1, 1), 1, 0, 1, 1, id="1x1"),
    layer((128, 32, 16, 16), (32, 1, 3, 3), 1, 1, 1, 32, id="depthwise"),
]


def cuda_variants(op):
    return [pytest.param(op, v, id=f"{op}-{v.key}") for v in registry.variants(op) if v.device == "cuda"]


VARIANTS = [param for op in OPS for param in cuda_variants(op)]


def run(op, variant, case, dtype, config, oracle):
    """The variant's output (on the host), the oracle's, and the reduction length of the pass."""
    x_shape, w_shape, *args = case
    g = conv2d.conv2d_geometry(x_shape, w_shape, *args)
    rng = np.random.default_rng(abs(hash((op, x_shape, w_shape))) % 2**32)
    x, w, b, dy = (rng.standard_normal(s).astype(dtype) for s in (x_shape, w_shape, (g.K,), g.y_shape))
    if op == "conv2d_forward":
        out = variant.fn(to_device(x), to_device(w), to_device(b), g, **config)
        return out, oracle(x, w, b, *args), (g.C // g.groups) * g.R * g.S
    if op == "conv2d_backward_input":
        out = variant.fn(to_device(dy), to_device(w), g, **config)
        return out, oracle(dy, w, x_shape, *args), (g.K // g.groups) * g.R * g.S
    if op == "conv2d_backward_weight":
        out = variant.fn(to_device(dy), to_device(x), g, **config)
        return out, oracle(dy, x, w_shape, *args), g.N * g.P * g.Q
    return variant.fn(to_device(dy), **config), oracle(dy), g.N * g.P * g.Q


def assert_close(out, ref, dtype, reduction):
    rtol, atol = (1e-4, 1e-5) if dtype == np.float32 else (1e-10, 1e-12)
    atol *= max(1, reduction) ** 0.5
    out = to_host(out)
    assert out.shape == ref.shape and out.dtype == dtype
    err, bound = np.abs(out.astype(np.float64) - ref), atol + rtol * np.abs(ref)
    assert np.all(err <= bound), f"max excess {np.nanmax(err - bound)}, {np.isnan(err).sum()} NaN of {err.size}"


_ORACLES = {}


def once_per_case(key, oracle):
    """``oracle`` computed once per ``key`` in this process: every GPU variant of an op is compared with the same
    CPU result (the inputs are drawn from a seed that depends only on the op and the case), and at batch 128
    the float64 CPU pass takes longer than all the variants' runs together."""

    def cached(*args):
        if key not in _ORACLES:
            _ORACLES[key] = oracle(*args)
        return _ORACLES[key]

    return cached


def skip_cupy_in_simulator(variant):
    if variant.backend == "cupy" and simulating():
        pytest.skip("CuPy variants need a GPU")


@pytest.mark.cudasim
@pytest.mark.parametrize("case", TINY)
@pytest.mark.parametrize("op, variant", VARIANTS)
def test_tiny_against_reference(op, variant, case, poisoned):
    skip_cupy_in_simulator(variant)
    poisoned(variant)
    config = SIM_CONFIG.get(variant.key, {})
    out, ref, reduction = run(op, variant, case, np.float32, config, getattr(reference, op))
    assert isinstance(out, device_arrays.SimulatedDeviceArray)
    assert_close(out, ref, np.float32, reduction)


@pytest.mark.cudasim
@pytest.mark.parametrize("case", ONE_BLOCK)
@pytest.mark.parametrize("op, variant", VARIANTS)
def test_default_launch_configuration(op, variant, case, poisoned):
    skip_cupy_in_simulator(variant)
    poisoned(variant)
    out, ref, reduction = run(op, variant, case, np.float64, {}, getattr(reference, op))
    assert_close(out, ref, np.float64, reduction)


@pytest.mark.cudasim
def test_forward_without_bias():
    (case,) = TINY[1].values
    g = conv2d.conv2d_geometry(*case)
    rng = np.random.default_rng(7)
    x, w = rng.standard_normal(g.x_shape).astype(np.float32), rng.standard_normal(g.w_shape).astype(np.float32)
    ref = reference.conv2d_forward(x, w, None, *case[2:])
    for variant in registry.variants("conv2d_forward"):
        if variant.device == "cuda" and variant.backend != "cupy":
            out = variant.fn(to_device(x), to_device(w), None, g, **SIM_CONFIG.get(variant.key, {}))
            assert_close(out, ref, np.float32, g.C // g.groups * g.R * g.S)


@pytest.mark.cudasim
def test_simulator_defaults_are_numba():
    for op in OPS:
        chosen, _ = registry.selected(op, "cuda")
        assert chosen.backend == "numba_cuda", op


@pytest.mark.gpu
@pytest.mark.parametrize("case", REAL)
@pytest.mark.parametrize("op, variant", VARIANTS)
def test_layer_shapes_on_gpu(op, variant, case, poisoned):
    poisoned(variant)

    def oracle(*args):
        # the CPU default through the entry point, in float64: the reference loops are too slow at batch 128
        return getattr(conv2d, op)(*(a.astype(np.float64) if isinstance(a, np.ndarray) else a for a in args))

    out, ref, reduction = run(op, variant, case, np.float32, {}, once_per_case((op, case), oracle))
    assert_close(out, ref, np.float32, reduction)
