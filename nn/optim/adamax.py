"""Adamax: Adam with the infinity norm of past gradients in place of the root mean square."""

from __future__ import annotations

from nn.optim.optimizer import (
    Optimizer, check_betas, check_non_negative, directed_gradient, implementation_flags, learning_rate,
)
from tensorlib.device import array_module


class Adamax(Optimizer):
    """PyTorch's Adamax (Kingma & Ba, section 7): ``m`` averages the gradient as in Adam, ``u = max(beta2 * u,
    |g| + eps)``, and ``p -= lr / (1 - beta1**t) * m / u`` at step ``t`` (from 1). ``weight_decay`` adds
    ``weight_decay * p`` to the gradient; ``maximize`` ascends.
    """

    def __init__(self, params, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, foreach=None, *,
                 maximize=False, differentiable=False, capturable=False):
        lr = learning_rate(lr)
        check_non_negative(lr=lr, eps=eps, weight_decay=weight_decay)
        defaults = dict(lr=lr, betas=check_betas(betas), eps=eps, weight_decay=weight_decay, maximize=maximize,
                        **implementation_flags(foreach=foreach, differentiable=differentiable, capturable=capturable))
        super().__init__(params, defaults)

    def _scalars(self, param, group):
        state = self.state[param]
        state["step"] = step = state.get("step", 0) + 1
        beta1, beta2 = group["betas"]  # OneCycleLR and CyclicLR cycle beta1
        return {"step_size": group["lr"] / (1 - beta1**step), "one_minus_beta1": 1 - beta1, "beta2": beta2}

    def _update(self, param, grad, group, scalars):
        xp = array_module(param.array)
        state = self.state[param]
        if "exp_avg" not in state:
            state["exp_avg"] = xp.zeros_like(param.array)
            state["exp_inf"] = xp.zeros_like(param.array)
        grad = directed_gradient(param, grad, group)
        exp_avg, exp_inf = state["exp_avg"], state["exp_inf"]
        exp_avg += scalars["one_minus_beta1"] * (grad - exp_avg)
        exp_inf *= scalars["beta2"]
        xp.maximum(exp_inf, xp.abs(grad) + group["eps"], out=exp_inf)
        param.array -= scalars["step_size"] * (exp_avg / exp_inf)
