"""nn.ConvReLU2d, nn.utils.fuse_modules and nn.utils.fuse_conv_relu: PyTorch's semantics (first module
replaced by the fused one, the rest by Identity; state-dict keys renamed as PyTorch's Sequential-based fused
module renames them), the same outputs and gradients as the unfused model from one conv2d_relu call per
pair, which models gain fusions, and the error messages."""

import copy

import numpy as np
import pytest

import nn
import tensorlib as tl
from kernels import conv2d as conv_kernels
from nn.utils import fuse_conv_relu, fuse_modules


def lenet():
    tl.manual_seed(0)
    return nn.models.lenet5(activation="relu", pooling="max").double()


def digits(seed=1):
    return tl.tensor(np.random.default_rng(seed).standard_normal((3, 1, 28, 28)))


def outputs_and_grads(model, x):
    """The output and the parameter gradients of sum(output * fixed weights), keyed by parameter name."""
    model.zero_grad()
    out = model(x)
    (out * tl.tensor(np.random.default_rng(9).standard_normal(out.shape))).sum().backward()
    return out.detach().numpy(), {name: p.grad.numpy() for name, p in model.named_parameters()}


def renamed(key, fused_names):
    """A pre-fusion state-dict key under PyTorch's fused naming: conv1.weight -> conv1.0.weight."""
    module, _, leaf = key.rpartition(".")
    return f"{module}.0.{leaf}" if module in fused_names else key


def test_fused_lenet_matches_the_unfused_one():
    model = lenet()
    fused = fuse_modules(model, [["conv1", "act1"], ["conv2", "act2"]])
    assert isinstance(fused.conv1, nn.ConvReLU2d) and isinstance(fused.act1, nn.Identity)
    assert isinstance(fused.conv2, nn.ConvReLU2d) and isinstance(fused.act2, nn.Identity)
    assert isinstance(model.conv1, nn.Conv2d) and isinstance(model.act1, nn.ReLU)  # inplace=False: a copy
    x = digits()
    expected, expected_grads = outputs_and_grads(model, x)
    out, grads = outputs_and_grads(fused, x)
    np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-12)
    assert set(grads) == {renamed(key, {"conv1", "conv2"}) for key in expected_grads}
    for key, grad in expected_grads.items():
        np.testing.assert_allclose(grads[renamed(key, {"conv1", "conv2"})], grad, rtol=1e-10, atol=1e-12)


def test_each_fused_pair_is_one_conv2d_relu_call(monkeypatch):
    calls = []
    forward = conv_kernels.conv2d_forward

    def counting(*args, **kwargs):
        calls.append(kwargs.get("activation"))
        return forward(*args, **kwargs)

    monkeypatch.setattr(conv_kernels, "conv2d_forward", counting)
    relu_calls = []
    fused = fuse_conv_relu(lenet())
    monkeypatch.setattr(nn.functional, "relu", lambda x, inplace=False: relu_calls.append(x) or tl.relu(x))
    out = fused(digits())
    assert calls == ["relu", "relu"]
    assert len(relu_calls) == 2  # the ReLUs after fc1 and fc2 only
    assert fused.conv1(digits())._ctx.name == "Conv2dReLUBackward"
    assert out.shape == (3, 10)


def test_state_dict_keys_follow_pytorch_and_checkpoints_load():
    """Fusing renames the conv's keys as PyTorch does (its fused module is a Sequential): a checkpoint saved
    before fusion loads into the model before it is fused; one saved after fusion loads into a fused model."""
    model = lenet()
    before = copy.deepcopy(model.state_dict())  # a snapshot: state dict values share the model's memory
    fused = fuse_conv_relu(model)
    after = fused.state_dict()
    assert list(after) == [renamed(key, {"conv1", "conv2"}) for key in before]
    assert "conv1.0.weight" in after and "conv1.weight" not in after
    for key, value in before.items():
        np.testing.assert_array_equal(after[renamed(key, {"conv1", "conv2"})], value)

    restored = nn.models.lenet5(activation="relu", pooling="max").double()
    restored.load_state_dict(before)
    restored = fuse_conv_relu(restored)
    x = digits()
    np.testing.assert_array_equal(restored(x).detach().numpy(), fused(x).detach().numpy())

    other = fuse_conv_relu(nn.models.lenet5(activation="relu", pooling="max").double())
    other.load_state_dict(after)
    np.testing.assert_array_equal(other(x).detach().numpy(), fused(x).detach().numpy())
    keys = r'Missing key\(s\) in state_dict: "conv1\.0\.weight".*\n\tUnexpected key\(s\) in state_dict: "conv1\.weight"'
    with pytest.raises(RuntimeError, match=keys):
        other.load_state_dict(before)


def test_inplace_training_flags_and_hooks():
    model = lenet().eval()
    seen = []
    model.act1.register_forward_hook(lambda module, inputs, output: seen.append(output.shape))
    model.conv1.register_forward_pre_hook(lambda module, args: seen.append(("before", args[0].shape)))
    fused = fuse_modules(model, ["conv1", "act1"], inplace=True)
    assert fused is model and isinstance(model.conv1, nn.ConvReLU2d)
    assert not model.conv1.training and not model.act1.training
    model(digits())
    # the conv's pre-hook now runs before the fused module, the ReLU's hook after it
    assert seen == [("before", (3, 1, 28, 28)), (3, 6, 28, 28)]


@pytest.mark.parametrize("padding, padding_mode", [("same", "zeros"), (1, "reflect"), ("same", "circular"),
                                                   ("valid", "replicate")])
def test_padding_modes(padding, padding_mode):
    tl.manual_seed(3)
    model = nn.Sequential(nn.Conv2d(2, 3, (3, 4), padding=padding, padding_mode=padding_mode), nn.ReLU()).double()
    fused = fuse_conv_relu(model)
    x = tl.tensor(np.random.default_rng(4).standard_normal((2, 2, 7, 6)))
    expected, expected_grads = outputs_and_grads(model, x)
    out, grads = outputs_and_grads(fused, x)
    np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-12)
    for key, grad in expected_grads.items():
        np.testing.assert_allclose(grads[renamed(key, {"0"})], grad, rtol=1e-10, atol=1e-12)


def test_conv_relu_module():
    conv, relu = nn.Conv2d(1, 2, 3), nn.ReLU()
    fused = nn.ConvReLU2d(conv, relu)
    assert list(fused.state_dict()) == ["0.weight", "0.bias"] and fused[0] is conv and fused[1] is relu
    assert repr(fused).startswith("ConvReLU2d(\n  (0): Conv2d(1, 2, kernel_size=(3, 3)")
    with pytest.raises(TypeError, match="ConvReLU2d takes a Conv2d and a ReLU, got Conv2d and Tanh"):
        nn.ConvReLU2d(conv, nn.Tanh())


@pytest.mark.parametrize("name, kwargs, fusions", [
    ("lenet5", dict(activation="relu"), 2),
    ("lenet5", {}, 0),  # tanh
    ("vgg11", dict(num_classes=10, small_input=True), 8),
    ("vgg11", dict(num_classes=10, small_input=True, batch_norm=True), 0),  # conv, BN, ReLU
    ("nin", {}, 9),
    ("alexnet", dict(num_classes=10), 5),
    ("resnet20", {}, 0),  # conv, BN, ReLU
    ("googlenet", dict(num_classes=10), 0),  # BasicConv2d calls its ReLU in its own forward
])
def test_which_models_gain_fusions(name, kwargs, fusions):
    model = fuse_conv_relu(nn.models.get_model(name, **kwargs), inplace=True)
    assert sum(isinstance(m, nn.ConvReLU2d) for m in model.modules()) == fusions


def test_fuse_conv_relu_on_a_small_vgg_keeps_outputs():
    tl.manual_seed(5)
    model = nn.models.vgg11(num_classes=10, small_input=True).double().eval()
    fused = fuse_conv_relu(model)
    x = tl.tensor(np.random.default_rng(6).standard_normal((2, 3, 32, 32)))
    with tl.no_grad():
        np.testing.assert_allclose(fused(x).numpy(), model(x).numpy(), rtol=1e-10, atol=1e-12)
    assert fuse_conv_relu(fused) is not fused  # nothing left to fuse: still a copy


def test_errors_name_the_argument_the_value_and_what_was_expected():
    model = lenet()
    with pytest.raises(NotImplementedError, match=r"cannot fuse modules_to_fuse \['conv1', 'pool1'\] of types "
                                                  r"\[Conv2d, MaxPool2d\]; the patterns it fuses are \[Conv2d, ReLU\]"):
        fuse_modules(model, ["conv1", "pool1"])
    with pytest.raises(NotImplementedError, match=r"\['act1', 'conv1'\] of types \[ReLU, Conv2d\]"):
        fuse_modules(model, ["act1", "conv1"])
    with pytest.raises(NotImplementedError, match=r"\['conv1'\] of types \[Conv2d\]"):
        fuse_modules(model, [["conv1"]])
    with pytest.raises(AttributeError, match=r"modules_to_fuse names 'conv9', but the model \(LeNet5\) has no "
                                             r"submodule 'conv9'; its submodules are \['conv1', 'act1'"):
        fuse_modules(model, ["conv9", "act1"])
    vgg = nn.Sequential(nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU()))
    with pytest.raises(AttributeError, match=r"names '0\.5', but '0' \(Sequential\) has no submodule '5'; "
                                             r"its submodules are \['0', '1'\]"):
        fuse_modules(vgg, ["0.0", "0.5"])
    with pytest.raises(TypeError, match=r"modules_to_fuse must be a list of module names .* got 'conv1'"):
        fuse_modules(model, "conv1")
    with pytest.raises(TypeError, match=r"each group of modules_to_fuse must be a list of module names .* "
                                        r"got \('conv1', 3\)"):
        fuse_modules(model, [("conv1", 3)])
    assert isinstance(model.conv1, nn.Conv2d)  # failed calls left the model alone


def test_summary_of_a_fused_model_keeps_its_totals():
    model = nn.models.lenet5(activation="relu")
    plain, fused = nn.summary(model, (1, 28, 28)), nn.summary(nn.utils.fuse_conv_relu(model), (1, 28, 28))
    assert (fused.total_params, fused.total_macs) == (plain.total_params, plain.total_macs)
    rows = {row.name: row for row in fused.rows}
    fused_name = next(name for name, row in rows.items() if row.type == "ConvReLU2d")
    conv = next(row for row in plain.rows if row.type == "Conv2d")
    assert rows[fused_name].macs == conv.macs and rows[fused_name].output_shape == conv.output_shape
    assert rows[fused_name + ".0"].params == conv.params


def test_moved_hooks_keep_with_kwargs_and_always_call():
    model = lenet().eval()
    seen = []
    model.conv1.register_forward_pre_hook(lambda module, args, kwargs: seen.append(("pre", sorted(kwargs))),
                                          with_kwargs=True)
    model.act1.register_forward_hook(lambda module, args, kwargs, output: seen.append(("post", output.shape)),
                                     with_kwargs=True, always_call=True)
    fuse_modules(model, ["conv1", "act1"], inplace=True)
    model(digits())
    assert seen == [("pre", []), ("post", (3, 6, 28, 28))]
    assert model.conv1._forward_hooks_always_called and not model.act1._forward_hooks_always_called
