"""The float64 oracle for softmax cross-entropy: plain loops, one row at a time."""

import math

import numpy as np


def softmax_xent_forward(logits, targets, ignore_index):
    """(losses, softmax): loss_i = log(sum_j exp(x_ij - m_i)) - (x_it - m_i) with m_i the row maximum."""
    logits = np.asarray(logits, dtype=np.float64)
    N, C = logits.shape
    losses, probs = np.zeros(N), np.zeros((N, C))
    for i in range(N):
        row_max = max(logits[i])
        total = sum(math.exp(v - row_max) for v in logits[i])
        for j in range(C):
            probs[i, j] = math.exp(logits[i, j] - row_max) / total
        if targets[i] != ignore_index:
            losses[i] = math.log(total) - (logits[i, targets[i]] - row_max)
    return losses, probs


def softmax_xent_backward(probs, targets, grad_losses, ignore_index):
    N, C = probs.shape
    dlogits = np.zeros((N, C))
    for i in range(N):
        if targets[i] == ignore_index:
            continue
        for j in range(C):
            dlogits[i, j] = (float(probs[i, j]) - (j == targets[i])) * float(grad_losses[i])
    return dlogits
