"""Every layer: forward against a NumPy float64 reference, backward by gradcheck, train/eval behaviour."""

import math
import re

import numpy as np
import pytest

import nn
import tensorlib as tl
from kernels.conv2d import reference as conv_reference
from kernels.pool2d import reference as pool_reference
from kernels.pool2d.geometry import adaptive_pool2d_geometry, pool2d_geometry


def pooled(kind, x, *args, **kwargs):
    """The float64 reference of a pooling, built from torch.nn.functional-style arguments."""
    if kind == "adaptive":
        return pool_reference.adaptive_avg_pool2d_forward(x, adaptive_pool2d_geometry(kind, x.shape, *args))
    options = {k: kwargs.pop(k) for k in ("count_include_pad",) if k in kwargs}
    g = pool2d_geometry(kind, x.shape, *args, **kwargs)
    if kind == "max":
        return pool_reference.max_pool2d_forward(x, g)[0]
    return pool_reference.avg_pool2d_forward(x, g, options.get("count_include_pad", True), None)


def float64_input(*shape, seed=0):
    return tl.tensor(np.random.default_rng(seed).standard_normal(shape), requires_grad=True)


def gradcheck_module(module, x):
    module.double()
    params = list(module.parameters())
    assert tl.gradcheck(lambda inp, *_: module(inp), [x] + params)


def np_of(t):
    return t.detach().numpy()


def assert_state_equal(a, b):
    assert list(a.state_dict()) == list(b.state_dict())
    for (name, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items()):
        np.testing.assert_array_equal(x, y, err_msg=name)


def test_linear():
    layer = nn.Linear(5, 3)
    x = float64_input(4, 5)
    layer.double()
    expected = np_of(x) @ np_of(layer.weight).T + np_of(layer.bias)
    np.testing.assert_allclose(np_of(layer(x)), expected, rtol=1e-12)
    gradcheck_module(layer, x)
    assert layer(float64_input(2, 7, 5)).shape == (2, 7, 3)  # leading dims pass through
    with pytest.raises(ValueError, match=r"\(2, 4\).*\(3, 5\)"):
        layer(float64_input(2, 4))


@pytest.mark.parametrize("kwargs", [
    dict(kernel_size=3, padding=1),
    dict(kernel_size=(3, 2), stride=2, padding=(1, 0), bias=False),
    dict(kernel_size=3, dilation=2, padding="same"),
    dict(kernel_size=4, padding="same"),
    dict(kernel_size=3, groups=2),
    dict(kernel_size=3, padding=1, padding_mode="reflect"),
    dict(kernel_size=3, padding=2, padding_mode="circular"),
    dict(kernel_size=3, padding="same", padding_mode="replicate"),
])
def test_conv2d(kwargs):
    layer = nn.Conv2d(4, 6, **kwargs).double()
    x = float64_input(2, 4, 7, 6)
    out = layer(x)
    mode = kwargs.get("padding_mode", "zeros")
    padding = kwargs.get("padding", 0)
    kh, kw = (kwargs["kernel_size"],) * 2 if isinstance(kwargs["kernel_size"], int) else kwargs["kernel_size"]
    dilation = kwargs.get("dilation", 1)
    if padding == "same":
        pads = [(dilation * (k - 1) // 2, dilation * (k - 1) - dilation * (k - 1) // 2) for k in (kh, kw)]
    else:
        ph, pw = (padding, padding) if isinstance(padding, int) else padding
        pads = [(ph, ph), (pw, pw)]
    numpy_mode = {"zeros": "constant", "reflect": "reflect", "circular": "wrap", "replicate": "edge"}[mode]
    padded = np.pad(np_of(x), [(0, 0), (0, 0)] + pads, mode=numpy_mode)
    bias = np_of(layer.bias) if layer.bias is not None else None
    expected = conv_reference.conv2d_forward(padded, np_of(layer.weight), bias, kwargs.get("stride", 1), 0,
                                             dilation, kwargs.get("groups", 1))
    np.testing.assert_allclose(np_of(out), expected, rtol=1e-10, atol=1e-12)
    gradcheck_module(layer, float64_input(1, 4, 5, 5, seed=1))


def test_default_initialisation_bounds():
    tl.manual_seed(0)
    conv = nn.Conv2d(8, 16, 3)
    bound = 1 / math.sqrt(8 * 9)  # kaiming_uniform_(a=sqrt(5)) = U(-1/sqrt(fan_in), 1/sqrt(fan_in))
    w = np_of(conv.weight)
    assert w.dtype == np.float32 and np.abs(w).max() <= bound and np.abs(w).max() > 0.9 * bound
    assert np.abs(np_of(conv.bias)).max() <= bound
    assert abs(w.std() - bound / math.sqrt(3)) < 0.1 * bound


@pytest.mark.parametrize("layer,reference", [
    (nn.MaxPool2d(3, 2, 1), lambda x: pooled("max", x, 3, 2, 1)),
    (nn.MaxPool2d(2, ceil_mode=True), lambda x: pooled("max", x, 2, ceil_mode=True)),
    (nn.AvgPool2d(3, 2, 1), lambda x: pooled("avg", x, 3, 2, 1)),
    (nn.AvgPool2d(2, count_include_pad=False, padding=1), lambda x: pooled("avg", x, 2, 2, 1, count_include_pad=False)),
    (nn.LPPool2d(2, 2), lambda x: np.sqrt(pooled("avg", x**2, 2) * 4)),
    (nn.AdaptiveAvgPool2d(1), lambda x: x.mean((2, 3), keepdims=True)),
    (nn.AdaptiveAvgPool2d((2, 3)), lambda x: pooled("adaptive", x, (2, 3))),
], ids=repr)
def test_pooling_layers(layer, reference):
    rng = np.random.default_rng(2)
    values = rng.permutation(2 * 3 * 7 * 6).reshape(2, 3, 7, 6) * 0.01  # distinct: max pooling differentiable
    x = tl.tensor(values, requires_grad=True)
    np.testing.assert_allclose(np_of(layer(x)), reference(values), rtol=1e-12)
    gradcheck_module(layer, x)


def gelu_reference(x):
    return x * 0.5 * (1 + np.vectorize(math.erf)(x / math.sqrt(2)))


ACTIVATIONS = [
    (nn.ReLU(), lambda x: np.maximum(x, 0)),
    (nn.LeakyReLU(0.2), lambda x: np.where(x > 0, x, 0.2 * x)),
    (nn.ELU(1.5), lambda x: np.where(x > 0, x, 1.5 * (np.exp(np.minimum(x, 0)) - 1))),
    (nn.Sigmoid(), lambda x: 1 / (1 + np.exp(-x))),
    (nn.Tanh(), np.tanh),
    (nn.GELU(), gelu_reference),
    (nn.GELU("tanh"), lambda x: 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))),
    (nn.Softmax(dim=1), lambda x: np.exp(x) / np.exp(x).sum(1, keepdims=True)),
    (nn.LogSoftmax(dim=-1), lambda x: x - np.log(np.exp(x).sum(-1, keepdims=True))),
    (nn.Identity(), lambda x: x),
    (nn.Flatten(), lambda x: x.reshape(x.shape[0], -1)),
]


@pytest.mark.parametrize("layer,reference", ACTIVATIONS, ids=repr)
def test_activations(layer, reference):
    rng = np.random.default_rng(3)
    values = rng.uniform(0.1, 3, (3, 4, 2)) * rng.choice([-1, 1], (3, 4, 2))  # away from the kinks at 0
    x = tl.tensor(values, requires_grad=True)
    np.testing.assert_allclose(np_of(layer(x)), reference(values), rtol=1e-10, atol=1e-12)
    gradcheck_module(layer, x)


def test_activations_do_not_overflow():
    big = tl.tensor([-1e4, 1e4], requires_grad=True)
    for layer in (nn.Sigmoid(), nn.ELU(), nn.GELU(), nn.Tanh()):
        out = layer(big)
        out.sum().backward()
        assert np.isfinite(np_of(out)).all() and np.isfinite(big.grad.numpy()).all()


def test_maxout():
    layer = nn.Maxout(4, 3, pool_size=2).double()
    x = float64_input(5, 4)
    pieces = np_of(x) @ np_of(layer.linear.weight).T + np_of(layer.linear.bias)
    np.testing.assert_allclose(np_of(layer(x)), pieces.reshape(5, 3, 2).max(-1), rtol=1e-12)
    gradcheck_module(layer, x)


def test_dropout_train_and_eval():
    tl.manual_seed(0)
    layer = nn.Dropout(0.25)
    x = tl.ones(200, 50)
    out = np_of(layer(x))
    assert set(np.unique(out)) == {0.0, np.float32(1 / 0.75)}
    assert abs((out == 0).mean() - 0.25) < 0.02
    layer.eval()
    assert layer(x) is x
    with pytest.raises(ValueError, match="between 0 and 1"):
        nn.Dropout(1.5)


def test_dropout2d_drops_whole_channels():
    tl.manual_seed(1)
    layer = nn.Dropout2d(0.5)
    out = np_of(layer(tl.ones(8, 16, 3, 3)))
    per_channel = out.reshape(8, 16, 9)
    assert np.all((per_channel == 0).all(-1) | (per_channel == 2.0).all(-1))
    assert 0.3 < (per_channel[..., 0] == 0).mean() < 0.7

    def fixed_mask_dropout(t):
        tl.manual_seed(2)  # the same mask on every evaluation keeps the function deterministic
        return layer(t)

    assert tl.gradcheck(fixed_mask_dropout, [float64_input(2, 3, 2, 2)])


@pytest.mark.parametrize("cls,shape", [(nn.BatchNorm2d, (4, 3, 5, 2)), (nn.BatchNorm1d, (6, 3)), (nn.BatchNorm1d, (4, 3, 5))])
def test_batchnorm_training_running_stats_and_eval(cls, shape):
    layer = cls(3, momentum=0.2).double()
    rng = np.random.default_rng(4)
    axes = (0,) + tuple(range(2, len(shape)))
    running_mean, running_var = np.zeros(3), np.ones(3)
    layer.weight.array[...] = rng.uniform(0.5, 1.5, 3)
    layer.bias.array[...] = rng.standard_normal(3)
    bshape = (1, 3) + (1,) * (len(shape) - 2)
    for _ in range(3):
        values = rng.standard_normal(shape) * 2 + 1
        out = np_of(layer(tl.tensor(values)))
        mean, var = values.mean(axes, keepdims=True), values.var(axes, keepdims=True)
        expected = (values - mean) / np.sqrt(var + 1e-5) * np_of(layer.weight).reshape(bshape) + np_of(layer.bias).reshape(bshape)
        np.testing.assert_allclose(out, expected, rtol=1e-10, atol=1e-12)
        n = values.size / 3
        running_mean = 0.8 * running_mean + 0.2 * mean.reshape(-1)
        running_var = 0.8 * running_var + 0.2 * var.reshape(-1) * n / (n - 1)  # unbiased for the running one
    np.testing.assert_allclose(np_of(layer.running_mean), running_mean, rtol=1e-12)
    np.testing.assert_allclose(np_of(layer.running_var), running_var, rtol=1e-12)
    assert layer.num_batches_tracked.item() == 3
    layer.eval()
    values = rng.standard_normal(shape)
    expected = ((values - running_mean.reshape(bshape)) / np.sqrt(running_var.reshape(bshape) + 1e-5)
                * np_of(layer.weight).reshape(bshape) + np_of(layer.bias).reshape(bshape))
    np.testing.assert_allclose(np_of(layer(tl.tensor(values))), expected, rtol=1e-10)
    gradcheck_module(layer, float64_input(*shape))  # eval mode
    layer.train()
    gradcheck_module(layer, float64_input(*shape))  # training mode: gradients through the batch statistics


def test_batchnorm_cumulative_average_and_errors():
    layer = nn.BatchNorm1d(2, momentum=None)
    batches = [np.random.default_rng(i).standard_normal((5, 2)).astype(np.float32) for i in range(3)]
    for b in batches:
        layer(tl.tensor(b))
    np.testing.assert_allclose(np_of(layer.running_mean), np.mean([b.mean(0) for b in batches], 0), rtol=1e-5)
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        layer(tl.randn(1, 2))
    with pytest.raises(ValueError, match="3 channels"):
        layer(tl.randn(4, 3))
    with pytest.raises(ValueError, match="4-D"):
        nn.BatchNorm2d(2)(tl.randn(4, 2))


@pytest.mark.parametrize("name", ["kaiming_uniform_", "kaiming_normal_", "xavier_uniform_", "xavier_normal_"])
def test_init_statistics(name):
    tl.manual_seed(5)
    w = tl.empty(256, 128, 3, 3)
    getattr(nn.init, name)(w)
    fan_in, fan_out = 128 * 9, 256 * 9
    expected_std = {"kaiming_uniform_": math.sqrt(2 / fan_in), "kaiming_normal_": math.sqrt(2 / fan_in),
                    "xavier_uniform_": math.sqrt(2 / (fan_in + fan_out)),
                    "xavier_normal_": math.sqrt(2 / (fan_in + fan_out))}[name]
    assert abs(np_of(w).std() / expected_std - 1) < 0.02
    assert abs(np_of(w).mean()) < 0.02 * expected_std


def test_simple_inits():
    w = tl.empty(3, 4)
    np.testing.assert_array_equal(np_of(nn.init.zeros_(w)), 0)
    np.testing.assert_array_equal(np_of(nn.init.ones_(w)), 1)
    np.testing.assert_array_equal(np_of(nn.init.constant_(w, 0.5)), 0.5)
    values = np_of(nn.init.uniform_(tl.empty(1000), -2, 3))
    assert values.min() >= -2 and values.max() < 3
    values = np_of(nn.init.normal_(tl.empty(20000), 1.0, 0.5))
    assert abs(values.mean() - 1) < 0.02 and abs(values.std() - 0.5) < 0.02
    assert nn.init.calculate_gain("relu") == math.sqrt(2)


@pytest.mark.parametrize("make", [
    lambda **kw: nn.Linear(3, 2, **kw),
    lambda **kw: nn.Conv2d(2, 4, 3, **kw),
    lambda **kw: nn.BatchNorm2d(3, **kw),
    lambda **kw: nn.Maxout(3, 2, **kw),
], ids=["Linear", "Conv2d", "BatchNorm2d", "Maxout"])
def test_layers_take_device_and_dtype(make):
    tl.manual_seed(7)
    reference = make()
    tl.manual_seed(7)
    layer = make(device="cpu", dtype=tl.float64)
    tl.manual_seed(7)
    assert_state_equal(layer, make(dtype=tl.float64))  # device="cpu" is the default
    for (name, expected), (_, tensor) in zip(reference.state_dict(keep_vars=True).items(),
                                             layer.state_dict(keep_vars=True).items()):
        assert tensor.device == "cpu" and tensor.shape == expected.shape
        assert tensor.dtype == (tl.float64 if expected.dtype.kind == "f" else expected.dtype), name
    with pytest.raises(ValueError, match="device must be 'cpu', 'cuda' or 'cuda:N', got 'tpu'"):
        make(device="tpu")


def test_layers_built_on_the_device(tier):
    tl.manual_seed(3)
    on_cpu = nn.Conv2d(2, 3, 3)
    tl.manual_seed(3)
    on_device = nn.Conv2d(2, 3, 3, device="cuda")
    assert on_device.weight.device == "cuda" and on_device.bias.device == "cuda"
    assert_state_equal(on_device, on_cpu)  # drawn on the CPU, then moved: the same numbers
    bn = nn.BatchNorm2d(3, device="cuda")
    assert all(t.device == "cuda" for t in bn.state_dict(keep_vars=True).values())


@pytest.mark.parametrize("kernel_size", [0, (3, 0), (0, 2), -1])
def test_conv2d_rejects_a_non_positive_kernel_size(kernel_size):
    with pytest.raises(ValueError, match=rf"kernel_size must be positive, got {re.escape(repr(kernel_size))}"):
        nn.Conv2d(3, 4, kernel_size)


@pytest.mark.parametrize("name", ["kaiming_uniform_", "kaiming_normal_", "xavier_uniform_", "xavier_normal_"])
@pytest.mark.parametrize("shape", [(0, 3), (3, 0), (0, 0), (4, 3, 0, 2)])
def test_fan_based_inits_leave_zero_element_tensors_alone(name, shape):
    tensor = tl.empty(*shape)
    with pytest.warns(UserWarning, match="zero-element tensors is a no-op"):
        assert getattr(nn.init, name)(tensor) is tensor
    assert tensor.shape == shape


def test_one_element_sizes_mean_both_axes():
    tl.manual_seed(2)
    x = float64_input(1, 2, 9, 8)
    conv = nn.Conv2d(2, 3, (3,), stride=(2,), padding=[1], dilation=(1,)).double()
    assert conv.kernel_size == (3, 3) and conv.stride == (2, 2) and conv.padding == (1, 1)
    expected = conv_reference.conv2d_forward(np_of(x), np_of(conv.weight), np_of(conv.bias), 2, 1, 1, 1)
    np.testing.assert_allclose(np_of(conv(x)), expected, rtol=1e-10, atol=1e-12)
    np.testing.assert_array_equal(np_of(nn.functional.max_pool2d(x, (2,), stride=[1])),
                                  pooled("max", np_of(x), 2, 1))
    with pytest.raises(TypeError, match=r"stride must be an int or a pair of ints, got \(2, 2, 2\)"):
        nn.Conv2d(2, 3, 3, stride=(2, 2, 2))
    with pytest.raises(TypeError, match=r"kernel_size must be an int or a pair of ints, got \(\)"):
        nn.Conv2d(2, 3, ())


@pytest.mark.parametrize("output_size,full", [((None, 3), (7, 3)), ((4, None), (4, 6)), ([None, None], (7, 6))])
def test_adaptive_avg_pool2d_none_keeps_the_input_size(output_size, full):
    values = np.random.default_rng(6).standard_normal((2, 3, 7, 6))
    layer = nn.AdaptiveAvgPool2d(output_size)
    x = tl.tensor(values, requires_grad=True)
    np.testing.assert_allclose(np_of(layer(x)), pooled("adaptive", values, full), rtol=1e-12)
    gradcheck_module(layer, x)
    assert nn.functional.adaptive_avg_pool2d(tl.tensor(values[0]), output_size).shape == (3,) + full  # (C, H, W)


@pytest.mark.parametrize("output_size", [(3,), (None,), (2, 2, 2)])
def test_adaptive_avg_pool2d_needs_an_int_or_a_pair(output_size):
    with pytest.raises(TypeError, match=rf"output_size must be an int or a pair .*got {re.escape(repr(output_size))}"):
        nn.functional.adaptive_avg_pool2d(tl.randn(1, 2, 5, 5), output_size)


def test_batchnorm_eps_rules():
    for eps in (-1e-5, float("nan")):
        with pytest.raises(ValueError, match=f"eps must be non-negative, got {eps}"):
            nn.BatchNorm2d(3, eps=eps)
    layer = nn.BatchNorm2d(3, eps=0)
    with pytest.raises(ValueError, match="BatchNorm2d needs eps > 0 in training and eps >= 0 in eval, got eps=0"):
        layer(tl.randn(2, 3, 4, 4))
    values = np.random.default_rng(8).standard_normal((2, 3, 4, 4)).astype(np.float32)
    np.testing.assert_allclose(np_of(layer.eval()(tl.tensor(values))), values)  # running stats 0 and 1, eps 0


@pytest.mark.parametrize("affine,track", [(True, True), (False, True), (True, False)])
def test_batchnorm_rejects_mixed_dtypes(affine, track):
    layer = nn.BatchNorm2d(3, affine=affine, track_running_stats=track).double()
    with pytest.raises(RuntimeError, match="mixed dtype: BatchNorm2d got a float32 input but its .* is float64"):
        layer(tl.randn(2, 3, 4, 4))
    with pytest.raises(RuntimeError, match="mixed dtype: BatchNorm2d got a float64 input but its .* is float32"):
        layer.float()(tl.randn(2, 3, 4, 4, dtype=tl.float64))
    assert layer.num_batches_tracked is None or layer.num_batches_tracked.item() == 0  # nothing ran
    without_state = nn.BatchNorm2d(3, affine=False, track_running_stats=False).double()
    assert without_state(tl.randn(2, 3, 4, 4)).dtype == tl.float32  # nothing to mix with, as in PyTorch


@pytest.mark.parametrize("make, fan_in", [
    (lambda: nn.Linear(6, 4), 6),
    (lambda: nn.Linear(6, 4, bias=False), 6),
    (lambda: nn.Conv2d(4, 6, (3, 2), groups=2), 2 * 3 * 2),
    (lambda: nn.ConvTranspose2d(4, 6, 3, groups=2), 3 * 3 * 3),  # the fans of the (in, out/groups, kH, kW) weight
], ids=["Linear", "Linear-no-bias", "Conv2d", "ConvTranspose2d"])
def test_reset_parameters_redraws_the_default_init(make, fan_in):
    tl.manual_seed(11)
    layer = make()
    first = layer.state_dict()
    weight = layer.weight
    tl.manual_seed(11)
    layer.reset_parameters()  # the constructor's init: the same seed gives the same values
    assert layer.weight is weight
    for name, values in layer.state_dict().items():
        np.testing.assert_array_equal(values, first[name], err_msg=name)
    bound = 1 / math.sqrt(fan_in)
    for tensor in layer.parameters():
        assert np.abs(np_of(tensor)).max() <= bound
    assert ("bias" in layer.state_dict()) == (layer.bias is not None)


@pytest.mark.parametrize("affine", [True, False])
def test_batch_norm_reset_running_stats_and_parameters(affine):
    layer = nn.BatchNorm1d(3, momentum=None, affine=affine)
    layer(tl.randn(8, 3) * 3 + 1)
    if affine:
        layer.weight.array[...] = 2
        layer.bias.array[...] = -1
    layer.reset_running_stats()
    np.testing.assert_array_equal(np_of(layer.running_mean), 0)
    np.testing.assert_array_equal(np_of(layer.running_var), 1)
    assert layer.num_batches_tracked.item() == 0 and layer.num_batches_tracked.dtype == tl.int64
    if affine:
        assert np_of(layer.weight).tolist() == [2, 2, 2]  # parameters are left to reset_parameters
        layer(tl.randn(8, 3))
        layer.reset_parameters()
        assert np_of(layer.weight).tolist() == [1, 1, 1] and np_of(layer.bias).tolist() == [0, 0, 0]
        assert layer.num_batches_tracked.item() == 0
    untracked = nn.BatchNorm2d(3, track_running_stats=False)
    untracked.reset_running_stats()  # nothing to reset
    untracked.reset_parameters()
    assert untracked.running_mean is None
