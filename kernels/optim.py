"""CPU kernels for optimizer updates: SGD with momentum, Adam and RMSprop, in one pass over the parameter,
its gradient and its state.

The array expressions of ``nn.optim.SGD`` make five or six passes with two temporaries per parameter
(``buf *= m``; ``(1 - d) * g``; ``buf += ...``; ``lr * buf``; ``p -= ...``), 18 ms a step for VGG-11's 9.2M
parameters on two cores; Adam's make about twelve with eight temporaries. Here one loop reads the
parameter, gradient and state and writes the parameter and state, over Numba's threads from
``PARALLEL_MIN_SIZE`` elements. The constants are cast to the array's dtype and every operation is the
expression's, in its order, with no contraction into FMAs, so the result equals the expression bit for bit.

Each function returns False where it does not apply (CuPy or simulated device arrays, float16, mixed
dtypes, non-contiguous arrays), and the optimizer runs its expression.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

PARALLEL_MIN_SIZE = 1 << 16


@njit(cache=True)
def _serial(p, g, buf, lr, momentum, damp, weight_decay, nesterov, decay):
    for i in range(p.size):
        gi = g[i] + weight_decay * p[i] if decay else g[i]
        b = buf[i] * momentum + damp * gi
        buf[i] = b
        p[i] = p[i] - lr * (gi + momentum * b if nesterov else b)


@njit(parallel=True, cache=True)
def _parallel(p, g, buf, lr, momentum, damp, weight_decay, nesterov, decay):
    for i in prange(p.size):
        gi = g[i] + weight_decay * p[i] if decay else g[i]
        b = buf[i] * momentum + damp * gi
        buf[i] = b
        p[i] = p[i] - lr * (gi + momentum * b if nesterov else b)


def _applies(*arrays) -> bool:
    first = arrays[0]
    return first.dtype.char in "fd" and all(
        type(a) is np.ndarray and a.dtype == first.dtype and a.flags.c_contiguous and a.shape == first.shape
        for a in arrays)


def sgd_momentum(p, g, buf, lr, momentum, dampening, weight_decay, nesterov) -> bool:
    """``p -= lr * d`` with ``buf = momentum * buf + (1 - dampening) * g'``, ``g' = g + weight_decay * p``,
    ``d = g' + momentum * buf`` (Nesterov) or ``buf``, in place; False (and nothing done) where it does not
    apply. The scalars are Python numbers."""
    if not _applies(p, g, buf):
        return False
    t = p.dtype.type
    kernel = _parallel if p.size >= PARALLEL_MIN_SIZE else _serial
    flat = [a.reshape(-1) for a in (p, g, buf)]
    kernel(*flat, t(lr), t(momentum), t(1 - dampening), t(weight_decay), bool(nesterov), weight_decay != 0)
    return True


@njit(cache=True)
def _adam_serial(p, g, m, v, step_size, bc2_sqrt, eps, omb1, beta2, omb2, weight_decay, decay, mode):
    for i in range(p.size):
        gi = g[i]
        if mode == 1:  # L2: the decay joins the gradient
            gi = gi + weight_decay * p[i]
        pi = p[i] * decay if mode == 2 else p[i]  # decoupled (AdamW): the parameter shrinks first
        mi = m[i] + omb1 * (gi - m[i])
        vi = v[i] * beta2 + omb2 * gi * gi
        m[i], v[i] = mi, vi
        p[i] = pi - step_size * mi / (np.sqrt(vi) / bc2_sqrt + eps)


@njit(parallel=True, cache=True)
def _adam_parallel(p, g, m, v, step_size, bc2_sqrt, eps, omb1, beta2, omb2, weight_decay, decay, mode):
    for i in prange(p.size):
        gi = g[i]
        if mode == 1:
            gi = gi + weight_decay * p[i]
        pi = p[i] * decay if mode == 2 else p[i]
        mi = m[i] + omb1 * (gi - m[i])
        vi = v[i] * beta2 + omb2 * gi * gi
        m[i], v[i] = mi, vi
        p[i] = pi - step_size * mi / (np.sqrt(vi) / bc2_sqrt + eps)


def adam(p, g, m, v, step_size, bias_correction2_sqrt, eps, one_minus_beta1, beta2, one_minus_beta2, weight_decay,
         decay, decoupled) -> bool:
    """One Adam step in place (no amsgrad, not maximizing): ``m += (1 - b1) * (g' - m)``, ``v = b2 * v +
    (1 - b2) * g' * g'``, ``p -= step_size * m / (sqrt(v) / bias_correction2_sqrt + eps)``, with ``g' = g +
    weight_decay * p`` (L2) or ``p *= decay`` first (``decoupled``); False (and nothing done) where it does not
    apply. The scalars are Python numbers."""
    if not _applies(p, g, m, v):
        return False
    t = p.dtype.type
    mode = 0 if weight_decay == 0 else (2 if decoupled else 1)
    kernel = _adam_parallel if p.size >= PARALLEL_MIN_SIZE else _adam_serial
    flat = [a.reshape(-1) for a in (p, g, m, v)]
    kernel(*flat, t(step_size), t(bias_correction2_sqrt), t(eps), t(one_minus_beta1), t(beta2), t(one_minus_beta2),
           t(weight_decay), t(decay), mode)
    return True


@njit(cache=True)
def _rmsprop_serial(p, g, s, buf, lr, alpha, one_minus_alpha, eps, weight_decay, momentum, decay, with_momentum):
    for i in range(p.size):
        gi = g[i] + weight_decay * p[i] if decay else g[i]
        si = s[i] * alpha + one_minus_alpha * gi * gi
        s[i] = si
        avg = np.sqrt(si) + eps
        if with_momentum:
            b = buf[i] * momentum + gi / avg
            buf[i] = b
            p[i] = p[i] - lr * b
        else:
            p[i] = p[i] - lr * gi / avg


@njit(parallel=True, cache=True)
def _rmsprop_parallel(p, g, s, buf, lr, alpha, one_minus_alpha, eps, weight_decay, momentum, decay, with_momentum):
    for i in prange(p.size):
        gi = g[i] + weight_decay * p[i] if decay else g[i]
        si = s[i] * alpha + one_minus_alpha * gi * gi
        s[i] = si
        avg = np.sqrt(si) + eps
        if with_momentum:
            b = buf[i] * momentum + gi / avg
            buf[i] = b
            p[i] = p[i] - lr * b
        else:
            p[i] = p[i] - lr * gi / avg


def rmsprop(p, g, square_avg, momentum_buffer, lr, alpha, eps, weight_decay, momentum) -> bool:
    """One RMSprop step in place (not centered, not maximizing): ``s = alpha * s + (1 - alpha) * g' * g'``,
    ``avg = sqrt(s) + eps``, then ``buf = momentum * buf + g' / avg``, ``p -= lr * buf`` (``momentum_buffer``
    given) or ``p -= lr * g' / avg``, with ``g' = g + weight_decay * p``; False (and nothing done) where it does
    not apply. The scalars are Python numbers."""
    arrays = (p, g, square_avg) + ((momentum_buffer,) if momentum_buffer is not None else ())
    if not _applies(*arrays):
        return False
    t = p.dtype.type
    kernel = _rmsprop_parallel if p.size >= PARALLEL_MIN_SIZE else _rmsprop_serial
    flat = [a.reshape(-1) for a in arrays]
    if momentum_buffer is None:
        flat.append(flat[2])  # never read or written without momentum: a placeholder of the right type
    kernel(*flat, t(lr), t(alpha), t(1 - alpha), t(eps), t(weight_decay), t(momentum), weight_decay != 0,
           momentum_buffer is not None)
    return True
