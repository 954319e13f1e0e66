"""float64 activation gradients, element by element (tests only)."""

from __future__ import annotations

import numpy as np


def activation_backward(name: str, g, y):
    g, y = np.asarray(g, np.float64), np.asarray(y, np.float64)
    out = np.empty(g.shape)
    for i, (gi, yi) in enumerate(zip(g.reshape(-1), y.reshape(-1))):
        if name == "relu":
            out.reshape(-1)[i] = 0.0 if yi <= 0 else gi
        elif name == "tanh":
            out.reshape(-1)[i] = gi * (1 - yi * yi)
        else:
            out.reshape(-1)[i] = gi * yi * (1 - yi)
    return out
