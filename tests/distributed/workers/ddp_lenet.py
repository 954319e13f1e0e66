"""Two ranks train LeNet-5 with DistributedDataParallel through the Trainer for a few steps; rank 0 then trains
one process on the concatenated global batches and checks that the weights agree (to 1e-5 relative).

Each rank's loss is the mean over its half of the global batch and DDP averages the gradients, so each step
follows the gradient of the mean loss over the global batch, as the single process does.
"""

import numpy as np

import tensorlib as tl
from nn import optim, parallel
from nn.data import DataLoader, DistributedSampler, DistributedShard, TensorDataset
from nn.losses import CrossEntropyLoss
from nn.models import lenet5
from nn.train import Trainer

STEPS, PER_RANK = 3, 8


def make_optimizer(model):
    return optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)


parallel.init_process_group(device="cpu")  # host collectives, also where a GPU is present
rank, world = parallel.get_rank(), parallel.get_world_size()
with parallel.abort_on_error():
    rng = np.random.default_rng(7)
    images = rng.standard_normal((STEPS * PER_RANK * world, 1, 28, 28)).astype(np.float32)
    labels = rng.integers(0, 10, size=len(images))
    dataset = TensorDataset(images, labels)

    tl.manual_seed(rank)  # different initial weights: DDP must replace them with rank 0's
    model = parallel.DistributedDataParallel(lenet5())
    # No shuffle: rank r gets samples r, r + world, ...; so step k of all ranks covers global batch k.
    shard = DistributedShard(dataset, DistributedSampler(dataset, shuffle=False))
    loader = DataLoader(shard, batch_size=PER_RANK)
    trainer = Trainer(model, make_optimizer(model), log=lambda *_: None, progress=False)
    trainer.fit(loader, epochs=1)
    assert trainer.batch == 0 and trainer.epoch == 1, "one full epoch expected"
    trained = model.state_dict()
    assert "conv1.weight" in trained, "state_dict keys are the wrapped module's"

    # Every rank holds the same weights: compare with rank 0's.
    for key, value in trained.items():
        reference = tl.tensor(value)  # a copy
        parallel.broadcast(reference, src=0)
        np.testing.assert_array_equal(value, reference.numpy(), err_msg=f"{key} differs between ranks")

    if rank == 0:
        tl.manual_seed(0)
        single = lenet5()
        optimizer, loss_fn = make_optimizer(single), CrossEntropyLoss()
        for inputs, targets in DataLoader(dataset, batch_size=PER_RANK * world):
            optimizer.zero_grad()
            loss_fn(single(inputs), targets).backward()
            optimizer.step()
        worst = 0.0
        for key, expected in single.state_dict().items():
            relative = np.linalg.norm(trained[key] - expected) / np.linalg.norm(expected)
            worst = max(worst, relative)
            assert relative <= 1e-5, f"{key}: relative difference {relative:.2e} to one process on the global batch"
        moved = max(np.linalg.norm(trained[k] - v) / np.linalg.norm(v) for k, v in lenet5().state_dict().items())
        assert moved > 1e-3, "training did not change the weights"
        print(f"ddp matches one process: worst relative difference {worst:.1e}", flush=True)
    parallel.destroy_process_group()
