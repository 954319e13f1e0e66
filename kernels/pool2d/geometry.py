"""Argument checking, output sizes and window tables for 2-D pooling, shared by every variant.

Output size along one axis (input W, kernel K, padding P, stride S, dilation D), as in PyTorch:
``floor((W + 2P - D*(K-1) - 1) / S) + 1``; with ``ceil_mode`` the division rounds up, and a last window
that would start in the right padding (``(out-1)*S >= W + P``) is dropped, so every window starts inside
the input or its left padding.

A *window table* describes one axis: for each output position, the first input index its window covers
and how many taps land inside the input. Padding taps are never read -- for max pooling they stand for
-inf, which can never win, and average pooling accounts for them only in the divisor.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from kernels.conv2d.geometry import pair


def pool_output_size(size: int, kernel: int, stride: int, padding: int, dilation: int, ceil_mode: bool) -> int:
    """PyTorch's pooling output size along one axis (``pooling_output_shape``)."""
    span = size + 2 * padding - dilation * (kernel - 1) - 1
    out = (span + (stride - 1 if ceil_mode else 0)) // stride + 1
    if ceil_mode and (out - 1) * stride >= size + padding:
        out -= 1
    return out


@functools.lru_cache(maxsize=256)
def window_table(size: int, out: int, kernel: int, stride: int, padding: int, dilation: int):
    """(first, count): int64 arrays of length ``out``; window i reads ``first[i] + t*dilation``, t < count[i].

    The taps inside ``[0, size)`` form one unbroken run of the window's taps, so a start and a count
    describe them. Cached and read-only: every call of a layer asks for the same few tables.
    """
    taps = (np.arange(out) * stride - padding)[:, None] + dilation * np.arange(kernel)
    inside = (taps >= 0) & (taps < size)
    count = inside.sum(axis=1)
    first = np.where(inside, taps, size).min(axis=1)
    for array in (first, count):
        array.flags.writeable = False
    return first, count


@functools.lru_cache(maxsize=256)
def tap_ranges(size: int, out: int, kernel: int, stride: int, padding: int, dilation: int):
    """(lo, hi): int64 arrays of length ``kernel``; tap t of window i, at ``i*stride - padding + t*dilation``,
    lies inside ``[0, size)`` exactly for ``lo[t] <= i < hi[t]`` (an empty range where it never does).

    The transpose of ``window_table``: per tap, the run of windows that read it, so a loop over the windows
    can be innermost. Cached and read-only.
    """
    offset = np.arange(kernel) * dilation - padding
    lo = np.clip(-(offset // stride), 0, out).astype(np.int64)  # ceil(-offset / stride)
    hi = np.clip((size - 1 - offset) // stride + 1, lo, out).astype(np.int64)
    for array in (lo, hi):
        array.flags.writeable = False
    return lo, hi


@functools.lru_cache(maxsize=256)
def adaptive_window_table(size: int, out: int):
    """(first, count) of adaptive pooling: window i covers ``[floor(i*size/out), ceil((i+1)*size/out))``."""
    i = np.arange(out)
    first = i * size // out
    count = -((-(i + 1) * size) // out) - first
    for array in (first, count):
        array.flags.writeable = False
    return first, count


def _positive(value, name):
    if min(value) < 1:
        raise ValueError(f"{name} must be positive, got {value}")
    return value


def _check_input_shape(op: str, x_shape) -> tuple[int, int, int, int]:
    if len(x_shape) != 4:
        raise ValueError(f"{op} input must be 4-D (N, C, H, W), got shape {tuple(x_shape)}")
    N, C, H, W = (int(v) for v in x_shape)
    if min(C, H, W) < 1:
        raise ValueError(f"{op} input needs non-zero channels, height and width, got shape {tuple(x_shape)}")
    return N, C, H, W


@dataclass(frozen=True)
class PoolGeometry:
    """Every size of one pooling: input (N, C, H, W), output (N, C, P, Q), and the window parameters."""

    N: int
    C: int
    H: int
    W: int
    P: int
    Q: int
    kernel: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]
    dilation: tuple[int, int]
    ceil_mode: bool

    @property
    def x_shape(self) -> tuple[int, int, int, int]:
        return (self.N, self.C, self.H, self.W)

    @property
    def y_shape(self) -> tuple[int, int, int, int]:
        return (self.N, self.C, self.P, self.Q)

    def windows(self):
        """The window tables of the rows and of the columns: ``((first_h, count_h), (first_w, count_w))``."""
        (kh, kw), (sh, sw), (ph, pw), (dh, dw) = self.kernel, self.stride, self.padding, self.dilation
        return window_table(self.H, self.P, kh, sh, ph, dh), window_table(self.W, self.Q, kw, sw, pw, dw)

    def column_taps(self):
        """``tap_ranges`` of the columns: for each column tap of the window, the outputs q that read it."""
        return tap_ranges(self.W, self.Q, self.kernel[1], self.stride[1], self.padding[1], self.dilation[1])


def pool2d_geometry(
    op: str, x_shape, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False
) -> PoolGeometry:
    """Validate a pooling's arguments (``op`` names it in messages) and compute its output size.

    ``stride`` None (or empty) means the kernel size. Padding may be at most half the kernel, as in
    PyTorch: a wider padding would let a window see nothing but padding.
    """
    N, C, H, W = _check_input_shape(op, x_shape)
    kernel = _positive(pair(kernel_size, "kernel_size"), "kernel_size")
    stride = kernel if stride is None or (isinstance(stride, (tuple, list)) and len(stride) == 0) else stride
    stride = _positive(pair(stride, "stride"), "stride")
    dilation = _positive(pair(dilation, "dilation"), "dilation")
    padding = pair(padding, "padding")
    if min(padding) < 0:
        raise ValueError(f"padding must be non-negative, got {padding}")
    if padding[0] > kernel[0] // 2 or padding[1] > kernel[1] // 2:
        raise ValueError(f"padding {padding} must be at most half the kernel size {kernel}")
    if not isinstance(ceil_mode, (bool, np.bool_)):
        raise TypeError(f"ceil_mode must be a bool, got {ceil_mode!r}")
    P = pool_output_size(H, kernel[0], stride[0], padding[0], dilation[0], bool(ceil_mode))
    Q = pool_output_size(W, kernel[1], stride[1], padding[1], dilation[1], bool(ceil_mode))
    if P < 1 or Q < 1:
        raise ValueError(
            f"{op} output would be empty ({P}x{Q}): input size {(H, W)}, kernel {kernel}, stride {stride}, "
            f"padding {padding}, dilation {dilation}"
        )
    g = PoolGeometry(N, C, H, W, P, Q, kernel, stride, padding, dilation, bool(ceil_mode))
    for (_, count), axis in zip(g.windows(), "HW"):
        if count.min() < 1:
            # Only a dilated kernel can step over the whole input; PyTorch returns an index outside it.
            raise ValueError(
                f"{op} window {int(count.argmin())} along {axis} covers only padding: input size {(H, W)}, "
                f"kernel {kernel}, stride {stride}, padding {padding}, dilation {dilation}"
            )
    return g


@dataclass(frozen=True)
class AdaptiveGeometry:
    """Input (N, C, H, W) and output (N, C, P, Q) of adaptive pooling; the windows follow from the sizes."""

    N: int
    C: int
    H: int
    W: int
    P: int
    Q: int

    @property
    def x_shape(self) -> tuple[int, int, int, int]:
        return (self.N, self.C, self.H, self.W)

    @property
    def y_shape(self) -> tuple[int, int, int, int]:
        return (self.N, self.C, self.P, self.Q)

    def windows(self):
        """The window tables of the rows and of the columns, as ``PoolGeometry.windows``."""
        return adaptive_window_table(self.H, self.P), adaptive_window_table(self.W, self.Q)


def adaptive_pool2d_geometry(op: str, x_shape, output_size) -> AdaptiveGeometry:
    """Validate an adaptive pooling's input shape and ``output_size`` (an int or a pair, positive)."""
    N, C, H, W = _check_input_shape(op, x_shape)
    P, Q = _positive(pair(output_size, "output_size"), "output_size")
    return AdaptiveGeometry(N, C, H, W, P, Q)
