"""Data-parallel scaling on the CPU: a LeNet-5 step (64 images per rank, SGD with momentum) in one process and
on every rank of an MPI job, and how much of it ``sync_gradients`` takes.

    python -m bench.scaling                                   # one process
    mpiexec -n 2 python -m bench.scaling                      # two ranks (add --allow-run-as-root as root)

Prints, from rank 0, the median ms per step over ``--steps`` steps after ``--warmup``, the images per second
of the whole job (ranks x 64 / step time), and the median of the gradient all-reduce. Each rank times its own
steps; the ranks meet in every all-reduce, so their step times agree.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import tensorlib as tl
from nn import optim, parallel
from nn.losses import CrossEntropyLoss
from nn.models import lenet5


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--batch", type=int, default=64, help="images per rank")
    args = parser.parse_args(argv)
    parallel.init_process_group(device="cpu")
    rank, world = parallel.get_rank(), parallel.get_world_size()
    with parallel.abort_on_error():
        rng = np.random.default_rng(rank)
        images = tl.tensor(rng.standard_normal((args.batch, 1, 28, 28)).astype(np.float32))
        labels = tl.tensor(rng.integers(0, 10, args.batch))
        model = parallel.DistributedDataParallel(lenet5())
        optimizer, loss_fn = optim.SGD(model.parameters(), lr=0.01, momentum=0.9), CrossEntropyLoss()
        steps, syncs = [], []
        for i in range(args.warmup + args.steps):
            start = time.perf_counter()
            optimizer.zero_grad()
            loss_fn(model(images), labels).backward()
            before_sync = time.perf_counter()
            model.sync_gradients()
            after_sync = time.perf_counter()
            optimizer.step()
            if i >= args.warmup:
                steps.append(time.perf_counter() - start)
                syncs.append(after_sync - before_sync)
        step_ms, sync_ms = 1e3 * np.median(steps), 1e3 * np.median(syncs)
        if rank == 0:
            print(f"{world} rank(s) x {args.batch} images: {step_ms:.2f} ms/step, "
                  f"{world * args.batch / step_ms * 1e3:,.0f} images/s, sync_gradients {sync_ms:.2f} ms")
    parallel.destroy_process_group()


if __name__ == "__main__":
    main()
