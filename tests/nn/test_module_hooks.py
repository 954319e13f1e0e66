"""Module hooks: forward pre-hooks and hooks (kwargs, order, always_call) and full backward (pre-)hooks, whose
gradients are checked against NumPy references and by finite differences."""

import gc
import warnings
import weakref

import numpy as np
import pytest

import nn
import tensorlib as tl


class Pair(nn.Module):
    """Two outputs from two positional tensors and a number: (x * y * scale, x + y)."""

    def forward(self, x, y, scale=1.0):
        return x * y * scale, x + y


class Scaled(nn.Module):
    def forward(self, x, *, scale=1.0):
        return x * scale


# ---- forward hooks ------------------------------------------------------------------------------------------
def test_forward_hooks_run_in_order_prepend_first_and_see_kwargs():
    linear, order = nn.Linear(3, 2), []
    linear.register_forward_pre_hook(lambda m, args: order.append("pre"))
    linear.register_forward_pre_hook(lambda m, args: order.append("pre first"), prepend=True)
    linear.register_forward_pre_hook(lambda m, args, kwargs: order.append(("pre kwargs", kwargs)), with_kwargs=True)
    linear.register_forward_hook(lambda m, args, out: order.append("hook"))
    linear.register_forward_hook(lambda m, args, out: order.append("hook first"), prepend=True)
    linear.register_forward_hook(lambda m, args, kwargs, out: order.append(("hook kwargs", kwargs, out.shape)),
                                 with_kwargs=True)
    linear(tl.randn(4, 3))
    assert order == ["pre first", "pre", ("pre kwargs", {}), "hook first", "hook", ("hook kwargs", {}, (4, 2))]


def test_pre_hook_with_kwargs_replaces_args_and_kwargs():
    module = Scaled()
    seen = []
    module.register_forward_pre_hook(lambda m, args, kwargs: ((args[0] + 1,), {"scale": 5.0}), with_kwargs=True)
    module.register_forward_hook(lambda m, args, kwargs, out: seen.append(kwargs), with_kwargs=True)
    assert module(tl.ones(2), scale=2.0).tolist() == [10.0, 10.0]
    assert seen == [{"scale": 5.0}]
    bad = Scaled()
    bad.register_forward_pre_hook(lambda m, args, kwargs: args, with_kwargs=True)
    with pytest.raises(RuntimeError, match=r"with_kwargs=True must return None or a tuple \(new_args, new_kwargs\), "
                                           r"got tuple"):
        bad(tl.ones(1))


def test_always_call_hook_runs_when_forward_raises():
    class Fails(nn.Module):
        def forward(self, x):
            raise ValueError("forward failed")

    module, seen = Fails(), []
    module.register_forward_hook(lambda m, args, out: seen.append(("always", out)), always_call=True)
    module.register_forward_hook(lambda m, args, out: seen.append("ordinary"))
    with pytest.raises(ValueError, match="forward failed"):
        module(tl.ones(1))
    assert seen == [("always", None)]

    def broken(m, args, out):
        raise KeyError("hook failed")

    module = Fails()
    module.register_forward_hook(broken, always_call=True)
    with pytest.warns(UserWarning, match="always_call=True raised KeyError: 'hook failed'; it is ignored"):
        with pytest.raises(ValueError, match="forward failed"):  # the forward pass's error is the one raised
            module(tl.ones(1))


def test_handles_remove_once_and_forget_how_the_hook_was_called():
    linear = nn.Linear(2, 2)
    handle = linear.register_forward_hook(lambda m, args, kwargs, out: out * 0, with_kwargs=True, always_call=True)
    other = linear.register_forward_pre_hook(lambda m, args: None)
    assert isinstance(handle.id, int) and handle.id != other.id
    assert (linear(tl.ones(1, 2)).detach().numpy() == 0).all()
    handle.remove()
    handle.remove()  # a second remove is harmless
    assert not linear._forward_hooks and not linear._forward_hooks_with_kwargs
    assert not linear._forward_hooks_always_called
    with linear.register_full_backward_hook(lambda *a: None):
        assert len(linear._backward_hooks) == 1
    assert not linear._backward_hooks
    with pytest.raises(TypeError, match="hook must be callable, got int"):
        linear.register_forward_hook(3)


def test_module_and_tensor_hooks_share_one_handle_type_which_holds_its_tables_weakly():
    linear = nn.Linear(2, 2)
    handle = linear.register_forward_hook(lambda m, args, out: None, always_call=True)
    tensor_handle = tl.autograd.register_hook(linear.weight, lambda g: g)
    assert type(handle) is type(tensor_handle) is tl.autograd.RemovableHandle
    assert handle.id != tensor_handle.id
    alive = weakref.ref(linear)
    del linear
    gc.collect()
    assert alive() is None  # the handles do not keep the module (or its weight) alive
    handle.remove()
    tensor_handle.remove()


# ---- full backward hooks ------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [tl.float32, tl.float64])
@pytest.mark.parametrize("batch, features, outputs", [(1, 3, 2), (4, 5, 7), (6, 1, 3)])
def test_linear_backward_hooks_see_the_gradients(batch, features, outputs, dtype):
    rng = np.random.default_rng(batch * 100 + features * 10 + outputs)
    x_np, r_np = rng.standard_normal((batch, features)), rng.standard_normal((batch, outputs))
    linear = nn.Linear(features, outputs).to(dtype)
    w = linear.weight.detach().numpy().astype(np.float64)
    seen = {}
    linear.register_full_backward_pre_hook(lambda m, grad_output: seen.update(pre=grad_output))
    linear.register_full_backward_hook(lambda m, grad_input, grad_output: seen.update(full=(grad_input, grad_output)))
    x = tl.tensor(x_np, dtype=dtype, requires_grad=True)
    (linear(x) * tl.tensor(r_np, dtype=dtype)).sum().backward()
    grad_input, grad_output = seen["full"]
    assert seen["pre"][0] is grad_output[0] and len(grad_input) == 1 and len(grad_output) == 1
    assert linear(x).grad_fn.name == "BackwardHookFunctionBackward"  # PyTorch's name
    assert grad_output[0].dtype == dtype and grad_input[0].dtype == dtype
    tolerance = 1e-4 if dtype == tl.float32 else 1e-12
    np.testing.assert_allclose(grad_output[0].numpy(), r_np, rtol=tolerance, atol=tolerance)
    np.testing.assert_allclose(grad_input[0].numpy(), r_np @ w, rtol=tolerance, atol=tolerance)
    np.testing.assert_allclose(x.grad.numpy(), r_np @ w, rtol=tolerance, atol=tolerance)


def test_hooks_replace_grad_output_and_grad_input():
    rng = np.random.default_rng(1)
    linear = nn.Linear(3, 2).double()
    x_np = rng.standard_normal((4, 3))
    linear.register_full_backward_pre_hook(lambda m, grad_output: (grad_output[0] * 10,))
    seen = []
    linear.register_full_backward_hook(lambda m, grad_input, grad_output: seen.append(grad_output[0].numpy())
                                       or (tl.ones(4, 3, dtype=tl.float64),))
    x = tl.tensor(x_np, requires_grad=True)
    linear(x).sum().backward()
    np.testing.assert_array_equal(seen[0], np.full((4, 2), 10.0))  # the full hook sees the pre-hook's gradient
    np.testing.assert_array_equal(x.grad.numpy(), np.ones((4, 3)))
    np.testing.assert_allclose(linear.weight.grad.numpy(), 10 * np.ones((2, 4)) @ x_np, rtol=1e-12)


def test_several_inputs_and_outputs_line_up_with_the_arguments():
    module, seen = Pair(), []
    module.register_full_backward_hook(lambda m, grad_input, grad_output: seen.append((grad_input, grad_output)))
    rng = np.random.default_rng(2)
    x_np, y_np = rng.standard_normal(3), rng.standard_normal(3)
    x = tl.tensor(x_np, requires_grad=True)
    product, _ = module(x, tl.tensor(y_np), 2.0)
    product.sum().backward()
    (gx, gy, gscale), (gproduct, gsum) = seen[-1]
    np.testing.assert_allclose(gx.numpy(), 2 * y_np, rtol=1e-6)
    np.testing.assert_array_equal(gy.numpy(), np.zeros(3))  # a tensor that needs no grad: zeros, as in PyTorch
    assert gscale is None and gsum is None  # not a tensor; an output no gradient reached
    np.testing.assert_array_equal(gproduct.numpy(), np.ones(3))
    x.grad = None
    total = sum(module(x, x))  # one tensor as both arguments: each entry has its own share
    total.sum().backward()
    (gx, gy), _ = seen[-1]
    np.testing.assert_allclose(gx.numpy(), x_np + 1, rtol=1e-6)
    np.testing.assert_allclose(gy.numpy(), x_np + 1, rtol=1e-6)
    np.testing.assert_allclose(x.grad.numpy(), 2 * x_np + 2, rtol=1e-6)


def test_hooks_run_once_per_backward_and_after_retain_graph_again():
    linear, calls = nn.Linear(2, 1), []
    linear.register_full_backward_hook(lambda m, grad_input, grad_output: calls.append(grad_input[0].shape))
    out = linear(tl.randn(5, 2, requires_grad=True)).sum()
    out.backward(retain_graph=True)
    out.backward()
    assert calls == [(5, 2), (5, 2)]
    with tl.no_grad():
        linear(tl.randn(5, 2, requires_grad=True))
    assert len(calls) == 2


def test_without_inputs_that_require_grad_the_hook_runs_at_the_outputs():
    conv, seen = nn.Conv2d(1, 2, 3), []
    conv.register_full_backward_hook(lambda m, grad_input, grad_output: seen.append((grad_input, grad_output)))
    with pytest.warns(UserWarning, match="no input requires grad: grad_input is all None"):
        conv(tl.randn(2, 1, 5, 5)).sum().backward()
    assert seen[0][0] == (None,) and seen[0][1][0].shape == (2, 2, 3, 3)
    assert conv.weight.grad is not None
    conv.register_full_backward_hook(lambda m, grad_input, grad_output: (tl.ones(2, 1, 5, 5),))
    with pytest.warns(UserWarning), pytest.raises(RuntimeError, match="none of them requires grad: it must return"):
        conv(tl.randn(2, 1, 5, 5)).sum().backward()


@pytest.mark.parametrize("register, returned, message", [
    ("full", lambda gi: (gi[0], gi[0]), r"a tuple of 1 gradients for grad_input \(one per entry\), got 2 entries"),
    ("full", lambda gi: gi[0], "a tuple of 1 gradients for grad_input .*got a Tensor"),
    ("full", lambda gi: (tl.ones(2, 2),), r"shape \(2, 2\) on cpu for grad_input\[0\]; expected shape \(1, 3\)"),
    ("full", lambda gi: (np.ones((1, 3)),), r"returned a ndarray for grad_input\[0\]; expected a Tensor or None"),
    ("pre", lambda go: (go[0], go[0]), r"backward pre-hook of Linear must return None or a tuple of 1 gradients"),
])
def test_hook_results_are_checked(register, returned, message):
    linear = nn.Linear(3, 2)
    if register == "full":
        linear.register_full_backward_hook(lambda m, grad_input, grad_output: returned(grad_input))
    else:
        linear.register_full_backward_pre_hook(lambda m, grad_output: returned(grad_output))
    with pytest.raises((RuntimeError, TypeError), match=message):
        linear(tl.randn(1, 3, requires_grad=True)).sum().backward()


def test_grad_cam_with_a_forward_and_a_backward_hook():
    """Grad-CAM's recipe: the activations of the last conv layer (forward hook) weighted by the mean gradient of a
    class score with respect to them (backward hook), against a NumPy reference of that gradient."""
    tl.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Conv2d(4, 5, 3, padding=1), nn.ReLU(), nn.Flatten(),
                          nn.Linear(5 * 6 * 6, 3))
    store = {}
    target = model[2]
    target.register_forward_hook(lambda m, args, out: store.update(activation=out.detach()))
    target.register_full_backward_hook(lambda m, grad_input, grad_output: store.update(gradient=grad_output[0]))
    images = tl.randn(2, 3, 8, 8)
    scores = model(images)
    scores[:, 1].sum().backward()
    activation = store["activation"].numpy().astype(np.float64)
    np.testing.assert_allclose(activation, model[:3](images).detach().numpy(), rtol=1e-6)
    head = model[5].weight.detach().numpy().astype(np.float64)[1].reshape(5, 6, 6)
    expected = np.broadcast_to(head, activation.shape) * (activation > 0)
    np.testing.assert_allclose(store["gradient"].numpy(), expected, rtol=1e-4, atol=1e-7)
    weights = store["gradient"].numpy().mean(axis=(2, 3), keepdims=True)
    cam = np.maximum((weights * activation).sum(axis=1), 0)
    assert cam.shape == (2, 6, 6) and cam.max() > 0


def test_hooked_module_keeps_its_gradients_exact():
    tl.manual_seed(3)
    conv = nn.Conv2d(2, 3, 3, padding=1).double()
    conv.register_full_backward_pre_hook(lambda m, grad_output: None)
    conv.register_full_backward_hook(lambda m, grad_input, grad_output: None)
    x = tl.randn(2, 2, 4, 5, dtype=tl.float64, requires_grad=True)
    assert tl.gradcheck(lambda t, weight, bias: conv(t), [x, conv.weight, conv.bias])  # weights changed in place
    module = Pair()
    module.register_full_backward_hook(lambda m, grad_input, grad_output: None)
    y = tl.randn(3, 4, dtype=tl.float64, requires_grad=True)
    assert tl.gradcheck(lambda a, b: module(a, b, 0.5), [tl.randn(3, 4, dtype=tl.float64, requires_grad=True), y])


def test_in_place_change_of_a_hooked_output_stays_correct():
    tl.manual_seed(4)
    linear = nn.Linear(3, 2).double()
    linear.register_full_backward_hook(lambda *args: None)
    x_np = np.random.default_rng(4).standard_normal((5, 3))
    out = linear(tl.tensor(x_np, requires_grad=True))
    out.relu_()
    out.sum().backward()
    mask = (x_np @ linear.weight.detach().numpy().T + linear.bias.detach().numpy()) > 0
    np.testing.assert_allclose(linear.weight.grad.numpy(), mask.T.astype(float) @ x_np, rtol=1e-12)
    squashed = nn.Sequential(nn.Linear(3, 2), nn.Sigmoid())
    squashed.register_full_backward_hook(lambda *args: None)
    out = squashed(tl.randn(5, 3, requires_grad=True))
    out.mul_(2)  # the sigmoid saved this output for its gradient
    with pytest.raises(RuntimeError, match="changed by an in-place operation"):
        out.sum().backward()


def test_an_output_that_is_not_a_tensor_or_tuple_gets_no_backward_hooks():
    class ListOut(nn.Module):
        def forward(self, x):
            return [x * 2]

    module, calls = ListOut(), []
    module.register_full_backward_hook(lambda *args: calls.append(args))
    x = tl.randn(3, requires_grad=True)
    with pytest.warns(UserWarning, match="its output is a list, not a Tensor or a tuple of Tensors"):
        out = module(x)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out[0].sum().backward()
    assert calls == [] and np.array_equal(x.grad.numpy(), np.full(3, 2.0))


def test_backward_hooks_on_the_device(tier):
    tl.manual_seed(6)
    host = nn.Linear(3, 2).double()
    device = nn.Linear(3, 2).double()
    device.load_state_dict(host.state_dict())
    device.to("cuda")
    seen = []
    device.register_full_backward_hook(lambda m, grad_input, grad_output: seen.append((grad_input[0], grad_output[0])))
    x_np, r_np = np.random.default_rng(6).standard_normal((4, 3)), np.random.default_rng(7).standard_normal((4, 2))
    (device(tl.tensor(x_np, device="cuda", requires_grad=True)) * tl.tensor(r_np, device="cuda")).sum().backward()
    grad_input, grad_output = seen[0]
    assert grad_input.device == "cuda" and grad_output.device == "cuda"
    np.testing.assert_allclose(grad_output.cpu().numpy(), r_np, rtol=1e-12)
    np.testing.assert_allclose(grad_input.cpu().numpy(), r_np @ host.weight.detach().numpy(), rtol=1e-12)


def test_named_tuple_outputs_keep_their_type_under_backward_hooks():
    """GoogLeNet-style outputs (a named tuple) stay named tuples, so code reading .logits keeps working."""
    Out = nn.models.GoogLeNetOutputs
    fake = nn.Module()
    fake.forward = lambda x: Out(x * 2, x * 3, x * 4)
    fake.register_full_backward_hook(lambda module, grad_input, grad_output: None)
    result = fake(tl.ones(2, requires_grad=True))
    assert type(result) is Out
    np.testing.assert_array_equal(result.aux1.detach().numpy(), [3.0, 3.0])
