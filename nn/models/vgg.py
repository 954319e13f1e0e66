"""VGG (Simonyan & Zisserman 2014): stacks of 3x3 convs and 2x2 max pools, in torchvision's layout."""

from __future__ import annotations

import nn
from nn.models._init import kaiming_conv_init, no_pretrained_weights

# Output channels of each 3x3 conv, "M" a 2x2 max pool: the paper's configurations A, B, D and E.
CONFIGS = {
    11: [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    13: [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    16: [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    19: [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"],
}


def _features(config, batch_norm: bool, in_channels: int) -> nn.Sequential:
    layers, channels = [], in_channels
    for item in config:
        if item == "M":
            layers.append(nn.MaxPool2d(2, 2))
            continue
        layers.append(nn.Conv2d(channels, item, 3, padding=1))
        if batch_norm:
            layers.append(nn.BatchNorm2d(item))
        layers.append(nn.ReLU())
        channels = item
    return nn.Sequential(*layers)


class VGG(nn.Module):
    """``features`` (the conv stack), ``avgpool``, then ``classifier``, with torchvision's names.

    ImageNet (``small_input=False``): input (N, 3, 224, 224); the five pools leave 7x7x512, which
    AdaptiveAvgPool2d((7, 7)) passes through unchanged (and fits other input sizes to), and the classifier
    is fc 25088->4096->4096->num_classes with ReLU and dropout 0.5.

    CIFAR (``small_input=True``): input (N, 3, 32, 32); the same conv stack leaves 1x1x512, which
    AdaptiveAvgPool2d(1) passes through, and a single Linear(512, num_classes) classifies it, as in the usual
    CIFAR adaptations: the paper's 4096-wide layers, most of its parameters, were sized for 7x7x512 features.

    ``batch_norm=True`` adds BatchNorm2d after every conv (torchvision's vgg*_bn, not in the paper).
    Convs are initialised Kaiming-normal with zero bias (``kaiming_conv_init``), as in torchvision, which
    lets the deep plain stack train without the paper's stage-wise initialisation. The paper's 1x1-conv
    variant (configuration C) and LRN variant (A-LRN) are not provided.
    """

    def __init__(self, depth: int, num_classes: int = 1000, batch_norm: bool = False, small_input: bool = False,
                 in_channels: int = 3):
        super().__init__()
        if depth not in CONFIGS:
            raise ValueError(f"VGG depth must be one of {sorted(CONFIGS)}, got {depth!r}")
        self.features = _features(CONFIGS[depth], batch_norm, in_channels)
        if small_input:
            self.avgpool = nn.AdaptiveAvgPool2d(1)
            self.classifier = nn.Linear(512, num_classes)
        else:
            self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
            self.classifier = nn.Sequential(
                nn.Linear(512 * 7 * 7, 4096), nn.ReLU(), nn.Dropout(0.5),
                nn.Linear(4096, 4096), nn.ReLU(), nn.Dropout(0.5),
                nn.Linear(4096, num_classes),
            )
        kaiming_conv_init(self)

    def forward(self, x):
        return self.classifier(self.avgpool(self.features(x)).flatten(1))


@no_pretrained_weights
def vgg11(num_classes: int = 1000, batch_norm: bool = False, small_input: bool = False,
          in_channels: int = 3) -> VGG:
    """VGG-11 (configuration A) for (3, 224, 224) images, or (3, 32, 32) with ``small_input``:
    132,863,336 parameters at 1000 classes (see ``VGG``)."""
    return VGG(11, num_classes, batch_norm, small_input, in_channels)


@no_pretrained_weights
def vgg13(num_classes: int = 1000, batch_norm: bool = False, small_input: bool = False,
          in_channels: int = 3) -> VGG:
    """VGG-13 (configuration B) for (3, 224, 224) images, or (3, 32, 32) with ``small_input``:
    133,047,848 parameters at 1000 classes (see ``VGG``)."""
    return VGG(13, num_classes, batch_norm, small_input, in_channels)


@no_pretrained_weights
def vgg16(num_classes: int = 1000, batch_norm: bool = False, small_input: bool = False,
          in_channels: int = 3) -> VGG:
    """VGG-16 (configuration D) for (3, 224, 224) images, or (3, 32, 32) with ``small_input``:
    138,357,544 parameters at 1000 classes (see ``VGG``)."""
    return VGG(16, num_classes, batch_norm, small_input, in_channels)


@no_pretrained_weights
def vgg19(num_classes: int = 1000, batch_norm: bool = False, small_input: bool = False,
          in_channels: int = 3) -> VGG:
    """VGG-19 (configuration E) for (3, 224, 224) images, or (3, 32, 32) with ``small_input``:
    143,667,240 parameters at 1000 classes (see ``VGG``)."""
    return VGG(19, num_classes, batch_norm, small_input, in_channels)
