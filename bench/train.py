"""Training throughput: SGD steps of LeNet-5 (batch 64, 1x28x28), ResNet-20 (batch 128, 3x32x32) and
VGG-11 with batch norm in its CIFAR form (batch 64, 3x32x32) on random data, and where a step's time goes.

A step is zero_grad, forward, cross-entropy, backward and an SGD update (momentum 0.9), on a batch that
already sits on the device. ms/step is the median of whole steps (on a GPU between CUDA events, host
overhead included). Variants: "tensorlib" (eager) and "torch" (PyTorch eager, when it imports) everywhere;
on "cuda" also "tensorlib+graph" (``nn.GraphedStep``: two eager warm-up steps, then the step captured as one
CUDA graph and replayed) and "torch+graph" (``torch.cuda.CUDAGraph``, captured the same way after three
eager warm-up steps on a side stream, as PyTorch's documentation does). tensorlib+graph's warm-up and
capture happen in its first three calls, which ``measure`` does not count as repeats: its first-call time
is an eager step, its median a replay (copying the batch into the captured inputs included).

On the CPU the breakdown of a tensorlib step comes from separate profiled steps, with timers wrapped around
(bench-only monkeypatching, undone afterwards):
- each leaf module's call, by layer type (forward time per type, Python included);
- the backward of each autograd Function, attributed to the layer type whose forward made it
  ("other": ops made outside a leaf module, such as the residual additions); the rest of backward is
  the autograd engine itself (graph walk, gradient accumulation);
- the kernel entry points (conv2d, pool2d, matmul): "inside kernels";
- Function.apply, Function.backward and the kernels, outermost only: "inside ops" (array work,
  kernels and NumPy elementwise math);
- the optimizer step and zero_grad.
Python overhead is the profiled step minus the time inside ops and the optimizer step. The timers add
a little time of their own, so the profiled step is reported beside the plain median. There is no
breakdown on a GPU: these timers are host clocks, and the kernels they would wrap run asynchronously.
"""

from __future__ import annotations

import contextlib
import time
from collections import defaultdict

import numpy as np

import kernels
import nn
import tensorlib as tl
from bench.timing import error_text, measure
from tensorlib.autograd import Function

MODELS = {"lenet5": ((1, 28, 28), 64), "resnet20": ((3, 32, 32), 128), "vgg11_bn": ((3, 32, 32), 64)}
TINY_BATCH = {"lenet5": 8, "resnet20": 2, "vgg11_bn": 2}
# bench name -> (model zoo builder, its arguments)
BUILDERS = {"vgg11_bn": ("vgg11", {"num_classes": 10, "batch_norm": True, "small_input": True})}
KERNEL_MODULES = (kernels.conv2d, kernels.pool2d, kernels.matmul)


def layer_type(module) -> str:
    name = type(module).__name__
    if name.startswith("Conv"):
        return "Conv2d"
    if "Pool" in name:
        return "pooling"
    if name.startswith("BatchNorm"):
        return "BatchNorm"
    if name == "Linear":
        return "Linear"
    if name.endswith("Loss"):
        return "loss"
    if name in ("ReLU", "Tanh", "Sigmoid", "LeakyReLU", "ELU", "GELU"):
        return "activations"
    return "other"


class StepProfiler:
    """Accumulates the timers of the module docstring while active (``with profiler.active(): ...``)."""

    def __init__(self):
        self.forward, self.backward = defaultdict(float), defaultdict(float)
        self.kernels = self.ops = 0.0
        self.layers, self.kernel_depth, self.op_depth = [], 0, 0

    def _timed(self, fn, kernel: bool):
        def wrapper(*args, **kwargs):
            outer_kernel, outer_op = kernel and self.kernel_depth == 0, self.op_depth == 0
            self.kernel_depth += kernel
            self.op_depth += 1
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                elapsed = time.perf_counter() - start
                self.kernel_depth -= kernel
                self.op_depth -= 1
                self.kernels += elapsed if outer_kernel else 0.0
                self.ops += elapsed if outer_op else 0.0
        return wrapper

    @contextlib.contextmanager
    def active(self):
        module_call, apply = nn.Module.__call__, Function.__dict__["apply"]
        entry_points = [(m, name, getattr(m, name)) for m in KERNEL_MODULES for name in dir(m)
                        if name.endswith(("_forward", "_backward", "_bias")) or name == "matmul"]
        profiler = self

        def call(module, *args, **kwargs):
            if module._modules:
                return module_call(module, *args, **kwargs)
            profiler.layers.append(layer_type(module))
            start = time.perf_counter()
            try:
                return module_call(module, *args, **kwargs)
            finally:
                profiler.forward[profiler.layers.pop()] += time.perf_counter() - start

        def timed_apply(cls, *args, **kwargs):
            start = time.perf_counter()
            out = profiler._timed(apply.__func__, kernel=False)(cls, *args, **kwargs)
            kind = profiler.layers[-1] if profiler.layers else "other"
            if not profiler.layers:
                profiler.forward["other"] += time.perf_counter() - start
            if out._ctx is not None:
                out._ctx.backward = profiler._timed_backward(out._ctx.backward, kind)
            return out

        nn.Module.__call__ = call
        Function.apply = classmethod(timed_apply)
        for module, name, fn in entry_points:
            setattr(module, name, self._timed(fn, kernel=True))
        try:
            yield self
        finally:
            nn.Module.__call__ = module_call
            Function.apply = apply
            for module, name, fn in entry_points:
                setattr(module, name, fn)

    def _timed_backward(self, backward, kind):
        timed = self._timed(backward, kernel=False)

        def wrapper(grad):
            start = time.perf_counter()
            try:
                return timed(grad)
            finally:
                self.backward[kind] += time.perf_counter() - start
        return wrapper


def _tensorlib_setup(name: str, batch: int, device: str):
    """(model, SGD optimizer, images, labels) on ``device``."""
    shape, _ = MODELS[name]
    tl.manual_seed(0)
    builder, kwargs = BUILDERS.get(name, (name, {}))
    model = nn.models.get_model(builder, **kwargs).to(device)
    optimizer = nn.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x = tl.randn(batch, *shape, device=device)
    y = tl.tensor(np.random.default_rng(0).integers(0, 10, batch), device=device)
    return model, optimizer, x, y


def tensorlib_step(name: str, batch: int, device: str = "cpu"):
    model, optimizer, x, y = _tensorlib_setup(name, batch, device)
    criterion = nn.CrossEntropyLoss()
    phases = defaultdict(float)

    def timed(phase, fn):
        start = time.perf_counter()
        out = fn()
        phases[phase] += time.perf_counter() - start
        return out

    def step():
        timed("zero_grad", optimizer.zero_grad)
        loss = criterion(model(x), y)
        timed("backward", loss.backward)
        timed("optimizer", optimizer.step)

    return step, phases


def tensorlib_graphed_step(name: str, batch: int):
    model, optimizer, x, y = _tensorlib_setup(name, batch, "cuda")
    step = nn.GraphedStep(model, optimizer, loss_fn=nn.CrossEntropyLoss(), warmup=2)
    return lambda: step(x, y)


def profile(name: str, batch: int, steps: int) -> dict:
    step, phases = tensorlib_step(name, batch)
    step()
    phases.clear()
    profiler = StepProfiler()
    start = time.perf_counter()
    with profiler.active():
        for _ in range(steps):
            step()
    wall = (time.perf_counter() - start) / steps
    per_step = lambda seconds: seconds / steps * 1e3  # noqa: E731
    backward_ms = {k: per_step(v) for k, v in profiler.backward.items()}
    return {
        "step_ms": wall * 1e3,
        "forward_ms": {k: per_step(v) for k, v in profiler.forward.items()},
        "backward_ms": backward_ms,
        "engine_ms": per_step(phases["backward"]) - sum(backward_ms.values()),
        "optimizer_ms": per_step(phases["optimizer"]),
        "zero_grad_ms": per_step(phases["zero_grad"]),
        "kernels_ms": per_step(profiler.kernels),
        "ops_ms": per_step(profiler.ops),
        "python_overhead_ms": wall * 1e3 - per_step(profiler.ops) - per_step(phases["optimizer"]),
    }


def torch_step(torch, name: str, batch: int, device: str = "cpu"):
    from bench.torch_models import build

    shape, _ = MODELS[name]
    torch.manual_seed(0)
    model = build(torch, name).to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x = torch.randn(batch, *shape).to(device)
    y = torch.from_numpy(np.random.default_rng(0).integers(0, 10, batch)).to(device)

    def step():
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()

    return step, (model, optimizer, x, y)


def torch_graphed_step(torch, name: str, batch: int):
    eager, (model, optimizer, x, y) = torch_step(torch, name, batch, "cuda")
    side = torch.cuda.Stream()  # warm-up off the default stream, so the capture finds no pending work of its own
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(3):
            eager()
    torch.cuda.current_stream().wait_stream(side)
    static_x, static_y = x.clone(), y.clone()
    graph = torch.cuda.CUDAGraph()
    optimizer.zero_grad(set_to_none=True)  # the captured backward then allocates the gradients in the graph's pool
    with torch.cuda.graph(graph):
        torch.nn.functional.cross_entropy(model(static_x), static_y).backward()
        optimizer.step()

    def step():
        static_x.copy_(x)
        static_y.copy_(y)
        graph.replay()

    return step


NOTES = {
    ("cuda", "tensorlib"): "no per-layer breakdown on a GPU: its timers are host clocks around asynchronous kernels",
    ("cuda", "tensorlib+graph"): "2 eager warm-up steps and the capture in its first calls; median of replays",
    ("cuda", "torch+graph"): "captured after 3 eager warm-up steps on a side stream; median of replays",
}


def _builders(name: str, batch: int, device: str, torch) -> dict:
    """Variant -> a function that builds its step (warm-ups and captures that must come first included)."""
    builders = {}
    if torch is not None:
        builders["torch"] = lambda: torch_step(torch, name, batch, device)[0]
        if device == "cuda":
            builders["torch+graph"] = lambda: torch_graphed_step(torch, name, batch)
    builders["tensorlib"] = lambda: tensorlib_step(name, batch, device)[0]
    if device == "cuda":
        builders["tensorlib+graph"] = lambda: tensorlib_graphed_step(name, batch)
    return builders


def bench_training(shape_set, device, timer, torch_timer, settle_s, repeats, rounds, budget_s, torch, emit):
    """A result per (model, variant), each handed to ``emit(result)`` as it is done; a variant that fails to
    build or to run gets its error as the status and the others are still timed."""
    for name, (shape, batch) in MODELS.items():
        batch = TINY_BATCH[name] if shape_set == "tiny" else batch
        base = {"device": device, "model": name, "batch": batch, "input": list(shape)}
        fns, failed, builders = {}, {}, _builders(name, batch, device, torch)
        for variant, build in builders.items():
            try:
                fns[variant] = build()
            except Exception as error:
                failed[variant] = {"error": error_text(error)}
        timed = {**measure(fns, timer, repeats, rounds, settle_s, budget_s=budget_s, torch_timer=torch_timer), **failed}
        medians = {variant: t["median_ms"] for variant, t in timed.items() if "median_ms" in t}
        for variant in builders:
            t = timed[variant]
            result = dict(base, variant=variant, status="ok")
            if (device, variant) in NOTES:
                result["note"] = NOTES[device, variant]
            if "error" in t:
                result["status"] = f"ERROR ({t['error']})"
            else:
                result.update(t, images_per_s=batch / t["median_ms"] * 1e3,
                              vs_torch=t["median_ms"] / medians["torch"] if "torch" in medians else None,
                              vs_torch_graph=t["median_ms"] / medians["torch+graph"] if "torch+graph" in medians else None)
                if variant == "tensorlib" and device == "cpu":
                    result["breakdown"] = profile(name, batch, 1 if shape_set == "tiny" else 3)
            emit(result)
