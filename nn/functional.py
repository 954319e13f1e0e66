"""Functional forms of the layers and losses, with ``torch.nn.functional``'s signatures."""

from __future__ import annotations

import math
import operator
import warnings

import numpy as np

import tensorlib as tl
from kernels import device_arrays
from tensorlib.autograd import Function
from tensorlib.device import array_module, module_for, move
from tensorlib.ops.fused import batch_norm_train, softmax_cross_entropy
from tensorlib.random import default_generator

conv2d = tl.conv2d
conv_transpose2d = tl.conv_transpose2d
max_pool2d = tl.max_pool2d
avg_pool2d = tl.avg_pool2d
lp_pool2d = tl.lp_pool2d
adaptive_avg_pool2d = tl.adaptive_avg_pool2d
adaptive_max_pool2d = tl.adaptive_max_pool2d
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
    """x for x > 0, alpha * (exp(x) - 1) for x <= 0, computed with expm1: exp(x) - 1 would lose every digit of a
    tiny x (-1e-8 gives 0 in float32). The gradient alpha * exp(x) of the negative side comes from x, as in
    PyTorch: from the output (out + alpha) it would round to 0 for x below about -17 in float32. A NaN input
    takes the x > 0 side, passing its gradient, as in PyTorch."""

    def forward(self, x, alpha):
        xp = array_module(x)
        self.x, self.alpha = x, alpha
        # expm1 of the clamped input: the unused positive side never overflows
        negative = alpha * xp.expm1(xp.minimum(x, 0))
        return xp.where(x <= 0, negative, x).astype(x.dtype, copy=False)

    def backward(self, g):
        xp = array_module(g)
        slope = self.alpha * xp.exp(xp.minimum(self.x, 0))
        return xp.where(self.x <= 0, g * slope, g).astype(g.dtype, copy=False), None


def _check_floating(function, input):
    if input.dtype.kind != "f":
        raise TypeError(f"{function} needs a floating-point input, got dtype {input.dtype}")


def elu(input, alpha=1.0, inplace=False):
    _check_floating("elu", input)
    return _result(input, inplace, "elu(inplace=True)", _Elu.apply, alpha)


class _LogSigmoid(Function):
    """log(sigmoid(x)) = min(x, 0) - log1p(exp(-|x|)): exp never overflows, and log1p keeps a tiny exp(-|x|)
    that log(1 + exp(-|x|)) would round away (the loss of a confident right answer)."""

    def forward(self, x):
        xp = array_module(x)
        self.x = x
        return (xp.minimum(x, 0) - xp.log1p(xp.exp(-xp.abs(x)))).astype(x.dtype, copy=False)

    def backward(self, g):
        # d/dx log(sigmoid(x)) = sigmoid(-x), from exp(-|x|) on both sides
        xp = array_module(g)
        e = xp.exp(-xp.abs(self.x))
        return g * xp.where(self.x < 0, 1 / (1 + e), e / (1 + e)).astype(g.dtype, copy=False)


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
    return _result(input, inplace, "dropout(inplace=True)", operator.mul, _keep_mask(input.shape, p, input))


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
        if tensor.dtype != input.dtype:
            raise RuntimeError(f"mixed dtype: {who} got a {input.dtype} input but its {name} is {tensor.dtype}; "
                               "convert one of them (module.to(dtype) or input.to(dtype))")
    if not eps >= 0 or (training and eps == 0):  # not >= also catches NaN
        raise ValueError(f"{who} needs eps > 0 in training and eps >= 0 in eval, got eps={eps}")


def batch_norm(input, running_mean, running_var, weight=None, bias=None, training=False, momentum=0.1, eps=1e-5):
    """Normalise each channel (dim 1) by the batch statistics (training) or the running ones (eval).

    In training the batch variance used to normalise is the biased one (divide by n), while the running
    variance is updated with the unbiased one (n - 1), exactly as PyTorch does.
    """
    check_batch_norm(input, running_mean, running_var, weight, bias, training, eps)
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


def _check_targets(input, target):
    expected = input.shape[:1] + input.shape[2:] if input.ndim > 1 else ()
    if target.shape != expected:
        raise ValueError(f"target shape {target.shape} does not match input shape {input.shape} "
                         f"(expected target shape {expected})")


def _check_class_weight(weight, classes):
    if weight is not None and weight.shape != (classes,):
        raise ValueError(f"weight must be a 1-D tensor with one entry per class ({classes} classes), "
                         f"got shape {weight.shape}")


def _target_weights(input, target, weight, ignore_index):
    """For class-index targets, as flat arrays on the input's device: the class of each target (0 where ignored,
    so that it can still index), the mask of the targets not ignored, and each target's weight (0 where
    ignored). IndexError on a class out of range."""
    classes = input.shape[1] if input.ndim > 1 else input.shape[0]
    labels = target.data.reshape(-1)
    valid = labels != ignore_index
    bad = valid & ((labels < 0) | (labels >= classes))
    if bad.any():
        raise IndexError(f"target value {int(labels[bad][0])} is out of range for {classes} classes")
    xp = module_for(input.device)
    safe = xp.where(valid, labels, 0)
    class_weight = xp.ones(classes, dtype=input.dtype) if weight is None else weight.data.astype(input.dtype)
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


def nll_loss(input, target, weight=None, ignore_index=-100, reduction="mean"):
    """Negative log-likelihood of class indices; ``input`` holds log-probabilities along dim 1.

    'mean' divides by the total weight of the targets not ignored. As in PyTorch, a batch whose targets are all
    ignored gives a NaN loss and a zero gradient; targets whose weights sum to 0 give NaN in both.
    """
    _check_reduction(reduction)
    _check_class_weight(weight, input.shape[1] if input.ndim > 1 else input.shape[0])
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


def cross_entropy(input, target, weight=None, ignore_index=-100, reduction="mean", label_smoothing=0.0):
    """log_softmax + nll_loss for class indices, or the cross-entropy against class probabilities.

    With ``label_smoothing`` e the loss is (1 - e) * nll + e * (mean over classes of -log p), weighted and
    reduced the way PyTorch does it.
    """
    _check_reduction(reduction)
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"label_smoothing must be in [0, 1], got {label_smoothing}")
    class_dim = 1 if input.ndim > 1 else 0
    classes = input.shape[class_dim]
    _check_class_weight(weight, classes)
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


def mse_loss(input, target, reduction="mean"):
    _check_reduction(reduction)
    _warn_if_broadcast(input, target)
    return _reduce((input - target) ** 2, reduction)


def l1_loss(input, target, reduction="mean"):
    _check_reduction(reduction)
    _warn_if_broadcast(input, target)
    return _reduce((input - target).abs(), reduction)


def smooth_l1_loss(input, target, reduction="mean", beta=1.0):
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


def huber_loss(input, target, reduction="mean", delta=1.0):
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


def _check_broadcasts_to_input(function, name, value, input):
    """``value`` (a weight) must broadcast to the input's shape without enlarging it."""
    try:
        fits = np.broadcast_shapes(value.shape, input.shape) == input.shape
    except ValueError:
        fits = False
    if not fits:
        raise ValueError(f"{function}: {name} of shape {value.shape} does not broadcast to the input shape "
                         f"{input.shape}")


def _check_probabilities(function, name, tensor):
    if device_arrays.capturing(tensor.data):  # the check reads the device: not while a CUDA graph is captured
        return
    outside = ~((tensor.data >= 0) & (tensor.data <= 1))  # NaN is outside too
    if outside.any():
        raise ValueError(f"{function}: every element of {name} must be between 0 and 1, got "
                         f"{float(tensor.data[outside][0])}")


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


def binary_cross_entropy(input, target, weight=None, reduction="mean"):
    """Binary cross-entropy of probabilities ``input`` against ``target`` (same shape, both in [0, 1]), times
    ``weight`` (broadcast to the input); each log is clamped to >= -100, as in PyTorch."""
    _check_reduction(reduction)
    _check_same_shape("binary_cross_entropy", input, target)
    if input.dtype.kind != "f" or target.dtype != input.dtype:
        raise TypeError(f"binary_cross_entropy needs floating-point input and target of the same dtype, got "
                        f"input {input.dtype} and target {target.dtype}")
    if weight is not None:
        _check_broadcasts_to_input("binary_cross_entropy", "weight", weight, input)
    _check_probabilities("binary_cross_entropy", "input", input)
    _check_probabilities("binary_cross_entropy", "target", target)
    losses = _BinaryCrossEntropy.apply(input, target)
    if weight is not None:
        losses = losses * weight
    return _reduce(losses, reduction)


def binary_cross_entropy_with_logits(input, target, weight=None, reduction="mean", pos_weight=None):
    """Binary cross-entropy of sigmoid(input) against ``target``, from the logits, as PyTorch computes it:
    (1 - t) x - (1 + (pos_weight - 1) t) log(sigmoid(x)), times ``weight``. logsigmoid keeps it exact for large
    |x|: no overflow, and the small loss of a confident right answer is not rounded to 0. ``pos_weight``
    weighs the positive term, one entry per class along the last dim."""
    _check_reduction(reduction)
    _check_same_shape("binary_cross_entropy_with_logits", input, target)
    for name, value in (("weight", weight), ("pos_weight", pos_weight)):
        if value is not None:
            _check_broadcasts_to_input("binary_cross_entropy_with_logits", name, value, input)
    log_sigmoid = logsigmoid(input)
    if pos_weight is not None:
        log_sigmoid = ((pos_weight - 1) * target + 1) * log_sigmoid
    losses = (1 - target) * input - log_sigmoid
    if weight is not None:
        losses = losses * weight
    return _reduce(losses, reduction)


_KL_REDUCTIONS = _REDUCTIONS + ("batchmean",)


def kl_div(input, target, reduction="mean", log_target=False):
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
