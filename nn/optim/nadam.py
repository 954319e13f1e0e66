"""NAdam: Adam with Nesterov momentum."""

from __future__ import annotations

import numpy as np

from nn.optim.adam import update_moments
from nn.optim.optimizer import Optimizer, check_betas, check_non_negative, implementation_flags, learning_rate
from tensorlib.device import array_module
from tensorlib.tensor import get_default_dtype


class NAdam(Optimizer):
    """PyTorch's NAdam (Dozat, 2016). At step ``t`` (from 1) the momentum coefficient is
    ``mu_t = beta1 * (1 - 0.96 ** (t * momentum_decay) / 2)`` and ``mu_product`` (kept in the state) is
    ``mu_1 * ... * mu_t``, rounded to float32 at each step unless the default dtype is float64 (PyTorch keeps it
    as a 0-d tensor of the default dtype, whatever the parameters' dtype). ``m`` and ``v`` average the gradient
    and its square as in Adam; ``denom = sqrt(v / (1 - beta2**t)) + eps`` and
    ``p -= lr * (1 - mu_t) / (1 - mu_product) * g / denom + lr * mu_{t+1} / (1 - mu_product * mu_{t+1}) * m / denom``.

    ``weight_decay`` adds ``weight_decay * p`` to the gradient, or with ``decoupled_weight_decay`` shrinks
    ``p *= 1 - lr * weight_decay`` first (NAdamW); ``maximize`` ascends.
    """

    _host_state = ("step", "mu_product")

    def __init__(self, params, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, momentum_decay=4e-3,
                 decoupled_weight_decay=False, *, foreach=None, maximize=False, capturable=False,
                 differentiable=False):
        lr = learning_rate(lr)
        check_non_negative(lr=lr, eps=eps, weight_decay=weight_decay, momentum_decay=momentum_decay)
        defaults = dict(lr=lr, betas=check_betas(betas), eps=eps, weight_decay=weight_decay,
                        momentum_decay=momentum_decay, decoupled_weight_decay=decoupled_weight_decay,
                        maximize=maximize, **implementation_flags(foreach=foreach, capturable=capturable,
                                                                  differentiable=differentiable))
        super().__init__(params, defaults)

    def _scalars(self, param, group):
        state = self.state[param]
        state["step"] = step = state.get("step", 0) + 1
        (beta1, beta2), lr, momentum_decay = group["betas"], group["lr"], group["momentum_decay"]
        mu = beta1 * (1.0 - 0.5 * 0.96 ** (step * momentum_decay))
        mu_next = beta1 * (1.0 - 0.5 * 0.96 ** ((step + 1) * momentum_decay))
        mu_product = state.get("mu_product", 1.0)
        if get_default_dtype() == np.float32:  # mu rounded to float32 and multiplied in float32, as PyTorch
            mu_product = float(np.float32(mu_product) * np.float32(mu))
        else:
            mu_product *= mu
        state["mu_product"] = mu_product
        return {"grad_step": lr * (1.0 - mu) / (1.0 - mu_product),
                "avg_step": lr * mu_next / (1.0 - mu_product * mu_next),
                "bias_correction2": 1 - beta2**step, "decay": 1 - lr * group["weight_decay"],
                "one_minus_beta1": 1 - beta1, "beta2": beta2, "one_minus_beta2": 1 - beta2}

    def _update(self, param, grad, group, scalars):
        xp = array_module(param.array)
        grad, exp_avg, exp_avg_sq = update_moments(param, grad, group, scalars, self.state[param])
        denom = xp.sqrt(exp_avg_sq / scalars["bias_correction2"]) + group["eps"]
        param.array -= scalars["grad_step"] * (grad / denom)
        param.array -= scalars["avg_step"] * (exp_avg / denom)
