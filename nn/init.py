"""Weight initialisation, in place, with ``torch.nn.init``'s names and formulas; draws use the global
generator seeded by ``tensorlib.manual_seed``."""

from __future__ import annotations

import math
import warnings

import numpy as np

from tensorlib.device import move
from tensorlib.random import default_generator


def _fill(tensor, values):
    tensor.data[...] = move(np.asarray(values, dtype=tensor.dtype), tensor.device)
    return tensor


def _draw_dtype(tensor):
    """Draw directly in float32 for float32 tensors: no float64 temporary (a VGG layer is 100M weights)."""
    return np.float32 if tensor.dtype == np.float32 else np.float64


def _is_empty(tensor) -> bool:
    """True (with PyTorch's warning) for a zero-element tensor, whose fans are 0: there is nothing to draw,
    and the std formulas would divide by zero."""
    if tensor.numel() == 0:
        warnings.warn("Initializing zero-element tensors is a no-op", stacklevel=3)
        return True
    return False


def calculate_gain(nonlinearity: str, param=None) -> float:
    """The recommended gain for an activation (the factor by which it shrinks the signal's std)."""
    linear = ("linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d",
              "sigmoid")
    if nonlinearity in linear:
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else param
        return math.sqrt(2.0 / (1 + slope**2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"unsupported nonlinearity {nonlinearity!r}")


def calculate_fan_in_and_fan_out(tensor) -> tuple[int, int]:
    """fan_in = in_features * receptive field, fan_out = out_features * receptive field."""
    if tensor.ndim < 2:
        raise ValueError(f"fan in and fan out need a tensor of at least 2 dims, got shape {tensor.shape}")
    receptive = int(np.prod(tensor.shape[2:])) if tensor.ndim > 2 else 1
    return tensor.shape[1] * receptive, tensor.shape[0] * receptive


def uniform_(tensor, a=0.0, b=1.0):
    values = default_generator().random(tensor.shape, dtype=_draw_dtype(tensor))
    values *= b - a
    values += a
    return _fill(tensor, values)


def normal_(tensor, mean=0.0, std=1.0):
    values = default_generator().standard_normal(tensor.shape, dtype=_draw_dtype(tensor))
    values *= std
    values += mean
    return _fill(tensor, values)


def constant_(tensor, val):
    tensor.data[...] = val
    return tensor


def zeros_(tensor):
    return constant_(tensor, 0)


def ones_(tensor):
    return constant_(tensor, 1)


def xavier_uniform_(tensor, gain=1.0):
    if _is_empty(tensor):
        return tensor
    fan_in, fan_out = calculate_fan_in_and_fan_out(tensor)
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform_(tensor, -bound, bound)


def xavier_normal_(tensor, gain=1.0):
    if _is_empty(tensor):
        return tensor
    fan_in, fan_out = calculate_fan_in_and_fan_out(tensor)
    return normal_(tensor, 0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)))


def _kaiming_std(tensor, a, mode, nonlinearity):
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"mode must be 'fan_in' or 'fan_out', got {mode!r}")
    fan_in, fan_out = calculate_fan_in_and_fan_out(tensor)
    fan = fan_in if mode == "fan_in" else fan_out
    return calculate_gain(nonlinearity, a) / math.sqrt(fan)


def kaiming_uniform_(tensor, a=0.0, mode="fan_in", nonlinearity="leaky_relu"):
    if _is_empty(tensor):
        return tensor
    bound = math.sqrt(3.0) * _kaiming_std(tensor, a, mode, nonlinearity)
    return uniform_(tensor, -bound, bound)


def kaiming_normal_(tensor, a=0.0, mode="fan_in", nonlinearity="leaky_relu"):
    if _is_empty(tensor):
        return tensor
    return normal_(tensor, 0.0, _kaiming_std(tensor, a, mode, nonlinearity))
