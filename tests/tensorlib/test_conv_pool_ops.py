"""The differentiable conv2d and pooling functions: gradcheck over their options, PyTorch semantics."""

import numpy as np
import pytest

import tensorlib as tl
from kernels.conv2d import reference as conv_reference


def leaf(rng, *shape):
    return tl.tensor(rng.standard_normal(shape), requires_grad=True)


CONV_CASES = [
    # (N, C, H, W, K, R, S, stride, padding, dilation, groups)
    (2, 3, 5, 6, 4, 3, 3, 1, 1, 1, 1),
    (1, 2, 7, 5, 3, 2, 3, (2, 1), (0, 2), 1, 1),
    (2, 4, 6, 6, 4, 3, 2, 1, 2, 2, 2),
    (1, 3, 5, 5, 6, 3, 3, 3, 1, 1, 3),  # depthwise with channel multiplier 2
    (2, 3, 4, 5, 2, 1, 1, 1, 0, 1, 1),  # 1x1
    (1, 2, 5, 5, 2, 3, 3, 2, "valid", 1, 1),
]


@pytest.mark.parametrize("case", CONV_CASES, ids=str)
@pytest.mark.parametrize("bias", [True, False])
def test_conv2d_gradcheck(case, bias):
    n, c, h, w, k, r, s, stride, padding, dilation, groups = case
    rng = np.random.default_rng(0)
    x, weight = leaf(rng, n, c, h, w), leaf(rng, k, c // groups, r, s)
    b = leaf(rng, k) if bias else None
    out = tl.conv2d(x, weight, b, stride, padding, dilation, groups)
    expected = conv_reference.conv2d_forward(x.detach().numpy(), weight.detach().numpy(),
                                             None if b is None else b.detach().numpy(), stride,
                                             0 if padding == "valid" else padding, dilation, groups)
    np.testing.assert_allclose(out.detach().numpy(), expected, rtol=1e-10, atol=1e-10)
    inputs = [x, weight] + ([b] if bias else [])
    assert tl.gradcheck(lambda *t: tl.conv2d(t[0], t[1], t[2] if bias else None, stride, padding, dilation, groups),
                        inputs)


@pytest.mark.parametrize("kernel,dilation", [(3, 1), (4, 1), (2, 3), (5, 2)])
def test_conv2d_same_padding_keeps_the_size(kernel, dilation):
    rng = np.random.default_rng(1)
    x, weight = leaf(rng, 1, 2, 6, 7), leaf(rng, 3, 2, kernel, kernel)
    out = tl.conv2d(x, weight, padding="same", dilation=dilation)
    assert out.shape == (1, 3, 6, 7)
    total = dilation * (kernel - 1)  # PyTorch puts the odd zero after (bottom/right)
    padded = np.pad(x.detach().numpy(), [(0, 0), (0, 0), (total // 2, total - total // 2)] + [(total // 2, total - total // 2)])
    expected = conv_reference.conv2d_forward(padded, weight.detach().numpy(), None, 1, 0, dilation, 1)
    np.testing.assert_allclose(out.detach().numpy(), expected, rtol=1e-10, atol=1e-10)
    assert tl.gradcheck(lambda a, b: tl.conv2d(a, b, padding="same", dilation=dilation), [x, weight])
    with pytest.raises(ValueError, match="stride 1"):
        tl.conv2d(x, weight, padding="same", stride=2)


def test_conv2d_unbatched_input():
    rng = np.random.default_rng(2)
    x, weight = leaf(rng, 2, 5, 5), leaf(rng, 3, 2, 3, 3)
    out = tl.conv2d(x, weight)
    assert out.shape == (3, 3, 3)
    np.testing.assert_allclose(out.detach().numpy(), tl.conv2d(x.unsqueeze(0), weight)[0].detach().numpy())


def test_primer_quiz_layer():
    """32x32x3 input, ten 5x5 filters, stride 1, pad 2 -> 32x32x10, 10*(5*5*3)+10 = 760 parameters."""
    x = tl.randn(1, 3, 32, 32)
    weight, bias = tl.randn(10, 3, 5, 5), tl.randn(10)
    assert tl.conv2d(x, weight, bias, stride=1, padding=2).shape == (1, 10, 32, 32)
    assert weight.numel() + bias.numel() == 760


@pytest.mark.parametrize("stride,size", [(1, 5), (2, 3), (3, 2)])
def test_primer_stride_examples(stride, size):
    """7x7 input, 3x3 filter: 5x5 at stride 1, 3x3 at stride 2; stride 3 floors to 2x2 like PyTorch."""
    assert tl.conv2d(tl.randn(1, 1, 7, 7), tl.randn(1, 1, 3, 3), stride=stride).shape == (1, 1, size, size)


@pytest.mark.parametrize("bad,match", [
    (dict(x=(1, 4, 8, 8)), r"3 input channels.*\(1, 4, 8, 8\)"),
    (dict(x=(4, 8, 8, 1, 1)), "4-D"),
    (dict(stride=0), "stride must be positive"),
    (dict(padding=-1), "padding must be non-negative"),
    (dict(x=(1, 3, 2, 2)), r"empty.*input size \(2, 2\).*kernel \(3, 3\)"),
])
def test_conv2d_bad_input(bad, match):
    x = tl.randn(*bad.get("x", (1, 3, 8, 8)))
    with pytest.raises(ValueError, match=match):
        tl.conv2d(x, tl.randn(2, 3, 3, 3), stride=bad.get("stride", 1), padding=bad.get("padding", 0))


def test_conv2d_rejects_integer_input():
    with pytest.raises(TypeError, match="floating-point.*int64"):
        tl.conv2d(tl.ones(1, 1, 4, 4, dtype=tl.int64), tl.ones(1, 1, 3, 3, dtype=tl.int64))


POOL_CASES = [
    # (H, W, kernel, stride, padding, ceil_mode)
    (6, 6, 2, None, 0, False),
    (7, 5, 3, 2, 1, False),
    (7, 5, 3, 2, 1, True),
    (5, 8, (2, 3), (1, 2), (1, 0), True),
]


def distinct(rng, *shape):
    """Values without ties, so max pooling is differentiable everywhere."""
    values = rng.permutation(int(np.prod(shape))).reshape(shape) * 0.01 + rng.uniform(-0.001, 0.001, shape)
    return tl.tensor(values, requires_grad=True)


@pytest.mark.parametrize("case", POOL_CASES, ids=str)
def test_pooling_gradcheck(case):
    h, w, kernel, stride, padding, ceil_mode = case
    rng = np.random.default_rng(3)
    x = distinct(rng, 2, 3, h, w)
    assert tl.gradcheck(lambda t: tl.max_pool2d(t, kernel, stride, padding, ceil_mode=ceil_mode), [x])
    assert tl.gradcheck(lambda t: tl.max_pool2d(t, kernel, stride, padding, dilation=(1, 2) if w > 6 else 1), [x])
    for include in (True, False):
        assert tl.gradcheck(lambda t: tl.avg_pool2d(t, kernel, stride, padding, ceil_mode, include), [x])
    assert tl.gradcheck(lambda t: tl.lp_pool2d(t, 2, kernel, stride, ceil_mode), [x])
    assert tl.gradcheck(lambda t: tl.lp_pool2d(t.abs() + 0.5, 3, kernel, stride), [x])
    assert tl.gradcheck(lambda t: tl.adaptive_avg_pool2d(t, (2, 3)), [x])
    assert tl.gradcheck(lambda t: tl.adaptive_avg_pool2d(t, 1), [x])


def test_max_pool_indices_and_unbatched_input():
    x = tl.tensor(np.arange(16.0).reshape(1, 4, 4))
    out, indices = tl.max_pool2d(x, 2, return_indices=True)
    np.testing.assert_array_equal(out.numpy(), [[[5, 7], [13, 15]]])
    np.testing.assert_array_equal(indices.numpy(), [[[5, 7], [13, 15]]])


def test_global_average_pooling_is_the_mean():
    x = tl.tensor(np.random.default_rng(5).standard_normal((2, 3, 5, 4)), dtype=tl.float32)
    # float32 sums of 20 values near 1 round at about 1e-7 absolute: a mean near 0 needs an absolute tolerance
    expected = x.numpy().astype(np.float64).mean((2, 3), keepdims=True)
    np.testing.assert_allclose(tl.adaptive_avg_pool2d(x, 1).numpy(), expected, rtol=1e-6, atol=1e-6)


def test_pool_padding_larger_than_half_the_kernel():
    with pytest.raises(ValueError, match="padding"):
        tl.max_pool2d(tl.randn(1, 1, 6, 6), 2, padding=2)
