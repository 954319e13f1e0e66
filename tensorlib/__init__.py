"""tensorlib: a minimal autograd Tensor whose conv, pooling and matmul run on hand-written kernels.

    import tensorlib as tl
    x = tl.randn(8, 3, 32, 32, requires_grad=True)
    w = tl.randn(16, 3, 3, 3, requires_grad=True)
    y = tl.conv2d(x, w, padding=1).relu()
    tl.max_pool2d(y, 2).sum().backward()      # x.grad, w.grad
"""

from tensorlib.autograd import enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from tensorlib.device import cuda_is_available, cuda_unavailable_reason
from tensorlib.gradcheck import GradcheckError, gradcheck
from tensorlib.memory import _apply_at_import, host_allocator_tuned, tune_host_allocator
from tensorlib.ops import (
    abs, adaptive_avg_pool2d, adaptive_max_pool2d, argmax, argmin, avg_pool2d, bmm, cat, clamp, clone, conv2d,
    conv2d_relu, conv_transpose2d, cumsum, erf, exp, expm1, flatten, floor_divide, gather, log, log1p, log_softmax,
    logsumexp, lp_pool2d, matmul, max, max_pool2d, maximum, mean, min, minimum, mm, pad, permute, relu, remainder,
    reshape, result_type, sigmoid, softmax, sqrt, squeeze, stack, std, sum, tanh, transpose, unsqueeze, var, where,
)
from tensorlib.ops.elementwise import (
    allclose, ceil, cos, eq, equal, floor, ge, gt, isclose, isfinite, isinf, isnan, le, lerp, lt, masked_fill, ne,
    neg, reciprocal, round, rsqrt, sign, sin, square, trunc,
)
from tensorlib.ops.reduce import all, amax, amin, any, argsort, norm, prod, sort, topk
from tensorlib.ops.shape import (
    chunk, flip, index_select, movedim, narrow, repeat, roll, split, swapaxes, swapdims, unbind, unflatten,
)
from tensorlib.random import (
    default_generator, get_rng_state, manual_seed, rand, randint, randn, randperm, set_rng_state,
)
from tensorlib.tensor import (
    Tensor, arange, as_tensor, bool_, empty, empty_like, eye, float16, float32, float64, full, full_like,
    get_default_dtype, int32, int64, linspace, ones, ones_like, set_default_dtype, tensor, uint8, zeros, zeros_like,
)

bool = bool_  # noqa: A001  (PyTorch's name for the dtype)

__version__ = "0.1.0"

_apply_at_import()
