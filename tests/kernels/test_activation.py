"""activation_backward: every variant against the float64 reference, on values that reach every branch
(NaN and infinite outputs and gradients, signed zeros, outputs at exactly 0), in each tier:

- reference tier: the CPU variants, and the CUDA C kernels run on the host (``kernels.host_cuda``) through
  their launcher, with the grid capped at 2 blocks so the grid-stride loop wraps;
- ``cudasim``: the Numba CUDA variant in the simulator, grid capped likewise;
- ``gpu``: every "cuda" variant on a ResNet-sized activation.

The one-pass variants round as the NumPy expression does (the CUDA C kernels with the _rn intrinsics), so
they are compared with it bit for bit; the Numba CUDA kernel may fuse a multiply-add, so tanh and sigmoid
get float rounding tolerances there.
"""

import numpy as np
import pytest

from kernels import activation, device_arrays, host_cuda, registry
from kernels.activation import cupy_cuda, numba_cuda, reference
from kernels.activation.numpy import expression

SPECIAL = [0.0, -0.0, 1.0, -1.0, 0.5, 2.0, np.nan, np.inf, -np.inf, 1e-30, -1e-30]


def draw(shape, dtype, seed=0):
    """(g, y) with the special values in both, every pairing present, then random values."""
    rng = np.random.default_rng(seed)
    size = int(np.prod(shape))
    special = np.array(SPECIAL)
    pairs = np.stack(np.meshgrid(special, special), -1).reshape(-1, 2)
    g = rng.standard_normal(size)
    y = rng.standard_normal(size)
    count = min(size, len(pairs))
    g[:count], y[:count] = pairs[:count, 0], pairs[:count, 1]
    return g.reshape(shape).astype(dtype), y.reshape(shape).astype(dtype)


def assert_bits(out, expected):
    assert out.dtype == expected.dtype and out.shape == expected.shape
    np.testing.assert_array_equal(np.ascontiguousarray(out).view(np.uint8), np.ascontiguousarray(expected).view(np.uint8))


@pytest.mark.parametrize("name", activation.ACTIVATIONS)
def test_expression_matches_the_reference(name):
    g, y = draw((13, 11), np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        np.testing.assert_array_equal(expression(name, g, y), reference.activation_backward(name, g, y))


def test_relu_rule_is_pytorchs():
    # torch 2.13 threshold_backward: 0 where y <= 0 (a NaN gradient too), else g (a NaN output passes g)
    g = np.array([np.nan, 1.0, 5.0, 3.0, 4.0], np.float32)
    y = np.array([-1.0, 2.0, np.nan, 0.0, -0.0], np.float32)
    for variant in registry.variants("activation_backward"):
        if variant.device == "cpu":
            np.testing.assert_array_equal(variant.fn("relu", g, y), [0.0, 1.0, 5.0, 0.0, 0.0])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", activation.ACTIVATIONS)
@pytest.mark.parametrize("size", [1, 130, 70_000])  # 70,000: above the threaded kernels' threshold
def test_cpu_one_pass_is_bit_equal_to_the_expression(name, dtype, size):
    g, y = draw((size,), dtype)
    with np.errstate(invalid="ignore", over="ignore"):
        assert_bits(activation.activation_backward(name, g, y), expression(name, g, y))


def test_other_dtypes_and_views_take_the_expression():
    g, y = draw((6, 8), np.float16)
    with np.errstate(invalid="ignore", over="ignore"):
        assert_bits(activation.activation_backward("tanh", g, y), expression("tanh", g, y))
        g32, y64 = draw((6, 8), np.float32)[0], draw((6, 8), np.float64)[1]
        mixed = activation.activation_backward("sigmoid", g32, y64)
        assert mixed.dtype == np.float64
        g, y = draw((6, 8), np.float32)
        assert_bits(activation.activation_backward("relu", g.T, y.T), expression("relu", g.T, y.T))


def test_bad_arguments_are_named():
    g = np.zeros((2, 3), np.float32)
    with pytest.raises(ValueError, match=r"name must be one of \('relu', 'tanh', 'sigmoid'\), got 'gelu'"):
        activation.activation_backward("gelu", g, g)
    with pytest.raises(ValueError, match=r"the gradient's shape \(2, 3\) differs from the output's \(3, 2\)"):
        activation.activation_backward("relu", g, g.T)


HOST_AVAILABLE, HOST_WHY = host_cuda.available()


@pytest.mark.skipif(not HOST_AVAILABLE, reason=HOST_WHY)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", activation.ACTIVATIONS)
@pytest.mark.parametrize("size", [0, 1, 300, 1300])  # 1300 > 2 blocks of 256: the grid-stride loop wraps
def test_cuda_c_on_the_host_is_bit_equal_to_the_expression(name, dtype, size, monkeypatch):
    monkeypatch.setattr(cupy_cuda, "raw_module", host_cuda.module)
    monkeypatch.setattr(cupy_cuda, "MAX_BLOCKS", 2)
    g, y = draw((size,), dtype)
    with np.errstate(invalid="ignore", over="ignore"):
        assert_bits(cupy_cuda.one_pass(name, g, y), expression(name, g, y))
        strided = draw((2 * size,), dtype)
        assert_bits(cupy_cuda.one_pass(name, strided[0][::2], strided[1][::2]),
                    expression(name, strided[0][::2], strided[1][::2]))


@pytest.mark.cudasim
@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # the simulator's threads compute on NumPy scalars: inf - inf warns
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", activation.ACTIVATIONS)
def test_numba_cuda_in_the_simulator(name, dtype, monkeypatch):
    monkeypatch.setattr(numba_cuda, "MAX_BLOCKS", 2)
    g, y = draw((3, 200), dtype)  # 600 elements, 2 blocks of 256 threads: the loop wraps
    out = activation.activation_backward(name, device_arrays.to_device(g), device_arrays.to_device(y))
    assert isinstance(out, device_arrays.SimulatedDeviceArray)
    assert registry.selected("activation_backward", "cuda")[0].key == "numba_cuda.v1_one_pass"
    with np.errstate(invalid="ignore", over="ignore"):
        expected = expression(name, g, y)
        if name == "relu":
            assert_bits(device_arrays.to_host(out), expected)
        else:
            np.testing.assert_allclose(device_arrays.to_host(out), expected, rtol=4 * np.finfo(dtype).eps, atol=0)


@pytest.mark.gpu
@pytest.mark.parametrize("name", activation.ACTIVATIONS)
@pytest.mark.parametrize("variant", [v for v in registry.variants("activation_backward") if v.device == "cuda"],
                         ids=lambda v: v.key)
def test_every_cuda_variant_on_a_resnet_activation(name, variant):
    g, y = draw((128, 16, 32, 32), np.float32)
    out = device_arrays.to_host(variant.fn(name, device_arrays.to_device(g), device_arrays.to_device(y)))
    with np.errstate(invalid="ignore", over="ignore"):
        expected = expression(name, g, y)
    if variant.backend == "numba_cuda" and name != "relu":
        np.testing.assert_allclose(out, expected, rtol=4 * np.finfo(np.float32).eps, atol=0)
    else:
        assert_bits(out, expected)
