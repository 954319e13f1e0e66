"""Optimizers and schedulers where they meet PyTorch's API edges: a tensor lr, duplicate parameters, the
foreach/fused/capturable/differentiable arguments, step hooks, the scheduler/optimizer call order, and
integral float epochs in StepLR/MultiStepLR."""

import inspect
import warnings

import numpy as np
import pytest

import tensorlib as tl
from nn import optim
from nn.optim import lr_scheduler
from nn.optim.optimizer import register_optimizer_step_post_hook, register_optimizer_step_pre_hook

# PyTorch 2.13's signatures (inspect.signature), and the optimizers' arguments used by the tests below
SIGNATURES = {
    "SGD": "params lr momentum dampening weight_decay nesterov *maximize *foreach *differentiable *fused",
    "Adam": "params lr betas eps weight_decay amsgrad *foreach *maximize *capturable *differentiable *fused "
            "*decoupled_weight_decay",
    "AdamW": "params lr betas eps weight_decay amsgrad *maximize *foreach *capturable *differentiable *fused",
    "Adamax": "params lr betas eps weight_decay foreach *maximize *differentiable *capturable",
    "NAdam": "params lr betas eps weight_decay momentum_decay decoupled_weight_decay *foreach *maximize *capturable "
             "*differentiable",
    "RAdam": "params lr betas eps weight_decay decoupled_weight_decay *foreach *maximize *capturable *differentiable",
    "RMSprop": "params lr alpha eps weight_decay momentum centered capturable foreach maximize differentiable",
    "Adagrad": "params lr lr_decay weight_decay initial_accumulator_value eps foreach *maximize *differentiable *fused",
    "Adadelta": "params lr rho eps weight_decay foreach *capturable *maximize *differentiable",
}
OFF = {"foreach": None, "fused": None, "capturable": False, "differentiable": False}
OPTIONS = {"SGD": dict(momentum=0.9, weight_decay=0.01), "Adam": dict(weight_decay=0.1), "AdamW": {},
           "Adamax": dict(weight_decay=0.1), "NAdam": dict(decoupled_weight_decay=True, weight_decay=0.1),
           "RAdam": dict(decoupled_weight_decay=True, weight_decay=0.1), "RMSprop": dict(momentum=0.5, centered=True),
           "Adagrad": dict(lr_decay=0.01), "Adadelta": dict(weight_decay=0.1)}


def run(name, lr, start, grads, **options):
    """The parameter after one step per gradient (set by hand: the numbers are the optimizer's alone)."""
    param = tl.tensor(start.copy(), requires_grad=True)
    optimizer = getattr(optim, name)([param], lr=lr, **options)
    for grad in grads:
        param.grad = tl.tensor(grad.copy())
        optimizer.step()
    assert type(param.array) is np.ndarray
    return param.array, optimizer


# ---- lr given as a tensor ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", SIGNATURES)
@pytest.mark.parametrize("shape", [(5,), (3, 4)])
def test_a_float64_tensor_lr_steps_as_the_same_float(name, shape):
    rng = np.random.default_rng(0)
    start, grads = rng.standard_normal(shape), [rng.standard_normal(shape) for _ in range(3)]
    lr = 0.9 if name == "Adadelta" else 0.03
    got, optimizer = run(name, tl.tensor(lr, dtype=tl.float64), start, grads, **OPTIONS[name])
    want, _ = run(name, lr, start, grads, **OPTIONS[name])
    np.testing.assert_array_equal(got, want)
    assert type(optimizer.param_groups[0]["lr"]) is float and optimizer.param_groups[0]["lr"] == lr


def test_a_float32_tensor_lr_rounds_the_step_size_in_float32_as_pytorch():
    """Adam's step size lr / (1 - beta1) is a float32 number when lr is a float32 tensor (PyTorch computes it
    with the 0-d tensor), applied to float64 parameters at that value."""
    rng = np.random.default_rng(1)
    start, grad = rng.standard_normal(6), rng.standard_normal(6)
    got, optimizer = run("Adam", tl.tensor(0.1), start, [grad])
    lr = optimizer.param_groups[0]["lr"]
    assert type(lr) is np.float32 and lr == np.float32(0.1)
    m, v = 0.1 * grad, 0.001 * grad * grad
    step_size = float(np.float32(0.1) / np.float32(1 - 0.9))
    want = start - step_size * m / (np.sqrt(v) / np.sqrt(1 - 0.999) + 1e-8)
    np.testing.assert_allclose(got, want, rtol=1e-14, atol=0)
    unrounded = start - float(np.float32(0.1)) / (1 - 0.9) * m / (np.sqrt(v) / np.sqrt(1 - 0.999) + 1e-8)
    assert not np.allclose(got, unrounded, rtol=1e-12, atol=0)


def test_schedules_of_a_float32_tensor_lr_are_pytorchs():
    param = tl.zeros(2, requires_grad=True)
    optimizer = optim.SGD([param], lr=tl.tensor(0.1))
    step_lr = lr_scheduler.StepLR(optimizer, 2, 0.1)
    lrs = []
    for _ in range(6):
        optimizer.step()
        step_lr.step()
        lrs.append(float(step_lr.get_last_lr()[0]))
    # PyTorch 2.13's values (a float32 tensor lr): each decay rounds to float32
    assert lrs == [0.10000000149011612, 0.010000000707805157, 0.010000000707805157, 0.0010000000474974513,
                   0.0010000000474974513, 0.00010000000474974513]
    optimizer = optim.SGD([param], lr=tl.tensor(0.1))
    exponential = lr_scheduler.ExponentialLR(optimizer, 0.9)
    for _ in range(4):
        optimizer.step()
        exponential.step()
    assert float(exponential.get_last_lr()[0]) == 0.06560999155044556  # PyTorch 2.13's
    cyclic = lr_scheduler.OneCycleLR(optim.SGD([param], lr=tl.tensor(0.1)), max_lr=0.3, total_steps=5)
    assert all(type(group_lr) is np.float32 for group_lr in cyclic.get_last_lr())


def test_tensor_lr_errors_and_groups():
    param = tl.zeros(2, requires_grad=True)
    with pytest.raises(ValueError, match=r"Tensor lr must be 1-element, got a tensor of shape \(2,\)"):
        optim.Adam([param], lr=tl.tensor([0.1, 0.2]))
    with pytest.raises(ValueError, match="Invalid lr value"):
        optim.SGD([param], lr=tl.tensor(-0.1))
    optimizer = optim.SGD([param], lr=0.1)
    optimizer.add_param_group({"params": [tl.zeros(1, requires_grad=True)], "lr": tl.tensor([0.5], dtype=tl.float64)})
    assert optimizer.param_groups[1]["lr"] == 0.5 and type(optimizer.param_groups[1]["lr"]) is float


# ---- duplicate parameters ---------------------------------------------------------------------------------------
def duplicated(name, **options):
    p = tl.tensor(np.array([1.0, -2.0, 0.5]), requires_grad=True)
    q = tl.tensor(np.array([3.0]), requires_grad=True)
    with pytest.warns(UserWarning, match="optimizer contains a parameter group with duplicate parameters; in "
                                         r"future, this will cause an error \(params\[2\], of shape \(3,\)"):
        optimizer = getattr(optim, name)([p, q, p], **options)
    return p, q, optimizer


def test_a_duplicate_parameter_is_stepped_once_per_listing_as_in_pytorch():
    p, q, optimizer = duplicated("SGD", lr=0.1, momentum=0.9)
    start, momentum_buffer = p.array.copy(), None
    for step in range(3):
        p.grad, q.grad = tl.tensor(2 * p.array), tl.tensor(2 * q.array)
        grad, expected = 2 * p.array, p.array.copy()
        for _ in range(2):  # PyTorch: each listing reads the buffer as the step began (none on the first step)
            buf = grad.copy() if momentum_buffer is None else 0.9 * momentum_buffer + grad
            if momentum_buffer is not None:
                momentum_buffer = buf
            expected -= 0.1 * buf
        momentum_buffer = buf
        optimizer.step()
        np.testing.assert_allclose(p.array, expected, rtol=1e-14)
        np.testing.assert_allclose(optimizer.state[p]["momentum_buffer"], momentum_buffer, rtol=1e-14)
    assert not np.allclose(p.array, start)
    saved = optimizer.state_dict()  # numbered by position, the last listing winning, as PyTorch numbers them
    assert saved["param_groups"][0]["params"] == [2, 1, 2] and sorted(saved["state"]) == [1, 2]


def test_a_duplicate_parameter_shares_its_state_across_listings():
    p, q, optimizer = duplicated("Adam", lr=0.1)
    twice = optim.Adam([tl.tensor(np.array([1.0, -2.0, 0.5]), requires_grad=True)], lr=0.1)
    p.grad = tl.tensor(np.array([0.5, 1.0, -2.0]))
    optimizer.step()
    for _ in range(2):  # the same gradient applied in two steps
        twice.param_groups[0]["params"][0].grad = tl.tensor(np.array([0.5, 1.0, -2.0]))
        twice.step()
    assert optimizer.state[p]["step"] == 2 and q not in optimizer.state
    np.testing.assert_array_equal(p.array, twice.param_groups[0]["params"][0].array)


# ---- foreach / fused / capturable / differentiable ---------------------------------------------------------------
@pytest.mark.parametrize("name", SIGNATURES)
def test_signatures_and_groups_are_pytorchs(name):
    cls = getattr(optim, name)
    parameters = inspect.signature(cls).parameters.values()
    got = " ".join(("*" if p.kind is inspect.Parameter.KEYWORD_ONLY else "") + p.name for p in parameters)
    assert got == SIGNATURES[name]
    flags = [flag for flag in OFF if flag in inspect.signature(cls).parameters]
    optimizer = cls([tl.zeros(2, requires_grad=True)], **{flag: OFF[flag] for flag in flags})
    assert {flag: optimizer.param_groups[0][flag] for flag in flags} == {flag: OFF[flag] for flag in flags}
    assert optimizer.state_dict()["param_groups"][0].keys() >= set(flags)
    cls([tl.zeros(2, requires_grad=True)], **{flag: False for flag in flags})
    for flag in flags:
        with pytest.raises(ValueError, match=rf"{flag}=True is not supported: .*; pass {flag}={OFF[flag]!r}"):
            cls([tl.zeros(2, requires_grad=True)], **{flag: True})


def test_capturable_and_differentiable_say_why():
    param = [tl.zeros(2, requires_grad=True)]
    with pytest.raises(ValueError, match="nn.GraphedStep"):
        optim.Adam(param, capturable=True)
    with pytest.raises(ValueError, match="not differentiable"):
        optim.SGD(param, differentiable=True)
    with pytest.raises(ValueError, match="one implementation"):
        optim.RMSprop(param, foreach=True)


# ---- step hooks and the call order ---------------------------------------------------------------------------------
def test_step_hooks_run_in_pytorchs_order_and_can_replace_the_arguments():
    param = tl.tensor(np.array([1.0, 2.0]), requires_grad=True)
    optimizer = optim.SGD([param], lr=0.5)
    calls = []
    handles = [
        register_optimizer_step_pre_hook(lambda opt, args, kwargs: calls.append(("global pre", args[0] is opt))),
        optimizer.register_step_pre_hook(lambda opt, args, kwargs: calls.append(("pre", len(args), kwargs))),
        optimizer.register_step_post_hook(lambda opt, args, kwargs: calls.append(("post", len(args), kwargs))),
        register_optimizer_step_post_hook(lambda opt, args, kwargs: calls.append(("global post",))),
    ]
    try:
        param.grad = tl.tensor(np.array([1.0, -1.0]))
        optimizer.step(closure=None)
        assert calls == [("global pre", True), ("pre", 1, {"closure": None}), ("post", 1, {"closure": None}),
                         ("global post",)]
        np.testing.assert_array_equal(param.array, [0.5, 2.5])
    finally:
        for handle in handles:
            handle.remove()
    calls.clear()
    optimizer.step()
    assert calls == []

    def closure():
        return 7.0

    with optimizer.register_step_pre_hook(lambda opt, args, kwargs: ((opt,), {"closure": closure})):
        assert optimizer.step() == 7.0
    with optimizer.register_step_pre_hook(lambda opt, args, kwargs: 5):
        with pytest.raises(RuntimeError, match=r"must return None or a tuple \(new_args, new_kwargs\), but got 5"):
            optimizer.step()
    with pytest.raises(TypeError, match="hook must be callable"):
        optimizer.register_step_post_hook(3)


def test_a_step_calling_super_step_runs_the_hooks_once():
    class Counting(optim.SGD):
        def step(self, closure=None):
            self.steps = getattr(self, "steps", 0) + 1
            return super().step(closure)

    optimizer = Counting([tl.zeros(2, requires_grad=True)], lr=0.1)
    calls = []
    optimizer.register_step_pre_hook(lambda *args: calls.append("pre"))
    optimizer.register_step_post_hook(lambda *args: calls.append("post"))
    optimizer.step()
    assert calls == ["pre", "post"] and optimizer.steps == 1 and optimizer._opt_called


def scheduled():
    optimizer = optim.SGD([tl.zeros(2, requires_grad=True)], lr=0.1)
    return optimizer, lr_scheduler.StepLR(optimizer, 2)


def test_stepping_the_scheduler_first_warns_once():
    optimizer, scheduler = scheduled()
    with pytest.warns(UserWarning, match=r"Detected call of `lr_scheduler.step\(\)` before `optimizer.step\(\)`"):
        scheduler.step()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        scheduler.step()
        optimizer.step()
        scheduler.step()
        optimizer, scheduler = scheduled()
        optimizer.step()
        scheduler.step()
    assert issubclass(lr_scheduler._LRScheduler, lr_scheduler.LRScheduler)
    assert lr_scheduler._LRScheduler.__name__ == "_LRScheduler"


# ---- integral float epochs ----------------------------------------------------------------------------------------
def lr_sequence(make, steps):
    optimizer = optim.SGD([tl.zeros(1, requires_grad=True)], lr=0.1)
    scheduler = make(optimizer)
    lrs = []
    for _ in range(steps):
        optimizer.step()
        scheduler.step()
        lrs.append(scheduler.get_last_lr()[0])
    return lrs


def test_integral_float_epochs_count_as_ints():
    assert lr_sequence(lambda o: lr_scheduler.StepLR(o, step_size=6 * 0.5), 10) == \
        lr_sequence(lambda o: lr_scheduler.StepLR(o, step_size=3), 10)
    floats = lr_sequence(lambda o: lr_scheduler.MultiStepLR(o, milestones=[10 * 0.5, 16 * 0.5, 5.0]), 10)
    assert floats == lr_sequence(lambda o: lr_scheduler.MultiStepLR(o, milestones=[5, 8, 5]), 10)
    assert floats[3] == 0.1 and floats[4] == pytest.approx(0.001) and floats[7] == pytest.approx(0.0001)
    optimizer = optim.SGD([tl.zeros(1, requires_grad=True)], lr=0.1)
    assert lr_scheduler.MultiStepLR(optimizer, [np.float64(4.0)]).milestones == {4: 1}
    with pytest.raises(TypeError, match=r"milestones must be integer epochs, got 50.5 in \[10, 50.5\]"):
        lr_scheduler.MultiStepLR(optimizer, [10, 50.5])
    with pytest.raises(ValueError, match="Expected positive integer step_size, but got 3.5"):
        lr_scheduler.StepLR(optimizer, step_size=3.5)
    with pytest.raises(ValueError, match="Expected positive integer step_size, but got 0.0"):
        lr_scheduler.StepLR(optimizer, step_size=0.0)
