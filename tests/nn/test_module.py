"""Module mechanics: registration, traversal, modes, devices, state dicts, printing, hooks."""

import copy
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


def test_parameters_and_buffers_follow_the_named_order():
    shared, tied = nn.Sequential(nn.Conv2d(2, 2, 1), nn.BatchNorm2d(2)), nn.Linear(2, 2)
    inner = nn.Sequential(nn.BatchNorm2d(2), shared)
    model = nn.Sequential(inner, nn.ReLU(), shared, nn.Sequential(tied, nn.Linear(2, 2), nn.BatchNorm1d(2)))
    model[3][1].weight = tied.weight  # a Parameter under two names
    model.register_buffer("scale", tl.ones(1))
    for recurse in (True, False):
        for kind in ("parameters", "buffers"):
            named = [id(t) for _, t in getattr(model, f"named_{kind}")(recurse=recurse)]
            assert [id(t) for t in getattr(model, kind)(recurse=recurse)] == named
    assert len(list(model.parameters())) == 2 + 2 + 2 + 1 + 2 + 2 and len(list(model.buffers())) == 3 * 3 + 1
    assert next(model.parameters()) is inner[0].weight


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


def test_state_dict_values_are_detached_tensors_sharing_memory():
    a, b = Block(), Block()
    state = a.state_dict()
    for key, value in state.items():
        own = a.get_parameter(key) if key in dict(a.named_parameters()) else a.get_buffer(key)
        assert type(value) is tl.Tensor and not value.requires_grad and value.grad_fn is None, key
        assert value.dtype == own.dtype and value.device == own.device and value.shape == own.shape, key
    assert [a.state_dict()[key].size() for key in a.state_dict()][:2] == [(1,), ()]  # the tutorial's loop
    state["conv.weight"][0, 0, 0, 0] = 7.0  # shares memory: the model sees the write
    assert a.conv.weight.detach().numpy()[0, 0, 0, 0] == 7.0
    result = b.load_state_dict(a.state_dict())
    assert result.missing_keys == [] and result.unexpected_keys == []
    for (name, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items()):
        np.testing.assert_array_equal(x.numpy(), y.numpy(), err_msg=name)
    assert b.conv.weight is not a.conv.weight and b.conv.weight.requires_grad  # copied into b's own Parameters
    assert "scratch" not in a.state_dict()


def test_deepcopy_of_a_state_dict_keeps_the_values_of_the_moment():
    tl.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2))
    best = copy.deepcopy(model.state_dict())
    snapshot = {key: value.numpy().copy() for key, value in best.items()}
    optimizer = nn.optim.SGD(model.parameters(), lr=0.5)
    model(tl.randn(4, 3)).pow(2).sum().backward()
    optimizer.step()
    assert not np.array_equal(model[0].weight.detach().numpy(), snapshot["0.weight"])
    for key, value in best.items():
        np.testing.assert_array_equal(value.numpy(), snapshot[key], err_msg=key)
    model.load_state_dict(best)
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(value.numpy(), snapshot[key], err_msg=key)


def test_state_dict_prefix_and_destination_as_pytorch():
    model = nn.Sequential(nn.Linear(2, 2))
    assert list(model.state_dict(prefix="net.")) == ["net.0.weight", "net.0.bias"]
    assert list(model.state_dict(prefix="net")) == ["net0.weight", "net0.bias"]  # put in front as given
    destination = {"step": 3}
    assert model.state_dict(destination=destination, prefix="model.") is destination
    assert list(destination) == ["step", "model.0.weight", "model.0.bias"]
    assert model.state_dict(None, "", True)["0.weight"] is model[0].weight  # PyTorch's positional order


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(3, 2), (5, 7)])
def test_load_state_dict_takes_tensors_and_arrays_and_casts(shape, dtype):
    rng = np.random.default_rng(sum(shape))
    linear = nn.Linear(shape[1], shape[0])
    weight, bias = rng.standard_normal(shape).astype(dtype), rng.standard_normal(shape[0]).astype(dtype)
    linear.load_state_dict({"weight": weight, "bias": tl.tensor(bias)})
    assert linear.weight.dtype == tl.float32 and isinstance(linear.weight, nn.Parameter)  # the module's dtype
    np.testing.assert_allclose(linear.weight.detach().numpy(), weight.astype(np.float64), rtol=1e-6)
    np.testing.assert_allclose(linear.bias.detach().numpy(), bias.astype(np.float64), rtol=1e-6)
    bn = nn.BatchNorm1d(3)
    bn.load_state_dict({**bn.state_dict(), "num_batches_tracked": np.int64(5)})
    assert bn.num_batches_tracked.item() == 5 and bn.num_batches_tracked.dtype == tl.int64


def test_load_state_dict_with_assign_takes_the_tensors_themselves():
    linear = nn.Linear(2, 3)
    weight = tl.randn(3, 2, dtype=tl.float64)
    linear.weight.requires_grad_(False)
    linear.load_state_dict({"weight": weight, "bias": np.zeros(3, np.float32)}, assign=True)
    assert isinstance(linear.weight, nn.Parameter) and not linear.weight.requires_grad
    assert linear.weight.dtype == tl.float64  # the state dict's tensor, dtype included
    with tl.no_grad():
        weight.fill_(2.0)
    assert (linear.weight.detach().numpy() == 2.0).all()  # shares its memory
    assert linear.bias.requires_grad and linear.bias.dtype == tl.float32


def test_load_state_dict_changes_the_values_seen_by_a_recorded_graph():
    linear = nn.Linear(2, 2)
    x = tl.randn(3, 2, requires_grad=True)
    out = linear(x).sum()
    linear.load_state_dict(nn.Linear(2, 2).state_dict())  # an in-place change of the weight, as in PyTorch
    with pytest.raises(RuntimeError, match="changed by an in-place operation"):
        out.backward()


def test_load_state_dict_errors_name_the_keys():
    block = Block()
    state = block.state_dict()
    del state["conv.bias"]
    state["extra.weight"] = np.zeros(1)
    state["head.1.weight"] = np.zeros((3, 100), np.float32)
    before = block.conv.weight.detach().numpy().copy()
    with pytest.raises(RuntimeError) as error:
        block.load_state_dict(state)
    lines = str(error.value).split("\n\t")
    assert lines == ["Error(s) in loading state_dict for Block:", 'Missing key(s) in state_dict: "conv.bias".',
                     'Unexpected key(s) in state_dict: "extra.weight".',
                     "size mismatch for head.1.weight: the state dict holds shape (3, 100), the module's shape is "
                     "(2, 100)"]
    np.testing.assert_array_equal(block.conv.weight.detach().numpy(), before)  # nothing changed
    with pytest.raises(RuntimeError, match=r"size mismatch for head\.1\.weight"):  # also when not strict
        block.load_state_dict(state, strict=False)
    del state["head.1.weight"]
    result = block.load_state_dict(state, strict=False)
    assert result.missing_keys == ["conv.bias", "head.1.weight"] and result.unexpected_keys == ["extra.weight"]
    assert repr(result) == ("IncompatibleKeys(missing_keys=['conv.bias', 'head.1.weight'], "
                            "unexpected_keys=['extra.weight'])")
    assert repr(block.load_state_dict(block.state_dict())) == "<All keys matched successfully>"
    with pytest.raises(RuntimeError, match='"conv.weight": expected a Tensor or an array, got list'):
        block.load_state_dict({**block.state_dict(), "conv.weight": [[1.0]]})
    with pytest.raises(TypeError, match="state_dict must be a mapping of names to tensors, got list"):
        block.load_state_dict([("conv.weight", tl.ones(1))])


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
    x = tl.ones(1, 2)
    np.testing.assert_array_equal(seq(input=x).detach().numpy(), seq(x).detach().numpy())  # PyTorch's name


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


def test_reassigning_a_layer_keeps_its_position():
    tl.manual_seed(0)
    seq = nn.Sequential(OrderedDict(fc=nn.Linear(3, 4), act=nn.Tanh(), out=nn.Linear(4, 2)))
    seq.act = nn.ReLU()
    assert list(seq._modules) == ["fc", "act", "out"]
    x = tl.randn(5, 3)
    expected = seq.out(seq.fc(x).relu())  # the ReLU runs between fc and out, not after out
    np.testing.assert_array_equal(seq(x).detach().numpy(), expected.detach().numpy())

    linear = nn.Linear(2, 3)
    linear.weight = nn.Parameter(tl.ones(3, 2))
    assert list(linear.state_dict()) == ["weight", "bias"]
    assert [name for name, _ in linear.named_parameters()] == ["weight", "bias"]
    np.testing.assert_array_equal(linear.state_dict()["weight"], np.ones((3, 2)))


def test_assigning_to_another_table_moves_the_name():
    block = Block()
    block.conv = nn.Parameter(tl.ones(2))  # a module name becomes a parameter
    assert "conv" not in block._modules and list(block._parameters) == ["scale", "conv"]
    block.register_buffer("stats", tl.zeros(1), persistent=False)
    block.stats = nn.Parameter(tl.ones(1))  # a buffer name becomes a parameter, and is saved
    assert "stats" not in block._buffers and "stats" in block.state_dict()
    with pytest.raises(TypeError, match="'scale' must be a Parameter or None, got Linear"):
        block.scale = nn.Linear(1, 1)  # as in PyTorch, a parameter name does not take a module
    block.scale = None
    assert block._parameters["scale"] is None and "scale" not in block.state_dict()


def _kinds(container):
    return [type(module).__name__ for module in container]


@pytest.mark.parametrize("container", [nn.Sequential, lambda *m: nn.ModuleList(m)], ids=["Sequential", "ModuleList"])
def test_sequence_setitem_delitem_insert(container):
    seq = container(nn.Linear(2, 2), nn.ReLU(), nn.Tanh(), nn.Sigmoid())
    seq[-1] = nn.GELU()
    seq[1] = nn.ELU()
    assert _kinds(seq) == ["Linear", "ELU", "Tanh", "GELU"] and list(seq._modules) == ["0", "1", "2", "3"]
    with pytest.raises(IndexError, match="index 4 is out of range"):
        seq[4] = nn.ReLU()
    with pytest.raises(TypeError, match="'0' must be a Module or None, got int"):
        seq[0] = 3
    del seq[1]
    assert _kinds(seq) == ["Linear", "Tanh", "GELU"] and list(seq._modules) == ["0", "1", "2"]  # renumbered
    del seq[-2:]
    assert _kinds(seq) == ["Linear"] and list(seq._modules) == ["0"]
    with pytest.raises(IndexError, match="index -2 is out of range"):
        del seq[-2]
    seq.insert(0, nn.Tanh())
    seq.insert(-1, nn.ReLU())
    seq.insert(3, nn.Sigmoid())  # index == len appends
    assert _kinds(seq) == ["Tanh", "ReLU", "Linear", "Sigmoid"] and list(seq._modules) == ["0", "1", "2", "3"]
    for index in (5, -5):
        with pytest.raises(IndexError, match=f"insert index {index} is out of range"):
            seq.insert(index, nn.ReLU())
    with pytest.raises(TypeError, match="insert expects a Module, got int"):
        seq.insert(0, 3)
    assert seq.extend([nn.ReLU(), nn.Tanh()]) is seq and seq.append(nn.ELU()) is seq
    assert _kinds(seq)[-3:] == ["ReLU", "Tanh", "ELU"] and list(seq._modules)[-1] == "6"
    with pytest.raises(TypeError, match="extend expects an iterable of Modules, got int"):
        seq.extend(3)


def test_sequential_forward_follows_edits():
    tl.manual_seed(1)
    first, second = nn.Linear(3, 3), nn.Linear(3, 3)
    seq = nn.Sequential(first, nn.ReLU(), second)
    x = tl.randn(4, 3)
    seq.insert(1, nn.Tanh())
    del seq[2]
    np.testing.assert_array_equal(seq(x).detach().numpy(), second(first(x).tanh()).detach().numpy())
    assert list(seq.state_dict()) == ["0.weight", "0.bias", "2.weight", "2.bias"]


def test_sequential_deletion_renumbers_named_keys_and_insert_needs_numbers():
    seq = nn.Sequential(OrderedDict(a=nn.ReLU(), b=nn.Tanh(), c=nn.Sigmoid()))
    del seq[0]
    assert list(seq._modules) == ["0", "1"]  # as PyTorch: del renumbers every key
    named = nn.Sequential(OrderedDict(a=nn.ReLU(), b=nn.Tanh()))
    with pytest.raises(ValueError, match=r"insert at 1 .* keyed \['1'\]; the keys are \['a', 'b'\]"):
        named.insert(1, nn.ELU())
    named.insert(2, nn.ELU())  # at the end nothing is renumbered
    assert list(named._modules) == ["a", "b", "2"]


def test_module_used_twice_is_saved_under_each_name():
    linear = nn.Linear(2, 2)
    model = nn.Sequential(linear, nn.ReLU(), linear)
    state = model.state_dict()
    assert list(state) == ["0.weight", "0.bias", "2.weight", "2.bias"]
    np.testing.assert_array_equal(state["0.weight"], state["2.weight"])
    assert [name for name, _ in model.named_parameters()] == ["0.weight", "0.bias"]
    assert [name for name, _ in model.named_parameters(remove_duplicate=False)] == list(state)
    assert [name for name, _ in model.named_modules(remove_duplicate=False)] == ["", "0", "1", "2"]
    assert [name for name, _ in model.named_modules()] == ["", "0", "1"]

    rng = np.random.default_rng(3)
    weight, bias = rng.standard_normal((2, 2)).astype(np.float32), rng.standard_normal(2).astype(np.float32)
    result = model.load_state_dict({"0.weight": weight, "0.bias": bias, "2.weight": weight, "2.bias": bias})
    assert result.missing_keys == [] and result.unexpected_keys == []
    np.testing.assert_array_equal(linear.weight.detach().numpy(), weight)
    with pytest.raises(RuntimeError, match=r'Missing key\(s\) in state_dict: "2\.weight", "2\.bias"'):
        model.load_state_dict({"0.weight": weight, "0.bias": bias})


def test_tied_parameter_is_saved_under_each_name():
    class Tied(nn.Module):
        def __init__(self):
            super().__init__()
            self.encode, self.decode = nn.Linear(3, 3), nn.Linear(3, 3)
            self.decode.weight = self.encode.weight

    model = Tied()
    assert list(model.state_dict()) == ["encode.weight", "encode.bias", "decode.weight", "decode.bias"]
    assert [name for name, _ in model.named_parameters()] == ["encode.weight", "encode.bias", "decode.bias"]
    assert len(list(model.named_parameters(remove_duplicate=False))) == 4


def test_state_dict_keep_vars_gives_the_module_tensors():
    block = Block()
    state = block.state_dict(keep_vars=True)
    assert state["conv.weight"] is block.conv.weight and state["steps"] is block.steps
    assert list(state) == list(block.state_dict())


@pytest.mark.parametrize("mode", ["no", 1, 1.5, None, np.True_])
def test_train_mode_must_be_a_bool(mode):
    block = Block().eval()
    with pytest.raises(ValueError, match=f"training mode is expected to be boolean.*got {mode!r}"):
        block.train(mode)
    assert not any(m.training for m in block.modules())  # unchanged


def test_a_child_registered_twice_is_one_child_and_apply_visits_it_once():
    shared = nn.Linear(2, 2)
    model = nn.Sequential(shared, nn.ReLU(), shared)
    assert [name for name, _ in model.named_children()] == ["0", "1"]
    assert list(model.children()) == [shared, model[1]]
    visited = []
    model.apply(visited.append)
    assert visited == [shared, model[1], model]
    before = shared.weight.detach().numpy().copy()
    model.apply(lambda m: m.weight.array.__imul__(2) if isinstance(m, nn.Linear) else None)
    np.testing.assert_array_equal(shared.weight.detach().numpy(), 2 * before)  # rescaled once, not twice
    assert list(model.state_dict()) == ["0.weight", "0.bias", "2.weight", "2.bias"]  # still under each name


@pytest.mark.parametrize("register", [
    lambda m, name: m.add_module(name, nn.ReLU()),
    lambda m, name: m.register_module(name, nn.ReLU()),
    lambda m, name: m.register_buffer(name, None),
    lambda m, name: m.register_parameter(name, None),
    lambda m, name: m.register_parameter(name, nn.Parameter(tl.ones(1))),
], ids=["add_module", "register_module", "register_buffer", "register_parameter", "register_parameter_value"])
def test_names_are_checked_like_pytorch(register):
    module = nn.Linear(2, 2)
    for name, message in [("a.b", "name can't contain \".\", got 'a.b'"), ("", "name can't be empty string"),
                          ("in_features", "attribute 'in_features' already exists in Linear"),
                          ("forward", "attribute 'forward' already exists")]:
        with pytest.raises(KeyError) as error:
            register(module, name)
        assert message in error.value.args[0]
    with pytest.raises(TypeError, match="name should be a string, got int 5"):
        register(module, 5)
    assert module.in_features == 2 and "" not in module._modules and "a.b" not in module._buffers


def test_a_name_of_another_kind_cannot_be_registered_but_its_own_kind_is_replaced():
    block = Block()
    with pytest.raises(KeyError, match="attribute 'conv' already exists"):
        block.register_buffer("conv", None)
    with pytest.raises(KeyError, match="attribute 'steps' already exists"):
        block.register_parameter("steps", None)
    with pytest.raises(KeyError, match="attribute 'scale' already exists"):
        block.add_module("scale", nn.ReLU())
    with pytest.raises(KeyError, match="attribute 'note' already exists"):
        block.register_buffer("note", tl.zeros(1))
    block.register_buffer("steps", tl.tensor(5))
    block.register_parameter("scale", None)
    block.add_module("conv", nn.Identity())
    assert block.steps.item() == 5 and block.scale is None and isinstance(block.conv, nn.Identity)
    with pytest.raises(TypeError, match="parameter 'w' must be a Parameter or None, got Tensor"):
        block.register_parameter("w", tl.ones(1))
    with pytest.raises(KeyError, match="parameter name can.*t contain"):
        setattr(block, "a.b", nn.Parameter(tl.ones(1)))
    with pytest.raises(TypeError, match="module name should be a string"):
        nn.ModuleDict()[5] = nn.ReLU()


def test_get_submodule_parameter_and_buffer():
    model = nn.Sequential(nn.Linear(2, 2, bias=False), nn.Sequential(nn.BatchNorm1d(2)))
    assert model.get_submodule("") is model
    assert model.get_submodule("1.0") is model[1][0]
    assert model.get_parameter("0.weight") is model[0].weight
    assert model.get_buffer("1.0.running_mean") is model[1][0].running_mean
    for getter, target, message in [
        ("get_submodule", "1.5", "Sequential has no attribute '5'"),
        ("get_submodule", "0.weight", "'weight' is not a Module but a Parameter"),
        ("get_parameter", "0.nope", "Linear has no attribute 'nope'"),
        ("get_parameter", "0.bias", "'bias' is not a parameter of Linear"),  # registered as None
        ("get_parameter", "1.0.running_mean", "'running_mean' is not a parameter of BatchNorm1d"),
        ("get_buffer", "1.0.weight", "'weight' is not a buffer of BatchNorm1d"),
        ("get_buffer", "1.0.eps", "'eps' is not a buffer"),
        ("get_buffer", "9.x", "Sequential has no attribute '9'"),
    ]:
        with pytest.raises(AttributeError, match=message):
            getattr(model, getter)(target)


def test_forward_pre_hooks_see_and_replace_the_arguments():
    tl.manual_seed(0)
    linear = nn.Linear(2, 3)
    seen = []
    handle = linear.register_forward_pre_hook(lambda module, args: seen.append((module, args)))
    x = tl.randn(4, 2)
    linear(x)
    assert seen[0][0] is linear and isinstance(seen[0][1], tuple) and seen[0][1][0] is x
    handle.remove()
    zeros = tl.zeros(4, 2)
    outputs = []
    linear.register_forward_hook(lambda module, args, output: outputs.append(args[0]))
    for replacement in (zeros, (zeros,)):  # a single value is wrapped in a tuple
        with linear.register_forward_pre_hook(lambda module, args: replacement):
            out = linear(x)
        np.testing.assert_allclose(out.detach().numpy(), np.broadcast_to(linear.bias.detach().numpy(), (4, 3)))
        assert outputs[-1] is zeros  # the forward hook sees the replaced arguments
    assert not linear._forward_pre_hooks  # removed when the with block ended
    assert len(seen) == 1


def test_half_casts_floating_parameters_and_buffers():
    block = Block().half()
    assert block.conv.weight.dtype == tl.float16 and block.bn.running_var.dtype == tl.float16
    assert block.steps.dtype == tl.int64 and block.bn.num_batches_tracked.dtype == tl.int64


def test_module_dict_editing():
    relu, tanh, identity = nn.ReLU(), nn.Tanh(), nn.Identity()
    heads = nn.ModuleDict([("a", relu), ("b", tanh)])
    assert list(heads.items()) == [("a", relu), ("b", tanh)]
    assert heads.pop("a") is relu and list(heads) == ["b"]
    heads.update([("c", identity)])
    heads.update(OrderedDict(b=relu))
    assert list(heads.items()) == [("b", relu), ("c", identity)]  # an existing key is replaced in place
    del heads["c"]
    assert list(heads) == ["b"]
    with pytest.raises(KeyError):
        heads.pop("missing")
    with pytest.raises(KeyError):
        del heads["missing"]
    heads.clear()
    assert len(heads) == 0 and list(heads.parameters()) == []
    with pytest.raises(ValueError, match="element #0 has length 3; 2"):
        nn.ModuleDict([("a", relu, 1)])
    with pytest.raises(TypeError, match="element #1 must be a \\(name, module\\) pair, got ReLU"):
        nn.ModuleDict([("a", relu), relu])
    with pytest.raises(TypeError, match="mapping or an iterable of \\(name, module\\) pairs, got int"):
        heads.update(5)
    with pytest.raises(KeyError, match="attribute 'keys' already exists"):
        nn.ModuleDict({"keys": relu})


@pytest.mark.parametrize("container", [nn.Sequential, lambda *m: nn.ModuleList(m)], ids=["Sequential", "ModuleList"])
def test_sequence_pop(container):
    relu, tanh, sigmoid = nn.ReLU(), nn.Tanh(), nn.Sigmoid()
    seq = container(relu, tanh, sigmoid)
    assert seq.pop(1) is tanh
    assert list(seq._modules.items()) == [("0", relu), ("1", sigmoid)]  # renumbered
    assert seq.pop(-1) is sigmoid and list(seq) == [relu]
    with pytest.raises(IndexError, match="index 5 is out of range"):
        seq.pop(5)
    seq = container(relu, tanh, sigmoid)
    popped = seq.pop(slice(0, 2))
    assert type(popped) is type(seq) and list(popped) == [relu, tanh] and list(seq) == [sigmoid]


class TwoLines(nn.Module):
    def extra_repr(self):
        return "line1\nline2"


def test_repr_puts_each_line_of_a_multi_line_extra_repr_on_its_own_line():
    assert repr(TwoLines()) == "TwoLines(\n  line1\n  line2\n)"
    outer = nn.Sequential(TwoLines())
    assert repr(outer) == "Sequential(\n  (0): TwoLines(\n    line1\n    line2\n  )\n)"
    assert repr(nn.Sequential()) == "Sequential()"


def test_module_list_repr_folds_runs_of_identical_modules():
    layers = nn.ModuleList([nn.Linear(2, 2) for _ in range(3)] + [nn.ReLU(), nn.Linear(2, 2), nn.Linear(2, 3)])
    assert repr(layers) == "\n".join([
        "ModuleList(",
        "  (0-2): 3 x Linear(in_features=2, out_features=2, bias=True)",
        "  (3): ReLU()",
        "  (4): Linear(in_features=2, out_features=2, bias=True)",
        "  (5): Linear(in_features=2, out_features=3, bias=True)",
        ")",
    ])
    blocks = nn.ModuleList([nn.Sequential(nn.ReLU(), nn.Tanh()) for _ in range(2)])
    assert repr(blocks) == "ModuleList(\n  (0-1): 2 x Sequential(\n    (0): ReLU()\n    (1): Tanh()\n  )\n)"
    assert repr(nn.ModuleList()) == "ModuleList()"
    assert repr(nn.Sequential(nn.ReLU(), nn.ReLU())).count("(1): ReLU()") == 1  # Sequential does not fold


def test_module_dict_from_and_updated_with_another_module_dict():
    a = nn.ModuleDict({"fc": nn.Linear(1, 1), "act": nn.ReLU()})
    b = nn.ModuleDict(a)
    assert list(b.keys()) == ["fc", "act"] and b["fc"] is a["fc"]
    c = nn.ModuleDict({"x": nn.ReLU()})
    c.update(a)
    assert list(c.keys()) == ["x", "fc", "act"]


def test_dir_lists_parameters_buffers_and_submodules():
    block = Block()
    names = dir(block)
    assert {"conv", "bn", "head", "scale", "steps", "scratch", "note", "forward", "state_dict"} <= set(names)
    assert names == sorted(names)
    assert "weight" in dir(nn.Linear(1, 1)) and "0" not in dir(nn.Sequential(nn.ReLU()))  # not identifiers


def test_train_calls_each_childs_own_train_and_returns_the_module():
    calls = []

    class KeepsNormInEval(nn.Module):
        def __init__(self):
            super().__init__()
            self.bn = nn.BatchNorm1d(2)

        def train(self, mode=True):
            calls.append(mode)
            super().train(mode)
            self.bn.train(False)
            return self

    model = nn.Sequential(nn.Linear(2, 2), KeepsNormInEval())
    assert model.train() is model and calls == [True]
    assert model.training and model[1].training and not model[1].bn.training  # the override had its say
    assert model.eval() is model and calls == [True, False] and not any(m.training for m in model.modules())


def test_apply_requires_grad_and_register_module_as_pytorch():
    model = nn.Sequential(nn.Linear(2, 2))
    assert model.apply(lambda module: None) is model
    assert model.requires_grad_(False) is model and not any(p.requires_grad for p in model.parameters())
    assert model.requires_grad_() is model and all(p.requires_grad for p in model.parameters())
    head = nn.Linear(2, 1)
    assert model.register_module("head", head) is None and model.head is head
    assert [name for name, _ in model.named_modules()] == ["", "0", "head"]
    assert list(model.modules()) == [model, model[0], head]


def test_state_dict_stays_on_the_device_and_loads_across_devices(tier):
    tl.manual_seed(5)
    model = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2)).to("cuda")
    state = model.state_dict()
    assert all(value.device == "cuda" and not value.requires_grad for value in state.values())
    best = copy.deepcopy(state)
    host = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2))
    host.load_state_dict(state)  # device tensors into a host model
    for key, value in host.state_dict().items():
        assert value.device == "cpu"
        np.testing.assert_array_equal(value.numpy(), state[key].cpu().numpy(), err_msg=key)
    with tl.no_grad():
        model[0].weight.fill_(0.0)
    assert best["0.weight"].device == "cuda" and np.any(best["0.weight"].cpu().numpy() != 0)
    model.load_state_dict({key: value.numpy() for key, value in host.state_dict().items()})  # host arrays
    assert model[0].weight.device == "cuda"
    np.testing.assert_array_equal(model[0].weight.detach().cpu().numpy(), host[0].weight.detach().numpy())


def test_to_takes_a_tensor_a_device_object_and_non_blocking():
    """As PyTorch's Module.to: a tensor gives its device and dtype; tl.device objects and non_blocking are taken."""
    model = nn.Linear(2, 3)
    assert model.to(tl.zeros(1, dtype=tl.float64)) is model
    assert model.weight.dtype == tl.float64 and model.bias.dtype == tl.float64
    model.to(tl.device("cpu"), tl.float32, non_blocking=True)
    assert model.weight.dtype == tl.float32 and model.weight.device == "cpu"
