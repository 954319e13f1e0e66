"""The margin, embedding and likelihood losses and pairwise_distance against formulas written out in NumPy float64,
plus gradcheck; the legacy size_average/reduce arguments and PyTorch's argument positions of every loss; weight= of
the regression losses; 0-d inputs of the class losses."""

import itertools
import math

import numpy as np
import pytest

import nn
import tensorlib as tl
from nn import losses as L

REDUCTIONS = ["mean", "sum", "none"]
DTYPES = [(np.float64, 1e-12), (np.float32, 1e-4)]


def reduce(losses, reduction):
    return {"mean": np.mean, "sum": np.sum, "none": np.asarray}[reduction](losses)


def log_sigmoid(x):
    return -np.logaddexp(0, -x)


def reference_distance(x1, x2, p, eps=1e-6, keepdim=False):
    difference = np.abs(x1 - x2 + eps)
    axis = -1 if difference.ndim else None
    if p == math.inf:
        out = difference.max(axis, keepdims=keepdim)
    elif p == -math.inf:
        out = difference.min(axis, keepdims=keepdim)
    elif p == 0:
        out = (difference != 0).sum(axis, keepdims=keepdim).astype(float)
    else:
        out = (difference**p).sum(axis, keepdims=keepdim) ** (1 / p)
    return out


def reference_multi_margin(x, y, p, margin, weight):
    x = x.reshape(-1, x.shape[-1] if x.ndim else 1)
    losses = []
    for row, label in zip(x, np.ravel(y)):
        terms = [max(0.0, margin - row[label] + row[i]) ** p for i in range(len(row)) if i != label]
        losses.append(sum(terms) * (1.0 if weight is None else weight[label]) / len(row))
    return np.array(losses).reshape(np.shape(y))


def reference_gaussian(x, t, var, full, eps):
    var = np.maximum(var, eps)
    return 0.5 * (np.log(var) + (x - t) ** 2 / var) + (0.5 * np.log(2 * np.pi) if full else 0.0)


def reference_poisson(x, t, log_input, full, eps=1e-8):
    losses = np.exp(x) - t * x if log_input else x - t * np.log(x + eps)
    if full:
        safe = np.where(t > 1, t, 2.0)
        losses = losses + np.where(t > 1, safe * np.log(safe) - safe + 0.5 * np.log(2 * np.pi * safe), 0.0)
    return losses


def signs(rng, shape):
    return np.where(rng.random(shape) < 0.5, -1.0, 1.0)


def check(got, expected, tolerance):
    assert got.shape == np.shape(expected)
    np.testing.assert_allclose(got.detach().numpy(), expected, rtol=tolerance, atol=tolerance * 1e-2)


# ---- each loss against its formula, every reduction, float32 and float64 -----------------------------------------
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("dtype,tolerance", DTYPES)
@pytest.mark.parametrize("shape", [(5,), (4, 3), (2, 3, 4)])
def test_elementwise_margin_losses(shape, dtype, tolerance, reduction):
    rng = np.random.default_rng(sum(shape))
    a, b, target = rng.standard_normal(shape), rng.standard_normal(shape), signs(rng, shape)
    other_target = np.where(rng.random(shape) < 0.3, 0.5, target)  # neither 1 nor -1: both hinge terms
    t = lambda array: tl.tensor(array.astype(dtype))  # noqa: E731
    check(L.margin_ranking_loss(t(a), t(b), t(target), 0.3, reduction=reduction),
          reduce(np.maximum(0, -target * (a - b) + 0.3), reduction), tolerance)
    check(nn.MarginRankingLoss(0.3, reduction=reduction)(t(a), t(b), t(target)),
          reduce(np.maximum(0, -target * (a - b) + 0.3), reduction), tolerance)
    hinge = np.where(other_target != 1, np.maximum(0, 0.7 - a), 0) + np.where(other_target != -1, a, 0)
    check(L.hinge_embedding_loss(t(a), t(other_target), 0.7, reduction=reduction), reduce(hinge, reduction), tolerance)
    check(nn.HingeEmbeddingLoss(0.7, reduction=reduction)(t(a), t(other_target)), reduce(hinge, reduction), tolerance)
    soft = np.log1p(np.exp(-target * a * 3))
    check(L.soft_margin_loss(t(3 * a), t(target), reduction=reduction), reduce(soft, reduction), tolerance)
    check(nn.SoftMarginLoss(reduction=reduction)(t(3 * a), t(target)), reduce(soft, reduction), tolerance)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("dtype,tolerance", DTYPES)
@pytest.mark.parametrize("shape", [(5,), (4, 3), (2, 3, 4)])
def test_multilabel_soft_margin_loss(shape, dtype, tolerance, reduction):
    rng = np.random.default_rng(len(shape))
    x, y, w = 3 * rng.standard_normal(shape), (rng.random(shape) < 0.5).astype(float), rng.random(shape[-1:])
    per_class = -(y * log_sigmoid(x) + (1 - y) * log_sigmoid(-x))
    t = lambda array: tl.tensor(array.astype(dtype))  # noqa: E731
    check(L.multilabel_soft_margin_loss(t(x), t(y), reduction=reduction), reduce(per_class.mean(-1), reduction),
          tolerance)
    loss = nn.MultiLabelSoftMarginLoss(t(w), reduction=reduction)
    assert list(loss.state_dict()) == ["weight"]
    check(loss(t(x), t(y)), reduce((per_class * w).mean(-1), reduction), tolerance)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("dtype,tolerance", DTYPES)
@pytest.mark.parametrize("shape", [(5,), (4, 6)])
def test_cosine_embedding_loss(shape, dtype, tolerance, reduction):
    rng = np.random.default_rng(shape[0])
    a, b = rng.standard_normal(shape), rng.standard_normal(shape)
    a[0] = 0  # a zero vector: cosine 0 thanks to the epsilon
    target = signs(rng, shape[:-1])
    if target.size > 1:
        target[1] = 0  # neither 1 nor -1: loss 0
    cosine = (a * b).sum(-1) / np.sqrt(((a * a).sum(-1) + 1e-12) * ((b * b).sum(-1) + 1e-12))
    expected = np.where(target == 1, 1 - cosine, 0) + np.where(target == -1, np.maximum(0, cosine - 0.2), 0)
    t = lambda array: tl.tensor(array.astype(dtype))  # noqa: E731
    check(L.cosine_embedding_loss(t(a), t(b), t(target), 0.2, reduction=reduction), reduce(expected, reduction),
          tolerance)
    check(nn.CosineEmbeddingLoss(0.2, reduction=reduction)(t(a), t(b), t(target)), reduce(expected, reduction),
          tolerance)


@pytest.mark.parametrize("dtype,tolerance", DTYPES)
@pytest.mark.parametrize("p", [2, 1, 3.5, 0.5, 0, math.inf, -math.inf, -1])
def test_pairwise_distance(p, dtype, tolerance):
    rng = np.random.default_rng(7)
    for s1, s2 in [((4, 3), (4, 3)), ((5,), (5,)), ((2, 4, 3), (4, 3)), ((), ()), ((), (3,)), ((0, 3), (0, 3))]:
        x1, x2 = rng.standard_normal(s1), rng.standard_normal(s2)
        for keepdim in (False, True):
            expected = reference_distance(x1, x2, p, 1e-6, keepdim)
            got = L.pairwise_distance(tl.tensor(x1.astype(dtype)), tl.tensor(x2.astype(dtype)), p, 1e-6, keepdim)
            check(got, expected, tolerance)
            assert got.dtype == dtype
    module = nn.PairwiseDistance(1.5, 1e-3, True)
    np.testing.assert_allclose(module(tl.tensor(x1), tl.tensor(x2)).numpy(),
                               reference_distance(x1, x2, 1.5, 1e-3, True), rtol=1e-12)
    ones, zeros = tl.tensor(np.ones((2, 3), dtype=np.int64)), tl.tensor(np.zeros((2, 3), dtype=np.int64))
    for eps, expected in [(1e-6, np.sqrt(3) * (1 + 1e-6)), (0, np.sqrt(3))]:  # integers: a float distance
        distance = L.pairwise_distance(ones, zeros, eps=eps)
        assert distance.dtype == tl.float32
        np.testing.assert_allclose(distance.numpy(), np.full(2, expected), rtol=1e-6)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("dtype,tolerance", DTYPES)
@pytest.mark.parametrize("shape", [(6,), (4, 6), (2, 3, 6)])
def test_triplet_margin_losses(shape, dtype, tolerance, reduction):
    rng = np.random.default_rng(shape[-1] + len(shape))
    anchor, positive, negative = (rng.standard_normal(shape) for _ in range(3))
    t = lambda array: tl.tensor(array.astype(dtype))  # noqa: E731
    for p, swap in [(2, False), (1, True), (3.0, True), (math.inf, False)]:
        negative_distance = reference_distance(anchor, negative, p)
        if swap:
            negative_distance = np.minimum(negative_distance, reference_distance(positive, negative, p))
        expected = reduce(np.maximum(0, 0.8 + reference_distance(anchor, positive, p) - negative_distance), reduction)
        check(L.triplet_margin_loss(t(anchor), t(positive), t(negative), 0.8, p, 1e-6, swap, reduction=reduction),
              expected, tolerance)
        check(nn.TripletMarginLoss(0.8, p, swap=swap, reduction=reduction)(t(anchor), t(positive), t(negative)),
              expected, tolerance)
    swapped = np.minimum(reference_distance(anchor, negative, 2), reference_distance(positive, negative, 2))
    expected = reduce(np.maximum(0, 1.5 + reference_distance(anchor, positive, 2) - swapped), reduction)
    check(L.triplet_margin_with_distance_loss(t(anchor), t(positive), t(negative), margin=1.5, swap=True,
                                              reduction=reduction), expected, tolerance)
    check(nn.TripletMarginWithDistanceLoss(margin=1.5, swap=True, reduction=reduction)(t(anchor), t(positive),
                                                                                      t(negative)), expected, tolerance)

    def l1(x1, x2):
        return (x1 - x2).abs().sum(-1)

    l1_expected = reduce(np.maximum(0, 1 + np.abs(anchor - positive).sum(-1) - np.abs(anchor - negative).sum(-1)),
                         reduction)
    l1_loss = nn.TripletMarginWithDistanceLoss(distance_function=l1, reduction=reduction)
    check(l1_loss(t(anchor), t(positive), t(negative)), l1_expected, tolerance)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("dtype,tolerance", DTYPES)
@pytest.mark.parametrize("p,weighted", [(1, False), (2, False), (1, True), (2, True)])
def test_multi_margin_loss(p, weighted, dtype, tolerance, reduction):
    rng = np.random.default_rng(p + 2 * weighted)
    weight = rng.random(5) + 0.2 if weighted else None
    cases = [(rng.standard_normal((6, 5)), rng.integers(0, 5, 6)), (rng.standard_normal(5), np.array(3)),
             (rng.standard_normal(5), np.array([2])), (rng.standard_normal((1, 5)), np.array(4))]
    for x, y in cases:
        expected = reduce(reference_multi_margin(x, y, p, 0.6, weight), reduction)
        w = None if weight is None else tl.tensor(weight.astype(dtype))
        check(L.multi_margin_loss(tl.tensor(x.astype(dtype)), tl.tensor(y), p, 0.6, w, reduction=reduction), expected,
              tolerance)
        check(nn.MultiMarginLoss(p, 0.6, w, reduction=reduction)(tl.tensor(x.astype(dtype)), tl.tensor(y)), expected,
              tolerance)
    single_class = L.multi_margin_loss(tl.tensor(0.3), tl.tensor(0), reduction="none")
    assert single_class.shape == () and single_class.item() == 0


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("dtype,tolerance", DTYPES)
def test_poisson_nll_loss(dtype, tolerance, reduction):
    rng = np.random.default_rng(11)
    for shape in [(5,), (3, 4), ()]:
        x, rate = rng.standard_normal(shape), rng.random(shape) + 0.1
        counts = np.floor(rng.random(shape) * 5)  # 0 and 1 among them: no Stirling term there
        t = lambda array: tl.tensor(np.asarray(array).astype(dtype))  # noqa: E731
        for full in (False, True):
            check(L.poisson_nll_loss(t(x), t(counts), full=full, reduction=reduction),
                  reduce(reference_poisson(x, counts, True, full), reduction), tolerance)
            check(nn.PoissonNLLLoss(False, full, eps=1e-3, reduction=reduction)(t(rate), t(counts)),
                  reduce(reference_poisson(rate, counts, False, full, 1e-3), reduction), tolerance)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("dtype,tolerance", DTYPES)
def test_gaussian_nll_loss(dtype, tolerance, reduction):
    rng = np.random.default_rng(12)
    x, target = rng.standard_normal((4, 5)), rng.standard_normal((4, 5))
    t = lambda array: tl.tensor(np.asarray(array).astype(dtype))  # noqa: E731
    variances = {(4, 5): rng.random((4, 5)) * 0.3, (4,): rng.random(4) + 0.1, (4, 1): rng.random((4, 1)) + 0.1,
                 (1, 5): rng.random((1, 5)) + 0.1}
    for shape, var in variances.items():
        broadcast = var[:, None] if shape == (4,) else var
        for full, eps in [(False, 1e-6), (True, 0.1)]:
            check(L.gaussian_nll_loss(t(x), t(target), t(var), full, eps, reduction),
                  reduce(reference_gaussian(x, target, broadcast, full, eps), reduction), tolerance)
            check(nn.GaussianNLLLoss(full=full, eps=eps, reduction=reduction)(t(x), t(target), t(var)),
                  reduce(reference_gaussian(x, target, broadcast, full, eps), reduction), tolerance)
    check(L.gaussian_nll_loss(t(x), t(target[0]), 0.4, reduction=reduction),
          reduce(reference_gaussian(x, target[0], 0.4, False, 1e-6), reduction), tolerance)


# ---- gradients ----------------------------------------------------------------------------------------------------
def test_gradients_of_the_new_losses():
    rng = np.random.default_rng(21)
    a, b, c = (tl.tensor(rng.standard_normal((3, 4)), requires_grad=True) for _ in range(3))
    target = tl.tensor(signs(rng, (3, 4)))
    row_target = tl.tensor(np.array([1.0, -1.0, 1.0]))
    labels = tl.tensor(np.array([0, 3, 1]))
    weight = tl.tensor(rng.random(4) + 0.5)
    assert tl.gradcheck(lambda x, y: L.margin_ranking_loss(x, y, target, 0.2), [a, b])
    assert tl.gradcheck(lambda x: L.hinge_embedding_loss(x, target, 0.5, reduction="sum"), [a])
    assert tl.gradcheck(lambda x: L.soft_margin_loss(x, target, reduction="none"), [a])
    assert tl.gradcheck(lambda x, y: L.multilabel_soft_margin_loss(x, y.sigmoid(), weight), [a, b])
    assert tl.gradcheck(lambda x, y: L.cosine_embedding_loss(x, y, row_target, -0.5, reduction="none"), [a, b])
    for p in (2, 1, 3.5, math.inf):
        assert tl.gradcheck(lambda x, y: L.pairwise_distance(x, y, p), [a, b])
    assert tl.gradcheck(lambda x, y, z: L.triplet_margin_loss(x, y, z, 2.0, swap=True, reduction="sum"), [a, b, c])
    assert tl.gradcheck(lambda x, y, z: L.triplet_margin_with_distance_loss(x, y, z, margin=2.0), [a, b, c])
    for p in (1, 2):
        assert tl.gradcheck(lambda x: L.multi_margin_loss(x, labels, p, 1.5, weight, reduction="none"), [a])
    # counts away from 1, where the Stirling term starts (it is not continuous there)
    counts = tl.tensor(np.array([[0.0, 0.4, 2.5, 3.2], [1.6, 0.9, 4.1, 2.2], [0.2, 5.3, 1.4, 0.7]]),
                       requires_grad=True)
    assert tl.gradcheck(lambda x, y: L.poisson_nll_loss(x, y, full=True), [a, counts])
    rate = tl.tensor(rng.random((3, 4)) + 0.2, requires_grad=True)
    assert tl.gradcheck(lambda x, y: L.poisson_nll_loss(x, y, log_input=False, reduction="sum"), [rate, counts])
    var = tl.tensor(rng.random((3, 4)) + 0.2, requires_grad=True)
    assert tl.gradcheck(lambda x, y, v: L.gaussian_nll_loss(x, y, v, full=True), [a, b, var])
    assert tl.gradcheck(lambda x, y, w: L.mse_loss(x, y, weight=w) + L.l1_loss(x, y, weight=w, reduction="sum")
                        + L.huber_loss(x, y, delta=0.5, weight=w), [a, b, var])


def test_gaussian_nll_loss_clamps_the_variance_for_the_value_only():
    """Below eps the variance counts as eps, but its gradient is still passed on (PyTorch's clamp under no_grad)."""
    x, target = np.array([0.3, -0.2]), np.array([0.1, 0.4])
    var = tl.tensor(np.array([1e-9, 0.5]), requires_grad=True)
    L.gaussian_nll_loss(tl.tensor(x), tl.tensor(target), var, eps=1e-3, reduction="sum").backward()
    clamped = np.array([1e-3, 0.5])
    np.testing.assert_allclose(var.grad.numpy(), 0.5 * (1 / clamped - (x - target) ** 2 / clamped**2), rtol=1e-12)


def test_poisson_full_gradient_is_finite_at_zero_counts():
    counts = tl.tensor(np.array([0.0, 1.0, 3.0]), requires_grad=True)
    x = np.array([0.2, -0.4, 0.9])
    L.poisson_nll_loss(tl.tensor(x), counts, full=True, reduction="sum").backward()
    stirling = np.log(3.0) + 1 - 1 + 0.5 / 3.0
    np.testing.assert_allclose(counts.grad.numpy(), -x + np.array([0, 0, stirling]), rtol=1e-12)


# ---- errors ---------------------------------------------------------------------------------------------------------
def test_bad_arguments_are_refused_by_name():
    rng = np.random.default_rng(3)
    x, y = tl.tensor(rng.standard_normal((4, 5))), tl.tensor(rng.standard_normal((4, 5)))
    with pytest.raises(ValueError, match=r"same number of dims, got shapes \(3,\), \(3,\) and \(\)"):
        L.margin_ranking_loss(x[0, :3], y[0, :3], tl.tensor(1.0))
    with pytest.raises(ValueError, match="a 0-D target needs 1-D inputs, got shapes"):
        L.cosine_embedding_loss(x, y, tl.tensor(1.0))
    with pytest.raises(ValueError, match=r"target must be 0-d or 1-D .* got shape \(4, 1\)"):
        L.cosine_embedding_loss(x, y, tl.ones(4, 1))
    with pytest.raises(ValueError, match="margin must be greater than 0, got 0"):
        L.triplet_margin_loss(x, y, x, margin=0)
    with pytest.raises(ValueError, match="TripletMarginWithDistanceLoss: margin must be greater than 0, got -1"):
        nn.TripletMarginWithDistanceLoss(margin=-1)
    with pytest.raises(ValueError, match=r"same number of dims, got shapes \(4, 5\), \(5,\)"):
        L.triplet_margin_with_distance_loss(x, y[0], x)
    with pytest.raises(ValueError, match="p must be 1 or 2, got 3"):
        nn.MultiMarginLoss(p=3)
    with pytest.raises(IndexError, match="target value 5 is out of range for 5 classes"):
        L.multi_margin_loss(x, tl.tensor([0, 1, 5, 2]))
    with pytest.raises(ValueError, match=r"one class index per sample \(4\), got shape \(3,\)"):
        L.multi_margin_loss(x, tl.tensor([0, 1, 2]))
    with pytest.raises(TypeError, match="class indices"):
        L.multi_margin_loss(x, tl.zeros(4))
    with pytest.raises(ValueError, match=r"shape \(N, C\) or \(C,\) with C > 0 .* got shape \(4, 0\)"):
        L.multi_margin_loss(tl.zeros(4, 0), tl.tensor([0, 0, 0, 0]))
    with pytest.raises(ValueError, match=r"var of shape \(5,\) does not fit the input shape \(4, 5\)"):
        L.gaussian_nll_loss(x, y, tl.ones(5))
    with pytest.raises(ValueError, match="var must be non-negative, got -0.5"):
        L.gaussian_nll_loss(x, y, -0.5)
    with pytest.raises(ValueError, match="var must be non-negative"):
        L.gaussian_nll_loss(x, y, -tl.ones(4, 5))
    with pytest.raises(ValueError, match="reduction must be one of"):
        L.poisson_nll_loss(x, y, reduction="avg")
    with pytest.raises(ValueError, match="reduction must be one of"):
        nn.GaussianNLLLoss(reduction="avg")
    with pytest.raises(ValueError, match=r"mse_loss: weight of shape \(5,\) must have the input's shape \(4, 5\)"):
        L.mse_loss(x, y, weight=tl.ones(5))


@pytest.mark.parametrize("function,module", [(L.cross_entropy, nn.CrossEntropyLoss), (L.nll_loss, nn.NLLLoss),
                                             (L.multilabel_soft_margin_loss, nn.MultiLabelSoftMarginLoss)])
def test_class_losses_refuse_a_0d_input_by_its_shape(function, module):
    name = function.__name__
    for target in (tl.tensor(0), tl.tensor(0.5)):
        with pytest.raises(ValueError, match=rf"{name} expects an input of shape .* got a 0-d input \(shape \(\)\)"):
            function(tl.tensor(1.0), target)
    with pytest.raises(ValueError, match="got a 0-d input"):
        module()(tl.tensor(1.0), tl.tensor(0))


# ---- legacy size_average / reduce, PyTorch's argument positions -----------------------------------------------------
def legacy_reduction(size_average, reduce):
    """PyTorch's documented mapping, None counting as True."""
    size_average = True if size_average is None else size_average
    reduce = True if reduce is None else reduce
    return ("mean" if size_average else "sum") if reduce else "none"


def same(got, expected):
    np.testing.assert_allclose(got.detach().numpy(), expected.detach().numpy(), rtol=1e-15, atol=0)
    assert got.shape == expected.shape


@pytest.mark.filterwarnings("ignore:kl_div")
@pytest.mark.parametrize("size_average,reduce", [c for c in itertools.product([None, True, False], repeat=2)
                                                 if c != (None, None)])
def test_legacy_size_average_and_reduce(size_average, reduce):
    rng = np.random.default_rng(4)
    x, y = tl.tensor(rng.standard_normal((5, 4))), tl.tensor(rng.standard_normal((5, 4)))
    probabilities, labels = tl.tensor(rng.random((5, 4))), tl.tensor(rng.integers(0, 4, 5))
    reduction = legacy_reduction(size_average, reduce)
    legacy, plain = dict(size_average=size_average, reduce=reduce), dict(reduction=reduction)
    calls = {
        "cross_entropy": lambda **kw: L.cross_entropy(x, labels, **kw),
        "nll_loss": lambda **kw: L.nll_loss(x, labels, **kw),
        "mse_loss": lambda **kw: L.mse_loss(x, y, **kw),
        "l1_loss": lambda **kw: L.l1_loss(x, y, **kw),
        "smooth_l1_loss": lambda **kw: L.smooth_l1_loss(x, y, **kw),
        "binary_cross_entropy": lambda **kw: L.binary_cross_entropy(probabilities, probabilities.flip(0), **kw),
        "binary_cross_entropy_with_logits": lambda **kw: L.binary_cross_entropy_with_logits(x, probabilities, **kw),
        "kl_div": lambda **kw: L.kl_div(x, probabilities, **kw),
        "margin_ranking_loss": lambda **kw: L.margin_ranking_loss(x, y, y.sign(), **kw),
        "hinge_embedding_loss": lambda **kw: L.hinge_embedding_loss(x, y.sign(), **kw),
        "cosine_embedding_loss": lambda **kw: L.cosine_embedding_loss(x, y, y[:, 0].sign(), **kw),
        "triplet_margin_loss": lambda **kw: L.triplet_margin_loss(x, y, x.flip(0), **kw),
        "soft_margin_loss": lambda **kw: L.soft_margin_loss(x, y.sign(), **kw),
        "multilabel_soft_margin_loss": lambda **kw: L.multilabel_soft_margin_loss(x, probabilities, **kw),
        "multi_margin_loss": lambda **kw: L.multi_margin_loss(x, labels, **kw),
        "poisson_nll_loss": lambda **kw: L.poisson_nll_loss(x, probabilities, **kw),
    }
    for name, call in calls.items():
        with pytest.warns(UserWarning, match=f"size_average and reduce are deprecated; use reduction='{reduction}'"):
            got = call(**legacy)
        same(got, call(**plain))
    modules = [(nn.CrossEntropyLoss, (x, labels)), (nn.NLLLoss, (x, labels)), (nn.MSELoss, (x, y)), (nn.L1Loss, (x, y)),
               (nn.SmoothL1Loss, (x, y)), (nn.BCEWithLogitsLoss, (x, probabilities)),
               (nn.SoftMarginLoss, (x, y.sign())), (nn.MultiLabelSoftMarginLoss, (x, probabilities)),
               (nn.MultiMarginLoss, (x, labels)),
               (nn.PoissonNLLLoss, (x, probabilities)), (nn.MarginRankingLoss, (x, y, y.sign())),
               (nn.HingeEmbeddingLoss, (x, y.sign())), (nn.TripletMarginLoss, (x, y, x.flip(0)))]
    for cls, inputs in modules:
        with pytest.warns(UserWarning, match="size_average and reduce are deprecated"):
            module = cls(**legacy)
        assert module.reduction == reduction
        same(module(*inputs), cls(**plain)(*inputs))


def test_arguments_land_in_pytorchs_positions():
    rng = np.random.default_rng(5)
    x, labels = tl.tensor(rng.standard_normal((6, 4))), tl.tensor(np.array([0, 1, 2, 3, 1, 2]))
    y, weight = tl.tensor(rng.standard_normal((6, 4))), tl.tensor(rng.random(4) + 0.5)
    same(L.cross_entropy(x, labels, weight, None, 1, None, "sum", 0.1),
         L.cross_entropy(x, labels, weight=weight, ignore_index=1, reduction="sum", label_smoothing=0.1))
    same(L.nll_loss(x, labels, weight, None, 2, None, "none"),
         L.nll_loss(x, labels, weight=weight, ignore_index=2, reduction="none"))
    same(L.smooth_l1_loss(x, y, None, None, "sum", 0.3), L.smooth_l1_loss(x, y, reduction="sum", beta=0.3))
    same(L.multi_margin_loss(x, labels, 2, 0.5, weight, None, None, "none"),
         L.multi_margin_loss(x, labels, p=2, margin=0.5, weight=weight, reduction="none"))
    same(L.poisson_nll_loss(x.abs(), y.abs(), False, True, None, 1e-3, None, "sum"),
         L.poisson_nll_loss(x.abs(), y.abs(), log_input=False, full=True, eps=1e-3, reduction="sum"))
    same(nn.CrossEntropyLoss(weight, None, 1, None, "sum", 0.2)(x, labels),
         nn.CrossEntropyLoss(weight=weight, ignore_index=1, reduction="sum", label_smoothing=0.2)(x, labels))
    same(nn.PoissonNLLLoss(False, True, None, 1e-3, None, "none")(x.abs(), y.abs()),
         L.poisson_nll_loss(x.abs(), y.abs(), log_input=False, full=True, eps=1e-3, reduction="none"))
    same(nn.TripletMarginLoss(0.5, 1.0, 1e-3, True, None, None, "sum")(x, y, x.flip(0)),
         L.triplet_margin_loss(x, y, x.flip(0), margin=0.5, p=1.0, eps=1e-3, swap=True, reduction="sum"))
    with pytest.raises(TypeError, match="size_average .* must be True, False or None, got 'sum'; pass the reduction"):
        nn.MSELoss("sum")
    with pytest.raises(TypeError, match="reduce .* must be True, False or None, got 'none'"):
        L.l1_loss(x, y, None, "none")


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_weight_of_the_regression_losses(reduction):
    """mse_loss and l1_loss: 'mean' is sum(w * loss) / sum(w); huber_loss: the mean of w * loss (PyTorch's rules)."""
    rng = np.random.default_rng(6)
    a, b, w = rng.standard_normal((4, 3)), rng.standard_normal((4, 3)), rng.random((4, 3))
    difference = a - b
    huber = np.where(np.abs(difference) < 0.5, 0.5 * difference**2, 0.5 * (np.abs(difference) - 0.25))
    for function, losses, kwargs in [(L.mse_loss, difference**2, {}), (L.l1_loss, np.abs(difference), {}),
                                     (L.huber_loss, huber, dict(delta=0.5))]:
        weighted = losses * w
        expected = {"mean": weighted.sum() / w.sum() if function is not L.huber_loss else weighted.mean(),
                    "sum": weighted.sum(), "none": weighted}[reduction]
        got = function(tl.tensor(a), tl.tensor(b), reduction=reduction, weight=tl.tensor(w), **kwargs)
        check(got, expected, 1e-12)


@pytest.mark.parametrize("name,make", [
    ("MarginRankingLoss", lambda: nn.MarginRankingLoss()), ("MultiMarginLoss", lambda: nn.MultiMarginLoss()),
    ("TripletMarginWithDistanceLoss", lambda: nn.TripletMarginWithDistanceLoss())])
def test_loss_module_reprs(name, make):
    expected = {"TripletMarginWithDistanceLoss": "TripletMarginWithDistanceLoss(\n  (distance_function): "
                                                 "PairwiseDistance()\n)"}.get(name, f"{name}()")
    assert repr(make()) == expected


def test_new_losses_on_cuda_match_the_cpu(tier):
    rng = np.random.default_rng(14)
    arrays = [rng.standard_normal((3, 4)) for _ in range(3)]

    def run(device):
        a, b, c = (tl.tensor(array, device=device, requires_grad=True) for array in arrays)
        labels = tl.tensor(np.array([0, 3, 1]), device=device)
        weight = tl.tensor(np.array([0.5, 1.0, 1.5, 2.0]), device=device)
        out = (L.margin_ranking_loss(a, b, c.sign()) + L.hinge_embedding_loss(a, c.sign())
               + L.cosine_embedding_loss(a, b, c[:, 0].sign()) + L.triplet_margin_loss(a, b, c, swap=True)
               + L.soft_margin_loss(a, c.sign()) + L.multilabel_soft_margin_loss(a, c.sigmoid(), weight)
               + L.multi_margin_loss(a, labels, 2, weight=weight) + L.poisson_nll_loss(a, b.abs(), full=True)
               + L.gaussian_nll_loss(a, b, c.abs() + 0.1) + L.pairwise_distance(a, b, math.inf).sum()
               + L.mse_loss(a, b, weight=c.abs()))
        out.backward()
        assert out.device == device
        return [out.detach().cpu().numpy()] + [t.grad.cpu().numpy() for t in (a, b, c)]

    for got, expected in zip(run("cuda"), run("cpu")):
        np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-12)


def test_an_integer_in_the_size_average_slot_is_refused_not_dropped():
    x, t = tl.randn(4, 3), tl.tensor([0, 1, 2, 1])
    for call in (lambda: L.cross_entropy(x, t, None, 1), lambda: nn.CrossEntropyLoss(None, 1),
                 lambda: L.nll_loss(x.log_softmax(1), t, None, 2), lambda: nn.NLLLoss(None, 0)):
        with pytest.raises(TypeError, match="ignore_index, which follows size_average"):
            call()
