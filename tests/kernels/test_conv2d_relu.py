"""conv2d_forward(..., activation="relu"): every CPU forward variant, called through the entry point (so both
a fused epilogue and the entry point's in-place fallback run), against the float64 reference followed by
max(., 0) on the random geometries of test_conv2d.py, with and without bias and with poisoned outputs; the
dispatch between the two paths; the argument check.

Tolerances as in test_conv2d.py; the clamp adds no rounding.
"""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_conv2d import DTYPES, assert_close, cases, normal  # the same geometries and tolerances

import kernels
from kernels import conv2d, registry
from kernels.conv2d import reference
from kernels.registry import Variant

# the patched np.empty (below) stays in place for every example a test draws
SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

FORWARD_VARIANTS = [
    pytest.param(v, id=v.key) for v in registry.variants("conv2d_forward") if v.device == "cpu" and v.available
]


@pytest.fixture
def poisoned_empty(monkeypatch):
    """np.empty returns NaN-filled floats while the test runs, so an output element a CPU variant never writes
    shows up: the clamp keeps NaN (as torch.relu does), so an unwritten element cannot pass as a clamped 0."""
    empty = np.empty

    def poisoned(shape, dtype=float, *args, **kwargs):
        out = empty(shape, dtype, *args, **kwargs)
        if out.dtype.kind == "f":
            out.fill(np.nan)
        return out

    monkeypatch.setattr(np, "empty", poisoned)


def fused_and_reference(variant, case, dtype, seed, bias):
    x_shape, w_shape, args = case
    g = conv2d.conv2d_geometry(x_shape, w_shape, *args)
    rng = np.random.default_rng(seed)
    x, w = normal(rng, x_shape, dtype), normal(rng, w_shape, dtype)
    b = normal(rng, (g.K,), dtype) if bias else None
    with kernels.use(conv2d_forward=variant.key):
        out = conv2d.conv2d_forward(x, w, b, *args, activation="relu")
    ref = np.maximum(reference.conv2d_forward(x, w, b, *args), 0)
    return out, ref, g.C // g.groups * g.R * g.S, [a for a in (x, w, b) if a is not None]


@pytest.mark.parametrize("variant", FORWARD_VARIANTS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no_bias"])
@SETTINGS
@given(case=cases(), seed=st.integers(0, 2**16))
def test_matches_reference_then_relu(variant, dtype, bias, case, seed, poisoned_empty):
    out, ref, reduction, inputs = fused_and_reference(variant, case, dtype, seed, bias)
    assert_close(out, ref, dtype, reduction, *inputs)
    assert not (out < 0).any()


@pytest.mark.parametrize("variant", FORWARD_VARIANTS)
@pytest.mark.parametrize("shape", [(9, 4, 11, 13), (3, 4, 5, 5)], ids=["3x2-kernel", "1x1"])
def test_every_batch_block_is_clamped(variant, shape, monkeypatch, poisoned_empty):
    """Blocks of one image spread over threads (3x2 kernel), and the 1x1 GEMM path, both clamp every block."""
    from kernels.conv2d import numpy as conv2d_numpy

    monkeypatch.setattr(conv2d_numpy, "BLOCK_BYTES", 1)
    monkeypatch.setattr(conv2d_numpy, "PARALLEL_MIN_FLOPS", 0)
    kernel = (3, 2) if shape[2] > 5 else (1, 1)
    case = (shape, (6, 2) + kernel, ((1, 1), (0, 0), (1, 1), 2))
    out, ref, reduction, inputs = fused_and_reference(variant, case, np.float32, 3, True)
    assert_close(out, ref, np.float32, reduction, *inputs)


@pytest.mark.parametrize("variant", FORWARD_VARIANTS)
def test_zero_size_batch(variant):
    x, w, b = np.ones((0, 3, 7, 7), np.float32), np.full((4, 3, 3, 3), 0.5, np.float32), np.ones(4, np.float32)
    with kernels.use(conv2d_forward=variant.key):
        y = conv2d.conv2d_forward(x, w, b, activation="relu")
    assert y.shape == (0, 4, 5, 5) and y.dtype == np.float32


@pytest.mark.parametrize("variant", FORWARD_VARIANTS)
def test_nan_stays_nan(variant):
    """Like torch.relu (and tl.relu): a NaN output is not clamped to 0."""
    rng = np.random.default_rng(4)
    x, w = normal(rng, (1, 2, 6, 6), np.float64), normal(rng, (3, 2, 3, 3), np.float64)
    x[0, 0, 2, 2] = np.nan
    with kernels.use(conv2d_forward=variant.key):
        y = conv2d.conv2d_forward(x, w, None, activation="relu")
    assert np.isnan(y[:, :, :3, :3]).all() and not np.isnan(y[:, :, 3:, 3:]).any()


def test_fused_variants_get_the_activation_and_the_others_an_in_place_clamp(monkeypatch):
    """A variant marked ``fuses("relu")`` is called with activation="relu"; one without the mark is called
    plain and its own output array is clamped in place (no temporary)."""
    calls = []

    def plain(x, w, b, g):
        calls.append("plain")
        plain.out = np.full(g.y_shape, -1.0)
        plain.out[..., 0] = 2.0
        return plain.out

    def fused(x, w, b, g, activation=None):
        calls.append(activation)
        return np.zeros(g.y_shape)

    fused.activations = frozenset({"relu"})
    table = registry._variants["conv2d_forward"]
    for name, fn in (("v9_plain", plain), ("v9_fused", fused)):
        monkeypatch.setitem(table, f"numpy.{name}", Variant("conv2d_forward", "numpy", name, "cpu", fn))
    x, w = np.ones((1, 1, 4, 4)), np.ones((2, 1, 3, 3))
    with kernels.use(conv2d_forward="numpy.v9_plain"):
        y = conv2d.conv2d_forward(x, w, activation="relu")
    assert y is plain.out and (y[..., 0] == 2).all() and (y[..., 1:] == 0).all()
    with kernels.use(conv2d_forward="numpy.v9_fused"):
        conv2d.conv2d_forward(x, w, activation="relu")
        conv2d.conv2d_forward(x, w)
    assert calls == ["plain", "relu", None]


def test_which_cpu_variants_fuse():
    assert registry.variant("conv2d_forward", "numpy.v0_im2col").fn.activations == {"relu"}
    assert not hasattr(registry.variant("conv2d_forward", "numba.v1_direct").fn, "activations")


def test_unknown_activation():
    with pytest.raises(ValueError, match=r"conv2d activation must be None or one of \('relu',\), got 'gelu'"):
        conv2d.conv2d_forward(np.ones((1, 1, 5, 5)), np.ones((1, 1, 3, 3)), activation="gelu")
