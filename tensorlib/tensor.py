"""The Tensor: an array (NumPy on "cpu", CuPy on "cuda") with an optional gradient and the op that made it."""

from __future__ import annotations

import functools
import math
import numbers
import weakref

import numpy as np

from tensorlib import autograd
from tensorlib.device import Device, array_device, array_module, device_of, move, module_for, normalize_device

float32 = np.dtype(np.float32)
float64 = np.dtype(np.float64)
float16 = np.dtype(np.float16)
int8 = np.dtype(np.int8)
int16 = np.dtype(np.int16)
int32 = np.dtype(np.int32)
int64 = np.dtype(np.int64)
uint8 = np.dtype(np.uint8)
bool_ = np.dtype(np.bool_)

_default_dtype = float32


def get_default_dtype():
    return _default_dtype


def set_default_dtype(dtype):
    global _default_dtype
    dtype = np.dtype(dtype)
    if dtype.kind != "f":
        raise TypeError(f"the default dtype must be a floating-point dtype, got {dtype}")
    _default_dtype = dtype


def _infer_dtype(data) -> np.dtype:
    """PyTorch's rule: Python floats -> the default float dtype, ints -> int64, bools -> bool."""
    array = np.asarray(data)
    if array.dtype.kind == "f" and not isinstance(data, (np.ndarray, np.generic)):
        return _default_dtype
    if array.dtype.kind in "iu" and not isinstance(data, (np.ndarray, np.generic)):
        return int64
    return array.dtype


class Tensor:
    """An n-dimensional array with reverse-mode autograd. Create one with ``tensorlib.tensor``.

    Called itself, ``Tensor`` is PyTorch's legacy constructor: ``Tensor([1, 2])`` copies data into the default
    float dtype (whatever the data's type), ``Tensor(3, 4)`` is an uninitialised 3 x 4 tensor, ``Tensor()`` an
    empty one, and ``Tensor(t)`` shares the data of the tensor ``t``."""

    # _version_cell: [in-place changes of the data, the process-wide change count at the last one], shared by
    # the tensors that share the data (detach(), views); autograd reads it to detect saved values changed since.
    # _base: the tensor this one is a view of (made by reshape, permute, indexing, expand), if any; _view_stamp: for
    # a view without a node, the count of in-place changes when it was made or last found up to date (negative,
    # -1 - count, for a view made under no_grad), see ``autograd.current_node``.
    # array: the NumPy (cpu) or CuPy (cuda) array of the values; _backward_hooks: a leaf's gradient hooks.
    __slots__ = ("array", "_grad", "_requires_grad", "_ctx", "_version_cell", "_base", "_view_stamp", "_retains_grad",
                 "_backward_hooks", "__weakref__")
    # Makes ``numpy_array * tensor`` call Tensor.__rmul__ instead of NumPy broadcasting over the tensor.
    __array_priority__ = 1000

    def __init__(self, *args, device=None):
        made = _legacy_new(args, None, device, "Tensor")
        self.array, self._grad, self._requires_grad, self._ctx, self._base = made.array, None, False, None, None
        self._version_cell = made._version

    @classmethod
    def _make(cls, data, requires_grad=False):
        """Wrap an array without copying or checking (internal fast path)."""
        t = object.__new__(cls)
        t.array, t._grad, t._requires_grad, t._ctx, t._base = data, None, requires_grad, None, None
        return t

    def __getstate__(self):
        """What copies and pickles carry: every slot but the gradient hooks (a copy starts without hooks, as
        in PyTorch; the hook table belongs to this tensor)."""
        slots = {name: getattr(self, name) for cls in type(self).__mro__ for name in getattr(cls, "__slots__", ())
                 if name not in ("_backward_hooks", "__weakref__") and hasattr(self, name)}
        return getattr(self, "__dict__", None), slots

    @property
    def data(self) -> "Tensor":
        """The values as a new tensor that shares this one's memory and is cut from autograd, as PyTorch's
        ``.data``: writes through it change this tensor unseen by autograd (``detach()`` is the checked form).
        Assigning a tensor replaces the values (``p.data = p.data - lr * p.grad``); unlike PyTorch, a graph
        recorded before the assignment keeps the values it saved. The raw NumPy or CuPy array is ``.array``."""
        return Tensor._make(self.array)

    @data.setter
    def data(self, value):
        if not isinstance(value, Tensor):
            raise TypeError(f"Tensor.data must be set to a Tensor, got {type(value).__name__} (the raw array "
                            f"is .array)")
        if self.requires_grad and value.dtype.kind != "f":
            raise RuntimeError(f"data set to a tensor that requires gradients must be floating point, got "
                               f"{value.dtype}")
        self.array = value.array

    @property
    def _version(self) -> list:
        """The version cell (made on first use: subclasses may fill the slots without calling __init__)."""
        try:
            return self._version_cell
        except AttributeError:
            self._version_cell = [0, 0]
            return self._version_cell

    @property
    def requires_grad(self) -> bool:
        """Whether backward computes a gradient for this tensor. A view made while its base required no grad
        requires grad once the base took a history by an in-place change (``v = buf[0]; buf.copy_(w)``), as in
        PyTorch."""
        if self._requires_grad:
            return True
        if self._ctx is not None or getattr(self, "_base", None) is None:
            return False
        return autograd.stale_view_root(self) is not None

    @requires_grad.setter
    def requires_grad(self, value):
        self._requires_grad = value

    @property
    def grad(self):
        """The gradient accumulated by backward(): None or a tensor of this tensor's shape, dtype and device."""
        try:
            return self._grad
        except AttributeError:
            return None

    @grad.setter
    def grad(self, value):
        if value is not None:
            if not isinstance(value, Tensor):
                raise TypeError(f"grad must be a Tensor or None, got {type(value).__name__}")
            if value.shape != self.shape:
                raise RuntimeError(f"can't assign a gradient of shape {value.shape} to a tensor of shape {self.shape}")
            if value.dtype != self.dtype:
                raise RuntimeError(f"can't assign a gradient of dtype {value.dtype} to a tensor of dtype {self.dtype}")
            if value.device != self.device:
                raise RuntimeError(f"can't assign a gradient on {value.device} to a tensor on {self.device}")
        self._grad = value

    # ---- properties -------------------------------------------------------------------------------
    @property
    def shape(self) -> tuple:
        return self.array.shape

    @property
    def ndim(self) -> int:
        return self.array.ndim

    @property
    def dtype(self) -> np.dtype:
        return self.array.dtype

    @property
    def device(self) -> Device:
        """Where the data lives: ``device(type='cpu')`` or ``device(type='cuda', index=0)``, a ``str`` equal to
        "cpu" or "cuda"."""
        return device_of(self.array)

    @property
    def is_leaf(self) -> bool:
        return self.grad_fn is None

    @property
    def grad_fn(self):
        """The node that made this tensor's values (a view whose base changed in place since gets a new one, see
        ``autograd.current_node``), None for a leaf."""
        return autograd.current_node(self)

    @property
    def is_cuda(self) -> bool:
        return self.device == "cuda"

    @property
    def T(self) -> Tensor:
        return self.permute(*reversed(range(self.ndim)))

    def size(self, dim=None):
        return self.shape if dim is None else self.shape[dim]

    def dim(self) -> int:
        return self.ndim

    def numel(self) -> int:
        return int(self.array.size)

    def nelement(self) -> int:
        return self.numel()

    def ndimension(self) -> int:
        return self.ndim

    def element_size(self) -> int:
        """Bytes per element."""
        return self.dtype.itemsize

    def is_floating_point(self) -> bool:
        return self.dtype.kind == "f"

    def is_contiguous(self) -> bool:
        """Whether the elements lie in memory in row-major order without gaps (not after a transpose or
        expand)."""
        return bool(self.array.flags.c_contiguous)

    def type(self, dtype=None, non_blocking=False):
        """Without an argument the type's name ("tensorlib.FloatTensor", "tensorlib.cuda.LongTensor", ...);
        with a dtype, a type such as ``tl.DoubleTensor`` or such a name, the tensor cast to it (itself when it
        already is)."""
        if dtype is None:
            return ("tensorlib.cuda." if self.device == "cuda" else "tensorlib.") + _TENSOR_TYPES[self.dtype].__name__
        if isinstance(dtype, str):
            dtype = _tensor_type_named(dtype)
        if isinstance(dtype, _TensorType):
            return self.to(dtype.device, dtype.dtype)
        if not _is_dtype_like(dtype):
            raise TypeError(f"type: dtype must be a dtype, a tensor type or its name, got {dtype!r}")
        return self.to(dtype)

    def __len__(self):
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.shape[0]

    # ---- conversion -------------------------------------------------------------------------------
    def numpy(self, *, force=False) -> np.ndarray:
        """The data as a NumPy array (shares memory on the CPU). Refused while the tensor requires grad, unless
        ``force``, which reads it detached (as PyTorch's ``numpy(force=True)``)."""
        if self.requires_grad and not force:
            raise RuntimeError("can't call numpy() on a tensor that requires grad; use tensor.detach().numpy()")
        return move(self.array, "cpu")

    def item(self):
        if self.array.size != 1:
            raise ValueError(f"item() needs a tensor with one element, got shape {self.shape}")
        return self.array.reshape(()).item()

    def tolist(self):
        return move(self.array, "cpu").tolist()

    def detach(self) -> Tensor:
        """The same data without a graph (shares memory, and the in-place version count, with this tensor)."""
        detached = Tensor._make(self.array)
        detached._version_cell = self._version
        return detached

    def detach_(self) -> Tensor:
        """This tensor taken out of the graph that made it, in place: it becomes a leaf that requires no grad.
        Refused for a view, as in PyTorch (its history is its base's)."""
        if getattr(self, "_base", None) is not None:
            raise RuntimeError("detach_() can't detach a view (of reshape, permute, indexing, expand) in place; use "
                               "detach(), which returns a new tensor")
        self._ctx, self._requires_grad = None, False
        return self

    def clone(self) -> Tensor:
        """A copy of the data that gradients flow through."""
        return _ops.clone(self)

    def register_hook(self, hook):
        """Call ``hook(grad)`` whenever this tensor's gradient is computed; a tensor it returns replaces the
        gradient. Returns a handle whose ``remove()`` takes the hook off (see ``autograd.register_hook``).
        Copies and pickles of the tensor start without hooks, as in PyTorch."""
        return autograd.register_hook(self, hook)

    def retain_grad(self) -> None:
        """Keep ``.grad`` on this non-leaf tensor after backward (leaves keep theirs anyway)."""
        if not self.requires_grad:
            raise RuntimeError("retain_grad() on a tensor that does not require grad")
        if self._ctx is not None:
            self._retains_grad = True

    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        if requires_grad and self.dtype.kind != "f":
            raise RuntimeError(f"only floating-point tensors can require gradients, got dtype {self.dtype}")
        if not requires_grad and self._ctx is not None:
            raise RuntimeError("requires_grad_(False) applies to leaf tensors only; use detach()")
        self.requires_grad = requires_grad
        return self

    def to(self, *args, dtype=None, device=None, non_blocking=False, copy=False) -> Tensor:
        """``to("cuda")``, ``to(tl.device("cuda"))``, ``to(tl.float64)``, ``to("cpu", tl.float32)``, ``to(other)``
        (other's device and dtype): a differentiable move/cast, this tensor itself when nothing changes (unless
        ``copy=True``). Transfers are synchronous: ``non_blocking`` is accepted for PyTorch's signature."""
        if args and isinstance(args[0], Tensor):
            if len(args) > 1 or dtype is not None or device is not None:
                raise TypeError("to(other) takes no device or dtype besides the tensor whose ones it copies")
            device, dtype = args[0].device, args[0].dtype
            args = ()
        for arg in args:
            if isinstance(arg, str):
                device = arg
            elif arg is not None and _is_dtype_like(arg):
                dtype = arg
            elif arg is not None:
                raise TypeError(f"to() takes a device, a dtype or a tensor, got {type(arg).__name__} {arg!r}")
        from tensorlib.ops.shape import ToDevice

        device = normalize_device(device) if device is not None else self.device
        dtype = np.dtype(dtype) if dtype is not None else self.dtype
        if device == self.device and dtype == self.dtype:
            return _ops.clone(self) if copy else self
        source = self if dtype.kind == "f" else self.detach()  # integer results carry no gradient
        return ToDevice.apply(source, device, dtype)

    def cpu(self) -> Tensor:
        return self.to("cpu")

    def cuda(self, device=None, non_blocking=False) -> Tensor:
        """The tensor on "cuda" (``device``: an index, "cuda:0" or a device; None: the current one). Transfers are
        synchronous: ``non_blocking`` is accepted for PyTorch's signature."""
        return self.to("cuda" if device is None else f"cuda:{device}" if isinstance(device, int) else device)

    def float(self) -> Tensor:
        return self.to(float32)

    def double(self) -> Tensor:
        return self.to(float64)

    def half(self) -> Tensor:
        return self.to(float16)

    def int(self) -> Tensor:
        return self.to(int32)

    def long(self) -> Tensor:
        return self.to(int64)

    def bool(self) -> Tensor:
        return self.to(bool_)

    def type_as(self, other: Tensor) -> Tensor:
        return self.to(other.dtype)

    # ---- creation with this tensor's dtype and device (either can be overridden) -----------------
    def new_tensor(self, data, dtype=None, device=None, requires_grad=False) -> Tensor:
        return tensor(data, dtype=dtype or self.dtype, device=device or self.device, requires_grad=requires_grad)

    def new_zeros(self, *sizes, size=None, dtype=None, device=None, requires_grad=False) -> Tensor:
        return zeros(_shape._dims_arg(sizes, size, "size", "new_zeros"), dtype=dtype or self.dtype,
                     device=device or self.device, requires_grad=requires_grad)

    def new_ones(self, *sizes, size=None, dtype=None, device=None, requires_grad=False) -> Tensor:
        return ones(_shape._dims_arg(sizes, size, "size", "new_ones"), dtype=dtype or self.dtype,
                    device=device or self.device, requires_grad=requires_grad)

    def new_empty(self, *sizes, size=None, dtype=None, device=None, requires_grad=False) -> Tensor:
        return empty(_shape._dims_arg(sizes, size, "size", "new_empty"), dtype=dtype or self.dtype,
                     device=device or self.device, requires_grad=requires_grad)

    def new_full(self, size, fill_value, dtype=None, device=None, requires_grad=False) -> Tensor:
        return full(size, fill_value, dtype=dtype or self.dtype, device=device or self.device,
                    requires_grad=requires_grad)

    def __array__(self, dtype=None, copy=None):
        if self.requires_grad:
            raise RuntimeError("can't convert a tensor that requires grad to an array; use tensor.detach()")
        if copy is False and self.device != "cpu":
            raise ValueError(f"a tensor on {self.device} cannot be seen as a NumPy array without a copy (copy=False)")
        array = move(self.array, "cpu")
        if dtype is not None and array.dtype != dtype:
            return array.astype(dtype)
        return array.copy() if copy and array is self.array else array  # copy=True: never this tensor's memory

    def __bool__(self):
        if self.array.size != 1:
            raise RuntimeError(f"the truth value of a tensor with {self.array.size} elements is ambiguous")
        return bool(self.array.reshape(()))

    def __float__(self):
        return float(self.item())

    def __int__(self):
        return int(self.item())

    def __index__(self):
        if self.dtype.kind not in "iu" or self.array.size != 1:
            raise TypeError("only integer tensors of a single element can be converted to an index")
        return int(self.item())

    def __format__(self, spec):
        """A 0-d tensor formats as its number (``f"{loss:.4f}"``); any other only with an empty spec, as in
        PyTorch."""
        if self.ndim == 0:
            return format(self.item(), spec)
        return object.__format__(self, spec)

    __hash__ = object.__hash__

    def __repr__(self):
        suffixes = []
        if self.device != "cpu":
            suffixes.append(f"device='{self.device}'")
        if self.numel() == 0:
            body = "[]"
            if self.ndim != 1:
                suffixes.append(f"size={self.shape}")
            if self.dtype != _default_dtype:
                suffixes.append(f"dtype={self.dtype}")
        else:
            body = _array_text(self.array, indent=len("tensor("))
            if self.dtype not in (_default_dtype, int64, bool_):
                suffixes.append(f"dtype={self.dtype}")
        if self._ctx is not None:
            suffixes.append(f"grad_fn=<{self._ctx.name}>")
        elif self.requires_grad:
            suffixes.append("requires_grad=True")
        return _with_suffixes("tensor(" + body, suffixes, indent=len("tensor("))

    # ---- autograd ---------------------------------------------------------------------------------
    def backward(self, gradient=None, retain_graph: bool = False, create_graph: bool = False, inputs=None):
        """Accumulate d(self)/d(leaf) * gradient into ``.grad`` of every leaf that requires grad (of the tensors
        in ``inputs`` only, when given). Higher-order gradients (``create_graph=True``) are not supported."""
        if create_graph:
            raise NotImplementedError("backward(create_graph=True): higher-order gradients are not supported")
        if inputs is not None:
            inputs = [inputs] if isinstance(inputs, Tensor) else list(inputs)
            grads = autograd.grad(self, inputs, gradient, retain_graph=retain_graph, allow_unused=True)
            for t, g in zip(inputs, grads):
                if g is not None:
                    autograd._accumulate_leaf(t, g.array)
            return
        grad = autograd.output_gradient(self, gradient, "backward(): the output")
        autograd.run_backward(self, grad, retain_graph=retain_graph)

    # ---- in-place ops ------------------------------------------------------------------------------
    # They write into ``array`` itself, so every tensor sharing it sees the change, and count it in the version
    # cell: backward refuses a graph whose saved values were changed since (PyTorch's rule). A leaf that requires
    # grad, or a view of one, can be changed in place only under no_grad(), as an optimizer does. Otherwise, while
    # autograd records and a gradient is wanted, the change becomes the tensor's history: a node for the new values
    # takes the tensor's place in the graph, and a stand-in for the old values keeps the old node. A change through
    # a view (indexing, reshape, permute, expand) becomes the history of the tensor the view is of, its base, as in
    # PyTorch: the base's new node (IndexPut) writes the view's new values into the base's old ones, and the view
    # then reads its values from the base (ViewOfBase).
    def _check_inplace(self, name):
        if self._requires_grad and self._ctx is None and autograd.is_grad_enabled():
            raise RuntimeError(
                f"{name}: a leaf tensor that requires grad is used in an in-place operation; wrap it in no_grad()"
            )

    def _root(self):
        """The tensor whose memory this one is a view of, through any chain of views; None if this is no view."""
        root, base = None, getattr(self, "_base", None)
        while base is not None:
            root, base = base, getattr(base, "_base", None)
        return root

    def _recorded(self, name, *operands) -> bool:
        """Whether autograd records an in-place change of this tensor by ``operands``, after refusing the changes
        PyTorch refuses (of a leaf that requires grad, or of a view of one). Writes into an integer or bool tensor
        are not recorded (it cannot require grad)."""
        if not autograd.is_grad_enabled():
            return False
        self._check_inplace(name)
        if self.dtype.kind != "f":
            return False
        wanted = self.requires_grad or any(isinstance(o, Tensor) and o.requires_grad for o in operands)
        root = self._root()
        if root is not None and root.requires_grad:
            if root._ctx is None:
                raise RuntimeError(f"{name}: a view of a leaf tensor that requires grad is used in an in-place "
                                   "operation; wrap it in no_grad()")
            wanted = True
        if wanted and getattr(self._ctx, "view_output", None) is not None:
            raise RuntimeError(f"{name}: {self._ctx.view_output} is a view (an input returned as it is, or a view made "
                               "in forward) changed in place while autograd records: the function's backward would "
                               "not see the change, which is refused as in PyTorch; clone() the output first")
        if wanted and root is not None and self._ctx is None and self._view_stamp < 0:
            raise RuntimeError(f"{name}: a view made under no_grad() is changed in place while autograd records; "
                               "make the view and the change both inside no_grad() (the change unrecorded) or both "
                               "outside it (recorded)")
        return wanted

    def _stand_in(self) -> Tensor:
        """A tensor for this one's values before an in-place change: same memory, version cell and node."""
        old = Tensor._make(self.array, requires_grad=self._requires_grad)
        old._ctx, old._version_cell = self._ctx, self._version
        return old

    def _take_node(self, node, old):
        """Make ``node`` the history of this tensor's values (changed in place); ``old``, the stand-in for the
        values before, keeps the old node (a retain_grad() stays with this tensor, so moves on to the new one)."""
        autograd.attach(node, self, old)

    def _read_from(self, root, layout=None):
        """Give this view of ``root`` a node reading its values from root as it is now (where ``layout``, worked
        out when not given, places them), while autograd records."""
        node = _shape.ViewOfBase.apply(root, self.array, layout or _shape.Layout(self.array, root.array))._ctx
        if node is not None:
            autograd.attach(node, self)

    def _write_recorded(self, root, old, value, index, layout):
        """Write ``value`` at ``index`` of ``root`` (this tensor) or of this view of root (whose ``layout`` in root
        is given), recorded: root's new node is an IndexPut on ``old``, the stand-in for its values before, and the
        views from this one down to root read their values from root again."""
        written = _shape.IndexPut.apply(old, value, index, layout)
        root._changed()
        if written._ctx is not None:
            root._take_node(written._ctx, old)
        view = self
        while view is not root:
            view._read_from(root, layout if view is self else None)
            view = view._base
        return self

    def _store(self, index, value):
        """``array[index] = value`` (every element for ``index`` None) into this tensor's memory; for a view NumPy
        marks read-only (expand()'s result and its views), through the array of the tensor it is a view of."""
        array = self.array
        try:
            if index is None:
                array[...] = value
            else:
                _shape.index_write(array, index, value)
        except ValueError:  # CuPy's flags have no writeable field: its arrays are writable
            root = self._root()
            if getattr(array.flags, "writeable", True) or root is None:
                raise
            array = _shape.Layout(array, root.array).region(root.array)
            if index is None:
                array[...] = value
            else:
                _shape.index_write(array, index, value)

    def _check_written_region(self, name, index, record):
        """Refuse, as PyTorch does, to write elementwise into elements that share one memory location (of an
        expand() view, whose array has a stride 0: the callers look first): copies, in-place ops and writes while
        autograd records. Filling all of them with one value (zero_, fill_) and, unrecorded, writing at an index
        array or a mask are allowed."""
        array = self.array
        if index is None:
            region = None if not record and name in ("zero_", "fill_") else array
        elif _shape.is_basic(index):
            region = array[index]
        else:
            region = array if record else None
        if region is not None and _shape.overlaps(region):
            raise RuntimeError(f"{name}: more than one element of the written-to tensor (shape {self.shape}, strides "
                               f"{self.stride()}) refers to a single memory location, as in an expand() view: it is "
                               "read-only to such writes, as in PyTorch; clone() the tensor first")

    def _changed(self) -> Tensor:
        autograd.note_change(self._version)
        return self

    def _write(self, name, index, value) -> Tensor:
        """``self[index] = value`` (every element for ``index`` None): ``value`` a number, an array or a tensor of
        either device, broadcast and cast to this tensor's shape and dtype. Recorded by autograd when a gradient is
        wanted, as PyTorch does: the values written get the gradient at their positions (summed down to value's
        shape, cast to its dtype and moved to its device), the old values the gradient elsewhere."""
        if not self._recorded(name, value):
            value = self._assignable(value)
            if index is None:
                if 0 in self.array.strides:
                    self._check_written_region(name, None, False)
                self._store(None, value)
            else:
                index = _shape.prepare_index(index, self.shape, self.device)
                if 0 in self.array.strides:
                    self._check_written_region(name, index, False)
                self._store(index, value)
            return self._changed()
        if isinstance(value, Tensor):
            value = value.to(self.device)  # differentiable: the gradient goes back to value's device
        else:
            value = self._assignable(value)
        if index is not None:
            index = _shape.prepare_index(index, self.shape, self.device)
        if 0 in self.array.strides:
            self._check_written_region(name, index, True)
        index = (Ellipsis,) if index is None else index
        root = self._root()
        if root is None:
            return self._write_recorded(self, self._stand_in(), value, index, None)
        return self._write_recorded(root, root._stand_in(), value, index, _shape.Layout(self.array, root.array))

    def zero_(self) -> Tensor:
        """Every element set to 0; recorded by autograd as a write (no gradient reaches the old values)."""
        return self._write("zero_", None, 0)

    def fill_(self, value) -> Tensor:
        """Every element set to ``value``: a number or a 0-d tensor (from either device), which gets the summed
        gradient when it requires grad."""
        if isinstance(value, Tensor) and value.ndim != 0:
            raise RuntimeError(f"fill_ takes a number or a 0-d tensor, got a tensor of shape {value.shape}")
        return self._write("fill_", None, value)

    def copy_(self, other, non_blocking=False) -> Tensor:
        """Overwrite the data in place with ``other`` (broadcast to this shape, cast to this dtype, moved to this
        device). Recorded by autograd: the gradient goes to ``other`` (summed back to its shape, cast to its dtype),
        none to the old values. Transfers are synchronous: ``non_blocking`` is accepted for PyTorch's signature."""
        return self._write("copy_", None, other)

    def __setitem__(self, index, value):
        """``self[index] = value``, index read as PyTorch reads it; recorded by autograd as ``copy_`` is, for the
        indexed elements."""
        self._write("__setitem__", index, value)

    def _inplace(self, name, op, *operands) -> Tensor:
        """``self = op(self, *operands)`` written into this tensor's memory. Recorded by autograd when a gradient is
        wanted: the op then reads a stand-in holding this tensor's place in the graph before the change (for a view,
        a view of the stand-in of its base), and the result becomes this tensor's history (its base's)."""
        record = self._recorded(name, *operands)
        if 0 in self.array.strides:
            self._check_written_region(name, None, record)
        root = self._root() if record else None
        if root is not None:
            old = root._stand_in()
            layout = _shape.Layout(self.array, root.array)
            before = _shape.ViewOfBase.apply(old, self.array, layout)
        elif record:
            before = self._stand_in()
        else:
            before = self
        result = op(before, *operands)
        if record and result._ctx is not None:  # what the op saved of the old values must survive the write
            for key, value in list(vars(result._ctx).items()):
                if value is self.array:
                    setattr(result._ctx, key, value.copy())
        if result.shape != self.shape:
            raise RuntimeError(
                f"{name}: the result's broadcast shape {result.shape} does not fit this tensor's shape {self.shape}"
            )
        if result.dtype != self.dtype and not np.can_cast(result.dtype, self.dtype, "same_kind"):
            raise TypeError(f"{name}: a result of dtype {result.dtype} can't be stored in a tensor of dtype {self.dtype}")
        if result.device != self.device:
            raise RuntimeError(f"{name}: the result is on {result.device} but this tensor is on {self.device}")
        if root is not None:
            return self._write_recorded(root, old, result, (Ellipsis,), layout)
        self._store(None, result.array)
        self._changed()
        if record and result._ctx is not None:
            if result.dtype != self.dtype:  # the graph's output must have this tensor's dtype
                result = result.to(self.dtype)
            self._take_node(result._ctx, before)
        return self

    def add_(self, other, *, alpha=1):
        return self._inplace("add_", _ops.add, other if alpha == 1 else other * alpha)

    def sub_(self, other, *, alpha=1):
        return self._inplace("sub_", _ops.sub, other if alpha == 1 else other * alpha)

    def mul_(self, other):
        return self._inplace("mul_", _ops.mul, other)

    def div_(self, other, *, rounding_mode=None):
        return self._inplace("div_", functools.partial(_elementwise.div, rounding_mode=rounding_mode), other)

    def clamp_(self, min=None, max=None):
        return self._inplace("clamp_", _ops.clamp, min, max)

    def clamp_min_(self, min):
        return self._inplace("clamp_min_", _ops.clamp, min, None)

    def clamp_max_(self, max):
        return self._inplace("clamp_max_", _ops.clamp, None, max)

    def addcmul_(self, tensor1, tensor2, *, value=1):
        return self._inplace("addcmul_", functools.partial(_elementwise.addcmul, value=value), tensor1, tensor2)

    def addcdiv_(self, tensor1, tensor2, *, value=1):
        return self._inplace("addcdiv_", functools.partial(_elementwise.addcdiv, value=value), tensor1, tensor2)

    def tril_(self, diagonal=0):
        return self._inplace("tril_", _linalg.tril, diagonal)

    def triu_(self, diagonal=0):
        return self._inplace("triu_", _linalg.triu, diagonal)

    def scatter_(self, dim, index, src=None, *, value=None, reduce=None):
        return self._inplace("scatter_", functools.partial(_shape.scatter, reduce=reduce), dim, index, src, value)

    def scatter_add_(self, dim, index, src):
        return self._inplace("scatter_add_", _shape.scatter_add, dim, index, src)

    # ---- in-place random fills (from the global generator, or ``generator``) ---------------------------
    def _fill(self, name, values) -> Tensor:
        self._check_inplace(name)
        if self._ctx is not None and autograd.is_grad_enabled():
            raise RuntimeError(f"{name}: this tensor was made by a recorded op, which would not see the new values; "
                               "fill a detached tensor (detach()) or fill under no_grad()")
        self.array[...] = values
        return self._changed()

    def _check_floating(self, name):
        if self.dtype.kind != "f":
            raise TypeError(f"{name} needs a floating-point tensor, got dtype {self.dtype}")

    def normal_(self, mean=0.0, std=1.0, *, generator=None) -> Tensor:
        """Every element drawn from the normal distribution N(mean, std**2)."""
        self._check_floating("normal_")
        if std < 0:
            raise ValueError(f"normal_: std must be >= 0, got {std}")
        draws = _random.randn(self.shape, dtype=self.dtype, device=self.device, generator=generator)
        return self._fill("normal_", draws.array * std + mean)

    def uniform_(self, from_=0.0, to=1.0, *, generator=None) -> Tensor:
        """Every element drawn uniformly from [from_, to)."""
        self._check_floating("uniform_")
        if from_ > to:
            raise ValueError(f"uniform_: from_ must be <= to, got from_={from_} > to={to}")
        draws = _random.rand(self.shape, dtype=self.dtype, device=self.device, generator=generator)
        return self._fill("uniform_", draws.array * (to - from_) + from_)

    def bernoulli_(self, p=0.5, *, generator=None) -> Tensor:
        """Every element 1 with probability ``p`` (a number, or a tensor broadcast to this shape), else 0. A
        tensor p is checked to lie in [0, 1] on the cpu only: on cuda the check would read the device each call
        (PyTorch checks there only in a kernel assertion); there p < 0 draws 0 and p > 1 draws 1."""
        if isinstance(p, Tensor):
            if not _broadcasts_to(p.shape, self.shape):
                raise ValueError(f"bernoulli_: p of shape {p.shape} does not broadcast to this tensor's shape "
                                 f"{self.shape}")
            outside = p.device == "cpu" and p.numel() and not bool(((p.array >= 0) & (p.array <= 1)).all())
            probability, shown = move(p.array, self.device), "a tensor with values outside it"
        else:
            probability, outside, shown = p, not 0 <= p <= 1, p
        if outside:
            raise ValueError(f"bernoulli_: p must be in [0, 1], got {shown}")
        draws = _random.rand(self.shape, dtype=float64, device=self.device, generator=generator)
        return self._fill("bernoulli_", draws.array < probability)

    def relu_(self):
        return self._inplace("relu_", _ops.relu)

    def neg_(self):
        return self._inplace("neg_", _ops.neg)

    def abs_(self):
        return self._inplace("abs_", _ops.abs)

    def exp_(self):
        return self._inplace("exp_", _ops.exp)

    def log_(self):
        return self._inplace("log_", _ops.log)

    def sqrt_(self):
        return self._inplace("sqrt_", _ops.sqrt)

    def sigmoid_(self):
        return self._inplace("sigmoid_", _ops.sigmoid)

    def tanh_(self):
        return self._inplace("tanh_", _ops.tanh)

    def sin_(self):
        return self._inplace("sin_", _elementwise.sin)

    def cos_(self):
        return self._inplace("cos_", _elementwise.cos)

    def reciprocal_(self):
        return self._inplace("reciprocal_", _elementwise.reciprocal)

    def rsqrt_(self):
        return self._inplace("rsqrt_", _elementwise.rsqrt)

    def square_(self):
        return self._inplace("square_", _elementwise.square)

    def floor_(self):
        return self._inplace("floor_", _elementwise.floor)

    def ceil_(self):
        return self._inplace("ceil_", _elementwise.ceil)

    def round_(self, decimals=0):
        return self._inplace("round_", _elementwise.round, decimals)

    def trunc_(self):
        return self._inplace("trunc_", _elementwise.trunc)

    def sign_(self):
        return self._inplace("sign_", _elementwise.sign)

    def pow_(self, exponent):
        return self._inplace("pow_", _ops.pow, exponent)

    def lerp_(self, end, weight):
        return self._inplace("lerp_", _elementwise.lerp, end, weight)

    def masked_fill_(self, mask, value):
        return self._inplace("masked_fill_", _elementwise.masked_fill, mask, value)

    __iadd__ = add_
    __isub__ = sub_
    __imul__ = mul_
    __itruediv__ = div_

    def _assignable(self, value):
        """``value`` (a number, a Tensor on either device, an array or a list) as something this tensor's
        array takes in an assignment: numbers as they are, the rest copied to this tensor's device (CuPy
        refuses host arrays there)."""
        value = value.array if isinstance(value, Tensor) else value
        return value if isinstance(value, numbers.Number) else move(value, self.device)

    # ---- operators --------------------------------------------------------------------------------
    def __add__(self, other):
        return _ops.add(self, other)

    def __radd__(self, other):
        return _ops.add(other, self)

    def __sub__(self, other):
        return _ops.sub(self, other)

    def __rsub__(self, other):
        return _ops.sub(other, self)

    def __mul__(self, other):
        return _ops.mul(self, other)

    def __rmul__(self, other):
        return _ops.mul(other, self)

    def __truediv__(self, other):
        return _ops.div(self, other)

    def __rtruediv__(self, other):
        return _ops.div(other, self)

    def __pow__(self, other):
        return _ops.pow(self, other)

    def __rpow__(self, other):
        return _ops.pow(other, self)

    def __floordiv__(self, other):
        return _ops.floor_divide(self, other)

    def __rfloordiv__(self, other):
        return _ops.floor_divide(other, self)

    def __mod__(self, other):
        return _ops.remainder(self, other)

    def __rmod__(self, other):
        return _ops.remainder(other, self)

    def __matmul__(self, other):
        return _ops.matmul(self, other)

    def __rmatmul__(self, other):
        return _ops.matmul(other, self)

    def __neg__(self):
        return _ops.neg(self)

    def __pos__(self):
        return self

    def __abs__(self):
        return _ops.abs(self)

    def __eq__(self, other):
        if other is None or isinstance(other, str):  # not comparable: Python's answer (False), as PyTorch's
            return NotImplemented
        return _ops.compare("eq", self, other)

    def __ne__(self, other):
        if other is None or isinstance(other, str):
            return NotImplemented
        return _ops.compare("ne", self, other)

    def __lt__(self, other):
        return _ops.compare("lt", self, other)

    def __le__(self, other):
        return _ops.compare("le", self, other)

    def __gt__(self, other):
        return _ops.compare("gt", self, other)

    def __ge__(self, other):
        return _ops.compare("ge", self, other)

    def __and__(self, other):
        return _ops.logical("and", self, other)

    def __or__(self, other):
        return _ops.logical("or", self, other)

    def __xor__(self, other):
        return _ops.logical("xor", self, other)

    def __invert__(self):
        return _elementwise.bitwise_not(self)

    def __getitem__(self, index):
        return _ops.getitem(self, index)

    # ---- methods (the ops themselves live in tensorlib.ops) ----------------------------------------
    def eq(self, other):
        return _ops.compare("eq", self, other)

    def ne(self, other):
        return _ops.compare("ne", self, other)

    def lt(self, other):
        return _ops.compare("lt", self, other)

    def le(self, other):
        return _ops.compare("le", self, other)

    def gt(self, other):
        return _ops.compare("gt", self, other)

    def ge(self, other):
        return _ops.compare("ge", self, other)

    def isnan(self):
        return _elementwise.isnan(self)

    def isinf(self):
        return _elementwise.isinf(self)

    def isfinite(self):
        return _elementwise.isfinite(self)

    def isclose(self, other, rtol=1e-05, atol=1e-08, equal_nan=False):
        return _elementwise.isclose(self, other, rtol, atol, equal_nan)

    def allclose(self, other, rtol=1e-05, atol=1e-08, equal_nan=False) -> bool:
        return _elementwise.allclose(self, other, rtol, atol, equal_nan)

    def equal(self, other) -> bool:
        return _elementwise.equal(self, other)

    def neg(self):
        return _ops.neg(self)

    negative = neg

    def sign(self):
        return _elementwise.sign(self)

    def floor(self):
        return _elementwise.floor(self)

    def ceil(self):
        return _elementwise.ceil(self)

    def round(self, decimals=0):
        return _elementwise.round(self, decimals)

    def trunc(self):
        return _elementwise.trunc(self)

    def reciprocal(self):
        return _elementwise.reciprocal(self)

    def rsqrt(self):
        return _elementwise.rsqrt(self)

    def square(self):
        return _elementwise.square(self)

    def sin(self):
        return _elementwise.sin(self)

    def cos(self):
        return _elementwise.cos(self)

    def masked_fill(self, mask, value):
        return _elementwise.masked_fill(self, mask, value)

    def where(self, condition, other):
        """``self`` where ``condition`` holds, else ``other``."""
        return _ops.where(condition, self, other)

    def lerp(self, end, weight):
        return _elementwise.lerp(self, end, weight)

    def exp(self):
        return _ops.exp(self)

    def log(self):
        return _ops.log(self)

    def expm1(self):
        return _ops.expm1(self)

    def log1p(self):
        return _ops.log1p(self)

    def erf(self):
        return _ops.erf(self)

    def sqrt(self):
        return _ops.sqrt(self)

    def abs(self):
        return _ops.abs(self)

    def tanh(self):
        return _ops.tanh(self)

    def sigmoid(self):
        return _ops.sigmoid(self)

    def relu(self):
        return _ops.relu(self)

    def clamp(self, min=None, max=None):
        return _ops.clamp(self, min, max)

    clip = clamp

    def clamp_min(self, min):
        return _ops.clamp(self, min, None)

    def clamp_max(self, max):
        return _ops.clamp(self, None, max)

    def addcmul(self, tensor1, tensor2, *, value=1):
        return _elementwise.addcmul(self, tensor1, tensor2, value=value)

    def addcdiv(self, tensor1, tensor2, *, value=1):
        return _elementwise.addcdiv(self, tensor1, tensor2, value=value)

    def maximum(self, other):
        return _ops.maximum(self, other)

    def minimum(self, other):
        return _ops.minimum(self, other)

    def pow(self, exponent):
        return _ops.pow(self, exponent)

    def matmul(self, other):
        return _ops.matmul(self, other)

    def mm(self, mat2):
        return _ops.mm(self, mat2)

    def bmm(self, mat2):
        return _ops.bmm(self, mat2)

    def dot(self, tensor):
        return _linalg.dot(self, tensor)

    def outer(self, vec2):
        return _linalg.outer(self, vec2)

    def tril(self, diagonal=0):
        return _linalg.tril(self, diagonal)

    def triu(self, diagonal=0):
        return _linalg.triu(self, diagonal)

    def diag(self, diagonal=0):
        return _linalg.diag(self, diagonal)

    def trace(self):
        return _linalg.trace(self)

    def t(self):
        """The transpose of a matrix (a 0-d or 1-D tensor as it is), as torch.Tensor.t."""
        if self.ndim > 2:
            raise ValueError(f"t() expects a tensor of at most 2 dimensions, got shape {self.shape}; use transpose()")
        return self.transpose(0, 1) if self.ndim == 2 else self

    def gather(self, dim, index, *, sparse_grad=False):
        return _ops.gather(self, dim, index, sparse_grad=sparse_grad)

    def scatter(self, dim, index, src=None, *, value=None, reduce=None):
        return _shape.scatter(self, dim, index, src, value, reduce=reduce)

    def scatter_add(self, dim, index, src):
        return _shape.scatter_add(self, dim, index, src)

    def cumsum(self, dim, *, dtype=None):
        return _reduce.cumsum(self, dim, dtype=dtype)

    def logsumexp(self, dim, keepdim=False):
        return _ops.logsumexp(self, dim, keepdim)

    def sum(self, dim=None, keepdim=False, *, dtype=None, axis=None):
        return _reduce.sum(self, dim, keepdim, dtype=dtype, axis=axis)

    def mean(self, dim=None, keepdim=False, *, dtype=None, axis=None):
        return _reduce.mean(self, dim, keepdim, dtype=dtype, axis=axis)

    def var(self, dim=None, unbiased=None, keepdim=False, *, correction=None):
        return _ops.var(self, dim, unbiased, keepdim, correction=correction)

    def std(self, dim=None, unbiased=None, keepdim=False, *, correction=None):
        return _ops.std(self, dim, unbiased, keepdim, correction=correction)

    def max(self, dim=None, keepdim=False, *, other=None, axis=None):
        return _reduce.max(self, dim, keepdim, other=other, axis=axis)

    def min(self, dim=None, keepdim=False, *, other=None, axis=None):
        return _reduce.min(self, dim, keepdim, other=other, axis=axis)

    def amax(self, dim=(), keepdim=False):
        return _reduce.amax(self, dim, keepdim)

    def amin(self, dim=(), keepdim=False):
        return _reduce.amin(self, dim, keepdim)

    def prod(self, dim=None, keepdim=False, *, dtype=None):
        return _reduce.prod(self, dim, keepdim, dtype=dtype)

    def norm(self, p="fro", dim=None, keepdim=False, dtype=None):
        return _reduce.norm(self, p, dim, keepdim, dtype)

    def median(self, dim=None, keepdim=False):
        return _reduce.median(self, dim, keepdim)

    def count_nonzero(self, dim=None):
        return _reduce.count_nonzero(self, dim)

    def nonzero(self, *, as_tuple=False):
        return _reduce.nonzero(self, as_tuple=as_tuple)

    def unique(self, sorted=True, return_inverse=False, return_counts=False, dim=None):
        return _reduce.unique(self, sorted, return_inverse, return_counts, dim)

    def bincount(self, weights=None, minlength=0):
        return _reduce.bincount(self, weights, minlength)

    def any(self, dim=None, keepdim=False):
        return _reduce.any(self, dim, keepdim)

    def all(self, dim=None, keepdim=False):
        return _reduce.all(self, dim, keepdim)

    def sort(self, dim=-1, descending=False, *, stable=False):
        return _reduce.sort(self, dim, descending, stable=stable)

    def argsort(self, dim=-1, descending=False, *, stable=False):
        return _reduce.argsort(self, dim, descending, stable=stable)

    def topk(self, k, dim=-1, largest=True, sorted=True):
        return _reduce.topk(self, k, dim, largest, sorted)

    def argmax(self, dim=None, keepdim=False):
        return _ops.argmax(self, dim, keepdim)

    def argmin(self, dim=None, keepdim=False):
        return _ops.argmin(self, dim, keepdim)

    def softmax(self, dim, dtype=None):
        return _reduce.softmax(self, dim, dtype)

    def log_softmax(self, dim, dtype=None):
        return _reduce.log_softmax(self, dim, dtype)

    def reshape(self, *args, shape=None):
        return _ops.reshape(self, *args, shape=shape)

    def view(self, *shape, size=None):
        """The same memory seen in another shape (``view(2, 3)``, ``view((2, 3))`` or ``view(size=(2, 3))``), as
        PyTorch's view: refused where the elements' layout cannot be read in that shape without a copy (after a
        transpose, say), where ``reshape`` copies."""
        out = _ops.reshape(self, *shape, shape=size)
        if getattr(out, "_base", None) is not self and self.numel():
            raise RuntimeError(
                f"view size {out.shape} is not compatible with input tensor's size {self.shape} and stride (at least one "
                "dimension spans across two contiguous subspaces). Use .reshape(...) instead."
            )
        return out

    def view_as(self, other):
        return self.view(other.shape)

    def permute(self, *args, dims=None):
        return _ops.permute(self, *args, dims=dims)

    def transpose(self, dim0, dim1):
        return _ops.transpose(self, dim0, dim1)

    def flatten(self, start_dim=0, end_dim=-1):
        return _ops.flatten(self, start_dim, end_dim)

    def squeeze(self, dim=None):
        return _ops.squeeze(self, dim)

    def unsqueeze(self, dim):
        return _ops.unsqueeze(self, dim)

    def expand(self, *sizes, size=None):
        return _ops.expand(self, *sizes, size=size)

    def expand_as(self, other):
        return _ops.expand(self, *other.shape)

    def unflatten(self, dim, sizes):
        return _shape.unflatten(self, dim, sizes)

    def movedim(self, source, destination):
        return _shape.movedim(self, source, destination)

    def swapaxes(self, axis0, axis1):
        return _ops.transpose(self, axis0, axis1)

    def swapdims(self, dim0, dim1):
        return _ops.transpose(self, dim0, dim1)

    def narrow(self, dim, start, length):
        return _shape.narrow(self, dim, start, length)

    def split(self, split_size, dim=0):
        return _shape.split(self, split_size, dim)

    def chunk(self, chunks, dim=0):
        return _shape.chunk(self, chunks, dim)

    def unbind(self, dim=0):
        return _shape.unbind(self, dim)

    def flip(self, *args, dims=None):
        return _shape.flip(self, *args, dims=dims)

    def roll(self, shifts, dims=None):
        return _shape.roll(self, shifts, dims)

    def repeat(self, *sizes, repeats=None):
        return _shape.repeat(self, *sizes, repeats=repeats)

    def index_select(self, dim, index):
        return _shape.index_select(self, dim, index)

    def contiguous(self):
        """This tensor if its elements are in row-major order, else a row-major copy (differentiable)."""
        return self if self.is_contiguous() else _ops.clone(self)

    # ---- more of PyTorch's methods: arithmetic with alpha and rounding modes, bitwise and logical ops, the
    # reductions' dtype= and axis= arguments, indexing and matrix helpers, casts, in-place operators ---------
    def add(self, other, *, alpha=1):
        return _elementwise.add(self, other, alpha=alpha)

    def sub(self, other, *, alpha=1):
        return _elementwise.sub(self, other, alpha=alpha)

    subtract = sub

    def mul(self, other):
        return _elementwise.mul(self, other)

    multiply = mul

    def div(self, other, *, rounding_mode=None):
        return _elementwise.div(self, other, rounding_mode=rounding_mode)

    divide = div

    def true_divide(self, other):
        return _elementwise.true_divide(self, other)

    def floor_divide(self, other):
        return _elementwise.floor_divide(self, other)

    def remainder(self, other):
        return _elementwise.remainder(self, other)

    def fmod(self, other):
        return _elementwise.fmod(self, other)

    def atan2(self, other):
        return _elementwise.atan2(self, other)

    def log2(self):
        return _elementwise.log2(self)

    def log10(self):
        return _elementwise.log10(self)

    def nan_to_num(self, nan=0.0, posinf=None, neginf=None):
        return _elementwise.nan_to_num(self, nan, posinf, neginf)

    def nan_to_num_(self, nan=0.0, posinf=None, neginf=None):
        return self._inplace("nan_to_num_", _elementwise.nan_to_num, nan, posinf, neginf)

    def logical_and(self, other):
        return _elementwise.logical_and(self, other)

    def logical_or(self, other):
        return _elementwise.logical_or(self, other)

    def logical_xor(self, other):
        return _elementwise.logical_xor(self, other)

    def logical_not(self):
        return _elementwise.logical_not(self)

    def bitwise_and(self, other):
        return _elementwise.bitwise_and(self, other)

    def bitwise_or(self, other):
        return _elementwise.bitwise_or(self, other)

    def bitwise_xor(self, other):
        return _elementwise.bitwise_xor(self, other)

    def bitwise_not(self):
        return _elementwise.bitwise_not(self)

    def __rand__(self, other):
        return _elementwise.bitwise_and(other, self)

    def __ror__(self, other):
        return _elementwise.bitwise_or(other, self)

    def __rxor__(self, other):
        return _elementwise.bitwise_xor(other, self)

    def __iand__(self, other):
        return self._inplace("bitwise_and_", _elementwise.bitwise_and, other)

    def __ior__(self, other):
        return self._inplace("bitwise_or_", _elementwise.bitwise_or, other)

    def __ixor__(self, other):
        return self._inplace("bitwise_xor_", _elementwise.bitwise_xor, other)

    def __ifloordiv__(self, other):
        return self._inplace("floor_divide_", _elementwise.floor_divide, other)

    def __imod__(self, other):
        return self._inplace("remainder_", _elementwise.remainder, other)

    def __ipow__(self, other):
        return self._inplace("pow_", _ops.pow, other)

    def __contains__(self, element):
        """Whether any element equals ``element``, a number or a tensor (broadcast against this one)."""
        if not isinstance(element, (Tensor, numbers.Number, np.generic)):
            raise TypeError(f"'in' takes a tensor or a number, got {type(element).__name__}")
        return bool((self == element).any())

    def cumprod(self, dim, *, dtype=None):
        return _reduce.cumprod(self, dim, dtype=dtype)

    def diagonal(self, offset=0, dim1=0, dim2=1):
        return _linalg.diagonal(self, offset, dim1, dim2)

    def mv(self, vec):
        return _linalg.mv(self, vec)

    def addmm(self, mat1, mat2, *, beta=1, alpha=1):
        return _linalg.addmm(self, mat1, mat2, beta=beta, alpha=alpha)

    @property
    def mT(self) -> Tensor:  # noqa: N802  (PyTorch's name)
        """The matrices of the last two dims transposed."""
        if self.ndim < 2:
            raise ValueError(f"mT needs a matrix or a batch of matrices, got a {self.ndim}-d tensor")
        return self.transpose(-2, -1)

    def masked_select(self, mask):
        return _ops.indexing.masked_select(self, mask)

    def take(self, index):
        return _ops.indexing.take(self, index)

    def repeat_interleave(self, repeats=None, dim=None, *, output_size=None):
        return _ops.indexing.repeat_interleave(self, repeats, dim, output_size=output_size)

    def tile(self, *args, dims=None):
        return _ops.indexing.tile(self, _shape._dims_arg(args, dims, "dims", "tile"))

    def broadcast_to(self, *shape, size=None):
        return _ops.indexing.broadcast_to(self, _shape._dims_arg(shape, size, "size", "broadcast_to"))

    def index_add(self, dim, index, source, *, alpha=1):
        return _ops.indexing.index_add(self, dim, index, source, alpha=alpha)

    def index_add_(self, dim, index, source, *, alpha=1):
        add = functools.partial(_ops.indexing.index_add, alpha=alpha)
        return self._inplace("index_add_", add, dim, index, source)

    def index_fill(self, dim, index, value):
        return _ops.indexing.index_fill(self, dim, index, value)

    def index_fill_(self, dim, index, value):
        return self._inplace("index_fill_", _ops.indexing.index_fill, dim, index, value)

    def multinomial(self, num_samples, replacement=False, *, generator=None):
        return _ops.creation.multinomial(self, num_samples, replacement, generator=generator)

    def stride(self, dim=None):
        """The step in elements between neighbours along each dim (0 along an expanded one), or along ``dim``."""
        strides = tuple(step // self.dtype.itemsize for step in self.array.strides)
        return strides if dim is None else strides[dim]

    def byte(self) -> Tensor:
        return self.to(uint8)

    def char(self) -> Tensor:
        return self.to(int8)

    def short(self) -> Tensor:
        return self.to(int16)


def _broadcasts_to(shape, target) -> bool:
    """Whether an array of ``shape`` broadcasts to ``target`` (without growing it)."""
    try:
        return np.broadcast_shapes(shape, target) == tuple(target)
    except ValueError:
        return False


# ---- printing, by PyTorch's rules ---------------------------------------------------------------------
_PRECISION, _THRESHOLD, _EDGEITEMS, _LINEWIDTH = 4, 1000, 3, 80


def _edges(array):
    """The elements a summarised print shows: the first and last ``_EDGEITEMS`` along each longer dim (slices
    joined on the array's own device, so only these cross to the host)."""
    xp = array_module(array)
    for axis, n in enumerate(array.shape):
        if n > 2 * _EDGEITEMS:
            before = (slice(None),) * axis
            ends = array[before + (slice(0, _EDGEITEMS),)], array[before + (slice(n - _EDGEITEMS, n),)]
            array = xp.concatenate(ends, axis=axis)
    return array


def _element_format(shown: np.ndarray):
    """(text, width): how each element prints, given the elements that will be shown; every element is then
    right-aligned to ``width``. Floats print with 4 decimals, as whole numbers ("3.") when every finite nonzero
    value is one, and in scientific notation when the finite nonzero magnitudes span more than 1000x, exceed
    1e8 or, not all whole, go below 1e-4."""
    values = shown.reshape(-1).tolist()
    if shown.dtype.kind != "f":
        return str, max(len(str(v)) for v in values)
    finite = [v for v in values if math.isfinite(v) and v != 0]
    magnitudes = [abs(v) for v in finite] or [1.0]
    whole = all(v == math.ceil(v) for v in finite)
    largest, smallest = max(magnitudes), min(magnitudes)
    if largest / smallest > 1000 or largest > 1e8 or (not whole and smallest < 1e-4):
        def text(v):
            return f"{v:.{_PRECISION}e}"
    elif whole:
        def text(v):
            return f"{v:.0f}." if math.isfinite(v) else f"{v}"
    else:
        def text(v):
            return f"{v:.{_PRECISION}f}"
    return text, max([len(text(v)) for v in finite], default=1)


def _array_text(array, indent: int) -> str:
    """The nested-list text of an array's elements (on either device), as PyTorch prints it after ``tensor(``
    (``indent`` characters): rows wrapped at 80 columns, and for more than 1000 elements only the first and last
    3 of each dim, with "..." between (only those elements are read from a device)."""
    summarize = array.size > _THRESHOLD
    cut = [summarize and n > 2 * _EDGEITEMS for n in array.shape]  # the dims printed as their two ends
    array = move(_edges(array) if summarize else array, "cpu")
    text, width = _element_format(array)

    def nested(a, indent):
        if a.ndim == 0:
            return text(a.item()).rjust(width)
        long = cut[array.ndim - a.ndim]
        if a.ndim == 1:
            items = [text(v).rjust(width) for v in (a[:_EDGEITEMS] if long else a).tolist()]
            if long:
                items += [" ..."] + [text(v).rjust(width) for v in a[-_EDGEITEMS:].tolist()]
            per_line = max(1, (_LINEWIDTH - indent) // (width + 2))
            lines = [", ".join(items[i:i + per_line]) for i in range(0, len(items), per_line)]
            return "[" + (",\n" + " " * (indent + 1)).join(lines) + "]"
        rows = list(range(_EDGEITEMS)) + [None] + list(range(len(a) - _EDGEITEMS, len(a))) if long else range(len(a))
        parts = ["..." if i is None else nested(a[i], indent + 1) for i in rows]
        return "[" + ("," + "\n" * (a.ndim - 1) + " " * (indent + 1)).join(parts) + "]"

    return nested(array, indent)


def _with_suffixes(text: str, suffixes: list, indent: int) -> str:
    """``text`` followed by ", suffix" for each suffix and ")"; a suffix that would pass 80 columns goes on a
    line of its own, indented."""
    parts = [text]
    line_length = len(text) - text.rfind("\n") + 1  # PyTorch's count, one past the line's last column
    for suffix in suffixes:
        if line_length + len(suffix) + 2 > _LINEWIDTH:
            parts.append(",\n" + " " * indent + suffix)
            line_length = indent + len(suffix)
        else:
            parts.append(", " + suffix)
            line_length += len(suffix) + 2
    return "".join(parts) + ")"


# ---- PyTorch's typed tensor constructors ---------------------------------------------------------------
def _legacy_new(args, dtype, device, name) -> Tensor:
    """PyTorch's legacy constructors (``Tensor(...)``, ``FloatTensor(...)``): ints are the size of an
    uninitialised tensor, one sequence or array is copied into ``dtype`` (None: the default float dtype), and
    a tensor (of that dtype) is shared, not copied."""
    target = dtype or _default_dtype
    if all(isinstance(a, (int, np.integer)) and not isinstance(a, (bool, np.bool_)) for a in args):
        return empty(*args, dtype=target, device=device) if args else empty(0, dtype=target, device=device)
    if len(args) > 1:
        raise TypeError(f"{name}() takes sizes (ints) or one sequence of data, got {args!r}")
    data = args[0]
    if isinstance(data, Tensor):
        if dtype is not None and data.dtype != dtype:
            raise TypeError(f"{name}(): expected a tensor of dtype {dtype}, got {data.dtype}; use .to({dtype})")
        if device is not None and data.device != normalize_device(device):
            raise RuntimeError(f"{name}(): the tensor is on {data.device}, not on the device={device!r} asked for")
        return data.detach()
    if isinstance(data, (numbers.Number, np.generic, str, bytes)):
        raise TypeError(f"{name}(): data must be a sequence or an array, got {type(data).__name__} {data!r}")
    return tensor(data, dtype=target, device=device)


class _TensorType:
    """``tl.FloatTensor``, ``tl.LongTensor``, ...: calling one is PyTorch's legacy constructor for its dtype
    (``LongTensor([1, 2])``, ``FloatTensor(2, 3)``); ``isinstance(t, tl.FloatTensor)`` tests a tensor's dtype
    and device; ``t.type(tl.DoubleTensor)`` casts to it."""

    def __init__(self, name, dtype, device="cpu"):
        self.__name__, self.dtype, self.device = name, dtype, device

    def __call__(self, *args, device=None):
        return _legacy_new(args, self.dtype, device, self.__name__)

    def __instancecheck__(self, instance):
        return isinstance(instance, Tensor) and instance.dtype == self.dtype and instance.device == self.device

    def __repr__(self):
        return f"<class 'tensorlib.{'cuda.' if self.device == 'cuda' else ''}{self.__name__}'>"


FloatTensor, DoubleTensor, HalfTensor = (_TensorType(n, d) for n, d in (
    ("FloatTensor", float32), ("DoubleTensor", float64), ("HalfTensor", float16)))
LongTensor, IntTensor, ShortTensor, CharTensor, ByteTensor, BoolTensor = (_TensorType(n, d) for n, d in (
    ("LongTensor", int64), ("IntTensor", int32), ("ShortTensor", int16), ("CharTensor", int8), ("ByteTensor", uint8),
    ("BoolTensor", bool_)))
_TENSOR_TYPES = {t.dtype: t for t in (FloatTensor, DoubleTensor, HalfTensor, LongTensor, IntTensor, ShortTensor,
                                      CharTensor, ByteTensor, BoolTensor)}
# the wider unsigned dtypes (of NumPy arrays) have PyTorch's type names too, without constructors of their own
_TENSOR_TYPES.update({np.dtype(f"uint{bits}"): _TensorType(f"UInt{bits}Tensor", np.dtype(f"uint{bits}"))
                      for bits in (16, 32, 64)})


def _tensor_type_named(name: str) -> _TensorType:
    """The type named "tensorlib.FloatTensor", "tensorlib.cuda.LongTensor", ... (PyTorch's "torch.FloatTensor"
    names as well)."""
    prefix, _, type_name = name.rpartition(".")
    found = {t.__name__: t for t in _TENSOR_TYPES.values()}.get(type_name)
    if found is None or prefix not in ("tensorlib", "torch", "tensorlib.cuda", "torch.cuda"):
        raise ValueError(f"type: invalid type name {name!r}; expected one such as 'tensorlib.FloatTensor' or "
                         "'tensorlib.cuda.LongTensor'")
    return _TensorType(found.__name__, found.dtype, "cuda") if prefix.endswith("cuda") else found


def _is_dtype_like(value) -> bool:
    try:
        np.dtype(value)
    except TypeError:
        return False
    return not isinstance(value, str)


# ---- creation ---------------------------------------------------------------------------------------
def tensor(data, dtype=None, device=None, requires_grad=False) -> Tensor:
    """A new tensor holding a copy of ``data`` (nested lists, scalars, NumPy/CuPy arrays or a Tensor)."""
    device = normalize_device(device) if device is not None else None
    if isinstance(data, Tensor):
        data = data.array
    if array_device(data) == "cuda":
        array = data.astype(dtype if dtype is not None else data.dtype, copy=True)
        device = device or "cuda"
    else:
        if isinstance(data, (list, tuple)) and any(isinstance(item, Tensor) for item in _flatten(data)):
            data = _nested_to_array(data)
        target = np.dtype(dtype) if dtype is not None else _infer_dtype(data)
        array = np.array(data, dtype=target, copy=True)
        if array.dtype == object:
            raise TypeError(f"can't make a tensor from data of type {type(data).__name__}")
        device = device or "cpu"
    if requires_grad and array.dtype.kind != "f":
        raise RuntimeError(f"only floating-point tensors can require gradients, got dtype {array.dtype}")
    return Tensor._make(move(array, device), requires_grad=requires_grad)


def _flatten(items):
    for item in items:
        if isinstance(item, (list, tuple)):
            yield from _flatten(item)
        else:
            yield item


def _nested_to_array(items):
    if isinstance(items, Tensor):
        return move(items.array, "cpu")
    if isinstance(items, (list, tuple)):
        return np.stack([np.asarray(_nested_to_array(item)) for item in items]) if items else np.zeros(0)
    return items


def as_tensor(data, dtype=None, device=None) -> Tensor:
    """``data`` as a tensor, without copying when it already is one of the right dtype and device."""
    if isinstance(data, Tensor) and (dtype is None or data.dtype == np.dtype(dtype)) and (
        device is None or data.device == normalize_device(device)
    ):
        return data
    return tensor(data, dtype=dtype, device=device)


def _size(size) -> tuple:
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        size = tuple(size[0])
    for s in size:
        if not isinstance(s, (int, np.integer)) or isinstance(s, bool) or s < 0:
            raise ValueError(f"size must be non-negative ints, got {size}")
    return tuple(int(s) for s in size)


def _created(array, requires_grad):
    if requires_grad and array.dtype.kind != "f":
        raise RuntimeError(f"only floating-point tensors can require gradients, got dtype {array.dtype}")
    return Tensor._make(array, requires_grad=requires_grad)


def zeros(*size, dtype=None, device=None, requires_grad=False) -> Tensor:
    xp = module_for(normalize_device(device))
    return _created(xp.zeros(_size(size), dtype=dtype or _default_dtype), requires_grad)


def ones(*size, dtype=None, device=None, requires_grad=False) -> Tensor:
    xp = module_for(normalize_device(device))
    return _created(xp.ones(_size(size), dtype=dtype or _default_dtype), requires_grad)


def empty(*size, dtype=None, device=None, requires_grad=False) -> Tensor:
    xp = module_for(normalize_device(device))
    return _created(xp.empty(_size(size), dtype=dtype or _default_dtype), requires_grad)


def full(size, fill_value, dtype=None, device=None, requires_grad=False) -> Tensor:
    xp = module_for(normalize_device(device))
    if dtype is None:
        dtype = bool_ if isinstance(fill_value, bool) else int64 if isinstance(fill_value, numbers.Integral) else _default_dtype
    return _created(xp.full(_size((size,)), fill_value, dtype=dtype), requires_grad)


def zeros_like(input: Tensor, dtype=None, device=None, requires_grad=False) -> Tensor:
    return zeros(input.shape, dtype=dtype or input.dtype, device=device or input.device, requires_grad=requires_grad)


def ones_like(input: Tensor, dtype=None, device=None, requires_grad=False) -> Tensor:
    return ones(input.shape, dtype=dtype or input.dtype, device=device or input.device, requires_grad=requires_grad)


def full_like(input: Tensor, fill_value, dtype=None, device=None, requires_grad=False) -> Tensor:
    return full(input.shape, fill_value, dtype=dtype or input.dtype, device=device or input.device,
                requires_grad=requires_grad)


def empty_like(input: Tensor, dtype=None, device=None, requires_grad=False) -> Tensor:
    return empty(input.shape, dtype=dtype or input.dtype, device=device or input.device, requires_grad=requires_grad)


def rand_like(input: Tensor, dtype=None, device=None, requires_grad=False, *, generator=None) -> Tensor:
    """Uniform on [0, 1) with ``input``'s shape, dtype (floating-point) and device."""
    return _random.rand(input.shape, dtype=dtype or input.dtype, device=device or input.device,
                        requires_grad=requires_grad, generator=generator)


def randn_like(input: Tensor, dtype=None, device=None, requires_grad=False, *, generator=None) -> Tensor:
    """Standard normal with ``input``'s shape, dtype (floating-point) and device."""
    return _random.randn(input.shape, dtype=dtype or input.dtype, device=device or input.device,
                         requires_grad=requires_grad, generator=generator)


def randint_like(input: Tensor, low, high=None, *, dtype=None, device=None, requires_grad=False,
                 generator=None) -> Tensor:
    """Integers uniform on [low, high) (``randint_like(t, high)``: low 0) with ``input``'s shape, dtype and
    device."""
    low, high = (0, low) if high is None else (low, high)
    return _random.randint(low, high, input.shape, dtype=dtype or input.dtype, device=device or input.device,
                           requires_grad=requires_grad, generator=generator)


def arange(start, end=None, step=1, dtype=None, device=None, requires_grad=False) -> Tensor:
    """Values from ``start`` up to (not including) ``end``; int64 for integer arguments, else float32."""
    if end is None:
        start, end = 0, start
    if step == 0:
        raise ValueError("arange step must be non-zero")
    if dtype is None:
        integral = all(isinstance(v, numbers.Integral) for v in (start, end, step))
        dtype = int64 if integral else _default_dtype
    xp = module_for(normalize_device(device))
    return _created(xp.arange(start, end, step).astype(dtype), requires_grad)


def _check_count(what, value):
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool):
        raise TypeError(f"{what} must be an int, got {value!r}")
    if value < 0:
        raise ValueError(f"{what} must be >= 0, got {value}")


def eye(n, m=None, dtype=None, device=None, requires_grad=False) -> Tensor:
    """The n x m matrix (n x n by default) with ones on the diagonal."""
    m = n if m is None else m
    for name, value in (("n", n), ("m", m)):
        _check_count(f"eye: {name}", value)
    xp = module_for(normalize_device(device))
    return _created(xp.eye(n, m, dtype=dtype or _default_dtype), requires_grad)


def linspace(start, end, steps, dtype=None, device=None, requires_grad=False) -> Tensor:
    """``steps`` evenly spaced values from ``start`` to ``end``, both included (default float dtype).

    Computed as PyTorch does, so float32 values agree to the bit: the first half counts up from start, the
    second down from end (each end is exact), each value one multiply-add of float32 operands rounded once."""
    _check_count("linspace: steps", steps)
    dtype = np.dtype(dtype or _default_dtype)
    precision = np.float32 if dtype.itemsize <= 4 and dtype.kind == "f" else np.float64
    low, high = precision(float(start)), precision(float(end))
    step = float((high - low) / precision(max(steps - 1, 1)))
    xp = module_for(normalize_device(device))
    i = xp.arange(steps)
    values = xp.where(i < max(steps // 2, 1), float(low) + i * step, float(high) - (steps - 1 - i) * step)
    return _created(values.astype(dtype), requires_grad)


# ---- questions about tensors and dtypes -----------------------------------------------------------------
def is_tensor(value) -> bool:
    return isinstance(value, Tensor)


def _require_tensor(op, value, name="input"):
    """Refuse ``value``, argument ``name`` of ``op``, unless it is a Tensor."""
    if not isinstance(value, Tensor):
        raise TypeError(f"{op}: {name} must be a Tensor, got {type(value).__name__}")


def is_floating_point(input: Tensor) -> bool:
    _require_tensor("is_floating_point", input)
    return input.is_floating_point()


def numel(input: Tensor) -> int:
    _require_tensor("numel", input)
    return input.numel()


def from_numpy(array: np.ndarray) -> Tensor:
    """A CPU tensor sharing ``array``'s memory (a change to one shows in the other), of its dtype."""
    if not isinstance(array, np.ndarray) or array_device(array) != "cpu":
        raise TypeError(f"from_numpy: expected a numpy.ndarray, got {type(array).__name__}")
    if array.dtype.kind not in "biuf":
        raise TypeError(f"from_numpy: dtype {array.dtype} is not supported; expected a bool, integer or "
                        "floating-point array")
    return Tensor._make(array)


class finfo:  # noqa: N801  (PyTorch's name)
    """The limits of a floating-point dtype (the default dtype by default), as PyTorch's ``finfo``: ``bits``,
    ``eps``, ``max``, ``min``, ``tiny`` (the same as ``smallest_normal``) and ``resolution`` as Python numbers
    (so ``finfo().max * 10`` is a finite float, not a float32 overflow), and ``dtype``."""

    def __init__(self, dtype=None):
        dtype = np.dtype(dtype if dtype is not None else _default_dtype)
        if dtype.kind != "f":
            raise TypeError(f"finfo: dtype must be a floating-point dtype, got {dtype}; use iinfo for integers")
        limits = np.finfo(dtype)
        self.dtype, self.bits = dtype, int(limits.bits)
        self.eps, self.max, self.min = float(limits.eps), float(limits.max), float(limits.min)
        self.tiny = self.smallest_normal = float(limits.smallest_normal)
        self.resolution = 10.0 ** -int(limits.precision)

    def __repr__(self):
        return (f"finfo(resolution={self.resolution:g}, min={self.min:g}, max={self.max:g}, eps={self.eps:g}, "
                f"smallest_normal={self.smallest_normal:g}, tiny={self.tiny:g}, dtype={self.dtype})")


class iinfo:  # noqa: N801  (PyTorch's name)
    """The limits of an integer dtype, as PyTorch's ``iinfo``: ``bits``, ``min`` and ``max`` as Python ints, and
    ``dtype``."""

    def __init__(self, dtype):
        dtype = np.dtype(dtype)
        if dtype.kind not in "iu":
            raise TypeError(f"iinfo: dtype must be an integer dtype, got {dtype}; use finfo for floating point")
        limits = np.iinfo(dtype)
        self.dtype, self.bits, self.min, self.max = dtype, int(limits.bits), int(limits.min), int(limits.max)

    def __repr__(self):
        return f"iinfo(min={self.min:g}, max={self.max:g}, dtype={self.dtype})"


def inference_mode(mode=True):
    """PyTorch's ``inference_mode`` as a context manager and decorator (``with tl.inference_mode():``,
    ``@tl.inference_mode()``, bare ``@tl.inference_mode``): ``no_grad()``, as tensorlib has no separate
    inference mode. ``inference_mode(False)`` turns recording on inside, as PyTorch's does. The mode is set on
    entering the block or the call, and the one before is restored on leaving it."""
    if callable(mode):  # the bare decorator: inference_mode(function)
        return autograd.no_grad()(mode)
    if not isinstance(mode, (bool, np.bool_)):
        raise TypeError(f"inference_mode: mode must be a bool, got {type(mode).__name__} {mode!r}")
    return autograd.no_grad() if mode else autograd.enable_grad()


from tensorlib import ops as _ops, random as _random  # noqa: E402  (they import Tensor from this module)
from tensorlib.ops import (  # noqa: E402
    elementwise as _elementwise, linalg as _linalg, reduce as _reduce, shape as _shape,
)
