"""SGD with momentum (from its second step), Adam/AdamW and RMSprop run in one pass on the CPU
(kernels/optim.py), and the parameters and optimizer state equal the array expression's bit for bit, in every
configuration; where the kernel does not apply (float16, maximize, amsgrad, centered RMSprop, SGD's first
step) the expression runs."""

import itertools

import numpy as np
import pytest

import tensorlib as tl
from kernels import optim as optim_kernels
from nn import optim


def train(monkeypatch, fused, dtype, size, steps=4, **hyper):
    calls = []
    original = optim_kernels.sgd_momentum

    def counted(*args):
        done = original(*args) if fused else False
        calls.append(done)
        return done

    monkeypatch.setattr(optim_kernels, "sgd_momentum", counted)
    rng = np.random.default_rng(0)
    p = tl.tensor(rng.standard_normal(size).astype(dtype), requires_grad=True)
    optimizer = optim.SGD([p], lr=0.1, **hyper)
    for _ in range(steps):
        p.grad = tl.tensor(rng.standard_normal(size).astype(dtype))
        optimizer.step()
    return p.detach().numpy().copy(), optimizer.state[p]["momentum_buffer"].copy(), calls


CONFIGS = [dict(momentum=0.9), dict(momentum=0.9, dampening=0.1, weight_decay=1e-3),
           dict(momentum=0.9, weight_decay=5e-4, nesterov=True), dict(momentum=0.5, maximize=True)]


@pytest.mark.parametrize("hyper", CONFIGS, ids=["plain", "dampening-decay", "nesterov", "maximize"])
@pytest.mark.parametrize("dtype, size", list(itertools.product([np.float32, np.float64], [100, 70_000])))
def test_one_pass_equals_the_expression(hyper, dtype, size, monkeypatch):
    fused_p, fused_buf, calls = train(monkeypatch, True, dtype, size, **hyper)
    plain_p, plain_buf, _ = train(monkeypatch, False, dtype, size, **hyper)
    np.testing.assert_array_equal(fused_p.view(np.uint8), plain_p.view(np.uint8))
    np.testing.assert_array_equal(fused_buf.view(np.uint8), plain_buf.view(np.uint8))
    # the first step creates the buffer with the expression; maximize always takes it
    assert calls == ([] if hyper.get("maximize") else [True] * 3)


def test_float16_takes_the_expression(monkeypatch):
    _, _, calls = train(monkeypatch, True, np.float16, 50, momentum=0.9)
    assert calls == [False] * 3


def train_adam(monkeypatch, fused, dtype, size, optimizer_class, steps=4, **hyper):
    calls = []
    original = optim_kernels.adam

    def counted(*args):
        done = original(*args) if fused else False
        calls.append(done)
        return done

    monkeypatch.setattr(optim_kernels, "adam", counted)
    rng = np.random.default_rng(1)
    p = tl.tensor(rng.standard_normal(size).astype(dtype), requires_grad=True)
    optimizer = optimizer_class([p], lr=0.01, **hyper)
    for _ in range(steps):
        p.grad = tl.tensor(rng.standard_normal(size).astype(dtype))
        optimizer.step()
    state = optimizer.state[p]
    return [p.detach().numpy().copy(), state["exp_avg"].copy(), state["exp_avg_sq"].copy()], calls


ADAM_CONFIGS = [(optim.Adam, {}), (optim.Adam, dict(weight_decay=1e-2)), (optim.AdamW, dict(weight_decay=1e-2)),
                (optim.Adam, dict(amsgrad=True)), (optim.Adam, dict(maximize=True))]


@pytest.mark.parametrize("optimizer_class, hyper", ADAM_CONFIGS, ids=["adam", "l2", "adamw", "amsgrad", "maximize"])
@pytest.mark.parametrize("dtype, size", list(itertools.product([np.float32, np.float64], [100, 70_000])))
def test_adam_one_pass_equals_the_expression(optimizer_class, hyper, dtype, size, monkeypatch):
    fused, calls = train_adam(monkeypatch, True, dtype, size, optimizer_class, **hyper)
    plain, _ = train_adam(monkeypatch, False, dtype, size, optimizer_class, **hyper)
    for a, b in zip(fused, plain):
        np.testing.assert_array_equal(a.view(np.uint8), b.view(np.uint8))
    assert calls == ([] if hyper.get("amsgrad") or hyper.get("maximize") else [True] * 4)


def train_rmsprop(monkeypatch, fused, dtype, size, steps=4, **hyper):
    calls = []
    original = optim_kernels.rmsprop

    def counted(*args):
        done = original(*args) if fused else False
        calls.append(done)
        return done

    monkeypatch.setattr(optim_kernels, "rmsprop", counted)
    rng = np.random.default_rng(2)
    p = tl.tensor(rng.standard_normal(size).astype(dtype), requires_grad=True)
    optimizer = optim.RMSprop([p], lr=0.01, **hyper)
    for _ in range(steps):
        p.grad = tl.tensor(rng.standard_normal(size).astype(dtype))
        optimizer.step()
    state = optimizer.state[p]
    return [p.detach().numpy().copy()] + [state[k].copy() for k in ("square_avg", "momentum_buffer") if k in state], calls


RMSPROP_CONFIGS = [{}, dict(weight_decay=1e-2), dict(momentum=0.9), dict(momentum=0.9, weight_decay=1e-3),
                   dict(centered=True), dict(maximize=True)]


@pytest.mark.parametrize("hyper", RMSPROP_CONFIGS, ids=["plain", "decay", "momentum", "momentum-decay", "centered",
                                                        "maximize"])
@pytest.mark.parametrize("dtype, size", list(itertools.product([np.float32, np.float64], [100, 70_000])))
def test_rmsprop_one_pass_equals_the_expression(hyper, dtype, size, monkeypatch):
    fused, calls = train_rmsprop(monkeypatch, True, dtype, size, **hyper)
    plain, _ = train_rmsprop(monkeypatch, False, dtype, size, **hyper)
    for a, b in zip(fused, plain):
        np.testing.assert_array_equal(a.view(np.uint8), b.view(np.uint8))
    assert calls == ([] if hyper.get("centered") or hyper.get("maximize") else [True] * 4)


NUMPY_SCALAR_CASES = [
    (optim.SGD, "sgd_momentum", dict(lr=np.float64(0.1), momentum=0.9)),
    (optim.SGD, "sgd_momentum", dict(lr=0.1, momentum=0.9, weight_decay=np.float64(1e-3))),
    (optim.Adam, "adam", dict(lr=np.float64(0.01))),
    (optim.Adam, "adam", dict(lr=0.01, eps=np.float64(1e-6))),
    (optim.RMSprop, "rmsprop", dict(lr=0.01, alpha=np.float64(0.9), momentum=0.5)),
]


@pytest.mark.parametrize("optimizer_class, kernel, hyper", NUMPY_SCALAR_CASES,
                         ids=["sgd-lr", "sgd-decay", "adam-lr", "adam-eps", "rmsprop-alpha"])
def test_numpy_scalar_hyper_parameters_take_the_expression(optimizer_class, kernel, hyper, monkeypatch):
    """NumPy 2 computes ``np.float64(lr) * buf`` in float64, so a NumPy scalar hyper-parameter (a subclass of
    float) must not reach the kernel, which casts its constants to the parameter's dtype."""
    def run(fused):
        calls = []
        original = getattr(optim_kernels, kernel)

        def counted(*args):
            done = original(*args) if fused else False
            calls.append(done)
            return done

        monkeypatch.setattr(optim_kernels, kernel, counted)
        rng = np.random.default_rng(3)
        p = tl.tensor(rng.standard_normal(1000).astype(np.float32), requires_grad=True)
        optimizer = optimizer_class([p], **hyper)
        for _ in range(3):
            p.grad = tl.tensor(rng.standard_normal(1000).astype(np.float32))
            optimizer.step()
        monkeypatch.setattr(optim_kernels, kernel, original)
        return p.detach().numpy().copy(), calls

    fused, calls = run(True)
    plain, _ = run(False)
    np.testing.assert_array_equal(fused.view(np.uint8), plain.view(np.uint8))
    assert calls and not any(calls)


def test_rmsprop_momentum_raised_after_the_first_step_needs_its_buffer():
    """The buffer is made on the first step only when momentum is on (as in PyTorch); turning momentum on
    later raises KeyError on either path instead of silently stepping without momentum."""
    p = tl.tensor(np.ones(10, dtype=np.float32), requires_grad=True)
    optimizer = optim.RMSprop([p], lr=0.01)
    p.grad = tl.tensor(np.ones(10, dtype=np.float32))
    optimizer.step()
    optimizer.param_groups[0]["momentum"] = 0.9
    with pytest.raises(KeyError, match="momentum_buffer"):
        optimizer.step()
