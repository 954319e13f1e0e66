"""Per-sample image transforms with torchvision's names.

- geometry: ``Pad``, ``CenterCrop``, ``Resize``, ``RandomCrop``, ``RandomResizedCrop``, ``RandomHorizontalFlip``,
  ``RandomVerticalFlip``, ``RandomRotation``, ``RandomAffine`` (and the function ``affine``);
- colour: ``ColorJitter``, ``Grayscale``, ``RandomGrayscale`` and the functions ``adjust_brightness``,
  ``adjust_contrast``, ``adjust_saturation``, ``adjust_hue``, ``rgb_to_grayscale``;
- tensors: ``ToTensor``, ``Normalize``, ``RandomErasing``;
- composition: ``Compose``, ``RandomApply``, ``RandomChoice``, ``RandomOrder``, ``Lambda``.

An image is one of three kinds, and a transform returns the kind it was given, as torchvision does:

- a PIL image (torchvision's own input; the transforms use PIL's operations on it, as torchvision does);
- a NumPy array standing in for a PIL image: HWC (or HW) layout, as datasets hand it to their ``transform``;
- a ``Tensor``: CHW (any leading dims), as ``ToTensor`` returns it.

A uint8 array or tensor gives the pixels of the PIL image of it under the colour transforms and ``Resize`` (see
there for a rare pixel off by 1); the rotations sample arrays and tensors as torchvision samples tensors.

Random transforms draw from tensorlib's global generator, so ``tl.manual_seed`` makes them reproducible
(in ``DataLoader`` workers, from each worker's own seeded generator).

Transforms that treat every sample identically (``ToTensor``, ``Normalize``, ``Pad``, ``CenterCrop``,
``Resize``, ``Grayscale`` and a ``Compose`` of such) are ``batchable``: ``apply_batch`` transforms a whole batch
at once (N HWC arrays, or an NCHW tensor), which the in-memory datasets use to keep the loader's
one-gather-per-batch fast path. A random transform makes that per-sample work again.
"""

from __future__ import annotations

import math
import numbers
import sys
import warnings

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
    """A NumPy (or PIL) image -> a CHW tensor, as torchvision: uint8 (0..255) becomes the default floating
    dtype (float32 unless ``tl.set_default_dtype`` changed it) in [0, 1]; any other dtype (float, int16/32/64,
    uint16, bool) keeps its dtype and values; a PIL image of mode "1" becomes 0.0/1.0.

    ``layout`` says how a 3-d array is laid out: "HWC" (the default, like the PIL image torchvision's
    ToTensor takes) or "CHW". A 2-d array is one channel (HW).
    """

    batchable = True

    def __init__(self, layout: str = "HWC"):
        if layout not in ("HWC", "CHW"):
            raise ValueError(f'layout must be "HWC" or "CHW", got {layout!r}')
        self.layout = layout

    def __call__(self, image):
        array = _numpy(image)
        if _is_pil(image) and image.mode == "1":  # bilevel: torchvision scales it to 0/255, then to 0.0/1.0
            array = array.astype(np.uint8) * np.uint8(255)
        return tl.Tensor._make(self._convert(array[None])[0])

    def apply_batch(self, images):
        return tl.Tensor._make(self._convert(_numpy(images)))

    def _convert(self, images):
        """A batch of HW, HWC or CHW images -> a C-contiguous NCHW array."""
        if images.ndim == 3:
            images = images[:, None]
        elif images.ndim == 4 and self.layout == "HWC":
            images = images.transpose(0, 3, 1, 2)
        elif images.ndim != 4:
            raise ValueError(f"ToTensor expects HW, HWC or CHW images, got shape {images.shape[1:]}")
        if images.dtype == np.uint8:  # a division, as torchvision's div(255): x * (1/255) is 1 ULP off at times
            dtype = tl.get_default_dtype()
            converted = images.astype(dtype, order="C")
            return np.divide(converted, dtype.type(255), out=converted)
        if images.dtype.kind not in "biuf":
            raise TypeError(f"ToTensor expects an image of numbers (uint8, another integer, bool or floating "
                            f"point), got {images.dtype}")
        return np.ascontiguousarray(images)


class Normalize(Transform):
    """``(image - mean[c]) / std[c]`` per channel of a CHW image (a Tensor or float array, as after ToTensor).

    As torchvision: ``mean`` and ``std`` are numbers or one value per channel (a single value applies to every
    channel); they are cast to the image's dtype and applied as a subtraction and then a division (the same
    float32 rounding as ``sub(mean).div(std)``); a std of zero is refused, a negative one is allowed.
    """

    batchable = True

    def __init__(self, mean, std, inplace: bool = False):
        self.mean = _per_channel("mean", mean)
        self.std = _per_channel("std", std)
        self.inplace = inplace
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
        if _tracks_grad(image) or (self.inplace and isinstance(image, tl.Tensor)):
            # tensor ops: a normalisation inside a model passes gradients back to its input
            mean, std = (tl.tensor(value, device=image.device) for value in (mean, std))
            return image.sub_(mean).div_(std) if self.inplace else (image - mean) / std
        xp = array_module(data)  # data for a model's input: one new array, on the image's device
        normalized = xp.subtract(data, xp.asarray(mean))
        return tl.Tensor._make(xp.divide(normalized, xp.asarray(std), out=normalized))

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
        if max_size is not None:
            if len(size) != 1:
                raise ValueError(f"Resize: max_size should only be passed if size is the length of the shorter "
                                 f"side (an int or a sequence of length 1), got size={size!r}")
            if not isinstance(max_size, numbers.Integral) or max_size <= size[0]:
                raise ValueError(f"Resize: max_size = {max_size!r} must be an int strictly greater than the "
                                 f"requested size for the smaller edge size (size = {size[0]})")
        self.size, self.max_size, self.antialias = tuple(int(s) for s in size), max_size, bool(antialias)
        self.interpolation = _interpolation("Resize", interpolation, ("bilinear",))

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
        self.p = _probability("RandomHorizontalFlip", p)

    def __call__(self, image):
        if tl.random.default_generator().random() >= self.p:
            return image
        return _flip(image, horizontal=True)


class RandomVerticalFlip(Transform):
    """Mirror the image top-bottom with probability ``p``."""

    def __init__(self, p: float = 0.5):
        self.p = _probability("RandomVerticalFlip", p)

    def __call__(self, image):
        if tl.random.default_generator().random() >= self.p:
            return image
        return _flip(image, horizontal=False)


class RandomResizedCrop(Transform):
    """A random window of the image, resized to ``size`` (an int for a square, or (height, width)), as
    torchvision's ``RandomResizedCrop`` (the "Inception" crop).

    The window's area is a uniform fraction in ``scale`` of the image's area and its aspect ratio (width /
    height) is log-uniform in ``ratio``; its sides are rounded to ints and it is placed uniformly. A draw that
    does not fit in the image is redrawn, up to 10 times; then the window is the whole image, cut down to the
    nearest ratio in ``ratio`` and centred. The resize is ``Resize``'s bilinear one (``antialias`` as there).
    """

    def __init__(self, size, scale=(0.08, 1.0), ratio=(3.0 / 4.0, 4.0 / 3.0), interpolation: str = "bilinear",
                 antialias: bool = True):
        self.size = _crop_size("RandomResizedCrop", size)
        self.scale = _min_max("RandomResizedCrop", "scale", scale, low=0.0)
        self.ratio = _min_max("RandomResizedCrop", "ratio", ratio, low=0.0, low_inclusive=False)
        self.interpolation = _interpolation("RandomResizedCrop", interpolation, ("bilinear",))
        self.antialias = bool(antialias)
        self._resize = Resize(self.size, antialias=self.antialias)

    @staticmethod
    def get_params(image, scale, ratio) -> tuple[int, int, int, int]:
        """(top, left, height, width) of a random window of ``image`` (see the class docstring)."""
        height, width = _image_size(image)
        generator = tl.random.default_generator()
        log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
        for _ in range(10):
            area = height * width * generator.uniform(scale[0], scale[1])
            aspect = math.exp(generator.uniform(*log_ratio))
            crop_width, crop_height = round(math.sqrt(area * aspect)), round(math.sqrt(area / aspect))
            if 0 < crop_width <= width and 0 < crop_height <= height:
                top = int(generator.integers(0, height - crop_height + 1))
                left = int(generator.integers(0, width - crop_width + 1))
                return top, left, crop_height, crop_width
        crop_height, crop_width = height, width
        if width / height < min(ratio):
            crop_height = round(width / min(ratio))
        elif width / height > max(ratio):
            crop_width = round(height * max(ratio))
        return (height - crop_height) // 2, (width - crop_width) // 2, crop_height, crop_width

    def __call__(self, image):
        return self._resize(_crop(image, *self.get_params(image, self.scale, self.ratio)))

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(size={self.size}, scale={tuple(round(s, 4) for s in self.scale)}, "
                f"ratio={tuple(round(r, 4) for r in self.ratio)}, interpolation={self.interpolation}, "
                f"antialias={self.antialias})")


# ---- applying other transforms at random ------------------------------------------------------------------
class RandomApply(Transform):
    """Apply all of ``transforms``, in order, with probability ``p``; else none of them."""

    def __init__(self, transforms, p: float = 0.5):
        self.transforms = _transform_list("RandomApply", transforms)
        self.p = _probability("RandomApply", p)

    def __call__(self, sample):
        if tl.random.default_generator().random() >= self.p:
            return sample
        for transform in self.transforms:
            sample = transform(sample)
        return sample

    def __repr__(self) -> str:
        return _nested_repr(self, [f"p={self.p}"])


class RandomChoice(Transform):
    """Apply one of ``transforms``, picked with probabilities ``p`` (weights, normalised to sum to 1;
    uniform when None)."""

    def __init__(self, transforms, p=None):
        self.transforms = _transform_list("RandomChoice", transforms)
        if p is not None:
            if not isinstance(p, (tuple, list)) or not all(
                    isinstance(w, numbers.Real) and not isinstance(w, bool) for w in p):
                raise TypeError(f"RandomChoice: p must be None or a sequence of numbers (one per transform), "
                                f"got {p!r}")
            if len(p) != len(self.transforms):
                raise ValueError(f"RandomChoice: p has {len(p)} weights for {len(self.transforms)} transforms, "
                                 f"got p={p!r}")
            if any(w < 0 for w in p) or sum(p) <= 0:
                raise ValueError(f"RandomChoice: p must hold non-negative weights with a positive sum, got {p!r}")
            p = [w / sum(p) for w in p]
        self.p = p

    def __call__(self, sample):
        generator = tl.random.default_generator()
        index = generator.choice(len(self.transforms), p=self.p)
        return self.transforms[int(index)](sample)

    def __repr__(self) -> str:
        return _nested_repr(self, [] if self.p is None else [f"p={self.p}"])


class RandomOrder(Transform):
    """Apply all of ``transforms`` in a random order."""

    def __init__(self, transforms):
        self.transforms = _transform_list("RandomOrder", transforms)

    def __call__(self, sample):
        for index in tl.random.default_generator().permutation(len(self.transforms)):
            sample = self.transforms[int(index)](sample)
        return sample

    def __repr__(self) -> str:
        return _nested_repr(self, [])


# ---- colour: the adjustments as functions, and the transforms that draw them -----------------------------------
# ITU-R 601-2 luma, as PIL's convert("L"): the weights, and PIL's 16-bit fixed-point form of them, which uint8
# images use (the luma rounded to the nearest integer, as PIL rounds it).
LUMA_WEIGHTS = (0.299, 0.587, 0.114)
_LUMA_FIXED = (19595, 38470, 7471)


def rgb_to_grayscale(image, num_output_channels: int = 1):
    """The luma of an RGB image, ``0.299 R + 0.587 G + 0.114 B``, as one channel or repeated in three.

    A one-channel image is its own luma. A float image gives floats in its dtype; a uint8 image (array, tensor
    or PIL) gives PIL's pixels (the luma rounded). A PIL image becomes mode "L" or "RGB"; an array becomes HW
    (the array of an "L" image) or HW3; a tensor becomes (..., 1, H, W) or (..., 3, H, W).
    """
    if num_output_channels not in (1, 3):
        raise ValueError(f"rgb_to_grayscale: num_output_channels should be either 1 or 3, got "
                         f"{num_output_channels!r}")
    return _grayscale(image, num_output_channels)


def adjust_brightness(image, brightness_factor: float):
    """The image times ``brightness_factor`` (0 gives black, 1 the image), clamped to the image's range."""
    _check_factor("adjust_brightness", "brightness_factor", brightness_factor)
    if _is_pil(image):
        from PIL import ImageEnhance

        return ImageEnhance.Brightness(image).enhance(brightness_factor)
    return _like(image, _blend(_color_data("adjust_brightness", image), 0, brightness_factor))


def adjust_contrast(image, contrast_factor: float):
    """The image blended with the mean of its luma: ``factor * image + (1 - factor) * mean`` (0 gives a flat
    grey image, 1 the image), clamped. Each image of a batched tensor has its own mean; a uint8 image uses
    the mean rounded to an integer, as PIL does."""
    _check_factor("adjust_contrast", "contrast_factor", contrast_factor)
    if _is_pil(image):
        from PIL import ImageEnhance

        return ImageEnhance.Contrast(image).enhance(contrast_factor)
    data = _color_data("adjust_contrast", image)
    xp, axes = array_module(data), _image_axes(image)
    gray = data if _channel_axis(image) is None else _luma(data, _channel_axis(image))
    if data.dtype == np.uint8:
        mean = xp.floor(gray.mean(axis=axes, keepdims=True, dtype=np.float64) + 0.5)
    else:
        mean = gray.mean(axis=axes, keepdims=True)
    return _like(image, _blend(data, mean, contrast_factor))


def adjust_saturation(image, saturation_factor: float):
    """The image blended with its luma: ``factor * image + (1 - factor) * luma`` (0 gives the grayscale image,
    1 the image, more over-saturates), clamped. A one-channel image is returned as it is."""
    _check_factor("adjust_saturation", "saturation_factor", saturation_factor)
    if _is_pil(image):
        from PIL import ImageEnhance

        return ImageEnhance.Color(image).enhance(saturation_factor)
    data, channel_axis = _color_data("adjust_saturation", image), _channel_axis(image)
    if channel_axis is None or data.shape[channel_axis] == 1:
        return image
    return _like(image, _blend(data, _luma(data, channel_axis), saturation_factor))


def adjust_hue(image, hue_factor: float):
    """Rotate the hue by ``hue_factor`` turns, in [-0.5, 0.5]: the image goes to HSV, ``hue_factor`` is added
    to the hue (modulo 1) and the image comes back to RGB. A one-channel image is returned as it is.

    Float images use the exact HSV formulas in their dtype. uint8 images use PIL's 8-bit HSV, as torchvision
    does for PIL images: hue, saturation and value are each stored in 0..255 and the hue moves by
    ``int(hue_factor * 255)`` (wrapping around), so an array gives the pixels of the PIL image of it.
    """
    if isinstance(hue_factor, bool) or not isinstance(hue_factor, numbers.Real) or not -0.5 <= hue_factor <= 0.5:
        raise ValueError(f"adjust_hue: hue_factor must be a number in [-0.5, 0.5], got {hue_factor!r}")
    shift = int(hue_factor * 255) % 256
    if _is_pil(image):
        if image.mode in ("L", "1", "I", "F"):
            return image
        from PIL import Image

        hue, saturation, value = image.convert("HSV").split()
        hue = Image.fromarray(((np.asarray(hue, dtype=np.int32) + shift) % 256).astype(np.uint8), "L")
        return Image.merge("HSV", (hue, saturation, value)).convert(image.mode)
    data, channel_axis = _color_data("adjust_hue", image), _channel_axis(image)
    if channel_axis is None or data.shape[channel_axis] == 1:
        return image
    xp = array_module(data)
    rgb = [xp.take(data, c, axis=channel_axis) for c in range(3)]
    if data.dtype == np.uint8:
        hue, saturation, value = _rgb_to_hsv_uint8(*rgb)
        shifted = _hsv_to_rgb_uint8((hue + shift) % 256, saturation, value)
    else:
        hue, saturation, value = _rgb_to_hsv(*rgb)
        shifted = _hsv_to_rgb(xp.mod(hue + data.dtype.type(hue_factor), 1), saturation, value)
    return _like(image, xp.stack(shifted, axis=channel_axis).astype(data.dtype, copy=False))


def _check_factor(function: str, name: str, factor):
    if isinstance(factor, bool) or not isinstance(factor, numbers.Real) or factor < 0:
        raise ValueError(f"{function}: {name} must be a non-negative number, got {factor!r}")


def _color_data(function: str, image, batched: bool = False):
    """The array of an image the colour functions take: uint8 or float, with 1 or 3 channels."""
    data, channel_axis = _data(image), _channel_axis(image, batched)
    _spatial_axes(image, batched)
    if data.dtype != np.uint8 and data.dtype.kind != "f":
        raise TypeError(f"{function} expects a uint8 or floating-point image, got {data.dtype}")
    if channel_axis is not None and data.shape[channel_axis] not in (1, 3):
        raise ValueError(f"{function} expects an image with 1 or 3 channels, got shape {tuple(data.shape)}")
    return data


def _image_axes(image) -> tuple[int, ...]:
    """The axes one image spans: its channel axis (if any), height and width."""
    channel_axis = _channel_axis(image)
    return _spatial_axes(image) if channel_axis is None else tuple(sorted((channel_axis, *_spatial_axes(image))))


def _luma(data, channel_axis: int):
    """The luma of RGB ``data`` (a copy of a one-channel image), keeping the channel axis with size 1."""
    xp = array_module(data)
    if data.shape[channel_axis] == 1:
        return data.copy()
    red, green, blue = (xp.take(data, c, axis=channel_axis) for c in range(3))
    if data.dtype == np.uint8:
        weights, int32 = _LUMA_FIXED, np.int32
        luma = (red.astype(int32) * weights[0] + green.astype(int32) * weights[1] + blue.astype(int32) * weights[2]
                + (1 << 15)) >> 16
    else:
        weights = [data.dtype.type(w) for w in LUMA_WEIGHTS]
        luma = red * weights[0] + green * weights[1] + blue * weights[2]
    return xp.expand_dims(luma.astype(data.dtype, copy=False), channel_axis)


def _grayscale(image, num_output_channels: int, batched: bool = False):
    if _is_pil(image):
        gray = image.convert("L")
        return gray if num_output_channels == 1 else gray.convert("RGB")
    data = _color_data("rgb_to_grayscale", image, batched)
    xp, channel_axis = array_module(data), _channel_axis(image, batched)
    if channel_axis is None:  # an HW array or a 2-d tensor: one channel
        channel_axis = data.ndim - 2 if isinstance(image, tl.Tensor) else data.ndim
        data = xp.expand_dims(data, channel_axis)
    gray = _luma(data, channel_axis)
    if num_output_channels == 3:
        gray = xp.repeat(gray, 3, axis=channel_axis)
    elif not isinstance(image, tl.Tensor) or _data(image).ndim == 2:  # an array becomes HW, as an "L" image is
        gray = xp.squeeze(gray, axis=channel_axis)
    return _like(image, gray)


def _blend(data, other, factor: float):
    """``factor * data + (1 - factor) * other``, clamped to the image's range. A float image is computed in its
    dtype. A uint8 image is blended as PIL's ``Image.blend``: ``other + factor * (data - other)`` in float32,
    clamped to 0..255 and truncated (which torchvision's uint8 tensors also do)."""
    xp = array_module(data)
    if data.dtype == np.uint8:
        other = xp.asarray(other, dtype=np.float32)
        blended = other + np.float32(factor) * (data.astype(np.float32) - other)
        return xp.clip(blended, 0, 255).astype(np.uint8)
    dtype = data.dtype.type
    return xp.clip(dtype(factor) * data + dtype(1.0 - factor) * other, 0, 1).astype(data.dtype, copy=False)


def _rgb_to_hsv(red, green, blue):
    """Hue in [0, 1), saturation and value of float RGB planes, in their dtype."""
    xp = array_module(red)
    one = red.dtype.type(1)
    value = xp.maximum(xp.maximum(red, green), blue)
    span = value - xp.minimum(xp.minimum(red, green), blue)
    flat = span == 0
    saturation = span / xp.where(flat, one, value)
    divisor = xp.where(flat, one, span)
    red_c, green_c, blue_c = ((value - c) / divisor for c in (red, green, blue))
    hue = xp.where(value == red, blue_c - green_c,
                   xp.where(value == green, 2 + red_c - blue_c, 4 + green_c - red_c))
    return xp.fmod(hue / 6 + 1, 1), saturation, value


def _hsv_to_rgb(hue, saturation, value):
    """Float RGB planes of hue in [0, 1), saturation and value: the hue's sixth of the colour wheel picks which
    of value, p, q, t each channel takes."""
    xp = array_module(hue)
    sector = xp.floor(hue * 6)
    fraction = hue * 6 - sector
    p = xp.clip(value * (1 - saturation), 0, 1)
    q = xp.clip(value * (1 - saturation * fraction), 0, 1)
    t = xp.clip(value * (1 - saturation * (1 - fraction)), 0, 1)
    sector = sector.astype(np.int64) % 6
    return [xp.choose(sector, choices) for choices in
            ((value, q, p, p, t, value), (t, value, value, q, p, p), (p, p, t, value, value, q))]


def _rgb_to_hsv_uint8(red, green, blue):
    """PIL's 8-bit RGB -> HSV (each in 0..255, as int64 planes), with its float32 and float64 steps, so the
    result is PIL's to the bit: value is the largest channel; hue and saturation are truncated to 0..255."""
    xp, f32, f64 = array_module(red), np.float32, np.float64
    red, green, blue = (c.astype(f32) for c in (red, green, blue))
    value = xp.maximum(xp.maximum(red, green), blue)
    span = value - xp.minimum(xp.minimum(red, green), blue)
    flat = span == 0
    saturation = span / xp.where(value == 0, f32(1), value)
    divisor = xp.where(flat, f32(1), span)
    red_c, green_c, blue_c = ((value - c) / divisor for c in (red, green, blue))
    hue = xp.where(red == value, (blue_c - green_c).astype(f64),
                   xp.where(green == value, 2.0 + red_c.astype(f64) - blue_c, 4.0 + green_c.astype(f64) - red_c))
    hue = xp.fmod(hue.astype(f32).astype(f64) / 6.0 + 1.0, 1.0).astype(f32)

    def to_byte(x):
        return xp.where(flat, 0, xp.clip(xp.trunc(x.astype(f64) * 255.0), 0, 255)).astype(np.int64)

    return to_byte(hue), to_byte(saturation), value.astype(np.int64)


def _hsv_to_rgb_uint8(hue, saturation, value):
    """PIL's 8-bit HSV -> RGB (uint8 planes), with its float32 and float64 steps and its rounding."""
    xp, f32, f64 = array_module(hue), np.float32, np.float64
    hue, value = hue.astype(f64), value.astype(f64)
    sector = xp.floor(hue * 6.0 / 255.0)
    fraction = (hue * 6.0 / 255.0 - sector).astype(f32)
    fs = (saturation / 255.0).astype(f32)

    def to_byte(x):
        return xp.clip(xp.floor(x + 0.5), 0, 255)  # C's round, halves away from zero

    p = to_byte(value * (1.0 - fs))
    q = to_byte(value * (1.0 - (fs * fraction).astype(f64)))
    t = to_byte(value * (1.0 - fs * (1.0 - fraction.astype(f64))))
    sector = sector.astype(np.int64) % 6
    grey = saturation == 0
    return [xp.where(grey, value, xp.choose(sector, choices)).astype(np.uint8) for choices in
            ((value, q, p, p, t, value), (t, value, value, q, p, p), (p, p, t, value, value, q))]


class ColorJitter(Transform):
    """Randomly change the brightness, contrast, saturation and hue, as torchvision's ``ColorJitter``.

    Each of ``brightness``, ``contrast`` and ``saturation`` is a number b >= 0, drawing the factor uniformly from
    [max(0, 1 - b), 1 + b], or a (min, max) range of non-negative factors; ``hue`` is h in [0, 0.5], drawing from
    [-h, h], or a (min, max) range within [-0.5, 0.5]. A range that leaves the image unchanged (0 for a number)
    is kept as None and draws nothing. The four adjustments (``adjust_brightness`` etc.) run in a random order.
    """

    def __init__(self, brightness=0, contrast=0, saturation=0, hue=0):
        self.brightness = _jitter_range("brightness", brightness)
        self.contrast = _jitter_range("contrast", contrast)
        self.saturation = _jitter_range("saturation", saturation)
        self.hue = _jitter_range("hue", hue, center=0.0, bounds=(-0.5, 0.5), clip_low=False)

    @staticmethod
    def get_params(brightness, contrast, saturation, hue):
        """(the order of the four adjustments, a permutation of 0..3, then the brightness, contrast, saturation
        and hue factors, each None where its range is None)."""
        generator = tl.random.default_generator()
        order = [int(i) for i in generator.permutation(4)]
        factors = [None if bounds is None else float(generator.uniform(bounds[0], bounds[1]))
                   for bounds in (brightness, contrast, saturation, hue)]
        return (order, *factors)

    def __call__(self, image):
        order, *factors = self.get_params(self.brightness, self.contrast, self.saturation, self.hue)
        adjustments = (adjust_brightness, adjust_contrast, adjust_saturation, adjust_hue)
        for index in order:
            if factors[index] is not None:
                image = adjustments[index](image, factors[index])
        return image


def _jitter_range(name: str, value, center: float = 1.0, bounds=(0.0, math.inf), clip_low: bool = True):
    """ColorJitter's reading of an argument: a number v >= 0 gives [center - v, center + v] (cut at the lower
    bound when ``clip_low``), a pair is (min, max) within ``bounds``; None when the range is the single value ``center``."""
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        if value < 0:
            raise ValueError(f"ColorJitter: {name} must be non-negative when it is a single number, got {value!r}")
        low, high = center - float(value), center + float(value)
        if clip_low:
            low = max(low, bounds[0])
    elif isinstance(value, (tuple, list)) and len(value) == 2 and all(
            isinstance(v, numbers.Real) and not isinstance(v, bool) for v in value):
        low, high = float(value[0]), float(value[1])
    else:
        raise TypeError(f"ColorJitter: {name} should be a single number or a sequence of 2 numbers (min, max), "
                        f"got {value!r}")
    if not bounds[0] <= low <= high <= bounds[1]:
        raise ValueError(f"ColorJitter: {name} values should be between {bounds} with min <= max, got "
                         f"{[low, high]}")
    return None if low == high == center else (low, high)


class Grayscale(Transform):
    """The image's luma (see ``rgb_to_grayscale``) as 1 channel or repeated in 3 (``num_output_channels``)."""

    batchable = True

    def __init__(self, num_output_channels: int = 1):
        if num_output_channels not in (1, 3):
            raise ValueError(f"Grayscale: num_output_channels should be either 1 or 3, got {num_output_channels!r}")
        self.num_output_channels = num_output_channels

    def __call__(self, image):
        return _grayscale(image, self.num_output_channels)

    def apply_batch(self, images):
        return _grayscale(images, self.num_output_channels, batched=True)


class RandomGrayscale(Transform):
    """With probability ``p``, the image's luma with as many channels as the image (see ``rgb_to_grayscale``):
    an RGB image stays 3-channel, with R = G = B; a one-channel image is returned as it is."""

    def __init__(self, p: float = 0.1):
        self.p = _probability("RandomGrayscale", p)

    def __call__(self, image):
        if tl.random.default_generator().random() >= self.p:
            return image
        if _is_pil(image):
            channels = len(image.getbands())
        else:
            channel_axis = _channel_axis(image)
            channels = 1 if channel_axis is None else _data(image).shape[channel_axis]
        return image if channels == 1 else _grayscale(image, 3)


# ---- erasing -----------------------------------------------------------------------------------------------
class RandomErasing(Transform):
    """With probability ``p``, overwrite a random rectangle of a CHW tensor (any leading dims), as torchvision's
    ``RandomErasing`` (Zhong et al., "Random Erasing Data Augmentation"); apply it after ``ToTensor``.

    The rectangle's area is a uniform fraction in ``scale`` of the image's and its aspect ratio (height / width)
    is log-uniform in ``ratio``; a draw that does not fit strictly inside the image is redrawn, up to 10 times,
    after which the image is left as it is. ``value`` fills the rectangle: a number, one number per channel, or
    "random" (standard normal noise, a value per pixel and channel). ``inplace`` writes into the given tensor.
    """

    def __init__(self, p: float = 0.5, scale=(0.02, 0.33), ratio=(0.3, 3.3), value=0, inplace: bool = False):
        self.p = _probability("RandomErasing", p)
        self.scale = _min_max("RandomErasing", "scale", scale, low=0.0, high=1.0)
        self.ratio = _min_max("RandomErasing", "ratio", ratio, low=0.0, low_inclusive=False)
        if isinstance(value, str):
            if value != "random":
                raise ValueError(f'RandomErasing: value must be a number, a sequence of numbers or "random", '
                                 f"got {value!r}")
        elif not (isinstance(value, numbers.Real) and not isinstance(value, bool)) and not (
                isinstance(value, (tuple, list)) and value and all(
                isinstance(v, numbers.Real) and not isinstance(v, bool) for v in value)):
            raise TypeError(f'RandomErasing: value must be a number, a sequence of numbers or "random", '
                            f"got {value!r}")
        self.value, self.inplace = value, bool(inplace)

    @staticmethod
    def get_params(image, scale, ratio, value=None):
        """(top, left, height, width, values) of a random rectangle of the (..., C, H, W) tensor ``image``:
        ``values`` is the per-channel ``value`` shaped (C', 1, 1), or (C, height, width) float32 normal noise
        when ``value`` is None; (0, 0, H, W, the image's array) when no draw fits."""
        data = _data(image)
        channels, height, width = data.shape[-3:]
        generator = tl.random.default_generator()
        log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
        for _ in range(10):
            area = height * width * generator.uniform(scale[0], scale[1])
            aspect = math.exp(generator.uniform(*log_ratio))
            erase_height, erase_width = round(math.sqrt(area * aspect)), round(math.sqrt(area / aspect))
            if not (erase_height < height and erase_width < width):
                continue
            if value is None:
                values = generator.standard_normal((channels, erase_height, erase_width), dtype=np.float32)
            else:
                values = np.asarray(value, dtype=np.float64)[:, None, None]
            top = int(generator.integers(0, height - erase_height + 1))
            left = int(generator.integers(0, width - erase_width + 1))
            return top, left, erase_height, erase_width, values
        return 0, 0, height, width, data

    def __call__(self, image):
        if not isinstance(image, tl.Tensor):
            raise TypeError(f"RandomErasing expects a CHW Tensor (apply ToTensor first), got {type(image).__name__}")
        if image.ndim < 3:
            raise ValueError(f"RandomErasing expects a (..., C, H, W) tensor, got shape {tuple(image.shape)}")
        if tl.random.default_generator().random() >= self.p:
            return image
        channels = image.shape[-3]
        value = None if self.value == "random" else [self.value] if isinstance(self.value, numbers.Real) else list(
            self.value)
        if value is not None and len(value) not in (1, channels):
            raise ValueError(f"RandomErasing: value {tuple(value)} must hold one number or one per channel of the "
                             f"image ({channels})")
        top, left, height, width, values = self.get_params(image, self.scale, self.ratio, value)
        data = image.array
        values = array_module(data).asarray(values).astype(data.dtype, copy=False)
        if self.inplace:
            image[..., top:top + height, left:left + width] = tl.Tensor._make(values)
            return image
        erased = data.copy()
        erased[..., top:top + height, left:left + width] = values
        return tl.Tensor._make(erased)


# ---- rotation and affine maps --------------------------------------------------------------------------------
class RandomRotation(Transform):
    """Rotate the image counter-clockwise by an angle drawn uniformly from ``degrees`` (a number d >= 0 for
    [-d, d], or (min, max)), as torchvision's ``RandomRotation``.

    ``center`` (x, y) in pixels from the top-left corner defaults to the image's centre; ``expand`` grows the
    output to hold the whole rotated image; ``fill`` (a number or one per channel) fills the area outside the
    input; ``interpolation`` is "nearest" or "bilinear". See ``affine`` for how each kind of image is sampled.
    """

    def __init__(self, degrees, interpolation: str = "nearest", expand: bool = False, center=None, fill=0):
        self.degrees = _angle_range("RandomRotation", "degrees", degrees)
        self.interpolation = _interpolation("RandomRotation", interpolation, ("nearest", "bilinear"))
        self.expand = bool(expand)
        self.center = None if center is None else _number_pair("RandomRotation", "center", center)
        self.fill = _fill("RandomRotation", 0 if fill is None else fill)

    @staticmethod
    def get_params(degrees) -> float:
        """An angle drawn uniformly from ``degrees`` = (min, max)."""
        return float(tl.random.default_generator().uniform(degrees[0], degrees[1]))

    def __call__(self, image):
        angle = self.get_params(self.degrees)
        if _is_pil(image):
            return image.rotate(angle, _pil_resample(self.interpolation), expand=self.expand, center=self.center,
                                fillcolor=_pil_fill(image, self.fill))
        return _affine(image, -angle, (0.0, 0.0), 1.0, (0.0, 0.0), self.center, self.interpolation, self.fill,
                       self.expand)

    def __repr__(self) -> str:
        center = "" if self.center is None else f", center={self.center}"
        return (f"{type(self).__name__}(degrees={self.degrees}, interpolation={self.interpolation}, "
                f"expand={self.expand}{center}, fill={self.fill})")


class RandomAffine(Transform):
    """A random affine map of the image about its centre (or ``center``), as torchvision's ``RandomAffine``:
    a clockwise rotation by an angle from ``degrees``, a shear, a scaling and a translation.

    ``degrees``: a number d >= 0 for [-d, d], or (min, max). ``translate`` (a, b), fractions in [0, 1]: the
    shift is drawn from [-a * width, a * width] and [-b * height, b * height] and rounded to whole pixels.
    ``scale`` (min, max), positive. ``shear``: a number s >= 0 or (min, max) for an x shear in degrees, or
    (x min, x max, y min, y max) for both. ``fill`` and ``interpolation`` as ``RandomRotation``.
    """

    def __init__(self, degrees, translate=None, scale=None, shear=None, interpolation: str = "nearest", fill=0,
                 center=None):
        self.degrees = _angle_range("RandomAffine", "degrees", degrees)
        if translate is not None:
            translate = _number_pair("RandomAffine", "translate", translate)
            if not all(0.0 <= t <= 1.0 for t in translate):
                raise ValueError(f"RandomAffine: translate values should be between 0 and 1, got {translate!r}")
        if scale is not None:
            scale = _number_pair("RandomAffine", "scale", scale)
            if not all(s > 0 for s in scale):
                raise ValueError(f"RandomAffine: scale values should be positive, got {scale!r}")
        self.translate, self.scale = translate, scale
        self.shear = None if shear is None else _angle_range("RandomAffine", "shear", shear, lengths=(2, 4))
        self.interpolation = _interpolation("RandomAffine", interpolation, ("nearest", "bilinear"))
        self.fill = _fill("RandomAffine", 0 if fill is None else fill)
        self.center = None if center is None else _number_pair("RandomAffine", "center", center)

    @staticmethod
    def get_params(degrees, translate, scale_ranges, shears, img_size):
        """(angle, (tx, ty) in whole pixels, scale, (shear x, shear y)) for an image of ``img_size`` =
        (width, height)."""
        generator = tl.random.default_generator()
        angle = float(generator.uniform(degrees[0], degrees[1]))
        translations = (0, 0)
        if translate is not None:
            max_dx, max_dy = translate[0] * img_size[0], translate[1] * img_size[1]
            translations = (round(generator.uniform(-max_dx, max_dx)), round(generator.uniform(-max_dy, max_dy)))
        scale = 1.0 if scale_ranges is None else float(generator.uniform(scale_ranges[0], scale_ranges[1]))
        shear = [0.0, 0.0]
        if shears is not None:
            shear[0] = float(generator.uniform(shears[0], shears[1]))
            if len(shears) == 4:
                shear[1] = float(generator.uniform(shears[2], shears[3]))
        return angle, translations, scale, tuple(shear)

    def __call__(self, image):
        height, width = _image_size(image)
        angle, translate, scale, shear = self.get_params(self.degrees, self.translate, self.scale, self.shear,
                                                         (width, height))
        return affine(image, angle, translate, scale, shear, self.interpolation, self.fill, self.center)

    def __repr__(self) -> str:
        parts = [f"degrees={self.degrees}"] + [f"{name}={getattr(self, name)}" for name in (
            "translate", "scale", "shear") if getattr(self, name) is not None]
        if self.interpolation != "nearest":
            parts.append(f"interpolation={self.interpolation}")
        if self.fill != 0:
            parts.append(f"fill={self.fill}")
        if self.center is not None:
            parts.append(f"center={self.center}")
        return f"{type(self).__name__}({', '.join(parts)})"


def affine(image, angle: float, translate, scale: float, shear, interpolation: str = "nearest", fill=None,
           center=None):
    """The image under the affine map that rotates by ``angle`` degrees clockwise, shears by ``shear`` = (x, y)
    degrees (a number is an x shear), scales by ``scale`` about ``center`` (x, y; the image's centre when None)
    and then shifts by ``translate`` = (x, y) pixels, as torchvision's ``affine``. The output keeps the input's
    size; each output pixel samples the input at the inverse image of its centre.

    A PIL image is transformed by PIL (``Image.transform``). Arrays and tensors are sampled as torchvision
    samples tensors (``grid_sample`` without corner alignment): "nearest" takes the pixel whose centre is
    nearest (ties to even), "bilinear" weighs the four around, taking zeros outside the input; ``fill`` (a
    number or one per channel; None: no fill, the zeros stay) then replaces the share of the sample that falls
    outside, as torchvision blends it (``RandomRotation`` and ``RandomAffine`` always fill, 0 by default). A
    uint8 image is rounded back to uint8.
    """
    interpolation = _interpolation("affine", interpolation, ("nearest", "bilinear"))
    shear = (float(shear), 0.0) if isinstance(shear, numbers.Real) else tuple(float(s) for s in shear)
    if len(shear) == 1:
        shear = (shear[0], 0.0)
    if _is_pil(image):
        height, width = _image_size(image)
        center = (width * 0.5, height * 0.5) if center is None else center
        inverse = np.linalg.inv(_affine_matrix(angle, translate, scale, shear, center))
        return image.transform(image.size, sys.modules["PIL.Image"].Transform.AFFINE, tuple(inverse[:2].ravel()),
                               _pil_resample(interpolation),
                               fillcolor=None if fill is None else _pil_fill(image, _fill("affine", fill)))
    return _affine(image, angle, translate, scale, shear, center, interpolation,
                   None if fill is None else _fill("affine", fill))


def _affine_matrix(angle: float, translate, scale: float, shear, center) -> np.ndarray:
    """The 3x3 forward map, in pixel coordinates (x right, y down, pixel (i, j) centred at (j + 0.5, i + 0.5)),
    of torchvision's affine: move ``center`` to the origin, apply ``scale * R(angle) @ Sy(shear y) @ Sx(shear x)``
    (R rotates clockwise on screen, Sx = [[1, -tan x], [0, 1]], Sy = [[1, 0], [-tan y, 1]]), move back, then
    translate."""
    rotation = math.radians(angle)
    tan_x, tan_y = math.tan(math.radians(shear[0])), math.tan(math.radians(shear[1]))
    linear = scale * np.array([[math.cos(rotation), -math.sin(rotation)], [math.sin(rotation), math.cos(rotation)]])
    linear = linear @ np.array([[1.0, 0.0], [-tan_y, 1.0]]) @ np.array([[1.0, -tan_x], [0.0, 1.0]])
    matrix = np.eye(3)
    matrix[:2, :2] = linear
    center = np.asarray(center, dtype=np.float64)
    matrix[:2, 2] = center - linear @ center + np.asarray(translate, dtype=np.float64)
    return matrix


def _expanded_size(inverse: np.ndarray, width: int, height: int) -> tuple[int, int]:
    """(width, height) of the box that holds the image's corners mapped by ``inverse``, rounded outwards, computed
    as torchvision computes it: in float32 about the image's centre, each bound cut to 1e-4 first so that a
    rounding error does not add a pixel."""
    f32, half = np.float32, np.array([width * 0.5, height * 0.5], dtype=np.float32)
    centred = np.array(inverse[:2], dtype=np.float64)
    centred[:, 2] += centred[:, :2] @ [width * 0.5, height * 0.5] - [width * 0.5, height * 0.5]
    corners = np.array([[-1, -1, 1], [-1, 1, 1], [1, 1, 1], [1, -1, 1]], dtype=f32) * np.append(half, f32(1))
    mapped = corners @ centred.astype(f32).T
    low, high = mapped.min(axis=0) + half, mapped.max(axis=0) + half
    tolerance = f32(1e-4)
    size = np.ceil(np.trunc(high / tolerance) * tolerance) - np.floor(np.trunc(low / tolerance) * tolerance)
    return int(size[0]), int(size[1])


def _affine(image, angle, translate, scale, shear, center, interpolation: str, fill, expand: bool = False):
    """``affine`` of an array or tensor (``expand``: the output grows to hold the whole mapped image, as a
    rotation with ``expand=True``)."""
    data, (h_axis, w_axis) = _data(image), _spatial_axes(image)
    height, width = data.shape[h_axis], data.shape[w_axis]
    center = (width * 0.5, height * 0.5) if center is None else center
    inverse = np.linalg.inv(_affine_matrix(angle, translate, scale, shear, center))
    out_height, out_width = height, width
    if expand:
        out_width, out_height = _expanded_size(inverse, width, height)
    xp = array_module(data)
    # the input coordinates (in pixels, 0 at the first pixel's centre) of each output pixel's centre; an
    # expanded output shares the input's centre
    x_out = np.arange(out_width) + 0.5 + (width - out_width) / 2
    y_out = np.arange(out_height) + 0.5 + (height - out_height) / 2
    x = inverse[0, 0] * x_out[None, :] + inverse[0, 1] * y_out[:, None] + inverse[0, 2] - 0.5
    y = inverse[1, 0] * x_out[None, :] + inverse[1, 1] * y_out[:, None] + inverse[1, 2] - 0.5
    planes = xp.moveaxis(data, (h_axis, w_axis), (-2, -1)).astype(np.float64)
    if interpolation == "nearest":
        taps = [(np.rint(y).astype(np.int64), np.rint(x).astype(np.int64), np.ones(x.shape))]
    else:
        x0, y0 = np.floor(x), np.floor(y)
        wx, wy = x - x0, y - y0
        x0, y0 = x0.astype(np.int64), y0.astype(np.int64)
        taps = [(y0, x0, (1 - wy) * (1 - wx)), (y0, x0 + 1, (1 - wy) * wx), (y0 + 1, x0, wy * (1 - wx)),
                (y0 + 1, x0 + 1, wy * wx)]
    sampled, inside = 0.0, np.zeros(x.shape)
    for rows, cols, weight in taps:
        weight = weight * ((rows >= 0) & (rows < height) & (cols >= 0) & (cols < width))
        rows, cols = np.clip(rows, 0, height - 1), np.clip(cols, 0, width - 1)
        sampled = sampled + planes[..., xp.asarray(rows), xp.asarray(cols)] * xp.asarray(weight)
        inside += weight
    # back to the image's layout, where the fill broadcasts along its channel axis
    sampled = xp.moveaxis(sampled, (-2, -1), (h_axis, w_axis))
    inside = xp.asarray(inside.reshape(inside.shape + (1,) * (data.ndim - 1 - w_axis)))
    result = sampled
    if fill is not None:
        fill = xp.asarray(_fill_values(image, fill, False), dtype=np.float64)
        if interpolation == "nearest":
            result = xp.where(inside < 0.5, fill, sampled)
        else:  # torchvision's blend: the zero-padded sample, plus the fill for the share outside
            result = sampled * inside + (1.0 - inside) * fill
    if data.dtype.kind in "iu":
        limits = np.iinfo(data.dtype)
        result = xp.clip(xp.rint(result), limits.min, limits.max)
    return _like(image, result.astype(data.dtype))


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


def _tracks_grad(image) -> bool:
    return isinstance(image, tl.Tensor) and image.requires_grad and tl.is_grad_enabled()


def _like(image, array):
    """``array`` as the same kind (Tensor or NumPy array) as ``image``. ``array`` was computed from the image's
    raw array, outside autograd: for a tensor that requires grad this would silently cut the gradient, so it
    raises instead."""
    if _tracks_grad(image):
        raise TypeError("a transform computed on the array of a tensor that requires grad would cut its gradient; "
                        "Normalize, crops, flips and padding (constant with one fill value, reflect, edge) are "
                        "differentiable, the others are not: detach() the tensor or transform the data before "
                        "it enters the graph")
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
    if _tracks_grad(image):  # a tensor's spatial axes are its last two
        return image[..., top:top + height, left:left + width].contiguous()
    data = _data(image)
    return _like(image, data[_window(data.ndim, *_spatial_axes(image, batched), top, left, height, width)])


def _flip(image, horizontal: bool):
    if _is_pil(image):
        transpose = sys.modules["PIL.Image"].Transpose
        return image.transpose(transpose.FLIP_LEFT_RIGHT if horizontal else transpose.FLIP_TOP_BOTTOM)
    if _tracks_grad(image):
        return tl.flip(image, -1 if horizontal else -2)
    data = _data(image)
    return _like(image, array_module(data).flip(data, axis=_spatial_axes(image)[int(horizontal)]))


def _pad(image, padding: tuple, fill, mode: str, batched: bool = False):
    """``image`` padded by ``padding``, (left, top, right, bottom) pixels."""
    if _is_pil(image):
        return _pad_pil(image, padding, fill, mode)
    left, top, right, bottom = padding
    if _tracks_grad(image) and (mode != "constant" or isinstance(fill, numbers.Number)) and mode != "symmetric":
        modes = {"constant": "constant", "reflect": "reflect", "edge": "replicate"}
        return tl.pad(image, (left, right, top, bottom), mode=modes[mode], value=fill if mode == "constant" else 0.0)
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
        return ImageOps.expand(image, border=padding, fill=_pil_fill(image, fill))
    left, top, right, bottom = padding
    pixels = np.asarray(image)
    widths = [(top, bottom), (left, right)] + [(0, 0)] * (pixels.ndim - 2)
    padded = Image.fromarray(np.pad(pixels, widths, mode=mode))
    if image.mode == "P":
        padded.putpalette(image.getpalette())
    return padded


def _pil_fill(image, fill):
    """``fill`` (a number, or one value per channel) as PIL takes it for ``image``: a number for one band, a
    tuple for several; ints unless the image holds floats."""
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
    return fill


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


def _probability(transform: str, p):
    if isinstance(p, bool) or not isinstance(p, numbers.Real) or not 0 <= p <= 1:
        raise ValueError(f"{transform}: p must be a probability in [0, 1], got {p!r}")
    return p


def _min_max(transform: str, name: str, values, low: float, high: float = math.inf, low_inclusive: bool = True):
    """A (min, max) pair of numbers within [low, high] (above ``low`` unless ``low_inclusive``), as floats; a pair
    in the wrong order is kept, with a warning, as torchvision keeps it."""
    if not isinstance(values, (tuple, list)) or len(values) != 2 or not all(
            isinstance(v, numbers.Real) and not isinstance(v, bool) for v in values):
        raise TypeError(f"{transform}: {name} should be a sequence of 2 numbers (min, max), got {values!r}")
    above_low = all(v >= low if low_inclusive else v > low for v in values)
    if not above_low or not all(v <= high for v in values):
        interval = f"{'[' if low_inclusive else '('}{low}, {high}{']' if high != math.inf else ')'}"
        raise ValueError(f"{transform}: {name} values should lie in {interval}, got {values!r}")
    if values[0] > values[1]:
        warnings.warn(f"{transform}: {name} should be of kind (min, max), got {values!r}", stacklevel=3)
    return (float(values[0]), float(values[1]))


def _interpolation(transform: str, interpolation, supported: tuple[str, ...]) -> str:
    """The name of an interpolation mode given as a string or an enum with a ``value`` (torchvision's
    ``InterpolationMode``), which must be one of ``supported``."""
    name = str(getattr(interpolation, "value", interpolation)).lower()
    if name not in supported:
        raise ValueError(f"{transform}: interpolation={interpolation!r} is not supported: only "
                         + " or ".join(f'"{s}"' for s in supported))
    return name


def _pil_resample(interpolation: str):
    resampling = sys.modules["PIL.Image"].Resampling
    return resampling.NEAREST if interpolation == "nearest" else resampling.BILINEAR


def _angle_range(transform: str, name: str, value, lengths: tuple[int, ...] = (2,)) -> list[float]:
    """torchvision's reading of an angle range in degrees: a number d >= 0 is [-d, d]; otherwise a sequence of
    one of ``lengths``."""
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        if value < 0:
            raise ValueError(f"{transform}: {name} must be non-negative when it is a single number, got {value!r}")
        return [-float(value), float(value)]
    if not isinstance(value, (tuple, list)) or len(value) not in lengths or not all(
            isinstance(v, numbers.Real) and not isinstance(v, bool) for v in value):
        sizes = " or ".join(str(n) for n in lengths)
        raise TypeError(f"{transform}: {name} should be a non-negative number or a sequence of {sizes} numbers, "
                        f"got {value!r}")
    return [float(v) for v in value]


def _number_pair(transform: str, name: str, value) -> tuple:
    if not isinstance(value, (tuple, list)) or len(value) != 2 or not all(
            isinstance(v, numbers.Real) and not isinstance(v, bool) for v in value):
        raise TypeError(f"{transform}: {name} should be a sequence of 2 numbers, got {value!r}")
    return tuple(value)


def _transform_list(transform: str, transforms) -> list:
    if not isinstance(transforms, (tuple, list)):
        raise TypeError(f"{transform}: transforms should be a sequence of transforms, got "
                        f"{type(transforms).__name__}")
    for index, item in enumerate(transforms):
        if not callable(item):
            raise TypeError(f"{transform}: transforms[{index}] should be callable, got {type(item).__name__} "
                            f"{item!r}")
    return list(transforms)


def _nested_repr(container, header: list[str]) -> str:
    """torchvision's layout for a transform holding others: one line each, indented."""
    lines = [f"    {line}" for line in header] + [f"    {t!r}" for t in container.transforms]
    return f"{type(container).__name__}(\n" + "\n".join(lines) + "\n)"
