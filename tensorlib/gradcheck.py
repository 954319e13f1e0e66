"""Finite-difference gradient check in float64."""

from __future__ import annotations

import numpy as np

from tensorlib.autograd import no_grad
from tensorlib.device import array_module, move
from tensorlib.tensor import Tensor


class GradcheckError(AssertionError):
    pass


def gradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-3, projections=2, seed=0) -> bool:
    """Compare autograd's gradients of ``fn(*inputs)`` with central differences.

    Every input that requires grad must be float64. The output is reduced to a scalar with fresh random
    weights ``v`` (``projections`` times), so each check compares the full vector-Jacobian product
    ``v^T J`` against ``(f(x + eps*e_i) - f(x - eps*e_i)) . v / (2 eps)`` for every input element i.
    Returns True, or raises GradcheckError naming the input, the element and both values. Inputs on "cuda"
    are checked on the device (one small device write and two evaluations per element).
    """
    inputs = tuple(inputs) if isinstance(inputs, (tuple, list)) else (inputs,)
    checked = [t for t in inputs if isinstance(t, Tensor) and t.requires_grad]
    if not checked:
        raise ValueError("gradcheck needs at least one input tensor with requires_grad=True")
    for t in checked:
        if t.dtype != np.float64:
            raise TypeError(f"gradcheck inputs must be float64, got {t.dtype} for an input of shape {t.shape}")
    rng = np.random.default_rng(seed)
    out = fn(*inputs)
    outputs = out if isinstance(out, (tuple, list)) else (out,)
    outputs = [o for o in outputs if isinstance(o, Tensor) and o.dtype.kind == "f"]
    for _ in range(projections):
        weights = [move(rng.standard_normal(o.shape), o.device) for o in outputs]

        def projected(*args):
            result = fn(*args)
            results = result if isinstance(result, (tuple, list)) else (result,)
            results = [r for r in results if isinstance(r, Tensor) and r.dtype.kind == "f"]
            return sum(float((r.array * w).sum()) for r, w in zip(results, weights))

        for t in checked:
            t.grad = None
        result = fn(*inputs)
        results = result if isinstance(result, (tuple, list)) else (result,)
        results = [r for r in results if isinstance(r, Tensor) and r.dtype.kind == "f"]
        total = None
        for r, w in zip(results, weights):
            if r.requires_grad:
                term = (r * Tensor._make(w)).sum()
                total = term if total is None else total + term
        analytic = []
        if total is not None:
            total.backward()
        for t in checked:
            analytic.append(np.zeros(t.shape) if t.grad is None else np.array(move(t.grad.array, "cpu"), dtype=np.float64))
            t.grad = None
        with no_grad():
            for position, (t, grad) in enumerate(zip(checked, analytic)):
                if not t.array.flags.c_contiguous:
                    t.array = array_module(t.array).ascontiguousarray(t.array)
                flat = t.array.reshape(-1)  # a view: writing it perturbs the input in place
                for i in range(flat.size):
                    original = flat[i]
                    flat[i] = original + eps
                    plus = projected(*inputs)
                    flat[i] = original - eps
                    minus = projected(*inputs)
                    flat[i] = original
                    numeric = (plus - minus) / (2 * eps)
                    got = grad.reshape(-1)[i]
                    if not abs(got - numeric) <= atol + rtol * abs(numeric):
                        index = np.unravel_index(i, t.shape) if t.shape else ()
                        raise GradcheckError(
                            f"gradient mismatch for input {position} (shape {t.shape}) at index {tuple(int(j) for j in index)}: "
                            f"analytic {got:.8g}, numerical {numeric:.8g} (atol {atol}, rtol {rtol})"
                        )
    return True
