"""Learning-rate schedulers: lr (and momentum) sequences against closed forms, resuming, state dicts."""

import math

import numpy as np
import pytest

import tensorlib as tl
from nn.optim import SGD, Adam
from nn.optim.lr_scheduler import (
    CosineAnnealingLR, LinearLR, LRScheduler, MultiStepLR, OneCycleLR, SequentialLR, StepLR,
)

BASE_LRS = (0.1, 0.03)


def two_group_optimizer(optimizer_cls=SGD, **kwargs):
    a, b = tl.randn(3, requires_grad=True), tl.randn(2, requires_grad=True)
    return optimizer_cls([{"params": [a]}, {"params": [b], "lr": BASE_LRS[1]}], lr=BASE_LRS[0], **kwargs)


def lr_sequence(scheduler, epochs):
    """The lrs in force for each of ``epochs`` epochs, stepping the optimizer then the scheduler."""
    lrs = []
    for _ in range(epochs):
        assert scheduler.get_last_lr() == [g["lr"] for g in scheduler.optimizer.param_groups]
        lrs.append(scheduler.get_last_lr())
        scheduler.optimizer.step()
        scheduler.step()
    return np.array(lrs)


def expected(formula, epochs):
    return np.array([[formula(base, e) for base in BASE_LRS] for e in range(epochs)])


@pytest.mark.parametrize(
    "make, formula",
    [
        (lambda o: StepLR(o, step_size=3), lambda base, e: base * 0.1 ** (e // 3)),
        (lambda o: StepLR(o, 2, gamma=0.5), lambda base, e: base * 0.5 ** (e // 2)),
        (lambda o: MultiStepLR(o, [6, 2, 6], gamma=0.3), lambda base, e: base * 0.3 ** ((e >= 2) + 2 * (e >= 6))),
        (lambda o: CosineAnnealingLR(o, T_max=6), lambda base, e: base * (1 + math.cos(math.pi * e / 6)) / 2),
        (
            lambda o: CosineAnnealingLR(o, T_max=5, eta_min=0.01),
            lambda base, e: 0.01 + (base - 0.01) * (1 + math.cos(math.pi * e / 5)) / 2,
        ),
        (lambda o: LinearLR(o), lambda base, e: base * (1 / 3 + (2 / 3) * min(e, 5) / 5)),
        (
            lambda o: LinearLR(o, start_factor=0.5, end_factor=0.1, total_iters=4),
            lambda base, e: base * (0.5 - 0.4 * min(e, 4) / 4),
        ),
    ],
    ids=["StepLR", "StepLR-gamma", "MultiStepLR", "Cosine", "Cosine-eta_min", "LinearLR", "LinearLR-down"],
)
def test_lr_sequences_follow_closed_forms(make, formula):
    optimizer = two_group_optimizer()
    scheduler = make(optimizer)
    assert scheduler.last_epoch == 0 and scheduler.base_lrs == list(BASE_LRS)
    assert [g["initial_lr"] for g in optimizer.param_groups] == list(BASE_LRS)
    np.testing.assert_allclose(lr_sequence(scheduler, 15), expected(formula, 15), rtol=1e-12, atol=1e-15)


def test_scheduled_lr_drives_the_update():
    param = tl.tensor([1.0], dtype=tl.float64, requires_grad=True)
    optimizer = SGD([param], lr=0.1)
    scheduler = StepLR(optimizer, step_size=1, gamma=0.5)
    for _ in range(3):
        optimizer.zero_grad()
        param.sum().backward()  # gradient 1
        optimizer.step()
        scheduler.step()
    assert param.item() == pytest.approx(1.0 - 0.1 - 0.05 - 0.025, rel=1e-12)


def one_cycle_reference(step, total, max_lr, pct_start, div, final_div, three_phase, anneal, low=0.85, high=0.95):
    """(lr, momentum) of the 1cycle policy at ``step``, written out phase by phase."""
    initial, minimum = max_lr / div, max_lr / div / final_div
    up = pct_start * total - 1
    if three_phase:
        down = 2 * pct_start * total - 2
        phases = [(0, up, initial, max_lr, high, low), (up, down, max_lr, initial, low, high),
                  (down, total - 1, initial, minimum, high, high)]
    else:
        phases = [(0, up, initial, max_lr, high, low), (up, total - 1, max_lr, minimum, low, high)]
    start, end, lr_a, lr_b, m_a, m_b = next((p for p in phases if step <= p[1]), phases[-1])
    pct = (step - start) / (end - start)
    weight = (1 + math.cos(math.pi * pct)) / 2 if anneal == "cos" else 1 - pct  # weight of the phase's start
    return lr_b + (lr_a - lr_b) * weight, m_b + (m_a - m_b) * weight


@pytest.mark.parametrize("optimizer_cls", [SGD, Adam])
@pytest.mark.parametrize(
    "kwargs",
    [
        dict(total_steps=20),
        dict(epochs=4, steps_per_epoch=5, pct_start=0.25, anneal_strategy="linear"),
        dict(total_steps=30, three_phase=True, div_factor=10.0, final_div_factor=100.0),
        dict(total_steps=24, three_phase=True, anneal_strategy="linear", pct_start=0.4),
    ],
    ids=["cos", "linear", "three-phase", "three-phase-linear"],
)
def test_one_cycle_lr_and_momentum(optimizer_cls, kwargs):
    optimizer = two_group_optimizer(optimizer_cls)
    scheduler = OneCycleLR(optimizer, max_lr=[1.0, 0.4], **kwargs)
    total = scheduler.total_steps
    options = dict(pct_start=kwargs.get("pct_start", 0.3), div=kwargs.get("div_factor", 25.0),
                   final_div=kwargs.get("final_div_factor", 1e4), three_phase=kwargs.get("three_phase", False),
                   anneal=kwargs.get("anneal_strategy", "cos"))
    for step in range(total):
        for group, max_lr in zip(optimizer.param_groups, (1.0, 0.4)):
            lr, momentum = one_cycle_reference(step, total, max_lr, **options)
            assert group["lr"] == pytest.approx(lr, rel=1e-12)
            got_momentum = group["betas"][0] if optimizer_cls is Adam else group["momentum"]
            assert got_momentum == pytest.approx(momentum, rel=1e-12)
            if optimizer_cls is Adam:
                assert group["betas"][1] == 0.999
        optimizer.step()
        scheduler.step()
    first = optimizer.param_groups[0]
    assert (first["initial_lr"], first["max_lr"]) == (1.0 / options["div"], 1.0)
    assert first["min_lr"] == pytest.approx(1.0 / options["div"] / options["final_div"])
    with pytest.raises(ValueError, match=f"Tried to step {total + 1} times"):
        scheduler.step()


def test_one_cycle_peaks_at_max_lr_and_ends_at_min_lr():
    optimizer = two_group_optimizer()
    scheduler = OneCycleLR(optimizer, max_lr=0.5, total_steps=10)
    lrs = lr_sequence(scheduler, 10)[:, 0]
    assert lrs[0] == pytest.approx(0.5 / 25) and lrs[2] == pytest.approx(0.5) and lrs.argmax() == 2
    assert lrs[-1] == pytest.approx(0.5 / 25 / 1e4)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(max_lr=0.1), "either total_steps OR"),
        (dict(max_lr=0.1, total_steps=0), "positive integer total_steps"),
        (dict(max_lr=0.1, epochs=2, steps_per_epoch=1.5), "positive integer steps_per_epoch"),
        (dict(max_lr=0.1, total_steps=10, pct_start=1.5), "pct_start"),
        (dict(max_lr=0.1, total_steps=10, anneal_strategy="exp"), "anneal_strategy"),
        (dict(max_lr=[0.1, 0.2, 0.3], total_steps=10), "one value per param group"),
    ],
)
def test_one_cycle_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        OneCycleLR(two_group_optimizer(), **kwargs)


def test_linear_lr_bad_factors():
    with pytest.raises(ValueError, match="start_factor"):
        LinearLR(two_group_optimizer(), start_factor=0)
    with pytest.raises(ValueError, match="end_factor"):
        LinearLR(two_group_optimizer(), end_factor=1.5)


def test_sequential_warm_up_then_cosine():
    optimizer = two_group_optimizer()
    warm_up = LinearLR(optimizer, start_factor=0.1, total_iters=4)
    cosine = CosineAnnealingLR(optimizer, T_max=8, eta_min=0.001)
    scheduler = SequentialLR(optimizer, [warm_up, cosine], milestones=[5])

    def formula(base, e):
        if e < 5:
            return base * (0.1 + 0.9 * min(e, 4) / 4)
        return 0.001 + (base - 0.001) * (1 + math.cos(math.pi * (e - 5) / 8)) / 2

    np.testing.assert_allclose(lr_sequence(scheduler, 16), expected(formula, 16), rtol=1e-12)
    with pytest.raises(ValueError, match="one milestone fewer"):
        SequentialLR(optimizer, [warm_up, cosine], milestones=[])


SCHEDULERS = {
    "StepLR": lambda o: StepLR(o, step_size=2, gamma=0.5),
    "MultiStepLR": lambda o: MultiStepLR(o, [3, 7]),
    "Cosine": lambda o: CosineAnnealingLR(o, T_max=6),
    "LinearLR": lambda o: LinearLR(o, start_factor=0.2, total_iters=6),
    "OneCycleLR": lambda o: OneCycleLR(o, max_lr=0.5, total_steps=12, three_phase=True),
    "SequentialLR": lambda o: SequentialLR(o, [LinearLR(o, 0.1, total_iters=3), StepLR(o, 2)], milestones=[4]),
}


@pytest.mark.parametrize("name", SCHEDULERS)
def test_state_dict_round_trip_continues_identically(name):
    optimizer = two_group_optimizer(Adam)
    scheduler = SCHEDULERS[name](optimizer)
    lr_sequence(scheduler, 5)
    saved_scheduler, saved_optimizer = scheduler.state_dict(), optimizer.state_dict()
    assert "optimizer" not in saved_scheduler and saved_scheduler["last_epoch"] == 5
    uninterrupted = lr_sequence(scheduler, 6)
    betas = [g["betas"] for g in optimizer.param_groups]

    resumed_optimizer = two_group_optimizer(Adam)
    resumed = SCHEDULERS[name](resumed_optimizer)
    resumed_optimizer.load_state_dict(saved_optimizer)
    resumed.load_state_dict(saved_scheduler)
    np.testing.assert_array_equal(lr_sequence(resumed, 6), uninterrupted)
    assert [g["betas"] for g in resumed_optimizer.param_groups] == betas


def test_resuming_with_last_epoch():
    optimizer = two_group_optimizer()
    with pytest.raises(KeyError, match="initial_lr"):
        StepLR(optimizer, step_size=2, last_epoch=3)
    for group, base in zip(optimizer.param_groups, BASE_LRS):
        group["initial_lr"] = base
    scheduler = StepLR(optimizer, step_size=2, last_epoch=3)
    assert scheduler.last_epoch == 4
    assert scheduler.get_last_lr() == pytest.approx([base * 0.01 for base in BASE_LRS])


def test_scheduler_needs_an_optimizer():
    with pytest.raises(TypeError, match="is not an Optimizer"):
        StepLR(object(), step_size=1)
    with pytest.raises(NotImplementedError):
        LRScheduler(two_group_optimizer())
