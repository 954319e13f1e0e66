"""The layers added or changed after the PyTorch comparison: every forward takes PyTorch's argument name
``input``, the new layers give their functional forms' numbers, keep PyTorch's printed forms and train/eval
behaviour, the padding layers take (left, right), and on the "cuda" device (simulator and GPU tiers) the new
layers compute what they compute on the CPU."""

import inspect

import numpy as np
import pytest

import nn
import tensorlib as tl
from nn import functional as F
from nn import layers


def draw(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


def test_every_layer_forward_takes_input_by_name():
    two_inputs = {"CosineSimilarity": ["x1", "x2"]}
    for name, cls in vars(layers).items():
        if isinstance(cls, type) and issubclass(cls, nn.Module) and not name.startswith("_") \
                and cls.__module__ == layers.__name__:
            expected = two_inputs.get(name, ["input"])
            assert list(inspect.signature(cls.forward).parameters)[1:1 + len(expected)] == expected, name
    x = tl.tensor(draw(2, 3, 6, 6, seed=1).astype(np.float32))
    for module in (nn.Conv2d(3, 2, 3), nn.ReLU(), nn.BatchNorm2d(3), nn.MaxPool2d(2), nn.Upsample(scale_factor=2),
                   nn.SELU(), nn.Softmax2d(), nn.ZeroPad2d((1, 2))):
        np.testing.assert_array_equal(module(input=x).detach().numpy(), module(x).detach().numpy())
    pooled, indices = nn.MaxPool2d(2, return_indices=True)(x)
    assert nn.MaxUnpool2d(2)(input=pooled, indices=indices, output_size=(6, 6)).shape == x.shape


REPRS = [
    (lambda: nn.SELU(), "SELU()"),
    (lambda: nn.SELU(True), "SELU(inplace=True)"),
    (lambda: nn.CELU(), "CELU(alpha=1.0)"),
    (lambda: nn.CELU(2.0, True), "CELU(alpha=2.0, inplace=True)"),
    (lambda: nn.GLU(), "GLU(dim=-1)"),
    (lambda: nn.LogSigmoid(), "LogSigmoid()"),
    (lambda: nn.Softmin(1), "Softmin(dim=1)"),
    (lambda: nn.Softmax2d(), "Softmax2d()"),
    (lambda: nn.Hardshrink(), "Hardshrink(0.5)"),
    (lambda: nn.Softshrink(0.3), "Softshrink(0.3)"),
    (lambda: nn.Tanhshrink(), "Tanhshrink()"),
    (lambda: nn.RReLU(), "RReLU(lower=0.125, upper=0.3333333333333333)"),
    (lambda: nn.RReLU(0.1, 0.3, True), "RReLU(lower=0.1, upper=0.3, inplace=True)"),
    (lambda: nn.ChannelShuffle(2), "ChannelShuffle(groups=2)"),
    (lambda: nn.AlphaDropout(), "AlphaDropout(p=0.5, inplace=False)"),
    (lambda: nn.FeatureAlphaDropout(0.3), "FeatureAlphaDropout(p=0.3, inplace=False)"),
    (lambda: nn.Dropout3d(0.1, True), "Dropout3d(p=0.1, inplace=True)"),
    (lambda: nn.MaxUnpool2d(2), "MaxUnpool2d(kernel_size=(2, 2), stride=(2, 2), padding=(0, 0))"),
    (lambda: nn.MaxUnpool2d((2, 3), 1, 1), "MaxUnpool2d(kernel_size=(2, 3), stride=(1, 1), padding=(1, 1))"),
    (lambda: nn.Upsample(scale_factor=2, mode="bicubic"), "Upsample(scale_factor=2.0, mode='bicubic')"),
    (lambda: nn.ZeroPad2d((1, 2)), "ZeroPad2d((1, 2))"),
    (lambda: nn.ConstantPad2d((1, 2), 3.5), "ConstantPad2d(padding=(1, 2), value=3.5)"),
    (lambda: nn.ReflectionPad2d([1, 2, 1, 0]), "ReflectionPad2d((1, 2, 1, 0))"),
]


@pytest.mark.parametrize("make, text", REPRS, ids=[text for _, text in REPRS])
def test_reprs_are_pytorchs(make, text):
    assert repr(make()) == text


LAYER_FUNCTIONS = [
    # (layer, its functional form, input shape)
    (nn.SELU(), F.selu, (2, 3, 4)),
    (nn.CELU(0.5), lambda x: F.celu(x, 0.5), (2, 3, 4)),
    (nn.GLU(1), lambda x: F.glu(x, 1), (2, 4, 3)),
    (nn.LogSigmoid(), F.logsigmoid, (2, 3)),
    (nn.Softmin(1), lambda x: F.softmin(x, 1), (2, 3, 4)),
    (nn.Softmax2d(), lambda x: F.softmax(x, 1), (2, 3, 4, 2)),
    (nn.Softmax2d(), lambda x: F.softmax(x, 0), (3, 4, 2)),
    (nn.Hardshrink(0.3), lambda x: F.hardshrink(x, 0.3), (4, 5)),
    (nn.Softshrink(0.3), lambda x: F.softshrink(x, 0.3), (4, 5)),
    (nn.Tanhshrink(), F.tanhshrink, (4, 5)),
    (nn.ChannelShuffle(3), lambda x: F.channel_shuffle(x, 3), (2, 6, 2, 2)),
    (nn.Upsample(size=(5, 3), mode="bicubic", align_corners=True),
     lambda x: F.interpolate(x, (5, 3), mode="bicubic", align_corners=True), (1, 2, 3, 4)),
]


@pytest.mark.parametrize("layer, function, shape", LAYER_FUNCTIONS)
def test_new_layers_compute_their_functional_form(layer, function, shape):
    x = tl.tensor(draw(*shape, seed=2))
    np.testing.assert_array_equal(layer(x).numpy(), function(x).numpy())


def test_layers_that_draw_follow_train_and_eval():
    x = tl.tensor(-np.abs(draw(30, 40, seed=3)))
    rrelu = nn.RReLU(0.1, 0.3)
    slopes = rrelu(x).numpy() / x.numpy()
    assert 0.1 <= slopes.min() and slopes.max() <= 0.3 and slopes.std() > 0.04
    np.testing.assert_allclose(rrelu.eval()(x).numpy(), 0.2 * x.numpy(), rtol=1e-15)
    with pytest.raises(ValueError, match=r"lower \(0.5\) must not be greater than upper \(0.1\)"):
        nn.RReLU(0.5, 0.1)(x)
    for module in (nn.AlphaDropout(0.5), nn.FeatureAlphaDropout(0.5), nn.Dropout3d(0.5)):
        values = tl.tensor(draw(4, 3, 2, 2, 2, seed=4))
        assert not np.array_equal(module.train()(values).numpy(), values.numpy())
        assert module.eval()(values) is values
    with pytest.raises(ValueError, match="dropout probability p must be between 0 and 1, got 2"):
        nn.AlphaDropout(2)
    inplace = tl.tensor(draw(3, 4, seed=5))
    assert nn.SELU(inplace=True)(inplace) is inplace and nn.CELU(inplace=True)(inplace) is inplace
    volumes = tl.tensor(draw(2, 3, 2, 2, 2, seed=6))
    assert nn.Dropout3d(0.5, inplace=True)(volumes) is volumes
    for module in (nn.AlphaDropout(0.5, inplace=True), nn.FeatureAlphaDropout(0.5, inplace=True)):
        before = inplace.numpy().copy()
        assert module(inplace) is not inplace  # as in PyTorch, these two compute out of place whatever the flag
        np.testing.assert_array_equal(inplace.numpy(), before)


def test_max_unpool2d_inverts_max_pool2d_where_the_maxima_were():
    values = np.abs(draw(2, 3, 6, 7, seed=6)) + 0.1  # positive: the zeros around each maximum stay below it
    pool, unpool = nn.MaxPool2d(2, return_indices=True), nn.MaxUnpool2d(2)
    pooled, indices = pool(tl.tensor(values))
    restored = unpool(pooled, indices, output_size=values.shape).numpy()
    assert restored.shape == values.shape
    np.testing.assert_array_equal(restored[restored != 0], values[restored != 0])
    np.testing.assert_array_equal(pool(tl.tensor(restored))[0].numpy(), pooled.numpy())
    assert unpool(*pool(tl.randn(1, 2, 4, 6))).shape == (1, 2, 4, 6)  # without output_size: (in - 1) * 2 + 2


def test_padding_layers_with_two_amounts_pad_the_last_dim():
    values = draw(2, 3, 4, 5, seed=7)
    x = tl.tensor(values)
    np.testing.assert_array_equal(nn.ZeroPad2d((1, 2))(x).numpy(), np.pad(values, [(0, 0)] * 3 + [(1, 2)]))
    np.testing.assert_array_equal(nn.ConstantPad2d((2, 0), 1.5)(x).numpy(),
                                  np.pad(values, [(0, 0)] * 3 + [(2, 0)], constant_values=1.5))
    np.testing.assert_array_equal(nn.ReflectionPad2d((1, 2))(x[0]).numpy(),
                                  np.pad(values[0], [(0, 0)] * 2 + [(1, 2)], mode="reflect"))
    np.testing.assert_array_equal(nn.ReplicationPad2d((2, 1))(x[0]).numpy(),
                                  np.pad(values[0], [(0, 0)] * 2 + [(2, 1)], mode="edge"))
    with pytest.raises(NotImplementedError, match=r"got 2 amounts for an input of shape \(2, 3, 4, 5\)"):
        nn.CircularPad2d((1, 1))(x)  # as in PyTorch: 2 amounts pad a 2-D or 3-D input only
    with pytest.raises(TypeError, match=r"or 2 ints \(left, right\) for the last dim only, got \(1, 2, 3\)"):
        nn.ZeroPad2d((1, 2, 3))


def test_adaptive_average_pooling_to_nothing_and_linear_errors():
    assert nn.AdaptiveAvgPool2d(0)(tl.randn(2, 3, 5, 5)).shape == (2, 3, 0, 0)
    assert nn.AdaptiveAvgPool2d(1)(tl.randn(2, 3, 4, 5, 5)).shape == (2, 3, 4, 1, 1)
    with pytest.raises(ValueError, match=r"got a 0-d input \(shape \(\)\)"):
        nn.Linear(1, 2)(tl.tensor(1.0))
    with pytest.raises(RuntimeError, match="must have the same dtype, got input float64, weight float32"):
        nn.Linear(3, 2)(tl.randn(4, 3, dtype=tl.float64))


DEVICE_CASES = {
    # name: (a layer, or a function of the input, input shape)
    "SELU": (lambda: nn.SELU(), (2, 3, 4)),
    "CELU": (lambda: nn.CELU(0.7), (2, 3, 4)),
    "GLU": (lambda: nn.GLU(1), (2, 4, 3)),
    "Softmin": (lambda: nn.Softmin(-1), (2, 3, 4)),
    "Softshrink": (lambda: nn.Softshrink(0.2), (3, 5)),
    "Hardshrink": (lambda: nn.Hardshrink(0.2), (3, 5)),
    "Tanhshrink": (lambda: nn.Tanhshrink(), (3, 5)),
    "RReLU (eval)": (lambda: nn.RReLU().eval(), (3, 5)),
    "ChannelShuffle": (lambda: nn.ChannelShuffle(2), (1, 4, 2, 3)),
    "bicubic": (lambda: nn.Upsample(size=(5, 7), mode="bicubic"), (1, 2, 3, 4)),
    "antialias": (lambda: (lambda x: F.interpolate(x, size=(2, 3), mode="bicubic", antialias=True)), (1, 2, 5, 7)),
    "max_unpool2d": (lambda: (lambda x: F.max_unpool2d(*F.max_pool2d(x, 2, return_indices=True), 2)), (1, 2, 4, 6)),
    "grid_sample": (lambda: (lambda x: F.grid_sample(
        x, F.affine_grid(tl.tensor([[[0.8, 0.3, 0.1], [-0.2, 1.1, 0.05]]], dtype=x.dtype, device=x.device),
                         (1, 2, 3, 4), align_corners=False), padding_mode="reflection", align_corners=False)),
                    (1, 2, 4, 5)),
}


def run_on(device, make, shape, dtype, seed):
    x = tl.tensor(draw(*shape, seed=seed), dtype=dtype, device=device, requires_grad=True)
    out = make()(x)
    (out * tl.tensor(draw(*out.shape, seed=seed + 1), dtype=dtype, device=device)).sum().backward()
    assert out.device == device and x.grad.device == device and out.dtype == dtype
    return out.detach().cpu().numpy(), x.grad.cpu().numpy()


@pytest.mark.parametrize("dtype", [tl.float32, tl.float64])
def test_new_layers_on_the_device(tier, dtype):
    """Forward and backward on "cuda" (the arrays' own module: CuPy, or the simulator's) equal the CPU's; the
    random layers draw from the same global generator there."""
    tolerance = dict(rtol=1e-10, atol=1e-12) if dtype == tl.float64 else dict(rtol=2e-5, atol=2e-6)
    for seed, (name, (make, shape)) in enumerate(DEVICE_CASES.items()):
        for got, expected in zip(run_on("cuda", make, shape, dtype, seed), run_on("cpu", make, shape, dtype, seed)):
            np.testing.assert_allclose(got, expected, err_msg=name, **tolerance)
    for make in (lambda: nn.AlphaDropout(0.3), lambda: nn.Dropout3d(0.3), lambda: nn.RReLU()):
        results = []
        for device in ("cuda", "cpu"):
            tl.manual_seed(4)
            results.append(run_on(device, make, (2, 3, 2, 2, 2), dtype, 20))
        for got, expected in zip(*results):
            np.testing.assert_allclose(got, expected, **tolerance)
