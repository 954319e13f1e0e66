"""nn.init: PyTorch's initialisers, their argument checks and the generator= keyword."""

import math

import numpy as np
import pytest

import nn
import tensorlib as tl
from nn import init


def values(tensor):
    return tensor.detach().numpy()


def truncated_normal_moments(mean, std, a, b):
    """Mean and std of N(mean, std^2) restricted to [a, b]."""
    def pdf(z):
        return math.exp(-z * z / 2) / math.sqrt(2 * math.pi)

    def cdf(z):
        return (1 + math.erf(z / math.sqrt(2))) / 2

    alpha, beta = (a - mean) / std, (b - mean) / std
    mass = cdf(beta) - cdf(alpha)
    shift = (pdf(alpha) - pdf(beta)) / mass
    variance = 1 + (alpha * pdf(alpha) - beta * pdf(beta)) / mass - shift**2
    return mean + std * shift, std * math.sqrt(variance)


@pytest.mark.parametrize("mean, std, a, b", [(0.0, 1.0, -2.0, 2.0), (1.0, 0.5, 0.0, 3.0), (0.0, 1.0, 1.0, 1.5)],
                         ids=["default", "shifted", "narrow-tail"])  # the last keeps 9% of the mass: uniform proposals
def test_trunc_normal_stays_in_bounds_with_the_truncated_moments(mean, std, a, b):
    tl.manual_seed(0)
    drawn = values(init.trunc_normal_(tl.empty(200, 100), mean, std, a, b))
    expected_mean, expected_std = truncated_normal_moments(mean, std, a, b)
    assert drawn.min() >= a and drawn.max() <= b
    assert abs(drawn.mean() - expected_mean) < 0.01 * std
    assert abs(drawn.std() / expected_std - 1) < 0.02


def test_trunc_normal_checks_its_arguments():
    with pytest.raises(RuntimeError, match="a <= b, but found a=2 > b=1"):
        init.trunc_normal_(tl.empty(3), 0, 1, 2, 1)
    for std in (0, -1, math.nan):
        with pytest.raises(ValueError, match="std > 0"):
            init.trunc_normal_(tl.empty(3), 0, std)
    with pytest.warns(UserWarning, match="mean is more than 2 std from"):
        init.trunc_normal_(tl.empty(3), mean=10)


@pytest.mark.parametrize("shape", [(3, 5), (5, 3), (6, 2, 2), (4, 4)])
@pytest.mark.parametrize("gain", [1.0, 2.0])
def test_orthogonal_gives_orthonormal_rows_or_columns(shape, gain):
    tl.manual_seed(3)
    w = values(init.orthogonal_(tl.empty(*shape, dtype=tl.float64), gain=gain)).reshape(shape[0], -1)
    gram = w @ w.T if w.shape[0] <= w.shape[1] else w.T @ w
    np.testing.assert_allclose(gram, gain**2 * np.eye(len(gram)), atol=1e-12)


def test_orthogonal_checks_its_tensor():
    with pytest.raises(ValueError, match="at least 2 dims, got shape \\(3,\\)"):
        init.orthogonal_(tl.empty(3))
    assert init.orthogonal_(tl.empty(0, 3)).shape == (0, 3)


def test_eye():
    np.testing.assert_array_equal(values(init.eye_(tl.empty(2, 3))), np.eye(2, 3))
    np.testing.assert_array_equal(values(init.eye_(tl.empty(2, 3, dtype=tl.int64))), np.eye(2, 3))  # like PyTorch
    with pytest.raises(ValueError, match="2-D tensor, got shape \\(3,\\)"):
        init.eye_(tl.empty(3))


@pytest.mark.parametrize("groups", [1, 2])
def test_dirac_makes_a_convolution_pass_its_input_through(groups):
    conv = nn.Conv2d(4, 4, 3, padding=1, groups=groups, bias=False)
    init.dirac_(conv.weight, groups)
    x = tl.randn(2, 4, 5, 5)
    np.testing.assert_array_equal(values(conv(x)), values(x))
    weight = values(init.dirac_(tl.empty(4, 2, 3), 2))  # 1-D kernels: each group keeps its first 2 channels
    expected = np.zeros((4, 2, 3))
    expected[[0, 1, 2, 3], [0, 1, 0, 1], 1] = 1
    np.testing.assert_array_equal(weight, expected)
    with pytest.raises(ValueError, match="3, 4 or 5 dims, got shape \\(3, 3\\)"):
        init.dirac_(tl.empty(3, 3))
    with pytest.raises(ValueError, match="dim 0 \\(size 4\\) divisible by groups=3"):
        init.dirac_(tl.empty(4, 2, 3, 3), 3)
    with pytest.raises(ValueError, match="groups must be a positive int, got 0"):
        init.dirac_(tl.empty(4, 2, 3, 3), 0)


def test_sparse_zeroes_a_fraction_of_each_column():
    tl.manual_seed(2)
    w = values(init.sparse_(tl.empty(10, 40), sparsity=0.25, std=0.5))
    assert ((w == 0).sum(axis=0) == 3).all()  # ceil(0.25 * 10) per column
    assert abs(w[w != 0].std() - 0.5) < 0.05
    with pytest.raises(ValueError, match="in \\[0, 1\\]; got 1.5"):
        init.sparse_(tl.empty(3, 3), 1.5)
    with pytest.raises(ValueError, match="2-D tensor"):
        init.sparse_(tl.empty(3), 0.5)


def test_uniform_and_normal_check_their_arguments():
    with pytest.raises(RuntimeError, match="uniform_ expects to return a \\[from, to\\) range, but found a=2 > b=1"):
        init.uniform_(tl.empty(3), 2, 1)
    with pytest.raises(RuntimeError, match="finite bounds, got a=0, b=inf"):
        init.uniform_(tl.empty(3), 0, math.inf)
    for std in (-1, math.nan):
        with pytest.raises(RuntimeError, match="normal_ expects std >= 0.0, but found std="):
            init.normal_(tl.empty(3), 0, std)
    np.testing.assert_array_equal(values(init.uniform_(tl.empty(3), 1, 1)), 1)
    np.testing.assert_array_equal(values(init.normal_(tl.empty(3), 2, 0)), 2)


@pytest.mark.parametrize("name", ["uniform_", "normal_", "trunc_normal_", "orthogonal_", "xavier_uniform_",
                                  "xavier_normal_", "kaiming_uniform_", "kaiming_normal_"])
def test_random_inits_refuse_integer_tensors(name):
    tensor = tl.zeros(3, 4, dtype=tl.int64)
    with pytest.raises(NotImplementedError, match="not implemented for a tensor of dtype int64"):
        getattr(init, name)(tensor)
    assert (values(tensor) == 0).all()
    np.testing.assert_array_equal(values(init.constant_(tensor, 3)), 3)  # deterministic fills are fine


def test_calculate_gain_checks_the_negative_slope():
    assert init.calculate_gain("leaky_relu") == math.sqrt(2 / (1 + 0.01**2))
    assert init.calculate_gain("leaky_relu", 0) == math.sqrt(2)
    assert init.calculate_gain("leaky_relu", 0.2) == math.sqrt(2 / 1.04)
    for param in (True, "x", [0.1]):
        with pytest.raises(ValueError, match="negative_slope \\(param\\) of leaky_relu must be a number"):
            init.calculate_gain("leaky_relu", param)
    with pytest.raises(ValueError, match="unsupported nonlinearity 'swish'; expected one of linear"):
        init.calculate_gain("swish")
    with pytest.raises(ValueError, match="negative_slope"):
        init.kaiming_uniform_(tl.empty(3, 4), a=True)


@pytest.mark.parametrize("name, args", [
    ("uniform_", (-1, 1)), ("normal_", (0, 1)), ("trunc_normal_", ()), ("orthogonal_", ()), ("sparse_", (0.5,)),
    ("xavier_uniform_", ()), ("xavier_normal_", ()), ("kaiming_uniform_", ()), ("kaiming_normal_", ()),
])
def test_generator_keyword_draws_from_the_given_generator(name, args):
    fill = getattr(init, name)
    state = tl.get_rng_state()
    first = values(fill(tl.empty(6, 5), *args, generator=np.random.default_rng(4))).copy()
    again = values(fill(tl.empty(6, 5), *args, generator=np.random.default_rng(4)))
    assert tl.get_rng_state() == state  # the global generator is not used
    np.testing.assert_array_equal(first, again)
    with pytest.raises(TypeError, match="generator must be a numpy.random.Generator or None, got int"):
        fill(tl.empty(6, 5), *args, generator=4)
