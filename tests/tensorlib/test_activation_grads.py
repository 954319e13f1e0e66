"""The one-pass CPU gradients of tanh, sigmoid and relu (kernels.elementwise: a Numba ufunc for small arrays,
a prange kernel for large ones) and the threaded relu forward equal the array expressions they replace, bit
for bit in float32 and float64, and keep PyTorch's relu rule for NaN; other dtypes take the expression.
Gradchecks of these ops are in test_ops_gradcheck.py."""

import numpy as np
import pytest

import tensorlib as tl
from kernels import elementwise

EXPRESSIONS = {
    "tanh": lambda g, y: g * (1 - y * y),
    "sigmoid": lambda g, y: g * y * (1 - y),
    "relu": lambda g, y: np.where(y <= 0, g.dtype.type(0), g),
}


@pytest.fixture(params=["ufunc", "threads"])
def path(request, monkeypatch):
    """Run each case through the serial ufunc and through the threaded kernels (threshold lowered to 1)."""
    if request.param == "threads":
        monkeypatch.setattr(elementwise, "PARALLEL_MIN_SIZE", 1)
    return request.param


@pytest.mark.parametrize("name", sorted(EXPRESSIONS))
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
def test_gradient_equals_the_expression(name, dtype, path):
    rng = np.random.default_rng(3)
    x = tl.tensor(rng.standard_normal((4, 3, 5, 7)).astype(dtype), requires_grad=True)
    g = rng.standard_normal(x.shape).astype(dtype)
    y = getattr(tl, name)(x)
    y.backward(tl.tensor(g))
    assert x.grad.dtype == dtype
    np.testing.assert_array_equal(x.grad.numpy(), EXPRESSIONS[name](g, y.detach().numpy()).astype(dtype))


def test_relu_forward_equals_numpy_maximum_on_nan_and_signed_zeros(path):
    x = np.array([-1.0, -0.0, 0.0, 2.0, np.nan, -np.inf, np.inf] * 3, np.float32)
    y = tl.relu(tl.tensor(x)).numpy()
    np.testing.assert_array_equal(y, np.maximum(x, 0))
    assert list(np.signbit(y)) == list(np.signbit(np.maximum(x, 0)))


def test_large_arrays_take_the_threaded_kernels(monkeypatch):
    calls = []
    for name in ("_relu", "_relu_grad", "_tanh_grad"):
        original = getattr(elementwise, name)
        monkeypatch.setattr(elementwise, name, lambda *a, original=original, name=name: calls.append(name) or original(*a))
    monkeypatch.setitem(elementwise._PARALLEL_GRADS, "relu", elementwise._relu_grad)
    monkeypatch.setitem(elementwise._PARALLEL_GRADS, "tanh", elementwise._tanh_grad)
    rng = np.random.default_rng(5)
    x = tl.tensor(rng.standard_normal(elementwise.PARALLEL_MIN_SIZE + 7).astype(np.float32), requires_grad=True)
    g = rng.standard_normal(x.shape).astype(np.float32)
    y = tl.relu(x)
    y.backward(tl.tensor(g))
    np.testing.assert_array_equal(x.grad.numpy(), g * (x.detach().numpy() > 0))
    t = tl.tanh(tl.tensor(x.detach().numpy(), requires_grad=True))
    t.backward(tl.tensor(g))
    assert calls == ["_relu", "_relu_grad", "_tanh_grad"]


def test_relu_treats_nan_like_pytorch(path):
    # torch 2.13: torch.relu(x).backward(g) with x = [-1, 2, nan], g = [nan, 1, 5] gives [0, 1, 5]: a NaN
    # gradient at a clamped output becomes 0, and a NaN output passes its gradient (threshold_backward)
    x = tl.tensor(np.array([-1.0, 2.0, np.nan], np.float32), requires_grad=True)
    tl.relu(x).backward(tl.tensor(np.array([np.nan, 1.0, 5.0], np.float32)))
    np.testing.assert_array_equal(x.grad.numpy(), [0.0, 1.0, 5.0])
    # the same through the fused conv + ReLU, whose backward is relu's
    x = tl.tensor(np.array([[[[-1.0, 2.0, np.nan]]]], np.float32), requires_grad=True)
    w = tl.tensor(np.ones((1, 1, 1, 1), np.float32))
    tl.conv2d_relu(x, w).backward(tl.tensor(np.array([[[[np.nan, 1.0, 5.0]]]], np.float32)))
    np.testing.assert_array_equal(x.grad.numpy().reshape(-1), [0.0, 1.0, 5.0])


def test_relu_of_a_non_contiguous_view(path):
    base = np.arange(-12, 12, dtype=np.float64).reshape(4, 6)
    x = tl.tensor(base[:, ::2].T, requires_grad=True)
    tl.relu(x).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), (base[:, ::2].T > 0).astype(np.float64))
