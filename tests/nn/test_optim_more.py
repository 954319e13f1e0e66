"""The Optimizer API beyond the update rules (test_optim.py checks those): named parameters, per-group
hyper-parameters of the newer optimizers, their state (Adagrad's from construction, NAdam's host-side
mu_product), loading older or PyTorch-shaped state dicts, RAdam's switch to the rectified step, and the
hyper-parameter checks of every optimizer."""

import inspect

import numpy as np
import pytest

import tensorlib as tl
from nn.optim import SGD, Adadelta, Adagrad, Adam, Adamax, AdamW, NAdam, RAdam, RMSprop


def quadratic(params):
    return sum(((p - 0.5) ** 2 * (index + 1.0)).sum() for index, p in enumerate(params))


def train(optimizer, params, steps):
    for _ in range(steps):
        optimizer.zero_grad()
        quadratic(params).backward()
        optimizer.step()
    return [p.detach().numpy().copy() for p in params]


def fresh_params(seed=0, dtype=tl.float64):
    rng = np.random.default_rng(seed)
    return [tl.tensor(rng.standard_normal(shape), dtype=dtype, requires_grad=True) for shape in [(3, 2), (4,)]]


def test_named_parameters_are_kept_as_param_names_and_train_alike():
    named, plain = fresh_params(), fresh_params()
    optimizer = Adam([("layer.weight", named[0]), ("layer.bias", named[1])], lr=0.1)
    group = optimizer.param_groups[0]
    assert group["param_names"] == ["layer.weight", "layer.bias"] and group["params"][0] is named[0]
    for got, want in zip(train(optimizer, named, 3), train(Adam(plain, lr=0.1), plain, 3)):
        np.testing.assert_array_equal(got, want)
    saved = optimizer.state_dict()
    assert saved["param_groups"][0]["param_names"] == ["layer.weight", "layer.bias"]
    assert saved["param_groups"][0]["params"] == [0, 1]
    with pytest.raises(ValueError, match="with/without names"):
        optimizer.add_param_group({"params": [tl.randn(2, requires_grad=True)]})
    with pytest.raises(ValueError, match="with/without names"):
        SGD([("w", named[0]), named[1]])
    with pytest.raises(ValueError, match="with/without names"):
        SGD([named[0]]).add_param_group({"params": [("b", named[1])]})


def test_a_refused_group_leaves_the_optimizer_and_the_group_as_they_were():
    a, b = fresh_params()
    optimizer = SGD([a], lr=0.1)
    group = {"params": [b, a], "lr": 0.5}
    with pytest.raises(ValueError, match="more than one parameter group"):
        optimizer.add_param_group(group)
    assert len(optimizer.param_groups) == 1 and group == {"params": [b, a], "lr": 0.5}
    with pytest.warns(UserWarning, match=r"duplicate parameters.*\(params\[1\], of shape \(4,\)"):
        SGD([b, b])  # as PyTorch: a warning, and the parameter stays listed twice
    with pytest.raises(KeyError, match="'params' entry"):
        optimizer.add_param_group({"lr": 0.1})


def test_zero_grad_sets_gradients_to_none_by_default():
    params = fresh_params()
    optimizer = RAdam(params)
    quadratic(params).backward()
    optimizer.zero_grad()
    assert all(p.grad is None for p in params)


def test_closure_and_skipped_parameters_with_the_newer_optimizers():
    for cls in (Adagrad, Adadelta, Adamax, NAdam, RAdam):
        used, unused = fresh_params()
        before = unused.detach().numpy().copy()
        optimizer = cls([used, unused])

        def closure():
            optimizer.zero_grad()
            loss = (used * used).sum()
            loss.backward()
            return loss

        want_loss = float((used.detach().numpy() ** 2).sum())
        assert optimizer.step(closure).item() == pytest.approx(want_loss, rel=1e-12)
        np.testing.assert_array_equal(unused.detach().numpy(), before)
        assert optimizer.state[used]["step"] == 1
        assert unused not in optimizer.state or optimizer.state[unused]["step"] == 0  # Adagrad: state from the start


@pytest.mark.parametrize("cls, group_kwargs", [
    (Adagrad, [dict(lr=0.2, lr_decay=0.5), dict(initial_accumulator_value=1.0)]),
    (Adadelta, [dict(rho=0.5), dict(lr=0.3, weight_decay=0.1)]),
    (Adamax, [dict(betas=(0.5, 0.7)), dict(lr=0.01)]),
    (NAdam, [dict(momentum_decay=0.5), dict(betas=(0.7, 0.8), decoupled_weight_decay=True, weight_decay=0.1)]),
    (RAdam, [dict(betas=(0.8, 0.9)), dict(lr=0.2, eps=1e-2)]),
], ids=lambda v: v.__name__ if isinstance(v, type) else "")
def test_each_group_follows_its_own_hyper_parameters(cls, group_kwargs):
    """Two groups with their own settings step exactly as two optimizers, one per group, would."""
    params, alone = fresh_params(), fresh_params()
    together = cls([{"params": [p], **kwargs} for p, kwargs in zip(params, group_kwargs)])
    separate = [cls([p], **kwargs) for p, kwargs in zip(alone, group_kwargs)]
    for _ in range(7):
        for optimizer in [together] + separate:
            optimizer.zero_grad()
        quadratic(params).backward()
        quadratic(alone).backward()
        together.step()
        for optimizer in separate:
            optimizer.step()
    for got, want in zip(params, alone):
        np.testing.assert_array_equal(got.detach().numpy(), want.detach().numpy())


def test_adagrad_state_exists_from_construction_and_for_groups_added_later():
    a, b = fresh_params()
    optimizer = Adagrad([a], lr=0.1, initial_accumulator_value=0.25)
    state = optimizer.state_dict()["state"]
    assert state[0]["step"] == 0 and np.array_equal(state[0]["sum"], np.full((3, 2), 0.25))
    optimizer.add_param_group({"params": [b], "initial_accumulator_value": 2.0})
    b_value, want_sum = b.detach().numpy().copy(), np.full(4, 2.0)
    for _ in range(2):
        grad = 4 * (b_value - 0.5)  # b is the second term of the quadratic, weighted by 2
        want_sum += grad * grad
        b_value = b_value - 0.1 * grad / (np.sqrt(want_sum) + 1e-10)
    train(optimizer, [a, b], 2)
    assert optimizer.state[b]["step"] == 2
    np.testing.assert_allclose(optimizer.state[b]["sum"], want_sum, rtol=1e-13)
    np.testing.assert_allclose(b.detach().numpy(), b_value, rtol=1e-13)


def test_sgd_without_momentum_keeps_no_state():
    params = fresh_params()
    optimizer = SGD(params, lr=0.1)
    train(optimizer, params, 2)
    assert optimizer.state_dict()["state"] == {}


def test_radam_takes_momentum_steps_until_the_variance_is_tractable():
    """With beta2 = 0.9, rho_t passes 5 at step 6: the first five steps are ``lr * m_hat``, the sixth is not."""
    (param,) = [tl.tensor([1.0, -2.0], dtype=tl.float64, requires_grad=True)]
    optimizer = RAdam([param], lr=0.1, betas=(0.8, 0.9))
    m = np.zeros(2)
    for step in range(1, 7):
        before = param.detach().numpy().copy()
        optimizer.zero_grad()
        (param * param).sum().backward()
        grad = 2 * before
        optimizer.step()
        m = 0.8 * m + 0.2 * grad
        momentum_step = 0.1 * m / (1 - 0.8**step)
        moved = before - param.detach().numpy()
        if step <= 5:
            np.testing.assert_allclose(moved, momentum_step, rtol=1e-12)
        else:
            assert not np.allclose(moved, momentum_step, rtol=1e-3)


def test_nadam_state_loads_from_0d_arrays_as_pytorch_saves_it():
    params = fresh_params()
    optimizer = NAdam(params, lr=0.05)
    train(optimizer, params, 3)
    saved = optimizer.state_dict()
    assert isinstance(saved["state"][0]["mu_product"], float)
    for entry in saved["state"].values():  # PyTorch keeps step and mu_product as 0-d tensors
        entry["step"] = np.array(float(entry["step"]), dtype=np.float32)
        entry["mu_product"] = np.array(entry["mu_product"])
    resumed_params = [tl.tensor(p.detach().numpy(), requires_grad=True) for p in params]
    uninterrupted = train(optimizer, params, 3)
    resumed = NAdam(resumed_params)
    resumed.load_state_dict(saved)
    assert isinstance(resumed.state[resumed_params[0]]["mu_product"], float)
    for got, want in zip(train(resumed, resumed_params, 3), uninterrupted):
        np.testing.assert_allclose(got, want, rtol=1e-15)


def test_load_state_dict_fills_hyper_parameters_the_state_dict_lacks_and_keeps_names():
    params = fresh_params()
    optimizer = Adam([("w", params[0]), ("b", params[1])], lr=0.1)
    train(optimizer, params, 1)
    saved = optimizer.state_dict()
    del saved["param_groups"][0]["decoupled_weight_decay"], saved["param_groups"][0]["param_names"]
    optimizer.load_state_dict(saved)
    group = optimizer.param_groups[0]
    assert group["decoupled_weight_decay"] is False and group["param_names"] == ["w", "b"] and group["lr"] == 0.1


@pytest.mark.parametrize("make, message", [
    (lambda p: Adagrad(p, lr=-0.1), r"Invalid lr value: -0.1 \(expected a number >= 0\)"),
    (lambda p: Adagrad(p, lr_decay=-1), "Invalid lr_decay value: -1"),
    (lambda p: Adagrad(p, initial_accumulator_value=-1), "Invalid initial_accumulator_value value: -1"),
    (lambda p: Adagrad(p, eps=-1e-10), "Invalid eps value"),
    (lambda p: Adagrad(p, weight_decay=-1), "Invalid weight_decay value"),
    (lambda p: Adadelta(p, rho=1.5), r"Invalid rho value: 1.5 \(expected a number in \[0, 1\]\)"),
    (lambda p: Adadelta(p, lr=-1), "Invalid lr value"),
    (lambda p: Adadelta(p, eps=-1), "Invalid eps value"),
    (lambda p: Adamax(p, betas=(0.9, 1.0)), r"Invalid betas\[1\] value: 1.0 \(expected a number in \[0, 1\)\)"),
    (lambda p: Adamax(p, weight_decay=-1), "Invalid weight_decay value"),
    (lambda p: NAdam(p, momentum_decay=-1), "Invalid momentum_decay value: -1"),
    (lambda p: NAdam(p, betas=(-0.1, 0.9)), r"Invalid betas\[0\] value: -0.1"),
    (lambda p: RAdam(p, eps=-1), "Invalid eps value"),
    (lambda p: RAdam(p, lr=float("nan")), "Invalid lr value: nan"),
    (lambda p: Adam(p, betas=(0.9,)), r"betas must be a pair \(beta1, beta2\), got \(0.9,\)"),
    (lambda p: AdamW(p, betas=(0.9, 0.99, 0.999)), "betas must be a pair"),
    (lambda p: RMSprop(p, eps=-1), "Invalid eps value"),
])
def test_bad_hyper_parameters_name_the_argument_value_and_range(make, message):
    with pytest.raises(ValueError, match=message):
        make([tl.randn(2, requires_grad=True)])


@pytest.mark.parametrize("cls", [SGD, Adam, AdamW, Adagrad, Adadelta, Adamax, NAdam, RAdam])
def test_maximize_is_keyword_only_as_in_pytorch(cls):
    assert inspect.signature(cls).parameters["maximize"].kind is inspect.Parameter.KEYWORD_ONLY


@pytest.mark.parametrize("default_dtype", [tl.float32, tl.float64])
def test_nadam_keeps_mu_product_in_the_default_dtype(default_dtype):
    """PyTorch keeps mu_product as a 0-d tensor of the default dtype, whatever the parameters' dtype: with
    float32 by default, mu is rounded to float32 and the running product multiplied in float32."""
    rng = np.random.default_rng(3)
    start, grads = rng.standard_normal((5, 4)), rng.standard_normal((30, 5, 4))
    lr, beta1, beta2, eps, momentum_decay = 0.01, 0.9, 0.999, 1e-8, 4e-3

    def reference(rounded):
        p, m, v, product = start.copy(), np.zeros_like(start), np.zeros_like(start), 1.0
        for t, g in enumerate(grads, start=1):
            mu, mu_next = (beta1 * (1 - 0.5 * 0.96 ** (step * momentum_decay)) for step in (t, t + 1))
            product = float(np.float32(product) * np.float32(mu)) if rounded else product * mu
            m = beta1 * m + (1 - beta1) * g
            v = beta2 * v + (1 - beta2) * g * g
            denom = np.sqrt(v / (1 - beta2**t)) + eps
            p = p - lr * (1 - mu) / (1 - product) * g / denom - lr * mu_next / (1 - product * mu_next) * m / denom
        return p, product

    previous = tl.get_default_dtype()
    tl.set_default_dtype(default_dtype)
    try:
        param = tl.tensor(start, dtype=tl.float64, requires_grad=True)
        optimizer = NAdam([param], lr=lr)
        for g in grads:
            param.grad = tl.tensor(g, dtype=tl.float64)
            optimizer.step()
    finally:
        tl.set_default_dtype(previous)
    want, product = reference(rounded=default_dtype == tl.float32)
    other, _ = reference(rounded=default_dtype != tl.float32)
    assert optimizer.state[param]["mu_product"] == product
    np.testing.assert_allclose(param.detach().numpy(), want, rtol=1e-14, atol=1e-15)
    assert np.abs(other - want).max() > 1e-12  # the rounding is visible at this tolerance
