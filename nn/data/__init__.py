"""Data loading with ``torch.utils.data``'s names: datasets, samplers, ``DataLoader`` (with worker processes),
``default_collate``, transforms; torchvision's ``ImageFolder`` for a tree of class folders.

    from nn.data import DataLoader, get_dataset, transforms as T
    train = get_dataset("mnist-embedded", split="train")
    loader = DataLoader(train, batch_size=64, shuffle=True)
    for images, labels in loader:       # float32 (64, 1, 28, 28) in [0, 1], int64 (64,)
        ...
"""

from nn.data import transforms
from nn.data.collate import default_collate, default_convert
from nn.data.dataset import (
    ChainDataset, ConcatDataset, Dataset, IterableDataset, StackDataset, Subset, TensorDataset, random_split,
)
from nn.data.distributed import DistributedSampler, DistributedShard
from nn.data.datasets import (
    CIFAR10, DATASETS, MNIST, DatasetFolder, DatasetFormatError, FashionMNIST, ImageDataset, ImageFolder, MNISTEmbedded,
    RestrictedUnpickler, SklearnDigits, SyntheticShapes, get_dataset,
)
from nn.data.loader import DataLoader
from nn.data.sampler import (
    BatchSampler, RandomSampler, Sampler, SequentialSampler, SubsetRandomSampler, WeightedRandomSampler,
)
from nn.data.worker import WorkerInfo, get_worker_info

__all__ = [
    "BatchSampler", "CIFAR10", "ChainDataset", "ConcatDataset", "DATASETS", "DataLoader", "Dataset", "DatasetFolder",
    "DatasetFormatError", "DistributedSampler", "DistributedShard", "FashionMNIST", "ImageDataset", "ImageFolder",
    "IterableDataset", "MNIST", "MNISTEmbedded",
    "RandomSampler", "RestrictedUnpickler", "Sampler", "SequentialSampler", "SklearnDigits", "StackDataset", "Subset",
    "SubsetRandomSampler", "SyntheticShapes", "TensorDataset", "WeightedRandomSampler", "WorkerInfo",
    "default_collate", "default_convert", "get_dataset", "get_worker_info", "random_split", "transforms",
]
