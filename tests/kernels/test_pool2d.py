"""pool2d: every CPU variant against the float64 reference on random geometries, PyTorch's documented
corner cases pinned by value, and the argument checks of the entry points."""

from unittest import mock

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import kernels.pool2d as pool2d
from kernels import registry
from kernels.pool2d import numpy as pool2d_cpu
from kernels.pool2d import reference
from kernels.pool2d.geometry import adaptive_pool2d_geometry, pool2d_geometry, pool_output_size

SETTINGS = settings(max_examples=60, deadline=None)
DTYPES = [np.float32, np.float64]


def cpu_variants(op):
    return [pytest.param(v, id=v.key) for v in registry.variants(op) if v.device == "cpu" and v.available]


def assert_close(out, ref, dtype, *inputs):
    """|out - ref| <= atol + rtol*|ref| (rtol 1e-4 for float32), NaN where the reference has NaN, and a
    fresh array of the input's dtype."""
    rtol, atol = (1e-4, 1e-6) if dtype == np.float32 else (1e-10, 1e-12)
    assert out.shape == ref.shape and out.dtype == dtype
    assert not any(np.shares_memory(out, array) for array in inputs)
    out64 = out.astype(np.float64)
    np.testing.assert_array_equal(np.isnan(out64), np.isnan(ref))
    finite = ~np.isnan(ref)
    err, bound = np.abs(out64 - ref)[finite], atol + rtol * np.abs(ref)[finite]
    assert np.all(err <= bound), f"max excess {np.max(err - bound)} over {err.size} elements"


@st.composite
def geometries(draw, op, *, padding=True, dilation=True):
    """Valid pooling geometries: kernels 1..4 (non-square), strides 1..3, padding up to half the kernel,
    dilation 1..2, both ceil modes, odd and prime sizes, batch 0..2."""
    kernel = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    pad = (draw(st.integers(0, kernel[0] // 2)), draw(st.integers(0, kernel[1] // 2))) if padding else (0, 0)
    dil = (draw(st.integers(1, 2)), draw(st.integers(1, 2))) if dilation else (1, 1)
    ceil_mode = draw(st.booleans())
    N, C = draw(st.sampled_from([0, 1, 1, 2])), draw(st.integers(1, 3))
    H, W = draw(st.integers(1, 13)), draw(st.integers(1, 13))
    try:
        return pool2d_geometry(op, (N, C, H, W), kernel, stride, pad, dil, ceil_mode)
    except ValueError:
        assume(False)


@st.composite
def adaptive_geometries(draw):
    N, C = draw(st.sampled_from([0, 1, 1, 2])), draw(st.integers(1, 3))
    H, W = draw(st.integers(1, 13)), draw(st.integers(1, 13))
    output_size = (draw(st.integers(1, H + 2)), draw(st.integers(1, W + 2)))
    return adaptive_pool2d_geometry("adaptive_avg_pool2d", (N, C, H, W), output_size)


def normal(seed, shape, dtype):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def few_values(seed, shape, dtype):
    """Integers from {-2..2}: windows full of ties."""
    return np.random.default_rng(seed).integers(-2, 3, size=shape).astype(dtype)


seeds = st.integers(0, 2**32 - 1)


# ---- max pooling ------------------------------------------------------------------------------------


@pytest.mark.parametrize("variant", cpu_variants("max_pool2d_forward"))
@pytest.mark.parametrize("dtype", DTYPES)
@SETTINGS
@given(g=geometries("max_pool2d"), seed=seeds, ties=st.booleans())
def test_max_pool2d_forward_matches_reference(variant, dtype, g, seed, ties):
    x = (few_values if ties else normal)(seed, g.x_shape, dtype)
    y, indices = variant.fn(x, g)
    y_ref, indices_ref = reference.max_pool2d_forward(x, g)
    assert_close(y, y_ref, dtype, x)
    assert indices.dtype == np.int64
    np.testing.assert_array_equal(indices, indices_ref)


@pytest.mark.parametrize("variant", cpu_variants("max_pool2d_backward"))
@pytest.mark.parametrize("dtype", DTYPES)
@SETTINGS
@given(g=geometries("max_pool2d"), seed=seeds, ties=st.booleans())
def test_max_pool2d_backward_matches_reference(variant, dtype, g, seed, ties):
    x = (few_values if ties else normal)(seed, g.x_shape, dtype)
    _, indices = reference.max_pool2d_forward(x, g)
    dy = normal(seed + 1, g.y_shape, dtype)
    dx = variant.fn(dy, indices, g)
    assert_close(dx, reference.max_pool2d_backward(dy, indices, g), dtype, dy)


@pytest.mark.parametrize("variant", cpu_variants("max_pool2d_forward"))
def test_max_pool2d_nan_wins_and_the_last_nan_is_chosen(variant):
    g = pool2d_geometry("max_pool2d", (2, 3, 7, 8), (3, 2), (2, 1), (1, 1), (1, 2), True)
    x = normal(0, g.x_shape, np.float32)
    x.flat[np.random.default_rng(1).choice(x.size, 40, replace=False)] = np.nan
    y, indices = variant.fn(x, g)
    y_ref, indices_ref = reference.max_pool2d_forward(x, g)
    assert np.isnan(y).any()
    assert_close(y, y_ref, np.float32, x)
    np.testing.assert_array_equal(indices, indices_ref)


def test_max_pool2d_matches_pytorch_examples():
    x = np.arange(36, dtype=np.float32).reshape(1, 1, 6, 6)
    y, indices = pool2d.max_pool2d_forward(x, 3, 2, 1, ceil_mode=True)
    expected = np.array([[7, 9, 11, 11], [19, 21, 23, 23], [31, 33, 35, 35], [31, 33, 35, 35]])
    np.testing.assert_array_equal(y[0, 0], expected)
    np.testing.assert_array_equal(indices[0, 0], expected)
    y, indices = pool2d.max_pool2d_forward(np.array([[[[1, 3, 3, 2]]]]), (1, 2), 1)
    np.testing.assert_array_equal(y.ravel(), [3, 3, 3])
    np.testing.assert_array_equal(indices.ravel(), [1, 1, 2])  # the first of two equal maxima
    y, indices = pool2d.max_pool2d_forward(np.array([[[[np.nan, 1.0, np.nan, 2.0]]]]), (1, 4))
    assert np.isnan(y.item()) and indices.item() == 2


def test_max_pool2d_round_trip_sums_overlapping_windows():
    x = np.array([[[[0.0, 5.0, 1.0], [2.0, 3.0, 4.0]]]], dtype=np.float32)
    y, indices = pool2d.max_pool2d_forward(x, 2, 1)
    dx = pool2d.max_pool2d_backward(np.ones_like(y), indices, x.shape, 2, 1)
    np.testing.assert_array_equal(dx[0, 0], [[0, 2, 0], [0, 0, 0]])


def test_max_pool2d_integer_and_half_inputs():
    x = np.random.default_rng(0).integers(-100, 100, size=(2, 3, 9, 7))
    y, indices = pool2d.max_pool2d_forward(x.astype(np.int32), 3, 2, 1)
    y_ref, indices_ref = reference.max_pool2d_forward(x, pool2d_geometry("max_pool2d", x.shape, 3, 2, 1))
    assert y.dtype == np.int32
    np.testing.assert_array_equal(y, y_ref)
    np.testing.assert_array_equal(indices, indices_ref)
    y, indices = pool2d.max_pool2d_forward(x.astype(np.float16), 3, 2, 1)
    assert y.dtype == np.float16
    np.testing.assert_array_equal(y, y_ref)
    np.testing.assert_array_equal(indices, indices_ref)


# ---- average pooling --------------------------------------------------------------------------------

divisor_overrides = st.sampled_from([None, None, 1, 3, 7])


@pytest.mark.parametrize("variant", cpu_variants("avg_pool2d_forward"))
@pytest.mark.parametrize("dtype", DTYPES)
@SETTINGS
@given(g=geometries("avg_pool2d", dilation=False), seed=seeds, include_pad=st.booleans(), divisor=divisor_overrides)
def test_avg_pool2d_forward_matches_reference(variant, dtype, g, seed, include_pad, divisor):
    x = normal(seed, g.x_shape, dtype)
    y = variant.fn(x, g, include_pad, divisor)
    assert_close(y, reference.avg_pool2d_forward(x, g, include_pad, divisor), dtype, x)


@pytest.mark.parametrize("variant", cpu_variants("avg_pool2d_backward"))
@pytest.mark.parametrize("dtype", DTYPES)
@SETTINGS
@given(g=geometries("avg_pool2d", dilation=False), seed=seeds, include_pad=st.booleans(), divisor=divisor_overrides)
def test_avg_pool2d_backward_matches_reference(variant, dtype, g, seed, include_pad, divisor):
    dy = normal(seed, g.y_shape, dtype)
    dx = variant.fn(dy, g, include_pad, divisor)
    assert_close(dx, reference.avg_pool2d_backward(dy, g, include_pad, divisor), dtype, dy)


@pytest.mark.parametrize("dtype", DTYPES)
@SETTINGS
@given(g=geometries("avg_pool2d", dilation=False), seed=seeds, include_pad=st.booleans(), divisor=divisor_overrides)
def test_avg_pool2d_forward_rows_on_short_rows(dtype, g, seed, include_pad, divisor):
    """v1's row loop itself, which the variant runs only for rows of ``ROWS_MIN_Q`` outputs or more (the
    random planes are mostly narrower)."""
    x = normal(seed, g.x_shape, dtype)
    with mock.patch.object(pool2d_cpu, "ROWS_MIN_Q", 1):
        y = registry.variant("avg_pool2d_forward", "numpy.v1_output_rows").fn(x, g, include_pad, divisor)
    assert_close(y, reference.avg_pool2d_forward(x, g, include_pad, divisor), dtype, x)


def test_avg_pool2d_ceil_mode_divisor_matches_pytorch():
    # torch.nn.functional.avg_pool2d(torch.ones(1, 1, 6, 6), 3, 2, 1, ceil_mode=True): the last window runs
    # past the padded input, and only its part inside the padded input counts.
    y = pool2d.avg_pool2d_forward(np.ones((1, 1, 6, 6)), 3, 2, 1, ceil_mode=True)
    edge = np.array([2 / 3, 1, 1, 1 / 2])  # per axis: real elements / elements inside the padded input
    np.testing.assert_allclose(y[0, 0], np.outer(edge, edge), rtol=1e-12)
    y = pool2d.avg_pool2d_forward(np.ones((1, 1, 6, 6)), 3, 2, 1, ceil_mode=True, count_include_pad=False)
    np.testing.assert_allclose(y, 1.0, rtol=1e-12)


# ---- power-average pooling --------------------------------------------------------------------------

norm_types = st.sampled_from([1, 2, 2, 3, 1.5])


def lp_input(seed, shape, dtype, norm_type):
    """Signed for p = 2; positive (away from 0) otherwise, so that x**p is real and sums do not cancel."""
    x = normal(seed, shape, dtype)
    return x if norm_type == 2 else (np.abs(x) + 0.1).astype(dtype)


@pytest.mark.parametrize("variant", cpu_variants("lp_pool2d_forward"))
@pytest.mark.parametrize("dtype", DTYPES)
@SETTINGS
@given(g=geometries("lp_pool2d", padding=False, dilation=False), seed=seeds, norm_type=norm_types)
def test_lp_pool2d_forward_matches_reference(variant, dtype, g, seed, norm_type):
    x = lp_input(seed, g.x_shape, dtype, norm_type)
    assert_close(variant.fn(x, g, float(norm_type)), reference.lp_pool2d_forward(x, g, norm_type), dtype, x)


@pytest.mark.parametrize("variant", cpu_variants("lp_pool2d_backward"))
@pytest.mark.parametrize("dtype", DTYPES)
@SETTINGS
@given(g=geometries("lp_pool2d", padding=False, dilation=False), seed=seeds, norm_type=norm_types)
def test_lp_pool2d_backward_matches_reference(variant, dtype, g, seed, norm_type):
    x = lp_input(seed, g.x_shape, dtype, norm_type)
    y64 = reference.lp_pool2d_forward(x, g, norm_type)
    dy = normal(seed + 1, g.y_shape, dtype)
    dx = variant.fn(dy, x, y64.astype(dtype), g, float(norm_type))
    assert_close(dx, reference.lp_pool2d_backward(dy, x, y64, g, norm_type), dtype, dy, x)


@pytest.mark.parametrize("dtype", DTYPES)
@SETTINGS
@given(g=geometries("lp_pool2d", padding=False, dilation=False), seed=seeds, norm_type=norm_types)
def test_lp_pool2d_forward_rows_on_short_rows(dtype, g, seed, norm_type):
    x = lp_input(seed, g.x_shape, dtype, norm_type)
    with mock.patch.object(pool2d_cpu, "ROWS_MIN_Q", 1):
        y = registry.variant("lp_pool2d_forward", "numpy.v1_output_rows").fn(x, g, float(norm_type))
    assert_close(y, reference.lp_pool2d_forward(x, g, norm_type), dtype, x)


def test_lp_pool2d_gradient_is_zero_where_the_output_is_zero():
    x = np.zeros((1, 1, 4, 4), dtype=np.float32)
    x[0, 0, :2, :2] = [[3.0, -4.0], [0.0, 0.0]]
    y = pool2d.lp_pool2d_forward(x, 2, 2)
    np.testing.assert_allclose(y[0, 0], [[5, 0], [0, 0]])
    dx = pool2d.lp_pool2d_backward(np.ones_like(y), x, y, 2, 2)
    expected = np.zeros((4, 4), dtype=np.float32)
    expected[:2, :2] = [[0.6, -0.8], [0.0, 0.0]]
    np.testing.assert_allclose(dx[0, 0], expected, rtol=1e-6)
    assert not np.isnan(dx).any()


# ---- adaptive average pooling -----------------------------------------------------------------------


@pytest.mark.parametrize("variant", cpu_variants("adaptive_avg_pool2d_forward"))
@pytest.mark.parametrize("dtype", DTYPES)
@SETTINGS
@given(g=adaptive_geometries(), seed=seeds, global_pool=st.booleans())
def test_adaptive_avg_pool2d_forward_matches_reference(variant, dtype, g, seed, global_pool):
    if global_pool:
        g = adaptive_pool2d_geometry("adaptive_avg_pool2d", g.x_shape, 1)
    x = normal(seed, g.x_shape, dtype)
    assert_close(variant.fn(x, g), reference.adaptive_avg_pool2d_forward(x, g), dtype, x)


@pytest.mark.parametrize("variant", cpu_variants("adaptive_avg_pool2d_backward"))
@pytest.mark.parametrize("dtype", DTYPES)
@SETTINGS
@given(g=adaptive_geometries(), seed=seeds, global_pool=st.booleans())
def test_adaptive_avg_pool2d_backward_matches_reference(variant, dtype, g, seed, global_pool):
    if global_pool:
        g = adaptive_pool2d_geometry("adaptive_avg_pool2d", g.x_shape, 1)
    dy = normal(seed, g.y_shape, dtype)
    assert_close(variant.fn(dy, g), reference.adaptive_avg_pool2d_backward(dy, g), dtype, dy)


def as_tuple(result):
    return result if isinstance(result, tuple) else (result,)


def test_strided_and_half_inputs_give_the_contiguous_float32_results():
    x = normal(0, (3, 2, 9, 11), np.float32).transpose(1, 0, 3, 2)[:, :, ::-1]  # (2, 3, 11, 9), no unit stride
    contiguous = np.ascontiguousarray(x)
    for fn, args in [
        (pool2d.max_pool2d_forward, (3, 2, 1)),
        (pool2d.avg_pool2d_forward, (3, 2, 1, True, False)),
        (pool2d.lp_pool2d_forward, (2, 3, 2)),
        (pool2d.adaptive_avg_pool2d_forward, (1,)),
        (pool2d.adaptive_avg_pool2d_forward, ((4, 3),)),
    ]:
        expected = as_tuple(fn(contiguous, *args))
        for out, want in zip(as_tuple(fn(x, *args)), expected):
            np.testing.assert_array_equal(out, want)
        half = as_tuple(fn(x.astype(np.float16), *args))[0]
        assert half.dtype == np.float16
        np.testing.assert_allclose(half, expected[0], rtol=2e-3, atol=2e-3)  # float16 rounding: 2**-10


# ---- geometry and argument checks -------------------------------------------------------------------


@pytest.mark.parametrize(
    "size, kernel, stride, padding, dilation, ceil_mode, expected",
    [
        (32, 2, 2, 0, 1, False, 16),
        (7, 3, 3, 0, 1, False, 2),  # the last column is never visited
        (7, 3, 3, 0, 1, True, 3),  # ceil_mode: a last window hanging over the edge
        (6, 3, 2, 1, 1, True, 4),
        (5, 2, 2, 1, 1, True, 3),  # ceil would give 4, but that window would start in the right padding
        (10, 3, 1, 1, 2, False, 8),  # dilated: the window spans 5
    ],
)
def test_pool_output_size(size, kernel, stride, padding, dilation, ceil_mode, expected):
    assert pool_output_size(size, kernel, stride, padding, dilation, ceil_mode) == expected


def test_stride_defaults_to_the_kernel_size():
    assert pool2d_geometry("max_pool2d", (1, 1, 9, 8), (3, 2)).stride == (3, 2)
    assert pool2d_geometry("max_pool2d", (1, 1, 9, 8), (3, 2), []).stride == (3, 2)


X = np.ones((2, 3, 8, 8), dtype=np.float32)
DY = np.ones((2, 3, 4, 4), dtype=np.float32)  # the output gradient of 2x2 pooling of X
INDICES = np.zeros((2, 3, 4, 4), dtype=np.int64)
max_fwd, max_bwd = pool2d.max_pool2d_forward, pool2d.max_pool2d_backward
avg_fwd, lp_fwd, lp_bwd = pool2d.avg_pool2d_forward, pool2d.lp_pool2d_forward, pool2d.lp_pool2d_backward
ada_fwd, ada_bwd = pool2d.adaptive_avg_pool2d_forward, pool2d.adaptive_avg_pool2d_backward

BAD_CALLS = [
    (max_fwd, (np.ones((3, 8, 8)), 2), {}, ValueError, r"4-D \(N, C, H, W\).*\(3, 8, 8\)"),
    (max_fwd, (np.ones((2, 0, 8, 8)), 2), {}, ValueError, r"non-zero channels.*\(2, 0, 8, 8\)"),
    (max_fwd, (X, 0), {}, ValueError, r"kernel_size must be positive, got \(0, 0\)"),
    (max_fwd, (X, (2, 2, 2)), {}, TypeError, r"kernel_size must be an int or a pair"),
    (max_fwd, (X, 2, (1, 0)), {}, ValueError, r"stride must be positive, got \(1, 0\)"),
    (max_fwd, (X, 2), {"dilation": 0}, ValueError, r"dilation must be positive, got \(0, 0\)"),
    (max_fwd, (X, 2), {"padding": -1}, ValueError, r"padding must be non-negative, got \(-1, -1\)"),
    (max_fwd, (X, 3), {"padding": 2}, ValueError, r"padding \(2, 2\) must be at most half the kernel size \(3, 3\)"),
    (max_fwd, (X, (2, 4)), {"padding": (1, 3)}, ValueError, r"padding \(1, 3\) .* kernel size \(2, 4\)"),
    (
        max_fwd, (X, 9), {}, ValueError,
        r"output would be empty \(0x0\): input size \(8, 8\), kernel \(9, 9\), stride \(9, 9\), padding \(0, 0\)",
    ),
    (max_fwd, (np.ones((1, 1, 2, 2)), 2, 1, 1, 3), {}, ValueError, r"covers only padding.*dilation \(3, 3\)"),
    (max_fwd, (X, 2), {"ceil_mode": 1}, TypeError, r"ceil_mode must be a bool, got 1"),
    (max_fwd, (X.astype(bool), 2), {}, TypeError, r"input must be an integer or floating-point array, got dtype bool"),
    (
        max_bwd, (DY[..., :3], INDICES, X.shape, 2), {},
        ValueError,
        r"grad_output must have shape \(2, 3, 4, 4\), got \(2, 3, 4, 3\)",
    ),
    (
        max_bwd, (DY, INDICES.astype(float), X.shape, 2), {},
        TypeError,
        r"indices must be an integer array, got dtype float64",
    ),
    (max_bwd, (DY, INDICES + 64, X.shape, 2), {}, ValueError, r"indices must lie in \[0, H\*W\) = \[0, 64\)"),
    (max_bwd, (DY, INDICES - 1, X.shape, 2), {}, ValueError, r"indices must lie in \[0, H\*W\) = \[0, 64\)"),
    (avg_fwd, (X.astype(np.int64), 2), {}, TypeError, r"avg_pool2d input must be a floating-point array, got dtype int64"),
    (avg_fwd, (X, 2), {"divisor_override": 0}, ValueError, r"divisor_override must be None or a non-zero int, got 0"),
    (avg_fwd, (X, 2), {"count_include_pad": None}, TypeError, r"count_include_pad must be a bool, got None"),
    (avg_fwd, (X, 2, 2, 3), {}, ValueError, r"padding \(3, 3\) must be at most half the kernel size \(2, 2\)"),
    (lp_fwd, (X, 0, 2), {}, ValueError, r"norm_type must be positive and finite .*got 0"),
    (lp_fwd, (X, float("inf"), 2), {}, ValueError, r"norm_type must be positive and finite .*got inf"),
    (lp_fwd, (X, "2", 2), {}, TypeError, r"norm_type must be a real number, got '2'"),
    (lp_fwd, (X.astype(np.int32), 2, 2), {}, TypeError, r"lp_pool2d input must be a floating-point array, got dtype int32"),
    (
        lp_bwd, (DY.astype(np.float64), X, DY, 2, 2), {},
        TypeError,
        r"input dtype float32 does not match grad_output dtype float64",
    ),
    (ada_fwd, (X, 0), {}, ValueError, r"output_size must be positive, got \(0, 0\)"),
    (ada_fwd, (X, (2, None)), {}, TypeError, r"output_size must be an int or a pair of ints, got \(2, None\)"),
    (ada_fwd, (X.astype(np.int32), 2), {}, TypeError, r"floating-point array, got dtype int32"),
    (
        ada_bwd, (DY[..., :2, :2], X.shape, 3), {},
        ValueError,
        r"grad_output must have shape \(2, 3, 3, 3\), got \(2, 3, 2, 2\)",
    ),
]


@pytest.mark.parametrize("fn, args, kwargs, error, match", BAD_CALLS)
def test_bad_arguments_are_rejected_with_a_message_naming_them(fn, args, kwargs, error, match):
    with pytest.raises(error, match=match):
        fn(*args, **kwargs)


@pytest.mark.parametrize(
    "op, default",
    [
        ("max_pool2d_forward", "numpy.v0_window_loop"),
        ("max_pool2d_backward", "numpy.v0_window_loop"),
        ("avg_pool2d_forward", "numpy.v1_output_rows"),
        ("avg_pool2d_backward", "numpy.v1_output_rows"),
        ("lp_pool2d_forward", "numpy.v1_output_rows"),
        ("lp_pool2d_backward", "numpy.v1_output_rows"),
        ("adaptive_avg_pool2d_forward", "numpy.v0_window_loop"),
        ("adaptive_avg_pool2d_backward", "numpy.v0_window_loop"),
    ],
)
def test_every_op_has_a_cpu_default(op, default):
    variant, reason = registry.selected(op, "cpu")
    assert (variant.key, reason) == (default, "default")
