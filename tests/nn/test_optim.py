"""Optimizers against their update rules written out in NumPy float64; groups, zero_grad, state dicts,
hyper-parameter checks; gradient clipping and parameter vectors."""

import math

import numpy as np
import pytest

import tensorlib as tl
from nn.optim import SGD, Adadelta, Adagrad, Adam, Adamax, AdamW, NAdam, Optimizer, RAdam, RMSprop
from nn.utils import (
    clip_grad_norm_, clip_grad_value_, clip_grads_with_norm_, get_total_norm, parameters_to_vector,
    vector_to_parameters,
)
from nn.optim.optimizer import DeviceScalars

# ---- two problems: a weighted quadratic and a tiny 2-layer network, each with its gradient in NumPy -------------
_rng = np.random.default_rng(7)
QUAD_WEIGHTS = [_rng.uniform(0.5, 2.0, (4,)), _rng.uniform(0.5, 2.0, (2, 3))]
QUAD_TARGETS = [_rng.standard_normal((4,)), _rng.standard_normal((2, 3))]
NET_X, NET_Y = _rng.standard_normal((8, 3)), _rng.standard_normal((8, 2))
START = {
    "quadratic": [_rng.standard_normal((4,)), _rng.standard_normal((2, 3))],
    "net": [_rng.standard_normal((3, 5)), _rng.standard_normal((5, 2))],
}


def quadratic_loss(params):
    return sum(((p - t) ** 2 * w).sum() for p, w, t in zip(params, QUAD_WEIGHTS, QUAD_TARGETS))


def quadratic_grads(params):
    return [2 * w * (p - t) for p, w, t in zip(params, QUAD_WEIGHTS, QUAD_TARGETS)]


def net_loss(params):
    w1, w2 = params
    x, y = tl.tensor(NET_X, dtype=w1.dtype), tl.tensor(NET_Y, dtype=w1.dtype)
    return (((x @ w1).relu() @ w2 - y) ** 2).mean()


def net_grads(params):
    w1, w2 = params
    hidden = NET_X @ w1
    active = np.maximum(hidden, 0)
    d_out = 2 * (active @ w2 - NET_Y) / NET_Y.size
    return [NET_X.T @ ((d_out @ w2.T) * (hidden > 0)), active.T @ d_out]


PROBLEMS = {"quadratic": (quadratic_loss, quadratic_grads), "net": (net_loss, net_grads)}


# ---- the textbook update rules, one parameter at a time, state in a dict ----------------------------------------
def sgd_rule(p, g, s, lr, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False, maximize=False):
    g = (-g if maximize else g) + weight_decay * p
    if momentum:
        s["buf"] = g.copy() if "buf" not in s else momentum * s["buf"] + (1 - dampening) * g
        g = g + momentum * s["buf"] if nesterov else s["buf"]
    p -= lr * g


def adam_rule(p, g, s, lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False, maximize=False,
              decoupled=False):
    beta1, beta2 = betas
    g = -g if maximize else g
    if decoupled:
        p *= 1 - lr * weight_decay
    else:
        g = g + weight_decay * p
    t = s["t"] = s.get("t", 0) + 1
    m = s["m"] = beta1 * s.get("m", 0.0) + (1 - beta1) * g
    v = s["v"] = beta2 * s.get("v", 0.0) + (1 - beta2) * g * g
    if amsgrad:
        v = s["v_max"] = np.maximum(s.get("v_max", 0.0), v)
    m_hat, v_hat = m / (1 - beta1**t), v / (1 - beta2**t)
    p -= lr * m_hat / (np.sqrt(v_hat) + eps)


def adamw_rule(p, g, s, lr, weight_decay=1e-2, **kwargs):
    adam_rule(p, g, s, lr, weight_decay=weight_decay, decoupled=True, **kwargs)


def rmsprop_rule(p, g, s, lr, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0, centered=False, maximize=False):
    g = (-g if maximize else g) + weight_decay * p
    v = s["v"] = alpha * s.get("v", 0.0) + (1 - alpha) * g * g
    if centered:
        s["g_avg"] = alpha * s.get("g_avg", 0.0) + (1 - alpha) * g
        v = v - s["g_avg"] ** 2
    update = g / (np.sqrt(v) + eps)
    if momentum:
        update = s["buf"] = momentum * s.get("buf", 0.0) + update
    p -= lr * update


def adagrad_rule(p, g, s, lr, lr_decay=0.0, weight_decay=0.0, initial_accumulator_value=0.0, eps=1e-10,
                 maximize=False):
    g = (-g if maximize else g) + weight_decay * p
    t = s["t"] = s.get("t", 0) + 1
    s["sum"] = s.get("sum", initial_accumulator_value) + g * g
    p -= lr / (1 + (t - 1) * lr_decay) * g / (np.sqrt(s["sum"]) + eps)


def adadelta_rule(p, g, s, lr=1.0, rho=0.9, eps=1e-6, weight_decay=0.0, maximize=False):
    g = (-g if maximize else g) + weight_decay * p
    v = s["v"] = rho * s.get("v", 0.0) + (1 - rho) * g * g
    delta = np.sqrt(s.get("u", 0.0) + eps) / np.sqrt(v + eps) * g
    s["u"] = rho * s.get("u", 0.0) + (1 - rho) * delta * delta
    p -= lr * delta


def adamax_rule(p, g, s, lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, maximize=False):
    beta1, beta2 = betas
    g = (-g if maximize else g) + weight_decay * p
    t = s["t"] = s.get("t", 0) + 1
    m = s["m"] = beta1 * s.get("m", 0.0) + (1 - beta1) * g
    u = s["u"] = np.maximum(beta2 * s.get("u", 0.0), np.abs(g) + eps)
    p -= lr / (1 - beta1**t) * m / u


def nadam_rule(p, g, s, lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, momentum_decay=4e-3,
               decoupled_weight_decay=False, maximize=False):
    beta1, beta2 = betas
    g = -g if maximize else g
    if decoupled_weight_decay:
        p *= 1 - lr * weight_decay
    else:
        g = g + weight_decay * p
    t = s["t"] = s.get("t", 0) + 1

    def mu(step):  # the momentum schedule
        return beta1 * (1 - 0.5 * 0.96 ** (step * momentum_decay))

    # the running product in float32, as PyTorch keeps it when the default dtype is float32
    product = s["mu_product"] = float(np.float32(s.get("mu_product", 1.0)) * np.float32(mu(t)))
    m = s["m"] = beta1 * s.get("m", 0.0) + (1 - beta1) * g
    v = s["v"] = beta2 * s.get("v", 0.0) + (1 - beta2) * g * g
    denom = np.sqrt(v / (1 - beta2**t)) + eps
    p -= lr * (1 - mu(t)) / (1 - product) * g / denom + lr * mu(t + 1) / (1 - product * mu(t + 1)) * m / denom


def radam_rule(p, g, s, lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, decoupled_weight_decay=False,
               maximize=False):
    beta1, beta2 = betas
    g = -g if maximize else g
    if decoupled_weight_decay:
        p *= 1 - lr * weight_decay
    else:
        g = g + weight_decay * p
    t = s["t"] = s.get("t", 0) + 1
    m = s["m"] = beta1 * s.get("m", 0.0) + (1 - beta1) * g
    v = s["v"] = beta2 * s.get("v", 0.0) + (1 - beta2) * g * g
    m_hat = m / (1 - beta1**t)
    rho_inf = 2 / (1 - beta2) - 1
    rho_t = rho_inf - 2 * t * beta2**t / (1 - beta2**t)
    s.setdefault("rectified", []).append(rho_t > 5)
    if rho_t > 5:
        r = np.sqrt((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t))
        p -= lr * m_hat * r * np.sqrt(1 - beta2**t) / (np.sqrt(v) + eps)
    else:
        p -= lr * m_hat


CASES = [
    (SGD, sgd_rule, dict(lr=0.1)),
    (SGD, sgd_rule, dict(lr=0.05, momentum=0.9)),
    (SGD, sgd_rule, dict(lr=0.05, momentum=0.9, dampening=0.3)),
    (SGD, sgd_rule, dict(lr=0.05, momentum=0.8, nesterov=True, weight_decay=0.1)),
    (SGD, sgd_rule, dict(lr=0.01, momentum=0.5, maximize=True)),
    (Adam, adam_rule, dict(lr=0.05)),
    (Adam, adam_rule, dict(lr=0.05, betas=(0.5, 0.9), weight_decay=0.1)),
    (Adam, adam_rule, dict(lr=0.05, amsgrad=True)),
    (Adam, adam_rule, dict(lr=0.01, maximize=True, eps=1e-3)),
    (AdamW, adamw_rule, dict(lr=0.05)),
    (AdamW, adamw_rule, dict(lr=0.05, weight_decay=0.3, amsgrad=True)),
    (RMSprop, rmsprop_rule, dict(lr=0.01)),
    (RMSprop, rmsprop_rule, dict(lr=0.01, centered=True, momentum=0.9)),
    (RMSprop, rmsprop_rule, dict(lr=0.01, alpha=0.9, weight_decay=0.1, momentum=0.5, maximize=True)),
    (Adagrad, adagrad_rule, dict(lr=0.1)),
    (Adagrad, adagrad_rule, dict(lr=0.1, lr_decay=0.2, weight_decay=0.1, initial_accumulator_value=0.5, eps=1e-4,
                                 maximize=True)),
    (Adadelta, adadelta_rule, dict()),
    (Adadelta, adadelta_rule, dict(lr=0.5, rho=0.6, eps=1e-3, weight_decay=0.1, maximize=True)),
    (Adamax, adamax_rule, dict(lr=0.05)),
    (Adamax, adamax_rule, dict(lr=0.05, betas=(0.5, 0.8), eps=1e-3, weight_decay=0.1, maximize=True)),
    (NAdam, nadam_rule, dict(lr=0.05)),
    (NAdam, nadam_rule, dict(lr=0.05, betas=(0.6, 0.9), weight_decay=0.1, momentum_decay=0.3)),
    (NAdam, nadam_rule, dict(lr=0.05, weight_decay=0.2, decoupled_weight_decay=True, maximize=True)),
    # beta2=0.9: five steps of momentum SGD, then the rectified adaptive step
    (RAdam, radam_rule, dict(lr=0.05, betas=(0.8, 0.9))),
    (RAdam, radam_rule, dict(lr=0.05, betas=(0.8, 0.9), weight_decay=0.1, maximize=True)),
    (RAdam, radam_rule, dict(lr=0.05, betas=(0.8, 0.9), weight_decay=0.2, decoupled_weight_decay=True)),
]


def case_id(case):
    optimizer, _, kwargs = case
    return optimizer.__name__ + "(" + ",".join(f"{k}={v}" for k, v in kwargs.items()) + ")"


def make_params(problem, dtype=tl.float64):
    return [tl.tensor(start, dtype=dtype, requires_grad=True) for start in START[problem]]


def train(optimizer, params, problem, steps):
    loss_fn = PROBLEMS[problem][0]
    for _ in range(steps):
        optimizer.zero_grad()
        loss_fn(params).backward()
        optimizer.step()
    return [p.detach().numpy().copy() for p in params]


def reference(rule, problem, steps, **kwargs):
    grads_fn = PROBLEMS[problem][1]
    params = [start.copy() for start in START[problem]]
    states = [{} for _ in params]
    for _ in range(steps):
        for p, g, s in zip(params, grads_fn(params), states):
            rule(p, g, s, **kwargs)
    return params


@pytest.mark.parametrize("problem", PROBLEMS)
@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_steps_follow_the_update_rule(case, problem):
    optimizer_cls, rule, kwargs = case
    params = make_params(problem)
    got = train(optimizer_cls(params, **kwargs), params, problem, steps=6)
    want = reference(rule, problem, steps=6, **kwargs)
    for g, w, start in zip(got, want, START[problem]):
        assert not np.allclose(w, start)
        np.testing.assert_allclose(g, w, rtol=1e-10, atol=1e-12)


FLOAT32_CASES = [CASES[2], CASES[7], CASES[10], CASES[12]] + [
    next(case for case in CASES if case[0] is cls) for cls in (Adagrad, Adadelta, Adamax, NAdam, RAdam)]


@pytest.mark.parametrize("case", FLOAT32_CASES, ids=case_id)
def test_float32_parameters_update_in_float32_in_place(case):
    optimizer_cls, rule, kwargs = case
    params = make_params("net", dtype=tl.float32)
    arrays = [p.array for p in params]
    got = train(optimizer_cls(params, **kwargs), params, "net", steps=4)
    want = reference(rule, "net", steps=4, **kwargs)
    for param, array, g, w in zip(params, arrays, got, want):
        assert param.array is array and param.dtype == tl.float32
        np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-6)


def test_parameters_without_gradient_are_skipped():
    used, unused = tl.tensor([1.0, 2.0], requires_grad=True), tl.tensor([3.0], requires_grad=True)
    optimizer = Adam([used, unused], lr=0.1)
    (used * used).sum().backward()
    optimizer.step()
    assert unused.grad is None and unused.item() == 3.0
    assert unused not in optimizer.state and optimizer.state[used]["step"] == 1


def test_param_groups_take_their_own_hyperparameters_and_the_defaults():
    params = make_params("net")
    optimizer = SGD([{"params": [params[0]], "lr": 0.2}, {"params": params[1]}], lr=0.05, momentum=0.9)
    assert [g["lr"] for g in optimizer.param_groups] == [0.2, 0.05]
    assert all(g["momentum"] == 0.9 and g["nesterov"] is False for g in optimizer.param_groups)
    got = train(optimizer, params, "net", steps=4)
    grads_fn, state = net_grads, [{}, {}]
    want = [start.copy() for start in START["net"]]
    for _ in range(4):
        for p, g, s, lr in zip(want, grads_fn(want), state, (0.2, 0.05)):
            sgd_rule(p, g, s, lr=lr, momentum=0.9)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-10, atol=1e-12)


def test_add_param_group():
    a, b = tl.randn(2, requires_grad=True), tl.randn(3, requires_grad=True)
    optimizer = Adam([a], lr=0.1)
    optimizer.add_param_group({"params": b, "betas": (0.5, 0.6)})
    assert len(optimizer.param_groups[1]["params"]) == 1 and optimizer.param_groups[1]["params"][0] is b
    assert optimizer.param_groups[1]["lr"] == 0.1 and optimizer.param_groups[1]["betas"] == (0.5, 0.6)
    with pytest.raises(ValueError, match="more than one parameter group"):
        optimizer.add_param_group({"params": [a]})
    with pytest.raises(TypeError, match="ordered collection"):
        optimizer.add_param_group({"params": {tl.randn(2, requires_grad=True)}})


def test_bad_params_arguments():
    x = tl.randn(2, requires_grad=True)
    with pytest.raises(TypeError, match="iterable of Tensors"):
        SGD(x)
    with pytest.raises(ValueError, match="empty parameter list"):
        SGD([])
    with pytest.raises(TypeError, match="only optimize Tensors"):
        SGD([np.zeros(2)])
    with pytest.raises(ValueError, match="non-leaf"):
        SGD([x * 2])
    with pytest.warns(UserWarning, match="duplicate parameters"):  # as PyTorch: a warning, and both are kept
        SGD([x, x])


@pytest.mark.parametrize("set_to_none", [True, False])
def test_zero_grad(set_to_none):
    params = make_params("quadratic")
    optimizer = SGD(params, lr=0.1)
    quadratic_loss(params).backward()
    grads = [p.grad for p in params]
    optimizer.zero_grad(set_to_none=set_to_none)
    for param, grad in zip(params, grads):
        if set_to_none:
            assert param.grad is None
        else:
            assert param.grad is grad and not np.any(grad.numpy())


def test_step_with_closure_returns_the_loss():
    params = make_params("quadratic")
    optimizer = SGD(params, lr=0.1)

    def closure():
        optimizer.zero_grad()
        loss = quadratic_loss(params)
        loss.backward()
        return loss

    with tl.no_grad():
        loss = optimizer.step(closure)  # the closure still records a graph
    assert loss.item() == pytest.approx(quadratic_loss([tl.tensor(s) for s in START["quadratic"]]).item())
    want = reference(sgd_rule, "quadratic", steps=1, lr=0.1)
    np.testing.assert_allclose(params[0].detach().numpy(), want[0], rtol=1e-12)


STATEFUL = [
    (SGD, dict(lr=0.05, momentum=0.9, nesterov=True)),
    (Adam, dict(lr=0.05, amsgrad=True, weight_decay=0.1)),
    (AdamW, dict(lr=0.05)),
    (RMSprop, dict(lr=0.01, centered=True, momentum=0.9)),
    (Adagrad, dict(lr=0.1, lr_decay=0.1, initial_accumulator_value=0.2)),
    (Adadelta, dict(lr=0.5)),
    (Adamax, dict(lr=0.05)),
    (NAdam, dict(lr=0.05, weight_decay=0.1)),
    (RAdam, dict(lr=0.05, betas=(0.8, 0.9))),
]


@pytest.mark.parametrize("optimizer_cls, kwargs", STATEFUL, ids=[c.__name__ for c, _ in STATEFUL])
def test_state_dict_round_trip_continues_identically(optimizer_cls, kwargs):
    params = make_params("net")
    optimizer = optimizer_cls([{"params": [params[0]], "lr": 0.02}, {"params": [params[1]]}], **kwargs)
    train(optimizer, params, "net", steps=3)
    saved = optimizer.state_dict()
    saved_values = [p.detach().numpy().copy() for p in params]
    uninterrupted = train(optimizer, params, "net", steps=3)

    resumed_params = [tl.tensor(v, requires_grad=True) for v in saved_values]
    resumed = optimizer_cls([{"params": [resumed_params[0]]}, {"params": [resumed_params[1]]}], lr=1.0)
    resumed.load_state_dict(saved)
    assert [g["lr"] for g in resumed.param_groups] == [0.02, kwargs["lr"]]
    for got, want in zip(train(resumed, resumed_params, "net", steps=3), uninterrupted):
        np.testing.assert_array_equal(got, want)


def test_state_dict_layout_is_pytorchs():
    params = make_params("net")
    optimizer = Adam([{"params": [params[1]]}, {"params": [params[0]], "lr": 0.5}], lr=0.1)
    train(optimizer, params, "net", steps=2)
    saved = optimizer.state_dict()
    assert [g["params"] for g in saved["param_groups"]] == [[0], [1]]
    assert saved["param_groups"][1] == {
        "lr": 0.5, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0, "amsgrad": False, "maximize": False,
        "foreach": None, "capturable": False, "differentiable": False, "fused": None,
        "decoupled_weight_decay": False, "params": [1],
    }
    assert set(saved["state"]) == {0, 1}
    state = saved["state"][0]
    assert set(state) == {"step", "exp_avg", "exp_avg_sq"} and state["step"] == 2
    assert isinstance(state["exp_avg"], np.ndarray) and state["exp_avg"].shape == params[1].shape
    assert state["exp_avg"] is not optimizer.state[params[1]]["exp_avg"]  # a snapshot, not a view


def test_load_state_dict_casts_buffers_and_accepts_a_0d_step():
    source = tl.tensor(START["quadratic"][0], dtype=tl.float64, requires_grad=True)
    optimizer = RMSprop([source], momentum=0.5)
    quadratic_loss([source, tl.tensor(QUAD_TARGETS[1])]).backward()
    optimizer.step()
    saved = optimizer.state_dict()
    saved["state"][0]["step"] = np.array(1.0, dtype=np.float32)  # how PyTorch saves it
    target = tl.tensor(START["quadratic"][0], dtype=tl.float32, requires_grad=True)
    loaded = RMSprop([target], momentum=0.5)
    loaded.load_state_dict(saved)
    state = loaded.state[target]
    assert state["step"] == 1
    assert state["square_avg"].dtype == state["momentum_buffer"].dtype == np.float32


def test_load_state_dict_rejects_mismatches():
    params = make_params("net")
    optimizer = SGD(params, lr=0.1, momentum=0.9)
    train(optimizer, params, "net", steps=1)
    saved = optimizer.state_dict()
    with pytest.raises(ValueError, match="2 parameter groups, the optimizer has 1"):
        optimizer.load_state_dict({"state": {}, "param_groups": saved["param_groups"] * 2})
    with pytest.raises(ValueError, match=r"param_groups\[0\] holds 2 parameters .* 1 in the optimizer"):
        SGD([params[0]], momentum=0.9).load_state_dict(saved)
    swapped = SGD([params[1], params[0]], momentum=0.9)
    with pytest.raises(ValueError, match=r"state\[0\]\['momentum_buffer'\] has shape \(3, 5\).*\(5, 2\)"):
        swapped.load_state_dict(saved)
    with pytest.raises(KeyError, match="param_groups"):
        optimizer.load_state_dict({"state": {}})


@pytest.mark.parametrize(
    "make, name",
    [
        (lambda p: SGD(p, lr=-0.1), "lr"),
        (lambda p: SGD(p, momentum=-0.9), "momentum"),
        (lambda p: SGD(p, weight_decay=-1e-4), "weight_decay"),
        (lambda p: SGD(p, nesterov=True), "Nesterov"),
        (lambda p: SGD(p, momentum=0.9, dampening=0.1, nesterov=True), "Nesterov"),
        (lambda p: Adam(p, lr=-1e-3), "lr"),
        (lambda p: Adam(p, betas=(1.0, 0.999)), r"betas\[0\]"),
        (lambda p: Adam(p, betas=(0.9, -0.1)), r"betas\[1\]"),
        (lambda p: Adam(p, eps=-1e-8), "eps"),
        (lambda p: AdamW(p, weight_decay=-0.01), "weight_decay"),
        (lambda p: RMSprop(p, alpha=-0.5), "alpha"),
        (lambda p: RMSprop(p, momentum=-0.5), "momentum"),
        (lambda p: RMSprop(p, lr=float("nan")), "lr"),
    ],
)
def test_bad_hyperparameters_raise_naming_them(make, name):
    with pytest.raises(ValueError, match=name):
        make([tl.randn(2, requires_grad=True)])


def test_base_class_needs_an_update_rule():
    x = tl.randn(2, requires_grad=True)
    optimizer = Optimizer([x], {"lr": 0.1})
    x.sum().backward()
    with pytest.raises(NotImplementedError):
        optimizer.step()


# ---- gradient clipping ------------------------------------------------------------------------------------------
def params_with_grads(*grads):
    params = [tl.zeros(*g.shape, dtype=g.dtype, requires_grad=True) for g in grads]  # a grad has its param's dtype
    for param, grad in zip(params, grads):
        param.grad = tl.tensor(grad)
    return params


@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.0, math.inf])
@pytest.mark.parametrize("max_norm", [0.5, 100.0])
def test_clip_grad_norm(norm_type, max_norm):
    rng = np.random.default_rng(3)
    grads = [rng.standard_normal((3, 4)), rng.standard_normal(5), rng.standard_normal((2, 1, 2))]
    params = params_with_grads(*grads) + [tl.ones(2, requires_grad=True)]  # the last has no gradient
    flat = np.concatenate([g.ravel() for g in grads])
    want = np.abs(flat).max() if norm_type == math.inf else (np.abs(flat) ** norm_type).sum() ** (1 / norm_type)
    total = clip_grad_norm_(iter(params), max_norm, norm_type=norm_type)
    assert isinstance(total, tl.Tensor) and total.shape == ()
    assert total.item() == pytest.approx(want, rel=1e-12)
    scale = min(max_norm / (want + 1e-6), 1.0)
    for param, grad in zip(params, grads):
        np.testing.assert_allclose(param.grad.numpy(), grad * scale, rtol=1e-12)
    assert params[-1].grad is None


def test_clip_grad_norm_single_tensor_float32_and_nonfinite():
    (param,) = params_with_grads(np.array([3.0, 4.0], dtype=np.float32))
    total = clip_grad_norm_(param, 1.0)
    assert total.dtype == tl.float32 and total.item() == pytest.approx(5.0)
    np.testing.assert_allclose(param.grad.numpy(), [0.6, 0.8], rtol=1e-5)
    assert clip_grad_norm_([tl.zeros(2, requires_grad=True)], 1.0).item() == 0.0
    (bad,) = params_with_grads(np.array([1.0, np.inf]))
    with pytest.raises(RuntimeError, match="non-finite"):
        clip_grad_norm_(bad, 1.0, error_if_nonfinite=True)


def test_clip_grad_value():
    params = params_with_grads(np.array([-3.0, 0.5, 2.0]), np.array([[0.1, -0.2]]))
    clip_grad_value_(params, 1.0)
    np.testing.assert_array_equal(params[0].grad.numpy(), [-1.0, 0.5, 1.0])
    np.testing.assert_array_equal(params[1].grad.numpy(), [[0.1, -0.2]])


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_device_scalars_step_follows_the_update_rule_from_its_table(case):
    """The device side of a captured step (nn.optim.optimizer.DeviceScalars) takes every number a scheduler
    may change from its table: with the groups' lr, momentum and betas overwritten by NaN after ``refresh``,
    the updates still follow the rule (a direct read of the group would make them NaN), and the host-side
    step counts advance as in eager steps."""
    optimizer_cls, rule, kwargs = case
    params = make_params("net")
    optimizer = optimizer_cls(params, **kwargs)
    train(optimizer, params, "net", steps=1)  # creates the buffers, as the warm-up of a captured step does
    scalars = DeviceScalars(optimizer)
    for _ in range(5):
        optimizer.zero_grad()
        PROBLEMS["net"][0](params).backward()
        scalars.refresh()
        saved = [dict(group) for group in optimizer.param_groups]
        for group in optimizer.param_groups:
            group["lr"] = float("nan")
            if group.get("momentum"):  # whether momentum is on at all is structure, read from the group
                group["momentum"] = float("nan")
            if "betas" in group:
                group["betas"] = (float("nan"), float("nan"))
        scalars.step()
        for group, before in zip(optimizer.param_groups, saved):
            group.update(before)
    want = reference(rule, "net", steps=6, **kwargs)
    for param, w in zip(params, want):
        np.testing.assert_allclose(param.detach().numpy(), w, rtol=1e-10, atol=1e-12)
    assert all(state.get("step", 6) == 6 for state in optimizer.state.values())


def test_device_scalars_refuse_changed_hyper_parameters_and_missing_gradients():
    params = make_params("net")
    optimizer = SGD(params, lr=0.1, momentum=0.9)
    with pytest.raises(ValueError, match="no parameter has a gradient"):
        DeviceScalars(optimizer)
    train(optimizer, params, "net", steps=1)
    scalars = DeviceScalars(optimizer)
    optimizer.param_groups[0]["lr"] = 0.5
    scalars.check_unchanged()  # the learning rate is read from the table
    optimizer.param_groups[0]["nesterov"] = True
    with pytest.raises(ValueError, match=r"param_groups\[0\]\['nesterov'\] changed from False to True"):
        scalars.check_unchanged()


@pytest.mark.parametrize("norm_type", [2.0, 1.0, math.inf, "inf"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_get_total_norm_then_clip_grads_with_norm_is_clip_grad_norm(norm_type, dtype):
    rng = np.random.default_rng(5)
    grads = [rng.standard_normal(shape).astype(dtype) for shape in [(4, 3), (7,), (2, 3, 2)]]
    flat = np.concatenate([g.ravel() for g in grads]).astype(np.float64)
    order = float(norm_type)
    want = np.abs(flat).max() if order == math.inf else (np.abs(flat) ** order).sum() ** (1 / order)
    total = get_total_norm([tl.tensor(g) for g in grads], norm_type)
    assert total.shape == () and total.dtype == dtype
    assert total.item() == pytest.approx(want, rel=1e-6 if dtype == np.float32 else 1e-12)

    split, joint = params_with_grads(*grads), params_with_grads(*grads)
    clip_grads_with_norm_(split, 0.5, get_total_norm([p.grad for p in split], norm_type))
    assert clip_grad_norm_(joint, 0.5, norm_type).item() == total.item()
    for a, b, g in zip(split, joint, grads):
        np.testing.assert_array_equal(a.grad.numpy(), b.grad.numpy())
        rtol = 1e-5 if dtype == np.float32 else 1e-12
        np.testing.assert_allclose(a.grad.numpy(), g * (0.5 / (want + 1e-6)), rtol=rtol)
    assert get_total_norm([]).item() == 0.0


def test_clip_grads_with_norm_leaves_gradients_under_the_norm():
    params = params_with_grads(np.array([0.3, -0.4]))
    clip_grads_with_norm_(params, 10.0, tl.tensor(0.5, dtype=tl.float64))
    np.testing.assert_array_equal(params[0].grad.numpy(), [0.3, -0.4])
    clip_grads_with_norm_([tl.zeros(2, requires_grad=True)], 1.0, tl.tensor(3.0))  # no gradient: nothing to do


@pytest.mark.parametrize("dtype", [tl.float32, tl.float64])
def test_parameters_to_vector_and_back(dtype):
    rng = np.random.default_rng(11)
    shapes = [(3, 4), (5,), (2, 1, 3), ()]
    params = [tl.tensor(rng.standard_normal(shape), dtype=dtype, requires_grad=True) for shape in shapes]
    vec = parameters_to_vector(iter(params))
    want = np.concatenate([p.detach().numpy().ravel() for p in params])
    assert vec.shape == (want.size,) and vec.dtype == dtype and vec.requires_grad
    np.testing.assert_array_equal(vec.detach().numpy(), want)

    new = tl.tensor(rng.standard_normal(want.size + 3), dtype=dtype)  # as in PyTorch, extra elements are unused
    vector_to_parameters(new, params)
    start = 0
    for param, shape in zip(params, shapes):
        size = int(np.prod(shape))
        assert param.shape == shape and param.dtype == dtype and param.is_leaf and param.requires_grad
        np.testing.assert_array_equal(param.detach().numpy(), new.numpy()[start:start + size].reshape(shape))
        start += size
    new.array[0] = 42.0  # the parameters are views of the vector, as in PyTorch
    assert params[0].detach().numpy()[0, 0] == 42.0


def test_parameters_to_vector_gradcheck():
    a, b = tl.randn(2, 3, dtype=tl.float64, requires_grad=True), tl.randn(4, dtype=tl.float64, requires_grad=True)
    weights = tl.randn(10, dtype=tl.float64)
    assert tl.gradcheck(lambda x, y: parameters_to_vector([x, y]) * weights, [a, b])


def test_parameter_vector_errors():
    params = [tl.randn(2, 2, requires_grad=True), tl.randn(3, requires_grad=True)]
    with pytest.raises(TypeError, match="expected a Tensor for vec, but got ndarray"):
        vector_to_parameters(np.zeros(7), params)
    with pytest.raises(RuntimeError, match="vec has 6 elements, but the parameters hold 7"):
        vector_to_parameters(tl.zeros(6), params)
    with pytest.raises(ValueError, match=r"1-D tensor .* got shape \(7, 1\)"):
        vector_to_parameters(tl.zeros(7, 1), params)
    with pytest.raises(ValueError, match="at least one parameter"):
        parameters_to_vector([])
    with pytest.raises(TypeError, match="expected Tensors as parameters, got ndarray"):
        parameters_to_vector([np.zeros(2)])
