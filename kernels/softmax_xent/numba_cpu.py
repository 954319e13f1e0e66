"""CPU softmax cross-entropy row by row in Numba: v1 (plain loops) and v2 (the same rows on vectors, its
kernels in ``vector_rows.py``). Each row's maximum, exponentials, sum, loss and normalisation run in one
loop nest, rows over Numba's threads from ``PARALLEL_MIN_SIZE`` elements. v1's ``np.exp`` is one scalar
``expf`` call per element (this Numba has no SVML), which is its whole time at 1000 classes; v2's
polynomial exponential on 16 lanes is the CPU default. The backward pass, a subtraction and a scale per
element that LLVM vectorises as written, is v1's loop under both names.

v0's NumPy steps each pass over the whole (N, C) array (maximum, subtraction, exponential, sum, gather,
division) and allocate the shifted logits; here a row is read twice (maximum, then exponentials) while it is
in cache and the softmax is written once. The row sum is a sequential loop in the array's precision where
NumPy sums pairwise, so values agree with v0 to rounding, not bit for bit. An out-of-range target (possible
only inside a CUDA graph capture, where targets are not checked) gives a NaN loss and no one-hot column,
as the CUDA kernel does.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
from numba import njit, prange

from kernels import cache
from kernels.registry import register

PARALLEL_MIN_SIZE = 1 << 16


@njit(inline="always")
def row_loss(row, target, ignore_index, total, peak, zero):
    """One sample's loss from its row's sum of shifted exponentials: 0 for an ignored row, NaN for a target
    outside the row (v1 and v2 alike)."""
    if target == ignore_index:
        return zero
    if 0 <= target < row.shape[0]:
        return np.log(total) - (row[target] - peak)
    return zero * np.nan


@njit(inline="always")
def _forward_row(logits, targets, ignore_index, losses, probs, i, zero):
    C = logits.shape[1]
    peak = logits[i, 0]
    for j in range(1, C):
        value = logits[i, j]
        if value > peak or value != value:  # NaN propagates, as in NumPy's max
            peak = value
    total = zero
    for j in range(C):
        e = np.exp(logits[i, j] - peak)
        probs[i, j] = e
        total += e
    losses[i] = row_loss(logits[i], targets[i], ignore_index, total, peak, zero)
    for j in range(C):
        probs[i, j] = probs[i, j] / total


@njit(cache=True)
def _forward_serial(logits, targets, ignore_index, losses, probs, zero):
    for i in range(logits.shape[0]):
        _forward_row(logits, targets, ignore_index, losses, probs, i, zero)


@njit(parallel=True, cache=True)
def _forward_parallel(logits, targets, ignore_index, losses, probs, zero):
    for i in prange(logits.shape[0]):
        _forward_row(logits, targets, ignore_index, losses, probs, i, zero)


@njit(inline="always")
def _backward_row(probs, targets, grad_losses, ignore_index, dlogits, i, zero):
    C = probs.shape[1]
    target = targets[i]
    g = zero if target == ignore_index else grad_losses[i]
    for j in range(C):
        dlogits[i, j] = probs[i, j] * g
    if target != ignore_index and 0 <= target < C:
        dlogits[i, target] = dlogits[i, target] - g


@njit(cache=True)
def _backward_serial(probs, targets, grad_losses, ignore_index, dlogits, zero):
    for i in range(probs.shape[0]):
        _backward_row(probs, targets, grad_losses, ignore_index, dlogits, i, zero)


@njit(parallel=True, cache=True)
def _backward_parallel(probs, targets, grad_losses, ignore_index, dlogits, zero):
    for i in prange(probs.shape[0]):
        _backward_row(probs, targets, grad_losses, ignore_index, dlogits, i, zero)


def _applies(*arrays):
    return arrays[0].dtype.char in "fd" and all(type(a) is np.ndarray for a in arrays)


def _forward(serial, parallel, logits, targets, ignore_index):
    if not _applies(logits):
        from kernels.softmax_xent.numpy import softmax_xent_forward as expression

        return expression(logits, targets, ignore_index)
    logits = np.ascontiguousarray(logits)
    losses = np.empty(logits.shape[0], logits.dtype)
    probs = np.empty(logits.shape, logits.dtype)
    kernel = parallel if logits.size >= PARALLEL_MIN_SIZE else serial
    kernel(logits, targets, ignore_index, losses, probs, logits.dtype.type(0))
    return losses, probs


@register("softmax_xent_forward", "numba", "v1_row_loops")
def softmax_xent_forward(logits, targets, ignore_index):
    """Per row: maximum, shifted exponentials and their sum, loss, then the softmax normalised in place."""
    return _forward(_forward_serial, _forward_parallel, logits, targets, ignore_index)


@functools.lru_cache(maxsize=1)
def _vector_rows():
    path = Path(__file__).with_name("vector_rows.py")
    return cache.load_module("softmax_xent_vector_rows", path.read_text(), "softmax_xent vector_rows")


@register("softmax_xent_forward", "numba", "v2_vector_exp", default=True)
def softmax_xent_forward_vector(logits, targets, ignore_index):
    """v1's row loops on whole vectors, the exponential a polynomial (``vector_rows.py``); CPU default."""
    rows = _vector_rows()
    return _forward(rows.forward_serial, rows.forward_parallel, logits, targets, ignore_index)


@register("softmax_xent_backward", "numba", "v2_vector_exp", default=True)
@register("softmax_xent_backward", "numba", "v1_row_loops")
def softmax_xent_backward(probs, targets, grad_losses, ignore_index):
    """Per row: softmax * g, minus g at the target; ignored rows get g = 0."""
    if not _applies(probs, grad_losses):
        from kernels.softmax_xent.numpy import softmax_xent_backward as expression

        return expression(probs, targets, grad_losses, ignore_index)
    probs = np.ascontiguousarray(probs)
    dlogits = np.empty(probs.shape, probs.dtype)
    kernel = _backward_parallel if probs.size >= PARALLEL_MIN_SIZE else _backward_serial
    kernel(probs, targets, np.ascontiguousarray(grad_losses), ignore_index, dlogits, probs.dtype.type(0))
    return dlogits
