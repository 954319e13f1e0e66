"""``DistributedSampler``: each rank's share of a dataset, as ``torch.utils.data.distributed.DistributedSampler``,
and ``DistributedShard``, the dataset view that feeds it to a ``DataLoader``.

    sampler = DistributedSampler(train, seed=0)              # rank and world size from nn.parallel
    loader = DataLoader(DistributedShard(train, sampler), batch_size=64)   # shuffle=False: the sampler shuffles
    for epoch in range(epochs):
        loader.dataset.set_epoch(epoch)                      # the Trainer does this
        for images, labels in loader: ...
"""

from __future__ import annotations

import math

import numpy as np

from nn.data.collate import default_collate
from nn.data.dataset import Dataset


class DistributedSampler:
    """The indices rank ``rank`` of ``num_replicas`` visits in one epoch.

    Every rank draws the same permutation (from ``seed + epoch``; ``set_epoch`` before each epoch) and takes
    every ``num_replicas``-th index starting at its rank, so the shards of an epoch are disjoint. Without
    ``drop_last`` the permutation is padded by repeating its first indices up to a multiple of
    ``num_replicas`` (a few samples count twice); with it the tail is dropped. Either way every rank gets
    ``len(self)`` indices, so all run the same number of steps.
    """

    def __init__(self, dataset, num_replicas: int | None = None, rank: int | None = None, shuffle: bool = True,
                 seed: int = 0, drop_last: bool = False):
        if num_replicas is None or rank is None:
            from nn import parallel

            num_replicas = parallel.get_world_size() if num_replicas is None else num_replicas
            rank = parallel.get_rank() if rank is None else rank
        if num_replicas < 1 or not 0 <= rank < num_replicas:
            raise ValueError(f"rank must lie in [0, {num_replicas}), got rank {rank} of {num_replicas} replicas")
        self.dataset, self.num_replicas, self.rank = dataset, num_replicas, rank
        self.shuffle, self.seed, self.drop_last, self.epoch = shuffle, seed, drop_last, 0
        n = len(dataset)
        self.num_samples = n // num_replicas if drop_last else math.ceil(n / num_replicas)
        self.total_size = self.num_samples * num_replicas

    def set_epoch(self, epoch: int):
        self.epoch = epoch

    def indices(self) -> np.ndarray:
        n = len(self.dataset)
        order = np.random.default_rng(self.seed + self.epoch).permutation(n) if self.shuffle else np.arange(n)
        if self.total_size > n:
            order = np.resize(order, self.total_size)  # np.resize repeats from the start
        return order[:self.total_size][self.rank::self.num_replicas]

    def __iter__(self):
        return iter(self.indices().tolist())

    def __len__(self) -> int:
        return self.num_samples


class DistributedShard(Dataset):
    """The samples of ``sampler.dataset`` that ``sampler`` gives this rank in the current epoch, in its order.

    Use it with ``DataLoader(..., shuffle=False)``; ``set_epoch(epoch)`` moves to another epoch's shard. A
    ``DataLoader`` maps its positions to ``base_indices`` itself, in the calling process, when an epoch starts,
    and fetches from the base dataset: its worker processes, which hold a copy of the shard made when they
    started (once, with ``persistent_workers``), never need the current epoch's.
    """

    def __init__(self, dataset, sampler: DistributedSampler):
        self.dataset, self.sampler = dataset, sampler
        self._indices = sampler.indices()

    def set_epoch(self, epoch: int):
        self.sampler.set_epoch(epoch)
        self._indices = self.sampler.indices()

    @property
    def base_indices(self) -> np.ndarray:
        """The index in ``dataset`` of each sample of the current epoch's shard: sample ``i`` is
        ``dataset[base_indices[i]]``."""
        return self._indices

    def __getitem__(self, index):
        return self.dataset[int(self._indices[index])]

    def __len__(self) -> int:
        return len(self._indices)

    def get_batch(self, indices):
        if hasattr(self.dataset, "get_batch"):
            return self.dataset.get_batch(self._indices[indices])
        return default_collate([self[int(i)] for i in indices])
