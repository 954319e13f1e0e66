"""CPU kernels for optimizer updates: SGD with momentum, Adam and RMSprop, in one pass over the parameter,
its gradient and its state.

The array expressions of ``nn.optim.SGD`` make five or six passes with two temporaries per parameter
(``buf *= m``; ``(1 - d) * g``; ``buf += ...``; ``lr * buf``; ``p -= ...``), 18 ms a step for VGG-11's 9.2M
parameters on two cores; Adam's make about twelve with eight temporaries. Here one loop reads the
parameter, gradient and state and writes the parameter and state, over Numba's threads from
``PARALLEL_MIN_SIZE`` elements. The constants are cast to the array's dtype and every operation is the
expression's, in its order, with no contraction into FMAs, so the result equals the expression bit for bit.

Each function returns False where it does not apply (CuPy or simulated device arrays, float16, mixed
dtypes, non-contiguous arrays, a hyper-parameter that is not a Python number), and the optimizer runs its
expression (a captured step's scalars are 0-d device arrays). The last rule also keeps the two paths equal:
NumPy 2 computes ``lr * buf`` in float64 when ``lr`` is an ``np.float64`` (a subclass of ``float``), where
the kernel would cast it to the parameter's dtype.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

PARALLEL_MIN_SIZE = 1 << 16


# Each update is an element function, inlined into a serial loop (small arrays: a parallel region's start-up
# costs more than the work) and a prange loop over Numba's threads.

@njit(inline="always")
def _sgd_element(p, g, buf, lr, momentum, damp, weight_decay, nesterov, decay):
    gi = g + weight_decay * p if decay else g
    b = buf * momentum + damp * gi
    return p - lr * (gi + momentum * b if nesterov else b), b


@njit(cache=True)
def _serial(p, g, buf, lr, momentum, damp, weight_decay, nesterov, decay):
    for i in range(p.size):
        p[i], buf[i] = _sgd_element(p[i], g[i], buf[i], lr, momentum, damp, weight_decay, nesterov, decay)


@njit(parallel=True, cache=True)
def _parallel(p, g, buf, lr, momentum, damp, weight_decay, nesterov, decay):
    for i in prange(p.size):
        p[i], buf[i] = _sgd_element(p[i], g[i], buf[i], lr, momentum, damp, weight_decay, nesterov, decay)


def _applies(arrays, scalars) -> bool:
    first = arrays[0]
    return first.dtype.char in "fd" and all(type(s) in (int, float) for s in scalars) and all(
        type(a) is np.ndarray and a.dtype == first.dtype and a.flags.c_contiguous and a.shape == first.shape
        for a in arrays)


def sgd_momentum(p, g, buf, lr, momentum, dampening, weight_decay, nesterov) -> bool:
    """``p -= lr * d`` with ``buf = momentum * buf + (1 - dampening) * g'``, ``g' = g + weight_decay * p``,
    ``d = g' + momentum * buf`` (Nesterov) or ``buf``, in place; False (and nothing done) where it does not
    apply. The scalars are Python numbers."""
    if not _applies((p, g, buf), (lr, momentum, dampening, weight_decay)):
        return False
    t = p.dtype.type
    kernel = _parallel if p.size >= PARALLEL_MIN_SIZE else _serial
    flat = [a.reshape(-1) for a in (p, g, buf)]
    kernel(*flat, t(lr), t(momentum), t(1 - dampening), t(weight_decay), bool(nesterov), weight_decay != 0)
    return True


@njit(inline="always")
def _adam_element(p, g, m, v, step_size, bc2_sqrt, eps, omb1, beta2, omb2, weight_decay, decay, mode):
    if mode == 1:  # L2: the decay joins the gradient
        g = g + weight_decay * p
    if mode == 2:  # decoupled (AdamW): the parameter shrinks first
        p = p * decay
    m = m + omb1 * (g - m)
    v = v * beta2 + omb2 * g * g
    return p - step_size * m / (np.sqrt(v) / bc2_sqrt + eps), m, v


@njit(cache=True)
def _adam_serial(p, g, m, v, step_size, bc2_sqrt, eps, omb1, beta2, omb2, weight_decay, decay, mode):
    for i in range(p.size):
        p[i], m[i], v[i] = _adam_element(p[i], g[i], m[i], v[i], step_size, bc2_sqrt, eps, omb1, beta2, omb2,
                                         weight_decay, decay, mode)


@njit(parallel=True, cache=True)
def _adam_parallel(p, g, m, v, step_size, bc2_sqrt, eps, omb1, beta2, omb2, weight_decay, decay, mode):
    for i in prange(p.size):
        p[i], m[i], v[i] = _adam_element(p[i], g[i], m[i], v[i], step_size, bc2_sqrt, eps, omb1, beta2, omb2,
                                         weight_decay, decay, mode)


def adam(p, g, m, v, step_size, bias_correction2_sqrt, eps, one_minus_beta1, beta2, one_minus_beta2, weight_decay,
         decay, decoupled) -> bool:
    """One Adam step in place (no amsgrad, not maximizing): ``m += (1 - b1) * (g' - m)``, ``v = b2 * v +
    (1 - b2) * g' * g'``, ``p -= step_size * m / (sqrt(v) / bias_correction2_sqrt + eps)``, with ``g' = g +
    weight_decay * p`` (L2) or ``p *= decay`` first (``decoupled``); False (and nothing done) where it does not
    apply. The scalars are Python numbers."""
    if not _applies((p, g, m, v), (step_size, bias_correction2_sqrt, eps, one_minus_beta1, beta2, one_minus_beta2,
                                   weight_decay, decay)):
        return False
    t = p.dtype.type
    mode = 0 if weight_decay == 0 else (2 if decoupled else 1)
    kernel = _adam_parallel if p.size >= PARALLEL_MIN_SIZE else _adam_serial
    flat = [a.reshape(-1) for a in (p, g, m, v)]
    kernel(*flat, t(step_size), t(bias_correction2_sqrt), t(eps), t(one_minus_beta1), t(beta2), t(one_minus_beta2),
           t(weight_decay), t(decay), mode)
    return True


@njit(inline="always")
def _rmsprop_element(p, g, s, buf, lr, alpha, one_minus_alpha, eps, weight_decay, momentum, decay, with_momentum):
    if decay:
        g = g + weight_decay * p
    s = s * alpha + one_minus_alpha * g * g
    avg = np.sqrt(s) + eps
    if with_momentum:
        buf = buf * momentum + g / avg
        return p - lr * buf, s, buf
    return p - lr * g / avg, s, buf


@njit(cache=True)
def _rmsprop_serial(p, g, s, buf, lr, alpha, one_minus_alpha, eps, weight_decay, momentum, decay, with_momentum):
    for i in range(p.size):
        p[i], s[i], b = _rmsprop_element(p[i], g[i], s[i], buf[i], lr, alpha, one_minus_alpha, eps, weight_decay,
                                         momentum, decay, with_momentum)
        if with_momentum:  # without momentum buf is a stand-in (the square averages), never written
            buf[i] = b


@njit(parallel=True, cache=True)
def _rmsprop_parallel(p, g, s, buf, lr, alpha, one_minus_alpha, eps, weight_decay, momentum, decay, with_momentum):
    for i in prange(p.size):
        p[i], s[i], b = _rmsprop_element(p[i], g[i], s[i], buf[i], lr, alpha, one_minus_alpha, eps, weight_decay,
                                         momentum, decay, with_momentum)
        if with_momentum:  # without momentum buf is a stand-in (the square averages), never written
            buf[i] = b


def rmsprop(p, g, square_avg, momentum_buffer, lr, alpha, eps, weight_decay, momentum) -> bool:
    """One RMSprop step in place (not centered, not maximizing): ``s = alpha * s + (1 - alpha) * g' * g'``,
    ``avg = sqrt(s) + eps``, then ``buf = momentum * buf + g' / avg``, ``p -= lr * buf`` (``momentum_buffer``
    given) or ``p -= lr * g' / avg``, with ``g' = g + weight_decay * p``; False (and nothing done) where it does
    not apply. The scalars are Python numbers."""
    arrays = (p, g, square_avg) + ((momentum_buffer,) if momentum_buffer is not None else ())
    if not _applies(arrays, (lr, alpha, eps, weight_decay, momentum)):
        return False
    t = p.dtype.type
    kernel = _rmsprop_parallel if p.size >= PARALLEL_MIN_SIZE else _rmsprop_serial
    flat = [a.reshape(-1) for a in arrays]
    if momentum_buffer is None:
        flat.append(flat[2])  # a stand-in of the right type: without momentum the kernel never writes it
    kernel(*flat, t(lr), t(alpha), t(1 - alpha), t(eps), t(weight_decay), t(momentum), weight_decay != 0,
           momentum_buffer is not None)
    return True
