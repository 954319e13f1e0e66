"""Adagrad: each coordinate's step divided by the root of the sum of its squared gradients so far."""

from __future__ import annotations

from nn.optim.optimizer import Optimizer, check_non_negative, directed_gradient, implementation_flags, learning_rate
from tensorlib.device import array_module


class Adagrad(Optimizer):
    """PyTorch's Adagrad: ``sum += g**2``; ``p -= clr * g / (sqrt(sum) + eps)`` with the decayed learning rate
    ``clr = lr / (1 + (t - 1) * lr_decay)`` at step ``t`` (from 1). ``sum`` starts at
    ``initial_accumulator_value``; ``weight_decay`` adds ``weight_decay * p`` to the gradient; ``maximize``
    ascends. As in PyTorch, the state ("step" 0 and "sum") exists from construction on.
    """

    def __init__(self, params, lr=1e-2, lr_decay=0, weight_decay=0, initial_accumulator_value=0, eps=1e-10,
                 foreach=None, *, maximize=False, differentiable=False, fused=None):
        lr = learning_rate(lr)
        check_non_negative(lr=lr, lr_decay=lr_decay, weight_decay=weight_decay,
                           initial_accumulator_value=initial_accumulator_value, eps=eps)
        defaults = dict(lr=lr, lr_decay=lr_decay, eps=eps, weight_decay=weight_decay,
                        initial_accumulator_value=initial_accumulator_value, maximize=maximize,
                        **implementation_flags(foreach=foreach, differentiable=differentiable, fused=fused))
        super().__init__(params, defaults)
        for group in self.param_groups:
            for param in group["params"]:
                self._init_state(param, group)

    def _init_state(self, param, group):
        state = self.state[param]
        if "sum" not in state:
            state["step"] = 0
            state["sum"] = array_module(param.array).full_like(param.array, group["initial_accumulator_value"])

    def _scalars(self, param, group):
        self._init_state(param, group)  # a group added after construction
        state = self.state[param]
        state["step"] = step = state["step"] + 1
        return {"clr": group["lr"] / (1 + (step - 1) * group["lr_decay"])}

    def _update(self, param, grad, group, scalars):
        xp = array_module(param.array)
        grad = directed_gradient(param, grad, group)
        state_sum = self.state[param]["sum"]
        state_sum += grad * grad
        param.array -= scalars["clr"] * (grad / (xp.sqrt(state_sum) + group["eps"]))
