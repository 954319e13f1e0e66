"""Datasets read from a directory tree with one folder per class, as torchvision's ``DatasetFolder`` and
``ImageFolder``:

    root/dog/xxx.png
    root/dog/nested/xxy.png
    root/cat/123.png

The classes are the sorted names of root's subdirectories, numbered from 0 in that order; each class's files
are found recursively (following links) and listed in sorted order, class by class.
"""

from __future__ import annotations

import os

from nn.data.dataset import Dataset

IMG_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")


def has_file_allowed_extension(filename: str, extensions) -> bool:
    """Whether ``filename`` ends in one of ``extensions`` (a string or a sequence of them), ignoring case."""
    return filename.lower().endswith(extensions if isinstance(extensions, str) else tuple(extensions))


def is_image_file(filename: str) -> bool:
    """Whether ``filename`` has one of ``IMG_EXTENSIONS``."""
    return has_file_allowed_extension(filename, IMG_EXTENSIONS)


def find_classes(directory) -> tuple[list[str], dict[str, int]]:
    """(the sorted names of the subdirectories of ``directory``, {name: index}); FileNotFoundError naming the
    directory when it has none."""
    directory = os.fspath(directory)
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"the dataset directory {directory!r} does not exist")
    classes = sorted(entry.name for entry in os.scandir(directory) if entry.is_dir())
    if not classes:
        raise FileNotFoundError(f"Couldn't find any class folder in {directory!r}: expected one subdirectory per "
                                f"class, e.g. {os.path.join(directory, 'cat', '1.png')!r}")
    return classes, {name: index for index, name in enumerate(classes)}


def make_dataset(directory, class_to_idx: dict[str, int] | None = None, extensions=None, is_valid_file=None,
                 allow_empty: bool = False) -> list[tuple[str, int]]:
    """The (path, class index) of every file under ``directory/<class>`` for the classes of ``class_to_idx``
    (by default ``find_classes(directory)``) that passes ``is_valid_file(path)`` or has one of
    ``extensions`` (exactly one of the two must be given). A class without any such file is an error unless
    ``allow_empty``."""
    directory = os.path.expanduser(os.fspath(directory))
    if class_to_idx is None:
        _, class_to_idx = find_classes(directory)
    elif not class_to_idx:
        raise ValueError("class_to_idx must have at least one entry to collect any samples")
    if (extensions is None) == (is_valid_file is None):
        raise ValueError("exactly one of extensions and is_valid_file must be given, got "
                         f"extensions={extensions!r} and is_valid_file={is_valid_file!r}")
    if extensions is not None:
        def is_valid_file(path: str) -> bool:
            return has_file_allowed_extension(path, extensions)

    samples, found = [], set()
    for name in sorted(class_to_idx):
        class_directory = os.path.join(directory, name)
        if not os.path.isdir(class_directory):
            continue
        for folder, _, filenames in sorted(os.walk(class_directory, followlinks=True)):
            for filename in sorted(filenames):
                path = os.path.join(folder, filename)
                if is_valid_file(path):
                    samples.append((path, class_to_idx[name]))
                    found.add(name)
    empty = sorted(set(class_to_idx) - found)
    if empty and not allow_empty:
        expected = "" if extensions is None else " (supported extensions: " + (
            extensions if isinstance(extensions, str) else ", ".join(extensions)) + ")"
        raise FileNotFoundError(f"Found no valid file for the classes {', '.join(empty)} in {directory!r}"
                                f"{expected}")
    return samples


def pil_loader(path: str):
    """The image at ``path`` as an RGB PIL image (read fully, so the file is closed)."""
    from PIL import Image

    with open(path, "rb") as file:
        return Image.open(file).convert("RGB")


default_loader = pil_loader


class DatasetFolder(Dataset):
    """Samples read with ``loader(path)`` from a tree of class folders (see the module docstring).

    Sample ``i`` is ``(transform(loader(path)), target_transform(class index))``, each transform skipped when
    None. Attributes as torchvision's: ``classes`` (sorted folder names), ``class_to_idx``, ``samples`` (a list of
    (path, class index)), ``targets`` (the class indices), ``extensions``, ``loader``, ``root``. Subclasses may
    override ``find_classes`` and ``make_dataset`` to read another layout.
    """

    def __init__(self, root, loader, extensions=None, transform=None, target_transform=None, is_valid_file=None,
                 allow_empty: bool = False):
        self.root = os.path.expanduser(os.fspath(root))
        self.transform, self.target_transform = transform, target_transform
        classes, class_to_idx = self.find_classes(self.root)
        self.samples = self.make_dataset(self.root, class_to_idx, extensions, is_valid_file, allow_empty)
        self.loader, self.extensions = loader, extensions
        self.classes, self.class_to_idx = classes, class_to_idx
        self.targets = [target for _, target in self.samples]

    @staticmethod
    def make_dataset(directory, class_to_idx, extensions=None, is_valid_file=None, allow_empty: bool = False):
        """See the module function ``make_dataset``."""
        return make_dataset(directory, class_to_idx, extensions, is_valid_file, allow_empty)

    def find_classes(self, directory) -> tuple[list[str], dict[str, int]]:
        """See the module function ``find_classes``."""
        return find_classes(directory)

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index):
        path, target = self.samples[index]
        sample = self.loader(path)
        if self.transform is not None:
            sample = self.transform(sample)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return sample, target

    def __repr__(self) -> str:
        lines = [f"Dataset {type(self).__name__}", f"    Number of datapoints: {len(self)}",
                 f"    Root location: {self.root}"]
        for name in ("transform", "target_transform"):
            if getattr(self, name) is not None:
                lines.append(f"    {name}: {getattr(self, name)!r}".replace("\n", "\n    "))
        return "\n".join(lines)


class ImageFolder(DatasetFolder):
    """Images in a tree of class folders (see the module docstring): the files with one of ``IMG_EXTENSIONS``
    (or those ``is_valid_file(path)`` accepts), read by ``loader`` (default: PIL, converted to RGB), as
    torchvision's ``ImageFolder``. Without a ``transform`` a sample is a PIL image; pass e.g.
    ``transforms.ToTensor()`` to batch them with ``DataLoader``. ``imgs`` is ``samples``."""

    def __init__(self, root, transform=None, target_transform=None, loader=default_loader, is_valid_file=None,
                 allow_empty: bool = False):
        super().__init__(root, loader, IMG_EXTENSIONS if is_valid_file is None else None, transform=transform,
                         target_transform=target_transform, is_valid_file=is_valid_file, allow_empty=allow_empty)
        self.imgs = self.samples
