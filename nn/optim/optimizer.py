"""The Optimizer base: parameter groups, per-parameter state, zero_grad, step, and state dicts in PyTorch's layout."""

from __future__ import annotations

import copy
from collections import defaultdict

import numpy as np

import tensorlib as tl
from tensorlib.device import move


def check_non_negative(**hyperparameters):
    """Raise ValueError naming the first hyper-parameter that is negative (or NaN)."""
    for name, value in hyperparameters.items():
        if not value >= 0:
            raise ValueError(f"Invalid {name} value: {value!r} (expected a number >= 0)")


def directed_gradient(param, grad, group):
    """``grad`` as PyTorch's optimizers begin their step with it: negated for ``maximize`` (ascent), plus
    ``weight_decay * param`` (L2 regularisation)."""
    if group["maximize"]:
        grad = -grad
    if group["weight_decay"] != 0:
        grad = grad + group["weight_decay"] * param.array
    return grad


def check_betas(betas) -> tuple:
    """``betas`` as a tuple, after checking that it is a pair of numbers in [0, 1)."""
    betas = tuple(betas)
    if len(betas) != 2:
        raise ValueError(f"betas must be a pair (beta1, beta2), got {betas!r}")
    for index, beta in enumerate(betas):
        if not 0 <= beta < 1:
            raise ValueError(f"Invalid betas[{index}] value: {beta!r} (expected a number in [0, 1))")
    return betas


class Optimizer:
    """Base class of the optimizers: holds ``param_groups`` and ``state``.

    ``param_groups`` is a list of dicts, each with "params" (a list of tensors) and the hyper-parameters that
    apply to them; a group leaves out what it takes from ``defaults``. ``state`` maps each parameter tensor
    to its buffers, kept as raw arrays on the parameter's device, and "step" as a Python int. Subclasses
    implement ``_update``, which ``step`` calls under no_grad for each parameter whose ``.grad`` is not None,
    and ``_scalars``, the host-side part of a step: bookkeeping such as step counts, and the numbers the
    update multiplies by (learning rate, momentum, bias corrections), which a step captured as a CUDA graph reads from
    device memory (``DeviceScalars``) instead of baking them into its kernels.
    """

    # the state entries kept on the host as Python numbers (the rest are arrays shaped like the parameter)
    _host_state = ("step",)

    def __init__(self, params, defaults: dict):
        if isinstance(params, tl.Tensor):
            raise TypeError("params must be an iterable of Tensors or of dicts, got a Tensor")
        self.defaults = defaults
        self.state = defaultdict(dict)
        self.param_groups = []
        groups = list(params)
        if not groups:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    def __repr__(self):
        lines = [f"{type(self).__name__} ("]
        for index, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {index}")
            lines += [f"    {key}: {group[key]}" for key in sorted(group) if key != "params"]
        return "\n".join(lines + [")"])

    def add_param_group(self, param_group: dict):
        """Append a group (e.g. layers unfrozen while fine-tuning); missing hyper-parameters take the defaults.

        "params" is a tensor or an ordered collection of tensors, or of (name, tensor) pairs such as
        ``model.named_parameters()`` yields; the names are kept in the group's "param_names".
        """
        if not isinstance(param_group, dict):
            raise TypeError(f"param_group must be a dict, got {type(param_group).__name__}")
        if "params" not in param_group:
            raise KeyError(f"param_group must have a 'params' entry, got the keys {sorted(param_group)}")
        params = param_group["params"]
        if isinstance(params, set):
            raise TypeError("optimizer parameters must be an ordered collection such as a list, not a set")
        params = [params] if isinstance(params, tl.Tensor) else list(params)
        names = None
        named = [isinstance(param, tuple) for param in params]
        if any(named):
            if not all(named):
                raise ValueError("all optimizer params should be with/without names: some of the (name, tensor) "
                                 "pairs are plain tensors")
            names, params = [name for name, _ in params], [param for _, param in params]
        for param in params:
            if not isinstance(param, tl.Tensor):
                raise TypeError(f"optimizer can only optimize Tensors, but one of the params is {type(param).__name__}")
            if not param.is_leaf:
                raise ValueError("can't optimize a non-leaf Tensor")
        seen = set()
        for index, param in enumerate(params):
            if id(param) in seen:
                raise ValueError(f"a parameter group holds the same parameter more than once (params[{index}], "
                                 f"of shape {param.shape}, was given before)")
            seen.add(id(param))
        for group in self.param_groups:
            if ("param_names" in group) != (names is not None):
                raise ValueError("all optimizer param groups should be with/without names: cannot add a group "
                                 f"{'with' if names is not None else 'without'} names to groups "
                                 f"{'without' if names is not None else 'with'} them")
            if any(id(p) in seen for p in group["params"]):
                raise ValueError("some parameters appear in more than one parameter group")
        param_group["params"] = params
        if names is not None:
            param_group["param_names"] = names
        for name, default in self.defaults.items():
            param_group.setdefault(name, default)
        self.param_groups.append(param_group)

    def zero_grad(self, set_to_none: bool = True):
        """Drop every parameter's gradient (``set_to_none``) or fill it with zeros in place."""
        for group in self.param_groups:
            for param in group["params"]:
                if param.grad is None:
                    continue
                if set_to_none:
                    param.grad = None
                else:
                    param.grad.requires_grad = False
                    param.grad.zero_()

    def step(self, closure=None):
        """Update, in place, every parameter that has a gradient. ``closure`` re-evaluates the model and
        returns the loss, which ``step`` returns."""
        loss = None
        if closure is not None:
            with tl.enable_grad():
                loss = closure()
        with tl.no_grad():
            for group in self.param_groups:
                for param in group["params"]:
                    if param.grad is not None:
                        self._update(param, param.grad.array, group, self._scalars(param, group))
        return loss

    def _scalars(self, param, group: dict) -> dict:
        """Advance ``param``'s host-side state by one step; the step's scalars by name (Python floats)."""
        return {"lr": group["lr"]}

    def _update(self, param, grad, group: dict, scalars: dict):
        """Update ``param.array`` in place from ``grad`` (a raw array of the parameter's shape and dtype).

        ``scalars`` are what ``_scalars`` returned: Python floats in an eager step, 0-d device arrays of the
        parameter's dtype in a captured one; either way they enter the arithmetic at the parameter's precision.
        """
        raise NotImplementedError

    def state_dict(self) -> dict:
        """{"state": {index: {name: value}}, "param_groups": [{hyper-parameters..., "params": [indices]}]}.

        Parameters are numbered in group order, as PyTorch does. Buffers are NumPy copies (a snapshot on
        the host, whatever the device); "step" is a Python int.
        """
        index_of = {}
        groups = []
        for group in self.param_groups:
            packed = {key: value for key, value in group.items() if key != "params"}
            packed["params"] = [index_of.setdefault(id(p), len(index_of)) for p in group["params"]]
            groups.append(packed)
        state = {
            index_of[id(param)]: {
                key: np.array(move(value, "cpu")) if _is_array(value) else value for key, value in buffers.items()
            }
            for param, buffers in self.state.items()
        }
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict):
        """Restore what ``state_dict`` saved into an optimizer over parameters of the same shapes.

        Buffers are copied to each parameter's device and dtype; "step" may also be a 0-d array (PyTorch
        saves a 0-d tensor). The saved hyper-parameters replace the current ones; one the state dict lacks
        takes its default.
        """
        for key in ("state", "param_groups"):
            if key not in state_dict:
                raise KeyError(f"the optimizer state dict has no {key!r} entry")
        saved_groups = state_dict["param_groups"]
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(
                f"loaded state dict has {len(saved_groups)} parameter groups, "
                f"the optimizer has {len(self.param_groups)}"
            )
        param_of = {}
        for index, (group, saved) in enumerate(zip(self.param_groups, saved_groups)):
            if len(saved["params"]) != len(group["params"]):
                raise ValueError(
                    f"param_groups[{index}] holds {len(saved['params'])} parameters in the loaded state dict, "
                    f"{len(group['params'])} in the optimizer"
                )
            param_of.update(zip(saved["params"], group["params"]))
        state = defaultdict(dict)
        for index, buffers in state_dict["state"].items():
            if index not in param_of:
                raise ValueError(f"state[{index!r}] belongs to no parameter of the loaded param_groups")
            param = param_of[index]
            state[param] = {key: _restore(value, param, key, index, key in self._host_state)
                            for key, value in buffers.items()}
        groups = []
        for group, saved in zip(self.param_groups, saved_groups):
            restored = copy.deepcopy({key: value for key, value in saved.items() if key != "params"})
            restored["params"] = group["params"]
            if "param_names" in group:
                restored.setdefault("param_names", group["param_names"])
            for name, default in self.defaults.items():  # a hyper-parameter newer than the state dict
                restored.setdefault(name, default)
            groups.append(restored)
        self.state, self.param_groups = state, groups


class DeviceScalars:
    """The scalars of an optimizer step in device memory, for a step captured as a CUDA graph.

    Covers the parameters that have a gradient when it is made (those a training step updates). ``refresh``
    runs the host side of one step (``_scalars``: step counts advance exactly as in an eager step) and
    writes its numbers into one device table per dtype; ``step`` is the device side, to be captured: every
    update reads its numbers from the table, so the replay of a captured step follows the schedules of the
    learning rate, momentum and Adam's betas, and Adam's bias corrections. The other hyper-parameters (and
    whether momentum is on) are fixed when the step is captured: ``check_unchanged`` raises if one changed.
    """

    def __init__(self, optimizer):
        self.optimizer = optimizer
        self.entries = [(group, param) for group in optimizer.param_groups for param in group["params"]
                        if param.grad is not None]
        if not self.entries:
            raise ValueError("no parameter has a gradient: run a step before capturing one")
        self.fixed = [_structure(group) for group in optimizer.param_groups]
        self.tables, self.rows, self.names = {}, [], None

    def refresh(self):
        """Host side of the coming step; its numbers are copied to the device tables."""
        host = {}
        rows = []
        for group, param in self.entries:
            scalars = self.optimizer._scalars(param, group)
            if self.names is None:
                self.names = tuple(scalars)
            host.setdefault(param.dtype, []).append([scalars[name] for name in self.names])
            rows.append((param.dtype, len(host[param.dtype]) - 1))
        device = self.entries[0][1].device
        for dtype, values in host.items():
            table = move(np.asarray(values, dtype=dtype), device)
            if dtype in self.tables:
                self.tables[dtype][...] = table
            else:
                self.tables[dtype] = table
        self.rows = rows

    def step(self):
        """The device side of the step: each parameter's update, reading its scalars from the tables."""
        with tl.no_grad():
            for (group, param), (dtype, row) in zip(self.entries, self.rows):
                if param.grad is None:
                    raise RuntimeError(f"a parameter of shape {param.shape} that had a gradient when the step was "
                                       "captured has none now")
                table = self.tables[dtype]
                # [row, column, ...] is a 0-d view, not a copied scalar: the captured kernels read the table
                scalars = {name: table[row, column, ...] for column, name in enumerate(self.names)}
                self.optimizer._update(param, param.grad.array, group, scalars)

    def check_unchanged(self):
        for index, (group, fixed) in enumerate(zip(self.optimizer.param_groups, self.fixed)):
            now = _structure(group)
            for key, value in fixed.items():
                if now.get(key) != value:
                    raise ValueError(
                        f"param_groups[{index}][{key!r}] changed from {value!r} to {now.get(key)!r} after the "
                        f"step was captured; only {', '.join(map(repr, _PER_STEP))} may change between replays "
                        "(capture a new step)")


# what a scheduler may change between steps (read from the device tables); whether momentum is on at all
# changes the step's structure, so it stays fixed
_PER_STEP = ("lr", "momentum", "betas")


def _structure(group: dict) -> dict:
    fixed = {key: copy.deepcopy(value) for key, value in group.items() if key not in ("params",) + _PER_STEP}
    if "momentum" in group:
        fixed["momentum on"] = group["momentum"] != 0
    return fixed


def _is_array(value) -> bool:
    return isinstance(value, np.ndarray) or type(value).__module__.startswith("cupy")


def _restore(value, param, key, index, host: bool):
    """A loaded state value: a ``host`` number (the "step" counter) as a Python number, buffers as arrays like
    ``param``."""
    if isinstance(value, tl.Tensor):
        value = value.array
    if not _is_array(value):
        return value
    if host:
        return value.item()
    if tuple(value.shape) != param.shape:
        raise ValueError(
            f"state[{index!r}][{key!r}] has shape {tuple(value.shape)}, but its parameter has shape {param.shape}"
        )
    dtype = param.dtype if param.dtype.kind == "f" else value.dtype
    return move(value, param.device).astype(dtype, copy=True)
