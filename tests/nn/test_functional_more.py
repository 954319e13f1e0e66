"""nn.functional's normalisation, activation, resampling, im2col and similarity ops against float64 NumPy
references written from their definitions (loops where the layout is the point), on several shapes in float32
and float64, plus gradcheck and PyTorch's behaviour at the edges (kinks, NaN, index rules, errors)."""

import math

import numpy as np
import pytest

import tensorlib as tl
from kernels.conv2d import reference as conv_reference
from nn import functional as F
from tensorlib.ops import shape as shape_ops

RTOL = {np.float32: 1e-4, np.float64: 1e-10}  # float32 against the float64 reference: DESIGN.md's rtol
DTYPES = [np.float32, np.float64]


def draw(shape, seed=0, scale=1.0):
    return np.random.default_rng(seed).standard_normal(shape) * scale


def away_from_kinks(shape, kinks, seed=0, scale=3.0, gap=0.05):
    """Random values at least ``gap`` from every point in ``kinks``, where a piecewise function's derivative
    jumps (central differences across a kink would not be the derivative)."""
    values = draw(shape, seed, scale)
    for kink in kinks:
        close = np.abs(values - kink) < gap
        values[close] = kink + np.copysign(gap, values[close] - kink + 1e-300)
    return values


def assert_matches(out, expected, dtype, atol=None):
    assert out.dtype == dtype
    np.testing.assert_allclose(out.detach().numpy(), expected, rtol=RTOL[dtype],
                               atol=RTOL[dtype] * 1e-2 if atol is None else atol)


def gradcheck(fn, *arrays):
    return tl.gradcheck(fn, [tl.tensor(a, dtype=tl.float64, requires_grad=True) for a in arrays])


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def softplus_reference(x, beta=1.0, threshold=20.0):
    return np.where(x * beta > threshold, x, np.log1p(np.exp(x * beta)) / beta)


ACTIVATIONS = {
    # name: (function, float64 reference, kinks)
    "relu6": (F.relu6, lambda x: np.clip(x, 0, 6), (0, 6)),
    "hardtanh": (lambda x: F.hardtanh(x, -2.0, 1.5), lambda x: np.clip(x, -2, 1.5), (-2, 1.5)),
    "hardsigmoid": (F.hardsigmoid, lambda x: np.clip(x / 6 + 0.5, 0, 1), (-3, 3)),
    "hardswish": (F.hardswish, lambda x: x * np.clip(x + 3, 0, 6) / 6, (-3, 3)),
    "silu": (F.silu, lambda x: x * sigmoid(x), ()),
    "mish": (F.mish, lambda x: x * np.tanh(softplus_reference(x)), ()),
    "softplus": (F.softplus, softplus_reference, ()),
    "softplus(beta=2, threshold=4)": (lambda x: F.softplus(x, 2, 4), lambda x: softplus_reference(x, 2, 4), (2,)),
    "softsign": (F.softsign, lambda x: x / (1 + np.abs(x)), ()),
    "threshold": (lambda x: F.threshold(x, 0.5, -2.0), lambda x: np.where(x > 0.5, x, -2.0), (0.5,)),
}


@pytest.mark.parametrize("name", ACTIVATIONS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(7,), (2, 3, 4, 5)])
def test_activation_against_reference(name, dtype, shape):
    function, reference, kinks = ACTIVATIONS[name]
    values = away_from_kinks(shape, kinks, seed=len(shape))
    assert_matches(function(tl.tensor(values.astype(dtype))), reference(values), dtype)


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_activation_gradcheck(name):
    function, _, kinks = ACTIVATIONS[name]
    assert gradcheck(function, away_from_kinks((3, 4), kinks, seed=1))


def test_softplus_is_linear_past_the_threshold_and_does_not_overflow():
    values = np.array([-200.0, -30.0, 19.9, 20.0, 20.1, 200.0], dtype=np.float32)
    x = tl.tensor(values, requires_grad=True)
    out = F.softplus(x)
    out.sum().backward()
    wide = values.astype(np.float64)
    expected = np.where(wide > 20, wide, np.logaddexp(0, wide))
    np.testing.assert_allclose(out.detach().numpy(), expected, rtol=1e-6, atol=1e-37)
    np.testing.assert_allclose(x.grad.numpy(), np.where(wide > 20, 1.0, sigmoid(wide)), rtol=1e-6, atol=1e-37)
    # a large threshold keeps the smooth form, which log1p(exp(x)) would overflow in float32
    assert F.softplus(tl.tensor([100.0]), threshold=1000).item() == pytest.approx(100.0)


def test_piecewise_gradients_at_their_kinks_and_nan_follow_pytorch():
    """At the breakpoints the slope is PyTorch's one-sided choice; NaN propagates."""
    values = [-3.0, 0.0, 3.0, 6.0, 1.0, float("nan")]
    expected = {  # (output, gradient), from PyTorch's definitions
        F.relu6: ([0, 0, 3, 6, 1, np.nan], [0, 0, 1, 0, 1, 1]),
        F.hardtanh: ([-1, 0, 1, 1, 1, np.nan], [0, 1, 0, 0, 0, 1]),
        F.hardsigmoid: ([0, 0.5, 1, 1, 4 / 6, np.nan], [0, 1 / 6, 0, 0, 1 / 6, 0]),
        F.hardswish: ([0, 0, 3, 6, 4 / 6, np.nan], [0, 0.5, 1, 1, 1 / 3 + 0.5, 1]),
        (lambda t: F.threshold(t, 1.0, -5.0)): ([-5, -5, 3, 6, -5, np.nan], [0, 0, 1, 1, 0, 1]),
    }
    for function, (out_expected, grad_expected) in expected.items():
        x = tl.tensor(values, dtype=tl.float64, requires_grad=True)
        out = function(x)
        out.sum().backward()
        np.testing.assert_allclose(out.detach().numpy(), out_expected, rtol=1e-15)
        np.testing.assert_allclose(x.grad.numpy(), grad_expected, rtol=1e-15)


def test_integer_inputs():
    ints = tl.tensor([-7, 1, 8])
    assert F.relu6(ints).tolist() == [0, 1, 6] and F.relu6(ints).dtype == tl.int64
    assert F.hardtanh(ints).tolist() == [-1, 1, 1]
    assert F.threshold(ints, 2, 0).tolist() == [0, 0, 8]
    # an integer input keeps its dtype: threshold and value are cast to it first, rounded toward zero (PyTorch's)
    for dtype in (tl.int64, tl.int32, tl.int16):
        assert F.threshold(ints.to(dtype), 2.5, 9.9).dtype == dtype
    assert F.threshold(ints, 2.5, 9.9).tolist() == [9, 9, 8]
    assert F.threshold(ints, -0.5, -3.7).tolist() == [-3, 1, 8]  # the threshold -0.5 becomes 0
    assert F.threshold(tl.tensor([0, 1, 2], dtype=tl.uint8), 1.9, 7.2).tolist() == [7, 7, 2]
    in_place = tl.tensor([-7, 1, 8])
    F.threshold(in_place, 0.5, -1.7, inplace=True)
    assert in_place.tolist() == [-1, 1, 8] and in_place.dtype == tl.int64
    assert F.softsign(ints).dtype == tl.float32  # a division, as in PyTorch
    for function in (F.silu, F.mish, F.softplus, F.hardswish, F.hardsigmoid):
        with pytest.raises(TypeError, match="needs a floating-point input, got dtype int64"):
            function(ints)
    with pytest.raises(ValueError, match=r"min_val \(2\) cannot be greater than max_val \(1\)"):
        F.hardtanh(ints, 2, 1)


@pytest.mark.parametrize("name", ["relu6", "hardtanh", "hardsigmoid", "hardswish", "silu", "mish"])
def test_inplace_activations_write_into_the_input_and_differentiate(name):
    function = getattr(F, name)
    values = away_from_kinks((2, 5), (-3, -1, 0, 1, 3, 6), seed=2)
    leaf = tl.tensor(values, requires_grad=True)
    x = leaf * 1.0
    assert function(x, inplace=True) is x
    (x * x).sum().backward()
    reference_leaf = tl.tensor(values, requires_grad=True)
    out = function(reference_leaf * 1.0)
    (out * out).sum().backward()
    np.testing.assert_allclose(x.detach().numpy(), out.detach().numpy(), rtol=1e-15)
    np.testing.assert_allclose(leaf.grad.numpy(), reference_leaf.grad.numpy(), rtol=1e-15)
    x = tl.tensor(values)
    F.threshold(x, 0.0, 9.0, inplace=True)
    np.testing.assert_array_equal(x.numpy(), np.where(values > 0, values, 9.0))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,slopes", [((2, 3, 4, 5), 3), ((4, 3), 1), ((5,), 1), ((2, 4, 6), 4)])
def test_prelu(dtype, shape, slopes):
    values = away_from_kinks(shape, (0,), seed=3)
    weight = np.random.default_rng(4).uniform(-0.5, 0.5, slopes)
    per_channel = weight.reshape((1, slopes) + (1,) * (len(shape) - 2)) if slopes > 1 else weight
    expected = np.where(values > 0, values, values * per_channel)
    out = F.prelu(tl.tensor(values.astype(dtype)), tl.tensor(weight.astype(dtype)))
    assert_matches(out, expected, dtype)
    small = values[tuple(slice(None) if axis == 1 else slice(0, 3) for axis in range(len(shape)))]
    assert gradcheck(F.prelu, small, weight)  # the slopes' gradient too


def test_prelu_errors():
    with pytest.raises(ValueError, match=r"weight holds 3 slopes but the input \(shape \(2, 4, 3\)\) has 4 channels"):
        F.prelu(tl.randn(2, 4, 3), tl.randn(3))
    with pytest.raises(ValueError, match=r"weight must be a 0-D or 1-D tensor, got shape \(2, 2\)"):
        F.prelu(tl.randn(2, 4), tl.randn(2, 2))
    assert F.prelu(tl.tensor(-2.0), tl.tensor([0.25])).shape == ()


MIXED_DTYPE_CALLS = {  # name: a call with a float32 or float64 input and parameters of the other dtype
    "layer_norm weight": lambda x, p: F.layer_norm(x, (4,), p),
    "layer_norm bias": lambda x, p: F.layer_norm(x, (4,), None, p),
    "group_norm weight": lambda x, p: F.group_norm(x, 2, p),
    "group_norm bias": lambda x, p: F.group_norm(x, 2, None, p),
    "prelu weight": lambda x, p: F.prelu(x, p),
    "instance_norm weight": lambda x, p: F.instance_norm(x, weight=p),
    "batch_norm weight": lambda x, p: F.batch_norm(x, None, None, p, training=True),
}


@pytest.mark.parametrize("name", MIXED_DTYPE_CALLS)
@pytest.mark.parametrize("input_dtype,parameter_dtype", [(tl.float32, tl.float64), (tl.float64, tl.float32)])
def test_normalisations_and_prelu_refuse_parameters_of_another_dtype(name, input_dtype, parameter_dtype):
    """PyTorch raises "mixed dtype" where NumPy would promote a float32 result to float64 silently."""
    x = tl.randn(2, 4, 3, 4, dtype=input_dtype)
    with pytest.raises(RuntimeError, match=f"mixed dtype: {name.split()[0]} got a {np.dtype(input_dtype)} input but "
                                           f"its {name.split()[1]} is {np.dtype(parameter_dtype)}"):
        MIXED_DTYPE_CALLS[name](x, tl.ones(4, dtype=parameter_dtype))
    assert MIXED_DTYPE_CALLS[name](x, tl.ones(4, dtype=input_dtype)).dtype == input_dtype


def standardized(x, axes, eps=1e-5):
    return (x - x.mean(axes, keepdims=True)) / np.sqrt(x.var(axes, keepdims=True) + eps)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,normalized", [((4, 6), (6,)), ((2, 3, 5, 4), (5, 4)), ((3, 2, 7), 7)])
def test_layer_norm(dtype, shape, normalized):
    dims = (normalized,) if isinstance(normalized, int) else normalized
    values = draw(shape, 5, scale=3) + 2
    weight, bias = draw(dims, 6), draw(dims, 7)
    axes = tuple(range(len(shape) - len(dims), len(shape)))
    out = F.layer_norm(tl.tensor(values.astype(dtype)), normalized, tl.tensor(weight.astype(dtype)),
                       tl.tensor(bias.astype(dtype)), eps=1e-3)
    assert_matches(out, standardized(values, axes, 1e-3) * weight + bias, dtype)
    assert_matches(F.layer_norm(tl.tensor(values.astype(dtype)), normalized), standardized(values, axes), dtype)


def test_layer_norm_gradcheck_and_errors():
    assert gradcheck(lambda x, w, b: F.layer_norm(x, (2, 3), w, b), draw((2, 2, 3), 8), draw((2, 3), 9),
                     draw((2, 3), 10))
    with pytest.raises(ValueError, match=r"normalized_shape=\(5,\) expects an input of shape \(\*, 5\), got \(2, 3, 4\)"):
        F.layer_norm(tl.randn(2, 3, 4), (5,))
    with pytest.raises(ValueError, match=r"normalized_shape=\(2, 3, 4\) expects an input of shape \(\*, 2, 3, 4\)"):
        F.layer_norm(tl.randn(3, 4), (2, 3, 4))
    with pytest.raises(ValueError, match="at least one size"):
        F.layer_norm(tl.randn(3), ())
    with pytest.raises(ValueError, match=r"weight must have shape \(3,\) \(normalized_shape\), got \(4,\)"):
        F.layer_norm(tl.randn(2, 3), 3, tl.ones(4))
    with pytest.raises(TypeError, match="floating-point"):
        F.layer_norm(tl.tensor([[1, 2]]), 2)
    with pytest.raises(TypeError, match=r"normalized_shape must be an int or a sequence of ints, got \(2.0,\)"):
        F.layer_norm(tl.randn(3, 2), (2.0,))
    with pytest.raises(ValueError, match=r"normalized_shape must hold non-negative ints, got \[-2\]"):
        F.layer_norm(tl.randn(3, 2), [-2])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,groups", [((2, 6, 3, 4), 3), ((3, 4, 5), 2), ((2, 4), 4), ((1, 6, 2, 2), 1)])
def test_group_norm(dtype, shape, groups):
    values = draw(shape, 11, scale=2) - 1
    weight, bias = draw(shape[1], 12), draw(shape[1], 13)
    n, c = shape[:2]
    grouped = values.reshape(n, groups, -1)
    expected = standardized(grouped, 2).reshape(shape)
    channel = (1, c) + (1,) * (len(shape) - 2)
    out = F.group_norm(tl.tensor(values.astype(dtype)), groups, tl.tensor(weight.astype(dtype)),
                       tl.tensor(bias.astype(dtype)))
    assert_matches(out, expected * weight.reshape(channel) + bias.reshape(channel), dtype)


def test_group_norm_gradcheck_and_errors():
    assert gradcheck(lambda x, w, b: F.group_norm(x, 2, w, b, eps=1e-3), draw((2, 4, 2, 2), 14), draw(4, 15),
                     draw(4, 16))
    assert F.group_norm(tl.randn(0, 4, 3), 2).shape == (0, 4, 3)  # an empty batch, without warnings
    with pytest.raises(ValueError, match=r"the 5 channels of the input \(shape \(2, 5, 3\)\) are not divisible by "
                                         "num_groups=2"):
        F.group_norm(tl.randn(2, 5, 3), 2)
    with pytest.raises(ValueError, match="num_groups must be a positive int, got 0"):
        F.group_norm(tl.randn(2, 4, 3), 0)
    with pytest.raises(ValueError, match=r"at least 2 dims \(N, C, \.\.\.\), got shape \(5,\)"):
        F.group_norm(tl.randn(5), 1)
    with pytest.raises(ValueError, match=r"weight must have shape \(4,\) \(one value per channel\), got \(3,\)"):
        F.group_norm(tl.randn(2, 4, 3), 2, tl.ones(3))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(2, 3, 4, 5), (3, 2, 6), (1, 4, 2, 3, 2)])
def test_instance_norm_uses_each_sample_and_channel_and_moves_the_running_statistics(dtype, shape):
    values = draw(shape, 17, scale=2) + 0.5
    weight, bias = draw(shape[1], 18), draw(shape[1], 19)
    axes = tuple(range(2, len(shape)))
    channel = (1, shape[1]) + (1,) * len(axes)
    running_mean, running_var = tl.zeros(shape[1], dtype=dtype), tl.ones(shape[1], dtype=dtype)
    out = F.instance_norm(tl.tensor(values.astype(dtype)), running_mean, running_var, tl.tensor(weight.astype(dtype)),
                          tl.tensor(bias.astype(dtype)), momentum=0.3)
    assert_matches(out, standardized(values, axes) * weight.reshape(channel) + bias.reshape(channel), dtype)
    # the running statistics move towards the batch mean of each sample's mean and unbiased variance
    np.testing.assert_allclose(running_mean.numpy(), 0.3 * values.mean(axes).mean(0), rtol=RTOL[dtype])
    np.testing.assert_allclose(running_var.numpy(), 0.7 + 0.3 * values.var(axes, ddof=1).mean(0), rtol=RTOL[dtype])
    eval_out = F.instance_norm(tl.tensor(values.astype(dtype)), running_mean, running_var, use_input_stats=False)
    mean, var = running_mean.numpy().astype(np.float64), running_var.numpy().astype(np.float64)
    assert_matches(eval_out, (values - mean.reshape(channel)) / np.sqrt(var.reshape(channel) + 1e-5), dtype)


def test_instance_norm_gradcheck_and_errors():
    assert gradcheck(lambda x, w, b: F.instance_norm(x, weight=w, bias=b), draw((2, 2, 2, 3), 20), draw(2, 21),
                     draw(2, 22))
    with pytest.raises(ValueError, match=r"more than 1 spatial element .* got input shape \(2, 3, 1, 1\)"):
        F.instance_norm(tl.randn(2, 3, 1, 1))
    with pytest.raises(ValueError, match="use_input_stats=False needs running_mean and running_var"):
        F.instance_norm(tl.randn(2, 3, 4), use_input_stats=False)


def local_response_norm_reference(x, size, alpha, beta, k):
    channels = x.shape[1]
    out = np.empty_like(x)
    for c in range(channels):
        window = x[:, max(c - size // 2, 0):min(c + (size - 1) // 2, channels - 1) + 1]
        out[:, c] = x[:, c] / (k + alpha / size * (window**2).sum(1)) ** beta
    return out


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,size", [((2, 7, 3, 4), 5), ((2, 4, 5), 2), ((1, 3, 2, 2, 3), 7), ((2, 6, 3, 3), 1)])
def test_local_response_norm(dtype, shape, size):
    values = draw(shape, 23, scale=2)
    out = F.local_response_norm(tl.tensor(values.astype(dtype)), size, alpha=0.3, beta=0.6, k=1.5)
    assert_matches(out, local_response_norm_reference(values, size, 0.3, 0.6, 1.5), dtype)


def test_local_response_norm_gradcheck_and_errors():
    assert gradcheck(lambda x: F.local_response_norm(x, 3, alpha=0.5), draw((2, 4, 2, 3), 24))
    assert F.local_response_norm(tl.randn(0, 3, 4, 4), 3).shape == (0, 3, 4, 4)
    with pytest.raises(ValueError, match=r"at least 3 dims \(N, C, \.\.\.\), got shape \(3, 4\)"):
        F.local_response_norm(tl.randn(3, 4), 2)
    with pytest.raises(ValueError, match="size must be a positive int, got 0"):
        F.local_response_norm(tl.randn(2, 3, 4), 0)


def nearest_reference(x, sizes, sources):
    """x resampled by copying, along each spatial axis, input index sources(axis, n_in, n_out)[i] to i."""
    for axis, n_out in enumerate(sizes, start=2):
        x = np.take(x, sources(axis, x.shape[axis], n_out), axis=axis)
    return x


def bilinear_reference(x, out_h, out_w, align_corners):
    """Each output pixel from its four neighbours, weighted by the distances, per PyTorch's source rule."""
    n, c, in_h, in_w = x.shape

    def source(i, n_in, n_out):
        if align_corners:
            return i * (n_in - 1) / (n_out - 1) if n_out > 1 else 0.0
        return max((i + 0.5) * n_in / n_out - 0.5, 0.0)

    out = np.empty((n, c, out_h, out_w))
    for i in range(out_h):
        for j in range(out_w):
            y, xx = source(i, in_h, out_h), source(j, in_w, out_w)
            y0, x0 = min(int(y), in_h - 1), min(int(xx), in_w - 1)
            y1, x1 = min(y0 + 1, in_h - 1), min(x0 + 1, in_w - 1)
            dy, dx = y - y0, xx - x0
            out[:, :, i, j] = ((1 - dy) * ((1 - dx) * x[:, :, y0, x0] + dx * x[:, :, y0, x1])
                               + dy * ((1 - dx) * x[:, :, y1, x0] + dx * x[:, :, y1, x1]))
    return out


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("in_size,out_size", [((5, 7), (10, 14)), ((6, 4), (3, 7)), ((4, 5), (1, 1)), ((3, 3), (8, 5))])
@pytest.mark.parametrize("align_corners", [False, True])
def test_bilinear_interpolation(dtype, in_size, out_size, align_corners):
    values = draw((2, 3) + in_size, 25)
    out = F.interpolate(tl.tensor(values.astype(dtype)), size=out_size, mode="bilinear", align_corners=align_corners)
    assert_matches(out, bilinear_reference(values, *out_size, align_corners), dtype)


def test_linear_and_trilinear_interpolation_are_bilinear_along_fewer_or_more_axes():
    values = draw((2, 3, 6), 26)
    line = F.interpolate(tl.tensor(values), size=9, mode="linear")
    np.testing.assert_allclose(line.numpy(), bilinear_reference(values[:, :, None], 1, 9, False)[:, :, 0], rtol=1e-12)
    constant_depth = np.repeat(draw((1, 2, 1, 3, 4), 27), 2, axis=2)
    volume = F.interpolate(tl.tensor(constant_depth), size=(5, 5, 7), mode="trilinear", align_corners=True)
    expected = bilinear_reference(constant_depth[:, :, 0], 5, 7, True)
    for depth in range(5):
        np.testing.assert_allclose(volume.numpy()[:, :, depth], expected, rtol=1e-12)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("in_size,out_size", [((5, 7), (10, 14)), ((6, 9), (4, 5)), ((3, 4), (7, 11)), ((4, 4), (4, 4))])
def test_nearest_interpolation_follows_pytorchs_index_rules(dtype, in_size, out_size):
    values = draw((2, 2) + in_size, 28)

    def floor_rule(offset):
        def sources(axis, n_in, n_out):
            # PyTorch computes the scale in the input's dtype: float32 arithmetic for a float32 input
            scale = dtype(n_in) / dtype(n_out)
            return np.minimum(np.floor((np.arange(n_out, dtype=dtype) + dtype(offset)) * scale).astype(int), n_in - 1)
        return sources

    x = tl.tensor(values.astype(dtype))
    assert_matches(F.interpolate(x, size=out_size), nearest_reference(values, out_size, floor_rule(0)), dtype)
    assert_matches(F.interpolate(x, size=out_size, mode="nearest-exact"),
                   nearest_reference(values, out_size, floor_rule(0.5)), dtype)


def test_nearest_indices_known_from_pytorch():
    def indices(n_in, **kwargs):
        shape = kwargs.pop("shape", (1, 1, n_in))
        mode = kwargs.pop("mode", "nearest")
        return F.interpolate(tl.arange(n_in, dtype=tl.float32).reshape(*shape), mode=mode, **kwargs).numpy().ravel().tolist()

    assert indices(5, size=3) == [0, 1, 3]
    assert indices(5, size=3, mode="nearest-exact") == [0, 2, 4]
    assert indices(3, size=5) == [0, 0, 1, 1, 2]
    assert indices(14, size=10) == [0, 1, 2, 4, 5, 7, 8, 9, 11, 12]
    # a scale factor that is not recomputed sets the scale: 1 / 2.1, not 5 / 10
    assert indices(5, scale_factor=2.1) == [0, 0, 0, 1, 1, 2, 2, 3, 3, 4]
    assert indices(5, scale_factor=2.1, recompute_scale_factor=True) == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]
    # PyTorch's 2-D nearest copies an axis of unchanged size and halves the index of a doubled one
    assert indices(5, scale_factor=(1, 2.1), shape=(1, 1, 1, 5)) == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]
    assert indices(10, scale_factor=(1, 1.05), shape=(1, 1, 1, 10)) == list(range(10))
    assert indices(10, scale_factor=1.05) == [0, 0, 1, 2, 3, 4, 5, 6, 7, 8]
    # and the linear modes copy an axis of unchanged size
    assert indices(10, scale_factor=1.05, mode="linear") == list(range(10))


@pytest.mark.parametrize("kwargs", [dict(size=(7, 5)), dict(scale_factor=2), dict(scale_factor=(0.6, 1.5))])
@pytest.mark.parametrize("mode", ["nearest", "bilinear", "nearest-exact"])
def test_interpolate_gradcheck(kwargs, mode):
    assert gradcheck(lambda x: F.interpolate(x, mode=mode, **kwargs), draw((1, 2, 3, 4), 29))


def test_area_interpolation_is_adaptive_average_pooling():
    values = draw((2, 3, 6, 9), 30)
    out = F.interpolate(tl.tensor(values), scale_factor=(0.5, 1 / 3), mode="area")
    np.testing.assert_allclose(out.numpy(), values.reshape(2, 3, 3, 2, 3, 3).mean((3, 5)), rtol=1e-12)


def adaptive_average_reference(x, sizes):
    """Adaptive average pooling from its definition: output i of an axis averages the inputs from
    floor(i * n_in / n_out) to ceil((i + 1) * n_in / n_out) - 1, on every spatial axis."""
    out = np.empty(x.shape[:2] + tuple(sizes))
    for index in np.ndindex(*sizes):
        window = tuple(slice(i * n_in // n_out, -(-(i + 1) * n_in // n_out))
                       for i, n_in, n_out in zip(index, x.shape[2:], sizes))
        out[(slice(None), slice(None)) + index] = x[(slice(None), slice(None)) + window].mean(tuple(range(2, x.ndim)))
    return out


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,sizes", [((2, 3, 7), (3,)), ((1, 2, 5), (8,)), ((2, 2, 4, 5, 3), (2, 3, 2)),
                                         ((1, 3, 3, 2, 5), (5, 2, 1)), ((2, 3, 6, 5), (4, 3)), ((2, 3, 4), (0,)),
                                         ((1, 2, 3, 4, 2), (2, 0, 1)), ((1, 2, 5, 4), (0, 3))])
def test_area_interpolation_of_any_spatial_rank(dtype, shape, sizes):
    """3-D and 5-D inputs pool in 1-D and 3-D, as PyTorch's area mode does; an empty output size gives an empty
    tensor."""
    values = draw(shape, 31)
    out = F.interpolate(tl.tensor(values.astype(dtype)), size=sizes, mode="area")
    assert out.shape == shape[:2] + sizes
    assert_matches(out, adaptive_average_reference(values, sizes), dtype)


def test_area_interpolation_gradcheck_and_scale_factor():
    assert gradcheck(lambda x: F.interpolate(x, size=4, mode="area"), draw((1, 2, 7), 32))
    assert gradcheck(lambda x: F.interpolate(x, size=(2, 3, 2), mode="area"), draw((1, 1, 3, 5, 2), 33))
    values = draw((2, 1, 6, 4, 9), 34)
    out = F.interpolate(tl.tensor(values), scale_factor=(0.5, 0.5, 1 / 3), mode="area")
    np.testing.assert_allclose(out.numpy(), values.reshape(2, 1, 3, 2, 2, 2, 3, 3).mean((3, 5, 7)), rtol=1e-12)
    assert F.interpolate(tl.randn(2, 3, 4), scale_factor=0.2, mode="area").shape == (2, 3, 0)
    assert F.interpolate(tl.randn(0, 3, 4, 4), size=2, mode="area").shape == (0, 3, 2, 2)


@pytest.mark.parametrize("shape,kwargs", [((1, 2, 5, 7), dict(size=(9, 4))), ((2, 1, 6), dict(scale_factor=1.7)),
                                          ((1, 1, 3, 4, 5), dict(size=(5, 3, 8))),
                                          ((1, 3, 4, 5), dict(scale_factor=(2, 0.6)))])
@pytest.mark.parametrize("mode", ["nearest", "nearest-exact"])
def test_nearest_interpolation_of_uint8_images(shape, kwargs, mode):
    """uint8 images resample in the nearest modes as PyTorch allows, keeping their dtype; the positions are
    computed in float32, so each pixel comes from where a float32 image's does."""
    values = np.random.default_rng(35).integers(0, 256, shape).astype(np.uint8)
    out = F.interpolate(tl.tensor(values), mode=mode, **kwargs)
    assert out.dtype == tl.uint8
    as_float32 = F.interpolate(tl.tensor(values.astype(np.float32)), mode=mode, **kwargs)
    np.testing.assert_array_equal(out.numpy(), as_float32.numpy().astype(np.uint8))


@pytest.mark.parametrize("mode,shape", [("nearest", (1, 2, 3, 4)), ("bilinear", (1, 2, 3, 4)), ("linear", (2, 1, 5)),
                                        ("nearest-exact", (1, 1, 2, 3, 2)), ("trilinear", (1, 1, 2, 3, 2))])
def test_interpolation_gathers_without_reading_the_indices_back(monkeypatch, mode, shape):
    """Indexing by a device array checks the indices' bounds on the host (a device-to-host read on every call);
    the sampling indices are in range by construction, so interpolate gathers without that check."""
    def host_read(*args):
        raise AssertionError("interpolate indexed with a device array")

    monkeypatch.setattr(shape_ops, "check_device_index", host_read)
    x = tl.tensor(draw(shape, 36), requires_grad=True)
    sizes = tuple(2 * n + 1 for n in shape[2:])
    out = F.interpolate(x, size=sizes, mode=mode)
    out.sum().backward()
    assert out.shape == shape[:2] + sizes and x.grad.shape == shape
    assert F.interpolate(x, size=shape[2:], mode=mode) is not x  # an unchanged size is a copy, as in PyTorch


@pytest.mark.parametrize("call,error,message", [
    (lambda x: F.interpolate(x, size=3, scale_factor=2), ValueError, "exactly one of size and scale_factor, got both"),
    (lambda x: F.interpolate(x), ValueError, "exactly one of size and scale_factor, got neither"),
    (lambda x: F.interpolate(x, size=3, align_corners=True), ValueError, "align_corners can only be set with"),
    (lambda x: F.interpolate(x, size=(3,)), ValueError, r"size must be an int or 2 ints.*got \(3,\)"),
    (lambda x: F.interpolate(x, size=3.0), TypeError, "size must be an int or a sequence of ints, got 3.0"),
    (lambda x: F.interpolate(x, scale_factor=(2, 2, 2)), ValueError, "scale_factor must be a number or 2 numbers"),
    (lambda x: F.interpolate(x, size=0), ValueError, r"output size \(0, 0\) must be positive"),
    (lambda x: F.interpolate(x, size=(2, -1), mode="area"), ValueError, r"output size \(2, -1\) must be non-negative"),
    (lambda x: F.interpolate(x[:, :, :0], size=2), ValueError, r"spatial dims must be non-empty, got input shape "
                                                                r"\(1, 2, 0, 4\)"),
    (lambda x: F.interpolate(x, scale_factor=0.1), ValueError, r"output size \(0, 0\) must be positive"),
    (lambda x: F.interpolate(x, size=3, recompute_scale_factor=True), ValueError, "not meaningful with an explicit"),
    (lambda x: F.interpolate(x, size=3, mode="linear"), NotImplementedError, "mode 'linear' needs a 3-D input"),
    (lambda x: F.interpolate(x, size=3, mode="lanczos"), NotImplementedError, "got a 4-D input and mode 'lanczos'"),
    (lambda x: F.interpolate(x[0, 0], size=3), NotImplementedError, "got a 2-D input"),
    (lambda x: F.interpolate(x, size=3, mode="nearest", antialias=True), ValueError, "antialias=True needs mode"),
    (lambda x: F.interpolate(x.long(), size=3), TypeError, r"floating-point input \(or uint8 in the modes nearest and "
                                                           r"nearest-exact\), got dtype int64 in mode 'nearest'"),
    (lambda x: F.interpolate(x.to(tl.uint8), size=3, mode="bilinear"), TypeError, "got dtype uint8 in mode 'bilinear'"),
])
def test_interpolate_errors(call, error, message):
    with pytest.raises(error, match=message):
        call(tl.randn(1, 2, 4, 4))


def pixel_shuffle_reference(x, r):
    n, c, h, w = x.shape
    out = np.empty((n, c // (r * r), h * r, w * r))
    for channel in range(c // (r * r)):
        for i in range(r):
            for j in range(r):
                out[:, channel, i::r, j::r] = x[:, channel * r * r + i * r + j]
    return out


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,r", [((2, 12, 3, 5), 2), ((1, 9, 2, 2), 3), ((2, 5, 4, 3), 1)])
def test_pixel_shuffle_and_unshuffle(dtype, shape, r):
    values = draw(shape, 31).astype(dtype)
    out = F.pixel_shuffle(tl.tensor(values), r)
    np.testing.assert_array_equal(out.numpy(), pixel_shuffle_reference(values, r))
    np.testing.assert_array_equal(F.pixel_unshuffle(out, r).numpy(), values)
    unbatched = F.pixel_shuffle(tl.tensor(values[0]), r)
    np.testing.assert_array_equal(unbatched.numpy(), out.numpy()[0])
    extra_dims = F.pixel_shuffle(tl.tensor(values[None]), r)
    np.testing.assert_array_equal(extra_dims.numpy(), out.numpy()[None])


def test_pixel_shuffle_gradcheck_and_errors():
    assert gradcheck(lambda x: F.pixel_shuffle(x, 2), draw((1, 8, 2, 3), 32))
    assert gradcheck(lambda x: F.pixel_unshuffle(x, 2), draw((1, 2, 4, 2), 33))
    with pytest.raises(ValueError, match=r"the 5 channels of the input \(shape \(1, 5, 2, 2\)\) are not divisible by "
                                         r"upscale_factor\^2 = 4"):
        F.pixel_shuffle(tl.randn(1, 5, 2, 2), 2)
    with pytest.raises(ValueError, match=r"at least 3 dims \(\*, C, H, W\), got shape \(4, 2\)"):
        F.pixel_shuffle(tl.randn(4, 2), 2)
    with pytest.raises(ValueError, match="upscale_factor must be a positive int, got 0"):
        F.pixel_shuffle(tl.randn(1, 4, 2, 2), 0)
    with pytest.raises(ValueError, match=r"the input's width 3 \(shape \(1, 1, 4, 3\)\) is not divisible by "
                                         "downscale_factor=2"):
        F.pixel_unshuffle(tl.randn(1, 1, 4, 3), 2)


def unfold_reference(x, kernel, dilation, padding, stride):
    """Row c * kh * kw + i * kw + j, column p * W_out + q: channel c of the padded input at kernel offset (i, j)
    of the block at (p, q)."""
    (kh, kw), (dh, dw), (ph, pw), (sh, sw) = kernel, dilation, padding, stride
    n, c, h, w = x.shape
    padded = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    out_h, out_w = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1, (w + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    cols = np.empty((n, c * kh * kw, out_h * out_w))
    for channel in range(c):
        for i in range(kh):
            for j in range(kw):
                for p in range(out_h):
                    for q in range(out_w):
                        cols[:, (channel * kh + i) * kw + j, p * out_w + q] = padded[:, channel, p * sh + i * dh,
                                                                                     q * sw + j * dw]
    return cols


def fold_reference(cols, size, kernel, dilation, padding, stride):
    """The adjoint: every column entry added to the position unfold reads it from."""
    (kh, kw), (dh, dw), (ph, pw), (sh, sw) = kernel, dilation, padding, stride
    n, c = cols.shape[0], cols.shape[1] // (kh * kw)
    out_h, out_w = (size[0] + 2 * ph - dh * (kh - 1) - 1) // sh + 1, (size[1] + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    padded = np.zeros((n, c, size[0] + 2 * ph, size[1] + 2 * pw))
    for channel in range(c):
        for i in range(kh):
            for j in range(kw):
                for p in range(out_h):
                    for q in range(out_w):
                        padded[:, channel, p * sh + i * dh, q * sw + j * dw] += cols[:, (channel * kh + i) * kw + j,
                                                                                    p * out_w + q]
    return padded[:, :, ph:ph + size[0], pw:pw + size[1]]


GEOMETRIES = [
    dict(kernel_size=2),
    dict(kernel_size=(3, 2), dilation=(2, 1), padding=(1, 2), stride=(2, 3)),
    dict(kernel_size=3, padding=1),
    dict(kernel_size=1, stride=2),
]


def as_pairs(kernel_size, dilation=1, padding=0, stride=1):
    def pair(v):
        return (v, v) if isinstance(v, int) else v
    return pair(kernel_size), pair(dilation), pair(padding), pair(stride)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("geometry", GEOMETRIES, ids=repr)
@pytest.mark.parametrize("shape", [(2, 3, 7, 8), (1, 2, 5, 5)])
def test_unfold_and_fold(dtype, geometry, shape):
    values = draw(shape, 34)
    cols = F.unfold(tl.tensor(values.astype(dtype)), **geometry)
    expected = unfold_reference(values, *as_pairs(**geometry))
    assert_matches(cols, expected, dtype)
    blocks = draw(expected.shape, 35)
    folded = F.fold(tl.tensor(blocks.astype(dtype)), shape[2:], **geometry)
    assert_matches(folded, fold_reference(blocks, shape[2:], *as_pairs(**geometry)), dtype)
    # unbatched inputs drop the batch dim
    assert_matches(F.unfold(tl.tensor(values[0].astype(dtype)), **geometry), expected[0], dtype)
    assert_matches(F.fold(tl.tensor(blocks[0].astype(dtype)), shape[2:], **geometry), folded.numpy()[0], dtype)


@pytest.mark.parametrize("geometry", GEOMETRIES[:2], ids=repr)
def test_unfold_fold_gradcheck(geometry):
    values = draw((1, 2, 5, 6), 36)
    assert gradcheck(lambda x: F.unfold(x, **geometry), values)
    cols = unfold_reference(values, *as_pairs(**geometry))
    assert gradcheck(lambda c: F.fold(c, (5, 6), **geometry), draw(cols.shape, 37))


def test_convolution_as_unfold_and_a_matrix_product():
    """What unfold is for: conv2d = weight matrix @ columns, reshaped."""
    x, weight = draw((2, 3, 6, 7), 38), draw((4, 3, 3, 2), 39)
    cols = F.unfold(tl.tensor(x), (3, 2), padding=1, stride=2)
    out = tl.tensor(weight.reshape(4, -1)) @ cols
    expected = conv_reference.conv2d_forward(x, weight, None, 2, 1, 1, 1)
    np.testing.assert_allclose(out.reshape(*expected.shape).numpy(), expected, rtol=1e-12)


def test_fold_of_unfold_counts_the_blocks_covering_each_position():
    ones = tl.ones(1, 1, 4, 4, dtype=tl.float64)
    counts = F.fold(F.unfold(ones, 2), (4, 4), 2).numpy()[0, 0]
    np.testing.assert_array_equal(counts, [[1, 2, 2, 1], [2, 4, 4, 2], [2, 4, 4, 2], [1, 2, 2, 1]])


@pytest.mark.parametrize("call,error,message", [
    (lambda: F.unfold(tl.randn(5, 6), 2), ValueError, r"3-D \(C, H, W\) or 4-D .* got shape \(5, 6\)"),
    (lambda: F.unfold(tl.randn(1, 0, 4, 5), 2), ValueError, "non-zero C, H and W"),
    (lambda: F.unfold(tl.randn(1, 2, 4, 5), (2, 0)), ValueError, r"kernel_size must be at least 1, got \(2, 0\)"),
    (lambda: F.unfold(tl.randn(1, 2, 4, 5), 2, stride=0), ValueError, "stride must be at least 1"),
    (lambda: F.unfold(tl.randn(1, 2, 4, 5), 2, dilation=0), ValueError, "dilation must be at least 1"),
    (lambda: F.unfold(tl.randn(1, 2, 4, 5), 2, padding=-1), ValueError, "padding must be at least 0"),
    (lambda: F.unfold(tl.randn(1, 2, 4, 5), 6), ValueError, r"\(-1, 0\) sliding blocks; each must be at least 1"),
    (lambda: F.unfold(tl.randn(1, 2, 4, 5), (1, 2, 3)), TypeError, "kernel_size must be an int or a pair"),
    (lambda: F.fold(tl.randn(12), (4, 5), 2), ValueError, r"2-D .* or 3-D .* got shape \(12,\)"),
    (lambda: F.fold(tl.randn(2, 13, 12), (4, 5), 2), ValueError, r"dim 1 \(13.*divisible by the kernel's size 2 \* 2"),
    (lambda: F.fold(tl.randn(2, 12, 11), (4, 5), 2), ValueError, r"3 \* 4 sliding blocks, but the input .* holds 11"),
])
def test_unfold_fold_errors(call, error, message):
    with pytest.raises(error, match=message):
        call()


def vector_norm(x, p, axis):
    """The p-norm over ``axis`` (an int or a tuple), kept: max |x| for inf, min |x| for -inf, the count of
    nonzeros for 0, (sum |x|^p)^(1/p) otherwise (for p < 0 a zero entry makes it 0)."""
    if p == math.inf:
        return np.abs(x).max(axis, keepdims=True)
    if p == -math.inf:
        return np.abs(x).min(axis, keepdims=True)
    if p == 0:
        return (x != 0).sum(axis, keepdims=True).astype(x.dtype)
    with np.errstate(divide="ignore"):
        return (np.abs(x) ** p).sum(axis, keepdims=True) ** (1 / p)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("p,dim", [(2, 1), (1, -1), (3, 0), (0.5, 1), (math.inf, 1), (-math.inf, 2), (0, 1),
                                   (-1, 1), (-2.5, (0, 2)), (2, (1, 2)), (1, (-1, 0))])
def test_normalize(dtype, p, dim):
    """input / max(||input||_p, eps), for every order and dims tl.norm takes (PyTorch's definition)."""
    values = draw((3, 5, 4), 40)
    values[0, :, 0] = 0  # a zero vector stays zero
    expected = values / np.maximum(vector_norm(values, p, dim), 1e-12)
    assert_matches(F.normalize(tl.tensor(values.astype(dtype)), p, dim), expected, dtype)


@pytest.mark.parametrize("p,dim", [(2, 1), (1, 1), (3, 1), (math.inf, 1), (0.5, 0), (-1, 1), (0, 1), (2, (0, 1))])
def test_normalize_gradcheck(p, dim):
    assert gradcheck(lambda x: F.normalize(x, p, dim), draw((2, 4), 41))


def test_normalize_gradient_of_a_zero_vector_and_errors():
    """PyTorch's: below eps the result is x / eps, so the gradient is v / eps, and the norm adds nothing."""
    for p in (2, 1, 3, math.inf):
        x = tl.zeros(1, 3, dtype=tl.float64, requires_grad=True)
        (F.normalize(x, p) * tl.tensor([[1.0, 2.0, 3.0]], dtype=tl.float64)).sum().backward()
        np.testing.assert_allclose(x.grad.numpy(), [[1e12, 2e12, 3e12]])
    with pytest.raises(IndexError, match="dim 1 is out of range"):
        F.normalize(tl.randn(3))
    with pytest.raises(TypeError, match="floating-point"):
        F.normalize(tl.tensor([[1, 2]]))
    with pytest.raises(ValueError, match="p must be a number or 'fro', got 'nuc'"):
        F.normalize(tl.randn(2, 3), p="nuc")


def test_normalize_gradient_at_a_zero_entry_for_p_below_one():
    """The norm's gradient at a zero entry is 0 (PyTorch's rule), not the NaN of 0 * |0|^(p-1)."""
    values = np.array([[0.0, 1.0, 4.0]])
    x = tl.tensor(values, requires_grad=True)
    F.normalize(x, p=0.5).sum().backward()
    norm = (np.sqrt(np.abs(values)).sum()) ** 2
    # d/dx_j of sum_i x_i / norm: 1/norm - sum(x) / norm^2 * sign(x_j) (|x_j| / norm)^(-1/2), the norm's part 0 at 0
    with np.errstate(divide="ignore"):
        slope = np.where(values == 0, 0, (np.abs(values) / norm) ** -0.5)
    np.testing.assert_allclose(x.grad.numpy(), 1 / norm - values.sum() / norm**2 * slope, rtol=1e-12)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape1,shape2,dim", [((4, 5), (4, 5), 1), ((2, 3, 4), (3, 1), 1), ((6,), (6,), 0),
                                               ((3, 4, 2), (1, 4, 2), -1)])
def test_cosine_similarity(dtype, shape1, shape2, dim):
    a, b = draw(shape1, 42), draw(shape2, 43)
    wide_a, wide_b = np.broadcast_arrays(a, b)
    norms = np.linalg.norm(wide_a, axis=dim) * np.linalg.norm(wide_b, axis=dim)
    expected = (wide_a * wide_b).sum(dim) / norms
    out = F.cosine_similarity(tl.tensor(a.astype(dtype)), tl.tensor(b.astype(dtype)), dim)
    assert_matches(out, expected, dtype)


def test_cosine_similarity_clamps_each_norm_and_differentiates_the_norm():
    """PyTorch divides each vector by max(norm, eps); the gradient is the norm's, unclamped."""
    assert gradcheck(lambda a, b: F.cosine_similarity(a, b, dim=1), draw((3, 4), 44), draw((3, 4), 45))
    tiny, other = np.array([[1e-9, 2e-9, 0.0]]), np.array([[1.0, 1.0, 0.0]])
    x1, x2 = tl.tensor(tiny, requires_grad=True), tl.tensor(other, requires_grad=True)
    out = F.cosine_similarity(x1, x2)
    out.backward()
    unit = other / np.linalg.norm(other)
    np.testing.assert_allclose(out.detach().numpy(), (tiny / 1e-8 * unit).sum(1), rtol=1e-12)
    expected_grad = unit / 1e-8 - (tiny @ unit.T) / 1e-16 * tiny / np.linalg.norm(tiny)
    np.testing.assert_allclose(x1.grad.numpy(), expected_grad, rtol=1e-10)
    with pytest.raises(ValueError, match=r"x1 of shape \(2, 3\) and x2 of shape \(4, 3\) do not broadcast"):
        F.cosine_similarity(tl.randn(2, 3), tl.randn(4, 3))
    with pytest.raises(TypeError, match="got x1 of dtype int64"):
        F.cosine_similarity(tl.tensor([[1, 2]]), tl.tensor([[1.0, 2.0]]))


def test_dropout1d_zeroes_whole_channels():
    tl.manual_seed(0)
    out = F.dropout1d(tl.ones(16, 8, 5), 0.5).numpy()
    assert np.all((out == 0).all(-1) | (out == 2.0).all(-1))
    assert 0.3 < (out[..., 0] == 0).mean() < 0.7
    unbatched = F.dropout1d(tl.ones(32, 5), 0.5).numpy()
    assert np.all((unbatched == 0).all(-1) | (unbatched == 2.0).all(-1))
    x = tl.ones(2, 3, 4)
    assert F.dropout1d(x, 0.5, training=False) is x
    with pytest.raises(ValueError, match=r"2-D \(C, L\) or 3-D \(N, C, L\) input, got shape \(1, 2, 3, 4\)"):
        F.dropout1d(tl.ones(1, 2, 3, 4))
    with pytest.raises(ValueError, match="between 0 and 1, got 1.5"):
        F.dropout1d(tl.ones(2, 3), 1.5)
