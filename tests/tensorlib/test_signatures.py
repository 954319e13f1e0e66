"""PyTorch's argument names and the shape ops' last gaps: keyword calls (``flip(x, dims=...)``,
``x.permute(dims=...)``, ``tl.sum(input=x, dim=1)``) give what the positional forms give; scatter's ``reduce``,
gather's index dtypes, negative slice steps and negative pad amounts in every mode, against float64 NumPy."""

import inspect

import numpy as np
import pytest

import tensorlib as tl

rng = np.random.default_rng(0)
A = rng.standard_normal((3, 4))
INDEX = np.array([[0, 2, 1, 0], [2, 2, 0, 1]])


def leaf(data):
    return tl.tensor(data, dtype=tl.float64, requires_grad=True)


# (keyword call, positional call): each a function of x (float64, A's values) and an int64 index tensor
KEYWORD_CALLS = {
    "flip": (lambda x, i: tl.flip(input=x, dims=(0, 1)), lambda x, i: tl.flip(x, 0, 1)),
    "permute": (lambda x, i: tl.permute(x, dims=(1, 0)), lambda x, i: tl.permute(x, 1, 0)),
    "reshape": (lambda x, i: tl.reshape(x, shape=(2, 6)), lambda x, i: tl.reshape(x, 2, 6)),
    "cat": (lambda x, i: tl.cat(tensors=[x, x], dim=1), lambda x, i: tl.cat([x, x], 1)),
    "stack": (lambda x, i: tl.stack(tensors=[x, x], dim=2), lambda x, i: tl.stack([x, x], 2)),
    "sum": (lambda x, i: tl.sum(input=x, dim=1, keepdim=True), lambda x, i: tl.sum(x, 1, True)),
    "clamp": (lambda x, i: tl.clamp(input=x, min=-0.5), lambda x, i: tl.clamp(x, -0.5)),
    "gather": (lambda x, i: tl.gather(input=x, dim=0, index=i, sparse_grad=False), lambda x, i: tl.gather(x, 0, i)),
    "transpose": (lambda x, i: tl.transpose(input=x, dim0=1, dim1=0), lambda x, i: tl.transpose(x, 0, 1)),
    "where": (lambda x, i: tl.where(condition=x > 0, input=x, other=-x), lambda x, i: tl.where(x > 0, x, -x)),
    "add": (lambda x, i: tl.add(input=x, other=x, alpha=2), lambda x, i: tl.add(x, x, alpha=2)),
    "pow": (lambda x, i: tl.pow(input=x, exponent=2), lambda x, i: tl.pow(x, 2)),
    "mm": (lambda x, i: tl.mm(input=x, mat2=x.T), lambda x, i: tl.mm(x, x.T)),
    "mv": (lambda x, i: tl.mv(input=x, vec=x[0]), lambda x, i: tl.mv(x, x[0])),
    "dot": (lambda x, i: tl.dot(input=x[0], tensor=x[1]), lambda x, i: tl.dot(x[0], x[1])),
    "outer": (lambda x, i: tl.outer(input=x[0], vec2=x[1]), lambda x, i: tl.outer(x[0], x[1])),
    "lerp": (lambda x, i: tl.lerp(input=x, end=x * 2, weight=0.25), lambda x, i: tl.lerp(x, x * 2, 0.25)),
    "max_other": (lambda x, i: tl.max(x, other=x.flip(0)), lambda x, i: tl.maximum(x, x.flip(0))),
    "min_other": (lambda x, i: tl.min(input=x, other=x.flip(0)), lambda x, i: tl.min(x, x.flip(0))),
    "split": (lambda x, i: tl.split(tensor=x, split_size_or_sections=3, dim=1)[1], lambda x, i: tl.split(x, 3, 1)[1]),
    "broadcast_to": (lambda x, i: tl.broadcast_to(input=x, size=(2, 3, 4)), lambda x, i: tl.broadcast_to(x, (2, 3, 4))),
    "scatter": (lambda x, i: tl.scatter(input=x, dim=0, index=i, src=x * 2), lambda x, i: tl.scatter(x, 0, i, x * 2)),
    "zeros_like": (lambda x, i: tl.zeros_like(input=x), lambda x, i: tl.zeros_like(x)),
    "pad": (lambda x, i: tl.pad(input=x, pad=(1, 1), mode="reflect"), lambda x, i: tl.pad(x, (1, 1), "reflect")),
    "x.permute": (lambda x, i: x.permute(dims=(1, 0)), lambda x, i: x.permute((1, 0))),
    "x.view": (lambda x, i: x.view(size=(4, 3)), lambda x, i: x.view(4, 3)),
    "x.reshape": (lambda x, i: x.reshape(shape=(-1,)), lambda x, i: x.reshape(-1)),
    "x.flip": (lambda x, i: x.flip(dims=(1,)), lambda x, i: x.flip(1)),
    "x.expand": (lambda x, i: x[:1].expand(size=(5, 4)), lambda x, i: x[:1].expand(5, 4)),
    "x.repeat": (lambda x, i: x.repeat(repeats=(2, 1, 1)), lambda x, i: x.repeat(2, 1, 1)),
    "x.tile": (lambda x, i: x.tile(dims=(2,)), lambda x, i: x.tile(2)),
    "x.broadcast_to": (lambda x, i: x.broadcast_to(size=(2, 3, 4)), lambda x, i: x.broadcast_to(2, 3, 4)),
    "x.new_zeros": (lambda x, i: x.new_zeros(size=(2, 5)), lambda x, i: x.new_zeros(2, 5)),
    "x.new_ones": (lambda x, i: x.new_ones(size=3), lambda x, i: x.new_ones(3)),
    "x.transpose": (lambda x, i: x.transpose(dim0=0, dim1=1), lambda x, i: x.transpose(0, 1)),
    "x.gather": (lambda x, i: x.gather(dim=0, index=i, sparse_grad=True), lambda x, i: x.gather(0, i)),
    "x.scatter": (lambda x, i: x.scatter(dim=0, index=i, value=1.5), lambda x, i: x.scatter(0, i, 1.5)),
    "x.max": (lambda x, i: x.max(other=x.flip(1)), lambda x, i: x.max(x.flip(1))),
    "x.mm": (lambda x, i: x.mm(mat2=x.T), lambda x, i: x.mm(x.T)),
    "x.bmm": (lambda x, i: x[None].bmm(mat2=x.T[None]), lambda x, i: x[None].bmm(x.T[None])),
    "x.dot": (lambda x, i: x[0].dot(tensor=x[1]), lambda x, i: x[0].dot(x[1])),
    "x.outer": (lambda x, i: x[0].outer(vec2=x[1]), lambda x, i: x[0].outer(x[1])),
    "x.copy_": (lambda x, i: x.clone().copy_(other=x * 3, non_blocking=True), lambda x, i: x.clone().copy_(x * 3)),
}


@pytest.mark.parametrize("name", sorted(KEYWORD_CALLS))
def test_keyword_call_gives_the_positional_result(name):
    by_keyword, by_position = KEYWORD_CALLS[name]
    x, index = tl.tensor(A), tl.tensor(INDEX)
    expected = by_position(x, index)
    got = by_keyword(x, index)
    assert got.shape == expected.shape and got.dtype == expected.dtype
    np.testing.assert_array_equal(got.numpy(), expected.numpy())


def test_keyword_forms_keep_their_gradient():
    assert tl.gradcheck(lambda t: t.permute(dims=(1, 0)).flip(dims=(0,)).reshape(shape=(2, 6)), [leaf(A)])
    assert tl.gradcheck(lambda t: tl.add(input=t, other=t * t, alpha=0.5), [leaf(A)])
    assert tl.gradcheck(lambda t: t.gather(dim=1, index=tl.tensor(INDEX[:, :3]), sparse_grad=True), [leaf(A)])


@pytest.mark.parametrize("call", [
    lambda x: x.permute(1, 0, dims=(1, 0)), lambda x: tl.flip(x, 0, dims=(0,)), lambda x: x.view(12, size=(12,)),
    lambda x: tl.reshape(x, 12, shape=(12,)), lambda x: x.expand(3, 4, size=(3, 4)), lambda x: x.tile(2, dims=(2,)),
    lambda x: x.new_zeros(2, size=(2,)),
], ids=["permute", "flip", "view", "reshape", "expand", "tile", "new_zeros"])
def test_a_size_given_both_ways_is_refused(call):
    with pytest.raises(TypeError, match="both as positional arguments .* and as"):
        call(tl.tensor(A))


def test_max_with_other_and_dim_is_refused():
    x = tl.tensor(A)
    with pytest.raises(TypeError, match="other=Tensor besides dim=1"):
        tl.max(x, 1, other=x)


def test_pytorch_names_of_the_first_arguments():
    """The names PyTorch documents for the tensors a function takes (its keyword API)."""
    expected = {tl.sum: ["input", "dim"], tl.add: ["input", "other"], tl.where: ["condition", "input", "other"],
                tl.matmul: ["input", "other"], tl.bmm: ["input", "mat2"], tl.split: ["tensor"], tl.pad: ["input", "pad"],
                tl.lerp: ["input", "end", "weight"], tl.ones_like: ["input"], tl.multinomial: ["input", "num_samples"],
                tl.Tensor.copy_: ["self", "other", "non_blocking"], tl.Tensor.mm: ["self", "mat2"]}
    for function, names in expected.items():
        assert list(inspect.signature(function).parameters)[:len(names)] == names, function.__qualname__


# ---- scatter's reduce ----------------------------------------------------------------------------------
def scatter_reference(x, dim, index, src, reduce):
    """float64 NumPy: x with src added at / multiplied into the positions index names along dim, in order."""
    out = x.astype(np.float64)
    src = np.broadcast_to(np.asarray(src, np.float64), index.shape) if np.ndim(src) == 0 else src
    for position in np.ndindex(*index.shape):
        target = list(position)
        target[dim] = index[position]
        value = src[position]
        out[tuple(target)] = out[tuple(target)] + value if reduce == "add" else out[tuple(target)] * value
    return out


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("reduce", ["add", "multiply"])
@pytest.mark.parametrize("shape, index_shape, dim", [((5,), (7,), 0), ((4, 3), (6, 2), 0), ((3, 5), (2, 7), 1),
                                                      ((2, 3, 4), (2, 2, 5), -1)])
def test_scatter_reduce_matches_numpy(shape, index_shape, dim, reduce, dtype):
    r = np.random.default_rng(sum(shape) + len(index_shape))
    x = r.uniform(0.5, 1.5, shape).astype(dtype)
    src = r.uniform(0.5, 1.5, index_shape).astype(dtype)  # no zeros: products stay informative
    index = r.integers(0, shape[dim], index_shape)  # repeats along dim: they accumulate
    expected = scatter_reference(x, dim % len(shape), index, src, reduce)
    tol = dict(rtol=1e-4 if dtype == np.float32 else 1e-12)
    got = tl.tensor(x).scatter(dim, tl.tensor(index), tl.tensor(src), reduce=reduce)
    assert got.dtype == dtype
    np.testing.assert_allclose(got.numpy(), expected, **tol)
    got = tl.tensor(x).scatter(dim, tl.tensor(index), value=1.25, reduce=reduce)
    np.testing.assert_allclose(got.numpy(), scatter_reference(x, dim % len(shape), index, 1.25, reduce), **tol)
    in_place = tl.tensor(x)
    assert in_place.scatter_(dim, tl.tensor(index), tl.tensor(src), reduce=reduce) is in_place
    np.testing.assert_allclose(in_place.numpy(), expected, **tol)


def test_scatter_reduce_details():
    index = tl.tensor([[0, 1, 0], [0, 0, 1]])
    ints = tl.arange(6).reshape(2, 3)
    got = ints.scatter(0, index, 2.7, reduce="multiply")  # the value is cast to int64 (2), as PyTorch casts it
    assert got.dtype == tl.int64 and got.tolist() == [[0, 2, 4], [3, 8, 10]]
    src = tl.full((3, 4), 2.0, dtype=tl.float64)  # larger than index: its corner is used
    out = tl.tensor(A[:2, :3]).scatter(0, index, src, reduce="add")
    np.testing.assert_allclose(out.numpy(), scatter_reference(A[:2, :3], 0, index.numpy(), np.full((2, 3), 2.0),
                                                             "add"), rtol=1e-12)
    with pytest.raises(ValueError, match="reduce must be 'add' or 'multiply', got 'mean'"):
        tl.tensor(A).scatter(0, tl.tensor(INDEX[:1]), 1.0, reduce="mean")


@pytest.mark.parametrize("reduce", ["add", "multiply"])
def test_scatter_reduce_has_no_gradient_as_in_pytorch(reduce):
    x, src = leaf(A[:2, :3]), leaf(np.ones((2, 3)))
    out = x.scatter(0, tl.tensor([[0, 1, 0], [0, 0, 1]]), src, reduce=reduce)
    assert out.requires_grad
    with pytest.raises(RuntimeError, match=f"reduce='{reduce}' has no gradient.*scatter_add"):
        out.sum().backward()


# ---- gather's index dtype -------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [tl.uint8, tl.int16, tl.int8, tl.float32, tl.bool])
def test_gather_refuses_index_dtypes_pytorch_refuses(dtype):
    with pytest.raises(TypeError, match=f"index must be an integer tensor of dtype int32 or int64, got {dtype}"):
        tl.tensor(A).gather(0, tl.tensor(INDEX).to(dtype))


@pytest.mark.parametrize("dtype", [tl.int32, tl.int64])
def test_gather_takes_int32_and_int64_indices(dtype):
    got = tl.tensor(A).gather(0, tl.tensor(INDEX, dtype=dtype))
    np.testing.assert_array_equal(got.numpy(), np.take_along_axis(A, INDEX, 0))


# ---- negative slice steps -------------------------------------------------------------------------------
@pytest.mark.parametrize("index", [slice(None, None, -1), (slice(None), slice(3, 0, -2)), (Ellipsis, slice(None, None, -1)),
                                   (0, slice(-1, None, -1))], ids=repr)
def test_a_negative_slice_step_is_refused_as_in_pytorch(index):
    x = tl.tensor(A)
    with pytest.raises(ValueError, match="step must be greater than zero"):
        x[index]
    with pytest.raises(ValueError, match="step must be greater than zero"):
        x[index] = 0.0
    np.testing.assert_array_equal(x.numpy(), A)


def test_positive_slice_steps_still_read_and_write():
    x = tl.tensor(A)
    np.testing.assert_array_equal(x[::2, 1::3].numpy(), A[::2, 1::3])
    x[:, ::2] = 0.0
    expected = A.copy()
    expected[:, ::2] = 0.0
    np.testing.assert_array_equal(x.numpy(), expected)
    with pytest.raises(ValueError, match="slice step cannot be zero"):
        x[::0]


# ---- pad with negative amounts: they crop ---------------------------------------------------------------
def pad_reference(data, pad, mode):
    """float64 NumPy: constant, reflect and replicate pad the positive amounts of the whole input, then the
    negative amounts crop; circular crops first and wraps what is left (PyTorch's orders)."""
    widths = [(0, 0)] * data.ndim
    for i in range(len(pad) // 2):
        widths[data.ndim - 1 - i] = (pad[2 * i], pad[2 * i + 1])
    grow = [(max(lo, 0), max(hi, 0)) for lo, hi in widths]

    def crop(a):
        return a[tuple(slice(max(-lo, 0), a.shape[axis] - max(-hi, 0)) for axis, (lo, hi) in enumerate(widths))]

    if mode == "circular":
        return np.pad(crop(data), grow, mode="wrap")
    return crop(np.pad(data, grow, mode={"constant": "constant", "reflect": "reflect", "replicate": "edge"}[mode]))


PAD_CASES = [  # (shape, pad): every amount a mode takes for it, among them crops past the far pad
    ((1, 2, 6), (-1, 2)), ((1, 2, 6), (3, -2)), ((1, 2, 6), (-2, -3)), ((2, 6), (-4, 5)), ((1, 6), (4, -5)),
    ((1, 1, 4, 5), (-1, 2, 3, -1)), ((1, 1, 4, 5), (2, -2, -1, -1)), ((2, 3, 5, 4), (0, -3, 2, 1)),
    ((1, 1, 3, 4, 5), (-1, 1, 2, -2, -1, 2)),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("mode", ["constant", "reflect", "replicate", "circular"])
@pytest.mark.parametrize("shape, pad", PAD_CASES, ids=[f"{s}-{p}" for s, p in PAD_CASES])
def test_negative_pad_crops_as_pytorch(shape, pad, mode, dtype):
    data = np.random.default_rng(len(shape) + abs(sum(pad))).standard_normal(shape).astype(dtype)
    if mode == "circular" and any(max(pad[2 * i], pad[2 * i + 1]) > data.shape[-1 - i] - max(-pad[2 * i], 0)
                                  - max(-pad[2 * i + 1], 0) for i in range(len(pad) // 2)):
        with pytest.raises(ValueError, match="circular padding"):  # a wrap longer than what the crop leaves
            tl.pad(tl.tensor(data), pad, mode=mode)
        return
    expected = pad_reference(data.astype(np.float64), pad, mode)
    got = tl.pad(tl.tensor(data), pad, mode=mode)
    assert got.dtype == dtype and got.shape == expected.shape
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-6 if dtype == np.float32 else 0)


@pytest.mark.parametrize("mode", ["constant", "reflect", "replicate", "circular"])
@pytest.mark.parametrize("shape, pad", [((1, 2, 6), (-1, 2)), ((1, 2, 6), (3, -2)), ((1, 1, 4, 5), (-1, 2, 3, -1))])
def test_negative_pad_gradient(shape, pad, mode):
    data = np.random.default_rng(7).standard_normal(shape)
    assert tl.gradcheck(lambda t: tl.pad(t, pad, mode=mode), [leaf(data)])


def test_negative_pad_reads_past_the_crop_in_reflect_and_replicate():
    """As in PyTorch, reflect and replicate pad from the whole input: a crop longer than the other side's pad
    still reads there (reflect (-6, 2) of 1..5 is [3])."""
    x = tl.tensor([[[1.0, 2.0, 3.0, 4.0, 5.0]]])
    assert tl.pad(x, (-6, 2), mode="reflect").tolist() == [[[3.0]]]
    assert tl.pad(x, (-8, 4), mode="reflect").tolist() == [[[1.0]]]
    assert tl.pad(x, (5, -3), mode="replicate").tolist() == [[[1.0] * 6 + [2.0]]]
    assert tl.pad(x, (-1, 2), mode="circular").tolist() == [[[2.0, 3.0, 4.0, 5.0, 2.0, 3.0]]]
    assert tl.pad(x, (-5, 0), mode="constant").shape == (1, 1, 0)


@pytest.mark.parametrize("mode, pad, message", [
    ("constant", (-6, 1), r"crops 6 elements from dim 2 of size 5"),
    ("circular", (-6, 1), r"crops 6 elements from dim 2 of size 5"),
    ("circular", (-3, 3), r"must not exceed the input size 2 left in dim 2 after cropping"),
    ("reflect", (-3, -2), r"leaves no element in the padded dims"),
    ("replicate", (-9, 4), r"leaves no element in the padded dims"),
    ("reflect", (5, -1), r"must be smaller than the input size 5"),
    ("reflect", (-3, -3), r"gives dim 2 of size 5 the negative size -1"),
])
def test_negative_pad_refusals(mode, pad, message):
    with pytest.raises(ValueError, match=message):
        tl.pad(tl.ones(1, 1, 5), pad, mode=mode)


def test_pad_value_none_is_zero():
    np.testing.assert_array_equal(tl.pad(tl.ones(2), (1, 1), value=None).numpy(), [0.0, 1.0, 1.0, 0.0])


# ---- the same on the "cuda" device ----------------------------------------------------------------------
def test_scatter_reduce_and_negative_pad_on_cuda(tier):
    index = np.array([[0, 1, 0, 2], [2, 0, 0, 1]])
    for device in ("cpu", "cuda"):
        x = tl.tensor(A, device=device)
        out = x.scatter(0, tl.tensor(index, device=device), x[:2] + 1, reduce="multiply").cpu().numpy()
        np.testing.assert_allclose(out, scatter_reference(A, 0, index, A[:2] + 1, "multiply"), rtol=1e-12)
        for mode in ("reflect", "replicate", "circular"):
            got = tl.pad(x[None], (-1, 2, 1, -1), mode=mode).cpu().numpy()
            np.testing.assert_array_equal(got, pad_reference(A[None], (-1, 2, 1, -1), mode))
