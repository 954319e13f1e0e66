"""The CUDA C kernels (the ``.cu`` files launched through CuPy) run on the CPU by ``kernels.host_cuda``.

The launchers in ``kernels/*/cupy_cuda.py`` run unchanged on NumPy arrays, with ``raw_module`` replaced by
the host build of the same source, so what is checked is the whole path a GPU takes: grids, argument order
and widths, the vector/scalar and split decisions, and the kernels' indexing, edges and barriers. Threads
run as fibers (a missing ``__syncthreads`` gives wrong results every time, see the emulator tests at the
end), every array sits between guard bands (a write past an end fails the launch, a read past it gives
NaN), and outputs start as NaN (an element never written fails the comparison).

Shapes are small but reach every path: partial tiles along every GEMM dimension, several tiles along
each, long reductions, split reductions, stride, padding, dilation, groups, depthwise and channel
multipliers, batch 1 with a 1x1 output, float32 and float64, float4 and scalar GEMM paths, misaligned
operands, broadcast batches. Tolerances: the oracle is float64; float32 results get rtol 1e-4 and atol
1e-5*sqrt(reduction), float64 results 1e-10 and 1e-12*sqrt(reduction). The TF32 GEMMs are checked against
the float64 product of their inputs rounded to TF32, with the float32 GEMMs' tolerance, so a fragment in
the wrong place cannot hide inside TF32's 1e-3 tolerance; that tolerance cannot see the rounding itself,
which a product with the identity checks exactly.
"""

import numpy as np
import pytest

from kernels import conv2d, device_arrays, host_cuda
from kernels.conv2d import cupy_cuda as conv_cuda
from kernels.conv2d import reference as conv_reference
from kernels.matmul import cupy_cuda as matmul_cuda

AVAILABLE, WHY = host_cuda.available()
pytestmark = pytest.mark.skipif(not AVAILABLE, reason=WHY)


@pytest.fixture
def on_host(monkeypatch):
    """The CUDA C launchers with their modules built for the host and their outputs starting as NaN."""
    for launcher in (conv_cuda, matmul_cuda):
        monkeypatch.setattr(launcher, "raw_module", host_cuda.module)
    empty = device_arrays.empty

    def nan_empty(shape, dtype, like):
        out = empty(shape, dtype, like)
        out[...] = np.nan
        return out

    monkeypatch.setattr(device_arrays, "empty", nan_empty)
    monkeypatch.setattr(conv_cuda, "empty", nan_empty)


def assert_close(out, ref, dtype, reduction):
    rtol, atol = (1e-4, 1e-5) if dtype == np.float32 else (1e-10, 1e-12)
    atol *= max(1, reduction) ** 0.5
    assert isinstance(out, np.ndarray) and out.shape == ref.shape and out.dtype == dtype
    err, bound = np.abs(out.astype(np.float64) - ref), atol + rtol * np.abs(ref)
    assert not np.isnan(out).any(), f"{np.isnan(out).sum()} of {out.size} elements NaN (unwritten, or read past an end)"
    assert np.all(err <= bound), f"max excess {np.max(err - bound)} at {np.unravel_index(np.argmax(err - bound), err.shape)}"


# ---------------------------------------------------------------------------------------------- conv2d

def case(*args, id):
    """(x_shape, w_shape, stride, padding, dilation, groups) as one test parameter."""
    return pytest.param(args, id=id)


CONV_CASES = [
    case((1, 2, 5, 5), (3, 2, 3, 3), 1, 1, 1, 1, id="3x3-pad1-batch1"),
    case((1, 3, 9, 9), (70, 3, 3, 3), 1, 1, 1, 1, id="two-tiles-along-K-and-NPQ"),
    case((2, 20, 6, 6), (8, 20, 3, 3), 1, 0, 1, 1, id="reduction-180-deep"),
    case((2, 3, 10, 10), (24, 3, 3, 3), 1, 1, 1, 1, id="24-channels-two-column-tiles"),
    case((1, 40, 5, 5), (8, 40, 3, 3), 1, 1, 1, 1, id="40-input-channels"),
    case((4, 4, 16, 16), (8, 4, 3, 3), 1, 1, 1, 1, id="weight-gradient-in-4-splits"),
    case((2, 4, 5, 6), (4, 2, 2, 3), 2, (1, 0), (2, 1), 2, id="groups2-stride2-dilation2-nonsquare"),
    case((2, 6, 9, 7), (9, 2, 3, 3), 2, 1, 1, 3, id="groups3-stride2"),
    case((2, 5, 7, 7), (6, 5, 1, 1), 2, 0, 1, 1, id="1x1-stride2"),
    case((1, 3, 3, 3), (4, 3, 3, 3), 1, 0, 1, 1, id="1x1-output"),
    case((1, 2, 7, 6), (4, 1, 3, 2), 1, 2, 2, 2, id="channel-multiplier-dilation2-pad2"),
    case((2, 3, 6, 5), (3, 1, 3, 3), 2, 1, 1, 3, id="depthwise-stride2"),
    case((2, 4, 15, 15), (4, 1, 3, 3), 1, 1, 1, 4, id="depthwise-450-positions"),
    case((1, 2, 8, 8), (2, 1, 3, 3), 3, 2, 2, 2, id="depthwise-stride3-dilation2"),
]


def conv_inputs(args, dtype):
    g = conv2d.conv2d_geometry(*args[:2], *args[2:])
    rng = np.random.default_rng(abs(hash(args)) % 2**32)
    return g, [rng.standard_normal(s).astype(dtype) for s in (g.x_shape, g.w_shape, (g.K,), g.y_shape)]


CONV_VARIANTS = [
    pytest.param((conv_cuda.forward_implicit_gemm, conv_cuda.backward_input_implicit_gemm,
                  conv_cuda.backward_weight_implicit_gemm), id="v4"),
    pytest.param((conv_cuda.forward_implicit_gemm_shaped, conv_cuda.backward_input_implicit_gemm_shaped,
                  conv_cuda.backward_weight_implicit_gemm_shaped), id="v5"),
    pytest.param((conv_cuda.forward_implicit_gemm_taps, conv_cuda.backward_input_implicit_gemm_taps,
                  conv_cuda.backward_weight_implicit_gemm_taps), id="v6"),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("args", CONV_CASES)
@pytest.mark.parametrize("passes", CONV_VARIANTS)
def test_conv2d_implicit_gemm_on_host(passes, args, dtype, on_host):
    forward, backward_input, backward_weight = passes
    g, (x, w, b, dy) = conv_inputs(args, dtype)
    geometry = args[2:]
    depth = (g.C // g.groups) * g.R * g.S
    expected = conv_reference.conv2d_forward(x, w, b, *geometry)
    assert_close(forward(x, w, b, g), expected, dtype, depth)
    assert_close(forward(x, w, b, g, activation="relu"), np.maximum(expected, 0), dtype, depth)
    assert_close(forward(x, w, None, g), conv_reference.conv2d_forward(x, w, None, *geometry), dtype, depth)
    assert_close(backward_input(dy, w, g), conv_reference.conv2d_backward_input(dy, w, g.x_shape, *geometry), dtype,
                 (g.K // g.groups) * g.R * g.S)
    assert_close(backward_weight(dy, x, g), conv_reference.conv2d_backward_weight(dy, x, g.w_shape, *geometry), dtype,
                 g.N * g.P * g.Q)


def test_every_tile_and_split_is_exercised():
    """The cases above reach each of v5's tiles in every pass, and split the weight gradient 4 ways."""
    assert conv_cuda.tile_for(16, shaped=True) == (16, 256, "_m16")
    assert conv_cuda.tile_for(17, shaped=True) == conv_cuda.tile_for(32, shaped=True) == (32, 128, "_m32")
    assert conv_cuda.tile_for(33, shaped=True) == conv_cuda.tile_for(16, shaped=False) == (64, 64, "")
    rows = {"forward": set(), "backward_input": set()}
    for param in CONV_CASES:
        g = conv2d.conv2d_geometry(*param.values[0])
        if not g.groups == g.C == g.K:
            rows["forward"].add(conv_cuda.tile_for(g.K // g.groups, shaped=True))
            rows["backward_input"].add(conv_cuda.tile_for(g.C // g.groups, shaped=True))
    assert all(len(tiles) == 3 for tiles in rows.values()), rows
    g = conv2d.conv2d_geometry((4, 4, 16, 16), (8, 4, 3, 3), 1, 1, 1, 1)
    assert conv_cuda.weight_splits(g) == (4, 256)
    assert conv_cuda.weight_splits(g, conv_cuda.tile_for(8, shaped=True)) == (4, 256)
    assert conv_cuda.weight_splits(conv2d.conv2d_geometry((1, 2, 5, 5), (3, 2, 3, 3), 1, 1, 1, 1))[0] == 1


def test_conv2d_relu_keeps_nan(on_host):
    g, (x, w, b, _) = conv_inputs(((1, 2, 5, 5), (3, 2, 3, 3), 1, 1, 1, 1), np.float32)
    x[0, 0, 2, 2] = np.nan
    out = conv_cuda.forward_implicit_gemm_taps(x, w, b, g, activation="relu")
    assert np.isnan(out[0, :, 1:4, 1:4]).all() and not np.isnan(out[0, :, 0, 0]).any()


def test_conv2d_strided_views_are_made_contiguous(on_host):
    g, (x, w, b, _) = conv_inputs(((1, 2, 5, 5), (3, 2, 3, 3), 1, 1, 1, 1), np.float64)
    wide = np.zeros((1, 2, 5, 10))
    wide[..., ::2] = x
    out = conv_cuda.forward_implicit_gemm_taps(wide[..., ::2], w, b, g)
    assert_close(out, conv_reference.conv2d_forward(x, w, b, 1, 1), np.float64, 18)


# ---------------------------------------------------------------------------------------------- matmul

MATMUL_SHAPES = [
    ((5, 11), (11, 7)),  # one partial block, scalar path (K, N not multiples of 4)
    ((130, 20), (20, 132)),  # two blocks along M and N, float4 path, K one full and one partial 16-step
    ((129, 17), (17, 131)),  # two blocks, scalar path
    ((36, 64), (64, 132)),  # 8 and 4 k-steps (v7, v8-v9): the pipelines refill their buffers, float4 path
    ((40, 70), (70, 36)),  # 9 and 5 k-steps, the last partial, scalar path
    ((3, 4, 8), (8, 12)),  # a batch sharing B (batch stride 0)
    ((2, 1, 5, 6), (3, 6, 7)),  # partial broadcast, materialised
    ((7,), (7, 5)),  # 1-D left operand
    ((4, 8), (8,)),  # 1-D right operand
    ((4, 0), (0, 3)),  # empty reduction: zeros
    ((0, 5), (5, 3)),  # empty output
]


def tf32(x):
    """float32 values rounded to TF32 as cvt.rna.tf32.f32 does: 10 mantissa bits, ties away from zero."""
    bits = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32)
    return ((bits + np.uint32(0x1000)) & np.uint32(0xFFFFE000)).view(np.float32)


def check_matmul(fn, a, b, round_inputs):
    out = fn(a, b)
    if round_inputs:
        a, b = tf32(a), tf32(b)
    expected = np.matmul(a.astype(np.float64), b.astype(np.float64))
    assert isinstance(out, np.ndarray) and out.shape == expected.shape and out.dtype == np.float32
    assert not np.isnan(out).any(), "elements left unwritten"
    scale = np.abs(a).astype(np.float64) @ np.abs(b).astype(np.float64)
    bad = np.abs(out - expected) > 1e-4 * (scale + 1) * max(1, a.shape[-1]) ** 0.5
    assert not bad.any(), f"{bad.sum()} of {bad.size} elements off, first at {np.argwhere(bad)[0]}"


MATMUL_VARIANTS = [
    pytest.param(matmul_cuda.matmul_cuda_blocktile, False, id="v7_cuda_blocktile"),
    pytest.param(matmul_cuda.matmul_tf32_mma, True, id="v8_tf32_mma"),
    pytest.param(matmul_cuda.matmul_tf32_cp_async, True, id="v9_tf32_cp_async"),
]


@pytest.mark.parametrize("fn, round_inputs", MATMUL_VARIANTS)
@pytest.mark.parametrize("shapes", MATMUL_SHAPES, ids=lambda s: f"{s[0]}@{s[1]}")
def test_sgemm_on_host(fn, round_inputs, shapes, on_host):
    rng = np.random.default_rng(len(shapes[0]) * 100 + sum(shapes[0]))
    a, b = (rng.standard_normal(s).astype(np.float32) for s in shapes)
    check_matmul(fn, a, b, round_inputs)
    if fn is matmul_cuda.matmul_tf32_cp_async:  # pipelined: right with copies landing late and early
        with host_cuda.early_copies():
            check_matmul(fn, a, b, round_inputs)


@pytest.mark.parametrize("fn, round_inputs", MATMUL_VARIANTS)
def test_sgemm_misaligned_operand_takes_the_scalar_path(fn, round_inputs, on_host, monkeypatch):
    rng = np.random.default_rng(3)
    buffer = rng.standard_normal(1 + 36 * 24).astype(np.float32)
    a = buffer[1:].reshape(36, 24)  # K and N multiples of 4, but A's base is 4 bytes past a 16-byte boundary
    assert a.ctypes.data % 16 == 4
    b = rng.standard_normal((24, 20)).astype(np.float32)
    picked = []
    module = host_cuda.module

    def recording(path, options=()):
        built = module(path, options)

        class Recorder:
            def get_function(self, name):
                picked.append(name)
                return built.get_function(name)

        return Recorder()

    monkeypatch.setattr(matmul_cuda, "raw_module", recording)
    check_matmul(fn, a, b, round_inputs)
    assert picked[-1].endswith("_scalar")
    aligned = a.copy()
    assert aligned.ctypes.data % 16 == 0 and b.ctypes.data % 16 == 0
    check_matmul(fn, aligned, b, round_inputs)
    assert picked[-1].endswith("_vec4")


@pytest.mark.parametrize("fn, round_inputs", MATMUL_VARIANTS)
def test_sgemm_with_more_row_tiles_than_the_grid_takes(fn, round_inputs, on_host, monkeypatch):
    """Past gridDim.y's limit (65535 row tiles, patched to 1 here) the launcher splits the rows of each
    batch entry into runs, one launch each: a broadcast batch of 2 with 300 rows is 2 x 3 launches."""
    from kernels import cuda_tools

    monkeypatch.setattr(cuda_tools, "MAX_GRID_Z", 1)
    rng = np.random.default_rng(5)
    check_matmul(fn, rng.standard_normal((2, 300, 20)).astype(np.float32), rng.standard_normal((20, 36)).astype(np.float32),
                 round_inputs)
    check_matmul(fn, rng.standard_normal((300, 7)).astype(np.float32), rng.standard_normal((2, 7, 5)).astype(np.float32),
                 round_inputs)


@pytest.mark.parametrize("fn", [matmul_cuda.matmul_tf32_mma, matmul_cuda.matmul_tf32_cp_async],
                         ids=["v8_tf32_mma", "v9_tf32_cp_async"])
def test_tf32_variants_round_their_inputs(fn, on_host):
    """A @ I is exact in float32, so a TF32 variant must return A rounded as cvt.rna.tf32.f32 does: 10
    mantissa bits, ties away from zero. The tolerance of check_matmul is wider than TF32's rounding at these
    sizes, so this is the test that a kernel which skipped the conversion, truncated, or rounded ties to
    even would fail."""
    ties = [1 + 2**-11, -(1 + 2**-11), 1 + 3 * 2**-11, 1 + 2**-12]  # -> 1+2^-10, -(1+2^-10), 1+2^-9, 1
    a = np.random.default_rng(7).standard_normal((20, 12)).astype(np.float32)
    a[0, :4] = ties
    out = fn(a, np.eye(12, dtype=np.float32))
    expected = tf32(a)
    np.testing.assert_array_equal(expected[0, :4], np.float32([1 + 2**-10, -(1 + 2**-10), 1 + 2**-9, 1]))
    np.testing.assert_array_equal(out, expected)
    assert np.count_nonzero(out != a) > a.size // 2  # the rounding is visible


# ---------------------------------------------------------------------------------------------- the emulator

PROBES = r"""
extern "C" __global__ void reverse(const float* x, float* y, int n) {
    __shared__ float tile[256];
    const int i = threadIdx.x;
    tile[i] = i < n ? x[i] : 0.f;
    SYNC;
    if (i < n) y[i] = tile[n - 1 - i];
}

extern "C" __global__ void write_past(float* y, int n) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i <= n) y[i] = 1.f;
}

extern "C" __global__ void early_exit(float* y) {
    if (threadIdx.x == 0) return;
    __syncthreads();
    y[threadIdx.x] = 1.f;
}
"""


@pytest.fixture
def probes(tmp_path):
    source = tmp_path / "probes.cu"
    source.write_text(PROBES)
    return lambda *options: host_cuda.module(source, options)


def test_barrier_is_emulated(probes):
    x = np.arange(100, dtype=np.float32)
    y = np.zeros_like(x)
    probes("-DSYNC=__syncthreads()").get_function("reverse")((1,), (128,), (x, y, np.int32(100)))
    assert np.array_equal(y, x[::-1])
    # without the barrier, thread 0 reads the tile before the others have written it
    y[...] = 0
    probes("-DSYNC=(void)0").get_function("reverse")((1,), (128,), (x, y, np.int32(100)))
    assert not np.array_equal(y, x[::-1])


def test_write_out_of_bounds_is_reported(probes):
    kernel = probes("-DSYNC=__syncthreads()").get_function("write_past")
    y = np.zeros(64, np.float32)
    with pytest.raises(RuntimeError, match=r"argument 0 was written out of bounds, after the array \(element \+0"):
        kernel((1,), (128,), (y, np.int32(64)))


def test_barrier_not_reached_by_every_thread_is_reported(probes):
    kernel = probes("-DSYNC=__syncthreads()").get_function("early_exit")
    with pytest.raises(RuntimeError, match=r"block \(0, 0, 0\) of 32 threads: 31 wait at __syncthreads\(\).*1 returned"):
        kernel((1,), (32,), (np.zeros(32, np.float32),))


def test_arguments_are_checked_against_the_parameters(probes):
    module = probes("-DSYNC=__syncthreads()")
    kernel = module.get_function("reverse")
    assert kernel.parameters == ["p4", "p4", "i4"]
    x, y = np.zeros(8, np.float32), np.zeros(8, np.float32)
    with pytest.raises(TypeError, match=r"argument 2 \(i4\): expected a NumPy integer scalar of 4 bytes.*int64"):
        kernel((1,), (8,), (x, y, np.int64(8)))
    with pytest.raises(TypeError, match=r"argument 2 \(i4\).*got int 8"):
        kernel((1,), (8,), (x, y, 8))
    with pytest.raises(TypeError, match=r"argument 1 \(p4\): the kernel reads 4-byte elements, got a float64 array"):
        kernel((1,), (8,), (x, np.zeros(8), np.int32(8)))
    with pytest.raises(ValueError, match=r"argument 0 \(p4\): arrays passed to a kernel must be C-contiguous"):
        kernel((1,), (8,), (np.zeros(16, np.float32)[::2], y, np.int32(8)))
    with pytest.raises(TypeError, match=r"reverse takes 3 arguments \(p4,p4,i4\), got 2"):
        kernel((1,), (8,), (x, y))
    with pytest.raises(ValueError, match=r"block\[0\] = 2048: expected 1 to 1024"):
        kernel((1,), (2048,), (x, y, np.int32(8)))
    with pytest.raises(ValueError, match=r"grid\[1\] = 70000: expected 1 to 65535"):
        kernel((1, 70000), (8,), (x, y, np.int32(8)))
    with pytest.raises(ValueError, match=r"probes.cu has no kernel 'reversed'; its kernels: early_exit, reverse, write_past"):
        module.get_function("reversed")


def test_options_other_than_defines_are_refused(probes):
    with pytest.raises(ValueError, match=r"options: the host emulation takes -D and -I options only, got '--use_fast_math'"):
        probes("--use_fast_math")
