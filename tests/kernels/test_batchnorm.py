"""batchnorm: every CPU variant against the float64 reference on random 2-D, 3-D and 4-D inputs, with and
without weight and bias, and the argument checks of the entry points.

Tolerance for y and dx in float32: rtol 1e-4 with atol 1e-5 times the largest term they sum (x_hat*w and b
for y; w*inv_std*dy for dx = w*inv_std/M * (M*dy - sum(dy) - x_hat*sum(dy*x_hat))). Where the terms
cancel, the float32 error is relative to their size, not to the small result (with M = 2, dx is exactly 0).
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import kernels.batchnorm as bn
from kernels import registry
from kernels.batchnorm import reference

SETTINGS = settings(max_examples=40, deadline=None)
DTYPES = [np.float32, np.float64]
seeds = st.integers(0, 2**32 - 1)


def cpu_variants(op):
    return [pytest.param(v, id=v.key) for v in registry.variants(op) if v.device == "cpu" and v.available]


def assert_close(out, ref, dtype, *inputs, atol=None):
    rtol, default_atol = (1e-4, 1e-6) if dtype == np.float32 else (1e-10, 1e-12)
    atol = default_atol if atol is None else atol
    assert out.shape == ref.shape and out.dtype == dtype
    assert not any(np.shares_memory(out, array) for array in inputs)
    err, bound = np.abs(out.astype(np.float64) - ref), atol + rtol * np.abs(ref)
    assert np.all(err <= bound), f"max excess {np.max(err - bound)} over {err.size} elements"


@st.composite
def shapes(draw):
    """(N, C), (N, C, L) or (N, C, H, W) with at least two values per channel."""
    N, C = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    spatial = draw(st.sampled_from([(), (draw(st.integers(1, 6)),),
                                    (draw(st.integers(1, 4)), draw(st.integers(1, 5)))]))
    if N * int(np.prod(spatial)) < 2:
        N = 2
    return (N, C, *spatial)


def elementwise_atol(terms, dtype):
    return 1e-5 * max(np.abs(t).max() for t in terms) if dtype == np.float32 else None


def channel(vector, missing):
    return missing if vector is None else vector.astype(np.float64)[:, None]


def ncl(array):
    return array.reshape(array.shape[0], array.shape[1], -1)


@pytest.mark.parametrize("forward", cpu_variants("batchnorm_forward_train"))
@pytest.mark.parametrize("backward", cpu_variants("batchnorm_backward"))
@pytest.mark.parametrize("dtype", DTYPES)
@SETTINGS
@given(shape=shapes(), seed=seeds, affine=st.sampled_from(["both", "none", "weight", "bias"]),
       offset=st.sampled_from([0.0, 20.0]), eps=st.sampled_from([1e-5, 0.1]))
def test_matches_reference(forward, backward, dtype, shape, seed, affine, offset, eps):
    rng = np.random.default_rng(seed)
    x = (offset + 2 * rng.standard_normal(shape)).astype(dtype)  # offset mean: E[x^2] - mean^2 would cancel
    dy = rng.standard_normal(shape).astype(dtype)
    weight = rng.standard_normal(shape[1]).astype(dtype) if affine in ("both", "weight") else None
    bias = rng.standard_normal(shape[1]).astype(dtype) if affine in ("both", "bias") else None
    with registry.use(batchnorm_forward_train=forward.key, batchnorm_backward=backward.key):
        y, mean, var, inv_std = bn.batchnorm_forward_train(x, weight, bias, eps)
        dx, dweight, dbias = bn.batchnorm_backward(dy, x, weight, mean, inv_std)
    ref_y, *ref_stats = reference.batchnorm_forward_train(ncl(x), weight, bias, eps)
    assert y.shape == shape
    assert_close(ncl(y), ref_y, dtype, x, atol=elementwise_atol(
        [ref_y, (ncl(x) - ref_stats[0][:, None]) * ref_stats[2][:, None] * channel(weight, 1), channel(bias, 0)], dtype))
    for out, expected in zip((mean, var, inv_std), ref_stats):
        assert_close(out, expected, dtype, x)
    # the backward oracle starts from the variant's own statistics: it checks the backward pass alone
    ref_dx, ref_dweight, ref_dbias = reference.batchnorm_backward(ncl(dy), ncl(x), weight, mean, inv_std)
    assert dx.shape == shape
    assert_close(ncl(dx), ref_dx, dtype, x, dy, atol=elementwise_atol(
        [ref_dx, ncl(dy) * inv_std[:, None] * channel(weight, 1)], dtype))
    assert_close(dweight, ref_dweight, dtype, x, dy)
    assert_close(dbias, ref_dbias, dtype, x, dy)


def test_non_contiguous_input_and_mixed_dtypes():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 5, 4, 2)).transpose(0, 1, 3, 2)
    weight, bias = rng.standard_normal(5).astype(np.float32), rng.standard_normal(5).astype(np.float32)
    y, mean, var, inv_std = bn.batchnorm_forward_train(x, weight, bias)
    ref = reference.batchnorm_forward_train(ncl(np.ascontiguousarray(x)), weight, bias, 1e-5)
    assert y.dtype == np.float64
    assert_close(ncl(y), ref[0], np.float64, x)


def test_argument_checks():
    x = np.random.default_rng(0).standard_normal((2, 3, 4))
    with pytest.raises(ValueError, match=r"\(N, C, \.\.\.\)"):
        bn.batchnorm_forward_train(x[0, 0])
    with pytest.raises(ValueError, match="at least one value per channel"):
        bn.batchnorm_forward_train(x[:0])
    with pytest.raises(TypeError, match="floating-point"):
        bn.batchnorm_forward_train(x.astype(np.int64))
    with pytest.raises(ValueError, match=r"weight must have shape \(3,\)"):
        bn.batchnorm_forward_train(x, np.ones(4))
    with pytest.raises(ValueError, match="eps"):
        bn.batchnorm_forward_train(x, eps=-1.0)
    _, mean, _, inv_std = bn.batchnorm_forward_train(x)
    with pytest.raises(ValueError, match="grad_output"):
        bn.batchnorm_backward(x[:1], x, None, mean, inv_std)
    with pytest.raises(ValueError, match=r"inv_std must have shape"):
        bn.batchnorm_backward(x, x, None, mean, inv_std[:2])
