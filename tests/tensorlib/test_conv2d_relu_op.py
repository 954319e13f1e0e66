"""tl.conv2d_relu: relu(conv2d(...)) as one graph node. Values and gradients against the two-op form,
gradcheck over conv2d's options away from the ReLU's kink, what backward saves, and conv2d's argument
handling."""

import numpy as np
import pytest
from test_conv_pool_ops import CONV_CASES  # (N, C, H, W, K, R, S, stride, padding, dilation, groups)

import tensorlib as tl
from tensorlib.ops.conv import Conv2dReLU

KINK = 1e-3  # gradcheck's eps is 1e-6: no pre-activation may lie this close to 0 (exact zeros are constant)


def kink_free_inputs(case, bias, start_seed=0):
    """Fresh float64 leaves for ``case`` whose pre-activations all lie more than KINK away from 0, or are 0
    because the window sees only padding (no bias): there the output does not depend on the inputs at all."""
    n, c, h, w, k, r, s, stride, padding, dilation, groups = case
    for seed in range(start_seed, start_seed + 100):
        rng = np.random.default_rng(seed)
        x = tl.tensor(rng.standard_normal((n, c, h, w)), requires_grad=True)
        weight = tl.tensor(rng.standard_normal((k, c // groups, r, s)), requires_grad=True)
        b = tl.tensor(rng.standard_normal(k), requires_grad=True) if bias else None
        with tl.no_grad():
            pre = tl.conv2d(x, weight, b, stride, padding, dilation, groups).numpy()
        if np.all((np.abs(pre) > KINK) | (pre == 0)):
            return x, weight, b
    raise AssertionError(f"no kink-free inputs for {case} in 100 seeds")


def args(case):
    return case[7:]


@pytest.mark.parametrize("case", CONV_CASES, ids=str)
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no_bias"])
def test_gradcheck(case, bias):
    x, weight, b = kink_free_inputs(case, bias)
    inputs = [x, weight] + ([b] if bias else [])
    assert tl.gradcheck(lambda *t: tl.conv2d_relu(t[0], t[1], t[2] if bias else None, *args(case)), inputs)


@pytest.mark.parametrize("case", CONV_CASES, ids=str)
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no_bias"])
def test_values_and_gradients_equal_conv2d_then_relu(case, bias):
    x, weight, b = kink_free_inputs(case, bias, start_seed=1000)
    inputs = [t for t in (x, weight, b) if t is not None]

    def run(fn):
        for t in inputs:
            t.grad = None
        out = fn(x, weight, b, *args(case))
        out.backward(tl.tensor(np.random.default_rng(7).standard_normal(out.shape)))  # the same for both
        return out.detach().numpy(), [t.grad.numpy() for t in inputs]

    fused, fused_grads = run(tl.conv2d_relu)
    separate, separate_grads = run(lambda *a: tl.conv2d(*a).relu())
    np.testing.assert_array_equal(fused, separate)
    for got, expected in zip(fused_grads, separate_grads):
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)


def test_one_node_that_saves_its_output():
    """Backward masks with the saved output: no pre-activation and no mask are kept."""
    x, weight, b = kink_free_inputs(CONV_CASES[0], True)
    out = tl.conv2d_relu(x, weight, b, padding=1)
    node = out._ctx
    assert isinstance(node, Conv2dReLU) and node.inputs[:3] == (x, weight, b)
    assert node.y is out.array
    assert not any(isinstance(v, np.ndarray) and v.dtype == bool for v in vars(node).values())


def test_all_clamped_gives_zero_gradients():
    """At an output of 0 the gradient is 0 (PyTorch's relu): a bias far below zero blocks every gradient."""
    rng = np.random.default_rng(2)
    x = tl.tensor(rng.standard_normal((2, 3, 6, 6)), requires_grad=True)
    weight = tl.tensor(rng.standard_normal((4, 3, 3, 3)), requires_grad=True)
    b = tl.tensor(np.full(4, -100.0), requires_grad=True)
    out = tl.conv2d_relu(x, weight, b)
    out.sum().backward()
    assert not out.detach().numpy().any()
    assert not x.grad.numpy().any() and not weight.grad.numpy().any() and not b.grad.numpy().any()


@pytest.mark.parametrize("kernel, dilation", [(3, 1), (4, 1), (2, 3)])
def test_same_padding(kernel, dilation):
    """Even kernel extents pad one more zero after than before, through the same path as conv2d."""
    case = (1, 2, 6, 7, 3, kernel, kernel, 1, "same", dilation, 1)
    x, weight, b = kink_free_inputs(case, True)
    out = tl.conv2d_relu(x, weight, b, padding="same", dilation=dilation)
    assert out.shape == (1, 3, 6, 7)
    expected = tl.conv2d(x, weight, b, padding="same", dilation=dilation).relu()
    np.testing.assert_array_equal(out.detach().numpy(), expected.detach().numpy())
    assert tl.gradcheck(lambda *t: tl.conv2d_relu(*t, padding="same", dilation=dilation), [x, weight, b])


def test_unbatched_input_and_no_grad():
    rng = np.random.default_rng(3)
    x, weight = tl.tensor(rng.standard_normal((2, 5, 5))), tl.tensor(rng.standard_normal((3, 2, 3, 3)))
    with tl.no_grad():
        out = tl.conv2d_relu(x, weight)
    assert out.shape == (3, 3, 3) and out._ctx is None
    np.testing.assert_array_equal(out.numpy(), tl.conv2d(x, weight).relu().numpy())


@pytest.mark.parametrize("bad, match", [
    (dict(x=(1, 4, 8, 8)), r"3 input channels.*\(1, 4, 8, 8\)"),
    (dict(stride=0), "stride must be positive"),
    (dict(padding=-1), "padding must be non-negative"),
    (dict(stride=2, padding="same"), r"padding='same' needs stride 1, got stride 2"),
])
def test_bad_arguments_like_conv2d(bad, match):
    x = tl.randn(*bad.get("x", (1, 3, 8, 8)))
    with pytest.raises(ValueError, match=match):
        tl.conv2d_relu(x, tl.randn(2, 3, 3, 3), stride=bad.get("stride", 1), padding=bad.get("padding", 0))


@pytest.mark.cudasim
def test_on_the_simulated_device_matches_the_cpu():
    x, weight, b = kink_free_inputs(CONV_CASES[1], True)
    out = tl.conv2d_relu(x, weight, b, *args(CONV_CASES[1]))
    out.sum().backward()
    on_cpu = [t.grad.numpy() for t in (x, weight, b)]
    xc, wc, bc = (tl.tensor(t.detach().numpy(), device="cuda", requires_grad=True) for t in (x, weight, b))
    device_out = tl.conv2d_relu(xc, wc, bc, *args(CONV_CASES[1]))
    assert device_out.device == "cuda"
    device_out.sum().backward()
    np.testing.assert_allclose(device_out.cpu().detach().numpy(), out.detach().numpy(), rtol=1e-10, atol=1e-12)
    for t, expected in zip((xc, wc, bc), on_cpu):
        np.testing.assert_allclose(t.grad.cpu().numpy(), expected, rtol=1e-10, atol=1e-12)
