"""The NCCL path on one GPU: a 1-rank communicator's all_reduce and broadcast, and one DDP training step."""

import numpy as np
import pytest

import tensorlib as tl
from nn import optim, parallel
from nn.losses import CrossEntropyLoss
from nn.models import lenet5


@pytest.mark.gpu
def test_nccl_one_rank_collectives_and_training_step():
    if not parallel.nccl_available():
        pytest.skip("CuPy found no NCCL library (pip install nvidia-nccl-cu13)")
    parallel.init_process_group(backend="nccl", device="cuda")
    try:
        values = np.random.default_rng(0).standard_normal(1000).astype(np.float32)
        t = tl.tensor(values, device="cuda")
        parallel.all_reduce(t, op="sum")
        parallel.broadcast(t, src=0)
        parallel.barrier()
        np.testing.assert_allclose(t.cpu().numpy(), values, rtol=1e-6)

        tl.manual_seed(0)
        model = lenet5().to("cuda")
        ddp = parallel.DistributedDataParallel(model)
        optimizer = optim.SGD(ddp.parameters(), lr=0.1)
        images, labels = tl.randn(8, 1, 28, 28, device="cuda"), tl.tensor(np.arange(8) % 10, device="cuda")
        CrossEntropyLoss()(ddp(images), labels).backward()
        grad = model.conv1.weight.grad.cpu().numpy().copy()
        ddp.sync_gradients()  # one rank: the average is the gradient itself
        np.testing.assert_allclose(model.conv1.weight.grad.cpu().numpy(), grad, rtol=1e-6)
        before = model.conv1.weight.cpu().numpy().copy()
        optimizer.step()
        assert not np.array_equal(model.conv1.weight.cpu().numpy(), before)
    finally:
        parallel.destroy_process_group()


@pytest.mark.gpu
def test_nccl_all_reduce_inside_a_captured_step():
    """NCCL collectives are stream operations, so a DDP step with its bucketed all-reduce is captured into
    the graph with the rest; on one rank, the graphed run equals the eager one."""
    import nn

    if not parallel.nccl_available():
        pytest.skip("CuPy found no NCCL library (pip install nvidia-nccl-cu13)")
    parallel.init_process_group(backend="nccl", device="cuda")
    try:
        rng = np.random.default_rng(0)
        batches = [(tl.tensor(rng.standard_normal((8, 1, 28, 28)).astype(np.float32), device="cuda"),
                    tl.tensor(rng.integers(0, 10, 8), device="cuda")) for _ in range(4)]
        runs = []
        for graphed in (False, True):
            tl.manual_seed(0)
            ddp = parallel.DistributedDataParallel(lenet5().to("cuda"))
            optimizer = optim.SGD(ddp.parameters(), lr=0.05, momentum=0.9)
            step = nn.GraphedStep(ddp, optimizer, warmup=1) if graphed else None
            losses = []
            for images, labels in batches:
                if step is None:
                    optimizer.zero_grad()
                    loss = CrossEntropyLoss()(ddp(images), labels)
                    loss.backward()
                    ddp.sync_gradients()
                    optimizer.step()
                else:
                    loss, _ = step(images, labels)
                losses.append(loss.item())
            runs.append((losses, ddp.module.conv1.weight.cpu().numpy()))
        assert step.replays == 3
        np.testing.assert_allclose(runs[1][0], runs[0][0], rtol=1e-6)
        np.testing.assert_allclose(runs[1][1], runs[0][1], rtol=1e-6, atol=1e-7)
    finally:
        parallel.destroy_process_group()
