"""What the model builders share: the deep ReLU models' weight initialisation, and torchvision's
``weights=`` / ``pretrained=`` arguments, refused with a clear error (no pretrained weights are shipped)."""

from __future__ import annotations

import functools

import nn
from nn import init


def no_pretrained_weights(builder):
    """Let ``builder`` take torchvision's ``weights``, ``pretrained`` and ``progress`` keywords: the defaults
    (no weights) build the model as before; asking for pretrained weights raises, naming the argument."""

    @functools.wraps(builder)
    def build(*args, weights=None, pretrained=False, progress=True, **kwargs):
        asked = f"weights={weights!r}" if weights is not None else f"pretrained={pretrained!r}" if pretrained else ""
        if asked:
            raise ValueError(f"{builder.__name__}({asked}): no pretrained weights are available (nothing is "
                             f"downloaded); build the model without them and load a state dict you saved, e.g. "
                             f"model.load_state_dict(nn.load(path))")
        return builder(*args, **kwargs)

    return build


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
