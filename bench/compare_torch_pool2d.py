"""tensorlib's CPU pooling against PyTorch eager, side by side in one process, at the benchmark shapes.

    PYTHONPATH=. python bench/compare_torch_pool2d.py [--repeats 20] [--rounds 5] [--only NAME]

"bwd" is the backward kernel alone (for PyTorch the aten op autograd calls: max_pool2d_with_indices_backward,
avg_pool2d_backward, ...); "fwd+bwd" runs both back to back. Outputs are compared with PyTorch's before
timing, which is ``bench.timing.measure``'s (rounds in turn, lowest round median kept). Without PyTorch
installed only tensorlib's times are printed.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

import numpy as np

from bench.timing import CpuTimer, measure

from kernels import pool2d


@dataclass(frozen=True)
class PoolCase:
    name: str
    kind: str  # "max", "avg", "lp2" or "global"
    shape: tuple[int, int, int, int]
    kernel: int = 2
    stride: int = 2
    padding: int = 0


CASES = [
    PoolCase("max_2x2s2", "max", (128, 16, 32, 32)),
    PoolCase("max_3x3s2p1", "max", (128, 16, 32, 32), 3, 2, 1),
    PoolCase("max_3x3s1p1", "max", (128, 16, 32, 32), 3, 1, 1),
    PoolCase("avg_2x2s2", "avg", (128, 16, 32, 32)),
    PoolCase("avg_3x3s2p1", "avg", (128, 16, 32, 32), 3, 2, 1),
    PoolCase("lp2_2x2s2", "lp2", (128, 16, 32, 32)),
    PoolCase("global_avg", "global", (128, 64, 8, 8)),
]


def output_shape(case):
    if case.kind == "global":
        return case.shape[:2] + (1, 1)
    return case.shape[:2] + tuple(
        pool2d.pool_output_size(size, case.kernel, case.stride, case.padding, 1, False) for size in case.shape[2:]
    )


def tensorlib_steps(case, x, dy):
    """(forward, backward, forward+backward) closures for ``case``; the last two return dx, forward
    returns y (and the indices, for max pooling)."""
    k, s, p = case.kernel, case.stride, case.padding
    if case.kind == "max":
        forward = lambda: pool2d.max_pool2d_forward(x, k, s, p)  # noqa: E731
        indices = forward()[1]
        backward = lambda: pool2d.max_pool2d_backward(dy, indices, x.shape, k, s, p)  # noqa: E731
        both = lambda: pool2d.max_pool2d_backward(dy, forward()[1], x.shape, k, s, p)  # noqa: E731
    elif case.kind == "avg":
        forward = lambda: pool2d.avg_pool2d_forward(x, k, s, p)  # noqa: E731
        backward = lambda: pool2d.avg_pool2d_backward(dy, x.shape, k, s, p)  # noqa: E731
        both = lambda: (forward(), backward())[1]  # noqa: E731
    elif case.kind == "lp2":
        forward = lambda: pool2d.lp_pool2d_forward(x, 2, k, s)  # noqa: E731
        y = forward()
        backward = lambda: pool2d.lp_pool2d_backward(dy, x, y, 2, k, s)  # noqa: E731
        both = lambda: pool2d.lp_pool2d_backward(dy, x, forward(), 2, k, s)  # noqa: E731
    else:
        forward = lambda: pool2d.adaptive_avg_pool2d_forward(x, 1)  # noqa: E731
        backward = lambda: pool2d.adaptive_avg_pool2d_backward(dy, x.shape, 1)  # noqa: E731
        both = lambda: (forward(), backward())[1]  # noqa: E731
    return forward, backward, both


def torch_steps(torch, case, x, dy, device="cpu"):
    """The same closures in PyTorch, on tensors on ``device``. Its lp_pool2d is a composite with no backward
    op of its own, so there only forward+backward is timed, through autograd."""
    F, aten = torch.nn.functional, torch.ops.aten
    x, dy = torch.from_numpy(x).to(device), torch.from_numpy(dy).to(device)
    k, s, p = [case.kernel] * 2, [case.stride] * 2, [case.padding] * 2
    if case.kind == "max":
        forward = lambda: F.max_pool2d(x, k, s, p, return_indices=True)  # noqa: E731
        indices = forward()[1]
        backward = lambda: aten.max_pool2d_with_indices_backward(dy, x, k, s, p, [1, 1], False, indices)  # noqa: E731
        both = lambda: aten.max_pool2d_with_indices_backward(dy, x, k, s, p, [1, 1], False, forward()[1])  # noqa: E731
    elif case.kind == "avg":
        forward = lambda: F.avg_pool2d(x, k, s, p)  # noqa: E731
        backward = lambda: aten.avg_pool2d_backward(dy, x, k, s, p, False, True, None)  # noqa: E731
        both = lambda: (forward(), backward())[1]  # noqa: E731
    elif case.kind == "lp2":
        xg = x.clone().requires_grad_()
        forward = lambda: F.lp_pool2d(x, 2, k, s)  # noqa: E731
        backward = None
        both = lambda: torch.autograd.grad(F.lp_pool2d(xg, 2, k, s), xg, dy)[0]  # noqa: E731
    else:
        forward = lambda: F.adaptive_avg_pool2d(x, 1)  # noqa: E731
        backward = lambda: aten._adaptive_avg_pool2d_backward(dy, x)  # noqa: E731
        both = lambda: (forward(), backward())[1]  # noqa: E731
    return forward, backward, both


def check_against_torch(case, ours, theirs):
    """Forward outputs (with max pooling's indices) and the gradient must agree with PyTorch's."""
    for label, mine, reference in (("fwd", ours[0](), theirs[0]()), ("fwd+bwd", ours[2](), theirs[2]())):
        for a, b in zip(mine if isinstance(mine, tuple) else (mine,), reference if isinstance(reference, tuple) else (reference,)):
            np.testing.assert_allclose(a, b.numpy(), rtol=1e-4, atol=1e-5, err_msg=f"{case.name} {label}")


SETTLE_S = 0.3  # pause before each round: the other library's worker threads go to sleep


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--only", help="run only the case with this name")
    args = parser.parse_args(argv)

    import numba

    print(f"numpy {np.__version__}, numba {numba.__version__} ({numba.get_num_threads()} threads)")
    try:
        import torch
    except ImportError:
        torch = None
        print("PyTorch not installed: tensorlib only")
    else:
        torch.set_num_threads(numba.get_num_threads())
        print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")

    header = f"{'case':<14} {'shape':<17} {'pass':<8} {'ours ms':>8}"
    if torch is not None:
        header += f" {'torch ms':>9} {'ours/torch':>10}"
    print(header)
    for case in CASES:
        if args.only and case.name != args.only:
            continue
        rng = np.random.default_rng(0)
        x = rng.standard_normal(case.shape).astype(np.float32)
        dy = rng.standard_normal(output_shape(case)).astype(np.float32)
        ours = tensorlib_steps(case, x, dy)
        theirs = torch_steps(torch, case, x, dy) if torch is not None else None
        if theirs:
            check_against_torch(case, ours, theirs)
        for index, label in enumerate(("fwd", "bwd", "fwd+bwd")):
            sides = {"ours": ours[index]}
            if theirs and theirs[index] is not None:
                sides["torch"] = theirs[index]
            timed = measure(sides, CpuTimer(), args.repeats, args.rounds, SETTLE_S)
            mine = timed["ours"]["median_ms"]
            line = f"{case.name:<14} {str(case.shape):<17} {label:<8} {mine:8.3f}"
            if "torch" in timed:
                their = timed["torch"]["median_ms"]
                line += f" {their:9.3f} {mine / their:10.2f}"
            print(line, flush=True)

if __name__ == "__main__":
    main()
