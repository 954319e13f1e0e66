"""Losses: their functional forms, with ``torch.nn.functional``'s signatures, and the loss modules, thin holders of
their arguments.

Every loss PyTorch gives the legacy ``size_average`` and ``reduce`` arguments takes them here too, in the same
positions: either one given (not None) decides the reduction instead of ``reduction``, by PyTorch's rule, with a
warning that they are deprecated.

Class weights (``weight``, and ``pos_weight`` of BCEWithLogitsLoss) are buffers, as in PyTorch: they are in
the state dict when given and move with ``loss.to(device)``."""

from __future__ import annotations

import inspect
import math
import numbers
import warnings

import numpy as np

import tensorlib as tl
from kernels import device_arrays
from nn import functional as F
from nn.module import Module
from tensorlib.autograd import Function
from tensorlib.device import array_module

# nn.functional's forms of these losses, which take the reduction alone; the forms below add PyTorch's legacy
# arguments (and the regression losses' weight=), and nn.functional offers them under the public names
from nn.functional import (  # noqa: E402
    _binary_cross_entropy, _binary_cross_entropy_with_logits, _cross_entropy, _huber_loss, _kl_div, _l1_loss,
    _mse_loss, _nll_loss, _smooth_l1_loss,
)


def _with_doc_of(inner):
    """Give the decorated PyTorch-signature form ``inner``'s description after its own (help() shows both)."""
    def decorate(outer):
        outer.__doc__ = f"{inspect.cleandoc(outer.__doc__)}\n\n{inspect.cleandoc(inner.__doc__ or '')}".rstrip()
        return outer
    return decorate


def _legacy_reduction(size_average, reduce, reduction, stacklevel=3):
    """The reduction to apply: ``reduction``, unless the legacy ``size_average`` or ``reduce`` is given (not
    None). Then PyTorch's rule decides, None counting as True: 'none' when ``reduce`` is False, else 'mean' when
    ``size_average`` is True and 'sum' when it is False; and a warning says so."""
    if size_average is None and reduce is None:
        return reduction
    for name, value in (("size_average", size_average), ("reduce", reduce)):
        # only bools: an int here is most likely an older call's positional ignore_index (PyTorch's order puts
        # size_average there), which would otherwise be dropped without a word
        if value is not None and not isinstance(value, (bool, np.bool_)):
            raise TypeError(f"{name} (a legacy argument) must be True, False or None, got {value!r}; pass the "
                            f"reduction (and ignore_index, which follows size_average in PyTorch's order) by "
                            f"keyword: reduction=..., ignore_index=...")
    if reduce is not None and not reduce:
        legacy = "none"
    else:
        legacy = "sum" if size_average is not None and not size_average else "mean"
    warnings.warn(f"size_average and reduce are deprecated; use reduction={legacy!r} instead", stacklevel=stacklevel)
    return legacy


def _check_not_scalar(function, input, expected):
    """PyTorch's class losses need a class dim: a 0-d input is refused by name (it would fail on a missing dim)."""
    if input.ndim == 0:
        raise ValueError(f"{function} expects an input of shape {expected}, got a 0-d input (shape ())")


# ---- the losses of nn.functional, with the legacy arguments --------------------------------------------------
@_with_doc_of(_cross_entropy)
def cross_entropy(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None, reduction="mean",
                  label_smoothing=0.0):
    """PyTorch's cross_entropy, with the legacy size_average and reduce."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    return _cross_entropy(input, target, weight, ignore_index, reduction, label_smoothing)


@_with_doc_of(_nll_loss)
def nll_loss(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None, reduction="mean"):
    """PyTorch's nll_loss, with the legacy size_average and reduce."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    return _nll_loss(input, target, weight, ignore_index, reduction)


def _weighted(function, losses, weight, input, reduction, mean_over_weight):
    """``losses`` (unreduced) times ``weight``, which must have the input's shape, reduced: 'mean' divides by the
    sum of the weights (``mean_over_weight``) or by the number of losses, as PyTorch's loss does."""
    F._check_reduction(reduction)
    if tuple(weight.shape) != input.shape:
        raise ValueError(f"{function}: weight of shape {tuple(weight.shape)} must have the input's shape {input.shape}")
    losses = losses * weight
    if reduction == "none":
        return losses
    if reduction == "sum":
        return losses.sum()
    return losses.sum() / weight.sum() if mean_over_weight else losses.mean()


@_with_doc_of(_mse_loss)
def mse_loss(input, target, size_average=None, reduce=None, reduction="mean", weight=None):
    """(input - target)**2, optionally times ``weight`` (the input's shape; then 'mean' is the weighted mean:
    the sum of the weighted losses over the sum of the weights)."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    if weight is None:
        return _mse_loss(input, target, reduction)
    return _weighted("mse_loss", _mse_loss(input, target, "none"), weight, input, reduction, True)


@_with_doc_of(_l1_loss)
def l1_loss(input, target, size_average=None, reduce=None, reduction="mean", weight=None):
    """|input - target|, optionally times ``weight`` (the input's shape; then 'mean' is the weighted mean)."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    if weight is None:
        return _l1_loss(input, target, reduction)
    return _weighted("l1_loss", _l1_loss(input, target, "none"), weight, input, reduction, True)


@_with_doc_of(_smooth_l1_loss)
def smooth_l1_loss(input, target, size_average=None, reduce=None, reduction="mean", beta=1.0):
    """PyTorch's smooth_l1_loss, with the legacy size_average and reduce."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    return _smooth_l1_loss(input, target, reduction, beta)


@_with_doc_of(_huber_loss)
def huber_loss(input, target, reduction="mean", delta=1.0, weight=None):
    """PyTorch's huber_loss, optionally times ``weight`` (the input's shape); with a weight, 'mean' is the
    mean of the weighted losses (PyTorch's rule, unlike mse_loss's)."""
    if weight is None:
        return _huber_loss(input, target, reduction, delta)
    return _weighted("huber_loss", _huber_loss(input, target, "none", delta), weight, input, reduction, False)


@_with_doc_of(_binary_cross_entropy)
def binary_cross_entropy(input, target, weight=None, size_average=None, reduce=None, reduction="mean"):
    """PyTorch's binary_cross_entropy, with the legacy size_average and reduce."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    return _binary_cross_entropy(input, target, weight, reduction)


@_with_doc_of(_binary_cross_entropy_with_logits)
def binary_cross_entropy_with_logits(input, target, weight=None, size_average=None, reduce=None, reduction="mean",
                                     pos_weight=None):
    """PyTorch's binary_cross_entropy_with_logits, with the legacy size_average and reduce."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    return _binary_cross_entropy_with_logits(input, target, weight, reduction, pos_weight)


@_with_doc_of(_kl_div)
def kl_div(input, target, size_average=None, reduce=None, reduction="mean", log_target=False):
    """PyTorch's kl_div, with the legacy size_average and reduce."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    return _kl_div(input, target, reduction, log_target)


# ---- distances ----------------------------------------------------------------------------------------------
def pairwise_distance(x1, x2, p=2.0, eps=1e-6, keepdim=False):
    """The p-norm of ``x1 - x2 + eps`` over the last dim (of the two broadcast together), as PyTorch computes
    it; ``eps`` keeps the gradient finite where x1 = x2. Any p of ``tl.norm``: inf, -inf and 0 included."""
    difference = x1 - x2 + eps
    if difference.dtype.kind != "f":  # integer inputs with an integer eps: the distance is still a float
        difference = difference.to(tl.get_default_dtype())
    return tl.norm(difference, p, dim=-1 if difference.ndim else None, keepdim=keepdim)


# ---- margin losses ---------------------------------------------------------------------------------------------
def margin_ranking_loss(input1, input2, target, margin=0, size_average=None, reduce=None, reduction="mean"):
    """max(0, -target * (input1 - input2) + margin): ``target`` 1 asks input1 to rank above input2 by
    ``margin``, -1 below. The three tensors have one number of dims and broadcast together."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    F._check_reduction(reduction)
    if not input1.ndim == input2.ndim == target.ndim:
        raise ValueError(f"margin_ranking_loss: input1, input2 and target must have the same number of dims, got "
                         f"shapes {input1.shape}, {input2.shape} and {target.shape}")
    return F._reduce((-target * (input1 - input2) + margin).clamp_min(0), reduction)


def hinge_embedding_loss(input, target, margin=1.0, size_average=None, reduce=None, reduction="mean"):
    """``input`` where target is 1 and max(0, margin - input) where it is -1, ``input`` holding distances (as in
    PyTorch, a target that is neither adds both terms). ``target`` broadcasts against ``input``."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    F._check_reduction(reduction)
    margin_term = tl.where(target != 1, (margin - input).clamp_min(0), 0.0)
    return F._reduce(margin_term + tl.where(target != -1, input, 0.0), reduction)


_COSINE_EPSILON = 1e-12  # added to each squared norm, as PyTorch does: a zero vector's cosine is 0, not NaN


def cosine_embedding_loss(input1, input2, target, margin=0, size_average=None, reduce=None, reduction="mean"):
    """1 - cos(input1, input2) where target is 1, max(0, cos - margin) where it is -1 (0 for any other target),
    the cosine taken along the last dim: (N, D) inputs with an (N,) target, or (D,) inputs with a 0-d one."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    F._check_reduction(reduction)
    if target.ndim > 1:
        raise ValueError(f"cosine_embedding_loss: target must be 0-d or 1-D (one per sample), got shape "
                         f"{target.shape}")
    if not input1.ndim == input2.ndim == target.ndim + 1:
        raise ValueError(f"cosine_embedding_loss: a {target.ndim}-D target needs {target.ndim + 1}-D inputs, got "
                         f"shapes {input1.shape} and {input2.shape}")
    dot = (input1 * input2).sum(-1)
    squared_norms = ((input1 * input1).sum(-1) + _COSINE_EPSILON) * ((input2 * input2).sum(-1) + _COSINE_EPSILON)
    cosine = dot / squared_norms.sqrt()
    losses = tl.where(target == 1, 1 - cosine, 0.0) + tl.where(target == -1, (cosine - margin).clamp_min(0), 0.0)
    return F._reduce(losses, reduction)


def soft_margin_loss(input, target, size_average=None, reduce=None, reduction="mean"):
    """log(1 + exp(-target * input)), the two-class logistic loss of targets 1 and -1, computed as
    -logsigmoid(target * input): no overflow for a confident wrong answer. ``target`` broadcasts."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    F._check_reduction(reduction)
    return F._reduce(-F.logsigmoid(input * target), reduction)


def multilabel_soft_margin_loss(input, target, weight=None, size_average=None, reduce=None, reduction="mean"):
    """Binary cross-entropy of sigmoid(input) against ``target`` (0 or 1 per class, classes along the last dim),
    times ``weight`` (broadcast), averaged over the classes: one loss per sample, then reduced."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    F._check_reduction(reduction)
    _check_not_scalar("multilabel_soft_margin_loss", input, "(C,) or (N, C)")
    losses = -(target * F.logsigmoid(input) + (1 - target) * F.logsigmoid(-input))
    if weight is not None:
        losses = losses * weight
    return F._reduce(losses.sum(-1) / input.shape[-1], reduction)


def _checked_class_indices(function, target, count, classes):
    """``target`` (an integer tensor of ``count`` class indices, 0-d or 1-D) flattened, on its device; every
    index in [0, classes) (one host read, skipped while a CUDA graph is captured)."""
    if target.dtype.kind not in "iu":
        raise TypeError(f"{function}: target must hold class indices (integers), got dtype {target.dtype}")
    if target.ndim > 1 or target.numel() != count:
        raise ValueError(f"{function}: target must be 0-d or 1-D with one class index per sample ({count}), got "
                         f"shape {target.shape}")
    labels = target.array.reshape(-1)
    if labels.size and not device_arrays.capturing(labels):
        bad = (labels < 0) | (labels >= classes)
        if bad.any():
            raise IndexError(f"{function}: target value {int(labels[bad][0])} is out of range for {classes} classes")
    return labels


def multi_margin_loss(input, target, p=1, margin=1.0, weight=None, size_average=None, reduce=None,
                      reduction="mean"):
    """The multi-class hinge loss: for each sample of class y, the sum over the other classes i of
    max(0, margin - input[y] + input[i])**p (times weight[y]), divided by the number of classes. ``input`` is
    (N, C), (C,) or 0-d (one class); the loss has the target's shape."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    F._check_reduction(reduction)
    if p not in (1, 2):
        raise ValueError(f"multi_margin_loss: p must be 1 or 2, got {p}")
    if input.ndim > 2 or (input.ndim and input.shape[-1] == 0):
        raise ValueError(f"multi_margin_loss expects an input of shape (N, C) or (C,) with C > 0 (or 0-d), got shape "
                         f"{input.shape}")
    flat = input.reshape(-1, input.shape[-1] if input.ndim else 1)
    samples, classes = flat.shape
    if weight is not None:
        if weight.ndim != 1:
            raise ValueError(f"multi_margin_loss: weight must be 1-D, got shape {weight.shape}")
        F._check_class_weight(weight, classes, input)
    labels = _checked_class_indices("multi_margin_loss", target, samples if input.ndim == 2 else 1, classes)
    xp = array_module(labels)
    rows = tl.Tensor._make(xp.arange(samples))
    picked = flat[rows, tl.Tensor._make(labels)].reshape(-1, 1)
    terms = (margin - picked + flat).clamp_min(0)
    if p == 2:
        terms = terms * terms
    if weight is not None:  # a constant, as in PyTorch (no gradient)
        terms = terms * tl.Tensor._make(weight.array[labels].reshape(-1, 1))
    own_class = tl.Tensor._make(xp.arange(classes) == labels.reshape(-1, 1))
    losses = tl.where(own_class, 0.0, terms).sum(1) / classes
    return F._reduce(losses.reshape(target.shape), reduction)


def _check_triplet(function, anchor, positive, negative, margin):
    if not margin > 0:
        raise ValueError(f"{function}: margin must be greater than 0, got {margin}")
    if not anchor.ndim == positive.ndim == negative.ndim:
        raise ValueError(f"{function}: anchor, positive and negative must have the same number of dims, got shapes "
                         f"{anchor.shape}, {positive.shape} and {negative.shape}")


def _triplet_losses(distance, anchor, positive, negative, margin, swap):
    """max(0, margin + d(anchor, positive) - d(anchor, negative)); with ``swap``, the negative's distance is the
    smaller of its distances to the anchor and to the positive."""
    negative_distance = distance(anchor, negative)
    if swap:
        negative_distance = tl.minimum(negative_distance, distance(positive, negative))
    return (margin + distance(anchor, positive) - negative_distance).clamp_min(0)


def triplet_margin_loss(anchor, positive, negative, margin=1.0, p=2, eps=1e-6, swap=False, size_average=None,
                        reduce=None, reduction="mean"):
    """The triplet loss with ``pairwise_distance(., ., p, eps)`` along the last dim (Balntas et al. 2016 for
    ``swap``): one loss per sample, then reduced."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    F._check_reduction(reduction)
    _check_triplet("triplet_margin_loss", anchor, positive, negative, margin)
    losses = _triplet_losses(lambda a, b: pairwise_distance(a, b, p, eps), anchor, positive, negative, margin, swap)
    return F._reduce(losses, reduction)


def triplet_margin_with_distance_loss(anchor, positive, negative, *, distance_function=None, margin=1.0, swap=False,
                                      reduction="mean"):
    """The triplet loss with any ``distance_function(x1, x2)`` giving one distance per sample (by default
    ``pairwise_distance``)."""
    F._check_reduction(reduction)
    _check_triplet("triplet_margin_with_distance_loss", anchor, positive, negative, margin)
    distance = pairwise_distance if distance_function is None else distance_function
    return F._reduce(_triplet_losses(distance, anchor, positive, negative, margin, swap), reduction)


# ---- likelihoods ---------------------------------------------------------------------------------------------
def poisson_nll_loss(input, target, log_input=True, full=False, size_average=None, eps=1e-8, reduce=None,
                     reduction="mean"):
    """The negative log-likelihood of ``target`` under Poisson(rate), less the terms of the target alone:
    exp(input) - target * input with ``log_input`` (input = log rate), else input - target * log(input + eps).
    ``full`` adds Stirling's approximation of log(target!), target log target - target + log(2 pi target) / 2,
    where target > 1."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    F._check_reduction(reduction)
    if log_input:
        losses = input.exp() - target * input
    else:
        losses = input - target * (input + eps).log()
    if full:
        above_one = target > 1
        safe = tl.where(above_one, target, 2.0)  # keeps log(0) out of the forward pass and the gradient
        stirling = safe * safe.log() - safe + 0.5 * (2 * math.pi * safe).log()
        losses = losses + tl.where(above_one, stirling, 0.0)
    return F._reduce(losses, reduction)


class _ClampKeepingGradient(Function):
    """max(x, low) whose gradient is that of x itself, also where x < low: gaussian_nll_loss clamps the variance
    for the value only, as PyTorch does."""

    def forward(self, x, low):
        return array_module(x).maximum(x, low)

    def backward(self, g):
        return g, None


def _variance_for_input(var, input):
    """gaussian_nll_loss's ``var`` as a tensor that broadcasts to the input: the input's shape (one variance per
    element), that shape less its last dim (one per sample, given a trailing dim of 1 here) or with one dim of
    size 1; a number is one variance for every element."""
    if isinstance(var, numbers.Real) and not isinstance(var, bool):
        if var < 0:
            raise ValueError(f"gaussian_nll_loss: var must be non-negative, got {var}")
        return tl.full_like(input, var)
    if not isinstance(var, tl.Tensor):
        raise TypeError(f"gaussian_nll_loss: var must be a Tensor or a number, got {type(var).__name__}")
    if not device_arrays.capturing(var.array) and bool((var.array < 0).any()):
        raise ValueError("gaussian_nll_loss: var must be non-negative, got a negative entry")
    if var.shape == input.shape:
        return var
    if var.shape == input.shape[:-1]:
        return var.unsqueeze(-1)
    differing = [i for i, (a, b) in enumerate(zip(input.shape, var.shape)) if a != b]
    if var.ndim == input.ndim and len(differing) == 1 and var.shape[differing[0]] == 1:
        return var
    raise ValueError(f"gaussian_nll_loss: var of shape {var.shape} does not fit the input shape {input.shape}: "
                     f"expected the input's shape, that shape without its last dim, or one dim of size 1")


def gaussian_nll_loss(input, target, var, full=False, eps=1e-6, reduction="mean"):
    """The negative log-likelihood of ``target`` under Normal(input, var), less log(2 pi) / 2 unless ``full``:
    (log(var) + (input - target)**2 / var) / 2, with var clamped to >= ``eps`` for the value (the gradient is
    var's own, as in PyTorch)."""
    var = _variance_for_input(var, input)
    F._check_reduction(reduction)
    var = _ClampKeepingGradient.apply(var, eps)
    losses = 0.5 * (var.log() + (input - target) ** 2 / var)
    if full:
        losses = losses + 0.5 * math.log(2 * math.pi)
    return F._reduce(losses, reduction)


# ---- modules ----------------------------------------------------------------------------------------------------
class _Loss(Module):
    """A loss module: its ``reduction`` ('none', 'mean', 'sum'; or those of ``allowed``), checked, or the one the
    legacy ``size_average``/``reduce`` give."""

    def __init__(self, size_average=None, reduce=None, reduction="mean", allowed=F._REDUCTIONS):
        super().__init__()
        reduction = _legacy_reduction(size_average, reduce, reduction, stacklevel=4)
        F._check_reduction(reduction, allowed)
        self.reduction = reduction


class _WeightedLoss(_Loss):
    """A loss with an optional per-class ``weight`` tensor, held as a buffer."""

    def __init__(self, weight=None, size_average=None, reduce=None, reduction="mean"):
        super().__init__(size_average, reduce, reduction)
        self.register_buffer("weight", weight)


class CrossEntropyLoss(_WeightedLoss):
    def __init__(self, weight=None, size_average=None, ignore_index=-100, reduce=None, reduction="mean",
                 label_smoothing=0.0):
        super().__init__(weight, size_average, reduce, reduction)
        self.ignore_index, self.label_smoothing = ignore_index, label_smoothing

    def forward(self, input, target):
        return cross_entropy(input, target, self.weight, ignore_index=self.ignore_index, reduction=self.reduction,
                             label_smoothing=self.label_smoothing)


class NLLLoss(_WeightedLoss):
    def __init__(self, weight=None, size_average=None, ignore_index=-100, reduce=None, reduction="mean"):
        super().__init__(weight, size_average, reduce, reduction)
        self.ignore_index = ignore_index

    def forward(self, input, target):
        return nll_loss(input, target, self.weight, ignore_index=self.ignore_index, reduction=self.reduction)


class MSELoss(_Loss):
    def forward(self, input, target):
        return mse_loss(input, target, reduction=self.reduction)


class L1Loss(_Loss):
    def forward(self, input, target):
        return l1_loss(input, target, reduction=self.reduction)


class SmoothL1Loss(_Loss):
    def __init__(self, size_average=None, reduce=None, reduction="mean", beta=1.0):
        super().__init__(size_average, reduce, reduction)
        if beta < 0:
            raise ValueError(f"SmoothL1Loss beta must be >= 0, got {beta}")
        self.beta = beta

    def forward(self, input, target):
        return smooth_l1_loss(input, target, reduction=self.reduction, beta=self.beta)


class HuberLoss(_Loss):
    def __init__(self, reduction="mean", delta=1.0):
        super().__init__(reduction=reduction)
        if delta <= 0:
            raise ValueError(f"HuberLoss delta must be > 0, got {delta}")
        self.delta = delta

    def forward(self, input, target):
        return huber_loss(input, target, self.reduction, self.delta)


class BCELoss(_WeightedLoss):
    def forward(self, input, target):
        return binary_cross_entropy(input, target, self.weight, reduction=self.reduction)


class BCEWithLogitsLoss(_WeightedLoss):
    def __init__(self, weight=None, size_average=None, reduce=None, reduction="mean", pos_weight=None):
        super().__init__(weight, size_average, reduce, reduction)
        self.register_buffer("pos_weight", pos_weight)

    def forward(self, input, target):
        return binary_cross_entropy_with_logits(input, target, self.weight, reduction=self.reduction,
                                                pos_weight=self.pos_weight)


class KLDivLoss(_Loss):
    def __init__(self, size_average=None, reduce=None, reduction="mean", log_target=False):
        super().__init__(size_average, reduce, reduction, F._KL_REDUCTIONS)
        self.log_target = log_target

    def forward(self, input, target):
        return kl_div(input, target, reduction=self.reduction, log_target=self.log_target)


class MarginRankingLoss(_Loss):
    def __init__(self, margin=0.0, size_average=None, reduce=None, reduction="mean"):
        super().__init__(size_average, reduce, reduction)
        self.margin = margin

    def forward(self, input1, input2, target):
        return margin_ranking_loss(input1, input2, target, self.margin, reduction=self.reduction)


class HingeEmbeddingLoss(_Loss):
    def __init__(self, margin=1.0, size_average=None, reduce=None, reduction="mean"):
        super().__init__(size_average, reduce, reduction)
        self.margin = margin

    def forward(self, input, target):
        return hinge_embedding_loss(input, target, self.margin, reduction=self.reduction)


class CosineEmbeddingLoss(_Loss):
    def __init__(self, margin=0.0, size_average=None, reduce=None, reduction="mean"):
        super().__init__(size_average, reduce, reduction)
        self.margin = margin

    def forward(self, input1, input2, target):
        return cosine_embedding_loss(input1, input2, target, self.margin, reduction=self.reduction)


class SoftMarginLoss(_Loss):
    def forward(self, input, target):
        return soft_margin_loss(input, target, reduction=self.reduction)


class MultiLabelSoftMarginLoss(_WeightedLoss):
    def forward(self, input, target):
        return multilabel_soft_margin_loss(input, target, self.weight, reduction=self.reduction)


class MultiMarginLoss(_WeightedLoss):
    def __init__(self, p=1, margin=1.0, weight=None, size_average=None, reduce=None, reduction="mean"):
        if p not in (1, 2):
            raise ValueError(f"MultiMarginLoss: p must be 1 or 2, got {p}")
        super().__init__(weight, size_average, reduce, reduction)
        self.p, self.margin = p, margin

    def forward(self, input, target):
        return multi_margin_loss(input, target, self.p, self.margin, self.weight, reduction=self.reduction)


class TripletMarginLoss(_Loss):
    def __init__(self, margin=1.0, p=2.0, eps=1e-6, swap=False, size_average=None, reduce=None, reduction="mean"):
        super().__init__(size_average, reduce, reduction)
        if not margin > 0:
            raise ValueError(f"TripletMarginLoss: margin must be greater than 0, got {margin}")
        self.margin, self.p, self.eps, self.swap = margin, p, eps, swap

    def forward(self, anchor, positive, negative):
        return triplet_margin_loss(anchor, positive, negative, self.margin, self.p, self.eps, self.swap,
                                   reduction=self.reduction)


class PairwiseDistance(Module):
    """``pairwise_distance(x1, x2, p, eps, keepdim)``: the p-norm of x1 - x2 + eps along the last dim."""

    def __init__(self, p=2.0, eps=1e-6, keepdim=False):
        super().__init__()
        self.norm, self.eps, self.keepdim = p, eps, keepdim  # ``norm``: PyTorch's attribute name for p

    def forward(self, x1, x2):
        return pairwise_distance(x1, x2, self.norm, self.eps, self.keepdim)


class TripletMarginWithDistanceLoss(_Loss):
    """The triplet loss with ``distance_function`` (by default a PairwiseDistance, a submodule as in PyTorch)."""

    def __init__(self, *, distance_function=None, margin=1.0, swap=False, reduction="mean"):
        super().__init__(reduction=reduction)
        if not margin > 0:
            raise ValueError(f"TripletMarginWithDistanceLoss: margin must be greater than 0, got {margin}")
        self.distance_function = PairwiseDistance() if distance_function is None else distance_function
        self.margin, self.swap = margin, swap

    def forward(self, anchor, positive, negative):
        return triplet_margin_with_distance_loss(anchor, positive, negative, distance_function=self.distance_function,
                                                 margin=self.margin, swap=self.swap, reduction=self.reduction)


class PoissonNLLLoss(_Loss):
    def __init__(self, log_input=True, full=False, size_average=None, eps=1e-8, reduce=None, reduction="mean"):
        super().__init__(size_average, reduce, reduction)
        self.log_input, self.full, self.eps = log_input, full, eps

    def forward(self, log_input, target):
        return poisson_nll_loss(log_input, target, self.log_input, self.full, eps=self.eps, reduction=self.reduction)


class GaussianNLLLoss(_Loss):
    def __init__(self, *, full=False, eps=1e-6, reduction="mean"):
        super().__init__(reduction=reduction)
        self.full, self.eps = full, eps

    def forward(self, input, target, var):
        return gaussian_nll_loss(input, target, var, self.full, self.eps, self.reduction)
