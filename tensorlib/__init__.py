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
from tensorlib.ops.creation import Size, arange, as_tensor, empty, meshgrid, multinomial, ones, tensor, zeros
from tensorlib.ops.elementwise import (
    add, addcdiv, addcmul, allclose, atan2, bitwise_and, bitwise_not, bitwise_or, bitwise_xor, ceil, clamp_max,
    clamp_min, cos, div, divide, eq, equal, floor, fmod, ge, gt, isclose, isfinite, isinf, isnan, le, lerp, log2,
    log10, logical_and, logical_not, logical_or, logical_xor, lt, masked_fill, mul, multiply, nan_to_num, ne, neg,
    pow, reciprocal, round, rsqrt, sign, sin, square, sub, subtract, true_divide, trunc,
)
from tensorlib.ops.indexing import broadcast_to, index_add, index_fill, masked_select, repeat_interleave, take, tile
from tensorlib.ops.linalg import addmm, diagonal, mv
from tensorlib.ops.reduce import all, amax, amin, any, argsort, cumprod, norm, prod, sort, topk
from tensorlib.ops.shape import (
    chunk, flip, index_select, movedim, narrow, repeat, roll, split, swapaxes, swapdims, unbind, unflatten,
)
from tensorlib.random import (
    Generator, default_generator, get_rng_state, manual_seed, rand, randint, randn, randperm, set_rng_state,
)
from tensorlib.tensor import (
    BoolTensor, ByteTensor, CharTensor, DoubleTensor, FloatTensor, HalfTensor, IntTensor, LongTensor, ShortTensor,
    Tensor, bool_, empty_like, eye, finfo, float16, float32, float64, from_numpy, full, full_like, get_default_dtype,
    iinfo, inference_mode, int8, int16, int32, int64, is_floating_point, is_tensor, linspace, numel, ones_like,
    rand_like, randint_like, randn_like, set_default_dtype, uint8, zeros_like,
)
from tensorlib import backends  # tl.backends.cudnn
from tensorlib.backends import get_num_threads, set_num_threads

clip = clamp  # PyTorch's other name

# PyTorch's other names for the dtypes (they shadow the builtins in this module only)
bool = bool_  # noqa: A001
half, float, double = float16, float32, float64  # noqa: A001
short, int, long = int16, int32, int64  # noqa: A001

__version__ = "0.1.0"

_apply_at_import()
