"""conv2d: every CPU variant against the float64 reference on random geometries, the classic CNN primer's
worked examples pinned by value, variant selection, and the argument checks of the entry points.

Tolerance: |out - ref| <= atol + rtol*|ref| with rtol 1e-4 (float32) or 1e-10 (float64). Each output is
a sum of ``n`` products of unit-normal inputs, whose rounding error grows like sqrt(n) while the sum itself
may cancel to near zero, so atol is 1e-5*sqrt(n) (float32) or 1e-12*sqrt(n) (float64), with n the
reduction length of the pass: C/groups*R*S (forward), K/groups*R*S (input gradient), N*P*Q (weight and
bias gradients).
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from threadpoolctl import threadpool_limits

import kernels
from kernels import conv2d, registry
from kernels.conv2d import numpy as conv2d_numpy
from kernels.conv2d import reference

SETTINGS = settings(max_examples=25, deadline=None)
DTYPES = [np.float32, np.float64]
OPS = ["conv2d_forward", "conv2d_backward_input", "conv2d_backward_weight", "conv2d_backward_bias"]


CPU_VARIANTS = [
    pytest.param(op, v, id=f"{op}-{v.key}")
    for op in OPS
    for v in registry.variants(op)
    if v.device == "cpu" and v.available
]


def assert_close(out, ref, dtype, reduction, *inputs):
    """Within the module's tolerance, of the input's dtype, and sharing no memory with the inputs."""
    rtol, atol = (1e-4, 1e-5) if dtype == np.float32 else (1e-10, 1e-12)
    atol *= max(1, reduction) ** 0.5
    assert out.shape == ref.shape and out.dtype == dtype
    assert not any(np.shares_memory(out, array) for array in inputs)
    err, bound = np.abs(out.astype(np.float64) - ref), atol + rtol * np.abs(ref)
    assert np.all(err <= bound), f"max excess {np.max(err - bound)} over {err.size} elements"


def normal(rng, shape, dtype):
    """Fresh unit-normal values (never zeros), cast to dtype; the reference sees exactly the same numbers."""
    return rng.standard_normal(shape).astype(dtype)


@st.composite
def cases(draw):
    """Valid convolutions: kernels 1..4 (non-square), stride 1..3, padding 0..2, dilation 1..2, dense,
    grouped and depthwise channels, odd and prime sizes, batch 0..3; returns (x_shape, w_shape, args)."""
    layout = draw(st.sampled_from(["dense", "grouped", "depthwise"]))
    if layout == "dense":
        groups, per_in, per_out = 1, draw(st.integers(1, 4)), draw(st.integers(1, 5))
    elif layout == "grouped":
        groups, per_in, per_out = draw(st.integers(2, 3)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    else:
        groups, per_in, per_out = draw(st.integers(2, 5)), 1, draw(st.integers(1, 2))
    kernel = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    padding = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    # the smallest input that leaves one output position, plus up to 9 more rows / columns
    size = [max(1, d * (k - 1) + 1 - 2 * p) + draw(st.integers(0, 9)) for k, p, d in zip(kernel, padding, dilation)]
    N = draw(st.sampled_from([0, 1, 1, 2, 3]))
    x_shape = (N, groups * per_in, size[0], size[1])
    w_shape = (groups * per_out, per_in) + kernel
    return x_shape, w_shape, (stride, padding, dilation, groups)


def run_case(op, variant, case, dtype, seed):
    """The variant's result, the reference's, the reduction length and the inputs, for one op."""
    x_shape, w_shape, args = case
    g = conv2d.conv2d_geometry(x_shape, w_shape, *args)
    rng = np.random.default_rng(seed)
    x, w, b, dy = (normal(rng, shape, dtype) for shape in (x_shape, w_shape, (g.K,), g.y_shape))
    per_in, per_out = g.C // g.groups, g.K // g.groups
    if op == "conv2d_forward":
        return variant.fn(x, w, b, g), reference.conv2d_forward(x, w, b, *args), per_in * g.R * g.S, (x, w, b)
    if op == "conv2d_backward_input":
        ref = reference.conv2d_backward_input(dy, w, x_shape, *args)
        return variant.fn(dy, w, g), ref, per_out * g.R * g.S, (dy, w)
    if op == "conv2d_backward_weight":
        ref = reference.conv2d_backward_weight(dy, x, w_shape, *args)
        return variant.fn(dy, x, g), ref, g.N * g.P * g.Q, (dy, x)
    return variant.fn(dy), reference.conv2d_backward_bias(dy), g.N * g.P * g.Q, (dy,)


@pytest.mark.parametrize("op, variant", CPU_VARIANTS)
@pytest.mark.parametrize("dtype", DTYPES)
@SETTINGS
@given(case=cases(), seed=st.integers(0, 2**16))
def test_variant_matches_reference(op, variant, dtype, case, seed):
    out, ref, reduction, inputs = run_case(op, variant, case, dtype, seed)
    assert_close(out, ref, dtype, reduction, *inputs)


@pytest.mark.parametrize("blas_threads", [1, None], ids=["one_thread", "all_threads"])
@pytest.mark.parametrize("op", OPS)
def test_many_blocks_serial_and_threaded(op, blas_threads, monkeypatch):
    """Blocks of one image: with one BLAS thread they run in turn, with more they are spread over threads."""
    monkeypatch.setattr(conv2d_numpy, "BLOCK_BYTES", 1)
    monkeypatch.setattr(conv2d_numpy, "PARALLEL_MIN_FLOPS", 0)
    case = ((9, 4, 11, 13), (6, 2, 3, 2), ((2, 1), (1, 2), (1, 2), 2))
    with threadpool_limits(blas_threads):
        out, ref, reduction, inputs = run_case(op, registry.selected(op)[0], case, np.float32, seed=7)
    assert_close(out, ref, np.float32, reduction, *inputs)


@pytest.mark.parametrize("dtype", DTYPES)
def test_entry_points_return_fresh_arrays(dtype):
    """Results must survive later calls: none may be a view of a reused workspace."""
    rng = np.random.default_rng(0)
    x, w, b = normal(rng, (5, 3, 9, 8), dtype), normal(rng, (4, 3, 3, 3), dtype), normal(rng, (4,), dtype)
    dy = normal(rng, (5, 4, 9, 8), dtype)
    results = [
        conv2d.conv2d_forward(x, w, b, 1, 1),
        conv2d.conv2d_backward_input(dy, w, x.shape, 1, 1),
        conv2d.conv2d_backward_weight(dy, x, w.shape, 1, 1),
        conv2d.conv2d_backward_bias(dy),
    ]
    kept = [r.copy() for r in results]
    conv2d.conv2d_forward(-x, w, b, 1, 1)
    conv2d.conv2d_backward_input(-dy, w, x.shape, 1, 1)
    conv2d.conv2d_backward_weight(-dy, x, w.shape, 1, 1)
    conv2d.conv2d_backward_bias(-dy)
    for result, copy in zip(results, kept):
        np.testing.assert_array_equal(result, copy)


def test_non_contiguous_and_float16_inputs():
    rng = np.random.default_rng(1)
    x = normal(rng, (2, 6, 14, 12), np.float32)[:, ::2, ::2, ::-1]
    w = normal(rng, (3, 3, 4, 3), np.float32).transpose(0, 1, 3, 2)
    y = conv2d.conv2d_forward(x, w, None, 1, 1)
    assert_close(y, reference.conv2d_forward(x, w, None, 1, 1), np.float32, 36, x, w)
    half = conv2d.conv2d_forward(x.astype(np.float16), w.astype(np.float16), None, 1, 1)
    assert half.dtype == np.float16
    np.testing.assert_allclose(half, y, rtol=1e-2, atol=5e-2)


def test_zero_size_batch():
    x, w = np.ones((0, 3, 7, 7), np.float32), np.full((4, 3, 3, 3), 0.5, np.float32)
    dy = np.ones((0, 4, 5, 5), np.float32)
    assert conv2d.conv2d_forward(x, w, np.ones(4, np.float32)).shape == (0, 4, 5, 5)
    assert conv2d.conv2d_backward_input(dy, w, x.shape).shape == (0, 3, 7, 7)
    dw = conv2d.conv2d_backward_weight(dy, x, w.shape)
    assert dw.shape == w.shape and dw.dtype == np.float32 and not dw.any()
    assert not conv2d.conv2d_backward_bias(dy).any()


# The classic CNN primer's worked examples.


def test_cifar_layer_32x32x3_with_ten_5x5_filters_keeps_its_size():
    """A 32x32x3 image through 10 filters of 5x5x3 at stride 1 and padding 2 gives a 32x32x10 volume, and the
    layer has 10*5*5*3 weights + 10 biases = 760 parameters."""
    rng = np.random.default_rng(2)
    x, w, b = normal(rng, (1, 3, 32, 32), np.float32), normal(rng, (10, 3, 5, 5), np.float32), normal(rng, (10,), np.float32)
    y = conv2d.conv2d_forward(x, w, b, stride=1, padding=2)
    assert y.shape == (1, 10, 32, 32)
    assert w.size + b.size == 760
    assert_close(y, reference.conv2d_forward(x, w, b, 1, 2), np.float32, 75, x, w, b)


@pytest.mark.parametrize("stride, size", [(1, 5), (2, 3), (3, 2)])
def test_7x7_input_3x3_filter_output_sizes(stride, size):
    x, w = np.random.default_rng(3).standard_normal((1, 1, 7, 7)), np.ones((1, 1, 3, 3))
    assert conv2d.conv2d_forward(x, w, None, stride).shape == (1, 1, size, size)


def test_conv_output_size_formula_and_its_arguments():
    assert conv2d.conv_output_size(7, 3, stride=3, padding=0, dilation=1) == 2
    assert conv2d.conv_output_size(32, 5, stride=1, padding=2, dilation=1) == 32
    assert conv2d.conv_output_size(7, 3, stride=1, padding=0, dilation=3) == 1
    with pytest.raises(ValueError, match="output would be empty"):
        conv2d.conv_output_size(3, 7, stride=1, padding=0, dilation=1)
    with pytest.raises(ValueError, match="stride must be at least 1, got 0"):
        conv2d.conv_output_size(7, 3, stride=0, padding=0, dilation=1)
    with pytest.raises(ValueError, match="padding must be at least 0, got -1"):
        conv2d.conv_output_size(7, 3, stride=1, padding=-1, dilation=1)
    with pytest.raises(TypeError, match="size must be an int, got 7.0"):
        conv2d.conv_output_size(7.0, 3, stride=1, padding=0, dilation=1)


def test_stride_3_on_7x7_floors_and_never_visits_the_last_row_and_column():
    rng = np.random.default_rng(4)
    x, w = rng.standard_normal((1, 1, 7, 7)), rng.standard_normal((1, 1, 3, 3))
    y = conv2d.conv2d_forward(x, w, None, 3)
    changed = x.copy()
    changed[..., 6, :] += 100.0
    changed[..., :, 6] -= 100.0
    np.testing.assert_array_equal(conv2d.conv2d_forward(changed, w, None, 3), y)
    dx = conv2d.conv2d_backward_input(rng.standard_normal(y.shape), w, x.shape, 3)
    assert not dx[..., 6, :].any() and not dx[..., :, 6].any()


def test_hand_computed_example():
    """x = 0..15 as a 4x4 image, a 2x2 filter [[1, 0], [0, -1]] (a diagonal difference) and bias 1: every
    output is x[i, j] - x[i+1, j+1] + 1 = -5 + 1; with stride 2 and padding 1 the border windows see zeros."""
    x = np.arange(16, dtype=np.float64).reshape(1, 1, 4, 4)
    w = np.array([[[[1.0, 0.0], [0.0, -1.0]]]])
    np.testing.assert_array_equal(conv2d.conv2d_forward(x, w, np.array([1.0])), np.full((1, 1, 3, 3), -4.0))
    y = conv2d.conv2d_forward(x, w, np.array([1.0]), stride=2, padding=1)
    np.testing.assert_array_equal(y[0, 0], [[1.0, -1.0, 1.0], [-7.0, -4.0, 8.0], [1.0, 14.0, 16.0]])


# Variant selection


def test_variant_selection_by_use_and_environment(monkeypatch):
    key = registry.selected("conv2d_forward")[0].key
    with kernels.use(conv2d_forward=key):
        assert registry.selected("conv2d_forward") == (registry.variant("conv2d_forward", key), "kernels.use")
    key = registry.selected("conv2d_backward_weight")[0].key  # the defaults of the passes may differ
    monkeypatch.setenv("TENSORLIB_KERNELS", f"conv2d_backward_weight={key}")
    assert registry.selected("conv2d_backward_weight")[1] == "TENSORLIB_KERNELS"
    rng = np.random.default_rng(5)
    dy, x = normal(rng, (2, 2, 4, 4), np.float64), normal(rng, (2, 3, 6, 6), np.float64)
    dw = conv2d.conv2d_backward_weight(dy, x, (2, 3, 3, 3))
    assert_close(dw, reference.conv2d_backward_weight(dy, x, (2, 3, 3, 3)), np.float64, 32, dy, x)


def test_every_op_has_one_cpu_default():
    for op in OPS:
        variant, reason = registry.selected(op)
        assert reason == "default" and variant.device == "cpu"


# padding strings


def test_padding_same_and_valid():
    rng = np.random.default_rng(6)
    x, w = normal(rng, (2, 3, 7, 6), np.float64), normal(rng, (4, 3, 3, 5), np.float64)
    same = conv2d.conv2d_forward(x, w, None, 1, "same")
    assert same.shape[2:] == x.shape[2:]
    np.testing.assert_array_equal(same, conv2d.conv2d_forward(x, w, None, 1, (1, 2)))
    np.testing.assert_array_equal(conv2d.conv2d_forward(x, w, None, 1, "valid"), conv2d.conv2d_forward(x, w))
    dilated = conv2d.conv2d_forward(x, w, None, 1, "same", dilation=(2, 1))
    assert dilated.shape[2:] == x.shape[2:]


# argument checks: each names the argument and the values involved


def bad(match, error=ValueError):
    return pytest.raises(error, match=match)


def test_mismatched_channels():
    with bad(r"weight shape \(2, 4, 3, 3\) expects 4 input channels .* input shape \(1, 3, 5, 5\) has 3"):
        conv2d.conv2d_forward(np.ones((1, 3, 5, 5)), np.ones((2, 4, 3, 3)))


def test_groups_must_divide_channels():
    with bad(r"input channels 3 .* not divisible by groups=2"):
        conv2d.conv2d_forward(np.ones((1, 3, 5, 5)), np.ones((2, 1, 3, 3)), groups=2)
    with bad(r"output channels 3 .* not divisible by groups=2"):
        conv2d.conv2d_forward(np.ones((1, 4, 5, 5)), np.ones((3, 2, 3, 3)), groups=2)
    with bad(r"groups must be a positive int, got 0"):
        conv2d.conv2d_forward(np.ones((1, 4, 5, 5)), np.ones((3, 2, 3, 3)), groups=0)


def test_wrong_ranks():
    with bad(r"input must be 4-D \(N, C, H, W\), got shape \(3, 5, 5\)"):
        conv2d.conv2d_forward(np.ones((3, 5, 5)), np.ones((2, 3, 3, 3)))
    with bad(r"weight must be 4-D .* got shape \(3, 3, 3\)"):
        conv2d.conv2d_forward(np.ones((1, 3, 5, 5)), np.ones((3, 3, 3)))
    with bad(r"grad_output must be 4-D .* got shape \(4, 5\)"):
        conv2d.conv2d_backward_bias(np.ones((4, 5)))


@pytest.mark.parametrize("stride", [0, -1, (1, 0)])
def test_non_positive_stride(stride):
    with bad(r"stride must be positive, got \(-?\d, -?\d\)"):
        conv2d.conv2d_forward(np.ones((1, 1, 5, 5)), np.ones((1, 1, 3, 3)), stride=stride)


def test_bad_dilation_and_kernel():
    with bad(r"dilation must be positive, got \(0, 0\)"):
        conv2d.conv2d_forward(np.ones((1, 1, 5, 5)), np.ones((1, 1, 3, 3)), dilation=0)
    with bad(r"kernel size must be positive, got weight shape \(1, 1, 0, 3\)"):
        conv2d.conv2d_forward(np.ones((1, 1, 5, 5)), np.ones((1, 1, 0, 3)))


def test_negative_padding_and_bad_strings():
    with bad(r"padding must be non-negative, got \(-1, -1\)"):
        conv2d.conv2d_forward(np.ones((1, 1, 5, 5)), np.ones((1, 1, 3, 3)), padding=-1)
    with bad(r"padding must be an int, a pair, 'same' or 'valid', got 'full'"):
        conv2d.conv2d_forward(np.ones((1, 1, 5, 5)), np.ones((1, 1, 3, 3)), padding="full")
    with bad(r"padding='same' needs stride 1, got stride \(2, 2\)"):
        conv2d.conv2d_forward(np.ones((1, 1, 5, 5)), np.ones((1, 1, 3, 3)), stride=2, padding="same")
    with bad(r"padding='same' with kernel \(2, 2\) and dilation \(1, 1\) needs asymmetric padding"):
        conv2d.conv2d_forward(np.ones((1, 1, 5, 5)), np.ones((1, 1, 2, 2)), padding="same")
    with bad(r"stride must be an int or a pair of ints, got 1.5", TypeError):
        conv2d.conv2d_forward(np.ones((1, 1, 5, 5)), np.ones((1, 1, 3, 3)), stride=1.5)


def test_empty_output_names_every_size():
    with bad(r"output would be empty \(0x0\): input size \(2, 2\), kernel \(3, 3\), stride \(1, 1\), padding \(0, 0\)"):
        conv2d.conv2d_forward(np.ones((1, 1, 2, 2)), np.ones((1, 1, 3, 3)))


def test_non_float_and_mixed_dtypes():
    with bad(r"input must be a floating-point array, got dtype int64", TypeError):
        conv2d.conv2d_forward(np.ones((1, 1, 5, 5), np.int64), np.ones((1, 1, 3, 3)))
    with bad(r"weight must be a floating-point array, got dtype bool", TypeError):
        conv2d.conv2d_forward(np.ones((1, 1, 5, 5)), np.ones((1, 1, 3, 3), bool))
    with bad(r"weight dtype float64 does not match input dtype float32", TypeError):
        conv2d.conv2d_forward(np.ones((1, 1, 5, 5), np.float32), np.ones((1, 1, 3, 3)))
    with bad(r"grad_output must be a floating-point array, got dtype int32", TypeError):
        conv2d.conv2d_backward_bias(np.ones((1, 1, 3, 3), np.int32))


def test_bias_and_gradient_shapes():
    with bad(r"bias must have shape \(2,\), got \(3,\)"):
        conv2d.conv2d_forward(np.ones((1, 1, 5, 5)), np.ones((2, 1, 3, 3)), np.ones(3))
    with bad(r"grad_output must have shape \(1, 2, 3, 3\), got \(1, 2, 4, 4\)"):
        conv2d.conv2d_backward_input(np.ones((1, 2, 4, 4)), np.ones((2, 1, 3, 3)), (1, 1, 5, 5))
    with bad(r"grad_output must have shape \(1, 2, 3, 3\), got \(1, 2, 4, 4\)"):
        conv2d.conv2d_backward_weight(np.ones((1, 2, 4, 4)), np.ones((1, 1, 5, 5)), (2, 1, 3, 3))
