"""Functional forms of the layers and losses, with ``torch.nn.functional``'s signatures."""

from __future__ import annotations

import math
import operator
import warnings

import numpy as np

import tensorlib as tl
from kernels import device_arrays
from kernels.conv2d.geometry import _output_size, is_int as _is_int, pair
from tensorlib.autograd import Function
from tensorlib.device import array_module, module_for, move
from tensorlib.device import scatter_add as add_at  # numpy.add.at (cupyx's on the device)
from tensorlib.ops.elementwise import stable_sigmoid
from tensorlib.ops.fused import batch_norm_train, softmax_cross_entropy
from tensorlib.ops.reduce import single_dim
from tensorlib.ops.shape import IndexSelect
from tensorlib.random import default_generator

conv2d = tl.conv2d
conv_transpose2d = tl.conv_transpose2d

_REDUCTIONS = ("mean", "sum", "none")


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    """The max over each window of an (N, C, H, W) or (C, H, W) input (``tl.max_pool2d``); with
    ``return_indices`` also the position h * W + w of each maximum in its plane, which ``max_unpool2d`` takes."""
    return tl.max_pool2d(input, kernel_size, stride, padding, dilation, ceil_mode, return_indices)


def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None):
    return tl.avg_pool2d(input, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override)


def lp_pool2d(input, norm_type, kernel_size, stride=None, ceil_mode=False):
    return tl.lp_pool2d(input, norm_type, kernel_size, stride, ceil_mode)


class _MaxUnpool(Function):
    """Each input value written at the position (h * W_out + w) its index names in its output plane, zeros
    elsewhere; the gradient reads each value's position back."""

    def forward(self, x, indices, size):
        xp = array_module(x)
        planes = x.shape[0] * x.shape[1]
        self.shape, self.positions = x.shape, indices.reshape(planes, x.shape[2] * x.shape[3])
        out = xp.zeros((planes, size[0] * size[1]), dtype=x.dtype)
        out[xp.arange(planes)[:, None], self.positions] = x.reshape(self.positions.shape)
        return out.reshape(*x.shape[:2], *size)

    def backward(self, g):
        planes = g.reshape(self.positions.shape[0], g.shape[2] * g.shape[3])
        return array_module(g).take_along_axis(planes, self.positions, axis=1).reshape(self.shape), None, None


def _unpool_size(input, geometry, output_size):
    """max_unpool2d's output (H, W): (in - 1) * stride - 2 * padding + kernel along each axis, or ``output_size``
    (its last two entries), which must lie strictly within a stride of that."""
    kernel, stride, padding = geometry
    default = tuple((n - 1) * s - 2 * p + k for n, k, s, p in zip(input.shape[-2:], kernel, stride, padding))
    if output_size is None:
        return default
    sizes = tuple(output_size)
    if len(sizes) not in (2, 4) or not all(_is_int(size) for size in sizes):
        raise ValueError(f"max_unpool2d: output_size must hold 2 sizes (H, W) or 4 (N, C, H, W), got {output_size!r}")
    sizes = tuple(int(size) for size in sizes[-2:])
    for axis, (size, expected, step) in enumerate(zip(sizes, default, stride)):
        if not expected - step < size < expected + step:
            raise ValueError(f"max_unpool2d: output_size {tuple(output_size)} does not fit the input (shape "
                             f"{input.shape}): its spatial dim {axis} must be greater than {expected - step} and less "
                             f"than {expected + step}")
    return sizes


def max_unpool2d(input, indices, kernel_size, stride=None, padding=0, output_size=None):
    """The partial inverse of ``max_pool2d``: each value of an (N, C, H, W) or (C, H, W) input goes back to the
    position ``indices`` (max_pool2d's ``return_indices``) names in its plane of the unpooled output, zeros
    everywhere else. ``output_size`` settles the size where several input sizes pool to the same one (a stride of 2 maps
    both 4 and 5 to 2). Which value lands at an index that repeats is unspecified, as in PyTorch."""
    geometry = tuple(pair(value, name) for value, name in ((kernel_size, "kernel_size"),
                                                             (kernel_size if stride is None else stride, "stride"),
                                                             (padding, "padding")))
    for (name, least), value in zip((("kernel_size", 1), ("stride", 1), ("padding", 0)), geometry):
        if min(value) < least:
            raise ValueError(f"max_unpool2d: {name} must be at least {least}, got {value}")
    if input.ndim not in (3, 4):
        raise ValueError(f"max_unpool2d expects a 3-D (C, H, W) or 4-D (N, C, H, W) input, got shape {input.shape}")
    _check_floating("max_unpool2d", input)
    if indices.dtype != np.int64:
        raise TypeError(f"max_unpool2d: indices must be int64 (max_pool2d's return_indices), got {indices.dtype}")
    if indices.shape != input.shape:
        raise ValueError(f"max_unpool2d: indices must have the input's shape {input.shape}, got {indices.shape}")
    size = _unpool_size(input, geometry, output_size)
    if min(size) < 1:
        raise ValueError(f"max_unpool2d: the output size {size} of an input of shape {input.shape} must be positive")
    positions = indices.array
    if positions.size and not device_arrays.capturing(positions):  # a host read: skipped while a graph is captured
        xp = array_module(positions)
        low, high = (int(v) for v in xp.stack([positions.min(), positions.max()]).tolist())  # one transfer
        if low < 0 or high >= size[0] * size[1]:
            raise IndexError(f"max_unpool2d: index {low if low < 0 else high} is out of range for an output plane "
                             f"of size {size[0]}x{size[1]}")
    if input.ndim == 3:
        return _MaxUnpool.apply(input.unsqueeze(0), indices.unsqueeze(0), size).squeeze(0)
    return _MaxUnpool.apply(input, indices, size)


def _empty_adaptive_output(input, output_size, with_indices):
    """The output of an adaptive pooling whose ``output_size`` holds a 0: an empty (..., P, Q) tensor, as PyTorch
    gives (with empty int64 indices when ``with_indices``); None when no size is 0, for the pooling kernels."""
    sizes = tuple(output_size) if isinstance(output_size, (tuple, list)) else (output_size,) * 2
    if len(sizes) != 2 or not any(_is_int(size) and size == 0 for size in sizes) or input.ndim not in (3, 4):
        return None
    shape = input.shape[:-2] + tuple(input.shape[axis] if size is None else int(size)
                                     for axis, size in zip((-2, -1), sizes))
    # a slice of the input, so that the (empty) output is in the graph and backward gives a zero gradient
    out = input[..., :min(shape[-2], 1), :min(shape[-1], 1)].expand(*shape)
    return (out, tl.zeros(shape, dtype=tl.int64, device=input.device)) if with_indices else out


def adaptive_avg_pool2d(input, output_size):
    """The average over PyTorch's adaptive windows of the last two dims (``tl.adaptive_avg_pool2d``); None in a
    pair keeps the input's size along that axis. As in PyTorch, an output size of 0 gives an empty output, and
    ``output_size`` 1 is the mean over the last two dims for an input of any rank from 3 on."""
    empty = _empty_adaptive_output(input, output_size, with_indices=False)
    if empty is not None:
        return empty
    if input.ndim > 4 and output_size in (1, (1, 1), [1, 1]):
        return input.mean((-2, -1), keepdim=True)
    return tl.adaptive_avg_pool2d(input, output_size)


def adaptive_max_pool2d(input, output_size, return_indices=False):
    """The max over PyTorch's adaptive windows (``tl.adaptive_max_pool2d``); an output size of 0 gives an empty
    output, as in PyTorch."""
    empty = _empty_adaptive_output(input, output_size, with_indices=return_indices)
    if empty is not None:
        return empty
    return tl.adaptive_max_pool2d(input, output_size, return_indices)


_PADDED_DIMS_TO_RANKS = {1: (2, 3), 2: (3, 4), 3: (4, 5)}  # the ranks the modes other than 'constant' pad


def pad(input, pad, mode="constant", value=None):
    """``tl.pad``: ``pad`` lists (before, after) pairs from the last dim on; ``value`` (None: 0) fills the
    'constant' mode. As in PyTorch the modes 'reflect', 'replicate' and 'circular' take no value, and pad the last
    1, 2 or 3 dims of an input with one or two dims more (channels, or a batch and channels)."""
    if mode == "constant":
        return tl.pad(input, pad, mode, 0.0 if value is None else value)
    if mode in ("reflect", "replicate", "circular"):
        if value is not None and value != 0:
            raise ValueError(f"pad: mode {mode!r} takes no value, got value={value!r}")
        amounts = tuple(pad)
        ranks = _PADDED_DIMS_TO_RANKS.get(len(amounts) // 2)
        if not len(amounts) % 2 and (ranks is None or input.ndim not in ranks):
            raise NotImplementedError(
                f"pad: mode {mode!r} pads 1, 2 or 3 trailing dims (2, 4 or 6 amounts) of a 2-D or 3-D, 3-D or 4-D, "
                f"4-D or 5-D input respectively; got {len(amounts)} amounts for an input of shape {input.shape}")
    return tl.pad(input, pad, mode)


def sigmoid(input):
    return tl.sigmoid(input)


def tanh(input):
    return tl.tanh(input)


def linear(input, weight, bias=None):
    """``input @ weight.T + bias``; weight (out_features, in_features) as in PyTorch."""
    if input.ndim == 0:
        raise ValueError(f"linear expects an input of shape (*, in_features), got a 0-d input (shape {input.shape})")
    if input.shape[-1] != weight.shape[-1]:
        raise ValueError(f"linear: input shape {input.shape} does not fit weight shape {weight.shape} "
                         f"(needs {weight.shape[-1]} input features)")
    if weight.dtype != input.dtype or (bias is not None and bias.dtype != input.dtype):
        given = f"input {input.dtype}, weight {weight.dtype}" + (f", bias {bias.dtype}" if bias is not None else "")
        raise RuntimeError(f"linear: input, weight and bias must have the same dtype, got {given}")
    out = input @ weight.T
    return out + bias if bias is not None else out


def _result(input, inplace, name, function, *args):
    """``function(input, *args)``, or with ``inplace`` written back into the input's memory, as PyTorch's
    ``inplace=True`` does (the tensor then holds the result; autograd records it as an in-place op)."""
    if inplace:
        return input._inplace(name, function, *args)
    return function(input, *args)


def relu(input, inplace=False):
    return _result(input, inplace, "relu(inplace=True)", tl.relu)


def _leaky_relu(input, negative_slope):
    return tl.where(input > 0, input, input * negative_slope)


def leaky_relu(input, negative_slope=0.01, inplace=False):
    return _result(input, inplace, "leaky_relu(inplace=True)", _leaky_relu, negative_slope)


class _Elu(Function):
    """scale * x for x > 0, scale * alpha * (exp(input_scale * x) - 1) for x <= 0: elu (both scales 1), selu
    (PyTorch's fixed alpha and scale) and celu (input_scale 1/alpha), as PyTorch parametrises the three. Computed
    with expm1: exp(x) - 1 would lose every digit of a tiny x (-1e-8 gives 0 in float32). The gradient of the
    negative side comes from x, as in PyTorch: from the output it would round to 0 for x below about -17 in
    float32. A NaN input takes the x > 0 side, passing its gradient, as in PyTorch."""

    def forward(self, x, alpha, scale, input_scale):
        xp = array_module(x)
        self.x, self.alpha, self.scale, self.input_scale = x, alpha, scale, input_scale
        # expm1 of the clamped input: the unused positive side never overflows
        negative = (scale * alpha) * xp.expm1(xp.minimum(x, 0) * input_scale)
        return xp.where(x <= 0, negative, x * scale).astype(x.dtype, copy=False)

    def backward(self, g):
        xp = array_module(g)
        slope = (self.scale * self.alpha * self.input_scale) * xp.exp(xp.minimum(self.x, 0) * self.input_scale)
        return xp.where(self.x <= 0, g * slope, g * self.scale).astype(g.dtype, copy=False), None, None, None


def _check_floating(function, input):
    if input.dtype.kind != "f":
        raise TypeError(f"{function} needs a floating-point input, got dtype {input.dtype}")


def _check_positive_int(name, value, who=None):
    """ValueError unless ``value`` is an int > 0; ``who``, the function, starts the message when given."""
    if not _is_int(value) or value <= 0:
        raise ValueError(f"{who + ': ' if who else ''}{name} must be a positive int, got {value!r}")


def _check_same_dtype(who, input, **tensors):
    """PyTorch's "mixed dtype" refusal: each given tensor (None is skipped) must have the input's dtype, which
    NumPy's promotion would otherwise change silently (a float32 input with a float64 weight gives float64)."""
    for name, tensor in tensors.items():
        if tensor is not None and tensor.dtype != input.dtype:
            raise RuntimeError(f"mixed dtype: {who} got a {input.dtype} input but its {name} is {tensor.dtype}; "
                               "convert one of them (module.to(dtype) or input.to(dtype))")


def elu(input, alpha=1.0, inplace=False):
    _check_floating("elu", input)
    return _result(input, inplace, "elu(inplace=True)", _Elu.apply, alpha, 1.0, 1.0)


_SELU_ALPHA = 1.6732632423543772848170429916717  # Klambauer et al. 2017, the values PyTorch uses
_SELU_SCALE = 1.0507009873554804934193349852946


def selu(input, inplace=False):
    """scale * elu(x, alpha) with the self-normalising network's constants (Klambauer et al. 2017): activations
    keep mean 0 and variance 1 through layers initialised with ``init.kaiming_normal_(nonlinearity='linear')``."""
    _check_floating("selu", input)
    return _result(input, inplace, "selu(inplace=True)", _Elu.apply, _SELU_ALPHA, _SELU_SCALE, 1.0)


def celu(input, alpha=1.0, inplace=False):
    """x for x > 0, alpha * (exp(x / alpha) - 1) for x <= 0 (Barron 2017): elu with a slope that stays 1 at 0."""
    _check_floating("celu", input)
    if alpha == 0:
        raise ValueError("celu: alpha cannot be 0 (the negative side is alpha * (exp(x / alpha) - 1)), got alpha=0")
    return _result(input, inplace, "celu(inplace=True)", _Elu.apply, alpha, 1.0, 1.0 / alpha)


def _softplus_array(x, beta, threshold):
    """softplus on a raw array: (1/beta) log(1 + exp(beta x)), and x itself where beta x > threshold.
    log1p(exp(-|z|)) + max(z, 0) is the same number without exp overflowing for a large threshold, and log1p
    keeps a tiny exp(-|z|) that log(1 + exp(-|z|)) would round away."""
    xp = array_module(x)
    z = x * beta
    smooth = (xp.log1p(xp.exp(-xp.abs(z))) + xp.maximum(z, 0)) / beta
    return xp.where(z > threshold, x, smooth).astype(x.dtype, copy=False)


class _LogSigmoid(Function):
    """log(sigmoid(x)) = -softplus(-x), exact for large |x|: no overflow, and the small loss of a confident right
    answer is not rounded to 0. Its slope is sigmoid(-x)."""

    def forward(self, x):
        self.x = x
        return -_softplus_array(-x, 1.0, math.inf)

    def backward(self, g):
        return (g * stable_sigmoid(-self.x)).astype(g.dtype, copy=False)


def logsigmoid(input):
    _check_floating("logsigmoid", input)
    return _LogSigmoid.apply(input)


def gelu(input, approximate="none"):
    """x * Phi(x) with the exact normal CDF, or its tanh approximation with ``approximate="tanh"``."""
    if approximate == "none":
        return input * 0.5 * (1 + (input * (1 / math.sqrt(2))).erf())
    if approximate == "tanh":
        inner = (input + input**3 * 0.044715) * math.sqrt(2 / math.pi)
        return input * 0.5 * (1 + inner.tanh())
    raise ValueError(f"gelu approximate must be 'none' or 'tanh', got {approximate!r}")


class _Hardtanh(Function):
    """min_val below min_val, max_val above max_val, x between. The gradient passes strictly between the two
    (0 at them) and through a NaN, which stays NaN, as in PyTorch."""

    def forward(self, x, min_val, max_val):
        xp = array_module(x)
        self.x, self.min_val, self.max_val = x, min_val, max_val
        return xp.where(x <= min_val, min_val, xp.where(x >= max_val, max_val, x)).astype(x.dtype, copy=False)

    def backward(self, g):
        outside = (self.x <= self.min_val) | (self.x >= self.max_val)
        return array_module(g).where(outside, 0, g).astype(g.dtype, copy=False), None, None


def hardtanh(input, min_val=-1.0, max_val=1.0, inplace=False):
    if min_val > max_val:
        raise ValueError(f"hardtanh: min_val ({min_val}) cannot be greater than max_val ({max_val})")
    return _result(input, inplace, "hardtanh(inplace=True)", _Hardtanh.apply, min_val, max_val)


def relu6(input, inplace=False):
    """min(max(x, 0), 6): hardtanh between 0 and 6."""
    return _result(input, inplace, "relu6(inplace=True)", _Hardtanh.apply, 0.0, 6.0)


class _Hardsigmoid(Function):
    """relu6(x + 3) / 6; slope 1/6 strictly between -3 and 3, 0 elsewhere and at a NaN, as in PyTorch."""

    def forward(self, x):
        xp = array_module(x)
        self.x = x
        return (xp.minimum(xp.maximum(x + 3, 0), 6) / 6).astype(x.dtype, copy=False)

    def backward(self, g):
        inside = (self.x > -3) & (self.x < 3)
        return array_module(g).where(inside, g / 6, 0).astype(g.dtype, copy=False)


def hardsigmoid(input, inplace=False):
    _check_floating("hardsigmoid", input)
    return _result(input, inplace, "hardsigmoid(inplace=True)", _Hardsigmoid.apply)


class _Hardswish(Function):
    """x * relu6(x + 3) / 6 (MobileNetV3). Slope 0 up to -3, x/3 + 1/2 up to 3 (excluded), 1 from there and at
    a NaN, as in PyTorch."""

    def forward(self, x):
        xp = array_module(x)
        self.x = x
        with np.errstate(invalid="ignore"):  # -inf * 0 is NaN, as in PyTorch
            return (x * xp.minimum(xp.maximum(x + 3, 0), 6) / 6).astype(x.dtype, copy=False)

    def backward(self, g):
        xp = array_module(g)
        x = self.x
        slope = xp.where(x <= -3, 0, xp.where(x < 3, x / 3 + 0.5, 1))
        return (g * slope).astype(g.dtype, copy=False)


def hardswish(input, inplace=False):
    _check_floating("hardswish", input)
    return _result(input, inplace, "hardswish(inplace=True)", _Hardswish.apply)


def silu(input, inplace=False):
    """x * sigmoid(x) (also called swish)."""
    _check_floating("silu", input)
    return _result(input, inplace, "silu(inplace=True)", lambda x: x * x.sigmoid())


class _Softplus(Function):
    """softplus(x) = (1/beta) log(1 + exp(beta x)), linear (x itself) where beta x > threshold; its slope is
    sigmoid(beta x) there and 1 beyond the threshold, as in PyTorch."""

    def forward(self, x, beta, threshold):
        self.x, self.beta, self.threshold = x, beta, threshold
        return _softplus_array(x, beta, threshold)

    def backward(self, g):
        xp = array_module(g)
        z = self.x * self.beta
        return xp.where(z > self.threshold, g, g * stable_sigmoid(z)).astype(g.dtype, copy=False), None, None


def softplus(input, beta=1.0, threshold=20.0):
    _check_floating("softplus", input)
    return _Softplus.apply(input, beta, threshold)


class _Mish(Function):
    """x * tanh(softplus(x)) (Misra 2019); slope tanh(sp) + x * sigmoid(x) * (1 - tanh(sp)^2)."""

    def forward(self, x):
        self.x = x
        self.tanh_sp = array_module(x).tanh(_softplus_array(x, 1.0, 20.0))
        return x * self.tanh_sp

    def backward(self, g):
        t = self.tanh_sp
        return g * (t + self.x * stable_sigmoid(self.x) * (1 - t * t))


def mish(input, inplace=False):
    _check_floating("mish", input)
    return _result(input, inplace, "mish(inplace=True)", _Mish.apply)


def softsign(input):
    """x / (1 + |x|)."""
    return input / (input.abs() + 1)


def hardshrink(input, lambd=0.5):
    """0 for x in [-lambd, lambd], x elsewhere (a NaN stays NaN)."""
    _check_floating("hardshrink", input)
    return tl.where((input >= -lambd) & (input <= lambd), 0.0, input)


def softshrink(input, lambd=0.5):
    """x moved lambd towards 0, and 0 for x in [-lambd, lambd]: the soft thresholding of sparse coding."""
    _check_floating("softshrink", input)
    if not lambd >= 0:
        raise ValueError(f"softshrink: lambd must be >= 0, got {lambd}")
    # input * 0 inside the band: 0 with the input's sign, and NaN for a NaN, as in PyTorch
    return tl.where(input > lambd, input - lambd, tl.where(input < -lambd, input + lambd, input * 0))


def tanhshrink(input):
    """x - tanh(x)."""
    return input - input.tanh()


def glu(input, dim=-1):
    """The gated linear unit (Dauphin et al. 2017): a * sigmoid(b), a and b the first and second halves of the
    input along ``dim``."""
    _check_floating("glu", input)
    if input.ndim == 0:
        raise ValueError("glu halves a dim of its input, so it does not take a 0-d input")
    axis = single_dim(dim, input.ndim, "glu")
    if input.shape[axis] % 2:
        raise ValueError(f"glu: the halved dim {dim} must have an even size, got {input.shape[axis]} (input shape "
                         f"{input.shape})")
    half = input.shape[axis] // 2
    return input.narrow(axis, 0, half) * input.narrow(axis, half, half).sigmoid()


def _check_rrelu_bounds(lower, upper):
    if lower > upper:
        raise ValueError(f"rrelu: lower ({lower}) must not be greater than upper ({upper})")


def rrelu(input, lower=1.0 / 8, upper=1.0 / 3, training=False, inplace=False):
    """Randomized leaky ReLU (Xu et al. 2015): in training each element's negative slope is drawn uniformly from
    [lower, upper] (from the global generator); in eval the slope is their mean, (lower + upper) / 2."""
    _check_floating("rrelu", input)
    _check_rrelu_bounds(lower, upper)
    if not training:
        return _result(input, inplace, "rrelu(inplace=True)", _leaky_relu, (lower + upper) / 2)
    slopes = default_generator().uniform(lower, upper, input.shape).astype(input.dtype)
    return _result(input, inplace, "rrelu(inplace=True)", _leaky_relu, tl.Tensor._make(move(slopes, input.device)))


def relu_(input):
    return relu(input, inplace=True)


def elu_(input, alpha=1.0):
    return elu(input, alpha, inplace=True)


def selu_(input):
    return selu(input, inplace=True)


def celu_(input, alpha=1.0):
    return celu(input, alpha, inplace=True)


def leaky_relu_(input, negative_slope=0.01):
    return leaky_relu(input, negative_slope, inplace=True)


def hardtanh_(input, min_val=-1.0, max_val=1.0):
    return hardtanh(input, min_val, max_val, inplace=True)


def threshold_(input, threshold, value):
    return _thresholded(input, threshold, value, inplace=True)


def rrelu_(input, lower=1.0 / 8, upper=1.0 / 3, training=False):
    return rrelu(input, lower, upper, training, inplace=True)


def _channels_in_groups(function, input, name, groups) -> int:
    """The channels (dim 1) of ``input``, checked to split into ``groups`` (a positive int, argument ``name``)."""
    _check_positive_int(name, groups, function)
    channels = input.shape[1]
    if channels % groups:
        raise ValueError(f"{function}: the {channels} channels of the input (shape {input.shape}) are not divisible "
                         f"by {name}={groups}")
    return channels


def channel_shuffle(input, groups):
    """(N, C, *) with its channels interleaved across ``groups`` (ShuffleNet, Zhang et al. 2018): the C = groups * k
    channels, read as a (groups, k) grid, are written out as its transpose, (k, groups)."""
    if input.ndim < 3:
        raise ValueError(f"channel_shuffle expects an input of at least 3 dims (N, C, *), got shape {input.shape}")
    channels = _channels_in_groups("channel_shuffle", input, "groups", groups)
    grid = input.reshape(input.shape[0], groups, channels // groups, *input.shape[2:])
    return grid.transpose(1, 2).reshape(*input.shape)


def _threshold(input, threshold, value):
    return tl.where(input <= threshold, value, input)


def threshold(input, threshold, value, inplace=False):
    """``value`` where x <= threshold, x elsewhere (a NaN stays NaN and passes its gradient, as in PyTorch). An
    integer input keeps its dtype: both numbers are cast to it first (rounded toward zero), as in PyTorch."""
    return _thresholded(input, threshold, value, inplace)


def _thresholded(input, threshold, value, inplace):
    if input.dtype.kind in "iu":
        threshold, value = int(threshold), int(value)
    return _result(input, inplace, "threshold(inplace=True)", _threshold, threshold, value)


def prelu(input, weight):
    """max(0, x) + weight * min(0, x), with one learned slope for all channels or one per channel (dim 1;
    an input of under 2 dims has one channel)."""
    if weight.ndim > 1:
        raise ValueError(f"prelu: weight must be a 0-D or 1-D tensor, got shape {weight.shape}")
    _check_same_dtype("prelu", input, weight=weight)
    channels = input.shape[1] if input.ndim >= 2 else 1
    if weight.numel() not in (1, channels):
        raise ValueError(f"prelu: weight holds {weight.numel()} slopes but the input (shape {input.shape}) has "
                         f"{channels} channels; give 1 slope or one per channel")
    if weight.numel() == channels and input.ndim >= 2:
        weight = weight.reshape((1, channels) + (1,) * (input.ndim - 2))
    elif input.ndim == 0:  # a 1-element weight would broadcast a 0-D input up to 1-D
        weight = weight.reshape(())
    return tl.where(input > 0, input, input * weight)


def _implicit_dim(ndim: int) -> int:
    """PyTorch's legacy choice when softmax is called without dim."""
    return 0 if ndim in (0, 1, 3) else 1


def _check_stacklevel(function, _stacklevel):
    """PyTorch's softmax forms hold an unused ``_stacklevel`` in the third place, where a dtype passed by position
    would be silently ignored: refuse that."""
    if not isinstance(_stacklevel, int):
        raise TypeError(f"{function}: the third positional argument is PyTorch's _stacklevel (unused), got "
                        f"{_stacklevel!r}; pass a dtype by keyword: dtype=...")


def softmax(input, dim=None, _stacklevel=3, dtype=None):  # _stacklevel: PyTorch's positional slot, unused
    _check_stacklevel("softmax", _stacklevel)
    if dtype is not None:
        input = input.to(dtype)
    return tl.softmax(input, _implicit_dim(input.ndim) if dim is None else dim)


def log_softmax(input, dim=None, _stacklevel=3, dtype=None):
    _check_stacklevel("log_softmax", _stacklevel)
    if dtype is not None:
        input = input.to(dtype)
    return tl.log_softmax(input, _implicit_dim(input.ndim) if dim is None else dim)


def softmin(input, dim=None, _stacklevel=3, dtype=None):
    """softmax(-input) along ``dim``: the smallest entries get the largest weights."""
    _check_stacklevel("softmin", _stacklevel)
    if dtype is not None:
        input = input.to(dtype)
    return tl.softmax(-input, _implicit_dim(input.ndim) if dim is None else dim)


def _check_probability(p):
    if not 0 <= p <= 1:
        raise ValueError(f"dropout probability p must be between 0 and 1, got {p}")


def _kept(shape, p, like):
    """1 where an element is kept (probability 1 - p), 0 where it is dropped: a raw array of ``shape`` in the
    dtype and on the device of ``like``, drawn from the global generator."""
    keep = default_generator().random(shape) >= p
    return move(keep.astype(like.dtype), like.device)


def _keep_mask(shape, p, like):
    scale = np.asarray(1.0 / (1.0 - p) if p < 1 else 0.0, dtype=like.dtype)
    return tl.Tensor._make(_kept(shape, p, like) * scale)


def dropout(input, p=0.5, training=True, inplace=False):
    """Zero each element with probability p and scale the rest by 1/(1-p) (training only)."""
    _check_probability(p)
    if not training or p == 0:
        return input
    return _result(input, inplace, "dropout(inplace=True)", operator.mul, _keep_mask(input.shape, p, input))


def dropout1d(input, p=0.5, training=True, inplace=False):
    """Zero whole channels of an (N, C, L) input (or an unbatched (C, L) one): one draw per channel."""
    _check_probability(p)
    if input.ndim not in (2, 3):
        raise ValueError(f"dropout1d expects a 2-D (C, L) or 3-D (N, C, L) input, got shape {input.shape}; it "
                         "zeroes the channels of inputs with one spatial dim")
    if not training or p == 0:
        return input
    shape = input.shape[:-1] + (1,)
    return _result(input, inplace, "dropout1d(inplace=True)", operator.mul, _keep_mask(shape, p, input))

def dropout2d(input, p=0.5, training=True, inplace=False):
    """Zero whole channels: one draw per (dim 0, dim 1) pair, i.e. per (sample, channel) of (N, C, H, W).

    As in PyTorch, a 3-D input is taken as (N, C, L), not as an unbatched (C, H, W), and inputs other than 3-D
    and 4-D are accepted with a warning (the same draws per dims 0 and 1); fewer than 2 dims is an error.
    """
    _check_probability(p)
    if input.ndim < 2:
        raise ValueError(f"dropout2d needs an input of at least 2 dims (N, C, ...), got shape {input.shape}")
    if input.ndim not in (3, 4):
        warnings.warn(f"dropout2d: received a {input.ndim}-D input (shape {input.shape}); dropout2d is meant for "
                      "4-D (N, C, H, W) inputs. It zeroes each (dim 0, dim 1) slice, as PyTorch does; use dropout "
                      "for elementwise dropout", stacklevel=2)
    elif input.ndim == 3:
        warnings.warn(f"dropout2d: received a 3-D input (shape {input.shape}), taken as (N, C, L) as PyTorch does: "
                      "each (sample, channel) row is zeroed, not each channel of an unbatched (C, H, W) input",
                      stacklevel=2)
    if not training or p == 0:
        return input
    shape = input.shape[:2] + (1,) * (input.ndim - 2)
    return _result(input, inplace, "dropout2d(inplace=True)", operator.mul, _keep_mask(shape, p, input))


def dropout3d(input, p=0.5, training=True, inplace=False):
    """Zero whole channels of a (N, C, D, H, W) input, one draw per (sample, channel), or of an unbatched
    (C, D, H, W) one, one draw per channel.

    As in PyTorch, inputs other than 4-D and 5-D are accepted with a warning and taken as unbatched: one draw per
    index of dim 0.
    """
    _check_probability(p)
    if input.ndim == 0:
        raise ValueError("dropout3d needs an input of at least 1 dim, got a 0-d input")
    if input.ndim not in (4, 5):
        warnings.warn(f"dropout3d: received a {input.ndim}-D input (shape {input.shape}); dropout3d is meant for "
                      "5-D (N, C, D, H, W) and unbatched 4-D (C, D, H, W) inputs. It zeroes each slice along dim 0, "
                      "as PyTorch does; use dropout for elementwise dropout", stacklevel=2)
    if not training or p == 0:
        return input
    drawn = 2 if input.ndim == 5 else 1
    shape = input.shape[:drawn] + (1,) * (input.ndim - drawn)
    return _result(input, inplace, "dropout3d(inplace=True)", operator.mul, _keep_mask(shape, p, input))


def _alpha_dropped(input, p, inplace, name, shape):
    """Alpha dropout (Klambauer et al. 2017) with one draw per element of ``shape`` (broadcast over the input):
    a dropped value becomes selu's negative saturation -scale * alpha, then a * x + b restores the mean and
    variance of a standardised input (a and b follow from p)."""
    if p == 1:
        return _result(input, inplace, name, operator.mul, 0.0)  # every value dropped: zeros, as in PyTorch
    saturation = -_SELU_SCALE * _SELU_ALPHA
    a = ((1 - p) * (1 + p * saturation**2)) ** -0.5
    b = -a * saturation * p
    kept = _kept(shape, p, input)
    # a * (x * kept + saturation * (1 - kept)) + b, as one multiplier and one offset
    multiplier = tl.Tensor._make(kept * input.dtype.type(a))
    offset = tl.Tensor._make((1 - kept) * input.dtype.type(a * saturation) + input.dtype.type(b))
    return _result(input, inplace, name, lambda x: x * multiplier + offset)


def alpha_dropout(input, p=0.5, training=False, inplace=False):
    """Dropout for self-normalising networks (SELU): keeps the mean and variance of its input (training only;
    note PyTorch's default ``training=False``)."""
    _check_probability(p)
    _check_floating("alpha_dropout", input)
    if not training or p == 0:
        return input
    return _alpha_dropped(input, p, inplace, "alpha_dropout(inplace=True)", input.shape)


def feature_alpha_dropout(input, p=0.5, training=False, inplace=False):
    """Alpha dropout of whole channels: one draw per (dim 0, dim 1) pair, i.e. per (sample, channel)."""
    _check_probability(p)
    _check_floating("feature_alpha_dropout", input)
    if input.ndim < 2:
        raise ValueError(f"feature_alpha_dropout needs an input of at least 2 dims (N, C, ...), got shape "
                         f"{input.shape}")
    if not training or p == 0:
        return input
    shape = input.shape[:2] + (1,) * (input.ndim - 2)
    return _alpha_dropped(input, p, inplace, "feature_alpha_dropout(inplace=True)", shape)


def check_batch_norm(input, running_mean, running_var, weight, bias, training, eps, who="batch_norm"):
    """Refuse what batch norm would compute silently wrong: an input of under 2 dims, statistics or affine
    parameters that are not one value per channel or of another dtype than the input (PyTorch's "mixed dtype"
    error), and eps < 0, or eps = 0 with batch statistics (a constant channel has variance 0)."""
    if input.ndim < 2:
        raise ValueError(f"{who} expects an input of at least 2 dims (N, C, ...), got shape {input.shape}")
    channels = input.shape[1]
    for name, tensor in (("running_mean", running_mean), ("running_var", running_var), ("weight", weight),
                         ("bias", bias)):
        if tensor is None:
            continue
        if tuple(tensor.shape) != (channels,):
            raise ValueError(f"{who}: {name} must have one value per channel, shape ({channels},), got {tensor.shape}")
    _check_same_dtype(who, input, running_mean=running_mean, running_var=running_var, weight=weight, bias=bias)
    if not eps >= 0 or (training and eps == 0):  # not >= also catches NaN
        raise ValueError(f"{who} needs eps > 0 in training and eps >= 0 in eval, got eps={eps}")


def batch_norm(input, running_mean, running_var, weight=None, bias=None, training=False, momentum=0.1, eps=1e-5):
    """Normalise each channel (dim 1) by the batch statistics (training) or the running ones (eval).

    In training the batch variance used to normalise is the biased one (divide by n), while the running
    variance is updated with the unbiased one (n - 1), exactly as PyTorch does.
    """
    check_batch_norm(input, running_mean, running_var, weight, bias, training, eps)
    return _batch_norm_checked(input, running_mean, running_var, weight, bias, training, momentum, eps)


def _batch_norm_checked(input, running_mean, running_var, weight, bias, training, momentum, eps):
    """``batch_norm`` once ``check_batch_norm`` passed (BatchNorm layers check with their own name first)."""
    if not training:
        return _normalized_by_running_statistics("batch_norm in eval mode", input, running_mean, running_var, weight,
                                                 bias, eps)
    # one fused op (kernels/batchnorm): statistics, normalisation, affine, and the closed-form backward
    out, mean, unbiased = batch_norm_train(input, weight, bias, eps)
    if running_mean is not None and running_var is not None:
        running_mean.array[...] = (1 - momentum) * running_mean.array + momentum * mean
        running_var.array[...] = (1 - momentum) * running_var.array + momentum * unbiased
    return out


def _normalized_by_running_statistics(who, input, running_mean, running_var, weight, bias, eps):
    """(x - running_mean) / sqrt(running_var + eps) * weight + bias, each one value per channel (dim 1):
    batch_norm in eval mode, and instance_norm without the input's statistics."""
    if running_mean is None or running_var is None:
        raise ValueError(f"{who} needs running_mean and running_var")
    shape = _per_channel(input)
    out = (input - running_mean.reshape(shape)) / (running_var.reshape(shape) + eps).sqrt()
    return _affine(out, weight, bias, shape)


def _per_channel(input):
    """(1, C, 1, ...): the shape of one value per channel (dim 1) of ``input``, broadcasting against it."""
    return (1, input.shape[1]) + (1,) * (input.ndim - 2)


def _standardized(input, dims, eps):
    """(x - mean) / sqrt(var + eps) over ``dims``, with the biased variance (divide by n), as PyTorch's
    normalisation layers compute it; autograd differentiates through both statistics."""
    mean = input.mean(dims, keepdim=True)
    var = input.var(dims, keepdim=True, correction=0)
    return (input - mean) / (var + eps).sqrt()


def _check_parameter_shape(who, name, tensor, shape, what):
    if tensor is not None and tuple(tensor.shape) != tuple(shape):
        raise ValueError(f"{who}: {name} must have shape {tuple(shape)} ({what}), got {tensor.shape}")


def _affine(out, weight, bias, shape):
    """out * weight + bias, the parameters reshaped to ``shape`` (either may be None)."""
    if weight is not None:
        out = out * weight.reshape(shape)
    if bias is not None:
        out = out + bias.reshape(shape)
    return out


def _normalized_shape(normalized_shape):
    """LayerNorm's ``normalized_shape``, an int or a sequence of ints >= 0, as a tuple of ints."""
    shape = (normalized_shape,) if _is_int(normalized_shape) else normalized_shape
    if not isinstance(shape, (tuple, list)) or not all(_is_int(size) for size in shape):
        raise TypeError(f"normalized_shape must be an int or a sequence of ints, got {normalized_shape!r}")
    if any(size < 0 for size in shape):
        raise ValueError(f"normalized_shape must hold non-negative ints, got {normalized_shape!r}")
    return tuple(int(size) for size in shape)


def layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-5):
    """Normalise over the last ``len(normalized_shape)`` dims of each sample, then ``* weight + bias``
    (both of ``normalized_shape``, elementwise)."""
    _check_floating("layer_norm", input)
    shape = _normalized_shape(normalized_shape)
    if not shape:
        raise ValueError("layer_norm: normalized_shape must hold at least one size, got ()")
    if input.ndim < len(shape) or input.shape[input.ndim - len(shape):] != shape:
        raise ValueError(f"layer_norm: normalized_shape={shape} expects an input of shape (*, "
                         f"{', '.join(map(str, shape))}), got {input.shape}")
    for name, tensor in (("weight", weight), ("bias", bias)):
        _check_parameter_shape("layer_norm", name, tensor, shape, "normalized_shape")
    _check_same_dtype("layer_norm", input, weight=weight, bias=bias)
    out = _standardized(input, tuple(range(input.ndim - len(shape), input.ndim)), eps)
    return _affine(out, weight, bias, shape)


def group_norm(input, num_groups, weight=None, bias=None, eps=1e-5):
    """Split the channels (dim 1) into ``num_groups`` groups and normalise each group of each sample over its
    channels and positions; then ``* weight + bias``, one value per channel."""
    _check_floating("group_norm", input)
    if input.ndim < 2:
        raise ValueError(f"group_norm expects an input of at least 2 dims (N, C, ...), got shape {input.shape}")
    channels = _channels_in_groups("group_norm", input, "num_groups", num_groups)
    for name, tensor in (("weight", weight), ("bias", bias)):
        _check_parameter_shape("group_norm", name, tensor, (channels,), "one value per channel")
    _check_same_dtype("group_norm", input, weight=weight, bias=bias)
    grouped = input.reshape(input.shape[0], num_groups, channels // num_groups * math.prod(input.shape[2:]))
    out = _standardized(grouped, 2, eps).reshape(input.shape)
    return _affine(out, weight, bias, _per_channel(input))


def instance_norm(input, running_mean=None, running_var=None, weight=None, bias=None, use_input_stats=True,
                  momentum=0.1, eps=1e-5):
    """Normalise each channel of each sample over its positions (dims 2 and on); then ``* weight + bias``, one
    value per channel.

    With ``use_input_stats`` the statistics are the input's own, and running statistics that are given move
    towards their mean over the batch (the variance unbiased, as in batch_norm); without, the running ones
    normalise every sample.
    """
    _check_floating("instance_norm", input)
    check_batch_norm(input, running_mean, running_var, weight, bias, use_input_stats, eps, who="instance_norm")
    if not use_input_stats:
        return _normalized_by_running_statistics("instance_norm with use_input_stats=False", input, running_mean,
                                                 running_var, weight, bias, eps)
    dims = tuple(range(2, input.ndim))
    positions = math.prod(input.shape[2:])
    if positions <= 1:
        raise ValueError(f"instance_norm expects more than 1 spatial element per channel when it uses the input's "
                         f"statistics, got input shape {input.shape}")
    if running_mean is not None and running_var is not None:
        data = input.array
        mean = data.mean(axis=dims)
        unbiased = data.var(axis=dims, ddof=1)
        running_mean.array[...] = (1 - momentum) * running_mean.array + momentum * mean.mean(axis=0)
        running_var.array[...] = (1 - momentum) * running_var.array + momentum * unbiased.mean(axis=0)
    return _affine(_standardized(input, dims, eps), weight, bias, _per_channel(input))


def local_response_norm(input, size, alpha=1e-4, beta=0.75, k=1.0):
    """AlexNet's local response normalisation across channels: x_c / (k + alpha/size * sum of x_c'^2 over the
    ``size`` channels c' around c)^beta. As in PyTorch the window runs from c - size//2 to c + (size-1)//2, with
    zeros past the first and last channel, and the sum is divided by ``size`` even at the edges."""
    _check_floating("local_response_norm", input)
    if input.ndim < 3:
        raise ValueError(f"local_response_norm expects an input of at least 3 dims (N, C, ...), got shape "
                         f"{input.shape}")
    _check_positive_int("size", size, "local_response_norm")
    channels = input.shape[1]
    # the squares zero-padded along the channels, then the window's sum as ``size`` shifted slices
    squares = pad(input * input, (0, 0) * (input.ndim - 2) + (size // 2, (size - 1) // 2))
    window = squares[:, :channels]
    for offset in range(1, size):
        window = window + squares[:, offset:offset + channels]
    return input / (window * (alpha / size) + k) ** beta


_INTERPOLATION_MODES = ("nearest", "nearest-exact", "linear", "bilinear", "bicubic", "trilinear", "area")
# the modes that take align_corners -> the input's number of dims
_CORNER_MODES = {"linear": 3, "bilinear": 4, "bicubic": 4, "trilinear": 5}
_LINEAR_MODES = ("linear", "bilinear", "trilinear")
_BICUBIC_A = -0.75  # the cubic convolution's parameter in PyTorch's bicubic mode
_ANTIALIAS_BICUBIC_A = -0.5  # and in its antialiased bicubic filter (PIL's)


def _interpolation_sizes(input, size, scale_factor, recompute_scale_factor, allow_empty):
    """(output sizes, the scales the sampling uses: 1/scale_factor per axis, or None to take in/out), from
    ``size`` or ``scale_factor`` as interpolate takes them; an output size of 0 only with ``allow_empty``."""
    spatial = input.shape[2:]
    if min(spatial) == 0:
        raise ValueError(f"interpolate: the input's spatial dims must be non-empty, got input shape {input.shape}")
    if (size is None) == (scale_factor is None):
        raise ValueError("interpolate: give exactly one of size and scale_factor, got "
                         + ("both" if size is not None else "neither"))
    if size is not None:
        if recompute_scale_factor:
            raise ValueError("interpolate: recompute_scale_factor is not meaningful with an explicit size")
        sizes = tuple(size) if isinstance(size, (tuple, list)) else (size,) * len(spatial)
        if not all(_is_int(s) for s in sizes):
            raise TypeError(f"interpolate: size must be an int or a sequence of ints, got {size!r}")
        if len(sizes) != len(spatial):
            raise ValueError(f"interpolate: size must be an int or {len(spatial)} ints, one per spatial dim of the "
                             f"input (shape {input.shape}), got {size!r}")
        scales = None
    else:
        factors = tuple(scale_factor) if isinstance(scale_factor, (tuple, list)) else (scale_factor,) * len(spatial)
        if len(factors) != len(spatial):
            raise ValueError(f"interpolate: scale_factor must be a number or {len(spatial)} numbers, one per "
                             f"spatial dim of the input (shape {input.shape}), got {scale_factor!r}")
        sizes = tuple(math.floor(n * float(f)) for n, f in zip(spatial, factors))
        scales = None if recompute_scale_factor else tuple(1.0 / float(f) for f in factors)
    if min(sizes) < (0 if allow_empty else 1):
        least = "non-negative" if allow_empty else "positive"
        raise ValueError(f"interpolate: the output size {sizes} must be {least} (input shape {input.shape}, "
                         f"size={size!r}, scale_factor={scale_factor!r})")
    return tuple(int(s) for s in sizes), scales


def _nearest_sources(xp, n_in, n_out, scale, dtype, exact, halves_doubled):
    """The input index each output index copies: floor(i * scale), or floor((i + 1/2) * scale) for
    nearest-exact, computed in ``dtype`` as PyTorch does (so float32 rounds the same way); with
    ``halves_doubled``, PyTorch's 2-D nearest, the index of an axis that doubles is halved, whatever the scale
    factor."""
    if halves_doubled and n_out == 2 * n_in:
        return xp.arange(n_out) // 2
    step = dtype.type(scale) if scale is not None else dtype.type(n_in) / dtype.type(n_out)
    positions = xp.arange(n_out, dtype=dtype)
    if exact:
        positions = positions + dtype.type(0.5)
    return xp.minimum(xp.floor(positions * step).astype(np.int64), n_in - 1)


def _linear_sources(xp, n_in, n_out, scale, align_corners, dtype):
    """For each output index, the two input indices it blends and the weight of the second: the output's centre
    mapped into the input (its corners onto the input's corners with ``align_corners``), in the input's
    floating dtype as PyTorch does."""
    positions = xp.arange(n_out, dtype=dtype)
    if align_corners:
        step = dtype.type(n_in - 1) / dtype.type(n_out - 1) if n_out > 1 else dtype.type(0)
        source = positions * step
    else:
        step = dtype.type(scale) if scale is not None else dtype.type(n_in) / dtype.type(n_out)
        source = xp.maximum((positions + dtype.type(0.5)) * step - dtype.type(0.5), 0)
    low = xp.minimum(xp.floor(source).astype(np.int64), n_in - 1)
    weight = xp.clip(source - low, 0, 1).astype(dtype, copy=False)
    high = low + (low < n_in - 1)
    return low, high, weight


def _cubic(xp, distance, a):
    """The cubic convolution kernel (Keys 1981) at ``distance``: 1 at 0, 0 at every other integer and from 2 on,
    piecewise cubic in between with a continuous slope; ``a`` is its slope at 1."""
    d = xp.abs(distance)
    near = ((a + 2) * d - (a + 3)) * d * d + 1
    far = (((d - 5) * d + 8) * d - 4) * a
    return xp.where(d <= 1, near, xp.where(d < 2, far, 0))


def _step(n_in, n_out, scale, align_corners):
    """How far apart in the input two neighbouring outputs sit: (n_in - 1) / (n_out - 1) with ``align_corners``
    (0 for one output), else the scale (1/scale_factor) or n_in / n_out."""
    if align_corners:
        return (n_in - 1) / (n_out - 1) if n_out > 1 else 0.0
    return scale if scale is not None else n_in / n_out


def _bicubic_taps(xp, n_in, n_out, scale, align_corners, dtype):
    """(sources, weights), each (n_out, 4): the four inputs around each output's position in the input, an
    input index past an edge reading the edge pixel, and their cubic convolution weights (a = -0.75). The
    position is i * step with ``align_corners``, else (i + 1/2) * step - 1/2 (not clamped at 0, unlike the linear
    modes), computed in ``dtype`` as PyTorch does."""
    step = dtype.type(_step(n_in, n_out, scale, align_corners))
    positions = xp.arange(n_out, dtype=dtype)
    source = positions * step if align_corners else (positions + dtype.type(0.5)) * step - dtype.type(0.5)
    taps = xp.floor(source)[:, None] + xp.arange(-1, 3, dtype=dtype)
    weights = _cubic(xp, source[:, None] - taps, _BICUBIC_A).astype(dtype, copy=False)
    return xp.clip(taps, 0, n_in - 1).astype(np.int64), weights


def _antialias_taps(xp, n_in, n_out, scale, align_corners, dtype, mode):
    """(sources, weights), each (n_out, taps): PyTorch's antialiased resampling along one axis. Output i is centred
    at step * (i + 1/2) in the input and averages the inputs within ``support`` of that centre, weighted by the
    mode's filter (the triangle for bilinear, the cubic with a = -0.5 for bicubic) and normalised to sum 1. When
    downsampling (step > 1) the filter is widened by the step, so every input contributes; the taps past the
    input's edges are left out (weight 0), not clamped."""
    step = _step(n_in, n_out, scale, align_corners)
    half_width = 1.0 if mode == "bilinear" else 2.0
    widening = max(step, 1.0)
    support = half_width * widening
    count = int(math.ceil(2 * support)) + 1  # at least the most taps any window has
    centres = (xp.arange(n_out, dtype=dtype) + dtype.type(0.5)) * dtype.type(step)
    first = xp.maximum(xp.floor(centres - dtype.type(support - 0.5)), 0)
    end = xp.minimum(xp.floor(centres + dtype.type(support + 0.5)), n_in)
    taps = first[:, None] + xp.arange(count, dtype=dtype)
    distance = (taps - centres[:, None] + dtype.type(0.5)) / dtype.type(widening)
    if mode == "bilinear":
        weights = xp.maximum(1 - xp.abs(distance), 0)
    else:
        weights = _cubic(xp, distance, _ANTIALIAS_BICUBIC_A)
    weights = xp.where(taps < end[:, None], weights, 0)
    weights = (weights / weights.sum(axis=1, keepdims=True)).astype(dtype, copy=False)
    return xp.minimum(taps, n_in - 1).astype(np.int64), weights


def _filtered(input, axis, sources, weights):
    """Along ``axis``: output i = sum over k of input[sources[i, k]] * weights[i, k], as one gather per tap."""
    shape = (-1,) + (1,) * (input.ndim - 1 - axis)
    out = None
    for source, weight in zip(sources.T, weights.T):
        term = _along(input, axis, source) * tl.Tensor._make(weight.reshape(shape))
        out = term if out is None else out + term
    return out


def _along(input, axis, index):
    """input[..., index, ...] with the index array (on the input's device) at ``axis``. The indices are in range
    by construction, so this gathers with ``IndexSelect`` (take; a scatter-add back) without the bounds check of
    indexing by a device array, which would read the indices back to the host."""
    return IndexSelect.apply(input, index, axis)


def _area_weights(xp, n_in, n_out, dtype):
    """(n_in, n_out): column i averages the inputs floor(i * n_in / n_out) to ceil((i + 1) * n_in / n_out) - 1,
    the i-th window of adaptive average pooling along one axis."""
    outputs, inputs = xp.arange(n_out), xp.arange(n_in)[:, None]
    start, end = outputs * n_in // n_out, -(-(outputs + 1) * n_in // n_out)
    return (((inputs >= start) & (inputs < end)) / (end - start)).astype(dtype)


def _adaptive_avg_pool(input, sizes):
    """Adaptive average pooling of the spatial dims (2 and on) to ``sizes``, for any number of them: a window's
    average is the average along each axis in turn, each a product with ``_area_weights``."""
    xp = module_for(input.device)
    out = input
    for axis, n_in, n_out in zip(range(2, input.ndim), input.shape[2:], sizes):
        if n_out != n_in:
            weights = tl.Tensor._make(_area_weights(xp, n_in, n_out, input.dtype))
            out = (out.movedim(axis, -1) @ weights).movedim(-1, axis)
    return out


def interpolate(input, size=None, scale_factor=None, mode="nearest", align_corners=None,
                recompute_scale_factor=None, antialias=False):
    """Resample the spatial dims of an (N, C, d1, ...) input to ``size``, or to floor(d * scale_factor).

    Modes: 'nearest' (PyTorch's index rule floor(i * in/out), or 1/scale_factor in place of in/out when a scale
    factor is given and not recomputed), 'nearest-exact' (the pixel centres: floor((i + 1/2) * in/out)),
    'linear' (3-D), 'bilinear' (4-D) and 'trilinear' (5-D), which blend the two nearest inputs along each axis
    in turn ('align_corners' maps the corner pixels' centres onto each other instead of the edges), 'bicubic'
    (4-D: cubic convolution of the four nearest inputs along each axis, with a = -0.75 and the edge pixels
    repeated past the edges, as PyTorch does), and 'area' (adaptive average pooling; the only mode that allows
    an empty output). As in PyTorch's CPU kernels, the linear modes and 2-D nearest copy an axis whose size does
    not change, and 2-D nearest halves the index of one that doubles, whatever the scale factor. The nearest
    modes also take uint8 images, as PyTorch does.

    ``antialias=True`` (bilinear and bicubic, 4-D) filters as PyTorch does when downsampling: each output
    averages every input under its filter (triangle, or cubic with a = -0.5), widened by the scale, so that
    nothing between the sampled points is skipped; an axis whose size does not change is copied.
    """
    if mode not in _INTERPOLATION_MODES or input.ndim not in (3, 4, 5):
        raise NotImplementedError(f"interpolate supports 3-D, 4-D and 5-D inputs (N, C, d1, ...) in the modes "
                                  f"{' | '.join(_INTERPOLATION_MODES)}; got a {input.ndim}-D input and mode "
                                  f"{mode!r}")
    if mode in _CORNER_MODES:
        if input.ndim != _CORNER_MODES[mode]:
            raise NotImplementedError(f"interpolate: mode {mode!r} needs a {_CORNER_MODES[mode]}-D input, got a "
                                      f"{input.ndim}-D one (shape {input.shape})")
        align_corners = bool(align_corners)
    elif align_corners is not None:
        raise ValueError(f"interpolate: align_corners can only be set with the modes linear, bilinear, bicubic "
                         f"and trilinear, got mode {mode!r}")
    if antialias and (mode not in ("bilinear", "bicubic") or input.ndim != 4):
        raise ValueError(f"interpolate: antialias=True needs mode 'bilinear' or 'bicubic' and a 4-D input, got mode "
                         f"{mode!r} and a {input.ndim}-D input")
    if input.dtype.kind != "f" and not (mode in ("nearest", "nearest-exact") and input.dtype == np.uint8):
        raise TypeError(f"interpolate needs a floating-point input (or uint8 in the modes nearest and "
                        f"nearest-exact), got dtype {input.dtype} in mode {mode!r}")
    if mode == "area" and scale_factor is not None:
        recompute_scale_factor = True  # as in PyTorch: the pooling windows follow the output size
    sizes, scales = _interpolation_sizes(input, size, scale_factor, recompute_scale_factor,
                                         allow_empty=mode == "area")
    if mode == "area":
        if input.ndim == 4 and input.numel() and min(sizes) > 0:
            return adaptive_avg_pool2d(input, sizes)  # the pooling kernels
        out = _adaptive_avg_pool(input, sizes)
    else:
        out = _sampled(input, sizes, scales, mode, align_corners, antialias)
    return input.clone() if out is input else out  # a new tensor even when no axis changes size, as in PyTorch


def _sampled(input, sizes, scales, mode, align_corners, antialias):
    """interpolate's nearest, linear and bicubic modes: each spatial axis resampled in turn, as gathers."""
    xp = module_for(input.device)
    # the floating dtype of the sampling positions: a uint8 image's are float32, as in PyTorch
    position_dtype = np.dtype(np.float32) if input.dtype == np.uint8 else input.dtype
    out = input
    for axis, n_in, n_out in zip(range(2, input.ndim), input.shape[2:], sizes):
        scale = scales[axis - 2] if scales is not None else None
        if antialias:
            if n_out != n_in:
                out = _filtered(out, axis, *_antialias_taps(xp, n_in, n_out, scale, align_corners, position_dtype,
                                                            mode))
        elif mode == "bicubic":
            out = _filtered(out, axis, *_bicubic_taps(xp, n_in, n_out, scale, align_corners, position_dtype))
        elif mode in _LINEAR_MODES:
            if n_out == n_in:
                continue
            low, high, weight = _linear_sources(xp, n_in, n_out, scale, align_corners, position_dtype)
            weight = tl.Tensor._make(weight.reshape((-1,) + (1,) * (input.ndim - 1 - axis)))
            out = _along(out, axis, low) * (1 - weight) + _along(out, axis, high) * weight
        else:
            two_d_nearest = mode == "nearest" and input.ndim == 4
            if two_d_nearest and n_out == n_in:
                continue
            sources = _nearest_sources(xp, n_in, n_out, scale, position_dtype, mode == "nearest-exact",
                                       halves_doubled=two_d_nearest)
            out = _along(out, axis, sources)
    return out


def _align_corners_or_default(function, align_corners):
    if align_corners is None:
        warnings.warn(f"{function}: align_corners defaults to False (since PyTorch 1.3); pass it explicitly, "
                      "align_corners=True for the older behaviour", stacklevel=3)
        return False
    return bool(align_corners)


def _grid_coordinates(xp, size, align_corners, dtype):
    """The normalised coordinates in [-1, 1] of the ``size`` pixels along one axis: the centres of the first and
    last pixel at -1 and 1 with ``align_corners``, else their outer edges; 0 for a single pixel either way."""
    if size == 1:
        return xp.zeros(1, dtype=dtype)
    if align_corners:
        return xp.linspace(-1, 1, size, dtype=dtype)
    return ((xp.arange(size, dtype=dtype) * 2 + 1) / size - 1).astype(dtype, copy=False)


def affine_grid(theta, size, align_corners=None):
    """The sampling grid of a batch of affine maps, for ``grid_sample`` (spatial transformer networks, Jaderberg et
    al. 2015). For ``size`` (N, C, H, W) and ``theta`` (N, 2, 3) the grid is (N, H, W, 2) with
    grid[n, h, w] = theta[n] @ (x_w, y_h, 1), where x and y are the output pixels' normalised coordinates (see
    ``grid_sample``); for (N, C, D, H, W) and (N, 3, 4) it is (N, D, H, W, 3), with (x, y, z). Differentiable in
    theta."""
    align_corners = _align_corners_or_default("affine_grid", align_corners)
    if theta.dtype.kind != "f":
        raise TypeError(f"affine_grid needs a floating-point theta, got dtype {theta.dtype}")
    size = tuple(size)
    if len(size) not in (4, 5) or not all(_is_int(n) for n in size):
        raise NotImplementedError(f"affine_grid supports sizes (N, C, H, W) and (N, C, D, H, W), for 2-D and 3-D "
                                  f"affine maps, got size {size!r}")
    spatial = tuple(int(n) for n in size[2:])
    dims = len(spatial)
    if tuple(theta.shape) != (size[0], dims, dims + 1):
        raise ValueError(f"affine_grid: for size {size} theta must be a batch of {dims}-D affine maps of shape "
                         f"({size[0]}, {dims}, {dims + 1}), got {theta.shape}")
    if min(size) <= 0:
        raise ValueError(f"affine_grid: the output size must be positive, got {size}")
    if align_corners and 1 in spatial:
        warnings.warn(f"affine_grid: a size-1 dim (size {size}) gets the coordinate 0, not -1, with "
                      "align_corners=True, as in PyTorch since 1.3", stacklevel=2)
    xp = module_for(theta.device)
    # x runs along the last dim, y (and z) along the ones before: the grid's last axis is (x, y, z, 1)
    axes = [_grid_coordinates(xp, n, align_corners, theta.dtype) for n in spatial]
    mesh = list(xp.meshgrid(*axes, indexing="ij"))[::-1] + [xp.ones(spatial, dtype=theta.dtype)]
    base = tl.Tensor._make(xp.stack(mesh, axis=-1).reshape(1, -1, dims + 1))
    return (base @ theta.transpose(1, 2)).reshape(size[0], *spatial, dims)


def _clipped(position, size, slope):
    """``position`` clamped into [0, size - 1], and its derivative: 0 where clamped (at the ends too, as in
    PyTorch)."""
    xp = array_module(position)
    inside = (position > 0) & (position < size - 1)
    return xp.clip(position, 0, size - 1), xp.where(inside, slope, 0)


def _reflected(position, twice_low, twice_high, slope):
    """``position`` reflected off low and high (given doubled, as integers) until it lies between them, and its
    derivative, which changes sign at each reflection."""
    xp = array_module(position)
    if twice_low == twice_high:
        return xp.zeros_like(position), xp.zeros_like(position)
    low, span = twice_low / 2, (twice_high - twice_low) / 2
    offset = position - low
    sign = xp.where(offset < 0, -1, 1)
    offset = xp.abs(offset)
    flips = xp.floor(offset / span)
    extra = xp.fmod(offset, span)
    even = flips % 2 == 0
    return (xp.where(even, extra + low, span - extra + low).astype(position.dtype, copy=False),
            (slope * sign * xp.where(even, 1, -1)).astype(position.dtype, copy=False))


def _grid_positions(coordinate, size, padding_mode, align_corners):
    """The input position (in pixels) of each normalised grid coordinate along an axis of ``size`` pixels, after
    the padding mode's clamping or reflection, and its derivative with respect to the coordinate."""
    xp = array_module(coordinate)
    if align_corners:
        position, scale = (coordinate + 1) * ((size - 1) / 2), (size - 1) / 2
    else:
        position, scale = ((coordinate + 1) * size - 1) / 2, size / 2
    slope = xp.full(coordinate.shape, scale, dtype=coordinate.dtype)
    if padding_mode == "border":
        return _clipped(position, size, slope)
    if padding_mode == "reflection":
        bounds = (0, 2 * (size - 1)) if align_corners else (-1, 2 * size - 1)
        position, slope = _reflected(position, *bounds, slope)
        return _clipped(position, size, slope)
    return position, slope


class _GridSample(Function):
    """grid_sample on raw arrays: the input flattened to (N, C, H * W) is read at each grid point's neighbouring
    pixels (four for bilinear, one for nearest), a pixel outside the input reading 0. The gradient scatters back
    to those pixels, and reaches the grid through the bilinear weights' slopes."""

    def forward(self, x, grid, mode, padding_mode, align_corners):
        xp = array_module(x)
        n, c, h, w = x.shape
        self.shape = x.shape
        self.flat = x.reshape(n, c, h * w)
        points = grid.shape[1] * grid.shape[2]
        columns, self.column_slope = _grid_positions(grid[..., 0].reshape(n, points), w, padding_mode, align_corners)
        rows, self.row_slope = _grid_positions(grid[..., 1].reshape(n, points), h, padding_mode, align_corners)
        self.out_shape, self.mode = (n, c, *grid.shape[1:3]), mode
        if mode == "nearest":  # round half to even, as PyTorch
            self.corners = [self._corner(xp.rint(rows), xp.rint(columns), xp.ones_like(rows))]
        else:
            top, left = xp.floor(rows), xp.floor(columns)
            self.down, self.right = rows - top, columns - left
            up, left_weight = 1 - self.down, 1 - self.right
            self.corners = [self._corner(top, left, up * left_weight), self._corner(top, left + 1, up * self.right),
                            self._corner(top + 1, left, self.down * left_weight),
                            self._corner(top + 1, left + 1, self.down * self.right)]
        out = sum(values * weight[:, None] for _, values, weight in self.corners)
        return out.reshape(self.out_shape).astype(x.dtype, copy=False)

    def _corner(self, rows, columns, weight):
        """(flat index into the input planes, the values there (0 outside the input), the weight): one corner of
        every grid point's neighbourhood."""
        xp = array_module(rows)
        h, w = self.shape[2:]
        inside = (rows >= 0) & (rows < h) & (columns >= 0) & (columns < w)
        index = xp.where(inside, rows * w + columns, 0).astype(np.int64)
        values = xp.take_along_axis(self.flat, index[:, None, :], axis=2)
        return index, xp.where(inside[:, None, :], values, 0), xp.where(inside, weight, 0)

    def backward(self, g):
        xp = array_module(g)
        n, c, h, w = self.shape
        g = g.reshape(n, c, self.out_shape[2] * self.out_shape[3])
        grad_input = None
        if self.needs_input_grad[0]:
            grad_flat = xp.zeros((n * c * h * w,), dtype=g.dtype)
            plane_start = (xp.arange(n * c) * (h * w)).reshape(n, c, 1)
            for index, _, weight in self.corners:
                add_at(grad_flat, (plane_start + index[:, None, :]).reshape(-1), (g * weight[:, None]).reshape(-1))
            grad_input = grad_flat.reshape(self.shape)
        grad_grid = None
        if self.needs_input_grad[1]:
            if self.mode == "nearest":
                grad_grid = xp.zeros(self.out_shape[:1] + self.out_shape[2:] + (2,), dtype=g.dtype)
            else:
                (_, v00, _), (_, v01, _), (_, v10, _), (_, v11, _) = self.corners
                down, right = self.down[:, None], self.right[:, None]
                along_rows = ((v10 - v00) * (1 - right) + (v11 - v01) * right) * g
                along_columns = ((v01 - v00) * (1 - down) + (v11 - v10) * down) * g
                grad_grid = xp.stack([along_columns.sum(axis=1) * self.column_slope,
                                      along_rows.sum(axis=1) * self.row_slope], axis=-1)
                grad_grid = grad_grid.reshape(self.out_shape[:1] + self.out_shape[2:] + (2,)).astype(g.dtype)
        return grad_input, grad_grid, None, None, None


_GRID_SAMPLE_MODES = ("bilinear", "nearest")
_GRID_PADDING_MODES = ("zeros", "border", "reflection")


def grid_sample(input, grid, mode="bilinear", padding_mode="zeros", align_corners=None):
    """Sample an (N, C, H, W) input at the points of an (N, H_out, W_out, 2) grid: output[n, :, i, j] is the input
    at grid[n, i, j] = (x, y), normalised coordinates where x = -1 and 1 are the left and right edges of the
    input (the centres of its first and last columns with ``align_corners``), likewise y top to bottom.

    ``mode``: 'bilinear' blends the four pixels around the point, 'nearest' takes the closest (halves round to
    even). ``padding_mode``, for points outside the input: 'zeros' reads 0 there, 'border' the nearest edge
    pixel, 'reflection' the input mirrored at its edges. Gradients flow to the input and, in bilinear mode, to
    the grid (with ``affine_grid``, a spatial transformer network learns its transform).
    """
    align_corners = _align_corners_or_default("grid_sample", align_corners)
    if mode not in _GRID_SAMPLE_MODES:
        raise (NotImplementedError if mode == "bicubic" else ValueError)(
            f"grid_sample: mode must be 'bilinear' or 'nearest', got {mode!r}")
    if padding_mode not in _GRID_PADDING_MODES:
        raise ValueError(f"grid_sample: padding_mode must be 'zeros', 'border' or 'reflection', got {padding_mode!r}")
    if input.ndim != 4:
        raise NotImplementedError(f"grid_sample supports 4-D inputs (N, C, H, W), got shape {input.shape}")
    _check_floating("grid_sample", input)
    _check_same_dtype("grid_sample", input, grid=grid)
    if grid.ndim != 4 or grid.shape[-1] != 2 or grid.shape[0] != input.shape[0]:
        raise ValueError(f"grid_sample: grid must have shape (N, H_out, W_out, 2) with the input's N = "
                         f"{input.shape[0]}, got {grid.shape}")
    if min(input.shape[2:]) == 0:
        raise ValueError(f"grid_sample: the input's spatial dims must be non-empty, got shape {input.shape}")
    return _GridSample.apply(input, grid, mode, padding_mode, align_corners)


def pixel_shuffle(input, upscale_factor):
    """(*, C * r^2, H, W) -> (*, C, H * r, W * r): each group of r^2 channels becomes an r x r block of pixels
    (sub-pixel convolution, Shi et al. 2016)."""
    _check_positive_int("upscale_factor", upscale_factor, "pixel_shuffle")
    if input.ndim < 3:
        raise ValueError(f"pixel_shuffle expects an input of at least 3 dims (*, C, H, W), got shape {input.shape}")
    *batch, channels, height, width = input.shape
    r = upscale_factor
    if channels % (r * r):
        raise ValueError(f"pixel_shuffle: the {channels} channels of the input (shape {input.shape}) are not "
                         f"divisible by upscale_factor^2 = {r * r}")
    lead = len(batch)
    blocks = input.reshape(*batch, channels // (r * r), r, r, height, width)
    # (*, C, r_h, r_w, H, W) -> (*, C, H, r_h, W, r_w)
    order = (*range(lead), lead, lead + 3, lead + 1, lead + 4, lead + 2)
    return blocks.permute(*order).reshape(*batch, channels // (r * r), height * r, width * r)


def pixel_unshuffle(input, downscale_factor):
    """(*, C, H * r, W * r) -> (*, C * r^2, H, W), the inverse of pixel_shuffle: each r x r block of pixels
    becomes r^2 channels."""
    _check_positive_int("downscale_factor", downscale_factor, "pixel_unshuffle")
    if input.ndim < 3:
        raise ValueError(f"pixel_unshuffle expects an input of at least 3 dims (*, C, H, W), got shape "
                         f"{input.shape}")
    *batch, channels, height, width = input.shape
    r = downscale_factor
    for name, value in (("height", height), ("width", width)):
        if value % r:
            raise ValueError(f"pixel_unshuffle: the input's {name} {value} (shape {input.shape}) is not divisible "
                             f"by downscale_factor={r}")
    lead = len(batch)
    blocks = input.reshape(*batch, channels, height // r, r, width // r, r)
    # (*, C, H, r_h, W, r_w) -> (*, C, r_h, r_w, H, W)
    order = (*range(lead), lead, lead + 2, lead + 4, lead + 1, lead + 3)
    return blocks.permute(*order).reshape(*batch, channels * r * r, height // r, width // r)


def _sliding_geometry(who, kernel_size, dilation, padding, stride):
    """The four settings of unfold and fold as (height, width) pairs, checked."""
    geometry = tuple(pair(value, name) for value, name in ((kernel_size, "kernel_size"), (dilation, "dilation"),
                                                           (padding, "padding"), (stride, "stride")))
    for (name, least), value in zip((("kernel_size", 1), ("dilation", 1), ("padding", 0), ("stride", 1)), geometry):
        if min(value) < least:
            raise ValueError(f"{who}: {name} must be at least {least}, got {value}")
    return geometry


def _block_counts(size, geometry):
    """How many positions the sliding block takes along each spatial axis of an input of ``size`` (H, W)."""
    kernel, dilation, padding, stride = geometry
    return tuple(_output_size(n, k, s, p, d) for n, k, d, p, s in zip(size, kernel, dilation, padding, stride))


def _block_slices(offset, dilation, stride, count):
    """The positions of the padded input that kernel offset ``offset`` meets, one per block, as a slice."""
    start = offset * dilation
    return slice(start, start + stride * (count - 1) + 1, stride)


def _im2col(x, size, geometry):
    """(N, C, H, W) -> (N, C * kh * kw, L), L = blocks along H times blocks along W: row c * kh * kw + i * kw + j
    holds, for every block position, the input under kernel offset (i, j) of channel c."""
    xp = array_module(x)
    (kh, kw), (dh, dw), (ph, pw), (sh, sw) = geometry
    bh, bw = _block_counts(size, geometry)
    n, c = x.shape[:2]
    padded = xp.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    cols = xp.empty((n, c, kh, kw, bh, bw), dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            cols[:, :, i, j] = padded[:, :, _block_slices(i, dh, sh, bh), _block_slices(j, dw, sw, bw)]
    return cols.reshape(n, c * kh * kw, bh * bw)


def _col2im(cols, size, geometry):
    """The adjoint of _im2col: (N, C * kh * kw, L) -> (N, C, H, W), each column entry added back to the input
    position it was read from (overlapping blocks add up)."""
    xp = array_module(cols)
    (kh, kw), (dh, dw), (ph, pw), (sh, sw) = geometry
    bh, bw = _block_counts(size, geometry)
    n, c = cols.shape[0], cols.shape[1] // (kh * kw)
    cols = cols.reshape(n, c, kh, kw, bh, bw)
    padded = xp.zeros((n, c, size[0] + 2 * ph, size[1] + 2 * pw), dtype=cols.dtype)
    for i in range(kh):
        for j in range(kw):
            # one offset meets each position at most once: += adds no index twice
            padded[:, :, _block_slices(i, dh, sh, bh), _block_slices(j, dw, sw, bw)] += cols[:, :, i, j]
    return padded[:, :, ph:ph + size[0], pw:pw + size[1]]


class _Unfold(Function):
    def forward(self, x, geometry):
        self.size, self.geometry = x.shape[2:], geometry
        return _im2col(x, self.size, geometry)

    def backward(self, g):
        return _col2im(g, self.size, self.geometry), None


class _Fold(Function):
    def forward(self, cols, size, geometry):
        self.size, self.geometry = size, geometry
        return _col2im(cols, size, geometry)

    def backward(self, g):
        return _im2col(g, self.size, self.geometry), None, None


def unfold(input, kernel_size, dilation=1, padding=0, stride=1):
    """im2col: the sliding blocks of an (N, C, H, W) input as the columns of an (N, C * kh * kw, L) tensor, laid
    out as PyTorch does (channel-major rows, blocks in row-major order). A convolution is then a matrix
    product: ``(weight.reshape(out_channels, -1) @ unfold(x, k)).reshape(N, out_channels, H_out, W_out)``.
    An unbatched (C, H, W) input gives (C * kh * kw, L)."""
    geometry = _sliding_geometry("unfold", kernel_size, dilation, padding, stride)
    if input.ndim not in (3, 4) or 0 in input.shape[-3:]:
        raise ValueError(f"unfold expects a 3-D (C, H, W) or 4-D (N, C, H, W) input with non-zero C, H and W, got "
                         f"shape {input.shape}")
    blocks = _block_counts(input.shape[-2:], geometry)
    if min(blocks) < 1:
        kernel, dilation, padding, _ = geometry
        raise ValueError(f"unfold: an input of spatial size {input.shape[-2:]} with kernel_size={kernel}, "
                         f"dilation={dilation}, padding={padding} has {blocks} sliding blocks; each must be at "
                         "least 1")
    if input.ndim == 3:
        return _Unfold.apply(input.unsqueeze(0), geometry).squeeze(0)
    return _Unfold.apply(input, geometry)


def fold(input, output_size, kernel_size, dilation=1, padding=0, stride=1):
    """col2im, the adjoint of unfold: sums the (N, C * kh * kw, L) columns back into an (N, C, H, W) tensor of
    ``output_size`` (H, W), overlapping blocks adding up (so ``fold(unfold(x))`` is x times how many blocks
    cover each position). An unbatched (C * kh * kw, L) input gives (C, H, W)."""
    geometry = _sliding_geometry("fold", kernel_size, dilation, padding, stride)
    size = pair(output_size, "output_size")
    if input.ndim not in (2, 3) or 0 in input.shape[-2:]:
        raise ValueError(f"fold expects a 2-D (C * kh * kw, L) or 3-D (N, C * kh * kw, L) input with non-zero "
                         f"sizes, got shape {input.shape}")
    kernel = geometry[0]
    if input.shape[-2] % (kernel[0] * kernel[1]):
        raise ValueError(f"fold: the input's dim {input.ndim - 2} ({input.shape[-2]}, shape {input.shape}) must be "
                         f"divisible by the kernel's size {kernel[0]} * {kernel[1]}")
    blocks = _block_counts(size, geometry)
    if min(blocks) < 1 or blocks[0] * blocks[1] != input.shape[-1]:
        raise ValueError(f"fold: output_size={size} with kernel_size={kernel}, dilation={geometry[1]}, "
                         f"padding={geometry[2]}, stride={geometry[3]} has {blocks[0]} * {blocks[1]} sliding blocks, "
                         f"but the input (shape {input.shape}) holds {input.shape[-1]}")
    if input.ndim == 2:
        return _Fold.apply(input.unsqueeze(0), size, geometry).squeeze(0)
    return _Fold.apply(input, size, geometry)


class _AtLeast(Function):
    """max(x, floor) as the value, with x's gradient passed through unchanged: PyTorch's cosine_similarity
    divides by each norm clamped to eps outside autograd, so the gradient stays the norm's."""

    def forward(self, x, floor):
        return array_module(x).maximum(x, floor).astype(x.dtype, copy=False)

    def backward(self, g):
        return g, None


def normalize(input, p=2.0, dim=1, eps=1e-12):
    """input / max(||input||_p, eps) along ``dim`` (an int or a tuple of dims): unit vectors (a zero vector
    stays zero). ``p`` is any order ``tl.norm`` takes."""
    _check_floating("normalize", input)
    return input / tl.norm(input, p, dim, keepdim=True).clamp(min=eps)


def cosine_similarity(x1, x2, dim=1, eps=1e-8):
    """The cosine of the angle between x1 and x2 along ``dim`` (the two broadcast together): the dot product
    of x1 / max(||x1||, eps) and x2 / max(||x2||, eps), as PyTorch computes it."""
    for name, tensor in (("x1", x1), ("x2", x2)):
        if tensor.dtype.kind != "f":
            raise TypeError(f"cosine_similarity needs floating-point inputs, got {name} of dtype {tensor.dtype}")
    try:
        shape = np.broadcast_shapes(x1.shape, x2.shape)
    except ValueError:
        raise ValueError(f"cosine_similarity: x1 of shape {x1.shape} and x2 of shape {x2.shape} do not "
                         "broadcast together") from None
    axis = single_dim(dim, len(shape), "cosine_similarity")
    x1, x2 = x1.expand(*shape), x2.expand(*shape)
    unit1 = x1 / _AtLeast.apply(tl.norm(x1, 2, axis, keepdim=True), eps)
    unit2 = x2 / _AtLeast.apply(tl.norm(x2, 2, axis, keepdim=True), eps)
    return (unit1 * unit2).sum(axis)


def one_hot(tensor, num_classes=-1):
    """int64 one-hot encoding along a new last dim; ``num_classes=-1`` uses max + 1."""
    if tensor.dtype.kind not in "iu":
        raise TypeError(f"one_hot needs an integer tensor, got dtype {tensor.dtype}")
    values = tensor.array
    if num_classes == -1:
        num_classes = int(values.max()) + 1 if values.size else 0
    if values.size and (values.min() < 0 or values.max() >= num_classes):
        raise ValueError(f"one_hot: class values must be in [0, {num_classes}), got min {int(values.min())} "
                         f"and max {int(values.max())}")
    xp = module_for(tensor.device)
    return tl.Tensor._make((values[..., None] == xp.arange(num_classes)).astype(np.int64))


def _check_reduction(reduction, allowed=_REDUCTIONS):
    if reduction not in allowed:
        raise ValueError(f"reduction must be one of {allowed}, got {reduction!r}")


def _reduce(losses, reduction):
    if reduction == "none":
        return losses
    return losses.sum() if reduction == "sum" else losses.mean()


def _classes_last(input):
    """(N, C, d1, ...) -> (N*d1*..., C); (C,) -> (1, C)."""
    if input.ndim == 1:
        return input.reshape(1, -1)
    if input.ndim > 2:
        input = input.permute(0, *range(2, input.ndim), 1)
    return input.reshape(-1, input.shape[-1])


def _check_has_classes(function, input):
    if input.ndim == 0:
        raise ValueError(f"{function} expects an input of shape (C,), (N, C) or (N, C, d1, ...), got a 0-d input "
                         f"(shape {input.shape})")


def _check_targets(input, target):
    expected = input.shape[:1] + input.shape[2:] if input.ndim > 1 else ()
    if target.shape != expected:
        raise ValueError(f"target shape {target.shape} does not match input shape {input.shape} "
                         f"(expected target shape {expected})")


def _check_class_weight(weight, classes, input):
    if weight is None:
        return
    if weight.shape != (classes,):
        raise ValueError(f"weight must be a 1-D tensor with one entry per class ({classes} classes), "
                         f"got shape {weight.shape}")
    if weight.dtype != input.dtype:  # PyTorch refuses it too ("expected scalar type ...")
        raise RuntimeError(f"weight must have the input's dtype {input.dtype}, got {weight.dtype}")


def _target_weights(input, target, weight, ignore_index):
    """For class-index targets, as flat arrays on the input's device: the class of each target (0 where ignored,
    so that it can still index), the mask of the targets not ignored, and each target's weight (0 where
    ignored). IndexError on a class out of range."""
    classes = input.shape[1] if input.ndim > 1 else input.shape[0]
    labels = target.array.reshape(-1)
    valid = labels != ignore_index
    if not device_arrays.capturing(labels):  # a host read: skipped while a CUDA graph is captured
        bad = valid & ((labels < 0) | (labels >= classes))
        if bad.any():
            raise IndexError(f"target value {int(labels[bad][0])} is out of range for {classes} classes")
    xp = module_for(input.device)
    safe = xp.where(valid, labels, 0)
    class_weight = xp.ones(classes, dtype=input.dtype) if weight is None else weight.array.astype(input.dtype)
    return safe, valid, class_weight[safe] * valid


class _DivideByTotalWeight(Function):
    """``loss_sum / total_weight``: the 'mean' of nll_loss and cross_entropy, which divides by the total weight
    of the targets not ignored. When every target is ignored that total is 0: the loss is NaN, as in PyTorch,
    and the infinite gradient reaches only the ignored rows, whose ``where`` turns it into 0, so the gradient
    is zero, as in PyTorch. NumPy is kept from warning about that 0 / 0 and 1 / 0."""

    def forward(self, loss_sum, total_weight):
        self.total_weight = total_weight
        with np.errstate(divide="ignore", invalid="ignore"):
            return loss_sum / total_weight

    def backward(self, g):
        with np.errstate(divide="ignore", invalid="ignore"):
            return g / self.total_weight, None


def _nll_loss(input, target, weight=None, ignore_index=-100, reduction="mean"):
    """Negative log-likelihood of class indices; ``input`` holds log-probabilities along dim 1.

    'mean' divides by the total weight of the targets not ignored. As in PyTorch, a batch whose targets are all
    ignored gives a NaN loss and a zero gradient; targets whose weights sum to 0 give NaN in both.
    """
    _check_reduction(reduction)
    _check_has_classes("nll_loss", input)
    _check_class_weight(weight, input.shape[1] if input.ndim > 1 else input.shape[0], input)
    return _nll(input, target, weight, ignore_index, reduction)[0]


def _nll(input, target, weight, ignore_index, reduction):
    """nll_loss past its reduction and weight checks: (the loss, ``_target_weights``), the latter for
    cross_entropy's smoothing term, which then needs not read (and range-check) the targets a second time."""
    if target.dtype.kind not in "iu":
        raise TypeError(f"nll_loss target must hold class indices (integers), got dtype {target.dtype}")
    _check_targets(input, target)
    flat = _classes_last(input)
    targets = labels, valid, sample_weight = _target_weights(input, target, weight, ignore_index)
    rows = module_for(input.device).arange(flat.shape[0])
    picked = flat[tl.Tensor._make(rows), tl.Tensor._make(labels)]
    # the where, not the zero weight, makes an ignored row's loss 0: its unused log-probability may be -inf
    losses = tl.where(valid, -picked * tl.Tensor._make(sample_weight), 0.0)
    if reduction == "none":
        return losses.reshape(target.shape), targets
    if reduction == "sum":
        return losses.sum(), targets
    return _DivideByTotalWeight.apply(losses.sum(), sample_weight.sum()), targets


def _cross_entropy(input, target, weight=None, ignore_index=-100, reduction="mean", label_smoothing=0.0):
    """log_softmax + nll_loss for class indices, or the cross-entropy against class probabilities.

    With ``label_smoothing`` e the loss is (1 - e) * nll + e * (mean over classes of -log p), weighted and
    reduced the way PyTorch does it.
    """
    _check_reduction(reduction)
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"label_smoothing must be in [0, 1], got {label_smoothing}")
    _check_has_classes("cross_entropy", input)
    class_dim = 1 if input.ndim > 1 else 0
    classes = input.shape[class_dim]
    _check_class_weight(weight, classes, input)
    if weight is None and not label_smoothing and input.ndim == 2 and target.dtype.kind in "iu":
        _check_targets(input, target)
        return softmax_cross_entropy(input, target, ignore_index, reduction)  # one fused op (kernels/softmax_xent)
    logp = tl.log_softmax(input, class_dim)
    weight_shape = (classes,) + (1,) * (input.ndim - class_dim - 1)
    if target.dtype.kind == "f":
        if target.shape != input.shape:
            raise ValueError(f"probability targets must have the input's shape {input.shape}, got {target.shape}")
        if label_smoothing:
            target = target * (1 - label_smoothing) + label_smoothing / classes
        terms = logp * target
        if weight is not None:
            terms = terms * weight.reshape(weight_shape)
        losses = -terms.sum(class_dim)
        if reduction == "none":
            return losses
        total = losses.sum()
        return total if reduction == "sum" else total / max(input.numel() // classes, 1)
    loss, (_, valid, sample_weight) = _nll(logp, target, weight, ignore_index, reduction)
    if not label_smoothing:
        return loss
    smooth_terms = logp * weight.reshape(weight_shape) if weight is not None else logp
    smooth = tl.where(valid.reshape(target.shape), -smooth_terms.sum(class_dim), 0.0)
    if reduction == "mean":
        smooth = _DivideByTotalWeight.apply(smooth.sum(), sample_weight.sum())
    elif reduction == "sum":
        smooth = smooth.sum()
    return loss * (1 - label_smoothing) + smooth * (label_smoothing / classes)


def _warn_if_broadcast(input, target):
    """PyTorch's warning in the regression losses: a target of another shape is broadcast against the input,
    which is rarely what was meant (an (N, 1) input against an (N,) target gives N * N terms)."""
    if target.shape != input.shape:
        warnings.warn(f"Using a target size {target.shape} that is different to the input size {input.shape}. "
                      "This will likely lead to incorrect results due to broadcasting. "
                      "Please ensure they have the same size.", stacklevel=3)


def _mse_loss(input, target, reduction="mean"):
    _check_reduction(reduction)
    _warn_if_broadcast(input, target)
    return _reduce((input - target) ** 2, reduction)


def _l1_loss(input, target, reduction="mean"):
    _check_reduction(reduction)
    _warn_if_broadcast(input, target)
    return _reduce((input - target).abs(), reduction)


def _smooth_l1_loss(input, target, reduction="mean", beta=1.0):
    """0.5 * d**2 / beta where |d| < beta, else |d| - 0.5 * beta, with d = input - target; l1_loss when beta = 0."""
    _check_reduction(reduction)
    if beta < 0:
        raise ValueError(f"smooth_l1_loss beta must be >= 0, got {beta}")
    _warn_if_broadcast(input, target)
    distance = (input - target).abs()
    if beta == 0:
        return _reduce(distance, reduction)
    losses = tl.where(distance < beta, 0.5 * distance * distance / beta, distance - 0.5 * beta)
    return _reduce(losses, reduction)


def _huber_loss(input, target, reduction="mean", delta=1.0):
    """0.5 * d**2 where |d| < delta, else delta * (|d| - 0.5 * delta), with d = input - target: smooth_l1_loss
    with beta = delta, times delta."""
    _check_reduction(reduction)
    if delta <= 0:
        raise ValueError(f"huber_loss delta must be > 0, got {delta}")
    _warn_if_broadcast(input, target)
    distance = (input - target).abs()
    losses = tl.where(distance < delta, 0.5 * distance * distance, delta * (distance - 0.5 * delta))
    return _reduce(losses, reduction)


def _check_same_shape(function, input, target):
    if target.shape != input.shape:
        raise ValueError(f"{function}: target shape {target.shape} must equal input shape {input.shape}")


def _weight_for_input(function, name, value, input):
    """``value`` (a weight), which must broadcast to the input's shape without enlarging it, in the input's
    dtype (PyTorch computes the loss in the input's dtype whatever the weight's)."""
    try:
        fits = np.broadcast_shapes(value.shape, input.shape) == input.shape
    except ValueError:
        fits = False
    if not fits:
        raise ValueError(f"{function}: {name} of shape {value.shape} does not broadcast to the input shape "
                         f"{input.shape}")
    return value if value.dtype == input.dtype else value.to(input.dtype)


def _check_probabilities(function, **tensors):
    """Every element of each tensor (by name) is in [0, 1]: one host read for all of them (none while a CUDA
    graph is captured); the error names the first tensor with one outside."""
    arrays = {name: t.array for name, t in tensors.items()}
    if any(device_arrays.capturing(a) for a in arrays.values()):
        return
    outside = {name: ~((a >= 0) & (a <= 1)) for name, a in arrays.items()}  # NaN is outside too
    if not bool(sum(mask.any() for mask in outside.values())):
        return
    for name, mask in outside.items():
        if mask.any():
            raise ValueError(f"{function}: every element of {name} must be between 0 and 1, got "
                             f"{float(arrays[name][mask][0])}")


class _BinaryCrossEntropy(Function):
    """-(t log x + (1 - t) log(1 - x)) elementwise, each log clamped to >= -100 as PyTorch does, so that a
    probability of exactly 0 or 1 costs 100, not inf. The gradients are PyTorch's: (x - t) / max(x (1 - x),
    1e-12) for x, which stays finite at 0 and 1 (the derivative of the clamped log would be 0 / 0 there), and
    log(1 - x) - log(x) for t."""

    EPSILON = 1e-12

    def forward(self, x, t):
        xp = array_module(x)
        self.x, self.t = x, t
        with np.errstate(divide="ignore"):  # log(0) = -inf, clamped to -100
            log_x = xp.maximum(xp.log(x), -100)
            log_1mx = xp.maximum(xp.log1p(-x), -100)
        return (t - 1) * log_1mx - t * log_x

    def backward(self, g):
        xp = array_module(g)
        gx = gt = None
        if self.needs_input_grad[0]:
            gx = g * (self.x - self.t) / xp.maximum((1 - self.x) * self.x, self.EPSILON)
        if self.needs_input_grad[1]:
            with np.errstate(divide="ignore", invalid="ignore"):  # +-inf at x = 0 or 1, as in PyTorch
                gt = g * (xp.log1p(-self.x) - xp.log(self.x))
        return gx, gt


def _binary_cross_entropy(input, target, weight=None, reduction="mean"):
    """Binary cross-entropy of probabilities ``input`` against ``target`` (same shape, both in [0, 1]), times
    ``weight`` (broadcast to the input); each log is clamped to >= -100, as in PyTorch."""
    _check_reduction(reduction)
    _check_same_shape("binary_cross_entropy", input, target)
    if input.dtype.kind != "f" or target.dtype != input.dtype:
        raise TypeError(f"binary_cross_entropy needs floating-point input and target of the same dtype, got "
                        f"input {input.dtype} and target {target.dtype}")
    if weight is not None:
        weight = _weight_for_input("binary_cross_entropy", "weight", weight, input)
    _check_probabilities("binary_cross_entropy", input=input, target=target)
    losses = _BinaryCrossEntropy.apply(input, target)
    if weight is not None:
        losses = losses * weight
    return _reduce(losses, reduction)


def _binary_cross_entropy_with_logits(input, target, weight=None, reduction="mean", pos_weight=None):
    """Binary cross-entropy of sigmoid(input) against ``target``, from the logits, as PyTorch computes it:
    (1 - t) x - (1 + (pos_weight - 1) t) log(sigmoid(x)), times ``weight``. logsigmoid keeps it exact for large
    |x|: no overflow, and the small loss of a confident right answer is not rounded to 0. ``pos_weight``
    weighs the positive term, one entry per class along the last dim."""
    _check_reduction(reduction)
    _check_same_shape("binary_cross_entropy_with_logits", input, target)
    if weight is not None:
        weight = _weight_for_input("binary_cross_entropy_with_logits", "weight", weight, input)
    if pos_weight is not None:
        pos_weight = _weight_for_input("binary_cross_entropy_with_logits", "pos_weight", pos_weight, input)
    log_sigmoid = logsigmoid(input)
    if pos_weight is not None:
        log_sigmoid = ((pos_weight - 1) * target + 1) * log_sigmoid
    losses = (1 - target) * input - log_sigmoid
    if weight is not None:
        losses = losses * weight
    return _reduce(losses, reduction)


_KL_REDUCTIONS = _REDUCTIONS + ("batchmean",)


def _kl_div(input, target, reduction="mean", log_target=False):
    """Pointwise KL divergence target * (log(target) - input), ``input`` holding log-probabilities and
    ``target`` probabilities (log-probabilities with ``log_target=True``); target * log(target) is 0 where
    target is 0. 'batchmean' divides the sum by the batch size (dim 0), the KL divergence's definition;
    'mean' divides by the number of elements and warns, as PyTorch does."""
    _check_reduction(reduction, _KL_REDUCTIONS)
    if reduction == "mean":
        warnings.warn("kl_div: reduction='mean' divides the total loss by both the batch size and the support "
                      "size; 'batchmean' divides only by the batch size and matches the KL divergence's "
                      "definition", stacklevel=2)
    if log_target:
        losses = target.exp() * (target - input)
    else:
        zero = target == 0
        losses = tl.where(zero, 0.0, target * tl.where(zero, 1.0, target).log()) - target * input
    if reduction == "batchmean":
        total = losses.sum()
        return total / input.shape[0] if input.ndim > 0 else total
    return _reduce(losses, reduction)


# The losses in PyTorch's signatures (the legacy size_average/reduce, the regression losses' weight=) are nn.losses'
# forms, built on the ones above; nn.functional offers them under PyTorch's names.
from nn.losses import (  # noqa: E402
    binary_cross_entropy, binary_cross_entropy_with_logits, cosine_embedding_loss, cross_entropy, gaussian_nll_loss,
    hinge_embedding_loss, huber_loss, kl_div, l1_loss, margin_ranking_loss, mse_loss, multi_margin_loss,
    multilabel_soft_margin_loss, nll_loss, pairwise_distance, poisson_nll_loss, smooth_l1_loss, soft_margin_loss,
    triplet_margin_loss, triplet_margin_with_distance_loss,
)
