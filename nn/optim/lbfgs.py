"""L-BFGS: a quasi-Newton method that shapes each step with the last few (step, gradient change) pairs.

    opt = nn.optim.LBFGS(model.parameters(), line_search_fn="strong_wolfe")
    def closure():
        opt.zero_grad()
        loss = criterion(model(x), y)
        loss.backward()
        return loss
    opt.step(closure)   # up to max_iter iterations, re-evaluating the closure as it goes

All parameters are handled as one flat vector ``x`` with one flat gradient ``g`` (a parameter without a
gradient counts as zeros). The scalars of a step (dot products, step lengths, the line search's
comparisons) are NumPy scalars of the parameters' dtype on the host, so they follow the same precision as
PyTorch's 0-d tensors, whatever the device the vectors live on.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

import tensorlib as tl
from nn.optim.optimizer import Optimizer, _is_array, check_non_negative
from tensorlib.device import array_module, move

LINE_SEARCHES = (None, "strong_wolfe")


class LBFGS(Optimizer):
    """PyTorch's L-BFGS. ``step(closure)`` runs up to ``max_iter`` iterations (and ``max_eval`` evaluations of
    the closure), and returns the loss of its first closure call.

    Each iteration turns the gradient into a direction ``d = -H g``, where ``H`` approximates the inverse
    Hessian from the last ``history_size`` pairs ``s = t * d`` (the step taken) and ``y = g - g_prev`` (the
    change in gradient) by the two-loop recursion, scaled by ``H0 = y.s / y.y`` of the newest pair. A pair
    enters the history only when ``y.s > 1e-10`` (the curvature condition), the oldest leaving when it is
    full. The step length ``t`` is ``lr`` (on the optimizer's very first iteration ``lr * min(1, 1 /
    sum|g|)``), or, with ``line_search_fn="strong_wolfe"``, the length a strong Wolfe line search accepts; the
    search may spend the evaluations left of ``max_eval`` in this step (and makes at least one).

    An iteration stops the step when the direction is not a descent direction (``g.d > -tolerance_change``),
    and after moving when ``max|g| <= tolerance_grad``, ``max|t d| <= tolerance_change``, the loss changed by
    less than ``tolerance_change``, or ``max_iter``/``max_eval`` is reached. The direction, step length,
    history and evaluation counts persist across steps and go into ``state_dict()``, under the first parameter
    (PyTorch's keys). Only one parameter group is supported.
    """

    def __init__(self, params, lr=1, max_iter=20, max_eval=None, tolerance_grad=1e-7, tolerance_change=1e-9,
                 history_size=100, line_search_fn=None):
        check_non_negative(lr=lr, tolerance_grad=tolerance_grad, tolerance_change=tolerance_change)
        if max_eval is None:
            max_eval = max_iter * 5 // 4 if _is_positive_int(max_iter) else max_iter
        for name, value in dict(max_iter=max_iter, max_eval=max_eval, history_size=history_size).items():
            if not _is_positive_int(value):
                raise ValueError(f"Invalid {name} value: {value!r} (expected an integer >= 1)")
        _check_line_search(line_search_fn)
        defaults = dict(lr=lr, max_iter=max_iter, max_eval=max_eval, tolerance_grad=tolerance_grad,
                        tolerance_change=tolerance_change, history_size=history_size, line_search_fn=line_search_fn)
        super().__init__(params, defaults)

    def add_param_group(self, param_group: dict):
        if self.param_groups:
            raise ValueError("LBFGS doesn't support per-parameter options (parameter groups): it takes one group "
                             f"of parameters, and a group is already there (adding group {len(self.param_groups)})")
        super().add_param_group(param_group)

    @property
    def _params(self) -> list:
        return self.param_groups[0]["params"]

    def step(self, closure=None):
        """Minimise the loss ``closure`` computes (it must zero the gradients, evaluate the model, call
        ``backward`` and return the loss) with up to ``max_iter`` L-BFGS iterations; the first loss."""
        if closure is None:
            raise TypeError("LBFGS.step needs a closure that re-evaluates the model and returns the loss, got None")
        group = self.param_groups[0]
        _check_line_search(group["line_search_fn"])
        lr, max_iter, max_eval = group["lr"], group["max_iter"], group["max_eval"]
        tolerance_grad, tolerance_change = group["tolerance_grad"], group["tolerance_change"]
        with tl.no_grad():
            state = self.state[self._params[0]]
            state.setdefault("func_evals", 0)
            state.setdefault("n_iter", 0)
            first_loss, loss, grad = self._evaluate(closure)
            evals = 1
            state["func_evals"] += 1
            if _host(abs(grad).max()) <= tolerance_grad:
                return first_loss
            direction, t = state.get("d"), state.get("t")
            old_dirs, old_stps, ro = state.get("old_dirs"), state.get("old_stps"), state.get("ro")
            h_diag = state.get("H_diag")
            prev_grad, prev_loss = state.get("prev_flat_grad"), state.get("prev_loss")
            n_iter = 0
            while n_iter < max_iter:
                n_iter += 1
                state["n_iter"] += 1
                if state["n_iter"] == 1:
                    direction = -grad
                    old_dirs, old_stps, ro, h_diag = [], [], [], 1
                else:
                    y = grad - prev_grad
                    s = direction * t
                    ys = _dot(y, s)
                    if ys > 1e-10:
                        if len(old_dirs) == group["history_size"]:
                            del old_dirs[0], old_stps[0], ro[0]
                        old_dirs.append(y)
                        old_stps.append(s)
                        ro.append(1.0 / ys)
                        h_diag = ys / _dot(y, y)
                    direction = two_loop_direction(grad, old_dirs, old_stps, ro, h_diag)
                prev_grad, prev_loss = grad, loss
                if state["n_iter"] == 1:
                    t = min(1.0, 1.0 / _host(abs(grad).sum())) * lr
                else:
                    t = lr
                gtd = _dot(grad, direction)
                if gtd > -tolerance_change:  # not a descent direction (or a vanishing one)
                    break
                if group["line_search_fn"] == "strong_wolfe":
                    start = [param.array.copy() for param in self._params]
                    # the search may spend what is left of the step's evaluations (at least one)
                    loss, grad, t, line_evals = strong_wolfe(
                        lambda step: self._evaluate_along(closure, start, step, direction),
                        t, direction, loss, grad, gtd, max_iter=max_eval - evals)
                    self._move(t, direction)
                else:
                    self._move(t, direction)
                    line_evals = 0
                    if n_iter != max_iter:  # the next step() evaluates the last point anyway
                        _, loss, grad = self._evaluate(closure)
                        line_evals = 1
                evals += line_evals
                state["func_evals"] += line_evals
                if (n_iter == max_iter or evals >= max_eval or _host(abs(grad).max()) <= tolerance_grad
                        or _host(abs(direction * t).max()) <= tolerance_change
                        or abs(loss - prev_loss) < tolerance_change):
                    break
            state.update(d=direction, t=t, old_dirs=old_dirs, old_stps=old_stps, ro=ro, H_diag=h_diag,
                         prev_flat_grad=prev_grad, prev_loss=prev_loss)
        return first_loss

    def _flat_grad(self):
        """Every parameter's gradient, flattened and concatenated in parameter order (zeros where None)."""
        xp = array_module(self._params[0].array)
        return xp.concatenate([param.grad.array.reshape(-1) if param.grad is not None
                               else xp.zeros(param.array.size, dtype=param.dtype) for param in self._params])

    def _evaluate(self, closure):
        """(what ``closure`` returned, that loss as a float, the flat gradient)."""
        with tl.enable_grad():
            loss = closure()
        return loss, float(loss), self._flat_grad()

    def _move(self, t, direction):
        """x += t * direction, parameter by parameter."""
        offset = 0
        for param in self._params:
            size = param.array.size
            param.array += t * direction[offset:offset + size].reshape(param.shape)
            offset += size

    def _evaluate_along(self, closure, start, t, direction):
        """(loss, flat gradient) at ``start + t * direction``; the parameters are put back at ``start`` after."""
        self._move(t, direction)
        _, loss, grad = self._evaluate(closure)
        for param, array in zip(self._params, start):
            param.array[...] = array
        return loss, grad

    def state_dict(self) -> dict:
        """As ``Optimizer.state_dict``; the history lists are copied too, their vectors as NumPy arrays."""
        saved = super().state_dict()
        for buffers in saved["state"].values():
            for key, value in buffers.items():
                if isinstance(value, list):
                    buffers[key] = [np.array(move(item, "cpu")) if _is_array(item) else item for item in value]
        return saved

    def load_state_dict(self, state_dict: dict):
        """Restore what ``state_dict`` saved: the flat vectors go to the parameters' device, the scalars become
        scalars of their dtype."""
        super().load_state_dict({**state_dict, "state": {}})  # checks and restores the parameter group
        params = self._params
        dtype = np.result_type(*(param.dtype for param in params))
        device = params[0].device

        def restored(key, value):
            if isinstance(value, list):
                return [restored(key, item) for item in value]
            if isinstance(value, tl.Tensor):
                value = value.array
            if _is_array(value) and value.ndim > 0:
                return move(value, device).astype(dtype, copy=True)
            if key in ("t", "H_diag", "ro"):
                return dtype.type(value.item() if _is_array(value) else value)
            if key == "prev_loss":
                return float(value)
            if key in ("func_evals", "n_iter"):
                return int(value)
            return value

        for index, buffers in state_dict["state"].items():
            if isinstance(index, bool) or not isinstance(index, numbers.Integral) or not 0 <= index < len(params):
                raise ValueError(f"state[{index!r}] belongs to no parameter of the loaded param_groups "
                                 f"(expected an index in [0, {len(params)}))")
            self.state[params[index]] = {key: restored(key, value) for key, value in buffers.items()}


def two_loop_direction(grad, old_dirs, old_stps, ro, h_diag):
    """``-H grad`` by the L-BFGS two-loop recursion: ``H`` is the inverse-Hessian approximation that starts
    from ``h_diag * I`` and takes in the pairs ``(s, y) = (old_stps[i], old_dirs[i])``, oldest first, with
    ``ro[i] = 1 / y.s``."""
    q = -grad
    alphas = [None] * len(old_dirs)
    for i in reversed(range(len(old_dirs))):
        alphas[i] = _dot(old_stps[i], q) * ro[i]
        q -= alphas[i] * old_dirs[i]
    r = q * h_diag
    for i in range(len(old_dirs)):
        beta = _dot(old_dirs[i], r) * ro[i]
        r += (alphas[i] - beta) * old_stps[i]
    return r


def cubic_interpolate(x1, f1, g1, x2, f2, g2, bounds=None):
    """The minimiser of the cubic through (x1, f1) and (x2, f2) with slopes g1 and g2, clamped to ``bounds``
    (default: the interval between x1 and x2); the middle of the bounds when the cubic has no minimiser."""
    low, high = bounds if bounds is not None else (min(x1, x2), max(x1, x2))
    d1 = g1 + g2 - 3 * (f1 - f2) / (x1 - x2)
    d2_square = d1**2 - g1 * g2
    if not d2_square >= 0:  # (NaN included)
        return (low + high) / 2.0
    d2 = _sqrt(d2_square)
    if x1 <= x2:
        at = x2 - (x2 - x1) * ((g2 + d2 - d1) / (g2 - g1 + 2 * d2))
    else:
        at = x1 - (x1 - x2) * ((g1 + d2 - d1) / (g1 - g2 + 2 * d2))
    return min(max(at, low), high)


def strong_wolfe(evaluate, t, direction, loss, grad, gtd, c1=1e-4, c2=0.9, tolerance_change=1e-9, max_iter=25):
    """A step length along ``direction`` that satisfies the strong Wolfe conditions (sufficient decrease with
    ``c1``, curvature ``|g(t).d| <= -c2 g(0).d``), from the trial length ``t``.

    ``evaluate(t)`` gives (loss, flat gradient) at that length; ``loss``, ``grad`` and ``gtd = grad.d`` are
    those at 0. The bracketing phase extrapolates (cubic interpolation, bounded to ``[t + 0.01 (t - t_prev),
    10 t]``) until an interval holds an acceptable length; the zoom phase shrinks it by cubic interpolation of
    its ends, kept 10% of the width away from them when the last trial made too little progress, until a
    length is accepted, the interval is shorter than ``tolerance_change`` (in ``max|d|`` units) or ``max_iter``
    trials followed the first. Returns (loss, grad, t, evaluations) at the length chosen.
    """
    d_norm = _host(abs(direction).max())
    f_new, g_new = evaluate(t)
    evals = 1
    gtd_new = _dot(g_new, direction)
    t_prev, f_prev, g_prev, gtd_prev = 0, loss, grad, gtd
    done = False
    trials = 0
    while trials < max_iter:
        if f_new > loss + c1 * t * gtd or (trials > 1 and f_new >= f_prev):
            bracket = [t_prev, t], [f_prev, f_new], [g_prev, g_new], [gtd_prev, gtd_new]
            break
        if abs(gtd_new) <= -c2 * gtd:
            bracket = [t], [f_new], [g_new], [gtd_new]
            done = True
            break
        if gtd_new >= 0:
            bracket = [t_prev, t], [f_prev, f_new], [g_prev, g_new], [gtd_prev, gtd_new]
            break
        bounds = (t + 0.01 * (t - t_prev), t * 10)
        t, t_prev = cubic_interpolate(t_prev, f_prev, gtd_prev, t, f_new, gtd_new, bounds), t
        f_prev, g_prev, gtd_prev = f_new, g_new, gtd_new
        f_new, g_new = evaluate(t)
        evals += 1
        gtd_new = _dot(g_new, direction)
        trials += 1
    if trials == max_iter:  # no bracket found: the zoom phase does not run, the better end is taken
        bracket = [0, t], [loss, f_new], [grad, g_new], [gtd, gtd_new]
    steps, losses, grads, slopes = bracket

    def ends():  # (index of the lower end, of the higher one)
        return (0, 1) if losses[0] <= losses[-1] else (1, 0)

    low, high = ends()
    insufficient_progress = False
    while not done and trials < max_iter:
        if abs(steps[1] - steps[0]) * d_norm < tolerance_change:
            break
        t = cubic_interpolate(steps[0], losses[0], slopes[0], steps[1], losses[1], slopes[1])
        near, far = min(steps), max(steps)
        margin = 0.1 * (far - near)
        if min(far - t, t - near) < margin:  # too close to an end of the interval
            if insufficient_progress or t >= far or t <= near:
                t = far - margin if abs(t - far) < abs(t - near) else near + margin
                insufficient_progress = False
            else:
                insufficient_progress = True
        else:
            insufficient_progress = False
        f_new, g_new = evaluate(t)
        evals += 1
        gtd_new = _dot(g_new, direction)
        trials += 1
        if f_new > loss + c1 * t * gtd or f_new >= losses[low]:
            steps[high], losses[high], grads[high], slopes[high] = t, f_new, g_new, gtd_new
            low, high = ends()
        else:
            if abs(gtd_new) <= -c2 * gtd:
                done = True
            elif gtd_new * (steps[high] - steps[low]) >= 0:
                steps[high], losses[high], grads[high], slopes[high] = steps[low], losses[low], grads[low], slopes[low]
            steps[low], losses[low], grads[low], slopes[low] = t, f_new, g_new, gtd_new
    return losses[low], grads[low], steps[low], evals


def _dot(a, b):
    return _host(a @ b)


def _host(value):
    """A reduction's result as a NumPy scalar of its dtype on the host (a CuPy 0-d array is copied over)."""
    return np.dtype(value.dtype).type(value.item())


def _sqrt(value):
    return np.sqrt(value) if isinstance(value, np.generic) else math.sqrt(value)


def _is_positive_int(value) -> bool:
    return not isinstance(value, bool) and isinstance(value, numbers.Integral) and value >= 1


def _check_line_search(line_search_fn):
    if line_search_fn not in LINE_SEARCHES:
        raise ValueError(f"Invalid line_search_fn value: {line_search_fn!r} (expected None or 'strong_wolfe', the "
                         "only line search supported)")
