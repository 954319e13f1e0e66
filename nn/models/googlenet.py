"""GoogLeNet (Szegedy et al. 2014), the ILSVRC 2014 winner built from Inception modules."""

from __future__ import annotations

from collections import namedtuple

import nn
import tensorlib as tl
from nn.models._init import kaiming_conv_init, no_pretrained_weights

GoogLeNetOutputs = namedtuple("GoogLeNetOutputs", ["logits", "aux1", "aux2"])


class BasicConv2d(nn.Module):
    """Conv with bias, then ReLU (the paper predates batch norm; torchvision's version adds it)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, **kwargs):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, **kwargs)
        self.relu = nn.ReLU()

    def forward(self, x):
        return self.relu(self.conv(x))


class Inception(nn.Module):
    """Four parallel branches concatenated along channels: 1x1; 1x1 then 3x3; 1x1 then 5x5; 3x3 max pool
    then 1x1. The 1x1 reductions keep the 3x3 and 5x5 convs cheap."""

    def __init__(self, in_channels, ch1x1, ch3x3red, ch3x3, ch5x5red, ch5x5, pool_proj):
        super().__init__()
        self.branch1 = BasicConv2d(in_channels, ch1x1, 1)
        self.branch2 = nn.Sequential(BasicConv2d(in_channels, ch3x3red, 1), BasicConv2d(ch3x3red, ch3x3, 3, padding=1))
        self.branch3 = nn.Sequential(BasicConv2d(in_channels, ch5x5red, 1), BasicConv2d(ch5x5red, ch5x5, 5, padding=2))
        self.branch4 = nn.Sequential(nn.MaxPool2d(3, 1, padding=1), BasicConv2d(in_channels, pool_proj, 1))

    def forward(self, x):
        return tl.cat([self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)], 1)


class InceptionAux(nn.Module):
    """Auxiliary classifier on a 14x14 map: avg pool 5x5/3 (-> 4x4), conv 1x1 128, fc 2048->1024, dropout 0.7,
    fc 1024->num_classes. Its loss, weighted by 0.3 in the paper, adds gradient to the middle layers."""

    def __init__(self, in_channels: int, num_classes: int):
        super().__init__()
        self.avgpool = nn.AvgPool2d(5, stride=3)
        self.conv = BasicConv2d(in_channels, 128, 1)
        self.fc1 = nn.Linear(128 * 4 * 4, 1024)
        self.relu = nn.ReLU()
        self.dropout = nn.Dropout(0.7)
        self.fc2 = nn.Linear(1024, num_classes)

    def forward(self, x):
        x = self.conv(self.avgpool(x)).flatten(1)
        return self.fc2(self.dropout(self.relu(self.fc1(x))))


class GoogLeNet(nn.Module):
    """The paper's network (table 1), with torchvision's module names.

    Input (N, 3, 224, 224); spatial sizes 112 (conv1), 56, 28 (3a, 3b), 14 (4a-4e), 7 (5a, 5b), then
    global average pooling, dropout 0.4 and fc 1024->num_classes. The pools round up (``ceil_mode``) so
    224 -> 112 -> 56 -> 28 -> 14 -> 7 as in the table. 6,998,552 parameters at 1000 classes, or 13,378,280
    with the auxiliary classifiers (``aux_logits=True``); with those, forward returns
    ``GoogLeNetOutputs(logits, aux1, aux2)`` (heads on 4a and 4d) in training mode and the logits in eval mode.

    Local response normalisation after conv1 and conv3 is omitted (no parameters; later replaced by batch
    norm). The 5x5 convs are as published (torchvision's GoogLeNet uses 3x3 there, and batch norm). Convs are
    initialised Kaiming-normal with zero bias (``kaiming_conv_init``): without batch norm, 22 layers need it.
    """

    def __init__(self, num_classes: int = 1000, aux_logits: bool = False, in_channels: int = 3):
        super().__init__()
        self.aux_logits = aux_logits
        self.conv1 = BasicConv2d(in_channels, 64, 7, stride=2, padding=3)
        self.maxpool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2 = BasicConv2d(64, 64, 1)
        self.conv3 = BasicConv2d(64, 192, 3, padding=1)
        self.maxpool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        # (in, 1x1, 3x3 reduce, 3x3, 5x5 reduce, 5x5, pool proj): the paper's table 1
        self.inception3a = Inception(192, 64, 96, 128, 16, 32, 32)
        self.inception3b = Inception(256, 128, 128, 192, 32, 96, 64)
        self.maxpool3 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.inception4a = Inception(480, 192, 96, 208, 16, 48, 64)
        self.inception4b = Inception(512, 160, 112, 224, 24, 64, 64)
        self.inception4c = Inception(512, 128, 128, 256, 24, 64, 64)
        self.inception4d = Inception(512, 112, 144, 288, 32, 64, 64)
        self.inception4e = Inception(528, 256, 160, 320, 32, 128, 128)
        self.maxpool4 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.inception5a = Inception(832, 256, 160, 320, 32, 128, 128)
        self.inception5b = Inception(832, 384, 192, 384, 48, 128, 128)
        if aux_logits:
            self.aux1 = InceptionAux(512, num_classes)
            self.aux2 = InceptionAux(528, num_classes)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(0.4)
        self.fc = nn.Linear(1024, num_classes)
        kaiming_conv_init(self)

    def forward(self, x):
        x = self.maxpool2(self.conv3(self.conv2(self.maxpool1(self.conv1(x)))))
        x = self.maxpool3(self.inception3b(self.inception3a(x)))
        x = self.inception4a(x)
        aux1 = self.aux1(x) if self.aux_logits and self.training else None
        x = self.inception4d(self.inception4c(self.inception4b(x)))
        aux2 = self.aux2(x) if self.aux_logits and self.training else None
        x = self.maxpool4(self.inception4e(x))
        x = self.inception5b(self.inception5a(x))
        logits = self.fc(self.dropout(self.avgpool(x).flatten(1)))
        return GoogLeNetOutputs(logits, aux1, aux2) if aux1 is not None else logits


@no_pretrained_weights
def googlenet(num_classes: int = 1000, aux_logits: bool = False, in_channels: int = 3) -> GoogLeNet:
    """GoogLeNet for (3, 224, 224) ImageNet images: 6,998,552 parameters at 1000 classes, 13,378,280 with
    the auxiliary classifiers (see ``GoogLeNet``)."""
    return GoogLeNet(num_classes, aux_logits, in_channels)
