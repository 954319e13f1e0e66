"""Weight averaging: stochastic weight averaging (SWA) and exponential moving averages (EMA) of a model.

    swa_model = nn.optim.swa_utils.AveragedModel(model)
    swa_scheduler = nn.optim.swa_utils.SWALR(optimizer, swa_lr=0.05)
    for epoch in range(epochs):
        train_one_epoch(model, optimizer)
        if epoch >= swa_start:
            swa_model.update_parameters(model)
            swa_scheduler.step()
    nn.optim.swa_utils.update_bn(train_loader, swa_model)   # batch-norm statistics for the averaged weights

``AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(0.999))`` keeps an EMA instead.
"""

from __future__ import annotations

import copy
import itertools
import math

import numpy as np

import tensorlib as tl
from nn.layers import _BatchNorm
from nn.module import Module
from nn.optim.lr_scheduler import LRScheduler, _check_optimizer, _per_group, _warn_if_called_outside_step
from tensorlib.device import move

__all__ = ["AveragedModel", "SWALR", "get_ema_avg_fn", "get_ema_multi_avg_fn", "get_swa_avg_fn",
           "get_swa_multi_avg_fn", "update_bn"]


def get_ema_multi_avg_fn(decay: float = 0.999):
    """An exponential moving average for ``AveragedModel(multi_avg_fn=...)``: each averaged tensor moves
    ``1 - decay`` of the way to the model's, in place (``lerp`` for floating tensors, as PyTorch; integer
    tensors get ``ema * decay + model * (1 - decay)``, truncated)."""

    def ema_update(averaged, current, n_averaged):
        for average, value in zip(averaged, current):
            if average.dtype.kind == "f":
                _lerp_(average.array, value.array, 1 - decay)
            else:
                average.array[...] = (average.array * decay + value.array * (1 - decay)).astype(average.dtype)

    return ema_update


def get_ema_avg_fn(decay: float = 0.999):
    """An exponential moving average for ``AveragedModel(avg_fn=...)``: ``decay * ema + (1 - decay) * model``."""

    def ema_update(averaged, current, n_averaged):
        return decay * averaged + (1 - decay) * current

    return ema_update


def get_swa_multi_avg_fn():
    """The running equal average for ``multi_avg_fn``: each averaged tensor moves ``1 / (n_averaged + 1)`` of
    the way to the model's, in place (``lerp`` for floating tensors; integer tensors truncated).

    The weight is rounded to float32 whatever the tensors' dtype, as in PyTorch (which divides by the int64
    count in its default dtype); ``avg_fn=get_swa_avg_fn()`` and the default average divide exactly."""

    def swa_update(averaged, current, n_averaged):
        weight = float(np.float32(1) / np.float32(int(n_averaged.item()) + 1))
        for average, value in zip(averaged, current):
            if average.dtype.kind == "f":
                _lerp_(average.array, value.array, weight)
            else:
                average.array[...] = (average.array + (value.array - average.array) * weight).astype(average.dtype)

    return swa_update


def get_swa_avg_fn():
    """The running equal average for ``avg_fn``: ``average + (model - average) / (n_averaged + 1)``."""

    def swa_update(averaged, current, n_averaged):
        return averaged + (current - averaged) / (n_averaged + 1)

    return swa_update


class AveragedModel(Module):
    """A copy of ``model`` whose parameters are an average of ``model``'s over the ``update_parameters`` calls.

    The copy is a deep copy, moved to ``device`` if one is given; calling the AveragedModel runs it. The first
    update copies the model's parameters; later ones apply ``avg_fn(averaged, model, n_averaged)`` (a tensor per
    parameter, its result copied in), or ``multi_avg_fn(averaged_list, model_list, n_averaged)`` (updates the
    lists' tensors in place), or by default the running equal average ``average + (model - average) /
    (n_averaged + 1)`` (PyTorch's formula on the CPU). ``n_averaged`` is an int64 buffer counting the updates.
    With ``use_buffers`` the buffers (batch-norm statistics) are averaged along with the parameters; without,
    they are copied from ``model`` at each update.
    """

    def __init__(self, model: Module, device=None, avg_fn=None, multi_avg_fn=None, use_buffers: bool = False):
        super().__init__()
        if not isinstance(model, Module):
            raise TypeError(f"AveragedModel averages a Module, got {type(model).__name__}")
        if avg_fn is not None and multi_avg_fn is not None:
            raise ValueError("Only one of avg_fn and multi_avg_fn should be provided, got both "
                             f"(avg_fn={avg_fn!r}, multi_avg_fn={multi_avg_fn!r})")
        self.module = copy.deepcopy(model)
        if device is not None:
            self.module = self.module.to(device)
        self.register_buffer("n_averaged", tl.tensor(0, dtype=tl.int64, device=device))
        self.avg_fn, self.multi_avg_fn, self.use_buffers = avg_fn, multi_avg_fn, use_buffers

    def forward(self, *args, **kwargs):
        return self.module(*args, **kwargs)

    def _averaged_tensors(self, model: Module):
        """(this copy's tensor, ``model``'s) pairs: the parameters, then with ``use_buffers`` the buffers."""
        if self.use_buffers:
            return zip(itertools.chain(self.module.parameters(), self.module.buffers()),
                       itertools.chain(model.parameters(), model.buffers()))
        return zip(self.module.parameters(), model.parameters())

    def update_parameters(self, model: Module):
        """Fold ``model``'s current weights into the average (the first call copies them)."""
        with tl.no_grad():
            pairs = [(average.detach(), value.detach().to(average.device))
                     for average, value in self._averaged_tensors(model)]
            n_averaged = int(self.n_averaged.item())
            if n_averaged == 0:
                for average, value in pairs:
                    average.array[...] = value.array
            elif self.avg_fn is not None:
                for average, value in pairs:
                    result = self.avg_fn(average, value, self.n_averaged)
                    average.array[...] = result.array if isinstance(result, tl.Tensor) else result
            elif self.multi_avg_fn is not None:
                self.multi_avg_fn([average for average, _ in pairs], [value for _, value in pairs], self.n_averaged)
            else:
                for average, value in pairs:
                    step = (value.array - average.array) / (n_averaged + 1)
                    average.array[...] = (average.array + step).astype(average.dtype, copy=False)
            if not self.use_buffers:  # the buffers follow the model
                for average, value in zip(self.module.buffers(), model.buffers()):
                    average.array[...] = move(value.array, average.device)
            self.n_averaged.array[...] += 1


def update_bn(loader, model: Module, device=None):
    """Recompute the running statistics of ``model``'s batch-norm layers with one pass over ``loader``.

    The statistics are reset and accumulated as a cumulative average over the batches (momentum None during
    the pass); afterwards each layer's momentum and the model's training mode are as they were. A batch that
    is a list or tuple contributes its first element; ``device`` moves the batches there first. Nothing
    happens when the model has no batch-norm layer.
    """
    momenta = {}
    for module in model.modules():
        if isinstance(module, _BatchNorm):
            module.reset_running_stats()
            momenta[module] = module.momentum
    if not momenta:
        return
    was_training = model.training
    model.train()
    for module in momenta:
        module.momentum = None
    try:
        with tl.no_grad():
            for batch in loader:
                if isinstance(batch, (list, tuple)):
                    batch = batch[0]
                if device is not None:
                    batch = batch.to(device)
                model(batch)
    finally:
        for module, momentum in momenta.items():
            module.momentum = momentum
        model.train(was_training)


class SWALR(LRScheduler):
    """Anneal each group's lr to ``swa_lr`` over ``anneal_epochs`` steps, then hold it there (the lr schedule
    of SWA).

    At step ``k`` the lr is ``swa_lr * a + lr0 * (1 - a)``, ``a`` going from 0 to 1 with ``t = k /
    anneal_epochs`` as ``(1 - cos(pi t)) / 2`` ("cos") or ``t`` ("linear"). ``lr0``, the lr the annealing started
    from, is recovered each step from the group's current lr, as PyTorch does (so an lr changed by hand moves
    the rest of the annealing). ``swa_lr`` is one number or a list with one per group.
    """

    def __init__(self, optimizer, swa_lr, anneal_epochs: int = 10, anneal_strategy: str = "cos",
                 last_epoch: int = -1):
        _check_optimizer(optimizer)
        for group, lr in zip(optimizer.param_groups, _per_group("swa_lr", optimizer, swa_lr)):
            group["swa_lr"] = lr
        if anneal_strategy not in ("cos", "linear"):
            raise ValueError(f"anneal_strategy must be one of 'cos' or 'linear', got {anneal_strategy!r}")
        if isinstance(anneal_epochs, bool) or not isinstance(anneal_epochs, int) or anneal_epochs < 0:
            raise ValueError(f"anneal_epochs must be an integer >= 0, got {anneal_epochs!r}")
        self._anneal_strategy, self.anneal_epochs = anneal_strategy, anneal_epochs
        super().__init__(optimizer, last_epoch)

    def _anneal(self, t: float) -> float:
        return t if self._anneal_strategy == "linear" else (1 - math.cos(math.pi * t)) / 2

    def get_lr(self):
        _warn_if_called_outside_step(self)
        step = self._step_count - 1
        if self.anneal_epochs == 0:
            step = max(1, step)
        epochs = max(1, self.anneal_epochs)
        previous = self._anneal(max(0, min(1, (step - 1) / epochs)))
        alpha = self._anneal(max(0, min(1, step / epochs)))
        lrs = []
        for group in self.optimizer.param_groups:
            swa_lr = group["swa_lr"]
            start = swa_lr if previous == 1 else (group["lr"] - previous * swa_lr) / (1 - previous)
            lrs.append(swa_lr * alpha + start * (1 - alpha))
        return lrs


def _lerp_(start, end, weight: float):
    """``start`` moved ``weight`` of the way to ``end``, in place: from the nearer end, as PyTorch's ``lerp``
    computes it (exact at both ends)."""
    if abs(weight) < 0.5:
        start += weight * (end - start)
    else:
        start[...] = end - (end - start) * (1 - weight)
