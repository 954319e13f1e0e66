"""The engine: order, accumulation, un-broadcasting, freeing, no_grad, error messages."""

import gc
import sys
import weakref

import numpy as np
import pytest

import tensorlib as tl


def test_chain_of_ten_thousand_ops_does_not_recurse():
    x = tl.tensor(1.0, dtype=tl.float64, requires_grad=True)
    y = x
    for _ in range(10_000):
        y = (y * 1.0001).reshape(())  # two graph nodes per step: 20,000 > the recursion limit
    assert sys.getrecursionlimit() < 20_000
    y.backward()
    assert x.grad.item() == pytest.approx(1.0001**10_000, rel=1e-9)


def test_diamond_graph_sums_both_paths():
    x = tl.tensor([2.0, 3.0], requires_grad=True)
    a = x * x
    b = x * 3.0
    (a + b + a).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 4 * x.detach().numpy() + 3)


def test_gradient_accumulates_across_backward_calls():
    x = tl.tensor([1.0, -2.0], requires_grad=True)
    (x * 3.0).sum().backward()
    (x * x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [3 + 2, 3 - 4])
    x.grad = None
    (x * 5.0).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [5, 5])


def test_shared_gradient_arrays_do_not_alias():
    a, b = tl.tensor([1.0], requires_grad=True), tl.tensor([2.0], requires_grad=True)
    (a + b).sum().backward()  # Add.backward hands the same array to both inputs
    (a * 10.0).sum().backward()
    assert a.grad.item() == 11.0 and b.grad.item() == 1.0


def test_unbroadcast_to_leaf_shapes():
    a = tl.randn(3, 1, 4, dtype=tl.float64, requires_grad=True)
    b = tl.randn(5, 1, dtype=tl.float64, requires_grad=True)
    (a * b).sum().backward()
    assert a.grad.shape == (3, 1, 4) and b.grad.shape == (5, 1)
    np.testing.assert_allclose(a.grad.numpy(), np.broadcast_to(b.detach().numpy().sum(), (3, 1, 4)) * 1)
    np.testing.assert_allclose(b.grad.numpy(), np.full((5, 1), a.detach().numpy().sum()))


def test_graph_is_freed_after_backward():
    x = tl.randn(4, requires_grad=True)
    hidden = x * 2
    probe = weakref.ref(hidden)
    z = hidden.exp().sum()
    del hidden
    gc.collect()
    assert probe() is not None  # the graph keeps the intermediate alive until backward
    z.backward()
    gc.collect()
    assert probe() is None
    with pytest.raises(RuntimeError, match="second time"):
        z.backward()


def test_retain_graph_allows_a_second_backward():
    x = tl.tensor([1.0, 2.0], requires_grad=True)
    z = (x * x).sum()
    z.backward(retain_graph=True)
    z.backward()
    np.testing.assert_allclose(x.grad.numpy(), [4.0, 8.0])


def test_no_grad_records_nothing():
    x = tl.randn(3, requires_grad=True)
    with tl.no_grad():
        y = x * 2
    assert not y.requires_grad and y.grad_fn is None
    assert (x * 2).requires_grad

    @tl.no_grad()
    def f(t):
        return t + 1

    assert not f(x).requires_grad
    assert tl.is_grad_enabled()


def test_backward_on_non_scalar_needs_gradient():
    x = tl.randn(2, 3, requires_grad=True)
    y = x * 2
    with pytest.raises(RuntimeError, match=r"scalar output.*\(2, 3\)"):
        y.backward()
    y.backward(tl.ones(2, 3))
    np.testing.assert_allclose(x.grad.numpy(), np.full((2, 3), 2.0))


def test_backward_gradient_shape_checked():
    y = tl.randn(2, requires_grad=True) * 2
    with pytest.raises(RuntimeError, match=r"\(3,\).*\(2,\)"):
        y.backward(tl.ones(3))


def test_backward_without_grad_raises():
    with pytest.raises(RuntimeError, match="does not require grad"):
        tl.ones(2).sum().backward()


def test_detach_cuts_the_graph():
    x = tl.tensor([3.0], requires_grad=True)
    y = x * x.detach()
    y.sum().backward()
    assert x.grad.item() == 3.0


def test_integer_tensors_cannot_require_grad():
    with pytest.raises(RuntimeError, match="floating-point"):
        tl.tensor([1, 2], requires_grad=True)


def test_leaf_and_non_leaf_gradients():
    x = tl.tensor([1.0, 2.0], requires_grad=True)
    h = x * 2
    h.sum().backward()
    assert x.is_leaf and not h.is_leaf
    assert h.grad is None  # only leaves keep .grad, as in PyTorch


def test_gradcheck_reports_a_wrong_gradient():
    from tensorlib.autograd import Function

    class BadSquare(Function):
        def forward(self, x):
            self.x = x
            return x * x

        def backward(self, g):
            return g * self.x  # missing the factor 2

    x = tl.randn(3, dtype=tl.float64, requires_grad=True)
    with pytest.raises(tl.GradcheckError, match="analytic"):
        tl.gradcheck(BadSquare.apply, [x])
    with pytest.raises(TypeError, match="float64"):
        tl.gradcheck(lambda t: t * 2, [tl.randn(3, requires_grad=True)])


def test_a_decorated_generator_runs_its_steps_without_recording():
    x = tl.ones(2, requires_grad=True)

    @tl.no_grad()
    def steps():
        received = yield (x * 2).requires_grad
        yield received, tl.is_grad_enabled()

    generator = steps()
    assert next(generator) is False and tl.is_grad_enabled()  # the caller's own mode between steps
    assert generator.send("sent") == ("sent", False)
    assert list(tl.inference_mode(steps)()) == [False, (None, False)]


def test_one_decorator_used_from_two_threads_restores_each_threads_mode():
    """Grad mode is per thread; each call of a decorated function restores its own thread's mode even when
    calls from two threads overlap (they shared one saved mode before)."""
    import threading

    inside, first_out, entered, results = threading.Barrier(2), threading.Event(), [], {}

    @tl.no_grad()
    def overlapping(name):
        entered.append(name)
        inside.wait(timeout=5)  # both threads are inside at once
        if entered[0] != name:
            first_out.wait(timeout=5)  # the first one in leaves first

    def run(name, mode):
        tl.set_grad_enabled(mode)
        overlapping(name)
        if entered[0] == name:
            first_out.set()
        results[name] = tl.is_grad_enabled()

    threads = [threading.Thread(target=run, args=(name, mode)) for name, mode in (("on", True), ("off", False))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == {"on": True, "off": False}
