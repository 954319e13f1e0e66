"""LBFGS: the two-loop recursion against a dense BFGS inverse Hessian, finite termination on a quadratic,
convergence on Rosenbrock, the strong Wolfe line search, each stop criterion, the flat handling of several
parameters, state dicts that resume a run exactly, the device, and the errors."""

import numpy as np
import pytest

import tensorlib as tl
from nn.optim import LBFGS
from nn.optim.lbfgs import cubic_interpolate, strong_wolfe, two_loop_direction
from nn.serialization import load, save


def rosenbrock(x):
    return ((1 - x[:-1]) ** 2).sum() + (100 * (x[1:] - x[:-1] ** 2) ** 2).sum()


def rosenbrock_start(n):
    start = np.full(n, -1.2)
    start[1::2] = 1.0
    return start


def minimise(x, optimizer, fn, steps, calls=None):
    """``steps`` optimizer steps on ``fn(x)``; the losses step() returned. ``calls`` counts the closure calls."""

    def closure():
        if calls is not None:
            calls.append(x.detach().numpy().copy())
        optimizer.zero_grad()
        loss = fn(x)
        loss.backward()
        return loss

    return [float(optimizer.step(closure)) for _ in range(steps)]


def random_pairs(rng, n, count):
    """``count`` (s, y) pairs with y.s > 0 (the curvature condition), from a random SPD matrix."""
    m = rng.standard_normal((n, n))
    hessian = m @ m.T + n * np.eye(n)
    steps = [rng.standard_normal(n) for _ in range(count)]
    return steps, [hessian @ s for s in steps]


def dense_bfgs_inverse(steps, changes, h_diag):
    """The BFGS inverse-Hessian approximation, as a matrix: from ``h_diag * I``, each pair (oldest first) gives
    ``H = (I - rho s y^T) H (I - rho y s^T) + rho s s^T``, ``rho = 1 / y.s``."""
    n = len(steps[0])
    inverse = h_diag * np.eye(n)
    for s, y in zip(steps, changes):
        rho = 1 / (y @ s)
        left = np.eye(n) - rho * np.outer(s, y)
        inverse = left @ inverse @ left.T + rho * np.outer(s, s)
    return inverse


@pytest.mark.parametrize("n, count", [(3, 1), (5, 3), (8, 8), (13, 6)])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_two_loop_recursion_is_the_dense_bfgs_inverse_hessian(n, count, dtype):
    rng = np.random.default_rng(n * 10 + count)
    steps, changes = random_pairs(rng, n, count)
    grad = rng.standard_normal(n)
    h_diag = (changes[-1] @ steps[-1]) / (changes[-1] @ changes[-1])
    want = -dense_bfgs_inverse(steps, changes, h_diag) @ grad
    cast = [[v.astype(dtype) for v in vectors] for vectors in (steps, changes)]
    ro = [dtype(1) / (y @ s) for s, y in zip(*cast)]
    got = two_loop_direction(grad.astype(dtype), cast[1], cast[0], ro, dtype(h_diag))
    assert got.dtype == dtype
    rtol = 1e-10 if dtype == np.float64 else 1e-4
    np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * np.abs(want).max())


@pytest.mark.parametrize("n", [2, 5, 9])
def test_full_history_with_exact_line_search_minimises_a_quadratic_in_n_iterations(n):
    """L-BFGS keeping every pair, with exact line searches, is BFGS: on an n-dimensional quadratic it reaches the
    minimum in at most n iterations, each direction agreeing with the dense BFGS reference."""
    rng = np.random.default_rng(n)
    m = rng.standard_normal((n, n))
    hessian, b = m @ m.T + 0.5 * np.eye(n), rng.standard_normal(n)
    x = rng.standard_normal(n)
    minimum = np.linalg.solve(hessian, b)
    steps, changes, ro, h_diag = [], [], [], 1.0
    grad = hessian @ x - b
    for iteration in range(n):
        direction = two_loop_direction(grad, changes, steps, ro, h_diag)
        reference = -dense_bfgs_inverse(steps, changes, h_diag) @ grad if steps else -grad
        np.testing.assert_allclose(direction, reference, rtol=1e-8, atol=1e-10 * np.abs(reference).max())
        t = -(grad @ direction) / (direction @ hessian @ direction)
        x = x + t * direction
        new_grad = hessian @ x - b
        s, y = t * direction, new_grad - grad
        steps.append(s)
        changes.append(y)
        ro.append(1 / (y @ s))
        h_diag = (y @ s) / (y @ y)
        grad = new_grad
    np.testing.assert_allclose(x, minimum, rtol=1e-8, atol=1e-8)


@pytest.mark.parametrize("line_search_fn, n, history_size", [
    (None, 2, 100), (None, 6, 3), ("strong_wolfe", 2, 100), ("strong_wolfe", 6, 100), ("strong_wolfe", 6, 3)])
def test_rosenbrock_converges_to_its_minimum(line_search_fn, n, history_size):
    """From the classic start (-1.2, 1, -1.2, ...) to (1, ..., 1); without a line search the full step of
    length lr = 1 wanders in 6-D with a long history, as in PyTorch."""
    x = tl.tensor(rosenbrock_start(n), dtype=tl.float64, requires_grad=True)
    optimizer = LBFGS([x], max_iter=50, tolerance_change=1e-12, history_size=history_size,
                      line_search_fn=line_search_fn)
    losses = minimise(x, optimizer, rosenbrock, 4)
    np.testing.assert_allclose(x.detach().numpy(), np.ones(n), atol=1e-5)
    assert losses[0] == pytest.approx(float(rosenbrock(tl.tensor(rosenbrock_start(n)))), rel=1e-15)
    assert losses[-1] < 1e-10
    state = optimizer.state[x]
    assert len(state["old_dirs"]) == len(state["old_stps"]) == len(state["ro"]) <= history_size


def test_float32_parameters_stay_float32_and_converge():
    x = tl.tensor(rosenbrock_start(2), dtype=tl.float32, requires_grad=True)
    optimizer = LBFGS([x], line_search_fn="strong_wolfe")
    minimise(x, optimizer, rosenbrock, 6)
    assert x.dtype == np.float32 and optimizer.state[x]["d"].dtype == np.float32
    np.testing.assert_allclose(x.detach().numpy(), np.ones(2), atol=1e-3)


def test_the_history_keeps_the_newest_pairs():
    x = tl.tensor(rosenbrock_start(4), dtype=tl.float64, requires_grad=True)
    optimizer = LBFGS([x], history_size=3, max_iter=8)
    minimise(x, optimizer, rosenbrock, 1)
    state = optimizer.state[x]
    assert len(state["old_dirs"]) == 3
    for s, y, rho in zip(state["old_stps"], state["old_dirs"], state["ro"]):
        assert rho == pytest.approx(1 / (y @ s), rel=1e-14) and y @ s > 1e-10
    assert state["H_diag"] == pytest.approx((state["old_dirs"][-1] @ state["old_stps"][-1])
                                            / (state["old_dirs"][-1] @ state["old_dirs"][-1]), rel=1e-14)


def smooth_line(a, b, c):
    """A 1-D function with one minimum, and its derivative: f(t) = a t^4 / 4 + b t^2 / 2 - c t (a, b > 0)."""
    return (lambda t: a * t**4 / 4 + b * t**2 / 2 - c * t), (lambda t: a * t**3 + b * t - c)


@pytest.mark.parametrize("seed", range(6))
def test_strong_wolfe_accepts_a_step_satisfying_both_conditions(seed):
    rng = np.random.default_rng(seed)
    f, df = smooth_line(*rng.uniform(0.1, 3.0, size=3))
    direction = np.array([1.0])
    t0 = 10 ** rng.uniform(-3, 1.5)  # a first trial far too short or far too long

    def evaluate(t):
        return f(t), np.array([df(t)])

    loss, grad, t, evals = strong_wolfe(evaluate, t0, direction, f(0.0), np.array([df(0.0)]), df(0.0))
    assert loss == f(t) and grad[0] == df(t)
    assert f(t) <= f(0.0) + 1e-4 * t * df(0.0)
    assert abs(df(t)) <= 0.9 * abs(df(0.0))
    assert 1 <= evals <= 26


def test_strong_wolfe_spends_at_most_its_trials():
    """On a kink the curvature condition never holds: the search stops after ``max_iter`` further trials."""
    def evaluate(t):
        return abs(t - 0.3), np.array([np.sign(t - 0.3)])

    _, _, t, evals = strong_wolfe(evaluate, 1.0, np.array([1.0]), 0.3, np.array([-1.0]), -1.0, max_iter=5)
    assert evals == 6 and abs(t - 0.3) < 0.3


def test_cubic_interpolation():
    # the cubic p(x) = x^3 - 3x has its local minimum at 1; four samples define it exactly
    p, dp = (lambda v: v**3 - 3 * v), (lambda v: 3 * v**2 - 3)
    assert cubic_interpolate(0.0, p(0.0), dp(0.0), 2.0, p(2.0), dp(2.0)) == pytest.approx(1.0, rel=1e-14)
    assert cubic_interpolate(2.0, p(2.0), dp(2.0), 0.0, p(0.0), dp(0.0)) == pytest.approx(1.0, rel=1e-14)
    # clamped to the bounds; the middle of the bounds where the cubic has no minimum (a concave sample)
    assert cubic_interpolate(0.0, p(0.0), dp(0.0), 2.0, p(2.0), dp(2.0), bounds=(1.5, 3.0)) == 1.5
    assert cubic_interpolate(0.0, 0.0, 1.0, 1.0, 0.5, 1.0, bounds=(2.0, 4.0)) == 3.0
    assert cubic_interpolate(0.0, 0.0, 1.0, 1.0, 0.5, 1.0) == 0.5


def counted_run(fn, start, steps=1, **kwargs):
    x = tl.tensor(np.asarray(start, dtype=np.float64), requires_grad=True)
    optimizer = LBFGS([x], **kwargs)
    calls = []
    minimise(x, optimizer, fn, steps, calls)
    return x.detach().numpy(), calls, optimizer.state[x]


def test_a_zero_gradient_returns_after_one_evaluation():
    x, calls, state = counted_run(rosenbrock, np.ones(3))
    np.testing.assert_array_equal(x, np.ones(3))
    assert len(calls) == 1 and state == {"func_evals": 1, "n_iter": 0}


def test_max_iter_without_line_search_skips_the_last_evaluation():
    """Each iteration evaluates at the point it moved to, except the last: the next step starts there."""
    _, calls, state = counted_run(rosenbrock, rosenbrock_start(2), max_iter=5)
    assert len(calls) == 5 and state["func_evals"] == 5 and state["n_iter"] == 5
    _, calls, state = counted_run(rosenbrock, rosenbrock_start(2), steps=3, max_iter=5)
    assert len(calls) == 15 and state["n_iter"] == 15


def test_max_eval_stops_the_step():
    _, calls, state = counted_run(rosenbrock, rosenbrock_start(2), max_iter=10, max_eval=4)
    assert len(calls) == 4 and state["n_iter"] == 3
    assert LBFGS([tl.zeros(1, requires_grad=True)], max_iter=9).param_groups[0]["max_eval"] == 11  # 9 * 5 // 4


def test_a_zero_gradient_after_a_move_stops_the_step():
    # 0.5 x^2 from 1: the first step, of length min(1, 1 / |g|) = 1, lands on the minimum
    x, calls, state = counted_run(lambda v: 0.5 * (v**2).sum(), [1.0])
    assert x[0] == 0 and len(calls) == 2 and state["n_iter"] == 1


def test_a_small_change_in_loss_stops_the_step():
    # x^2 from 1 with lr 2: the first step goes to -1, where the loss is 1 again
    x, calls, state = counted_run(lambda v: (v**2).sum(), [1.0], lr=2, tolerance_change=1e-3)
    assert x[0] == -1 and len(calls) == 2 and state["n_iter"] == 1


def test_a_small_step_stops_the_step():
    # sum(x) over 100 coordinates: the first step has length 1 / sum|g| = 0.01 per coordinate
    x, calls, state = counted_run(lambda v: v.sum(), np.zeros(100), tolerance_change=0.05)
    np.testing.assert_allclose(x, -0.01, rtol=1e-15)
    assert len(calls) == 2 and state["n_iter"] == 1


def test_no_descent_direction_stops_before_moving():
    # g.d = -|g|^2 = -1e-6 is above -tolerance_change
    x, calls, state = counted_run(lambda v: 1e-3 * v.sum(), [2.0], tolerance_change=1e-5)
    assert x[0] == 2.0 and len(calls) == 1 and state["n_iter"] == 1


def test_several_parameters_step_as_one_flat_vector_and_a_missing_gradient_counts_as_zeros():
    rng = np.random.default_rng(3)
    weight, bias, other = rng.standard_normal((3, 2)), rng.standard_normal(4), rng.standard_normal(2)
    split = [tl.tensor(value, requires_grad=True) for value in (weight, bias, other)]
    flat = tl.tensor(np.concatenate([weight.ravel(), bias, other]), requires_grad=True)

    def loss_of(w, b):  # the third parameter takes no part: no gradient in split, zeros in flat
        return rosenbrock(w.reshape(-1)) + ((b - 0.5) ** 2 * tl.tensor([1.0, 2.0, 3.0, 4.0])).sum()

    for line_search_fn in (None, "strong_wolfe"):
        split_opt = LBFGS(split, line_search_fn=line_search_fn, max_iter=7)
        flat_opt = LBFGS([flat], line_search_fn=line_search_fn, max_iter=7)
        minimise(split[0], split_opt, lambda _: loss_of(split[0], split[1]), 3)
        minimise(flat, flat_opt, lambda v: loss_of(v[:6], v[6:10]), 3)
        assert split[2].grad is None
        got = np.concatenate([p.detach().numpy().ravel() for p in split])
        np.testing.assert_array_equal(got, flat.detach().numpy())
        np.testing.assert_array_equal(split[2].detach().numpy(), other)
        assert split_opt.state[split[0]]["d"].shape == (12,)


@pytest.mark.parametrize("line_search_fn", [None, "strong_wolfe"])
def test_a_loaded_state_dict_continues_the_run_exactly(tmp_path, line_search_fn):
    kwargs = dict(history_size=3, max_iter=4, line_search_fn=line_search_fn)
    x = tl.tensor(rosenbrock_start(4), requires_grad=True, dtype=tl.float64)
    optimizer = LBFGS([x], **kwargs)
    minimise(x, optimizer, rosenbrock, 2)
    saved = optimizer.state_dict()
    assert set(saved["state"][0]) == {"func_evals", "n_iter", "d", "t", "old_dirs", "old_stps", "ro", "H_diag",
                                      "prev_flat_grad", "prev_loss"}
    assert saved["param_groups"] == [dict(lr=1, max_iter=4, max_eval=5, tolerance_grad=1e-7, tolerance_change=1e-9,
                                          history_size=3, line_search_fn=line_search_fn, params=[0])]
    save(saved, tmp_path / "lbfgs.safetensors")
    snapshot = [np.array(d) for d in saved["state"][0]["old_dirs"]]
    resumed = []
    for state in (saved, load(tmp_path / "lbfgs.safetensors")):
        y = tl.tensor(x.detach().numpy().copy(), requires_grad=True)
        other = LBFGS([y], history_size=100)
        other.load_state_dict(state)
        assert other.param_groups[0]["history_size"] == 3
        minimise(y, other, rosenbrock, 3)
        resumed.append(y.detach().numpy())
    minimise(x, optimizer, rosenbrock, 3)
    for got in resumed:
        np.testing.assert_array_equal(got, x.detach().numpy())
    for old, now in zip(snapshot, saved["state"][0]["old_dirs"]):  # the state dict was a snapshot
        np.testing.assert_array_equal(old, now)


def test_device_run_matches_the_host(tier):
    runs = []
    for device in ("cpu", "cuda"):
        x = tl.tensor(rosenbrock_start(4), dtype=tl.float64, device=device, requires_grad=True)
        optimizer = LBFGS([x], history_size=3, max_iter=6, line_search_fn="strong_wolfe")
        losses = minimise(x, optimizer, rosenbrock, 2)
        assert optimizer.state[x]["d"].__class__ is x.array.__class__
        runs.append((losses, x.detach().cpu().numpy()))
    np.testing.assert_allclose(runs[1][0], runs[0][0], rtol=1e-10)
    np.testing.assert_allclose(runs[1][1], runs[0][1], rtol=1e-8)


def test_errors():
    x = tl.zeros(2, requires_grad=True)
    optimizer = LBFGS([x])
    with pytest.raises(TypeError, match="LBFGS.step needs a closure"):
        optimizer.step()
    with pytest.raises(ValueError, match="per-parameter options"):
        LBFGS([{"params": [x]}, {"params": [tl.zeros(1, requires_grad=True)]}])
    with pytest.raises(ValueError, match="per-parameter options"):
        optimizer.add_param_group({"params": [tl.zeros(1, requires_grad=True)]})
    with pytest.raises(ValueError, match="Invalid line_search_fn value: 'wolfe'"):
        LBFGS([x], line_search_fn="wolfe")
    optimizer.param_groups[0]["line_search_fn"] = "armijo"
    with pytest.raises(ValueError, match="Invalid line_search_fn value: 'armijo'"):
        optimizer.step(lambda: x.sum())
    with pytest.raises(ValueError, match="Invalid lr value: -1"):
        LBFGS([x], lr=-1)
    with pytest.raises(ValueError, match=r"Invalid max_iter value: 0 \(expected an integer >= 1\)"):
        LBFGS([x], max_iter=0)
    with pytest.raises(ValueError, match="Invalid history_size value: 2.5"):
        LBFGS([x], history_size=2.5)
    with pytest.raises(ValueError, match="state\\[3\\] belongs to no parameter"):
        LBFGS([x]).load_state_dict({"state": {3: {}}, "param_groups": optimizer.state_dict()["param_groups"]})
