"""Indexing read as PyTorch reads it, where NumPy reads the same index otherwise: ints (and 0-d int tensors) are
applied before the index arrays, so an index array keeps its place beside them; a bool scalar is a new dim
indexed by [0] or []; a uint8 tensor is a mask; a list holding slices, lists or tensors is a tuple of indices;
Ellipses after the first. Each case is checked for getitem, its gradient and setitem against NumPy float64
references written in PyTorch's two steps. The warnings about uint8 masks and lists read as tuples point at the
caller's line; take and index_fill read no index range back from the cuda device."""

import warnings

import numpy as np
import pytest

import tensorlib as tl

SHAPES = [(2, 3, 4), (3, 5, 2), (4, 2, 6)]


def draw(shape, seed):
    return np.random.default_rng(seed).standard_normal(shape)


# (index for a tensor of 3 dims of shape s, the same read in NumPy in PyTorch's two steps: basic items, then index arrays)
CASES = {
    "int, slice, list": (lambda s: (0, slice(None), [1, 0, 1]), lambda a: a[0][:, [1, 0, 1]]),
    "list, int, list": (lambda s: ([1, 0], 1, [0, 1]), lambda a: a[:, 1][[1, 0], [0, 1]]),
    "int, list, slice": (lambda s: (-1, [0, 1, 0], slice(None)), lambda a: a[-1][[0, 1, 0]]),
    "int, Ellipsis, list": (lambda s: (1, Ellipsis, [1, 0]), lambda a: a[1][..., [1, 0]]),
    "list, slice, int": (lambda s: ([1, 1], slice(None), 0), lambda a: a[:, :, 0][[1, 1]]),
    "tensor int, slice, tensor": (lambda s: (tl.tensor(1), slice(None), tl.tensor([1, 0])), lambda a: a[1][:, [1, 0]]),
    "int, None, list": (lambda s: (0, None, [1, 0]), lambda a: a[0][None][:, [1, 0]]),
    "int, slice, mask": (lambda s: (1, slice(None), tl.tensor(np.arange(s[2]) % 2 == 0)),
                         lambda a: a[1][:, np.arange(a.shape[2]) % 2 == 0]),
    "True, list": (lambda s: (True, [1, 0]), lambda a: a[None][[0], [1, 0]]),
    "int, slice, True": (lambda s: (0, slice(None), True), lambda a: a[0][:, None][:, [0]]),
    "True, slice, True": (lambda s: (True, slice(1, None), True), lambda a: a[None, 1:, None][[0], :, [0]]),
    "False": (lambda s: (False,), lambda a: a[None][[]]),
    "Ellipsis, int, Ellipsis": (lambda s: (Ellipsis, 0, Ellipsis), lambda a: a[..., 0]),
}


def positions(reference, shape):
    """Which element of a tensor of ``shape`` each element of the indexed result is (its flat position)."""
    return reference(np.arange(int(np.prod(shape))).reshape(shape))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("name", list(CASES))
def test_getitem_and_setitem_follow_pytorch(name, shape, dtype):
    make_index, reference = CASES[name]
    a = draw(shape, 1)
    expected = reference(a)
    got = tl.tensor(a.astype(dtype))[make_index(shape)]
    assert got.shape == expected.shape and got.dtype == dtype
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-6 if dtype == np.float32 else 0)

    values = draw(expected.shape, 2)
    target = tl.tensor(a.astype(dtype))
    target[make_index(shape)] = tl.tensor(values.astype(dtype))
    written = a.ravel().copy()
    written[positions(reference, shape).ravel()] = values.ravel()  # a repeated position: the last write
    np.testing.assert_allclose(target.numpy(), written.reshape(shape), rtol=1e-6 if dtype == np.float32 else 0)


@pytest.mark.parametrize("shape", SHAPES[:2])
@pytest.mark.parametrize("name", list(CASES))
def test_the_gradient_of_a_mixed_index(name, shape):
    make_index, reference = CASES[name]
    x = tl.tensor(draw(shape, 3), requires_grad=True)
    assert tl.gradcheck(lambda t: t[make_index(shape)] * 1.5, [x])
    weights = draw(reference(np.zeros(shape)).shape, 4)
    (x[make_index(shape)] * tl.tensor(weights)).sum().backward()
    expected = np.zeros(int(np.prod(shape)))
    np.add.at(expected, positions(reference, shape).ravel(), weights.ravel())  # repeated positions add up
    np.testing.assert_allclose(x.grad.numpy(), expected.reshape(shape), rtol=1e-12)


def test_int_beside_an_index_list_keeps_the_list_s_dim_in_place():
    x = np.arange(18.0).reshape(2, 3, 3)
    out = tl.tensor(x)[0, :, [0, 2, 1]]
    assert out.shape == (3, 3)
    np.testing.assert_array_equal(out.numpy(), x[0][:, [0, 2, 1]])
    t = tl.tensor(x.copy())
    t[0, :, [0, 2, 1]] = tl.tensor(np.arange(9.0).reshape(3, 3))
    expected = x.copy()
    expected[0][:, [0, 2, 1]] = np.arange(9.0).reshape(3, 3)
    np.testing.assert_array_equal(t.numpy(), expected)


def test_a_uint8_tensor_is_a_mask():
    a = draw((4, 3), 5)
    m8 = np.array([1, 0, 1, 1], np.uint8)
    x = tl.tensor(a, requires_grad=True)
    with pytest.warns(UserWarning, match="uint8"):
        out = x[tl.tensor(m8)]
    np.testing.assert_array_equal(out.detach().numpy(), a[m8.astype(bool)])
    out.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.repeat(m8[:, None], 3, axis=1).astype(np.float64))
    t = tl.tensor(a.copy())
    with pytest.warns(UserWarning, match="uint8"):
        t[tl.tensor(m8)] = 0.0
    np.testing.assert_array_equal(t.numpy(), np.where(m8[:, None].astype(bool), 0.0, a))


@pytest.mark.parametrize("dtype", [np.int8, np.int16, np.uint16, np.float32])
def test_index_tensors_of_other_dtypes_are_refused(dtype):
    x = tl.tensor(draw((3, 2), 6))
    with pytest.raises(IndexError, match=f"dtype {np.dtype(dtype)}.*int64, int32, bool or uint8"):
        x[tl.tensor(np.array([0, 1], dtype))]
    with pytest.raises(IndexError, match=f"dtype {np.dtype(dtype)}"):
        x[np.array([0, 1], dtype)] = 1.0


def test_a_list_holding_slices_lists_or_tensors_is_a_tuple_of_indices():
    a = draw((3, 4, 2), 7)
    x = tl.tensor(a)
    for index, expected in [([[0, 1], [1, 2]], a[[0, 1], [1, 2]]), ([0, slice(1, 3)], a[0, 1:3]),
                            ([None, 1], a[None, 1]), ([1, tl.tensor([0, 3])], a[1, [0, 3]])]:
        with pytest.warns(UserWarning, match="tuple of indices"):
            got = x[index]
        np.testing.assert_array_equal(got.numpy(), expected)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(x[[2, 0]].numpy(), a[[2, 0]])  # ints only: one index array
        np.testing.assert_array_equal(x[[0] * 40].numpy(), a[[0] * 40])
        assert x[[]].shape == (0, 4, 2)


def test_ellipses_after_the_first():
    a = draw((2, 3, 4), 8)
    x = tl.tensor(a)
    np.testing.assert_array_equal(x[..., 0, ...].numpy(), a[..., 0])
    np.testing.assert_array_equal(x[0, ..., ..., :].numpy(), a[0])
    np.testing.assert_array_equal(x[0, 1, 2, ..., ...].numpy(), a[0, 1, 2])
    with pytest.raises(IndexError, match="two Ellipses"):
        x[..., ..., 0]


def test_bool_scalars_are_indexed_new_dims():
    a = draw((2, 3), 9)
    x = tl.tensor(a)
    assert x[True].shape == (1, 2, 3) and x[False].shape == (0, 2, 3)
    assert x[True, True].shape == (1, 2, 3)
    assert x[True, [1, 0]].shape == (2, 3)
    assert x[0, True].shape == (1, 3)
    assert x[:, tl.tensor(True)].shape == (2, 1, 3)
    with pytest.raises(IndexError):
        x[False, [1, 0]]  # shapes (0,) and (2,) do not broadcast


def test_mixed_indices_on_the_cuda_device_match_the_cpu(tier):
    a, shape = draw((2, 3, 4), 10), (2, 3, 4)
    for name, (make_index, reference) in CASES.items():
        results = []
        for device in ("cpu", "cuda"):
            x = tl.tensor(a, device=device, requires_grad=True)
            out = x[make_index(shape)]
            (out * 2).sum().backward()
            target = tl.tensor(a, device=device)
            target[make_index(shape)] = -1.0
            results.append([t.cpu().numpy() for t in (out.detach(), x.grad, target)])
        for on_cpu, on_cuda in zip(*results):
            np.testing.assert_array_equal(on_cuda, on_cpu, err_msg=name)


def test_index_warnings_point_at_the_indexing_line():
    """The uint8-mask and list-as-tuple warnings name the caller's file and line, not tensorlib's."""
    x = tl.tensor(draw((4, 3), 9))
    mask = tl.tensor(np.array([1, 0, 1, 1], np.uint8))
    for index, match in [(mask, "uint8"), ([[0, 1], [1, 2]], "tuple of indices")]:
        with pytest.warns(UserWarning, match=match) as read:
            x[index]
        with pytest.warns(UserWarning, match=match) as written:
            x[index] = 1.0
        for record in (*read, *written):
            assert record.filename == __file__


@pytest.mark.cudasim
def test_take_and_index_fill_read_nothing_on_the_host_on_the_cuda_device(monkeypatch):
    """Their index range is checked on the cpu only: on cuda the check would read the device on each call."""
    from kernels import device_arrays

    a, c = draw((3, 4), 10), draw((2, 2), 11)
    reads = []
    monkeypatch.setattr(device_arrays, "check_host_access", reads.append)
    results = []
    for device in ("cuda", "cpu"):
        x = tl.tensor(a, device=device, requires_grad=True)
        taken = x.take(tl.tensor([[0, -1], [5, 3]], device=device))
        filled = x.index_fill(1, tl.tensor([0, -1], device=device), -2.0)
        assert device == "cpu" or not [what for what in reads if "host-to-device" not in what]  # no device reads
        ((taken * tl.tensor(c, device=device)).sum() + (filled * filled).sum()).backward()
        results.append([t.cpu().numpy() for t in (taken.detach(), filled.detach(), x.grad)])
    expected_taken = a.reshape(-1)[[[0, -1], [5, 3]]]
    expected_filled = a.copy()
    expected_filled[:, [0, -1]] = -2.0
    expected_grad = 2 * expected_filled * (expected_filled != -2.0)
    np.add.at(expected_grad.reshape(-1), np.array([0, -1, 5, 3]), c.reshape(-1))
    for got in results:
        for value, expected in zip(got, (expected_taken, expected_filled, expected_grad)):
            np.testing.assert_allclose(value, expected, rtol=1e-12)
