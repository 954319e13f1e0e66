"""The float64 oracle for training-mode batch normalisation: loops over each channel's values."""

import math

import numpy as np


def _channel_values(x, c):
    return [float(x[n, c, l]) for n in range(x.shape[0]) for l in range(x.shape[2])]


def batchnorm_forward_train(x, weight, bias, eps):
    """(y, mean, biased var, inv_std) of an (N, C, L) array; two passes (mean, then squared deviations)."""
    N, C, L = x.shape
    y = np.zeros((N, C, L))
    mean, var, inv_std = np.zeros(C), np.zeros(C), np.zeros(C)
    for c in range(C):
        values = _channel_values(x, c)
        mean[c] = sum(values) / len(values)
        var[c] = sum((v - mean[c]) ** 2 for v in values) / len(values)
        inv_std[c] = 1.0 / math.sqrt(var[c] + eps)
        w = 1.0 if weight is None else float(weight[c])
        b = 0.0 if bias is None else float(bias[c])
        for n in range(N):
            for l in range(L):
                y[n, c, l] = (float(x[n, c, l]) - mean[c]) * inv_std[c] * w + b
    return y, mean, var, inv_std


def batchnorm_backward(dy, x, weight, mean, inv_std):
    """(dx, dweight, dbias) by the closed form dx = w*inv_std/M * (M*dy - sum(dy) - x_hat*sum(dy*x_hat))."""
    N, C, L = x.shape
    M = N * L
    dx, dweight, dbias = np.zeros((N, C, L)), np.zeros(C), np.zeros(C)
    for c in range(C):
        x_hat = [[(float(x[n, c, l]) - float(mean[c])) * float(inv_std[c]) for l in range(L)] for n in range(N)]
        dbias[c] = sum(float(dy[n, c, l]) for n in range(N) for l in range(L))
        dweight[c] = sum(float(dy[n, c, l]) * x_hat[n][l] for n in range(N) for l in range(L))
        w = 1.0 if weight is None else float(weight[c])
        for n in range(N):
            for l in range(L):
                dx[n, c, l] = w * float(inv_std[c]) / M * (M * float(dy[n, c, l]) - dbias[c] - x_hat[n][l] * dweight[c])
    return dx, dweight, dbias
