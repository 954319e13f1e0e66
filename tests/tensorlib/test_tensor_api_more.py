"""The Tensor API beyond the core ops: comparisons, rounding and trigonometry, masked_fill, lerp, amax/amin,
any/all, prod, norm, sort/topk, split/chunk/flip/roll/repeat/index_select/movedim/unflatten, eye, linspace,
new_* and the in-place forms. Forward against float64 NumPy on random shapes (float32 and float64), backward
by finite differences (gradcheck)."""

import math

import numpy as np
import pytest

import tensorlib as tl

FLOATS = [np.float32, np.float64]
SHAPES = [(), (5,), (3, 4), (2, 3, 4), (2, 0, 3)]
GRAD_SHAPES = [(), (4,), (2, 3)]


def tolerance(dtype):
    return {"rtol": 1e-4 if dtype == np.float32 else 1e-12, "atol": 1e-6 if dtype == np.float32 else 1e-12}


def random(shape, seed=0, dtype=np.float64, low=None, high=None):
    rng = np.random.default_rng(seed)
    values = rng.standard_normal(shape) if low is None else rng.uniform(low, high, shape)
    return np.asarray(values, dtype=dtype)


def leaf(array):
    return tl.tensor(np.asarray(array, dtype=np.float64), requires_grad=True)


def check_forward(fn, reference, arrays, dtype):
    out = fn(*[tl.tensor(a.astype(dtype)) for a in arrays])
    expected = reference(*[a.astype(np.float64) for a in arrays])
    assert out.shape == np.shape(expected)
    np.testing.assert_allclose(out.numpy().astype(np.float64), expected, **tolerance(dtype))
    return out


# ---- elementwise math --------------------------------------------------------------------------------
def numpy_sign(a):
    return np.where(np.isnan(a), 0.0, np.sign(a))


# name: (tensorlib function, float64 reference, domain of the inputs)
UNARY = {
    "neg": (lambda t: t.neg(), np.negative, "any"),
    "sign": (lambda t: t.sign(), numpy_sign, "any"),
    "floor": (lambda t: t.floor(), np.floor, "any"),
    "ceil": (lambda t: tl.ceil(t), np.ceil, "any"),
    "round": (lambda t: t.round(), np.round, "any"),
    "round_decimals": (lambda t: tl.round(t * 100, decimals=1), lambda a: np.round(a * 100, 1), "any"),
    "trunc": (lambda t: t.trunc(), np.trunc, "any"),
    "reciprocal": (lambda t: t.reciprocal(), np.reciprocal, "nonzero"),
    "rsqrt": (lambda t: tl.rsqrt(t), lambda a: 1 / np.sqrt(a), "positive"),
    "square": (lambda t: t.square(), np.square, "any"),
    "sin": (lambda t: t.sin(), np.sin, "any"),
    "cos": (lambda t: tl.cos(t), np.cos, "any"),
}


def draw(shape, domain, seed=0):
    if domain == "positive":
        return random(shape, seed, low=0.2, high=3.0)
    if domain == "nonzero":
        return random(shape, seed, low=0.3, high=2.0) * np.random.default_rng(seed + 1).choice([-1, 1], shape)
    return random(shape, seed) * 2


@pytest.mark.parametrize("name", sorted(UNARY))
@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_unary_math_matches_numpy(name, dtype, shape):
    fn, reference, domain = UNARY[name]
    out = check_forward(fn, reference, [draw(shape, domain)], dtype)
    assert out.dtype == dtype


@pytest.mark.parametrize("name", sorted(UNARY))
@pytest.mark.parametrize("shape", GRAD_SHAPES, ids=str)
def test_unary_math_gradients(name, shape):
    fn, _, domain = UNARY[name]
    assert tl.gradcheck(fn, [leaf(draw(shape, domain, seed=3))])


def test_stepwise_ops_have_zero_gradient_and_pytorch_special_values():
    x = leaf([-1.5, -0.5, 0.5, 1.5, 2.5])
    (x.floor() + x.ceil() + x.round() + x.trunc() + x.sign()).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.zeros(5))
    np.testing.assert_array_equal(x.detach().round().numpy(), [-2, -0, 0, 2, 2])  # halves to even
    special = tl.tensor([math.nan, math.inf, -math.inf, 0.0, -0.0])
    np.testing.assert_array_equal(special.sign().numpy(), [0, 1, -1, 0, 0])  # sign(NaN) is 0
    np.testing.assert_array_equal(tl.tensor([0.0, 4.0]).rsqrt().numpy(), [math.inf, 0.5])
    np.testing.assert_array_equal(tl.tensor([0.0]).reciprocal().numpy(), [math.inf])
    assert np.isnan(tl.tensor([math.inf]).sin().item())


def test_integer_and_bool_inputs_follow_pytorch_dtypes():
    ints = tl.tensor([[-3, 0, 2]])
    for op in ("floor", "ceil", "round", "trunc", "sign", "square", "neg"):
        assert getattr(ints, op)().dtype == tl.int64, op
    np.testing.assert_array_equal(ints.sign().numpy(), [[-1, 0, 1]])
    np.testing.assert_array_equal(ints.square().numpy(), [[9, 0, 4]])
    assert tl.tensor([1, 2], dtype=tl.int32).square().dtype == tl.int32
    assert tl.tensor([True]).square().dtype == tl.int64
    for op in ("reciprocal", "rsqrt", "sin", "cos"):
        assert getattr(ints, op)().dtype == tl.float32, op
    flags = tl.tensor([True, False])
    np.testing.assert_array_equal(flags.sign().numpy(), [True, False])
    with pytest.raises(TypeError, match="neg .* bool tensor"):
        -flags
    with pytest.raises(TypeError, match="floor of a bool tensor"):
        flags.floor()
    with pytest.raises(TypeError, match="decimals=1 needs a floating-point tensor, got dtype int64"):
        ints.round(decimals=1)
    with pytest.raises(TypeError, match="decimals must be an int, got 1.5"):
        tl.round(tl.ones(2), decimals=1.5)


# ---- comparisons and tests of values -------------------------------------------------------------------
@pytest.mark.parametrize("op", ["eq", "ne", "lt", "le", "gt", "ge"])
@pytest.mark.parametrize("dtype", FLOATS + [np.int64])
def test_comparisons_as_methods_and_functions(op, dtype):
    rng = np.random.default_rng(4)
    a, b = rng.integers(-2, 3, (3, 4)).astype(dtype), rng.integers(-2, 3, (4,)).astype(dtype)
    reference = getattr(np, {"eq": "equal", "ne": "not_equal", "lt": "less", "le": "less_equal",
                             "gt": "greater", "ge": "greater_equal"}[op])
    for out in (getattr(tl.tensor(a), op)(tl.tensor(b)), getattr(tl, op)(tl.tensor(a), tl.tensor(b))):
        assert out.dtype == tl.bool and out.shape == (3, 4)
        np.testing.assert_array_equal(out.numpy(), reference(a, b))
    np.testing.assert_array_equal(getattr(tl.tensor(a), op)(1).numpy(), reference(a, 1))
    assert getattr(tl.tensor(dtype(1)), op)(1).shape == ()


def test_isnan_isinf_isfinite():
    values = np.array([1.0, math.nan, math.inf, -math.inf, 0.0, -2.5])
    for dtype in FLOATS:
        t = tl.tensor(values.astype(dtype))
        np.testing.assert_array_equal(t.isnan().numpy(), np.isnan(values))
        np.testing.assert_array_equal(tl.isinf(t).numpy(), np.isinf(values))
        np.testing.assert_array_equal(t.isfinite().numpy(), np.isfinite(values))
    assert not tl.tensor([1, 2]).isnan().any().item() and tl.tensor([3]).isfinite().all().item()
    assert tl.tensor(math.nan).isnan().shape == ()


def test_isclose_allclose_equal():
    rng = np.random.default_rng(5)
    a = rng.standard_normal((3, 4))
    b = a + rng.standard_normal((3, 4)) * 1e-5
    np.testing.assert_array_equal(tl.isclose(tl.tensor(a), tl.tensor(b)).numpy(), np.isclose(a, b))
    np.testing.assert_array_equal(tl.tensor(a).isclose(tl.tensor(b), rtol=1e-3, atol=0).numpy(),
                                  np.isclose(a, b, rtol=1e-3, atol=0))
    special = tl.tensor([1.0, math.nan, math.inf, -math.inf])
    np.testing.assert_array_equal(tl.isclose(special, special).numpy(), [True, False, True, True])
    assert tl.isclose(special, special, equal_nan=True).all().item()
    assert tl.allclose(tl.tensor(a), tl.tensor(a + 1e-9)) and not tl.tensor(a).allclose(tl.tensor(a + 1e-3))
    assert not tl.allclose(tl.tensor([1.0, 2.0]), tl.tensor([[1.0], [2.0]]))  # broadcast: not all close
    assert tl.equal(tl.tensor(a), tl.tensor(a.copy())) and tl.tensor([1.0, 2.0]).equal(tl.tensor([1, 2]))
    assert not tl.equal(tl.tensor([1.0, 2.0]), tl.tensor([[1.0, 2.0]])) and not tl.equal(special, special)
    with pytest.raises(TypeError, match="share a dtype, got float64 and float32"):
        tl.isclose(tl.tensor(a), tl.tensor(a, dtype=tl.float32))
    with pytest.raises(ValueError, match="rtol must be >= 0, got -1"):
        tl.allclose(tl.tensor(a), tl.tensor(a), rtol=-1)
    with pytest.raises(TypeError, match="takes two tensors, got Tensor and list"):
        tl.equal(tl.tensor(a), [1.0])


# ---- masked_fill, where, lerp ------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_masked_fill_matches_numpy(dtype, shape):
    x = random(shape, 6)
    mask = random(shape, 7) > 0
    out = check_forward(lambda t: t.masked_fill(tl.tensor(mask), -1.5), lambda a: np.where(mask, -1.5, a), [x], dtype)
    assert out.dtype == dtype


def test_masked_fill_broadcasts_casts_and_differentiates_in_x_and_a_0d_value():
    x, value = random((3, 4), 8), tl.tensor(2.0, dtype=tl.float64, requires_grad=True)
    mask = tl.tensor(random((4,), 9) > 0)
    assert tl.gradcheck(lambda t, v: t.masked_fill(mask, v), [leaf(x), value])
    assert tl.gradcheck(lambda t: tl.masked_fill(t, mask, 0.0), [leaf(x)])
    np.testing.assert_array_equal(tl.tensor([1, 2, 3]).masked_fill(tl.tensor([True, False, True]), 2.7).numpy(),
                                  [2, 2, 2])  # cast to the tensor's dtype
    assert tl.ones(3).masked_fill(tl.tensor([[True], [False]]), 0.0).shape == (2, 3)  # x broadcast to the mask
    with pytest.raises(TypeError, match="mask must be a bool tensor, got int64"):
        tl.ones(3).masked_fill(tl.tensor([1, 0, 1]), 0.0)
    with pytest.raises(ValueError, match="value must be a number or a 0-d tensor, got a tensor of shape \\(1,\\)"):
        tl.ones(3).masked_fill(tl.tensor([True, False, True]), tl.tensor([1.0]))


def test_masked_fill_in_place_is_differentiable_and_keeps_the_shape():
    x = leaf(random((2, 3), 10))
    mask = tl.tensor(random((2, 3), 11) > 0)
    y = x * 2
    version = y._version[0]
    assert y.masked_fill_(mask, 0.5) is y and y._version[0] == version + 1
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.where(mask.numpy(), 0.0, 2.0))
    with pytest.raises(RuntimeError, match="does not fit this tensor's shape \\(3,\\)"):
        tl.ones(3).masked_fill_(tl.tensor([[True], [False]]), 0.0)


def test_where_as_a_method():
    x, y = random((3, 4), 12), random((3, 4), 13)
    mask = x > y
    np.testing.assert_array_equal(tl.tensor(x).where(tl.tensor(mask), tl.tensor(y)).numpy(), np.where(mask, x, y))
    assert tl.gradcheck(lambda a, b: a.where(tl.tensor(mask), b), [leaf(x), leaf(y)])
    assert tl.tensor([1, 2]).where(tl.tensor([True, False]), 0.5).dtype == tl.float32


@pytest.mark.parametrize("weight", [0.25, 0.75, -0.3, 1.5])
@pytest.mark.parametrize("dtype", FLOATS)
def test_lerp_with_a_number_weight(weight, dtype):
    start, end = random((3, 4), 14), random((4,), 15)
    check_forward(lambda s, e: tl.lerp(s, e, weight), lambda s, e: s + weight * (e - s), [start, end], dtype)
    assert tl.gradcheck(lambda s, e: s.lerp(e, weight), [leaf(start), leaf(end)])


def test_lerp_with_a_tensor_weight_and_in_place():
    start, end, weight = random((3, 4), 16), random((3, 4), 17), random((3, 1), 18, low=-0.5, high=1.5)
    np.testing.assert_allclose(tl.tensor(start).lerp(tl.tensor(end), tl.tensor(weight)).numpy(),
                               start + weight * (end - start), rtol=1e-12, atol=1e-12)
    assert tl.gradcheck(tl.lerp, [leaf(start), leaf(end), leaf(weight)])
    ends = tl.tensor([0.0, 10.0])
    np.testing.assert_array_equal(tl.tensor([1.0, 3.0]).lerp(ends, 1.0).numpy(), ends.numpy())  # exact at 1
    y = tl.tensor(start) * 1
    np.testing.assert_allclose(y.lerp_(tl.tensor(end), 0.3).numpy(), start + 0.3 * (end - start), rtol=1e-12)
    with pytest.raises(TypeError, match="start and end must share a dtype, got float32 and float64"):
        tl.lerp(tl.ones(2), tl.ones(2, dtype=tl.float64), 0.5)
    with pytest.raises(TypeError, match="start must be a floating-point tensor, got int64"):
        tl.lerp(tl.tensor([1, 2]), tl.tensor([1, 2]), 0.5)


# ---- reductions ------------------------------------------------------------------------------------------
def reduce_dims(shape):
    dims = [()] + [d for d in range(-len(shape), len(shape))]
    return dims + ([(0, -1)] if len(shape) >= 2 else [])


def cases(shapes=SHAPES):
    return [(shape, dim, keepdim) for shape in shapes for dim in reduce_dims(shape) for keepdim in (False, True)]


def numpy_axes(dim):
    return None if dim == () else dim


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("shape,dim,keepdim", cases([(), (5,), (3, 4), (2, 3, 4), (2, 0, 3)]), ids=str)
def test_amax_amin_any_all_match_numpy(dtype, shape, dim, keepdim):
    x = random(shape, 19)
    if 0 in shape and (dim == () or 0 in np.take(shape, np.atleast_1d(dim))):
        with pytest.raises((ValueError, IndexError), match="amax"):
            tl.tensor(x).amax(dim, keepdim)
    else:
        check_forward(lambda t: t.amax(dim, keepdim), lambda a: np.amax(a, numpy_axes(dim), keepdims=keepdim), [x], dtype)
        check_forward(lambda t: tl.amin(t, dim, keepdim), lambda a: np.amin(a, numpy_axes(dim), keepdims=keepdim), [x], dtype)
    positive = tl.tensor((x > 0).astype(dtype))
    dim_any = None if dim == () else dim  # any/all with dim=() reduce nothing, as in PyTorch
    for name in ("any", "all"):
        out = getattr(positive, name)(dim_any, keepdim)
        assert out.dtype == tl.bool
        np.testing.assert_array_equal(out.numpy(), getattr(np, name)(x > 0, numpy_axes(dim), keepdims=keepdim))


@pytest.mark.parametrize("shape,dim,keepdim", cases(GRAD_SHAPES), ids=str)
def test_amax_amin_gradients(shape, dim, keepdim):
    x = random(shape, 20)
    assert tl.gradcheck(lambda t: t.amax(dim, keepdim), [leaf(x)])
    assert tl.gradcheck(lambda t: t.amin(dim, keepdim), [leaf(x)])


def test_amax_shares_the_gradient_among_ties_and_keeps_integer_dtypes():
    x = leaf([[3.0, 1.0, 3.0, 5.0, 5.0], [2.0, 2.0, 2.0, 2.0, 1.0]])
    x.amax(1).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [[0, 0, 0, 0.5, 0.5], [0.25, 0.25, 0.25, 0.25, 0]])
    assert tl.tensor([[1, 5], [3, 2]]).amax(-1).dtype == tl.int64
    assert tl.tensor([[1, 5], [3, 2]], dtype=tl.uint8).any(1).dtype == tl.uint8  # uint8 in, uint8 out
    assert tl.tensor([[0.0, 1.0]]).any(()).shape == (1, 2) and tl.zeros(0).all().item()


def test_prod_matches_numpy_with_integer_promotion():
    for dtype in FLOATS:
        for shape in SHAPES:
            x = random(shape, 21)
            check_forward(lambda t: t.prod(), np.prod, [x], dtype)
            for dim in range(-len(shape), len(shape)):
                for keepdim in (False, True):
                    check_forward(lambda t: tl.prod(t, dim, keepdim), lambda a: np.prod(a, dim, keepdims=keepdim),
                                  [x], dtype)
    assert tl.tensor([1, 2, 3], dtype=tl.int32).prod().dtype == tl.int64
    assert tl.tensor([True, True]).prod().item() == 1
    assert tl.tensor([[1, 2], [3, 4]]).prod(dtype=tl.float32).dtype == tl.float32
    assert tl.tensor(3.0).prod(0).shape == ()


@pytest.mark.parametrize("zeros", [[], [(0, 1)], [(0, 1), (1, 2)], [(0, 1), (0, 2)]], ids=str)
def test_prod_gradient_with_zeros(zeros):
    x = random((2, 4), 22)
    for position in zeros:
        x[position] = 0.0
    assert tl.gradcheck(lambda t: t.prod(1), [leaf(x)])
    assert tl.gradcheck(lambda t: t.prod(0, keepdim=True), [leaf(x)])
    assert tl.gradcheck(lambda t: t.prod(), [leaf(x)])


def numpy_norm(a, p, axes, keepdim):
    magnitude = np.abs(a)
    if p == math.inf:
        return magnitude.max(axis=axes, keepdims=keepdim)
    if p == -math.inf:
        return magnitude.min(axis=axes, keepdims=keepdim)
    if p == 0:
        return (a != 0).sum(axis=axes, keepdims=keepdim).astype(a.dtype)
    return (magnitude**p).sum(axis=axes, keepdims=keepdim) ** (1 / p)


@pytest.mark.parametrize("p", [2, "fro", 1, 3, 0.5, math.inf, -math.inf, 0, -1])
@pytest.mark.parametrize("dtype", FLOATS)
def test_norm_matches_numpy(p, dtype):
    order = 2 if p == "fro" else p
    for shape, dim, keepdim in [((5,), None, False), ((3, 4), 1, False), ((3, 4), -2, True), ((2, 3, 4), (0, 2), False),
                                ((2, 3, 4), None, False), ((), None, False)]:
        x = random(shape, 23)
        axes = None if dim is None else dim
        check_forward(lambda t: t.norm(p, dim, keepdim), lambda a: numpy_norm(a, order, axes, keepdim), [x], dtype)


@pytest.mark.parametrize("p", [2, 1, 3, 0.5, math.inf, -math.inf, -1])
def test_norm_gradients(p):
    x = random((3, 4), 24)
    assert tl.gradcheck(lambda t: t.norm(p), [leaf(x)])
    assert tl.gradcheck(lambda t: tl.norm(t, p, dim=1, keepdim=True), [leaf(x)])


def test_norm_gradient_at_zero_is_zero_and_bad_p_is_refused():
    x = leaf([[0.0, 0.0], [3.0, 4.0]])
    x.norm(dim=1).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [[0, 0], [0.6, 0.8]])
    y = leaf([0.0, 0.0])
    (y.norm() + y.norm(1) + y.norm(0)).backward()
    np.testing.assert_array_equal(y.grad.numpy(), [0.0, 0.0])
    assert tl.ones(2).norm(dtype=tl.float64).dtype == tl.float64
    with pytest.raises(TypeError, match="norm\\(\\) needs a floating-point tensor, got dtype int64"):
        tl.tensor([3, 4]).norm()
    with pytest.raises(ValueError, match="got 'nuc' \\(the nuclear norm is not supported\\)"):
        tl.ones(2, 2).norm("nuc")
    with pytest.raises(ValueError, match="p='fro' takes one or two dims, got dim=\\(0, 1, 2\\)"):
        tl.ones(2, 2, 2).norm("fro", (0, 1, 2))


# ---- sort, argsort, topk -----------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", FLOATS + [np.int64])
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("descending", [False, True])
def test_sort_and_argsort_match_a_stable_numpy_sort(dtype, shape, descending):
    x = np.round(random(shape, 25) * 2).astype(dtype)  # ties: equal values keep their order
    for dim in range(-len(shape), len(shape)) if shape else [0, -1]:
        order = np.argsort(-x if descending else x, axis=dim, kind="stable") if shape else np.zeros((), np.int64)
        values, indices = tl.tensor(x).sort(dim, descending)
        assert indices.dtype == tl.int64 and values.dtype == dtype
        np.testing.assert_array_equal(indices.numpy(), order)
        np.testing.assert_array_equal(values.numpy(), np.take_along_axis(x, order, dim) if shape else x)
        np.testing.assert_array_equal(tl.argsort(tl.tensor(x), dim, descending=descending).numpy(), order)


def test_sort_puts_nan_last_ascending_and_first_descending():
    x = tl.tensor([3.0, math.nan, 1.0, 3.0, -math.inf])
    np.testing.assert_array_equal(x.sort().indices.numpy(), [4, 2, 0, 3, 1])
    np.testing.assert_array_equal(x.sort(descending=True).indices.numpy(), [1, 0, 3, 2, 4])
    np.testing.assert_array_equal(x.topk(2).indices.numpy(), [1, 0])


@pytest.mark.parametrize("dtype", FLOATS + [np.int64])
@pytest.mark.parametrize("largest", [True, False])
def test_topk_matches_numpy(dtype, largest):
    x = random((3, 7), 26).astype(dtype) if dtype != np.int64 else np.random.default_rng(26).permutation(21).reshape(3, 7)
    for dim, k in [(-1, 3), (1, 7), (0, 2), (0, 0)]:
        values, indices = tl.tensor(x).topk(k, dim, largest=largest)
        order = np.argsort(-x if largest else x, axis=dim, kind="stable")
        order = np.take(order, np.arange(k), axis=dim)
        np.testing.assert_array_equal(indices.numpy(), order)
        np.testing.assert_array_equal(values.numpy(), np.take_along_axis(x, order, dim))
    assert tl.topk(tl.tensor(2.0), 1).values.shape == ()
    with pytest.raises(ValueError, match="k=8 is out of range for dim -1 of size 7"):
        tl.tensor(x).topk(8)
    with pytest.raises(TypeError, match="k must be an int, got 2.0"):
        tl.tensor(x).topk(2.0)


def test_sort_and_topk_gradients_reach_the_chosen_positions():
    x = random((3, 5), 27)
    assert tl.gradcheck(lambda t: t.sort(1).values, [leaf(x)])
    assert tl.gradcheck(lambda t: t.sort(0, descending=True).values, [leaf(x)])
    assert tl.gradcheck(lambda t: t.topk(2).values, [leaf(x)])
    assert tl.gradcheck(lambda t: t.topk(2, 0, largest=False).values, [leaf(x)])
    y = leaf([1.0, 4.0, 2.0, 3.0])
    y.topk(2).values.sum().backward()
    np.testing.assert_array_equal(y.grad.numpy(), [0, 1, 0, 1])


# ---- shape ops ---------------------------------------------------------------------------------------------
X = random((2, 3, 4), 28)


@pytest.mark.parametrize("split,dim,sizes", [(2, -1, [2, 2]), (3, -1, [3, 1]), ([1, 3], 2, [1, 3]), ((1, 0, 3), -1, [1, 0, 3]),
                                             (1, 0, [1, 1]), (5, 1, [3])])
def test_split(split, dim, sizes):
    pieces = tl.tensor(X).split(split, dim)
    expected = np.split(X, np.cumsum(sizes)[:-1], axis=dim)
    assert len(pieces) == len(expected)
    for piece, reference in zip(pieces, expected):
        np.testing.assert_array_equal(piece.numpy(), reference)
    weights = [random(p.shape, i) for i, p in enumerate(pieces)]
    assert tl.gradcheck(lambda t: sum((p * tl.tensor(w)).sum() for p, w in zip(tl.split(t, split, dim), weights)),
                        [leaf(X)])


def test_split_chunk_unbind_narrow_shapes_and_refusals():
    assert [p.shape for p in tl.zeros(0).split(2)] == [(0,)]
    assert [p.shape for p in tl.tensor(X).chunk(3, -1)] == [(2, 3, 2), (2, 3, 2)]
    assert [p.shape for p in tl.arange(5).chunk(4)] == [(2,), (2,), (1,)]
    assert [p.shape for p in tl.zeros(0).chunk(2)] == [(0,), (0,)]
    for i, piece in enumerate(tl.unbind(tl.tensor(X), 1)):
        np.testing.assert_array_equal(piece.numpy(), X[:, i])
    np.testing.assert_array_equal(tl.tensor(X).narrow(2, -3, 2).numpy(), X[..., 1:3])
    np.testing.assert_array_equal(tl.narrow(tl.tensor(X), 0, tl.tensor(1), 1).numpy(), X[1:])
    assert tl.gradcheck(lambda t: tl.stack(t.unbind(0), 1) * 1.5 + t.narrow(0, 1, 2).sum(), [leaf(X[0, :, :2])])
    with pytest.raises(ValueError, match="sizes \\[1, 2\\] must be non-negative and add up to the size 4 of dim -1"):
        tl.tensor(X).split([1, 2], -1)
    with pytest.raises(ValueError, match="split_size must be positive .* got 0 for dim 0 of size 2"):
        tl.tensor(X).split(0)
    with pytest.raises(ValueError, match="chunks must be a positive int, got 0"):
        tl.tensor(X).chunk(0)
    with pytest.raises(IndexError, match="narrow: start -5 is out of range for dim 2 of size 4"):
        tl.tensor(X).narrow(2, -5, 1)
    with pytest.raises(ValueError, match="length 2 from start 3 does not fit dim 2 of size 4"):
        tl.tensor(X).narrow(2, 3, 2)
    with pytest.raises(IndexError, match="unbind\\(\\) needs a tensor of at least one dimension"):
        tl.tensor(1.0).unbind()


RESHUFFLES = {
    "flip": (lambda t: t.flip(0, 2), lambda a: np.flip(a, (0, 2))),
    "flip_list": (lambda t: tl.flip(t, [-1]), lambda a: np.flip(a, -1)),
    "roll": (lambda t: t.roll(1, 2), lambda a: np.roll(a, 1, 2)),
    "roll_dims": (lambda t: tl.roll(t, (1, -2), (0, 2)), lambda a: np.roll(a, (1, -2), (0, 2))),
    "roll_flat": (lambda t: t.roll(-5), lambda a: np.roll(a, -5)),
    "repeat": (lambda t: t.repeat(2, 1, 3), lambda a: np.tile(a, (2, 1, 3))),
    "repeat_new_dims": (lambda t: tl.repeat(t, (2, 1, 2, 1)), lambda a: np.tile(a, (2, 1, 2, 1))),
    "index_select": (lambda t: t.index_select(1, tl.tensor([2, 0, 2])), lambda a: a[:, [2, 0, 2]]),
    "index_select_int32": (lambda t: tl.index_select(t, -1, tl.tensor([3, 3, 1], dtype=tl.int32)),
                           lambda a: a[..., [3, 3, 1]]),
    "movedim": (lambda t: t.movedim(0, -1), lambda a: np.moveaxis(a, 0, -1)),
    "movedim_pairs": (lambda t: tl.movedim(t, (0, 1), (2, 0)), lambda a: np.moveaxis(a, (0, 1), (2, 0))),
    "swapaxes": (lambda t: t.swapaxes(0, 2), lambda a: np.swapaxes(a, 0, 2)),
    "swapdims": (lambda t: tl.swapdims(t, 1, -1), lambda a: np.swapaxes(a, 1, -1)),
    "unflatten": (lambda t: t.unflatten(2, (2, -1)), lambda a: a.reshape(2, 3, 2, 2)),
    "squeeze_dims": (lambda t: t.unsqueeze(1).unsqueeze(0).squeeze((0, 2, 3)), lambda a: a),
}


@pytest.mark.parametrize("name", sorted(RESHUFFLES))
@pytest.mark.parametrize("dtype", FLOATS)
def test_reshuffles_match_numpy(name, dtype):
    fn, reference = RESHUFFLES[name]
    out = check_forward(fn, reference, [X], dtype)
    assert out.dtype == dtype


@pytest.mark.parametrize("name", sorted(RESHUFFLES))
def test_reshuffle_gradients(name):
    assert tl.gradcheck(RESHUFFLES[name][0], [leaf(X[:, :3, :4])])


def test_reshuffles_of_0d_and_empty_tensors_and_refusals():
    scalar = tl.tensor(3.0)
    assert scalar.flip(0).item() == 3.0 and scalar.roll(1).item() == 3.0 and scalar.repeat(2, 2).shape == (2, 2)
    assert scalar.index_select(0, tl.tensor(0)).shape == () and scalar.movedim(0, 0).shape == ()
    assert tl.zeros(2, 0).roll(1, 1).shape == (2, 0) and tl.zeros(2, 0).unflatten(1, (2, 0)).shape == (2, 2, 0)
    assert tl.tensor(X).index_select(1, tl.tensor(1)).shape == (2, 1, 4)
    flipped = tl.tensor(X).flip(0)
    flipped += 1  # a copy, not a view of the input
    np.testing.assert_array_equal(flipped.numpy(), np.flip(X, 0) + 1)
    with pytest.raises(ValueError, match="flip: dims \\(0, 0\\) repeat a dimension"):
        tl.tensor(X).flip(0, 0)
    with pytest.raises(ValueError, match="squeeze: dims \\(1, 1\\) repeat a dimension"):
        tl.zeros(2, 1).squeeze((1, 1))
    with pytest.raises(ValueError, match="shifts \\(1, -1\\) and dims \\(0,\\) must be non-empty and of one length"):
        tl.tensor(X).roll((1, -1), 0)
    with pytest.raises(ValueError, match="2 repeats for a tensor of 3 dimensions"):
        tl.tensor(X).repeat(2, 1)
    with pytest.raises(IndexError, match="index_select: index 3 is out of range for dim 1 of size 3"):
        tl.tensor(X).index_select(1, tl.tensor([3]))
    with pytest.raises(TypeError, match="index must be an int32 or int64 tensor, got float32"):
        tl.tensor(X).index_select(1, tl.tensor([1.0]))
    with pytest.raises(ValueError, match="index must be 0-d or 1-D, got shape \\(1, 1\\)"):
        tl.tensor(X).index_select(1, tl.tensor([[1]]))
    with pytest.raises(ValueError, match="movedim source: dims \\(0, 0\\) repeat a dimension"):
        tl.tensor(X).movedim((0, 0), (1, 2))
    with pytest.raises(ValueError, match="unflatten: sizes \\(3, -1\\) do not multiply to the size 4 of dim -1"):
        tl.tensor(X).unflatten(-1, (3, -1))


# ---- creation and properties ---------------------------------------------------------------------------------
def test_eye():
    np.testing.assert_array_equal(tl.eye(3).numpy(), np.eye(3))
    np.testing.assert_array_equal(tl.eye(2, 3, dtype=tl.int64).numpy(), np.eye(2, 3))
    assert tl.eye(3).dtype == tl.float32 and tl.eye(0).shape == (0, 0) and tl.eye(2, requires_grad=True).requires_grad
    with pytest.raises(ValueError, match="eye: n must be >= 0, got -1"):
        tl.eye(-1)
    with pytest.raises(TypeError, match="eye: m must be an int, got 2.0"):
        tl.eye(2, 2.0)


@pytest.mark.parametrize("start,end,steps", [(0, 1, 5), (1, 0, 4), (-2.3, 7.1, 13), (0.1, 0.7, 100), (2, 2, 3),
                                             (0, 1, 1), (0, 1, 0), (0, 1, 2)])
@pytest.mark.parametrize("dtype", FLOATS)
def test_linspace(start, end, steps, dtype):
    out = tl.linspace(start, end, steps, dtype=dtype)
    assert out.dtype == dtype and out.shape == (steps,)
    np.testing.assert_allclose(out.numpy(), np.linspace(start, end, steps), **tolerance(dtype))
    if steps:
        assert out[0].item() == np.asarray(start, dtype).item() and (steps == 1 or out[-1].item() == np.asarray(end, dtype).item())


def test_linspace_integer_dtype_and_refusals():
    np.testing.assert_array_equal(tl.linspace(0, 10, 5, dtype=tl.int64).numpy(), [0, 2, 5, 7, 10])  # truncated
    assert tl.linspace(tl.tensor(0.0), tl.tensor(1.0), 3).dtype == tl.float32
    with pytest.raises(ValueError, match="linspace: steps must be >= 0, got -1"):
        tl.linspace(0, 1, -1)
    with pytest.raises(TypeError, match="linspace: steps must be an int, got 2.0"):
        tl.linspace(0, 1, 2.0)


def test_new_creation_methods_take_dtype_and_device_from_the_tensor():
    ints, floats = tl.tensor([1, 2]), tl.ones(2, dtype=tl.float64)
    assert ints.new_zeros(2, 3).dtype == tl.int64 and ints.new_zeros(2, 3).shape == (2, 3)
    assert floats.new_ones((2,)).dtype == tl.float64 and floats.new_ones(2, dtype=tl.float32).dtype == tl.float32
    np.testing.assert_array_equal(ints.new_full((2,), 7.5).numpy(), [7, 7])
    assert floats.new_empty(3).shape == (3,) and floats.new_zeros(2, requires_grad=True).requires_grad
    np.testing.assert_array_equal(ints.new_tensor([1.5, 2]).numpy(), [1, 2])
    assert floats.new_tensor([1, 2]).dtype == tl.float64 and ints.new_tensor([1.5], dtype=tl.float32).dtype == tl.float32
    assert all(t.device == "cpu" for t in (ints.new_zeros(1), floats.new_tensor([1.0])))


def test_conversions_and_size_properties():
    t = tl.tensor([[1.7, -2.7, 3.0]])
    assert t.half().dtype == tl.float16 and t.half().element_size() == 2
    np.testing.assert_array_equal(t.int().numpy(), [[1, -2, 3]])
    assert t.int().dtype == tl.int32 and t.int().element_size() == 4
    assert t.element_size() == 4 and tl.tensor([True]).element_size() == 1
    assert t.nelement() == 3 and t.ndimension() == 2 and t.is_cuda is False
    x = leaf([1.0, 2.0])
    (x.half().float() * 3).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [3.0, 3.0])


# ---- in-place forms --------------------------------------------------------------------------------------------
INPLACE = {
    "neg_": np.negative, "abs_": np.abs, "exp_": np.exp, "log_": np.log, "sqrt_": np.sqrt,
    "sigmoid_": lambda a: 1 / (1 + np.exp(-a)), "tanh_": np.tanh, "sin_": np.sin, "cos_": np.cos,
    "reciprocal_": np.reciprocal, "rsqrt_": lambda a: 1 / np.sqrt(a), "square_": np.square, "floor_": np.floor,
    "ceil_": np.ceil, "round_": np.round, "trunc_": np.trunc, "sign_": np.sign,
}


@pytest.mark.parametrize("name", sorted(INPLACE))
def test_in_place_forms_write_into_the_tensor_and_differentiate(name):
    x = random((2, 3), 29, low=0.3, high=2.5)
    t = tl.tensor(x)
    data, version = t.array, t._version[0]
    assert getattr(t, name)() is t and t.array is data and t._version[0] == version + 1
    np.testing.assert_allclose(t.numpy(), INPLACE[name](x), rtol=1e-12)

    def through_in_place(a):
        b = a * 1.0
        getattr(b, name)()
        return b

    assert tl.gradcheck(through_in_place, [leaf(x)])


def test_in_place_forms_refuse_what_the_out_of_place_op_would_widen():
    with pytest.raises(TypeError, match="exp_: a result of dtype float32 can't be stored in a tensor of dtype int64"):
        tl.tensor([1, 2]).exp_()
    with pytest.raises(RuntimeError, match="abs_: a leaf tensor that requires grad"):
        leaf([1.0]).abs_()
    y = tl.tensor([1.5, 2.0]) * 1
    np.testing.assert_allclose(y.pow_(2).numpy(), [2.25, 4.0])


# ---- the "cuda" device (simulated under NUMBA_ENABLE_CUDASIM=1, CuPy on a GPU) -----------------------------
def new_ops(x, y):
    """Most of the ops above in one differentiable expression, plus the non-differentiable ones checked on the
    way; every tensor it makes must stay on x's device."""
    device = x.device
    mask = x > 0.2
    values, indices = x.topk(2, dim=1)
    assert indices.device == device and x.sort(0).indices.device == device and x.argsort(1).device == device
    assert (x.isclose(x) & ~x.isnan() & x.isfinite()).all().item() and x.allclose(x * 1) and x.equal(x.clone())
    assert mask.any(1).device == device and tl.eye(2, device=device).device == device
    z = x * 1.0
    z.exp_()
    z.masked_fill_(mask, 0.5)
    pieces = x.split([1, 2], dim=1)
    return (values.sum() + x.sort(0, descending=True).values[0].sum() + x.amax(1).sum() + x.prod(1).sum()
            + x.norm() + x.norm(1, dim=0).sum() + x.norm(math.inf) + x.masked_fill(mask, 0.0).sum()
            + x.lerp(y, 0.3).sum() + x.where(mask, y).sum() + x.sign().sum() + x.floor().sum()
            + x.round(decimals=1).sum() + (x * x + 1).rsqrt().sum() + x.sin().sum() + x.cos().sum()
            + (x + 3).reciprocal().sum() + x.square().sum() + pieces[1].sum() * pieces[0].sum()
            + x.chunk(2, 0)[1].sum() + x.flip(0, 1)[0].sum() * 2 + x.roll(1, 1)[:, 0].sum() * 3
            + x.repeat(2, 1)[3].sum() + x.index_select(1, tl.tensor([2, 0, 2], device=device)).sum(1)[0]
            + x.movedim(0, 1)[0].sum() * 4 + x.unflatten(1, (3, 1)).squeeze(-1)[1].sum() * 5
            + z.sum() + tl.linspace(0, 1, 3, dtype=tl.float64, device=device).sum() + x.new_ones(2).sum())


def test_new_ops_on_cuda_match_the_cpu(tier):
    rng = np.random.default_rng(30)
    arrays = [rng.standard_normal((2, 3)), rng.standard_normal((2, 3))]
    results = {}
    for device in ("cpu", "cuda"):
        inputs = [tl.tensor(a, device=device, requires_grad=True) for a in arrays]
        out = new_ops(*inputs)
        out.backward()
        assert out.device == device and all(t.grad.device == device for t in inputs)
        results[device] = [out.detach().cpu().numpy()] + [t.grad.cpu().numpy() for t in inputs]
    for got, expected in zip(results["cuda"], results["cpu"]):
        np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("p", [0.3, 0.5])
def test_norm_below_one_has_zero_gradient_at_zero_entries(p):
    """d/dx (sum |x|^p)^(1/p) = sign(x) |x / norm|^(p-1) is 0 * inf at x = 0; PyTorch takes it as 0."""
    x_np = np.array([0.0, 1.5, -2.0, 0.0])
    x = tl.tensor(x_np, requires_grad=True)
    tl.norm(x, p).backward()
    norm = (np.abs(x_np) ** p).sum() ** (1 / p)
    expected = np.where(x_np == 0, 0.0, np.sign(x_np) * np.abs(np.where(x_np == 0, 1, x_np) / norm) ** (p - 1))
    np.testing.assert_allclose(x.grad.numpy(), expected, rtol=1e-12)
