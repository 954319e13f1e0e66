"""nn.functional's activations and dropout against NumPy float64 references and PyTorch's behaviour, plus
gradcheck (the losses are in test_losses.py)."""

import warnings

import numpy as np
import pytest

import tensorlib as tl
from nn import functional as F


def elu_reference(x, alpha):
    return np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0)))


@pytest.mark.parametrize("alpha", [1.0, 1.5, -0.5])
def test_elu(alpha):
    rng = np.random.default_rng(0)
    values = rng.uniform(1e-3, 4, (3, 5)) * rng.choice([-1, 1], (3, 5))  # away from the kink at 0
    x = tl.tensor(values, requires_grad=True)
    np.testing.assert_allclose(F.elu(x, alpha).detach().numpy(), elu_reference(values, alpha), rtol=1e-14)
    assert tl.gradcheck(lambda t: F.elu(t, alpha), [x])


def test_elu_keeps_precision_near_zero_and_far_below_it():
    """expm1, not exp(x) - 1: -1e-8 stays -1e-8 in float32. The slope alpha * exp(x) comes from x, so it is
    3.1e-9 at x = -20 where alpha + output would round to 0. At x = 0 the slope is alpha, as in PyTorch."""
    values = np.array([-1e-8, -1e-3, -20.0, 0.0, 2.0], dtype=np.float32)
    x = tl.tensor(values, requires_grad=True)
    out = F.elu(x, 1.5)
    assert out.dtype == tl.float32
    np.testing.assert_allclose(out.detach().numpy(), elu_reference(values.astype(np.float64), 1.5), rtol=1e-6)
    out.sum().backward()
    slope = np.where(values > 0, 1.0, 1.5 * np.exp(values.astype(np.float64)))
    np.testing.assert_allclose(x.grad.numpy(), slope, rtol=1e-6)


def test_elu_passes_nan_and_does_not_overflow():
    x = tl.tensor([np.nan, -1e4, 1e4], requires_grad=True)
    out = F.elu(x)
    out.sum().backward()
    np.testing.assert_array_equal(out.detach().numpy(), [np.nan, -1.0, 1e4])
    np.testing.assert_array_equal(x.grad.numpy(), [1.0, 0.0, 1.0])
    with pytest.raises(TypeError, match="elu needs a floating-point input, got dtype int64"):
        F.elu(tl.tensor([1, -2]))


def test_logsigmoid():
    rng = np.random.default_rng(1)
    values = rng.standard_normal((4, 3)) * 5
    x = tl.tensor(values, requires_grad=True)
    np.testing.assert_allclose(F.logsigmoid(x).detach().numpy(), -np.logaddexp(0, -values), rtol=1e-14)
    assert tl.gradcheck(F.logsigmoid, [x])


def test_logsigmoid_float32_extremes():
    values = np.array([-200.0, -30.0, 0.0, 30.0, 200.0], dtype=np.float32)
    x = tl.tensor(values, requires_grad=True)
    out = F.logsigmoid(x)
    out.sum().backward()
    wide = values.astype(np.float64)
    # exp(-200) is below float32's range: log(sigmoid(200)) and its slope are 0 there (atol)
    np.testing.assert_allclose(out.detach().numpy(), -np.logaddexp(0, -wide), rtol=1e-6, atol=1e-37)
    np.testing.assert_allclose(x.grad.numpy(), 1 / (1 + np.exp(wide)), rtol=1e-6, atol=1e-37)


def dropped_groups(out, shape):
    """Each (dim 0, dim 1) slice of a dropout2d output of ones, flattened; asserts that it is all 0 or all 2."""
    groups = out.reshape(shape[0], shape[1], -1)
    assert np.all((groups == 0).all(-1) | (groups == 2.0).all(-1))
    return groups


def test_dropout2d_zeroes_channels_of_4d_inputs_without_a_warning():
    tl.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = F.dropout2d(tl.ones(16, 8, 3, 2), 0.5).numpy()
    groups = dropped_groups(out, (16, 8))
    assert 0.3 < (groups[..., 0] == 0).mean() < 0.7


@pytest.mark.parametrize("shape,message", [
    ((16, 8, 5), r"taken as \(N, C, L\)"),
    ((16, 8), "received a 2-D input"),
    ((4, 8, 2, 3, 2), "received a 5-D input"),
])
def test_dropout2d_other_ranks_drop_per_first_two_dims_with_a_warning(shape, message):
    """PyTorch's behaviour: a 3-D input is (N, C, L), not an unbatched (C, H, W); 2-D and 5-D inputs warn."""
    tl.manual_seed(1)
    with pytest.warns(UserWarning, match=message):
        out = F.dropout2d(tl.ones(*shape), 0.5).numpy()
    groups = dropped_groups(out, shape)
    assert 0.25 < (groups[..., 0] == 0).mean() < 0.75
    x = tl.ones(*shape)
    with pytest.warns(UserWarning, match=message):
        assert F.dropout2d(x, 0.5, training=False) is x


def test_dropout2d_gradient_and_errors():
    def fixed_mask_dropout(t):
        tl.manual_seed(2)  # the same mask on every evaluation keeps the function deterministic
        with pytest.warns(UserWarning, match=r"\(N, C, L\)"):
            return F.dropout2d(t, 0.4)

    x = tl.tensor(np.random.default_rng(3).standard_normal((3, 4, 2)), requires_grad=True)
    assert tl.gradcheck(fixed_mask_dropout, [x])
    with pytest.raises(ValueError, match=r"at least 2 dims \(N, C, \.\.\.\), got shape \(5,\)"):
        F.dropout2d(tl.ones(5))
    with pytest.raises(ValueError, match="between 0 and 1, got 1.5"):
        F.dropout2d(tl.ones(2, 3, 4, 4), 1.5)


def test_batch_norm_refuses_mismatched_statistics_and_eps():
    x = tl.randn(4, 3, 2, 2)
    with pytest.raises(RuntimeError, match="mixed dtype.*float32 input.*running_mean is float64"):
        F.batch_norm(x, tl.zeros(3, dtype=tl.float64), tl.ones(3), training=False)
    with pytest.raises(ValueError, match=r"running_var must have one value per channel, shape \(3,\), got \(4,\)"):
        F.batch_norm(x, tl.zeros(3), tl.ones(4), training=False)
    with pytest.raises(ValueError, match="weight"):
        F.batch_norm(x, None, None, weight=tl.ones(2), training=True)
    with pytest.raises(ValueError, match="eps > 0 in training"):
        F.batch_norm(x, None, None, training=True, eps=0.0)
    with pytest.raises(ValueError, match="eps=-1"):
        F.batch_norm(x, tl.zeros(3), tl.ones(3), training=False, eps=-1e-5)
    F.batch_norm(x, tl.zeros(3), tl.ones(3), training=False, eps=0.0)  # allowed in eval, as in PyTorch


@pytest.mark.parametrize("function", [
    lambda t, inplace: F.relu(t, inplace),
    lambda t, inplace: F.leaky_relu(t, 0.1, inplace),
    lambda t, inplace: F.elu(t, 1.0, inplace),
])
def test_inplace_activations_write_into_their_input_and_differentiate(function):
    values = [-1.5, -0.2, 0.3, 2.0]
    w = tl.tensor(values, dtype=tl.float64, requires_grad=True)
    x = w * 1.0
    assert function(x, True) is x  # the input's memory holds the result, as in PyTorch
    (x * x).sum().backward()
    v = tl.tensor(values, dtype=tl.float64, requires_grad=True)
    expected = function(v * 1.0, False)
    (expected * expected).sum().backward()
    np.testing.assert_allclose(x.detach().numpy(), expected.detach().numpy())
    np.testing.assert_allclose(w.grad.numpy(), v.grad.numpy())
    with pytest.raises(RuntimeError, match="leaf tensor that requires grad"):
        function(tl.ones(2, requires_grad=True), True)


def test_inplace_dropout_zeroes_the_input_itself():
    tl.manual_seed(0)
    x = tl.ones(1000)
    out = F.dropout(x, 0.5, training=True, inplace=True)
    assert out is x and 300 < int((x.numpy() == 0).sum()) < 700
    assert set(np.unique(x.numpy())) <= {0.0, 2.0}
