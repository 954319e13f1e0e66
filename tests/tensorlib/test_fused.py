"""The fused softmax cross-entropy and training batch norm: gradcheck in float64, and the same values and
gradients (to 1e-12) as the composite formulations from tensorlib ops they replace (written out here:
nn.functional itself now calls the fused ops)."""

import numpy as np
import pytest

import tensorlib as tl
from kernels import registry
from tensorlib.ops.fused import batch_norm_train, softmax_cross_entropy

TOL = dict(rtol=1e-12, atol=1e-12)


def leaf(array):
    return tl.tensor(array, requires_grad=True)


def value_and_grads(fn, *leaves):
    leaves = [t for t in leaves if t is not None]
    for t in leaves:
        t.grad = None
    out = fn()
    weights = np.random.default_rng(99).standard_normal(out.shape)
    (out * tl.tensor(weights)).sum().backward()
    return [out.detach().numpy()] + [t.grad.numpy().copy() for t in leaves]


def assert_same(fused, composite):
    assert len(fused) == len(composite)
    for a, b in zip(fused, composite):
        np.testing.assert_allclose(a, b, **TOL)


XENT_CASES = [(1, 3, -100), (7, 5, -100), (6, 4, 2), (9, 1, -100)]


def composite_cross_entropy(logits, target, ignore_index, reduction):
    """log_softmax, pick each row's target, mask ignored rows, reduce: several graph nodes."""
    labels = target.numpy()
    valid = labels != ignore_index
    picked = tl.log_softmax(logits, 1)[tl.tensor(np.arange(len(labels))), tl.tensor(np.where(valid, labels, 0))]
    losses = -picked * tl.tensor(valid.astype(np.float64))
    if reduction == "none":
        return losses
    return losses.sum() if reduction == "sum" else losses.sum() / float(valid.sum())


def composite_batch_norm(x, weight, bias, eps):
    dims = (0,) + tuple(range(2, x.ndim))
    shape = (1, x.shape[1]) + (1,) * (x.ndim - 2)
    out = (x - x.mean(dims, keepdim=True)) / (x.var(dims, unbiased=False, keepdim=True) + eps).sqrt()
    if weight is not None:
        out = out * weight.reshape(shape) + bias.reshape(shape)
    return out


def xent_case(N, C, ignore_index, seed=0):
    rng = np.random.default_rng(seed)
    logits = 2 * rng.standard_normal((N, C))
    target = rng.integers(0, C, N)
    if N > 1:
        target[1] = ignore_index
    return leaf(logits), tl.tensor(target)


@pytest.mark.parametrize("N,C,ignore_index", XENT_CASES)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_softmax_cross_entropy_gradcheck(N, C, ignore_index, reduction):
    logits, target = xent_case(N, C, ignore_index)
    assert tl.gradcheck(lambda x: softmax_cross_entropy(x, target, ignore_index, reduction), [logits])


@pytest.mark.parametrize("N,C,ignore_index", XENT_CASES)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_softmax_cross_entropy_equals_composite(N, C, ignore_index, reduction):
    logits, target = xent_case(N, C, ignore_index, seed=1)
    fused = value_and_grads(lambda: softmax_cross_entropy(logits, target, ignore_index, reduction), logits)
    composite = value_and_grads(lambda: composite_cross_entropy(logits, target, ignore_index, reduction), logits)
    assert_same(fused, composite)


def test_softmax_cross_entropy_large_logits_float32():
    logits = leaf((1e4 * np.random.default_rng(2).standard_normal((4, 6))).astype(np.float32))
    loss = softmax_cross_entropy(logits, tl.tensor(np.array([0, 1, 2, 3])))
    loss.backward()
    assert loss.dtype == np.float32 and np.isfinite(loss.item())
    assert logits.grad.dtype == np.float32 and np.all(np.isfinite(logits.grad.numpy()))


def test_softmax_cross_entropy_all_ignored_is_nan_with_zero_gradient():
    logits = leaf(np.random.default_rng(3).standard_normal((2, 3)))
    loss = softmax_cross_entropy(logits, tl.tensor(np.array([-100, -100])))
    loss.backward()
    assert np.isnan(loss.item())
    np.testing.assert_array_equal(logits.grad.numpy(), 0)


def test_softmax_cross_entropy_checks():
    logits, target = xent_case(3, 4, -100)
    with pytest.raises(ValueError, match="reduction"):
        softmax_cross_entropy(logits, target, reduction="avg")
    with pytest.raises(IndexError, match="out of range"):
        softmax_cross_entropy(logits, tl.tensor(np.array([0, 4, 1])))


BN_SHAPES = [(5, 3), (4, 2, 3, 3), (2, 3, 5), (2, 1, 1, 1)]


def bn_case(shape, affine, seed=0):
    rng = np.random.default_rng(seed)
    x = leaf(3 + 2 * rng.standard_normal(shape))
    weight = leaf(rng.standard_normal(shape[1])) if affine else None
    bias = leaf(rng.standard_normal(shape[1])) if affine else None
    return x, weight, bias


@pytest.mark.parametrize("shape", BN_SHAPES, ids=str)
@pytest.mark.parametrize("affine", [True, False])
def test_batch_norm_train_gradcheck(shape, affine):
    x, weight, bias = bn_case(shape, affine)
    if affine:
        assert tl.gradcheck(lambda a, w, b: batch_norm_train(a, w, b, 1e-5)[0], [x, weight, bias])
    else:
        assert tl.gradcheck(lambda a: batch_norm_train(a, None, None, 0.1)[0], [x])


@pytest.mark.parametrize("shape", BN_SHAPES, ids=str)
@pytest.mark.parametrize("affine", [True, False])
def test_batch_norm_train_equals_composite(shape, affine):
    x, weight, bias = bn_case(shape, affine, seed=1)
    eps = 1e-5
    fused = value_and_grads(lambda: batch_norm_train(x, weight, bias, eps)[0], x, weight, bias)
    composite = value_and_grads(lambda: composite_batch_norm(x, weight, bias, eps), x, weight, bias)
    assert_same(fused, composite)
    _, mean, var_unbiased = batch_norm_train(x, weight, bias, eps)
    axes = (0,) + tuple(range(2, len(shape)))
    np.testing.assert_allclose(mean, x.detach().numpy().mean(axes), **TOL)
    np.testing.assert_allclose(var_unbiased, x.detach().numpy().var(axes, ddof=1), **TOL)


def test_batch_norm_train_float32_and_checks():
    x, weight, bias = (t.to(np.float32) for t in bn_case((4, 3, 2, 2), True))
    y, mean, var = batch_norm_train(x, weight, bias)
    assert y.dtype == mean.dtype == var.dtype == np.float32
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        batch_norm_train(tl.tensor(np.ones((1, 3))))
    with pytest.raises(ValueError, match="at least 2 dims"):
        batch_norm_train(tl.tensor(np.ones(3)))


@pytest.mark.cudasim
def test_fused_ops_on_the_simulated_device():
    rng = np.random.default_rng(4)
    logits = rng.standard_normal((2, 3)).astype(np.float32)
    target = tl.tensor(np.array([2, -100]))
    on_cpu, on_device = leaf(logits), tl.tensor(logits, device="cuda", requires_grad=True)
    softmax_cross_entropy(on_cpu, target).backward()
    loss = softmax_cross_entropy(on_device, target.to("cuda"))
    loss.backward()
    assert loss.device == "cuda" and on_device.grad.device == "cuda"
    np.testing.assert_allclose(on_device.grad.numpy(), on_cpu.grad.numpy(), rtol=1e-5, atol=1e-7)
    x = rng.standard_normal((2, 1, 2)).astype(np.float32)
    on_cpu, on_device = leaf(x), tl.tensor(x, device="cuda", requires_grad=True)
    probe = rng.standard_normal(x.shape)  # sum(y) alone has a zero gradient
    (batch_norm_train(on_cpu)[0] * tl.tensor(probe)).sum().backward()
    y, mean, var = batch_norm_train(on_device)
    (y * tl.tensor(probe, device="cuda")).sum().backward()
    assert y.device == "cuda" and registry.array_device(mean) == registry.array_device(var) == "cuda"
    np.testing.assert_allclose(on_device.grad.numpy(), on_cpu.grad.numpy(), rtol=1e-4, atol=1e-5)
