"""softmax_xent: every CPU variant against the float64 reference on random shapes, ignored rows, logits of
magnitude 1e4, and the argument checks of the entry points."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import kernels.softmax_xent as xent
from kernels import registry
from kernels.softmax_xent import reference

SETTINGS = settings(max_examples=40, deadline=None)
DTYPES = [np.float32, np.float64]
seeds = st.integers(0, 2**32 - 1)


def cpu_variants(op):
    return [pytest.param(v, id=v.key) for v in registry.variants(op) if v.device == "cpu" and v.available]


def assert_close(out, ref, dtype, *inputs):
    rtol, atol = (1e-4, 1e-6) if dtype == np.float32 else (1e-10, 1e-12)
    assert out.shape == ref.shape and out.dtype == dtype
    assert not any(np.shares_memory(out, array) for array in inputs)
    err, bound = np.abs(out.astype(np.float64) - ref), atol + rtol * np.abs(ref)
    assert np.all(err <= bound), f"max excess {np.max(err - bound)} over {err.size} elements"


def draw_case(seed, N, C, dtype, ignore_index, offset=0.0):
    """Normal logits (plus ``offset``: 1e4 or -1e4 would overflow exp unshifted), targets in [0, C) with
    about a quarter of the rows ignored, and a random gradient per sample."""
    rng = np.random.default_rng(seed)
    logits = (offset + 3 * rng.standard_normal((N, C))).astype(dtype)
    targets = rng.integers(0, C, N)
    targets[rng.random(N) < 0.25] = ignore_index
    return logits, targets, rng.standard_normal(N).astype(dtype)


@pytest.mark.parametrize("forward", cpu_variants("softmax_xent_forward"))
@pytest.mark.parametrize("backward", cpu_variants("softmax_xent_backward"))
@pytest.mark.parametrize("dtype", DTYPES)
@SETTINGS
@given(N=st.integers(1, 9), C=st.integers(1, 40), seed=seeds, ignore_index=st.sampled_from([-100, 0, 2]),
       offset=st.sampled_from([0.0, 0.0, 1e4, -1e4]))
def test_matches_reference(forward, backward, dtype, N, C, seed, ignore_index, offset):
    logits, targets, grad = draw_case(seed, N, C, dtype, ignore_index, offset)
    with registry.use(softmax_xent_forward=forward.key, softmax_xent_backward=backward.key):
        losses, probs = xent.softmax_xent_forward(logits, targets, ignore_index)
        dlogits = xent.softmax_xent_backward(probs, targets, grad, ignore_index)
    ref_losses, ref_probs = reference.softmax_xent_forward(logits, targets, ignore_index)
    assert_close(losses, ref_losses, dtype, logits)
    assert_close(probs, ref_probs, dtype, logits)
    assert np.all(losses[targets == ignore_index] == 0)
    assert_close(dlogits, reference.softmax_xent_backward(probs, targets, grad, ignore_index), dtype, probs, grad)
    assert np.all(dlogits[targets == ignore_index] == 0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_empty_batch(dtype):
    losses, probs = xent.softmax_xent_forward(np.zeros((0, 4), dtype), np.zeros(0, np.int64))
    assert losses.shape == (0,) and probs.shape == (0, 4)
    assert xent.softmax_xent_backward(probs, np.zeros(0, np.int64), np.zeros(0, dtype)).shape == (0, 4)


def test_argument_checks():
    logits = np.random.default_rng(0).standard_normal((3, 4))
    targets = np.array([0, 3, -100])
    with pytest.raises(IndexError, match="target value 4 is out of range for 4 classes"):
        xent.softmax_xent_forward(logits, np.array([0, 4, 1]))
    with pytest.raises(IndexError, match="target value -1"):
        xent.softmax_xent_forward(logits, np.array([0, -1, 1]))
    with pytest.raises(TypeError, match="class indices"):
        xent.softmax_xent_forward(logits, targets.astype(np.float64))
    with pytest.raises(TypeError, match="floating-point"):
        xent.softmax_xent_forward(logits.astype(np.int64), targets)
    with pytest.raises(ValueError, match=r"shape \(N, C\)"):
        xent.softmax_xent_forward(logits[None], targets)
    with pytest.raises(ValueError, match=r"shape \(3,\)"):
        xent.softmax_xent_forward(logits, targets[:2])
    with pytest.raises(TypeError, match="ignore_index"):
        xent.softmax_xent_forward(logits, targets, ignore_index=1.5)
    _, probs = xent.softmax_xent_forward(logits, targets)
    with pytest.raises(ValueError, match="grad_losses"):
        xent.softmax_xent_backward(probs, targets, np.ones(2))


@pytest.mark.parametrize("variant", ["numba.v1_row_loops", "numba.v2_vector_exp"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("threads", [False, True], ids=["serial", "threads"])
@pytest.mark.parametrize("nan_at", [7, 995])
def test_row_loops_on_wide_rows(variant, dtype, threads, nan_at, monkeypatch):
    """The Numba row loops on 1000 classes (rows over threads, or serial) against the reference; a NaN
    logit, in a whole vector or in the last columns, makes its row's loss and softmax NaN, as in PyTorch."""
    from kernels.softmax_xent import numba_cpu

    monkeypatch.setattr(numba_cpu, "PARALLEL_MIN_SIZE", 1 if threads else 1 << 40)
    logits, targets, grad = draw_case(5, 37, 1000, dtype, -100, 1e4)
    logits[3, nan_at] = np.nan
    with registry.use(softmax_xent_forward=variant, softmax_xent_backward=variant):
        losses, probs = xent.softmax_xent_forward(logits, targets)
        dlogits = xent.softmax_xent_backward(probs, targets, grad)
    with np.errstate(invalid="ignore"):
        ref_losses, ref_probs = reference.softmax_xent_forward(logits, targets, -100)
        ref_grad = reference.softmax_xent_backward(probs, targets, grad, -100)
    nan_row = np.zeros(len(targets), bool)
    nan_row[3] = True
    assert np.isnan(probs[3]).all() and (np.isnan(losses[3]) or targets[3] == -100)
    assert_close(losses[~nan_row], ref_losses[~nan_row], dtype, logits)
    assert_close(probs[~nan_row], ref_probs[~nan_row], dtype, logits)
    assert_close(dlogits[~nan_row], ref_grad[~nan_row], dtype, probs, grad)
