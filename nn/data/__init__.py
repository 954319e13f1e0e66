"""Data loading with ``torch.utils.data``'s names: datasets, ``DataLoader``, ``default_collate``, transforms.

    from nn.data import DataLoader, get_dataset, transforms as T
    train = get_dataset("mnist-embedded", split="train")
    loader = DataLoader(train, batch_size=64, shuffle=True)
    for images, labels in loader:       # float32 (64, 1, 28, 28) in [0, 1], int64 (64,)
        ...
"""

from nn.data import transforms
from nn.data.collate import default_collate, default_convert
from nn.data.dataset import ConcatDataset, Dataset, Subset, TensorDataset, random_split
from nn.data.distributed import DistributedSampler, DistributedShard
from nn.data.datasets import (
    CIFAR10, DATASETS, MNIST, DatasetFormatError, FashionMNIST, ImageDataset, MNISTEmbedded, RestrictedUnpickler,
    SklearnDigits, SyntheticShapes, get_dataset,
)
from nn.data.loader import DataLoader

__all__ = [
    "CIFAR10", "ConcatDataset", "DATASETS", "DataLoader", "Dataset", "DatasetFormatError", "DistributedSampler",
    "DistributedShard", "FashionMNIST", "ImageDataset", "MNIST",
    "MNISTEmbedded", "RestrictedUnpickler", "SklearnDigits", "Subset", "SyntheticShapes", "TensorDataset",
    "default_collate", "default_convert", "get_dataset", "random_split", "transforms",
]
