"""Adadelta: steps scaled by the ratio of running RMS values of past updates and of past gradients."""

from __future__ import annotations

from nn.optim.optimizer import Optimizer, check_non_negative, directed_gradient, implementation_flags, learning_rate
from tensorlib.device import array_module


class Adadelta(Optimizer):
    """PyTorch's Adadelta (Zeiler, 2012): ``v = rho * v + (1 - rho) * g**2``;
    ``delta = sqrt(u + eps) / sqrt(v + eps) * g``; ``u = rho * u + (1 - rho) * delta**2``; ``p -= lr * delta``.
    ``weight_decay`` adds ``weight_decay * p`` to the gradient; ``maximize`` ascends.
    """

    def __init__(self, params, lr=1.0, rho=0.9, eps=1e-6, weight_decay=0, foreach=None, *, capturable=False,
                 maximize=False, differentiable=False):
        lr = learning_rate(lr)
        check_non_negative(lr=lr, eps=eps, weight_decay=weight_decay)
        if not 0 <= rho <= 1:
            raise ValueError(f"Invalid rho value: {rho!r} (expected a number in [0, 1])")
        defaults = dict(lr=lr, rho=rho, eps=eps, weight_decay=weight_decay, maximize=maximize,
                        **implementation_flags(capturable=capturable, foreach=foreach, differentiable=differentiable))
        super().__init__(params, defaults)

    def _scalars(self, param, group):
        state = self.state[param]
        state["step"] = state.get("step", 0) + 1
        return {"lr": group["lr"]}

    def _update(self, param, grad, group, scalars):
        xp = array_module(param.array)
        rho, eps = group["rho"], group["eps"]
        state = self.state[param]
        if "square_avg" not in state:
            state["square_avg"] = xp.zeros_like(param.array)
            state["acc_delta"] = xp.zeros_like(param.array)
        grad = directed_gradient(param, grad, group)
        square_avg, acc_delta = state["square_avg"], state["acc_delta"]
        square_avg *= rho
        square_avg += (1 - rho) * (grad * grad)
        delta = xp.sqrt(acc_delta + eps) / xp.sqrt(square_avg + eps) * grad
        acc_delta *= rho
        acc_delta += (1 - rho) * (delta * delta)
        param.array -= scalars["lr"] * delta
