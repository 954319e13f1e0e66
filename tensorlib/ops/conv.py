"""2-D convolution as a differentiable op over the conv2d kernel family, alone or with a fused ReLU, and the
transposed convolution built from the same kernels."""

from __future__ import annotations

import numbers

from kernels import conv2d as conv_kernels
from kernels.activation import activation_backward
from tensorlib.autograd import Function
from tensorlib.ops.shape import pad, squeeze, unsqueeze


class Conv2d(Function):
    def forward(self, x, w, b, stride, padding, dilation, groups):
        self.x, self.w, self.has_bias = x, w, b is not None
        self.args = (stride, padding, dilation, groups)
        return conv_kernels.conv2d_forward(x, w, b, *self.args)

    def backward(self, g):
        dx = dw = db = None
        if self.needs_input_grad[0]:
            dx = conv_kernels.conv2d_backward_input(g, self.w, self.x.shape, *self.args)
        if self.needs_input_grad[1]:
            dw = conv_kernels.conv2d_backward_weight(g, self.x, self.w.shape, *self.args)
        if self.has_bias and self.needs_input_grad[2]:
            db = conv_kernels.conv2d_backward_bias(g)
        return dx, dw, db, None, None, None, None


class Conv2dReLU(Conv2d):
    def forward(self, x, w, b, stride, padding, dilation, groups):
        self.x, self.w, self.has_bias = x, w, b is not None
        self.args = (stride, padding, dilation, groups)
        # the output is saved, not the pre-activation: y <= 0 exactly where the pre-activation is (a NaN
        # stays NaN), and y is kept alive by the next op anyway, so the fused op holds no array of its own
        self.y = conv_kernels.conv2d_forward(x, w, b, *self.args, activation="relu")
        return self.y

    def backward(self, g):
        return super().backward(activation_backward("relu", g, self.y))


def _convolve(op, input, weight, bias, stride, padding, dilation, groups):
    """``op.apply`` after the handling conv2d and conv2d_relu share: an unbatched input, padding='same'."""
    if input.ndim == 3:
        return squeeze(_convolve(op, unsqueeze(input, 0), weight, bias, stride, padding, dilation, groups), 0)
    if padding == "same" and weight.ndim == 4:
        if conv_kernels.geometry.pair(stride, "stride") != (1, 1):
            raise ValueError(f"padding='same' needs stride 1, got stride {stride}")
        dil = conv_kernels.geometry.pair(dilation, "dilation")
        (top, bottom) = conv_kernels.same_padding(weight.shape[2], dil[0])
        (left, right) = conv_kernels.same_padding(weight.shape[3], dil[1])
        if (top, left) != (bottom, right):
            input = pad(input, (0, right - left, 0, bottom - top))
        padding = (top, left)
    return op.apply(input, weight, bias, stride, padding, dilation, groups)


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """``torch.nn.functional.conv2d``: input (N, C, H, W) or (C, H, W), weight (K, C/groups, R, S).

    Output size per axis: ``floor((W + 2P - dilation*(K-1) - 1) / S) + 1``; a stride that does not tile the
    input exactly floors, leaving the last rows/columns unvisited (PyTorch's behaviour).
    ``padding="same"`` with an even kernel extent pads one more zero after than before, like PyTorch.
    """
    return _convolve(Conv2d, input, weight, bias, stride, padding, dilation, groups)


def conv2d_relu(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """``relu(conv2d(input, weight, bias, ...))`` as one op, with ``conv2d``'s arguments and checks.

    The forward kernel clamps the output as it writes it (its ReLU epilogue), so the output is read and
    written once instead of twice; backward zeroes the incoming gradient where ``output <= 0`` (relu's
    backward, ``kernels.activation``) and runs the conv2d backward passes. Values and gradients equal the
    two-op form's (at an output of exactly 0 both take the gradient 0, like PyTorch's relu).
    """
    return _convolve(Conv2dReLU, input, weight, bias, stride, padding, dilation, groups)


class ConvTranspose2d(Function):
    """The transposed convolution, run as the passes of the convolution it is the transpose of (see
    ``conv_transpose2d``): ``args`` are that convolution's stride, padding, dilation and groups."""

    def forward(self, x, w, b, output_shape, stride, padding, dilation, groups):
        self.x, self.w, self.has_bias = x, w, b is not None
        self.args = (stride, padding, dilation, groups)
        y = conv_kernels.conv2d_backward_input(x, w, output_shape, *self.args)
        if b is not None:
            y += b.reshape(-1, 1, 1)
        return y

    def backward(self, g):
        dx = dw = db = None
        if self.needs_input_grad[0]:
            dx = conv_kernels.conv2d_forward(g, self.w, None, *self.args)
        if self.needs_input_grad[1]:
            dw = conv_kernels.conv2d_backward_weight(self.x, g, self.w.shape, *self.args)
        if self.has_bias and self.needs_input_grad[2]:
            db = conv_kernels.conv2d_backward_bias(g)
        return dx, dw, db, None, None, None, None, None


def _check_floats(op, named_tensors):
    """Floating-point tensors of one dtype, or a TypeError naming the argument."""
    (first_name, first), *rest = named_tensors
    for name, tensor in named_tensors:
        if tensor.dtype.kind != "f":
            raise TypeError(f"{op} {name} must be a floating-point tensor, got dtype {tensor.dtype}")
    for name, tensor in rest:
        if tensor.dtype != first.dtype:
            raise TypeError(f"{op} {name} dtype {tensor.dtype} does not match {first_name} dtype {first.dtype}")


def transposed_output_size(size, kernel, stride, padding, output_padding, dilation):
    """The output size of a transposed convolution along one axis (PyTorch's formula)."""
    return (size - 1) * stride - 2 * padding + dilation * (kernel - 1) + output_padding + 1


def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """``torch.nn.functional.conv_transpose2d``: input (N, C_in, H, W) or (C_in, H, W), weight
    (C_in, C_out/groups, kH, kW), bias (C_out,); output (N, C_out, H_out, W_out) with, per axis,
    ``H_out = (H-1)*stride - 2*padding + dilation*(kH-1) + output_padding + 1``.

    A transposed convolution is the gradient of a convolution with respect to its input. Read the weight as
    the weight of a convolution ``conv`` from C_out to C_in channels (K = C_in filters of C_out/groups
    channels) with the same stride, padding, dilation and groups: ``conv`` maps an (N, C_out, H_out, W_out)
    tensor to (N, C_in, H, W), and this op maps back the other way, each input element scattering its
    filter, scaled, into the output. Its three passes are therefore the convolution's, in another order
    (``kernels.conv2d``):

    - output:             ``conv2d_backward_input(dy=input, w=weight, x_shape=output's shape)``, plus the bias;
    - gradient of input:  ``conv2d_forward(x=grad_output, w=weight)``, the convolution itself;
    - gradient of weight: ``conv2d_backward_weight(dy=input, x=grad_output)``;
    - gradient of bias:   grad_output summed over N, H_out and W_out;

    so it runs on every device and kernel variant the convolution does.

    With stride s > 1 the convolution maps s input sizes to the same output size; ``output_padding`` picks
    one of them (it adds rows and columns at the bottom and right only) and must be smaller than the stride or
    the dilation, as in PyTorch. Where it is at least the stride (possible only with dilation > stride), the
    convolution from H_out gives ``output_padding // stride`` more rows than the input has: the input gets that
    many rows of zeros appended, which add nothing to the output.
    """
    if input.ndim not in (3, 4):
        raise ValueError(f"conv_transpose2d input must be 3-D (C_in, H, W) or 4-D (N, C_in, H, W), "
                         f"got shape {input.shape}")
    if input.ndim == 3:
        return squeeze(conv_transpose2d(unsqueeze(input, 0), weight, bias, stride, padding, output_padding,
                                        groups, dilation), 0)
    if weight.ndim != 4:
        raise ValueError(f"conv_transpose2d weight must be 4-D (C_in, C_out/groups, kH, kW), got shape {weight.shape}")
    pair = conv_kernels.geometry.pair
    stride, padding = pair(stride, "stride"), pair(padding, "padding")
    output_padding, dilation = pair(output_padding, "output_padding"), pair(dilation, "dilation")
    for name, value, least in (("stride", stride, 1), ("padding", padding, 0), ("output_padding", output_padding, 0),
                               ("dilation", dilation, 1)):
        if min(value) < least:
            raise ValueError(f"conv_transpose2d {name} must be at least {least}, got {value}")
    if any(op >= max(s, d) for op, s, d in zip(output_padding, stride, dilation)):
        raise ValueError(f"conv_transpose2d output_padding must be smaller than the stride or the dilation along "
                         f"each axis, got output_padding {output_padding}, stride {stride}, dilation {dilation}")
    if isinstance(groups, bool) or not isinstance(groups, numbers.Integral) or groups < 1:
        raise ValueError(f"conv_transpose2d groups must be a positive int, got {groups!r}")
    N, C_in, H, W = input.shape
    if weight.shape[0] % groups:
        raise ValueError(f"conv_transpose2d weight shape {weight.shape}: its {weight.shape[0]} input channels are not "
                         f"divisible by groups={groups}")
    if C_in != weight.shape[0]:
        raise ValueError(f"conv_transpose2d weight shape {weight.shape} expects {weight.shape[0]} input channels, "
                         f"but input shape {input.shape} has {C_in}")
    if min(weight.shape[2:]) < 1:
        raise ValueError(f"conv_transpose2d kernel size must be positive, got weight shape {weight.shape}")
    C_out = weight.shape[1] * groups
    H_out, W_out = (transposed_output_size(size, kernel, *args)
                    for size, kernel, *args in zip((H, W), weight.shape[2:], stride, padding, output_padding, dilation))
    if H_out < 1 or W_out < 1:
        raise ValueError(f"conv_transpose2d output would be empty ({H_out}x{W_out}): input size {(H, W)}, kernel "
                         f"{weight.shape[2:]}, stride {stride}, padding {padding}, output_padding {output_padding}, "
                         f"dilation {dilation}")
    tensors = [("input", input), ("weight", weight)]
    if bias is not None:
        if bias.shape != (C_out,):
            raise ValueError(f"conv_transpose2d bias must have shape ({C_out},) (C_out = weight.shape[1] * groups), "
                             f"got {bias.shape}")
        tensors.append(("bias", bias))
    _check_floats("conv_transpose2d", tensors)
    extra_rows, extra_cols = (op // s for op, s in zip(output_padding, stride))
    if extra_rows or extra_cols:
        input = pad(input, (0, extra_cols, 0, extra_rows))
    return ConvTranspose2d.apply(input, weight, bias, (N, C_out, H_out, W_out), stride, padding, dilation, groups)
