"""Argument checking and the output-size formula for 2-D convolution, shared by every variant.

The output size along one axis is ``floor((W + 2P - D*(K-1) - 1) / S) + 1`` (input W, kernel K, padding P,
stride S, dilation D). When the stride does not tile the padded input exactly -- the classic example is a
7x7 input, a 3x3 filter and stride 3 -- the formula floors, as PyTorch does: the output is 2x2 and the last
row and column of the input are never visited by the filter.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def is_int(value) -> bool:
    """An int, Python's or NumPy's, and not a bool."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def pair(value, name: str) -> tuple[int, int]:
    """``3 -> (3, 3)``, ``(3, 2) -> (3, 2)``, ``(3,) -> (3, 3)`` (PyTorch expands a one-element sequence to
    both axes); anything else raises naming ``name``."""
    if is_int(value):
        return int(value), int(value)
    if isinstance(value, (tuple, list)) and len(value) in (1, 2) and all(is_int(v) for v in value):
        return int(value[0]), int(value[-1])
    raise TypeError(f"{name} must be an int or a pair of ints, got {value!r}")


def _output_size(size: int, kernel: int, stride: int, padding: int, dilation: int) -> int:
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def conv_output_size(size: int, kernel: int, stride: int, padding: int, dilation: int) -> int:
    """``floor((size + 2*padding - dilation*(kernel-1) - 1) / stride) + 1``: the output size of a convolution
    (or pooling window) along one axis. Raises where the arguments are not whole numbers in range, or where the
    (dilated) kernel does not fit into the padded input, so no output position exists."""
    for name, value, least in (("size", size, 0), ("kernel", kernel, 1), ("stride", stride, 1),
                               ("padding", padding, 0), ("dilation", dilation, 1)):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool):
            raise TypeError(f"{name} must be an int, got {value!r}")
        if value < least:
            raise ValueError(f"{name} must be at least {least}, got {value}")
    out = _output_size(size, kernel, stride, padding, dilation)
    if out < 1:
        raise ValueError(
            f"the kernel spans {dilation * (kernel - 1) + 1} (kernel {kernel}, dilation {dilation}) but the padded "
            f"input only {size + 2 * padding} (size {size}, padding {padding}): the output would be empty"
        )
    return out


def same_padding(kernel: int, dilation: int) -> tuple[int, int]:
    """(before, after) zero padding that keeps the size at stride 1; the extra one goes after, as in PyTorch."""
    total = dilation * (kernel - 1)
    return total // 2, total - total // 2


@dataclass(frozen=True)
class ConvGeometry:
    """Every size of one convolution: input (N, C, H, W), weight (K, C/groups, R, S), output (N, K, P, Q)."""

    N: int
    C: int
    H: int
    W: int
    K: int
    R: int
    S: int
    P: int
    Q: int
    stride: tuple[int, int]
    padding: tuple[int, int]
    dilation: tuple[int, int]
    groups: int

    @property
    def x_shape(self) -> tuple[int, int, int, int]:
        return (self.N, self.C, self.H, self.W)

    @property
    def w_shape(self) -> tuple[int, int, int, int]:
        return (self.K, self.C // self.groups, self.R, self.S)

    @property
    def y_shape(self) -> tuple[int, int, int, int]:
        return (self.N, self.K, self.P, self.Q)

    @property
    def flops(self) -> int:
        """Floating-point operations of the forward pass (2 per multiply-accumulate)."""
        return 2 * self.N * self.K * self.P * self.Q * (self.C // self.groups) * self.R * self.S


def conv2d_geometry(x_shape, w_shape, stride=1, padding=0, dilation=1, groups=1) -> ConvGeometry:
    """Validate a convolution's arguments and compute its output size.

    ``padding`` is an int, a pair, "valid" (no padding) or "same" (output size = input size; stride 1 only,
    and the padding must be symmetric: an even extent ``dilation*(kernel-1)`` is handled by the caller,
    which pads the input explicitly first).
    """
    if len(x_shape) != 4:
        raise ValueError(f"conv2d input must be 4-D (N, C, H, W), got shape {tuple(x_shape)}")
    if len(w_shape) != 4:
        raise ValueError(f"conv2d weight must be 4-D (K, C/groups, R, S), got shape {tuple(w_shape)}")
    N, C, H, W = (int(v) for v in x_shape)
    K, Cg, R, S = (int(v) for v in w_shape)
    if isinstance(groups, (bool, np.bool_)) or not isinstance(groups, (int, np.integer)) or groups < 1:
        raise ValueError(f"groups must be a positive int, got {groups!r}")
    groups = int(groups)
    stride, dilation = pair(stride, "stride"), pair(dilation, "dilation")
    if min(stride) < 1:
        raise ValueError(f"stride must be positive, got {stride}")
    if min(dilation) < 1:
        raise ValueError(f"dilation must be positive, got {dilation}")
    if min(R, S) < 1:
        raise ValueError(f"kernel size must be positive, got weight shape {tuple(w_shape)}")
    if C % groups:
        raise ValueError(f"input channels {C} (input shape {tuple(x_shape)}) are not divisible by groups={groups}")
    if K % groups:
        raise ValueError(f"output channels {K} (weight shape {tuple(w_shape)}) are not divisible by groups={groups}")
    if Cg * groups != C:
        raise ValueError(
            f"weight shape {tuple(w_shape)} expects {Cg * groups} input channels (C/groups={Cg}, groups={groups}) "
            f"but input shape {tuple(x_shape)} has {C}"
        )
    if isinstance(padding, str):
        if padding == "valid":
            padding = (0, 0)
        elif padding == "same":
            if stride != (1, 1):
                raise ValueError(f"padding='same' needs stride 1, got stride {stride}")
            (ph0, ph1), (pw0, pw1) = same_padding(R, dilation[0]), same_padding(S, dilation[1])
            if ph0 != ph1 or pw0 != pw1:
                raise ValueError(
                    f"padding='same' with kernel {(R, S)} and dilation {dilation} needs asymmetric padding; "
                    "pad the input explicitly first"
                )
            padding = (ph0, pw0)
        else:
            raise ValueError(f"padding must be an int, a pair, 'same' or 'valid', got {padding!r}")
    else:
        padding = pair(padding, "padding")
    if min(padding) < 0:
        raise ValueError(f"padding must be non-negative, got {padding}")
    P = _output_size(H, R, stride[0], padding[0], dilation[0])
    Q = _output_size(W, S, stride[1], padding[1], dilation[1])
    if P < 1 or Q < 1:
        raise ValueError(
            f"conv2d output would be empty ({P}x{Q}): input size {(H, W)}, kernel {(R, S)}, stride {stride}, "
            f"padding {padding}, dilation {dilation}"
        )
    return ConvGeometry(N, C, H, W, K, R, S, P, Q, stride, padding, dilation, groups)
