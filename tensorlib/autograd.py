"""Reverse-mode automatic differentiation: ``Function`` (one op, forward and backward side by side), the
engine that runs backward over the graph in reverse topological order, iteratively, and the tensor gradient
hooks it calls (``register_hook``)."""

from __future__ import annotations

import functools
import inspect
import itertools
import threading
import warnings
import weakref

import numpy as np

from tensorlib.device import move

_state = threading.local()


def is_grad_enabled() -> bool:
    return getattr(_state, "grad_enabled", True)


def _set_mode(mode: bool):
    _state.grad_enabled = bool(mode)


class _GradMode:
    """``with`` block and decorator that records graphs or not (``enabled``). As a decorator, every call runs
    in a context of its own, so recursive calls and calls from several threads each restore their own mode;
    a decorated generator function runs each of its steps in the mode, as PyTorch's does."""

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self.previous = []  # a stack: the same object may be entered again inside its own block

    def __enter__(self):
        self.previous.append(is_grad_enabled())
        _set_mode(self.enabled)
        return self

    def __exit__(self, *exc):
        _set_mode(self.previous.pop())
        return False

    def __call__(self, function):
        enabled = self.enabled
        if inspect.isgeneratorfunction(function):
            @functools.wraps(function)
            def decorated(*args, **kwargs):
                return (yield from _steps_in_mode(enabled, function(*args, **kwargs)))
        else:
            @functools.wraps(function)
            def decorated(*args, **kwargs):
                with _GradMode(enabled):
                    return function(*args, **kwargs)
        return decorated


def _steps_in_mode(enabled: bool, generator):
    """Drive ``generator`` with each of its steps in grad mode ``enabled`` (and the caller's steps in the
    caller's mode); what the caller sends or throws in is passed on."""
    resume, argument = generator.send, None
    while True:
        with _GradMode(enabled):
            try:
                item = resume(argument)
            except StopIteration as stop:
                return stop.value
        try:
            resume, argument = generator.send, (yield item)
        except GeneratorExit:
            with _GradMode(enabled):
                generator.close()
            raise
        except BaseException as error:  # thrown in by the caller: the generator may handle it
            resume, argument = generator.throw, error


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
    """A differentiable op, in one of two forms.

    The built-in ops implement ``forward(self, *args)`` on raw arrays (Tensors arrive unwrapped; other
    arguments as given) and ``backward(self, grad)`` returning one raw gradient per positional argument
    of ``forward`` (None where there is none). ``self.needs_input_grad[i]`` tells whether argument i wants
    one. Gradients may have the broadcast shape: the engine sums them down to each input's shape.

    An op of your own can take PyTorch's form instead: ``forward(ctx, *args)`` and ``backward(ctx, *grads)``
    on Tensors, run by ``MyOp.apply(*args)`` (see ``FunctionCtx`` for ``ctx``)::

        class Square(Function):
            @staticmethod
            def forward(ctx, x):
                ctx.save_for_backward(x)
                return x * x

            @staticmethod
            def backward(ctx, grad):
                (x,) = ctx.saved_tensors
                return 2 * x * grad

    or PyTorch 2's split of forward: ``forward(*args)`` without ctx, and ``setup_context(ctx, inputs, output)``
    (run after it, with the arguments bound to forward's parameters, defaults included) to fill ctx. As in
    PyTorch these are looked up on the class, so staticmethods, classmethods and plain functions all work; a
    class is in PyTorch's form when it defines ``setup_context``, its forward is a staticmethod or classmethod,
    or forward's first parameter is named ``ctx`` (a plain ``forward(self, ...)`` is the built-in form).
    """

    returns_view = False  # True where forward may return a view of its first argument's array
    view_output = None  # on the node of a view returned by a Function in PyTorch's form: which output (_attach_output)
    _hooks = None  # the gradient hooks registered on this node's output (a _HookTable), see register_hook

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if not _in_pytorch_form(cls):
            return
        if hasattr(cls, "setup_context") and _first_parameter(cls.forward) == "ctx":
            raise TypeError(
                f"{cls.__name__} defines setup_context, so its forward takes the inputs only (forward(*args), "
                "without ctx); drop setup_context to keep forward(ctx, *args)"
            )
        cls._forward_signature = inspect.signature(cls.forward)
        cls.apply = classmethod(_apply_with_ctx)
        has_backward = inspect.getattr_static(cls, "backward") is not Function.backward
        cls._node_type = type(f"{cls.__name__}Backward", (FunctionCtx,), {
            "__module__": cls.__module__,
            "forward_cls": cls,
            "user_backward": staticmethod(cls.backward) if has_backward else None,
        })

    def __init__(self):
        self.inputs: tuple = ()
        self.needs_input_grad: tuple = ()
        self.released = False

    @classmethod
    def apply(cls, *args, **kwargs):
        from tensorlib.tensor import Tensor

        device, needs, raw, producers = None, [], [], []
        grad_enabled = is_grad_enabled()
        for arg in args:
            if isinstance(arg, Tensor):
                if device is None:
                    device = arg.device
                elif arg.device != device:
                    raise RuntimeError(
                        f"{cls.__name__}: expected all tensors on the same device, found {device} and {arg.device}"
                    )
                node = arg._ctx
                # a view: its node may be out of date, or it may have none while its base now has a history
                if grad_enabled and (node.returns_view if node is not None
                                     else getattr(arg, "_base", None) is not None):
                    node = current_node(arg)
                needs.append(arg._requires_grad)
                raw.append(arg.array)
                producers.append(node)
            else:
                needs.append(False)
                raw.append(arg)
                producers.append(None)
        fn = cls()
        record = grad_enabled and any(needs)
        fn.needs_input_grad = tuple(needs) if record else (False,) * len(args)
        out = fn.forward(*raw, **kwargs)
        if isinstance(out, np.generic):  # NumPy returns scalars for 0-d results; keep arrays throughout
            out = np.asarray(out)
            if device == "cuda":
                out = move(out, "cuda")
        result = Tensor._make(out, requires_grad=record)
        first = args[0] if args and isinstance(args[0], Tensor) else None
        if fn.returns_view and first is not None and _view_of(out, first.array):
            cell = result._version_cell = first._version  # in-place changes through either one count for both
            result._base = first
            if not record:
                result._view_stamp = _changes[0] if grad_enabled else -1 - _changes[0]
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
        """Drop what backward needed (saved arrays, inputs, the hooks on the output) so memory can be reclaimed."""
        self.__dict__.clear()
        self.inputs, self.input_fns, self.needs_input_grad, self.released = (), (), (), True

    @property
    def name(self) -> str:
        return type(self).__name__ + "Backward"


def _in_pytorch_form(cls) -> bool:
    """Whether the Function subclass ``cls`` is written in PyTorch's form (see ``Function``)."""
    if hasattr(cls, "setup_context"):
        return True
    if isinstance(inspect.getattr_static(cls, "forward"), (staticmethod, classmethod)):
        return True
    return _first_parameter(cls.forward) == "ctx"


def _first_parameter(function) -> str | None:
    names = list(inspect.signature(function).parameters)
    return names[0] if names else None


class FunctionCtx(Function):
    """The ``ctx`` of a Function in PyTorch's form: what its forward leaves for its backward, and the graph
    node that runs that backward (the ``grad_fn`` of its outputs). Each such Function ``MyOp`` gets its own
    subclass, ``MyOpBackward``.

    In forward (or setup_context): ``ctx.save_for_backward(*tensors)``, ``ctx.mark_non_differentiable(*outputs)``,
    ``ctx.mark_dirty(*inputs)``, ``ctx.set_materialize_grads(False)`` and attributes of your own;
    ``ctx.needs_input_grad[i]`` tells whether argument i of forward requires grad. In backward:
    ``ctx.saved_tensors``.
    """

    forward_cls = None  # the Function this node belongs to, and its backward (set on each generated subclass)
    user_backward = None
    released = False
    # Attributes the engine reads on every node (set by _apply_with_ctx): forward must not set them on ctx.
    node_fields = ("inputs", "input_fns", "output", "stamp", "out_cell", "out_id", "released", "_hooks",
                   "returns_view", "view_output")

    def __init__(self, args):  # the engine's fields (Function.__init__'s) are set by _record, if it records
        from tensorlib.tensor import Tensor

        self.needs_input_grad = tuple(isinstance(a, Tensor) and a.requires_grad for a in args)
        self.to_save, self.non_differentiable, self.dirty, self.materialize_grads = (), (), (), True

    @property
    def name(self) -> str:
        return type(self).__name__

    def save_for_backward(self, *tensors):
        """Keep tensors (or None) for backward, where ``ctx.saved_tensors`` returns them; backward refuses them
        if they were changed in place after the forward."""
        from tensorlib.tensor import Tensor

        for i, t in enumerate(tensors):
            if t is not None and not isinstance(t, Tensor):
                raise TypeError(f"save_for_backward takes tensors or None, got {type(t).__name__} for argument {i}")
        self.to_save = tensors

    @property
    def saved_tensors(self) -> tuple:
        if self.released:
            raise RuntimeError(
                f"the saved tensors of {self.name} were freed by a backward pass through it; pass retain_graph=True "
                "to that backward to keep them"
            )
        for i, (t, version) in enumerate(zip(self.to_save, self.__dict__.get("saved_versions", ()))):
            if t is not None and t._version[0] != version:
                raise RuntimeError(
                    f"a value needed to compute the gradient of {self.name} (saved tensor {i}, shape {t.shape}) was "
                    f"changed by an in-place operation after the forward pass (now at version {t._version[0]}, saved "
                    f"at version {version}); change a copy (clone()) instead"
                )
        return self.to_save

    def mark_non_differentiable(self, *outputs):
        """These outputs get no gradient: they do not require grad, and backward receives zeros (or None, see
        ``set_materialize_grads``) for them."""
        from tensorlib.tensor import Tensor

        for i, t in enumerate(outputs):
            if not isinstance(t, Tensor):
                raise TypeError(
                    f"mark_non_differentiable takes output tensors, got {type(t).__name__} for argument {i}"
                )
        self.non_differentiable = outputs

    def mark_dirty(self, *inputs):
        """These inputs were changed in place by forward, which returns them: as for a built-in in-place op, each
        becomes an output of this Function itself (not a copy), its version count moves on (backward then refuses
        graphs that saved its old values), and it takes this node as its ``grad_fn``. Refused, while autograd
        records, for a leaf that requires grad and for a view."""
        from tensorlib.tensor import Tensor

        for i, t in enumerate(inputs):
            if not isinstance(t, Tensor):
                raise TypeError(f"mark_dirty takes input tensors, got {type(t).__name__} for argument {i}")
        self.dirty = inputs

    def set_materialize_grads(self, value: bool):
        """With True (the default) backward receives zeros for an output that got no gradient; with False, None."""
        if not isinstance(value, (bool, np.bool_)):
            raise TypeError(f"set_materialize_grads takes a bool, got {value!r}")
        self.materialize_grads = bool(value)

    def backward(self, grad):
        """The engine's call: the user's backward with one Tensor gradient per output of forward, its result
        checked and returned as one raw gradient per input."""
        from tensorlib.tensor import Tensor

        if self.user_backward is None:
            raise NotImplementedError(
                f"{self.forward_cls.__name__} has no backward: define it as a staticmethod backward(ctx, *grads) "
                "taking one gradient per output of forward"
            )
        if isinstance(grad, _OutputGrads):
            arrays = grad.grads
        else:  # the one differentiable output is this node's own
            arrays = [None] * len(self.outputs_meta)
            arrays[self.single_output] = grad
        grads = []
        for meta, g in zip(self.outputs_meta, arrays):
            if g is None and meta is not None and self.materialize_grads:
                shape, dtype, xp = meta
                g = xp.zeros(shape, dtype)
            grads.append(None if g is None else Tensor._make(g))
        result = self.user_backward(self, *grads)
        return self._input_gradients(result if isinstance(result, tuple) else (result,))

    def _input_gradients(self, result) -> tuple:
        from tensorlib.tensor import Tensor

        count = len(self.inputs)
        if len(result) > count and all(g is None for g in result[count:]):
            result = result[:count]
        if len(result) != count:
            raise RuntimeError(
                f"{self.name} returned {len(result)} gradients, expected {count}: one per argument of "
                f"{self.forward_cls.__name__}.forward (None for those without one)"
            )
        raw = []
        for i, (arg, g, needed) in enumerate(zip(self.inputs, result, self.needs_input_grad)):
            if g is not None and not isinstance(g, Tensor):
                raise RuntimeError(
                    f"{self.name}: the gradient for input {i} must be a Tensor or None, got {type(g).__name__}"
                )
            if g is not None and not isinstance(arg, Tensor):
                raise RuntimeError(
                    f"{self.name} returned a gradient for input {i}, which is a {type(arg).__name__}, not a tensor; "
                    "return None there"
                )
            if g is None or not needed:
                raw.append(None)
                continue
            if not _expands_to(arg.shape, g.shape):
                raise RuntimeError(
                    f"{self.name} returned a gradient of shape {g.shape} for input {i} of shape {arg.shape}; "
                    "expected that shape (or one it broadcasts to)"
                )
            if g.device != arg.device:
                raise RuntimeError(
                    f"{self.name} returned a gradient on {g.device} for input {i}, which is on {arg.device}"
                )
            raw.append(g.array)  # the engine sums it down to the input's shape and casts it to its dtype
        return tuple(raw)


def _expands_to(shape, target) -> bool:
    """Whether ``shape`` broadcasts to exactly ``target``."""
    lead = len(target) - len(shape)
    return lead >= 0 and all(s == t or s == 1 for s, t in zip(shape, target[lead:]))


def _apply_with_ctx(cls, *args, **kwargs):
    """``MyOp.apply(*args)`` for a Function in PyTorch's form: forward (and setup_context) on Tensors with grad
    mode off, and when an input requires grad, a node of type ``MyOpBackward`` (the ctx) as the ``grad_fn`` of
    the outputs."""
    from tensorlib.tensor import Tensor

    setup = getattr(cls, "setup_context", None)
    if setup is not None or kwargs:
        args, kwargs = _bind_inputs(cls, args, kwargs, defaults=setup is not None)
    ctx = cls._node_type(args)
    with no_grad():
        if setup is None:
            result = cls.forward(ctx, *args, **kwargs)
        else:
            result = cls.forward(*args, **kwargs)
            setup(ctx, args, result)
    clash = [field for field in FunctionCtx.node_fields if field in vars(ctx)]
    if clash:
        where = "forward" if setup is None else "setup_context"
        raise AttributeError(f"{cls.__name__}.{where} set ctx.{clash[0]}, a name the graph node uses; pick another")
    made = result if isinstance(result, tuple) else (result,)
    differentiable = [
        p for p, o in enumerate(made)
        if isinstance(o, Tensor) and o.dtype.kind == "f" and not any(o is m for m in ctx.non_differentiable)
    ] if is_grad_enabled() and any(ctx.needs_input_grad) else []
    if ctx.dirty:
        _take_dirty(cls, ctx, args, made, [made[p] for p in differentiable])
    outputs = tuple(_as_new_output(o, args, ctx.dirty, p in differentiable) for p, o in enumerate(made))
    if differentiable:
        _record(ctx, args, outputs, differentiable)
    return outputs if isinstance(result, tuple) else outputs[0]


def _bind_inputs(cls, args, kwargs, defaults: bool):
    """The arguments of ``cls.apply`` as forward's inputs: those given by name become positional like the others
    (keyword-only ones stay by name); with ``defaults`` (the setup_context form, as PyTorch does) the defaults of
    the parameters not given are inputs too."""
    try:
        if defaults:
            bound = cls._forward_signature.bind(*args, **kwargs)
            bound.apply_defaults()
            return bound.args, bound.kwargs
        bound = cls._forward_signature.bind(None, *args, **kwargs)
    except TypeError as error:
        raise TypeError(f"{cls.__name__}.apply: {error}") from None
    return bound.args[1:], bound.kwargs


def _take_dirty(cls, ctx, args, made, recorded):
    """Check the tensors forward marked dirty (``ctx.mark_dirty``) and count their in-place change; ``recorded``
    are the outputs that will get the node as their grad_fn."""
    for t in ctx.dirty:
        position = next((i for i, a in enumerate(args) if a is t), None)
        if position is None:
            warnings.warn(f"{cls.__name__}: ctx.mark_dirty got a tensor that is not an input of forward; only the "
                          "inputs forward changes in place belong there")
        what = "a tensor marked dirty" if position is None else f"input {position} (marked dirty)"
        if not any(t is o for o in made):
            raise RuntimeError(f"{cls.__name__}.forward did not return {what}: a Function returns the inputs it "
                               "changes in place")
        if t.requires_grad and t._ctx is None and any(t is o for o in recorded):
            raise RuntimeError(f"{cls.__name__}: {what} is a leaf tensor that requires grad, which can't be changed "
                               "in place while autograd records; wrap the call in no_grad()")
        if getattr(t, "_base", None) is not None and any(t is o for o in recorded):
            raise RuntimeError(f"{cls.__name__}: {what} is a view (reshape, permute, indexing, expand, diagonal) of "
                               "another tensor, which a Function in PyTorch's form does not change in place here "
                               "while autograd records (PyTorch does); pass that tensor itself, or a clone of the view")
        note_change(t._version)


def _as_new_output(out, args, dirty, recorded: bool):
    """An output of forward as the caller gets it: itself, or, if it is an input or already has a gradient of
    its own, a view of it (the graph node must not be attached to a tensor outside this call). An input changed
    in place (in ``dirty``) is itself where it gets the node (``recorded``) or requires no grad."""
    from tensorlib.tensor import Tensor

    if not isinstance(out, Tensor):
        return out
    if any(out is d for d in dirty) and (recorded or not out.requires_grad):
        return out
    if not (out.requires_grad or any(out is a for a in args)):
        return out
    view = Tensor._make(out.array)
    view._version_cell, view._base = out._version, out
    view._view_stamp = _changes[0] if is_grad_enabled() else -1 - _changes[0]
    return view


def _record(ctx, args, outputs, differentiable):
    """Make ``ctx`` the graph node of ``outputs[p]`` for each ``p`` in ``differentiable``."""
    from tensorlib.device import array_module
    from tensorlib.tensor import Tensor

    ctx.inputs = args
    ctx.input_fns = tuple(current_node(a) if isinstance(a, Tensor) else None for a in args)
    ctx.stamp = _changes[0]
    ctx.outputs_meta = tuple(
        (o.shape, o.dtype, array_module(o.array)) if isinstance(o, Tensor) else None for o in outputs
    )
    # Saved outputs are kept as aliases without the graph (as detach() makes): the outputs themselves would
    # make a reference cycle through ctx. Versions are taken now: in-place changes inside forward are allowed.
    ctx.to_save = tuple(
        t.detach() if t is not None and any(t is o for o in outputs) else t for t in ctx.to_save
    )
    ctx.saved_versions = tuple(None if t is None else t._version[0] for t in ctx.to_save)
    if len(differentiable) == 1:
        ctx.single_output = differentiable[0]
        _attach_output(ctx, outputs, ctx.single_output, ctx.forward_cls.__name__)
    else:  # a graph node has one output: each differentiable output gets its own node, feeding ctx
        ctx.output, ctx.out_cell, ctx.out_id = _no_output, [0, 0], None
        for p in differentiable:
            _attach_output(_OutputOf(ctx, p, len(outputs)), outputs, p, ctx.forward_cls.__name__)


def _attach_output(node, outputs, index, function):
    """Make ``node`` the graph node of ``outputs[index]``, an output of ``function`` (a Function in PyTorch's form).
    An output that is a view (an input returned as it is, or a view made in forward) is marked: as in PyTorch, it
    may neither be changed in place while autograd records nor be used there after its base changed in place, since
    the function's own backward would not see the change (``current_node``, ``Tensor._recorded``)."""
    tensor = outputs[index]
    attach(node, tensor)
    if getattr(tensor, "_base", None) is not None:
        node.returns_view, node.view_output = True, f"output {index} of {function}"


def attach(node, tensor, old=None):
    """Make ``node`` the history of ``tensor``'s values (which were changed in place, or are a view read again
    from its base, or an output of a Function in PyTorch's form). The node it replaces no longer makes the tensor:
    its output becomes ``old``, the stand-in for the values before an in-place change, if given (a retain_grad()
    stays with the tensor, so it moves on to the new node)."""
    if tensor._ctx is not None:
        tensor._ctx.output = _no_output if old is None else weakref.ref(old)
    tensor._ctx, tensor._requires_grad = node, True
    node.output, node.out_cell, node.out_id = weakref.ref(tensor), tensor._version, id(tensor.array)


def _no_output():
    return None


class _OutputGrads:
    """The gradients of the outputs of a Function in PyTorch's form with several differentiable outputs, on
    their way from the outputs' ``_OutputOf`` nodes to its node: one slot per output, None where none came.

    To the engine it is a gradient like any other: ``+`` merges the slots, and the 0-d ``shape`` and the
    ``dtype`` None equal those of the input ``_OutputOf`` names (``_SLOTS``), so nothing is summed or cast."""

    __slots__ = ("grads",)
    shape = ()
    dtype = None

    def __init__(self, grads):
        self.grads = grads

    def __add__(self, other):
        return _OutputGrads([b if a is None else a if b is None else a + b for a, b in zip(self.grads, other.grads)])


_SLOTS = _OutputGrads(())


class _OutputOf(Function):
    """The graph node of output ``index`` (of ``count``) of a Function in PyTorch's form with several
    differentiable outputs: it hands the output's gradient on to the Function's node, in the output's slot."""

    def __init__(self, node, index, count):
        super().__init__()
        self.inputs, self.input_fns, self.needs_input_grad = (_SLOTS,), (node,), (True,)
        self.index, self.count, self.node_name, self.stamp = index, count, node.name, _changes[0]

    def backward(self, grad):
        slots = [None] * self.count
        slots[self.index] = grad
        return _OutputGrads(slots)

    def release(self):
        name = self.node_name
        super().release()
        self.node_name = name

    @property
    def name(self) -> str:
        return self.node_name


def current_node(tensor):
    """The node that made ``tensor``'s values as they are now: its ``_ctx``, except for a view whose values changed
    in place since its node was recorded (through its base or another view of it), and for a view without a node
    whose base took a history by such a change: while autograd records, these get a new node reading their values
    from the base, as PyTorch rebuilds a view's grad_fn (``Tensor._read_from``). A view whose base no longer
    requires grad has no node from then on. Checked where a graph edge is recorded: for a tensor made by a view op,
    one comparison of version counts."""
    node = tensor._ctx
    if node is None:
        if getattr(tensor, "_base", None) is None or not is_grad_enabled():
            return None
        root = stale_view_root(tensor)
        if root is None:
            return None
        if tensor._view_stamp < 0:
            raise RuntimeError(
                "a view made under no_grad() is used while autograd records, after its base (or another view of it) "
                "was changed in place: make the view and the change both inside no_grad() (the change unrecorded) "
                "or both outside it (recorded)"
            )
    elif not node.returns_view or node.released or node.out_cell[1] <= node.stamp or not is_grad_enabled():
        return node
    else:
        if node.view_output is not None:
            raise RuntimeError(
                f"{node.view_output} is a view (an input returned as it is, or a view made in forward) and its base, "
                "or another view of the base, was changed in place since: the function's backward would not see the "
                "change, which is refused as in PyTorch; clone() the output (or return a clone from forward)"
            )
        root = tensor._root()
        if root is None:
            return node
        if not root.requires_grad:  # its base lost its history (detach_()): so does the view
            tensor._ctx, tensor._requires_grad, tensor._view_stamp = None, False, _changes[0]
            return None
    tensor._read_from(root)
    return tensor._ctx


def stale_view_root(view):
    """For ``view``, a view without a node (made while its base required no grad, or under no_grad): the tensor at
    the end of its chain of bases when that tensor requires grad and was changed in place since the view was made
    (or last found up to date); None otherwise."""
    stamp = view._view_stamp
    if view._version[1] <= (stamp if stamp >= 0 else -1 - stamp):
        return None
    root = view._root()
    if root is not None and root.requires_grad:
        return root
    view._view_stamp = _changes[0] if stamp >= 0 else -1 - _changes[0]  # up to date: the next check is one compare
    return None


def _view_of(out, array) -> bool:
    """Whether the array ``out`` is ``array`` or a view of its memory (or of the memory it views): its chain of
    bases reaches one of them (as_strided puts holders of its own in the chain)."""
    base = getattr(out, "base", None)
    if base is None or base is array or out is array:
        return base is not None or out is array
    owner = getattr(array, "base", None)
    for _ in range(4):
        if base is None:
            return False
        if base is array or base is owner:
            return True
        base = getattr(base, "base", None)
    return False


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

    changed = [(id(t.array), "input", t.shape) for t in fn.inputs if isinstance(t, Tensor) and t._version[1] > fn.stamp]
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


def _sum(a, b):
    """``a + b`` for two gradients of one tensor, kept an array: NumPy adds two 0-d arrays into a scalar, which
    the backward of an in-place write (that assigns into its gradient) could not take."""
    total = a + b
    return np.asarray(total) if isinstance(total, np.generic) else total


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
    elif leaf.grad.shape != grad.shape:  # the tensor's values were replaced (.data = ...) by another shape
        raise RuntimeError(f"a gradient of shape {grad.shape} cannot be accumulated into .grad of shape "
                           f"{leaf.grad.shape}; set .grad = None after giving the tensor another shape")
    else:
        leaf.grad.array += grad


# Tensor gradient hooks live with their owner: the node that made the tensor (its ``_hooks``) or, for a leaf, the
# tensor itself (its ``_backward_hooks``, as in PyTorch), so that a hook which refers to its tensor (a weight-decay
# hook ``lambda g, p=p: g + wd * p``) is collected with it. ``_hooked[0]`` counts the owners given hooks (each until
# its last hook is removed or it is collected): while it is 0, backward looks for none.
_hooked = [0]


class RemovableHandle:
    """What the ``register_*hook`` functions and methods return, as in PyTorch: ``remove()`` takes the hook out
    of its table (and its id out of ``extra``, the sets that record how it is called), a second ``remove()`` does
    nothing, and ``with handle:`` removes it at the end of the block. ``id`` is the hook's key in its table. The
    handle holds the tables weakly: keeping it keeps neither the hook nor what the hook refers to alive."""

    _ids = itertools.count()

    def __init__(self, hooks: dict, extra: tuple = ()):
        self.id = next(RemovableHandle._ids)
        self._hooks = weakref.ref(hooks)
        self._extra = tuple(weakref.ref(table) for table in extra)

    def remove(self):
        hooks = self._hooks()
        if hooks is not None:
            hooks.pop(self.id, None)
        for reference in self._extra:
            table = reference()
            if table is not None:
                table.discard(self.id)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()
        return False


class _HookTable(dict):
    """One owner's gradient hooks, by handle id in registration order. It is on its owner (until its last hook is
    removed, or a node's graph is freed) and counted in ``_hooked`` (until its last hook is removed or its owner is
    collected)."""

    def __init__(self, owner):
        super().__init__()
        self.finalizer = weakref.finalize(owner, _forget_hooks)  # holds no reference to the owner
        self.finalizer.atexit = False
        _hooked[0] += 1
        _set_hooks(owner, self)

    def pop(self, key, default=None):  # RemovableHandle.remove's: the last hook out takes the table away
        hook = super().pop(key, default)
        if not self:
            alive = self.finalizer.detach()  # None once the owner is gone (the finalizer did the same)
            if alive is not None:
                _forget_hooks()
                _set_hooks(alive[0], None)
        return hook


def _forget_hooks():
    _hooked[0] -= 1


def _set_hooks(owner, table):
    if isinstance(owner, Function):
        owner._hooks = table
    else:
        owner._backward_hooks = table


def _leaf_hooks(leaf):
    """The hook table of a leaf tensor, or None."""
    return getattr(leaf, "_backward_hooks", None)


def register_hook(tensor, hook) -> RemovableHandle:
    """``tensor.register_hook(hook)``, as in PyTorch: each backward pass that computes the gradient of ``tensor``
    calls ``hook(grad)``; a Tensor it returns replaces the gradient from there on (for the next hook, the ops
    that made ``tensor``, ``.grad``). Hooks run in the order they were registered. A leaf's hooks see its
    gradient summed over all its uses, before it is accumulated into ``.grad``. A non-leaf's hooks belong to
    the op that made it: one registered before an in-place change of the tensor sees the gradient with respect
    to the value before the change."""
    if not tensor.requires_grad:
        raise RuntimeError("cannot register a hook on a tensor that doesn't require gradient")
    if not callable(hook):
        raise TypeError(f"register_hook: hook must be callable, got {type(hook).__name__}")
    owner = tensor if tensor._ctx is None else tensor._ctx
    hooks = _leaf_hooks(owner) if owner is tensor else owner._hooks
    if hooks is None:
        hooks = _HookTable(owner)
    handle = RemovableHandle(hooks)
    hooks[handle.id] = hook
    return handle


def _run_hooks(hooks, grad):
    """``grad`` (a raw array) after ``hooks`` (a hook table, or None), each given the previous one's result."""
    from tensorlib.tensor import Tensor

    if not hooks:
        return grad
    value = Tensor._make(grad)
    for hook in list(hooks.values()):
        result = hook(value)
        if result is None:
            continue
        name = getattr(hook, "__name__", repr(hook))
        if not isinstance(result, Tensor):
            raise TypeError(f"hook {name!r} returned a {type(result).__name__}; a hook returns a Tensor or None")
        for what, before, after in (("shape", value.shape, result.shape), ("dtype", value.dtype, result.dtype),
                                    ("device", value.device, result.device)):
            if before != after:
                raise RuntimeError(f"hook {name!r} changed the gradient's {what} from {before} to {after}")
        value = result
    return value.array


def run_backward(root, grad, retain_graph: bool = False, capture: dict | None = None):
    """Propagate ``grad`` (dL/droot, a raw array) to every leaf that requires grad, accumulating ``.grad``.
    With ``capture`` (a dict from id(tensor) to None) no ``.grad`` is written: the gradients of those tensors,
    leaves or not, are summed into the dict instead."""

    def deliver(tensor, g, leaf):
        if capture is None:
            if leaf or getattr(tensor, "_retains_grad", False):
                _accumulate_leaf(tensor, g)
        elif id(tensor) in capture:
            capture[id(tensor)] = g.copy() if capture[id(tensor)] is None else _sum(capture[id(tensor)], g)

    hooked = _hooked[0] > 0  # hooks are looked up per node only while some tensor has them
    if is_grad_enabled():
        start = current_node(root)
    else:
        with enable_grad():  # a stale view is rebuilt from its base even when backward runs under no_grad
            start = current_node(root)
    if start is None:
        if hooked:
            grad = _run_hooks(_leaf_hooks(root), grad)
        deliver(root, grad, True)
        return
    pending = {id(root._ctx): grad}  # dL/d(output of fn), by id(fn)
    hooked_leaves = {}  # id(leaf) -> (leaf, its gradient so far), for leaves with hooks
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
            if hooked and fn._hooks is not None:
                out_grad = _run_hooks(fn._hooks, out_grad)
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
                    if hooked and _leaf_hooks(parent) is not None:  # its hooks see the sum over its uses
                        held = hooked_leaves.get(id(parent))
                        summed = parent_grad if held is None else _sum(held[1], parent_grad)
                        hooked_leaves[id(parent)] = (parent, summed)
                    else:
                        deliver(parent, parent_grad, True)
                elif id(parent_fn) in pending:
                    pending[id(parent_fn)] = _sum(pending[id(parent_fn)], parent_grad)
                else:
                    pending[id(parent_fn)] = parent_grad
            if not retain_graph:
                fn.release()
        for leaf, leaf_grad in hooked_leaves.values():
            if capture is None or id(leaf) in capture:
                deliver(leaf, _run_hooks(_leaf_hooks(leaf), leaf_grad), True)


def output_gradient(output, gradient, who: str):
    """dL/d(output) to start a backward pass from: ``gradient`` (a tensor or an array of the output's shape, on
    its device) as a raw array of the output's dtype, or ones for an output of one element."""
    from tensorlib.device import array_module
    from tensorlib.tensor import Tensor

    if not output.requires_grad:
        raise RuntimeError(f"{who} does not require grad and has no grad_fn")
    if gradient is None:
        if output.array.size != 1:
            raise RuntimeError(
                f"{who}: a backward pass without a gradient needs a scalar output, got shape {output.shape}; "
                "pass a gradient of the output's shape"
            )
        return array_module(output.array).ones_like(output.array)
    if isinstance(gradient, Tensor) and gradient.device != output.device:
        raise RuntimeError(f"{who}: the gradient is on {gradient.device} but the output is on {output.device}")
    grad = gradient.array if isinstance(gradient, Tensor) else array_module(output.array).asarray(gradient)
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
