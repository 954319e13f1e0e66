"""adaptive_max_pool2d and nn.AdaptiveMaxPool2d: values and indices against float64 loops with PyTorch's
windows, ties and NaN rule; gradients by finite differences and through overlapping windows; errors."""

import math

import numpy as np
import pytest

import nn
import tensorlib as tl


def adaptive_max_pool2d_reference(x, out_h, out_w):
    """PyTorch's loop: window i spans [floor(i*H/out), ceil((i+1)*H/out)); an element replaces the running max
    when it is larger or NaN (so the first maximum wins ties and the last NaN wins over everything)."""
    N, C, H, W = x.shape
    y, indices = np.empty((N, C, out_h, out_w)), np.empty((N, C, out_h, out_w), np.int64)
    for n in range(N):
        for c in range(C):
            for i in range(out_h):
                for j in range(out_w):
                    best, best_index = -math.inf, -1
                    for h in range(i * H // out_h, math.ceil((i + 1) * H / out_h)):
                        for w in range(j * W // out_w, math.ceil((j + 1) * W / out_w)):
                            if x[n, c, h, w] > best or math.isnan(x[n, c, h, w]) or best_index < 0:
                                best, best_index = x[n, c, h, w], h * W + w
                    y[n, c, i, j], indices[n, c, i, j] = best, best_index
    return y, indices


def scatter_reference(g, indices, x_shape):
    dx = np.zeros(x_shape)
    N, C = x_shape[:2]
    for n in range(N):
        for c in range(C):
            np.add.at(dx[n, c].reshape(-1), indices[n, c].reshape(-1), g[n, c].reshape(-1))
    return dx


CASES = [
    # (input shape, output_size, resolved (P, Q))
    ((2, 3, 6, 4), (3, 2), (3, 2)),  # sizes divide: disjoint windows
    ((1, 2, 7, 5), (3, 4), (3, 4)),  # batch 1, sizes do not divide: overlapping windows
    ((2, 1, 5, 6), 1, (1, 1)),  # global max
    ((1, 2, 3, 4), (5, 6), (5, 6)),  # output larger than the input: windows repeat elements
    ((2, 2, 5, 7), (None, 3), (5, 3)),  # None keeps the input's size
    ((1, 3, 4, 6), (2, None), (2, 6)),
    ((1, 1, 9, 2), 4, (4, 4)),
]


@pytest.mark.parametrize("shape,output_size,resolved", CASES, ids=str)
def test_matches_the_reference_and_gradcheck(shape, output_size, resolved):
    rng = np.random.default_rng(0)
    x = tl.tensor(rng.standard_normal(shape), requires_grad=True)
    y, indices = tl.adaptive_max_pool2d(x, output_size, return_indices=True)
    expected, expected_indices = adaptive_max_pool2d_reference(x.detach().numpy(), *resolved)
    np.testing.assert_array_equal(y.detach().numpy(), expected)
    np.testing.assert_array_equal(indices.numpy(), expected_indices)
    assert indices.dtype == tl.int64 and not indices.requires_grad
    assert tl.gradcheck(lambda t: tl.adaptive_max_pool2d(t, output_size), [x])


def test_float32():
    x = np.random.default_rng(1).standard_normal((2, 3, 7, 5)).astype(np.float32)
    y, indices = tl.adaptive_max_pool2d(tl.tensor(x), (3, 4), return_indices=True)
    expected, expected_indices = adaptive_max_pool2d_reference(x.astype(np.float64), 3, 4)
    assert y.dtype == tl.float32
    np.testing.assert_array_equal(y.numpy(), expected)
    np.testing.assert_array_equal(indices.numpy(), expected_indices)


def test_ties_take_the_first_maximum_and_gradients_add_up_in_overlaps():
    x = np.array([[1.0, 2.0, 3.0, 3.0], [3.0, 2.0, 7.0, 1.0], [7.0, 7.0, 0.0, 0.0]]).reshape(1, 1, 3, 4)
    t = tl.tensor(x, requires_grad=True)
    y, indices = tl.adaptive_max_pool2d(t, (2, 3), return_indices=True)
    np.testing.assert_array_equal(indices.numpy(), [[[[4, 6, 6], [8, 6, 6]]]])  # PyTorch's indices
    g = np.arange(6.0).reshape(1, 1, 2, 3)
    y.backward(tl.tensor(g))
    np.testing.assert_array_equal(t.grad.numpy(), scatter_reference(g, indices.numpy(), x.shape))
    assert t.grad.numpy()[0, 0, 1, 2] == 0 + 1 + 2 + 4 + 5  # picked by four overlapping windows


def test_nan_wins_with_the_index_of_the_last_nan():
    x = np.array([[1.0, np.nan, 3.0, np.nan], [np.nan, 2.0, 7.0, 1.0], [7.0, 7.0, 0.0, 0.0]]).reshape(1, 1, 3, 4)
    t = tl.tensor(x, requires_grad=True)
    y, indices = tl.adaptive_max_pool2d(t, 1, return_indices=True)
    assert np.isnan(y.item()) and indices.item() == 4  # PyTorch: the last NaN in row-major order
    y.sum().backward()
    np.testing.assert_array_equal(t.grad.numpy().reshape(-1), np.eye(12)[4])
    y, indices = tl.adaptive_max_pool2d(tl.tensor(x), (2, 2), return_indices=True)
    expected, expected_indices = adaptive_max_pool2d_reference(x, 2, 2)
    np.testing.assert_array_equal(y.numpy(), expected)
    np.testing.assert_array_equal(indices.numpy(), expected_indices)


def test_all_minus_infinity_picks_the_first_element():
    y, indices = tl.adaptive_max_pool2d(tl.full((1, 1, 2, 2), -math.inf), 1, return_indices=True)
    assert y.item() == -math.inf and indices.item() == 0


def test_unbatched_input():
    x = tl.tensor(np.random.default_rng(2).standard_normal((2, 5, 6)), requires_grad=True)
    y, indices = tl.adaptive_max_pool2d(x, (2, None), return_indices=True)
    batched, batched_indices = tl.adaptive_max_pool2d(x.unsqueeze(0), (2, 6), return_indices=True)
    assert y.shape == indices.shape == (2, 2, 6)
    np.testing.assert_array_equal(y.detach().numpy(), batched[0].detach().numpy())
    np.testing.assert_array_equal(indices.numpy(), batched_indices[0].numpy())
    assert tl.gradcheck(lambda t: tl.adaptive_max_pool2d(t, (2, None)), [x])


def test_empty_batch():
    assert tl.adaptive_max_pool2d(tl.randn(0, 2, 3, 3), 2).shape == (0, 2, 2, 2)


@pytest.mark.parametrize("shape,output_size,error,match", [
    ((1, 2, 3, 3), 0, ValueError, r"output_size must be positive, got \(0, 0\)"),
    ((1, 2, 3, 3), (2, -1), ValueError, r"output_size must be positive, got \(2, -1\)"),
    ((1, 2, 3, 3), (1, 2, 3), TypeError, r"output_size must be an int or a pair .*got \(1, 2, 3\)"),
    ((1, 2, 3, 3), (2,), TypeError, r"output_size must be an int or a pair .*got \(2,\)"),
    ((1, 2, 3, 3), 2.0, TypeError, r"output_size must be an int or a pair of ints, got 2.0"),
    ((2, 3), 1, ValueError, r"input must be 3-D \(C, H, W\) or 4-D \(N, C, H, W\), got shape \(2, 3\)"),
    ((1, 2, 0, 3), 1, ValueError, r"needs non-zero channels, height and width, got shape \(1, 2, 0, 3\)"),
])
def test_bad_arguments_raise_naming_them(shape, output_size, error, match):
    with pytest.raises(error, match=match):
        tl.adaptive_max_pool2d(tl.randn(*shape), output_size)


def test_integer_input_is_refused():
    with pytest.raises(TypeError, match="adaptive_max_pool2d input must be a floating-point tensor, got dtype int64"):
        tl.adaptive_max_pool2d(tl.tensor(np.ones((1, 1, 3, 3), np.int64)), 2)


def test_layer():
    x = tl.randn(2, 3, 7, 5)
    np.testing.assert_array_equal(nn.AdaptiveMaxPool2d((3, None))(x).numpy(),
                                  tl.adaptive_max_pool2d(x, (3, 5)).numpy())
    y, indices = nn.AdaptiveMaxPool2d(2, return_indices=True)(x)
    assert y.shape == indices.shape == (2, 3, 2, 2)
    assert repr(nn.AdaptiveMaxPool2d((None, 3))) == "AdaptiveMaxPool2d(output_size=(None, 3))"
    assert repr(nn.AdaptiveMaxPool2d(3, return_indices=True)) == "AdaptiveMaxPool2d(output_size=3)"
