"""softmax_xent CUDA variants against an oracle, in two tiers.

- ``cudasim`` (``NUMBA_ENABLE_CUDASIM=1 pytest -m cudasim``): a few rows with ignored targets and logits
  offset by 1e4, against the float64 reference; blocks of 4 threads over 13 classes exercise the strided
  row loops and every level of the trees, then the default block once.
- ``gpu``: LeNet/ResNet (10 classes) and ImageNet (1000 classes) losses at batch 128 against the CPU
  variant run in float64.

Outputs are poisoned with NaN through a patched ``empty`` in the variant's module. Tolerances as in
test_softmax_xent.py: rtol 1e-4, atol 1e-6 for float32.
"""


import numpy as np
import pytest

import kernels.softmax_xent as xent
from kernels import registry
from kernels.device_arrays import to_device, to_host
from kernels.softmax_xent import reference


def cuda_pairs():
    backward = {(v.backend, v.name): v for v in registry.variants("softmax_xent_backward") if v.device == "cuda"}
    return [pytest.param((f, backward[(f.backend, f.name)]), id=f.key)
            for f in registry.variants("softmax_xent_forward") if f.device == "cuda"]


def assert_close(out, ref):
    out = to_host(out).astype(np.float64)
    assert out.shape == ref.shape
    err, bound = np.abs(out - ref), 1e-6 + 1e-4 * np.abs(ref)
    assert np.all(err <= bound), f"max excess {np.max(err - bound)} over {err.size} elements"


def check(variants, N, C, offset, oracle_forward, oracle_backward, config, seed=0):
    rng = np.random.default_rng(seed)
    logits = (offset + 3 * rng.standard_normal((N, C))).astype(np.float32)
    targets = rng.integers(0, C, N)
    targets[::3] = -100
    grad = rng.standard_normal(N).astype(np.float32)
    forward, backward = variants
    losses, probs = forward.fn(to_device(logits), to_device(targets), -100, **config)
    ref_losses, ref_probs = oracle_forward(logits, targets, -100)
    assert_close(losses, ref_losses)
    assert_close(probs, ref_probs)
    dlogits = backward.fn(probs, to_device(targets), to_device(grad), -100, **config)
    assert_close(dlogits, oracle_backward(to_host(probs), targets, grad, -100))


@pytest.mark.cudasim
@pytest.mark.parametrize("variants", cuda_pairs())
@pytest.mark.parametrize("N,C,offset", [(4, 13, 0.0), (2, 3, 1e4), (1, 5, -1e4)])
def test_tiny(variants, N, C, offset, poisoned):
    poisoned(*variants)
    config = dict(threads=4) if variants[0].backend == "numba_cuda" else {}
    check(variants, N, C, offset, reference.softmax_xent_forward, reference.softmax_xent_backward, config)


@pytest.mark.cudasim
@pytest.mark.parametrize("variants", cuda_pairs())
def test_default_block_and_entry_points(variants, poisoned):
    poisoned(*variants)
    check(variants, 2, 5, 0.0, reference.softmax_xent_forward, reference.softmax_xent_backward, {})
    with registry.use(softmax_xent_forward=variants[0].key):
        losses, _ = xent.softmax_xent_forward(to_device(np.zeros((2, 3), np.float32)), to_device(np.array([0, 2])))
    assert registry.array_device(losses) == "cuda"
    np.testing.assert_allclose(to_host(losses), np.log(3), rtol=1e-6)


def _cpu_float64(op):
    fn = registry.get(op, "cpu")

    def oracle(*args):
        result = fn(*(a.astype(np.float64) if isinstance(a, np.ndarray) and a.dtype.kind == "f" else a for a in args))
        return result

    return oracle


@pytest.mark.gpu
@pytest.mark.parametrize("variants", cuda_pairs())
@pytest.mark.parametrize("N,C", [(128, 10), (128, 1000), (1, 1000)])
def test_real_shapes_on_gpu(variants, N, C, poisoned):
    poisoned(*variants)
    check(variants, N, C, 0.0, _cpu_float64("softmax_xent_forward"), _cpu_float64("softmax_xent_backward"), {})
