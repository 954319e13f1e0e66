"""tensorlib: a minimal autograd Tensor whose conv, pooling and matmul run on hand-written kernels.

    import tensorlib as tl
    x = tl.randn(8, 3, 32, 32, requires_grad=True)
    w = tl.randn(16, 3, 3, 3, requires_grad=True)
    y = tl.conv2d(x, w, padding=1).relu()
    tl.max_pool2d(y, 2).sum().backward()      # x.grad, w.grad
"""

from tensorlib.autograd import enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from tensorlib.device import Device, cuda, cuda_is_available, cuda_unavailable_reason
from tensorlib.gradcheck import GradcheckError, gradcheck
from tensorlib.memory import _apply_at_import, host_allocator_tuned, tune_host_allocator
from tensorlib.ops import (
    abs, adaptive_avg_pool2d, adaptive_max_pool2d, argmax, argmin, avg_pool2d, bincount, bmm, cat, clamp, clone,
    concat, conv2d, conv2d_relu, conv_transpose2d, count_nonzero, cumsum, diag, dot, einsum, erf, exp, expm1,
    flatten, floor_divide, gather, log, log1p, log_softmax, logsumexp, lp_pool2d, matmul, max, max_pool2d, maximum,
    mean, median, min, minimum, mm, nonzero, outer, pad, permute, relu, remainder, reshape, result_type, scatter,
    scatter_add, sigmoid, softmax, sqrt, squeeze, stack, std, std_mean, sum, tanh, trace, transpose, tril, triu,
    unique, unsqueeze, var, var_mean, where,
)
from tensorlib.ops.elementwise import (
    addcdiv, addcmul, allclose, ceil, clamp_max, clamp_min, cos, eq, equal, floor, ge, gt, isclose, isfinite, isinf,
    isnan, le, lerp, lt, masked_fill, ne, neg, reciprocal, round, rsqrt, sign, sin, square, trunc,
)
from tensorlib.ops.reduce import all, amax, amin, any, argsort, norm, prod, sort, topk
from tensorlib.ops.shape import (
    chunk, flip, index_select, movedim, narrow, repeat, roll, split, swapaxes, swapdims, unbind, unflatten,
)
from tensorlib.random import (
    Generator, default_generator, get_rng_state, manual_seed, rand, randint, randn, randperm, set_rng_state,
)
from tensorlib.tensor import (
    BoolTensor, ByteTensor, CharTensor, DoubleTensor, FloatTensor, HalfTensor, IntTensor, LongTensor, ShortTensor,
    Tensor, arange, as_tensor, bool_, empty, empty_like, eye, finfo, float16, float32, float64, from_numpy, full,
    full_like, get_default_dtype, iinfo, inference_mode, int8, int16, int32, int64, is_floating_point, is_tensor,
    linspace, numel, ones, ones_like, rand_like, randint_like, randn_like, set_default_dtype, tensor, uint8, zeros,
    zeros_like,
)

# PyTorch's other names for the dtypes (they shadow the builtins in this module only)
bool = bool_  # noqa: A001
half, float, double = float16, float32, float64  # noqa: A001
short, int, long = int16, int32, int64  # noqa: A001

__version__ = "0.1.0"

_apply_at_import()
