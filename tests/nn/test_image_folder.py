"""nn.data.ImageFolder and DatasetFolder on small trees of PNG (and .npy) files built in a temporary directory:
torchvision's layout and attributes, loading, transforms, and the errors for a tree that holds nothing."""

import os

import numpy as np
import pytest
from PIL import Image

import tensorlib as tl
from nn.data import DataLoader, DatasetFolder, ImageFolder
from nn.data import transforms as T
from nn.data.datasets.folder import IMG_EXTENSIONS, find_classes, has_file_allowed_extension, make_dataset

RNG = np.random.default_rng(0)


def write_png(path, array):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(array).save(path)
    return array


@pytest.fixture
def tree(tmp_path):
    """root/{dog, cat, emu}: PNGs (one nested, one with an upper-case extension, one grayscale), plus files that
    are not images; returns (root, {path: array as loaded in RGB})."""
    root = tmp_path / "animals"
    images = {}
    for relative in ("dog/b.png", "dog/a.png", "dog/puppies/c.png", "cat/x.PNG", "emu/1.png"):
        path = str(root / relative)
        images[path] = write_png(path, RNG.integers(0, 256, size=(5, 7, 3), dtype=np.uint8))
    gray = write_png(str(root / "cat/gray.png"), RNG.integers(0, 256, size=(5, 7), dtype=np.uint8))
    images[str(root / "cat/gray.png")] = np.repeat(gray[..., None], 3, axis=2)
    (root / "dog/notes.txt").write_text("not an image")
    (root / "README.md").write_text("a file at the root is not a class")
    return str(root), images


def test_classes_samples_and_targets_follow_torchvisions_layout(tree):
    root, images = tree
    dataset = ImageFolder(root)
    assert dataset.classes == ["cat", "dog", "emu"]
    assert dataset.class_to_idx == {"cat": 0, "dog": 1, "emu": 2}
    expected = [(os.path.join(root, "cat", "gray.png"), 0), (os.path.join(root, "cat", "x.PNG"), 0),
                (os.path.join(root, "dog", "a.png"), 1), (os.path.join(root, "dog", "b.png"), 1),
                (os.path.join(root, "dog", "puppies", "c.png"), 1), (os.path.join(root, "emu", "1.png"), 2)]
    assert dataset.samples == expected and dataset.imgs is dataset.samples
    assert dataset.targets == [0, 0, 1, 1, 1, 2] and len(dataset) == 6
    assert dataset.root == root and dataset.extensions == IMG_EXTENSIONS
    for index, (path, target) in enumerate(expected):
        picture, label = dataset[index]
        assert isinstance(picture, Image.Image) and picture.mode == "RGB" and label == target
        np.testing.assert_array_equal(np.asarray(picture), images[path])
    assert repr(dataset).splitlines()[:3] == ["Dataset ImageFolder", "    Number of datapoints: 6",
                                              f"    Root location: {root}"]


def test_transforms_and_a_loader_batch(tree):
    root, images = tree
    dataset = ImageFolder(root, transform=T.Compose([T.RandomHorizontalFlip(p=1.0), T.ToTensor()]),
                          target_transform=lambda target: target * 10)
    picture, label = dataset[2]
    assert label == 10 and picture.shape == (3, 5, 7) and picture.dtype == tl.float32
    np.testing.assert_allclose(picture.numpy(), images[dataset.samples[2][0]][:, ::-1].transpose(2, 0, 1) / 255,
                               rtol=1e-6)
    batches = list(DataLoader(dataset, batch_size=4))
    assert [tuple(b[0].shape) for b in batches] == [(4, 3, 5, 7), (2, 3, 5, 7)]
    np.testing.assert_array_equal(np.concatenate([b[1].numpy() for b in batches]), [0, 0, 10, 10, 10, 20])


def test_is_valid_file_and_a_custom_loader(tree, tmp_path):
    root, _ = tree
    only_a = ImageFolder(root, is_valid_file=lambda path: os.path.basename(path) in ("a.png", "x.PNG", "1.png"))
    assert [os.path.basename(p) for p, _ in only_a.samples] == ["x.PNG", "a.png", "1.png"]
    assert only_a.extensions is None
    arrays = tmp_path / "arrays"
    for name, label in (("zero", 0), ("one", 1)):
        os.makedirs(arrays / name)
        np.save(arrays / name / "s.npy", np.full((2, 2), label))
    dataset = DatasetFolder(str(arrays), loader=np.load, extensions=(".npy",))
    assert dataset.classes == ["one", "zero"] and [t for _, t in dataset.samples] == [0, 1]
    sample, target = dataset[1]
    assert target == 1
    np.testing.assert_array_equal(sample, np.zeros((2, 2)))


def test_a_tree_without_classes_or_files_names_the_root(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "stray.png").write_bytes(b"")
    with pytest.raises(FileNotFoundError, match=f"Couldn't find any class folder in '{empty}'"):
        ImageFolder(str(empty))
    with pytest.raises(FileNotFoundError, match="the dataset directory '.*missing' does not exist"):
        ImageFolder(str(tmp_path / "missing"))
    write_png(str(tmp_path / "partial" / "cat" / "1.png"), np.zeros((2, 2, 3), np.uint8))
    os.makedirs(tmp_path / "partial" / "dog")
    (tmp_path / "partial" / "dog" / "notes.txt").write_text("")
    with pytest.raises(FileNotFoundError, match=f"Found no valid file for the classes dog in "
                                                f"'{tmp_path / 'partial'}' \\(supported extensions: .jpg, .jpeg"):
        ImageFolder(str(tmp_path / "partial"))
    allowed = ImageFolder(str(tmp_path / "partial"), allow_empty=True)
    assert allowed.classes == ["cat", "dog"] and allowed.targets == [0]


def test_the_module_functions():
    assert has_file_allowed_extension("a/B.JPeG", IMG_EXTENSIONS) and not has_file_allowed_extension("a.txt", ".png")
    assert has_file_allowed_extension("x.npy", ".npy")
    with pytest.raises(ValueError, match="exactly one of extensions and is_valid_file must be given"):
        make_dataset(".", {"a": 0}, extensions=(".png",), is_valid_file=bool)
    with pytest.raises(ValueError, match="class_to_idx must have at least one entry"):
        make_dataset(".", {}, extensions=(".png",))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        find_classes("/nonexistent/tensorlib-root")
