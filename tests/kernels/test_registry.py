"""Variant registration, selection by default / TENSORLIB_KERNELS / kernels.use, and reporting."""

import numpy as np
import pytest

import kernels
from kernels import registry


@pytest.fixture
def toy_op():
    op = "toy_scale"

    @registry.register(op, "numpy", "v0_double", default=True)
    def double(x):
        """Doubles."""
        return x * 2

    @registry.register(op, "numpy", "v1_triple")
    def triple(x):
        return x * 3

    @registry.register(op, "cupy", "v1_gpu", device="cuda", default=True)
    def gpu(x):
        return x * 4

    yield op
    del registry._variants[op]
    for key in [k for k in registry._defaults if k[0] == op]:
        del registry._defaults[key]


def test_default_and_listing(toy_op):
    assert registry.get(toy_op)(np.ones(1))[0] == 2
    names = [(v.key, v.device) for v in kernels.variants(toy_op)]
    assert names == [("numpy.v0_double", "cpu"), ("numpy.v1_triple", "cpu"), ("cupy.v1_gpu", "cuda")]
    assert kernels.variants(toy_op)[0].doc == "Doubles."
    assert registry.selected(toy_op, "cpu")[1] == "default"


def test_use_context_manager_nests(toy_op):
    with kernels.use(**{toy_op: "numpy.v1_triple"}):
        assert registry.get(toy_op)(np.ones(1))[0] == 3
        assert registry.selected(toy_op)[1] == "kernels.use"
        with kernels.use(**{toy_op: "numpy.v0_double"}):
            assert registry.get(toy_op)(np.ones(1))[0] == 2
        assert registry.get(toy_op)(np.ones(1))[0] == 3
    assert registry.get(toy_op)(np.ones(1))[0] == 2


def test_environment_override(toy_op, monkeypatch):
    monkeypatch.setenv("TENSORLIB_KERNELS", f"{toy_op}=numpy.v1_triple")
    variant, reason = registry.selected(toy_op, "cpu")
    assert variant.name == "v1_triple" and reason == "TENSORLIB_KERNELS"
    with kernels.use(**{toy_op: "numpy.v0_double"}):  # the context manager wins over the environment
        assert registry.get(toy_op)(np.ones(1))[0] == 2


def test_override_for_another_device_is_ignored(toy_op):
    with kernels.use(**{toy_op: "cupy.v1_gpu"}):
        assert registry.selected(toy_op, "cpu") == (registry.variant(toy_op, "numpy.v0_double"), "default")


def test_unknown_names_are_reported(toy_op, monkeypatch):
    with pytest.raises(KeyError, match="v9_missing"):
        with kernels.use(**{toy_op: "numpy.v9_missing"}):
            pass
    with pytest.raises(KeyError, match="unknown op"):
        kernels.variants("no_such_op")
    monkeypatch.setenv("TENSORLIB_KERNELS", "malformed")
    with pytest.raises(ValueError, match="op=backend.vN_name"):
        registry.get(toy_op)
    monkeypatch.delenv("TENSORLIB_KERNELS")
    del registry._defaults[(toy_op, "cuda")]
    with pytest.raises(NotImplementedError, match="no variant for device 'cuda'"):
        registry.get(toy_op, "cuda")


def test_every_family_registers_a_cpu_default():
    for op in ["matmul", "conv2d_forward", "conv2d_backward_input", "conv2d_backward_weight",
               "conv2d_backward_bias", "max_pool2d_forward", "max_pool2d_backward", "avg_pool2d_forward",
               "avg_pool2d_backward", "lp_pool2d_forward", "lp_pool2d_backward",
               "adaptive_avg_pool2d_forward", "adaptive_avg_pool2d_backward"]:
        variant, reason = registry.selected(op, "cpu")
        assert reason == "default" and variant.device == "cpu" and variant.available
