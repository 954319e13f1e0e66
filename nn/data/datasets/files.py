"""Finding and reading dataset files in a directory the user names (nothing is ever downloaded)."""

from __future__ import annotations

import gzip
import os
import zlib

from nn.data.datasets.base import DatasetFormatError


def find_files(name: str, root, subdirs, filenames, gz: bool = False) -> dict[str, str]:
    """The path of each of ``filenames`` in the first of ``root/<subdir>`` that holds it (also as
    ``<file>.gz`` when ``gz``); FileNotFoundError naming the directories searched and the files expected."""
    root = os.fspath(root)
    if not os.path.isdir(root):
        raise FileNotFoundError(f"{name}: the dataset directory {root!r} does not exist")
    directories = [os.path.join(root, subdir) if subdir else root for subdir in subdirs]
    found, missing = {}, []
    for filename in filenames:
        names = (filename, filename + ".gz") if gz else (filename,)
        candidates = [os.path.join(directory, name) for directory in directories for name in names]
        path = next((c for c in candidates if os.path.isfile(c)), None)
        if path is None:
            missing.append(filename)
        found[filename] = path
    if missing:
        expected = ", ".join(f"{f} (or {f}.gz)" if gz else f for f in missing)
        raise FileNotFoundError(f"{name}: missing {expected}; looked in {directories}")
    return found


def read_bytes(path: str) -> bytes:
    """The contents of ``path``, gunzipped when the name ends in .gz."""
    if not path.endswith(".gz"):
        with open(path, "rb") as file:
            return file.read()
    try:
        with gzip.open(path, "rb") as file:
            return file.read()
    except (EOFError, OSError, zlib.error) as error:
        raise DatasetFormatError(f"{path}: not a valid gzip file ({error})") from None
