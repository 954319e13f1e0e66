"""``summary(model, input_size)``: each layer's output shape, parameters and multiply-accumulates, and the
model's totals, like torchsummary / torchinfo.

The forward pass runs on a batch of one sample (two if a batch norm uses batch statistics in eval mode, which
needs more than one value per channel), so ``x.reshape(x.shape[0], -1)`` works as it does in training (VGG-16
at 224x224 takes about a second on a CPU); forward hooks record each layer's output shape, whose leading
dimension is then reported as ``batch_size``.
"""

from __future__ import annotations

import contextlib
import itertools
import math
from dataclasses import dataclass

import tensorlib as tl
from nn.layers import Conv2d, ConvReLU2d, Linear

_MB = 2**20  # bytes in a megabyte, as torchsummary counts them


@dataclass(frozen=True)
class LayerSummary:
    """One row: ``name`` as in ``named_modules`` ("" for a model that is a single layer), the module's class,
    its output shape (of its last call) with the leading (batch) dimension set to the batch size (a tuple of shapes
    for a tuple output; None if the forward pass never called it, like GoogLeNet's auxiliary heads in eval
    mode), the parameters it owns directly, and its multiply-accumulates (summed over its calls; Conv2d and
    Linear only)."""

    name: str
    type: str
    output_shape: tuple | None
    params: int
    macs: int


@dataclass(frozen=True)
class Summary:
    """What ``summary`` returns: the rows and the totals; ``str()`` gives the table it prints."""

    rows: list
    input_size: tuple
    batch_size: int
    total_params: int
    trainable_params: int
    total_macs: int
    param_bytes: int  # parameters and buffers
    activation_bytes: int  # every row's outputs, for the batch

    @property
    def param_mb(self) -> float:
        return self.param_bytes / _MB

    @property
    def activation_mb(self) -> float:
        return self.activation_bytes / _MB

    def __str__(self):
        header = ("Layer (type)", "Output shape", "Param #", "MACs")
        lines = [header] + [
            (f"{row.name} ({row.type})" if row.name else row.type, _format_shape(row.output_shape),
             f"{row.params:,}", f"{row.macs:,}")
            for row in self.rows
        ]
        widths = [max(len(line[column]) for line in lines) for column in range(len(header))]

        def render(line):
            return "  ".join([line[0].ljust(widths[0]), line[1].ljust(widths[1])]
                             + [cell.rjust(width) for cell, width in zip(line[2:], widths[2:])])

        rule = "=" * len(render(header))
        table = [rule, render(header), rule] + [render(line) for line in lines[1:]] + [rule]
        totals = [
            f"Input size: {self.input_size}, batch size {self.batch_size}",
            f"Total params: {self.total_params:,}",
            f"Trainable params: {self.trainable_params:,}",
            f"Non-trainable params: {self.total_params - self.trainable_params:,}",
            f"Total MACs: {self.total_macs:,} ({_engineering(self.total_macs)})",
            f"Params + buffers size (MB): {self.param_mb:,.2f}",
            f"Forward activations size (MB): {self.activation_mb:,.2f}",
        ]
        return "\n".join(table + totals + [rule])

    def __repr__(self):
        return (f"Summary({len(self.rows)} layers, {self.total_params:,} params, {self.total_macs:,} MACs, "
                f"input_size={self.input_size}, batch_size={self.batch_size})")


def summary(model, input_size=(3, 32, 32), batch_size: int = 1, dtype=None, verbose: bool = True) -> Summary:
    """Summarise ``model`` on inputs of shape ``(batch_size, *input_size)``; print the table if ``verbose``.

    Rows are the modules without children, and any module that owns parameters directly, in
    ``named_modules`` order, so the rows' parameters add up to the total. MACs count Conv2d as
    N*K*P*Q*(C/groups)*R*S and Linear as rows*in_features*out_features; biases and other layers count 0.
    Memory is in MB of 2**20 bytes: parameters and buffers, and the forward outputs of every row for the batch.

    The forward pass runs in eval mode under ``no_grad`` on a batch of two of ``dtype`` (default: the
    parameters' dtype) on the parameters' device; an output whose leading dimension is 2 is reported with
    ``batch_size`` there. The model is left as it was, also on error: training flags, buffers (a batch norm's
    running statistics; also a buffer the forward replaced) and the random state are restored, and the hooks
    removed. A forward that fails (e.g. an input
    too small for the model) raises RuntimeError naming the input size and the innermost layer that was running.
    """
    input_size = tuple(input_size)
    if not input_size or not all(isinstance(d, int) and d > 0 for d in input_size):
        raise ValueError(f"input_size must be a tuple of positive ints such as (3, 32, 32), got {input_size}")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    reference = next(itertools.chain(model.parameters(), model.buffers()), None)
    if dtype is None:
        dtype = reference.dtype if reference is not None and reference.dtype.kind == "f" else tl.get_default_dtype()
    device = reference.device if reference is not None else "cpu"

    # a fused module computes for its children (whose own calls, and hooks, it replaces): it is a layer too
    layers = [(name, module) for name, module in model.named_modules()
              if not list(module.children()) or list(module.parameters(recurse=False))
              or isinstance(module, ConvReLU2d)]
    calls = {id(module): [] for _, module in layers}  # per call: [(shape for the batch, itemsize)] per output

    # two samples: eval-mode batch norm without running statistics needs more than one, and a leading 1 that is
    # not the batch (a sum over it with keepdim) is then not taken for it
    probe = 2

    def record(module, inputs, output):
        calls[id(module)].append([(_with_batch(t.shape, probe, batch_size), t.dtype.itemsize)
                                  for t in _tensors(output)])

    x = tl.zeros(probe, *input_size, dtype=dtype, device=device)
    handles = [module.register_forward_hook(record) for _, module in layers]
    try:
        with preserved(model):
            model.eval()
            with tl.no_grad():
                model(x)
    except Exception as error:
        raise RuntimeError(f"summary: the forward pass fails for input size {input_size} (run on a batch of "
                           f"shape {x.shape}) in {_failing_layer(error, model)}: {error}") from error
    finally:
        for handle in handles:
            handle.remove()

    rows, seen = [], set()
    for name, module in layers:
        own = [p for p in module.parameters(recurse=False) if id(p) not in seen]
        seen.update(id(p) for p in own)
        shapes = [[shape for shape, _ in call] for call in calls[id(module)]]
        last = shapes[-1] if shapes else []
        rows.append(LayerSummary(
            name=name, type=type(module).__name__,
            output_shape=(last[0] if len(last) == 1 else tuple(last)) if last else None,
            params=sum(p.array.size for p in own),
            macs=sum(_macs(module, call) for call in shapes),
        ))
    activation_bytes = sum(math.prod(shape) * itemsize for module_calls in calls.values()
                           for call in module_calls for shape, itemsize in call)
    parameters = list(model.parameters())
    result = Summary(
        rows=rows, input_size=input_size, batch_size=batch_size,
        total_params=sum(p.array.size for p in parameters),
        trainable_params=sum(p.array.size for p in parameters if p.requires_grad),
        total_macs=sum(row.macs for row in rows),
        param_bytes=sum(t.array.nbytes for t in parameters + list(model.buffers())),
        activation_bytes=activation_bytes,
    )
    if verbose:
        print(result)
    return result


@contextlib.contextmanager
def preserved(model):
    """A block after which ``model`` is as it was, also on error: training flags, buffers (a batch norm's
    running statistics; also a buffer the block replaced) and the random state are restored. For probe
    forward passes (``summary``, the training command's input-size check) that must leave no trace."""
    modes = [(module, module.training) for module in model.modules()]
    # buffers as they are: each module's table (a forward may assign a new tensor) and each tensor's values
    tables = [(module, dict(module._buffers)) for module in model.modules()]
    buffers = [(buffer, buffer.array.copy()) for buffer in model.buffers()]
    rng_state = tl.get_rng_state()  # a forward may draw (noise layers) even in eval mode
    try:
        yield model
    finally:
        for module, mode in modes:
            module.training = mode
        for module, table in tables:
            module._buffers.clear()
            module._buffers.update(table)
        for buffer, saved in buffers:
            buffer.array[...] = saved
        tl.set_rng_state(rng_state)


def _tensors(output) -> list:
    """The tensors in a layer's output: the tensor itself, or those in a (nested) tuple or list."""
    if isinstance(output, tl.Tensor):
        return [output]
    if isinstance(output, (tuple, list)):
        return [t for item in output for t in _tensors(item)]
    return []


def _with_batch(shape: tuple, probe: int, batch_size: int) -> tuple:
    """The shape the layer gives for the real batch: a leading dimension of the probe batch's size becomes
    ``batch_size``."""
    return (batch_size, *shape[1:]) if shape and shape[0] == probe else tuple(shape)


def _macs(module, shapes: list) -> int:
    if not shapes:
        return 0
    if isinstance(module, ConvReLU2d):
        module = module[0]
    if isinstance(module, Conv2d):
        kh, kw = module.kernel_size
        return math.prod(shapes[0]) * (module.in_channels // module.groups) * kh * kw
    if isinstance(module, Linear):
        return math.prod(shapes[0]) * module.in_features
    return 0


def _failing_layer(error: Exception, model) -> str:
    """The innermost module of ``model`` whose code is in the error's traceback, e.g. "layer 'features.0'
    (Conv2d)"."""
    names = {id(module): (name, module) for name, module in model.named_modules()}
    found = None
    frame = error.__traceback__
    while frame is not None:
        owner = frame.tb_frame.f_locals.get("self")
        if id(owner) in names and names[id(owner)][1] is owner:
            found = names[id(owner)]
        frame = frame.tb_next
    if found is None:
        return "the model"
    name, module = found
    return f"layer {name!r} ({type(module).__name__})" if name else f"the model's own forward ({type(module).__name__})"


def _format_shape(shape) -> str:
    if shape is None:
        return "--"
    if shape and isinstance(shape[0], tuple):
        return ", ".join(_format_shape(s) for s in shape)
    return "[" + ", ".join(str(d) for d in shape) + "]"


def _engineering(count: int) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if count >= scale:
            return f"{count / scale:.2f} {unit}"
    return str(count)
