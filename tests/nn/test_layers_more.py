"""The normalisation, activation, padding, resampling and im2col layers as modules: PyTorch's parameters (names,
shapes, initial values), printed form, train/eval behaviour and refusals; their forward is the functional op
(tested against NumPy references in test_functional_more.py), checked here against np.pad, gradcheck and, on
the "cuda" device, against the CPU."""

import math

import numpy as np
import pytest

import nn
import tensorlib as tl
from nn import functional as F
from tensorlib.ops import shape as shape_ops


def draw(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


def gradcheck_module(module, values, *more_inputs):
    module.double()
    x = tl.tensor(values, requires_grad=True)
    return tl.gradcheck(lambda inp, *_: module(inp, *more_inputs), [x] + list(module.parameters()))


REPRS = [  # (module, PyTorch 2.13's repr of the same construction)
    (lambda: nn.LayerNorm(4), "LayerNorm((4,), eps=1e-05, elementwise_affine=True, bias=True)"),
    (lambda: nn.LayerNorm([3, 4], elementwise_affine=False), "LayerNorm((3, 4), eps=1e-05, elementwise_affine=False, bias=False)"),
    (lambda: nn.LayerNorm(4, bias=False), "LayerNorm((4,), eps=1e-05, elementwise_affine=True, bias=False)"),
    (lambda: nn.GroupNorm(2, 4), "GroupNorm(2, 4, eps=1e-05, affine=True, bias=True)"),
    (lambda: nn.GroupNorm(2, 4, affine=False), "GroupNorm(2, 4, eps=1e-05, affine=False, bias=False)"),
    (lambda: nn.InstanceNorm2d(3), "InstanceNorm2d(3, eps=1e-05, momentum=0.1, affine=False, bias=False, track_running_stats=False)"),
    (lambda: nn.InstanceNorm2d(3, momentum=None, affine=True, track_running_stats=True),
     "InstanceNorm2d(3, eps=1e-05, momentum=None, affine=True, bias=True, track_running_stats=True)"),
    (lambda: nn.BatchNorm2d(3, affine=False), "BatchNorm2d(3, eps=1e-05, momentum=0.1, affine=False, bias=False, track_running_stats=True)"),
    (lambda: nn.LocalResponseNorm(2), "LocalResponseNorm(2, alpha=0.0001, beta=0.75, k=1.0)"),
    (lambda: nn.ReLU6(), "ReLU6()"),
    (lambda: nn.ReLU6(True), "ReLU6(inplace=True)"),
    (lambda: nn.Hardtanh(), "Hardtanh(min_val=-1.0, max_val=1.0)"),
    (lambda: nn.Hardtanh(-2, 3, True), "Hardtanh(min_val=-2, max_val=3, inplace=True)"),
    (lambda: nn.SiLU(True), "SiLU(inplace=True)"),
    (lambda: nn.Mish(), "Mish()"),
    (lambda: nn.Softplus(), "Softplus(beta=1.0, threshold=20.0)"),
    (lambda: nn.Softplus(2, 10), "Softplus(beta=2, threshold=10)"),
    (lambda: nn.Hardswish(True), "Hardswish()"),
    (lambda: nn.Hardsigmoid(True), "Hardsigmoid()"),
    (lambda: nn.PReLU(), "PReLU(num_parameters=1)"),
    (lambda: nn.Softsign(), "Softsign()"),
    (lambda: nn.Threshold(0.1, 20, True), "Threshold(threshold=0.1, value=20, inplace=True)"),
    (lambda: nn.ZeroPad2d(1), "ZeroPad2d((1, 1, 1, 1))"),
    (lambda: nn.ConstantPad2d((1, 2, 3, 4), 3.5), "ConstantPad2d(padding=(1, 2, 3, 4), value=3.5)"),
    (lambda: nn.ReflectionPad2d(1), "ReflectionPad2d((1, 1, 1, 1))"),
    (lambda: nn.ReplicationPad2d((1, 0, 2, 0)), "ReplicationPad2d((1, 0, 2, 0))"),
    (lambda: nn.CircularPad2d(2), "CircularPad2d((2, 2, 2, 2))"),
    (lambda: nn.Upsample(scale_factor=2), "Upsample(scale_factor=2.0, mode='nearest')"),
    (lambda: nn.Upsample(size=(3, 4), mode="bilinear"), "Upsample(size=(3, 4), mode='bilinear')"),
    (lambda: nn.Upsample(scale_factor=(2, 3)), "Upsample(scale_factor=(2.0, 3.0), mode='nearest')"),
    (lambda: nn.UpsamplingBilinear2d(size=3), "UpsamplingBilinear2d(size=3, mode='bilinear')"),
    (lambda: nn.PixelShuffle(2), "PixelShuffle(upscale_factor=2)"),
    (lambda: nn.PixelUnshuffle(2), "PixelUnshuffle(downscale_factor=2)"),
    (lambda: nn.Unflatten(1, (2, 3)), "Unflatten(dim=1, unflattened_size=(2, 3))"),
    (lambda: nn.Unfold((2, 3), dilation=2, padding=1, stride=(1, 2)),
     "Unfold(kernel_size=(2, 3), dilation=2, padding=1, stride=(1, 2))"),
    (lambda: nn.Fold((4, 5), 2), "Fold(output_size=(4, 5), kernel_size=2, dilation=1, padding=0, stride=1)"),
    (lambda: nn.Dropout1d(), "Dropout1d(p=0.5, inplace=False)"),
    (lambda: nn.CosineSimilarity(), "CosineSimilarity()"),
]


@pytest.mark.parametrize("make,expected", REPRS, ids=[text.split("(")[0] + str(i) for i, (_, text) in enumerate(REPRS)])
def test_repr_as_in_pytorch(make, expected):
    assert repr(make()) == expected


@pytest.mark.parametrize("make,state", [
    (lambda: nn.LayerNorm((2, 3)), {"weight": ((2, 3), 1.0), "bias": ((2, 3), 0.0)}),
    (lambda: nn.LayerNorm(3, bias=False), {"weight": ((3,), 1.0)}),
    (lambda: nn.LayerNorm(3, elementwise_affine=False), {}),
    (lambda: nn.GroupNorm(2, 6), {"weight": ((6,), 1.0), "bias": ((6,), 0.0)}),
    (lambda: nn.GroupNorm(2, 6, affine=False), {}),
    (lambda: nn.InstanceNorm2d(3), {}),
    (lambda: nn.InstanceNorm2d(3, affine=True, track_running_stats=True),
     {"weight": ((3,), 1.0), "bias": ((3,), 0.0), "running_mean": ((3,), 0.0), "running_var": ((3,), 1.0),
      "num_batches_tracked": ((), 0)}),
    (lambda: nn.PReLU(), {"weight": ((1,), 0.25)}),
    (lambda: nn.PReLU(4, init=-0.1), {"weight": ((4,), -0.1)}),
], ids=["LayerNorm", "LayerNorm-no-bias", "LayerNorm-no-affine", "GroupNorm", "GroupNorm-no-affine",
        "InstanceNorm2d", "InstanceNorm2d-affine-tracked", "PReLU", "PReLU-per-channel"])
def test_parameters_buffers_and_their_initial_values(make, state):
    module = make()
    saved = module.state_dict()
    assert list(saved) == list(state)  # PyTorch's keys, in PyTorch's order
    for name, (shape, value) in state.items():
        assert saved[name].shape == shape
        np.testing.assert_array_equal(saved[name], np.asarray(value, saved[name].dtype), err_msg=name)
    module.load_state_dict({name: np.full(shape, 0.5) for name, (shape, _) in state.items()})
    if hasattr(module, "reset_parameters"):
        module.reset_parameters()
        for name, (_, value) in state.items():
            np.testing.assert_array_equal(module.state_dict()[name], np.asarray(value, saved[name].dtype), err_msg=name)


@pytest.mark.parametrize("make", [
    lambda **kw: nn.LayerNorm(3, **kw),
    lambda **kw: nn.GroupNorm(1, 3, **kw),
    lambda **kw: nn.InstanceNorm2d(3, affine=True, track_running_stats=True, **kw),
    lambda **kw: nn.PReLU(3, **kw),
], ids=["LayerNorm", "GroupNorm", "InstanceNorm2d", "PReLU"])
def test_layers_take_dtype(make):
    for name, tensor in make(dtype=tl.float64).state_dict(keep_vars=True).items():
        assert tensor.dtype == (tl.int64 if name == "num_batches_tracked" else tl.float64), name


@pytest.mark.parametrize("make,shape", [
    (lambda: nn.LayerNorm((3, 4)), (2, 3, 4)),
    (lambda: nn.GroupNorm(2, 4), (2, 4, 3)),
    (lambda: nn.InstanceNorm2d(2, affine=True), (2, 2, 2, 3)),
    (lambda: nn.LocalResponseNorm(3, alpha=0.5), (2, 4, 2, 2)),
    (lambda: nn.PReLU(3), (2, 3, 2)),
], ids=["LayerNorm", "GroupNorm", "InstanceNorm2d", "LocalResponseNorm", "PReLU"])
def test_gradcheck_through_inputs_and_parameters(make, shape):
    module = make()
    for parameter in module.parameters():  # away from the initial 1s, 0s and 0.25s
        parameter.array[...] = draw(*parameter.shape, seed=1)
    assert gradcheck_module(module, draw(*shape, seed=2))


def test_modules_compute_their_functional_op():
    x = tl.tensor(draw(2, 8, 4, 6, seed=3))
    pairs = [
        (nn.LayerNorm(6, eps=1e-3), F.layer_norm(x, (6,), eps=1e-3)),
        (nn.GroupNorm(4, 8), F.group_norm(x, 4)),
        (nn.InstanceNorm2d(8), F.instance_norm(x)),
        (nn.LocalResponseNorm(3, 0.1, 0.5, 2.0), F.local_response_norm(x, 3, 0.1, 0.5, 2.0)),
        (nn.ReLU6(), F.relu6(x)), (nn.Hardtanh(-0.5, 0.5), F.hardtanh(x, -0.5, 0.5)), (nn.SiLU(), F.silu(x)),
        (nn.Mish(), F.mish(x)), (nn.Softplus(2, 1), F.softplus(x, 2, 1)), (nn.Hardswish(), F.hardswish(x)),
        (nn.Hardsigmoid(), F.hardsigmoid(x)), (nn.Softsign(), F.softsign(x)),
        (nn.Threshold(0.2, -1), F.threshold(x, 0.2, -1)), (nn.PReLU(), F.prelu(x, tl.tensor([0.25], dtype=tl.float64))),
        (nn.Upsample(scale_factor=2, mode="bilinear"), F.interpolate(x, scale_factor=2, mode="bilinear")),
        (nn.UpsamplingNearest2d(size=(5, 7)), F.interpolate(x, size=(5, 7))),
        (nn.UpsamplingBilinear2d(scale_factor=1.5), F.interpolate(x, scale_factor=1.5, mode="bilinear",
                                                                  align_corners=True)),
        (nn.PixelShuffle(2), F.pixel_shuffle(x, 2)), (nn.PixelUnshuffle(2), F.pixel_unshuffle(x, 2)),
        (nn.Unfold(2, stride=2), F.unfold(x, 2, stride=2)),
        (nn.Fold((4, 6), 1), F.fold(x.reshape(2, 8, 24), (4, 6), 1)),
    ]
    for module, expected in pairs:
        inputs = x.reshape(2, 8, 24) if isinstance(module, nn.Fold) else x
        np.testing.assert_array_equal(module.double()(inputs).detach().numpy(), expected.numpy(), err_msg=repr(module))


def test_inplace_modules_write_into_their_input():
    for module in (nn.ReLU6(True), nn.Hardtanh(inplace=True), nn.SiLU(True), nn.Mish(True), nn.Hardswish(True),
                   nn.Hardsigmoid(True), nn.Threshold(0.0, 1.0, True)):
        x = tl.tensor(draw(3, 4, seed=4))
        assert module(x) is x, repr(module)


def test_prelu_learns_one_slope_per_channel():
    layer = nn.PReLU(3).double()
    values = draw(2, 3, 4, seed=5)
    out = layer(tl.tensor(values))
    out.sum().backward()
    np.testing.assert_allclose(layer.weight.grad.numpy(), np.minimum(values, 0).sum((0, 2)), rtol=1e-12)
    with pytest.raises(ValueError, match=r"weight holds 3 slopes but the input \(shape \(2, 4\)\) has 4 channels"):
        layer(tl.randn(2, 4, dtype=tl.float64))


def test_instance_norm_2d_train_eval_and_unbatched_inputs():
    layer = nn.InstanceNorm2d(2, momentum=0.25, track_running_stats=True).double()
    values = draw(3, 2, 4, 5, seed=6) * 2 + 1
    out = layer(tl.tensor(values)).numpy()
    per_image = (values - values.mean((2, 3), keepdims=True)) / np.sqrt(values.var((2, 3), keepdims=True) + 1e-5)
    np.testing.assert_allclose(out, per_image, rtol=1e-10)
    running_mean = 0.25 * values.mean((2, 3)).mean(0)
    running_var = 0.75 + 0.25 * values.var((2, 3), ddof=1).mean(0)
    np.testing.assert_allclose(layer.running_mean.numpy(), running_mean, rtol=1e-12)
    np.testing.assert_allclose(layer.running_var.numpy(), running_var, rtol=1e-12)
    assert layer.num_batches_tracked.item() == 0  # InstanceNorm does not count batches, as in PyTorch
    layer.eval()
    eval_out = layer(tl.tensor(values)).numpy()
    expected = (values - running_mean.reshape(1, 2, 1, 1)) / np.sqrt(running_var.reshape(1, 2, 1, 1) + 1e-5)
    np.testing.assert_allclose(eval_out, expected, rtol=1e-10)
    np.testing.assert_allclose(layer(tl.tensor(values[0])).numpy(), expected[0], rtol=1e-10)  # (C, H, W)
    cumulative = nn.InstanceNorm2d(2, momentum=None, track_running_stats=True)
    cumulative(tl.randn(2, 2, 3, 3))
    assert cumulative.running_mean.tolist() == [0, 0]  # momentum=None leaves them alone, as in PyTorch
    untracked = nn.InstanceNorm2d(2).eval()  # without running statistics eval uses each image's own
    np.testing.assert_allclose(untracked.double()(tl.tensor(values)).numpy(), per_image, rtol=1e-10)


def test_normalisation_layer_errors():
    with pytest.raises(ValueError, match=r"num_channels \(4\) must be divisible by num_groups \(3\)"):
        nn.GroupNorm(3, 4)
    with pytest.raises(ValueError, match="num_groups must be a positive int, got 0"):
        nn.GroupNorm(0, 4)
    with pytest.raises(ValueError, match=r"GroupNorm\(2, 4\) got an input with 6 channels"):
        nn.GroupNorm(2, 4)(tl.randn(2, 6, 3))
    with pytest.raises(ValueError, match="normalized_shape must hold non-negative ints, got -1"):
        nn.LayerNorm(-1)
    with pytest.raises(TypeError, match="normalized_shape must be an int or a sequence of ints, got 2.0"):
        nn.LayerNorm(2.0)
    assert nn.LayerNorm([2, 3]).normalized_shape == (2, 3)
    with pytest.raises(ValueError, match=r"normalized_shape=\(3, 5\) expects an input of shape \(\*, 3, 5\)"):
        nn.LayerNorm((3, 5))(tl.randn(2, 3, 4))
    with pytest.raises(ValueError, match=r"3-D \(C, H, W\) or 4-D \(N, C, H, W\) input, got shape \(3, 4\)"):
        nn.InstanceNorm2d(3)(tl.randn(3, 4))
    with pytest.raises(ValueError, match=r"InstanceNorm2d\(3\) got an input with 4 channels"):
        nn.InstanceNorm2d(3, affine=True)(tl.randn(2, 4, 5, 5))
    with pytest.warns(UserWarning, match="num_features is not used since affine=False"):
        assert nn.InstanceNorm2d(3)(tl.randn(2, 4, 5, 5)).shape == (2, 4, 5, 5)
    with pytest.raises(ValueError, match="more than 1 spatial element"):
        nn.InstanceNorm2d(3)(tl.randn(2, 3, 1, 1))
    with pytest.raises(RuntimeError, match="mixed dtype: instance_norm got a float32 input but its weight is float64"):
        nn.InstanceNorm2d(3, affine=True).double()(tl.randn(2, 3, 4, 4))
    for module, who in ((nn.LayerNorm(4), "layer_norm"), (nn.GroupNorm(2, 4), "group_norm"), (nn.PReLU(4), "prelu")):
        with pytest.raises(RuntimeError, match=f"mixed dtype: {who} got a float32 input but its weight is float64"):
            module.double()(tl.randn(2, 4, 4))
        with pytest.raises(RuntimeError, match=f"mixed dtype: {who} got a float64 input but its weight is float32"):
            module.float()(tl.randn(2, 4, 4, dtype=tl.float64))
    with pytest.raises(ValueError, match="size must be a positive int, got 0"):
        nn.LocalResponseNorm(0)
    with pytest.raises(ValueError, match=r"max_val \(1\) must be greater than min_val \(3\)"):
        nn.Hardtanh(3, 1)
    with pytest.raises(ValueError, match="num_parameters must be a positive int, got 0"):
        nn.PReLU(0)


@pytest.mark.parametrize("layer,numpy_mode", [
    (nn.ZeroPad2d((1, 2, 0, 3)), "constant"),
    (nn.ConstantPad2d(2, 1.5), "constant"),
    (nn.ReflectionPad2d((2, 1, 3, 0)), "reflect"),
    (nn.ReplicationPad2d(3), "edge"),
    (nn.CircularPad2d((1, 2, 2, 1)), "wrap"),
], ids=repr)
def test_padding_layers_match_numpy_pad(layer, numpy_mode):
    values = draw(2, 3, 4, 5, seed=7)
    left, right, top, bottom = layer.padding
    extra = dict(constant_values=getattr(layer, "value", 0.0)) if numpy_mode == "constant" else {}
    expected = np.pad(values, ((0, 0), (0, 0), (top, bottom), (left, right)), mode=numpy_mode, **extra)
    np.testing.assert_array_equal(layer(tl.tensor(values)).numpy(), expected)
    np.testing.assert_array_equal(layer(tl.tensor(values[0])).numpy(), expected[0])  # unbatched (C, H, W)
    assert gradcheck_module(layer, draw(1, 2, 4, 4, seed=8))


def test_padding_layer_arguments():
    assert isinstance(nn.ZeroPad2d(1), nn.ConstantPad2d) and nn.ZeroPad2d(1).value == 0
    np.testing.assert_array_equal(nn.ConstantPad2d(-1, 0.0)(tl.tensor(draw(1, 1, 4, 5))).numpy(),
                                  draw(1, 1, 4, 5)[:, :, 1:-1, 1:-1])  # negative amounts crop
    assert nn.ZeroPad2d(1)(tl.randn(3, 4)).shape == (5, 6)  # constant padding pads the last two dims of any input
    for padding in (1.5, (1, 2, 3), True):
        with pytest.raises(TypeError, match=r"padding must be an int or 4 ints \(left, right, top, bottom\)"):
            nn.ReflectionPad2d(padding)
    for layer in (nn.ReflectionPad2d(1), nn.ReplicationPad2d(1), nn.CircularPad2d(1)):
        with pytest.raises(ValueError, match=r"3-D \(C, H, W\) or 4-D \(N, C, H, W\) input, got shape \(3, 4\)"):
            layer(tl.randn(3, 4))


def test_upsample_stores_pytorchs_settings():
    layer = nn.Upsample(scale_factor=2)
    assert layer.scale_factor == 2.0 and isinstance(layer.scale_factor, float) and layer.size is None
    assert nn.Upsample(scale_factor=[2, 3]).scale_factor == (2.0, 3.0)
    assert nn.UpsamplingBilinear2d(size=4).align_corners is True
    with pytest.raises(ValueError, match="exactly one of size and scale_factor, got neither"):
        nn.Upsample()(tl.randn(1, 1, 2, 2))


def test_unflatten():
    x = tl.randn(2, 12, 3)
    assert nn.Unflatten(1, (3, 4))(x).shape == (2, 3, 4, 3)
    assert nn.Unflatten(1, [2, -1, 3])(x).shape == (2, 2, 2, 3, 3)
    assert nn.Unflatten(-1, (3, 1))(x).shape == (2, 12, 3, 1)
    np.testing.assert_array_equal(nn.Flatten(1, 2)(nn.Unflatten(1, (4, 3))(x)).numpy(), x.numpy())
    with pytest.raises(ValueError, match=r"sizes \(5, 2\) do not split dim 1 of size 12"):
        nn.Unflatten(1, (5, 2))(x)
    with pytest.raises(ValueError, match=r"sizes \(-1, -1\) do not split"):
        nn.Unflatten(1, (-1, -1))(x)
    with pytest.raises(IndexError, match="dim 3 is out of range for an input of shape"):
        nn.Unflatten(3, (2, 6))(x)
    with pytest.raises(TypeError, match="unflattened_size must be a tuple or list of ints, got 3"):
        nn.Unflatten(1, 3)
    with pytest.raises(TypeError, match="must hold ints, got 2.0 at position 0"):
        nn.Unflatten(1, (2.0, 6))


def test_dropout1d_and_cosine_similarity_layers():
    tl.manual_seed(3)
    layer = nn.Dropout1d(0.5)
    out = layer(tl.ones(8, 16, 4)).numpy()
    assert np.all((out == 0).all(-1) | (out == 2.0).all(-1)) and 0.3 < (out[..., 0] == 0).mean() < 0.7
    x = tl.ones(8, 16, 4)
    assert layer.eval()(x) is x
    a, b = tl.tensor(draw(3, 5, seed=9)), tl.tensor(draw(3, 5, seed=10))
    np.testing.assert_array_equal(nn.CosineSimilarity(dim=0, eps=1e-3)(a, b).numpy(),
                                  F.cosine_similarity(a, b, 0, 1e-3).numpy())


def instance_norm_in_eval():
    layer = nn.InstanceNorm2d(2, affine=True, track_running_stats=True)
    layer.running_mean.array[...] = np.array([0.3, -0.2])
    layer.running_var.array[...] = np.array([0.5, 2.0])
    return layer.eval()


DEVICE_LAYERS = {  # name: (module, input shape); small, as the simulator runs ~1 ms per simulated thread
    "LayerNorm": (lambda: nn.LayerNorm((3, 4)), (2, 2, 3, 4)),
    "GroupNorm": (lambda: nn.GroupNorm(2, 4), (2, 4, 3)),
    "InstanceNorm2d": (lambda: nn.InstanceNorm2d(2, affine=True, track_running_stats=True), (2, 2, 3, 3)),
    "InstanceNorm2d-eval": (instance_norm_in_eval, (2, 2, 3, 3)),
    "LocalResponseNorm": (lambda: nn.LocalResponseNorm(3, alpha=0.5), (2, 4, 2, 3)),
    "PReLU-Hardswish-Mish-Softplus": (lambda: nn.Sequential(nn.PReLU(2), nn.Hardswish(), nn.Mish(), nn.Softplus(2, 3),
                                                            nn.Hardsigmoid(), nn.ReLU6()), (2, 2, 3)),
    "Hardtanh-Threshold-SiLU-Softsign": (lambda: nn.Sequential(nn.Hardtanh(-0.8, 1.2), nn.Threshold(-0.3, -2.0),
                                                               nn.SiLU(), nn.Softsign()), (2, 3, 4)),
    "pads": (lambda: nn.Sequential(nn.ReflectionPad2d((1, 2, 0, 1)), nn.ReplicationPad2d(1), nn.ZeroPad2d(1),
                                   nn.CircularPad2d((2, 1, 0, 1))), (1, 2, 3, 3)),
    "PixelShuffle-Unfold-Fold": (lambda: nn.Sequential(nn.PixelShuffle(2), nn.Unfold(2, padding=1, stride=(1, 2)),
                                                       nn.Fold((4, 4), 2, padding=1, stride=(1, 2))), (1, 4, 2, 2)),
    "PixelUnshuffle": (lambda: nn.PixelUnshuffle(2), (1, 2, 4, 2)),
    "Dropout1d": (lambda: nn.Dropout1d(0.5), (4, 3, 2)),  # the same seed draws the same channels on both devices
}
DEVICE_INTERPOLATIONS = {  # run with indexing by a device array refused: their gathers read nothing back
    "Upsample": (lambda: nn.Sequential(nn.Upsample(scale_factor=(1.5, 2), mode="bilinear"), nn.Upsample(size=(4, 5))),
                 (1, 2, 3, 2)),
    "nearest-exact": (lambda: nn.Upsample(size=(4, 3), mode="nearest-exact"), (1, 2, 3, 2)),
    "linear-nearest-1d": (lambda: nn.Sequential(nn.Upsample(size=5, mode="linear", align_corners=True),
                                                nn.Upsample(scale_factor=0.7)), (1, 2, 3)),
    "trilinear": (lambda: nn.Upsample(scale_factor=(1.5, 2, 0.7), mode="trilinear"), (1, 1, 2, 2, 3)),
    "area-1d": (lambda: nn.Upsample(size=3, mode="area"), (1, 2, 5)),
    "area-2d": (lambda: nn.Upsample(size=(2, 3), mode="area"), (1, 2, 5, 4)),
    "area-3d": (lambda: nn.Upsample(size=(1, 2, 2), mode="area"), (1, 1, 3, 3, 2)),
}
DEVICE_TOLERANCES = {tl.float64: dict(rtol=1e-10, atol=1e-12), tl.float32: dict(rtol=2e-5, atol=2e-6)}


def run_layer(make, values, device, dtype):
    tl.manual_seed(0)
    module = make().to(dtype=dtype).to(device)
    for parameter in module.parameters():
        parameter.array[...] = tl.tensor(draw(*parameter.shape, seed=11), dtype=dtype, device=device).array
    x = tl.tensor(values, dtype=dtype, device=device, requires_grad=True)
    out = module(x)
    (out * tl.tensor(draw(*out.shape, seed=12), dtype=dtype, device=device)).sum().backward()
    assert out.device == device and x.grad.device == device and out.dtype == dtype
    return [out.detach().cpu().numpy(), x.grad.cpu().numpy()] + [
        tensor.detach().cpu().numpy() if tensor.grad is None else tensor.grad.cpu().numpy()
        for tensor in module.state_dict(keep_vars=True).values()]


def assert_same_on_both_devices(layers, dtype):
    for name, (make, shape) in layers.items():
        values = draw(*shape, seed=13)
        for got, expected in zip(run_layer(make, values, "cuda", dtype), run_layer(make, values, "cpu", dtype)):
            np.testing.assert_allclose(got, expected, err_msg=name, **DEVICE_TOLERANCES[dtype])


@pytest.mark.parametrize("dtype", [tl.float32, tl.float64])
def test_new_layers_on_the_device(tier, dtype, monkeypatch):
    """Forward, backward and running statistics of the new layers on "cuda" equal the CPU's."""
    assert_same_on_both_devices(DEVICE_LAYERS, dtype)

    def host_read(*args):
        raise AssertionError("interpolate indexed with a device array")

    with monkeypatch.context() as patch:
        patch.setattr(shape_ops, "check_device_index", host_read)
        assert_same_on_both_devices(DEVICE_INTERPOLATIONS, dtype)
    a, b = draw(3, 4, seed=14), draw(3, 4, seed=15)
    grads = []
    for device in ("cpu", "cuda"):
        x1 = tl.tensor(a, dtype=dtype, device=device, requires_grad=True)
        similarity = F.cosine_similarity(x1, tl.tensor(b, dtype=dtype, device=device))
        (similarity + F.normalize(x1, p=3).sum(1) + F.normalize(x1, p=math.inf).sum(1)).sum().backward()
        grads.append(x1.grad.cpu().numpy())
    np.testing.assert_allclose(grads[1], grads[0], **DEVICE_TOLERANCES[dtype])
