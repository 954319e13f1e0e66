"""Functions of your own in PyTorch's form: ``forward(ctx, ...)``/``backward(ctx, ...)`` on Tensors (or PyTorch 2's
``forward(...)`` with ``setup_context``), run by ``MyOp.apply``: values and gradients against float64 NumPy
references, gradcheck, the ctx API (``mark_dirty`` included), the checks on what backward returns, and use inside a
module's training step."""

import gc
import weakref

import numpy as np
import pytest

import nn
import nn.functional as F
import tensorlib as tl
from tensorlib import autograd
from tensorlib.autograd import Function

rng = np.random.default_rng(0)
SHAPES = [(5,), (3, 4), (2, 3, 5), (1, 7, 1)]
DTYPES = [tl.float32, tl.float64]


def tolerance(dtype):
    return dict(rtol=1e-4, atol=1e-6) if dtype == tl.float32 else dict(rtol=1e-12, atol=1e-12)


class MyReLU(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x.clamp(min=0)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * (x > 0)


class ScaledMul(Function):
    """alpha * x * y, with y broadcast against x; alpha is a number."""

    @staticmethod
    def forward(ctx, x, y, alpha):
        ctx.save_for_backward(x, y)
        ctx.alpha = alpha
        return x * y * alpha

    @staticmethod
    def backward(ctx, grad):
        x, y = ctx.saved_tensors
        gx = grad * y * ctx.alpha if ctx.needs_input_grad[0] else None
        gy = grad * x * ctx.alpha if ctx.needs_input_grad[1] else None  # broadcast shape: the engine sums it down
        return gx, gy, None


class SinCos(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x.sin(), x.cos()

    @staticmethod
    def backward(ctx, grad_sin, grad_cos):
        (x,) = ctx.saved_tensors
        return grad_sin * x.cos() - grad_cos * x.sin()


def draw(shape, dtype, requires_grad=True):
    return tl.tensor(rng.standard_normal(shape), dtype=dtype, requires_grad=requires_grad)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
def test_relu_values_and_gradient_match_the_reference(shape, dtype):
    x = draw(shape, dtype)
    weights = rng.standard_normal(shape)
    y = MyReLU.apply(x)
    reference = np.maximum(x.detach().numpy().astype(np.float64), 0)
    assert y.dtype == dtype and y.requires_grad and y.grad_fn.name == "MyReLUBackward"
    np.testing.assert_allclose(y.detach().numpy(), reference, **tolerance(dtype))
    (y * tl.tensor(weights, dtype=dtype)).sum().backward()
    expected = weights * (x.detach().numpy() > 0)
    assert x.grad.dtype == dtype
    np.testing.assert_allclose(x.grad.numpy(), expected, **tolerance(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape, y_shape", [((4, 3), (4, 3)), ((2, 3, 4), (3, 1)), ((5,), ())])
def test_two_inputs_and_a_number_broadcast_and_sum_down(shape, y_shape, dtype):
    x, y = draw(shape, dtype), draw(y_shape, dtype)
    out = ScaledMul.apply(x, y, 2.5)
    xs, ys = x.detach().numpy().astype(np.float64), y.detach().numpy().astype(np.float64)
    np.testing.assert_allclose(out.detach().numpy(), 2.5 * xs * ys, **tolerance(dtype))
    out.sum().backward()
    assert x.grad.shape == shape and y.grad.shape == y_shape
    np.testing.assert_allclose(x.grad.numpy(), np.broadcast_to(2.5 * ys, shape), **tolerance(dtype))
    np.testing.assert_allclose(y.grad.numpy(), sum_to(np.broadcast_to(2.5 * xs, shape), y_shape), **tolerance(dtype))


def sum_to(array, shape):
    """``array`` summed down to ``shape`` (the reverse of broadcasting ``shape`` up to ``array.shape``)."""
    array = array.sum(axis=tuple(range(array.ndim - len(shape))))
    return array.sum(axis=tuple(i for i, n in enumerate(shape) if n == 1), keepdims=True).reshape(shape)


def test_needs_input_grad_and_grad_mode_inside_forward():
    seen = []

    class Probe(Function):
        @staticmethod
        def forward(ctx, x, y, k):
            seen.append((ctx.needs_input_grad, tl.is_grad_enabled(), (x * 2).requires_grad))
            return x * y * k

        @staticmethod
        def backward(ctx, grad):
            seen.append(ctx.needs_input_grad)
            return grad, None, None

    x, y = draw((3,), tl.float64), draw((3,), tl.float64, requires_grad=False)
    Probe.apply(x, y, 3).sum().backward()
    with tl.no_grad():  # as PyTorch: needs_input_grad says what the inputs require, whatever the mode
        out = Probe.apply(x, y, 3)
    assert seen == [((True, False, False), False, False), (True, False, False), ((True, False, False), False, False)]
    assert not out.requires_grad and out.grad_fn is None
    np.testing.assert_allclose(x.grad.numpy(), np.ones(3))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES[:3])
def test_two_outputs_each_get_their_gradient(shape, dtype):
    x = draw(shape, dtype)
    a, b = SinCos.apply(x)
    xs = x.detach().numpy().astype(np.float64)
    np.testing.assert_allclose(a.detach().numpy(), np.sin(xs), **tolerance(dtype))
    np.testing.assert_allclose(b.detach().numpy(), np.cos(xs), **tolerance(dtype))
    assert a.grad_fn.name == b.grad_fn.name == "SinCosBackward"
    (3 * a + b * b).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 3 * np.cos(xs) - 2 * np.cos(xs) * np.sin(xs), **tolerance(dtype))
    x.grad = None
    a, b = SinCos.apply(x)
    b.sum().backward()  # no gradient reaches a: backward gets zeros for it
    np.testing.assert_allclose(x.grad.numpy(), -np.sin(xs), **tolerance(dtype))


def test_materialize_grads_off_passes_none_for_outputs_without_a_gradient():
    got = []

    class Pair(Function):
        @staticmethod
        def forward(ctx, x):
            ctx.set_materialize_grads(False)
            return x * 2, x * 3

        @staticmethod
        def backward(ctx, ga, gb):
            got.append((ga is None, gb is None))
            return (0 if ga is None else ga * 2) + (0 if gb is None else gb * 3)

    x = draw((4,), tl.float64)
    a, b = Pair.apply(x)
    b.sum().backward()
    a, b = Pair.apply(x)
    (a.sum() + b.sum()).backward()
    assert got == [(True, False), (False, False)]
    np.testing.assert_allclose(x.grad.numpy(), np.full(4, 3.0 + 5.0))


def test_non_differentiable_integer_and_non_tensor_outputs():
    got = []

    class WithIndex(Function):
        @staticmethod
        def forward(ctx, x):
            index = x.argmax()
            copy = x * 1
            ctx.mark_non_differentiable(copy)
            return x * 2, index, copy, "label"

        @staticmethod
        def backward(ctx, g, g_index, g_copy, g_label):
            got.append((g_index.dtype, float(g_index), float(g_copy.abs().sum()), g_label))
            return g * 2

    x = draw((3,), tl.float64)
    doubled, index, copy, label = WithIndex.apply(x)
    assert doubled.requires_grad and not index.requires_grad and not copy.requires_grad and label == "label"
    assert index.grad_fn is None and copy.grad_fn is None
    doubled.sum().backward()
    assert got == [(tl.int64, 0.0, 0.0, None)]  # zeros, of each output's dtype; None for the string
    np.testing.assert_allclose(x.grad.numpy(), np.full(3, 2.0))


def test_an_input_returned_as_it_is_comes_back_as_a_view():
    class Identity(Function):
        @staticmethod
        def forward(ctx, x):
            return x

        @staticmethod
        def backward(ctx, grad):
            return grad * 5

    x = draw((3,), tl.float64)
    y = Identity.apply(x)
    assert y is not x and y._base is x and y.grad_fn is not None and x.grad_fn is None
    assert np.shares_memory(y.detach().numpy(), x.detach().numpy())
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), np.full(3, 5.0))


def test_chain_of_custom_and_built_in_ops_and_arguments_by_name():
    x = draw((6,), tl.float64)
    h = MyReLU.apply(x * 2 - 1)
    z = ScaledMul.apply(h, y=h, alpha=0.5)  # named arguments bind as positional inputs
    z.sum().backward()
    xs = x.detach().numpy()
    np.testing.assert_allclose(x.grad.numpy(), 2 * np.maximum(2 * xs - 1, 0))


def test_no_input_requires_grad_records_nothing():
    y = MyReLU.apply(draw((3,), tl.float64, requires_grad=False))
    assert not y.requires_grad and y.grad_fn is None


@pytest.mark.parametrize("shape", [(4,), (2, 3)])
def test_gradcheck_passes_on_custom_functions(shape):
    x = tl.tensor(rng.uniform(0.2, 1.0, shape) * rng.choice([-1, 1], shape), dtype=tl.float64, requires_grad=True)
    y = draw(shape[-1:], tl.float64)
    assert tl.gradcheck(MyReLU.apply, [x])
    assert tl.gradcheck(lambda a, b: ScaledMul.apply(a, b, -1.5), [x, y])
    assert tl.gradcheck(SinCos.apply, [x])


def test_gradcheck_catches_a_wrong_backward():
    class WrongSquare(Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x * x

        @staticmethod
        def backward(ctx, grad):
            (x,) = ctx.saved_tensors
            return grad * x  # should be 2x

    with pytest.raises(tl.GradcheckError, match="gradient mismatch for input 0"):
        tl.gradcheck(WrongSquare.apply, [draw((3,), tl.float64)])


def test_training_step_of_a_module_using_a_custom_function():
    class Net(nn.Module):
        def __init__(self, activation):
            super().__init__()
            self.fc1, self.fc2, self.activation = nn.Linear(5, 8), nn.Linear(8, 3), activation

        def forward(self, x):
            return self.fc2(self.activation(self.fc1(x)))

    tl.manual_seed(0)
    custom = Net(MyReLU.apply)
    builtin = Net(F.relu)
    builtin.load_state_dict(custom.state_dict())
    x, labels = draw((16, 5), tl.float32, requires_grad=False), tl.tensor(rng.integers(0, 3, 16))
    for model in (custom, builtin):
        optimizer = nn.optim.SGD(model.parameters(), lr=0.1)
        for _ in range(3):
            optimizer.zero_grad()
            loss = F.cross_entropy(model(x), labels)
            loss.backward()
            optimizer.step()
    for (name, a), (_, b) in zip(custom.named_parameters(), builtin.named_parameters()):
        np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=1e-6, atol=1e-7, err_msg=name)


def test_ctx_attributes_and_saved_tensors_are_freed_after_backward():
    x = draw((3,), tl.float64)
    y = ScaledMul.apply(x, x, 2.0)
    node = y.grad_fn
    saved = weakref.ref(node.saved_tensors[0])
    assert node.alpha == 2.0
    del x
    y.sum().backward()
    gc.collect()
    assert saved() is None
    with pytest.raises(RuntimeError, match="saved tensors of ScaledMulBackward were freed.*retain_graph=True"):
        node.saved_tensors
    with pytest.raises(RuntimeError, match="second time"):
        y.sum().backward()


def test_retain_graph_runs_backward_twice():
    x = draw((4,), tl.float64)
    a, b = SinCos.apply(x)
    total = (a + b).sum()
    total.backward(retain_graph=True)
    total.backward()
    xs = x.detach().numpy()
    np.testing.assert_allclose(x.grad.numpy(), 2 * (np.cos(xs) - np.sin(xs)))


def test_a_saved_output_does_not_keep_the_graph_in_a_cycle():
    class Exp(Function):
        @staticmethod
        def forward(ctx, x):
            y = x.exp()
            ctx.save_for_backward(y)
            return y

        @staticmethod
        def backward(ctx, grad):
            (y,) = ctx.saved_tensors
            return grad * y

    x = draw((3,), tl.float64)
    gc.collect()
    gc.disable()
    try:
        y = Exp.apply(x)
        probe = weakref.ref(y.grad_fn)
        del y
        assert probe() is None  # freed by reference counting alone
    finally:
        gc.enable()
    Exp.apply(x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), np.exp(x.detach().numpy()))


@pytest.mark.parametrize("saved", ["input", "output"])
def test_a_saved_tensor_changed_in_place_is_refused(saved):
    class Exp(Function):
        @staticmethod
        def forward(ctx, x):
            y = x.exp()
            ctx.save_for_backward(x if saved == "input" else y)
            return y

        @staticmethod
        def backward(ctx, grad):
            (value,) = ctx.saved_tensors
            return grad * (value.exp() if saved == "input" else value)

    x = draw((3,), tl.float64)
    h = x * 1
    y = Exp.apply(h)
    (h if saved == "input" else y).mul_(2)
    with pytest.raises(RuntimeError, match=r"ExpBackward \(saved tensor 0, shape \(3,\)\) was changed by an in-place "
                                           r"operation.*version 1, saved at version 0"):
        y.sum().backward()


def run_backward_returning(result, y_requires_grad=True):
    class Op(Function):
        @staticmethod
        def forward(ctx, x, y, n):
            return x * y * n

        @staticmethod
        def backward(ctx, grad):
            return result(grad)

    x = tl.ones(2, 3, dtype=tl.float64, requires_grad=True)
    y = tl.full((2, 3), 2.0, dtype=tl.float64, requires_grad=y_requires_grad)
    Op.apply(x, y, 2).sum().backward()
    return x.grad, y.grad


@pytest.mark.parametrize("result, message", [
    (lambda g: (g, g), r"OpBackward returned 2 gradients, expected 3: one per argument of Op.forward"),
    (lambda g: g, r"OpBackward returned 1 gradients, expected 3"),
    (lambda g: (g, g, None, g), r"OpBackward returned 4 gradients, expected 3"),
    (lambda g: (g, g, g), r"OpBackward returned a gradient for input 2, which is a int, not a tensor"),
    (lambda g: (g.sum(0), g, None), r"OpBackward returned a gradient of shape \(3,\) for input 0 of shape \(2, 3\)"),
    (lambda g: (g, g.reshape(3, 2), None), r"shape \(3, 2\) for input 1 of shape \(2, 3\)"),
    (lambda g: (3.0, g, None), r"OpBackward: the gradient for input 0 must be a Tensor or None, got float"),
])
def test_wrong_gradients_from_backward_are_refused(result, message):
    with pytest.raises(RuntimeError, match=message):
        run_backward_returning(result)


def test_gradients_backward_may_return_as_pytorch_allows():
    gx, gy = run_backward_returning(lambda g: (g, g, None, None))  # extra Nones are dropped
    np.testing.assert_allclose(gx.numpy(), np.ones((2, 3)))
    gx, gy = run_backward_returning(lambda g: (g.expand(4, 2, 3), g.float(), None))  # summed down, cast
    np.testing.assert_allclose(gx.numpy(), np.full((2, 3), 4.0))
    assert gy.dtype == tl.float64
    gx, gy = run_backward_returning(lambda g: (g, g.reshape(3, 2), None), y_requires_grad=False)  # unused: unchecked
    assert gy is None


def test_ctx_misuse_is_refused_with_clear_errors():
    def op(forward, backward=lambda ctx, grad: grad):
        return type("Op", (Function,), {"forward": staticmethod(forward), "backward": staticmethod(backward)})

    x = draw((2,), tl.float64)
    with pytest.raises(TypeError, match="save_for_backward takes tensors or None, got int for argument 1"):
        op(lambda ctx, x: (ctx.save_for_backward(x, 3), x * 2)[1]).apply(x)
    with pytest.raises(TypeError, match="mark_non_differentiable takes output tensors, got int for argument 0"):
        op(lambda ctx, x: (ctx.mark_non_differentiable(3), x * 2)[1]).apply(x)
    with pytest.raises(TypeError, match="set_materialize_grads takes a bool, got 3"):
        op(lambda ctx, x: (ctx.set_materialize_grads(3), x * 2)[1]).apply(x)
    with pytest.raises(AttributeError, match=r"Op.forward set ctx.output, a name the graph node uses"):
        op(lambda ctx, x: (setattr(ctx, "output", x), x * 2)[1]).apply(x)

    class NoBackward(Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

    y = NoBackward.apply(x)  # as PyTorch: the forward runs; the missing backward shows when it is needed
    with pytest.raises(NotImplementedError, match="NoBackward has no backward: define it as a staticmethod"):
        y.sum().backward()


class ScaledCube(Function):
    """scale * x**3 in PyTorch 2's form: forward without ctx, setup_context to fill it."""

    @staticmethod
    def forward(x, scale=2.0):
        return x * x * x * scale

    @staticmethod
    def setup_context(ctx, inputs, output):
        x, scale = inputs
        ctx.save_for_backward(x, output)
        ctx.scale = scale

    @staticmethod
    def backward(ctx, grad):
        x, out = ctx.saved_tensors
        return 3 * ctx.scale * x * x * grad, None


class InPlaceAxpy(Function):
    """x += alpha * y, written into x (``ctx.mark_dirty``); y is broadcast against x."""

    @staticmethod
    def forward(ctx, x, y, alpha):
        x.add_(y * alpha)
        ctx.mark_dirty(x)
        ctx.alpha = alpha
        return x

    @staticmethod
    def backward(ctx, grad):
        return grad, grad * ctx.alpha, None


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
def test_setup_context_form_values_and_gradients_match_the_reference(shape, dtype):
    x = draw(shape, dtype)
    weights = rng.standard_normal(shape)
    xs = x.detach().numpy().astype(np.float64)
    for out, scale in ((ScaledCube.apply(x, -0.5), -0.5), (ScaledCube.apply(x, scale=3.0), 3.0),
                       (ScaledCube.apply(x), 2.0)):  # the default is an input too: backward returns its None
        assert out.dtype == dtype and out.grad_fn.name == "ScaledCubeBackward"
        np.testing.assert_allclose(out.detach().numpy(), scale * xs ** 3, **tolerance(dtype))
        x.grad = None
        (out * tl.tensor(weights, dtype=dtype)).sum().backward()
        np.testing.assert_allclose(x.grad.numpy(), 3 * scale * xs ** 2 * weights, **tolerance(dtype))


def test_setup_context_sees_the_bound_inputs_and_forward_s_output():
    seen = []

    class Split(Function):
        @staticmethod
        def forward(x, factor=3.0, *, offset=0.0):
            return x * factor + offset, x - offset

        @staticmethod
        def setup_context(ctx, inputs, output):
            seen.append((len(inputs), inputs[1], type(output).__name__, len(output), ctx.needs_input_grad,
                         tl.is_grad_enabled()))
            ctx.factor = inputs[1]

        @staticmethod
        def backward(ctx, ga, gb):
            return ga * ctx.factor + gb, None

    x = draw((3,), tl.float64)
    a, b = Split.apply(x, offset=1.0)
    (a + b).sum().backward()
    assert seen == [(2, 3.0, "tuple", 2, (True, False), False)]
    np.testing.assert_allclose(x.grad.numpy(), np.full(3, 4.0))
    with pytest.raises(TypeError, match=r"Split.apply: too many positional arguments"):
        Split.apply(x, 1.0, 2.0)


def test_forward_and_backward_need_not_be_staticmethods():
    """PyTorch calls them on the class: plain functions whose first parameter is ctx, and classmethods, work."""

    class Plain(Function):
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x * x

        def backward(ctx, grad):
            (x,) = ctx.saved_tensors
            return 2 * x * grad

    class Classy(Function):
        @classmethod
        def forward(cls, ctx, x):
            ctx.save_for_backward(x)
            return x * x

        @classmethod
        def backward(cls, ctx, grad):
            (x,) = ctx.saved_tensors
            return 2 * x * grad

    class Mixed(Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x * x

        def backward(ctx, grad):
            (x,) = ctx.saved_tensors
            return 2 * x * grad

    x = draw((2, 3), tl.float64)
    for op in (Plain, Classy, Mixed):
        x.grad = None
        y = op.apply(x)
        assert y.grad_fn.name == f"{op.__name__}Backward"
        y.sum().backward()
        np.testing.assert_allclose(x.grad.numpy(), 2 * x.detach().numpy(), rtol=1e-12)
        assert tl.gradcheck(op.apply, [x])


def test_forward_with_ctx_and_setup_context_is_refused_when_defined():
    with pytest.raises(TypeError, match=r"Both defines setup_context, so its forward takes the inputs only "
                                        r"\(forward\(\*args\), without ctx\)"):
        class Both(Function):
            @staticmethod
            def forward(ctx, x):
                return x

            @staticmethod
            def setup_context(ctx, inputs, output):
                pass


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES[:3])
def test_mark_dirty_changes_the_input_itself_and_takes_over_its_graph(shape, dtype):
    x, y = draw(shape, dtype), draw(shape[-1:], dtype)
    weights = rng.standard_normal(shape)
    h = x * 1.5
    version = h._version[0]
    out = InPlaceAxpy.apply(h, y, 0.5)
    assert out is h and h.grad_fn.name == "InPlaceAxpyBackward"
    assert h._version[0] == version + 2  # add_ inside forward, then mark_dirty, as PyTorch counts
    xs, ys = x.detach().numpy().astype(np.float64), y.detach().numpy().astype(np.float64)
    np.testing.assert_allclose(h.detach().numpy(), 1.5 * xs + 0.5 * ys, **tolerance(dtype))
    (out * tl.tensor(weights, dtype=dtype)).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 1.5 * weights, **tolerance(dtype))
    np.testing.assert_allclose(y.grad.numpy(), sum_to(0.5 * weights, y.shape), **tolerance(dtype))


def test_mark_dirty_gradcheck_and_what_sees_the_new_value():
    x, y = draw((2, 3), tl.float64), draw((3,), tl.float64)
    assert tl.gradcheck(lambda a, b: InPlaceAxpy.apply(a * 1, b, -0.5), [x, y])
    h = x * 2
    h.retain_grad()
    seen = []
    autograd.register_hook(h, lambda g: seen.append("before"))
    InPlaceAxpy.apply(h, y, 1.0)
    autograd.register_hook(h, lambda g: seen.append("after"))
    (h * 5).sum().backward()
    assert seen == ["after", "before"]
    np.testing.assert_allclose(h.grad.numpy(), np.full((2, 3), 5.0))  # the gradient of the new value only
    h = x * 2
    InPlaceAxpy.apply(h, y, 1.0)
    (gh,) = autograd.grad((h * 3).sum(), h)
    np.testing.assert_allclose(gh.numpy(), np.full((2, 3), 3.0))
    plain = tl.zeros(2, 3, dtype=tl.float64)  # needs no grad, but y does: it joins the graph
    assert InPlaceAxpy.apply(plain, y, 2.0) is plain and plain.requires_grad and not plain.is_leaf
    with tl.no_grad():  # not recorded: an input that requires grad comes back as an alias sharing its data
        alias = InPlaceAxpy.apply(x, y, 0.0)
    assert alias is not x and not alias.requires_grad and np.shares_memory(alias.numpy(), x.detach().numpy())


def test_mark_dirty_refusals():
    class AddOne(Function):
        @staticmethod
        def forward(ctx, x):
            x.add_(1)
            ctx.mark_dirty(x)
            return x

        @staticmethod
        def backward(ctx, grad):
            return grad

    class Forgets(AddOne):
        @staticmethod
        def forward(ctx, x):
            x.add_(1)
            ctx.mark_dirty(x)
            return x * 2

    class Stranger(AddOne):
        @staticmethod
        def forward(ctx, x):
            y = x * 2
            ctx.mark_dirty(y)
            return y

    x = draw((4,), tl.float64)
    with pytest.raises(RuntimeError, match=r"AddOne: input 0 \(marked dirty\) is a leaf tensor that requires grad"):
        AddOne.apply(x)
    with pytest.raises(RuntimeError, match=r"AddOne: input 0 \(marked dirty\) is a view \(reshape"):
        AddOne.apply((x * 1)[:2])
    with pytest.raises(RuntimeError, match=r"Forgets.forward did not return input 0 \(marked dirty\): a Function "
                                           "returns the inputs it changes in place"):
        Forgets.apply(x * 1)
    with pytest.raises(TypeError, match="mark_dirty takes input tensors, got int for argument 0"):
        type("Op", (AddOne,), {"forward": staticmethod(lambda ctx, x: (ctx.mark_dirty(3), x * 2)[1])}).apply(x)
    with pytest.warns(UserWarning, match="Stranger: ctx.mark_dirty got a tensor that is not an input of forward"):
        Stranger.apply(x)
    s = x.sin()
    w = s * s  # saves s, which AddOne then changes
    AddOne.apply(s)
    with pytest.raises(RuntimeError, match="changed by an in-place operation"):
        w.sum().backward()


def test_built_in_instance_form_is_unchanged():
    class Double(Function):
        def forward(self, x):
            return x * 2

        def backward(self, grad):
            return grad * 2

    x = draw((3,), tl.float64)
    y = Double.apply(x)
    assert y.grad_fn.name == "DoubleBackward" and isinstance(y.grad_fn, Double)
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), np.full(3, 2.0))


def test_custom_function_on_cuda_matches_the_cpu(tier):
    values = rng.standard_normal((3, 4))
    results = {}
    for device in ("cpu", "cuda"):
        x = tl.tensor(values, dtype=tl.float64, device=device, requires_grad=True)
        a, b = SinCos.apply(MyReLU.apply(x))
        total = (a * 2 + b).sum()
        total.backward()
        assert a.device == device and x.grad.device == device
        results[device] = (total.item(), x.grad.cpu().numpy())
    assert results["cuda"][0] == pytest.approx(results["cpu"][0], rel=1e-12)
    np.testing.assert_allclose(results["cuda"][1], results["cpu"][1], rtol=1e-12, atol=1e-12)
