"""LeNet-5 (LeCun et al. 1998), the first convolutional network to read handwritten digits."""

from __future__ import annotations

from collections import OrderedDict

import nn


class LeNet5(nn.Sequential):
    """conv 1->6 5x5 pad 2, pool 2, conv 6->16 5x5, pool 2, fc 400->120->84->num_classes.

    Input (N, 1, 28, 28) MNIST digits; the padding of the first conv makes them the 32x32 the paper used.
    61,706 parameters at 10 classes. Layers are named conv1, act1, pool1, conv2, act2, pool2, flatten, fc1,
    act3, fc2, act4, fc3, so the state dict reads ``conv1.weight``, ..., ``fc3.bias``.

    The published net squashes with tanh and subsamples by averaging ("tanh", "avg", the defaults); ReLU
    with max pooling ("relu", "max") trains faster. The paper's trainable subsampling coefficients, its
    sparse C3 connection table and its Gaussian RBF output layer are replaced by plain average pooling,
    a full 6->16 conv and a linear layer, as in the usual modern reading of the net. ``in_channels`` (1)
    takes colour images (3) of the same 28x28 size.
    """

    def __init__(self, num_classes: int = 10, activation: str = "tanh", pooling: str = "avg", in_channels: int = 1):
        if activation not in ("tanh", "relu"):
            raise ValueError(f"activation must be 'tanh' or 'relu', got {activation!r}")
        if pooling not in ("avg", "max"):
            raise ValueError(f"pooling must be 'avg' or 'max', got {pooling!r}")
        act = nn.Tanh if activation == "tanh" else nn.ReLU
        pool = nn.AvgPool2d if pooling == "avg" else nn.MaxPool2d
        super().__init__(OrderedDict([
            ("conv1", nn.Conv2d(in_channels, 6, 5, padding=2)), ("act1", act()), ("pool1", pool(2)),
            ("conv2", nn.Conv2d(6, 16, 5)), ("act2", act()), ("pool2", pool(2)),
            ("flatten", nn.Flatten()),
            ("fc1", nn.Linear(16 * 5 * 5, 120)), ("act3", act()),
            ("fc2", nn.Linear(120, 84)), ("act4", act()),
            ("fc3", nn.Linear(84, num_classes)),
        ]))


def lenet5(num_classes: int = 10, activation: str = "tanh", pooling: str = "avg", in_channels: int = 1) -> LeNet5:
    """LeNet-5 for (1, 28, 28) MNIST digits: 61,706 parameters at 10 classes (see ``LeNet5``)."""
    return LeNet5(num_classes, activation, pooling, in_channels)
