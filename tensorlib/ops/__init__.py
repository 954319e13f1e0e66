"""Every differentiable op, one module per kind; ``Tensor`` methods and ``tensorlib.*`` call these."""

from tensorlib.ops.conv import conv2d, conv2d_relu, conv_transpose2d
from tensorlib.ops.elementwise import (
    abs, add, clamp, clone, compare, div, erf, exp, expm1, floor_divide, log, log1p, logical, logical_not, maximum,
    minimum, mul, neg, pow, relu, remainder, result_type, sigmoid, sqrt, sub, tanh, where,
)
from tensorlib.ops.linalg import bmm, matmul, mm
from tensorlib.ops.pool import adaptive_avg_pool2d, adaptive_max_pool2d, avg_pool2d, lp_pool2d, max_pool2d
from tensorlib.ops.reduce import (
    argmax, argmin, cumsum, log_softmax, logsumexp, max, mean, min, softmax, std, sum, var,
)
from tensorlib.ops.shape import (
    cat, expand, flatten, gather, getitem, pad, permute, reshape, squeeze, stack, transpose, unsqueeze,
)

__all__ = [
    "abs", "adaptive_avg_pool2d", "adaptive_max_pool2d", "add", "argmax", "argmin", "avg_pool2d", "bmm", "cat",
    "clamp", "clone", "compare", "conv2d", "conv2d_relu", "conv_transpose2d", "cumsum", "div", "erf", "exp",
    "expand", "expm1", "flatten", "floor_divide", "gather", "getitem", "log", "log1p", "log_softmax", "logical",
    "logical_not", "logsumexp", "lp_pool2d", "matmul", "max", "max_pool2d", "maximum", "mean", "min", "minimum",
    "mm", "mul", "neg", "pad", "permute", "pow", "relu", "remainder", "reshape", "result_type", "sigmoid",
    "softmax", "sqrt", "squeeze", "stack", "std", "sub", "sum", "tanh", "transpose", "unsqueeze", "var", "where",
]
