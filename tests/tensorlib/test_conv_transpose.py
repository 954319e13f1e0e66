"""conv_transpose2d and nn.ConvTranspose2d: values against a float64 scatter-add loop, gradients by finite
differences, PyTorch's output size, output_padding rule, layout, initialisation, printed form and errors."""

import math

import numpy as np
import pytest

import nn
import nn.functional as F
import tensorlib as tl


def conv_transpose2d_reference(x, w, b, stride, padding, output_padding, groups, dilation):
    """Each input element x[n, c, i, j] adds x * w[c, o] to the output window starting at (i*stride, j*stride)
    of the uncropped output; then ``padding`` rows/cols are cut from each side, and ``output_padding`` more
    rows/cols (zeros where nothing reached them) are kept at the bottom/right."""
    (sh, sw), (ph, pw), (oph, opw), (dh, dw) = (
        v if isinstance(v, tuple) else (v, v) for v in (stride, padding, output_padding, dilation))
    N, C_in, H, W = x.shape
    _, per_group_out, R, S = w.shape
    per_group_in = C_in // groups
    full_h, full_w = (H - 1) * sh + dh * (R - 1) + 1, (W - 1) * sw + dw * (S - 1) + 1
    full = np.zeros((N, per_group_out * groups, full_h + oph, full_w + opw))
    for n in range(N):
        for c in range(C_in):
            group = c // per_group_in
            for o in range(per_group_out):
                for i in range(H):
                    for j in range(W):
                        for r in range(R):
                            for s in range(S):
                                full[n, group * per_group_out + o, i * sh + r * dh, j * sw + s * dw] += (
                                    x[n, c, i, j] * w[c, o, r, s])
    H_out = (H - 1) * sh - 2 * ph + dh * (R - 1) + oph + 1
    W_out = (W - 1) * sw - 2 * pw + dw * (S - 1) + opw + 1
    y = full[:, :, ph : ph + H_out, pw : pw + W_out]
    assert y.shape[2:] == (H_out, W_out)
    return y if b is None else y + b.reshape(-1, 1, 1)


CASES = [
    # (N, C_in, H, W, C_out, kernel, stride, padding, output_padding, groups, dilation)
    (2, 3, 4, 5, 2, 3, 1, 0, 0, 1, 1),
    (1, 2, 3, 4, 3, (3, 2), 2, 1, 1, 1, 1),  # batch 1, non-square kernel and input
    (2, 4, 3, 3, 6, 3, (2, 3), (1, 0), (1, 2), 2, 1),  # groups, per-axis stride and output_padding
    (1, 4, 3, 4, 4, 2, 2, 0, 1, 4, 1),  # depthwise
    (1, 2, 4, 3, 2, 3, 2, 2, 0, 1, 2),  # dilation, padding larger than the kernel's half
    (1, 2, 4, 4, 3, 3, 1, 2, 1, 1, 2),  # output_padding >= stride, allowed by dilation 2 (extra zero row)
    (2, 2, 3, 2, 2, 2, 1, (1, 0), (2, 1), 2, (3, 2)),  # output_padding 2 with dilation 3
    (1, 3, 2, 2, 2, 1, 3, 0, 2, 1, 1),  # 1x1 kernel, stride 3: rows between the inputs stay at the bias
]


def leaf(rng, shape):
    return tl.tensor(rng.standard_normal(shape), requires_grad=True)


def case_tensors(case, seed, bias=True):
    n, c_in, h, w, c_out, kernel, stride, padding, output_padding, groups, dilation = case
    kernel = kernel if isinstance(kernel, tuple) else (kernel, kernel)
    rng = np.random.default_rng(seed)
    x, weight = leaf(rng, (n, c_in, h, w)), leaf(rng, (c_in, c_out // groups, *kernel))
    b = leaf(rng, (c_out,)) if bias else None
    return x, weight, b, dict(stride=stride, padding=padding, output_padding=output_padding, groups=groups,
                              dilation=dilation)


def arrays(*tensors):
    return [None if t is None else t.detach().numpy() for t in tensors]


@pytest.mark.parametrize("case", CASES, ids=str)
@pytest.mark.parametrize("bias", [True, False])
def test_matches_the_scatter_reference_and_gradcheck(case, bias):
    x, weight, b, args = case_tensors(case, seed=0, bias=bias)
    out = tl.conv_transpose2d(x, weight, b, **args)
    expected = conv_transpose2d_reference(*arrays(x, weight, b), **args)
    assert out.shape == expected.shape
    np.testing.assert_allclose(out.detach().numpy(), expected, rtol=1e-10, atol=1e-12)
    inputs = [x, weight] + ([b] if bias else [])
    assert tl.gradcheck(lambda *t: tl.conv_transpose2d(t[0], t[1], t[2] if bias else None, **args), inputs)


@pytest.mark.parametrize("case", CASES[:4], ids=str)
def test_float32_matches_the_float64_reference(case):
    x, weight, b, args = case_tensors(case, seed=1)
    out = tl.conv_transpose2d(*(t.detach().to(tl.float32) for t in (x, weight, b)), **args)
    assert out.dtype == tl.float32
    expected = conv_transpose2d_reference(*arrays(x, weight, b), **args)
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-4, atol=1e-5)


def test_gradients_are_the_convolution_passes():
    """d input is conv2d of the output gradient; d weight pairs the output gradient (as conv2d's input) with
    the input (as conv2d's output gradient)."""
    x, weight, b, args = case_tensors(CASES[2], seed=2)
    out = tl.conv_transpose2d(x, weight, b, **args)
    g = np.random.default_rng(3).standard_normal(out.shape)
    (out * tl.tensor(g)).sum().backward()
    conv_args = dict(stride=args["stride"], padding=args["padding"], dilation=args["dilation"], groups=args["groups"])
    np.testing.assert_allclose(x.grad.numpy(), tl.conv2d(tl.tensor(g), weight.detach(), **conv_args).numpy(),
                               rtol=1e-12, atol=1e-12)
    dy = tl.tensor(x.detach().numpy(), requires_grad=False)
    probe = tl.tensor(weight.detach().numpy(), requires_grad=True)
    (tl.conv2d(tl.tensor(g), probe, **conv_args) * dy).sum().backward()
    np.testing.assert_allclose(weight.grad.numpy(), probe.grad.numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(b.grad.numpy(), g.sum(axis=(0, 2, 3)), rtol=1e-12)


def test_output_size_formula():
    """(H-1)*stride - 2*padding + dilation*(k-1) + output_padding + 1 per axis."""
    x, weight = tl.randn(1, 2, 5, 7), tl.randn(2, 3, 3, 2)
    out = tl.conv_transpose2d(x, weight, stride=(2, 3), padding=(1, 2), output_padding=(1, 0), dilation=(1, 2))
    assert out.shape == (1, 3, 4 * 2 - 2 + 2 + 1 + 1, 6 * 3 - 4 + 2 + 0 + 1)


def test_unbatched_input():
    x, weight, b, args = case_tensors(CASES[1], seed=4)
    out = tl.conv_transpose2d(x[0], weight, b, **args)
    assert out.shape == tl.conv_transpose2d(x, weight, b, **args).shape[1:]
    np.testing.assert_allclose(out.detach().numpy(), tl.conv_transpose2d(x, weight, b, **args)[0].detach().numpy())
    assert tl.gradcheck(lambda a, w: tl.conv_transpose2d(a, w, **args), [x[0].detach().requires_grad_(), weight])


def test_empty_batch():
    out = tl.conv_transpose2d(tl.randn(0, 2, 3, 3), tl.randn(2, 4, 3, 3), stride=2)
    assert out.shape == (0, 4, 7, 7)


@pytest.mark.parametrize("kwargs,match", [
    (dict(stride=1, output_padding=1), r"output_padding must be smaller than the stride or the dilation.*\(1, 1\)"),
    (dict(stride=2, output_padding=2), r"output_padding must be smaller.*output_padding \(2, 2\), stride \(2, 2\)"),
    (dict(stride=(2, 1), output_padding=(1, 1)), r"output_padding must be smaller.*stride \(2, 1\)"),
    (dict(output_padding=-1), r"output_padding must be at least 0, got \(-1, -1\)"),
    (dict(stride=0), r"stride must be at least 1, got \(0, 0\)"),
    (dict(padding=-1), r"padding must be at least 0"),
    (dict(dilation=0), r"dilation must be at least 1"),
    (dict(groups=0), r"groups must be a positive int, got 0"),
    (dict(groups=3), r"weight shape \(4, 3, 3, 3\): its 4 input channels are not divisible by groups=3"),
    (dict(padding=3), r"output would be empty \(0x0\)"),
    (dict(x=(1, 5, 4, 4)), r"weight shape \(4, 3, 3, 3\) expects 4 input channels, but input shape \(1, 5, 4, 4\)"),
    (dict(x=(4, 4)), r"input must be 3-D \(C_in, H, W\) or 4-D \(N, C_in, H, W\), got shape \(4, 4\)"),
    (dict(w=(4, 3, 3)), r"weight must be 4-D \(C_in, C_out/groups, kH, kW\), got shape \(4, 3, 3\)"),
    (dict(w=(4, 3, 0, 3)), r"kernel size must be positive"),
    (dict(bias=(4,)), r"bias must have shape \(3,\) \(C_out = weight.shape\[1\] \* groups\), got \(4,\)"),
])
def test_bad_arguments_raise_naming_them(kwargs, match):
    kwargs = dict(kwargs)
    x = tl.randn(*kwargs.pop("x", (1, 4, 4, 4)))
    weight = tl.randn(*kwargs.pop("w", (4, 3, 3, 3)))
    bias = tl.randn(*kwargs.pop("bias")) if "bias" in kwargs else None
    with pytest.raises(ValueError, match=match):
        tl.conv_transpose2d(x, weight, bias, **kwargs)


def test_dtypes_are_checked():
    x, weight = tl.randn(1, 2, 3, 3), tl.randn(2, 2, 3, 3)
    with pytest.raises(TypeError, match="conv_transpose2d weight dtype float64 does not match input dtype float32"):
        tl.conv_transpose2d(x, weight.to(tl.float64))
    with pytest.raises(TypeError, match="conv_transpose2d input must be a floating-point tensor, got dtype int64"):
        tl.conv_transpose2d(tl.tensor(np.ones((1, 2, 3, 3), np.int64)), weight)
    with pytest.raises(TypeError, match="output_padding must be an int or a pair of ints, got 'same'"):
        tl.conv_transpose2d(x, weight, output_padding="same")


def test_layer_weight_layout_and_default_init():
    tl.manual_seed(0)
    layer = nn.ConvTranspose2d(4, 6, (3, 2), groups=2)
    assert layer.weight.shape == (4, 3, 3, 2) and layer.bias.shape == (6,)
    assert list(layer.state_dict()) == ["weight", "bias"]
    bound = 1 / math.sqrt(3 * 3 * 2)  # PyTorch's fan_in: weight.shape[1] * kH * kW
    for values in (layer.weight.detach().numpy(), layer.bias.detach().numpy()):
        assert np.abs(values).max() <= bound
    assert np.abs(layer.weight.detach().numpy()).max() > 0.8 * bound
    assert nn.ConvTranspose2d(2, 3, 3, bias=False).bias is None


def test_layer_forward_is_the_functional_form():
    layer = nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1, output_padding=1, groups=2, dilation=1)
    x = tl.randn(2, 4, 3, 5)
    expected = F.conv_transpose2d(x, layer.weight, layer.bias, 2, 1, 1, 2, 1)
    np.testing.assert_array_equal(layer(x).detach().numpy(), expected.detach().numpy())
    assert layer(x).shape == (2, 6, 6, 10)


def test_layer_output_size_picks_the_output_padding():
    layer = nn.ConvTranspose2d(2, 3, 3, stride=2, padding=1)
    x = tl.randn(1, 2, 4, 4)
    assert layer(x).shape == (1, 3, 7, 7)
    assert layer(x, output_size=(8, 7)).shape == (1, 3, 8, 7)
    assert layer(x, output_size=[1, 3, 8, 8]).shape == (1, 3, 8, 8)
    assert layer(x[0], output_size=[3, 8, 8]).shape == (3, 8, 8)
    with pytest.raises(ValueError, match=r"output_size \(9, 9\) is not reachable .* from \(7, 7\) to \(8, 8\)"):
        layer(x, output_size=(9, 9))
    with pytest.raises(ValueError, match=r"output_size must hold 2 or 4 sizes for a 4-D input, got \(8,\)"):
        layer(x, output_size=(8,))


def test_layer_repr_as_pytorch():
    assert repr(nn.ConvTranspose2d(4, 6, (3, 2))) == "ConvTranspose2d(4, 6, kernel_size=(3, 2), stride=(1, 1))"
    layer = nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1, output_padding=1, groups=2, bias=False, dilation=2)
    assert repr(layer) == ("ConvTranspose2d(4, 6, kernel_size=(3, 3), stride=(2, 2), padding=(1, 1), dilation=(2, 2), "
                           "output_padding=(1, 1), groups=2, bias=False)")


@pytest.mark.parametrize("kwargs,error,match", [
    (dict(padding_mode="reflect"), ValueError, "supports only padding_mode='zeros', got 'reflect'"),
    (dict(kernel_size=0), ValueError, r"kernel_size must be at least 1, got \(0, 0\)"),
    (dict(stride=0), ValueError, r"stride must be at least 1, got \(0, 0\)"),
    (dict(padding="same"), TypeError, "padding must be an int or a pair of ints, got 'same'"),
    (dict(groups=4), ValueError, "in_channels 4 and out_channels 6 must be divisible by groups=4"),
    (dict(out_channels=0), ValueError, "out_channels must be a positive int, got 0"),
])
def test_layer_bad_arguments(kwargs, error, match):
    args = dict(in_channels=4, out_channels=6, kernel_size=3)
    args.update(kwargs)
    with pytest.raises(error, match=match):
        nn.ConvTranspose2d(**args)
