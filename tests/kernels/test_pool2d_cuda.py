"""pool2d CUDA variants: every "cuda" variant of each op against an oracle, in two tiers.

- ``cudasim`` (``NUMBA_ENABLE_CUDASIM=1 pytest -m cudasim``): tiny shapes covering ceil_mode, padding,
  dilation, overlapping windows, count_include_pad, divisor_override, adaptive windows that overlap and
  repeat, and global pooling, against the float64 reference. Max-pool inputs are small integers, so
  windows hold ties and the first-maximum rule is exercised. CuPy variants (none yet) would skip.
- ``gpu``: LeNet and ResNet pooling shapes at batch 128 against the CPU variants run in float64.

Outputs are poisoned with NaN through a patched ``empty`` in the variant's module. Tolerances as in
test_pool2d.py: rtol 1e-4, atol 1e-6 for float32.
"""


import numpy as np
import pytest

from kernels import registry
from kernels.device_arrays import to_device, to_host
from kernels.pool2d import reference
from kernels.pool2d.geometry import adaptive_pool2d_geometry, pool2d_geometry

# (x_shape, kernel, stride, padding, dilation, ceil_mode); avg and Lp pooling drop the dilation (and Lp the padding)
TINY = [
    pytest.param(((1, 2, 5, 6), 3, 2, 1, 1, True), id="overlap-pad-ceil"),
    pytest.param(((2, 1, 7, 5), (2, 3), (1, 2), (1, 1), (2, 1), False), id="nonsquare-dilated"),
    pytest.param(((1, 1, 5, 5), 2, 2, 0, 1, True), id="ceil-clipped-edge"),
]
ADAPTIVE_TINY = [((2, 2, 5, 7), (3, 2)), ((1, 2, 3, 3), (5, 4)), ((2, 3, 4, 5), 1)]
REAL = [
    pytest.param(((128, 6, 28, 28), 2, 2, 0, 1, False), id="lenet-s2"),
    pytest.param(((128, 64, 56, 56), 3, 2, 1, 1, True), id="resnet-stem-3x3s2"),
]
ADAPTIVE_REAL = [((128, 64, 8, 8), 1), ((128, 512, 7, 7), 1), ((128, 256, 13, 13), (6, 6))]


def cuda_variants(op):
    return [pytest.param(v, id=v.key) for v in registry.variants(op) if v.device == "cuda"]


def assert_close(out, ref):
    out = to_host(out).astype(np.float64)
    assert out.shape == ref.shape
    np.testing.assert_array_equal(np.isnan(out), np.isnan(ref))
    finite = ~np.isnan(ref)
    err, bound = np.abs(out - ref)[finite], 1e-6 + 1e-4 * np.abs(ref)[finite]
    assert np.all(err <= bound), f"max excess {np.max(err - bound)} over {err.size} elements"


def draw(shape, seed, ties=False):
    rng = np.random.default_rng(seed)
    values = rng.integers(-2, 3, shape) if ties else rng.standard_normal(shape)
    return values.astype(np.float32)


def check_max(variants, case, oracle_forward, oracle_backward):
    x_shape, kernel, stride, padding, dilation, ceil_mode = case
    g = pool2d_geometry("max_pool2d", x_shape, kernel, stride, padding, dilation, ceil_mode)
    x, dy = draw(x_shape, 1, ties=True), draw(g.y_shape, 2)
    forward, backward = variants
    y, indices = forward.fn(to_device(x), g)
    ref_y, ref_indices = oracle_forward(x, g)
    assert_close(y, ref_y)
    np.testing.assert_array_equal(to_host(indices), ref_indices)
    assert_close(backward.fn(to_device(dy), indices, g), oracle_backward(dy, ref_indices, g))


def check_avg(variants, case, oracle_forward, oracle_backward, options):
    x_shape, kernel, stride, padding, _, ceil_mode = case
    g = pool2d_geometry("avg_pool2d", x_shape, kernel, stride, padding, 1, ceil_mode)
    x, dy = draw(x_shape, 3), draw(g.y_shape, 4)
    forward, backward = variants
    for include_pad, override in options:
        assert_close(forward.fn(to_device(x), g, include_pad, override), oracle_forward(x, g, include_pad, override))
        assert_close(backward.fn(to_device(dy), g, include_pad, override), oracle_backward(dy, g, include_pad, override))


def check_lp(variants, case, oracle_forward, oracle_backward, norms):
    x_shape, kernel, stride, _, _, ceil_mode = case
    g = pool2d_geometry("lp_pool2d", x_shape, kernel, stride, 0, 1, ceil_mode)
    x, dy = np.abs(draw(x_shape, 5)) + 0.1, draw(g.y_shape, 6)  # positive: x**(p-1) is real for any p
    forward, backward = variants
    for norm in norms:
        y = forward.fn(to_device(x), g, norm)
        assert_close(y, oracle_forward(x, g, norm))
        ref_dx = oracle_backward(dy, x, to_host(y).astype(np.float64), g, norm)
        assert_close(backward.fn(to_device(dy), to_device(x), y, g, norm), ref_dx)


def check_adaptive(variants, x_shape, output_size, oracle_forward, oracle_backward, config):
    g = adaptive_pool2d_geometry("adaptive_avg_pool2d", x_shape, output_size)
    x, dy = draw(x_shape, 7), draw(g.y_shape, 8)
    forward, backward = variants
    assert_close(forward.fn(to_device(x), g, **config), oracle_forward(x, g))
    assert_close(backward.fn(to_device(dy), g), oracle_backward(dy, g))


def pairs(forward_op, backward_op):
    """(forward, backward) variant pairs of the same backend and number."""
    def number(v):
        return v.backend, v.name.split("_")[0]

    backward = {number(v): v for v in registry.variants(backward_op) if v.device == "cuda"}
    return [
        pytest.param((f, backward[number(f)]), id=f.key)
        for f in registry.variants(forward_op)
        if f.device == "cuda"
    ]


@pytest.mark.cudasim
@pytest.mark.parametrize("case", TINY)
@pytest.mark.parametrize("variants", pairs("max_pool2d_forward", "max_pool2d_backward"))
def test_max_tiny(variants, case, poisoned):
    poisoned(*variants)
    check_max(variants, case, reference.max_pool2d_forward, reference.max_pool2d_backward)


@pytest.mark.cudasim
@pytest.mark.parametrize("case", TINY)
@pytest.mark.parametrize("variants", pairs("avg_pool2d_forward", "avg_pool2d_backward"))
def test_avg_tiny(variants, case, poisoned):
    poisoned(*variants)
    options = [(True, None), (False, None), (True, -3)]
    check_avg(variants, case, reference.avg_pool2d_forward, reference.avg_pool2d_backward, options)


@pytest.mark.cudasim
@pytest.mark.parametrize("case", TINY)
@pytest.mark.parametrize("variants", pairs("lp_pool2d_forward", "lp_pool2d_backward"))
def test_lp_tiny(variants, case, poisoned):
    poisoned(*variants)
    check_lp(variants, case, reference.lp_pool2d_forward, reference.lp_pool2d_backward, (2.0, 1.5))


@pytest.mark.cudasim
@pytest.mark.parametrize("x_shape, output_size", ADAPTIVE_TINY)
@pytest.mark.parametrize("variants", pairs("adaptive_avg_pool2d_forward", "adaptive_avg_pool2d_backward"))
def test_adaptive_tiny(variants, x_shape, output_size, poisoned):
    poisoned(*variants)
    # global pooling with 4 threads per plane (the tree's several levels), then once with the real 64
    config = dict(global_threads=4) if variants[0].backend == "numba_cuda" else {}
    check_adaptive(variants, x_shape, output_size, reference.adaptive_avg_pool2d_forward,
                   reference.adaptive_avg_pool2d_backward, config)
    if output_size == 1:
        check_adaptive(variants, x_shape, output_size, reference.adaptive_avg_pool2d_forward,
                       reference.adaptive_avg_pool2d_backward, {})


def _cpu(op):
    """The CPU default in float64, the oracle at batch 128 where the reference loops are too slow."""
    fn = registry.get(op, "cpu")

    def oracle(*args):
        result = fn(*(a.astype(np.float64) if isinstance(a, np.ndarray) and a.dtype.kind == "f" else a for a in args))
        return tuple(np.asarray(r) for r in result) if isinstance(result, tuple) else np.asarray(result, np.float64)

    return oracle


@pytest.mark.gpu
@pytest.mark.parametrize("case", REAL)
def test_layer_shapes_on_gpu(case, poisoned):
    for variants in pairs("max_pool2d_forward", "max_pool2d_backward"):
        poisoned(*variants.values[0])
        check_max(variants.values[0], case, _cpu("max_pool2d_forward"), _cpu("max_pool2d_backward"))
    for variants in pairs("avg_pool2d_forward", "avg_pool2d_backward"):
        poisoned(*variants.values[0])
        check_avg(variants.values[0], case, _cpu("avg_pool2d_forward"), _cpu("avg_pool2d_backward"),
                  [(True, None), (False, None)])
    for variants in pairs("lp_pool2d_forward", "lp_pool2d_backward"):
        poisoned(*variants.values[0])
        check_lp(variants.values[0], case, _cpu("lp_pool2d_forward"), _cpu("lp_pool2d_backward"), (2.0,))


@pytest.mark.gpu
@pytest.mark.parametrize("x_shape, output_size", ADAPTIVE_REAL)
def test_adaptive_shapes_on_gpu(x_shape, output_size, poisoned):
    for variants in pairs("adaptive_avg_pool2d_forward", "adaptive_avg_pool2d_backward"):
        poisoned(*variants.values[0])
        check_adaptive(variants.values[0], x_shape, output_size, _cpu("adaptive_avg_pool2d_forward"),
                       _cpu("adaptive_avg_pool2d_backward"), {})
