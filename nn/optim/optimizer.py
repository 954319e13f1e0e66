"""The Optimizer base: parameter groups, per-parameter state, zero_grad, step, and state dicts in PyTorch's layout."""

from __future__ import annotations

import copy
import functools
import warnings
from collections import OrderedDict, defaultdict

import numpy as np

import tensorlib as tl
from nn.module import _add_hook
from tensorlib.autograd import RemovableHandle
from tensorlib.device import move

# the hooks every optimizer's step runs (register_optimizer_step_pre_hook / _post_hook), by handle id
_global_step_pre_hooks: OrderedDict = OrderedDict()
_global_step_post_hooks: OrderedDict = OrderedDict()

# PyTorch's flags that choose among implementations of a step, and why tensorlib refuses them set
_ONE_IMPLEMENTATION = "tensorlib has one implementation of each step (with a one-pass CPU kernel where it applies)"
_IMPLEMENTATION_FLAGS = {
    "foreach": (None, _ONE_IMPLEMENTATION),
    "fused": (None, _ONE_IMPLEMENTATION),
    "capturable": (False, "steps captured as CUDA graphs are nn.GraphedStep's, which replays this optimizer's "
                          "update as it is"),
    "differentiable": (False, "optimizer steps run under no_grad and are not differentiable"),
}


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


def learning_rate(lr):
    """``lr`` as a parameter group keeps it. A one-element tensor (PyTorch accepts one) becomes a number of its
    dtype: a Python float from float64, a NumPy scalar from float32, whose arithmetic with Python numbers
    stays in float32 as a 0-d tensor's does in PyTorch, so that step sizes and scheduled lrs round the same.
    The value is read once: changing the tensor in place later does not change the optimizer's lr (PyTorch's
    would follow it)."""
    if not isinstance(lr, tl.Tensor):
        return lr
    if lr.numel() != 1:
        raise ValueError(f"Tensor lr must be 1-element, got a tensor of shape {lr.shape}")
    value = lr.item()
    return lr.dtype.type(value) if lr.dtype.kind == "f" and lr.dtype != np.float64 else value


def implementation_flags(**flags) -> dict:
    """PyTorch's ``foreach``/``fused``/``capturable``/``differentiable`` arguments, checked to be off (None or
    False) and returned for the defaults, where PyTorch keeps them too."""
    for name, value in flags.items():
        off, reason = _IMPLEMENTATION_FLAGS[name]
        if value:
            raise ValueError(f"{name}={value!r} is not supported: {reason}; pass {name}={off!r}")
    return flags


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

    Each optimizer takes PyTorch's ``foreach``, ``fused``, ``capturable`` and ``differentiable`` arguments where
    PyTorch's has them, only off (None or False, see ``implementation_flags``), and keeps them in its groups as
    PyTorch does; its ``lr`` may be a one-element tensor (see ``learning_rate``). ``step`` runs the step hooks
    (``register_step_pre_hook``, ``register_optimizer_step_pre_hook`` and their post forms).
    """

    # the state entries kept on the host as Python numbers (the rest are arrays shaped like the parameter)
    _host_state = ("step",)
    _stepping = False  # True inside a step that runs its hooks (see _with_step_hooks)
    _step_serial = 0  # counts the steps begun (eager, or through DeviceScalars), to tell one step's work from another's

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "step" in vars(cls):
            cls.step = _with_step_hooks(vars(cls)["step"])

    def __init__(self, params, defaults: dict):
        if isinstance(params, tl.Tensor):
            raise TypeError("params must be an iterable of Tensors or of dicts, got a Tensor")
        self.defaults = defaults
        self.state = defaultdict(dict)
        self.param_groups = []
        self._optimizer_step_pre_hooks = OrderedDict()
        self._optimizer_step_post_hooks = OrderedDict()
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
        ``model.named_parameters()`` yields; the names are kept in the group's "param_names". A parameter listed
        twice in a group draws a warning and, as in PyTorch, stays twice: each step updates it twice. An "lr"
        given as a one-element tensor is read as a number (see ``learning_rate``).
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
        seen = {id(param) for param in params}
        if len(seen) != len(params):
            index = next(i for i, param in enumerate(params) if any(p is param for p in params[:i]))
            warnings.warn(f"optimizer contains a parameter group with duplicate parameters; in future, this will "
                          f"cause an error (params[{index}], of shape {params[index].shape}, repeats an earlier one: "
                          "each step updates a parameter once for each time it is listed)", UserWarning, stacklevel=2)
        for group in self.param_groups:
            if ("param_names" in group) != (names is not None):
                raise ValueError("all optimizer param groups should be with/without names: cannot add a group "
                                 f"{'with' if names is not None else 'without'} names to groups "
                                 f"{'without' if names is not None else 'with'} them")
            if any(id(p) in seen for p in group["params"]):
                raise ValueError("some parameters appear in more than one parameter group")
        if "lr" in param_group:
            param_group["lr"] = learning_rate(param_group["lr"])
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

    def register_step_pre_hook(self, hook) -> RemovableHandle:
        """Call ``hook(optimizer, args, kwargs)`` before each ``step``, as PyTorch does: ``args`` are the
        positional arguments of the call, the optimizer first. The hook returns None, or a pair ``(args, kwargs)``
        that the step is called with instead. ``handle.remove()`` takes it out. A step that ``nn.GraphedStep``
        replays runs no hooks."""
        return _add_hook(self._optimizer_step_pre_hooks, hook, prepend=False)

    def register_step_post_hook(self, hook) -> RemovableHandle:
        """Call ``hook(optimizer, args, kwargs)`` after each ``step`` (its return value is ignored)."""
        return _add_hook(self._optimizer_step_post_hooks, hook, prepend=False)

    def step(self, closure=None):
        """Update, in place, every parameter that has a gradient. ``closure`` re-evaluates the model and
        returns the loss, which ``step`` returns."""
        loss = None
        if closure is not None:
            with tl.enable_grad():
                loss = closure()
        self._step_serial += 1
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

        Parameters are numbered by their position, across the groups in order, as PyTorch does (a parameter
        listed twice in a group takes the number of its last position). Buffers are NumPy copies (a snapshot on
        the host, whatever the device); "step" is a Python int.
        """
        index_of = {}
        groups = []
        start = 0
        for group in self.param_groups:
            packed = {key: value for key, value in group.items() if key != "params"}
            index_of.update({id(p): start + position for position, p in enumerate(group["params"])})
            packed["params"] = [index_of[id(p)] for p in group["params"]]
            start += len(group["params"])
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


def register_optimizer_step_pre_hook(hook) -> RemovableHandle:
    """Call ``hook(optimizer, args, kwargs)`` before the step of every optimizer, ahead of each optimizer's own
    pre-hooks (see ``Optimizer.register_step_pre_hook``)."""
    return _add_hook(_global_step_pre_hooks, hook, prepend=False)


def register_optimizer_step_post_hook(hook) -> RemovableHandle:
    """Call ``hook(optimizer, args, kwargs)`` after the step of every optimizer, after each optimizer's own
    post-hooks."""
    return _add_hook(_global_step_post_hooks, hook, prepend=False)


def _with_step_hooks(step):
    """``step`` running the step hooks around it and recording on the optimizer that it stepped
    (``_opt_called``, which the schedulers check). The base class's and each subclass's own ``step`` are
    wrapped; a step that calls ``super().step()`` runs the hooks once."""

    @functools.wraps(step)
    def hooked_step(self, *args, **kwargs):
        if self._stepping:
            return step(self, *args, **kwargs)
        args = (self, *args)
        for hook in (*_global_step_pre_hooks.values(), *self._optimizer_step_pre_hooks.values()):
            result = hook(self, args, kwargs)
            if result is not None:
                if not (isinstance(result, tuple) and len(result) == 2):
                    raise RuntimeError(f"the step pre-hook {hook!r} of {type(self).__name__} must return None or a "
                                       f"tuple (new_args, new_kwargs), but got {result!r}")
                args, kwargs = result
        self._opt_called = True
        self._stepping = True
        try:
            out = step(*args, **kwargs)
        finally:
            self._stepping = False
        for hook in (*self._optimizer_step_post_hooks.values(), *_global_step_post_hooks.values()):
            hook(self, args, kwargs)
        return out

    return hooked_step


Optimizer.step = _with_step_hooks(Optimizer.step)


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
        self.optimizer._opt_called = True  # a step is coming, for the schedulers' check of the call order
        self.optimizer._step_serial += 1
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
