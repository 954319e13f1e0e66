"""Weight initialisation, in place, with ``torch.nn.init``'s names and formulas; draws use the global
generator seeded by ``tensorlib.manual_seed``, or the NumPy ``Generator`` passed as ``generator=`` (the kind
``tensorlib.rand(generator=)`` takes)."""

from __future__ import annotations

import math
import warnings

import numpy as np

from tensorlib.device import move
from tensorlib.random import generator_or_default


def _check_floating(tensor, who: str):
    """Random draws fill floating-point tensors only, as in PyTorch (an integer tensor would truncate them)."""
    if tensor.dtype.kind != "f":
        raise NotImplementedError(f"{who} draws floating-point values and is not implemented for a tensor of "
                                  f"dtype {tensor.dtype}")


def _fill(tensor, values):
    tensor.array[...] = move(np.asarray(values, dtype=tensor.dtype), tensor.device)
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
    """The recommended gain for an activation (the factor by which it shrinks the signal's std); ``param`` is
    leaky_relu's negative slope (default 0.01)."""
    linear = ("linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d",
              "sigmoid")
    if nonlinearity in linear:
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        if param is None:
            slope = 0.01
        elif isinstance(param, (int, float)) and not isinstance(param, bool):
            slope = param
        else:
            raise ValueError(f"negative_slope (param) of leaky_relu must be a number, got {param!r}")
        return math.sqrt(2.0 / (1 + slope**2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"unsupported nonlinearity {nonlinearity!r}; expected one of {', '.join(linear)}, tanh, relu, "
                     f"leaky_relu, selu")


def calculate_fan_in_and_fan_out(tensor) -> tuple[int, int]:
    """fan_in = in_features * receptive field, fan_out = out_features * receptive field."""
    if tensor.ndim < 2:
        raise ValueError(f"fan in and fan out need a tensor of at least 2 dims, got shape {tensor.shape}")
    receptive = int(np.prod(tensor.shape[2:])) if tensor.ndim > 2 else 1
    return tensor.shape[1] * receptive, tensor.shape[0] * receptive


def uniform_(tensor, a=0.0, b=1.0, generator=None):
    """Fill with draws from U(a, b)."""
    _check_floating(tensor, "uniform_")
    if not (math.isfinite(a) and math.isfinite(b)):
        raise RuntimeError(f"uniform_ expects finite bounds, got a={a}, b={b}")
    if a > b:
        raise RuntimeError(f"uniform_ expects to return a [from, to) range, but found a={a} > b={b}")
    values = generator_or_default(generator).random(tensor.shape, dtype=_draw_dtype(tensor))
    values *= b - a
    values += a
    return _fill(tensor, values)


def normal_(tensor, mean=0.0, std=1.0, generator=None):
    """Fill with draws from N(mean, std^2)."""
    _check_floating(tensor, "normal_")
    if not std >= 0:  # also catches NaN
        raise RuntimeError(f"normal_ expects std >= 0.0, but found std={std}")
    values = generator_or_default(generator).standard_normal(tensor.shape, dtype=_draw_dtype(tensor))
    values *= std
    values += mean
    return _fill(tensor, values)


def trunc_normal_(tensor, mean=0.0, std=1.0, a=-2.0, b=2.0, generator=None):
    """Fill with draws from N(mean, std^2) restricted to [a, b] (the bounds are values, not multiples of std).

    By rejection, as PyTorch does: normal draws outside [a, b] are drawn again, or, when [a, b] holds less than
    30% of the distribution's mass, uniform draws on [a, b] are kept with probability pdf(x) / max pdf."""
    _check_floating(tensor, "trunc_normal_")
    if not std > 0:
        raise ValueError(f"trunc_normal_ expects std > 0, got std={std}")
    if a > b:
        raise RuntimeError(f"trunc_normal_ expects a <= b, but found a={a} > b={b}")
    if mean < a - 2 * std or mean > b + 2 * std:
        warnings.warn("mean is more than 2 std from [a, b] in nn.init.trunc_normal_. "
                      "The distribution of values may be incorrect.", stacklevel=2)
    rng = generator_or_default(generator)

    def cdf(x):
        return (1.0 + math.erf((x - mean) / (std * math.sqrt(2.0)))) / 2.0

    if cdf(b) - cdf(a) > 0.3:
        def draw(n):
            values = mean + std * rng.standard_normal(n)
            return values, (a <= values) & (values <= b)
    else:
        mode = max(a, min(mean, b))

        def draw(n):
            values = rng.uniform(a, b, n)
            log_ratio = -0.5 * ((values - mean) / std) ** 2 + 0.5 * ((mode - mean) / std) ** 2
            return values, np.log(rng.random(n)) <= log_ratio

    flat = np.empty(tensor.numel())
    pending = np.arange(flat.size)
    while pending.size:
        values, accepted = draw(pending.size)
        flat[pending[accepted]] = values[accepted]
        pending = pending[~accepted]
    return _fill(tensor, flat.reshape(tensor.shape))


def constant_(tensor, val):
    tensor.array[...] = val
    return tensor


def zeros_(tensor):
    return constant_(tensor, 0)


def ones_(tensor):
    return constant_(tensor, 1)


def xavier_uniform_(tensor, gain=1.0, generator=None):
    if _is_empty(tensor):
        return tensor
    fan_in, fan_out = calculate_fan_in_and_fan_out(tensor)
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform_(tensor, -bound, bound, generator)


def xavier_normal_(tensor, gain=1.0, generator=None):
    if _is_empty(tensor):
        return tensor
    fan_in, fan_out = calculate_fan_in_and_fan_out(tensor)
    return normal_(tensor, 0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)), generator)


def _kaiming_std(tensor, a, mode, nonlinearity):
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"mode must be 'fan_in' or 'fan_out', got {mode!r}")
    fan_in, fan_out = calculate_fan_in_and_fan_out(tensor)
    fan = fan_in if mode == "fan_in" else fan_out
    return calculate_gain(nonlinearity, a) / math.sqrt(fan)


def kaiming_uniform_(tensor, a=0.0, mode="fan_in", nonlinearity="leaky_relu", generator=None):
    if _is_empty(tensor):
        return tensor
    bound = math.sqrt(3.0) * _kaiming_std(tensor, a, mode, nonlinearity)
    return uniform_(tensor, -bound, bound, generator)


def kaiming_normal_(tensor, a=0.0, mode="fan_in", nonlinearity="leaky_relu", generator=None):
    if _is_empty(tensor):
        return tensor
    return normal_(tensor, 0.0, _kaiming_std(tensor, a, mode, nonlinearity), generator)


def orthogonal_(tensor, gain=1.0, generator=None):
    """Fill with a (semi-)orthogonal matrix times ``gain`` (Saxe et al. 2013); dims after the first are
    flattened, so the rows (or, if fewer, the columns) of ``tensor.reshape(len(tensor), -1)`` are orthonormal."""
    if tensor.ndim < 2:
        raise ValueError(f"orthogonal_ needs a tensor of at least 2 dims, got shape {tensor.shape}")
    _check_floating(tensor, "orthogonal_")
    if tensor.numel() == 0:
        return tensor
    rows = tensor.shape[0]
    cols = tensor.numel() // rows
    flat = generator_or_default(generator).standard_normal((rows, cols))
    if rows < cols:
        flat = flat.T
    q, r = np.linalg.qr(flat)
    q *= np.sign(np.diag(r))  # makes Q uniformly distributed (Mezzadri 2007), as in PyTorch
    if rows < cols:
        q = q.T
    return _fill(tensor, gain * q.reshape(tensor.shape))


def eye_(tensor):
    """Fill a 2-D tensor with the identity matrix (ones on the main diagonal of a non-square one)."""
    if tensor.ndim != 2:
        raise ValueError(f"eye_ needs a 2-D tensor, got shape {tensor.shape}")
    return _fill(tensor, np.eye(*tensor.shape))


def dirac_(tensor, groups=1):
    """Fill a 3-, 4- or 5-D convolution weight so that the convolution passes its input channels through
    (as many as fit, per group): a 1 at the kernel's centre of output channel d of each group, input channel d."""
    if tensor.ndim not in (3, 4, 5):
        raise ValueError(f"dirac_ needs a tensor of 3, 4 or 5 dims, got shape {tensor.shape}")
    if isinstance(groups, bool) or not isinstance(groups, int) or groups < 1:
        raise ValueError(f"dirac_ groups must be a positive int, got {groups!r}")
    if tensor.shape[0] % groups:
        raise ValueError(f"dirac_ needs dim 0 (size {tensor.shape[0]}) divisible by groups={groups}")
    per_group = tensor.shape[0] // groups
    centre = tuple(size // 2 for size in tensor.shape[2:])
    values = np.zeros(tensor.shape)
    for group in range(groups):
        for d in range(min(per_group, tensor.shape[1])):
            values[(group * per_group + d, d, *centre)] = 1
    return _fill(tensor, values)


def sparse_(tensor, sparsity, std=0.01, generator=None):
    """Fill a 2-D tensor with N(0, std^2) draws, then zero ``ceil(sparsity * rows)`` random rows of each column
    (Martens 2010)."""
    if tensor.ndim != 2:
        raise ValueError(f"sparse_ needs a 2-D tensor, got shape {tensor.shape}")
    if not 0 <= sparsity <= 1:
        raise ValueError(f"sparse_ sparsity is the fraction of each column set to zero, in [0, 1]; got {sparsity!r}")
    _check_floating(tensor, "sparse_")
    if not std >= 0:  # also catches NaN
        raise RuntimeError(f"sparse_ expects std >= 0.0, but found std={std}")
    rng = generator_or_default(generator)
    rows, cols = tensor.shape
    values = rng.standard_normal(tensor.shape, dtype=_draw_dtype(tensor)) * std  # normal_'s draws, written once
    zeros = math.ceil(sparsity * rows)
    for col in range(cols):
        values[rng.permutation(rows)[:zeros], col] = 0
    return _fill(tensor, values)
