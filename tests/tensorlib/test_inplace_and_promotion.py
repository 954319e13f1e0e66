"""In-place ops and the saved-value check, grad mode, ``.grad`` assignment, PyTorch's dtype promotion, the
gradients at edge points (clamp bounds, pow at 0, var/std of constant or too few values, max with NaN), and
the smaller ops (clone, //, %, logsumexp, cumsum, gather, mm, bmm, t). Expected values that are conventions
rather than arithmetic are PyTorch 2.13's."""

import numpy as np
import pytest

import tensorlib as tl


def leaf(values, dtype=np.float64):
    return tl.tensor(np.asarray(values, dtype=dtype), requires_grad=True)


# ---- in-place ops -------------------------------------------------------------------------------------
def test_inplace_operators_write_into_the_same_memory():
    a = tl.ones(3)
    alias, view = a, a[1:]
    a += tl.tensor([1.0, 2.0, 3.0])
    assert a is alias
    np.testing.assert_array_equal(alias.numpy(), [2, 3, 4])
    np.testing.assert_array_equal(view.numpy(), [3, 4])
    a -= 1
    a *= 2
    a /= 4
    np.testing.assert_array_equal(a.numpy(), [0.5, 1.0, 1.5])
    a.add_(tl.ones(3), alpha=2).sub_(1, alpha=0.5).mul_(2).div_(2)
    np.testing.assert_array_equal(a.numpy(), [2.0, 2.5, 3.0])
    a.clamp_(max=2.5).relu_()
    np.testing.assert_array_equal(a.numpy(), [2.0, 2.5, 2.5])


def test_an_update_under_no_grad_reaches_the_parameter():
    w = leaf([1.0, 2.0, 3.0])
    same = w
    (w * w).sum().backward()
    with tl.no_grad():
        w -= 0.1 * w.grad
    assert w is same and w.requires_grad and w.is_leaf
    np.testing.assert_allclose(same.detach().numpy(), [0.8, 1.6, 2.4])


@pytest.mark.parametrize("change", [
    lambda w: w.add_(1), lambda w: w.mul_(2), lambda w: w.zero_(), lambda w: w.fill_(2.0), lambda w: w.copy_(w.detach()),
])
def test_a_leaf_that_requires_grad_refuses_inplace_changes_outside_no_grad(change):
    w = leaf([1.0, 2.0])
    with pytest.raises(RuntimeError, match="leaf tensor that requires grad"):
        change(w)
    with tl.no_grad():
        change(w)  # allowed there, as an optimizer's update


def test_inplace_ops_on_intermediate_tensors_are_differentiated():
    x = leaf([1.0, 2.0, 3.0])
    w = leaf([0.5, -1.0, 2.0])
    y = x * 2
    y += 1
    y *= w  # the old y is needed for w's gradient: kept aside before the write
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * w.detach().numpy())
    np.testing.assert_allclose(w.grad.numpy(), 2 * x.detach().numpy() + 1)
    assert y.grad_fn is not None


def test_ops_that_read_a_tensor_before_its_inplace_change_keep_their_gradient_path():
    # the gradient of y = x + 2 (computed before x.mul_) must not pass through the multiplication
    a = leaf([1.0, 2.0])
    x = a * 1.0
    y = x + 2.0
    x.mul_(3.0)
    y.sum().backward()
    np.testing.assert_array_equal(a.grad.numpy(), [1.0, 1.0])

    a = leaf([1.0, 2.0])
    x = a * 1.0
    z = x.exp()
    x.clamp_(max=1.5)
    (z.sum() + x.sum()).backward()
    np.testing.assert_allclose(a.grad.numpy(), np.exp([1.0, 2.0]) + [1.0, 0.0])


@pytest.mark.parametrize("update, gradient", [
    (lambda x: x.__iadd__(x.exp()), lambda a: 1 + np.exp(a)),  # h += f(h)
    (lambda x: x.__iadd__(x), lambda a: np.full_like(a, 2.0)),
    (lambda x: x.mul_(x), lambda a: 2 * a),
])
def test_an_inplace_op_whose_operand_is_the_tensor_itself(update, gradient):
    a = leaf([0.5, 1.0, 3.0])
    x = a * 1.0
    update(x)
    x.sum().backward()
    np.testing.assert_allclose(a.grad.numpy(), gradient(a.detach().numpy()))


def test_retain_grad_follows_the_tensor_through_an_inplace_change():
    a = leaf([1.0, 3.0])
    x = a * 2
    x.retain_grad()
    x += 1
    (x * x).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [6.0, 14.0])
    np.testing.assert_array_equal(a.grad.numpy(), [12.0, 28.0])


def test_a_value_saved_for_backward_and_changed_in_place_is_refused():
    x = leaf([1.0, 2.0])
    y = x.exp()  # exp saves its output
    y += 1
    with pytest.raises(RuntimeError, match="changed by an in-place operation"):
        y.sum().backward()

    a = tl.tensor([1.0, 2.0], dtype=tl.float64)
    z = x * a  # x's gradient needs a
    a.zero_()
    with pytest.raises(RuntimeError, match="changed by an in-place operation"):
        z.sum().backward()

    b = tl.tensor([1.0, 2.0], dtype=tl.float64)
    s = x + b  # addition saves nothing: changing b afterwards is harmless
    b.zero_()
    s.sum().backward()


def test_detach_and_views_share_the_version_count():
    x = leaf([1.0, 2.0])
    y = x.sigmoid()
    y.detach().mul_(0)  # same memory as y, which sigmoid saved
    with pytest.raises(RuntimeError, match="in-place"):
        y.sum().backward()

    x = leaf([[1.0, 2.0], [3.0, 4.0]])
    y = x * 1.0
    y[0].mul_(2)  # a change through a view becomes the base's history, as in PyTorch
    y.reshape(4).add_(1)
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [[2.0, 2.0], [1.0, 1.0]])


def test_inplace_ops_check_dtype_shape_and_memory():
    with pytest.raises(TypeError, match="int64"):
        i = tl.tensor([1, 2])
        i += 0.5
    f = tl.ones(3)
    f += tl.ones(3, dtype=tl.float64)  # same kind: stored as float32
    assert f.dtype == tl.float32
    with pytest.raises(RuntimeError, match=r"\(2, 3\).*\(3,\)"):
        f += tl.ones(2, 3)
    with pytest.raises(RuntimeError, match="read-only"):
        tl.ones(1).expand(3).add_(1)


# ---- grad mode, .grad, retain_grad ---------------------------------------------------------------------
def test_set_grad_enabled_as_call_context_and_decorator():
    x = leaf([1.0])
    with tl.set_grad_enabled(False):
        assert not (x * 2).requires_grad
    assert tl.is_grad_enabled() and (x * 2).requires_grad
    tl.set_grad_enabled(False)
    try:
        assert not tl.is_grad_enabled()
    finally:
        tl.set_grad_enabled(True)

    @tl.set_grad_enabled(False)
    def double(t):
        return t * 2

    assert tl.is_grad_enabled()
    assert not double(x).requires_grad and not double(x).requires_grad
    assert tl.is_grad_enabled()
    with pytest.raises(TypeError, match="bool"):
        tl.set_grad_enabled("no")


def test_grad_assignment_is_checked():
    p = tl.zeros(3, 4, requires_grad=True)
    with pytest.raises(RuntimeError, match=r"shape \(4,\).*\(3, 4\)"):
        p.grad = tl.ones(4)
    with pytest.raises(RuntimeError, match="float64"):
        p.grad = tl.ones(3, 4, dtype=tl.float64)
    with pytest.raises(TypeError, match="ndarray"):
        p.grad = np.ones((3, 4), dtype=np.float32)
    p.grad = tl.ones(3, 4)
    p.grad = None


def test_retain_grad_keeps_an_intermediate_gradient():
    x = leaf([1.0, 2.0])
    y = x * 3
    y.retain_grad()
    (y * y).sum().backward()
    np.testing.assert_allclose(y.grad.numpy(), [6.0, 12.0])
    np.testing.assert_allclose(x.grad.numpy(), [18.0, 36.0])


def test_autograd_grad_returns_gradients_without_touching_dot_grad():
    x, w = leaf([1.0, 2.0]), leaf([3.0, -1.0])
    h = x * w
    y = (h * h).sum()
    gx, gh = tl.autograd.grad(y, [x, h], retain_graph=True)
    np.testing.assert_allclose(gx.numpy(), 2 * (x * w * w).detach().numpy())
    np.testing.assert_allclose(gh.numpy(), 2 * h.detach().numpy())
    assert x.grad is None and w.grad is None
    (gw,) = tl.autograd.grad([y, w.sum()], w)  # two outputs: their gradients add up
    np.testing.assert_allclose(gw.numpy(), 2 * (x * x * w).detach().numpy() + 1)
    unused = leaf([1.0])
    with pytest.raises(RuntimeError, match="not used"):
        tl.autograd.grad((x * 2).sum(), [x, unused])
    assert tl.autograd.grad((x * 2).sum(), [x, unused], allow_unused=True)[1] is None
    with pytest.raises(RuntimeError, match="shape"):
        tl.autograd.grad(x * 2, x)
    (g,) = tl.autograd.grad(x * 2, x, grad_outputs=tl.tensor([1.0, 10.0], dtype=tl.float64))
    np.testing.assert_allclose(g.numpy(), [2.0, 20.0])
    with pytest.raises(NotImplementedError, match="higher-order"):
        tl.autograd.grad((x * 2).sum(), x, create_graph=True)


def test_backward_with_inputs_fills_only_those():
    x, w = leaf([1.0, 2.0]), leaf([3.0, -1.0])
    (x * w).sum().backward(inputs=[w])
    assert x.grad is None
    np.testing.assert_allclose(w.grad.numpy(), [1.0, 2.0])


# ---- dtype promotion ------------------------------------------------------------------------------------
i64, f32, f64 = tl.int64, tl.float32, tl.float64


@pytest.mark.parametrize("make, expected", [
    (lambda: tl.tensor([1, 2]) + tl.tensor([1.0, 2.0]), f32),
    (lambda: tl.tensor([1.0, 2.0]) * np.float64(2.0), f32),
    (lambda: tl.tensor([1.0, 2.0]) + tl.tensor(2.5, dtype=f64), f32),
    (lambda: tl.tensor([1, 2]) * tl.tensor(2.5, dtype=f64), f64),
    (lambda: tl.tensor([1, 2], dtype=tl.int32) + tl.tensor(3), tl.int32),
    (lambda: tl.tensor([1, 2], dtype=tl.int32) + 3, tl.int32),
    (lambda: tl.tensor([1, 2], dtype=tl.uint8) + tl.tensor([1], dtype=np.int8), np.int16),
    (lambda: tl.tensor([True]) + tl.tensor([True]), tl.bool),
    (lambda: tl.tensor([True]) + 1, i64),
    (lambda: tl.tensor([True]) + 1.5, f32),
    (lambda: tl.tensor([1.0, 2.0], dtype=f64) * tl.tensor([1.0], dtype=f32), f64),
    (lambda: tl.tensor([1.0], dtype=tl.float16) * tl.tensor(3.0), tl.float16),
    (lambda: tl.tensor([1.0, 2.0]) ** tl.tensor([1, 2]), f32),
    (lambda: 2 ** tl.tensor([1, 2]), i64),
    (lambda: 2.0 ** tl.tensor([1, 2]), f32),
    (lambda: tl.tensor([1, 2]) / tl.tensor([2, 2]), f32),
    (lambda: tl.tensor([1, 2]).exp(), f32),
    (lambda: tl.tensor([1, 2]).sqrt(), f32),
    (lambda: tl.cat([tl.tensor([1]), tl.tensor([1.5])]), f32),
    (lambda: tl.stack([tl.tensor([1]), tl.tensor([1.5])]), f32),
    (lambda: tl.maximum(tl.tensor([1, 2]), tl.tensor([1.5, 0.5])), f32),
    (lambda: tl.where(tl.tensor([True, False]), 1.0, 0.0), f32),
    (lambda: tl.where(tl.tensor([True, False]), 1, 0), i64),
    (lambda: tl.where(tl.tensor([True, False]), tl.tensor([1, 2]), 0.5), f32),
    (lambda: tl.tensor([1, 2]).clamp(min=0.5), f32),
    (lambda: tl.ones(3).clamp(min=tl.tensor(0.5, dtype=f64)), f32),
])
def test_result_dtypes_follow_pytorch(make, expected):
    assert make().dtype == np.dtype(expected)


def test_integer_inputs_to_float_functions_give_right_values():
    np.testing.assert_allclose(tl.tensor([1, 2]).sigmoid().numpy(), [0.7310586, 0.8807971], rtol=1e-6)
    np.testing.assert_array_equal(tl.tensor([-2, 0, 3]).clamp(min=0.5).numpy(), [0.5, 0.5, 3.0])
    np.testing.assert_array_equal(tl.tensor([-2, 0, 3]).clamp(min=0).numpy(), [0, 0, 3])
    np.testing.assert_array_equal(tl.where(tl.tensor([True, False]), 1.0, 0.0).numpy(), [1.0, 0.0])


def test_matmul_refuses_mixed_dtypes():
    with pytest.raises(TypeError, match="float32 and float64"):
        tl.ones(2, 2) @ tl.ones(2, 2, dtype=tl.float64)


# ---- gradients at edge points -----------------------------------------------------------------------------
def test_clamp_with_tensor_bounds_passes_the_whole_gradient_at_the_bounds():
    x = leaf([-2.0, 0.0, 1.0, 3.0, 0.5, 0.5, 1.0])
    low = leaf([0.0, 0, 0, 0, 1, 1, 1])
    high = leaf([1.0, 1, 1, 1, 0, 1, 1])
    y = x.clamp(low, high)
    y.sum().backward()
    np.testing.assert_array_equal(y.detach().numpy(), [0, 0, 1, 1, 0, 1, 1])
    np.testing.assert_array_equal(x.grad.numpy(), [0, 1, 1, 0, 0, 0, 1])
    np.testing.assert_array_equal(low.grad.numpy(), [1, 0, 0, 0, 0, 0, 0])
    np.testing.assert_array_equal(high.grad.numpy(), [0, 0, 0, 1, 1, 0, 0])


def test_clamp_with_tensor_bounds_gradcheck():
    rng = np.random.default_rng(0)
    x = leaf(rng.choice([-1.5, -0.2, 0.3, 1.4], size=(3, 4)) + rng.uniform(-0.05, 0.05, (3, 4)))
    low = leaf(np.full((1, 4), -1.0) + rng.uniform(-0.05, 0.05, (1, 4)))
    high = leaf(np.full((3, 1), 1.0) + rng.uniform(-0.05, 0.05, (3, 1)))
    assert tl.gradcheck(lambda a, lo, hi: a.clamp(lo, hi), [x, low, high])


def test_pow_gradients_at_zero():
    x = leaf([0.0, 1.0])
    (x**0).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [0.0, 0.0])
    base, exponent = leaf([0.0, 0.0]), leaf([0.0, -1.0])
    with np.errstate(divide="ignore"):  # 0 ** -1 is inf, with NumPy's warning
        power = base**exponent
    power.sum().backward()
    np.testing.assert_array_equal(base.grad.numpy(), [0.0, -np.inf])
    np.testing.assert_array_equal(exponent.grad.numpy(), [0.0, -np.inf])
    exponent = leaf([2.0, -1.0])
    with np.errstate(divide="ignore"):
        power = 0.0**exponent
    power.sum().backward()
    np.testing.assert_array_equal(exponent.grad.numpy(), [0.0, -np.inf])  # a number base of 0
    exponent = leaf([2.0, 0.0, 1.0])
    (tl.tensor([-2.0, 0.0, 2.0], dtype=tl.float64) ** exponent).sum().backward()
    assert np.isnan(exponent.grad.numpy()[0])
    np.testing.assert_allclose(exponent.grad.numpy()[1:], [0.0, 2 * np.log(2)])


def test_var_and_std_at_their_edges():
    x = leaf([1.0])
    v = x.var()  # n - correction = 0: NaN, and a NaN gradient
    v.backward()
    assert np.isnan(v.item()) and np.isnan(x.grad.numpy()).all()
    x = leaf([1.0, 1.0, 1.0])
    x.std().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [0.0, 0.0, 0.0])
    rng = np.random.default_rng(1)
    data = rng.standard_normal((3, 4))
    assert tl.gradcheck(lambda t: t.std(1, correction=0), [leaf(data)])
    np.testing.assert_allclose(tl.tensor(data).std(1).numpy(), data.std(1, ddof=1))


def test_max_of_values_with_nan_sends_the_gradient_to_the_nan():
    x = leaf([1.0, np.nan, 2.0])
    x.max().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [0.0, 1.0, 0.0])
    x = leaf([3.0, 3.0, 1.0])
    x.max().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [0.5, 0.5, 0.0])


def test_reductions_over_an_empty_dim_list_and_of_0d_tensors():
    x = leaf(np.arange(12.0).reshape(3, 4))
    assert x.sum(dim=[]).shape == () and x.mean(dim=()).item() == 5.5
    x.mean(dim=[]).backward()
    np.testing.assert_allclose(x.grad.numpy(), np.full((3, 4), 1 / 12))
    s = tl.tensor(2.0)
    assert s.sum(0).item() == 2.0 and s.sum(-1).item() == 2.0
    values, indices = s.max(0)
    assert values.item() == 2.0 and indices.item() == 0 and s.argmax(0).item() == 0


# ---- the smaller ops --------------------------------------------------------------------------------------
def test_ops_along_one_dim_name_a_bad_dim():
    x = tl.randn(2, 3)
    for call in (lambda: x.max(dim=[]), lambda: x.max(dim=(0, 1)), lambda: x.argmax(dim=[0]),
                 lambda: x.cumsum(None), lambda: x.softmax((0, 1))):
        with pytest.raises(TypeError, match="dim must be one int"):
            call()


def test_clone_copies_and_passes_gradients():
    x = leaf([1.0, 2.0])
    c = x.clone()
    c.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [1.0, 1.0])
    with tl.no_grad():
        c.mul_(0)
    np.testing.assert_array_equal(x.detach().numpy(), [1.0, 2.0])


def test_floor_division_and_remainder():
    a = tl.tensor([5.0, -5.0])
    np.testing.assert_array_equal((a // 2).numpy(), [2.0, -3.0])
    np.testing.assert_array_equal((tl.tensor([5, -5]) // 2).numpy(), [2, -3])
    np.testing.assert_array_equal((a % 3).numpy(), [2.0, 1.0])
    np.testing.assert_array_equal((7 % tl.tensor([3, -3])).numpy(), [1, -2])
    with pytest.raises(ZeroDivisionError, match="integer division by zero"):
        tl.tensor([5]) // tl.tensor([0])
    with pytest.raises(ZeroDivisionError):
        tl.tensor([5]) % 0
    with np.errstate(divide="ignore"):  # floats follow IEEE, with NumPy's warning
        assert np.isinf((tl.tensor([5.0]) // 0).numpy()).all()
    x = leaf([2.3, -1.7, 4.1])
    with pytest.raises(RuntimeError, match="no gradient"):
        (x // 2).sum().backward()
    d = leaf([1.5, 2.5, -1.5])
    assert tl.gradcheck(lambda p, q: p % q, [x, d])


def test_logsumexp():
    rng = np.random.default_rng(2)
    data = rng.standard_normal((3, 4)) * 50
    expected = np.log(np.exp(data - data.max(1, keepdims=True)).sum(1)) + data.max(1)
    np.testing.assert_allclose(tl.tensor(data).logsumexp(1).numpy(), expected, rtol=1e-12)
    assert tl.logsumexp(tl.tensor(data), 1, keepdim=True).shape == (3, 1)
    rows = tl.tensor([[-np.inf, -np.inf], [0.0, -np.inf]]).logsumexp(1).numpy()
    assert rows[0] == -np.inf and rows[1] == 0.0
    assert tl.gradcheck(lambda t: t.logsumexp((0, 1)), [leaf(rng.standard_normal((3, 4)))])


def test_cumsum():
    rng = np.random.default_rng(3)
    data = rng.standard_normal((3, 4))
    np.testing.assert_allclose(tl.tensor(data).cumsum(1).numpy(), data.cumsum(1))
    assert tl.tensor([True, True]).cumsum(0).dtype == tl.int64
    assert tl.gradcheck(lambda t: t.cumsum(0), [leaf(data)])


def test_gather():
    rng = np.random.default_rng(4)
    data = rng.standard_normal((3, 4))
    index = tl.tensor([[0, 0, 3], [1, 2, 1]])  # smaller than the input along dim 0, repeated indices
    out = tl.tensor(data).gather(1, index)
    np.testing.assert_array_equal(out.numpy(), np.take_along_axis(data[:2], index.numpy(), 1))
    assert tl.gradcheck(lambda t: t.gather(1, index), [leaf(data)])
    x = leaf(data)
    x.gather(1, index).sum().backward()
    assert x.grad.numpy()[0, 0] == 2.0 and x.grad.numpy()[2].sum() == 0.0
    with pytest.raises(IndexError, match="out of range"):
        tl.tensor(data).gather(1, tl.tensor([[4]]))
    with pytest.raises(TypeError, match="integer"):
        tl.tensor(data).gather(1, tl.tensor([[0.0]]))


def test_mm_bmm_and_t():
    a, b = tl.randn(2, 3), tl.randn(3, 4)
    np.testing.assert_allclose(a.mm(b).numpy(), a.numpy() @ b.numpy(), rtol=1e-6)
    assert tl.bmm(tl.randn(5, 2, 3), tl.randn(5, 3, 4)).shape == (5, 2, 4)
    with pytest.raises(ValueError, match="2-D"):
        tl.mm(tl.randn(2, 2, 2), b)
    with pytest.raises(ValueError, match="same batch"):
        tl.bmm(tl.randn(5, 2, 3), tl.randn(4, 3, 4))
    assert a.t().shape == (3, 2) and tl.randn(3).t().shape == (3,)
    with pytest.raises(ValueError, match="at most 2"):
        tl.randn(2, 2, 2).t()


def test_a_refused_inplace_op_leaves_the_tensor_and_its_graph_as_they_were():
    a = leaf([1.0, 3.0])
    x = a * 2
    x.retain_grad()
    with pytest.raises(RuntimeError, match="broadcast shape"):
        x += tl.ones(2, 2, dtype=tl.float64)
    np.testing.assert_array_equal(x.detach().numpy(), [2.0, 6.0])
    (x * x).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [4.0, 12.0])
    np.testing.assert_array_equal(a.grad.numpy(), [8.0, 24.0])
