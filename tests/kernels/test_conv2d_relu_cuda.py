"""conv2d_forward with the ReLU epilogue on the CUDA variants, in the tiers of test_conv2d_cuda.py (whose
shapes, launch configurations and tolerances it uses):

- ``cudasim``: the Numba CUDA forward variants on the tiny shapes with small launch configurations, with
  and without bias, and at their real configurations on one-block shapes, against the float64 reference
  followed by max(., 0); and the entry point on a simulated device array picking the Numba default.
- ``gpu``: every CUDA forward variant, CuPy's included, on the LeNet and ResNet-20 layer shapes at batch
  128 against the CPU default run in float64 and clamped.

Outputs are poisoned with NaN, which the clamp keeps, so an element a kernel never writes still fails.
"""

import numpy as np
import pytest
from test_conv2d_cuda import ONE_BLOCK, REAL, SIM_CONFIG, TINY, assert_close, once_per_case, skip_cupy_in_simulator

from kernels import conv2d, registry
from kernels.conv2d import reference
from kernels.device_arrays import SimulatedDeviceArray, to_device

VARIANTS = [pytest.param(v, id=v.key) for v in registry.variants("conv2d_forward") if v.device == "cuda"]


def run(variant, case, dtype, config, oracle, bias=True):
    """The variant's clamped output, the oracle's clamped output and the reduction length."""
    x_shape, w_shape, *args = case
    g = conv2d.conv2d_geometry(x_shape, w_shape, *args)
    rng = np.random.default_rng(abs(hash(("relu", x_shape, w_shape))) % 2**32)
    x, w, b = (rng.standard_normal(s).astype(dtype) for s in (x_shape, w_shape, (g.K,)))
    b = b if bias else None
    out = variant.fn(to_device(x), to_device(w), None if b is None else to_device(b), g, activation="relu", **config)
    return out, np.maximum(oracle(x, w, b, *args), 0), g.C // g.groups * g.R * g.S


@pytest.mark.cudasim
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no_bias"])
@pytest.mark.parametrize("case", TINY)
@pytest.mark.parametrize("variant", VARIANTS)
def test_tiny_against_reference(variant, case, bias, poisoned):
    skip_cupy_in_simulator(variant)
    poisoned(variant)
    config = SIM_CONFIG.get(variant.key, {})
    out, ref, reduction = run(variant, case, np.float32, config, reference.conv2d_forward, bias)
    assert isinstance(out, SimulatedDeviceArray)
    assert (ref == 0).any() and (ref > 0).any()  # both sides of the clamp are exercised
    assert_close(out, ref, np.float32, reduction)


@pytest.mark.cudasim
@pytest.mark.parametrize("case", ONE_BLOCK)
@pytest.mark.parametrize("variant", VARIANTS)
def test_default_launch_configuration(variant, case, poisoned):
    skip_cupy_in_simulator(variant)
    poisoned(variant)
    out, ref, reduction = run(variant, case, np.float64, {}, reference.conv2d_forward)
    assert_close(out, ref, np.float64, reduction)


@pytest.mark.cudasim
def test_entry_point_on_a_device_array():
    (case,) = TINY[0].values
    x_shape, w_shape, *args = case
    rng = np.random.default_rng(5)
    x, w = rng.standard_normal(x_shape).astype(np.float32), rng.standard_normal(w_shape).astype(np.float32)
    assert registry.selected("conv2d_forward", "cuda")[0].fn.activations == {"relu"}
    out = conv2d.conv2d_forward(to_device(x), to_device(w), None, *args, activation="relu")
    assert isinstance(out, SimulatedDeviceArray)
    ref = np.maximum(reference.conv2d_forward(x, w, None, *args), 0)
    assert_close(out, ref, np.float32, w.shape[1] * w.shape[2] * w.shape[3])


@pytest.mark.gpu
@pytest.mark.parametrize("case", REAL)
@pytest.mark.parametrize("variant", VARIANTS)
def test_layer_shapes_on_gpu(variant, case, poisoned):
    poisoned(variant)

    def oracle(x, w, b, *args):
        # the CPU default in float64: the reference loops are too slow at batch 128
        return conv2d.conv2d_forward(x.astype(np.float64), w.astype(np.float64), b.astype(np.float64), *args)

    out, ref, reduction = run(variant, case, np.float32, {}, once_per_case(("relu", case), oracle))
    assert_close(out, ref, np.float32, reduction)
