"""The architectures of the CNN primer's case study, in their published configurations.

    import nn
    model = nn.models.get_model("resnet20")             # or nn.models.resnet20(num_classes=10)
    nn.summary(model, nn.models.INPUT_SIZES["resnet20"])

| name                    | input         | parameters (default number of classes)                |
|-------------------------|---------------|-------------------------------------------------------|
| lenet5                  | (1, 28, 28)   | 61,706                                                |
| alexnet                 | (3, 224, 224) | 60,965,224                                            |
| zfnet                   | (3, 224, 224) | 62,357,608                                            |
| vgg11 / 13 / 16 / 19    | (3, 224, 224) | 132,863,336 / 133,047,848 / 138,357,544 / 143,667,240 |
| nin                     | (3, 32, 32)   | 966,986                                               |
| googlenet               | (3, 224, 224) | 6,998,552 (13,378,280 with aux_logits=True)           |
| resnet20 / 32 / 44 / 56 | (3, 32, 32)   | 269,722 / 464,154 / 658,586 / 853,018                 |
| resnet18 / 34           | (3, 224, 224) | 11,689,512 / 21,797,672                               |

Every builder takes ``num_classes`` (1000 for the ImageNet models, 10 for the MNIST and CIFAR ones) and
``in_channels`` (3; LeNet-5's 1), e.g. ``resnet20(in_channels=1)`` for MNIST digits; the VGGs also take
``small_input=True`` for (3, 32, 32) CIFAR images.
"""

from __future__ import annotations

from nn.models.alexnet import AlexNet, ZFNet, alexnet, zfnet
from nn.models.googlenet import GoogLeNet, GoogLeNetOutputs, googlenet
from nn.models.lenet import LeNet5, lenet5
from nn.models.nin import NiN, nin
from nn.models.resnet import (
    CifarResNet, ResNet, resnet18, resnet20, resnet32, resnet34, resnet44, resnet56,
)
from nn.models.vgg import VGG, vgg11, vgg13, vgg16, vgg19

_BUILDERS = {
    "lenet5": lenet5, "alexnet": alexnet, "zfnet": zfnet,
    "vgg11": vgg11, "vgg13": vgg13, "vgg16": vgg16, "vgg19": vgg19,
    "nin": nin, "googlenet": googlenet,
    "resnet20": resnet20, "resnet32": resnet32, "resnet44": resnet44, "resnet56": resnet56,
    "resnet18": resnet18, "resnet34": resnet34,
}

_IMAGENET = (3, 224, 224)
_CIFAR = (3, 32, 32)

# Intended (C, H, W) input of each builder with its default arguments; small_input=True VGGs take (3, 32, 32).
INPUT_SIZES = {
    "lenet5": (1, 28, 28), "alexnet": _IMAGENET, "zfnet": _IMAGENET,
    "vgg11": _IMAGENET, "vgg13": _IMAGENET, "vgg16": _IMAGENET, "vgg19": _IMAGENET,
    "nin": _CIFAR, "googlenet": _IMAGENET,
    "resnet20": _CIFAR, "resnet32": _CIFAR, "resnet44": _CIFAR, "resnet56": _CIFAR,
    "resnet18": _IMAGENET, "resnet34": _IMAGENET,
}


def available() -> dict:
    """Model names -> builder functions (a copy)."""
    return dict(_BUILDERS)


def get_model(name: str, **kwargs):
    """Build the model called ``name`` with the builder's keyword arguments, e.g. ``num_classes=10``."""
    if name not in _BUILDERS:
        raise ValueError(f"unknown model {name!r}; available: {', '.join(_BUILDERS)}")
    return _BUILDERS[name](**kwargs)


__all__ = [
    "INPUT_SIZES", "AlexNet", "CifarResNet", "GoogLeNet", "GoogLeNetOutputs", "LeNet5", "NiN", "ResNet", "VGG",
    "ZFNet", "alexnet", "available", "get_model", "googlenet", "lenet5", "nin", "resnet18", "resnet20",
    "resnet32", "resnet34", "resnet44", "resnet56", "vgg11", "vgg13", "vgg16", "vgg19", "zfnet",
]
