"""Learning-rate schedulers: lr (and momentum) sequences against closed forms and PyTorch's numbers, chaining,
hand-set lrs, step(epoch), ReduceLROnPlateau, CyclicLR, resuming, state dicts, errors."""

import math
import warnings

import numpy as np
import pytest

import tensorlib as tl
from nn.optim import SGD, Adagrad, Adam, NAdam, RMSprop
from nn.optim.lr_scheduler import (
    ChainedScheduler, ConstantLR, CosineAnnealingLR, CosineAnnealingWarmRestarts, CyclicLR, ExponentialLR, LambdaLR,
    LinearLR, LRScheduler, MultiplicativeLR, MultiStepLR, OneCycleLR, PolynomialLR, ReduceLROnPlateau,
    SequentialLR, StepLR,
)
from nn.serialization import load, save

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


def warm_restart_position(epoch, period=3, growth=2):
    """T_cur / T_i of SGDR at ``epoch``: periods of 3, 6, 12, ... epochs."""
    while epoch >= period:
        epoch, period = epoch - period, period * growth
    return epoch / period


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
        (lambda o: ExponentialLR(o, gamma=0.9), lambda base, e: base * 0.9**e),
        (lambda o: ConstantLR(o, factor=0.25, total_iters=3), lambda base, e: base * (0.25 if e < 3 else 1.0)),
        (lambda o: PolynomialLR(o, total_iters=4, power=2.0), lambda base, e: base * (1 - min(e, 4) / 4) ** 2),
        (lambda o: LambdaLR(o, lambda e: 1 / (1 + e)), lambda base, e: base / (1 + e)),
        (lambda o: MultiplicativeLR(o, lambda e: 0.95), lambda base, e: base * 0.95**e),
        (
            lambda o: CosineAnnealingWarmRestarts(o, T_0=3, T_mult=2, eta_min=0.001),
            lambda base, e: 0.001 + (base - 0.001) * (1 + math.cos(math.pi * warm_restart_position(e))) / 2,
        ),
    ],
    ids=["StepLR", "StepLR-gamma", "MultiStepLR", "Cosine", "Cosine-eta_min", "LinearLR", "LinearLR-down",
         "ExponentialLR", "ConstantLR", "PolynomialLR", "LambdaLR", "MultiplicativeLR", "WarmRestarts"],
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


# PyTorch 2.13's lrs for the two groups (0.1 and 0.03), epoch by epoch, printed with repr: the chainable steps
# use the same arithmetic, so the numbers agree to the last bit.
CHAINED_LINEAR_STEP = [[0.05, 0.015], [0.0625, 0.01875], [0.075, 0.0225], [0.00875, 0.002625], [0.01, 0.003],
                       [0.01, 0.003], [0.001, 0.00030000000000000003], [0.001, 0.00030000000000000003],
                       [0.001, 0.00030000000000000003], [0.0001, 3.0000000000000004e-05]]
STEP_AFTER_HAND_SET_LR = [[0.1, 0.03], [0.1, 0.03], [0.7, 0.03], [0.35, 0.015], [0.35, 0.015], [0.35, 0.015],
                          [0.175, 0.0075], [0.175, 0.0075]]
COSINE_AFTER_HAND_SET_LR = [
    [0.1, 0.03], [0.09397114317029975, 0.028660254037844383], [0.07, 0.024999999999999994],
    [0.05, 0.019999999999999997], [0.030000000000000013, 0.015000000000000001],
    [0.015358983848622453, 0.011339745962155612], [0.01, 0.01], [0.01602885682970026, 0.011339745962155614],
    [0.03250000000000001, 0.015000000000000003], [0.05500000000000004, 0.02000000000000001],
    [0.07750000000000007, 0.025000000000000022], [0.09397114317029981, 0.02866025403784441],
    [0.10000000000000009, 0.030000000000000027], [0.09397114317029982, 0.02866025403784441],
    [0.0775000000000001, 0.025000000000000022], [0.055000000000000104, 0.020000000000000025]]
SEQUENTIAL_CONSTANT_EXPONENTIAL_STEP = [
    [0.05, 0.015], [0.05, 0.015], [0.1, 0.03], [0.09000000000000001, 0.027], [0.08100000000000002, 0.0243],
    [0.1, 0.03], [0.1, 0.03], [0.05, 0.015], [0.05, 0.015], [0.025, 0.0075]]
CHAINED_CONSTANT_EXPONENTIAL = [
    [0.010000000000000002, 0.003], [0.009000000000000003, 0.0027],
    [0.08100000000000003, 0.024300000000000002], [0.07290000000000003, 0.021870000000000004],
    [0.06561000000000003, 0.019683000000000003], [0.059049000000000025, 0.017714700000000003],
    [0.05314410000000002, 0.015943230000000003]]
LINEAR_DOWN = [[0.05, 0.015], [0.04000000000000001, 0.012], [0.030000000000000006, 0.009000000000000001],
               [0.020000000000000004, 0.006], [0.01, 0.002999999999999999], [0.01, 0.002999999999999999]]
POLYNOMIAL = [[0.1, 0.03], [0.05625, 0.016875], [0.024999999999999998, 0.0075], [0.0062499999999999995, 0.001875],
              [0.0, 0.0], [0.0, 0.0]]
MULTIPLICATIVE = [[0.1, 0.03], [0.08100000000000002, 0.024300000000000002], [0.06642000000000002, 0.019926000000000003],
                  [0.05512860000000002, 0.016538580000000004], [0.046308024000000024, 0.013892407200000005]]


def stepped_together(optimizer, schedulers, epochs, set_by_hand=None):
    """The lrs of each epoch with all ``schedulers`` stepped after each; ``set_by_hand`` = (epoch, lr of group 0)."""
    lrs = []
    for epoch in range(epochs):
        if set_by_hand and epoch == set_by_hand[0]:
            optimizer.param_groups[0]["lr"] = set_by_hand[1]
        lrs.append([g["lr"] for g in optimizer.param_groups])
        optimizer.step()
        for scheduler in schedulers:
            scheduler.step()
    return lrs


def test_schedulers_stepped_on_one_optimizer_compose_like_pytorch():
    optimizer = two_group_optimizer()
    warm_up, decay = LinearLR(optimizer, 0.5, total_iters=4), StepLR(optimizer, 3, 0.1)
    assert stepped_together(optimizer, [warm_up, decay], 10) == CHAINED_LINEAR_STEP


@pytest.mark.parametrize("make, edit, want", [
    (lambda o: StepLR(o, 3, 0.5), (2, 0.7), STEP_AFTER_HAND_SET_LR),
    (lambda o: CosineAnnealingLR(o, 6, eta_min=0.01), (2, 0.07), COSINE_AFTER_HAND_SET_LR),
], ids=["StepLR", "Cosine"])
def test_an_lr_set_by_hand_is_carried_forward_like_pytorch(make, edit, want):
    optimizer = two_group_optimizer()
    assert stepped_together(optimizer, [make(optimizer)], len(want), set_by_hand=edit) == want


@pytest.mark.parametrize("make, want", [
    (lambda o: LinearLR(o, 0.5, 0.1, total_iters=4), LINEAR_DOWN),
    (lambda o: PolynomialLR(o, total_iters=4, power=2.0), POLYNOMIAL),
    (lambda o: MultiplicativeLR(o, lambda e: 0.8 + 0.01 * e), MULTIPLICATIVE),
    (lambda o: SequentialLR(o, [ConstantLR(o, 0.5, total_iters=10), ExponentialLR(o, 0.9), StepLR(o, 2, 0.5)],
                            milestones=[2, 5]), SEQUENTIAL_CONSTANT_EXPONENTIAL_STEP),
    (lambda o: ChainedScheduler([ConstantLR(o, 0.1, total_iters=2), ExponentialLR(o, 0.9)]),
     CHAINED_CONSTANT_EXPONENTIAL),
], ids=["LinearLR", "PolynomialLR", "MultiplicativeLR", "SequentialLR", "ChainedScheduler"])
def test_lrs_equal_pytorch_to_the_last_bit(make, want):
    optimizer = two_group_optimizer()
    assert lr_sequence(make(optimizer), len(want)).tolist() == want


@pytest.mark.parametrize("make, want", [
    (lambda o: LinearLR(o, 0.5, total_iters=0), [0.05, 0.015]),
    (lambda o: ConstantLR(o, 0.25, total_iters=0), [0.025, 0.0075]),
    (lambda o: PolynomialLR(o, total_iters=0), [0.1, 0.03]),
], ids=["LinearLR", "ConstantLR", "PolynomialLR"])
def test_total_iters_zero_keeps_the_first_lr_as_pytorch_does(make, want):
    optimizer = two_group_optimizer()
    assert lr_sequence(make(optimizer), 4).tolist() == [want] * 4


def test_step_with_an_epoch_warns_and_jumps_there_in_closed_form():
    optimizer = two_group_optimizer()
    scheduler = StepLR(optimizer, 2, gamma=0.5)
    optimizer.step()  # in the right order: only the deprecation warns
    got = []
    for epoch in (3, 1, 7, 4):
        with pytest.warns(UserWarning, match=r"step\(epoch\) is deprecated"):
            scheduler.step(epoch)
        got.append([*scheduler.get_last_lr(), scheduler.last_epoch])
    scheduler.step()
    got.append([*scheduler.get_last_lr(), scheduler.last_epoch])
    # PyTorch 2.13's values
    assert got == [[0.05, 0.015, 3], [0.1, 0.03, 1], [0.0125, 0.00375, 7], [0.025, 0.0075, 4],
                   [0.025, 0.0075, 5]]

    linear = LinearLR(two_group_optimizer(), 0.5, total_iters=4)
    with pytest.warns(UserWarning):
        linear.step(3)
    assert linear.get_last_lr() == [0.08750000000000001, 0.02625]
    zero_warm_up = LinearLR(two_group_optimizer(), 0.5, total_iters=0)
    with pytest.warns(UserWarning):
        zero_warm_up.step(3)
    assert zero_warm_up.get_last_lr() == [0.05, 0.015]


@pytest.mark.parametrize("make", [
    lambda o: SequentialLR(o, [StepLR(o, 2), StepLR(o, 3)], milestones=[2]),
    lambda o: ChainedScheduler([StepLR(o, 2), StepLR(o, 3)]),
], ids=["SequentialLR", "ChainedScheduler"])
def test_sequential_and_chained_take_no_epoch(make):
    scheduler = make(two_group_optimizer())
    with pytest.raises(TypeError, match=r"step\(\) takes no epoch \(got 4\)"):
        scheduler.step(4)


def test_get_lr_outside_step_warns_to_use_get_last_lr():
    scheduler = ExponentialLR(two_group_optimizer(), gamma=0.5)
    with pytest.warns(UserWarning, match="get_last_lr"):
        scheduler.get_lr()
    scheduler.optimizer.step()  # (a scheduler stepped first warns about the order)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        scheduler.step()
    assert scheduler.get_last_lr() == [0.05, 0.015]


def test_warm_restarts_with_fractional_epochs():
    scheduler = CosineAnnealingWarmRestarts(two_group_optimizer(), T_0=3, T_mult=2, eta_min=0.001)
    got = []
    for epoch in (0.5, 1.25, 3.0, 4.5, 9.0, 10.2, 21.5, 2.0):
        scheduler.step(epoch)
        got.append(scheduler.get_last_lr())
    # PyTorch 2.13's values
    assert got == [[0.09336825748732973, 0.02805736835487436], [0.06331154273257478, 0.01925287615398655],
                   [0.1, 0.03], [0.0855017856687341, 0.025753048327204937], [0.1, 0.03],
                   [0.09757729755661011, 0.029290319486279727], [0.09989401670031088, 0.029968954386959748],
                   [0.025750000000000012, 0.008250000000000004]]
    assert scheduler.last_epoch == 2
    with pytest.raises(ValueError, match="non-negative epoch, but got -1"):
        scheduler.step(-1)


def plateau_run(scheduler, metrics, *attributes):
    rows = []
    for metric in metrics:
        scheduler.step(metric)
        rows.append([*scheduler.get_last_lr(), *(getattr(scheduler, name) for name in attributes)])
    return rows


def test_reduce_on_plateau_min_rel_with_patience_cooldown_and_min_lr():
    optimizer = two_group_optimizer()
    scheduler = ReduceLROnPlateau(optimizer, factor=0.5, patience=1, cooldown=1, min_lr=[0.0, 0.0025])
    metrics = [1.0, 0.9, 0.9, 0.95, 0.91, 0.9, 0.8, 0.8, 0.8, 0.8, 0.8, 0.8, 0.8, 0.8]
    rows = plateau_run(scheduler, metrics, "best", "num_bad_epochs", "cooldown_counter")
    # PyTorch 2.13's values; the last step stops group 1 at its min_lr
    assert rows == [
        [0.1, 0.03, 1.0, 0, 0], [0.1, 0.03, 0.9, 0, 0], [0.1, 0.03, 0.9, 1, 0], [0.05, 0.015, 0.9, 0, 1],
        [0.05, 0.015, 0.9, 0, 0], [0.05, 0.015, 0.9, 1, 0], [0.05, 0.015, 0.8, 0, 0], [0.05, 0.015, 0.8, 1, 0],
        [0.025, 0.0075, 0.8, 0, 1], [0.025, 0.0075, 0.8, 0, 0], [0.025, 0.0075, 0.8, 1, 0],
        [0.0125, 0.00375, 0.8, 0, 1], [0.0125, 0.00375, 0.8, 0, 0], [0.0125, 0.00375, 0.8, 1, 0]]
    scheduler.step(tl.tensor(0.8))  # a one-element tensor works as the metric
    assert scheduler.get_last_lr() == [0.00625, 0.0025] and scheduler.last_epoch == 15


def test_reduce_on_plateau_max_abs_and_eps():
    optimizer = two_group_optimizer()
    scheduler = ReduceLROnPlateau(optimizer, mode="max", threshold=0.05, threshold_mode="abs", patience=0, eps=0.02)
    rows = plateau_run(scheduler, [0.5, 0.54, 0.56, 0.6, 0.61, 0.7, 0.7, 0.7], "best", "num_bad_epochs")
    # PyTorch 2.13's values: 0.54 is no improvement on 0.5 by more than 0.05; after one reduction the next
    # ones (0.01 -> 0.001) are smaller than eps and skipped
    assert rows == [[0.1, 0.03, 0.5, 0], [0.010000000000000002, 0.003, 0.5, 0],
                    [0.010000000000000002, 0.003, 0.56, 0], [0.010000000000000002, 0.003, 0.56, 0],
                    [0.010000000000000002, 0.003, 0.56, 0], [0.010000000000000002, 0.003, 0.7, 0],
                    [0.010000000000000002, 0.003, 0.7, 0], [0.010000000000000002, 0.003, 0.7, 0]]


@pytest.mark.parametrize("mode, threshold_mode, want_best", [
    ("min", "abs", [1.0, 1.0, 1.0, 0.85, 0.85, 0.85, 0.85, 0.85, 0.85]),
    ("max", "rel", [1.0, 1.0, 1.0, 1.0, 1.2, 1.2, 1.2, 1.2, 1.2]),
])
def test_reduce_on_plateau_min_abs_and_max_rel(mode, threshold_mode, want_best):
    scheduler = ReduceLROnPlateau(two_group_optimizer(), mode=mode, threshold=0.1, threshold_mode=threshold_mode,
                                  patience=2)
    rows = plateau_run(scheduler, [1.0, 0.95, 1.05, 0.85, 1.2, 1.25, 1.3, 1.3, 1.3], "best")
    assert [row[2] for row in rows] == want_best  # PyTorch 2.13's values
    reduced_at = {"min": 6, "max": 3}[mode]
    assert [row[0] for row in rows].index(0.010000000000000002) == reduced_at


def test_resuming_with_last_epoch():
    optimizer = two_group_optimizer()
    with pytest.raises(KeyError, match="initial_lr"):
        StepLR(optimizer, step_size=2, last_epoch=3)
    for group, base in zip(optimizer.param_groups, BASE_LRS):
        group["initial_lr"], group["lr"] = base, base * 0.1  # the lr of epoch 3, as a loaded optimizer holds it
    scheduler = StepLR(optimizer, step_size=2, last_epoch=3)
    assert scheduler.last_epoch == 4 and scheduler.base_lrs == list(BASE_LRS)
    assert scheduler.get_last_lr() == pytest.approx([base * 0.01 for base in BASE_LRS], rel=1e-12)
    # the step taken at construction leaves a loaded lr as it is where the chainable step would move it on
    for make in (lambda o: ExponentialLR(o, 0.5, last_epoch=3), lambda o: LinearLR(o, 0.5, last_epoch=2),
                 lambda o: CosineAnnealingLR(o, 6, last_epoch=2)):
        optimizer = two_group_optimizer()
        for group, base in zip(optimizer.param_groups, BASE_LRS):
            group["initial_lr"], group["lr"] = base, base * 0.4
        assert make(optimizer).get_last_lr() == pytest.approx([base * 0.4 for base in BASE_LRS], rel=1e-15)


class Halving:
    """A callable object: LambdaLR's state dict keeps its attributes."""

    def __init__(self):
        self.rate = 0.5

    def __call__(self, epoch):
        return self.rate**epoch


SCHEDULERS = {
    "StepLR": lambda o: StepLR(o, step_size=2, gamma=0.5),
    "MultiStepLR": lambda o: MultiStepLR(o, [3, 7, 7]),
    "Cosine": lambda o: CosineAnnealingLR(o, T_max=6),
    "LinearLR": lambda o: LinearLR(o, start_factor=0.2, total_iters=6),
    "ConstantLR": lambda o: ConstantLR(o, factor=0.5, total_iters=7),
    "ExponentialLR": lambda o: ExponentialLR(o, gamma=0.8),
    "PolynomialLR": lambda o: PolynomialLR(o, total_iters=9, power=1.5),
    "LambdaLR": lambda o: LambdaLR(o, [Halving(), lambda e: 1 / (1 + e)]),
    "MultiplicativeLR": lambda o: MultiplicativeLR(o, lambda e: 0.9),
    "WarmRestarts": lambda o: CosineAnnealingWarmRestarts(o, T_0=2, T_mult=2),
    "OneCycleLR": lambda o: OneCycleLR(o, max_lr=0.5, total_steps=12, three_phase=True),
    "CyclicLR": lambda o: CyclicLR(o, [0.01, 0.02], [0.1, 0.05], step_size_up=3, step_size_down=2, mode="triangular2"),
    "SequentialLR": lambda o: SequentialLR(o, [LinearLR(o, 0.1, total_iters=3), StepLR(o, 2)], milestones=[4]),
    "ChainedScheduler": lambda o: ChainedScheduler([LinearLR(o, 0.1, total_iters=8), MultiStepLR(o, [2, 6])]),
}


@pytest.mark.parametrize("through", ["memory", "file"])
@pytest.mark.parametrize("name", SCHEDULERS)
def test_state_dict_round_trip_continues_identically(name, through, tmp_path):
    """Resume as the trainer does: build both, load the optimizer's state, then the scheduler's (from nn.save)."""
    optimizer = two_group_optimizer(Adam)
    scheduler = SCHEDULERS[name](optimizer)
    lr_sequence(scheduler, 5)
    saved = {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()}
    assert "optimizer" not in saved["scheduler"]
    if name != "ChainedScheduler":  # which, as in PyTorch, keeps no epoch count of its own
        assert saved["scheduler"]["last_epoch"] == 5
    if through == "file":
        save(saved, tmp_path / "checkpoint.safetensors")
        saved = load(tmp_path / "checkpoint.safetensors")
    uninterrupted = lr_sequence(scheduler, 6)
    betas = [g["betas"] for g in optimizer.param_groups]

    resumed_optimizer = two_group_optimizer(Adam)
    resumed = SCHEDULERS[name](resumed_optimizer)
    resumed_optimizer.load_state_dict(saved["optimizer"])
    resumed.load_state_dict(saved["scheduler"])
    np.testing.assert_array_equal(lr_sequence(resumed, 6), uninterrupted)
    assert [g["betas"] for g in resumed_optimizer.param_groups] == betas


def test_lambda_state_dict_keeps_callable_objects_and_skips_functions(tmp_path):
    scheduler = SCHEDULERS["LambdaLR"](two_group_optimizer())
    scheduler.lr_lambdas[0].rate = 0.25
    state = scheduler.state_dict()
    assert state["lr_lambdas"] == [{"rate": 0.25}, None]
    save({"scheduler": state}, tmp_path / "s.safetensors")
    resumed = SCHEDULERS["LambdaLR"](two_group_optimizer())
    resumed.load_state_dict(load(tmp_path / "s.safetensors")["scheduler"])
    assert resumed.lr_lambdas[0].rate == 0.25 and resumed.lr_lambdas[1].__name__ == "<lambda>"


def test_reduce_on_plateau_state_dict_through_a_file(tmp_path):
    optimizer = two_group_optimizer()
    scheduler = ReduceLROnPlateau(optimizer, mode="max", patience=1, cooldown=2)
    assert scheduler.state_dict()["best"] == -math.inf  # saved and loaded back like any float
    plateau_run(scheduler, [0.5, 0.4, 0.4])
    save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()}, tmp_path / "c.safetensors")
    uninterrupted = plateau_run(scheduler, [0.45, 0.3, 0.3, 0.3, 0.3], "num_bad_epochs", "cooldown_counter")

    state = load(tmp_path / "c.safetensors")
    resumed_optimizer = two_group_optimizer()
    resumed = ReduceLROnPlateau(resumed_optimizer)
    resumed_optimizer.load_state_dict(state["optimizer"])
    resumed.load_state_dict(state["scheduler"])
    assert (resumed.mode, resumed.mode_worse, resumed.best) == ("max", -math.inf, 0.5)
    assert plateau_run(resumed, [0.45, 0.3, 0.3, 0.3, 0.3], "num_bad_epochs", "cooldown_counter") == uninterrupted


@pytest.mark.parametrize("name", SCHEDULERS)
def test_api_like_pytorch(name):
    optimizer = two_group_optimizer()
    scheduler = SCHEDULERS[name](optimizer)
    assert scheduler.optimizer is optimizer
    assert scheduler.get_last_lr() == [g["lr"] for g in optimizer.param_groups]
    if name not in ("SequentialLR", "ChainedScheduler"):  # PyTorch gives these neither
        assert scheduler.last_epoch == 0
        assert scheduler.base_lrs == [g["initial_lr"] for g in optimizer.param_groups]
    assert {"_is_initial", "_in_step"}.isdisjoint(scheduler.state_dict())


def test_scheduler_needs_an_optimizer():
    with pytest.raises(TypeError, match="is not an Optimizer"):
        StepLR(object(), step_size=1)
    with pytest.raises(TypeError, match="is not an Optimizer"):
        ReduceLROnPlateau(object())
    with pytest.raises(NotImplementedError):
        LRScheduler(two_group_optimizer())


@pytest.mark.parametrize("make, error, message", [
    (lambda o: StepLR(o, step_size=0), ValueError, "positive integer step_size, but got 0"),
    (lambda o: StepLR(o, step_size=2.5), ValueError, "positive integer step_size, but got 2.5"),
    (lambda o: MultiStepLR(o, [2, 4.5]), TypeError, r"integer epochs, got 4.5 in \[2, 4.5\]"),
    (lambda o: CosineAnnealingLR(o, T_max=0), ValueError, "T_max must be a positive number of epochs, got 0"),
    (lambda o: ConstantLR(o, factor=0), ValueError, r"factor must lie in \(0, 1\], got 0"),
    (lambda o: ConstantLR(o, factor=1.5), ValueError, r"factor must lie in \(0, 1\], got 1.5"),
    (lambda o: LinearLR(o, start_factor=0), ValueError, "start_factor"),
    (lambda o: LinearLR(o, end_factor=1.5), ValueError, "end_factor"),
    (lambda o: LinearLR(o, total_iters=-1), ValueError, "non-negative integer total_iters, but got -1"),
    (lambda o: PolynomialLR(o, total_iters=3.0), ValueError, "non-negative integer total_iters, but got 3.0"),
    (lambda o: LambdaLR(o, 0.5), TypeError, "lr_lambda must be callable .* got 0.5 for group 0"),
    (lambda o: MultiplicativeLR(o, [abs]), ValueError, "lr_lambda must have one value per param group"),
    (lambda o: CosineAnnealingWarmRestarts(o, T_0=0), ValueError, "positive integer T_0, but got 0"),
    (lambda o: CosineAnnealingWarmRestarts(o, T_0=2, T_mult=0), ValueError, "integer T_mult >= 1, but got 0"),
    (lambda o: CosineAnnealingWarmRestarts(o, T_0=2, eta_min="0"), ValueError, "float or int eta_min"),
    (lambda o: ReduceLROnPlateau(o, mode="low"), ValueError, "mode must be 'min' or 'max', got 'low'"),
    (lambda o: ReduceLROnPlateau(o, threshold_mode="pct"), ValueError, "threshold_mode must be 'rel' or 'abs'"),
    (lambda o: ReduceLROnPlateau(o, factor=1.0), ValueError, r"factor must be < 1.0 .*got 1.0"),
    (lambda o: ReduceLROnPlateau(o, patience=-1), ValueError, "non-negative integer patience, but got -1"),
    (lambda o: ReduceLROnPlateau(o, min_lr=[0.1]), ValueError, "min_lr must have one value per param group"),
    (lambda o: SequentialLR(o, [StepLR(o, 2), StepLR(o, 3)], milestones=[]), ValueError, "one milestone fewer"),
    (lambda o: SequentialLR(o, [StepLR(o, 2)] * 3, milestones=[5, 2]), ValueError,
     r"increasing milestones, got \[5, 2\]"),
    (lambda o: SequentialLR(o, [], milestones=[]), ValueError, "at least one scheduler"),
    (lambda o: SequentialLR(o, [StepLR(o, 2), ReduceLROnPlateau(o)], milestones=[2]), ValueError, "needs a metric"),
    (lambda o: ChainedScheduler([StepLR(o, 2), StepLR(two_group_optimizer(), 2)]), ValueError,
     "scheduler 1 \\(StepLR\\) drives another optimizer"),
    (lambda o: ChainedScheduler([object()]), TypeError, "has no `optimizer` attribute"),
    (lambda o: CyclicLR(o, 0.01, 0.1, mode="cosine"), ValueError,
     "mode must be one of 'triangular', 'triangular2', 'exp_range' .*got 'cosine'"),
    (lambda o: CyclicLR(o, 0.01, 0.1, step_size_up=0), ValueError, "positive number step_size_up, but got 0"),
    (lambda o: CyclicLR(o, 0.01, 0.1, step_size_down=-1), ValueError,
     "non-negative number step_size_down, but got -1"),
    (lambda o: CyclicLR(o, 0.01, 0.1, scale_fn=0.5), TypeError, "scale_fn must be callable"),
    (lambda o: CyclicLR(o, 0.01, 0.1, scale_fn=abs, scale_mode="epoch"), ValueError,
     "scale_mode must be 'cycle' or 'iterations', got 'epoch'"),
    (lambda o: CyclicLR(o, [0.01], 0.1), ValueError, "base_lr must have one value per param group"),
    (lambda o: CyclicLR(o, 0.01, [0.1] * 3), ValueError, "max_lr must have one value per param group"),
    (lambda o: CyclicLR(o, 0.01, 0.1, base_momentum=[0.8]), ValueError, "base_momentum must have one value"),
])
def test_bad_arguments_are_named(make, error, message):
    with pytest.raises(error, match=message):
        make(two_group_optimizer())


@pytest.mark.parametrize("saved_milestones", [{3: 1, 7: 2}, [3, 7, 7]], ids=["mapping (nn.load)", "sorted list"])
def test_multistep_milestones_load_back_as_counts(saved_milestones):
    """nn.load gives the Counter back as a plain mapping, and earlier state dicts held a sorted list; either way
    a milestone listed twice still multiplies twice."""
    optimizer = two_group_optimizer()
    scheduler = MultiStepLR(optimizer, [1])
    scheduler.load_state_dict({**scheduler.state_dict(), "milestones": saved_milestones, "gamma": 0.5})
    np.testing.assert_allclose(lr_sequence(scheduler, 9)[:, 0], [0.1] * 3 + [0.05] * 4 + [0.0125] * 2, rtol=1e-15)


# ---- CyclicLR -----------------------------------------------------------------------------------------------------
def cyclic_reference(step, base, peak, up, down, amplitude, momenta=(0.8, 0.9)):
    """(lr, momentum) of a triangle wave: ``up`` steps from ``base`` to ``peak``, ``down`` steps back, its height
    times ``amplitude(cycle number from 1, step)``; the momentum mirrors it from ``momenta[1]`` down."""
    cycle, position = divmod(step, up + down)
    fraction = position / up if position <= up else (up + down - position) / down
    height = fraction * amplitude(cycle + 1, step)
    low, high = momenta
    return base + (peak - base) * height, high - (high - low) * height


@pytest.mark.parametrize("optimizer_cls", [SGD, Adam, RMSprop, NAdam])
@pytest.mark.parametrize("kwargs, amplitude", [
    (dict(step_size_up=4), lambda cycle, step: 1.0),
    (dict(step_size_up=3, step_size_down=5, mode="triangular2"), lambda cycle, step: 0.5 ** (cycle - 1)),
    (dict(step_size_up=2, step_size_down=3, mode="exp_range", gamma=0.95), lambda cycle, step: 0.95**step),
    (dict(step_size_up=3, step_size_down=1, scale_fn=lambda x: 1 / x), lambda cycle, step: 1 / cycle),
    (dict(step_size_up=3, scale_fn=lambda x: 0.9**x, scale_mode="iterations"), lambda cycle, step: 0.9**step),
], ids=["triangular", "triangular2", "exp_range", "scale_fn-cycle", "scale_fn-iterations"])
def test_cyclic_lr_and_momentum_follow_the_triangle_wave(optimizer_cls, kwargs, amplitude):
    optimizer = two_group_optimizer(optimizer_cls, **({"momentum": 0.5} if optimizer_cls is RMSprop else {}))
    scheduler = CyclicLR(optimizer, base_lr=[0.01, 0.002], max_lr=[0.1, 0.05], **kwargs)
    up, down = kwargs["step_size_up"], kwargs.get("step_size_down", kwargs["step_size_up"])
    for step in range(3 * (up + down) + 1):
        for group, base, peak in zip(optimizer.param_groups, (0.01, 0.002), (0.1, 0.05)):
            lr, momentum = cyclic_reference(step, base, peak, up, down, amplitude)
            assert group["lr"] == pytest.approx(lr, rel=1e-12)
            assert (group["betas"][0] if "betas" in group else group["momentum"]) == pytest.approx(momentum, rel=1e-12)
            assert (group["max_momentum"], group["base_momentum"]) == (0.9, 0.8)
        assert scheduler.get_last_lr() == [g["lr"] for g in optimizer.param_groups]
        optimizer.step()
        scheduler.step()


# PyTorch 2.13's (lrs, momenta) of each group, step by step, printed with repr
CYCLIC_EXP_RANGE = (
    [[0.01, 0.002], [0.037, 0.016399999999999998], [0.0586, 0.027919999999999993], [0.07561, 0.036992],
     [0.0395245, 0.017746399999999996], [0.01, 0.002], [0.02594323000000002, 0.010503056000000009],
     [0.038697814000000004, 0.017305500799999998], [0.04874204890000001, 0.02266242608],
     [0.02743392200500002, 0.01129809173600001], [0.01, 0.002], [0.01941431788270001, 0.007020969537440006]],
    [[0.9, 0.9], [0.87, 0.87], [0.8460000000000001, 0.8460000000000001], [0.8271000000000001, 0.8271000000000001],
     [0.867195, 0.867195], [0.9, 0.9], [0.8822853, 0.8822853], [0.8681135400000001, 0.8681135400000001],
     [0.8569532790000001, 0.8569532790000001], [0.88062897555, 0.88062897555], [0.9, 0.9],
     [0.889539646797, 0.889539646797]])
CYCLIC_TRIANGULAR2_ADAM = (
    [[0.01, 0.01], [0.055, 0.055], [0.09999999999999999, 0.09999999999999999], [0.01, 0.01],
     [0.03249999999999998, 0.03249999999999998], [0.054999999999999966, 0.054999999999999966], [0.01, 0.01],
     [0.021250000000000005, 0.021250000000000005], [0.0325, 0.0325], [0.01, 0.01]],
    [[0.95, 0.95], [0.825, 0.825], [0.7, 0.7], [0.95, 0.95], [0.8875, 0.8875], [0.8250000000000001, 0.8250000000000001],
     [0.95, 0.95], [0.91875, 0.91875], [0.8875, 0.8875], [0.95, 0.95]])
ONE_CYCLE_THREE_PHASE_LINEAR = (
    [[0.02, 0.008], [0.16117647058823525, 0.06447058823529411], [0.30235294117647055, 0.12094117647058822],
     [0.44352941176470584, 0.17741176470588232], [0.41529411764705887, 0.16611764705882356],
     [0.27411764705882363, 0.10964705882352946], [0.13294117647058834, 0.053176470588235325],
     [0.018750125000000003, 0.007500050000000002], [0.012500750000000003, 0.005000300000000002],
     [0.006251375000000002, 0.0025005500000000016], [1.9999999999985307e-06, 8.000000000004531e-07]],
    [[0.95, 0.95], [0.9205882352941176, 0.9205882352941176], [0.8911764705882352, 0.8911764705882352],
     [0.861764705882353, 0.861764705882353], [0.8676470588235293, 0.8676470588235293],
     [0.8970588235294117, 0.8970588235294117], [0.926470588235294, 0.926470588235294], [0.95, 0.95], [0.95, 0.95],
     [0.95, 0.95], [0.95, 0.95]])


@pytest.mark.parametrize("optimizer_cls, make, want", [
    (SGD, lambda o: CyclicLR(o, [0.01, 0.002], [0.1, 0.05], step_size_up=3, step_size_down=2, mode="exp_range",
                             gamma=0.9), CYCLIC_EXP_RANGE),
    (Adam, lambda o: CyclicLR(o, 0.01, 0.1, step_size_up=2, step_size_down=1, mode="triangular2", base_momentum=0.7,
                              max_momentum=0.95), CYCLIC_TRIANGULAR2_ADAM),
    (SGD, lambda o: OneCycleLR(o, [0.5, 0.2], total_steps=11, three_phase=True, anneal_strategy="linear",
                               pct_start=0.4), ONE_CYCLE_THREE_PHASE_LINEAR),
], ids=["CyclicLR-exp_range", "CyclicLR-triangular2-Adam", "OneCycleLR-three-phase-linear"])
def test_cycling_lrs_and_momenta_equal_pytorch_to_the_last_bit(optimizer_cls, make, want):
    optimizer = two_group_optimizer(optimizer_cls, **({"momentum": 0.9} if optimizer_cls is SGD else {}))
    scheduler = make(optimizer)
    lrs, momenta = [], []
    for _ in range(len(want[0])):
        lrs.append(scheduler.get_last_lr())
        momenta.append([g["betas"][0] if "betas" in g else g["momentum"] for g in optimizer.param_groups])
        optimizer.step()
        scheduler.step()
    assert (lrs, momenta) == (want[0], want[1])


def test_cyclic_lr_without_momentum_cycling_and_its_refusal_for_optimizers_without_momentum():
    optimizer = two_group_optimizer(Adagrad)
    with pytest.raises(ValueError, match="needs an optimizer with a momentum or a beta1, and Adagrad has neither"):
        CyclicLR(optimizer, 0.01, 0.1)
    scheduler = CyclicLR(optimizer, 0.01, 0.1, step_size_up=2, cycle_momentum=False)
    assert lr_sequence(scheduler, 5)[:, 0] == pytest.approx([0.01, 0.055, 0.1, 0.055, 0.01], rel=1e-12)
    assert "max_momentum" not in optimizer.param_groups[0]


class Decay:
    """A callable object: CyclicLR's state dict keeps its attributes."""

    def __init__(self):
        self.rate = 0.5

    def __call__(self, x):
        return self.rate**x


def test_cyclic_lr_state_dict_keeps_a_callable_scale_fn_and_skips_a_function(tmp_path):
    decay = Decay()
    scheduler = CyclicLR(two_group_optimizer(), 0.01, 0.1, step_size_up=2, scale_fn=decay)
    decay.rate = 0.8
    lr_sequence(scheduler, 3)
    state = scheduler.state_dict()
    assert state["_scale_fn_custom"] == {"rate": 0.8}
    save({"scheduler": state}, tmp_path / "s.safetensors")
    resumed = CyclicLR(two_group_optimizer(), 0.01, 0.1, step_size_up=2, scale_fn=Decay())
    resumed.load_state_dict(load(tmp_path / "s.safetensors")["scheduler"])
    assert resumed._scale_fn_custom.rate == 0.8 and resumed.last_epoch == 3
    assert CyclicLR(two_group_optimizer(), 0.01, 0.1, scale_fn=lambda x: 1.0).state_dict()["_scale_fn_custom"] is None


def test_step_count_starts_at_one_after_construction_as_pytorch():
    optimizer = SGD([tl.zeros(1, requires_grad=True)], lr=0.1)
    scheduler = StepLR(optimizer, step_size=2)
    assert scheduler._step_count == 1
    for _ in range(3):
        optimizer.step()
        scheduler.step()
    assert scheduler._step_count == 4
