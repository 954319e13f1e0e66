"""Losses against formulas written out in NumPy float64, plus gradcheck."""

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
    np.testing.assert_allclose(nn.MSELoss(reduction)(inputs, tl.tensor(b)).detach().numpy(), expected, rtol=1e-12)
    assert tl.gradcheck(lambda t: F.mse_loss(t, tl.tensor(b), reduction), [inputs])


def test_one_hot():
    out = F.one_hot(tl.tensor([0, 2, 1]))
    np.testing.assert_array_equal(out.numpy(), np.eye(3, dtype=np.int64)[[0, 2, 1]])
    assert out.dtype == tl.int64
    assert F.one_hot(tl.tensor([[1], [0]]), num_classes=4).shape == (2, 1, 4)
    with pytest.raises(ValueError, match=r"\[0, 2\)"):
        F.one_hot(tl.tensor([0, 2]), num_classes=2)
