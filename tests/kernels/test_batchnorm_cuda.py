"""batchnorm CUDA variants against an oracle, in two tiers.

- ``cudasim`` (``NUMBA_ENABLE_CUDASIM=1 pytest -m cudasim``): tiny 2-D, 3-D and 4-D inputs with an offset
  mean, with and without weight and bias, against the float64 reference; reduction blocks of 4 threads
  over up to 18 values per channel exercise the strided loops and every tree level, then the default
  block sizes once.
- ``gpu``: ResNet-20 and ResNet-style shapes at batch 128 against the CPU variant run in float64.

Outputs are poisoned with NaN through a patched ``empty`` in the variant's module. Tolerances as in
test_batchnorm.py: rtol 1e-4, atol 1e-6 for the statistics; y and dx have atol 1e-5 times the largest
term they sum.
"""


import numpy as np
import pytest

import kernels.batchnorm as bn
from kernels import registry
from kernels.batchnorm import reference
from kernels.device_arrays import to_device, to_host


def cuda_pairs():
    backward = {(v.backend, v.name): v for v in registry.variants("batchnorm_backward") if v.device == "cuda"}
    return [pytest.param((f, backward[(f.backend, f.name)]), id=f.key)
            for f in registry.variants("batchnorm_forward_train") if f.device == "cuda"]


def assert_close(out, ref, atol=1e-6):
    out = to_host(out).astype(np.float64)
    assert out.shape == ref.shape
    err, bound = np.abs(out - ref), atol + 1e-4 * np.abs(ref)
    assert np.all(err <= bound), f"max excess {np.max(err - bound)} over {err.size} elements"


def check(variants, shape, affine, oracle_forward, oracle_backward, config, seed=0):
    rng = np.random.default_rng(seed)
    x = (5 + 2 * rng.standard_normal(shape)).astype(np.float32).reshape(shape[0], shape[1], -1)
    dy = rng.standard_normal(x.shape).astype(np.float32)
    weight = rng.standard_normal(shape[1]).astype(np.float32) if affine else None
    bias = rng.standard_normal(shape[1]).astype(np.float32) if affine else None
    device = [None if a is None else to_device(a) for a in (x, dy, weight, bias)]
    forward, backward = variants
    y, mean, var, inv_std = forward.fn(device[0], device[2], device[3], 1e-5, **config)
    ref_y, *ref_stats = oracle_forward(x, weight, bias, 1e-5)
    assert_close(y, ref_y, atol=1e-5 * (np.abs(ref_y).max() + (0 if bias is None else np.abs(bias).max())))
    for out, expected in zip((mean, var, inv_std), ref_stats):
        assert_close(out, expected)
    dx, dweight, dbias = backward.fn(device[1], device[0], device[2], mean, inv_std, **config)
    ref_dx, ref_dweight, ref_dbias = oracle_backward(dy, x, weight, to_host(mean), to_host(inv_std))
    scale = np.abs(dy * to_host(inv_std)[:, None] * (1 if weight is None else weight[:, None])).max()
    assert_close(dx, ref_dx, atol=1e-5 * scale)
    assert_close(dweight, ref_dweight)
    assert_close(dbias, ref_dbias)


@pytest.mark.cudasim
@pytest.mark.parametrize("variants", cuda_pairs())
@pytest.mark.parametrize("shape", [(3, 2), (2, 3, 5), (2, 2, 3, 3)], ids=str)
@pytest.mark.parametrize("affine", [True, False])
def test_tiny(variants, shape, affine, poisoned):
    poisoned(*variants)
    config = dict(reduce_threads=4, threads=8) if variants[0].backend == "numba_cuda" else {}
    check(variants, shape, affine, reference.batchnorm_forward_train, reference.batchnorm_backward, config)


@pytest.mark.cudasim
@pytest.mark.parametrize("variants", cuda_pairs())
def test_default_blocks_and_entry_points(variants, poisoned):
    poisoned(*variants)
    check(variants, (2, 2, 3), True, reference.batchnorm_forward_train, reference.batchnorm_backward, {})
    x = np.random.default_rng(1).standard_normal((2, 1, 2, 2)).astype(np.float32)
    with registry.use(batchnorm_forward_train=variants[0].key):
        y, *_ = bn.batchnorm_forward_train(to_device(x))
    assert registry.array_device(y) == "cuda" and y.shape == x.shape
    ref_y = reference.batchnorm_forward_train(x.reshape(2, 1, 4), None, None, 1e-5)[0]
    assert_close(y.reshape(2, 1, 4), ref_y, atol=1e-5 * np.abs(ref_y).max())


def _cpu_float64(op):
    fn = registry.get(op, "cpu")

    def oracle(*args):
        return fn(*(a.astype(np.float64) if isinstance(a, np.ndarray) and a.dtype.kind == "f" else a for a in args))

    return oracle


@pytest.mark.gpu
@pytest.mark.parametrize("variants", cuda_pairs())
@pytest.mark.parametrize("shape", [(128, 16, 32, 32), (128, 64, 8, 8), (128, 256)], ids=str)
def test_real_shapes_on_gpu(variants, shape, poisoned):
    poisoned(*variants)
    check(variants, shape, True, _cpu_float64("batchnorm_forward_train"), _cpu_float64("batchnorm_backward"), {})
