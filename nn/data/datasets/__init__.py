"""Datasets, all read offline: embedded real digits, standard files in a directory, image trees with one folder per
class, and synthetic shapes."""

from nn.data.datasets.base import DatasetFormatError, ImageDataset
from nn.data.datasets.cifar import CIFAR10, RestrictedUnpickler
from nn.data.datasets.embedded import MNISTEmbedded, SklearnDigits
from nn.data.datasets.folder import IMG_EXTENSIONS, DatasetFolder, ImageFolder
from nn.data.datasets.mnist import MNIST, FashionMNIST
from nn.data.datasets.registry import DATASETS, get_dataset
from nn.data.datasets.synthetic import SyntheticShapes

__all__ = [
    "CIFAR10", "DATASETS", "DatasetFolder", "DatasetFormatError", "FashionMNIST", "IMG_EXTENSIONS", "ImageDataset",
    "ImageFolder", "MNIST", "MNISTEmbedded", "RestrictedUnpickler", "SklearnDigits", "SyntheticShapes", "get_dataset",
]
