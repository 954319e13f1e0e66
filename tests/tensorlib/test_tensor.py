"""Tensor creation, properties, conversion, operators and printing."""

import numpy as np
import pytest

import tensorlib as tl


def test_tensor_infers_pytorch_dtypes():
    assert tl.tensor([1.0, 2.0]).dtype == tl.float32
    assert tl.tensor([1, 2]).dtype == tl.int64
    assert tl.tensor([True, False]).dtype == tl.bool
    assert tl.tensor(np.zeros(2)).dtype == tl.float64  # NumPy arrays keep their dtype
    assert tl.tensor([1, 2], dtype=tl.float64).dtype == np.float64


def test_tensor_copies_its_data():
    source = np.arange(3.0)
    t = tl.tensor(source)
    source[0] = 10
    assert t[0].item() == 0.0


def test_properties():
    t = tl.randn(2, 3, 4, requires_grad=True)
    assert t.shape == (2, 3, 4) and t.ndim == 3 and t.device == "cpu" and t.requires_grad
    assert t.size() == (2, 3, 4) and t.size(1) == 3 and t.numel() == 24 and len(t) == 2
    assert t.grad is None and t.is_leaf


@pytest.mark.parametrize("make,expected", [
    (lambda: tl.zeros(2, 3), np.zeros((2, 3))),
    (lambda: tl.ones((2, 3)), np.ones((2, 3))),
    (lambda: tl.full((2,), 7.5), np.full(2, 7.5)),
    (lambda: tl.arange(5), np.arange(5)),
    (lambda: tl.arange(1, 2, 0.25), np.arange(1, 2, 0.25)),
    (lambda: tl.zeros_like(tl.ones(3, dtype=tl.float64)), np.zeros(3)),
    (lambda: tl.ones_like(tl.zeros(2, 2)), np.ones((2, 2))),
])
def test_creation(make, expected):
    t = make()
    np.testing.assert_array_equal(t.numpy(), expected)
    assert t.dtype in (tl.float32, tl.float64, tl.int64)


def test_creation_dtypes():
    assert tl.full((2,), 3).dtype == tl.int64
    assert tl.arange(3).dtype == tl.int64 and tl.arange(0.0, 1.0, 0.5).dtype == tl.float32
    assert tl.empty(2, 3).shape == (2, 3) and tl.zeros(0, 3).shape == (0, 3)
    assert tl.randn(2, dtype=tl.float64).dtype == tl.float64


def test_manual_seed_reproduces_draws():
    tl.manual_seed(123)
    a, b = tl.randn(5), tl.rand(3)
    tl.manual_seed(123)
    np.testing.assert_array_equal(a.numpy(), tl.randn(5).numpy())
    np.testing.assert_array_equal(b.numpy(), tl.rand(3).numpy())
    assert ((b.numpy() >= 0) & (b.numpy() < 1)).all()


def test_item_numpy_detach():
    t = tl.tensor([[2.5]], requires_grad=True)
    assert t.item() == 2.5
    with pytest.raises(RuntimeError, match="detach"):
        t.numpy()
    assert t.detach().numpy().shape == (1, 1)
    with pytest.raises(ValueError, match="one element"):
        tl.ones(2).item()


def test_to_changes_dtype_differentiably():
    x = tl.tensor([1.0, 2.0], requires_grad=True)
    y = x.to(tl.float64)
    assert y.dtype == tl.float64 and y.requires_grad
    (y * y).sum().backward()
    assert x.grad.dtype == tl.float32
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 4.0])
    assert x.to("cpu") is x


def test_cuda_request_explains_what_is_missing():
    if tl.cuda_is_available():
        pytest.skip("a GPU is usable here")
    with pytest.raises(RuntimeError, match="device 'cuda' is not usable: "):
        tl.ones(2).to("cuda")
    with pytest.raises(RuntimeError, match="not usable"):
        tl.zeros(2, device="cuda")
    with pytest.raises(ValueError, match="device must be"):
        tl.ones(2).to("tpu")


def test_operators_and_reflected_forms():
    a = tl.tensor([1.0, 2.0, 4.0])
    np.testing.assert_allclose((2 + a).numpy(), [3, 4, 6])
    np.testing.assert_allclose((2 - a).numpy(), [1, 0, -2])
    np.testing.assert_allclose((2 * a).numpy(), [2, 4, 8])
    np.testing.assert_allclose((2 / a).numpy(), [2, 1, 0.5])
    np.testing.assert_allclose((2 ** a).numpy(), [2, 4, 16])
    np.testing.assert_allclose((-a).numpy(), [-1, -2, -4])
    np.testing.assert_allclose((np.float32(2) * a).numpy(), [2, 4, 8])
    assert (a * 2.5).dtype == tl.float32  # a Python scalar does not promote


def test_integer_arithmetic_follows_pytorch():
    i = tl.tensor([1, 2, 3])
    assert (i * 2).dtype == tl.int64
    assert (i * 0.5).dtype == tl.float32
    assert (i / 2).dtype == tl.float32


def test_comparisons_give_bool_tensors():
    a = tl.tensor([1.0, 2.0, 3.0], requires_grad=True)
    for result, expected in [(a > 2, [0, 0, 1]), (a >= 2, [0, 1, 1]), (a < 2, [1, 0, 0]), (a <= 2, [1, 1, 0]),
                             (a == 2, [0, 1, 0]), (a != 2, [1, 0, 1])]:
        assert result.dtype == tl.bool and not result.requires_grad
        np.testing.assert_array_equal(result.numpy(), np.array(expected, dtype=bool))
    np.testing.assert_array_equal(((a > 1) & (a < 3)).numpy(), [False, True, False])
    np.testing.assert_array_equal((~(a > 1)).numpy(), [True, False, False])


def test_repr_like_pytorch():
    assert repr(tl.tensor([1.0, 2.0])) == "tensor([1., 2.])"
    assert repr(tl.tensor([1, 2])) == "tensor([1, 2])"
    assert "requires_grad=True" in repr(tl.tensor([1.0], requires_grad=True))
    assert "grad_fn=<MulBackward>" in repr(tl.tensor([1.0], requires_grad=True) * 2)
    assert "dtype=float64" in repr(tl.tensor(np.ones(2)))


def test_setitem_and_in_place_helpers():
    t = tl.zeros(3)
    t[1] = 5.0
    t[tl.tensor([0, 2])] = tl.tensor([1.0, 2.0])
    np.testing.assert_array_equal(t.numpy(), [1, 5, 2])
    t.fill_(4.0)
    np.testing.assert_array_equal(t.numpy(), [4, 4, 4])
    leaf = tl.ones(2, requires_grad=True)
    with pytest.raises(RuntimeError, match="in-place"):
        leaf.copy_(tl.zeros(2))
    with tl.no_grad():
        leaf.copy_(tl.zeros(2))
    np.testing.assert_array_equal(leaf.detach().numpy(), [0, 0])


def test_where_and_clamp_values():
    x = tl.tensor([-2.0, 0.5, 3.0])
    np.testing.assert_array_equal(tl.where(x > 0, x, tl.zeros(3)).numpy(), [0, 0.5, 3])
    np.testing.assert_array_equal(x.clamp(-1, 1).numpy(), [-1, 0.5, 1])
    np.testing.assert_array_equal(x.clamp(min=0).numpy(), [0, 0.5, 3])
    np.testing.assert_array_equal(x.relu().numpy(), [0, 0.5, 3])


def test_array_conversion_honours_copy():
    """np.array(t, copy=True) is the caller's own memory; np.asarray(t) shares it, as with PyTorch's CPU tensors."""
    t = tl.zeros(3)
    np.array(t, copy=True)[0] = 1
    assert t.tolist() == [0.0, 0.0, 0.0]
    np.asarray(t)[1] = 2
    assert t.tolist() == [0.0, 2.0, 0.0]
    assert np.array(t, dtype=np.float64).dtype == np.float64


def test_register_hook_method_doubles_the_gradient():
    x = tl.tensor([1.0, 2.0], requires_grad=True)
    handle = x.register_hook(lambda grad: grad * 2)
    (x * 3).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [6.0, 6.0])
    handle.remove()
    x.grad = None
    (x * 3).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [3.0, 3.0])


def test_generator_is_exported():
    assert tl.Generator().manual_seed(5).initial_seed() == 5
    a = tl.randn(3, generator=tl.Generator().manual_seed(5))
    np.testing.assert_array_equal(a.numpy(), tl.randn(3, generator=tl.Generator().manual_seed(5)).numpy())


def test_data_is_a_detached_tensor_sharing_memory_and_array_is_the_raw_array():
    """As PyTorch's .data: a Tensor cut from autograd on the same memory; assigning a tensor replaces the values."""
    x = tl.tensor([[0.1, 0.9, 0.0], [0.8, 0.1, 0.1]], requires_grad=True)
    data = x.data
    assert type(data) is tl.Tensor and not data.requires_grad and data.grad_fn is None
    assert data.array is x.array and isinstance(x.array, np.ndarray)
    values, predicted = x.data.max(1)  # the classic accuracy idiom
    assert predicted.tolist() == [1, 0] and values.tolist() == pytest.approx([0.9, 0.8])
    x.data.mul_(2)  # writes through, unseen by autograd
    np.testing.assert_allclose(x.detach().numpy()[0], [0.2, 1.8, 0.0])
    replacement = tl.zeros(3)
    x.data = replacement  # a replacement may change the shape, as in PyTorch, and shares the given memory
    assert x.shape == (3,) and x.requires_grad and np.shares_memory(x.array, replacement.array)
    with pytest.raises(RuntimeError, match="data set to a tensor that requires gradients must be floating point, "
                                           "got int64"):
        x.data = tl.tensor([1, 2, 3])
    with pytest.raises(TypeError, match=r"Tensor.data must be set to a Tensor, got ndarray \(the raw array is "
                                        r"\.array\)"):
        x.data = np.zeros(3)


def test_sgd_through_data_updates_the_parameter():
    w = tl.tensor([1.0, -2.0], requires_grad=True)
    (w * w).sum().backward()
    w.data = w.data - 0.25 * w.grad
    np.testing.assert_allclose(w.detach().numpy(), [0.5, -1.0])
    w.data.sub_(0.5 * w.grad)
    np.testing.assert_allclose(w.detach().numpy(), [-0.5, 1.0])


def test_a_gradient_of_another_shape_is_not_accumulated():
    w = tl.tensor([1.0, 2.0, 3.0], requires_grad=True)
    w.sum().backward()
    w.data = tl.zeros(4)
    with pytest.raises(RuntimeError, match=r"a gradient of shape \(4,\) cannot be accumulated into .grad of shape "
                                           r"\(3,\); set .grad = None"):
        w.sum().backward()
    w.grad = None
    w.sum().backward()
    np.testing.assert_array_equal(w.grad.numpy(), np.ones(4))
