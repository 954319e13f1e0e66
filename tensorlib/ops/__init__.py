"""Every differentiable op, one module per kind; ``Tensor`` methods and ``tensorlib.*`` call these."""

from tensorlib.ops.conv import conv2d, conv2d_relu
from tensorlib.ops.elementwise import (
    abs, add, clamp, compare, div, erf, exp, log, logical, logical_not, maximum, minimum, mul, neg, pow, relu,
    sigmoid, sqrt, sub, tanh, where,
)
from tensorlib.ops.linalg import matmul
from tensorlib.ops.pool import adaptive_avg_pool2d, avg_pool2d, lp_pool2d, max_pool2d
from tensorlib.ops.reduce import argmax, argmin, log_softmax, max, mean, min, softmax, std, sum, var
from tensorlib.ops.shape import (
    cat, expand, flatten, getitem, pad, permute, reshape, squeeze, stack, transpose, unsqueeze,
)

__all__ = [
    "abs", "adaptive_avg_pool2d", "add", "argmax", "argmin", "avg_pool2d", "cat", "clamp", "compare", "conv2d",
    "conv2d_relu", "div", "erf", "exp", "expand", "flatten", "getitem", "log", "log_softmax", "logical",
    "logical_not", "lp_pool2d", "matmul", "max", "max_pool2d", "maximum", "mean", "min", "minimum", "mul", "neg",
    "pad", "permute", "pow", "relu", "reshape", "sigmoid", "softmax", "sqrt", "squeeze", "stack", "std", "sub",
    "sum", "tanh", "transpose", "unsqueeze", "var", "where",
]
