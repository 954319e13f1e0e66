"""numba.v2_direct_blocked backward_weight: the blocked kernel (``backward_weight_blocked``) on the random
geometries of test_conv2d.py (stride, padding, dilation, groups, batch 0..3), on channel counts that fill 1,
2 and 4 vectors, over threads; and the registered variant's routing between it and v0. Outputs are
poisoned (NaN-filled ``np.empty``).

Tolerances as in test_conv2d.py (atol grows with the square root of the N*P*Q products summed): each thread
sums its images' products in order, one FMA each, and the threads' partial sums are then added.
"""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_conv2d import DTYPES, assert_close, cases, normal
from test_conv2d_relu import SETTINGS, poisoned_empty  # noqa: F401  (fixture)

from kernels import conv2d, registry
from kernels.conv2d import numba_blocked, reference


def check_backward_weight(case, dtype, seed):
    x_shape, w_shape, args = case
    g = conv2d.conv2d_geometry(x_shape, w_shape, *args)
    rng = np.random.default_rng(seed)
    x, dy = normal(rng, x_shape, dtype), normal(rng, g.y_shape, dtype)
    out = numba_blocked.backward_weight_blocked(dy, x, g)
    ref = reference.conv2d_backward_weight(dy, x, w_shape, *args)
    assert_close(out, ref, dtype, g.N * g.P * g.Q, dy, x)


@pytest.mark.parametrize("dtype", DTYPES)
@SETTINGS
@given(case=cases(), seed=st.integers(0, 2**16))
def test_backward_weight_matches_reference(dtype, case, seed, poisoned_empty):
    check_backward_weight(case, dtype, seed)


WIDE = [
    ((3, 5, 9, 7), (20, 5, 3, 3), ((1, 1), (1, 1), (1, 1), 1)),  # 2 vectors of float32, 3 of float64
    ((2, 6, 8, 9), (80, 3, 2, 3), ((2, 1), (1, 0), (1, 2), 2)),  # 40 per group: 4 vectors, 2 blocks
    ((1, 4, 6, 5), (16, 4, 1, 1), ((1, 1), (0, 0), (1, 1), 1)),  # 1x1: 4 taps, one short tap block
    ((2, 3, 8, 8), (32, 3, 3, 3), ((1, 1), (1, 1), (1, 1), 1)),  # dy transposed in whole vector tiles only
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", WIDE, ids=["20ch", "80ch_grouped", "16ch_1x1", "32ch_whole_tiles"])
def test_wide_channel_blocks(case, dtype, poisoned_empty):
    check_backward_weight(case, dtype, 21)


def test_images_split_over_threads(monkeypatch, poisoned_empty):
    """Every image of an odd batch, whichever thread sums it; positions in chunks shorter than a row."""
    monkeypatch.setattr(numba_blocked, "PARALLEL_MIN_FLOPS", 0)
    monkeypatch.setattr(numba_blocked, "CHUNK_BYTES", 3 * 64)
    check_backward_weight(((5, 3, 7, 6), (4, 3, 3, 2), ((1, 1), (1, 0), (1, 1), 1)), np.float32, 22)


@pytest.mark.parametrize(
    "x_shape, w_shape, stride, groups, blocked",
    [
        ((2, 6, 10, 10), (16, 6, 5, 5), 1, 1, True),
        ((3, 16, 9, 9), (32, 16, 3, 3), 2, 1, True),
        ((2, 16, 9, 9), (8, 16, 1, 1), 1, 1, True),
        ((2, 4, 9, 9), (4, 1, 3, 3), 1, 4, False),  # depthwise: 1 of 16 lanes busy
        ((2, 3, 9, 9), (5, 3, 3, 3), 1, 1, False),
        # deep layers (padding 1, stride 2: at stride 1 Winograd takes them, test_conv2d_winograd.py): v0's
        # GEMM, a reduction of 4608, or of 2304 over at most 16 positions
        ((1, 512, 6, 6), (8, 512, 3, 3), 2, 1, False),
        ((1, 256, 7, 7), (8, 256, 3, 3), 2, 1, False),
        ((1, 256, 9, 9), (8, 256, 3, 3), 2, 1, True),
    ],
)
def test_default_routes_between_blocked_and_im2col(x_shape, w_shape, stride, groups, blocked, monkeypatch):
    """The registered variant (the CPU default) runs the blocked kernel where it measured faster, v0
    elsewhere; either way the result is the reference's."""
    calls = []
    original = numba_blocked.backward_weight_blocked
    monkeypatch.setattr(numba_blocked, "backward_weight_blocked", lambda *a: calls.append(1) or original(*a))
    assert registry.selected("conv2d_backward_weight")[0].key == "numba.v2_direct_blocked"
    rng = np.random.default_rng(23)
    args = (stride, 1, 1, groups)
    g = conv2d.conv2d_geometry(x_shape, w_shape, *args)
    x, dy = normal(rng, x_shape, np.float32), normal(rng, g.y_shape, np.float32)
    out = conv2d.conv2d_backward_weight(dy, x, w_shape, *args)
    assert bool(calls) == blocked
    assert_close(out, reference.conv2d_backward_weight(dy, x, w_shape, *args), np.float32, g.N * g.P * g.Q, dy, x)
