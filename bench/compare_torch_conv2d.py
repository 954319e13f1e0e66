"""tensorlib's CPU conv2d against PyTorch eager, side by side in one process, at the benchmark shapes.

    PYTHONPATH=. python bench/compare_torch_conv2d.py [--repeats 20] [--rounds 3] [--only NAME]

"forward+backward" is forward, backward_input, backward_weight and backward_bias for tensorlib, and
``conv2d`` plus ``aten.convolution_backward`` (what autograd calls) for PyTorch. Both run on the thread
count the BLAS reports; they are timed by ``bench.timing.measure`` (rounds taken in turn after a pause that
lets the other library's worker threads go to sleep; each cell keeps its lowest round median: on a shared
machine another process inflates whole runs, and the lowest median is the one least disturbed).
Without PyTorch installed only tensorlib's times are printed.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

import numpy as np

from bench.machine import blas_pools, blas_threads
from bench.timing import CpuTimer, measure

from kernels.conv2d import conv2d_backward_bias, conv2d_backward_input, conv2d_backward_weight, conv2d_forward
from kernels.conv2d import conv2d_geometry


@dataclass(frozen=True)
class ConvShape:
    name: str
    N: int
    C: int
    H: int
    W: int
    K: int
    R: int
    stride: int = 1
    padding: int = 0

    @property
    def geometry(self):
        return conv2d_geometry((self.N, self.C, self.H, self.W), (self.K, self.C, self.R, self.R), self.stride, self.padding)

    def arrays(self, dtype=np.float32, seed=0):
        """Fresh random x, w, b and an output gradient dy."""
        rng = np.random.default_rng(seed)
        g = self.geometry
        return tuple(rng.standard_normal(shape).astype(dtype) for shape in (g.x_shape, g.w_shape, (g.K,), g.y_shape))


SHAPES = [
    ConvShape("lenet_c1", 64, 1, 28, 28, 6, 5, padding=2),
    ConvShape("lenet_c3", 64, 6, 14, 14, 16, 5),
    ConvShape("c16_32x32_3x3", 128, 16, 32, 32, 16, 3, padding=1),
    ConvShape("c64_8x8_3x3", 128, 64, 8, 8, 64, 3, padding=1),
    ConvShape("c16_32x32_3x3_s2", 128, 16, 32, 32, 32, 3, stride=2, padding=1),
    ConvShape("c64_16x16_1x1", 128, 64, 16, 16, 32, 1),
]


def tensorlib_steps(shape, dtype=np.float32):
    """(forward, forward+backward) closures over fresh arrays of ``shape``."""
    x, w, b, dy = shape.arrays(dtype)
    s, p = shape.stride, shape.padding

    def forward():
        return conv2d_forward(x, w, b, s, p)

    def forward_backward():
        conv2d_forward(x, w, b, s, p)
        conv2d_backward_input(dy, w, x.shape, s, p)
        conv2d_backward_weight(dy, x, w.shape, s, p)
        conv2d_backward_bias(dy)

    return forward, forward_backward


def torch_steps(torch, shape, device="cpu"):
    """PyTorch's closures by pass, on tensors on ``device``: "fwd"; "fwd+relu" (conv2d, then an in-place ReLU:
    eager PyTorch does not fuse them); "fwd+bwd" (conv2d and ``aten.convolution_backward``, what autograd
    calls, for all three gradients); "dgrad" and "wgrad" (that op for the input or the weight gradient alone)."""
    x, w, b, dy = (torch.from_numpy(a).to(device) for a in shape.arrays())
    s, p = [shape.stride] * 2, [shape.padding] * 2
    F = torch.nn.functional

    def backward(mask):
        return torch.ops.aten.convolution_backward(dy, x, w, [shape.K], s, p, [1, 1], False, [0, 0], 1, mask)

    def forward_backward():
        return F.conv2d(x, w, b, s, p), backward([True, True, True])

    return {"fwd": lambda: F.conv2d(x, w, b, s, p), "fwd+relu": lambda: F.relu_(F.conv2d(x, w, b, s, p)),
            "fwd+bwd": forward_backward, "dgrad": lambda: backward([True, False, False]),
            "wgrad": lambda: backward([False, True, False])}


SETTLE_S = 0.3  # pause before each round: the other library's worker threads go to sleep


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=20, help="timed calls per median")
    parser.add_argument("--rounds", type=int, default=3, help="medians per cell; the lowest is kept")
    parser.add_argument("--only", help="run only the shape with this name")
    args = parser.parse_args(argv)

    blas, threads = ", ".join(blas_pools()) or "no BLAS found by threadpoolctl", blas_threads()
    print(f"numpy {np.__version__}, BLAS: {blas}")
    try:
        import torch
    except ImportError:
        torch = None
        print("PyTorch not installed: tensorlib only")
    else:
        torch.set_num_threads(threads)
        print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")

    header = f"{'shape':<18} {'pass':<9} {'ours ms':>9} {'GFLOP/s':>8}"
    if torch is not None:
        header += f" {'torch ms':>9} {'GFLOP/s':>8} {'ours/torch':>10}"
    print(header)
    for shape in SHAPES:
        if args.only and shape.name != args.only:
            continue
        flops = shape.geometry.flops
        ours = dict(zip(("fwd", "fwd+bwd"), tensorlib_steps(shape)))
        theirs = torch_steps(torch, shape) if torch is not None else None
        for label, passes in (("fwd", 1), ("fwd+bwd", 3)):
            sides = {name: steps[label] for name, steps in (("ours", ours), ("torch", theirs)) if steps}
            timed = measure(sides, CpuTimer(), args.repeats, args.rounds, SETTLE_S)
            times = [timed[name]["median_ms"] for name in sides]
            line = f"{shape.name:<18} {label:<9} {times[0]:9.3f} {passes * flops / times[0] / 1e6:8.1f}"
            if theirs:
                line += f" {times[1]:9.3f} {passes * flops / times[1] / 1e6:8.1f} {times[0] / times[1]:10.2f}"
            print(line, flush=True)


if __name__ == "__main__":
    main()
