"""tensorlib.random: PyTorch's signatures and refusals for rand, randn, randint, randperm and manual_seed."""

import numpy as np
import pytest

import tensorlib as tl


@pytest.mark.parametrize("call, shape, low, high", [
    (lambda: tl.randint(10, (3,)), (3,), 0, 10),                       # randint(high, size)
    (lambda: tl.randint(high=10, size=(3,)), (3,), 0, 10),
    (lambda: tl.randint(5, 10, (2, 4)), (2, 4), 5, 10),                # randint(low, high, size)
    (lambda: tl.randint(5, 10, size=[7]), (7,), 5, 10),
    (lambda: tl.randint(-3, high=0, size=(50,)), (50,), -3, 0),
    (lambda: tl.randint(low=-3, high=0, size=(5,)), (5,), -3, 0),
    (lambda: tl.randint(10, ()), (), 0, 10),
])
def test_randint_signatures(call, shape, low, high):
    out = call()
    assert out.shape == shape and out.dtype == tl.int64
    assert np.all((low <= out.array) & (out.array < high))


def test_randint_covers_its_range_and_follows_the_seed():
    tl.manual_seed(3)
    first = tl.randint(2, 6, (400,))
    assert set(first.array.tolist()) == {2, 3, 4, 5}
    tl.manual_seed(3)
    np.testing.assert_array_equal(tl.randint(2, 6, (400,)).array, first.array)


@pytest.mark.parametrize("call, error, message", [
    (lambda: tl.randint(10), TypeError, "size must be a tuple of ints, got 10"),
    (lambda: tl.randint(10, size=3), TypeError, "size must be a tuple of ints, got 3"),
    (lambda: tl.randint(size=(3,)), TypeError, "missing the high argument"),
    (lambda: tl.randint(), TypeError, "missing the size"),
    (lambda: tl.randint(1, 2, 3, (4,)), TypeError, "at most 3 positional"),
    (lambda: tl.randint(2.5, (3,)), TypeError, "high must be an int, got float 2.5"),
    (lambda: tl.randint(1.0, 5, (3,)), TypeError, "low must be an int, got float 1.0"),
    (lambda: tl.randint(True, (3,)), TypeError, "high must be an int, got bool"),
    (lambda: tl.randint(5, 5, (3,)), ValueError, "low must be less than high, got low=5, high=5"),
    (lambda: tl.randint(300, (3,), dtype=tl.uint8), ValueError, r"low=0, high=300 is out of bounds for dtype uint8"),
    (lambda: tl.randint(-1, 5, (3,), dtype=tl.uint8), ValueError, "out of bounds for dtype uint8"),
    (lambda: tl.randint(3, (3,), dtype=tl.bool_), ValueError, "out of bounds for dtype bool"),
    (lambda: tl.randint(2**24 + 2, (3,), dtype=tl.float32), ValueError, "out of bounds for dtype float32"),
    (lambda: tl.randint(10, (3,), requires_grad=True), RuntimeError, "floating-point"),
    (lambda: tl.randint(10, (-1,)), ValueError, "non-negative"),
])
def test_randint_refusals(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_randint_dtype_edges_that_fit():
    assert sorted(set(tl.randint(256, (4000,), dtype=tl.uint8).array.tolist())) == list(range(256))
    assert tl.randint(2, (8,), dtype=tl.bool_).dtype == tl.bool_
    floats = tl.randint(10, (3,), dtype=tl.float32, requires_grad=True)
    assert floats.dtype == tl.float32 and floats.requires_grad and np.all(floats.array == np.round(floats.array))


@pytest.mark.parametrize("function", [tl.rand, tl.randn])
@pytest.mark.parametrize("dtype", [tl.int64, tl.int32, tl.uint8, tl.bool_])
def test_rand_and_randn_refuse_non_float_dtypes(function, dtype):
    with pytest.raises(TypeError, match=f"dtype must be a floating-point dtype .*got {np.dtype(dtype)}"):
        function(3, dtype=dtype)


@pytest.mark.parametrize("function", [tl.rand, tl.randn])
def test_rand_and_randn_size_forms(function):
    for call in (lambda: function(2, 3), lambda: function((2, 3)), lambda: function([2, 3]),
                 lambda: function(size=(2, 3)), lambda: function(size=[2, 3])):
        out = call()
        assert out.shape == (2, 3) and out.dtype == tl.float32
    assert function(()).shape == () and function(3, dtype=tl.float16).dtype == tl.float16
    tl.manual_seed(1)
    positional = function(2, 3)
    tl.manual_seed(1)
    np.testing.assert_array_equal(function(size=(2, 3)).array, positional.array)
    with pytest.raises(TypeError, match="both positionally"):
        function(2, size=(2, 3))
    with pytest.raises(TypeError, match="missing the size"):
        function()


@pytest.mark.parametrize("dtype", [tl.float16, tl.float32, tl.float64])
def test_rand_is_in_unit_interval(dtype):
    tl.manual_seed(0)
    values = tl.rand(200_000, dtype=dtype).array  # float16 draws rounded from float64 would reach 1.0 here
    assert values.dtype == dtype and values.min() >= 0 and values.max() < 1
    assert 0.28 < values.astype(np.float64).std() < 0.30


def test_randperm():
    perm = tl.randperm(256, dtype=tl.uint8)
    assert perm.dtype == tl.uint8 and sorted(perm.array.tolist()) == list(range(256))
    assert tl.randperm(0).shape == (0,) and tl.randperm(2049, dtype=tl.float16).dtype == tl.float16
    assert tl.randperm(5, dtype=tl.float32, requires_grad=True).requires_grad


@pytest.mark.parametrize("call, error, message", [
    (lambda: tl.randperm(300, dtype=tl.uint8), ValueError, "n=300 is out of bounds for dtype uint8"),
    (lambda: tl.randperm(2050, dtype=tl.float16), ValueError, "out of bounds for dtype float16"),
    (lambda: tl.randperm(-1), ValueError, "n must be non-negative, got -1"),
    (lambda: tl.randperm(2.5), TypeError, "n must be an int, got float 2.5"),
    (lambda: tl.randperm(True), TypeError, "n must be an int, got bool"),
    (lambda: tl.randperm(3, dtype=tl.bool_), TypeError, "got bool"),
    (lambda: tl.randperm(3, requires_grad=True), RuntimeError, "floating-point"),
])
def test_randperm_refusals(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_manual_seed_accepts_negative_seeds_modulo_2_64_as_torch():
    draws = {}
    for seed in (-1, 2**64 - 1, -2**63, 2**63, 0):
        tl.manual_seed(seed)
        draws[seed] = tl.rand(4).array
    np.testing.assert_array_equal(draws[-1], draws[2**64 - 1])  # torch: initial_seed() of -1 is 2**64 - 1
    np.testing.assert_array_equal(draws[-2**63], draws[2**63])
    assert not np.array_equal(draws[-1], draws[0])
    for seed in (2**64, -2**63 - 1):
        with pytest.raises(ValueError, match=r"seed must be an int in \[-2\*\*63, 2\*\*64\)"):
            tl.manual_seed(seed)
