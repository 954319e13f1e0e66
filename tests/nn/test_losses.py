"""Losses against formulas written out in NumPy float64, plus gradcheck."""

import re
import warnings

import numpy as np
import pytest

import nn
import tensorlib as tl
from nn import functional as F


def log_softmax(x, axis=1):
    shifted = x - x.max(axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis, keepdims=True))


def reference_cross_entropy(x, y, weight=None, ignore_index=-100, reduction="mean", smoothing=0.0):
    """PyTorch's definition for class indices, written out for (N, C) inputs."""
    n, c = x.shape
    logp = log_softmax(x)
    w = np.ones(c) if weight is None else weight
    valid = y != ignore_index
    safe = np.where(valid, y, 0)
    sample_w = w[safe] * valid
    nll = -logp[np.arange(n), safe] * sample_w
    smooth = -(logp * w).sum(1) * valid
    if reduction == "none":
        return (1 - smoothing) * nll + smoothing / c * smooth
    if reduction == "sum":
        return (1 - smoothing) * nll.sum() + smoothing / c * smooth.sum()
    return (1 - smoothing) * nll.sum() / sample_w.sum() + smoothing / c * smooth.sum() / sample_w.sum()


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("smoothing", [0.0, 0.15])
@pytest.mark.parametrize("weighted", [False, True])
def test_cross_entropy_class_indices(reduction, smoothing, weighted):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((7, 5)) * 2
    y = np.array([0, 4, -100, 2, 2, 1, 3])
    w = rng.uniform(0.5, 2.0, 5) if weighted else None
    inputs = tl.tensor(x, requires_grad=True)
    weight = tl.tensor(w) if weighted else None
    out = F.cross_entropy(inputs, tl.tensor(y), weight, reduction=reduction, label_smoothing=smoothing)
    np.testing.assert_allclose(out.detach().numpy(), reference_cross_entropy(x, y, w, -100, reduction, smoothing),
                               rtol=1e-12, atol=1e-14)
    assert tl.gradcheck(lambda t: F.cross_entropy(t, tl.tensor(y), weight, reduction=reduction,
                                                  label_smoothing=smoothing), [inputs])
    module = nn.CrossEntropyLoss(weight, reduction=reduction, label_smoothing=smoothing)
    np.testing.assert_allclose(module(inputs, tl.tensor(y)).detach().numpy(), out.detach().numpy())


def test_cross_entropy_spatial_and_probabilities():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 3, 4, 5))
    y = rng.integers(0, 3, (2, 4, 5))
    flat_x = x.transpose(0, 2, 3, 1).reshape(-1, 3)
    out = F.cross_entropy(tl.tensor(x), tl.tensor(y), label_smoothing=0.1)
    assert out.item() == pytest.approx(reference_cross_entropy(flat_x, y.reshape(-1), smoothing=0.1), rel=1e-12)
    p = rng.dirichlet(np.ones(3), size=4)
    logits = rng.standard_normal((4, 3))
    inputs = tl.tensor(logits, requires_grad=True)
    expected = -(log_softmax(logits) * (p * 0.8 + 0.2 / 3)).sum(1).mean()
    assert F.cross_entropy(inputs, tl.tensor(p), label_smoothing=0.2).item() == pytest.approx(expected, rel=1e-12)
    assert tl.gradcheck(lambda t: F.cross_entropy(t, tl.tensor(p)), [inputs])


def test_cross_entropy_is_stable_for_huge_logits():
    logits = tl.tensor([[1e4, -1e4, 0.0]], requires_grad=True)
    loss = F.cross_entropy(logits, tl.tensor([1]))
    loss.backward()
    assert loss.item() == pytest.approx(2e4, rel=1e-6)
    assert np.isfinite(logits.grad.numpy()).all()


def test_nll_loss_and_errors():
    rng = np.random.default_rng(2)
    logp = log_softmax(rng.standard_normal((4, 3)))
    y = np.array([2, 0, 1, 1])
    inputs = tl.tensor(logp, requires_grad=True)
    assert F.nll_loss(inputs, tl.tensor(y)).item() == pytest.approx(-logp[np.arange(4), y].mean(), rel=1e-12)
    assert nn.NLLLoss(reduction="sum")(inputs, tl.tensor(y)).item() == pytest.approx(-logp[np.arange(4), y].sum())
    assert tl.gradcheck(lambda t: F.nll_loss(t, tl.tensor(y), ignore_index=0), [inputs])
    with pytest.raises(IndexError, match="target value 3 is out of range for 3 classes"):
        F.nll_loss(inputs, tl.tensor([3, 0, 0, 0]))
    with pytest.raises(ValueError, match=r"target shape \(3,\) does not match input shape \(4, 3\)"):
        F.nll_loss(inputs, tl.tensor([0, 0, 0]))
    with pytest.raises(ValueError, match="reduction"):
        nn.CrossEntropyLoss(reduction="average")
    with pytest.raises(TypeError, match="class indices"):
        F.nll_loss(inputs, tl.tensor([0.0, 1.0, 0.0, 1.0]))


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_mse_loss(reduction):
    rng = np.random.default_rng(3)
    a, b = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    expected = {"mean": ((a - b) ** 2).mean(), "sum": ((a - b) ** 2).sum(), "none": (a - b) ** 2}[reduction]
    inputs = tl.tensor(a, requires_grad=True)
    np.testing.assert_allclose(nn.MSELoss(reduction=reduction)(inputs, tl.tensor(b)).detach().numpy(), expected,
                               rtol=1e-12)
    assert tl.gradcheck(lambda t: F.mse_loss(t, tl.tensor(b), reduction=reduction), [inputs])


def test_one_hot():
    out = F.one_hot(tl.tensor([0, 2, 1]))
    np.testing.assert_array_equal(out.numpy(), np.eye(3, dtype=np.int64)[[0, 2, 1]])
    assert out.dtype == tl.int64
    assert F.one_hot(tl.tensor([[1], [0]]), num_classes=4).shape == (2, 1, 4)
    with pytest.raises(ValueError, match=r"\[0, 2\)"):
        F.one_hot(tl.tensor([0, 2]), num_classes=2)


IGNORED_BATCHES = {
    "nll_loss": lambda t, y: F.nll_loss(t.log_softmax(1), y),
    "cross_entropy_weight": lambda t, y: F.cross_entropy(t, y, tl.tensor(np.arange(1.0, 5.0))),
    "cross_entropy_smoothing": lambda t, y: F.cross_entropy(t, y, label_smoothing=0.2),
    "cross_entropy_weight_smoothing": lambda t, y: F.cross_entropy(t, y, tl.tensor(np.arange(1.0, 5.0)),
                                                                   label_smoothing=0.2),
}


@pytest.mark.parametrize("spatial", [False, True])
@pytest.mark.parametrize("name", sorted(IGNORED_BATCHES) + ["cross_entropy_fused"])
def test_fully_ignored_batch_gives_a_nan_loss_and_a_zero_gradient(name, spatial):
    """PyTorch's 'mean' of a batch whose targets are all ignore_index: 0 / 0 = NaN, but nothing flows back."""
    rng = np.random.default_rng(4)
    shape = (3, 4, 2, 3) if spatial else (3, 4)
    inputs = tl.tensor(rng.standard_normal(shape), requires_grad=True)
    target = tl.tensor(np.full((3,) + shape[2:], -100))
    if name == "cross_entropy_fused":
        loss = F.cross_entropy(inputs, target)
    else:
        loss = IGNORED_BATCHES[name](inputs, target)
    assert np.isnan(loss.item())
    loss.backward()
    np.testing.assert_array_equal(inputs.grad.numpy(), np.zeros(shape))


def test_targets_of_zero_total_weight_give_nan_where_pytorch_does():
    """Not-ignored targets whose weights sum to 0: PyTorch's gradient -weight / total is 0 / 0 = NaN at their
    entries, and 0 for the ignored target."""
    rng = np.random.default_rng(5)
    inputs = tl.tensor(log_softmax(rng.standard_normal((3, 4))), requires_grad=True)
    loss = F.nll_loss(inputs, tl.tensor([0, 1, -100]), tl.tensor([0.0, 0.0, 1.0, 1.0], dtype=tl.float64))
    assert np.isnan(loss.item())
    with np.errstate(invalid="ignore"):  # 0 * inf in the backward: the NaN PyTorch gives too
        loss.backward()
    expected_nan = np.zeros((3, 4), dtype=bool)
    expected_nan[0, 0] = expected_nan[1, 1] = True
    np.testing.assert_array_equal(np.isnan(inputs.grad.numpy()), expected_nan)
    np.testing.assert_array_equal(inputs.grad.numpy()[~expected_nan], 0.0)


@pytest.mark.parametrize("weight_shape", [(3,), (5,), (2, 2), (1, 4), ()])
@pytest.mark.parametrize("call", ["nll_loss", "cross_entropy", "cross_entropy_smoothing", "cross_entropy_probabilities",
                                  "cross_entropy_spatial"])
def test_class_weight_must_have_one_entry_per_class(call, weight_shape):
    rng = np.random.default_rng(6)
    weight = tl.tensor(np.ones(weight_shape))
    logits, labels = tl.tensor(rng.standard_normal((3, 4))), tl.tensor([0, 3, 1])
    calls = {
        "nll_loss": lambda: F.nll_loss(logits, labels, weight),
        "cross_entropy": lambda: F.cross_entropy(logits, labels, weight),
        "cross_entropy_smoothing": lambda: F.cross_entropy(logits, labels, weight, label_smoothing=0.1),
        "cross_entropy_probabilities": lambda: F.cross_entropy(logits, logits.softmax(1), weight),
        "cross_entropy_spatial": lambda: F.cross_entropy(tl.tensor(rng.standard_normal((2, 4, 3, 3))),
                                                         tl.tensor(np.zeros((2, 3, 3), dtype=np.int64)), weight),
    }
    expected = rf"one entry per class \(4 classes\), got shape {re.escape(str(weight_shape))}"
    with pytest.raises(ValueError, match=expected):
        calls[call]()


def reference_regression(name, d, reduction, parameter):
    """PyTorch's elementwise regression losses of d = input - target, in float64."""
    a = np.abs(d)
    if name == "mse_loss":
        losses = d**2
    elif name == "l1_loss" or parameter == 0:
        losses = a
    elif name == "smooth_l1_loss":
        losses = np.where(a < parameter, 0.5 * a**2 / parameter, a - 0.5 * parameter)
    else:
        losses = np.where(a < parameter, 0.5 * a**2, parameter * (a - 0.5 * parameter))
    return {"none": losses, "sum": losses.sum(), "mean": losses.mean()}[reduction]


REGRESSION = [("mse_loss", None, nn.MSELoss), ("l1_loss", None, nn.L1Loss), ("smooth_l1_loss", 0.0, nn.SmoothL1Loss),
              ("smooth_l1_loss", 0.7, nn.SmoothL1Loss), ("smooth_l1_loss", 2.5, nn.SmoothL1Loss),
              ("huber_loss", 0.7, nn.HuberLoss), ("huber_loss", 2.5, nn.HuberLoss)]


def regression_call(name, parameter, reduction):
    if parameter is None:
        return lambda a, b: getattr(F, name)(a, b, reduction=reduction)
    keyword = "beta" if name == "smooth_l1_loss" else "delta"
    return lambda a, b: getattr(F, name)(a, b, reduction=reduction, **{keyword: parameter})


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("name,parameter,module", REGRESSION)
def test_regression_losses(name, parameter, module, reduction):
    rng = np.random.default_rng(7)
    a, b = rng.standard_normal((4, 5)) * 2, rng.standard_normal((4, 5)) * 2
    inputs, target = tl.tensor(a, requires_grad=True), tl.tensor(b, requires_grad=True)
    loss = regression_call(name, parameter, reduction)
    out = loss(inputs, target)
    np.testing.assert_allclose(out.detach().numpy(), reference_regression(name, a - b, reduction, parameter),
                               rtol=1e-12, atol=1e-14)
    assert tl.gradcheck(loss, [inputs, target])
    keyword = "beta" if name == "smooth_l1_loss" else "delta"
    layer = module(reduction=reduction) if parameter is None else module(reduction=reduction, **{keyword: parameter})
    np.testing.assert_allclose(layer(inputs, target).detach().numpy(), out.detach().numpy(), rtol=1e-15)


@pytest.mark.parametrize("name,parameter,module", REGRESSION)
def test_regression_losses_warn_when_the_target_broadcasts(name, parameter, module):
    rng = np.random.default_rng(8)
    a, b = rng.standard_normal((3, 1)), rng.standard_normal(3)
    loss = regression_call(name, parameter, "mean")
    with pytest.warns(UserWarning, match=r"target size \(3,\) that is different to the input size \(3, 1\)"):
        out = loss(tl.tensor(a), tl.tensor(b))
    assert out.item() == pytest.approx(reference_regression(name, a - b, "mean", parameter), rel=1e-12)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loss(tl.tensor(a), tl.tensor(a + 1))


def test_regression_loss_parameters_are_checked():
    x = tl.ones(3)
    with pytest.raises(ValueError, match="beta must be >= 0, got -1"):
        F.smooth_l1_loss(x, x, beta=-1)
    with pytest.raises(ValueError, match="delta must be > 0, got 0"):
        F.huber_loss(x, x, delta=0)
    with pytest.raises(ValueError, match="delta must be > 0"):
        nn.HuberLoss(delta=-1.0)
    with pytest.raises(ValueError, match="reduction"):
        F.l1_loss(x, x, reduction="average")


def reference_bce(x, t, weight, reduction):
    with np.errstate(divide="ignore"):
        losses = -(t * np.maximum(np.log(x), -100) + (1 - t) * np.maximum(np.log1p(-x), -100))
    losses = losses * (1 if weight is None else weight)
    return {"none": losses, "sum": losses.sum(), "mean": losses.mean()}[reduction]


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("weighted", [False, True])
def test_binary_cross_entropy(reduction, weighted):
    rng = np.random.default_rng(9)
    x, t = rng.uniform(0.05, 0.95, (4, 3)), rng.uniform(0, 1, (4, 3))
    w = rng.uniform(0.5, 2.0, 3) if weighted else None
    inputs, target = tl.tensor(x, requires_grad=True), tl.tensor(t, requires_grad=True)
    weight = tl.tensor(w) if weighted else None
    out = F.binary_cross_entropy(inputs, target, weight, reduction=reduction)
    np.testing.assert_allclose(out.detach().numpy(), reference_bce(x, t, w, reduction), rtol=1e-12)
    assert tl.gradcheck(lambda a, b: F.binary_cross_entropy(a, b, weight, reduction=reduction), [inputs, target])
    layer = nn.BCELoss(weight, reduction=reduction)
    np.testing.assert_allclose(layer(inputs, target).detach().numpy(), out.detach().numpy(), rtol=1e-15)


def test_binary_cross_entropy_at_probabilities_0_and_1():
    """Each log is clamped to >= -100 and the input gradient is PyTorch's (x - t) / max(x (1 - x), 1e-12):
    finite where the derivative of the clamped log would be 0 / 0."""
    x = np.array([0.0, 1.0, 0.0, 1.0, 0.3], dtype=np.float32)
    t = np.array([1.0, 0.0, 0.0, 1.0, 0.2], dtype=np.float32)
    inputs, target = tl.tensor(x, requires_grad=True), tl.tensor(t, requires_grad=True)
    loss = F.binary_cross_entropy(inputs, target, reduction="none")
    np.testing.assert_allclose(loss.detach().numpy(), reference_bce(x.astype(np.float64), t, None, "none"),
                               rtol=1e-6, atol=1e-7)
    assert loss.detach().numpy()[0] == pytest.approx(100.0)
    loss.sum().backward()
    np.testing.assert_allclose(inputs.grad.numpy(), [-1e12, 1e12, 0.0, 0.0, 0.1 / 0.21], rtol=1e-6)
    np.testing.assert_array_equal(target.grad.numpy()[:2], [np.inf, -np.inf])


def test_binary_cross_entropy_errors():
    x = tl.tensor([[0.2], [0.7]])
    with pytest.raises(ValueError, match=r"target shape \(2,\) must equal input shape \(2, 1\)"):
        F.binary_cross_entropy(x, tl.tensor([1.0, 0.0]))
    with pytest.raises(ValueError, match="every element of input must be between 0 and 1, got 1.5"):
        F.binary_cross_entropy(tl.tensor([0.5, 1.5]), tl.tensor([1.0, 0.0]))
    with pytest.raises(ValueError, match="every element of input must be between 0 and 1, got nan"):
        F.binary_cross_entropy(tl.tensor([np.nan]), tl.tensor([1.0]))
    with pytest.raises(ValueError, match="every element of target must be between 0 and 1, got -0.5"):
        F.binary_cross_entropy(tl.tensor([0.5]), tl.tensor([-0.5]))
    with pytest.raises(ValueError, match=r"weight of shape \(3,\) does not broadcast to the input shape \(2, 1\)"):
        F.binary_cross_entropy(x, tl.tensor([[1.0], [0.0]]), tl.ones(3))
    with pytest.raises(TypeError, match="input float32 and target float64"):
        F.binary_cross_entropy(x, tl.tensor([[1.0], [0.0]], dtype=tl.float64))


def reference_bce_with_logits(x, t, weight, pos_weight, reduction):
    log_weight = 1 if pos_weight is None else 1 + (pos_weight - 1) * t
    losses = ((1 - t) * x + log_weight * np.logaddexp(0, -x)) * (1 if weight is None else weight)
    return {"none": losses, "sum": losses.sum(), "mean": losses.mean()}[reduction]


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("weighted,positive_weighted", [(False, False), (True, False), (False, True), (True, True)])
def test_binary_cross_entropy_with_logits(reduction, weighted, positive_weighted):
    rng = np.random.default_rng(10)
    x, t = rng.standard_normal((4, 3)) * 4, rng.uniform(0, 1, (4, 3))
    w = rng.uniform(0.5, 2.0, (4, 1)) if weighted else None
    pw = rng.uniform(0.5, 3.0, 3) if positive_weighted else None
    inputs, target = tl.tensor(x, requires_grad=True), tl.tensor(t, requires_grad=True)
    weight, pos_weight = (tl.tensor(w) if weighted else None), (tl.tensor(pw) if positive_weighted else None)
    out = F.binary_cross_entropy_with_logits(inputs, target, weight, reduction=reduction,
                                             pos_weight=pos_weight)
    np.testing.assert_allclose(out.detach().numpy(), reference_bce_with_logits(x, t, w, pw, reduction), rtol=1e-12)
    assert tl.gradcheck(lambda a, b: F.binary_cross_entropy_with_logits(a, b, weight, reduction=reduction,
                                                                           pos_weight=pos_weight),
                        [inputs, target])
    layer = nn.BCEWithLogitsLoss(weight, reduction=reduction, pos_weight=pos_weight)
    np.testing.assert_allclose(layer(inputs, target).detach().numpy(), out.detach().numpy(), rtol=1e-15)


def test_binary_cross_entropy_with_logits_is_exact_for_large_logits():
    """log1p(exp(-30)) = 9.4e-14 survives in float32 (log(1 + exp(-30)) rounds to 0); |x| = 100 neither
    overflows nor gives a non-finite gradient. At x = -30, t = 0 the loss (1 - t) x - log(sigmoid(x)) cancels
    to 0 in float32, as in PyTorch, which computes the same expression."""
    x = np.array([30.0, -30.0, 100.0, -100.0], dtype=np.float32)
    t = np.array([1.0, 0.0, 0.0, 1.0], dtype=np.float32)
    inputs = tl.tensor(x, requires_grad=True)
    loss = F.binary_cross_entropy_with_logits(inputs, tl.tensor(t), reduction="none")
    expected = reference_bce_with_logits(x.astype(np.float64), t, None, None, "none")
    np.testing.assert_allclose(loss.detach().numpy(), expected, rtol=1e-6, atol=1e-12)
    assert loss.detach().numpy()[0] == pytest.approx(expected[0], rel=1e-6)
    loss.sum().backward()
    np.testing.assert_allclose(inputs.grad.numpy(), 1 / (1 + np.exp(-x.astype(np.float64))) - t, atol=1e-7)


def test_binary_cross_entropy_with_logits_errors():
    x = tl.randn(4, 3)
    with pytest.raises(ValueError, match=r"target shape \(4,\) must equal input shape \(4, 3\)"):
        F.binary_cross_entropy_with_logits(x, tl.rand(4))
    with pytest.raises(ValueError, match=r"pos_weight of shape \(2,\) does not broadcast to the input shape \(4, 3\)"):
        F.binary_cross_entropy_with_logits(x, tl.rand(4, 3), pos_weight=tl.ones(2))
    with pytest.raises(ValueError, match=r"weight of shape \(2, 4, 3\) does not broadcast"):
        F.binary_cross_entropy_with_logits(x, tl.rand(4, 3), weight=tl.ones(2, 4, 3))


def reference_kl_div(x, t, reduction, log_target):
    if log_target:
        losses = np.exp(t) * (t - x)
    else:
        losses = np.where(t > 0, t * np.log(np.where(t > 0, t, 1)), 0) - t * x
    if reduction == "batchmean":
        return losses.sum() / x.shape[0]
    return {"none": losses, "sum": losses.sum(), "mean": losses.mean()}[reduction]


@pytest.mark.parametrize("reduction", ["mean", "sum", "none", "batchmean"])
@pytest.mark.parametrize("log_target", [False, True])
def test_kl_div(reduction, log_target):
    rng = np.random.default_rng(11)
    x = log_softmax(rng.standard_normal((4, 5)))
    t = rng.dirichlet(np.ones(5), size=4)
    t[0, 1] = 0.0  # target * log(target) is 0 there
    t = np.log(t + 0.1) if log_target else t
    inputs, target = tl.tensor(x, requires_grad=True), tl.tensor(t, requires_grad=log_target)

    def loss(a, b):
        if reduction != "mean":
            return F.kl_div(a, b, reduction=reduction, log_target=log_target)
        with pytest.warns(UserWarning, match="'batchmean' divides only by the batch size"):
            return F.kl_div(a, b, reduction=reduction, log_target=log_target)

    out = loss(inputs, target)
    np.testing.assert_allclose(out.detach().numpy(), reference_kl_div(x, t, reduction, log_target), rtol=1e-12,
                               atol=1e-15)
    assert tl.gradcheck(loss, [inputs, target])
    if reduction != "mean":
        layer = nn.KLDivLoss(reduction=reduction, log_target=log_target)
        np.testing.assert_allclose(layer(inputs, target).detach().numpy(), out.detach().numpy(), rtol=1e-15)


def test_kl_div_target_gradient_and_reductions():
    rng = np.random.default_rng(12)
    x = log_softmax(rng.standard_normal((3, 4)))
    t = rng.dirichlet(np.ones(4), size=3)
    inputs, target = tl.tensor(x, requires_grad=True), tl.tensor(t, requires_grad=True)
    assert tl.gradcheck(lambda a, b: F.kl_div(a, b, reduction="sum"), [inputs, target])
    assert F.kl_div(tl.tensor(x[0, 0]), tl.tensor(t[0, 0]), reduction="batchmean").item() == pytest.approx(
        t[0, 0] * (np.log(t[0, 0]) - x[0, 0]), rel=1e-12)
    with pytest.raises(ValueError, match="batchmean"):
        F.kl_div(inputs, target, reduction="average")
    with pytest.raises(ValueError, match="reduction"):
        F.mse_loss(inputs, target, reduction="batchmean")
    with pytest.raises(ValueError, match="reduction"):
        nn.KLDivLoss(reduction="average")


LOSSES_ON_CUDA = {
    "regression": lambda a, b: (F.l1_loss(a, b) + F.smooth_l1_loss(a, b, beta=0.5) + F.huber_loss(a, b, delta=0.7)
                                + F.mse_loss(a, b, reduction="sum")),
    "binary_cross_entropy": lambda a, b: (F.binary_cross_entropy(a.sigmoid(), b.sigmoid().detach(), b[0].detach())
                                          + F.binary_cross_entropy_with_logits(a, b.sigmoid(), pos_weight=b[0]
                                                                               .abs().detach(), reduction="none")),
    "kl_div": lambda a, b: F.kl_div(a.log_softmax(1), b.softmax(1), reduction="batchmean")
                           + F.kl_div(a.log_softmax(1), b.log_softmax(1), reduction="sum", log_target=True),
    # the last term ignores every target: a NaN loss, a zero gradient for b
    "ignored_targets": lambda a, b: (F.cross_entropy(a, tl.tensor([-100, 2, -100, 0], device=a.device),
                                                     label_smoothing=0.1, weight=b[0].abs().detach())
                                     + F.nll_loss(a.log_softmax(1), tl.tensor([1, -100, 3, 0], device=a.device),
                                                  reduction="sum")
                                     + F.cross_entropy(b, tl.tensor([-100] * 4, device=b.device),
                                                       label_smoothing=0.1)),
}


@pytest.mark.parametrize("name", sorted(LOSSES_ON_CUDA))
def test_losses_on_cuda_match_the_cpu(tier, name):
    rng = np.random.default_rng(13)
    arrays = [rng.standard_normal((4, 5)), rng.standard_normal((4, 5))]

    def run(device):
        inputs = [tl.tensor(a, device=device, requires_grad=True) for a in arrays]
        out = LOSSES_ON_CUDA[name](*inputs)
        out.sum().backward()
        assert out.device == device
        return [out.detach().cpu().numpy()] + [t.grad.cpu().numpy() for t in inputs]

    for got, expected in zip(run("cuda"), run("cpu")):
        np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("cls", [nn.CrossEntropyLoss, nn.NLLLoss, nn.BCELoss, nn.BCEWithLogitsLoss])
def test_class_weights_are_buffers(cls):
    """As in PyTorch: a given weight is in the state dict, loads back and follows dtype moves; none is absent."""
    assert list(cls().state_dict()) == []
    loss = cls(weight=tl.tensor(np.arange(1.0, 4.0), dtype=tl.float32))
    assert list(loss.state_dict()) == ["weight"]
    loss.load_state_dict({"weight": tl.tensor(np.full(3, 7.0), dtype=tl.float32)})
    np.testing.assert_array_equal(loss.weight.numpy(), np.full(3, 7.0))
    assert loss.double().weight.dtype == tl.float64
    with pytest.raises(TypeError, match="buffer 'weight' must be a Tensor or None, got ndarray"):
        cls(weight=np.ones(3))


def test_bce_with_logits_pos_weight_is_a_buffer():
    loss = nn.BCEWithLogitsLoss(pos_weight=tl.tensor([2.0, 0.5]))
    assert list(loss.state_dict()) == ["pos_weight"]
    logits, target = tl.tensor([[0.3, -1.2]]), tl.tensor([[1.0, 0.0]])
    expected = F.binary_cross_entropy_with_logits(logits, target, pos_weight=tl.tensor([2.0, 0.5]))
    np.testing.assert_allclose(loss(logits, target).item(), expected.item())


def test_weights_of_another_dtype():
    """As PyTorch: BCE losses are computed in the input's dtype whatever the weights'; the class-index losses
    refuse a class weight of another dtype."""
    rng = np.random.default_rng(9)
    x = tl.tensor(rng.standard_normal((3, 4)), dtype=tl.float32)
    y = tl.tensor(rng.uniform(size=(3, 4)), dtype=tl.float32)
    w64 = tl.tensor(rng.uniform(0.5, 2.0, 4))
    for loss in (F.binary_cross_entropy_with_logits(x, y, pos_weight=w64),
                 F.binary_cross_entropy_with_logits(x, y, weight=w64),
                 F.binary_cross_entropy(x.sigmoid(), y, weight=w64)):
        assert loss.dtype == tl.float32
    expected = F.binary_cross_entropy_with_logits(x, y, weight=w64.to(tl.float32))
    np.testing.assert_allclose(F.binary_cross_entropy_with_logits(x, y, weight=w64).item(), expected.item())
    labels = tl.tensor([0, 1, 3])
    for loss in (F.cross_entropy, F.nll_loss):
        with pytest.raises(RuntimeError, match="weight must have the input's dtype float32, got float64"):
            loss(x, labels, weight=w64)
