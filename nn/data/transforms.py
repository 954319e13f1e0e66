"""Per-sample image transforms with torchvision's names: ``Compose``, ``ToTensor``, ``Normalize``, ``Lambda``,
``Pad``, ``CenterCrop``, ``Resize``, ``RandomCrop``, ``RandomHorizontalFlip``.

An image is one of three kinds, and a transform returns the kind it was given, as torchvision does:

- a PIL image (torchvision's own input; the geometric transforms use PIL's operations on it);
- a NumPy array standing in for a PIL image: HWC (or HW) layout, as datasets hand it to their ``transform``;
- a ``Tensor``: CHW (any leading dims), as ``ToTensor`` returns it.

Random transforms draw from tensorlib's global generator, so ``tl.manual_seed`` makes them reproducible
(in ``DataLoader`` workers, from each worker's own seeded generator).

Transforms that treat every sample identically (``ToTensor``, ``Normalize``, ``Pad``, ``CenterCrop``,
``Resize`` and a ``Compose`` of such) are ``batchable``: ``apply_batch`` transforms a whole batch at once
(N HWC arrays, or an NCHW tensor), which the in-memory datasets use to keep the loader's
one-gather-per-batch fast path. A random transform makes that per-sample work again.
"""

from __future__ import annotations

import numbers
import sys

import numpy as np

import tensorlib as tl
from tensorlib.device import array_module

PADDING_MODES = ("constant", "edge", "reflect", "symmetric")


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



class Lambda(Transform):
    """Apply ``lambd``, any callable, to the sample."""

    def __init__(self, lambd):
        if not callable(lambd):
            raise TypeError(f"Lambda: lambd should be callable, got {type(lambd).__name__} {lambd!r}")
        self.lambd = lambd

    def __call__(self, sample):
        return self.lambd(sample)


class Pad(Transform):
    """Pad the image's borders by ``padding``: an int (all sides), (left/right, top/bottom) or (left, top, right,
    bottom).

    ``padding_mode``: "constant" fills with ``fill`` (a number, or one value per channel); "edge" repeats the
    border pixel; "reflect" mirrors without repeating it (on a tensor each padding must be smaller than the
    image, as in torchvision); "symmetric" mirrors with it.
    """

    batchable = True

    def __init__(self, padding, fill=0, padding_mode: str = "constant"):
        self.padding = _padding("Pad", padding)
        self.fill, self.padding_mode = _fill("Pad", fill), _padding_mode("Pad", padding_mode)

    def __call__(self, image):
        return _pad(image, self.padding, self.fill, self.padding_mode)

    def apply_batch(self, images):
        return _pad(images, self.padding, self.fill, self.padding_mode, batched=True)


class CenterCrop(Transform):
    """The central ``size`` window (an int for a square, or (height, width)); where the image is smaller than
    the window it is first padded with zeros, as torchvision does. An odd margin leaves its extra pixel where
    ``round((image - window) / 2)`` puts it (Python's round, as torchvision)."""

    batchable = True

    def __init__(self, size):
        self.size = _crop_size("CenterCrop", size)

    def __call__(self, image):
        return self._crop(image, batched=False)

    def apply_batch(self, images):
        return self._crop(images, batched=True)

    def _crop(self, image, batched: bool):
        (height, width), (crop_height, crop_width) = _image_size(image, batched), self.size
        if crop_height > height or crop_width > width:
            grow_h, grow_w = max(crop_height - height, 0), max(crop_width - width, 0)
            image = _pad(image, (grow_w // 2, grow_h // 2, (grow_w + 1) // 2, (grow_h + 1) // 2), 0, "constant",
                         batched)
            height, width = _image_size(image, batched)
        top, left = int(round((height - crop_height) / 2)), int(round((width - crop_width) / 2))
        return _crop(image, top, left, crop_height, crop_width, batched)


class Resize(Transform):
    """Resize to ``size`` with bilinear interpolation, as torchvision's ``Resize``.

    ``size`` (height, width) gives the output size; an int (or a 1-sequence) is the new length of the shorter
    side, the longer one scaled to keep the aspect ratio (``int(size * long / short)``), and capped at
    ``max_size`` if given (the shorter side then shrinks in proportion). An image already of the output size
    is returned as it is.

    The interpolation is PIL's bilinear filter (``torch.nn.functional.interpolate(mode="bilinear",
    antialias=True)``): output pixel centres sample a triangle filter that widens by the reduction factor when
    shrinking, so every input pixel contributes; ``antialias=False`` keeps it one pixel wide (plain bilinear
    with half-pixel centres) and is ignored for PIL images, as in torchvision. uint8 images are resampled as
    PIL resamples them (fixed-point weights, the horizontal pass first, each pass rounded to uint8): an array
    gives the pixels of the PIL image of it, except that Pillow 13 runs the vertical pass first in some
    shrinking cases, which can move a pixel by 1 (torch's uint8 kernel differs by up to 1 as well). Other
    integer images are computed in float64 and rounded once; float images keep their dtype (float16 is
    computed in float64). PIL images are resized by PIL itself.
    """

    batchable = True

    def __init__(self, size, interpolation: str = "bilinear", max_size: int | None = None, antialias: bool = True):
        if isinstance(size, numbers.Integral) and not isinstance(size, bool):
            size = [size]
        if not isinstance(size, (tuple, list)) or len(size) not in (1, 2):
            raise ValueError(f"Resize: size must be an int (the shorter side) or a sequence of 1 or 2 ints "
                             f"(height, width), got {size!r}")
        if not all(isinstance(s, numbers.Integral) and not isinstance(s, bool) and s > 0 for s in size):
            raise ValueError(f"Resize: size must hold positive ints, got {size!r}")
        if str(getattr(interpolation, "value", interpolation)).lower() != "bilinear":
            raise ValueError(f'Resize: interpolation={interpolation!r} is not supported: only "bilinear"')
        if max_size is not None:
            if len(size) != 1:
                raise ValueError(f"Resize: max_size should only be passed if size is the length of the shorter "
                                 f"side (an int or a sequence of length 1), got size={size!r}")
            if not isinstance(max_size, numbers.Integral) or max_size <= size[0]:
                raise ValueError(f"Resize: max_size = {max_size!r} must be an int strictly greater than the "
                                 f"requested size for the smaller edge size (size = {size[0]})")
        self.size, self.max_size, self.antialias = tuple(int(s) for s in size), max_size, bool(antialias)
        self.interpolation = "bilinear"

    def output_size(self, height: int, width: int) -> tuple[int, int]:
        """(height, width) after resizing an image of (height, width)."""
        if len(self.size) == 2:
            return self.size
        short, long = (width, height) if width <= height else (height, width)
        new_short, new_long = self.size[0], int(self.size[0] * long / short)
        if self.max_size is not None and new_long > self.max_size:
            new_short, new_long = int(self.max_size * new_short / new_long), self.max_size
        return (new_long, new_short) if width <= height else (new_short, new_long)

    def __call__(self, image):
        return self._resize(image, batched=False)

    def apply_batch(self, images):
        return self._resize(images, batched=True)

    def _resize(self, image, batched: bool):
        size = _image_size(image, batched)
        output = self.output_size(*size)
        if output == size:
            return image
        if _is_pil(image):
            return image.resize(output[::-1], sys.modules["PIL.Image"].Resampling.BILINEAR)
        data, (h_axis, w_axis) = _data(image), _spatial_axes(image, batched)
        xp = array_module(data)
        rows, cols = (resize_weights(old, new, self.antialias) for old, new in zip(size, output))
        planes = xp.moveaxis(data, (h_axis, w_axis), (-2, -1))
        if data.dtype == np.uint8:
            resized = _resample_uint8(planes, rows, cols)
        else:
            compute = data.dtype if data.dtype.kind == "f" and data.dtype.itemsize >= 4 else np.dtype(np.float64)
            rows, cols = xp.asarray(rows, dtype=compute), xp.asarray(cols, dtype=compute)
            resized = rows @ planes.astype(compute, copy=False) @ cols.T
            if data.dtype.kind in "iu":
                limits = np.iinfo(data.dtype)
                resized = xp.clip(xp.floor(resized + 0.5), limits.min, limits.max)  # round half up, as PIL
        return _like(image, xp.moveaxis(resized, (-2, -1), (h_axis, w_axis)).astype(data.dtype, copy=False))


def resize_weights(in_size: int, out_size: int, antialias: bool = True) -> np.ndarray:
    """The (out_size, in_size) float64 matrix of bilinear resampling along one axis, computed as PIL computes
    it: row i holds the weights of output pixel i, centred at input coordinate (i + 0.5) * in_size / out_size.
    Each weight is a triangle of the distance d between pixel centres, max(1 - |d| / support, 0), with support
    max(in_size / out_size, 1) when ``antialias`` (else 1), and each row is normalised to sum to 1 (which also
    handles the borders)."""
    scale = in_size / out_size
    support = max(scale, 1.0) if antialias else 1.0
    centers = (np.arange(out_size) + 0.5) * scale
    weights = np.maximum(1 - np.abs((np.arange(in_size)[None, :] - centers[:, None] + 0.5) * (1.0 / support)), 0)
    return weights / np.cumsum(weights, axis=1)[:, -1:]  # a sequential sum, PIL's order


_PIL_PRECISION_BITS = 22  # the fractional bits of PIL's fixed-point weights for 8-bit images


def _resample_uint8(planes, rows: np.ndarray, cols: np.ndarray):
    """PIL's 8-bit resampling of (..., H, W) uint8 planes: the weights rounded to fixed point, the horizontal
    pass first, each pass rounded to uint8 (a pass that keeps its axis' size is skipped, as PIL skips it).
    The sums are of integers below 2**31, so float64 holds them exactly and the result is PIL's to the bit."""
    xp = array_module(planes)
    one = 2.0 ** _PIL_PRECISION_BITS

    def rounded(values):
        return xp.clip(xp.floor((values + one / 2) / one), 0, 255)

    planes = planes.astype(np.float64)
    if cols.shape[0] != cols.shape[1]:
        planes = rounded(planes @ xp.asarray(np.trunc(cols * one + 0.5)).T)
    if rows.shape[0] != rows.shape[1]:
        planes = rounded(xp.asarray(np.trunc(rows * one + 0.5)) @ planes)
    return planes


class RandomCrop(Transform):
    """A ``size`` window (an int for a square, or (height, width)) at a uniformly random position, as
    torchvision's ``RandomCrop``.

    ``padding`` (see ``Pad``; with ``fill`` and ``padding_mode``) is applied first. ``pad_if_needed`` then
    pads a side shorter than the window, by the shortfall on both of its ends, as torchvision does, instead of
    refusing it. A window as large as the image takes no random draw.
    """

    def __init__(self, size, padding=None, pad_if_needed: bool = False, fill=0, padding_mode: str = "constant"):
        self.size = _crop_size("RandomCrop", size)
        self.padding = None if padding is None else _padding("RandomCrop", padding)
        self.pad_if_needed = bool(pad_if_needed)
        self.fill, self.padding_mode = _fill("RandomCrop", fill), _padding_mode("RandomCrop", padding_mode)

    def __call__(self, image):
        if self.padding is not None:
            image = _pad(image, self.padding, self.fill, self.padding_mode)
        (crop_height, crop_width) = self.size
        height, width = _image_size(image)
        if self.pad_if_needed and width < crop_width:
            image = _pad(image, (crop_width - width, 0) * 2, self.fill, self.padding_mode)
        if self.pad_if_needed and height < crop_height:
            image = _pad(image, (0, crop_height - height) * 2, self.fill, self.padding_mode)
        height, width = _image_size(image)
        if height < crop_height or width < crop_width:
            raise ValueError(f"RandomCrop: required crop size {self.size} is larger than the (padded) input image "
                             f"size {(height, width)}; pass pad_if_needed=True to pad it")
        if (height, width) == self.size:
            return _crop(image, 0, 0, height, width)
        generator = tl.random.default_generator()
        top = int(generator.integers(0, height - crop_height + 1))
        left = int(generator.integers(0, width - crop_width + 1))
        return _crop(image, top, left, crop_height, crop_width)


class RandomHorizontalFlip(Transform):
    """Mirror the image left-right with probability ``p``."""

    def __init__(self, p: float = 0.5):
        self.p = p

    def __call__(self, image):
        if tl.random.default_generator().random() >= self.p:
            return image
        if _is_pil(image):
            return image.transpose(sys.modules["PIL.Image"].Transpose.FLIP_LEFT_RIGHT)
        data = _data(image)
        return _like(image, array_module(data).flip(data, axis=_spatial_axes(image)[1]))


# ---- the three kinds of image: PIL, NumPy HWC / HW, Tensor (..., C, H, W) ------------------------------------
def _is_pil(image) -> bool:
    pil = sys.modules.get("PIL.Image")  # not imported: then nothing can be a PIL image
    return pil is not None and isinstance(image, pil.Image)


def _data(image):
    return image.array if isinstance(image, tl.Tensor) else np.asarray(image)


def _numpy(image):
    if isinstance(image, tl.Tensor):
        raise TypeError("ToTensor expects a NumPy image, got a Tensor")
    return np.asarray(image)


def _like(image, array):
    """``array`` as the same kind (Tensor or NumPy array) as ``image``."""
    if isinstance(image, tl.Tensor):
        return tl.Tensor._make(array if array.flags.c_contiguous else array.copy(order="C"))  # keeps device arrays
    return array


def _spatial_axes(image, batched: bool = False) -> tuple[int, int]:
    """The (H, W) axes: the last two of a Tensor; the first two of an HW or HWC NumPy array (after the batch
    axis in a batch)."""
    ndim = _data(image).ndim
    if ndim < 2 + batched:
        raise ValueError(f"expected an image (HW or HWC array, or CHW tensor), got shape {_data(image).shape}")
    return (ndim - 2, ndim - 1) if isinstance(image, tl.Tensor) else (int(batched), int(batched) + 1)


def _channel_axis(image, batched: bool = False) -> int | None:
    ndim = _data(image).ndim
    if isinstance(image, tl.Tensor):
        return ndim - 3 if ndim >= 3 else None
    return 2 + batched if ndim == 3 + batched else None


def _image_size(image, batched: bool = False) -> tuple[int, int]:
    """(height, width)."""
    if _is_pil(image):
        return image.size[::-1]
    shape, (h_axis, w_axis) = _data(image).shape, _spatial_axes(image, batched)
    return shape[h_axis], shape[w_axis]


def _window(ndim, h_axis, w_axis, top, left, height, width) -> tuple:
    window = [slice(None)] * ndim
    window[h_axis], window[w_axis] = slice(top, top + height), slice(left, left + width)
    return tuple(window)


def _crop(image, top: int, left: int, height: int, width: int, batched: bool = False):
    """The window of ``image`` at (top, left) of (height, width), which lies inside the image."""
    if _is_pil(image):
        return image.crop((left, top, left + width, top + height))
    data = _data(image)
    return _like(image, data[_window(data.ndim, *_spatial_axes(image, batched), top, left, height, width)])


def _pad(image, padding: tuple, fill, mode: str, batched: bool = False):
    """``image`` padded by ``padding``, (left, top, right, bottom) pixels."""
    if _is_pil(image):
        return _pad_pil(image, padding, fill, mode)
    left, top, right, bottom = padding
    data, (h_axis, w_axis) = _data(image), _spatial_axes(image, batched)
    xp = array_module(data)
    if mode == "constant":
        shape = list(data.shape)
        shape[h_axis] += top + bottom
        shape[w_axis] += left + right
        padded = xp.empty(shape, dtype=data.dtype)
        padded[...] = xp.asarray(_fill_values(image, fill, batched), dtype=data.dtype)
        padded[_window(data.ndim, h_axis, w_axis, top, left, data.shape[h_axis], data.shape[w_axis])] = data
        return _like(image, padded)
    if mode == "reflect" and isinstance(image, tl.Tensor) and (
            max(top, bottom) >= data.shape[h_axis] or max(left, right) >= data.shape[w_axis]):
        raise ValueError(f"Pad: reflect padding {(left, top, right, bottom)} must be smaller than the image "
                         f"{(data.shape[h_axis], data.shape[w_axis])} on each side, as torchvision's")
    widths = [(0, 0)] * data.ndim
    widths[h_axis], widths[w_axis] = (top, bottom), (left, right)
    return _like(image, xp.pad(data, widths, mode=mode))


def _fill_values(image, fill, batched: bool):
    """``fill`` shaped to broadcast against the image: a number, or one value per channel along its channel axis."""
    if isinstance(fill, numbers.Number):
        return fill
    channel_axis, data = _channel_axis(image, batched), _data(image)
    channels = 1 if channel_axis is None else data.shape[channel_axis]
    values = np.asarray(fill if len(fill) != 1 else fill * channels)
    if len(values) != channels:
        raise ValueError(f"the number of elements in fill {tuple(fill)} does not match the number of channels of "
                         f"the image ({len(fill)} != {channels})")
    if channel_axis is None:
        return values[0]
    return values.reshape((-1,) + (1,) * (data.ndim - channel_axis - 1))


def _pad_pil(image, padding: tuple, fill, mode: str):
    """PIL padding as torchvision's: ``ImageOps.expand`` for a constant, NumPy's modes on the pixels otherwise
    (a palette image keeps its palette)."""
    from PIL import Image, ImageOps

    if mode == "constant":
        bands = len(image.getbands())
        if isinstance(fill, numbers.Number):
            fill = fill if bands == 1 else (fill,) * bands
        elif len(fill) in (1, bands):
            fill = tuple(fill) * (bands // len(fill)) if bands > 1 else fill[0]
        else:
            raise ValueError(f"the number of elements in fill {tuple(fill)} does not match the number of channels "
                             f"of the image ({len(fill)} != {bands})")
        if image.mode != "F":
            fill = tuple(int(v) for v in fill) if isinstance(fill, tuple) else int(fill)
        return ImageOps.expand(image, border=padding, fill=fill)
    left, top, right, bottom = padding
    pixels = np.asarray(image)
    widths = [(top, bottom), (left, right)] + [(0, 0)] * (pixels.ndim - 2)
    padded = Image.fromarray(np.pad(pixels, widths, mode=mode))
    if image.mode == "P":
        padded.putpalette(image.getpalette())
    return padded


# ---- argument parsing ------------------------------------------------------------------------------------
def _per_channel(name: str, values) -> tuple[float, ...]:
    values = np.atleast_1d(np.asarray(values, dtype=np.float64))
    if values.ndim != 1 or values.size == 0:
        raise ValueError(f"Normalize: {name} must be a number or a sequence of per-channel numbers, got {values}")
    return tuple(float(v) for v in values)


def _crop_size(transform: str, size) -> tuple[int, int]:
    """torchvision's reading of a crop size: an int or a 1-sequence (a square), or (height, width); positive."""
    sizes = (size,) if isinstance(size, numbers.Integral) else tuple(size) if isinstance(size, (tuple, list)) else None
    if sizes is None or len(sizes) not in (1, 2):
        raise ValueError(f"{transform}: size must be an int or a sequence of 1 or 2 ints (height, width), "
                         f"got {size!r}")
    if not all(isinstance(s, numbers.Integral) and not isinstance(s, bool) and s > 0 for s in sizes):
        raise ValueError(f"{transform}: size must hold positive ints, got {size!r}")
    return (int(sizes[0]), int(sizes[-1]))


def _padding(transform: str, padding) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) from torchvision's padding: an int (all sides), (left/right, top/bottom) or
    (left, top, right, bottom), each a non-negative int."""
    values = (padding,) if isinstance(padding, numbers.Integral) else tuple(padding) if isinstance(
        padding, (tuple, list)) else None
    if values is None or len(values) not in (1, 2, 4) or not all(
            isinstance(p, numbers.Integral) and not isinstance(p, bool) for p in values):
        raise ValueError(f"{transform}: padding must be an int or a sequence of 1, 2 or 4 ints, got {padding!r}")
    if any(p < 0 for p in values):
        raise ValueError(f"{transform}: padding must be non-negative, got {padding!r}")
    left, top, right, bottom = values * 4 if len(values) == 1 else values * 2 if len(values) == 2 else values
    return int(left), int(top), int(right), int(bottom)


def _fill(transform: str, fill):
    if isinstance(fill, numbers.Number) and not isinstance(fill, bool):
        return fill
    if isinstance(fill, (tuple, list)) and fill and all(
            isinstance(v, numbers.Number) and not isinstance(v, bool) for v in fill):
        return tuple(fill)
    raise TypeError(f"{transform}: fill must be a number or a sequence of numbers (one per channel), got {fill!r}")


def _padding_mode(transform: str, mode) -> str:
    if mode not in PADDING_MODES:
        raise ValueError(f"{transform}: padding_mode should be either constant, edge, reflect or symmetric, "
                         f"got {mode!r}")
    return mode
