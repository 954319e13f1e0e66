"""2-D convolution as a differentiable op over the conv2d kernel family, alone or with a fused ReLU."""

from __future__ import annotations

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
