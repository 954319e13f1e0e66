"""Rank 1 raises in the middle of a DDP training epoch; the job must end (non-zero) instead of rank 0 waiting
forever in its next all-reduce."""

import numpy as np

from nn import optim, parallel
from nn.data import DataLoader, DistributedSampler, DistributedShard, TensorDataset
from nn.models import lenet5
from nn.train import Trainer

parallel.init_process_group(device="cpu")  # host collectives, also where a GPU is present


def fail_on_rank_1(trainer):
    if parallel.get_rank() == 1 and trainer.batch == 2:
        raise ValueError("injected failure at batch 2")


with parallel.abort_on_error():
    rng = np.random.default_rng(0)
    dataset = TensorDataset(rng.standard_normal((64, 1, 28, 28)).astype(np.float32), rng.integers(0, 10, size=64))
    model = parallel.DistributedDataParallel(lenet5())
    trainer = Trainer(model, optim.SGD(model.parameters(), lr=0.01), log=lambda *_: None, progress=False)
    trainer.add_callback(fail_on_rank_1)
    trainer.fit(DataLoader(DistributedShard(dataset, DistributedSampler(dataset)), batch_size=4), epochs=100)
print("unreachable: training finished", flush=True)
