"""numba.v2_direct_blocked: the blocked kernels themselves (``forward_blocked``, ``backward_input_blocked``,
``backward_input_lanes``) on the random geometries of test_conv2d.py, on channel counts that fill 1, 2 and 4
vectors (and several vectors of dy's channels), over threads; and the registered variant's routing between
them and v0. Outputs are poisoned (NaN-filled ``np.empty``).

Tolerances as in test_conv2d.py: the kernel sums in tap order with one FMA per product, so float32 stays
within rtol 1e-4 of the float64 reference. The random geometries have at most 5 output channels per group,
so they compile one kernel per dtype (about 0.5-1 s each); the wide-channel cases compile three more.
"""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_conv2d import DTYPES, assert_close, cases, normal
from test_conv2d_relu import SETTINGS, poisoned_empty  # noqa: F401  (fixture)

import kernels
from kernels import conv2d, registry
from kernels.conv2d import numba_blocked, reference


def arrays(case, dtype, seed):
    x_shape, w_shape, args = case
    g = conv2d.conv2d_geometry(x_shape, w_shape, *args)
    rng = np.random.default_rng(seed)
    return g, *(normal(rng, shape, dtype) for shape in (x_shape, w_shape, (g.K,), g.y_shape))


def check_forward(case, dtype, seed, relu):
    g, x, w, b, _ = arrays(case, dtype, seed)
    out = numba_blocked.forward_blocked(x, w, b, g, "relu" if relu else None)
    ref = reference.conv2d_forward(x, w, b, *case[2])
    assert_close(out, np.maximum(ref, 0) if relu else ref, dtype, g.C // g.groups * g.R * g.S, x, w, b)


BACKWARD_INPUT = ["backward_input_blocked", "backward_input_lanes"]


def check_backward_input(case, dtype, seed, kernel="backward_input_blocked"):
    g, _, w, _, dy = arrays(case, dtype, seed)
    out = getattr(numba_blocked, kernel)(dy, w, g)
    ref = reference.conv2d_backward_input(dy, w, case[0], *case[2])
    assert_close(out, ref, dtype, g.K // g.groups * g.R * g.S, dy, w)


def stride_one(case):
    x_shape, w_shape, (_, padding, dilation, groups) = case
    return x_shape, w_shape, ((1, 1), padding, dilation, groups)


@pytest.mark.parametrize("dtype", DTYPES)
@SETTINGS
@given(case=cases(), seed=st.integers(0, 2**16), relu=st.booleans())
def test_forward_matches_reference(dtype, case, seed, relu, poisoned_empty):
    check_forward(case, dtype, seed, relu)


@pytest.mark.parametrize("kernel", BACKWARD_INPUT)
@pytest.mark.parametrize("dtype", DTYPES)
@SETTINGS
@given(case=cases().map(stride_one), seed=st.integers(0, 2**16))
def test_backward_input_matches_reference(kernel, dtype, case, seed, poisoned_empty):
    """Dilation, padding larger than the filter reach (the flipped conv then crops dy), groups, batch 0."""
    check_backward_input(case, dtype, seed, kernel)


WIDE = [
    ((3, 5, 9, 7), (20, 5, 3, 3), ((1, 1), (1, 1), (1, 1), 1)),  # 2 vectors of float32, 3 of float64
    ((2, 6, 8, 9), (80, 3, 2, 3), ((2, 1), (1, 0), (1, 2), 2)),  # 40 per group: 4 vectors, 2 blocks
    ((2, 14, 7, 8), (36, 7, 3, 2), ((1, 1), (2, 1), (2, 1), 2)),  # lanes: 18 dy channels, 2 blocks of 4 of 7
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", WIDE, ids=["20ch", "80ch_grouped", "36ch_grouped"])
def test_wide_channel_blocks(case, dtype, poisoned_empty):
    check_forward(case, dtype, 11, relu=True)
    if case[2][0] == (1, 1):
        for kernel in BACKWARD_INPUT:
            check_backward_input(case, dtype, 12, kernel)


def test_images_split_over_threads(monkeypatch, poisoned_empty):
    """Every image of an odd batch, whichever thread runs it."""
    monkeypatch.setattr(numba_blocked, "PARALLEL_MIN_FLOPS", 0)
    case = ((5, 3, 7, 6), (4, 3, 3, 2), ((1, 1), (1, 0), (1, 1), 1))
    check_forward(case, np.float32, 13, relu=False)
    for kernel in BACKWARD_INPUT:
        check_backward_input(case, np.float32, 14, kernel)


@pytest.mark.parametrize("kernel", BACKWARD_INPUT)
def test_backward_input_needs_stride_one(kernel):
    g = conv2d.conv2d_geometry((1, 2, 7, 7), (3, 2, 3, 3), 2)
    with pytest.raises(ValueError, match=r"needs stride \(1, 1\), got \(2, 2\)"):
        getattr(numba_blocked, kernel)(np.ones(g.y_shape), np.ones(g.w_shape), g)


@pytest.mark.parametrize(
    "op, x_shape, w_shape, stride, groups, blocked",
    [
        ("conv2d_forward", (2, 6, 10, 10), (16, 6, 5, 5), 1, 1, "forward_blocked"),
        ("conv2d_forward", (2, 4, 9, 9), (4, 1, 3, 3), 1, 4, None),  # depthwise: 1 of 16 lanes busy
        ("conv2d_backward_input", (2, 16, 9, 9), (8, 16, 3, 3), 1, 1, "backward_input_blocked"),
        ("conv2d_backward_input", (2, 6, 9, 9), (8, 6, 3, 3), 1, 1, "backward_input_blocked"),
        ("conv2d_backward_input", (2, 16, 9, 9), (8, 16, 3, 3), 2, 1, None),
        ("conv2d_backward_input", (2, 6, 10, 10), (16, 6, 5, 5), 1, 1, "backward_input_lanes"),  # LeNet C3
        ("conv2d_backward_input", (2, 8, 9, 9), (32, 4, 3, 3), 1, 2, "backward_input_lanes"),
        ("conv2d_backward_input", (2, 4, 9, 9), (8, 4, 3, 3), 1, 1, None),  # few channels on both sides
        ("conv2d_backward_input", (2, 16, 9, 9), (8, 16, 1, 1), 1, 1, None),
        # deep layers leave the blocked kernel (for v0's BLAS GEMM, or Winograd's: test_conv2d_winograd.py):
        # a reduction of 2304, or of 1152 over at most 64 positions
        ("conv2d_forward", (1, 256, 4, 4), (8, 256, 3, 3), 1, 1, None),
        ("conv2d_forward", (1, 128, 10, 10), (8, 128, 3, 3), 1, 1, None),
        ("conv2d_forward", (1, 128, 12, 12), (8, 128, 3, 3), 1, 1, "forward_blocked"),
        ("conv2d_backward_input", (1, 8, 6, 6), (256, 8, 3, 3), 1, 1, None),
        ("conv2d_backward_input", (1, 8, 12, 12), (128, 8, 3, 3), 1, 1, "backward_input_lanes"),
    ],
)
def test_default_routes_between_blocked_and_im2col(op, x_shape, w_shape, stride, groups, blocked, monkeypatch):
    """The registered variant (the CPU default) runs the blocked kernel where it measured faster, v0
    elsewhere; either way the result is the reference's."""
    calls = []
    for name in ("forward_blocked", "backward_input_blocked", "backward_input_lanes"):
        original = getattr(numba_blocked, name)
        counted = lambda *a, name=name, original=original, **k: calls.append(name) or original(*a, **k)  # noqa: E731
        monkeypatch.setattr(numba_blocked, name, counted)
    assert registry.selected(op)[0].key == "numba.v2_direct_blocked"
    rng = np.random.default_rng(15)
    x, w = normal(rng, x_shape, np.float32), normal(rng, w_shape, np.float32)
    args = (stride, 0, 1, groups)
    if op == "conv2d_forward":
        out, ref = conv2d.conv2d_forward(x, w, None, *args), reference.conv2d_forward(x, w, None, *args)
        reduction = w[0].size
    else:
        dy = normal(rng, conv2d.conv2d_geometry(x_shape, w_shape, *args).y_shape, np.float32)
        out = conv2d.conv2d_backward_input(dy, w, x_shape, *args)
        ref, reduction = reference.conv2d_backward_input(dy, w, x_shape, *args), w[:, 0].size
    assert calls == ([blocked] if blocked else [])
    assert_close(out, ref, np.float32, reduction, x, w)


def test_im2col_stays_selectable():
    with kernels.use(conv2d_forward="numpy.v0_im2col"):
        assert registry.selected("conv2d_forward")[0].key == "numpy.v0_im2col"
