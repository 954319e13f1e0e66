"""RMSprop: the gradient divided by a running root mean square of its recent values."""

from __future__ import annotations

from kernels import optim as optim_kernels
from nn.optim.optimizer import Optimizer, check_non_negative, directed_gradient, implementation_flags, learning_rate
from tensorlib.device import array_module


class RMSprop(Optimizer):
    """PyTorch's RMSprop: ``v = alpha * v + (1 - alpha) * g**2``; ``avg = sqrt(v) + eps``, or with ``centered``
    ``sqrt(v - gbar**2) + eps`` where ``gbar`` averages ``g`` the same way; ``p -= lr * g / avg``, or with
    momentum ``buf = momentum * buf + g / avg`` and ``p -= lr * buf``.
    """

    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0, momentum=0, centered=False,
                 capturable=False, foreach=None, maximize=False, differentiable=False):
        lr = learning_rate(lr)
        check_non_negative(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay, momentum=momentum)
        defaults = dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay, momentum=momentum,
                        centered=centered, maximize=maximize,
                        **implementation_flags(capturable=capturable, foreach=foreach, differentiable=differentiable))
        super().__init__(params, defaults)

    def _scalars(self, param, group):
        state = self.state[param]
        state["step"] = state.get("step", 0) + 1
        return {"lr": group["lr"], "momentum": group["momentum"]}

    def _update(self, param, grad, group, scalars):
        xp = array_module(param.array)
        alpha, momentum = group["alpha"], group["momentum"]
        state = self.state[param]
        if "square_avg" not in state:
            state["square_avg"] = xp.zeros_like(param.array)
            if momentum != 0:
                state["momentum_buffer"] = xp.zeros_like(param.array)
            if group["centered"]:
                state["grad_avg"] = xp.zeros_like(param.array)
        if (not group["maximize"] and not group["centered"]
                and optim_kernels.rmsprop(param.array, grad, state["square_avg"], state["momentum_buffer"]
                                          if momentum != 0 else None, scalars["lr"], alpha, group["eps"],
                                          group["weight_decay"], scalars["momentum"])):
            return  # one pass on the CPU (kernels/optim.py), bit-equal to the expression below
        grad = directed_gradient(param, grad, group)
        square_avg = state["square_avg"]
        square_avg *= alpha
        square_avg += (1 - alpha) * grad * grad
        if group["centered"]:
            grad_avg = state["grad_avg"]
            grad_avg += (1 - alpha) * (grad - grad_avg)
            avg = xp.sqrt(square_avg - grad_avg * grad_avg)
        else:
            avg = xp.sqrt(square_avg)
        avg += group["eps"]
        if momentum != 0:
            buf = state["momentum_buffer"]
            buf *= scalars["momentum"]  # OneCycleLR cycles it
            buf += grad / avg
            param.array -= scalars["lr"] * buf
        else:
            param.array -= scalars["lr"] * grad / avg
