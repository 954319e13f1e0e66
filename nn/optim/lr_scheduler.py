"""Learning-rate schedulers with PyTorch's names, arguments and numbers.

    LambdaLR, MultiplicativeLR, StepLR, MultiStepLR, ConstantLR, LinearLR, ExponentialLR, PolynomialLR,
    CosineAnnealingLR, CosineAnnealingWarmRestarts, CyclicLR, OneCycleLR, ReduceLROnPlateau, SequentialLR,
    ChainedScheduler

Call ``scheduler.step()`` after ``optimizer.step()``; ``get_last_lr()`` is the lr each group has now.

Chainable forms, as in PyTorch. ``get_lr()`` of MultiplicativeLR, StepLR, MultiStepLR, ConstantLR, LinearLR,
ExponentialLR, PolynomialLR and CosineAnnealingLR rescales each group's *current* "lr" (StepLR multiplies it by
``gamma`` at each boundary, LinearLR by the ratio of consecutive factors, ...). So schedulers stepped together on
one optimizer compose (a LinearLR warm-up times a StepLR decay), and an lr set by hand between steps is carried
forward rather than overwritten. LambdaLR, CosineAnnealingWarmRestarts and OneCycleLR compute from ``base_lrs``
(each group's "initial_lr") and win over anything stepped before them, and so does CyclicLR (from ``base_lr``);
ReduceLROnPlateau reads a metric.

Closed forms. The chainable schedulers also have ``_get_closed_form_lr()``, the lr at ``last_epoch`` from
``base_lrs`` alone. It serves ``step(epoch)`` (deprecated, as in PyTorch: it warns, then jumps to ``epoch``)
and SequentialLR, which starts each scheduler at its milestone from its closed form at epoch 0.

Resuming. The schedule's state is split as in PyTorch: the current lr lives in the optimizer's param groups,
the counters in the scheduler. Build both, then load the optimizer's state dict and then the scheduler's.

An lr given to the optimizer as a float32 tensor is kept as NumPy's float32 (``nn.optim.optimizer.learning_rate``);
every lr a scheduler sets in that group is rounded to float32 too, as PyTorch writes it into the tensor.
"""

from __future__ import annotations

import math
import numbers
import types
import warnings
from bisect import bisect_right
from collections import Counter
from contextlib import contextmanager

import numpy as np

from nn.optim.optimizer import Optimizer

__all__ = [
    "LRScheduler", "LambdaLR", "MultiplicativeLR", "StepLR", "MultiStepLR", "ConstantLR", "LinearLR",
    "ExponentialLR", "PolynomialLR", "CosineAnnealingLR", "CosineAnnealingWarmRestarts", "CyclicLR", "OneCycleLR",
    "ReduceLROnPlateau", "SequentialLR", "ChainedScheduler",
]

STEP_ORDER_WARNING = (
    "Detected call of `lr_scheduler.step()` before `optimizer.step()`. Call them in the opposite order, "
    "`optimizer.step()` before `lr_scheduler.step()`: otherwise the first value of the learning rate schedule "
    "is skipped."
)

EPOCH_DEPRECATION_WARNING = (
    "scheduler.step(epoch) is deprecated (as in PyTorch): it sets last_epoch to epoch and uses the closed form "
    "where the scheduler has one. Call scheduler.step() once per epoch (or batch) instead."
)


class LRScheduler:
    """Base class: ``step()`` advances ``last_epoch`` and sets each group's "lr" from ``get_lr()``.

    Construction records each group's "lr" as its "initial_lr" (unless already there), keeps those as
    ``base_lrs`` and takes the first step, to epoch ``last_epoch + 1``. Resuming with ``last_epoch >= 0`` needs
    "initial_lr" in every group (load the optimizer's state dict first). As in PyTorch, that first step keeps
    the loaded lrs in ExponentialLR, MultiplicativeLR, LinearLR (after epoch 0), PolynomialLR and
    CosineAnnealingLR, while StepLR and MultiStepLR apply a decay that falls on the epoch it steps to.

    A subclass implements ``get_lr()``: the lrs at ``last_epoch``, which ``step()`` has just advanced. Chainable
    ones read the groups' current "lr" and add ``_get_closed_form_lr()``.
    """

    _is_initial = False  # True during the step taken at construction
    _in_step = False  # True while step() calls get_lr()
    _order_checked = False  # set by the first step() after construction, which checks the optimizer stepped first

    def __init__(self, optimizer: Optimizer, last_epoch: int = -1):
        _check_optimizer(optimizer)
        self.optimizer = optimizer
        for index, group in enumerate(optimizer.param_groups):
            if last_epoch == -1:
                group.setdefault("initial_lr", group["lr"])
            elif "initial_lr" not in group:
                raise KeyError(
                    f"param 'initial_lr' is not specified in param_groups[{index}] when resuming with "
                    f"last_epoch={last_epoch}; load the optimizer's state dict first"
                )
        self.base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = last_epoch
        self._initial_step()

    def _initial_step(self):
        """The step taken at construction (and by SequentialLR when it starts its first scheduler); it counts as
        the first in ``_step_count``, as in PyTorch."""
        self._step_count = 0
        with _raised(self, "_is_initial"):
            self.step()

    def get_lr(self) -> list:
        """The lr of each group at ``last_epoch``; called by ``step()`` (read ``get_last_lr()`` instead)."""
        raise NotImplementedError

    def get_last_lr(self) -> list:
        """The learning rates the last ``step()`` set."""
        return self._last_lr

    def step(self, epoch=None):
        """Advance one epoch; ``epoch`` (deprecated) jumps to that epoch, with the closed form where there is one.

        The first call after construction warns, once, if the optimizer has not stepped yet, as PyTorch does.
        """
        self._step_count += 1
        if not self._is_initial and not self._order_checked:
            self._order_checked = True
            if not getattr(self.optimizer, "_opt_called", False):
                warnings.warn(STEP_ORDER_WARNING, UserWarning, stacklevel=2)
        if epoch is not None:
            warnings.warn(EPOCH_DEPRECATION_WARNING, UserWarning, stacklevel=2)
        self._update_lr(epoch)

    def _update_lr(self, epoch=None):
        with _raised(self, "_in_step"):
            if epoch is None:
                self.last_epoch += 1
                lrs = self.get_lr()
            else:
                self.last_epoch = epoch
                lrs = self._get_closed_form_lr() if hasattr(self, "_get_closed_form_lr") else self.get_lr()
        for group, lr in zip(self.optimizer.param_groups, lrs):
            _set_lr(group, lr)
        self._last_lr = _current_lrs(self.optimizer)

    def state_dict(self) -> dict:
        """Every attribute except the optimizer, as PyTorch saves it."""
        return {key: value for key, value in self.__dict__.items() if key != "optimizer"}

    def load_state_dict(self, state_dict: dict):
        self.__dict__.update(state_dict)


class _LRScheduler(LRScheduler):
    """The former name of ``LRScheduler``, kept as PyTorch keeps it."""


class _LambdaScheduler(LRScheduler):
    """A scheduler driven by ``lr_lambda``: one function or a list with one per group. The state dict holds the
    ``__dict__`` of callable objects, and None for plain functions and lambdas, which cannot be saved (PyTorch
    does the same)."""

    def __init__(self, optimizer, lr_lambda, last_epoch: int = -1):
        _check_optimizer(optimizer)
        self.lr_lambdas = _lr_lambdas(optimizer, lr_lambda)
        super().__init__(optimizer, last_epoch)

    def state_dict(self):
        return _state_with_lambdas(self)

    def load_state_dict(self, state_dict):
        _load_state_with_lambdas(self, state_dict)


class LambdaLR(_LambdaScheduler):
    """``base_lr * lr_lambda(epoch)``. Not chainable: each step starts again from ``base_lrs``."""

    def get_lr(self):
        _warn_if_called_outside_step(self)
        return [base_lr * lr_lambda(self.last_epoch) for lr_lambda, base_lr in zip(self.lr_lambdas, self.base_lrs)]


class MultiplicativeLR(_LambdaScheduler):
    """Multiply each group's lr by ``lr_lambda(epoch)`` at every step after the first (chainable)."""

    def get_lr(self):
        _warn_if_called_outside_step(self)
        if self._is_initial:
            return _current_lrs(self.optimizer)
        return [group["lr"] * lr_lambda(self.last_epoch)
                for lr_lambda, group in zip(self.lr_lambdas, self.optimizer.param_groups)]


class StepLR(LRScheduler):
    """Multiply the lr by ``gamma`` every ``step_size`` epochs: ``base_lr * gamma ** (epoch // step_size)``."""

    def __init__(self, optimizer, step_size: int, gamma: float = 0.1, last_epoch: int = -1):
        integral = _integral(step_size)
        if integral is None or integral <= 0:
            raise ValueError(f"Expected positive integer step_size, but got {step_size!r} (an integral float such as "
                             "3.0 counts as 3)")
        self.step_size, self.gamma = integral, gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        _warn_if_called_outside_step(self)
        if self.last_epoch == 0 or self.last_epoch % self.step_size != 0:
            return _current_lrs(self.optimizer)
        return [group["lr"] * self.gamma for group in self.optimizer.param_groups]

    def _get_closed_form_lr(self):
        return [base_lr * self.gamma ** (self.last_epoch // self.step_size) for base_lr in self.base_lrs]


class MultiStepLR(LRScheduler):
    """Multiply the lr by ``gamma`` at each milestone epoch (a milestone listed twice multiplies twice).

    ``milestones`` is kept as a Counter (milestone -> times listed), as in PyTorch; integral floats (``epochs *
    0.5``) are taken as ints.
    """

    def __init__(self, optimizer, milestones, gamma: float = 0.1, last_epoch: int = -1):
        milestones = list(milestones)
        for milestone in milestones:
            if _integral(milestone) is None:
                raise TypeError(f"milestones must be integer epochs, got {milestone!r} in {milestones!r} (an integral "
                                "float such as 50.0 counts as 50)")
        self.milestones, self.gamma = Counter(map(_integral, milestones)), gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        _warn_if_called_outside_step(self)
        if self.last_epoch not in self.milestones:
            return _current_lrs(self.optimizer)
        return [group["lr"] * self.gamma ** self.milestones[self.last_epoch] for group in self.optimizer.param_groups]

    def _get_closed_form_lr(self):
        passed = bisect_right(sorted(self.milestones.elements()), self.last_epoch)
        return [base_lr * self.gamma**passed for base_lr in self.base_lrs]

    def load_state_dict(self, state_dict):
        super().load_state_dict(state_dict)
        # a state dict read back by nn.load holds the Counter as a plain mapping
        self.milestones = Counter(self.milestones)


class ConstantLR(LRScheduler):
    """Multiply the lr by ``factor`` for the first ``total_iters`` epochs, then restore it (divide by ``factor``)."""

    def __init__(self, optimizer, factor: float = 1.0 / 3, total_iters: int = 5, last_epoch: int = -1):
        # PyTorch accepts factor=0 and then divides by zero at total_iters
        if not 0 < factor <= 1:
            raise ValueError(f"factor must lie in (0, 1], got {factor!r}")
        _check_non_negative_int(total_iters=total_iters)
        self.factor, self.total_iters = factor, total_iters
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        _warn_if_called_outside_step(self)
        if self.last_epoch == 0:
            return [group["lr"] * self.factor for group in self.optimizer.param_groups]
        if self.last_epoch != self.total_iters:
            return _current_lrs(self.optimizer)
        return [group["lr"] * (1.0 / self.factor) for group in self.optimizer.param_groups]

    def _get_closed_form_lr(self):
        return [base_lr * (self.factor + (self.last_epoch >= self.total_iters) * (1 - self.factor))
                for base_lr in self.base_lrs]


class LinearLR(LRScheduler):
    """Scale the lr by a factor moving linearly from ``start_factor`` to ``end_factor`` over ``total_iters``
    epochs, then constant (a warm-up). With ``total_iters=0`` the factor stays ``start_factor``, as in PyTorch."""

    def __init__(self, optimizer, start_factor: float = 1.0 / 3, end_factor: float = 1.0, total_iters: int = 5,
                 last_epoch: int = -1):
        if not 0 < start_factor <= 1:
            raise ValueError(f"start_factor must lie in (0, 1], got {start_factor!r}")
        if not 0 <= end_factor <= 1:
            raise ValueError(f"end_factor must lie in [0, 1], got {end_factor!r}")
        _check_non_negative_int(total_iters=total_iters)
        self.start_factor, self.end_factor, self.total_iters = start_factor, end_factor, total_iters
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        _warn_if_called_outside_step(self)
        if self.last_epoch == 0:
            return [group["lr"] * self.start_factor for group in self.optimizer.param_groups]
        if self._is_initial or self.last_epoch > self.total_iters:
            return _current_lrs(self.optimizer)
        # factor(e) / factor(e - 1), written as PyTorch does so that the numbers agree to the last bit
        change = self.end_factor - self.start_factor
        ratio = 1.0 + change / (self.total_iters * self.start_factor + (self.last_epoch - 1) * change)
        return [group["lr"] * ratio for group in self.optimizer.param_groups]

    def _get_closed_form_lr(self):
        progress = min(self.total_iters, self.last_epoch) / self.total_iters if self.total_iters else 0.0
        factor = self.start_factor + (self.end_factor - self.start_factor) * progress
        return [base_lr * factor for base_lr in self.base_lrs]


class ExponentialLR(LRScheduler):
    """Multiply the lr by ``gamma`` every epoch: ``base_lr * gamma ** epoch``."""

    def __init__(self, optimizer, gamma: float, last_epoch: int = -1):
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        _warn_if_called_outside_step(self)
        if self._is_initial:
            return _current_lrs(self.optimizer)
        return [group["lr"] * self.gamma for group in self.optimizer.param_groups]

    def _get_closed_form_lr(self):
        return [base_lr * self.gamma**self.last_epoch for base_lr in self.base_lrs]


class PolynomialLR(LRScheduler):
    """``base_lr * (1 - min(epoch, total_iters) / total_iters) ** power``: down to 0 at ``total_iters``."""

    def __init__(self, optimizer, total_iters: int = 5, power: float = 1.0, last_epoch: int = -1):
        _check_non_negative_int(total_iters=total_iters)
        self.total_iters, self.power = total_iters, power
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        _warn_if_called_outside_step(self)
        if self._is_initial or self.last_epoch > self.total_iters:
            return _current_lrs(self.optimizer)
        decay = ((1.0 - self.last_epoch / self.total_iters)
                 / (1.0 - (self.last_epoch - 1) / self.total_iters)) ** self.power
        return [group["lr"] * decay for group in self.optimizer.param_groups]

    def _get_closed_form_lr(self):
        remaining = 1.0 - min(self.total_iters, self.last_epoch) / self.total_iters if self.total_iters else 1.0
        return [base_lr * remaining**self.power for base_lr in self.base_lrs]


class CosineAnnealingLR(LRScheduler):
    """Half a cosine from ``base_lr`` down to ``eta_min`` over ``T_max`` epochs (and back up after, without
    restarts): ``eta_min + (base_lr - eta_min) * (1 + cos(pi * epoch / T_max)) / 2``.

    The chainable step scales ``lr - eta_min`` by the ratio of consecutive cosine terms; at the trough, where
    that ratio is 0/0, it adds the first step up instead.
    """

    def __init__(self, optimizer, T_max, eta_min: float = 0.0, last_epoch: int = -1):  # noqa: N803
        if isinstance(T_max, bool) or not isinstance(T_max, numbers.Real) or not T_max > 0:
            raise ValueError(f"T_max must be a positive number of epochs, got {T_max!r}")
        self.T_max, self.eta_min = T_max, eta_min
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        _warn_if_called_outside_step(self)
        if self._is_initial:
            return _current_lrs(self.optimizer)
        if (self.last_epoch - 1 - self.T_max) % (2 * self.T_max) == 0:
            return [group["lr"] + (base_lr - self.eta_min) * (1 - math.cos(math.pi / self.T_max)) / 2
                    for base_lr, group in zip(self.base_lrs, self.optimizer.param_groups)]
        ratio = (1 + math.cos(math.pi * self.last_epoch / self.T_max)) / (
            1 + math.cos(math.pi * (self.last_epoch - 1) / self.T_max))
        return [ratio * (group["lr"] - self.eta_min) + self.eta_min for group in self.optimizer.param_groups]

    def _get_closed_form_lr(self):
        cosine = (1 + math.cos(math.pi * self.last_epoch / self.T_max)) / 2
        return [self.eta_min + (base_lr - self.eta_min) * cosine for base_lr in self.base_lrs]


class CosineAnnealingWarmRestarts(LRScheduler):
    """SGDR: cosine from ``base_lr`` to ``eta_min`` over ``T_i`` epochs, then back to ``base_lr``; the first
    period is ``T_0`` and each restart multiplies it by ``T_mult``.

    Not chainable. ``step(epoch)`` is not deprecated here: ``epoch`` may be fractional (``epoch + batch /
    batches`` to anneal per batch), and ``T_cur``/``T_i`` follow it.
    """

    def __init__(self, optimizer, T_0: int, T_mult: int = 1, eta_min: float = 0.0, last_epoch: int = -1):  # noqa: N803
        _check_positive_int(T_0=T_0)
        if isinstance(T_mult, bool) or not isinstance(T_mult, numbers.Integral) or T_mult < 1:
            raise ValueError(f"Expected integer T_mult >= 1, but got {T_mult!r}")
        if isinstance(eta_min, bool) or not isinstance(eta_min, numbers.Real):
            raise ValueError(f"Expected float or int eta_min, but got {eta_min!r} of type {type(eta_min).__name__}")
        self.T_0, self.T_i, self.T_mult, self.eta_min = T_0, T_0, T_mult, eta_min
        self.T_cur = last_epoch
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        _warn_if_called_outside_step(self)
        cosine = (1 + math.cos(math.pi * self.T_cur / self.T_i)) / 2
        return [self.eta_min + (base_lr - self.eta_min) * cosine for base_lr in self.base_lrs]

    def step(self, epoch=None):
        if epoch is None and self.last_epoch < 0:
            epoch = 0
        if epoch is None:
            epoch = self.last_epoch + 1
            self.T_cur = self.T_cur + 1
            if self.T_cur >= self.T_i:
                self.T_cur = self.T_cur % self.T_i
                self.T_i = self.T_i * self.T_mult
        elif epoch < 0:
            raise ValueError(f"Expected non-negative epoch, but got {epoch!r}")
        elif epoch >= self.T_0:
            if self.T_mult == 1:
                self.T_cur = epoch % self.T_0
            else:
                # restarts completed by ``epoch``: T_0 * (1 + T_mult + ... + T_mult ** (n - 1)) <= epoch
                n = int(math.log(epoch / self.T_0 * (self.T_mult - 1) + 1, self.T_mult))
                self.T_cur = epoch - self.T_0 * (self.T_mult**n - 1) / (self.T_mult - 1)
                self.T_i = self.T_0 * self.T_mult**n
        else:
            self.T_i = self.T_0
            self.T_cur = epoch
        self.last_epoch = math.floor(epoch)
        with _raised(self, "_in_step"):
            lrs = self.get_lr()
        for group, lr in zip(self.optimizer.param_groups, lrs):
            _set_lr(group, lr)
        self._last_lr = _current_lrs(self.optimizer)


class OneCycleLR(LRScheduler):
    """The 1cycle policy (Smith & Topin): per batch, the lr rises from ``max_lr / div_factor`` to ``max_lr``
    over the first ``pct_start`` of ``total_steps``, then anneals to ``initial_lr / final_div_factor``.

    ``three_phase`` comes back down to the initial lr symmetrically before the final anneal. With
    ``cycle_momentum`` the momentum (SGD/RMSprop "momentum", Adam's beta1) moves inversely, between
    ``max_momentum`` and ``base_momentum``. Each group gets "initial_lr", "max_lr" and "min_lr" keys (and
    "max_momentum", "base_momentum"), as in PyTorch; stepping past ``total_steps`` raises ValueError.
    Not chainable: the lr at each step comes from those keys alone.
    """

    def __init__(self, optimizer, max_lr, total_steps=None, epochs=None, steps_per_epoch=None, pct_start=0.3,
                 anneal_strategy="cos", cycle_momentum=True, base_momentum=0.85, max_momentum=0.95,
                 div_factor=25.0, final_div_factor=1e4, three_phase=False, last_epoch=-1):
        _check_optimizer(optimizer)
        if total_steps is not None:
            _check_positive_int(total_steps=total_steps)
            self.total_steps = total_steps
        elif epochs is not None and steps_per_epoch is not None:
            _check_positive_int(epochs=epochs, steps_per_epoch=steps_per_epoch)
            self.total_steps = epochs * steps_per_epoch
        else:
            raise ValueError("You must define either total_steps OR (epochs AND steps_per_epoch)")
        if not 0 <= pct_start <= 1:
            raise ValueError(f"Expected pct_start between 0 and 1, got {pct_start!r}")
        if anneal_strategy not in ("cos", "linear"):
            raise ValueError(f"anneal_strategy must be one of 'cos' or 'linear', got {anneal_strategy!r}")
        self.anneal_strategy = anneal_strategy
        warm_end = float(pct_start * self.total_steps) - 1
        # (last step of the phase, group keys of the lr it starts and ends at, and of the momentum)
        if three_phase:
            self.phases = [
                (warm_end, "initial_lr", "max_lr", "max_momentum", "base_momentum"),
                (float(2 * pct_start * self.total_steps) - 2, "max_lr", "initial_lr", "base_momentum", "max_momentum"),
                (self.total_steps - 1, "initial_lr", "min_lr", "max_momentum", "max_momentum"),
            ]
        else:
            self.phases = [
                (warm_end, "initial_lr", "max_lr", "max_momentum", "base_momentum"),
                (self.total_steps - 1, "max_lr", "min_lr", "base_momentum", "max_momentum"),
            ]
        if last_epoch == -1:
            for group, peak in zip(optimizer.param_groups, _per_group("max_lr", optimizer, max_lr)):
                group["initial_lr"] = peak / div_factor
                group["max_lr"] = peak
                group["min_lr"] = group["initial_lr"] / final_div_factor
        self.cycle_momentum = cycle_momentum
        if cycle_momentum:
            self.use_beta1 = _uses_beta1(optimizer)
            if last_epoch == -1:
                highs = _per_group("max_momentum", optimizer, max_momentum)
                lows = _per_group("base_momentum", optimizer, base_momentum)
                for group, high, low in zip(optimizer.param_groups, highs, lows):
                    _set_momentum(group, high, self.use_beta1)
                    group["max_momentum"], group["base_momentum"] = high, low
        super().__init__(optimizer, last_epoch)

    def _anneal(self, start, end, pct):
        if self.anneal_strategy == "cos":
            return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)
        return (end - start) * pct + start

    def get_lr(self):
        """The lrs at ``last_epoch``; also sets each group's momentum when ``cycle_momentum``."""
        _warn_if_called_outside_step(self)
        step = self.last_epoch
        if step > self.total_steps:
            raise ValueError(f"Tried to step {step} times. The specified number of total steps is {self.total_steps}")
        lrs = []
        for group in self.optimizer.param_groups:
            start = 0.0
            for index, (end, lr_from, lr_to, momentum_from, momentum_to) in enumerate(self.phases):
                if step <= end or index == len(self.phases) - 1:
                    pct = (step - start) / (end - start)
                    break
                start = end
            lrs.append(self._anneal(group[lr_from], group[lr_to], pct))
            if self.cycle_momentum:
                _set_momentum(group, self._anneal(group[momentum_from], group[momentum_to], pct), self.use_beta1)
        return lrs


class CyclicLR(LRScheduler):
    """Cyclical learning rates (Smith, 2017), stepped per batch: the lr climbs from ``base_lr`` to ``max_lr``
    over ``step_size_up`` steps, comes back down over ``step_size_down`` (default: as many), and repeats.

    The height of each cycle is scaled by ``scale_fn``: ``mode="triangular"`` keeps it, "triangular2" halves
    it every cycle, "exp_range" multiplies it by ``gamma ** step``. A custom ``scale_fn(x)`` replaces the
    mode, with ``x`` the cycle number (from 1) when ``scale_mode="cycle"`` or the step when "iterations".
    With ``cycle_momentum`` the momentum (SGD/RMSprop "momentum", Adam's beta1) moves inversely, from
    ``max_momentum`` down to ``base_momentum`` and back. Construction sets each group's "lr" to ``base_lr``
    and records "max_momentum"/"base_momentum" in the groups, as in PyTorch. Not chainable.
    """

    def __init__(self, optimizer, base_lr, max_lr, step_size_up=2000, step_size_down=None, mode="triangular",
                 gamma=1.0, scale_fn=None, scale_mode="cycle", cycle_momentum=True, base_momentum=0.8,
                 max_momentum=0.9, last_epoch=-1):
        _check_optimizer(optimizer)
        base_lrs = _per_group("base_lr", optimizer, base_lr)
        self.max_lrs = _per_group("max_lr", optimizer, max_lr)
        _check_positive_number(step_size_up=step_size_up)
        if step_size_down is not None:
            _check_non_negative_number(step_size_down=step_size_down)
        up = float(step_size_up)
        down = up if step_size_down is None else float(step_size_down)
        self.total_size = up + down
        self.step_ratio = up / self.total_size  # the fraction of a cycle spent climbing
        if scale_fn is None:
            if mode not in _CYCLIC_SCALE_MODES:
                raise ValueError(f"mode must be one of {', '.join(map(repr, _CYCLIC_SCALE_MODES))} (or give a "
                                 f"scale_fn), got {mode!r}")
            scale_mode = _CYCLIC_SCALE_MODES[mode]
        elif not callable(scale_fn):
            raise TypeError(f"scale_fn must be callable (x -> factor), got {scale_fn!r}")
        elif scale_mode not in ("cycle", "iterations"):
            raise ValueError(f"scale_mode must be 'cycle' or 'iterations', got {scale_mode!r}")
        self.mode, self.gamma, self.scale_mode = mode, gamma, scale_mode
        self._scale_fn_custom = scale_fn
        if last_epoch == -1:
            for group, lr in zip(optimizer.param_groups, base_lrs):
                _set_lr(group, lr)
        self.cycle_momentum = cycle_momentum
        if cycle_momentum:
            self.use_beta1 = _uses_beta1(optimizer)
            self.base_momentums = _per_group("base_momentum", optimizer, base_momentum)
            self.max_momentums = _per_group("max_momentum", optimizer, max_momentum)
            if last_epoch == -1:
                for group, high, low in zip(optimizer.param_groups, self.max_momentums, self.base_momentums):
                    _set_momentum(group, high, self.use_beta1)
                    group["max_momentum"], group["base_momentum"] = high, low
        super().__init__(optimizer, last_epoch)
        # as in PyTorch, the bottom of the cycle is base_lr even where a group already had an "initial_lr"
        self.base_lrs = base_lrs

    def scale_fn(self, x) -> float:
        """The factor on the height of the cycle: ``scale_fn`` if given, else the mode's."""
        if self._scale_fn_custom is not None:
            return self._scale_fn_custom(x)
        if self.mode == "triangular":
            return 1.0
        if self.mode == "triangular2":
            return 1 / (2.0 ** (x - 1))
        return self.gamma**x

    def get_lr(self):
        """The lrs at ``last_epoch``; also sets each group's momentum when ``cycle_momentum``."""
        _warn_if_called_outside_step(self)
        cycle = math.floor(1 + self.last_epoch / self.total_size)
        position = 1.0 + self.last_epoch / self.total_size - cycle  # in [0, 1): how far into the cycle
        if position <= self.step_ratio:
            height = position / self.step_ratio
        else:
            height = (position - 1) / (self.step_ratio - 1)
        scale = self.scale_fn(cycle if self.scale_mode == "cycle" else self.last_epoch)
        lrs = [base_lr + (max_lr - base_lr) * height * scale for base_lr, max_lr in zip(self.base_lrs, self.max_lrs)]
        if self.cycle_momentum:
            for group, low, high in zip(self.optimizer.param_groups, self.base_momentums, self.max_momentums):
                _set_momentum(group, high - (high - low) * height * scale, self.use_beta1)
        return lrs

    def state_dict(self):
        """As PyTorch saves it: a custom ``scale_fn`` is saved as its ``__dict__`` if it is a callable object,
        as None if it is a function or lambda (which cannot be saved)."""
        state = {key: value for key, value in self.__dict__.items() if key not in ("optimizer", "_scale_fn_custom")}
        state["_scale_fn_custom"] = _saved_callable(self._scale_fn_custom)
        return state

    def load_state_dict(self, state_dict):
        state = dict(state_dict)
        saved_function = state.pop("_scale_fn_custom", None)
        self.__dict__.update(state)
        _restore_callable(self._scale_fn_custom, saved_function)


# CyclicLR's built-in modes and what their scale function counts (cycles or steps)
_CYCLIC_SCALE_MODES = {"triangular": "cycle", "triangular2": "cycle", "exp_range": "iterations"}


class ReduceLROnPlateau(LRScheduler):
    """Multiply the lr by ``factor`` when ``step(metric)`` has seen no improvement for more than ``patience``
    epochs in a row.

    ``mode`` "min" (a loss) or "max" (an accuracy). An improvement beats the best so far by more than
    ``threshold``: relatively (``best * (1 - threshold)`` in min mode, ``best * (1 + threshold)`` in max mode)
    with ``threshold_mode="rel"``, by ``threshold`` itself with "abs". After a reduction, ``cooldown`` epochs
    count no bad epochs. An lr never goes below ``min_lr`` (one value, or one per group), and a reduction
    smaller than ``eps`` is skipped.
    """

    def __init__(self, optimizer, mode: str = "min", factor: float = 0.1, patience: int = 10,
                 threshold: float = 1e-4, threshold_mode: str = "rel", cooldown: int = 0, min_lr=0,
                 eps: float = 1e-8):
        if not factor < 1.0:
            raise ValueError(f"factor must be < 1.0 (the lr is multiplied by it), got {factor!r}")
        _check_optimizer(optimizer)
        _check_non_negative_int(patience=patience, cooldown=cooldown)
        self.factor, self.optimizer = factor, optimizer
        if isinstance(min_lr, (list, tuple)):
            self.default_min_lr, self.min_lrs = None, _per_group("min_lr", optimizer, min_lr)
        else:
            self.default_min_lr, self.min_lrs = min_lr, [min_lr] * len(optimizer.param_groups)
        self.patience, self.cooldown, self.eps = patience, cooldown, eps
        self.last_epoch = 0
        self._last_lr = _current_lrs(optimizer)
        self._init_is_better(mode, threshold, threshold_mode)
        self._reset()

    def _reset(self):
        self.best = self.mode_worse
        self.cooldown_counter = 0
        self.num_bad_epochs = 0

    def step(self, metrics, epoch=None):
        """Record this epoch's ``metrics`` (a number or a one-element tensor) and reduce the lr if it is time."""
        current = float(metrics)
        if epoch is None:
            epoch = self.last_epoch + 1
        else:
            warnings.warn(EPOCH_DEPRECATION_WARNING, UserWarning, stacklevel=2)
        self.last_epoch = epoch
        if self._is_better(current, self.best):
            self.best = current
            self.num_bad_epochs = 0
        else:
            self.num_bad_epochs += 1
        if self.in_cooldown:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0  # bad epochs during the cooldown do not count
        if self.num_bad_epochs > self.patience:
            self._reduce_lr()
            self.cooldown_counter = self.cooldown
            self.num_bad_epochs = 0
        self._last_lr = _current_lrs(self.optimizer)

    def _reduce_lr(self):
        if len(self.optimizer.param_groups) != len(self.min_lrs):
            if self.default_min_lr is None:
                raise RuntimeError(
                    f"the optimizer has {len(self.optimizer.param_groups)} param groups but min_lrs has "
                    f"{len(self.min_lrs)} values (a group added after ReduceLROnPlateau was made?); set min_lrs to "
                    "one value per group"
                )
            self.min_lrs = [self.default_min_lr] * len(self.optimizer.param_groups)
        for group, min_lr in zip(self.optimizer.param_groups, self.min_lrs):
            old_lr = float(group["lr"])
            new_lr = max(old_lr * self.factor, min_lr)
            if old_lr - new_lr > self.eps:
                _set_lr(group, new_lr)

    @property
    def in_cooldown(self) -> bool:
        return self.cooldown_counter > 0

    def _is_better(self, a, best):
        if self.mode == "min" and self.threshold_mode == "rel":
            return a < best * (1.0 - self.threshold)
        if self.mode == "min":
            return a < best - self.threshold
        if self.threshold_mode == "rel":
            return a > best * (self.threshold + 1.0)
        return a > best + self.threshold

    def _init_is_better(self, mode, threshold, threshold_mode):
        if mode not in ("min", "max"):
            raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")
        if threshold_mode not in ("rel", "abs"):
            raise ValueError(f"threshold_mode must be 'rel' or 'abs', got {threshold_mode!r}")
        self.mode_worse = math.inf if mode == "min" else -math.inf
        self.mode, self.threshold, self.threshold_mode = mode, threshold, threshold_mode

    def load_state_dict(self, state_dict):
        super().load_state_dict(state_dict)
        self._init_is_better(self.mode, self.threshold, self.threshold_mode)


class SequentialLR(LRScheduler):
    """Run ``schedulers`` one after another, switching at each of ``milestones`` (epochs). At its milestone a
    scheduler starts again from its epoch 0, in closed form from ``base_lrs`` where it has one. E.g.
    ``[LinearLR(opt, 0.1, total_iters=5), CosineAnnealingLR(opt, 95)]`` with ``milestones=[5]`` warms up for 5
    epochs, then anneals. ``step()`` takes no epoch."""

    def __init__(self, optimizer, schedulers, milestones, last_epoch: int = -1):
        _check_schedulers(self, schedulers, optimizer)
        milestones = list(milestones)
        if len(milestones) != len(schedulers) - 1:
            raise ValueError(
                f"SequentialLR expects one milestone fewer than schedulers, got {len(schedulers)} schedulers and "
                f"{len(milestones)} milestones"
            )
        if milestones != sorted(milestones):
            raise ValueError(f"SequentialLR expects increasing milestones, got {milestones!r}")
        self.optimizer = optimizer
        self._schedulers, self._milestones = list(schedulers), milestones
        self.last_epoch = last_epoch + 1
        # Each scheduler stepped once when it was made; undo that and start the one that owns epoch 0.
        for group in optimizer.param_groups:
            group["lr"] = group["initial_lr"]
        self._undo_initial_steps(self)
        first = self._schedulers[bisect_right(self._milestones, 0)]
        first._initial_step()
        self._last_lr = first.get_last_lr()

    @staticmethod
    def _undo_initial_steps(scheduler):
        if hasattr(scheduler, "_schedulers"):
            for inner in scheduler._schedulers:
                SequentialLR._undo_initial_steps(inner)
        elif hasattr(scheduler, "last_epoch"):
            scheduler.last_epoch -= 1

    def step(self, epoch=None):
        _refuse_epoch(self, epoch)
        self.last_epoch += 1
        index = bisect_right(self._milestones, self.last_epoch)
        scheduler = self._schedulers[index]
        if index > 0 and self._milestones[index - 1] == self.last_epoch:
            scheduler._update_lr(0)
        else:
            scheduler.step()
        self._last_lr = scheduler.get_last_lr()

    def state_dict(self):
        return _state_with_schedulers(self)

    def load_state_dict(self, state_dict):
        _load_state_with_schedulers(self, state_dict)


class ChainedScheduler(LRScheduler):
    """Step all of ``schedulers`` (on one optimizer) at each ``step()``, so that chainable ones compose: e.g.
    ``ChainedScheduler([ConstantLR(opt, 0.1, total_iters=2), ExponentialLR(opt, 0.9)])``. ``step()`` takes no
    epoch."""

    def __init__(self, schedulers, optimizer=None):
        if optimizer is None and schedulers:
            optimizer = getattr(schedulers[0], "optimizer", None)
        _check_schedulers(self, schedulers, optimizer)
        self._schedulers, self.optimizer = list(schedulers), optimizer
        self._last_lr = _current_lrs(optimizer)

    def step(self, epoch=None):
        _refuse_epoch(self, epoch)
        for scheduler in self._schedulers:
            scheduler.step()
        self._last_lr = _current_lrs(self.optimizer)

    def state_dict(self):
        return _state_with_schedulers(self)

    def load_state_dict(self, state_dict):
        _load_state_with_schedulers(self, state_dict)


def _current_lrs(optimizer) -> list:
    return [group["lr"] for group in optimizer.param_groups]


def _set_lr(group: dict, lr):
    """Set ``group``'s lr, keeping a NumPy float type it has (a float32 lr stays float32, as PyTorch writes a new
    lr into a tensor lr)."""
    current = group["lr"]
    group["lr"] = type(current)(lr) if isinstance(current, np.floating) else lr


def _integral(value) -> int | None:
    """``value`` as an int if it is an integer, or a float with an integer value (PyTorch accepts ``3.0``
    epochs); else None."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        return None
    if isinstance(value, numbers.Integral):
        return int(value)
    return int(value) if float(value).is_integer() else None


def _warn_if_called_outside_step(scheduler):
    """A chainable ``get_lr()`` called by hand computes the *next* step's lrs from the current ones."""
    if not scheduler._in_step:
        warnings.warn("To get the last learning rate computed by the scheduler, please use `get_last_lr()`.",
                      UserWarning, stacklevel=3)


@contextmanager
def _raised(scheduler, flag):
    """Set the class-level False ``flag`` on ``scheduler`` for the block (it stays out of state dicts)."""
    setattr(scheduler, flag, True)
    try:
        yield
    finally:
        delattr(scheduler, flag)


def _check_optimizer(optimizer):
    if not isinstance(optimizer, Optimizer):
        raise TypeError(f"{type(optimizer).__name__} is not an Optimizer")


def _check_positive_int(**values):
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
            raise ValueError(f"Expected positive integer {name}, but got {value!r}")


def _check_positive_number(**values):
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not value > 0:
            raise ValueError(f"Expected positive number {name}, but got {value!r}")


def _check_non_negative_number(**values):
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not value >= 0:
            raise ValueError(f"Expected non-negative number {name}, but got {value!r}")


def _check_non_negative_int(**values):
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
            raise ValueError(f"Expected non-negative integer {name}, but got {value!r}")


def _per_group(name, optimizer, value) -> list:
    """``value`` repeated for each param group, or a list/tuple with one value per group."""
    if isinstance(value, (list, tuple)):
        if len(value) != len(optimizer.param_groups):
            raise ValueError(
                f"{name} must have one value per param group: got {len(value)} values for "
                f"{len(optimizer.param_groups)} groups"
            )
        return list(value)
    return [value] * len(optimizer.param_groups)


def _uses_beta1(optimizer) -> bool:
    """Whether a scheduler cycling the momentum sets ``optimizer``'s beta1 (Adam and its kind) rather than its
    "momentum" (SGD, RMSprop)."""
    if "momentum" not in optimizer.defaults and "betas" not in optimizer.defaults:
        raise ValueError(
            f"cycle_momentum=True needs an optimizer with a momentum or a beta1, and {type(optimizer).__name__} has "
            "neither; pass cycle_momentum=False"
        )
    return "betas" in optimizer.defaults


def _set_momentum(group, momentum, use_beta1: bool):
    if use_beta1:
        group["betas"] = (momentum, *group["betas"][1:])
    else:
        group["momentum"] = momentum


def _lr_lambdas(optimizer, lr_lambda) -> list:
    lr_lambdas = _per_group("lr_lambda", optimizer, lr_lambda)
    for index, function in enumerate(lr_lambdas):
        if not callable(function):
            raise TypeError(f"lr_lambda must be callable (epoch -> factor), got {function!r} for group {index}")
    return lr_lambdas


def _saved_callable(function):
    """A user's callable in a state dict, as PyTorch saves it: a callable object as a copy of its ``__dict__``,
    None for a function or lambda (which cannot be saved), or for no callable."""
    return None if function is None or isinstance(function, types.FunctionType) else function.__dict__.copy()


def _restore_callable(function, saved):
    if function is not None and saved is not None:
        function.__dict__.update(saved)


def _state_with_lambdas(scheduler) -> dict:
    """The state dict of LambdaLR/MultiplicativeLR (see ``_saved_callable``)."""
    state = {key: value for key, value in scheduler.__dict__.items() if key not in ("optimizer", "lr_lambdas")}
    state["lr_lambdas"] = [_saved_callable(function) for function in scheduler.lr_lambdas]
    return state


def _load_state_with_lambdas(scheduler, state_dict):
    state = dict(state_dict)
    saved_lambdas = state.pop("lr_lambdas")
    scheduler.__dict__.update(state)
    for function, saved in zip(scheduler.lr_lambdas, saved_lambdas):
        _restore_callable(function, saved)


def _check_schedulers(owner, schedulers, optimizer):
    """The schedulers a SequentialLR/ChainedScheduler runs: at least one, all on ``optimizer``, none that
    needs a metric."""
    name = type(owner).__name__
    if not schedulers:
        raise ValueError(f"{name} expects at least one scheduler")
    for index, scheduler in enumerate(schedulers):
        if not hasattr(scheduler, "optimizer"):
            raise TypeError(f"{name}: scheduler {index} ({type(scheduler).__name__}) has no `optimizer` attribute")
        if isinstance(scheduler, ReduceLROnPlateau):
            raise ValueError(
                f"{name} does not support ReduceLROnPlateau (scheduler {index}): its step() needs a metric"
            )
        if scheduler.optimizer is not optimizer:
            raise ValueError(f"{name}: scheduler {index} ({type(scheduler).__name__}) drives another optimizer")


def _refuse_epoch(scheduler, epoch):
    if epoch is not None:
        raise TypeError(
            f"{type(scheduler).__name__}.step() takes no epoch (got {epoch!r}): call step() once per epoch"
        )


def _state_with_schedulers(scheduler) -> dict:
    state = {key: value for key, value in scheduler.__dict__.items() if key not in ("optimizer", "_schedulers")}
    state["_schedulers"] = [inner.state_dict() for inner in scheduler._schedulers]
    return state


def _load_state_with_schedulers(scheduler, state_dict):
    state = dict(state_dict)
    for inner, saved in zip(scheduler._schedulers, state.pop("_schedulers")):
        inner.load_state_dict(saved)
    scheduler.__dict__.update(state)
