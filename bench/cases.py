"""The benchmark cases of each op family, per shape set, and how to run, check and count each of them.

A case is one problem size of one family. Its passes ("fwd", and "fwd+bwd" for conv, pooling and batch
norm; for conv also "fwd+relu": the forward with its fused ReLU epilogue, whose time against "fwd" is the
epilogue's cost, and the two backward passes alone, "dgrad" (backward_input) and "wgrad" (backward_weight))
are closures over arrays on the benchmarked device that return every array they computed, so the same call
is checked and then timed. The work a pass does is counted as FLOPs (2 per multiply-accumulate; a pooling
window tap counts one; batch norm's closed forms count 7 per element forward, 12 backward) and as the bytes
it must move at least (each input read once, each output written once); their ratio is the arithmetic
intensity on the roofline. ``torch_steps(torch, device)`` gives PyTorch's closures for the same passes on
tensors on ``device`` (on "cuda": cuBLAS and cuDNN).

Shape sets: ``tiny`` (a few small problems, well under a second in all: the tests), ``small``,
``cnn`` (LeNet-5's layers at batch 64, CIFAR ResNet-20's at batch 128, and the GEMMs of their linear
layers) and ``large`` (square GEMMs 128..4096, ResNet-18's ImageNet layers at batch 32).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from bench.compare_torch_conv2d import SHAPES as CNN_CONV, ConvShape
from bench.compare_torch_conv2d import torch_steps as torch_conv_steps
from bench.compare_torch_pool2d import CASES as CNN_POOL, PoolCase, output_shape
from bench.compare_torch_pool2d import torch_steps as torch_pool_steps
from kernels import activation, batchnorm, conv2d, matmul, pool2d, softmax_xent
from kernels.activation import reference as activation_reference
from kernels.batchnorm import reference as batchnorm_reference
from kernels.conv2d import reference as conv_reference
from kernels.matmul import reference as matmul_reference
from kernels.pool2d import reference as pool_reference
from kernels.softmax_xent import reference as softmax_xent_reference

FAMILIES = ("matmul", "conv2d", "pool2d", "batchnorm", "activation", "softmax_xent")
BYTES = 4  # float32


def _random(shape, seed):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


class MatmulCase:
    family = "matmul"
    passes = {"fwd": ("matmul",)}

    def __init__(self, m: int, k: int, n: int):
        self.m, self.k, self.n = m, k, n
        self.name = f"{m}x{k}x{n}" if len({m, k, n}) > 1 else f"{n}^2"
        self.dims = f"({m}, {k}) @ ({k}, {n})"

    def host_inputs(self):
        return {"a": _random((self.m, self.k), 0), "b": _random((self.k, self.n), 1)}

    def steps(self, a, b):
        return {"fwd": lambda: {"c": matmul.matmul(a, b)}}

    def reference(self, a, b):
        return {"c": matmul_reference.matmul(a, b)}

    def flops(self, pass_):
        return 2 * self.m * self.k * self.n

    def bytes(self, pass_):
        return BYTES * (self.m * self.k + self.k * self.n + self.m * self.n)

    def torch_steps(self, torch, device):
        a, b = (torch.from_numpy(v).to(device) for v in self.host_inputs().values())
        return {"fwd": lambda: a @ b}


CONV_OPS = ("conv2d_forward", "conv2d_backward_input", "conv2d_backward_weight", "conv2d_backward_bias")


class ConvCase:
    """forward, forward with the ReLU epilogue, forward + backward_input + backward_weight + backward_bias
    (what a training step runs), and backward_input and backward_weight alone."""

    family = "conv2d"
    passes = {"fwd": CONV_OPS[:1], "fwd+relu": CONV_OPS[:1], "fwd+bwd": CONV_OPS, "dgrad": CONV_OPS[1:2],
              "wgrad": CONV_OPS[2:3]}

    def __init__(self, shape: ConvShape):
        self.shape, self.name, self.geometry = shape, shape.name, shape.geometry
        extra = "".join(f" {label} {value}" for label, value in (("stride", shape.stride), ("pad", shape.padding)) if value != (1 if label == "stride" else 0))
        self.dims = f"{shape.N} x {shape.C}x{shape.H}x{shape.W} -> {shape.K}@{shape.R}x{shape.R}{extra}"

    def host_inputs(self):
        return dict(zip(("x", "w", "b", "dy"), self.shape.arrays()))

    def steps(self, x, w, b, dy):
        s, p = self.shape.stride, self.shape.padding

        def forward():
            return {"y": conv2d.conv2d_forward(x, w, b, s, p)}

        def forward_relu():
            return {"y_relu": conv2d.conv2d_forward(x, w, b, s, p, activation="relu")}

        def forward_backward():
            return {"y": conv2d.conv2d_forward(x, w, b, s, p), "dx": conv2d.conv2d_backward_input(dy, w, x.shape, s, p),
                    "dw": conv2d.conv2d_backward_weight(dy, x, w.shape, s, p), "db": conv2d.conv2d_backward_bias(dy)}

        def backward_input():
            return {"dx": conv2d.conv2d_backward_input(dy, w, x.shape, s, p)}

        def backward_weight():
            return {"dw": conv2d.conv2d_backward_weight(dy, x, w.shape, s, p)}

        return {"fwd": forward, "fwd+relu": forward_relu, "fwd+bwd": forward_backward, "dgrad": backward_input,
                "wgrad": backward_weight}

    def reference(self, x, w, b, dy):
        s, p = self.shape.stride, self.shape.padding
        y = conv_reference.conv2d_forward(x, w, b, s, p)
        return {"y": y, "y_relu": np.maximum(y, 0),
                "dx": conv_reference.conv2d_backward_input(dy, w, x.shape, s, p),
                "dw": conv_reference.conv2d_backward_weight(dy, x, w.shape, s, p),
                "db": conv_reference.conv2d_backward_bias(dy)}

    def flops(self, pass_):
        return self.geometry.flops * (3 if pass_ == "fwd+bwd" else 1)

    def bytes(self, pass_):
        """The fused ReLU moves no extra bytes: "fwd+relu" counts what "fwd" does."""
        g = self.geometry
        x, w, y = (int(np.prod(s)) for s in (g.x_shape, g.w_shape, g.y_shape))
        forward = x + w + g.K + y
        # backward_input: dy, w in, dx out; backward_weight: dy, x in, dw out; backward_bias: dy in, db out
        backward_input, backward_weight = y + w + x, y + x + w
        return BYTES * {"fwd+bwd": forward + backward_input + backward_weight + (y + g.K), "dgrad": backward_input,
                        "wgrad": backward_weight}.get(pass_, forward)

    def torch_steps(self, torch, device):
        return torch_conv_steps(torch, self.shape, device)


POOL_OPS = {"max": "max_pool2d", "avg": "avg_pool2d", "lp2": "lp_pool2d", "global": "adaptive_avg_pool2d"}


class PoolCase2d:
    """forward, and forward + backward; max pooling's forward also returns (and backward reads) int64 indices."""

    family = "pool2d"

    def __init__(self, case: PoolCase):
        self.case, self.name = case, case.name
        op = POOL_OPS[case.kind]
        self.passes = {"fwd": (f"{op}_forward",), "fwd+bwd": (f"{op}_forward", f"{op}_backward")}
        self.dims = str(case.shape)
        if case.kind == "global":
            self.geometry = pool2d.adaptive_pool2d_geometry("adaptive_avg_pool2d", case.shape, 1)
        else:
            self.geometry = pool2d.pool2d_geometry(POOL_OPS[case.kind], case.shape, case.kernel, case.stride, case.padding)

    def host_inputs(self):
        return {"x": _random(self.case.shape, 0), "dy": _random(output_shape(self.case), 1)}

    def steps(self, x, dy):
        c = self.case
        k, s, p = c.kernel, c.stride, c.padding
        if c.kind == "max":
            def forward():
                y, indices = pool2d.max_pool2d_forward(x, k, s, p)
                return {"y": y, "indices": indices}

            def backward(out):
                return pool2d.max_pool2d_backward(dy, out["indices"], x.shape, k, s, p)
        elif c.kind == "avg":
            def forward():
                return {"y": pool2d.avg_pool2d_forward(x, k, s, p)}

            def backward(out):
                return pool2d.avg_pool2d_backward(dy, x.shape, k, s, p)
        elif c.kind == "lp2":
            def forward():
                return {"y": pool2d.lp_pool2d_forward(x, 2, k, s)}

            def backward(out):
                return pool2d.lp_pool2d_backward(dy, x, out["y"], 2, k, s)
        else:
            def forward():
                return {"y": pool2d.adaptive_avg_pool2d_forward(x, 1)}

            def backward(out):
                return pool2d.adaptive_avg_pool2d_backward(dy, x.shape, 1)

        def forward_backward():
            out = forward()
            return {**out, "dx": backward(out)}

        return {"fwd": forward, "fwd+bwd": forward_backward}

    def reference(self, x, dy):
        g, kind = self.geometry, self.case.kind
        if kind == "max":
            y, indices = pool_reference.max_pool2d_forward(x, g)
            return {"y": y, "indices": indices, "dx": pool_reference.max_pool2d_backward(dy, indices, g)}
        if kind == "avg":
            return {"y": pool_reference.avg_pool2d_forward(x, g, True, None),
                    "dx": pool_reference.avg_pool2d_backward(dy, g, True, None)}
        if kind == "lp2":
            y = pool_reference.lp_pool2d_forward(x, g, 2.0)
            return {"y": y, "dx": pool_reference.lp_pool2d_backward(dy, x, y, g, 2.0)}
        return {"y": pool_reference.adaptive_avg_pool2d_forward(x, g),
                "dx": pool_reference.adaptive_avg_pool2d_backward(dy, g)}

    def _sizes(self):
        x, y = int(np.prod(self.case.shape)), int(np.prod(output_shape(self.case)))
        return x, y, (y if self.case.kind == "max" else 0)

    def flops(self, pass_):
        x, y, _ = self._sizes()
        taps = x if self.case.kind == "global" else y * self.case.kernel**2
        return taps * (2 if pass_ == "fwd+bwd" else 1)

    def bytes(self, pass_):
        """fwd: x in, y (and int64 indices) out; bwd: dy (and indices, or x and y for Lp) in, dx out."""
        x, y, indices = self._sizes()
        forward = BYTES * (x + y) + 8 * indices
        if pass_ == "fwd":
            return forward
        lp_inputs = BYTES * (x + y) if self.case.kind == "lp2" else 0
        return forward + BYTES * (y + x) + 8 * indices + lp_inputs

    def torch_steps(self, torch, device):
        host = self.host_inputs()
        forward, _, both = torch_pool_steps(torch, self.case, host["x"], host["dy"], device)
        return {"fwd": forward, "fwd+bwd": both}


BN_OPS = ("batchnorm_forward_train", "batchnorm_backward")


class BatchNormCase:
    """Training-mode batch norm with weight and bias: forward (y and the statistics), and forward + backward.
    Memory-bound like pooling: reported against the copy bandwidth."""

    family = "batchnorm"
    passes = {"fwd": BN_OPS[:1], "fwd+bwd": BN_OPS}

    def __init__(self, shape: tuple[int, ...]):
        self.shape, self.name, self.dims = shape, "bn_" + "x".join(map(str, shape[1:])), str(shape)

    def host_inputs(self):
        C = self.shape[1]
        return {"x": _random(self.shape, 0), "w": _random((C,), 1), "b": _random((C,), 2), "dy": _random(self.shape, 3)}

    def steps(self, x, w, b, dy):
        def forward():
            return dict(zip(("y", "mean", "var", "inv_std"), batchnorm.batchnorm_forward_train(x, w, b)))

        def forward_backward():
            out = forward()
            return {**out, **dict(zip(("dx", "dw", "db"), batchnorm.batchnorm_backward(dy, x, w, out["mean"], out["inv_std"])))}

        return {"fwd": forward, "fwd+bwd": forward_backward}

    def reference(self, x, w, b, dy):
        ncl = (self.shape[0], self.shape[1], -1)
        y, mean, var, inv_std = batchnorm_reference.batchnorm_forward_train(x.reshape(ncl), w, b, 1e-5)
        dx, dw, db = batchnorm_reference.batchnorm_backward(dy.reshape(ncl), x.reshape(ncl), w, mean, inv_std)
        return {"y": y.reshape(self.shape), "mean": mean, "var": var, "inv_std": inv_std, "dx": dx.reshape(self.shape),
                "dw": dw, "db": db}

    def flops(self, pass_):
        return int(np.prod(self.shape)) * (7 + (12 if pass_ == "fwd+bwd" else 0))

    def bytes(self, pass_):
        """fwd: x in, y out, weight and bias in, three statistics out; bwd: dy, x in, dx out, w and two statistics in,
        two gradients out."""
        size, C = int(np.prod(self.shape)), self.shape[1]
        forward = BYTES * (2 * size + 5 * C)
        return forward + (BYTES * (3 * size + 5 * C) if pass_ == "fwd+bwd" else 0)

    def torch_steps(self, torch, device):
        """``batch_norm(training=True)`` (cuDNN's on a GPU); its backward through autograd, as PyTorch runs it."""
        x, w, b, dy = (torch.from_numpy(v).to(device) for v in self.host_inputs().values())
        xg, wg, bg = (v.clone().requires_grad_() for v in (x, w, b))
        F = torch.nn.functional

        def forward_backward():
            return torch.autograd.grad(F.batch_norm(xg, None, None, wg, bg, training=True), (xg, wg, bg), dy)

        return {"fwd": lambda: F.batch_norm(x, None, None, w, b, training=True), "fwd+bwd": forward_backward}


class ActivationCase:
    """An activation's backward pass, dL/dx from dL/dy and the saved output y (relu: PyTorch's
    threshold_backward). Memory-bound: at least two reads and one write per element."""

    family = "activation"
    passes = {"bwd": ("activation_backward",)}

    def __init__(self, spec: tuple[str, tuple[int, ...]]):
        self.activation, self.shape = spec
        self.name, self.dims = f"{self.activation}_" + "x".join(map(str, self.shape[1:])), str(self.shape)

    def host_inputs(self):
        x = _random(self.shape, 0)
        y = {"relu": lambda: np.maximum(x, 0), "tanh": lambda: np.tanh(x),
             "sigmoid": lambda: (1 / (1 + np.exp(-x))).astype(np.float32)}[self.activation]()
        return {"g": _random(self.shape, 1), "y": y}

    def steps(self, g, y):
        return {"bwd": lambda: {"dx": activation.activation_backward(self.activation, g, y)}}

    def reference(self, g, y):
        return {"dx": activation_reference.activation_backward(self.activation, g, y)}

    def flops(self, pass_):
        return int(np.prod(self.shape)) * (1 if self.activation == "relu" else 3)

    def bytes(self, pass_):
        return BYTES * 3 * int(np.prod(self.shape))

    def torch_steps(self, torch, device):
        """ATen's own backward kernels, as autograd calls them."""
        g, y = (torch.from_numpy(v).to(device) for v in self.host_inputs().values())
        aten = torch.ops.aten
        step = {"relu": lambda: aten.threshold_backward(g, y, 0), "tanh": lambda: aten.tanh_backward(g, y),
                "sigmoid": lambda: aten.sigmoid_backward(g, y)}[self.activation]
        return {"bwd": step}


class SoftmaxXentCase:
    """Softmax cross-entropy over (N, C) logits: forward (per-sample losses and the softmax), and forward +
    backward. Memory-bound: the logits read, the softmax written, then read back for the gradient."""

    family = "softmax_xent"
    passes = {"fwd": ("softmax_xent_forward",), "fwd+bwd": ("softmax_xent_forward", "softmax_xent_backward")}

    def __init__(self, shape: tuple[int, int]):
        self.shape, self.name, self.dims = shape, f"xent_{shape[0]}x{shape[1]}", str(shape)

    def host_inputs(self):
        n, c = self.shape
        targets = np.random.default_rng(2).integers(0, c, n).astype(np.int64)
        return {"logits": _random(self.shape, 0), "targets": targets, "grad": _random((n,), 1)}

    def steps(self, logits, targets, grad):
        def forward():
            losses, probs = softmax_xent.softmax_xent_forward(logits, targets)
            return {"losses": losses, "probs": probs}

        def forward_backward():
            out = forward()
            return {**out, "dlogits": softmax_xent.softmax_xent_backward(out["probs"], targets, grad)}

        return {"fwd": forward, "fwd+bwd": forward_backward}

    def reference(self, logits, targets, grad):
        losses, probs = softmax_xent_reference.softmax_xent_forward(logits, targets, -100)
        return {"losses": losses, "probs": probs,
                "dlogits": softmax_xent_reference.softmax_xent_backward(probs, targets, grad, -100)}

    def flops(self, pass_):
        """About 4 per element forward (max, subtract, exponential, normalise) and 2 backward."""
        return int(np.prod(self.shape)) * (4 + (2 if pass_ == "fwd+bwd" else 0))

    def bytes(self, pass_):
        """fwd: logits in, softmax out, targets in, losses out; bwd: softmax in, gradient out, targets and the
        per-sample gradients in."""
        n, c = self.shape
        forward = BYTES * (2 * n * c + n) + 8 * n
        return forward + (BYTES * (2 * n * c + n) + 8 * n if pass_ == "fwd+bwd" else 0)

    def torch_steps(self, torch, device):
        """``cross_entropy(reduction="none")`` and its backward through autograd."""
        logits, targets, grad = (torch.from_numpy(v).to(device) for v in self.host_inputs().values())
        xg = logits.clone().requires_grad_()
        F = torch.nn.functional

        def forward_backward():
            return torch.autograd.grad(F.cross_entropy(xg, targets, reduction="none"), xg, grad)

        return {"fwd": lambda: F.cross_entropy(logits, targets, reduction="none"), "fwd+bwd": forward_backward}


def _scaled(shape: ConvShape, batch: int) -> ConvShape:
    return dataclasses.replace(shape, N=batch)


def _pool_scaled(case: PoolCase, batch: int) -> PoolCase:
    return dataclasses.replace(case, shape=(batch,) + case.shape[1:])


CNN_BATCHNORM = [(128, 16, 32, 32), (128, 32, 16, 16), (128, 64, 8, 8)]  # ResNet-20's three stages
# ReLU at ResNet-20's first stage and LeNet-5's C1 output; tanh and sigmoid at C1 (the classic LeNet)
CNN_ACTIVATION = [("relu", (128, 16, 32, 32)), ("relu", (64, 6, 28, 28)), ("tanh", (64, 6, 28, 28)),
                  ("sigmoid", (64, 6, 28, 28))]


SHAPE_SETS = {
    "tiny": {
        "matmul": [(8, 8, 8), (5, 17, 3), (32, 32, 32)],
        "conv2d": [ConvShape("tiny_3x3", 2, 3, 8, 8, 4, 3, padding=1), ConvShape("tiny_5x5_s2", 2, 2, 9, 9, 3, 5, stride=2, padding=2)],
        "pool2d": [PoolCase("max_2x2s2", "max", (2, 3, 8, 8)), PoolCase("avg_3x3s2p1", "avg", (2, 3, 9, 9), 3, 2, 1),
                   PoolCase("lp2_2x2s2", "lp2", (2, 2, 6, 6)), PoolCase("global_avg", "global", (2, 4, 5, 5))],
        "batchnorm": [(2, 3, 5, 5)],
        "activation": [("relu", (2, 3, 5, 5)), ("tanh", (2, 3, 5, 5)), ("sigmoid", (4, 7))],
        "softmax_xent": [(4, 10)],
    },
    "small": {
        "matmul": [(n, n, n) for n in (64, 128, 256, 512)],
        "conv2d": [_scaled(s, 8) for s in CNN_CONV],
        "pool2d": [_pool_scaled(c, 8) for c in CNN_POOL],
        "batchnorm": [(8,) + shape[1:] for shape in CNN_BATCHNORM],
        "activation": [(name, (8,) + shape[1:]) for name, shape in CNN_ACTIVATION],
        "softmax_xent": [(64, 10)],
    },
    "cnn": {
        "matmul": [(64, 400, 120), (64, 120, 84), (128, 64, 10), (512, 512, 512)],
        "conv2d": CNN_CONV,
        "pool2d": CNN_POOL,
        "batchnorm": CNN_BATCHNORM,
        "activation": CNN_ACTIVATION,
        "softmax_xent": [(64, 10), (128, 10), (1024, 1000)],
    },
    "large": {
        "matmul": [(n, n, n) for n in (128, 256, 512, 1024, 2048, 4096)],
        "conv2d": [ConvShape("r18_64x56x56_3x3", 32, 64, 56, 56, 64, 3, padding=1),
                   ConvShape("r18_128x28x28_3x3", 32, 128, 28, 28, 128, 3, padding=1),
                   ConvShape("r18_256x14x14_3x3", 32, 256, 14, 14, 256, 3, padding=1),
                   ConvShape("r18_512x7x7_3x3", 32, 512, 7, 7, 512, 3, padding=1)],
        "pool2d": [PoolCase("max_3x3s2p1", "max", (32, 64, 112, 112), 3, 2, 1), PoolCase("global_avg", "global", (32, 512, 7, 7))],
        "batchnorm": [(32, 64, 56, 56), (32, 512, 7, 7)],
        "activation": [("relu", (32, 64, 112, 112))],
        "softmax_xent": [(4096, 1000)],
    },
}


def cases(family: str, shape_set: str) -> list:
    make = {"matmul": lambda spec: MatmulCase(*spec), "conv2d": ConvCase, "pool2d": PoolCase2d, "batchnorm": BatchNormCase,
            "activation": ActivationCase, "softmax_xent": SoftmaxXentCase}
    return [make[family](spec) for spec in SHAPE_SETS[shape_set][family]]
