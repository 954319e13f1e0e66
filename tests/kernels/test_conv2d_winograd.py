"""numpy.v3_winograd (Winograd F(2x2, 3x3)) on the geometries it runs itself: 3x3 filters at stride 1 and
dilation 1, any padding (backward_input up to 2), odd and even planes (partial tiles), channel counts below,
at and past a vector (16 float32 or 8 float64 lanes: the vector loops and their scalar tails), groups and
batches of 0..3; chunks of images, on one part or a part per thread, both ways of running the GEMMs; the routing of the CPU default to it; and its rounding on a
deep layer against im2col's. Outputs are poisoned (NaN-filled ``np.empty``), so an element never written
shows up.

Tolerances as in test_conv2d.py (atol grows with the square root of the reduction's length). The transforms
add and subtract up to 9 numbers, so Winograd's error is a few times im2col's, far inside them.
"""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_conv2d import DTYPES, assert_close, normal
from test_conv2d_relu import SETTINGS, poisoned_empty  # noqa: F401  (fixture)

from kernels import blas, conv2d, registry
from kernels.conv2d import numba_blocked, reference, winograd
from kernels.conv2d import numpy as conv2d_numpy

OPS = ["conv2d_forward", "conv2d_backward_input", "conv2d_backward_weight"]


def variant(op):
    return registry.variant(op, "numpy.v3_winograd").fn


@st.composite
def geometries(draw):
    """3x3, stride 1: (x_shape, w_shape, (stride, padding, dilation, groups))."""
    groups = draw(st.sampled_from([1, 1, 2, 3]))
    per_in, per_out = draw(st.integers(1, 20)), draw(st.integers(1, 20))
    padding = (draw(st.integers(0, 3)), draw(st.integers(0, 3)))
    size = [max(1, 3 - 2 * p) + draw(st.integers(0, 7)) for p in padding]
    N = draw(st.sampled_from([0, 1, 2, 3]))
    x_shape = (N, groups * per_in, size[0], size[1])
    return x_shape, (groups * per_out, per_in, 3, 3), (1, padding, 1, groups)


def run(op, case, dtype, seed, relu=False):
    """v3's result, the reference's, the reduction length and the inputs."""
    x_shape, w_shape, args = case
    g = conv2d.conv2d_geometry(x_shape, w_shape, *args)
    rng = np.random.default_rng(seed)
    x, w, b, dy = (normal(rng, shape, dtype) for shape in (x_shape, w_shape, (g.K,), g.y_shape))
    if op == "conv2d_forward":
        ref = reference.conv2d_forward(x, w, b, *args)
        out = variant(op)(x, w, b, g, "relu" if relu else None)
        return out, np.maximum(ref, 0) if relu else ref, g.C // g.groups * 9, (x, w, b)
    if op == "conv2d_backward_input":
        ref = reference.conv2d_backward_input(dy, w, x_shape, *args)
        return variant(op)(dy, w, g), ref, g.K // g.groups * 9, (dy, w)
    ref = reference.conv2d_backward_weight(dy, x, w_shape, *args)
    return variant(op)(dy, x, g), ref, g.N * g.P * g.Q, (dy, x)


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("dtype", DTYPES)
@SETTINGS
@given(case=geometries(), seed=st.integers(0, 2**16))
def test_matches_reference(op, dtype, case, seed, poisoned_empty):
    out, ref, reduction, inputs = run(op, case, dtype, seed)
    assert_close(out, ref, dtype, reduction, *inputs)


@pytest.mark.parametrize("dtype", DTYPES)
@SETTINGS
@given(case=geometries(), seed=st.integers(0, 2**16))
def test_forward_then_relu(dtype, case, seed, poisoned_empty):
    out, ref, reduction, inputs = run("conv2d_forward", case, dtype, seed, relu=True)
    assert_close(out, ref, dtype, reduction, *inputs)
    assert not (out < 0).any()


@pytest.mark.parametrize("op", OPS)
def test_every_pass_runs_winograd_itself_where_it_applies(op, monkeypatch):
    """Not a fallback in disguise: v0 is never called on a 3x3 stride-1 geometry."""
    for name in OPS:
        monkeypatch.setattr(conv2d_numpy, name, lambda *a, **k: pytest.fail("v0 was called"))
    out, ref, reduction, inputs = run(op, ((2, 17, 6, 7), (18, 17, 3, 3), (1, 1, 1, 1)), np.float32, 3)
    assert_close(out, ref, np.float32, reduction, *inputs)


@pytest.mark.parametrize("gemms", ["cblas", "numpy"])
@pytest.mark.parametrize("parallel", [False, True], ids=["one_part", "parts_per_thread"])
@pytest.mark.parametrize("op", OPS)
def test_chunks_of_images_in_parts_and_both_gemm_paths(op, parallel, gemms, monkeypatch, poisoned_empty):
    """Chunks of one image (backward_weight sums its dU over them), on one part or a part per thread, with
    the GEMMs through CBLAS on the threads or (no OpenBLAS) through NumPy."""
    monkeypatch.setattr(winograd, "CHUNK_BYTES", 1)
    monkeypatch.setattr(conv2d_numpy, "PARALLEL_MIN_FLOPS", 0 if parallel else float("inf"))
    if gemms == "numpy":
        monkeypatch.setattr(winograd.blas, "gemm", lambda dtype: None)
    elif blas.gemm(np.float32) is None:
        pytest.skip("NumPy's BLAS here is not an OpenBLAS")
    case = ((5, 18, 7, 6), (20, 9, 3, 3), (1, (1, 2), 1, 2))
    for dtype in DTYPES:
        out, ref, reduction, inputs = run(op, case, dtype, seed=11)
        assert_close(out, ref, dtype, reduction, *inputs)


def test_results_are_fresh_and_half_precision_comes_back_as_half():
    rng = np.random.default_rng(4)
    x, w = normal(rng, (2, 16, 6, 6), np.float32), normal(rng, (16, 16, 3, 3), np.float32)
    g = conv2d.conv2d_geometry(x.shape, w.shape, 1, 1)
    first = variant("conv2d_forward")(x, w, None, g)
    kept = first.copy()
    variant("conv2d_forward")(2 * x, w, None, g)
    np.testing.assert_array_equal(first, kept)
    half = variant("conv2d_forward")(x.astype(np.float16), w.astype(np.float16), None, g)
    assert half.dtype == np.float16
    np.testing.assert_allclose(half, first, rtol=1e-2, atol=5e-2)


@pytest.mark.parametrize("op", OPS)
def test_other_geometries_run_v0(op):
    """A stride, a dilation, another filter size, or backward_input past padding 2: v0's result exactly."""
    rng = np.random.default_rng(5)
    geometries = [((2, 4, 9, 9), (5, 4, 3, 3), (2, 1, 1, 1)), ((2, 4, 9, 9), (5, 4, 3, 3), (1, 1, 2, 1)),
                  ((2, 4, 9, 9), (5, 4, 5, 5), (1, 2, 1, 1)), ((2, 4, 5, 5), (5, 4, 3, 3), (1, 3, 1, 1))]
    for x_shape, w_shape, args in geometries:
        g = conv2d.conv2d_geometry(x_shape, w_shape, *args)
        if winograd.applies(g, backward_input=op == "conv2d_backward_input"):
            continue
        x, w = normal(rng, x_shape, np.float32), normal(rng, w_shape, np.float32)
        dy = normal(rng, g.y_shape, np.float32)
        operands = {"conv2d_forward": (x, w, None, g), "conv2d_backward_input": (dy, w, g),
                    "conv2d_backward_weight": (dy, x, g)}[op]
        v0 = registry.variant(op, "numpy.v0_im2col").fn
        np.testing.assert_array_equal(variant(op)(*operands), v0(*operands))


def test_rounding_on_a_deep_layer_is_within_a_few_times_im2col():
    """256 -> 256 channels at 4x4 (VGG's depth): the float32 error against float64, Winograd's and v0's."""
    rng = np.random.default_rng(6)
    x, w = normal(rng, (2, 256, 4, 4), np.float32), normal(rng, (256, 256, 3, 3), np.float32)
    g = conv2d.conv2d_geometry(x.shape, w.shape, 1, 1)
    dy = normal(rng, g.y_shape, np.float32)
    cases = [(reference.conv2d_forward(x, w, None, 1, 1), "conv2d_forward", (x, w, None, g)),
             (reference.conv2d_backward_input(dy, w, x.shape, 1, 1), "conv2d_backward_input", (dy, w, g)),
             (reference.conv2d_backward_weight(dy, x, w.shape, 1, 1), "conv2d_backward_weight", (dy, x, g))]
    for ref, op, operands in cases:
        ours = np.abs(variant(op)(*operands) - ref).max()
        v0 = np.abs(registry.variant(op, "numpy.v0_im2col").fn(*operands) - ref).max()
        assert ours <= 4 * v0, (op, ours, v0)


@pytest.mark.parametrize(
    "op, x_shape, w_shape, expected",
    [
        # VGG-11 on CIFAR: 128 -> 256 at 8x8 and deeper run Winograd; 64 -> 128 at 16x16 stays blocked
        ("conv2d_forward", (4, 128, 8, 8), (256, 128, 3, 3), "winograd"),
        ("conv2d_forward", (16, 256, 4, 4), (256, 256, 3, 3), "winograd"),
        ("conv2d_forward", (1, 64, 16, 16), (128, 64, 3, 3), "blocked"),
        ("conv2d_forward", (64, 128, 2, 2), (128, 128, 3, 3), "winograd"),
        ("conv2d_backward_input", (4, 256, 8, 8), (256, 256, 3, 3), "winograd"),
        ("conv2d_backward_input", (64, 128, 2, 2), (128, 128, 3, 3), "winograd"),
        # too few images for 64 rows of tiles: the GEMMs are too thin for Winograd, v0 (deep) or blocked (wide)
        ("conv2d_forward", (15, 256, 4, 4), (256, 256, 3, 3), "v0"),
        ("conv2d_forward", (63, 128, 2, 2), (128, 128, 3, 3), "v0"),
        ("conv2d_backward_input", (3, 256, 8, 8), (256, 256, 3, 3), "v0"),
        ("conv2d_forward", (1, 96, 13, 14), (96, 96, 3, 3), "blocked"),
        # wide layers, not deep: 96 -> 96 at 16x16 runs Winograd, 64 -> 96 stays blocked; not backward_weight
        ("conv2d_forward", (1, 96, 16, 16), (96, 96, 3, 3), "winograd"),
        ("conv2d_backward_input", (1, 96, 16, 16), (96, 96, 3, 3), "winograd"),
        ("conv2d_forward", (1, 64, 16, 16), (96, 64, 3, 3), "blocked"),
        ("conv2d_backward_weight", (1, 96, 16, 16), (96, 96, 3, 3), "blocked"),
        ("conv2d_backward_input", (1, 64, 16, 16), (128, 64, 3, 3), "blocked"),
        # backward_weight on deep layers whatever the batch: its GEMMs reduce over the tiles
        ("conv2d_backward_weight", (1, 128, 8, 8), (256, 128, 3, 3), "winograd"),
        ("conv2d_backward_weight", (1, 512, 2, 2), (512, 512, 3, 3), "winograd"),
        ("conv2d_backward_weight", (1, 64, 16, 16), (128, 64, 3, 3), "blocked"),
    ],
)
def test_default_routes_deep_and_wide_3x3_layers_to_winograd(op, x_shape, w_shape, expected, monkeypatch):
    """The CPU default picks Winograd on deep or wide 3x3 stride-1 layers (padding 1) whose batch fills 64
    rows of tiles (any batch for backward_weight), as measured in kernels/conv2d/README.md ("Winograd");
    the result is the reference's whichever runs."""
    calls = []
    lookup = numba_blocked.variant
    monkeypatch.setattr(numba_blocked, "variant", lambda o, key: calls.append(key) or lookup(o, key))
    for name in ("forward_blocked", "backward_input_blocked", "backward_weight_blocked"):
        original = getattr(numba_blocked, name)
        monkeypatch.setattr(numba_blocked, name, lambda *a, o=original, **k: calls.append("blocked") or o(*a, **k))
    rng = np.random.default_rng(7)
    x, w = normal(rng, x_shape, np.float32), normal(rng, w_shape, np.float32)
    padding = w_shape[2] // 2
    g = conv2d.conv2d_geometry(x_shape, w_shape, 1, padding)
    dy = normal(rng, g.y_shape, np.float32)
    if op == "conv2d_forward":
        out, ref = conv2d.conv2d_forward(x, w, None, 1, padding), reference.conv2d_forward(x, w, None, 1, padding)
        reduction, inputs = g.C * g.R * g.S, (x, w)
    elif op == "conv2d_backward_input":
        out = conv2d.conv2d_backward_input(dy, w, x_shape, 1, padding)
        ref, reduction, inputs = reference.conv2d_backward_input(dy, w, x_shape, 1, padding), g.K * 9, (dy, w)
    else:
        out = conv2d.conv2d_backward_weight(dy, x, w_shape, 1, padding)
        ref, reduction, inputs = reference.conv2d_backward_weight(dy, x, w_shape, 1, padding), g.P * g.Q, (dy, x)
    names = {"numpy.v3_winograd": "winograd", "numpy.v0_im2col": "v0", "blocked": "blocked"}
    assert [names[c] for c in calls] == [expected]
    assert_close(out, ref, np.float32, reduction, *inputs)
