"""Residual networks (He et al. 2015): the paper's CIFAR-10 ResNets and torchvision's ImageNet ResNet-18/34.

Each block learns a residual F(x) and outputs relu(F(x) + shortcut(x)); the identity shortcut lets the
signal and its gradient skip the block, which is what makes 56 or 110 layers trainable.
"""

from __future__ import annotations

import nn
import tensorlib as tl
from nn.models._init import kaiming_conv_init, no_pretrained_weights


class ZeroPadShortcut(nn.Module):
    """The paper's option A shortcut for a block that changes the shape: subsample with the block's stride
    (x[:, :, ::2, ::2]) and pad the channels with zeros up to ``out_channels``. It has no parameters, unlike
    option B's 1x1 projection."""

    def __init__(self, in_channels: int, out_channels: int, stride: int):
        super().__init__()
        self.in_channels, self.out_channels, self.stride = in_channels, out_channels, stride

    def forward(self, x):
        extra = self.out_channels - self.in_channels
        x = x[:, :, ::self.stride, ::self.stride]
        return tl.pad(x, (0, 0, 0, 0, extra // 2, extra - extra // 2))

    def extra_repr(self):
        return f"{self.in_channels}, {self.out_channels}, stride={self.stride}"


def _projection(in_channels: int, out_channels: int, stride: int) -> nn.Sequential:
    """Option B shortcut (torchvision's ``downsample``): 1x1 conv with the block's stride, then batch norm."""
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                         nn.BatchNorm2d(out_channels))


class BasicBlock(nn.Module):
    """conv 3x3 (stride), BN, ReLU, conv 3x3, BN, add the shortcut, ReLU. ``downsample`` is the shortcut
    when the shape changes (None: identity)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.downsample = downsample

    def forward(self, x):
        out = self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))
        shortcut = x if self.downsample is None else self.downsample(x)
        return self.relu(out + shortcut)


def _stage(in_channels: int, out_channels: int, blocks: int, stride: int, shortcut) -> nn.Sequential:
    """``blocks`` BasicBlocks; the first takes the stride and, if it changes the shape, the shortcut
    ``shortcut(in_channels, out_channels, stride)``."""
    downsample = shortcut(in_channels, out_channels, stride) if stride != 1 or in_channels != out_channels else None
    layers = [BasicBlock(in_channels, out_channels, stride, downsample)]
    layers += [BasicBlock(out_channels, out_channels) for _ in range(blocks - 1)]
    return nn.Sequential(*layers)


class CifarResNet(nn.Module):
    """The paper's CIFAR-10 network (section 4.2): 6n + 2 layers.

    Input (N, 3, 32, 32): conv 3x3 16, BN, ReLU, then three stages of n BasicBlocks at 16, 32 and 64
    channels on 32x32, 16x16 and 8x8 maps (stride 2 in the first block of stages 2 and 3), global average
    pooling and fc 64->num_classes. Shortcuts are identities, and option A (``ZeroPadShortcut``) where a
    stage halves the map and doubles the channels, so the counts are the paper's: 269,722 (n=3, 0.27M),
    464,154 (n=5, 0.46M), 658,586 (n=7, 0.66M) and 853,018 (n=9, 0.85M) parameters at 10 classes.
    Convs are initialised Kaiming-normal (``kaiming_conv_init``), as in common CIFAR ResNet code.
    """

    def __init__(self, blocks_per_stage: int, num_classes: int = 10, in_channels: int = 3):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 16, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.relu = nn.ReLU()
        self.layer1 = _stage(16, 16, blocks_per_stage, 1, ZeroPadShortcut)
        self.layer2 = _stage(16, 32, blocks_per_stage, 2, ZeroPadShortcut)
        self.layer3 = _stage(32, 64, blocks_per_stage, 2, ZeroPadShortcut)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(64, num_classes)
        kaiming_conv_init(self)

    def forward(self, x):
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(self.avgpool(x).flatten(1))


class ResNet(nn.Module):
    """torchvision's ImageNet ResNet with BasicBlocks (ResNet-18 and -34), same names and state dict keys.

    Input (N, 3, 224, 224): conv 7x7/2 64, BN, ReLU, max pool 3/2 (56x56), four stages at 64, 128, 256 and
    512 channels on 56, 28, 14 and 7, global average pooling and fc 512->num_classes. Shortcuts that change
    the shape are option B projections (1x1 conv + BN). Convs are initialised Kaiming-normal, as torchvision's.
    """

    def __init__(self, blocks_per_stage: tuple, num_classes: int = 1000, in_channels: int = 3):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU()
        self.maxpool = nn.MaxPool2d(3, 2, padding=1)
        self.layer1 = _stage(64, 64, blocks_per_stage[0], 1, _projection)
        self.layer2 = _stage(64, 128, blocks_per_stage[1], 2, _projection)
        self.layer3 = _stage(128, 256, blocks_per_stage[2], 2, _projection)
        self.layer4 = _stage(256, 512, blocks_per_stage[3], 2, _projection)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(512, num_classes)
        kaiming_conv_init(self)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(self.avgpool(x).flatten(1))


def resnet20(num_classes: int = 10, in_channels: int = 3) -> CifarResNet:
    """ResNet-20 (n=3) for (3, 32, 32) CIFAR images: 269,722 parameters at 10 classes (see ``CifarResNet``)."""
    return CifarResNet(3, num_classes, in_channels)


def resnet32(num_classes: int = 10, in_channels: int = 3) -> CifarResNet:
    """ResNet-32 (n=5) for (3, 32, 32) CIFAR images: 464,154 parameters at 10 classes (see ``CifarResNet``)."""
    return CifarResNet(5, num_classes, in_channels)


def resnet44(num_classes: int = 10, in_channels: int = 3) -> CifarResNet:
    """ResNet-44 (n=7) for (3, 32, 32) CIFAR images: 658,586 parameters at 10 classes (see ``CifarResNet``)."""
    return CifarResNet(7, num_classes, in_channels)


def resnet56(num_classes: int = 10, in_channels: int = 3) -> CifarResNet:
    """ResNet-56 (n=9) for (3, 32, 32) CIFAR images: 853,018 parameters at 10 classes (see ``CifarResNet``)."""
    return CifarResNet(9, num_classes, in_channels)


@no_pretrained_weights
def resnet18(num_classes: int = 1000, in_channels: int = 3) -> ResNet:
    """ResNet-18 for (3, 224, 224) ImageNet images: 11,689,512 parameters at 1000 classes (see ``ResNet``)."""
    return ResNet((2, 2, 2, 2), num_classes, in_channels)


@no_pretrained_weights
def resnet34(num_classes: int = 1000, in_channels: int = 3) -> ResNet:
    """ResNet-34 for (3, 224, 224) ImageNet images: 21,797,672 parameters at 1000 classes (see ``ResNet``)."""
    return ResNet((3, 4, 6, 3), num_classes, in_channels)
