"""Adam and AdamW (Adam with weight decay decoupled from the gradient)."""

from __future__ import annotations

from kernels import optim as optim_kernels
from nn.optim.optimizer import (
    Optimizer, check_betas, check_non_negative, directed_gradient, implementation_flags, learning_rate,
)
from tensorlib.device import array_module


def update_moments(param, grad, group, scalars, state):
    """The steps the Adam family shares, in PyTorch's order: negate the gradient (``maximize``), apply the
    weight decay (to the gradient, or decoupled to the parameter), then move the averages ``state["exp_avg"]``
    towards the gradient and ``state["exp_avg_sq"]`` towards its square (created as zeros on first use).
    Returns the gradient as used (negated, decayed) and the two averages."""
    xp = array_module(param.array)
    if "exp_avg" not in state:
        state["exp_avg"] = xp.zeros_like(param.array)
        state["exp_avg_sq"] = xp.zeros_like(param.array)
    if group["decoupled_weight_decay"]:
        grad = -grad if group["maximize"] else grad
        if group["weight_decay"] != 0:
            param.array *= scalars["decay"]
    else:
        grad = directed_gradient(param, grad, group)
    exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
    exp_avg += scalars["one_minus_beta1"] * (grad - exp_avg)  # lerp towards grad, as PyTorch computes it
    exp_avg_sq *= scalars["beta2"]
    exp_avg_sq += scalars["one_minus_beta2"] * grad * grad
    return grad, exp_avg, exp_avg_sq


class Adam(Optimizer):
    """PyTorch's Adam: moving averages ``m`` of the gradient and ``v`` of its square, bias-corrected with the
    step count ``t`` (from 1): ``p -= lr / (1 - beta1**t) * m / (sqrt(v) / sqrt(1 - beta2**t) + eps)``.

    ``amsgrad`` divides by the running maximum of ``v`` instead. ``weight_decay`` adds ``weight_decay * p`` to
    the gradient (L2), or with ``decoupled_weight_decay`` shrinks ``p *= 1 - lr * weight_decay`` (AdamW).
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, amsgrad=False, *,
                 foreach=None, maximize=False, capturable=False, differentiable=False, fused=None,
                 decoupled_weight_decay=False):
        lr = learning_rate(lr)
        check_non_negative(lr=lr, eps=eps, weight_decay=weight_decay)
        defaults = dict(lr=lr, betas=check_betas(betas), eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
                        maximize=maximize, **implementation_flags(foreach=foreach, capturable=capturable,
                                                                  differentiable=differentiable, fused=fused),
                        decoupled_weight_decay=decoupled_weight_decay)
        super().__init__(params, defaults)

    def _scalars(self, param, group):
        state = self.state[param]
        state["step"] = step = state.get("step", 0) + 1
        (beta1, beta2), lr = group["betas"], group["lr"]
        return {"step_size": lr / (1 - beta1**step), "bias_correction2_sqrt": (1 - beta2**step) ** 0.5,
                "decay": 1 - lr * group["weight_decay"], "one_minus_beta1": 1 - beta1,  # OneCycleLR cycles beta1
                "beta2": beta2, "one_minus_beta2": 1 - beta2}

    def _update(self, param, grad, group, scalars):
        xp = array_module(param.array)
        weight_decay = group["weight_decay"]
        state = self.state[param]
        if "exp_avg" not in state:
            state["exp_avg"] = xp.zeros_like(param.array)
            state["exp_avg_sq"] = xp.zeros_like(param.array)
            if group["amsgrad"]:
                state["max_exp_avg_sq"] = xp.zeros_like(param.array)
        if (not group["maximize"] and not group["amsgrad"]
                and optim_kernels.adam(param.array, grad, state["exp_avg"], state["exp_avg_sq"], scalars["step_size"],
                                       scalars["bias_correction2_sqrt"], group["eps"], scalars["one_minus_beta1"],
                                       scalars["beta2"], scalars["one_minus_beta2"], weight_decay, scalars["decay"],
                                       group["decoupled_weight_decay"])):
            return  # one pass on the CPU (kernels/optim.py), bit-equal to the expression below
        _, exp_avg, exp_avg_sq = update_moments(param, grad, group, scalars, state)
        if group["amsgrad"]:
            xp.maximum(state["max_exp_avg_sq"], exp_avg_sq, out=state["max_exp_avg_sq"])
            exp_avg_sq = state["max_exp_avg_sq"]
        denom = xp.sqrt(exp_avg_sq) / scalars["bias_correction2_sqrt"] + group["eps"]
        param.array -= scalars["step_size"] * exp_avg / denom


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter): ``p *= 1 - lr * weight_decay`` before the Adam
    step, so the decay is not rescaled by the adaptive denominator."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, amsgrad=False, *,
                 maximize=False, foreach=None, capturable=False, differentiable=False, fused=None):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, foreach=foreach, maximize=maximize,
                         capturable=capturable, differentiable=differentiable, fused=fused,
                         decoupled_weight_decay=True)
