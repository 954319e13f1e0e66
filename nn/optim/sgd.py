"""Stochastic gradient descent with momentum, dampening, Nesterov momentum and L2 weight decay."""

from __future__ import annotations

from kernels import optim as optim_kernels
from nn.optim.optimizer import Optimizer, check_non_negative, directed_gradient, implementation_flags, learning_rate


class SGD(Optimizer):
    """PyTorch's SGD: ``g = grad + weight_decay * p``; with momentum, ``buf = momentum * buf + (1 - dampening) * g``
    (``buf = g`` on the first step, undamped) and ``g = g + momentum * buf`` (Nesterov) or ``g = buf``;
    then ``p -= lr * g``. ``maximize`` ascends instead.
    """

    def __init__(self, params, lr=1e-3, momentum=0, dampening=0, weight_decay=0, nesterov=False, *, maximize=False,
                 foreach=None, differentiable=False, fused=None):
        lr = learning_rate(lr)
        check_non_negative(lr=lr, momentum=momentum, weight_decay=weight_decay)
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError(
                f"Nesterov momentum requires a momentum and zero dampening, got momentum={momentum!r}, "
                f"dampening={dampening!r}"
            )
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                        nesterov=nesterov, maximize=maximize,
                        **implementation_flags(foreach=foreach, differentiable=differentiable, fused=fused))
        self._buffers_made = {}  # id(param) -> the step (_step_serial) that made its momentum buffer
        super().__init__(params, defaults)

    def _scalars(self, param, group):
        return {"lr": group["lr"], "momentum": group["momentum"]}

    def _momentum_buffer(self, param):
        """``param``'s momentum buffer, or None if it has none or this step made it: as in PyTorch, a parameter
        listed twice in a group starts each listing from its own gradient on the step that makes its buffer
        (the last listing's is kept)."""
        buf = self.state[param].get("momentum_buffer")
        if buf is not None and self._buffers_made.get(id(param)) == self._step_serial:
            return None
        return buf

    def _update(self, param, grad, group, scalars):
        # plain SGD keeps no state (not even an empty entry), as in PyTorch
        buf = self._momentum_buffer(param) if group["momentum"] != 0 else None
        if (buf is not None and not group["maximize"]
                and optim_kernels.sgd_momentum(param.array, grad, buf, scalars["lr"], scalars["momentum"],
                                               group["dampening"], group["weight_decay"], group["nesterov"])):
            return  # one pass on the CPU (kernels/optim.py), bit-equal to the expression below
        grad = directed_gradient(param, grad, group)
        if group["momentum"] != 0:
            momentum = scalars["momentum"]  # OneCycleLR cycles it
            if buf is None:
                buf = self.state[param]["momentum_buffer"] = grad.copy()
                self._buffers_made[id(param)] = self._step_serial
            else:
                buf *= momentum
                buf += (1 - group["dampening"]) * grad
            grad = grad + momentum * buf if group["nesterov"] else buf
        param.array -= scalars["lr"] * grad
