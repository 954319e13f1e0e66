"""Module containers and loading, as PyTorch's: ParameterList and ParameterDict, Sequential and ModuleList arithmetic,
and the per-module hook that brings an older checkpoint's entries up to date before a load."""

from collections import OrderedDict

import numpy as np
import pytest

import nn
import tensorlib as tl


# ---- loading older checkpoints --------------------------------------------------------------------------------------
class Counter(nn.Module):
    """A module whose ``count`` buffer older checkpoints lack: it keeps its own value when loading one."""

    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(tl.ones(2))
        self.register_buffer("count", tl.tensor(7))

    def _upgrade_state_dict(self, state_dict, prefix):
        state_dict.setdefault(prefix + "count", self.count)


def test_upgrade_hook_completes_the_state_dict_of_each_module_under_its_prefix():
    model = nn.Sequential(nn.Linear(2, 2), Counter())
    old = {key: value for key, value in nn.Sequential(nn.Linear(2, 2), Counter()).state_dict().items()
           if key != "1.count"}
    old["1.weight"] = tl.tensor(np.array([3.0, 4.0]))
    keys_before = list(old)
    assert repr(model.load_state_dict(old)) == "<All keys matched successfully>"  # strict
    assert list(old) == keys_before  # the caller's mapping is not changed
    np.testing.assert_array_equal(model[1].weight.detach().numpy(), [3.0, 4.0])
    assert model[1].count.item() == 7
    assert model.load_state_dict(old, strict=False).missing_keys == []
    with pytest.raises(RuntimeError, match=r'Missing key\(s\) in state_dict: "0.bias"'):
        model.load_state_dict({key: value for key, value in old.items() if key != "0.bias"})


def test_upgrade_hook_runs_under_every_name_of_a_shared_module():
    counter = Counter()
    model = nn.Module()
    model.first, model.second = counter, counter
    state = {"first.weight": tl.ones(2), "second.weight": tl.ones(2)}
    assert model.load_state_dict(state) == ([], [])


@pytest.mark.parametrize("layer", [lambda: nn.BatchNorm2d(4), lambda: nn.InstanceNorm2d(4, track_running_stats=True)])
def test_norm_layers_load_a_state_dict_without_num_batches_tracked(layer):
    """As PyTorch: a checkpoint without the batch count loads strictly, and the layer keeps its own count."""
    source, target = layer(), layer()
    source.running_mean.copy_(tl.tensor(np.arange(4.0), dtype=tl.float32))
    target.num_batches_tracked.fill_(5)
    state = {key: value for key, value in source.state_dict().items() if key != "num_batches_tracked"}
    assert repr(target.load_state_dict(state)) == "<All keys matched successfully>"
    np.testing.assert_array_equal(target.running_mean.numpy(), np.arange(4.0))
    assert target.num_batches_tracked.item() == 5


def test_a_nested_batch_norm_loads_a_state_dict_without_num_batches_tracked():
    source, target = (nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4)) for _ in range(2))
    source[1].running_var.fill_(3.0)
    target[1].num_batches_tracked.fill_(7)
    state = {key: value for key, value in source.state_dict().items() if not key.endswith("num_batches_tracked")}
    assert repr(target.load_state_dict(state)) == "<All keys matched successfully>"
    assert target[1].running_var.numpy().tolist() == [3.0] * 4 and target[1].num_batches_tracked.item() == 7
    assert "1.num_batches_tracked" not in state  # the caller's dict is left as it was


# ---- ParameterList --------------------------------------------------------------------------------------------------
def test_parameter_list_registers_its_entries_by_position():
    first = nn.Parameter(tl.randn(5))
    plain = tl.tensor(np.ones((2, 3)), dtype=tl.float64)
    params = nn.ParameterList([first, plain])
    assert params[0] is first and isinstance(params[1], nn.Parameter) and params[1].requires_grad
    params[1].array[0, 0] = 9.0
    assert plain.array[0, 0] == 9.0  # the Parameter made from a tensor shares its data
    params.append(tl.zeros(4)).extend([nn.Parameter(tl.ones(1))])
    params += [tl.ones(2)]
    assert len(params) == 5 and list(params.state_dict()) == ["0", "1", "2", "3", "4"]
    assert [p.shape for p in params.parameters()] == [(5,), (2, 3), (4,), (1,), (2,)]
    assert params[-1].shape == (2,) and params[-5] is first
    sliced = params[1:3]
    assert isinstance(sliced, nn.ParameterList) and [p.shape for p in sliced] == [(2, 3), (4,)]
    assert sliced[0] is params[1]
    params.extend(params)  # each entry once more
    assert len(params) == 10 and params[5] is first
    with pytest.raises(IndexError, match="index 10 is out of range for a ParameterList of 10 entries"):
        params[10]
    with pytest.raises(IndexError, match="index -11 is out of range"):
        params[-11] = tl.ones(1)
    with pytest.raises(TypeError, match="ParameterList.extend expects an iterable of parameters, got int"):
        params.extend(5)
    with pytest.raises(RuntimeError, match="only floating-point parameters can require gradients"):
        params.append(tl.tensor([1, 2]))
    with pytest.raises(RuntimeError, match="ParameterList holds parameters and cannot be called"):
        params(tl.ones(1))


def test_parameter_list_in_a_model_and_other_objects():
    model = nn.Module()
    model.params = nn.ParameterList([tl.ones(2), tl.ones(3)])
    model.scale = nn.Parameter(tl.ones(1))
    assert [name for name, _ in model.named_parameters()] == ["scale", "params.0", "params.1"]
    assert list(model.state_dict()) == ["scale", "params.0", "params.1"]
    model.params.append(3.5)  # any object: held, shown by its type, not in the state dict
    assert model.params[2] == 3.5 and list(model.params.state_dict()) == ["0", "1"]
    model.params[0] = tl.zeros(4)  # a Parameter replaces a Parameter in its place
    assert model.params[0].shape == (4,) and list(model.params.state_dict()) == ["0", "1"]
    with pytest.raises(TypeError, match="'1' must be a Parameter or None, got int"):
        model.params[1] = 7
    model.double()
    assert model.params[1].dtype == tl.float64
    loaded = nn.ParameterList([tl.ones(4), tl.ones(3)])
    loaded.load_state_dict({"0": tl.full((4,), 2.0), "1": tl.full((3,), 5.0)})
    np.testing.assert_array_equal(loaded[1].detach().numpy(), np.full(3, 5.0))


def test_parameter_list_repr():
    params = nn.ParameterList([tl.ones(5), tl.ones((2, 3), dtype=tl.float64), tl.ones((), dtype=tl.float16)])
    params.append("text")
    assert repr(params) == ("ParameterList(\n"
                            "    (0): Parameter containing: [tensorlib.float32 of size 5]\n"
                            "    (1): Parameter containing: [tensorlib.float64 of size 2x3]\n"
                            "    (2): Parameter containing: [tensorlib.float16 of size ]\n"
                            "    (3): Object of type: str\n"
                            ")")
    assert repr(nn.ParameterList()) == "ParameterList()"
    model = nn.Module()
    model.params = nn.ParameterList([tl.ones(2)])
    assert repr(model) == ("Module(\n"
                           "  (params): ParameterList(  (0): Parameter containing: [tensorlib.float32 of size 2])\n"
                           ")")


# ---- ParameterDict --------------------------------------------------------------------------------------------------
def test_parameter_dict_orders_and_registers_its_entries():
    b, a = tl.randn(2), nn.Parameter(tl.randn(3, dtype=tl.float64))
    params = nn.ParameterDict({"b": b, "a": a})  # a plain dict: sorted keys, as in PyTorch
    assert list(params) == ["a", "b"] and params["a"] is a and isinstance(params["b"], nn.Parameter)
    params.update({"z": tl.ones(1), "c": tl.ones(1)})
    params.update([("y", tl.ones(1)), ("d", tl.ones(1))])  # pairs and OrderedDicts keep their order
    params.update(OrderedDict([("x", tl.ones(1)), ("e", tl.ones(1))]))
    assert list(params.keys()) == ["a", "b", "c", "z", "y", "d", "x", "e"]
    assert list(params.state_dict()) == list(params.keys())
    assert [p.shape for p in params.parameters()] == [(3,), (2,), (1,), (1,), (1,), (1,), (1,), (1,)]
    assert [key for key, _ in params.items()] == list(params) and params.values()[0] is a
    params["note"] = 3  # any object: held, not in the state dict
    assert "note" in params and len(params) == 9 and "note" not in params.state_dict()
    assert list(reversed(params))[:2] == ["note", "e"]
    assert params.get("missing") is None and params.get("missing", 5) == 5 and params.get("a") is a
    assert params.pop("z").shape == (1,) and "z" not in params and "z" not in params.state_dict()
    assert params.popitem() == ("note", 3)
    assert isinstance(params.setdefault("q", tl.zeros(2)), nn.Parameter) and list(params)[-1] == "q"
    assert params.setdefault("a", tl.zeros(9)) is a
    del params["q"]
    copied = params.copy()
    assert isinstance(copied, nn.ParameterDict) and list(copied) == list(params) and copied["a"] is a
    merged = params | {"n": tl.ones(1)}
    assert list(merged)[-1] == "n" and "n" not in params
    reverse_merged = {"m": tl.ones(1)} | params
    assert list(reverse_merged)[0] == "m" and reverse_merged["a"] is a
    params |= {"m": tl.ones(1)}
    assert list(params)[-1] == "m"
    shared = nn.ParameterDict.fromkeys(["u", "v"], tl.ones(2))
    assert list(shared) == ["u", "v"] and shared["u"] is not shared["v"]
    params.clear()
    assert len(params) == 0 and list(params.state_dict()) == [] and repr(params) == "ParameterDict()"


def test_parameter_dict_errors():
    params = nn.ParameterDict({"a": tl.ones(2)})
    with pytest.raises(KeyError, match="ParameterDict has no key 'zz'"):
        params["zz"]
    with pytest.raises(KeyError, match="ParameterDict has no key 'zz'"):
        del params["zz"]
    with pytest.raises(TypeError, match="ParameterDict keys must be strings, got int 3"):
        params[3] = tl.ones(1)
    with pytest.raises(TypeError, match="expects a mapping or an iterable of \\(key, value\\) pairs, got int"):
        params.update(5)
    with pytest.raises(TypeError, match="element #0 must be a \\(key, value\\) pair, got int"):
        params.update([5])
    with pytest.raises(ValueError, match="element #0 has length 1; 2 \\(key, value\\) is required"):
        params.update([("a",)])
    with pytest.raises(KeyError, match="name can"):
        params["a.b"] = tl.ones(1)
    with pytest.raises(KeyError, match="popitem\\(\\): ParameterDict is empty"):
        nn.ParameterDict().popitem()
    with pytest.raises(RuntimeError, match="ParameterDict holds parameters and cannot be called"):
        params()
    assert list(params) == ["a"]


def test_parameter_dict_repr_and_state():
    params = nn.ParameterDict(OrderedDict(w=tl.ones((2, 3)), b=tl.ones((), dtype=tl.float64)))
    params["n"] = None
    assert repr(params) == ("ParameterDict(\n"
                            "    (w): Parameter containing: [tensorlib.FloatTensor of size 2x3]\n"
                            "    (b): Parameter containing: [tensorlib.DoubleTensor of size ]\n"
                            "    (n): Object of type: NoneType\n"
                            ")")
    model = nn.Module()
    model.heads = nn.ParameterDict({"k": tl.ones(2)})
    assert list(model.state_dict()) == ["heads.k"]
    model.load_state_dict({"heads.k": tl.full((2,), 4.0)})
    np.testing.assert_array_equal(model.heads["k"].detach().numpy(), [4.0, 4.0])


# ---- Sequential and ModuleList arithmetic ---------------------------------------------------------------------------
def test_sequential_addition_and_repetition():
    first = nn.Sequential(OrderedDict(linear=nn.Linear(1, 2), act=nn.ReLU()))
    second = nn.Sequential(nn.Linear(2, 3))
    joined = first + second
    assert list(joined._modules) == ["0", "1", "2"] and joined[0] is first.linear and joined[2] is second[0]
    assert joined(tl.ones(4, 1)).shape == (4, 3)
    tripled = second * 3
    assert list(tripled._modules) == ["0", "1", "2"] and all(m is second[0] for m in tripled)
    assert list((2 * second)._modules) == ["0", "1"]
    grown = nn.Sequential(nn.ReLU(), nn.Tanh())
    alias = grown
    grown *= 2
    assert alias is grown and list(grown._modules) == ["0", "1", "2", "3"] and grown[2] is grown[0]
    grown += nn.Sequential(nn.Sigmoid())
    assert alias is grown and len(grown) == 5 and isinstance(grown[4], nn.Sigmoid)
    grown += grown
    assert len(grown) == 10 and grown[5] is grown[0]
    first += second  # a named Sequential: the appended modules are keyed by their positions
    assert list(first._modules) == ["linear", "act", "2"]
    with pytest.raises(ValueError, match="Sequential \\+ expects a Sequential, got list"):
        second + [nn.ReLU()]
    with pytest.raises(ValueError, match="Sequential \\+= expects a Sequential, got ModuleList"):
        second += nn.ModuleList([nn.ReLU()])
    with pytest.raises(ValueError, match="Sequential \\* needs a positive number of repetitions, got 0"):
        second * 0
    with pytest.raises(TypeError, match="unsupported operand"):
        second * 1.5


def test_module_list_addition():
    relu, tanh, sigmoid = nn.ReLU(), nn.Tanh(), nn.Sigmoid()
    modules = nn.ModuleList([relu, tanh])
    joined = modules + nn.ModuleList([sigmoid])
    assert isinstance(joined, nn.ModuleList) and list(joined._modules) == ["0", "1", "2"]
    assert list(joined) == [relu, tanh, sigmoid] and len(modules) == 2
    assert list(modules + [sigmoid]) == [relu, tanh, sigmoid]
    assert list(modules + nn.Sequential(sigmoid)) == [relu, tanh, sigmoid]
    alias = modules
    modules += [sigmoid]
    assert alias is modules and list(modules) == [relu, tanh, sigmoid]
    modules += modules
    assert len(modules) == 6 and modules[3] is relu
    with pytest.raises(TypeError, match="extend expects an iterable of Modules, got int"):
        modules + 5
    with pytest.raises(TypeError, match="must be a Module or None, got int"):
        modules + [5]
