"""Fused differentiable ops over the softmax_xent and batchnorm kernel families.

Each is one graph node where the composite ``nn.functional`` formulations record a dozen (max, exp, log,
indexing, sums, divisions...), each a pass over the data and a saved intermediate; the values and
gradients are the same to rounding (float64: 1e-12).
"""

from __future__ import annotations

import math

import numpy as np

from kernels import batchnorm as bn_kernels
from kernels import softmax_xent as xent_kernels
from kernels.device_arrays import array_module
from tensorlib.autograd import Function

_REDUCTIONS = ("none", "mean", "sum")


class SoftmaxCrossEntropy(Function):
    def forward(self, logits, target, ignore_index, reduction):
        losses, self.probs = xent_kernels.softmax_xent_forward(logits, target, ignore_index)
        self.target, self.ignore_index, self.reduction = target, ignore_index, reduction
        if reduction == "none":
            return losses
        if reduction == "sum":
            return losses.sum()
        self.count = (target != ignore_index).sum()  # stays on the device: no sync for CuPy
        with np.errstate(invalid="ignore"):  # every row ignored: 0/0 = NaN, PyTorch's answer
            return losses.sum() / self.count.astype(logits.dtype)

    def backward(self, g):
        rows = self.probs.shape[0]
        if self.reduction == "none":
            per_sample = g
        else:
            if self.reduction == "mean":
                # with no valid row every row's gradient is 0 whatever the scale, so 1 avoids 0/0 here
                g = g / array_module(g).maximum(self.count, 1).astype(g.dtype)
            per_sample = array_module(g).broadcast_to(g, (rows,))
        dlogits = xent_kernels.softmax_xent_backward(self.probs, self.target, per_sample, self.ignore_index)
        return dlogits, None, None, None


def softmax_cross_entropy(logits, target, ignore_index=-100, reduction="mean"):
    """``cross_entropy`` of float logits (N, C) against int64 class indices (N,), without class weights or
    label smoothing: losses are ``logsumexp(x_i) - x_i[t_i]``; "mean" divides the sum by the number of rows
    whose target is not ``ignore_index`` (NaN if there is none), "sum" sums, "none" returns (N,) with 0 for
    ignored rows. A target outside [0, C) other than ``ignore_index`` raises IndexError."""
    if reduction not in _REDUCTIONS:
        raise ValueError(f"reduction must be one of {_REDUCTIONS}, got {reduction!r}")
    return SoftmaxCrossEntropy.apply(logits, target, ignore_index, reduction)


class BatchNormTrain(Function):
    def forward(self, x, weight, bias, eps, stats):
        """``stats`` receives the batch mean and biased variance: ``apply`` returns a single tensor."""
        y, stats["mean"], stats["var"], self.inv_std = bn_kernels.batchnorm_forward_train(x, weight, bias, eps)
        self.x, self.weight, self.mean, self.has_bias = x, weight, stats["mean"], bias is not None
        return y

    def backward(self, g):
        dx, dweight, dbias = bn_kernels.batchnorm_backward(g, self.x, self.weight, self.mean, self.inv_std)
        dweight = dweight if self.weight is not None and self.needs_input_grad[1] else None
        dbias = dbias if self.has_bias and self.needs_input_grad[2] else None
        return dx if self.needs_input_grad[0] else None, dweight, dbias, None, None


def batch_norm_train(input, weight=None, bias=None, eps=1e-5):
    """The training branch of ``batch_norm`` on (N, C, ...): ``(y, mean, var_unbiased)``.

    ``y`` is normalised with the biased batch variance and is differentiable in input, weight and bias;
    ``mean`` and ``var_unbiased`` are raw (C,) arrays on the input's device, outside the graph, for the
    running-statistics update ``running = (1 - momentum) * running + momentum * batch``.
    """
    if input.ndim < 2:
        raise ValueError(f"batch_norm expects an input of at least 2 dims (N, C, ...), got shape {input.shape}")
    count = math.prod(input.shape) // max(input.shape[1], 1)
    if count <= 1:
        raise ValueError(f"batch_norm needs more than 1 value per channel when training, got input shape {input.shape}")
    stats = {}
    y = BatchNormTrain.apply(input, weight, bias, eps, stats)
    return y, stats["mean"], stats["var"] * (count / (count - 1))
