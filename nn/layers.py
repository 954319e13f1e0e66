"""Layers with PyTorch's arguments, defaults, initialisation and printed form."""

from __future__ import annotations

import math
import warnings

import tensorlib as tl
from kernels.conv2d.geometry import pair
from nn import functional as F
from nn import init
from nn.module import Module, Parameter, Sequential
from tensorlib.ops.conv import transposed_output_size


class Identity(Module):
    def __init__(self, *args, **kwargs):
        super().__init__()

    def forward(self, input):
        return input


class Flatten(Module):
    def __init__(self, start_dim=1, end_dim=-1):
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, input):
        return input.flatten(self.start_dim, self.end_dim)

    def extra_repr(self):
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


def _place(module, device):
    """Move a freshly built layer to ``device`` (None: stay on the CPU). Parameters are always drawn on the
    CPU first, so a seed gives the same initial weights on every device."""
    if device is not None:
        module.to(device=device)


def _register_weight_and_bias(module, weight_shape, bias, bias_size, dtype):
    module.weight = Parameter(tl.empty(*weight_shape, dtype=dtype))
    if bias:
        module.bias = Parameter(tl.empty(bias_size, dtype=dtype))
    else:
        module.register_parameter("bias", None)


def _default_uniform_init(weight, bias):
    """PyTorch's default for Linear and Conv: kaiming_uniform_(a=sqrt(5)) = U(-1/sqrt(fan_in), 1/sqrt(fan_in)),
    the fan taken from the weight's layout (so a transposed conv's fan_in counts its outputs, as in PyTorch)."""
    init.kaiming_uniform_(weight, a=math.sqrt(5))
    if bias is not None:
        fan_in, _ = init.calculate_fan_in_and_fan_out(weight)
        bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
        init.uniform_(bias, -bound, bound)


class Linear(Module):
    """y = x W^T + b, weight (out_features, in_features)."""

    def __init__(self, in_features, out_features, bias=True, device=None, dtype=None):
        super().__init__()
        F._check_positive_int("in_features", in_features)
        F._check_positive_int("out_features", out_features)
        self.in_features, self.out_features = in_features, out_features
        _register_weight_and_bias(self, (out_features, in_features), bias, out_features, dtype)
        self.reset_parameters()
        _place(self, device)

    def reset_parameters(self):
        _default_uniform_init(self.weight, self.bias)

    def forward(self, input):
        return F.linear(input, self.weight, self.bias)

    def extra_repr(self):
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


def _conv_repr(layer) -> str:
    """PyTorch's repr of a (transposed) convolution: the settings that differ from the defaults."""
    text = f"{layer.in_channels}, {layer.out_channels}, kernel_size={layer.kernel_size}, stride={layer.stride}"
    if layer.padding != (0, 0):
        text += f", padding={layer.padding}"
    if layer.dilation != (1, 1):
        text += f", dilation={layer.dilation}"
    if getattr(layer, "output_padding", (0, 0)) != (0, 0):
        text += f", output_padding={layer.output_padding}"
    if layer.groups != 1:
        text += f", groups={layer.groups}"
    if layer.bias is None:
        text += ", bias=False"
    if layer.padding_mode != "zeros":
        text += f", padding_mode={layer.padding_mode}"
    return text


def _check_conv_channels(in_channels, out_channels, groups):
    for name, value in (("in_channels", in_channels), ("out_channels", out_channels), ("groups", groups)):
        F._check_positive_int(name, value)
    if in_channels % groups or out_channels % groups:
        raise ValueError(f"in_channels {in_channels} and out_channels {out_channels} must be divisible by "
                         f"groups={groups}")


class Conv2d(Module):
    """2-D convolution over an (N, C, H, W) input; weight (out_channels, in_channels/groups, kH, kW)."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1,
                 bias=True, padding_mode="zeros", device=None, dtype=None):
        super().__init__()
        _check_conv_channels(in_channels, out_channels, groups)
        if padding_mode not in ("zeros", "reflect", "replicate", "circular"):
            raise ValueError(f"padding_mode must be 'zeros', 'reflect', 'replicate' or 'circular', got {padding_mode!r}")
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.kernel_size, self.stride, self.dilation = pair(kernel_size, "kernel_size"), pair(stride, "stride"), pair(dilation, "dilation")
        if min(self.kernel_size) < 1:
            raise ValueError(f"kernel_size must be positive, got {kernel_size!r}")
        if isinstance(padding, str):
            if padding not in ("same", "valid"):
                raise ValueError(f"padding must be an int, a pair, 'same' or 'valid', got {padding!r}")
            if padding == "same" and self.stride != (1, 1):
                raise ValueError(f"padding='same' needs stride 1, got stride {self.stride}")
            self.padding = padding
        else:
            self.padding = pair(padding, "padding")
        self.padding_mode = padding_mode
        _register_weight_and_bias(self, (out_channels, in_channels // groups, *self.kernel_size), bias, out_channels,
                                  dtype)
        self.reset_parameters()
        _place(self, device)

    def reset_parameters(self):
        _default_uniform_init(self.weight, self.bias)

    def forward(self, input):
        return self._conv_forward(input, F.conv2d)

    def _conv_forward(self, x, conv):
        """``conv(x, weight, bias, stride, padding, dilation, groups)`` with this layer's arguments; the padding
        modes other than zeros pad x first. ``conv`` is ``F.conv2d``, or ``tl.conv2d_relu`` for ConvReLU2d."""
        if self.padding_mode == "zeros" or self.padding == "valid":
            return conv(x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)
        if self.padding == "same":
            amounts = []
            for k, d in zip(reversed(self.kernel_size), reversed(self.dilation)):
                total = d * (k - 1)
                amounts += [total // 2, total - total // 2]
        else:
            amounts = [self.padding[1], self.padding[1], self.padding[0], self.padding[0]]
        x = F.pad(x, tuple(amounts), mode=self.padding_mode)
        return conv(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)

    def extra_repr(self):
        return _conv_repr(self)


class ConvTranspose2d(Module):
    """2-D transposed convolution over an (N, C, H, W) input (``tl.conv_transpose2d``, which explains how it is
    the convolution's backward pass); weight (in_channels, out_channels/groups, kH, kW), as in PyTorch."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, output_padding=0, groups=1,
                 bias=True, dilation=1, padding_mode="zeros", device=None, dtype=None):
        super().__init__()
        _check_conv_channels(in_channels, out_channels, groups)
        if padding_mode != "zeros":
            raise ValueError(f"ConvTranspose2d supports only padding_mode='zeros', got {padding_mode!r}")
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.kernel_size, self.stride = pair(kernel_size, "kernel_size"), pair(stride, "stride")
        self.padding, self.output_padding = pair(padding, "padding"), pair(output_padding, "output_padding")
        self.dilation, self.padding_mode = pair(dilation, "dilation"), padding_mode
        for name, least in (("kernel_size", 1), ("stride", 1), ("padding", 0), ("output_padding", 0), ("dilation", 1)):
            if min(getattr(self, name)) < least:
                raise ValueError(f"{name} must be at least {least}, got {getattr(self, name)}")
        _register_weight_and_bias(self, (in_channels, out_channels // groups, *self.kernel_size), bias, out_channels,
                                  dtype)
        self.reset_parameters()
        _place(self, device)

    def reset_parameters(self):
        _default_uniform_init(self.weight, self.bias)

    def forward(self, input, output_size=None):
        """``output_size`` (H_out, W_out), optionally with the leading dims, picks the output_padding that gives
        that size, as in PyTorch; None uses the layer's output_padding."""
        return F.conv_transpose2d(input, self.weight, self.bias, self.stride, self.padding,
                                  self._output_padding(input, output_size), self.groups, self.dilation)

    def _output_padding(self, x, output_size):
        if output_size is None:
            return self.output_padding
        output_size = tuple(output_size)
        if len(output_size) == x.ndim:
            output_size = output_size[-2:]
        if len(output_size) != 2:
            raise ValueError(f"ConvTranspose2d output_size must hold 2 or {x.ndim} sizes for a {x.ndim}-D input, "
                             f"got {output_size}")
        smallest = tuple(transposed_output_size(size, kernel, stride, padding, 0, dilation)
                         for size, kernel, stride, padding, dilation in zip(x.shape[-2:], self.kernel_size, self.stride,
                                                                            self.padding, self.dilation))
        largest = tuple(size + stride - 1 for size, stride in zip(smallest, self.stride))
        if any(not low <= size <= high for size, low, high in zip(output_size, smallest, largest)):
            raise ValueError(f"ConvTranspose2d output_size {output_size} is not reachable from an input of size "
                             f"{x.shape[-2:]}: valid sizes range from {smallest} to {largest}")
        return tuple(size - low for size, low in zip(output_size, smallest))

    def extra_repr(self):
        return _conv_repr(self)


class MaxPool2d(Module):
    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, return_indices=False, ceil_mode=False):
        super().__init__()
        self.kernel_size, self.stride = kernel_size, stride if stride is not None else kernel_size
        self.padding, self.dilation = padding, dilation
        self.return_indices, self.ceil_mode = return_indices, ceil_mode

    def forward(self, input):
        return F.max_pool2d(input, self.kernel_size, self.stride, self.padding, self.dilation, self.ceil_mode,
                            self.return_indices)

    def extra_repr(self):
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
                f"dilation={self.dilation}, ceil_mode={self.ceil_mode}")


class AvgPool2d(Module):
    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
                 divisor_override=None):
        super().__init__()
        self.kernel_size, self.stride = kernel_size, stride if stride is not None else kernel_size
        self.padding, self.ceil_mode = padding, ceil_mode
        self.count_include_pad, self.divisor_override = count_include_pad, divisor_override

    def forward(self, input):
        return F.avg_pool2d(input, self.kernel_size, self.stride, self.padding, self.ceil_mode, self.count_include_pad,
                            self.divisor_override)

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class LPPool2d(Module):
    """Power-average pooling: (sum of x^p over the window)^(1/p); norm_type=2 is L2-norm pooling."""

    def __init__(self, norm_type, kernel_size, stride=None, ceil_mode=False):
        super().__init__()
        self.norm_type, self.kernel_size, self.stride, self.ceil_mode = norm_type, kernel_size, stride, ceil_mode

    def forward(self, input):
        return F.lp_pool2d(input, self.norm_type, self.kernel_size, self.stride, self.ceil_mode)

    def extra_repr(self):
        return (f"norm_type={self.norm_type}, kernel_size={self.kernel_size}, stride={self.stride}, "
                f"ceil_mode={self.ceil_mode}")


class AdaptiveAvgPool2d(Module):
    def __init__(self, output_size):
        super().__init__()
        self.output_size = output_size

    def forward(self, input):
        return F.adaptive_avg_pool2d(input, self.output_size)

    def extra_repr(self):
        return f"output_size={self.output_size}"


class MaxUnpool2d(Module):
    """The partial inverse of MaxPool2d: each value goes back to the position its index (MaxPool2d's
    ``return_indices``) names, zeros elsewhere; see ``F.max_unpool2d``."""

    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__()
        self.kernel_size = pair(kernel_size, "kernel_size")
        self.stride = pair(stride if stride is not None else kernel_size, "stride")
        self.padding = pair(padding, "padding")

    def forward(self, input, indices, output_size=None):
        return F.max_unpool2d(input, indices, self.kernel_size, self.stride, self.padding, output_size)

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AdaptiveMaxPool2d(Module):
    def __init__(self, output_size, return_indices=False):
        super().__init__()
        self.output_size, self.return_indices = output_size, return_indices

    def forward(self, input):
        return F.adaptive_max_pool2d(input, self.output_size, self.return_indices)

    def extra_repr(self):
        return f"output_size={self.output_size}"


class ReLU(Module):
    def __init__(self, inplace=False):
        super().__init__()
        self.inplace = inplace

    def forward(self, input):
        return F.relu(input, self.inplace)

    def extra_repr(self):
        return "inplace=True" if self.inplace else ""


class ConvReLU2d(Sequential):
    """A Conv2d and the ReLU after it, computed as one op: ``tl.conv2d_relu``, whose kernel applies the ReLU
    as it writes the conv's output (PyTorch's ``torch.ao.nn.intrinsic.ConvReLU2d``; ``nn.utils.fuse_modules``
    builds it).

    As in PyTorch it is a Sequential of the two modules, so the conv's parameters are named ``0.weight`` and
    ``0.bias``: fusing a model's ``conv1`` turns its ``conv1.weight`` into ``conv1.0.weight``. The forward
    hooks of the two children do not run, since the fused op replaces their calls (``nn.summary`` gives the
    output shape and MACs on the fused module's row, the parameters on the inner conv's).
    """

    def __init__(self, conv, relu):
        if type(conv) is not Conv2d or type(relu) is not ReLU:
            raise TypeError(f"ConvReLU2d takes a Conv2d and a ReLU, got {type(conv).__name__} and "
                            f"{type(relu).__name__}")
        super().__init__(conv, relu)

    def forward(self, input):
        return self[0]._conv_forward(input, tl.conv2d_relu)


class Sigmoid(Module):
    def forward(self, input):
        return F.sigmoid(input)


class Tanh(Module):
    def forward(self, input):
        return F.tanh(input)


class LeakyReLU(Module):
    def __init__(self, negative_slope=0.01, inplace=False):
        super().__init__()
        self.negative_slope, self.inplace = negative_slope, inplace

    def forward(self, input):
        return F.leaky_relu(input, self.negative_slope, self.inplace)

    def extra_repr(self):
        return f"negative_slope={self.negative_slope}" + (", inplace=True" if self.inplace else "")


class ELU(Module):
    def __init__(self, alpha=1.0, inplace=False):
        super().__init__()
        self.alpha, self.inplace = alpha, inplace

    def forward(self, input):
        return F.elu(input, self.alpha, self.inplace)

    def extra_repr(self):
        return f"alpha={self.alpha}" + (", inplace=True" if self.inplace else "")


class GELU(Module):
    def __init__(self, approximate="none"):
        super().__init__()
        self.approximate = approximate

    def forward(self, input):
        return F.gelu(input, self.approximate)

    def extra_repr(self):
        return f"approximate={self.approximate!r}"


class Softmax(Module):
    def __init__(self, dim=None):
        super().__init__()
        self.dim = dim

    def forward(self, input):
        return F.softmax(input, self.dim)

    def extra_repr(self):
        return f"dim={self.dim}"


class LogSoftmax(Softmax):
    def forward(self, input):
        return F.log_softmax(input, self.dim)


class Hardtanh(Module):
    """x clamped to [min_val, max_val]."""

    def __init__(self, min_val=-1.0, max_val=1.0, inplace=False):
        super().__init__()
        if not max_val > min_val:
            raise ValueError(f"Hardtanh: max_val ({max_val}) must be greater than min_val ({min_val})")
        self.min_val, self.max_val, self.inplace = min_val, max_val, inplace

    def forward(self, input):
        return F.hardtanh(input, self.min_val, self.max_val, self.inplace)

    def extra_repr(self):
        return f"min_val={self.min_val}, max_val={self.max_val}" + (", inplace=True" if self.inplace else "")


class ReLU6(Hardtanh):
    """min(max(x, 0), 6) (MobileNet)."""

    def __init__(self, inplace=False):
        super().__init__(0.0, 6.0, inplace)

    def extra_repr(self):
        return "inplace=True" if self.inplace else ""


class _InplaceActivation(Module):
    """An activation whose only setting is ``inplace`` (printed when True, unless ``shows_inplace`` is False,
    as PyTorch prints Hardswish and Hardsigmoid)."""

    function = None
    shows_inplace = True

    def __init__(self, inplace=False):
        super().__init__()
        self.inplace = inplace

    def forward(self, input):
        return type(self).function(input, self.inplace)

    def extra_repr(self):
        return "inplace=True" if self.inplace and self.shows_inplace else ""


class SiLU(_InplaceActivation):
    """x * sigmoid(x)."""

    function = F.silu


class Mish(_InplaceActivation):
    """x * tanh(softplus(x))."""

    function = F.mish


class Hardswish(_InplaceActivation):
    """x * relu6(x + 3) / 6."""

    function = F.hardswish
    shows_inplace = False


class Hardsigmoid(_InplaceActivation):
    """relu6(x + 3) / 6."""

    function = F.hardsigmoid
    shows_inplace = False


class SELU(_InplaceActivation):
    """scale * elu(x, alpha) with the self-normalising constants (Klambauer et al. 2017)."""

    function = F.selu


class CELU(Module):
    """x for x > 0, alpha * (exp(x / alpha) - 1) for x <= 0."""

    def __init__(self, alpha=1.0, inplace=False):
        super().__init__()
        self.alpha, self.inplace = alpha, inplace

    def forward(self, input):
        return F.celu(input, self.alpha, self.inplace)

    def extra_repr(self):
        return f"alpha={self.alpha}" + (", inplace=True" if self.inplace else "")


class RReLU(Module):
    """Leaky ReLU with a random negative slope from [lower, upper] per element in training, their mean in eval."""

    def __init__(self, lower=1.0 / 8, upper=1.0 / 3, inplace=False):
        super().__init__()
        self.lower, self.upper, self.inplace = lower, upper, inplace

    def forward(self, input):
        return F.rrelu(input, self.lower, self.upper, self.training, self.inplace)

    def extra_repr(self):
        return f"lower={self.lower}, upper={self.upper}" + (", inplace=True" if self.inplace else "")


class GLU(Module):
    """The gated linear unit: a * sigmoid(b), a and b the halves of the input along ``dim``."""

    def __init__(self, dim=-1):
        super().__init__()
        self.dim = dim

    def forward(self, input):
        return F.glu(input, self.dim)

    def extra_repr(self):
        return f"dim={self.dim}"


class LogSigmoid(Module):
    """log(sigmoid(x)), exact for large |x|."""

    def forward(self, input):
        return F.logsigmoid(input)


class Softmin(Softmax):
    """softmax(-x) along ``dim``."""

    def forward(self, input):
        return F.softmin(input, self.dim)


class Softmax2d(Module):
    """Softmax over the channels at each position of a (N, C, H, W) or (C, H, W) input."""

    def forward(self, input):
        if input.ndim not in (3, 4):
            raise ValueError(f"Softmax2d expects a 3-D (C, H, W) or 4-D (N, C, H, W) input, got shape {input.shape}")
        return F.softmax(input, -3)


class Hardshrink(Module):
    """0 for x in [-lambd, lambd], x elsewhere."""

    def __init__(self, lambd=0.5):
        super().__init__()
        self.lambd = lambd

    def forward(self, input):
        return F.hardshrink(input, self.lambd)

    def extra_repr(self):
        return f"{self.lambd}"


class Softshrink(Hardshrink):
    """x moved lambd towards 0, and 0 for x in [-lambd, lambd]."""

    def forward(self, input):
        return F.softshrink(input, self.lambd)


class Tanhshrink(Module):
    """x - tanh(x)."""

    def forward(self, input):
        return F.tanhshrink(input)


class ChannelShuffle(Module):
    """Interleaves the channels of ``groups`` groups (ShuffleNet), see ``F.channel_shuffle``."""

    def __init__(self, groups):
        super().__init__()
        self.groups = groups

    def forward(self, input):
        return F.channel_shuffle(input, self.groups)

    def extra_repr(self):
        return f"groups={self.groups}"


class Softplus(Module):
    """(1/beta) log(1 + exp(beta x)), linear where beta x > threshold."""

    def __init__(self, beta=1.0, threshold=20.0):
        super().__init__()
        self.beta, self.threshold = beta, threshold

    def forward(self, input):
        return F.softplus(input, self.beta, self.threshold)

    def extra_repr(self):
        return f"beta={self.beta}, threshold={self.threshold}"


class Softsign(Module):
    """x / (1 + |x|)."""

    def forward(self, input):
        return F.softsign(input)


class Threshold(Module):
    """``value`` where x <= threshold, x elsewhere."""

    def __init__(self, threshold, value, inplace=False):
        super().__init__()
        self.threshold, self.value, self.inplace = threshold, value, inplace

    def forward(self, input):
        return F.threshold(input, self.threshold, self.value, self.inplace)

    def extra_repr(self):
        return f"threshold={self.threshold}, value={self.value}" + (", inplace=True" if self.inplace else "")


class PReLU(Module):
    """max(0, x) + weight * min(0, x) with learned slopes (He et al. 2015): ``num_parameters`` 1 (one slope
    for every channel) or the number of channels (dim 1); weight initialised to ``init``."""

    def __init__(self, num_parameters=1, init=0.25, device=None, dtype=None):
        super().__init__()
        F._check_positive_int("num_parameters", num_parameters)
        self.num_parameters, self.init = num_parameters, init
        self.weight = Parameter(tl.empty(num_parameters, dtype=dtype))
        self.reset_parameters()
        _place(self, device)

    def reset_parameters(self):
        init.constant_(self.weight, self.init)

    def forward(self, input):
        return F.prelu(input, self.weight)

    def extra_repr(self):
        return f"num_parameters={self.num_parameters}"


class Maxout(Module):
    """Maxout unit (Goodfellow et al. 2013): the max of ``pool_size`` affine maps of the input,
    max(x W_1^T + b_1, ..., x W_k^T + b_k). It learns its own piecewise-linear activation; with k = 2 and one
    map fixed at zero it is ReLU."""

    def __init__(self, in_features, out_features, pool_size=2, device=None, dtype=None):
        super().__init__()
        F._check_positive_int("pool_size", pool_size)
        self.in_features, self.out_features, self.pool_size = in_features, out_features, pool_size
        self.linear = Linear(in_features, out_features * pool_size, device=device, dtype=dtype)

    def forward(self, input):
        pieces = self.linear(input).reshape(*input.shape[:-1], self.out_features, self.pool_size)
        return pieces.max(-1).values

    def extra_repr(self):
        return f"in_features={self.in_features}, out_features={self.out_features}, pool_size={self.pool_size}"


class Dropout(Module):
    def __init__(self, p=0.5, inplace=False):
        super().__init__()
        F._check_probability(p)
        self.p, self.inplace = p, inplace

    def forward(self, input):
        return F.dropout(input, self.p, self.training, self.inplace)

    def extra_repr(self):
        return f"p={self.p}, inplace={self.inplace}"


class Dropout1d(Dropout):
    """Zeroes whole channels of (N, C, L) or (C, L) inputs."""

    def forward(self, input):
        return F.dropout1d(input, self.p, self.training, self.inplace)


class Dropout2d(Dropout):
    def forward(self, input):
        return F.dropout2d(input, self.p, self.training, self.inplace)


class Dropout3d(Dropout):
    """Zeroes whole channels of (N, C, D, H, W) or (C, D, H, W) inputs."""

    def forward(self, input):
        return F.dropout3d(input, self.p, self.training, self.inplace)


class AlphaDropout(Dropout):
    """Dropout that keeps the mean and variance of a self-normalising (SELU) network's activations. As in PyTorch
    it computes out of place even with ``inplace=True`` (the flag is kept, and printed)."""

    def forward(self, input):
        return F.alpha_dropout(input, self.p, self.training)


class FeatureAlphaDropout(Dropout):
    """Alpha dropout of whole channels, one draw per (sample, channel); out of place, as AlphaDropout."""

    def forward(self, input):
        return F.feature_alpha_dropout(input, self.p, self.training)


def _register_affine(module, shape, affine, bias, dtype):
    """A normalisation's elementwise ``weight`` and ``bias`` of ``shape``, both None without ``affine`` and the
    bias None without ``bias``, as PyTorch registers them."""
    module.register_parameter("weight", Parameter(tl.empty(*shape, dtype=dtype)) if affine else None)
    module.register_parameter("bias", Parameter(tl.empty(*shape, dtype=dtype)) if affine and bias else None)


def _reset_affine(weight, bias):
    """A normalisation's affine parameters at the identity: weight 1, bias 0 (either may be None)."""
    if weight is not None:
        init.ones_(weight)
    if bias is not None:
        init.zeros_(bias)


class _NormBase(Module):
    """The parameters and running statistics that batch and instance normalisation share: weight 1 and bias 0
    per channel (``affine``), running mean 0 and variance 1 and the count of batches
    (``track_running_stats``), with PyTorch's names."""

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True, track_running_stats=True, device=None,
                 dtype=None, *, bias=True):
        super().__init__()
        F._check_positive_int("num_features", num_features)
        if not eps >= 0:  # also catches NaN
            raise ValueError(f"eps must be non-negative, got {eps!r}")
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        _register_affine(self, (num_features,), affine, bias, dtype)
        if track_running_stats:
            self.register_buffer("running_mean", tl.empty(num_features, dtype=dtype))
            self.register_buffer("running_var", tl.empty(num_features, dtype=dtype))
            self.register_buffer("num_batches_tracked", tl.tensor(0, dtype=tl.int64))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)
        self.reset_parameters()
        _place(self, device)

    def _upgrade_state_dict(self, state_dict, prefix):
        """A checkpoint without the count of batches (older ones, and hand-converted weights) loads strictly:
        the layer keeps its own count, as PyTorch does."""
        if self.num_batches_tracked is not None:
            state_dict.setdefault(prefix + "num_batches_tracked", self.num_batches_tracked)

    def reset_running_stats(self):
        """Running mean 0, running variance 1, no batches counted (nothing to do without running statistics)."""
        if self.track_running_stats:
            init.zeros_(self.running_mean)
            init.ones_(self.running_var)
            init.zeros_(self.num_batches_tracked)

    def reset_parameters(self):
        """The running statistics, and the affine weight 1 and bias 0."""
        self.reset_running_stats()
        _reset_affine(self.weight, self.bias)

    def extra_repr(self):
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
                f"bias={self.bias is not None}, track_running_stats={self.track_running_stats}")


class _BatchNorm(_NormBase):
    expected_dims = ()

    def forward(self, input):
        if input.ndim not in self.expected_dims:
            raise ValueError(f"{type(self).__name__} expects a {' or '.join(f'{d}-D' for d in self.expected_dims)} "
                             f"input, got shape {input.shape}")
        if input.shape[1] != self.num_features:
            raise ValueError(f"{type(self).__name__}({self.num_features}) got an input with {input.shape[1]} channels "
                             f"(shape {input.shape})")
        use_batch_stats = self.training or not self.track_running_stats
        # checked before num_batches_tracked counts the batch
        F.check_batch_norm(input, self.running_mean, self.running_var, self.weight, self.bias, use_batch_stats,
                           self.eps, who=type(self).__name__)
        momentum = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats:
            self.num_batches_tracked.array[...] += 1
            if self.momentum is None:  # cumulative moving average
                momentum = 1.0 / float(self.num_batches_tracked.item())
        return F._batch_norm_checked(input, self.running_mean, self.running_var, self.weight, self.bias,
                                     use_batch_stats, momentum, self.eps)


class BatchNorm1d(_BatchNorm):
    """Batch normalisation over (N, C) or (N, C, L) inputs."""

    expected_dims = (2, 3)


class BatchNorm2d(_BatchNorm):
    """Batch normalisation over (N, C, H, W) inputs, per channel."""

    expected_dims = (4,)


class LayerNorm(Module):
    """Normalise each sample over its last dims (``normalized_shape``), with an elementwise weight (1) and
    bias (0) of that shape."""

    def __init__(self, normalized_shape, eps=1e-5, elementwise_affine=True, bias=True, device=None, dtype=None):
        super().__init__()
        self.normalized_shape = F._normalized_shape(normalized_shape)
        self.eps, self.elementwise_affine = eps, elementwise_affine
        _register_affine(self, self.normalized_shape, elementwise_affine, bias, dtype)
        self.reset_parameters()
        _place(self, device)

    def reset_parameters(self):
        _reset_affine(self.weight, self.bias)

    def forward(self, input):
        return F.layer_norm(input, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self):
        return (f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}, "
                f"bias={self.bias is not None}")


class GroupNorm(Module):
    """Normalise each group of ``num_channels // num_groups`` channels of each sample (Wu and He 2018), with a
    per-channel weight (1) and bias (0)."""

    def __init__(self, num_groups, num_channels, eps=1e-5, affine=True, device=None, dtype=None, *, bias=True):
        super().__init__()
        F._check_positive_int("num_groups", num_groups)
        F._check_positive_int("num_channels", num_channels)
        if num_channels % num_groups:
            raise ValueError(f"num_channels ({num_channels}) must be divisible by num_groups ({num_groups})")
        self.num_groups, self.num_channels, self.eps, self.affine = num_groups, num_channels, eps, affine
        _register_affine(self, (num_channels,), affine, bias, dtype)
        self.reset_parameters()
        _place(self, device)

    def reset_parameters(self):
        _reset_affine(self.weight, self.bias)

    def forward(self, input):
        if input.ndim >= 2 and input.shape[1] != self.num_channels:
            raise ValueError(f"GroupNorm({self.num_groups}, {self.num_channels}) got an input with {input.shape[1]} "
                             f"channels (shape {input.shape})")
        return F.group_norm(input, self.num_groups, self.weight, self.bias, self.eps)

    def extra_repr(self):
        return (f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}, "
                f"bias={self.bias is not None}")


class InstanceNorm2d(_NormBase):
    """Normalise each channel of each image over its pixels (Ulyanov et al. 2016), for (N, C, H, W) or unbatched
    (C, H, W) inputs. PyTorch's defaults: no affine parameters and no running statistics. With
    ``track_running_stats`` the running statistics are updated in training (``momentum`` None leaves them
    alone, and ``num_batches_tracked`` stays 0, as in PyTorch) and used in eval."""

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=False, track_running_stats=False, device=None,
                 dtype=None, *, bias=True):
        super().__init__(num_features, eps, momentum, affine, track_running_stats, device, dtype, bias=bias)

    def forward(self, input):
        if input.ndim not in (3, 4):
            raise ValueError(f"InstanceNorm2d expects a 3-D (C, H, W) or 4-D (N, C, H, W) input, got shape "
                             f"{input.shape}")
        channel_dim = input.ndim - 3
        if input.shape[channel_dim] != self.num_features:
            if self.affine:
                raise ValueError(f"InstanceNorm2d({self.num_features}) got an input with {input.shape[channel_dim]} "
                                 f"channels (shape {input.shape})")
            warnings.warn(f"InstanceNorm2d({self.num_features}) got an input with {input.shape[channel_dim]} channels "
                          f"(shape {input.shape}); num_features is not used since affine=False", stacklevel=2)
        batched = input if input.ndim == 4 else input.unsqueeze(0)
        out = F.instance_norm(batched, self.running_mean, self.running_var, self.weight, self.bias,
                              self.training or not self.track_running_stats,
                              0.0 if self.momentum is None else self.momentum, self.eps)
        return out if input.ndim == 4 else out.squeeze(0)


class LocalResponseNorm(Module):
    """Local response normalisation across channels (Krizhevsky et al. 2012, AlexNet): see
    ``nn.functional.local_response_norm``."""

    def __init__(self, size, alpha=1e-4, beta=0.75, k=1.0):
        super().__init__()
        F._check_positive_int("size", size)
        self.size, self.alpha, self.beta, self.k = size, alpha, beta, k

    def forward(self, input):
        return F.local_response_norm(input, self.size, self.alpha, self.beta, self.k)

    def extra_repr(self):
        return f"{self.size}, alpha={self.alpha}, beta={self.beta}, k={self.k}"


def _padding_amounts(padding):
    """An int (every side), (left, right, top, bottom), or (left, right), which pads the last dim only, as in
    PyTorch: a tuple of ints for ``F.pad``."""
    if F._is_int(padding):
        return (int(padding),) * 4
    if isinstance(padding, (tuple, list)) and len(padding) in (2, 4) and all(F._is_int(p) for p in padding):
        return tuple(int(p) for p in padding)
    raise TypeError(f"padding must be an int or 4 ints (left, right, top, bottom), or 2 ints (left, right) for the "
                    f"last dim only, got {padding!r}")


class _Pad2d(Module):
    """Pads the last two dims by ``padding`` (left, right, top, bottom), or the last dim by (left, right), with
    ``F.pad``'s ``mode``."""

    mode = "constant"

    def __init__(self, padding):
        super().__init__()
        self.padding = _padding_amounts(padding)

    def forward(self, input):
        if len(self.padding) == 4 and input.ndim not in (3, 4):  # (left, right) pads the last dim: F.pad checks
            raise ValueError(f"{type(self).__name__} expects a 3-D (C, H, W) or 4-D (N, C, H, W) input, got shape "
                             f"{input.shape}")
        return F.pad(input, self.padding, self.mode)

    def extra_repr(self):
        return f"{self.padding}"


class ConstantPad2d(_Pad2d):
    """Pads with ``value``; negative amounts crop. Inputs of 2 or more dims pad their last two."""

    def __init__(self, padding, value):
        super().__init__(padding)
        self.value = value

    def forward(self, input):
        return F.pad(input, self.padding, "constant", self.value)

    def extra_repr(self):
        return f"padding={self.padding}, value={self.value}"


class ZeroPad2d(ConstantPad2d):
    """Pads with zeros (the padding of a convolution, as a layer)."""

    def __init__(self, padding):
        super().__init__(padding, 0.0)

    def extra_repr(self):
        return f"{self.padding}"


class ReflectionPad2d(_Pad2d):
    """Pads with the mirror image of the input, the edge row and column not repeated."""

    mode = "reflect"


class ReplicationPad2d(_Pad2d):
    """Pads by repeating the edge rows and columns."""

    mode = "replicate"


class CircularPad2d(_Pad2d):
    """Pads by wrapping around: the left padding is the input's right edge, and so on."""

    mode = "circular"


class Upsample(Module):
    """``F.interpolate`` as a layer: to ``size`` or by ``scale_factor``, in ``mode`` ('nearest', 'nearest-exact',
    'linear', 'bilinear', 'bicubic', 'trilinear', 'area')."""

    def __init__(self, size=None, scale_factor=None, mode="nearest", align_corners=None,
                 recompute_scale_factor=None):
        super().__init__()
        self.size = size
        if isinstance(scale_factor, (tuple, list)):
            self.scale_factor = tuple(float(factor) for factor in scale_factor)
        else:
            self.scale_factor = float(scale_factor) if scale_factor is not None else None
        self.mode, self.align_corners, self.recompute_scale_factor = mode, align_corners, recompute_scale_factor

    def forward(self, input):
        return F.interpolate(input, self.size, self.scale_factor, self.mode, self.align_corners,
                             recompute_scale_factor=self.recompute_scale_factor)

    def extra_repr(self):
        setting = f"scale_factor={self.scale_factor!r}" if self.scale_factor is not None else f"size={self.size!r}"
        return f"{setting}, mode={self.mode!r}"


class UpsamplingNearest2d(Upsample):
    def __init__(self, size=None, scale_factor=None):
        super().__init__(size, scale_factor, mode="nearest")


class UpsamplingBilinear2d(Upsample):
    """Bilinear with align_corners=True (the corner pixels stay in place), as this older layer does in PyTorch."""

    def __init__(self, size=None, scale_factor=None):
        super().__init__(size, scale_factor, mode="bilinear", align_corners=True)


class PixelShuffle(Module):
    """(*, C * r^2, H, W) -> (*, C, H * r, W * r), r = ``upscale_factor``."""

    def __init__(self, upscale_factor):
        super().__init__()
        self.upscale_factor = upscale_factor

    def forward(self, input):
        return F.pixel_shuffle(input, self.upscale_factor)

    def extra_repr(self):
        return f"upscale_factor={self.upscale_factor}"


class PixelUnshuffle(Module):
    """(*, C, H * r, W * r) -> (*, C * r^2, H, W), r = ``downscale_factor``."""

    def __init__(self, downscale_factor):
        super().__init__()
        self.downscale_factor = downscale_factor

    def forward(self, input):
        return F.pixel_unshuffle(input, self.downscale_factor)

    def extra_repr(self):
        return f"downscale_factor={self.downscale_factor}"


class Unflatten(Module):
    """Splits dim ``dim`` into ``unflattened_size`` (one entry may be -1, inferred): the inverse of Flatten."""

    def __init__(self, dim, unflattened_size):
        super().__init__()
        if not isinstance(unflattened_size, (tuple, list)):
            raise TypeError(f"unflattened_size must be a tuple or list of ints, got {unflattened_size!r}")
        for position, size in enumerate(unflattened_size):
            if not F._is_int(size):
                raise TypeError(f"unflattened_size must hold ints, got {size!r} at position {position}")
        self.dim, self.unflattened_size = dim, unflattened_size

    def forward(self, input):
        if not -input.ndim <= self.dim < input.ndim:
            raise IndexError(f"Unflatten: dim {self.dim} is out of range for an input of shape {input.shape}")
        dim = self.dim % input.ndim
        sizes = tuple(int(size) for size in self.unflattened_size)
        known = math.prod(size for size in sizes if size != -1)
        if sizes.count(-1) > 1 or (-1 not in sizes and known != input.shape[dim]) or (
                -1 in sizes and (known == 0 or input.shape[dim] % known)):
            raise ValueError(f"Unflatten: sizes {self.unflattened_size} do not split dim {self.dim} of size "
                             f"{input.shape[dim]} (input shape {input.shape})")
        return input.reshape(*input.shape[:dim], *sizes, *input.shape[dim + 1:])

    def extra_repr(self):
        return f"dim={self.dim}, unflattened_size={self.unflattened_size}"


class Unfold(Module):
    """im2col as a layer: (N, C, H, W) -> (N, C * kh * kw, L), see ``F.unfold``."""

    def __init__(self, kernel_size, dilation=1, padding=0, stride=1):
        super().__init__()
        self.kernel_size, self.dilation, self.padding, self.stride = kernel_size, dilation, padding, stride

    def forward(self, input):
        return F.unfold(input, self.kernel_size, self.dilation, self.padding, self.stride)

    def extra_repr(self):
        return (f"kernel_size={self.kernel_size}, dilation={self.dilation}, padding={self.padding}, "
                f"stride={self.stride}")


class Fold(Module):
    """col2im as a layer: (N, C * kh * kw, L) -> (N, C, *output_size), see ``F.fold``."""

    def __init__(self, output_size, kernel_size, dilation=1, padding=0, stride=1):
        super().__init__()
        self.output_size, self.kernel_size = output_size, kernel_size
        self.dilation, self.padding, self.stride = dilation, padding, stride

    def forward(self, input):
        return F.fold(input, self.output_size, self.kernel_size, self.dilation, self.padding, self.stride)

    def extra_repr(self):
        return (f"output_size={self.output_size}, kernel_size={self.kernel_size}, dilation={self.dilation}, "
                f"padding={self.padding}, stride={self.stride}")


class CosineSimilarity(Module):
    """The cosine similarity of two inputs along ``dim``, see ``F.cosine_similarity``."""

    def __init__(self, dim=1, eps=1e-8):
        super().__init__()
        self.dim, self.eps = dim, eps

    def forward(self, x1, x2):
        return F.cosine_similarity(x1, x2, self.dim, self.eps)
