"""As in ``torch.nn.utils``: gradient clipping (``clip_grad_norm_``, built from ``get_total_norm`` and
``clip_grads_with_norm_``, and ``clip_grad_value_``) and ``parameters_to_vector``/``vector_to_parameters``;
module fusion, as in ``torch.ao.quantization``: ``fuse_modules``, and ``fuse_conv_relu`` for every
Conv2d -> ReLU pair."""

from __future__ import annotations

import copy

import tensorlib as tl
from nn.layers import Conv2d, ConvReLU2d, Identity, ReLU
from nn.module import Sequential
from tensorlib.device import array_device, array_module, move


def _tensors(tensors) -> list:
    """``tensors`` (a tensor or an iterable of tensors) as a list."""
    return [tensors] if isinstance(tensors, tl.Tensor) else list(tensors)


def _vector_norm(array, norm_type: float):
    return array_module(array).linalg.norm(array.reshape(-1), ord=norm_type)


def get_total_norm(tensors, norm_type: float = 2.0, error_if_nonfinite: bool = False, foreach=None):
    """The ``norm_type``-norm of ``tensors`` (a tensor or an iterable of tensors) taken together, as one
    vector: the norm of their norms, as a 0-d tensor on the first one's device (``inf``: the largest
    magnitude; 0.0 for no tensors). A NaN or infinite norm raises RuntimeError when ``error_if_nonfinite``.
    ``foreach`` is accepted for PyTorch's signature; there is one implementation."""
    arrays = [t.array for t in _tensors(tensors)]
    norm_type = float(norm_type)
    if not arrays:
        return tl.tensor(0.0)
    xp, device = array_module(arrays[0]), array_device(arrays[0])
    norms = xp.stack([move(_vector_norm(a, norm_type), device) for a in arrays])
    total_norm = _vector_norm(norms, norm_type)
    if error_if_nonfinite and not bool(xp.isfinite(total_norm)):
        raise RuntimeError(
            f"The total norm of order {norm_type} for gradients from `parameters` is non-finite, so it cannot be "
            "clipped. To disable this error and scale the gradients by the non-finite norm anyway, set "
            "`error_if_nonfinite=False`"
        )
    return tl.tensor(total_norm)


def clip_grads_with_norm_(parameters, max_norm: float, total_norm, foreach=None):
    """Multiply the gradients of ``parameters`` in place by ``min(max_norm / (total_norm + 1e-6), 1)``, as
    PyTorch does: ``clip_grad_norm_`` with the norm already computed (``get_total_norm``). No host sync: the
    factor stays an array on the device."""
    grads = [p.grad.array for p in _tensors(parameters) if p.grad is not None]
    if not grads:
        return
    total = total_norm.array if isinstance(total_norm, tl.Tensor) else total_norm
    xp = array_module(grads[0])
    clip_coef = xp.minimum(float(max_norm) / (total + 1e-6), 1.0)
    for g in grads:
        g *= move(clip_coef, array_device(g))


def clip_grad_norm_(parameters, max_norm: float, norm_type: float = 2.0, error_if_nonfinite: bool = False,
                    foreach=None):
    """Scale the gradients in place so that their joint ``norm_type``-norm (``inf``: the largest magnitude)
    is at most ``max_norm``; return the norm before clipping, as a 0-d tensor.

    As in PyTorch, the gradients are multiplied by ``min(max_norm / (total_norm + 1e-6), 1)``; a NaN or
    infinite norm raises RuntimeError when ``error_if_nonfinite``. Parameters without a gradient are left out.
    """
    parameters = _tensors(parameters)
    total_norm = get_total_norm([p.grad for p in parameters if p.grad is not None], norm_type, error_if_nonfinite)
    clip_grads_with_norm_(parameters, max_norm, total_norm)
    return total_norm


def clip_grad_value_(parameters, clip_value: float, foreach=None):
    """Clamp every gradient element in place to ``[-clip_value, clip_value]``."""
    clip_value = float(clip_value)
    for p in _tensors(parameters):
        if p.grad is not None:
            array_module(p.grad.array).clip(p.grad.array, -clip_value, clip_value, out=p.grad.array)


def _same_device(parameters) -> list:
    parameters = _tensors(parameters)
    for param in parameters:
        if not isinstance(param, tl.Tensor):
            raise TypeError(f"expected Tensors as parameters, got {type(param).__name__}")
        if param.device != parameters[0].device:
            raise TypeError(f"Found two parameters on different devices ({parameters[0].device} and "
                            f"{param.device}), this is currently not supported.")
    return parameters


def parameters_to_vector(parameters):
    """The parameters flattened and concatenated, in order, into one 1-D tensor (a new array; differentiable,
    as a concatenation of reshapes). All must be on one device."""
    parameters = _same_device(parameters)
    if not parameters:
        raise ValueError("parameters_to_vector needs at least one parameter")
    return tl.cat([param.reshape(-1) for param in parameters])


def vector_to_parameters(vec, parameters):
    """Give each parameter, in order, the next ``numel`` elements of the 1-D tensor ``vec``, reshaped to its
    shape. As in PyTorch the parameters' data become views of ``vec``'s (they share its memory and take its
    dtype) and no gradient is recorded; elements past the last parameter's are ignored."""
    if not isinstance(vec, tl.Tensor):
        raise TypeError(f"expected a Tensor for vec, but got {type(vec).__name__}")
    if vec.ndim != 1:
        raise ValueError(f"vec must be a 1-D tensor (a single vector), got shape {vec.shape}")
    parameters = _same_device(parameters)
    needed = sum(param.numel() for param in parameters)
    if vec.numel() < needed:
        raise RuntimeError(f"vec has {vec.numel()} elements, but the parameters hold {needed}")
    pointer = 0
    for param in parameters:
        count = param.numel()
        param.array = vec.array[pointer:pointer + count].reshape(param.shape)
        pointer += count


# The patterns fuse_modules knows: the types of the modules it is given, in order -> the fused module's class.
_FUSED = {(Conv2d, ReLU): ConvReLU2d}


def _submodule(model, name: str):
    """The submodule of ``model`` at the dotted ``name``, e.g. "features.0"."""
    module, path = model, []
    for part in name.split("."):
        children = module._modules
        if children.get(part) is None:
            where = f"'{'.'.join(path)}' ({type(module).__name__})" if path else f"the model ({type(module).__name__})"
            raise AttributeError(f"fuse_modules: modules_to_fuse names {name!r}, but {where} has no submodule "
                                 f"{part!r}; its submodules are {[k for k, v in children.items() if v is not None]}")
        module = children[part]
        path.append(part)
    return module


def _set_submodule(model, name: str, module):
    parent, _, leaf = name.rpartition(".")
    (_submodule(model, parent) if parent else model).add_module(leaf, module)


def _fuse_group(model, names: list):
    modules = [_submodule(model, name) for name in names]
    types = tuple(type(module) for module in modules)
    fused_type = _FUSED.get(types)
    if fused_type is None:
        patterns = ", ".join("[" + ", ".join(t.__name__ for t in key) + "]" for key in _FUSED)
        raise NotImplementedError(f"fuse_modules: cannot fuse modules_to_fuse {names} of types "
                                  f"[{', '.join(t.__name__ for t in types)}]; the patterns it fuses are {patterns}")
    first, last = modules[0], modules[-1]
    fused = fused_type(*modules)
    fused.train(first.training)
    # as in PyTorch: the hooks that ran before the first module and after the last now run around the fused one
    # (with their with_kwargs / always_call flags, which are sets of hook ids beside the tables)
    for source, table, flags in ((first, "_forward_pre_hooks", ("_forward_pre_hooks_with_kwargs",)),
                                 (last, "_forward_hooks", ("_forward_hooks_with_kwargs",
                                                           "_forward_hooks_always_called"))):
        getattr(fused, table).update(getattr(source, table))
        getattr(source, table).clear()
        for flag in flags:
            getattr(fused, flag).update(getattr(source, flag))
            getattr(source, flag).clear()
    _set_submodule(model, names[0], fused)
    for name in names[1:]:
        identity = Identity()
        identity.training = first.training
        _set_submodule(model, name, identity)


def fuse_modules(model, modules_to_fuse, inplace=False):
    """``torch.ao.quantization.fuse_modules`` for the pattern [Conv2d, ReLU]: returns the model (a fused copy
    unless ``inplace``) in which the first module of each group is replaced by the fused module and the
    others by ``nn.Identity``.

    ``modules_to_fuse`` is a list of dotted submodule names, e.g. ``["conv1", "act1"]``, or a list of such
    lists. The modules need not be adjacent, and the fused module computes them in the listed order where the
    first one was: the caller vouches that the model applied them in that order with nothing in between.

    The fused ``ConvReLU2d`` is, as in PyTorch, a Sequential of the conv and the ReLU, so fusing renames the
    conv's state-dict keys: ``conv1.weight`` becomes ``conv1.0.weight`` (``conv1.bias``: ``conv1.0.bias``);
    the Identity modules own nothing. Load a checkpoint saved before fusion into the model before fusing it;
    a checkpoint saved after fusion loads into a model fused the same way.
    """
    if isinstance(modules_to_fuse, str) or not modules_to_fuse:
        raise TypeError(f"fuse_modules: modules_to_fuse must be a list of module names such as ['conv1', 'act1'] "
                        f"or a list of such lists, got {modules_to_fuse!r}")
    if not inplace:
        model = copy.deepcopy(model)
    groups = [modules_to_fuse] if all(isinstance(name, str) for name in modules_to_fuse) else modules_to_fuse
    for names in groups:
        if isinstance(names, str) or not all(isinstance(name, str) for name in names):
            raise TypeError(f"fuse_modules: each group of modules_to_fuse must be a list of module names such as "
                            f"['conv1', 'act1'], got {names!r}")
        _fuse_group(model, list(names))
    return model


def fuse_conv_relu(model, inplace=False):
    """Fuse every Conv2d that is directly followed by a ReLU in a Sequential container (``nn.Sequential``
    or a model built on it): ``fuse_modules`` with all those pairs. Returns the model, a fused copy unless
    ``inplace``. Convs that a custom ``forward`` follows with a ReLU are left alone: only a Sequential's
    order proves that nothing runs in between."""
    pairs = []
    for prefix, container in model.named_modules():
        if not isinstance(container, Sequential) or isinstance(container, ConvReLU2d):
            continue
        children = [(f"{prefix}.{name}" if prefix else name, module)
                    for name, module in container._modules.items() if module is not None]
        for (name, module), (next_name, next_module) in zip(children, children[1:]):
            if type(module) is Conv2d and type(next_module) is ReLU:
                pairs.append([name, next_name])
    if not pairs:
        return model if inplace else copy.deepcopy(model)
    return fuse_modules(model, pairs, inplace=inplace)
