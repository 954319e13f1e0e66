"""Neural-network building blocks with PyTorch's names: modules, layers, losses, functional, init."""

from nn import data, functional, init, optim, parallel, utils
from nn.layers import (
    AdaptiveAvgPool2d, AdaptiveMaxPool2d, AlphaDropout, AvgPool2d, BatchNorm1d, BatchNorm2d, CELU, ChannelShuffle,
    CircularPad2d, ConstantPad2d, Conv2d, ConvReLU2d, ConvTranspose2d, CosineSimilarity, Dropout, Dropout1d, Dropout2d,
    Dropout3d, ELU, FeatureAlphaDropout, Flatten, Fold, GELU, GLU, GroupNorm, Hardshrink, Hardsigmoid, Hardswish,
    Hardtanh, Identity, InstanceNorm2d, LayerNorm, LeakyReLU, Linear, LocalResponseNorm, LogSigmoid, LogSoftmax,
    LPPool2d, Maxout, MaxPool2d, MaxUnpool2d, Mish, PixelShuffle, PixelUnshuffle, PReLU, ReflectionPad2d, ReLU, ReLU6,
    ReplicationPad2d, RReLU, SELU, Sigmoid, SiLU, Softmax, Softmax2d, Softmin, Softplus, Softshrink, Softsign, Tanh,
    Tanhshrink, Threshold, Unflatten, Unfold, Upsample, UpsamplingBilinear2d, UpsamplingNearest2d, ZeroPad2d,
)
from nn.losses import (
    BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, HuberLoss, KLDivLoss, L1Loss, MSELoss, NLLLoss, SmoothL1Loss,
)
from nn.module import Module, ModuleDict, ModuleList, Parameter, Sequential

from nn import models  # noqa: E402  (the models subclass nn.Module)
from nn.summary import Summary, summary  # noqa: E402
from nn.graphed import GraphedStep  # noqa: E402

__all__ = [
    "AdaptiveAvgPool2d", "AdaptiveMaxPool2d", "AlphaDropout", "AvgPool2d", "BCELoss", "BCEWithLogitsLoss",
    "BatchNorm1d", "BatchNorm2d", "CELU", "ChannelShuffle", "CircularPad2d", "ConstantPad2d", "Conv2d", "ConvReLU2d",
    "ConvTranspose2d", "CosineSimilarity", "CrossEntropyLoss", "Dropout", "Dropout1d", "Dropout2d", "Dropout3d", "ELU",
    "FeatureAlphaDropout", "Flatten", "Fold", "GELU", "GLU", "GroupNorm", "Hardshrink", "Hardsigmoid", "Hardswish",
    "Hardtanh", "HuberLoss", "Identity", "InstanceNorm2d", "KLDivLoss", "L1Loss", "LPPool2d", "LayerNorm", "LeakyReLU",
    "Linear", "LocalResponseNorm", "LogSigmoid", "LogSoftmax", "MSELoss", "MaxPool2d", "MaxUnpool2d", "Maxout", "Mish",
    "Module", "ModuleDict", "ModuleList", "NLLLoss", "PReLU", "Parameter", "PixelShuffle", "PixelUnshuffle", "RReLU",
    "ReLU", "ReLU6", "ReflectionPad2d", "ReplicationPad2d", "SELU", "Sequential", "SiLU", "Sigmoid", "SmoothL1Loss",
    "Softmax", "Softmax2d", "Softmin", "Softplus", "Softshrink", "Softsign", "Tanh", "Tanhshrink", "Threshold",
    "Unflatten", "Unfold", "Upsample", "UpsamplingBilinear2d", "UpsamplingNearest2d", "ZeroPad2d", "data", "functional",
    "init", "optim", "parallel", "utils", "save", "load", "CheckpointError", "models", "summary", "Summary",
    "GraphedStep",
]

from nn.serialization import CheckpointError, load, save  # noqa: E402

from nn.losses import (  # noqa: E402
    CosineEmbeddingLoss, GaussianNLLLoss, HingeEmbeddingLoss, MarginRankingLoss, MultiLabelSoftMarginLoss,
    MultiMarginLoss, PairwiseDistance, PoissonNLLLoss, SoftMarginLoss, TripletMarginLoss, TripletMarginWithDistanceLoss,
)
from nn.module import ParameterDict, ParameterList  # noqa: E402

__all__ += [
    "CosineEmbeddingLoss", "GaussianNLLLoss", "HingeEmbeddingLoss", "MarginRankingLoss", "MultiLabelSoftMarginLoss",
    "MultiMarginLoss", "PairwiseDistance", "PoissonNLLLoss", "SoftMarginLoss", "TripletMarginLoss",
    "TripletMarginWithDistanceLoss", "ParameterDict", "ParameterList",
]
