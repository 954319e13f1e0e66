"""``Module`` and ``Parameter``: PyTorch's way of holding weights, buffers and submodules."""

from __future__ import annotations

import operator
import warnings
from collections import OrderedDict, namedtuple
from collections.abc import Iterable, Mapping

import numpy as np

import tensorlib as tl
from tensorlib.autograd import Function, RemovableHandle
from tensorlib.device import array_device, move, normalize_device


class Parameter(tl.Tensor):
    """A tensor that is a module's weight: assigning one to a Module attribute registers it."""

    def __init__(self, data=None, requires_grad=True):
        if data is None:
            data = tl.empty(0)
        if isinstance(data, tl.Tensor):
            array = data.array
        else:  # an array of either device, or anything NumPy takes (np.asarray refuses CuPy arrays)
            array = data if array_device(data) == "cuda" else np.asarray(data)
        if requires_grad and array.dtype.kind != "f":
            raise RuntimeError(f"only floating-point parameters can require gradients, got dtype {array.dtype}")
        self.array, self.grad, self.requires_grad, self._ctx = array, None, requires_grad, None

    def __repr__(self):
        return "Parameter containing:\n" + super().__repr__()


class IncompatibleKeys(namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])):
    """What ``load_state_dict`` returns: the module's keys the state dict lacked and the state dict's keys the
    module does not have (both empty after a strict load)."""

    __slots__ = ()

    def __repr__(self):
        if not self.missing_keys and not self.unexpected_keys:
            return "<All keys matched successfully>"
        return super().__repr__()


def _add_hook(hooks: OrderedDict, hook, prepend: bool, flags=()) -> RemovableHandle:
    """Put ``hook`` in ``hooks`` (first with ``prepend``), its id in each set of ``flags``, and return the handle."""
    if not callable(hook):
        raise TypeError(f"hook must be callable, got {type(hook).__name__}")
    handle = RemovableHandle(hooks, tuple(flags))
    hooks[handle.id] = hook
    if prepend:
        hooks.move_to_end(handle.id, last=False)
    for table in flags:
        table.add(handle.id)
    return handle


class Module:
    """Base class of every layer and model: subclasses set attributes in ``__init__`` and define ``forward``."""

    def __init__(self):
        object.__setattr__(self, "training", True)
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_non_persistent", set())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "_forward_pre_hooks", OrderedDict())
        object.__setattr__(self, "_forward_pre_hooks_with_kwargs", set())
        object.__setattr__(self, "_forward_hooks", OrderedDict())
        object.__setattr__(self, "_forward_hooks_with_kwargs", set())
        object.__setattr__(self, "_forward_hooks_always_called", set())
        object.__setattr__(self, "_backward_pre_hooks", OrderedDict())
        object.__setattr__(self, "_backward_hooks", OrderedDict())

    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} does not define forward()")

    def __call__(self, *args, **kwargs):
        if not (self._forward_pre_hooks or self._forward_hooks or self._backward_hooks or self._backward_pre_hooks):
            return self.forward(*args, **kwargs)
        result, called = None, set()
        try:
            args, kwargs = self._run_forward_pre_hooks(args, kwargs)
            backward_hooks = None
            if (self._backward_hooks or self._backward_pre_hooks) and tl.is_grad_enabled():
                backward_hooks = _BackwardHooks(self, args)
                args = backward_hooks.wrap_inputs(args)
            result = self.forward(*args, **kwargs)
            for key, hook in list(self._forward_hooks.items()):
                called.add(key)
                replaced = self._call_forward_hook(key, hook, args, kwargs, result)
                if replaced is not None:
                    result = replaced
            if backward_hooks is not None:
                result = backward_hooks.wrap_outputs(result)
            return result
        except Exception:
            for key, hook in list(self._forward_hooks.items()):
                if key in self._forward_hooks_always_called and key not in called:
                    try:
                        replaced = self._call_forward_hook(key, hook, args, kwargs, result)
                        result = result if replaced is None else replaced
                    except Exception as error:  # the error of the forward pass is the one to report
                        warnings.warn(f"a forward hook of {type(self).__name__} registered with always_call=True "
                                      f"raised {type(error).__name__}: {error}; it is ignored, as another error was "
                                      "raised during the forward pass")
            raise

    def _run_forward_pre_hooks(self, args, kwargs):
        for key, hook in list(self._forward_pre_hooks.items()):
            if key in self._forward_pre_hooks_with_kwargs:
                result = hook(self, args, kwargs)
                if result is not None:
                    if not (isinstance(result, tuple) and len(result) == 2):
                        raise RuntimeError(f"a forward pre-hook registered with with_kwargs=True must return None or a "
                                           f"tuple (new_args, new_kwargs), got {type(result).__name__} {result!r}")
                    args, kwargs = result
            else:
                result = hook(self, args)
                if result is not None:
                    args = result if isinstance(result, tuple) else (result,)
        return args, kwargs

    def _call_forward_hook(self, key, hook, args, kwargs, result):
        if key in self._forward_hooks_with_kwargs:
            return hook(self, args, kwargs, result)
        return hook(self, args, result)

    def register_forward_pre_hook(self, hook, *, prepend: bool = False, with_kwargs: bool = False) -> RemovableHandle:
        """``hook(module, args)`` runs before every forward with the positional arguments as a tuple; a non-None
        return replaces them (a value that is not a tuple becomes the single argument). With ``with_kwargs``,
        ``hook(module, args, kwargs)`` also sees the keyword arguments and returns None or ``(args, kwargs)``.
        Hooks run in the order registered; ``prepend`` puts this one first."""
        flags = (self._forward_pre_hooks_with_kwargs,) if with_kwargs else ()
        return _add_hook(self._forward_pre_hooks, hook, prepend, flags)

    def register_forward_hook(self, hook, *, prepend: bool = False, with_kwargs: bool = False,
                              always_call: bool = False) -> RemovableHandle:
        """``hook(module, args, output)`` runs after every forward (``hook(module, args, kwargs, output)`` with
        ``with_kwargs``); a non-None return replaces the output. With ``always_call`` it also runs when the
        forward pass raises (with output None), before the error propagates."""
        flags = [self._forward_hooks_with_kwargs] if with_kwargs else []
        if always_call:
            flags.append(self._forward_hooks_always_called)
        return _add_hook(self._forward_hooks, hook, prepend, flags)

    def register_full_backward_pre_hook(self, hook, prepend: bool = False) -> RemovableHandle:
        """``hook(module, grad_output)`` runs when the gradients with respect to the module's outputs are known
        (a tuple, one entry per output; None for an output no gradient reached); a non-None return (a tuple of
        the same length) replaces them."""
        return _add_hook(self._backward_pre_hooks, hook, prepend)

    def register_full_backward_hook(self, hook, prepend: bool = False) -> RemovableHandle:
        """``hook(module, grad_input, grad_output)`` runs when the gradients with respect to the module's
        positional inputs are known: one entry per positional argument, None for one that is not a tensor (zeros,
        as in PyTorch, for a tensor that does not require grad). A non-None return (a tuple of the same length)
        replaces ``grad_input`` for the rest of the backward pass. Keyword arguments are not part of
        ``grad_input``. When no input requires grad, the hook runs as soon as the output gradients are known,
        with ``grad_input`` all None, and must return None."""
        return _add_hook(self._backward_hooks, hook, prepend)

    # ---- registration -----------------------------------------------------------------------------
    def __setattr__(self, name, value):
        """Register Parameters and Modules, as PyTorch does.

        A name already in the same table is replaced where it stands, so ``seq.act = nn.ReLU()`` keeps the
        layer's place in a Sequential and ``linear.weight = Parameter(...)`` keeps the state dict's key order.
        A name that moves to another table leaves the old one.
        """
        if "_parameters" not in self.__dict__:
            raise AttributeError(f"call super().__init__() in {type(self).__name__}.__init__ before assigning {name!r}")
        if isinstance(value, Parameter):
            self._forget(name, self._buffers, self._modules)
            self.register_parameter(name, value)
        elif name in self._parameters:
            if value is not None:
                raise TypeError(f"{name!r} must be a Parameter or None, got {type(value).__name__}")
            self._parameters[name] = None
        elif isinstance(value, Module):
            self._forget(name, self._parameters, self._buffers)
            self._modules[name] = value
        elif name in self._modules:
            if value is not None:
                raise TypeError(f"{name!r} must be a Module or None, got {type(value).__name__}")
            self._modules[name] = None
        elif name in self._buffers:
            if value is not None and not isinstance(value, tl.Tensor):
                raise TypeError(f"buffer {name!r} must be a Tensor or None, got {type(value).__name__}")
            self._buffers[name] = value
        else:
            object.__setattr__(self, name, value)

    def _forget(self, name, *tables):
        """Remove ``name`` from ``tables`` and from the plain attributes, before it is registered elsewhere."""
        for table in tables:
            table.pop(name, None)
        self.__dict__.pop(name, None)
        self._non_persistent.discard(name)

    def __getattr__(self, name):
        for table in ("_parameters", "_buffers", "_modules"):
            entries = self.__dict__.get(table)
            if entries is not None and name in entries:
                return entries[name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __delattr__(self, name):
        for table in (self._parameters, self._buffers, self._modules):
            if name in table:
                del table[name]
                self._non_persistent.discard(name)
                return
        object.__delattr__(self, name)

    def _check_name(self, name, kind: str, table: dict):
        """PyTorch's rules for a new parameter, buffer or module name: a non-empty string without ".", which
        is not already an attribute of another kind."""
        if not isinstance(name, str):
            raise TypeError(f"{kind} name should be a string, got {type(name).__name__} {name!r}")
        if "." in name:
            raise KeyError(f"{kind} name can't contain \".\", got {name!r}")
        if name == "":
            raise KeyError(f"{kind} name can't be empty string \"\"")
        if hasattr(self, name) and name not in table:
            raise KeyError(f"attribute {name!r} already exists in {type(self).__name__}: cannot register a {kind} "
                           f"under that name")

    def register_parameter(self, name: str, param):
        """Add ``param`` (a Parameter, or None for an absent one such as a bias turned off) as ``name``."""
        if "_parameters" not in self.__dict__:
            raise AttributeError(f"call super().__init__() in {type(self).__name__}.__init__ before registering "
                                 f"parameter {name!r}")
        self._check_name(name, "parameter", self._parameters)
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"parameter {name!r} must be a Parameter or None, got {type(param).__name__}")
        self._parameters[name] = param

    def register_buffer(self, name: str, tensor, persistent: bool = True):
        """A tensor saved in the state dict (if persistent) and moved by ``to``, but not trained."""
        if "_buffers" not in self.__dict__:
            raise AttributeError(f"call super().__init__() in {type(self).__name__}.__init__ before registering "
                                 f"buffer {name!r}")
        self._check_name(name, "buffer", self._buffers)
        if tensor is not None and not isinstance(tensor, tl.Tensor):
            raise TypeError(f"buffer {name!r} must be a Tensor or None, got {type(tensor).__name__}")
        self._buffers[name] = tensor
        if persistent:
            self._non_persistent.discard(name)
        else:
            self._non_persistent.add(name)

    def add_module(self, name: str, module):
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"module {name!r} must be a Module or None, got {type(module).__name__}")
        self._check_name(name, "module", self._modules)
        self._modules[name] = module

    def register_module(self, name: str, module):
        """Alias of ``add_module``."""
        self.add_module(name, module)

    def get_submodule(self, target: str) -> "Module":
        """The submodule at the dotted path ``target`` ("" is this module), e.g. ``"features.0"``."""
        if target == "":
            return self
        module = self
        for item in target.split("."):
            if not hasattr(module, item):
                raise AttributeError(f"{type(module).__name__} has no attribute {item!r} (looking up submodule "
                                     f"{target!r})")
            module = getattr(module, item)
            if not isinstance(module, Module):
                raise AttributeError(f"{item!r} is not a Module but a {type(module).__name__} (looking up "
                                     f"submodule {target!r})")
        return module

    def _get_member(self, target: str, kind: str, is_member):
        module_path, _, name = target.rpartition(".")
        module = self.get_submodule(module_path)
        if not hasattr(module, name):
            raise AttributeError(f"{type(module).__name__} has no attribute {name!r} (looking up {kind} {target!r})")
        if not is_member(module, name):
            raise AttributeError(f"{name!r} is not a {kind} of {type(module).__name__} (looking up {kind} "
                                 f"{target!r})")
        return getattr(module, name)

    def get_parameter(self, target: str) -> Parameter:
        """The Parameter at the dotted path ``target``, e.g. ``"features.0.weight"``."""
        return self._get_member(target, "parameter", lambda module, name: module._parameters.get(name) is not None)

    def get_buffer(self, target: str):
        """The buffer at the dotted path ``target``, e.g. ``"bn1.running_mean"`` (None for a buffer registered
        as None)."""
        return self._get_member(target, "buffer", lambda module, name: name in module._buffers)

    # ---- traversal --------------------------------------------------------------------------------
    def named_modules(self, memo=None, prefix: str = "", remove_duplicate: bool = True):
        """(dotted name, module) of this module and every submodule, depth first; a module reached by two
        paths is given once unless ``remove_duplicate`` is False."""
        memo = set() if memo is None else memo
        if id(self) in memo:
            return
        if remove_duplicate:
            memo.add(id(self))
        yield prefix, self
        for name, module in self._modules.items():
            if module is not None:
                yield from module.named_modules(memo, f"{prefix}.{name}" if prefix else name, remove_duplicate)

    def modules(self):
        for _, module in self.named_modules():
            yield module

    def named_children(self):
        """(name, module) of the direct submodules; a module registered under two names is given once, under
        the first."""
        seen = set()
        for name, module in self._modules.items():
            if module is not None and id(module) not in seen:
                seen.add(id(module))
                yield name, module

    def children(self):
        for _, module in self.named_children():
            yield module

    def _named_members(self, table, prefix, recurse, remove_duplicate):
        seen = set()
        modules = self.named_modules(prefix=prefix, remove_duplicate=remove_duplicate) if recurse else [(prefix, self)]
        for module_prefix, module in modules:
            for name, value in getattr(module, table).items():
                if value is None or (remove_duplicate and id(value) in seen):
                    continue
                seen.add(id(value))
                yield (f"{module_prefix}.{name}" if module_prefix else name), value

    def named_parameters(self, prefix: str = "", recurse: bool = True, remove_duplicate: bool = True):
        """(dotted name, Parameter) pairs; a shared Parameter is given once, under its first name, unless
        ``remove_duplicate`` is False."""
        yield from self._named_members("_parameters", prefix, recurse, remove_duplicate)

    def _members(self, table, recurse):
        """An iterator over the values of ``table`` ("_parameters" or "_buffers") of this module (and, with
        ``recurse``, of every submodule), depth first, each once: ``named_parameters``' order without building
        the names (the optimizers and a graphed step's check read them every step)."""
        values, seen, visited, stack = [], set(), set(), [self]
        while stack:
            module = stack.pop()
            if id(module) in visited:
                continue
            visited.add(id(module))
            for value in getattr(module, table).values():
                if value is not None and id(value) not in seen:
                    seen.add(id(value))
                    values.append(value)
            if recurse:
                stack.extend(child for child in reversed(module._modules.values()) if child is not None)
        return iter(values)

    def parameters(self, recurse: bool = True):
        return self._members("_parameters", recurse)

    def named_buffers(self, prefix: str = "", recurse: bool = True, remove_duplicate: bool = True):
        yield from self._named_members("_buffers", prefix, recurse, remove_duplicate)

    def buffers(self, recurse: bool = True):
        return self._members("_buffers", recurse)

    def apply(self, fn):
        """Call ``fn`` on every child (recursively, children first) and then on this module, as PyTorch does:
        a child registered twice in one container is visited once."""
        for module in self.children():
            module.apply(fn)
        fn(self)
        return self

    # ---- modes, devices, gradients ----------------------------------------------------------------
    def train(self, mode: bool = True):
        """Set training mode (``mode=False``: evaluation) on this module and, through their own ``train``, on its
        children; returns the module."""
        if not isinstance(mode, bool):  # train("no") would otherwise mean training, since bool("no") is True
            raise ValueError(f"training mode is expected to be boolean (True or False), got {mode!r}")
        object.__setattr__(self, "training", mode)
        for module in self.children():
            module.train(mode)
        return self

    def eval(self):
        return self.train(False)

    def requires_grad_(self, requires_grad: bool = True):
        for param in self.parameters():
            param.requires_grad_(requires_grad)
        return self

    def zero_grad(self, set_to_none: bool = True):
        for param in self.parameters():
            if param.grad is None:
                continue
            if set_to_none:
                param.grad = None
            else:
                param.grad.array[...] = 0

    def to(self, *args, dtype=None, device=None, non_blocking=False):
        """Move (and/or cast floating-point) parameters and buffers in place; Parameter objects are kept. As
        PyTorch's: ``to(device)``, ``to(dtype)``, ``to(device, dtype)``, ``to(tensor)`` (its device and dtype);
        ``non_blocking`` is accepted (copies are ordered on the stream either way)."""
        for arg in args:
            if isinstance(arg, tl.Tensor):
                device, dtype = arg.device, arg.dtype
            elif isinstance(arg, str):
                device = arg
            else:
                dtype = arg
        device = normalize_device(device) if device is not None else None
        dtype = np.dtype(dtype) if dtype is not None else None
        if dtype is not None and dtype.kind != "f":
            raise TypeError(f"Module.to only casts to floating-point dtypes, got {dtype}")
        for module in self.modules():
            for table in (module._parameters, module._buffers):
                for tensor in table.values():
                    if tensor is None:
                        continue
                    data = move(tensor.array, device) if device is not None else tensor.array
                    if dtype is not None and data.dtype.kind == "f":
                        data = data.astype(dtype, copy=False)
                    tensor.array = data
                    if tensor.grad is not None:
                        grad = move(tensor.grad.array, device) if device is not None else tensor.grad.array
                        tensor.grad.array = grad.astype(data.dtype, copy=False)
        return self

    def cpu(self):
        return self.to("cpu")

    def cuda(self):
        return self.to("cuda")

    def float(self):
        return self.to(tl.float32)

    def double(self):
        return self.to(tl.float64)

    def half(self):
        return self.to(tl.float16)

    # ---- state --------------------------------------------------------------------------------------
    def _state_entries(self):
        """(dotted name, module, table, name in the table) of every parameter and persistent buffer, along every
        path to it: a module or Parameter held twice (``Sequential(linear, relu, linear)``) is listed under each
        of its names, as in PyTorch's state dict."""
        for module_prefix, module in self.named_modules(remove_duplicate=False):
            for table, skip in ((module._parameters, ()), (module._buffers, module._non_persistent)):
                for name, tensor in table.items():
                    if tensor is not None and name not in skip:
                        yield (f"{module_prefix}.{name}" if module_prefix else name), module, table, name

    def state_dict(self, destination=None, prefix: str = "", keep_vars: bool = False):
        """Parameters and persistent buffers by PyTorch's dotted names (``prefix`` put in front of each), as
        tensors that share memory with them: detached (no grad), same device and dtype. Copy it
        (``copy.deepcopy``) to keep the values of the moment. With ``keep_vars=True`` the Parameters and buffers
        themselves; with ``destination`` (a mapping) the entries are added to it and it is returned."""
        if destination is None:
            destination = OrderedDict()
        for key, _, table, name in self._state_entries():
            destination[prefix + key] = table[name] if keep_vars else table[name].detach()
        return destination

    def _upgrade_state_dict(self, state_dict: OrderedDict, prefix: str):
        """Bring the entries of this module (the keys starting with ``prefix``) of a checkpoint written by an
        older version of it to the current form, in place, before ``load_state_dict`` matches the keys: fill in
        an entry it lacks, rename one (PyTorch's norm layers do this in ``_load_from_state_dict`` for a missing
        ``num_batches_tracked``). ``state_dict`` is ``load_state_dict``'s own copy. Nothing to do by default."""

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False) -> IncompatibleKeys:
        """Copy the values of ``state_dict`` (Tensors or NumPy/CuPy arrays, by dotted name) into the parameters and
        buffers in place, cast to their dtype and moved to their device; with ``assign``, make them the module's
        tensors instead (Parameters keep their requires_grad). Each module first brings its entries of an older
        checkpoint up to date (``_upgrade_state_dict``, on a copy: ``state_dict`` is not changed). Nothing is
        changed unless every entry fits: a shape mismatch is an error, and so are missing and unexpected keys when
        ``strict``. Returns the missing and unexpected keys."""
        if not isinstance(state_dict, Mapping):
            raise TypeError(f"state_dict must be a mapping of names to tensors, got {type(state_dict).__name__}")
        state_dict = OrderedDict(state_dict)  # a copy, which the modules' _upgrade_state_dict may complete
        for module_prefix, module in self.named_modules(remove_duplicate=False):
            module._upgrade_state_dict(state_dict, f"{module_prefix}." if module_prefix else "")
        entries = list(self._state_entries())
        own = {key for key, *_ in entries}
        missing = [key for key, *_ in entries if key not in state_dict]
        unexpected = [key for key in state_dict if key not in own]
        errors = []
        if strict and missing:
            errors.append("Missing key(s) in state_dict: " + ", ".join(f'"{key}"' for key in missing) + ".")
        if strict and unexpected:
            errors.append("Unexpected key(s) in state_dict: " + ", ".join(f'"{key}"' for key in unexpected) + ".")
        for key, _, table, name in entries:
            if key not in state_dict:
                continue
            value = state_dict[key]
            if not (isinstance(value, tl.Tensor) or _is_array(value)):
                errors.append(f'"{key}": expected a Tensor or an array, got {type(value).__name__}')
            elif tuple(value.shape) != table[name].shape:
                errors.append(f"size mismatch for {key}: the state dict holds shape {tuple(value.shape)}, the "
                              f"module's shape is {table[name].shape}")
        if errors:
            raise RuntimeError(f"Error(s) in loading state_dict for {type(self).__name__}:\n\t" + "\n\t".join(errors))
        with tl.no_grad():
            for key, _, table, name in entries:
                if key not in state_dict:
                    continue
                if assign:
                    table[name] = _assigned(state_dict[key], table[name])
                else:
                    table[name].copy_(_as_tensor(state_dict[key]))
        return IncompatibleKeys(missing, unexpected)

    # ---- printing -----------------------------------------------------------------------------------
    def __dir__(self):
        """The attributes, with the parameters, buffers and submodules (less names starting with a digit, which
        are not identifiers: a Sequential's "0")."""
        names = set(super().__dir__()) | set(self._parameters) | set(self._buffers) | set(self._modules)
        return sorted(name for name in names if not name[:1].isdigit())

    def extra_repr(self) -> str:
        return ""

    def __repr__(self):
        """PyTorch's form: a one-line extra_repr inside the parentheses; otherwise each line of extra_repr,
        then each child, on its own indented line."""
        extra_lines = self.extra_repr().split("\n") if self.extra_repr() else []
        child_lines = [f"({name}): {_indent(repr(module))}" for name, module in self._modules.items()]
        return _enclose(type(self).__name__, extra_lines, child_lines)


def _indent(text: str) -> str:
    """Indent every line but the first by two spaces (blank lines stay empty), to nest a child's repr."""
    first, *rest = text.split("\n")
    return "\n".join([first] + [f"  {line}" if line.strip() else "" for line in rest])


def _enclose(name: str, extra_lines: list, child_lines: list) -> str:
    if len(extra_lines) == 1 and not child_lines:
        return f"{name}({extra_lines[0]})"
    lines = extra_lines + child_lines
    if not lines:
        return f"{name}()"
    return f"{name}(\n  " + "\n  ".join(lines) + "\n)"


def _is_array(value) -> bool:
    """A NumPy array or scalar, or an array of the "cuda" device."""
    return isinstance(value, (np.ndarray, np.generic)) or array_device(value) == "cuda"


def _as_tensor(value) -> tl.Tensor:
    """A state dict entry (a Tensor or an array) as a Tensor, without copying."""
    if isinstance(value, tl.Tensor):
        return value
    return tl.Tensor._make(value if array_device(value) == "cuda" else np.asarray(value))


def _assigned(value, current):
    """What ``load_state_dict(assign=True)`` puts in place of ``current``: ``value`` itself as a Parameter (keeping
    ``current``'s requires_grad) where ``current`` is one, as a tensor where it is a buffer."""
    tensor = _as_tensor(value)
    if isinstance(current, Parameter):
        return Parameter(tensor, requires_grad=current.requires_grad)
    return tensor.detach() if tensor.requires_grad else tensor


class BackwardHookFunction(Function):
    """Identity on ``tensors``, through which the module's backward hooks see gradients: it returns stand-ins
    sharing their data and version count (an in-place change through one is seen by the graph that made its
    tensor), and its backward hands the gradients of all of them at once to ``complete`` (a tuple, None for a
    stand-in no gradient reached) and passes on the tuple that returns. The stand-ins' ``grad_fn`` is
    ``BackwardHookFunctionBackward``, as in PyTorch."""

    @staticmethod
    def forward(ctx, complete, *tensors):
        ctx.complete = complete
        ctx.set_materialize_grads(False)
        return tuple(tensor.detach() for tensor in tensors)

    @staticmethod
    def backward(ctx, *gradients):
        return (None, *ctx.complete(gradients))


class _BackwardHooks:
    """One forward call's backward hooks (those registered when it ran): its positional tensor inputs and its
    outputs are replaced by gated stand-ins, whose gradients go to the hooks."""

    def __init__(self, module: Module, args: tuple):
        self.module = module
        self.full_hooks = list(module._backward_hooks.values())
        self.pre_hooks = list(module._backward_pre_hooks.values())
        self.args, self.input_positions = args, []
        self.outputs, self.output_positions = (), []
        self.grad_outputs = None

    def wrap_inputs(self, args: tuple) -> tuple:
        if not self.full_hooks:
            return args
        self.input_positions = [i for i, arg in enumerate(args) if isinstance(arg, tl.Tensor) and arg.requires_grad]
        if not self.input_positions:
            return args
        gated = BackwardHookFunction.apply(self._input_gradients, *(args[i] for i in self.input_positions))
        args = list(args)
        for position, stand_in in zip(self.input_positions, gated):
            args[position] = stand_in
        return tuple(args)

    def wrap_outputs(self, result):
        outputs = result if isinstance(result, tuple) else (result,)
        positions = [i for i, out in enumerate(outputs) if isinstance(out, tl.Tensor) and out.requires_grad]
        if not isinstance(result, (tl.Tensor, tuple)):
            warnings.warn(f"the backward hooks of {type(self.module).__name__} are not called: its output is a "
                          f"{type(result).__name__}, not a Tensor or a tuple of Tensors")
        if not positions:
            return result
        self.outputs, self.output_positions = outputs, positions
        gated = BackwardHookFunction.apply(self._output_gradients, *(outputs[i] for i in positions))
        outputs = list(outputs)
        for position, stand_in in zip(positions, gated):
            outputs[position] = stand_in
        if not isinstance(result, tuple):
            return outputs[0]
        return type(result)(*outputs) if hasattr(result, "_fields") else tuple(outputs)  # named tuples keep their type

    def _output_gradients(self, gradients: tuple) -> tuple:
        """Backward reached the outputs: the pre-hooks may replace their gradients; the full hooks run now when no
        input requires grad."""
        grad_output = _as_tensors(gradients, self.output_positions, len(self.outputs))
        for hook in self.pre_hooks:
            replaced = hook(self.module, grad_output)
            if replaced is not None:
                grad_output = _checked_gradients(replaced, grad_output, self.outputs, self.output_positions,
                                                 f"a backward pre-hook of {type(self.module).__name__}", "grad_output")
        self.grad_outputs = grad_output
        if self.full_hooks and not self.input_positions:
            warnings.warn(f"the full backward hooks of {type(self.module).__name__} run when the gradients with "
                          "respect to its outputs are known, as no input requires grad: grad_input is all None")
            grad_input = (None,) * len(self.args)
            for hook in self.full_hooks:
                replaced = hook(self.module, grad_input, grad_output)
                if replaced is not None and not (isinstance(replaced, (tuple, list))
                                                 and all(g is None for g in replaced)):
                    raise RuntimeError(f"a full backward hook of {type(self.module).__name__} returned gradients "
                                       "for its inputs, but none of them requires grad: it must return None")
        return tuple(grad_output[i] for i in self.output_positions)

    def _input_gradients(self, gradients: tuple) -> tuple:
        """Backward reached the inputs: the full hooks see the input and output gradients and may replace the
        input gradients. As in PyTorch, every tensor input has one there (zeros where none arrived, or where it
        does not require grad); other arguments have None."""
        if self.grad_outputs is None:  # the gradient bypassed the outputs (or they are not tensors): no hook runs
            return gradients
        received = _as_tensors(gradients, self.input_positions, len(self.args))
        grad_input = tuple(tl.zeros_like(arg) if isinstance(arg, tl.Tensor) and gradient is None else gradient
                           for arg, gradient in zip(self.args, received))
        for hook in self.full_hooks:
            replaced = hook(self.module, grad_input, self.grad_outputs)
            if replaced is not None:
                grad_input = _checked_gradients(replaced, grad_input, self.args, self.input_positions,
                                                f"a full backward hook of {type(self.module).__name__}", "grad_input")
        self.grad_outputs = None
        return tuple(grad_input[i] for i in self.input_positions)


def _as_tensors(gradients: tuple, positions: list, count: int) -> tuple:
    """A hook's view of ``gradients`` (those of the tensors at ``positions``): a tuple of ``count`` entries with
    them at those positions, None elsewhere."""
    full = [None] * count
    for position, gradient in zip(positions, gradients):
        full[position] = gradient
    return tuple(full)


def _checked_gradients(replaced, current: tuple, tensors: tuple, positions: list, who: str, what: str) -> tuple:
    """``replaced`` (a hook's return value) as a tuple like ``current``: one entry per entry of ``tensors``; for
    the tensors at ``positions`` (those that take a gradient) None or a Tensor of its shape on its device. Entries
    at other positions are not used."""
    if not isinstance(replaced, (tuple, list)) or len(replaced) != len(current):
        got = f"{len(replaced)} entries" if isinstance(replaced, (tuple, list)) else f"a {type(replaced).__name__}"
        raise RuntimeError(f"{who} must return None or a tuple of {len(current)} gradients for {what} (one per "
                           f"entry), got {got}")
    for i in positions:
        gradient = replaced[i]
        if gradient is None:
            continue
        if not isinstance(gradient, tl.Tensor):
            raise TypeError(f"{who} returned a {type(gradient).__name__} for {what}[{i}]; expected a Tensor or None")
        if gradient.shape != tensors[i].shape or gradient.device != tensors[i].device:
            raise RuntimeError(f"{who} returned a gradient of shape {gradient.shape} on {gradient.device} for "
                               f"{what}[{i}]; expected shape {tensors[i].shape} on {tensors[i].device}")
    return tuple(replaced)


class _ModuleSequence(Module):
    """Indexing shared by Sequential and ModuleList, with PyTorch's rules: positions may be negative,
    ``del`` renumbers the keys 0..n-1, ``insert`` shifts the numbered keys after it up by one."""

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def _key(self, index) -> str:
        """The key of the module at position ``index``."""
        index = operator.index(index)
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} is out of range for a {type(self).__name__} of {len(self)} modules")
        return list(self._modules)[index]

    def __setitem__(self, index, module):
        setattr(self, self._key(index), module)  # replaced in place: the module keeps its position

    def __delitem__(self, index):
        keys = list(self._modules)[index] if isinstance(index, slice) else [self._key(index)]
        for key in keys:
            del self._modules[key]
        modules = list(self._modules.values())
        self._modules.clear()
        self._modules.update((str(i), module) for i, module in enumerate(modules))

    def insert(self, index, module):
        """Put ``module`` before position ``index`` (``-len <= index <= len``)."""
        if not isinstance(module, Module):
            raise TypeError(f"insert expects a Module, got {type(module).__name__}")
        n, index = len(self), operator.index(index)
        if not -n <= index <= n:
            raise IndexError(f"insert index {index} is out of range for a {type(self).__name__} of {n} modules")
        index = index + n if index < 0 else index
        shifted = [str(i) for i in range(index, n)]
        if list(self._modules)[index:] != shifted:
            raise ValueError(f"insert at {index} renumbers the modules after it, which needs them keyed {shifted}; "
                             f"the keys are {list(self._modules)}")
        for i in range(n, index, -1):
            self._modules[str(i)] = self._modules[str(i - 1)]
        self._modules[str(index)] = module
        return self

    def pop(self, index):
        """Remove the module (or, for a slice, the container of modules) at ``index`` and return it."""
        popped = self[index]
        del self[index]
        return popped

    def append(self, module):
        self.add_module(str(len(self)), module)
        return self

    def extend(self, modules):
        if not isinstance(modules, Iterable):
            raise TypeError(f"extend expects an iterable of Modules, got {type(modules).__name__}")
        for module in list(modules):  # a list first: ``seq.extend(seq)`` appends each module once
            self.append(module)
        return self


class Sequential(_ModuleSequence):
    """Modules applied in order; ``Sequential(a, b)`` or ``Sequential(OrderedDict(name=module))``."""

    def __init__(self, *modules):
        super().__init__()
        if len(modules) == 1 and isinstance(modules[0], OrderedDict):
            for name, module in modules[0].items():
                self.add_module(name, module)
        else:
            for index, module in enumerate(modules):
                self.add_module(str(index), module)

    def forward(self, input):
        for module in self._modules.values():
            input = module(input)
        return input

    def __getitem__(self, index):
        if isinstance(index, slice):
            return Sequential(OrderedDict(list(self._modules.items())[index]))
        return self._modules[self._key(index)]

    def _check_sequential(self, other, operator_name: str):
        if not isinstance(other, Sequential):
            raise ValueError(f"Sequential {operator_name} expects a Sequential, got {type(other).__name__}")

    def __add__(self, other):
        """A new Sequential of this one's modules then ``other``'s (the same module objects), keyed 0..n-1."""
        self._check_sequential(other, "+")
        return Sequential(*self, *other)

    def __iadd__(self, other):
        """Append ``other``'s modules (a Sequential) to this one, keyed by their new positions."""
        self._check_sequential(other, "+=")
        return self.extend(other)

    def _check_factor(self, factor):
        if factor <= 0:
            raise ValueError(f"Sequential * needs a positive number of repetitions, got {factor}")

    def __mul__(self, factor):
        """A new Sequential of this one's modules ``factor`` times over (the same module objects each time)."""
        if not isinstance(factor, int):
            return NotImplemented
        self._check_factor(factor)
        return Sequential(*(list(self) * factor))

    __rmul__ = __mul__

    def __imul__(self, factor):
        """Append this Sequential's modules to it ``factor - 1`` more times."""
        if not isinstance(factor, int):
            return NotImplemented
        self._check_factor(factor)
        return self.extend(list(self) * (factor - 1))


class ModuleList(_ModuleSequence):
    def __init__(self, modules=None):
        super().__init__()
        if modules is not None:
            self.extend(modules)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return ModuleList(list(self._modules.values())[index])
        return self._modules[self._key(index)]

    def __add__(self, other):
        """A new ModuleList of this one's modules then those of the iterable ``other``, keyed 0..n-1."""
        return ModuleList(self).extend(other)

    def __iadd__(self, other):
        return self.extend(other)

    def __repr__(self):
        """PyTorch's form, which folds a run of identically printed modules into one line: ``(0-2): 3 x ...``."""
        runs = []  # [first index, last index, repr]
        for index, module in enumerate(self):
            text = repr(module)
            if runs and runs[-1][2] == text:
                runs[-1][1] = index
            else:
                runs.append([index, index, text])
        lines = [f"({first}): {_indent(text)}" if first == last
                 else f"({first}-{last}): {last - first + 1} x {_indent(text)}" for first, last, text in runs]
        return _enclose(type(self).__name__, [], lines)


def _update_pairs(owner: str, items, roles: str, lone: tuple) -> list:
    """The elements of ``items`` (an iterable given to ``owner``'s update) as 2-tuples; an element that is not
    an iterable, or is one of the ``lone`` types (a value where a pair belongs), or is not of length 2 is refused."""
    pairs = []
    for index, pair in enumerate(items):
        if not isinstance(pair, Iterable) or isinstance(pair, lone):
            raise TypeError(f"{owner}.update element #{index} must be a {roles} pair, got {type(pair).__name__}")
        pair = tuple(pair)
        if len(pair) != 2:
            raise ValueError(f"{owner}.update element #{index} has length {len(pair)}; 2 {roles} is required")
        pairs.append(pair)
    return pairs


class ModuleDict(Module):
    """Modules by name, in insertion order; built from a mapping or from (name, module) pairs."""

    def __init__(self, modules=None):
        super().__init__()
        if modules is not None:
            self.update(modules)

    def update(self, modules):
        """Add or replace modules from a mapping or an iterable of (name, module) pairs."""
        if isinstance(modules, (Mapping, ModuleDict)):
            pairs = list(modules.items())
        elif isinstance(modules, Iterable):
            pairs = _update_pairs("ModuleDict", modules, "(name, module)", (Module,))
        else:
            raise TypeError(f"ModuleDict.update expects a mapping or an iterable of (name, module) pairs, got "
                            f"{type(modules).__name__}")
        for name, module in pairs:
            self[name] = module

    def pop(self, name):
        """Remove the module called ``name`` and return it."""
        module = self[name]
        del self[name]
        return module

    def clear(self):
        self._modules.clear()

    def __delitem__(self, name):
        del self._modules[name]

    def __getitem__(self, name):
        return self._modules[name]

    def __setitem__(self, name, module):
        self.add_module(name, module)

    def __contains__(self, name):
        return name in self._modules

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules)

    def keys(self):
        return self._modules.keys()

    def values(self):
        return self._modules.values()

    def items(self):
        return self._modules.items()


def _as_parameter(value):
    """What a ParameterList or ParameterDict holds for ``value``: a Tensor that is not a Parameter becomes one
    (sharing its data, requiring grad), as in PyTorch; a Parameter, None or any other object is held as it is."""
    if isinstance(value, tl.Tensor) and not isinstance(value, Parameter):
        return Parameter(value)
    return value


class _ParameterContainer(Module):
    """What ParameterList and ParameterDict share: no forward, and PyTorch's repr, one line per entry: "(label):
    Parameter containing: [<type> of size 2x3<device>]" for a tensor, "(label): Object of type: <class name>" for
    anything else. Each container gives its entries (``_labelled_entries``) and writes the type and the device its
    own way (``_type_name``, ``_device_suffix``), as PyTorch's do."""

    def forward(self, *args, **kwargs):
        raise RuntimeError(f"a {type(self).__name__} holds parameters and cannot be called")

    def _describe(self, value) -> str:
        if not isinstance(value, tl.Tensor):
            return f"Object of type: {type(value).__name__}"
        kind = "Parameter" if isinstance(value, Parameter) else "Tensor"
        size = "x".join(str(n) for n in value.shape)
        device = self._device_suffix(value.device) if value.device != "cpu" else ""
        return f"{kind} containing: [{self._type_name(value)} of size {size}{device}]"

    def extra_repr(self) -> str:
        return "\n".join(f"  ({label}): {self._describe(value)}" for label, value in self._labelled_entries())


class ParameterList(_ParameterContainer):
    """Parameters by position, registered as "0", "1", ... (their state-dict keys, in the order appended). A
    Tensor is made a Parameter; another object is held as a plain attribute (not in the state dict)."""

    def __init__(self, values=None):
        super().__init__()
        self._size = 0
        if values is not None:
            self.extend(values)

    def _position(self, index) -> int:
        """``index`` (negative counts from the end) as a position in 0..len-1."""
        index = operator.index(index)
        if not -self._size <= index < self._size:
            raise IndexError(f"index {index} is out of range for a ParameterList of {self._size} entries")
        return index % self._size

    def __getitem__(self, index):
        if isinstance(index, slice):
            return ParameterList([self[i] for i in range(self._size)[index]])
        return getattr(self, str(self._position(index)))

    def __setitem__(self, index, value):
        setattr(self, str(self._position(index)), _as_parameter(value))

    def __len__(self):
        return self._size

    def __iter__(self):
        return (self[i] for i in range(self._size))

    def append(self, value):
        self._size += 1
        self[self._size - 1] = value
        return self

    def extend(self, values):
        if not isinstance(values, Iterable) or isinstance(values, tl.Tensor):
            raise TypeError(f"ParameterList.extend expects an iterable of parameters, got {type(values).__name__}")
        for value in list(values):  # a list first: ``params.extend(params)`` appends each entry once
            self.append(value)
        return self

    def __iadd__(self, values):
        return self.extend(values)

    def _labelled_entries(self):
        return enumerate(self)

    @staticmethod
    def _type_name(tensor) -> str:
        return f"tensorlib.{tensor.dtype}"

    @staticmethod
    def _device_suffix(device) -> str:
        return f" ({device})"


class ParameterDict(_ParameterContainer):
    """Parameters by name (strings), in insertion order, registered under their names (their state-dict keys). A
    Tensor is made a Parameter; another object is held as a plain attribute (not in the state dict). As in
    PyTorch, ``update`` (and the constructor) takes a plain ``dict``'s entries in sorted key order, and those of
    an ``OrderedDict``, a ParameterDict or an iterable of (key, value) pairs in their own order."""

    def __init__(self, parameters=None):
        super().__init__()
        self._keys = {}  # the keys in insertion order (the values are unused)
        if parameters is not None:
            self.update(parameters)

    def _check_key(self, key):
        if not isinstance(key, str):
            raise TypeError(f"ParameterDict keys must be strings, got {type(key).__name__} {key!r}")

    def __getitem__(self, key):
        self._check_key(key)
        if key not in self._keys:
            raise KeyError(f"ParameterDict has no key {key!r}")
        return getattr(self, key)

    def __setitem__(self, key, value):
        self._check_key(key)
        setattr(self, key, _as_parameter(value))
        self._keys[key] = None

    def __delitem__(self, key):
        self._check_key(key)
        if key not in self._keys:
            raise KeyError(f"ParameterDict has no key {key!r}")
        del self._keys[key]
        delattr(self, key)

    def __len__(self):
        return len(self._keys)

    def __iter__(self):
        return iter(self._keys)

    def __reversed__(self):
        return reversed(self._keys)

    def __contains__(self, key):
        return key in self._keys

    def keys(self):
        return self._keys.keys()

    def values(self):
        return [self[key] for key in self._keys]

    def items(self):
        return [(key, self[key]) for key in self._keys]

    def get(self, key, default=None):
        return self[key] if key in self else default

    def setdefault(self, key, default=None):
        """The entry under ``key``, put there first (as ``default``, made a Parameter if a Tensor) if absent."""
        if key not in self:
            self[key] = default
        return self[key]

    def pop(self, key):
        value = self[key]
        del self[key]
        return value

    def popitem(self):
        """Remove the entry inserted last and return it as (key, value)."""
        if not self._keys:
            raise KeyError("popitem(): ParameterDict is empty")
        key = next(reversed(self._keys))
        return key, self.pop(key)

    def clear(self):
        for key in list(self._keys):
            del self[key]

    def copy(self) -> ParameterDict:
        """A new ParameterDict holding the same entries (the same Parameter objects), in the same order."""
        return ParameterDict(OrderedDict(self.items()))

    @classmethod
    def fromkeys(cls, keys, default=None) -> ParameterDict:
        """A ParameterDict with each of ``keys`` holding ``default`` (a Tensor becomes one Parameter per key,
        all sharing its data)."""
        return cls((key, default) for key in keys)

    def update(self, parameters):
        """Add or replace entries from a mapping or an iterable of (key, value) pairs (see the class)."""
        if isinstance(parameters, (OrderedDict, ParameterDict)):
            pairs = list(parameters.items())
        elif isinstance(parameters, Mapping):
            pairs = sorted(parameters.items())
        elif isinstance(parameters, Iterable) and not isinstance(parameters, (str, tl.Tensor)):
            pairs = _update_pairs("ParameterDict", parameters, "(key, value)", (str, tl.Tensor))
        else:
            raise TypeError(f"ParameterDict.update expects a mapping or an iterable of (key, value) pairs, got "
                            f"{type(parameters).__name__}")
        for key, value in pairs:
            self[key] = value

    def __or__(self, other) -> ParameterDict:
        merged = self.copy()
        merged.update(other)
        return merged

    def __ror__(self, other):
        merged = other.copy()
        merged.update(self.items())
        return merged

    def __ior__(self, other):
        self.update(other)
        return self

    def _labelled_entries(self):
        return self.items()

    @staticmethod
    def _type_name(tensor) -> str:
        return tensor.type()

    @staticmethod
    def _device_suffix(device) -> str:
        return f" (GPU {device.index})"
