"""Module mechanics: registration, traversal, modes, devices, state dicts, printing, hooks."""

from collections import OrderedDict

import numpy as np
import pytest

import nn
import tensorlib as tl


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(4 * 5 * 5, 2))
        self.scale = nn.Parameter(tl.ones(1))
        self.register_buffer("steps", tl.tensor(0))
        self.register_buffer("scratch", tl.zeros(2), persistent=False)
        self.note = "plain attribute"

    def forward(self, x):
        return self.head(self.bn(self.conv(x)).relu()) * self.scale


def test_registration_and_pytorch_key_names():
    block = Block()
    names = [name for name, _ in block.named_parameters()]
    assert names == ["scale", "conv.weight", "conv.bias", "bn.weight", "bn.bias", "head.1.weight", "head.1.bias"]
    assert list(block.state_dict()) == [
        "scale", "steps", "conv.weight", "conv.bias", "bn.weight", "bn.bias", "bn.running_mean", "bn.running_var",
        "bn.num_batches_tracked", "head.1.weight", "head.1.bias",
    ]
    assert [n for n, _ in block.named_children()] == ["conv", "bn", "head"]
    assert len(list(block.modules())) == 6
    assert block.note == "plain attribute"
    assert block.conv.weight.shape == (4, 3, 3, 3)  # (out, in/groups, kH, kW)
    assert block.head[1].weight.shape == (2, 100)  # (out, in)


def test_shared_parameters_are_listed_once():
    linear = nn.Linear(3, 3)
    model = nn.Sequential(linear, nn.ReLU(), linear)
    assert len(list(model.parameters())) == 2


def test_train_eval_propagate():
    block = Block()
    block.eval()
    assert not any(m.training for m in block.modules())
    block.train()
    assert all(m.training for m in block.modules())


def test_forward_backward_and_zero_grad():
    block = Block()
    block(tl.randn(2, 3, 5, 5)).sum().backward()
    assert all(p.grad is not None for p in block.parameters())
    block.zero_grad(set_to_none=False)
    assert all(np.all(p.grad.numpy() == 0) for p in block.parameters())
    block.zero_grad()
    assert all(p.grad is None for p in block.parameters())


def test_state_dict_round_trip_and_copies():
    a, b = Block(), Block()
    state = a.state_dict()
    state["conv.weight"][...] = 0  # a copy: the model is untouched
    assert np.any(a.conv.weight.detach().numpy() != 0)
    result = b.load_state_dict(a.state_dict())
    assert result.missing_keys == [] and result.unexpected_keys == []
    for (name, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items()):
        np.testing.assert_array_equal(x, y, err_msg=name)
    assert "scratch" not in a.state_dict()


def test_load_state_dict_errors_name_the_keys():
    block = Block()
    state = block.state_dict()
    del state["conv.bias"]
    state["extra.weight"] = np.zeros(1)
    state["head.1.weight"] = np.zeros((3, 100), np.float32)
    before = block.conv.weight.detach().numpy().copy()
    with pytest.raises(RuntimeError) as error:
        block.load_state_dict(state)
    message = str(error.value)
    assert "conv.bias" in message and "extra.weight" in message
    assert "head.1.weight: checkpoint shape (3, 100), model shape (2, 100)" in message
    np.testing.assert_array_equal(block.conv.weight.detach().numpy(), before)  # nothing changed
    del state["head.1.weight"]
    result = block.load_state_dict(state, strict=False)
    assert result.missing_keys == ["conv.bias", "head.1.weight"] and result.unexpected_keys == ["extra.weight"]


def test_to_keeps_parameter_objects_and_casts():
    block = Block()
    weight = block.conv.weight
    block.to(tl.float64)
    assert block.conv.weight is weight and weight.dtype == tl.float64
    assert block.steps.dtype == tl.int64  # integer buffers are not cast
    assert block(tl.randn(1, 3, 5, 5, dtype=tl.float64)).dtype == tl.float64


def test_repr_like_pytorch():
    model = nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                          nn.Linear(1176, 10, bias=False), nn.BatchNorm1d(10), nn.Dropout(0.25))
    assert repr(model) == "\n".join([
        "Sequential(",
        "  (0): Conv2d(1, 6, kernel_size=(5, 5), stride=(1, 1), padding=(2, 2))",
        "  (1): ReLU()",
        "  (2): MaxPool2d(kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=False)",
        "  (3): Flatten(start_dim=1, end_dim=-1)",
        "  (4): Linear(in_features=1176, out_features=10, bias=False)",
        "  (5): BatchNorm1d(10, eps=1e-05, momentum=0.1, affine=True, bias=True, track_running_stats=True)",
        "  (6): Dropout(p=0.25, inplace=False)",
        ")",
    ])
    assert repr(nn.Conv2d(4, 8, 3, stride=2, dilation=2, groups=4, bias=False)) == (
        "Conv2d(4, 8, kernel_size=(3, 3), stride=(2, 2), dilation=(2, 2), groups=4, bias=False)")


def test_containers():
    layers = nn.ModuleList([nn.Linear(2, 2) for _ in range(3)])
    assert len(layers) == 3 and len(list(layers.parameters())) == 6
    heads = nn.ModuleDict({"a": nn.Linear(2, 1), "b": nn.Identity()})
    assert "a" in heads and list(heads.keys()) == ["a", "b"]
    seq = nn.Sequential(OrderedDict(first=nn.Linear(2, 3), act=nn.Tanh()))
    assert list(seq.state_dict()) == ["first.weight", "first.bias"]
    assert isinstance(seq[0], nn.Linear) and len(seq[1:]) == 1


def test_forward_hooks():
    model = nn.Sequential(nn.Linear(2, 3), nn.ReLU())
    seen = []
    handle = model[0].register_forward_hook(lambda module, inputs, output: seen.append(output.shape))
    model(tl.randn(4, 2))
    handle.remove()
    model(tl.randn(4, 2))
    assert seen == [(4, 3)]


def test_assignment_type_checks():
    block = Block()
    with pytest.raises(TypeError, match="'conv' must be a Module"):
        block.conv = 3
    with pytest.raises(TypeError, match="buffer 'steps'"):
        block.steps = 5

    class Forgot(nn.Module):
        def __init__(self):
            self.weight = nn.Parameter(tl.ones(1))

    with pytest.raises(AttributeError, match="super"):
        Forgot()
