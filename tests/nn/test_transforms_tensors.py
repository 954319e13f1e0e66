"""ToTensor's dtypes and Normalize on tensors, as torchvision: Normalize of a tensor is differentiable tensor
arithmetic (a normalisation inside a model passes gradients to its input) and may work in place."""

import numpy as np
import pytest
from PIL import Image

import tensorlib as tl
from nn.data import transforms as T


@pytest.mark.parametrize("shape", [(3, 4, 5), (2, 1, 3, 3)])
def test_normalize_of_a_tensor_passes_gradients(shape):
    rng = np.random.default_rng(0)
    channels = shape[-3]
    mean, std = rng.random(channels).tolist(), (rng.random(channels) + 0.5).tolist()
    x = tl.tensor(rng.random(shape), requires_grad=True)
    weights = rng.standard_normal(shape)
    (T.Normalize(mean, std)(x) * tl.tensor(weights)).sum().backward()
    expected = weights / np.asarray(std)[:, None, None]
    np.testing.assert_allclose(x.grad.numpy(), expected, rtol=1e-15)


def test_normalize_of_a_tensor_rounds_as_sub_then_div_and_can_work_in_place():
    rng = np.random.default_rng(1)
    data = rng.random((3, 6, 7), dtype=np.float32)
    mean, std = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
    m, s = (np.asarray(v, dtype=np.float32)[:, None, None] for v in (mean, std))
    expected = (data - m) / s
    np.testing.assert_array_equal(T.Normalize(mean, std)(tl.tensor(data)).numpy(), expected)
    np.testing.assert_array_equal(T.Normalize(mean, std)(data).numpy(), expected)  # an array: same numbers
    x = tl.tensor(data.copy())
    out = T.Normalize(mean, std, inplace=True)(x)
    assert out is x
    np.testing.assert_array_equal(x.numpy(), expected)
    untouched = tl.tensor(data.copy())
    T.Normalize(mean, std)(untouched)
    np.testing.assert_array_equal(untouched.numpy(), data)


@pytest.mark.parametrize("dtype", [np.int16, np.int32, np.int64, np.uint16, np.bool_, np.float64])
def test_to_tensor_keeps_other_dtypes_unscaled(dtype):
    rng = np.random.default_rng(2)
    image = rng.integers(0, 2 if dtype == np.bool_ else 1000, size=(4, 5, 3)).astype(dtype)
    out = T.ToTensor()(image)
    assert out.dtype == dtype and out.shape == (3, 4, 5)
    np.testing.assert_array_equal(out.numpy(), image.transpose(2, 0, 1))


def test_to_tensor_of_uint8_follows_the_default_dtype():
    image = np.arange(24, dtype=np.uint8).reshape(2, 4, 3) * 10
    previous = tl.get_default_dtype()
    tl.set_default_dtype(tl.float64)
    try:
        out = T.ToTensor()(image)
    finally:
        tl.set_default_dtype(previous)
    assert out.dtype == np.float64
    np.testing.assert_array_equal(out.numpy(), image.transpose(2, 0, 1).astype(np.float64) / 255)
    assert T.ToTensor()(image).dtype == np.float32


def test_to_tensor_of_pil_bilevel_and_integer_images():
    bits = np.array([[True, False, True], [False, False, True]])
    out = T.ToTensor()(Image.fromarray(bits).convert("1"))
    assert out.dtype == np.float32 and out.shape == (1, 2, 3)
    np.testing.assert_array_equal(out.numpy()[0], bits.astype(np.float32))
    values = np.array([[70000, -5], [3, 123456]], dtype=np.int32)
    out = T.ToTensor()(Image.fromarray(values, mode="I"))
    assert out.dtype == np.int32
    np.testing.assert_array_equal(out.numpy()[0], values)


def test_to_tensor_refuses_what_is_not_a_number():
    with pytest.raises(TypeError, match="ToTensor expects an image of numbers .* got <U1"):
        T.ToTensor()(np.array([["a", "b"], ["c", "d"]]))


@pytest.mark.parametrize("transform, expected", [
    (lambda x: T.RandomHorizontalFlip(p=1.0)(x), lambda w: w[..., ::-1]),
    (lambda x: T.RandomVerticalFlip(p=1.0)(x), lambda w: w[..., ::-1, :]),
    (lambda x: T.CenterCrop(2)(x), lambda w: np.pad(w, ((0, 0), (1, 1), (2, 1)))),
    (lambda x: T.Pad(1)(x), lambda w: w[:, 1:-1, 1:-1]),
    (lambda x: T.Pad(1, padding_mode="edge")(x), None),
    (lambda x: T.Pad(2, padding_mode="reflect")(x), None),
])
def test_crops_flips_and_padding_of_a_tensor_pass_gradients(transform, expected):
    rng = np.random.default_rng(3)
    data = rng.random((2, 4, 5))
    x = tl.tensor(data, requires_grad=True)
    with tl.no_grad():
        values = transform(tl.tensor(data))  # the same transform outside autograd: the array path
    out = transform(x)
    np.testing.assert_array_equal(out.detach().numpy(), values.numpy())
    weights = rng.standard_normal(out.shape)
    (out * tl.tensor(weights)).sum().backward()
    if expected is not None:
        np.testing.assert_array_equal(x.grad.numpy(), expected(weights))
    else:  # the gradient of a linear map: its adjoint, checked on the sum of weights it moves
        assert x.grad.shape == data.shape and np.isclose(x.grad.numpy().sum(), weights.sum())


def test_a_transform_that_would_cut_the_gradient_raises():
    x = tl.tensor(np.random.default_rng(4).random((3, 4, 4)), requires_grad=True)
    with pytest.raises(TypeError, match="would cut its gradient"):
        T.adjust_brightness(x, 1.5)
    with tl.no_grad():
        assert T.adjust_brightness(x, 1.5).shape == (3, 4, 4)
    assert T.adjust_brightness(x.detach(), 1.5).shape == (3, 4, 4)
