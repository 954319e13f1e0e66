"""RAdam: Adam whose adaptive step is switched on, and scaled, by the variance of its adaptive rate."""

from __future__ import annotations

import math

from nn.optim.adam import update_moments
from nn.optim.optimizer import Optimizer, check_betas, check_non_negative, implementation_flags, learning_rate
from tensorlib.device import array_module


class RAdam(Optimizer):
    """PyTorch's RAdam (Liu et al., 2019). With ``rho_inf = 2 / (1 - beta2) - 1`` and, at step ``t`` (from 1),
    ``rho_t = rho_inf - 2 t beta2**t / (1 - beta2**t)``: while ``rho_t <= 5`` the step is SGD with momentum,
    ``p -= lr * m_hat``; after, ``p -= lr * m_hat * r_t * sqrt(1 - beta2**t) / (sqrt(v) + eps)`` with the
    rectification ``r_t = sqrt((rho_t - 4) (rho_t - 2) rho_inf / ((rho_inf - 4) (rho_inf - 2) rho_t))``.
    ``m_hat = m / (1 - beta1**t)``; ``m`` and ``v`` average the gradient and its square as in Adam.

    ``weight_decay`` adds ``weight_decay * p`` to the gradient, or with ``decoupled_weight_decay`` shrinks
    ``p *= 1 - lr * weight_decay`` first (RAdamW); ``maximize`` ascends.
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, decoupled_weight_decay=False,
                 *, foreach=None, maximize=False, capturable=False, differentiable=False):
        lr = learning_rate(lr)
        check_non_negative(lr=lr, eps=eps, weight_decay=weight_decay)
        defaults = dict(lr=lr, betas=check_betas(betas), eps=eps, weight_decay=weight_decay,
                        decoupled_weight_decay=decoupled_weight_decay, maximize=maximize,
                        **implementation_flags(foreach=foreach, capturable=capturable, differentiable=differentiable))
        super().__init__(params, defaults)

    def _scalars(self, param, group):
        state = self.state[param]
        state["step"] = step = state.get("step", 0) + 1
        (beta1, beta2), lr = group["betas"], group["lr"]
        bias_correction2 = 1 - beta2**step
        rho_inf = 2 / (1 - beta2) - 1
        rho_t = rho_inf - 2 * step * beta2**step / bias_correction2
        rectified = rho_t > 5.0
        rect = math.sqrt((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t)) \
            if rectified else 0.0
        # the choice between the two steps is a number too, so that a captured step makes it on the device
        # float(lr): PyTorch multiplies the update by lr itself, so a float32 lr (see learning_rate) enters at its
        # value, not through float32 arithmetic as in the weight decay
        return {"step_size": float(lr) / (1 - beta1**step), "rectified": float(rectified),
                "adaptive_scale": rect * bias_correction2**0.5, "decay": 1 - lr * group["weight_decay"],
                "one_minus_beta1": 1 - beta1, "beta2": beta2, "one_minus_beta2": 1 - beta2}

    def _update(self, param, grad, group, scalars):
        xp = array_module(param.array)
        _, exp_avg, exp_avg_sq = update_moments(param, grad, group, scalars, self.state[param])
        adaptive = scalars["adaptive_scale"] / (xp.sqrt(exp_avg_sq) + group["eps"])
        # where, not a product with the flag: before rectification the adaptive rate may be inf (eps=0)
        param.array -= scalars["step_size"] * exp_avg * xp.where(scalars["rectified"] != 0, adaptive, 1.0)
