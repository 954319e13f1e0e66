"""conv2d: 2-D convolution (cross-correlation, as in every deep-learning framework), NCHW.

Weight layout (K, C/groups, R, S); output (N, K, P, Q) with the size formula of ``geometry``.

| variant            | idea                                                         | ReLU epilogue | runs on |
|--------------------|--------------------------------------------------------------|---------------|---------|
| reference          | float64 loops: the filter slides over the input like a flashlight (tests only) | | cpu |
| numpy.v0_im2col    | im2col of stride phases into reused L2-sized blocks (Numba copies) + one BLAS GEMM per group and block, blocks over threads; 1x1 as a plain GEMM | in the copy that writes the output (1x1: in place per batch block) | cpu |
| numpy.v3_winograd  | Winograd F(2x2, 3x3) for 3x3 stride-1 layers: input and filter transforms as Numba vector loops over channels, 16 OpenBLAS GEMMs over the channels on Numba's threads, output transform; all three passes (backward_input with padding up to 2), v0 for other geometries | in the output transform | cpu |
| numba.v1_direct    | direct loops, no column matrix: forward and backward_weight with output channels innermost on a (C/g, R, S, K) weight, backward_input as a scatter with positions innermost; serial | entry point | cpu |
| numba.v2_direct_blocked | forward and stride-1 backward_input: register-blocked direct kernel (8 positions x 16-64 output channels in AVX-512 registers, taps from a table), images over threads; backward_input with few input channels per group: dy's channels as the lanes, one vector accumulator per (position, input channel) summed across its lanes at the end; backward_weight: the blocked kernel with taps and positions swapped, per-thread partial sums; CPU default for those passes: routes deep and wide 3x3 stride-1 layers to v3, and to v0 where it measured slower or was not measured (few channels per group, 1x1 or strided backward_input, other deep layers) | in kernel | cpu |
| numba_cuda.v1_direct | forward: one thread per output over its receptive field (bounds-free pointwise kernel for 1x1); backward_input: one thread per input element gathering the taps that reach it | in kernel | cuda |
| numba_cuda.v2_direct_smem | forward: output tile per block, its receptive field and KB filters in shared memory, KB accumulators per thread (KB = 1 depthwise); Numba default on cuda | in kernel | cuda |
| numba_cuda.v3_im2col_gemm | forward: im2col kernel + shared-memory tiled GEMM per group writing NCHW | in kernel | cuda |
| numba_cuda.v1_block_reduce | backward_weight (block per weight element) and backward_bias (block per channel): strided sum + shared-memory tree | | cuda |
| cupy.v4_implicit_gemm | CUDA C, all three passes: implicit GEMM (64x64 tiles, 4x4 per thread, operands gathered on the fly), backward_weight split over N*P*Q; direct kernels for depthwise | in kernel | cuda |
| cupy.v5_implicit_gemm_shaped | v4 with the tile shaped by the GEMM's rows (channels): 16x256 up to 16, 32x128 up to 32, else 64x64 | in kernel | cuda |
| cupy.v6_implicit_gemm_taps | v5 with each reduction index decomposed (the integer divisions) once per 8-deep slab instead of once per gathered load; default on a GPU | in kernel | cuda |

``conv2d_forward(..., activation="relu")`` returns ``max(conv2d + b, 0)``. "in kernel": the kernel is
compiled with a ReLU flag (a Numba factory config, a C++ template parameter) and clamps each output as it
stores it; on the CPU the Numba copy that narrows the GEMM's output into y clamps too, and the 1x1 path
(which has no copy) clamps each batch block in place right after its GEMM, while it is in cache; "entry
point": the variant does not fuse it, so ``conv2d_forward`` clamps the fresh output in place afterwards (a
second pass, no temporary). See ``epilogue.py``.

Entry points take raw arrays (NumPy or CuPy), validate them, and dispatch to the variant the registry
selects for the array's device. Each variant receives the validated ``ConvGeometry``. Measurements and
the worklog of the CPU variant: ``kernels/conv2d/README.md``.
"""

from __future__ import annotations

from kernels import registry
from kernels.conv2d.epilogue import ACTIVATIONS
from kernels.conv2d.geometry import ConvGeometry, conv2d_geometry, conv_output_size, same_padding
from kernels.device_arrays import array_module

__all__ = [
    "ACTIVATIONS",
    "ConvGeometry",
    "conv2d_geometry",
    "conv_output_size",
    "same_padding",
    "conv2d_forward",
    "conv2d_backward_input",
    "conv2d_backward_weight",
    "conv2d_backward_bias",
]


def _check_float(name, array):
    kind = getattr(array.dtype, "kind", None)
    if kind != "f":
        raise TypeError(f"conv2d {name} must be a floating-point array, got dtype {array.dtype}")


def _check_same_dtype(names_arrays):
    (first_name, first), *rest = names_arrays
    for name, array in rest:
        if array.dtype != first.dtype:
            raise TypeError(
                f"conv2d {name} dtype {array.dtype} does not match {first_name} dtype {first.dtype}"
            )


def _check_shape(name, array, expected):
    if tuple(array.shape) != tuple(expected):
        raise ValueError(f"conv2d {name} must have shape {tuple(expected)}, got {tuple(array.shape)}")


def conv2d_forward(x, w, b=None, stride=1, padding=0, dilation=1, groups=1, activation=None):
    """y = conv2d(x, w) + b, then ``activation`` (None or "relu"); x (N, C, H, W), w (K, C/groups, R, S),
    b (K,) or None."""
    if activation is not None and activation not in ACTIVATIONS:
        raise ValueError(f"conv2d activation must be None or one of {ACTIVATIONS}, got {activation!r}")
    g = conv2d_geometry(x.shape, w.shape, stride, padding, dilation, groups)
    _check_float("input", x)
    _check_float("weight", w)
    arrays = [("input", x), ("weight", w)]
    if b is not None:
        _check_float("bias", b)
        _check_shape("bias", b, (g.K,))
        arrays.append(("bias", b))
    _check_same_dtype(arrays)
    forward = registry.get("conv2d_forward", registry.array_device(x))
    if activation is None:
        return forward(x, w, b, g)
    if activation in getattr(forward, "activations", ()):
        return forward(x, w, b, g, activation=activation)
    # this variant has no epilogue: clamp its fresh output in place (NaN stays NaN, as in torch.relu)
    y = forward(x, w, b, g)
    array_module(y).maximum(y, 0, out=y)
    return y


def conv2d_backward_input(dy, w, x_shape, stride=1, padding=0, dilation=1, groups=1):
    """dL/dx from dL/dy (N, K, P, Q) and the weight."""
    g = conv2d_geometry(x_shape, w.shape, stride, padding, dilation, groups)
    _check_float("grad_output", dy)
    _check_shape("grad_output", dy, g.y_shape)
    _check_same_dtype([("grad_output", dy), ("weight", w)])
    return registry.get("conv2d_backward_input", registry.array_device(dy))(dy, w, g)


def conv2d_backward_weight(dy, x, w_shape, stride=1, padding=0, dilation=1, groups=1):
    """dL/dw from dL/dy (N, K, P, Q) and the input."""
    g = conv2d_geometry(x.shape, w_shape, stride, padding, dilation, groups)
    _check_float("grad_output", dy)
    _check_shape("grad_output", dy, g.y_shape)
    _check_same_dtype([("grad_output", dy), ("input", x)])
    return registry.get("conv2d_backward_weight", registry.array_device(dy))(dy, x, g)


def conv2d_backward_bias(dy):
    """dL/db: the sum of dL/dy over batch and positions, shape (K,)."""
    if dy.ndim != 4:
        raise ValueError(f"conv2d grad_output must be 4-D (N, K, P, Q), got shape {tuple(dy.shape)}")
    _check_float("grad_output", dy)
    return registry.get("conv2d_backward_bias", registry.array_device(dy))(dy)


from kernels.conv2d import numba_blocked  # noqa: E402,F401  (CPU default for forward and backward_input, first)
from kernels.conv2d import numpy as _numpy  # noqa: E402,F401  (registers the CPU variants)
from kernels.conv2d import winograd  # noqa: E402,F401  (CPU Winograd F(2x2, 3x3), the default on deep 3x3 layers)
from kernels.conv2d import numba_direct  # noqa: E402,F401  (CPU direct variant, not a default)
from kernels.conv2d import cupy_cuda, numba_cuda  # noqa: E402,F401  (GPU variants, CuPy defaults first)
