"""nn.functional's additions from the PyTorch comparison: PyTorch's argument names (``input=``), bicubic and
antialiased interpolation, max_unpool2d, affine_grid and grid_sample, the activations and alpha dropouts, empty
and higher-rank adaptive pooling, and the errors PyTorch raises. Each op against a float64 NumPy reference
written from its definition (loops where the sampling rule is the point), in float32 and float64, plus
gradcheck."""

import contextlib
import inspect
import math
import re

import numpy as np
import pytest

import nn
import tensorlib as tl
from nn import functional as F

RTOL = {np.float32: 1e-4, np.float64: 1e-10}  # float32 against the float64 reference: DESIGN.md's rtol
DTYPES = [np.float32, np.float64]


def draw(shape, seed=0, scale=1.0):
    return np.random.default_rng(seed).standard_normal(shape) * scale


def assert_matches(out, expected, dtype):
    assert out.dtype == dtype and out.shape == expected.shape
    np.testing.assert_allclose(out.detach().numpy(), expected, rtol=RTOL[dtype], atol=RTOL[dtype] * 1e-1)


def gradcheck(fn, *arrays):
    return tl.gradcheck(fn, [tl.tensor(a, dtype=tl.float64, requires_grad=True) for a in arrays])


# ---- PyTorch's argument names ---------------------------------------------------------------------------------
# the leading parameters of torch.nn.functional's functions, as PyTorch names them
TORCH_PARAMETERS = {
    "conv2d": "input weight bias stride padding dilation groups",
    "conv_transpose2d": "input weight bias stride padding output_padding groups dilation",
    "max_pool2d": "input kernel_size stride padding dilation ceil_mode return_indices",
    "avg_pool2d": "input kernel_size stride padding ceil_mode count_include_pad divisor_override",
    "lp_pool2d": "input norm_type kernel_size stride ceil_mode",
    "adaptive_avg_pool2d": "input output_size",
    "adaptive_max_pool2d": "input output_size return_indices",
    "max_unpool2d": "input indices kernel_size stride padding output_size",
    "pad": "input pad mode value",
    "linear": "input weight bias",
    "sigmoid": "input",
    "tanh": "input",
    "relu": "input inplace",
    "relu_": "input",
    "elu_": "input alpha",
    "selu": "input inplace",
    "selu_": "input",
    "celu": "input alpha inplace",
    "celu_": "input alpha",
    "leaky_relu_": "input negative_slope",
    "hardtanh_": "input min_val max_val",
    "threshold_": "input threshold value",
    "rrelu": "input lower upper training inplace",
    "rrelu_": "input lower upper training",
    "glu": "input dim",
    "logsigmoid": "input",
    "hardshrink": "input lambd",
    "softshrink": "input lambd",
    "tanhshrink": "input",
    "softmax": "input dim _stacklevel dtype",
    "softmin": "input dim _stacklevel dtype",
    "log_softmax": "input dim _stacklevel dtype",
    "channel_shuffle": "input groups",
    "dropout3d": "input p training inplace",
    "alpha_dropout": "input p training inplace",
    "feature_alpha_dropout": "input p training inplace",
    "interpolate": "input size scale_factor mode align_corners recompute_scale_factor antialias",
    "affine_grid": "theta size align_corners",
    "grid_sample": "input grid mode padding_mode align_corners",
}


@pytest.mark.parametrize("name", TORCH_PARAMETERS)
def test_parameters_have_pytorchs_names(name):
    assert list(inspect.signature(getattr(F, name)).parameters) == TORCH_PARAMETERS[name].split()


def test_functions_take_input_by_keyword():
    x = tl.tensor(draw((2, 3, 6, 6), seed=1).astype(np.float32))
    weight = tl.tensor(draw((2, 3, 3, 3), seed=2).astype(np.float32))
    np.testing.assert_array_equal(F.pad(input=x, pad=(1, 1)).numpy(), np.pad(x.numpy(), [(0, 0)] * 3 + [(1, 1)]))
    np.testing.assert_array_equal(F.sigmoid(input=x).numpy(), F.sigmoid(x).numpy())
    np.testing.assert_array_equal(F.tanh(input=x).numpy(), np.tanh(x.numpy()))
    np.testing.assert_array_equal(F.conv2d(input=x, weight=weight, stride=1).numpy(), F.conv2d(x, weight).numpy())
    np.testing.assert_array_equal(F.max_pool2d(input=x, kernel_size=2).numpy(), F.max_pool2d(x, 2).numpy())
    np.testing.assert_array_equal(F.adaptive_max_pool2d(input=x, output_size=(2, 2), return_indices=True)[1].numpy(),
                                  F.adaptive_max_pool2d(x, 2, True)[1].numpy())
    assert F.interpolate(input=x, scale_factor=2).shape == (2, 3, 12, 12)
    assert F.relu(input=x).shape == x.shape


# ---- pad, linear, classification losses: PyTorch's errors, named --------------------------------------------
def test_pad_value_and_the_ranks_of_the_non_constant_modes():
    x = draw((2, 3, 4), seed=3)
    np.testing.assert_array_equal(F.pad(tl.tensor(x), (1, 2), value=None).numpy(), np.pad(x, [(0, 0)] * 2 + [(1, 2)]))
    np.testing.assert_array_equal(F.pad(tl.tensor(x), (1, 2), mode="reflect").numpy(),
                                  np.pad(x, [(0, 0)] * 2 + [(1, 2)], mode="reflect"))  # 2 amounts: the last dim
    np.testing.assert_array_equal(F.pad(tl.tensor(x), (1, 1, 1, 1), mode="replicate", value=0).numpy(),
                                  np.pad(x, [(0, 0), (1, 1), (1, 1)], mode="edge"))
    with pytest.raises(ValueError, match="mode 'reflect' takes no value, got value=2.0"):
        F.pad(tl.tensor(x), (1, 1), mode="reflect", value=2.0)
    for shape, amounts in (((4, 5), (1, 1, 1, 1)), ((5,), (1, 1)), ((2, 3, 4, 5), (1, 1)),
                           ((1, 2, 3, 4, 5, 6), (1,) * 6), ((2, 3, 4, 5), (1,) * 8)):
        with pytest.raises(NotImplementedError, match=rf"got {len(amounts)} amounts for an input of shape "
                                                      + re.escape(str(shape))):
            F.pad(tl.zeros(*shape), amounts, mode="circular")


def test_linear_refuses_mixed_dtypes_and_a_0d_input():
    x, weight = tl.randn(3, 4), tl.randn(2, 4)
    with pytest.raises(RuntimeError, match="must have the same dtype, got input float32, weight float32, bias float64"):
        F.linear(x, weight, tl.randn(2, dtype=tl.float64))
    with pytest.raises(RuntimeError, match="must have the same dtype, got input float32, weight float64$"):
        F.linear(x, weight.double())
    with pytest.raises(ValueError, match=r"linear expects an input of shape \(\*, in_features\), got a 0-d input"):
        F.linear(tl.tensor(1.0), tl.randn(2, 1))
    for function in (F.cross_entropy, F.nll_loss):
        with pytest.raises(ValueError, match=rf"{function.__name__} expects an input of shape \(C,\), \(N, C\) or "
                                             r"\(N, C, d1, ...\), got a 0-d input"):
            function(tl.tensor(1.0), tl.tensor(0))


# ---- adaptive pooling: empty outputs, more than 4 dims ------------------------------------------------------
def test_adaptive_pooling_to_an_empty_output_and_over_the_last_two_dims():
    x = tl.tensor(draw((2, 3, 5, 6), seed=4))
    assert F.adaptive_avg_pool2d(x, 0).shape == (2, 3, 0, 0)
    assert F.adaptive_avg_pool2d(x, (None, 0)).shape == (2, 3, 5, 0)
    assert F.adaptive_avg_pool2d(x[0], (0, 2)).shape == (3, 0, 2)
    out, indices = F.adaptive_max_pool2d(x, (2, 0), return_indices=True)
    assert out.shape == indices.shape == (2, 3, 2, 0) and indices.dtype == tl.int64
    values = draw((2, 3, 4, 5, 6), seed=5)
    for dtype in DTYPES:
        for size in (1, (1, 1)):
            assert_matches(F.adaptive_avg_pool2d(tl.tensor(values.astype(dtype)), size),
                           values.mean(axis=(-2, -1), keepdims=True), dtype)
    assert gradcheck(lambda t: F.adaptive_avg_pool2d(t, 1), draw((1, 2, 2, 3, 3), seed=6))


# ---- activations ---------------------------------------------------------------------------------------------
SELU_ALPHA, SELU_SCALE = 1.6732632423543772848170429916717, 1.0507009873554804934193349852946


def glu_reference(x, dim):
    a, b = np.split(x, 2, axis=dim)
    return a / (1 + np.exp(-b))


def channel_shuffle_reference(x, groups):
    out = np.empty_like(x)
    k = x.shape[1] // groups
    for c in range(x.shape[1]):  # channel g * k + i goes to position i * groups + g
        group, index = divmod(c, k)
        out[:, index * groups + group] = x[:, c]
    return out


ACTIVATIONS = {
    # name: (function, float64 reference, points where the slope jumps)
    "selu": (F.selu, lambda x: SELU_SCALE * np.where(x > 0, x, SELU_ALPHA * np.expm1(x)), (0,)),
    "celu(alpha=0.7)": (lambda x: F.celu(x, 0.7), lambda x: np.where(x > 0, x, 0.7 * np.expm1(x / 0.7)), ()),
    "glu(dim=1)": (lambda x: F.glu(x, 1), lambda x: glu_reference(x, 1), ()),
    "glu": (F.glu, lambda x: glu_reference(x, -1), ()),
    "softmin(dim=-1)": (lambda x: F.softmin(x, -1), lambda x: np.exp(-x) / np.exp(-x).sum(-1, keepdims=True), ()),
    "hardshrink(0.4)": (lambda x: F.hardshrink(x, 0.4), lambda x: np.where(np.abs(x) > 0.4, x, 0), (-0.4, 0.4)),
    "softshrink(0.4)": (lambda x: F.softshrink(x, 0.4),
                        lambda x: np.sign(x) * np.maximum(np.abs(x) - 0.4, 0), (-0.4, 0.4)),
    "tanhshrink": (F.tanhshrink, lambda x: x - np.tanh(x), ()),
    "rrelu (eval)": (lambda x: F.rrelu(x, 0.1, 0.3), lambda x: np.where(x > 0, x, 0.2 * x), (0,)),
    "channel_shuffle(2)": (lambda x: F.channel_shuffle(x, 2), lambda x: channel_shuffle_reference(x, 2), ()),
}


def away_from(values, kinks, gap=0.05):
    for kink in kinks:
        close = np.abs(values - kink) < gap
        values[close] = kink + np.copysign(gap, values[close] - kink + 1e-300)
    return values


@pytest.mark.parametrize("name", ACTIVATIONS)
@pytest.mark.parametrize("shape", [(3, 4, 2), (2, 6, 3, 2)])
def test_activation_against_reference(name, shape):
    function, reference, kinks = ACTIVATIONS[name]
    values = away_from(draw(shape, seed=len(shape), scale=2.0), kinks)
    for dtype in DTYPES:
        assert_matches(function(tl.tensor(values.astype(dtype))), reference(values), dtype)
    assert gradcheck(function, values)


def test_activation_edges_as_in_pytorch():
    edges = tl.tensor([-0.5, 0.5, 0.6, -0.7, math.nan, -0.0], dtype=tl.float64)
    np.testing.assert_array_equal(F.hardshrink(edges).numpy(), [0, 0, 0.6, -0.7, math.nan, 0])
    np.testing.assert_allclose(F.softshrink(edges).numpy(), [0, 0, 0.1, -0.2, math.nan, 0], atol=1e-7)
    assert np.signbit(F.softshrink(tl.tensor([-0.5])).numpy()[0])  # PyTorch's -0.0 inside the band
    selu_limit = F.selu(tl.tensor([-100.0, 1e-30])).numpy()
    np.testing.assert_allclose(selu_limit, [-SELU_SCALE * SELU_ALPHA, SELU_SCALE * 1e-30], rtol=1e-6)
    for call, error, message in [
        (lambda: F.softshrink(edges, -0.5), ValueError, "softshrink: lambd must be >= 0, got -0.5"),
        (lambda: F.celu(edges, 0.0), ValueError, "celu: alpha cannot be 0"),
        (lambda: F.glu(tl.randn(2, 5), 1), ValueError, r"halved dim 1 must have an even size, got 5 \(input shape"),
        (lambda: F.glu(tl.tensor(1.0)), ValueError, "does not take a 0-d input"),
        (lambda: F.rrelu(edges, 0.5, 0.1), ValueError, r"lower \(0.5\) must not be greater than upper \(0.1\)"),
        (lambda: F.channel_shuffle(tl.randn(2, 4), 2), ValueError, r"at least 3 dims \(N, C, \*\), got shape \(2, 4\)"),
        (lambda: F.channel_shuffle(tl.randn(1, 5, 2), 2), ValueError, "5 channels .* not divisible by groups=2"),
        (lambda: F.channel_shuffle(tl.randn(1, 4, 2), 0), ValueError, "groups must be a positive int, got 0"),
        (lambda: F.selu(tl.tensor([1, 2])), TypeError, "selu needs a floating-point input"),
    ]:
        with pytest.raises(error, match=message):
            call()


def test_rrelu_draws_a_slope_per_element_in_training():
    values = -np.abs(draw((50, 40), seed=7)) - 0.1
    tl.manual_seed(3)
    x = tl.tensor(values, requires_grad=True)
    out = F.rrelu(x, 0.1, 0.3, training=True)
    slopes = out.detach().numpy() / values
    assert 0.1 <= slopes.min() and slopes.max() <= 0.3 and slopes.std() > 0.04  # uniform on [0.1, 0.3]: sd 0.058
    out.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), slopes, rtol=1e-12)
    tl.manual_seed(3)
    np.testing.assert_array_equal(F.rrelu(tl.tensor(values), 0.1, 0.3, training=True).numpy(), out.detach().numpy())
    positive = tl.tensor(np.abs(values))
    np.testing.assert_array_equal(F.rrelu(positive, training=True).numpy(), positive.numpy())


def test_in_place_variants_write_into_their_input():
    values = draw((4, 5), seed=8)
    for function, reference in [(F.relu_, F.relu), (F.selu_, F.selu), (F.elu_, F.elu),
                                (lambda t: F.celu_(t, 0.5), lambda t: F.celu(t, 0.5)),
                                (lambda t: F.leaky_relu_(t, 0.2), lambda t: F.leaky_relu(t, 0.2)),
                                (lambda t: F.hardtanh_(t, -0.5, 0.5), lambda t: F.hardtanh(t, -0.5, 0.5)),
                                (lambda t: F.threshold_(t, 0.1, 2.0), lambda t: F.threshold(t, 0.1, 2.0)),
                                (F.rrelu_, F.rrelu)]:
        x = tl.tensor(values)
        assert function(x) is x
        np.testing.assert_array_equal(x.numpy(), reference(tl.tensor(values)).numpy())


# ---- dropout3d and alpha dropout -----------------------------------------------------------------------------
def alpha_dropout_constants(p):
    saturation = -SELU_SCALE * SELU_ALPHA
    a = ((1 - p) * (1 + p * saturation**2)) ** -0.5
    return a, -a * saturation * p, saturation


def test_alpha_dropout_keeps_mean_and_variance():
    tl.manual_seed(0)
    values = draw((400, 500), seed=9)
    for p in (0.2, 0.5):
        out = F.alpha_dropout(tl.tensor(values), p, training=True).numpy()
        a, b, saturation = alpha_dropout_constants(p)
        dropped = np.isclose(out, a * saturation + b, rtol=0, atol=1e-12)
        np.testing.assert_allclose(out[~dropped], a * values[~dropped] + b, rtol=1e-12)
        assert abs(dropped.mean() - p) < 0.01 and abs(out.mean()) < 0.01 and abs(out.std() - 1) < 0.01
    for dtype in DTYPES:
        x = tl.tensor(values[:3, :4].astype(dtype))
        assert F.alpha_dropout(x, 0.5) is x and F.alpha_dropout(x, 0.0, training=True) is x  # default training=False
        assert F.alpha_dropout(x, 0.3, training=True).dtype == dtype
        np.testing.assert_array_equal(F.alpha_dropout(x, 1.0, training=True).numpy(), np.zeros((3, 4)))
    with pytest.raises(ValueError, match="dropout probability p must be between 0 and 1, got 1.5"):
        F.alpha_dropout(tl.randn(3), 1.5)


def test_alpha_dropout_gradient_is_the_kept_scale():
    tl.manual_seed(1)
    x = tl.tensor(draw((6, 7), seed=10), requires_grad=True)
    out = F.alpha_dropout(x, 0.4, training=True)
    out.sum().backward()
    a, b, saturation = alpha_dropout_constants(0.4)
    kept = ~np.isclose(out.detach().numpy(), a * saturation + b, rtol=0, atol=1e-12)
    np.testing.assert_allclose(x.grad.numpy(), np.where(kept, a, 0.0), rtol=1e-12)


def test_feature_alpha_dropout_and_dropout3d_draw_per_channel():
    tl.manual_seed(2)
    out = F.feature_alpha_dropout(tl.ones(8, 6, 3, 2), 0.5, training=True).numpy()
    a, b, saturation = alpha_dropout_constants(0.5)
    assert np.all(out == out[:, :, :1, :1])
    np.testing.assert_allclose(np.unique(out), sorted([a + b, a * saturation + b]), rtol=1e-6)
    with pytest.raises(ValueError, match=r"feature_alpha_dropout needs an input of at least 2 dims \(N, C, ...\)"):
        F.feature_alpha_dropout(tl.randn(5), training=True)
    batched = F.dropout3d(tl.ones(6, 5, 2, 3, 2)).numpy()  # one draw per (sample, channel)
    assert np.all(batched == batched[:, :, :1, :1, :1]) and set(np.unique(batched)) == {0.0, 2.0}
    assert len(np.unique(batched[:, :, 0, 0, 0])) == 2
    unbatched = F.dropout3d(tl.ones(20, 2, 3, 2, dtype=tl.float64), 0.25).numpy()  # (C, D, H, W): one draw per channel
    assert np.all(unbatched == unbatched[:, :1, :1, :1]) and set(np.unique(unbatched)) == {0.0, 4 / 3}
    with pytest.warns(UserWarning, match=r"dropout3d: received a 3-D input \(shape \(20, 3, 2\)\)"):
        rows = F.dropout3d(tl.ones(20, 3, 2)).numpy()
    assert np.all(rows == rows[:, :1, :1])
    x = tl.randn(2, 3, 2, 2, 2)
    assert F.dropout3d(x, training=False) is x
    np.testing.assert_array_equal(F.dropout3d(x, 1.0).numpy(), np.zeros(x.shape))
    with pytest.raises(ValueError, match="dropout3d needs an input of at least 1 dim"):
        F.dropout3d(tl.tensor(1.0))


# ---- interpolate: bicubic and antialias ----------------------------------------------------------------------
def cubic(distance, a):
    d = abs(distance)
    if d <= 1:
        return (a + 2) * d**3 - (a + 3) * d**2 + 1
    if d < 2:
        return a * d**3 - 5 * a * d**2 + 8 * a * d - 4 * a
    return 0.0


def step_between_outputs(n_in, n_out, scale, align_corners):
    if align_corners:
        return (n_in - 1) / (n_out - 1) if n_out > 1 else 0.0
    return scale if scale is not None else n_in / n_out


def bicubic_matrix(n_in, n_out, scale, align_corners):
    """(n_out, n_in): output i is sum over the four taps floor(x) - 1 .. floor(x) + 2 of the input (the index
    clamped into the input) weighted by the cubic kernel (a = -0.75) at x - tap."""
    matrix = np.zeros((n_out, n_in))
    step = step_between_outputs(n_in, n_out, scale, align_corners)
    for i in range(n_out):
        x = i * step if align_corners else (i + 0.5) * step - 0.5
        for tap in range(math.floor(x) - 1, math.floor(x) + 3):
            matrix[i, min(max(tap, 0), n_in - 1)] += cubic(x - tap, -0.75)
    return matrix


def antialias_matrix(n_in, n_out, scale, align_corners, mode):
    """(n_out, n_in): output i averages the inputs j whose centre j + 1/2 lies within the filter's support of
    step * (i + 1/2), weighted by the filter (triangle or cubic with a = -0.5) stretched by max(step, 1), and
    normalised; an unchanged size copies."""
    if n_in == n_out:
        return np.eye(n_in)
    matrix = np.zeros((n_out, n_in))
    step = step_between_outputs(n_in, n_out, scale, align_corners)
    stretch = max(step, 1.0)
    support = (1.0 if mode == "bilinear" else 2.0) * stretch
    for i in range(n_out):
        centre = step * (i + 0.5)
        for j in range(max(int(centre - support + 0.5), 0), min(int(centre + support + 0.5), n_in)):
            distance = (j + 0.5 - centre) / stretch
            matrix[i, j] = max(1 - abs(distance), 0) if mode == "bilinear" else cubic(distance, -0.5)
        matrix[i] /= matrix[i].sum()
    return matrix


def resampled(x, matrices):
    """Apply one (n_out, n_in) matrix along each of the last two axes of x."""
    rows, columns = matrices
    return np.einsum("oh,nchw,pw->ncop", rows, x, columns)


INTERPOLATIONS = [
    # (input shape, size, scale_factor)
    ((2, 3, 5, 7), (3, 4), None),
    ((1, 2, 4, 4), (9, 6), None),
    ((1, 1, 1, 3), (2, 1), None),
    ((2, 1, 9, 11), None, 0.3),
    ((1, 2, 6, 5), None, (1.5, 0.7)),
]


@pytest.mark.parametrize("shape, size, scale_factor", INTERPOLATIONS)
@pytest.mark.parametrize("align_corners", [False, True])
def test_bicubic_and_antialias_against_reference(shape, size, scale_factor, align_corners):
    values = draw(shape, seed=11)
    if size is None:
        factors = scale_factor if isinstance(scale_factor, tuple) else (scale_factor,) * 2
        size = tuple(math.floor(n * f) for n, f in zip(shape[2:], factors))
        scales = tuple(1 / f for f in factors)
    else:
        scales = (None, None)
    cases = {("bicubic", False): [bicubic_matrix(n, m, s, align_corners) for n, m, s in zip(shape[2:], size, scales)]}
    for mode in ("bilinear", "bicubic"):
        cases[mode, True] = [antialias_matrix(n, m, s, align_corners, mode) for n, m, s in zip(shape[2:], size, scales)]
    for (mode, antialias), matrices in cases.items():
        expected = resampled(values, matrices)
        for dtype in DTYPES:
            out = F.interpolate(tl.tensor(values.astype(dtype)), size=None if scale_factor else size,
                                scale_factor=scale_factor, mode=mode, align_corners=align_corners, antialias=antialias)
            assert_matches(out, expected, dtype)


def test_bicubic_and_antialias_gradcheck():
    values = draw((1, 2, 5, 4), seed=12)
    assert gradcheck(lambda t: F.interpolate(t, size=(7, 3), mode="bicubic"), values)
    assert gradcheck(lambda t: F.interpolate(t, scale_factor=0.5, mode="bicubic", align_corners=True), values)
    assert gradcheck(lambda t: F.interpolate(t, size=(2, 3), mode="bilinear", antialias=True), values)
    assert gradcheck(lambda t: F.interpolate(t, size=(3, 6), mode="bicubic", antialias=True), values)


def test_bicubic_keeps_an_unchanged_size_and_refuses_what_pytorch_refuses():
    values = draw((1, 2, 5, 4), seed=13)
    np.testing.assert_allclose(F.interpolate(tl.tensor(values), size=(5, 4), mode="bicubic").numpy(), values,
                               rtol=1e-12, atol=1e-14)
    assert F.interpolate(tl.randn(0, 2, 5, 4), size=3, mode="bicubic", antialias=True).shape == (0, 2, 3, 3)
    for call, error, message in [
        (lambda: F.interpolate(tl.randn(1, 2, 5), size=3, mode="bicubic"), NotImplementedError,
         "mode 'bicubic' needs a 4-D input, got a 3-D one"),
        (lambda: F.interpolate(tl.randn(1, 2, 5, 4), size=3, mode="area", antialias=True), ValueError,
         "antialias=True needs mode 'bilinear' or 'bicubic' and a 4-D input, got mode 'area'"),
        (lambda: F.interpolate(tl.randn(1, 2, 5), size=3, mode="linear", antialias=True), ValueError,
         "got mode 'linear' and a 3-D input"),
        (lambda: F.interpolate(tl.randn(1, 2, 5, 4).to(tl.uint8), size=3, mode="bicubic"), TypeError,
         "got dtype uint8 in mode 'bicubic'"),
    ]:
        with pytest.raises(error, match=message):
            call()


# ---- max_unpool2d --------------------------------------------------------------------------------------------
def unpool_reference(values, indices, size):
    out = np.zeros(values.shape[:2] + size)
    for n, c, i, j in np.ndindex(*values.shape):
        row, column = divmod(indices[n, c, i, j], size[1])
        out[n, c, row, column] = values[n, c, i, j]
    return out


@pytest.mark.parametrize("shape, kernel, stride, padding", [
    ((2, 3, 7, 8), 2, None, 0),
    ((1, 2, 9, 9), 3, 2, 1),
    ((2, 2, 5, 7), (2, 3), (2, 1), (1, 1)),
])
def test_max_unpool2d_puts_back_the_maxima(shape, kernel, stride, padding):
    values = draw(shape, seed=14)
    for dtype in DTYPES:
        pooled, indices = F.max_pool2d(tl.tensor(values.astype(dtype)), kernel, stride, padding, return_indices=True)
        size = shape[2:]
        out = F.max_unpool2d(pooled, indices, kernel, stride, padding, output_size=size)
        assert_matches(out, unpool_reference(pooled.numpy().astype(np.float64), indices.numpy(), size), dtype)
        unbatched = F.max_unpool2d(pooled[0], indices[0], kernel, stride, padding, output_size=(1, 1) + size)
        assert_matches(unbatched, out.numpy()[0].astype(np.float64), dtype)
    pooled, indices = F.max_pool2d(tl.tensor(values), kernel, stride, padding, return_indices=True)
    planes = indices.numpy().reshape(-1, indices.shape[2] * indices.shape[3])
    if all(len(np.unique(plane)) == plane.size for plane in planes):  # overlapping windows may repeat an index
        assert gradcheck(lambda t: F.max_unpool2d(t, indices, kernel, stride, padding, shape[2:]), pooled.numpy())


def test_max_unpool2d_sizes_and_errors():
    pooled, indices = F.max_pool2d(tl.arange(20.0).reshape(1, 1, 4, 5), 2, return_indices=True)  # 6, 8, 16, 18
    assert F.max_unpool2d(pooled, indices, 2, output_size=(5, 5)).shape == (1, 1, 5, 5)
    zeros = F.max_unpool2d(tl.randn(0, 2, 2, 2), tl.zeros(0, 2, 2, 2, dtype=tl.int64), 2)
    assert zeros.shape == (0, 2, 4, 4)
    for call, error, message in [
        (lambda: F.max_unpool2d(pooled, indices, 2), IndexError,
         "index 18 is out of range for an output plane of size 4x4"),
        (lambda: F.max_unpool2d(pooled, indices, 2, output_size=(6, 5)), ValueError,
         "spatial dim 0 must be greater than 2 and less than 6"),
        (lambda: F.max_unpool2d(pooled, indices, 2, output_size=(1, 4, 5)), ValueError,
         r"output_size must hold 2 sizes \(H, W\) or 4"),
        (lambda: F.max_unpool2d(pooled, indices - 7, 2, output_size=(4, 5)), IndexError, "index -1 is out of range"),
        (lambda: F.max_unpool2d(pooled, indices.float(), 2), TypeError, "indices must be int64"),
        (lambda: F.max_unpool2d(pooled, indices[..., :1], 2), ValueError, "indices must have the input's shape"),
        (lambda: F.max_unpool2d(pooled[0, 0], indices[0, 0], 2), ValueError, r"3-D \(C, H, W\) or 4-D"),
        (lambda: F.max_unpool2d(pooled, indices, 0), ValueError, "kernel_size must be at least 1"),
        (lambda: F.max_unpool2d(pooled, indices, 1, padding=1), ValueError,
         r"output size \(0, 0\) of an input of shape \(1, 1, 2, 2\) must be positive"),
    ]:
        with pytest.raises(error, match=message):
            call()


# ---- affine_grid and grid_sample ---------------------------------------------------------------------------
def normalised_coordinates(size, align_corners):
    if size == 1:
        return np.zeros(1)
    if align_corners:
        return np.linspace(-1, 1, size)
    return (np.arange(size) + 0.5) / size * 2 - 1


def affine_grid_reference(theta, size, align_corners):
    spatial = size[2:]
    grid = np.zeros((size[0], *spatial, len(spatial)))
    for n in range(size[0]):
        for position in np.ndindex(*spatial):
            # (x, y, z): x along the last spatial dim
            point = [normalised_coordinates(s, align_corners)[p] for s, p in zip(spatial, position)][::-1] + [1.0]
            grid[(n, *position)] = theta[n] @ np.array(point)
    return grid


@pytest.mark.parametrize("size", [(2, 3, 4, 5), (1, 1, 1, 3), (2, 1, 2, 3, 4)])
@pytest.mark.parametrize("align_corners", [False, True])
def test_affine_grid_against_reference(size, align_corners):
    theta = draw((size[0], len(size) - 2, len(size) - 1), seed=15)
    expected = affine_grid_reference(theta, size, align_corners)
    unit_size = align_corners and 1 in size[2:]
    with pytest.warns(UserWarning, match="size-1 dim") if unit_size else contextlib.nullcontext():
        for dtype in DTYPES:
            assert_matches(F.affine_grid(tl.tensor(theta.astype(dtype)), size, align_corners), expected, dtype)
    assert gradcheck(lambda t: F.affine_grid(t, size, align_corners=False), theta)


def source_position(coordinate, size, padding_mode, align_corners):
    """The pixel position a normalised coordinate reads: mapped onto [-1/2, size - 1/2] (the pixel edges) or
    [0, size - 1] (the corner centres); 'border' clamps it into [0, size - 1]; 'reflection' folds it back into
    the mapped range (a mirror at each end: period twice the range), then clamps."""
    if align_corners:
        position, low, high = (coordinate + 1) / 2 * (size - 1), 0.0, size - 1.0
    else:
        position, low, high = ((coordinate + 1) * size - 1) / 2, -0.5, size - 0.5
    if padding_mode == "reflection":
        if high == low:
            return 0.0
        folded = (position - low) % (2 * (high - low))
        position = low + (folded if folded <= high - low else 2 * (high - low) - folded)
    if padding_mode in ("border", "reflection"):
        position = min(max(position, 0.0), size - 1.0)
    return position


def grid_sample_reference(values, grid, mode, padding_mode, align_corners):
    n_count, channels, height, width = values.shape
    out = np.zeros((n_count, channels) + grid.shape[1:3])

    def pixel(n, row, column):
        inside = 0 <= row < height and 0 <= column < width
        return values[n, :, row, column] if inside else np.zeros(channels)

    for n, i, j in np.ndindex(n_count, *grid.shape[1:3]):
        x = source_position(grid[n, i, j, 0], width, padding_mode, align_corners)
        y = source_position(grid[n, i, j, 1], height, padding_mode, align_corners)
        if mode == "nearest":
            out[n, :, i, j] = pixel(n, int(np.rint(y)), int(np.rint(x)))
            continue
        left, top = math.floor(x), math.floor(y)
        for row, column in ((top, left), (top, left + 1), (top + 1, left), (top + 1, left + 1)):
            out[n, :, i, j] += (1 - abs(y - row)) * (1 - abs(x - column)) * pixel(n, row, column)
    return out


GRID_SAMPLINGS = [(mode, padding_mode) for mode in ("bilinear", "nearest")
                  for padding_mode in ("zeros", "border", "reflection")]


@pytest.mark.parametrize("mode, padding_mode", GRID_SAMPLINGS)
@pytest.mark.parametrize("align_corners", [False, True])
def test_grid_sample_against_reference(mode, padding_mode, align_corners):
    for spatial, grid_shape, spread in [((4, 5), (2, 3, 4, 2), 1.3), ((1, 3), (2, 2, 3, 2), 4.0)]:
        values = draw((2, 3) + spatial, seed=16)
        grid = np.random.default_rng(17).uniform(-spread, spread, grid_shape)
        expected = grid_sample_reference(values, grid, mode, padding_mode, align_corners)
        for dtype in DTYPES:
            out = F.grid_sample(tl.tensor(values.astype(dtype)), tl.tensor(grid.astype(dtype)), mode, padding_mode,
                                align_corners)
            assert_matches(out, expected, dtype)


@pytest.mark.parametrize("mode, padding_mode", GRID_SAMPLINGS)
def test_grid_sample_gradcheck(mode, padding_mode):
    values = draw((1, 2, 3, 4), seed=18)
    grid = np.random.default_rng(19).uniform(-1.6, 1.6, (1, 2, 3, 2))
    for align_corners in (False, True):
        if mode == "bilinear":
            assert gradcheck(lambda v, g: F.grid_sample(v, g, mode, padding_mode, align_corners), values, grid)
        else:  # nearest: piecewise constant in the grid
            assert gradcheck(lambda v: F.grid_sample(v, tl.tensor(grid), mode, padding_mode, align_corners), values)


def test_spatial_transformer_identity_and_errors():
    values = tl.tensor(draw((2, 3, 4, 5), seed=20))
    identity = tl.tensor(np.tile(np.eye(2, 3), (2, 1, 1)), requires_grad=True)
    for align_corners in (False, True):
        resampled_values = F.grid_sample(values, F.affine_grid(identity, (2, 3, 4, 5), align_corners),
                                         align_corners=align_corners)
        np.testing.assert_allclose(resampled_values.detach().numpy(), values.numpy(), rtol=1e-12, atol=1e-12)
    resampled_values.sum().backward()
    assert identity.grad.shape == (2, 2, 3)
    with pytest.warns(UserWarning, match="grid_sample: align_corners defaults to False"):
        F.grid_sample(values, tl.zeros(2, 1, 1, 2, dtype=tl.float64))
    with pytest.warns(UserWarning, match="affine_grid: align_corners defaults to False"):
        F.affine_grid(identity, (2, 3, 4, 5))
    grid = tl.zeros(2, 1, 1, 2, dtype=tl.float64)
    for call, error, message in [
        (lambda: F.grid_sample(values, grid, "foo", align_corners=False), ValueError, "mode must be 'bilinear' or"),
        (lambda: F.grid_sample(values, grid, "bicubic", align_corners=False), NotImplementedError, "got 'bicubic'"),
        (lambda: F.grid_sample(values, grid, padding_mode="wrap", align_corners=False), ValueError, "got 'wrap'"),
        (lambda: F.grid_sample(values, grid.float(), align_corners=False), RuntimeError, "mixed dtype"),
        (lambda: F.grid_sample(values, tl.zeros(3, 1, 1, 2, dtype=tl.float64), align_corners=False), ValueError,
         r"grid must have shape \(N, H_out, W_out, 2\) with the input's N = 2, got \(3, 1, 1, 2\)"),
        (lambda: F.grid_sample(values[0], grid[0], align_corners=False), NotImplementedError, "4-D inputs"),
        (lambda: F.grid_sample(values[:, :, :0], grid, align_corners=False), ValueError, "must be non-empty"),
        (lambda: F.affine_grid(identity.long(), (2, 3, 4, 5), False), TypeError, "floating-point theta"),
        (lambda: F.affine_grid(identity, (2, 3, 4), False), NotImplementedError, r"got size \(2, 3, 4\)"),
        (lambda: F.affine_grid(identity, (3, 3, 4, 5), False), ValueError, r"shape \(3, 2, 3\), got \(2, 2, 3\)"),
        (lambda: F.affine_grid(identity, (2, 3, 0, 5), False), ValueError, "output size must be positive"),
    ]:
        with pytest.raises(error, match=message):
            call()


@pytest.mark.parametrize("pool", [F.adaptive_avg_pool2d, F.adaptive_max_pool2d])
@pytest.mark.parametrize("size", [0, (0, 2), (None, 0), (3, 0)])
def test_empty_adaptive_pooling_is_in_the_graph(pool, size):
    x = tl.tensor(np.random.default_rng(0).standard_normal((2, 3, 5, 7)), requires_grad=True)
    out = pool(x, size)
    assert out.numel() == 0 and out.requires_grad
    out.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.zeros((2, 3, 5, 7)))


@pytest.mark.parametrize("function", [F.softmax, F.log_softmax, F.softmin])
def test_a_dtype_in_the_stacklevel_slot_is_refused(function):
    x = tl.randn(2, 3)
    with pytest.raises(TypeError, match="pass a dtype by keyword"):
        function(x, 1, tl.float64)
    assert function(x, 1, dtype=tl.float64).dtype == np.float64 and function(x, 1, 3).dtype == np.float32


@pytest.mark.parametrize("layer", [nn.ReflectionPad2d, nn.ReplicationPad2d])
def test_two_amount_padding_layers_pad_a_2d_input_along_its_last_dim(layer):
    x = np.arange(12.0).reshape(3, 4)
    mode = "reflect" if layer is nn.ReflectionPad2d else "edge"
    np.testing.assert_array_equal(layer((1, 2))(tl.tensor(x)).numpy(), np.pad(x, ((0, 0), (1, 2)), mode=mode))
