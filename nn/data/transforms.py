"""Per-sample image transforms with torchvision's names: ``Compose``, ``ToTensor``, ``Normalize``, ``RandomCrop``,
``RandomHorizontalFlip``.

Layouts follow torchvision, with a NumPy array standing in for a PIL image: a NumPy array is an image in
HWC (or HW) layout, as datasets hand it to their ``transform``; a ``Tensor`` is CHW, as ``ToTensor``
returns it. Random transforms draw from tensorlib's global generator, so ``tl.manual_seed`` makes them
reproducible.

Transforms that treat every sample identically (``ToTensor``, ``Normalize`` and a ``Compose`` of such)
are ``batchable``: ``apply_batch`` transforms a whole batch at once, which the in-memory datasets use to
keep the loader's one-gather-per-batch fast path. A random transform makes that per-sample work again.
"""

from __future__ import annotations

import numbers

import numpy as np

import tensorlib as tl


class Transform:
    """A callable on one sample. ``batchable`` ones also define ``apply_batch`` on a batch (leading dim N)."""

    batchable = False

    def __call__(self, sample):
        raise NotImplementedError

    def apply_batch(self, batch):
        raise TypeError(f"{type(self).__name__} transforms one sample at a time")

    def __repr__(self) -> str:
        args = ", ".join(f"{key}={value!r}" for key, value in vars(self).items())
        return f"{type(self).__name__}({args})"


class Compose(Transform):
    """Apply ``transforms`` in order."""

    def __init__(self, transforms):
        self.transforms = list(transforms)

    @property
    def batchable(self) -> bool:
        return all(getattr(t, "batchable", False) for t in self.transforms)

    def __call__(self, sample):
        for transform in self.transforms:
            sample = transform(sample)
        return sample

    def apply_batch(self, batch):
        for transform in self.transforms:
            batch = transform.apply_batch(batch)
        return batch


class ToTensor(Transform):
    """A NumPy image -> a CHW tensor: uint8 (0..255) becomes float32 in [0, 1]; a float image keeps its values.

    ``layout`` says how a 3-d array is laid out: "HWC" (the default, like the PIL image torchvision's
    ToTensor takes) or "CHW". A 2-d array is one channel (HW).
    """

    batchable = True

    def __init__(self, layout: str = "HWC"):
        if layout not in ("HWC", "CHW"):
            raise ValueError(f'layout must be "HWC" or "CHW", got {layout!r}')
        self.layout = layout

    def __call__(self, image):
        return tl.Tensor._make(self._convert(_numpy(image)[None])[0])

    def apply_batch(self, images):
        return tl.Tensor._make(self._convert(_numpy(images)))

    def _convert(self, images):
        """A batch of HW, HWC or CHW images -> a C-contiguous NCHW float array."""
        if images.ndim == 3:
            images = images[:, None]
        elif images.ndim == 4 and self.layout == "HWC":
            images = images.transpose(0, 3, 1, 2)
        elif images.ndim != 4:
            raise ValueError(f"ToTensor expects HW, HWC or CHW images, got shape {images.shape[1:]}")
        if images.dtype == np.uint8:  # a division, as torchvision's div(255): x * (1/255) is 1 ULP off at times
            converted = images.astype(np.float32, order="C")
            return np.divide(converted, np.float32(255), out=converted)
        if images.dtype.kind == "f":
            return np.ascontiguousarray(images)
        raise TypeError(f"ToTensor expects uint8 or floating-point images, got {images.dtype}")


class Normalize(Transform):
    """``(image - mean[c]) / std[c]`` per channel of a CHW image (a Tensor or float array, as after ToTensor).

    As torchvision: ``mean`` and ``std`` are numbers or one value per channel (a single value applies to every
    channel); they are cast to the image's dtype and applied as a subtraction and then a division (the same
    float32 rounding as ``sub(mean).div(std)``); a std of zero is refused, a negative one is allowed.
    """

    batchable = True

    def __init__(self, mean, std):
        self.mean = _per_channel("mean", mean)
        self.std = _per_channel("std", std)
        if len(self.mean) != len(self.std) and 1 not in (len(self.mean), len(self.std)):
            raise ValueError(f"Normalize: mean and std need the same number of channels (or one value), "
                             f"got mean={self.mean}, std={self.std}")
        if any(s == 0 for s in self.std):
            raise ValueError(f"Normalize: std must not be zero (it divides), got std={self.std}")

    def __call__(self, image):
        data = _data(image)
        if data.dtype.kind != "f":
            raise TypeError(f"Normalize expects a floating-point image (apply ToTensor first), got {data.dtype}")
        channels = max(len(self.mean), len(self.std))
        if data.ndim < 3 or channels not in (1, data.shape[-3]):
            raise ValueError(
                f"Normalize with {channels} channel(s) got an image of shape {data.shape} (CHW expected)"
            )
        mean = np.asarray(self.mean, dtype=data.dtype)[:, None, None]
        std = np.asarray(self.std, dtype=data.dtype)[:, None, None]
        if not std.all():
            raise ValueError(f"Normalize: std={self.std} evaluated to zero after conversion to {data.dtype}, "
                             "leading to division by zero")
        normalized = np.subtract(data, mean)
        return tl.Tensor._make(np.divide(normalized, std, out=normalized))

    apply_batch = __call__


class RandomCrop(Transform):
    """A random ``size`` crop, after zero ``padding`` (an int: all sides; (left/right, top/bottom); or (l, t, r, b))."""

    def __init__(self, size, padding=None):
        self.size = _crop_size(size)
        self.padding = None if padding is None else _padding(padding)

    def __call__(self, image):
        data, (h_axis, w_axis) = _data(image), _spatial_axes(image)
        if self.padding is not None:
            left, top, right, bottom = self.padding
            shape = list(data.shape)
            shape[h_axis] += top + bottom
            shape[w_axis] += left + right
            padded = np.zeros(shape, dtype=data.dtype)
            padded[_window(data.ndim, h_axis, w_axis, top, left, data.shape[h_axis], data.shape[w_axis])] = data
            data = padded
        (height, width), (crop_height, crop_width) = (data.shape[h_axis], data.shape[w_axis]), self.size
        if height < crop_height or width < crop_width:
            raise ValueError(f"RandomCrop: crop size {self.size} is larger than the (padded) image {(height, width)}")
        generator = tl.random.default_generator()
        top = int(generator.integers(0, height - crop_height + 1))
        left = int(generator.integers(0, width - crop_width + 1))
        return _like(image, data[_window(data.ndim, h_axis, w_axis, top, left, crop_height, crop_width)])


class RandomHorizontalFlip(Transform):
    """Mirror the image left-right with probability ``p``."""

    def __init__(self, p: float = 0.5):
        self.p = p

    def __call__(self, image):
        if tl.random.default_generator().random() >= self.p:
            return image
        return _like(image, np.flip(_data(image), axis=_spatial_axes(image)[1]))


def _data(image):
    return image.data if isinstance(image, tl.Tensor) else np.asarray(image)


def _numpy(image):
    if isinstance(image, tl.Tensor):
        raise TypeError("ToTensor expects a NumPy image, got a Tensor")
    return np.asarray(image)


def _like(image, array):
    """``array`` as the same kind (Tensor or NumPy array) as ``image``."""
    return tl.Tensor._make(np.ascontiguousarray(array)) if isinstance(image, tl.Tensor) else array


def _spatial_axes(image) -> tuple[int, int]:
    """The (H, W) axes: the last two of a CHW Tensor; the first two of an HW or HWC NumPy array."""
    ndim = _data(image).ndim
    if ndim < 2:
        raise ValueError(f"expected an image, got shape {_data(image).shape}")
    return (ndim - 2, ndim - 1) if isinstance(image, tl.Tensor) else (0, 1)


def _window(ndim, h_axis, w_axis, top, left, height, width) -> tuple:
    window = [slice(None)] * ndim
    window[h_axis], window[w_axis] = slice(top, top + height), slice(left, left + width)
    return tuple(window)


def _per_channel(name: str, values) -> tuple[float, ...]:
    values = np.atleast_1d(np.asarray(values, dtype=np.float64))
    if values.ndim != 1 or values.size == 0:
        raise ValueError(f"Normalize: {name} must be a number or a sequence of per-channel numbers, got {values}")
    return tuple(float(v) for v in values)


def _crop_size(size) -> tuple[int, int]:
    """torchvision's reading of a crop size: an int or a 1-sequence (a square), or (height, width); positive."""
    sizes = (size,) if isinstance(size, numbers.Integral) else tuple(size) if isinstance(size, (tuple, list)) else None
    if sizes is None or len(sizes) not in (1, 2):
        raise ValueError(f"RandomCrop: size must be an int or a sequence of 1 or 2 ints (height, width), got {size!r}")
    if not all(isinstance(s, numbers.Integral) and not isinstance(s, bool) and s > 0 for s in sizes):
        raise ValueError(f"RandomCrop: size must hold positive ints, got {size!r}")
    return (int(sizes[0]), int(sizes[-1]))


def _padding(padding) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) from torchvision's padding: an int (all sides), (left/right, top/bottom) or
    (left, top, right, bottom), each a non-negative int."""
    values = (padding,) if isinstance(padding, numbers.Integral) else tuple(padding) if isinstance(
        padding, (tuple, list)) else None
    if values is None or len(values) not in (1, 2, 4) or not all(
            isinstance(p, numbers.Integral) and not isinstance(p, bool) for p in values):
        raise ValueError(f"RandomCrop: padding must be an int or a sequence of 1, 2 or 4 ints, got {padding!r}")
    if any(p < 0 for p in values):
        raise ValueError(f"RandomCrop: padding must be non-negative, got {padding!r}")
    left, top, right, bottom = values * 4 if len(values) == 1 else values * 2 if len(values) == 2 else values
    return int(left), int(top), int(right), int(bottom)
