"""The float64 oracle for matmul: the definition c[i, j] = sum_k a[i, k] * b[k, j], one loop per index."""

import numpy as np


def matmul(a, b):
    """Reference ``a @ b`` for 2-D operands, or broadcast batches of them, in float64."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    squeeze_a, squeeze_b = a.ndim == 1, b.ndim == 1
    if squeeze_a:
        a = a[None, :]
    if squeeze_b:
        b = b[:, None]
    batch = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    a = np.broadcast_to(a, batch + a.shape[-2:])
    b = np.broadcast_to(b, batch + b.shape[-2:])
    m, n, inner = a.shape[-2], b.shape[-1], a.shape[-1]
    out = np.zeros(batch + (m, n))
    for index in np.ndindex(*batch):
        for i in range(m):
            for j in range(n):
                total = 0.0
                for k in range(inner):
                    total += a[index + (i, k)] * b[index + (k, j)]
                out[index + (i, j)] = total
    if squeeze_a:
        out = out[..., 0, :]
    if squeeze_b:
        out = out[..., 0]
    return out
