"""Every differentiable op, one module per kind; ``Tensor`` methods and ``tensorlib.*`` call these."""

from tensorlib.ops.conv import conv2d, conv2d_relu, conv_transpose2d
from tensorlib.ops.elementwise import (
    abs, add, clamp, clone, compare, div, erf, exp, expm1, floor_divide, log, log1p, logical, logical_not, maximum,
    minimum, mul, neg, pow, relu, remainder, result_type, sigmoid, sqrt, sub, tanh, where,
)
from tensorlib.ops.linalg import bmm, diag, dot, einsum, matmul, mm, outer, trace, tril, triu
from tensorlib.ops.pool import adaptive_avg_pool2d, adaptive_max_pool2d, avg_pool2d, lp_pool2d, max_pool2d
from tensorlib.ops.reduce import (
    argmax, argmin, bincount, count_nonzero, cumsum, log_softmax, logsumexp, max, mean, median, min, nonzero, softmax,
    std, std_mean, sum, unique, var, var_mean,
)
from tensorlib.ops.shape import (
    cat, concat, expand, flatten, gather, getitem, pad, permute, reshape, scatter, scatter_add, squeeze, stack,
    transpose, unsqueeze,
)

__all__ = [
    "abs", "adaptive_avg_pool2d", "adaptive_max_pool2d", "add", "argmax", "argmin", "avg_pool2d", "bincount", "bmm",
    "cat", "clamp", "clone", "compare", "concat", "conv2d", "conv2d_relu", "conv_transpose2d", "count_nonzero",
    "cumsum", "diag", "div", "dot", "einsum", "erf", "exp", "expand", "expm1", "flatten", "floor_divide", "gather",
    "getitem", "log", "log1p", "log_softmax", "logical", "logical_not", "logsumexp", "lp_pool2d", "matmul", "max",
    "max_pool2d", "maximum", "mean", "median", "min", "minimum", "mm", "mul", "neg", "nonzero", "outer", "pad",
    "permute", "pow", "relu", "remainder", "reshape", "result_type", "scatter", "scatter_add", "sigmoid", "softmax",
    "sqrt", "squeeze", "stack", "std", "std_mean", "sub", "sum", "tanh", "trace", "transpose", "tril", "triu",
    "unique", "unsqueeze", "var", "var_mean", "where",
]
