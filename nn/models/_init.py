"""The weight initialisation the deep ReLU models share."""

from __future__ import annotations

import nn
from nn import init


def kaiming_conv_init(model: nn.Module):
    """Kaiming-normal conv weights (fan_out, ReLU gain) and zero conv biases, as in torchvision's VGG and ResNet.

    PyTorch's default conv init shrinks the signal's scale by about 0.4 per ReLU layer; this keeps it, so
    deep stacks without batch norm start training. Linear and batch norm layers keep their defaults.
    """
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            if module.bias is not None:
                init.zeros_(module.bias)
