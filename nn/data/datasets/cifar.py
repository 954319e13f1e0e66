"""``CIFAR10`` from its binary or Python version, in a directory the user names."""

from __future__ import annotations

import os
import pickle

import numpy as np

from nn.data.datasets.base import DatasetFormatError, ImageDataset
from nn.data.datasets.files import find_files, read_bytes

_RECORD = 1 + 3 * 32 * 32  # the binary version: a label byte, then the red, green and blue 32x32 planes


class CIFAR10(ImageDataset):
    """CIFAR-10 (50,000 train / 10,000 test 32x32 colour images, 10 classes).

    Reads ``root/cifar-10-batches-bin/{data_batch_1..5,test_batch}.bin`` (records of 1 label byte and 3072
    pixel bytes) or, when that directory is absent, the Python version ``root/cifar-10-batches-py/{data_batch_1..5,
    test_batch}`` (pickled dicts with ``b"data"``, (N, 3072) uint8, and ``b"labels"``). The pickles go
    through ``RestrictedUnpickler``, which loads NumPy arrays and nothing else. Images are held HWC, as a
    transform receives them.
    """

    classes = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
    mean, std = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)

    def __init__(self, root, train: bool = True, transform=None, target_transform=None):
        names = [f"data_batch_{i}" for i in range(1, 6)] if train else ["test_batch"]
        root = os.fspath(root)
        if os.path.isdir(os.path.join(root, "cifar-10-batches-bin")) or not os.path.isdir(root):
            paths = find_files("CIFAR10", root, ("cifar-10-batches-bin",), [f"{n}.bin" for n in names])
            parts = [_read_binary(path) for path in paths.values()]
        elif os.path.isdir(os.path.join(root, "cifar-10-batches-py")):
            paths = find_files("CIFAR10", root, ("cifar-10-batches-py",), names)
            parts = [_read_pickle(path) for path in paths.values()]
        else:
            raise FileNotFoundError(
                f"CIFAR10: {root!r} holds neither cifar-10-batches-bin/ (the binary version) nor cifar-10-batches-py/ "
                f"(the Python version); expected {', '.join(names)} (.bin in the binary version) in one of them"
            )
        for path, (_, labels) in zip(paths.values(), parts):
            if len(labels) and (labels.min() < 0 or labels.max() >= len(self.classes)):
                bad = labels[(labels < 0) | (labels >= len(self.classes))][0]
                raise DatasetFormatError(f"{path}: label {bad} out of range 0..{len(self.classes) - 1}")
        images = np.concatenate([planes for planes, _ in parts]).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
        labels = np.concatenate([labels for _, labels in parts])
        split = "train" if train else "test"
        super().__init__(np.ascontiguousarray(images), labels, split, transform, target_transform)


def _read_binary(path: str):
    data = read_bytes(path)
    if len(data) % _RECORD:
        raise DatasetFormatError(
            f"{path}: truncated record: {len(data)} bytes is not a whole number of {_RECORD}-byte records "
            f"({len(data) // _RECORD} full records and {len(data) % _RECORD} bytes left over)"
        )
    records = np.frombuffer(data, dtype=np.uint8).reshape(-1, _RECORD)
    return records[:, 1:], records[:, 0].astype(np.int64)


def _read_pickle(path: str):
    with open(path, "rb") as file:
        try:
            batch = RestrictedUnpickler(file, path).load()
        except RefusedGlobal:
            raise
        except (EOFError, pickle.UnpicklingError) as error:
            raise DatasetFormatError(f"{path}: corrupt or truncated pickle ({error})") from None
    if not isinstance(batch, dict):
        raise DatasetFormatError(f"{path}: expected a pickled dict, found {type(batch).__name__}")
    data, labels = (batch.get(key, batch.get(key.decode())) for key in (b"data", b"labels"))
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != _RECORD - 1:
        raise DatasetFormatError(f"{path}: b'data' must be a (N, {_RECORD - 1}) uint8 array, found {_describe(data)}")
    if not hasattr(labels, "__len__") or len(labels) != len(data):
        raise DatasetFormatError(f"{path}: {len(data)} images but {_describe(labels)} for b'labels'")
    return data, np.asarray(labels, dtype=np.int64)


def _describe(value) -> str:
    if isinstance(value, np.ndarray):
        return f"an array of shape {value.shape} and dtype {value.dtype}"
    if hasattr(value, "__len__"):
        return f"a {type(value).__name__} of length {len(value)}"
    return repr(value)


def _numpy_globals() -> dict:
    try:
        from numpy._core import multiarray  # NumPy 2
    except ImportError:
        from numpy.core import multiarray

    allowed = {"_reconstruct": multiarray._reconstruct, "scalar": multiarray.scalar}
    found = {f"{module}.multiarray": allowed for module in ("numpy.core", "numpy._core")}
    found["numpy"] = {"ndarray": np.ndarray, "dtype": np.dtype}
    return found


class RefusedGlobal(DatasetFormatError, pickle.UnpicklingError):
    """A pickle names a global that ``RestrictedUnpickler`` does not allow (a DatasetFormatError, so callers
    that report unreadable dataset files report it too)."""


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that resolves only the globals NumPy needs to rebuild arrays (``_reconstruct``,
    ``scalar``, ``ndarray``, ``dtype``) and refuses any other global before anything runs."""

    ALLOWED = _numpy_globals()

    def __init__(self, file, path: str):
        super().__init__(file, encoding="bytes")  # the CIFAR pickles were written by Python 2
        self.path = path

    def find_class(self, module: str, name: str):
        try:
            return self.ALLOWED[module][name]
        except KeyError:
            raise RefusedGlobal(
                f"{self.path}: refusing to load the global {module}.{name}: only NumPy arrays may be unpickled"
            ) from None
