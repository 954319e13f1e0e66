"""Reverse-mode automatic differentiation: ``Function`` (one op, forward and backward side by side) and
the engine that runs backward over the graph in reverse topological order, iteratively."""

from __future__ import annotations

import contextlib
import threading

import numpy as np

from tensorlib.device import move

_state = threading.local()


def is_grad_enabled() -> bool:
    return getattr(_state, "grad_enabled", True)


def set_grad_enabled(mode: bool):
    _state.grad_enabled = bool(mode)


class _GradMode(contextlib.ContextDecorator):
    def __init__(self, enabled: bool):
        self.enabled = enabled

    def __enter__(self):
        self.previous = is_grad_enabled()
        set_grad_enabled(self.enabled)
        return self

    def __exit__(self, *exc):
        set_grad_enabled(self.previous)
        return False


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

    def __init__(self):
        self.inputs: tuple = ()
        self.needs_input_grad: tuple = ()
        self.released = False

    @classmethod
    def apply(cls, *args, **kwargs):
        from tensorlib.tensor import Tensor

        device = None
        for arg in args:
            if isinstance(arg, Tensor):
                if device is None:
                    device = arg.device
                elif arg.device != device:
                    raise RuntimeError(
                        f"{cls.__name__}: expected all tensors on the same device, found {device} and {arg.device}"
                    )
        fn = cls()
        fn.needs_input_grad = tuple(isinstance(a, Tensor) and a.requires_grad for a in args)
        raw = [a.data if isinstance(a, Tensor) else a for a in args]
        record = is_grad_enabled() and any(fn.needs_input_grad)
        if not record:
            fn.needs_input_grad = (False,) * len(args)
        out = fn.forward(*raw, **kwargs)
        if isinstance(out, np.generic):  # NumPy returns scalars for 0-d results; keep arrays throughout
            out = np.asarray(out)
            if device == "cuda":
                out = move(out, "cuda")
        result = Tensor._make(out, requires_grad=record)
        if record:
            fn.inputs = args
            result._ctx = fn
        return result

    def forward(self, *args):
        raise NotImplementedError

    def backward(self, grad):
        raise NotImplementedError

    def release(self):
        """Drop what backward needed (saved arrays, inputs) so memory can be reclaimed."""
        self.__dict__.clear()
        self.inputs, self.needs_input_grad, self.released = (), (), True

    @property
    def name(self) -> str:
        return type(self).__name__ + "Backward"


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


def _graph_order(root):
    """Tensors made by ops, each after every tensor it was computed from (iterative post-order DFS)."""
    from tensorlib.tensor import Tensor

    order, visited = [], set()
    stack = [(root, False)]
    while stack:
        tensor, expanded = stack.pop()
        if expanded:
            order.append(tensor)
            continue
        if id(tensor) in visited:
            continue
        visited.add(id(tensor))
        stack.append((tensor, True))
        for parent in tensor._ctx.inputs:
            if isinstance(parent, Tensor) and parent._ctx is not None and id(parent) not in visited:
                stack.append((parent, False))
    return order


def _accumulate_leaf(leaf, grad):
    from tensorlib.tensor import Tensor

    if leaf.grad is None:
        leaf.grad = Tensor._make(grad.copy())
    else:
        leaf.grad.data += grad


def run_backward(root, grad, retain_graph: bool = False):
    """Propagate ``grad`` (dL/droot, a raw array) to every leaf that requires grad, accumulating ``.grad``."""
    if root._ctx is None:
        _accumulate_leaf(root, grad)
        return
    order = _graph_order(root)
    pending = {id(root): grad}
    with no_grad():
        for tensor in reversed(order):
            fn = tensor._ctx
            if fn.released:
                raise RuntimeError(
                    "trying to backward through the graph a second time: its saved values were freed by the "
                    "first backward; pass retain_graph=True to the first call to keep them"
                )
            out_grad = pending.pop(id(tensor), None)
            if out_grad is None:
                continue
            input_grads = fn.backward(out_grad)
            if not isinstance(input_grads, tuple):
                input_grads = (input_grads,)
            for parent, needed, parent_grad in zip(fn.inputs, fn.needs_input_grad, input_grads):
                if not needed or parent_grad is None:
                    continue
                if isinstance(parent_grad, np.generic):
                    parent_grad = move(np.asarray(parent_grad), parent.device)
                parent_grad = unbroadcast(parent_grad, parent.shape)
                if parent_grad.dtype != parent.dtype:
                    parent_grad = parent_grad.astype(parent.dtype)
                if parent._ctx is None:
                    _accumulate_leaf(parent, parent_grad)
                elif id(parent) in pending:
                    pending[id(parent)] = pending[id(parent)] + parent_grad
                else:
                    pending[id(parent)] = parent_grad
            if not retain_graph:
                fn.release()

