"""Save and load state dicts as safetensors files: PyTorch key names, never pickle, atomic writes.

A model's state dict (a flat mapping of names to tensors or arrays) becomes a plain safetensors file that
``safetensors.torch.load_file`` reads. Nested state (an optimizer's, a training checkpoint's) is flattened
to dotted keys for its arrays; everything else (numbers, strings, lists) is kept as JSON in the file's
metadata together with the layout, so ``load`` rebuilds the same structure, every array given back as a
Tensor (as ``torch.load`` gives tensors). A SHA-256 of the array bytes and of the layout in the metadata lets
``load`` reject a file whose contents were altered, numbers and strings of the layout (a checkpoint's epoch,
say) included.

Format versions (the ``tensorlib.format`` metadata key): 2 checksums the arrays and the layout; files written
before it carry no version and their checksum covers the arrays only, which ``load`` still checks. Both store
tensors and NumPy arrays alike, as arrays.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import warnings
from collections import OrderedDict
from collections.abc import Mapping

import numpy as np

import tensorlib as tl
from nn.module import Module
from tensorlib.device import move, normalize_device

LAYOUT_KEY = "tensorlib.layout"
CHECKSUM_KEY = "tensorlib.sha256"
FORMAT_KEY = "tensorlib.format"
FORMAT_VERSION = "2"


class CheckpointError(ValueError):
    """A file that is not a readable checkpoint, or does not fit the model it is loaded into."""


def _as_array(value):
    if isinstance(value, tl.Tensor):
        value = value.array
    return np.asarray(move(value, "cpu"), order="C")  # (ascontiguousarray would make 0-d arrays 1-d)


def _flatten(value, prefix, arrays):
    """The JSON layout of ``value``; arrays are moved into ``arrays`` under dotted keys."""
    if isinstance(value, (tl.Tensor, np.ndarray)) or type(value).__module__.startswith("cupy"):
        if prefix in arrays:
            raise ValueError(f"two arrays would be stored under the same key {prefix!r}")
        arrays[prefix] = _as_array(value)
        return {"__array__": prefix}
    if isinstance(value, dict):
        for key in value:
            if isinstance(key, bool) or not isinstance(key, (str, int)):
                raise TypeError(f"state keys must be str or int, got {key!r}")
        return {"__dict__": [[key, _flatten(item, f"{prefix}.{key}" if prefix else str(key), arrays)]
                             for key, item in value.items()]}
    if isinstance(value, (list, tuple)):
        return {"__list__": [_flatten(item, f"{prefix}.{i}" if prefix else str(i), arrays) for i, item in enumerate(value)],
                "tuple": isinstance(value, tuple)}
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"cannot save a value of type {type(value).__name__} at {prefix!r}")


def _unflatten(layout, arrays):
    """The structure ``_flatten`` described; KeyError, TypeError or ValueError when ``layout`` is malformed
    (``_flatten`` writes every mapping, list and array as a marked JSON object, everything else as a JSON scalar)."""
    if isinstance(layout, dict):
        if "__array__" in layout:
            return arrays[layout["__array__"]]
        if "__dict__" in layout:
            return OrderedDict((key, _unflatten(item, arrays)) for key, item in layout["__dict__"])
        if "__list__" in layout:
            items = [_unflatten(item, arrays) for item in layout["__list__"]]
            return tuple(items) if layout.get("tuple") else items
        raise ValueError(f"an object without __array__, __dict__ or __list__: {json.dumps(layout)[:80]}")
    if isinstance(layout, list):
        raise ValueError(f"a bare list where a value or a marked object belongs: {json.dumps(layout)[:80]}")
    return layout


def _checksum(arrays, layout_text: str | None) -> str:
    """SHA-256 of the arrays (names, dtypes, shapes, bytes) and, from format 2 on, of the layout's JSON text."""
    digest = hashlib.sha256()
    if layout_text is not None:
        digest.update(layout_text.encode())
    for key in sorted(arrays):
        digest.update(key.encode())
        digest.update(str(arrays[key].dtype).encode() + str(arrays[key].shape).encode())
        digest.update(arrays[key].tobytes())
    return digest.hexdigest()


def save(obj, path) -> None:
    """Write ``obj`` (a state dict, or a nested mapping of them; tensors and arrays, numbers, strings, lists) to
    ``path`` atomically. Tensors are stored as arrays on the host, whatever their device.

    The file is written next to its destination and renamed over it only once complete, so a crash in
    the middle leaves any previous file intact.
    """
    from safetensors.numpy import save as to_bytes

    if isinstance(obj, Module):
        raise TypeError(f"save expects a mapping (a state dict), got the module {type(obj).__name__} itself: save "
                        "model.state_dict() (this format holds arrays and JSON, never code), then rebuild the model "
                        "and call model.load_state_dict(nn.load(path))")
    if isinstance(obj, tl.Tensor) or not isinstance(obj, dict):
        raise TypeError(f"save expects a mapping (a state dict), got {type(obj).__name__}")
    arrays: dict[str, np.ndarray] = {}
    layout = _flatten(obj, "", arrays)
    layout_text = json.dumps(layout)
    metadata = {LAYOUT_KEY: layout_text, CHECKSUM_KEY: _checksum(arrays, layout_text), FORMAT_KEY: FORMAT_VERSION}
    payload = to_bytes(arrays, metadata=metadata)
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=".safetensors")
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes the file private (0600); give it the mode open() would
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


def _umask() -> int:
    current = os.umask(0)  # the only way to read it is to set it
    os.umask(current)
    return current


def _read(path):
    from safetensors import SafetensorError
    from safetensors.numpy import load as from_bytes

    path = os.fspath(path)
    try:
        with open(path, "rb") as handle:
            payload = handle.read()
    except FileNotFoundError:
        raise CheckpointError(f"{path}: no such checkpoint file") from None
    try:
        arrays = from_bytes(payload)
    except (SafetensorError, ValueError, OverflowError) as error:
        raise CheckpointError(f"{path}: not a valid safetensors file (truncated or corrupt): {error}") from None
    header_size = int.from_bytes(payload[:8], "little")
    try:
        metadata = json.loads(payload[8:8 + header_size]).get("__metadata__") or {}
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise CheckpointError(f"{path}: unreadable header: {error}") from None
    return path, arrays, metadata


def load(path, map_location=None, *, weights_only=None, model=None, strict: bool = True):
    """Read a file written by ``save`` (or any safetensors file) back into the saved structure, every array as a
    Tensor (on the CPU unless ``map_location`` says otherwise).

    ``map_location``: a device ("cpu", "cuda", "cuda:0"); a mapping from the saved location to a device (the file
    holds host arrays, so its "cpu" entry applies); or a callable ``f(tensor, "cpu")`` returning the tensor to use
    (None: keep it). ``weights_only``: the file never holds pickled objects, so every load is weights-only;
    ``weights_only=False`` cannot load anything more (a warning says so). With ``model``, the state dict is also
    loaded into it; a file that does not fit the model raises ``CheckpointError`` naming the file and the first
    offending key, and leaves the model unchanged.
    """
    place = _placement(map_location)
    if weights_only is not None and not isinstance(weights_only, bool):
        raise TypeError(f"weights_only must be True, False or None, got {weights_only!r}")
    if weights_only is False:
        warnings.warn("load(weights_only=False): safetensors checkpoints never use pickle, they hold arrays and JSON "
                      "only, so the file loads as with weights_only=True", stacklevel=2)
    path, arrays, metadata = _read(path)
    version = metadata.get(FORMAT_KEY)
    if version not in (None, FORMAT_VERSION):
        raise CheckpointError(f"{path}: format version {version!r} is not one this tensorlib reads "
                              f"(it reads {FORMAT_VERSION} and the unversioned files written before it)")
    expected = metadata.get(CHECKSUM_KEY)
    covered = metadata.get(LAYOUT_KEY) if version is not None else None
    if expected is not None and _checksum(arrays, covered) != expected:
        raise CheckpointError(f"{path}: contents do not match the checksum recorded when it was saved "
                              "(altered or damaged since)")
    tensors = {key: place(tl.Tensor._make(array)) for key, array in arrays.items()}
    if LAYOUT_KEY in metadata:
        try:
            layout = json.loads(metadata[LAYOUT_KEY])
            if not (isinstance(layout, dict) and "__dict__" in layout):  # save writes mappings only
                raise ValueError(f"the top level is {json.dumps(layout)[:80]}, not the mapping save writes")
            state = _unflatten(layout, tensors)
        except (json.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as error:
            raise CheckpointError(f"{path}: corrupt layout metadata ({type(error).__name__}: {error})") from None
    else:
        state = OrderedDict(sorted(tensors.items()))
    if model is not None:
        load_into(model, state, path, strict)
    return state


def _placement(map_location):
    """``map_location`` as a function from a loaded (host) tensor to the tensor ``load`` returns."""
    if map_location is None:
        return lambda tensor: tensor
    if isinstance(map_location, Module):
        raise TypeError(f"map_location got a {type(map_location).__name__} module: pass the model to load into "
                        f"as model=")
    if callable(map_location):
        def place(tensor):
            placed = map_location(tensor, "cpu")
            if placed is not None and not isinstance(placed, tl.Tensor):
                raise TypeError(f"map_location returned a {type(placed).__name__}; expected a Tensor or None")
            return tensor if placed is None else placed
        return place
    if isinstance(map_location, Mapping):
        target = map_location.get("cpu", "cpu")
    elif isinstance(map_location, str) or type(map_location).__name__ == "device":
        target = map_location
    else:
        raise TypeError(f"map_location must be a device, a mapping of devices or a callable, got "
                        f"{type(map_location).__name__} {map_location!r}")
    try:
        device = normalize_device(target)
    except ValueError as error:
        raise ValueError(f"map_location: {error}") from None
    return lambda tensor: tensor.to(device)


def load_into(model, state, source="state dict", strict: bool = True):
    """``model.load_state_dict(state)`` with an error that names ``source`` and the first offending key."""
    own = model.state_dict()
    for key, tensor in own.items():
        if key not in state:
            if strict:
                raise CheckpointError(f"{source}: missing key {key!r} expected by {type(model).__name__}")
            continue
        shape = tuple(np.shape(state[key]))
        if shape != tensor.shape:
            raise CheckpointError(f"{source}: key {key!r} has shape {shape}, {type(model).__name__} expects {tensor.shape}")
    unexpected = [key for key in state if key not in own]
    if strict and unexpected:
        raise CheckpointError(f"{source}: unexpected key {unexpected[0]!r} for {type(model).__name__}")
    return model.load_state_dict(state, strict=strict)
