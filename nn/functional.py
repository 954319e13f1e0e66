"""Functional forms of the layers and losses, with ``torch.nn.functional``'s signatures."""

from __future__ import annotations

import math

import numpy as np

import tensorlib as tl
from tensorlib.device import module_for, move
from tensorlib.ops.fused import batch_norm_train, softmax_cross_entropy
from tensorlib.random import default_generator

conv2d = tl.conv2d
max_pool2d = tl.max_pool2d
avg_pool2d = tl.avg_pool2d
lp_pool2d = tl.lp_pool2d
adaptive_avg_pool2d = tl.adaptive_avg_pool2d
pad = tl.pad
sigmoid = tl.sigmoid
tanh = tl.tanh

_REDUCTIONS = ("mean", "sum", "none")


def linear(input, weight, bias=None):
    """``input @ weight.T + bias``; weight (out_features, in_features) as in PyTorch."""
    if input.shape[-1] != weight.shape[-1]:
        raise ValueError(f"linear: input shape {input.shape} does not fit weight shape {weight.shape} "
                         f"(needs {weight.shape[-1]} input features)")
    out = input @ weight.T
    return out + bias if bias is not None else out


def relu(input, inplace=False):
    return tl.relu(input)


def leaky_relu(input, negative_slope=0.01, inplace=False):
    return tl.where(input > 0, input, input * negative_slope)


def elu(input, alpha=1.0, inplace=False):
    # exp of the clamped input: the unused branch never overflows (its gradient would be inf * 0)
    return tl.where(input > 0, input, (input.clamp(max=0).exp() - 1) * alpha)


def gelu(input, approximate="none"):
    """x * Phi(x) with the exact normal CDF, or its tanh approximation with ``approximate="tanh"``."""
    if approximate == "none":
        return input * 0.5 * (1 + (input * (1 / math.sqrt(2))).erf())
    if approximate == "tanh":
        inner = (input + input**3 * 0.044715) * math.sqrt(2 / math.pi)
        return input * 0.5 * (1 + inner.tanh())
    raise ValueError(f"gelu approximate must be 'none' or 'tanh', got {approximate!r}")


def _implicit_dim(ndim: int) -> int:
    """PyTorch's legacy choice when softmax is called without dim."""
    return 0 if ndim in (0, 1, 3) else 1


def softmax(input, dim=None, dtype=None):
    if dtype is not None:
        input = input.to(dtype)
    return tl.softmax(input, _implicit_dim(input.ndim) if dim is None else dim)


def log_softmax(input, dim=None, dtype=None):
    if dtype is not None:
        input = input.to(dtype)
    return tl.log_softmax(input, _implicit_dim(input.ndim) if dim is None else dim)


def _check_probability(p):
    if not 0 <= p <= 1:
        raise ValueError(f"dropout probability p must be between 0 and 1, got {p}")


def _keep_mask(shape, p, like):
    keep = default_generator().random(shape) >= p
    scale = np.asarray(1.0 / (1.0 - p) if p < 1 else 0.0, dtype=like.dtype)
    mask = keep.astype(like.dtype) * scale
    return tl.Tensor._make(move(mask, like.device))


def dropout(input, p=0.5, training=True, inplace=False):
    """Zero each element with probability p and scale the rest by 1/(1-p) (training only)."""
    _check_probability(p)
    if not training or p == 0:
        return input
    return input * _keep_mask(input.shape, p, input)


def dropout2d(input, p=0.5, training=True, inplace=False):
    """Zero whole channels: one draw per (sample, channel) of an (N, C, H, W) or (C, H, W) input."""
    _check_probability(p)
    if input.ndim not in (3, 4):
        raise ValueError(f"dropout2d expects a 3-D or 4-D input, got shape {input.shape}")
    if not training or p == 0:
        return input
    shape = input.shape[:-2] + (1, 1)
    return input * _keep_mask(shape, p, input)


def batch_norm(input, running_mean, running_var, weight=None, bias=None, training=False, momentum=0.1, eps=1e-5):
    """Normalise each channel (dim 1) by the batch statistics (training) or the running ones (eval).

    In training the batch variance used to normalise is the biased one (divide by n), while the running
    variance is updated with the unbiased one (n - 1), exactly as PyTorch does.
    """
    if input.ndim < 2:
        raise ValueError(f"batch_norm expects an input of at least 2 dims (N, C, ...), got shape {input.shape}")
    channels = input.shape[1]
    shape = (1, channels) + (1,) * (input.ndim - 2)
    if training:
        # one fused op (kernels/batchnorm): statistics, normalisation, affine, and the closed-form backward
        out, mean, unbiased = batch_norm_train(input, weight, bias, eps)
        if running_mean is not None and running_var is not None:
            running_mean.data[...] = (1 - momentum) * running_mean.data + momentum * mean
            running_var.data[...] = (1 - momentum) * running_var.data + momentum * unbiased
        return out
    else:
        if running_mean is None or running_var is None:
            raise ValueError("batch_norm in eval mode needs running_mean and running_var")
        mean, var = running_mean.reshape(shape), running_var.reshape(shape)
    out = (input - mean) / (var + eps).sqrt()
    if weight is not None:
        out = out * weight.reshape(shape)
    if bias is not None:
        out = out + bias.reshape(shape)
    return out


def one_hot(tensor, num_classes=-1):
    """int64 one-hot encoding along a new last dim; ``num_classes=-1`` uses max + 1."""
    if tensor.dtype.kind not in "iu":
        raise TypeError(f"one_hot needs an integer tensor, got dtype {tensor.dtype}")
    values = tensor.data
    if num_classes == -1:
        num_classes = int(values.max()) + 1 if values.size else 0
    if values.size and (values.min() < 0 or values.max() >= num_classes):
        raise ValueError(f"one_hot: class values must be in [0, {num_classes}), got min {int(values.min())} "
                         f"and max {int(values.max())}")
    xp = module_for(tensor.device)
    return tl.Tensor._make((values[..., None] == xp.arange(num_classes)).astype(np.int64))


def _check_reduction(reduction):
    if reduction not in _REDUCTIONS:
        raise ValueError(f"reduction must be one of {_REDUCTIONS}, got {reduction!r}")


def _classes_last(input):
    """(N, C, d1, ...) -> (N*d1*..., C); (C,) -> (1, C)."""
    if input.ndim == 1:
        return input.reshape(1, -1)
    if input.ndim > 2:
        input = input.permute(0, *range(2, input.ndim), 1)
    return input.reshape(-1, input.shape[-1])


def _check_targets(input, target):
    expected = input.shape[:1] + input.shape[2:] if input.ndim > 1 else ()
    if target.shape != expected:
        raise ValueError(f"target shape {target.shape} does not match input shape {input.shape} "
                         f"(expected target shape {expected})")


def nll_loss(input, target, weight=None, ignore_index=-100, reduction="mean"):
    """Negative log-likelihood of class indices; ``input`` holds log-probabilities along dim 1."""
    _check_reduction(reduction)
    if target.dtype.kind not in "iu":
        raise TypeError(f"nll_loss target must hold class indices (integers), got dtype {target.dtype}")
    _check_targets(input, target)
    classes = input.shape[1] if input.ndim > 1 else input.shape[0]
    flat = _classes_last(input)
    labels = target.data.reshape(-1)
    valid = labels != ignore_index
    bad = valid & ((labels < 0) | (labels >= classes))
    if bad.any():
        raise IndexError(f"target value {int(labels[bad][0])} is out of range for {classes} classes")
    xp = module_for(input.device)
    safe = xp.where(valid, labels, 0)
    class_weight = xp.ones(classes, dtype=input.dtype) if weight is None else weight.data.astype(input.dtype)
    sample_weight = class_weight[safe] * valid
    picked = flat[tl.Tensor._make(xp.arange(flat.shape[0])), tl.Tensor._make(safe)]
    losses = -picked * tl.Tensor._make(sample_weight)
    if reduction == "none":
        return losses.reshape(target.shape)
    if reduction == "sum":
        return losses.sum()
    return losses.sum() / tl.Tensor._make(sample_weight.sum())


def cross_entropy(input, target, weight=None, ignore_index=-100, reduction="mean", label_smoothing=0.0):
    """log_softmax + nll_loss for class indices, or the cross-entropy against class probabilities.

    With ``label_smoothing`` e the loss is (1 - e) * nll + e * (mean over classes of -log p), weighted and
    reduced the way PyTorch does it.
    """
    _check_reduction(reduction)
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"label_smoothing must be in [0, 1], got {label_smoothing}")
    if weight is None and not label_smoothing and input.ndim == 2 and target.dtype.kind in "iu":
        _check_targets(input, target)
        return softmax_cross_entropy(input, target, ignore_index, reduction)  # one fused op (kernels/softmax_xent)
    class_dim = 1 if input.ndim > 1 else 0
    classes = input.shape[class_dim]
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
    loss = nll_loss(logp, target, weight, ignore_index, reduction)
    if not label_smoothing:
        return loss
    ignored = tl.Tensor._make(target.data == ignore_index)
    smooth_terms = logp * weight.reshape(weight_shape) if weight is not None else logp
    smooth = tl.where(ignored, 0.0, -smooth_terms.sum(class_dim))
    if reduction == "mean":
        labels = target.data[target.data != ignore_index]
        denominator = weight.data[labels].sum() if weight is not None else labels.size
        smooth = smooth.sum() / float(denominator)
    elif reduction == "sum":
        smooth = smooth.sum()
    return loss * (1 - label_smoothing) + smooth * (label_smoothing / classes)


def mse_loss(input, target, reduction="mean"):
    _check_reduction(reduction)
    squared = (input - target) ** 2
    if reduction == "none":
        return squared
    return squared.sum() if reduction == "sum" else squared.mean()
