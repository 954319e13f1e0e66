"""``get_dataset``: the datasets by the names the command line uses."""

from __future__ import annotations

from nn.data.datasets.base import check_split
from nn.data.datasets.cifar import CIFAR10
from nn.data.datasets.embedded import MNISTEmbedded, SklearnDigits
from nn.data.datasets.mnist import MNIST, FashionMNIST
from nn.data.datasets.synthetic import SyntheticShapes


def _from_root(cls):
    def make(root, split, **kwargs):
        if root is None:
            raise ValueError(f"the {cls.__name__} dataset is read from files: give root=<the directory holding them>")
        return cls(root, train=split == "train", **kwargs)

    return make


def _synthetic(root, split, n=None, seed=0, **kwargs):
    """Train and test differ by seed (``seed`` and ``seed + 1``); 2,000 train and 500 test images by default."""
    n = n if n is not None else (2000 if split == "train" else 500)
    return SyntheticShapes(n=n, seed=seed if split == "train" else seed + 1, **kwargs)


# The datasets read from files in a directory the caller names (``root``).
FROM_FILES = ("mnist", "fashion-mnist", "cifar10")

DATASETS = {
    "mnist-embedded": lambda root, split, **kwargs: MNISTEmbedded(split, **kwargs),
    "digits-sklearn": lambda root, split, **kwargs: SklearnDigits(split, **kwargs),
    "mnist": _from_root(MNIST),
    "fashion-mnist": _from_root(FashionMNIST),
    "cifar10": _from_root(CIFAR10),
    "synthetic": _synthetic,
}


def get_dataset(name: str, root=None, split: str = "train", **kwargs):
    """The ``split`` ("train" or "test") of dataset ``name`` (one of ``DATASETS``); ``root`` is the directory
    of the file-based ones; ``kwargs`` go to the dataset (``transform``, ``target_transform``, and for
    "synthetic" ``n``, ``size``, ``channels``, ``num_classes``, ``seed``, ``noise``).

    The result has ``num_classes``, ``input_size`` (C, H, W), ``classes`` and per-channel ``mean``/``std``.
    """
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    return DATASETS[name](root, check_split(split), **kwargs)
