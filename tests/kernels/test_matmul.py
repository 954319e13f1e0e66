"""matmul kernels against the float64 reference on random (batched, broadcast) shapes."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import mutually_broadcastable_shapes

import kernels
from kernels import matmul as mm
from kernels.matmul import reference

CPU_VARIANTS = [v for v in kernels.variants("matmul") if v.device == "cpu"]
TOLERANCE = {np.float32: 1e-4, np.float64: 1e-12}


@pytest.mark.parametrize("variant", CPU_VARIANTS, ids=lambda v: v.key)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@settings(max_examples=20, deadline=None)
@given(shapes=mutually_broadcastable_shapes(signature="(m?,n),(n,p?)->(m?,p?)", max_dims=2, max_side=7),
       seed=st.integers(0, 2**16))
def test_variant_matches_reference(variant, dtype, shapes, seed):
    rng = np.random.default_rng(seed)
    a, b = (rng.standard_normal(s).astype(dtype) for s in shapes.input_shapes)
    expected = reference.matmul(a, b)
    with kernels.use(matmul=variant.key):
        out = mm.matmul(a, b)
    assert out.shape == expected.shape == mm.matmul_shape(a.shape, b.shape)
    assert out.dtype == dtype
    inner = a.shape[-1]
    # each output is a length-`inner` dot product: its rounding error grows with the sum of |terms|
    scale = reference.matmul(np.abs(a), np.abs(b))
    assert np.all(np.abs(out - expected) <= TOLERANCE[dtype] * (scale + 1) * max(1, inner) ** 0.5)


def test_zero_size_and_errors():
    assert mm.matmul(np.ones((0, 3), np.float32), np.ones((3, 2), np.float32)).shape == (0, 2)
    with pytest.raises(ValueError, match=r"\(2, 3\) and \(2, 3\)"):
        mm.matmul(np.ones((2, 3)), np.ones((2, 3)))
    with pytest.raises(ValueError, match="do not broadcast"):
        mm.matmul(np.ones((2, 2, 3)), np.ones((3, 3, 4)))
    with pytest.raises(TypeError, match="float32 and float64"):
        mm.matmul(np.ones((2, 3), np.float32), np.ones((3, 2)))
