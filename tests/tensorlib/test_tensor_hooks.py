"""Tensor gradient hooks (``autograd.register_hook``, PyTorch's ``Tensor.register_hook``) against gradients
worked out by hand; where hooks are kept, and that a tensor whose hook refers to it is still collected."""

import copy
import gc
import pickle
import weakref

import numpy as np
import pytest

import tensorlib as tl
from tensorlib import autograd
from tensorlib.autograd import Function, register_hook


def leaf(values):
    return tl.tensor(values, dtype=tl.float64, requires_grad=True)


def test_a_leaf_hook_sees_the_gradient_summed_over_its_uses_and_can_replace_it():
    x = leaf([1.0, 2.0])
    seen = []
    register_hook(x, lambda g: seen.append(g.numpy().copy()) or g * 2)
    (x * 3 + x * x).sum().backward()  # d/dx = 3 + 2x = [5, 7], once
    np.testing.assert_allclose(np.array(seen), [[5.0, 7.0]])
    np.testing.assert_allclose(x.grad.numpy(), [10.0, 14.0])
    (x * 3).sum().backward()  # each backward calls it again, and .grad accumulates the replaced gradient
    np.testing.assert_allclose(x.grad.numpy(), [16.0, 20.0])
    assert len(seen) == 2


def test_hooks_run_in_registration_order_each_on_the_previous_result():
    x = leaf([1.0, -1.0])
    calls = []
    register_hook(x, lambda g: calls.append(("first", g.numpy().tolist())) or g + 1)
    register_hook(x, lambda g: calls.append(("second", g.numpy().tolist())))  # None: keep the gradient
    register_hook(x, lambda g: calls.append(("third", g.numpy().tolist())) or g * 10)
    (x * 2).sum().backward()
    assert calls == [("first", [2.0, 2.0]), ("second", [3.0, 3.0]), ("third", [3.0, 3.0])]
    np.testing.assert_allclose(x.grad.numpy(), [30.0, 30.0])


def test_remove_takes_a_hook_out_and_a_second_remove_does_nothing():
    x = leaf([1.0, 2.0])
    doubling = register_hook(x, lambda g: g * 2)
    register_hook(x, lambda g: g + 1)
    doubling.remove()
    doubling.remove()
    (x * 3).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [4.0, 4.0])
    with register_hook(x, lambda g: g * 100):  # as a context manager: removed at the end of the block
        pass
    x.grad = None
    (x * 3).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [4.0, 4.0])


def test_a_non_leaf_hook_changes_what_flows_to_the_ops_before_and_retain_grad_sees_it():
    x = leaf([1.0, 2.0])
    m = x * 2
    m.retain_grad()
    register_hook(m, lambda g: g * 10)
    (m * m).sum().backward()  # dL/dm = 2m = [4, 8] -> [40, 80]; dL/dx = 2 * that
    np.testing.assert_allclose(m.grad.numpy(), [40.0, 80.0])
    np.testing.assert_allclose(x.grad.numpy(), [80.0, 160.0])


def test_a_hook_on_the_root_and_on_a_leaf_root():
    x = leaf([1.0, 2.0])
    total = (x * 2).sum()
    register_hook(total, lambda g: g * 5)
    total.backward()
    np.testing.assert_allclose(x.grad.numpy(), [10.0, 10.0])
    scalar = leaf(2.0)
    register_hook(scalar, lambda g: g * 7)
    scalar.backward()
    assert scalar.grad.item() == 7.0


def test_hooks_apply_to_autograd_grad_and_backward_inputs():
    x = leaf([1.0, 2.0])
    register_hook(x, lambda g: g * 100)
    m = x * 2
    register_hook(m, lambda g: g + 1)
    (gx,) = autograd.grad((m * 3).sum(), x)  # (3 + 1) * 2 * 100
    np.testing.assert_allclose(gx.numpy(), [800.0, 800.0])
    m = x * 2
    register_hook(m, lambda g: g + 1)
    (gm,) = autograd.grad((m * 3).sum(), m)
    np.testing.assert_allclose(gm.numpy(), [4.0, 4.0])
    assert x.grad is None
    (x * 1).sum().backward(inputs=[x])
    np.testing.assert_allclose(x.grad.numpy(), [100.0, 100.0])


def test_hooks_registered_before_an_in_place_change_see_the_old_value_s_gradient():
    x = leaf([1.0, 2.0])
    t = x * 2
    calls = []
    register_hook(t, lambda g: calls.append(("before", g.numpy().tolist())))
    t.mul_(3)
    register_hook(t, lambda g: calls.append(("after", g.numpy().tolist())))
    (t * 5).sum().backward()
    assert calls == [("after", [5.0, 5.0]), ("before", [15.0, 15.0])]
    np.testing.assert_allclose(x.grad.numpy(), [30.0, 30.0])


def test_hooks_on_the_outputs_of_a_custom_function():
    class Pair(Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2, x * 3

        @staticmethod
        def backward(ctx, ga, gb):
            return ga * 2 + gb * 3

    x = leaf([1.0, 1.0])
    a, b = Pair.apply(x)
    register_hook(b, lambda g: g * 10)
    (a.sum() + b.sum()).backward()  # 1 * 2 + 10 * 3
    np.testing.assert_allclose(x.grad.numpy(), [32.0, 32.0])


def test_a_tensor_that_does_not_require_grad_refuses_a_hook():
    with pytest.raises(RuntimeError, match="cannot register a hook on a tensor that doesn't require gradient"):
        register_hook(tl.tensor([1.0, 2.0]), lambda g: g)
    with tl.no_grad():
        made = leaf([1.0]) * 2
    with pytest.raises(RuntimeError, match="doesn't require gradient"):
        register_hook(made, lambda g: g)
    with pytest.raises(TypeError, match="register_hook: hook must be callable, got int"):
        register_hook(leaf([1.0]), 3)


@pytest.mark.parametrize("replacement, error, message", [
    (lambda g: g.sum(), RuntimeError, r"hook '<lambda>' changed the gradient's shape from \(2,\) to \(\)"),
    (lambda g: g.float(), RuntimeError, r"changed the gradient's dtype from float64 to float32"),
    (lambda g: 3.0, TypeError, r"hook '<lambda>' returned a float; a hook returns a Tensor or None"),
])
def test_a_replacement_of_another_shape_dtype_or_type_is_refused(replacement, error, message):
    x = leaf([1.0, 2.0])
    register_hook(x, replacement)
    with pytest.raises(error, match=message):
        (x * 2).sum().backward()


def test_hooks_live_with_their_owner_and_a_count_gates_the_lookups():
    start = autograd._hooked[0]
    x = leaf([1.0, 2.0])
    first, second = register_hook(x, lambda g: g), register_hook(x, lambda g: g)
    assert autograd._hooked[0] == start + 1 and list(x._backward_hooks) == [first.id, second.id]
    first.remove()
    assert autograd._hooked[0] == start + 1
    second.remove()
    assert autograd._hooked[0] == start and x._backward_hooks is None  # none left: backward skips the lookups
    m = x * 2
    register_hook(m, lambda g: g * 3)
    assert autograd._hooked[0] == start + 1 and len(m.grad_fn._hooks) == 1
    m.sum().backward()  # frees the graph, and the hooks on its nodes with it
    assert m.grad_fn._hooks is None
    np.testing.assert_allclose(x.grad.numpy(), [6.0, 6.0])
    del m  # the node goes with its tensor, and out of the count
    assert autograd._hooked[0] == start
    y = leaf([1.0])
    register_hook(y, lambda g: g).remove()
    assert autograd._hooked[0] == start
    register_hook(y, lambda g: g)
    del y
    gc.collect()
    assert autograd._hooked[0] == start


@pytest.mark.parametrize("kind", ["non-leaf", "leaf"])
def test_a_tensor_whose_hook_refers_to_it_is_collected(kind):
    start = autograd._hooked[0]
    x = leaf([1.0, -2.0])
    p = x * 1 if kind == "non-leaf" else leaf([1.0, -2.0])
    handle = register_hook(p, lambda g, p=p: g + 0.5 * p.detach())  # weight decay, as an optimizer might add it
    (p * 3).sum().backward(retain_graph=True)
    np.testing.assert_allclose((x if kind == "non-leaf" else p).grad.numpy(), [3.5, 2.0])
    alive = weakref.ref(p)
    del p
    gc.collect()
    assert alive() is None and autograd._hooked[0] == start
    handle.remove()  # its tensor is gone: nothing to do


def test_a_deep_copy_of_a_tensor_starts_without_hooks():
    x = leaf([1.0, 2.0])
    register_hook(x, lambda g: g * 2)
    copied = copy.deepcopy(x)
    (copied * 1).sum().backward()
    (x * 1).sum().backward()
    np.testing.assert_allclose(copied.grad.numpy(), [1.0, 1.0])
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 2.0])


def test_a_handle_keeps_neither_its_hook_nor_its_tensor_alive():
    x = leaf([1.0])
    handle = register_hook(x, lambda g: g * 2)
    alive = weakref.ref(x)
    del x
    gc.collect()
    assert alive() is None
    handle.remove()
    assert isinstance(handle.id, int)


@pytest.mark.parametrize("duplicate", [copy.copy, lambda t: pickle.loads(pickle.dumps(t))])
def test_copies_and_pickles_start_without_hooks(duplicate):
    """The copy neither shares the hook table nor keeps it when the original is collected (PyTorch's copies
    carry no hooks either)."""
    a = leaf([1.0, 2.0])
    register_hook(a, lambda g: g * 10)
    b = duplicate(a)
    assert getattr(b, "_backward_hooks", None) is None
    (b * 1).sum().backward()
    np.testing.assert_array_equal(b.grad.numpy(), [1.0, 1.0])
    (a * 1).sum().backward()
    np.testing.assert_array_equal(a.grad.numpy(), [10.0, 10.0])
