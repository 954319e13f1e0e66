"""2-D convolution as a differentiable op over the conv2d kernel family."""

from __future__ import annotations

from kernels import conv2d as conv_kernels
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


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """``torch.nn.functional.conv2d``: input (N, C, H, W) or (C, H, W), weight (K, C/groups, R, S).

    Output size per axis: ``floor((W + 2P - dilation*(K-1) - 1) / S) + 1``; a stride that does not tile the
    input exactly floors, leaving the last rows/columns unvisited (PyTorch's behaviour).
    ``padding="same"`` with an even kernel extent pads one more zero after than before, like PyTorch.
    """
    if input.ndim == 3:
        return squeeze(conv2d(unsqueeze(input, 0), weight, bias, stride, padding, dilation, groups), 0)
    if padding == "same" and weight.ndim == 4:
        if conv_kernels.geometry.pair(stride, "stride") != (1, 1):
            raise ValueError(f"padding='same' needs stride 1, got stride {stride}")
        dil = conv_kernels.geometry.pair(dilation, "dilation")
        (top, bottom) = conv_kernels.same_padding(weight.shape[2], dil[0])
        (left, right) = conv_kernels.same_padding(weight.shape[3], dil[1])
        if (top, left) != (bottom, right):
            input = pad(input, (0, right - left, 0, bottom - top))
        padding = (top, left)
    return Conv2d.apply(input, weight, bias, stride, padding, dilation, groups)
