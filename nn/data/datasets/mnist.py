"""``MNIST`` and ``FashionMNIST`` from the standard IDX files in a directory the user names."""

from __future__ import annotations

import numpy as np

from nn.data.datasets.base import DatasetFormatError, ImageDataset
from nn.data.datasets.files import find_files, read_bytes

IMAGES_MAGIC, LABELS_MAGIC = 2051, 2049  # 0x00000803: unsigned bytes, 3 dims; 0x00000801: 1 dim


class MNIST(ImageDataset):
    """MNIST (60,000 train / 10,000 test 28x28 digits) read from the IDX files ``train-images-idx3-ubyte``,
    ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte`` and ``t10k-labels-idx1-ubyte``, plain or
    gzipped (``.gz``), in ``root`` or ``root/MNIST/raw`` (torchvision's layout)."""

    classes = ("0 - zero", "1 - one", "2 - two", "3 - three", "4 - four",
               "5 - five", "6 - six", "7 - seven", "8 - eight", "9 - nine")
    mean, std = (0.1307,), (0.3081,)

    def __init__(self, root, train: bool = True, transform=None, target_transform=None):
        prefix = "train" if train else "t10k"
        images_name, labels_name = f"{prefix}-images-idx3-ubyte", f"{prefix}-labels-idx1-ubyte"
        name = type(self).__name__
        paths = find_files(name, root, ("", f"{name}/raw"), (images_name, labels_name), gz=True)
        images = read_idx(paths[images_name], IMAGES_MAGIC)
        labels = read_idx(paths[labels_name], LABELS_MAGIC)
        if len(images) != len(labels):
            raise DatasetFormatError(
                f"{paths[images_name]} holds {len(images)} images but {paths[labels_name]} holds {len(labels)} labels"
            )
        if len(labels) and labels.max() >= len(self.classes):
            raise DatasetFormatError(
                f"{paths[labels_name]}: label {labels.max()} out of range 0..{len(self.classes) - 1}"
            )
        super().__init__(images, labels, "train" if train else "test", transform, target_transform)


class FashionMNIST(MNIST):
    """Fashion-MNIST: the same IDX files and layout as ``MNIST`` (``root`` or ``root/FashionMNIST/raw``),
    28x28 grey images of 10 kinds of clothing."""

    classes = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
    mean, std = (0.2860,), (0.3530,)


def read_idx(path: str, magic: int) -> np.ndarray:
    """An IDX file of unsigned bytes: a big-endian header (magic, then one uint32 size per dim) and the data."""
    data = read_bytes(path)
    ndim = magic & 0xFF
    header = 4 * (1 + ndim)
    if len(data) < header:
        raise DatasetFormatError(f"{path}: truncated: {len(data)} bytes, shorter than its {header}-byte header")
    found, *shape = np.frombuffer(data, dtype=">u4", count=1 + ndim).tolist()
    if found != magic:
        raise DatasetFormatError(
            f"{path}: wrong magic number {found} (0x{found:08x}), expected {magic} (0x{magic:08x})"
        )
    expected = header + int(np.prod(shape))
    if len(data) != expected:
        problem = "truncated" if len(data) < expected else "has trailing bytes"
        raise DatasetFormatError(
            f"{path}: {problem}: its header promises shape {tuple(shape)}, {expected} bytes, the file has {len(data)}"
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)
