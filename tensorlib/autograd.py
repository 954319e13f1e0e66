"""Reverse-mode automatic differentiation: ``Function`` (one op, forward and backward side by side) and
the engine that runs backward over the graph in reverse topological order, iteratively."""

from __future__ import annotations

import contextlib
import threading
import weakref

import numpy as np

from tensorlib.device import move

_state = threading.local()


def is_grad_enabled() -> bool:
    return getattr(_state, "grad_enabled", True)


def _set_mode(mode: bool):
    _state.grad_enabled = bool(mode)


class _GradMode(contextlib.ContextDecorator):
    def __init__(self, enabled: bool):
        self.enabled = enabled

    def __enter__(self):
        self.previous = is_grad_enabled()
        _set_mode(self.enabled)
        return self

    def __exit__(self, *exc):
        _set_mode(self.previous)
        return False


class set_grad_enabled:  # noqa: N801  (PyTorch's name)
    """Switch graph recording on or off: at once when called (``set_grad_enabled(False)``), and back to the
    previous mode at the end of a ``with set_grad_enabled(training):`` block."""

    def __init__(self, mode: bool):
        if not isinstance(mode, (bool, np.bool_)):
            raise TypeError(f"set_grad_enabled takes a bool, got {mode!r}")
        self.previous = is_grad_enabled()
        self.mode = bool(mode)
        _set_mode(self.mode)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        _set_mode(self.previous)
        return False

    def __call__(self, function):  # as a decorator, the mode applies inside each call only
        _set_mode(self.previous)
        return _GradMode(self.mode)(function)


def no_grad():
    """Context manager (and decorator): ops inside record no graph."""
    return _GradMode(False)


def enable_grad():
    return _GradMode(True)


class Function:
    """A differentiable op.

    Subclasses implement ``forward(self, *args)`` on raw arrays (Tensors arrive unwrapped; other
    arguments as given) and ``backward(self, grad)`` returning one raw gradient per positional argument
    of ``forward`` (None where there is none). ``self.needs_input_grad[i]`` tells whether argument i wants
    one. Gradients may have the broadcast shape: the engine sums them down to each input's shape.
    """

    returns_view = False  # True where forward may return a view of its first argument's array

    def __init__(self):
        self.inputs: tuple = ()
        self.needs_input_grad: tuple = ()
        self.released = False

    @classmethod
    def apply(cls, *args, **kwargs):
        from tensorlib.tensor import Tensor

        device, needs, raw, producers = None, [], [], []
        for arg in args:
            if isinstance(arg, Tensor):
                if device is None:
                    device = arg.device
                elif arg.device != device:
                    raise RuntimeError(
                        f"{cls.__name__}: expected all tensors on the same device, found {device} and {arg.device}"
                    )
                needs.append(arg.requires_grad)
                raw.append(arg.data)
                producers.append(arg._ctx)
            else:
                needs.append(False)
                raw.append(arg)
                producers.append(None)
        fn = cls()
        record = is_grad_enabled() and any(needs)
        fn.needs_input_grad = tuple(needs) if record else (False,) * len(args)
        out = fn.forward(*raw, **kwargs)
        if isinstance(out, np.generic):  # NumPy returns scalars for 0-d results; keep arrays throughout
            out = np.asarray(out)
            if device == "cuda":
                out = move(out, "cuda")
        result = Tensor._make(out, requires_grad=record)
        first = args[0] if args and isinstance(args[0], Tensor) else None
        if fn.returns_view and first is not None and _view_of(out, first.data):
            cell = result._version_cell = first._version  # in-place changes through either one count for both
            result._base = first
        else:
            cell = result._version_cell = [0, 0]
        if record:
            # The graph's edges are the inputs' producing Functions as they are now: an input changed in place
            # later gets a new producer, and this op's gradient must still reach the old one.
            fn.inputs = args
            fn.input_fns = tuple(producers)
            fn.stamp = _changes[0]  # in-place changes so far: a cell changed later has a larger stamp
            fn.output = weakref.ref(result)  # for retain_grad() and autograd.grad(); weak: no reference cycle
            fn.out_cell, fn.out_id = cell, id(out)
            result._ctx = fn
        return result

    def forward(self, *args):
        raise NotImplementedError

    def backward(self, grad):
        raise NotImplementedError

    def release(self):
        """Drop what backward needed (saved arrays, inputs) so memory can be reclaimed."""
        self.__dict__.clear()
        self.inputs, self.input_fns, self.needs_input_grad, self.released = (), (), (), True

    @property
    def name(self) -> str:
        return type(self).__name__ + "Backward"


def _view_of(out, array) -> bool:
    base = getattr(out, "base", None)
    return out is array or (base is not None and (base is array or base is getattr(array, "base", None)))


# In-place changes: a count over the process, and per data a cell [changes of it, count at its last change]
# (shared by the tensors that share the data). A Function records the count at its forward (``stamp``); backward
# looks closer only when the count has moved since, so graphs without in-place changes pay one comparison.
_changes = [0]


def note_change(cell: list):
    """Count an in-place change of the data whose version cell is ``cell``."""
    _changes[0] += 1
    cell[0] += 1
    cell[1] = _changes[0]


def _check_saved_values(fn):
    """Refuse to run ``fn.backward`` when an array it saved was changed in place since the forward: its gradient
    would be computed from the wrong values."""
    from tensorlib.tensor import Tensor

    changed = [(id(t.data), "input", t.shape) for t in fn.inputs if isinstance(t, Tensor) and t._version[1] > fn.stamp]
    if fn.out_cell[1] > fn.stamp:
        changed.append((fn.out_id, "output", None))
    if not changed:
        return
    saved = {id(value) for value in vars(fn).values()}
    for data_id, role, shape in changed:
        if data_id in saved:
            raise RuntimeError(
                f"a value needed to compute the gradient of {fn.name} (its {role}"
                + (f", shape {shape}" if shape is not None else "")
                + ") was changed by an in-place operation after the forward pass; change a copy (clone()) instead"
            )


def unbroadcast(grad, shape):
    """Sum ``grad`` down to ``shape``, undoing NumPy broadcasting."""
    shape = tuple(shape)
    if grad.shape == shape:
        return grad
    lead = grad.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(
        lead + i for i, size in enumerate(shape) if size == 1 and grad.shape[lead + i] != 1
    )
    return grad.sum(axis=axes, keepdims=True).reshape(shape)


def _graph_order(root_fn):
    """The Functions behind ``root_fn``, each after every Function that made one of its inputs (iterative
    post-order DFS over the recorded edges ``input_fns``)."""
    order, visited = [], set()
    stack = [(root_fn, False)]
    while stack:
        fn, expanded = stack.pop()
        if expanded:
            order.append(fn)
            continue
        if id(fn) in visited:
            continue
        visited.add(id(fn))
        stack.append((fn, True))
        for parent_fn in fn.input_fns:
            if parent_fn is not None and id(parent_fn) not in visited:
                stack.append((parent_fn, False))
    return order


def _accumulate_leaf(leaf, grad):
    from tensorlib.tensor import Tensor

    if leaf.grad is None:
        leaf.grad = Tensor._make(grad.copy())
    else:
        leaf.grad.data += grad


def run_backward(root, grad, retain_graph: bool = False, capture: dict | None = None):
    """Propagate ``grad`` (dL/droot, a raw array) to every leaf that requires grad, accumulating ``.grad``.
    With ``capture`` (a dict from id(tensor) to None) no ``.grad`` is written: the gradients of those tensors,
    leaves or not, are summed into the dict instead."""

    def deliver(tensor, g, leaf):
        if capture is None:
            if leaf or getattr(tensor, "_retains_grad", False):
                _accumulate_leaf(tensor, g)
        elif id(tensor) in capture:
            capture[id(tensor)] = g.copy() if capture[id(tensor)] is None else capture[id(tensor)] + g

    if root._ctx is None:
        deliver(root, grad, True)
        return
    pending = {id(root._ctx): grad}  # dL/d(output of fn), by id(fn)
    with no_grad():
        for fn in reversed(_graph_order(root._ctx)):
            if fn.released:
                raise RuntimeError(
                    "trying to backward through the graph a second time: its saved values were freed by the "
                    "first backward; pass retain_graph=True to the first call to keep them"
                )
            out_grad = pending.pop(id(fn), None)
            if out_grad is None:
                continue
            output = fn.output()
            if output is not None:
                deliver(output, out_grad, False)
            if _changes[0] != fn.stamp:  # something was changed in place since this op's forward
                _check_saved_values(fn)
            input_grads = fn.backward(out_grad)
            if not isinstance(input_grads, tuple):
                input_grads = (input_grads,)
            for parent, parent_fn, needed, parent_grad in zip(fn.inputs, fn.input_fns, fn.needs_input_grad,
                                                               input_grads):
                if not needed or parent_grad is None:
                    continue
                if isinstance(parent_grad, np.generic):
                    parent_grad = move(np.asarray(parent_grad), parent.device)
                parent_grad = unbroadcast(parent_grad, parent.shape)
                if parent_grad.dtype != parent.dtype:
                    parent_grad = parent_grad.astype(parent.dtype)
                if parent_fn is None:
                    deliver(parent, parent_grad, True)
                elif id(parent_fn) in pending:
                    pending[id(parent_fn)] = pending[id(parent_fn)] + parent_grad
                else:
                    pending[id(parent_fn)] = parent_grad
            if not retain_graph:
                fn.release()


def output_gradient(output, gradient, who: str):
    """dL/d(output) to start a backward pass from: ``gradient`` (a tensor or an array of the output's shape, on
    its device) as a raw array of the output's dtype, or ones for an output of one element."""
    from tensorlib.device import array_module
    from tensorlib.tensor import Tensor

    if not output.requires_grad:
        raise RuntimeError(f"{who} does not require grad and has no grad_fn")
    if gradient is None:
        if output.data.size != 1:
            raise RuntimeError(
                f"{who}: a backward pass without a gradient needs a scalar output, got shape {output.shape}; "
                "pass a gradient of the output's shape"
            )
        return array_module(output.data).ones_like(output.data)
    if isinstance(gradient, Tensor) and gradient.device != output.device:
        raise RuntimeError(f"{who}: the gradient is on {gradient.device} but the output is on {output.device}")
    grad = gradient.data if isinstance(gradient, Tensor) else array_module(output.data).asarray(gradient)
    if tuple(grad.shape) != output.shape:
        raise RuntimeError(f"{who}: gradient shape {tuple(grad.shape)} does not match the output shape {output.shape}")
    return grad.astype(output.dtype, copy=False)


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False, allow_unused=False):
    """The gradients of ``outputs`` (a tensor or a sequence, their gradients summed) with respect to ``inputs``
    (a tensor or a sequence; leaves or intermediate tensors), returned as a tuple and not accumulated into any
    ``.grad``. ``grad_outputs`` are dL/doutput (needed for outputs of more than one element). An input the
    outputs do not depend on gets None with ``allow_unused=True`` and an error otherwise. The graph is freed
    unless ``retain_graph=True``. Higher-order gradients (``create_graph=True``) are not supported: the
    backward pass records no graph."""
    from tensorlib.tensor import Tensor

    if create_graph:
        raise NotImplementedError("grad(create_graph=True): higher-order gradients are not supported")
    outputs = [outputs] if isinstance(outputs, Tensor) else list(outputs)
    inputs = [inputs] if isinstance(inputs, Tensor) else list(inputs)
    if grad_outputs is None or isinstance(grad_outputs, Tensor):
        grad_outputs = [grad_outputs] * len(outputs) if grad_outputs is None else [grad_outputs]
    grad_outputs = list(grad_outputs)
    if len(grad_outputs) != len(outputs):
        raise ValueError(f"grad: {len(grad_outputs)} grad_outputs for {len(outputs)} outputs")
    for i, t in enumerate(inputs):
        if not isinstance(t, Tensor) or not t.requires_grad:
            raise RuntimeError(f"grad: input {i} is not a tensor that requires grad")
    capture = {id(t): None for t in inputs}
    for i, (out, g) in enumerate(zip(outputs, grad_outputs)):
        keep = bool(retain_graph) or i < len(outputs) - 1
        run_backward(out, output_gradient(out, g, f"grad(): output {i}"), retain_graph=keep, capture=capture)
    result = []
    for i, t in enumerate(inputs):
        g = capture[id(t)]
        if g is None and not allow_unused:
            raise RuntimeError(f"grad: input {i} was not used to compute the outputs; pass allow_unused=True")
        result.append(None if g is None else Tensor._make(g))
    return tuple(result)
