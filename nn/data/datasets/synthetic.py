"""``SyntheticShapes``: a generated dataset with a known answer, for tests and quick demos."""

from __future__ import annotations

import numpy as np

from nn.data.datasets.base import ImageDataset

SHAPES = ("horizontal stripes", "vertical stripes", "square", "cross")


class SyntheticShapes(ImageDataset):
    """``n`` images of ``size`` x ``size`` with ``channels`` channels, each one of ``num_classes`` (at most 4)
    shapes: horizontal stripes, vertical stripes, a filled square, a cross. Position, size, thickness,
    brightness (per channel) and Gaussian pixel ``noise`` vary; the classes are balanced and shuffled.

    The same ``seed`` gives the same images; use different seeds for train and test sets. A two-layer CNN
    reaches 99-100 % test accuracy in 2-4 epochs of 2,000 images. Images are uint8 (HW, or HWC when
    ``channels`` > 1), so transforms see what they would see from a real dataset.
    """

    def __init__(self, n: int = 1000, size: int = 28, channels: int = 1, num_classes: int = 4, seed: int = 0,
                 noise: float = 0.1, transform=None, target_transform=None):
        if not 1 <= num_classes <= len(SHAPES):
            raise ValueError(f"num_classes must be in 1..{len(SHAPES)}, got {num_classes}")
        if n < 1:
            raise ValueError(f"n must be positive, got {n}")
        if size < 8:
            raise ValueError(f"size must be at least 8, got {size}")
        self.classes = SHAPES[:num_classes]
        rng = np.random.default_rng(seed)
        labels = rng.permutation(np.arange(n) % num_classes)
        masks = np.stack([_draw(SHAPES[label], size, rng) for label in labels])
        brightness = rng.uniform(0.6, 1.0, size=(n, 1, 1, channels))
        images = masks[..., None] * brightness + rng.normal(0.0, noise, size=(n, size, size, channels))
        images = np.clip(np.rint(images * 255), 0, 255).astype(np.uint8)
        if channels == 1:
            images = np.ascontiguousarray(images[..., 0])
        super().__init__(images, labels, None, transform, target_transform)
        pixels = self.images.reshape(n, size, size, channels) / 255
        self.mean = tuple(np.round(pixels.mean(axis=(0, 1, 2)), 4).tolist())
        self.std = tuple(np.round(pixels.std(axis=(0, 1, 2)), 4).tolist())


def _draw(shape: str, size: int, rng: np.random.Generator) -> np.ndarray:
    """A 0/1 mask of ``shape`` at a random place and scale."""
    mask = np.zeros((size, size))
    if shape in ("horizontal stripes", "vertical stripes"):
        thickness = int(rng.integers(2, max(3, size // 7) + 1))
        phase = (np.arange(size) + rng.integers(0, 2 * thickness)) // thickness % 2
        mask[:] = phase[:, None] if shape == "horizontal stripes" else phase[None, :]
    elif shape == "square":
        side = int(rng.integers(size // 4, size // 2 + 1))
        top, left = rng.integers(0, size - side + 1, size=2)
        mask[top:top + side, left:left + side] = 1
    else:
        arm, thickness = int(rng.integers(size // 4, size // 2)), int(rng.integers(2, max(3, size // 9) + 1))
        cy, cx = rng.integers(arm, size - arm, size=2)
        lo = -(thickness // 2)
        mask[cy + lo:cy + lo + thickness, cx - arm:cx + arm] = 1
        mask[cy - arm:cy + arm, cx + lo:cx + lo + thickness] = 1
    return mask
