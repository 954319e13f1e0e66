"""``ImageDataset``: labelled images held in memory, the base of every concrete dataset here."""

from __future__ import annotations

import importlib.util
import os

import numpy as np

import tensorlib as tl
from nn.data.collate import default_collate
from nn.data.dataset import Dataset
from nn.data.transforms import Compose, ToTensor


class DatasetFormatError(ValueError):
    """A dataset file exists but its contents are not what its format promises."""


class ImageDataset(Dataset):
    """Images (N, H, W) or (N, H, W, C), uint8 in 0..255 or float in [0, 1], and their labels (N,).

    Sample ``i`` is ``(image, label)``: the image is ``transform(raw HW/HWC image)``, by default ``ToTensor()``
    (a float32 CHW tensor in [0, 1]); the label is an int, or ``target_transform(label)``.

    ``get_batch`` gathers a whole batch with one fancy-indexing operation and applies the ``batchable``
    transforms (``ToTensor``, ``Normalize``; the trailing ones of a ``Compose``) to the batch at once; other
    transforms (a random crop, say) run once per sample, which costs far more than the gather.
    Subclasses set ``classes``, ``mean`` and ``std`` (per channel, for ``Normalize``).
    """

    classes: tuple = ()
    mean: tuple = ()
    std: tuple = ()

    def __init__(self, images, labels, split: str | None, transform=None, target_transform=None):
        if len(images) != len(labels):
            raise ValueError(f"{len(images)} images but {len(labels)} labels")
        self.images, self.labels = images, np.asarray(labels, dtype=np.int64)
        self.split = split
        self.transform = transform if transform is not None else ToTensor()
        self.target_transform = target_transform

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def input_size(self) -> tuple[int, int, int]:
        """(C, H, W) of an image after ``ToTensor``."""
        _, height, width, *channels = self.images.shape
        return (channels[0] if channels else 1, height, width)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index):
        label = int(self.labels[index])
        if self.target_transform is not None:
            label = self.target_transform(label)
        return self.transform(self.images[index]), label

    def get_batch(self, indices):
        per_sample, batched = _split_transform(self.transform)
        images = self.images[indices]
        if per_sample is not None:
            samples = [per_sample(image) for image in images]
            stack_raw = batched is not None and isinstance(samples[0], np.ndarray)
            images = np.stack(samples) if stack_raw else default_collate(samples)
        if batched is not None:
            images = batched.apply_batch(images)
        labels = self.labels[indices]
        if self.target_transform is None:
            return [images, tl.Tensor._make(labels)]
        return [images, default_collate([self.target_transform(int(label)) for label in labels])]

    def __repr__(self) -> str:
        split = "" if self.split is None else f"split={self.split!r}, "
        return f"{type(self).__name__}({split}samples={len(self)}, input_size={self.input_size})"


def _split_transform(transform):
    """``transform`` as (per-sample part, batchable part), either possibly None: a ``Compose`` ending in
    batchable steps runs its other steps per sample and those on the whole batch, in the same order."""
    if getattr(transform, "batchable", False):
        return None, transform
    if not isinstance(transform, Compose):
        return transform, None
    steps = transform.transforms
    first_batchable = len(steps)
    while first_batchable and getattr(steps[first_batchable - 1], "batchable", False):
        first_batchable -= 1
    batched = Compose(steps[first_batchable:]) if first_batchable < len(steps) else None
    return Compose(steps[:first_batchable]), batched


def check_split(split: str) -> str:
    if split not in ("train", "test"):
        raise ValueError(f'split must be "train" or "test", got {split!r}')
    return split


def package_file(package: str, relative_path: str, purpose: str, distribution: str | None = None) -> str:
    """The path of a data file shipped inside an installed ``package`` (pip's name: ``distribution``), found
    without importing the package."""
    distribution = distribution or package
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(
            f"{purpose} needs the Python package {package!r}, which is not installed; install it with "
            f"`pip install {distribution}`"
        )
    for location in spec.submodule_search_locations:
        path = os.path.join(location, relative_path)
        if os.path.isfile(path):
            return path
    raise FileNotFoundError(
        f"{purpose}: the installed package {package!r} has no file {relative_path!r} "
        f"(looked in {list(spec.submodule_search_locations)}); reinstall it with "
        f"`pip install --force-reinstall {distribution}`"
    )


def stratified_split(labels, test_fraction: float, seed: int):
    """Fixed (train, test) index arrays: in a seeded random order, the first ``test_fraction`` of each
    class goes to test, the rest to train; both keep that random order."""
    order = np.random.default_rng(seed).permutation(len(labels))
    ordered = labels[order]
    in_test = np.zeros(len(labels), dtype=bool)
    for label in np.unique(labels):
        members = order[ordered == label]
        in_test[members[: round(test_fraction * len(members))]] = True
    return order[~in_test[order]], order[in_test[order]]
