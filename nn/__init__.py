"""Neural-network building blocks with PyTorch's names: modules, layers, losses, functional, init."""

from nn import data, functional, init, optim, parallel, utils
from nn.layers import (
    ELU, GELU, AdaptiveAvgPool2d, AdaptiveMaxPool2d, AvgPool2d, BatchNorm1d, BatchNorm2d, Conv2d, ConvReLU2d,
    ConvTranspose2d, Dropout, Dropout2d, Flatten, Identity, LeakyReLU, Linear, LogSoftmax, LPPool2d, Maxout, MaxPool2d,
    ReLU, Sigmoid, Softmax, Tanh,
)
from nn.losses import (
    BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, HuberLoss, KLDivLoss, L1Loss, MSELoss, NLLLoss, SmoothL1Loss,
)
from nn.module import Module, ModuleDict, ModuleList, Parameter, Sequential

from nn import models  # noqa: E402  (the models subclass nn.Module)
from nn.summary import Summary, summary  # noqa: E402
from nn.graphed import GraphedStep  # noqa: E402

__all__ = [
    "AdaptiveAvgPool2d", "AdaptiveMaxPool2d", "AvgPool2d", "BCELoss", "BCEWithLogitsLoss", "BatchNorm1d",
    "BatchNorm2d", "Conv2d", "ConvReLU2d", "ConvTranspose2d", "CrossEntropyLoss", "Dropout", "Dropout2d", "ELU",
    "Flatten", "GELU", "HuberLoss", "Identity", "KLDivLoss", "L1Loss", "LPPool2d", "LeakyReLU", "Linear",
    "LogSoftmax", "MSELoss", "MaxPool2d", "Maxout", "Module", "ModuleDict", "ModuleList", "NLLLoss", "Parameter",
    "ReLU", "Sequential", "Sigmoid", "SmoothL1Loss", "Softmax", "Tanh", "data", "functional", "init", "optim",
    "parallel", "utils", "save", "load", "CheckpointError", "models", "summary", "Summary", "GraphedStep",
]

from nn.serialization import CheckpointError, load, save  # noqa: E402
