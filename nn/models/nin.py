"""Network in Network (Lin, Chen & Yan 2013): mlpconv blocks and global average pooling, for CIFAR-10."""

from __future__ import annotations

import nn
from nn.models._init import kaiming_conv_init


def _mlpconv(in_channels: int, channels: tuple, kernel_size: int) -> list:
    """A k x k conv followed by two 1x1 convs (a small MLP slid over the image), ReLU after each."""
    first, second, third = channels
    return [
        nn.Conv2d(in_channels, first, kernel_size, padding=kernel_size // 2), nn.ReLU(),
        nn.Conv2d(first, second, 1), nn.ReLU(),
        nn.Conv2d(second, third, 1), nn.ReLU(),
    ]


class NiN(nn.Sequential):
    """The paper's CIFAR-10 model: three mlpconv blocks, then global average pooling instead of fc layers.

    Input (N, 3, 32, 32); spatial sizes 32, 16 (max pool 3/2), 8 (avg pool 3/2); the pools round up
    (``ceil_mode``, Caffe's convention, as in the authors' model) so that 32 -> 16 -> 8. The last 1x1 conv
    has one channel per class and the global average of each channel map is that class's score.
    966,986 parameters at 10 classes. Dropout 0.5 follows the first two blocks, as in the paper. Convs are
    initialised Kaiming-normal with zero bias (``kaiming_conv_init``) rather than the authors' hand-tuned
    Gaussians, so the nine-conv stack trains without batch norm.
    """

    def __init__(self, num_classes: int = 10, in_channels: int = 3):
        super().__init__(
            *_mlpconv(in_channels, (192, 160, 96), 5), nn.MaxPool2d(3, 2, ceil_mode=True), nn.Dropout(0.5),
            *_mlpconv(96, (192, 192, 192), 5), nn.AvgPool2d(3, 2, ceil_mode=True), nn.Dropout(0.5),
            *_mlpconv(192, (192, 192, num_classes), 3),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        )
        kaiming_conv_init(self)


def nin(num_classes: int = 10, in_channels: int = 3) -> NiN:
    """Network in Network for (3, 32, 32) CIFAR images: 966,986 parameters at 10 classes (see ``NiN``)."""
    return NiN(num_classes, in_channels)
