"""The Tensor API as PyTorch 2.13 has it, where tensorlib lacked it or differed: integer sums in int64, comparisons
in the promoted dtype, add/sub alpha and div rounding modes, fmod, atan2, log2/log10, nan_to_num, the logical
and bitwise ops (reflected and in-place operators too), cumprod, the reductions' dtype= and axis=, empty
softmax/logsumexp, diagonal, mv, addmm, masked_select, take, repeat_interleave, tile, broadcast_to, index_add,
index_fill, meshgrid, multinomial, Size, tensor/as_tensor/arange/zeros inference, stride, the byte/char/short
casts, set_num_threads and the cuDNN flags. Forward against float64 NumPy on random shapes (float32 and
float64), backward by finite differences (gradcheck); expected values that are conventions are PyTorch's."""

import numpy as np
import pytest

import tensorlib as tl

FLOATS = [np.float32, np.float64]
SHAPES = [(5,), (3, 4), (2, 3, 5)]
INTEGERS = [np.uint8, np.int8, np.int16, np.int32, np.int64, np.bool_]


def tolerance(dtype):
    return {"rtol": 1e-4 if dtype == np.float32 else 1e-12, "atol": 1e-6 if dtype == np.float32 else 1e-12}


def random(shape, seed=0, dtype=np.float64):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def integers(shape, dtype, seed=0):
    if dtype == np.bool_:
        return np.random.default_rng(seed).random(shape) > 0.5
    low, high = (0, 256) if dtype == np.uint8 else (-100, 100)
    return np.random.default_rng(seed).integers(low, high, shape).astype(dtype)


def leaf(array):
    return tl.tensor(np.asarray(array, dtype=np.float64), requires_grad=True)


def assert_matches(out, expected, dtype):
    assert out.shape == np.shape(expected) and out.dtype == dtype, (out.shape, out.dtype)
    np.testing.assert_allclose(out.detach().numpy().astype(np.float64), expected, **tolerance(dtype))


# ---- integer reductions widen to int64 ----------------------------------------------------------------------
@pytest.mark.parametrize("dtype", INTEGERS)
def test_integer_and_bool_sums_are_int64(dtype):
    data = integers((3, 4), dtype)
    wide = data.astype(np.int64)
    x = tl.tensor(data)
    for out, expected in [(x.sum(), wide.sum()), (tl.sum(x, 1), wide.sum(1)), (x.sum((0, 1), keepdim=True),
                          wide.sum((0, 1), keepdims=True)), (x.cumsum(0), wide.cumsum(0)),
                          (x.cumprod(1), np.cumprod(wide, 1)), (x.prod(), wide.prod())]:
        assert out.dtype == np.int64 and out.shape == expected.shape
        np.testing.assert_array_equal(out.numpy(), expected)
    assert (tl.tensor(np.array([0, 1], np.uint8)).sum() - 5).item() == -4  # not a uint64 wrap-around


def test_sum_mean_cumsum_softmax_take_a_dtype_and_sum_mean_max_min_an_axis():
    data = random((3, 4), 1, np.float32)
    x = tl.tensor(data)
    assert_matches(x.sum(dtype=tl.float64), data.astype(np.float64).sum(), np.float64)
    assert_matches(tl.mean(x, 1, dtype=tl.float64), data.astype(np.float64).mean(1), np.float64)
    assert_matches(tl.tensor([1, 2, 4]).mean(dtype=tl.float32), 7 / 3, np.float32)
    assert tl.tensor(np.array([200, 100], np.uint8)).sum(dtype=tl.int32).dtype == np.int32
    assert_matches(tl.tensor([1, 2, 3]).cumsum(0, dtype=tl.float64), [1, 3, 6], np.float64)
    shifted = np.exp(data.astype(np.float64) - data.max(1, keepdims=True))
    assert_matches(tl.softmax(x, 1, dtype=tl.float64), shifted / shifted.sum(1, keepdims=True), np.float64)
    assert_matches(x.log_softmax(1, dtype=tl.float64), np.log(shifted / shifted.sum(1, keepdims=True)), np.float64)
    assert_matches(tl.sum(x, axis=1), data.sum(1), np.float32)
    assert_matches(x.mean(axis=(0, 1)), data.mean(), np.float32)
    values, indices = tl.max(x, axis=1)
    assert_matches(values, data.max(1), np.float32) and np.array_equal(indices.numpy(), data.argmax(1))
    np.testing.assert_array_equal(x.min(axis=0).indices.numpy(), data.argmin(0))
    with pytest.raises(TypeError, match="both dim=0 and its alias axis=1"):
        x.sum(0, axis=1)
    with pytest.raises(TypeError, match="mean\\(\\): dtype must be a floating-point dtype, got int64"):
        x.mean(dtype=tl.int64)
    with pytest.raises(TypeError, match="pass dtype= to cast it"):
        tl.tensor([1, 2]).mean()


@pytest.mark.parametrize("shape", [(), (4,), (2, 3, 4)])
def test_argmax_argmin_keepdim_without_dim_keep_every_dim(shape):
    data = random(shape, 2)
    assert tl.tensor(data).argmax(keepdim=True).shape == (1,) * len(shape)
    assert tl.argmin(tl.tensor(data), keepdim=True).item() == data.argmin()
    assert tl.tensor(data).argmax().shape == ()


def test_softmax_log_softmax_logsumexp_over_an_empty_dim():
    x = tl.zeros(3, 0, requires_grad=True)
    for out in (tl.softmax(x, 1), tl.log_softmax(x, 1)):
        assert out.shape == (3, 0)
    lse = tl.logsumexp(x, 1)
    assert lse.shape == (3,) and np.all(lse.detach().numpy() == -np.inf)
    (lse.sum() + tl.softmax(x, 1).sum()).backward()
    assert x.grad.shape == (3, 0)
    assert tl.logsumexp(tl.zeros(2, 0, 3), (1, 2), keepdim=True).tolist() == [[[-np.inf]], [[-np.inf]]]
    assert tl.logsumexp(tl.zeros(0, 3), 1).shape == (0,)


# ---- comparisons in the promoted dtype ----------------------------------------------------------------------
def test_comparisons_use_pytorchs_promotion():
    assert (tl.tensor([0.1]) == tl.tensor(0.1, dtype=tl.float64)).tolist() == [True]  # compared in float32
    assert (tl.tensor(0.1) == tl.tensor(0.1, dtype=tl.float64)).item() is False  # two 0-d: float64
    assert (tl.tensor([16777217]) == 16777216.0).tolist() == [True]  # int64 with a float: float32
    assert (tl.tensor([16777217]) > tl.tensor(16777216.0, dtype=tl.float64)).tolist() == [True]
    uint8 = tl.tensor(np.array([0, 3, 255], np.uint8))
    assert (uint8 > -1).tolist() == [False, False, False]  # -1 is 255 in uint8
    assert (uint8 == 259).tolist() == [False, True, False] and (uint8 != 259).tolist() == [True, False, True]
    assert (tl.tensor([True, False]) < 0.5).tolist() == [False, True]
    assert (2 < tl.tensor([1.0, 3.0])).tolist() == [False, True]
    assert (tl.tensor([1.0], dtype=tl.float16) < 70000).tolist() == [True]  # 70000 is inf in float16
    assert tl.eq(tl.tensor([1, 2]), np.array([1, 5])).tolist() == [True, False]
    with pytest.raises(OverflowError):
        tl.tensor([1]) == 2**70


@pytest.mark.parametrize("dtype", FLOATS)
def test_comparisons_of_mixed_dtypes_match_numpy_in_the_promoted_dtype(dtype):
    a, b = random((3, 4), 3, dtype), random((4,), 4, np.float64)
    for op, reference in [("lt", np.less), ("le", np.less_equal), ("gt", np.greater), ("ge", np.greater_equal),
                          ("eq", np.equal), ("ne", np.not_equal)]:
        out = getattr(tl, op)(tl.tensor(a), tl.tensor(b))  # both dimensioned: float64
        np.testing.assert_array_equal(out.numpy(), reference(a.astype(np.float64), b))
        np.testing.assert_array_equal(getattr(tl, op)(tl.tensor(a), tl.tensor(b[0])).numpy(),  # 0-d: a's dtype
                                      reference(a, b[0].astype(dtype)))


# ---- arithmetic: alpha, rounding modes, fmod, atan2, log2/log10, nan_to_num ---------------------------------
@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("shape", SHAPES)
def test_add_sub_alpha_and_their_aliases(dtype, shape):
    a, b = random(shape, 5, dtype), random(shape[-1:], 6, dtype)
    ref_a, ref_b = a.astype(np.float64), b.astype(np.float64)
    assert_matches(tl.add(tl.tensor(a), tl.tensor(b), alpha=-2.5), ref_a - 2.5 * ref_b, dtype)
    assert_matches(tl.tensor(a).sub(tl.tensor(b), alpha=3), ref_a - 3 * ref_b, dtype)
    assert_matches(tl.subtract(tl.tensor(a), 2, alpha=0.5), ref_a - 1, dtype)
    assert_matches(tl.tensor(a).multiply(tl.tensor(b)), ref_a * ref_b, dtype)
    assert_matches(tl.tensor(a).add(1), ref_a + 1, dtype)
    assert tl.gradcheck(lambda x, y: tl.sub(x, y, alpha=1.5), [leaf(a), leaf(b)])


def test_add_alpha_follows_pytorchs_rules_for_integers_and_bools():
    assert tl.add(tl.tensor([1, 2]), tl.tensor([3, 4]), alpha=-2).tolist() == [-5, -6]
    assert tl.add(tl.tensor([True, False]), tl.tensor([False, False]), alpha=True).dtype == np.bool_
    with pytest.raises(TypeError, match="alpha must be an integer for integer or bool tensors"):
        tl.add(tl.tensor([1]), tl.tensor([1]), alpha=0.5)
    with pytest.raises(TypeError, match="a bool alpha=True is only supported for bool tensors"):
        tl.add(tl.tensor([1.0]), 1, alpha=True)


def _truncated_quotient(a, b):
    return np.trunc(a.astype(np.float64) / b.astype(np.float64))


@pytest.mark.parametrize("dtype", FLOATS + [np.int64, np.int32, np.uint8])
def test_div_rounding_modes_match_numpy(dtype):
    if dtype == np.uint8:
        a, b = integers((4, 5), dtype, 7), np.maximum(integers((5,), dtype, 8), 1)
    elif np.dtype(dtype).kind == "i":
        a, b = integers((4, 5), dtype, 7), integers((5,), dtype, 8) // 7 + 11
    else:
        a, b = random((4, 5), 7, dtype) * 5, random((5,), 8, dtype)
    x, y = tl.tensor(a), tl.tensor(b)
    trunc, floor = tl.div(x, y, rounding_mode="trunc"), x.div(y, rounding_mode="floor")
    assert trunc.dtype == floor.dtype == dtype
    quotient = a.astype(np.float64) / b.astype(np.float64)
    np.testing.assert_allclose(trunc.numpy().astype(np.float64), np.trunc(quotient), atol=1e-12)
    np.testing.assert_allclose(floor.numpy().astype(np.float64), np.floor(quotient), atol=1e-12)
    assert_matches(tl.divide(tl.tensor(a), tl.tensor(b)), quotient, dtype if dtype in FLOATS else np.float32)
    assert tl.true_divide(tl.tensor([7]), 2).tolist() == [3.5]


def test_div_rounding_modes_edges_and_gradient():
    a, b = tl.tensor([7, -7, 7, -7]), tl.tensor([2, 2, -2, -2])
    assert tl.div(a, b, rounding_mode="trunc").tolist() == [3, -3, -3, 3]
    assert tl.div(a, b, rounding_mode="floor").tolist() == [3, -4, -4, 3]
    assert tl.div(17, tl.tensor([-5]), rounding_mode="trunc").tolist() == [-3]
    assert tl.div(tl.tensor([1.0, -1.0, 0.0]), 0.0, rounding_mode="trunc").tolist()[:2] == [np.inf, -np.inf]
    x = tl.tensor([5.0, -7.0])
    assert x.div_(2, rounding_mode="floor") is x and x.tolist() == [2.0, -4.0]
    with pytest.raises(ValueError, match="rounding_mode must be None, 'trunc' or 'floor', got 'round'"):
        tl.div(x, 2, rounding_mode="round")
    with pytest.raises(ZeroDivisionError):
        tl.div(tl.tensor([1]), 0, rounding_mode="trunc")
    with pytest.raises(TypeError, match="can't be stored in a tensor of dtype int64"):
        tl.tensor([1, 2]).div_(2)
    a, b = leaf(random((3, 4), 9) * 3), leaf(random((4,), 10))
    tl.div(a, b, rounding_mode="trunc").sum().backward()  # piecewise constant: zero gradients, as PyTorch's
    assert not a.grad.numpy().any() and not b.grad.numpy().any()


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("shape", SHAPES)
def test_fmod_atan2_log2_log10_match_numpy(dtype, shape):
    a, b = random(shape, 11, dtype) * 4, random(shape[-1:], 12, dtype)
    ref_a, ref_b = a.astype(np.float64), b.astype(np.float64)
    assert_matches(tl.fmod(tl.tensor(a), tl.tensor(b)), np.fmod(ref_a, ref_b), dtype)
    assert_matches(tl.tensor(a).fmod(1.5), np.fmod(ref_a, 1.5), dtype)
    assert_matches(tl.atan2(tl.tensor(a), tl.tensor(b)), np.arctan2(ref_a, ref_b), dtype)
    assert_matches(tl.log2(tl.tensor(np.abs(a))), np.log2(np.abs(ref_a)), dtype)
    assert_matches(tl.tensor(np.abs(a)).log10(), np.log10(np.abs(ref_a)), dtype)
    divisor = np.sign(ref_b) * (1 + np.abs(ref_b))
    dividend = divisor * (np.round(ref_a) + 0.5 + 0.3 * np.tanh(ref_a))  # a / b away from integers: no jump
    assert tl.gradcheck(tl.fmod, [leaf(dividend), leaf(divisor)])
    assert tl.gradcheck(tl.atan2, [leaf(ref_a), leaf(ref_b)])
    assert tl.gradcheck(lambda x: tl.log2(x) + x.log10(), [leaf(np.abs(ref_a) + 0.1)])


def test_fmod_atan2_log2_on_integers_and_special_values():
    assert tl.fmod(tl.tensor([7, -7]), tl.tensor([-2, 2])).tolist() == [1, -1]  # the dividend's sign
    assert tl.fmod(tl.tensor([7, -7]), 1.5).dtype == np.float32
    assert tl.atan2(tl.tensor([1]), tl.tensor([1])).dtype == np.float32
    assert tl.atan2(tl.tensor([1.0]), tl.tensor([1.0], dtype=tl.float64)).dtype == np.float64
    assert tl.log2(tl.tensor([0.0, 8.0])).tolist() == [-np.inf, 3.0] and np.isnan(tl.log10(tl.tensor(-1.0)).item())
    with pytest.raises(ZeroDivisionError):
        tl.fmod(tl.tensor([3]), 0)
    with pytest.raises(TypeError, match="atan2 takes two tensors"):
        tl.atan2(tl.tensor([1.0]), 2)


@pytest.mark.parametrize("dtype", FLOATS + [np.float16])
def test_nan_to_num_matches_numpy(dtype):
    data = np.array([np.nan, np.inf, -np.inf, 1.5, -2.0], dtype=dtype)
    limits = np.finfo(dtype)
    expected = np.nan_to_num(data.astype(np.float64), posinf=float(limits.max), neginf=float(limits.min))
    np.testing.assert_array_equal(tl.nan_to_num(tl.tensor(data)).numpy(), expected.astype(dtype))
    out = tl.tensor(data).nan_to_num(nan=2.0, posinf=3.0, neginf=-4.0)
    assert out.dtype == dtype and out.tolist() == [2.0, 3.0, -4.0, 1.5, -2.0]
    assert tl.tensor(data).nan_to_num(posinf=1e300).tolist()[1] == (np.inf if dtype != np.float64 else 1e300)
    assert tl.nan_to_num(tl.tensor([3, 4])).tolist() == [3, 4]
    x = tl.tensor(data)
    assert x.nan_to_num_() is x and np.isfinite(x.numpy()).all()
    assert tl.gradcheck(lambda t: tl.nan_to_num(t, nan=1.0, posinf=2.0, neginf=-3.0),
                        [leaf([np.nan, np.inf, 0.5, -np.inf, -1.5])])


def test_bool_operands_are_refused_where_pytorch_refuses_them():
    mask, x = tl.tensor([True, False]), tl.tensor([1.0, 2.0])
    for fn, message in [(lambda: x - True, "to invert a mask use ~ or logical_not"),
                        (lambda: True - x, "bool number"), (lambda: mask - 1, "bool tensor"),
                        (lambda: mask - mask, "use \\^ or logical_xor"), (lambda: mask ** mask, "pow"),
                        (lambda: mask // mask, "floor_divide"), (lambda: mask % mask, "remainder"),
                        (lambda: tl.fmod(mask, mask), "fmod"), (lambda: tl.div(mask, mask, rounding_mode="floor"),
                                                                "div with rounding_mode='floor'")]:
        with pytest.raises(TypeError, match=message):
            fn()
    assert (mask ** 2).tolist() == [1, 0] and (2 ** mask).tolist() == [2, 1] and (mask // 2).dtype == np.int64
    assert (mask + mask).dtype == np.bool_ and (mask / tl.tensor([True, True])).tolist() == [1.0, 0.0]


def test_integer_numbers_wrap_into_the_tensors_dtype_as_pytorch_casts_them():
    assert (tl.tensor(np.array([3, 0, 255], np.uint8)) + (-1)).tolist() == [2, 255, 254]
    assert (tl.tensor(np.array([3], np.uint8)) + 300).tolist() == [47]
    assert (tl.tensor(np.array([1], np.int8)) + 200).tolist() == [-55]
    with pytest.raises(OverflowError):
        tl.tensor([1]) + 2**70


def test_where_refuses_a_condition_that_is_not_bool_or_uint8():
    x = tl.tensor([1.0, 2.0])
    with pytest.raises(TypeError, match="condition must be a bool tensor \\(or a uint8 one\\), got dtype float32"):
        tl.where(x - 1, x, -x)
    with pytest.raises(TypeError, match="got dtype int64"):
        tl.where(tl.tensor([1, 0]), 1.0, 0.0)
    assert tl.where(tl.tensor(np.array([1, 0], np.uint8)), x, -x).tolist() == [1.0, -2.0]


# ---- logical and bitwise ops --------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.int64, np.uint8, np.bool_])
def test_logical_ops_match_numpy_for_any_dtype(dtype):
    a = (integers((3, 4), np.int64, 13) % 3).astype(dtype)
    b = (integers((4,), np.int64, 14) % 2).astype(dtype)
    for name in ("logical_and", "logical_or", "logical_xor"):
        out = getattr(tl, name)(tl.tensor(a), tl.tensor(b))
        assert out.dtype == np.bool_
        np.testing.assert_array_equal(out.numpy(), getattr(np, name)(a, b))
        np.testing.assert_array_equal(getattr(tl.tensor(a), name)(tl.tensor(b)).numpy(), getattr(np, name)(a, b))
    np.testing.assert_array_equal(tl.tensor(a).logical_not().numpy(), np.logical_not(a))
    assert tl.logical_not(tl.tensor([np.nan, 0.0])).tolist() == [False, True]  # NaN is nonzero
    with pytest.raises(TypeError, match="logical_or: other must be a Tensor, got int"):
        tl.logical_or(tl.tensor(a), 1)


@pytest.mark.parametrize("dtype", [np.int64, np.int16, np.uint8, np.bool_])
def test_bitwise_ops_match_numpy(dtype):
    a, b = integers((3, 4), dtype, 15), integers((4,), dtype, 16)
    x, y = tl.tensor(a), tl.tensor(b)
    for name in ("and", "or", "xor"):
        expected = getattr(np, f"bitwise_{name}")(a, b)
        for out in (getattr(tl, f"bitwise_{name}")(x, y), getattr(x, f"bitwise_{name}")(y)):
            assert out.dtype == dtype
            np.testing.assert_array_equal(out.numpy(), expected)
    np.testing.assert_array_equal(tl.bitwise_not(x).numpy(), np.invert(a))
    np.testing.assert_array_equal((~x).numpy(), np.invert(a))


def test_bitwise_promotion_reflected_operators_and_refusals():
    mask, u8 = tl.tensor([True, False]), tl.tensor(np.array([3, 0, 255], np.uint8))
    assert (True & mask).tolist() == [True, False] and (mask & 1).dtype == np.int64 and (1 | mask).tolist() == [1, 1]
    assert (u8 & -1).tolist() == [3, 0, 255] and (u8 & -1).dtype == np.uint8  # -1 is 255 in uint8
    assert (3 ^ u8).tolist() == [0, 3, 252] and (u8 | tl.tensor([1, 1, 1])).dtype == np.int64
    for fn in (lambda: tl.tensor([1.0]) & 1, lambda: mask & 1.5, lambda: ~tl.tensor([1.0])):
        with pytest.raises(TypeError, match="integer or bool"):
            fn()


def test_in_place_operators_write_into_the_tensor_other_references_see():
    mask = tl.tensor([True, False, False])
    alias = mask
    mask |= tl.tensor([False, True, False])
    mask &= tl.tensor([True, True, False])
    mask ^= tl.tensor([False, False, True])
    assert mask is alias and alias.tolist() == [True, True, True]
    x = tl.tensor([5, 7, -3])
    alias = x
    x //= 2
    assert alias.tolist() == [2, 3, -2]
    x %= 2
    assert alias.tolist() == [0, 1, 0]
    y = tl.tensor([1.5, 2.0])
    alias = y
    y **= 2
    assert y is alias and alias.tolist() == [2.25, 4.0]
    with pytest.raises(TypeError, match="can't be stored in a tensor of dtype bool"):
        mask &= 1
    with pytest.raises(TypeError, match="can't be stored in a tensor of dtype int64"):
        x **= 0.5


def test_contains():
    x = tl.tensor([[1, 2], [3, 4]])
    assert 3 in x and 5 not in x and tl.tensor(4) in x and tl.tensor([1, 2]) in x and np.int64(2) in x
    assert float("nan") not in tl.tensor([float("nan")])
    with pytest.raises(TypeError, match="'in' takes a tensor or a number, got str"):
        "a" in x


# ---- cumprod ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("shape", SHAPES)
def test_cumprod_matches_numpy(dtype, shape):
    data = random(shape, 17, dtype)
    for dim in range(len(shape)):
        assert_matches(tl.cumprod(tl.tensor(data), dim), np.cumprod(data.astype(np.float64), dim), dtype)
    assert_matches(tl.tensor(data).cumprod(-1, dtype=tl.float64), np.cumprod(data.astype(np.float64), -1), np.float64)
    assert tl.gradcheck(lambda t: t.cumprod(-1), [leaf(data)])


@pytest.mark.parametrize("row", [[2.0, 0.0, 3.0, 0.0, 4.0], [0.0, 1.5, -2.0], [1.5, -2.0, 0.0], [0.0, 0.0, 2.0],
                                 [3.0, 0.0]])
def test_cumprod_gradient_with_zeros(row):
    data = np.array([row, np.arange(1.0, len(row) + 1)])
    assert tl.gradcheck(lambda t: t.cumprod(1), [leaf(data)])
    assert tl.gradcheck(lambda t: t.cumprod(0), [leaf(data.T)])
    x = leaf(np.array([2.0, 0.0, 3.0, 0.0, 4.0]))
    x.cumprod(0).backward(tl.tensor([1.0, 2.0, 3.0, 4.0, 5.0], dtype=tl.float64))
    assert x.grad.tolist() == [1.0, 22.0, 0.0, 0.0, 0.0]  # PyTorch's


# ---- indexing helpers ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("shape", SHAPES)
def test_masked_select_take_match_numpy(dtype, shape):
    data = random(shape, 19, dtype)
    mask = random(shape[-1:], 20) > 0
    expected = np.broadcast_to(data, shape)[np.broadcast_to(mask, shape)]
    assert_matches(tl.masked_select(tl.tensor(data), tl.tensor(mask)), expected.astype(np.float64), dtype)
    assert_matches(tl.tensor(data[..., :1]).masked_select(tl.tensor(np.broadcast_to(mask, shape).copy())),
                   np.broadcast_to(data[..., :1], shape)[np.broadcast_to(mask, shape)].astype(np.float64), dtype)
    index = np.random.default_rng(21).integers(-data.size, data.size, (2, 3))
    assert_matches(tl.tensor(data).take(tl.tensor(index)), data.reshape(-1)[index].astype(np.float64), dtype)
    assert tl.gradcheck(lambda t: t.masked_select(tl.tensor(mask)), [leaf(data)])
    assert tl.gradcheck(lambda t: tl.take(t, tl.tensor(np.concatenate([index.reshape(-1), index.reshape(-1)]))),
                        [leaf(data)])


def test_masked_select_and_take_refusals():
    x = tl.tensor([[1.0, 2.0], [3.0, 4.0]])
    with pytest.raises(TypeError, match="mask must be a bool tensor, got uint8"):
        x.masked_select(tl.tensor(np.array([1, 0], np.uint8)))
    with pytest.raises(ValueError, match="does not broadcast"):
        x.masked_select(tl.tensor([True, False, True]))
    with pytest.raises(TypeError, match="take: index must be an int64 tensor, got int32"):
        x.take(tl.tensor([0], dtype=tl.int32))
    with pytest.raises(IndexError, match="take: index 4 is out of range for a tensor of 4 elements"):
        x.take(tl.tensor([4]))


@pytest.mark.parametrize("dtype", FLOATS)
def test_repeat_interleave_tile_broadcast_to_match_numpy(dtype):
    data = random((3, 4), 23, dtype)
    ref = data.astype(np.float64)
    assert_matches(tl.tensor(data).repeat_interleave(2), np.repeat(ref, 2), dtype)
    counts = np.array([1, 0, 3])
    assert_matches(tl.repeat_interleave(tl.tensor(data), tl.tensor(counts), dim=0), np.repeat(ref, counts, 0), dtype)
    assert_matches(tl.tensor(data).repeat_interleave(tl.tensor([2]), dim=-1), np.repeat(ref, 2, -1), dtype)
    assert_matches(tl.tile(tl.tensor(data), (2, 1, 3)), np.tile(ref, (2, 1, 3)), dtype)
    assert_matches(tl.tensor(data).tile(2), np.tile(ref, (1, 2)), dtype)  # fewer dims: 1s in front
    assert_matches(tl.broadcast_to(tl.tensor(data[:1]), (2, 3, 4)), np.broadcast_to(ref[:1], (2, 3, 4)), dtype)
    assert_matches(tl.tensor(data[:, :1]).broadcast_to(3, -1), ref[:, :1], dtype)
    assert tl.gradcheck(lambda t: t.repeat_interleave(tl.tensor(counts), dim=0), [leaf(ref)])
    assert tl.gradcheck(lambda t: t.tile((2, 1, 3)), [leaf(ref)])
    assert tl.gradcheck(lambda t: tl.broadcast_to(t, (2, 3, 4)), [leaf(ref[:1])])


def test_repeat_interleave_forms_and_refusals():
    assert tl.repeat_interleave(tl.tensor([2, 0, 1])).tolist() == [0, 0, 2]
    assert tl.tensor(5).repeat_interleave(3).tolist() == [5, 5, 5]
    assert tl.tensor([1, 2]).repeat_interleave(2, output_size=4).tolist() == [1, 1, 2, 2]
    x = tl.tensor([[1, 2], [3, 4]])
    with pytest.raises(ValueError, match="repeats must have the input's size 2 along dim 0"):
        x.repeat_interleave(tl.tensor([1, 2, 3]), dim=0)
    with pytest.raises(ValueError, match="repeats must be non-negative, got -1"):
        x.repeat_interleave(-1)
    with pytest.raises(TypeError, match="repeats must be an int or a 0-d or 1-D integer tensor"):
        x.repeat_interleave(tl.tensor([1.0, 2.0]))
    with pytest.raises(ValueError, match="output_size=5 but the repeats give 8"):
        x.repeat_interleave(2, output_size=5)
    with pytest.raises(ValueError, match="does not match the tensor's size 2"):
        tl.broadcast_to(tl.tensor([1, 2]), (3,))


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("dim", [0, 1, -1])
def test_index_add_index_fill_match_numpy(dtype, dim):
    data = random((3, 4), 29, dtype)
    axis = dim % 2
    index = np.array([0, 2, 0, 1])[: data.shape[axis] + 1] % data.shape[axis]
    source_shape = list(data.shape)
    source_shape[axis] = len(index)
    source = random(source_shape, 30, dtype)
    expected = data.astype(np.float64)
    np.add.at(expected, (slice(None),) * axis + (index,), -2 * source.astype(np.float64))
    assert_matches(tl.index_add(tl.tensor(data), dim, tl.tensor(index), tl.tensor(source), alpha=-2), expected, dtype)
    x = tl.tensor(data)
    assert x.index_add_(dim, tl.tensor(index, dtype=tl.int32), tl.tensor(source), alpha=-2) is x
    assert_matches(x, expected, dtype)
    filled = data.astype(np.float64)
    filled[(slice(None),) * axis + (np.array([0, -1]),)] = 5.5
    assert_matches(tl.tensor(data).index_fill(dim, tl.tensor([0, -1]), 5.5), filled, dtype)
    assert tl.gradcheck(lambda t, s: t.index_add(dim, tl.tensor(index), s, alpha=-2),
                        [leaf(data), leaf(source)])
    assert tl.gradcheck(lambda t, v: t.index_fill(dim, tl.tensor([1, 1, 0]), v), [leaf(data), leaf(2.0)])


def test_index_add_index_fill_in_place_and_refusals():
    x = tl.tensor([[1, 2], [3, 4]])
    assert x.index_fill_(0, tl.tensor([1]), 2.7) is x and x.tolist() == [[1, 2], [2, 2]]  # cast to int64
    assert tl.tensor(3.0).index_fill(0, tl.tensor([0]), 1.0).item() == 1.0
    w = leaf(np.zeros((3, 2)))
    out = tl.zeros(3, 2, dtype=tl.float64)
    out.index_add_(0, tl.tensor([0, 0]), w[:2] * 2)
    out.sum().backward()
    assert w.grad.tolist() == [[2, 2], [2, 2], [0, 0]]
    y = tl.zeros(3, 2)
    for fn, error, message in [
        (lambda: y.index_add(0, tl.tensor([-1]), tl.ones(1, 2)), IndexError, "index -1 is out of range for dim 0"),
        (lambda: y.index_add(0, tl.tensor([0]), tl.ones(2, 2)), ValueError, "source must have shape \\(1, 2\\)"),
        (lambda: y.index_add(0, tl.tensor([0]), tl.ones(1, 2, dtype=tl.float64)), TypeError, "source must have the"),
        (lambda: y.index_add(0, tl.tensor(np.array([0], np.uint8)), tl.ones(1, 2)), TypeError, "int32 or int64"),
        (lambda: y.index_fill(0, tl.tensor([3]), 1.0), IndexError, "index 3 is out of range for dim 0 of size 3"),
        (lambda: y.index_fill(0, tl.tensor([0], dtype=tl.int32), 1.0), TypeError, "index must be an int64 tensor"),
        (lambda: y.index_fill(0, tl.tensor([[0]]), 1.0), ValueError, "index must be 0-d or 1-D"),
        (lambda: y.index_fill(0, tl.tensor([0]), tl.tensor([1.0])), ValueError, "value must be a number or a 0-d"),
        (lambda: y.index_fill(2, tl.tensor([0]), 1.0), IndexError, "dim 2 is out of range")]:
        with pytest.raises(error, match=message):
            fn()


# ---- matrices: diagonal, mT, mv, addmm ---------------------------------------------------------------------
@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("offset,dim1,dim2", [(0, 0, 1), (1, 1, 2), (-1, 2, 0), (2, -1, -3), (9, 0, 1)])
def test_diagonal_matches_numpy(dtype, offset, dim1, dim2):
    data = random((2, 3, 4), 31, dtype)
    expected = np.diagonal(data.astype(np.float64), offset, dim1, dim2)
    assert_matches(tl.tensor(data).diagonal(offset, dim1, dim2), expected, dtype)
    assert_matches(tl.diagonal(tl.tensor(data), offset=offset, dim1=dim1, dim2=dim2), expected, dtype)
    assert tl.gradcheck(lambda t: t.diagonal(offset, dim1, dim2), [leaf(data)])


def test_diagonal_and_mt_refusals():
    with pytest.raises(ValueError, match="dim1 and dim2 must differ, got 1 and -2"):
        tl.zeros(2, 3, 4).diagonal(0, 1, -2)
    with pytest.raises(IndexError, match="dim2=1 is out of range for a tensor of 1 dimensions"):
        tl.zeros(3).diagonal()
    with pytest.raises(ValueError, match="mT needs a matrix or a batch of matrices, got a 1-d tensor"):
        tl.zeros(3).mT
    x = tl.tensor(random((2, 3, 4), 32))
    np.testing.assert_array_equal(x.mT.numpy(), np.swapaxes(x.numpy(), -1, -2))


@pytest.mark.parametrize("dtype", FLOATS)
def test_mv_addmm_match_numpy(dtype):
    m, v, n = random((3, 4), 33, dtype), random((4,), 34, dtype), random((4, 2), 35, dtype)
    bias = random((2,), 36, dtype)
    ref = [a.astype(np.float64) for a in (m, v, n, bias)]
    assert_matches(tl.mv(tl.tensor(m), tl.tensor(v)), ref[0] @ ref[1], dtype)
    assert_matches(tl.tensor(m).mv(tl.tensor(v)), ref[0] @ ref[1], dtype)
    assert_matches(tl.addmm(tl.tensor(bias), tl.tensor(m), tl.tensor(n), beta=2, alpha=-0.5),
                   2 * ref[3] - 0.5 * ref[0] @ ref[2], dtype)
    assert_matches(tl.tensor(bias).addmm(tl.tensor(m), tl.tensor(n)), ref[3] + ref[0] @ ref[2], dtype)
    nan_bias = tl.tensor(np.full(2, np.nan, dtype))
    assert_matches(tl.addmm(nan_bias, tl.tensor(m), tl.tensor(n), beta=0), ref[0] @ ref[2], dtype)  # ignored
    assert tl.gradcheck(tl.mv, [leaf(ref[0]), leaf(ref[1])])
    assert tl.gradcheck(lambda b, x, y: tl.addmm(b, x, y, beta=-1.5, alpha=2),
                        [leaf(ref[3]), leaf(ref[0]), leaf(ref[2])])


def test_mv_addmm_integers_and_refusals():
    i = tl.tensor([[1, 2], [3, 4]])
    assert tl.addmm(tl.tensor([1, 1]), i, i, alpha=2).tolist() == [[15, 21], [31, 45]]
    with pytest.raises(ValueError, match="size mismatch"):
        tl.mv(tl.ones(2, 3), tl.ones(2))
    with pytest.raises(ValueError, match="vec must be a 1-D tensor"):
        tl.mv(tl.ones(2, 3), tl.ones(3, 1))
    with pytest.raises(ValueError, match="shape \\(3,\\) does not broadcast to the product's shape \\(2, 2\\)"):
        tl.addmm(tl.ones(3), tl.ones(2, 3), tl.ones(3, 2))
    with pytest.raises(ValueError, match="mat1 must be a matrix"):
        tl.addmm(tl.ones(2), tl.ones(3), tl.ones(3, 2))


# ---- creation: meshgrid, Size, tensor/as_tensor, arange, zeros(size=), multinomial -------------------------
@pytest.mark.parametrize("indexing", ["ij", "xy"])
@pytest.mark.parametrize("sizes", [(3,), (3, 4), (2, 3, 4)])
def test_meshgrid_matches_numpy(indexing, sizes):
    vectors = [random(n, 37 + i) for i, n in enumerate(sizes)]
    grids = tl.meshgrid(*[tl.tensor(v) for v in vectors], indexing=indexing)
    for grid, expected in zip(grids, np.meshgrid(*vectors, indexing=indexing)):
        assert_matches(grid, expected, np.float64)
    listed = tl.meshgrid([tl.tensor(v) for v in vectors], indexing=indexing)
    assert [g.shape for g in listed] == [grids[0].shape] * len(sizes)
    assert tl.gradcheck(lambda *ts: tl.stack(tl.meshgrid(*ts, indexing=indexing)), [leaf(v) for v in vectors])


def test_meshgrid_refusals_and_0d_inputs():
    assert [g.shape for g in tl.meshgrid(tl.tensor(1.0), tl.ones(3), indexing="ij")] == [(1, 3), (1, 3)]
    for args, error, message in [((tl.ones(2, 2),), ValueError, "expects 0-d or 1-D tensors"),
                                 ((tl.ones(2), tl.tensor([1, 2])), TypeError, "must share a dtype"),
                                 ((), ValueError, "at least one tensor")]:
        with pytest.raises(error, match=message):
            tl.meshgrid(*args, indexing="ij")
    with pytest.raises(ValueError, match="indexing must be 'ij' or 'xy', got 'ab'"):
        tl.meshgrid(tl.ones(2), indexing="ab")


def test_size_is_a_tuple_of_ints():
    size = tl.Size([2, 3, tl.tensor(4)])
    assert size == (2, 3, 4) and isinstance(size, tuple) and size.numel() == 24 and tl.Size().numel() == 1
    assert repr(size) == "tensorlib.Size([2, 3, 4])" and repr(size[1:]) == "tensorlib.Size([3, 4])" and size[0] == 2
    assert isinstance(size + (5,), tl.Size) and isinstance((1,) + size, tl.Size)
    assert tl.zeros(tl.Size([2, 3])).shape == (2, 3)
    with pytest.raises(TypeError, match="Size takes an iterable of ints \\(item 0 is float 2.0\\)"):
        tl.Size([2.0])


def test_tensor_keeps_numpy_scalar_dtypes_as_pytorch():
    assert tl.tensor([np.float64(1.5)]).dtype == np.float64
    assert tl.tensor([1.0, np.float64(2.0)]).dtype == np.float64
    assert tl.tensor([np.float32(1.5), 2.5]).dtype == np.float32
    assert tl.tensor([[np.int32(1)], [np.int32(2)]]).dtype == np.int32
    assert tl.tensor([np.int32(1), 2]).dtype == np.int64
    assert tl.tensor([np.uint8(1), np.int8(2)]).dtype == np.int16
    assert tl.tensor([np.float16(1), 2]).dtype == np.float16
    assert tl.tensor([np.array([1.0, 2.0]), np.array([3.0, 4.0])]).dtype == np.float64
    assert tl.tensor([1.0, 2]).dtype == np.float32 and tl.tensor([1, 2]).dtype == np.int64


def test_as_tensor_shares_a_numpy_arrays_memory_when_it_can():
    array = np.zeros(3)
    shared = tl.as_tensor(array)
    array[0] = 9.0
    shared[1] = 7.0
    assert shared.tolist() == [9.0, 7.0, 0.0] and array[1] == 7.0
    assert tl.as_tensor(array, dtype=tl.float64, device="cpu").array is array
    copied = tl.as_tensor(array, dtype=tl.float32)
    array[2] = 5.0
    assert copied.dtype == np.float32 and copied.tolist()[2] == 0.0
    t = tl.ones(2)
    assert tl.as_tensor(t) is t and tl.as_tensor([1, 2]).dtype == np.int64


def test_arange_takes_0d_tensors_and_refuses_a_range_against_the_step():
    assert tl.arange(tl.tensor(4)).dtype == np.int64 and tl.arange(tl.tensor(4)).tolist() == [0, 1, 2, 3]
    assert tl.arange(tl.tensor(1), tl.tensor(4.5)).dtype == np.float32
    assert tl.arange(0, 10, tl.tensor(3)).tolist() == [0, 3, 6, 9]
    assert tl.arange(5, 0, -2).tolist() == [5, 3, 1] and tl.arange(3, 3).shape == (0,)
    for args, error, message in [((5, 0), ValueError, "runs against the sign of step=1"),
                                 ((0, 5, -1), ValueError, "runs against the sign of step=-1"),
                                 ((0, float("inf")), ValueError, "end must be finite, got inf"),
                                 ((tl.tensor([5]),), TypeError, "must be a number or a 0-d tensor"),
                                 ((0, 5, 0), ValueError, "step must be nonzero")]:
        with pytest.raises(error, match=message):
            tl.arange(*args)


def test_zeros_ones_empty_take_size():
    assert tl.zeros(size=(2, 3)).shape == (2, 3) and tl.ones(size=[2], dtype=tl.int32).dtype == np.int32
    assert tl.empty(size=(0, 3)).shape == (0, 3) and tl.zeros(size=4).shape == (4,)
    assert tl.ones(size=(2,)).tolist() == [1.0, 1.0] and tl.zeros(2, 3).shape == (2, 3)
    with pytest.raises(TypeError, match="got the size both positionally"):
        tl.zeros(2, size=(2, 3))


def test_multinomial_draws():
    weights = tl.tensor([[0.0, 1.0, 3.0, 0.0, 6.0], [5.0, 0.0, 0.0, 5.0, 0.0]])
    draws = tl.multinomial(weights, 2000, replacement=True, generator=tl.Generator().manual_seed(0))
    assert draws.shape == (2, 2000) and draws.dtype == np.int64
    frequencies = np.stack([np.bincount(row, minlength=5) for row in draws.numpy()]) / 2000
    np.testing.assert_allclose(frequencies, [[0, 0.1, 0.3, 0, 0.6], [0.5, 0, 0, 0.5, 0]], atol=0.04)
    rows = tl.multinomial(weights, 3).numpy()  # without replacement: distinct, positive weights first
    assert all(len(set(row)) == 3 for row in rows) and set(rows[1, :2]) == {0, 3}
    assert tl.multinomial(tl.tensor([0.0, 2.0]), 1).item() == 1
    again = [weights.multinomial(4, generator=tl.Generator().manual_seed(5)).tolist() for _ in range(2)]
    assert again[0] == again[1]
    tl.manual_seed(3)
    first = tl.multinomial(tl.ones(6), 6)
    assert sorted(first.tolist()) == list(range(6))
    for args, error, message in [((tl.ones(2, 2, 2), 1), ValueError, "1-D or 2-D"),
                                 ((tl.tensor([1, 2]), 1), TypeError, "floating-point"),
                                 ((tl.ones(3), 0), ValueError, "num_samples must be positive, got 0"),
                                 ((tl.ones(3), 4), ValueError, "cannot draw 4 samples without replacement from 3"),
                                 ((tl.tensor([1.0, -1.0]), 1), ValueError, "finite and non-negative"),
                                 ((tl.tensor([1.0, np.nan]), 1), ValueError, "finite and non-negative"),
                                 ((tl.zeros(2), 1), ValueError, "positive sum"),
                                 ((tl.ones(3), 1.0), TypeError, "num_samples must be an int")]:
        with pytest.raises(error, match=message):
            tl.multinomial(*args)


# ---- strides, casts, threads, cuDNN flags -------------------------------------------------------------------
def test_stride_and_the_byte_char_short_casts():
    x = tl.zeros(2, 3, 4)
    assert x.stride() == (12, 4, 1) and x.stride(-1) == 1 and x.transpose(0, 2).stride() == (1, 4, 12)
    assert tl.zeros(3, 1).expand(3, 4).stride() == (1, 0) and tl.tensor(1.0).stride() == ()
    assert tl.tensor([3.0, 300.0]).byte().dtype == np.uint8 and tl.tensor([3.0, 300.0]).byte().tolist() == [3, 44]
    assert tl.tensor([200]).char().tolist() == [-56] and tl.tensor([70000]).short().tolist() == [4464]
    assert tl.tensor([1.5]).char().dtype == np.int8 and tl.tensor([1.5]).short().dtype == np.int16


def test_set_num_threads_and_the_cudnn_flags():
    threads = tl.get_num_threads()
    try:
        tl.set_num_threads(1)
        assert tl.get_num_threads() == 1
        a = tl.tensor(random((8, 8), 41))
        np.testing.assert_allclose((a @ a).numpy(), a.numpy() @ a.numpy(), rtol=1e-12)
        tl.set_num_threads(10_000)  # more than the pool: all of its threads
        assert tl.get_num_threads() >= 1
    finally:
        tl.set_num_threads(threads)
    assert tl.get_num_threads() == threads
    for bad, error in [(0, ValueError), (-1, ValueError), (1.5, TypeError), (True, TypeError)]:
        with pytest.raises(error, match="set_num_threads: n must be"):
            tl.set_num_threads(bad)
    cudnn = tl.backends.cudnn
    assert (cudnn.benchmark, cudnn.deterministic, cudnn.enabled, cudnn.is_available()) == (False, False, True, False)
    try:
        cudnn.benchmark = cudnn.deterministic = True
        assert tl.backends.cudnn.benchmark and tl.backends.cudnn.deterministic
    finally:
        cudnn.benchmark = cudnn.deterministic = False


# ---- the same ops on the "cuda" device ----------------------------------------------------------------------
def test_new_ops_on_cuda_match_the_cpu(tier):
    def run(device):
        x = tl.tensor(random((3, 4), 43), device=device, requires_grad=True)
        v = tl.tensor(random((4,), 44), device=device, requires_grad=True)
        index = tl.tensor([0, 2, 0], device=device)
        z = x * tl.tensor(np.array([1.0, 0.0, 1.0, 1.0]), device=device)  # a zero for cumprod's gradient
        out = (tl.fmod(x, v + 3) + tl.atan2(x, v) + tl.log2(x.abs() + 1)
               + tl.nan_to_num(x / 0.0, posinf=1.0, neginf=-1.0) + tl.div(x, v, rounding_mode="floor")
               + z.cumprod(1) + tl.broadcast_to(v, (3, 4))
               + x.index_add(0, index, x * 2) + x.index_fill(1, tl.tensor([1], device=device), 0.5)
               + tl.addmm(v[:1], x[:, :2], x[:2], beta=0.5) + x.diagonal().sum() + x.tile((1, 1))
               + tl.meshgrid(v[:3], v, indexing="ij")[0] + tl.mv(x, v).unsqueeze(1)
               + x.repeat_interleave(tl.tensor([2, 1, 0], device=device), dim=0)[:3]).sum()
        flags = [tl.logical_xor(x > 0, v < 0), (x > 0) & (v < 0), x.masked_select(x > 0) > 0,
                 tl.tensor(np.array([1, 255], np.uint8), device=device) > -1, x.take(index) > 0]
        (out + tl.logsumexp(x[:, :0], 1).clamp(-1, 1).sum()).backward()
        return ([out.item(), x.sum(dtype=tl.float32).item(), tl.tensor([1, 2, 3], device=device).sum().dtype.str]
                + [f.tolist() for f in flags], x.grad.cpu().numpy(), v.grad.cpu().numpy())
    with np.errstate(divide="ignore", invalid="ignore"):
        (cpu_values, cpu_x, cpu_v), (values, grad_x, grad_v) = run("cpu"), run("cuda")
    np.testing.assert_allclose(values[0], cpu_values[0], rtol=1e-12)
    assert values[1:] == cpu_values[1:]
    np.testing.assert_allclose(grad_x, cpu_x, rtol=1e-12)
    np.testing.assert_allclose(grad_v, cpu_v, rtol=1e-12)
    draws = tl.multinomial(tl.tensor([0.0, 1.0, 1.0], device="cuda"), 2)
    assert draws.device == "cuda" and sorted(draws.tolist()) == [1, 2]


def test_equality_with_none_or_a_string_is_pythons_answer():
    t = tl.tensor([1.0, 2.0])
    assert (t == None) is False and (t != None) is True and (None == t) is False  # noqa: E711
    assert (t == "a") is False and t not in [None, "a"]
    assert (t == 1.0).numpy().tolist() == [True, False]
