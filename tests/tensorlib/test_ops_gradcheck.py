"""Every differentiable Tensor op: forward against NumPy float64, backward by finite differences."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes, mutually_broadcastable_shapes

import tensorlib as tl

SETTINGS = settings(max_examples=12, deadline=None)


def leaf(array):
    return tl.tensor(np.asarray(array, dtype=np.float64), requires_grad=True)


def away_from_zero(rng, shape, low=0.2, high=1.5):
    """Values bounded away from 0, so kinks (abs, relu, clamp bounds) are never within eps."""
    return rng.uniform(low, high, size=shape) * rng.choice([-1.0, 1.0], size=shape)


def check(fn, reference, arrays):
    inputs = [leaf(a) for a in arrays]
    out = fn(*inputs)
    np.testing.assert_allclose(out.detach().numpy(), reference(*arrays), rtol=1e-12, atol=1e-12)
    assert tl.gradcheck(fn, inputs)


UNARY = {
    "neg": (lambda x: -x, lambda x: -x, "any"),
    "exp": (lambda x: x.exp(), np.exp, "any"),
    "log": (lambda x: x.log(), np.log, "positive"),
    "expm1": (lambda x: x.expm1(), np.expm1, "any"),
    "log1p": (lambda x: tl.log1p(x), np.log1p, "positive"),
    "sqrt": (lambda x: x.sqrt(), np.sqrt, "positive"),
    "abs": (lambda x: x.abs(), np.abs, "nonzero"),
    "tanh": (lambda x: x.tanh(), np.tanh, "any"),
    "sigmoid": (lambda x: x.sigmoid(), lambda x: 1 / (1 + np.exp(-x)), "any"),
    "relu": (lambda x: x.relu(), lambda x: np.maximum(x, 0), "nonzero"),
    "clamp": (lambda x: x.clamp(-0.6, 0.7), lambda x: np.clip(x, -0.6, 0.7), "clamp"),
    "clamp_min": (lambda x: tl.clamp(x, min=0.5), lambda x: np.maximum(x, 0.5), "clamp"),
    "square": (lambda x: x**2, lambda x: x**2, "any"),
    "pow_frac": (lambda x: x**1.5, lambda x: x**1.5, "positive"),
    "rpow": (lambda x: 2.0**x, lambda x: 2.0**x, "any"),
    "rsub": (lambda x: 3.0 - x, lambda x: 3.0 - x, "any"),
    "rdiv": (lambda x: 2.0 / x, lambda x: 2.0 / x, "nonzero"),
    "scalar_mul": (lambda x: x * 3.0 + 1.0, lambda x: x * 3.0 + 1.0, "any"),
}


def draw_values(rng, shape, domain):
    if domain == "positive":
        return rng.uniform(0.2, 2.0, size=shape)
    if domain == "nonzero":
        return away_from_zero(rng, shape)
    if domain == "clamp":
        # keep clear of the bounds -0.6, 0.5, 0.7
        values = rng.choice([-1.2, -0.3, 0.1, 0.6, 1.0], size=shape)
        return values + rng.uniform(-0.05, 0.05, size=shape)
    return rng.standard_normal(shape)


@pytest.mark.parametrize("name", sorted(UNARY))
@SETTINGS
@given(shape=array_shapes(min_dims=0, max_dims=3, max_side=4), seed=st.integers(0, 2**16))
def test_unary(name, shape, seed):
    fn, reference, domain = UNARY[name]
    check(fn, reference, [draw_values(np.random.default_rng(seed), shape, domain)])


BINARY = {
    "add": (lambda a, b: a + b, np.add, "any"),
    "sub": (lambda a, b: a - b, np.subtract, "any"),
    "mul": (lambda a, b: a * b, np.multiply, "any"),
    "div": (lambda a, b: a / b, np.divide, "nonzero"),
    "pow": (lambda a, b: a**b, np.power, "positive"),
    "maximum": (tl.maximum, np.maximum, "any"),
    "minimum": (tl.minimum, np.minimum, "any"),
    "where": (lambda a, b: tl.where(a > b, a, b * 2), lambda a, b: np.where(a > b, a, b * 2), "any"),
}


@pytest.mark.parametrize("name", sorted(BINARY))
@SETTINGS
@given(shapes=mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, max_side=4),
       seed=st.integers(0, 2**16))
def test_binary_broadcasting(name, shapes, seed):
    fn, reference, domain = BINARY[name]
    rng = np.random.default_rng(seed)
    check(fn, reference, [draw_values(rng, s, domain) for s in shapes.input_shapes])


def test_maximum_ties_split_the_gradient():
    a, b = leaf([1.0, 2.0]), leaf([1.0, 3.0])
    tl.maximum(a, b).sum().backward()
    np.testing.assert_array_equal(a.grad.numpy(), [0.5, 0.0])
    np.testing.assert_array_equal(b.grad.numpy(), [0.5, 1.0])


def reduce_cases():
    return st.tuples(array_shapes(min_dims=1, max_dims=3, min_side=2, max_side=4), st.integers(0, 2**16),
                     st.booleans())


def pick_dim(shape, seed):
    return int(np.random.default_rng(seed).integers(-len(shape), len(shape)))


@SETTINGS
@given(case=reduce_cases())
def test_sum_and_mean(case):
    shape, seed, keepdim = case
    x = np.random.default_rng(seed).standard_normal(shape)
    dim = pick_dim(shape, seed)
    check(lambda t: t.sum(dim, keepdim), lambda a: a.sum(dim, keepdims=keepdim), [x])
    check(lambda t: t.mean(dim, keepdim), lambda a: a.mean(dim, keepdims=keepdim), [x])
    check(lambda t: t.sum(), np.sum, [x])
    if len(shape) > 1:
        check(lambda t: t.mean((0, -1), keepdim), lambda a: a.mean((0, a.ndim - 1), keepdims=keepdim), [x])


@SETTINGS
@given(case=reduce_cases(), correction=st.sampled_from([0, 1]))
def test_var_and_std(case, correction):
    shape, seed, keepdim = case
    x = np.random.default_rng(seed).standard_normal(shape)
    dim = pick_dim(shape, seed)
    check(lambda t: t.var(dim, keepdim=keepdim, correction=correction),
          lambda a: a.var(dim, ddof=correction, keepdims=keepdim), [x])
    check(lambda t: t.std(dim, keepdim=keepdim, correction=correction),
          lambda a: a.std(dim, ddof=correction, keepdims=keepdim), [x])
    check(lambda t: t.var(), lambda a: a.var(ddof=1), [x])
    check(lambda t: t.var(unbiased=False), lambda a: a.var(), [x])


@SETTINGS
@given(case=reduce_cases())
def test_max_min_along_dim(case):
    shape, seed, keepdim = case
    x = np.random.default_rng(seed).permutation(int(np.prod(shape))).reshape(shape) * 0.1  # no ties
    dim = pick_dim(shape, seed)
    check(lambda t: t.max(dim, keepdim).values, lambda a: a.max(dim, keepdims=keepdim), [x])
    check(lambda t: t.min(dim, keepdim).values, lambda a: a.min(dim, keepdims=keepdim), [x])
    check(lambda t: t.max(), np.max, [x])
    check(lambda t: t.min(), np.min, [x])
    t = tl.tensor(x)
    np.testing.assert_array_equal(t.max(dim, keepdim).indices.numpy(), x.argmax(dim, keepdims=keepdim))
    np.testing.assert_array_equal(t.argmin(dim).numpy(), x.argmin(dim))
    assert t.argmax().item() == x.argmax()


def test_full_max_shares_gradient_among_ties():
    x = leaf([1.0, 3.0, 3.0, 2.0])
    x.max().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [0, 0.5, 0.5, 0])
    y = leaf([[1.0, 3.0, 3.0]])
    y.max(1).values.sum().backward()
    np.testing.assert_array_equal(y.grad.numpy(), [[0, 1, 0]])  # the returned (first) index only


@SETTINGS
@given(case=reduce_cases())
def test_softmax_and_log_softmax(case):
    shape, seed, _ = case
    x = np.random.default_rng(seed).standard_normal(shape) * 3
    dim = pick_dim(shape, seed)

    def ref_softmax(a):
        e = np.exp(a - a.max(dim, keepdims=True))
        return e / e.sum(dim, keepdims=True)

    check(lambda t: t.softmax(dim), ref_softmax, [x])
    check(lambda t: t.log_softmax(dim), lambda a: np.log(ref_softmax(a)), [x])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softmax_is_stable_for_huge_logits(dtype):
    logits = tl.tensor(np.array([[1e4, -1e4, 0.0], [5e3, 5e3, -1e4]], dtype=dtype), requires_grad=True)
    probabilities = tl.softmax(logits, dim=1)
    log_probabilities = tl.log_softmax(logits, dim=1)
    np.testing.assert_allclose(probabilities.detach().numpy(), [[1, 0, 0], [0.5, 0.5, 0]], atol=1e-7)
    np.testing.assert_allclose(log_probabilities.detach().numpy()[0], [0, -2e4, -1e4], rtol=1e-6)
    (log_probabilities[:, 0].sum() + probabilities[:, 1].sum()).backward()
    assert np.isfinite(logits.grad.numpy()).all()


@SETTINGS
@given(shape=array_shapes(min_dims=1, max_dims=4, max_side=4), seed=st.integers(0, 2**16))
def test_shape_ops(shape, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape)
    order = tuple(rng.permutation(len(shape)))
    check(lambda t: t.reshape(-1), lambda a: a.reshape(-1), [x])
    check(lambda t: t.view(*shape[::-1]), lambda a: a.reshape(shape[::-1]), [x])
    check(lambda t: t.permute(order), lambda a: a.transpose(order), [x])
    check(lambda t: t.transpose(0, -1), lambda a: np.swapaxes(a, 0, -1), [x])
    check(lambda t: t.flatten(), lambda a: a.reshape(-1), [x])
    check(lambda t: t.flatten(1) if t.ndim > 1 else t.flatten(),
          lambda a: a.reshape(a.shape[0], -1) if a.ndim > 1 else a.reshape(-1), [x])
    check(lambda t: t.unsqueeze(1).squeeze(1), lambda a: a, [x])
    check(lambda t: t.unsqueeze(-1), lambda a: a[..., None], [x])
    check(lambda t: t.squeeze(), np.squeeze, [x])
    check(lambda t: t.unsqueeze(0).expand(3, *shape), lambda a: np.broadcast_to(a, (3,) + a.shape), [x])


def test_expand_size_one_dims():
    x = np.random.default_rng(0).standard_normal((3, 1, 2))
    check(lambda t: t.expand(2, 3, 4, -1), lambda a: np.broadcast_to(a, (2, 3, 4, 2)), [x])
    with pytest.raises(ValueError, match="does not match"):
        tl.tensor(x).expand(3, 2, 5)


INDEXES = [
    (1,),
    (slice(None, None, 2),),
    (slice(1, None, 2), None, 0),  # (negative steps are refused, as PyTorch does)
    (Ellipsis, 1),
    (np.array([0, 2, 0, 0]),),  # repeated indices must add up in backward
    (slice(None), np.array([[1, 0], [1, 1]])),
    (np.array([1, 0]), np.array([2, 2])),
]


@pytest.mark.parametrize("index", INDEXES, ids=repr)
def test_getitem(index):
    x = np.random.default_rng(1).standard_normal((3, 4, 2))
    check(lambda t: t[index], lambda a: a[index], [x])


def test_getitem_boolean_mask_and_tensor_index():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((4, 3))
    mask = x > 0
    check(lambda t: t[tl.tensor(mask)], lambda a: a[mask], [x])
    check(lambda t: t[tl.tensor([3, 3, 1])], lambda a: a[[3, 3, 1]], [x])
    check(lambda t: t[[0, 0], 1:], lambda a: a[[0, 0], 1:], [x])


def test_getitem_repeated_index_accumulates():
    x = leaf([1.0, 2.0, 3.0])
    x[tl.tensor([0, 0, 2, 0])].sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [3.0, 0.0, 1.0])


@SETTINGS
@given(shape=array_shapes(min_dims=1, max_dims=3, max_side=4), seed=st.integers(0, 2**16))
def test_cat_and_stack(shape, seed):
    rng = np.random.default_rng(seed)
    dim = int(rng.integers(0, len(shape)))
    other = list(shape)
    other[dim] = int(rng.integers(1, 4))
    a, b = rng.standard_normal(shape), rng.standard_normal(other)
    check(lambda s, t: tl.cat([s, t], dim), lambda s, t: np.concatenate([s, t], dim), [a, b])
    c = rng.standard_normal(shape)
    check(lambda s, t: tl.stack([s, t, s], -1), lambda s, t: np.stack([s, t, s], -1), [a, c])


@pytest.mark.parametrize("mode", ["constant", "reflect", "replicate", "circular"])
@pytest.mark.parametrize("widths", [(1, 2), (0, 1, 2, 0), (2, 1, 1, 1, 0, 1)])
def test_pad(mode, widths):
    x = np.random.default_rng(3).standard_normal((2, 3, 4))
    numpy_mode = {"constant": "constant", "reflect": "reflect", "replicate": "edge", "circular": "wrap"}[mode]
    pairs = [(0, 0)] * 3
    for i in range(len(widths) // 2):
        pairs[2 - i] = (widths[2 * i], widths[2 * i + 1])
    check(lambda t: tl.pad(t, widths, mode=mode), lambda a: np.pad(a, pairs, mode=numpy_mode), [x])


def test_pad_constant_value_and_cropping():
    x = np.random.default_rng(4).standard_normal((3, 5))
    check(lambda t: tl.pad(t, (1, -2), value=7.0),
          lambda a: np.pad(a[:, :-2], [(0, 0), (1, 0)], constant_values=7.0), [x])


def test_replicate_padding_of_an_empty_dim_is_refused():
    with pytest.raises(ValueError, match=r"replicate padding \(1, 1\) needs a non-empty input"):
        tl.pad(tl.zeros(2, 0), (1, 1), mode="replicate")


@SETTINGS
@given(shapes=mutually_broadcastable_shapes(signature="(m,n),(n,p)->(m,p)", max_dims=2, max_side=4),
       seed=st.integers(0, 2**16))
def test_matmul_batched_broadcasting(shapes, seed):
    rng = np.random.default_rng(seed)
    a, b = (rng.standard_normal(s) for s in shapes.input_shapes)
    check(lambda s, t: s @ t, np.matmul, [a, b])


@pytest.mark.parametrize("shapes", [((3,), (3,)), ((3,), (3, 2)), ((2, 3), (3,)), ((2, 1, 3), (3,)),
                                    ((3,), (4, 3, 2))])
def test_matmul_vectors(shapes):
    rng = np.random.default_rng(5)
    a, b = (rng.standard_normal(s) for s in shapes)
    check(lambda s, t: tl.matmul(s, t), np.matmul, [a, b])


def test_matmul_shape_mismatch_names_both_shapes():
    with pytest.raises(ValueError, match=r"\(2, 3\) and \(4, 5\)"):
        tl.randn(2, 3) @ tl.randn(4, 5)


def test_chained_expression():
    rng = np.random.default_rng(6)
    a, b = rng.standard_normal((3, 4)), rng.uniform(0.5, 1.5, (4,))

    def fn(s, t):
        h = (s * t - s.mean(0, keepdim=True)).tanh()
        return (h @ t.unsqueeze(1)).sigmoid().log_softmax(0) + (s / t).abs().sqrt().sum(1, keepdim=True)

    assert tl.gradcheck(fn, [leaf(a), leaf(b)])
