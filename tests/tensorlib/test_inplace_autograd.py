"""Autograd through in-place writes, as PyTorch records them: zero_/fill_ cut the gradient to the values they
overwrite, copy_ and assignment route it to the values written (summed back to their shape, cast to their dtype);
a plain tensor written with values that require grad starts requiring grad; a change through a view of a tensor
becomes that tensor's history (and the view reads its values from it), found by the view's offset and strides
whatever the tensor's memory layout; diagonal() is such a view; writes into elements an expand() view repeats are
refused as in PyTorch; view() refuses what it cannot view; addmm's input left out by beta = 0 gets a zero gradient.
References are NumPy float64; gradients are also checked by finite differences."""

import numpy as np
import pytest

import tensorlib as tl

SHAPES = [(3, 4), (2, 5), (4, 3)]
DTYPES = [np.float32, np.float64]


def draw(shape, seed):
    return np.random.default_rng(seed).standard_normal(shape)


def leaf(array, dtype=np.float64):
    return tl.tensor(np.asarray(array, dtype=dtype), requires_grad=True)


def tolerance(dtype):
    return {"rtol": 1e-5, "atol": 1e-6} if dtype == np.float32 else {"rtol": 1e-12, "atol": 1e-12}


# ---- zero_, fill_, copy_ on a tensor made by a recorded op ------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
def test_zero_and_fill_cut_the_gradient_to_the_old_values(shape, dtype):
    w, c = leaf(draw(shape, 1), dtype), draw(shape, 2)
    for change, value in [(lambda y: y.zero_(), 0.0), (lambda y: y.fill_(2.5), 2.5)]:
        y = w * 2
        assert change(y) is y and y.requires_grad and y.grad_fn is not None
        (y * tl.tensor(c.astype(dtype))).sum().backward()
        np.testing.assert_array_equal(y.detach().numpy(), np.full(shape, value, dtype))
        np.testing.assert_array_equal(w.grad.numpy(), np.zeros(shape, dtype))
        w.grad = None


@pytest.mark.parametrize("shape", SHAPES)
def test_fill_with_a_0d_tensor_gives_it_the_summed_gradient(shape):
    w, s, c = leaf(draw(shape, 3)), leaf(1.5), draw(shape, 4)
    y = w * 2
    y.fill_(s * 3)
    (y * tl.tensor(c)).sum().backward()
    np.testing.assert_allclose(s.grad.numpy(), 3 * c.sum(), rtol=1e-12)
    np.testing.assert_array_equal(w.grad.numpy(), np.zeros(shape))
    assert tl.gradcheck(lambda w, s: (w * 2).fill_(s * 3) * tl.tensor(c), [w, s])


@pytest.mark.parametrize("source_dtype", DTYPES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
def test_copy_routes_the_gradient_to_the_source(shape, dtype, source_dtype):
    """The source broadcasts (a row here) and may have another dtype: its gradient is summed back over the
    broadcast dim and has its own dtype; the overwritten values get none."""
    w, src, c = leaf(draw(shape, 5), dtype), leaf(draw(shape[1:], 6), source_dtype), draw(shape, 7)
    y = w * 2
    y.copy_(src * 3)
    (y * tl.tensor(c.astype(dtype))).sum().backward()
    loosest = tolerance(min(dtype, source_dtype, key=lambda d: np.dtype(d).itemsize))
    np.testing.assert_allclose(y.detach().numpy(), np.broadcast_to(3 * src.detach().numpy(), shape), **loosest)
    assert src.grad.dtype == source_dtype and src.grad.shape == shape[1:]
    np.testing.assert_allclose(src.grad.numpy(), 3 * c.astype(dtype).sum(0), **loosest)
    np.testing.assert_array_equal(w.grad.numpy(), np.zeros(shape, dtype))


def test_copy_and_fill_pass_gradcheck():
    w, src = leaf(draw((3, 4), 8)), leaf(draw((3, 1), 9))
    assert tl.gradcheck(lambda w, src: (w * 2).copy_(src.exp()) * w, [w, src])
    assert tl.gradcheck(lambda w: (w * 2).zero_() + w, [w])


# ---- writes into a plain tensor with values that require grad ----------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
def test_a_plain_tensor_written_with_grad_requiring_values_requires_grad(shape, dtype):
    w, v, c = leaf(draw(shape, 10), dtype), leaf(draw(shape[1:], 11), dtype), draw(shape, 12)
    buf = tl.zeros(*shape, dtype=dtype)
    buf[0] = w[0] * 3  # row by row, as a buffer is filled
    buf[1:] = v  # broadcast over the rows
    assert buf.requires_grad and buf.grad_fn is not None and buf.grad_fn.name == "IndexPutBackward"
    (buf * tl.tensor(c.astype(dtype))).sum().backward()
    expected_w = np.zeros(shape)
    expected_w[0] = 3 * c[0]
    np.testing.assert_allclose(w.grad.numpy(), expected_w, **tolerance(dtype))
    np.testing.assert_allclose(v.grad.numpy(), c[1:].sum(0), **tolerance(dtype))

    full = tl.zeros(*shape, dtype=dtype)
    full[:] = w * 3
    other = tl.zeros(*shape, dtype=dtype)
    other.copy_(w * 3)
    for written in (full, other):
        w.grad = None
        (written * tl.tensor(c.astype(dtype))).sum().backward()
        np.testing.assert_allclose(w.grad.numpy(), 3 * c, **tolerance(dtype))


def test_untouched_positions_pass_the_gradient_to_the_earlier_history():
    w, v, c = leaf(draw((3, 4), 13)), leaf(draw(2, 14)), draw((3, 4), 15)
    y = w * 2
    y[1, 1:3] = v * 5
    (y * tl.tensor(c)).sum().backward()
    expected_w = 2 * c
    expected_w[1, 1:3] = 0
    np.testing.assert_allclose(w.grad.numpy(), expected_w, rtol=1e-12)
    np.testing.assert_allclose(v.grad.numpy(), 5 * c[1, 1:3], rtol=1e-12)
    assert tl.gradcheck(lambda w, v: _assigned(w * 2, (1, slice(1, 3)), v * 5) * w, [w, v])


def _assigned(y, index, value):
    y[index] = value
    return y


def test_writes_into_integer_tensors_are_not_recorded():
    w = leaf([1.0, 2.0, 3.0])
    buf = tl.zeros(3, dtype=tl.int64)
    buf[0] = w[0] * 3
    buf.copy_(w * 2)
    assert not buf.requires_grad and buf.tolist() == [2, 4, 6]


# ---- in-place changes through views of a tensor made by a recorded op --------------------------------------
VIEW_CHANGES = {
    "assign a column": (lambda y, v: _assigned(y, (slice(None), 0), 0.0),
                        lambda a, v: _np_assigned(a, (slice(None), 0), 0.0)),
    "mul_ a row": (lambda y, v: y[0].mul_(v[0]), lambda a, v: _np_changed(a, 0, lambda r: r * v[0])),
    "+= a column": (lambda y, v: y[:, 1].__iadd__(v[:, 2] * 3), lambda a, v: _np_changed(a, (slice(None), 1),
                                                                                          lambda r: r + 3 * v[:, 2])),
    "add_ through a transpose": (lambda y, v: y.t()[1].add_(v[:, 0]),
                                 lambda a, v: _np_changed(a, (slice(None), 1), lambda r: r + v[:, 0])),
    "fill_ every other element": (lambda y, v: y.reshape(-1)[::2].fill_(1.5),
                                  lambda a, v: _np_flat_changed(a, slice(None, None, 2), lambda r: 0 * r + 1.5)),
    "relu_ of a block": (lambda y, v: y[1:, 1:].relu_(), lambda a, v: _np_changed(a, (slice(1, None), slice(1, None)),
                                                                                  lambda r: np.maximum(r, 0))),
    "mul_ one element (a 0-d view)": (lambda y, v: y[1, 2].mul_(v[0, 0]),
                                      lambda a, v: _np_changed(a, (1, 2), lambda r: r * v[0, 0])),
    "add_ one element of a flat view": (lambda y, v: y.reshape(-1)[1].add_(v[1, 1] * 2),
                                        lambda a, v: _np_flat_changed(a, 1, lambda r: r + 2 * v[1, 1])),
    "copy_ into a view of a view": (lambda y, v: y[1:][:, :2].copy_(v[0, :2]),
                                    lambda a, v: _np_changed(a, (slice(1, None), slice(None, 2)),
                                                             lambda r: 0 * r + v[0, :2])),
}


def _np_assigned(a, index, value):
    a = a.copy()
    a[index] = value
    return a


def _np_changed(a, index, change):
    a = a.copy()
    a[index] = change(a[index])
    return a


def _np_flat_changed(a, index, change):
    flat = a.copy().reshape(-1)
    flat[index] = change(flat[index])
    return flat.reshape(a.shape)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("name", list(VIEW_CHANGES))
def test_a_change_through_a_view_becomes_the_base_s_history(name, shape, dtype):
    change, reference = VIEW_CHANGES[name]
    a, b, c = draw(shape, 16) + 0.1, draw(shape, 17), draw(shape, 18)  # away from relu's kink
    w, v = leaf(a, dtype), leaf(b, dtype)
    y = w * 2
    change(y, v)
    np.testing.assert_allclose(y.detach().numpy(), reference(2 * a.astype(dtype), b.astype(dtype)), **tolerance(dtype))
    (y * tl.tensor(c.astype(dtype))).sum().backward()
    assert w.grad.dtype == dtype
    if dtype == np.float64:  # the gradient, by finite differences of the same change
        def changed(w, v):
            y = w * 2
            change(y, v)
            return y
        assert tl.gradcheck(changed, [leaf(a), leaf(b)])


def test_the_numbers_of_a_change_through_a_view():
    a, b, c = draw((2, 3), 19), draw(3, 20), draw((2, 3), 21)
    w, v = leaf(a), leaf(b)
    y = w * 2
    y[:, 0] = 0.0  # PyTorch's example: w.grad 0 in that column, 2 elsewhere
    y[1].mul_(v)
    (y * tl.tensor(c)).sum().backward()
    expected_w = 2 * c * np.array([[1.0] * 3, b])
    expected_w[:, 0] = 0
    np.testing.assert_allclose(w.grad.numpy(), expected_w, rtol=1e-12)
    expected_v = c[1] * 2 * a[1]
    expected_v[0] = 0  # that element of the row was already 0
    np.testing.assert_allclose(v.grad.numpy(), expected_v, rtol=1e-12)


def test_views_of_the_changed_tensor_read_its_new_values():
    """Another view (made before the change), the view changed and the views between it and the base all take
    the new values' history, as PyTorch rebuilds a view's grad_fn from its base's."""
    a, b, c = draw((3, 4), 22), draw((3, 4), 23), draw((3, 4), 24)
    w, v = leaf(a), leaf(b)
    y = w * 2
    row, block = y[0], y[1:]
    corner = block[:, 1:]
    y[:, 1] = v[:, 1] * 5  # through y itself: row (another view) changes too
    corner.mul_(v[1:, 1:])  # through a view of a view: block (between) changes too
    (row * tl.tensor(c[0])).sum().backward(retain_graph=True)
    expected_w = np.zeros((3, 4))
    expected_w[0] = 2 * c[0]
    expected_w[0, 1] = 0
    np.testing.assert_allclose(w.grad.numpy(), expected_w, rtol=1e-12)
    w.grad = v.grad = None
    (block * tl.tensor(c[1:])).sum().backward()
    expected_w = np.zeros((3, 4))
    expected_w[1:] = 2 * c[1:]
    expected_w[1:, 1:] *= b[1:, 1:]
    expected_w[1:, 1] = 0
    np.testing.assert_allclose(w.grad.numpy(), expected_w, rtol=1e-12)
    expected_v = np.zeros((3, 4))
    expected_v[1:, 1] = 5 * b[1:, 1] * c[1:, 1] + 0  # written, then multiplied by v itself
    expected_v[1:, 1] *= 2
    expected_v[1:, 2:] = c[1:, 2:] * 2 * a[1:, 2:]
    np.testing.assert_allclose(v.grad.numpy(), expected_v, rtol=1e-12)


def test_a_change_through_a_view_of_a_0d_tensor():
    w = leaf(draw(3, 25))
    total = (w * 2).sum()
    total.view(1).mul_(3)
    total.backward()
    np.testing.assert_allclose(w.grad.numpy(), np.full(3, 6.0), rtol=1e-12)


def test_a_0d_tensor_changed_in_place_and_used_twice():
    """Its gradient is summed over the two uses (a 0-d sum, which must stay an array) before the write's node
    splits it between the value written and the old value."""
    a, b = draw((3, 4), 32), draw(4, 33)
    w, s = leaf(a), leaf(b)
    y = (w * 2).sum()
    y.fill_(s.sum())
    (y * y).backward()
    np.testing.assert_allclose(s.grad.numpy(), np.full(4, 2 * b.sum()), rtol=1e-12)
    np.testing.assert_array_equal(w.grad.numpy(), np.zeros((3, 4)))
    w.grad = s.grad = None
    y = (w * 2).sum()
    y.reshape(1).mul_(s[0:1])  # through a view of the 0-d tensor
    (y * y).backward()
    total = 2 * a.sum() * b[0]
    np.testing.assert_allclose(w.grad.numpy(), np.full((3, 4), 2 * total * 2 * b[0]), rtol=1e-12)
    np.testing.assert_allclose(s.grad.numpy(), [2 * total * 2 * a.sum(), 0, 0, 0], rtol=1e-12)

    def filled(w, s):
        y = (w * 2).sum()
        y.fill_(s.sum())
        return y * y

    def multiplied(w, s):
        y = (w * 2).sum()
        y.reshape(1).mul_(s[0:1])
        return y * y + y

    assert tl.gradcheck(filled, [leaf(a), leaf(b)])
    assert tl.gradcheck(multiplied, [leaf(a), leaf(b)])


def test_a_view_of_a_tensor_whose_memory_is_column_major():
    a, b = draw((3, 4), 26), draw(3, 27)
    w, v = leaf(a), leaf(b)
    y = w.t() * 2  # NumPy keeps the layout: y's memory is column-major
    y[1].mul_(v.sum())
    y.sum().backward()
    expected_w = np.full((3, 4), 2.0)
    expected_w[:, 1] *= b.sum()
    np.testing.assert_allclose(w.grad.numpy(), expected_w, rtol=1e-12)
    np.testing.assert_allclose(v.grad.numpy(), np.full(3, 2 * a[:, 1].sum()), rtol=1e-12)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
def test_a_view_made_before_its_base_required_grad_follows_the_base(shape, dtype):
    """A view of a plain buffer, made before the buffer is written with values that require grad, reads its values
    from the buffer from then on (as PyTorch regenerates the view's grad_fn): it requires grad and the gradient of
    its uses reaches the values written."""
    a, c = draw(shape, 34), draw(shape, 35)
    w = leaf(a, dtype)
    buf = tl.zeros(*shape, dtype=dtype)
    row, column = buf[0], buf[:, 1]
    assert not row.requires_grad and row.grad_fn is None
    buf.copy_(w * 2)
    assert row.requires_grad and not row.is_leaf and row.grad_fn is not None
    ((row * row).sum() + (column * tl.tensor(c[:, 1].astype(dtype))).sum() + buf.sum()).backward()
    expected = np.full(shape, 2.0)
    expected[0] += 2 * (2 * a[0]) * 2
    expected[:, 1] += 2 * c[:, 1]
    np.testing.assert_allclose(w.grad.numpy(), expected, **tolerance(dtype))

    def through_views(w):
        buf = tl.zeros(*shape, dtype=tl.float64)
        row = buf[1]
        block = buf.reshape(-1)[1:]
        buf[:, :2] = w[:, :2].exp()
        return (row * row).sum() + (block * block).sum()

    assert tl.gradcheck(through_views, [leaf(a)])


def test_a_stale_view_is_rebuilt_once_and_only_while_autograd_records():
    w = leaf(draw((4, 6), 36))
    y = w * 2
    flat = y.view(-1)
    node = flat.grad_fn
    y.add_(1)  # flat's node is out of date
    with tl.no_grad():
        for _ in range(3):
            flat + 1
    assert flat._ctx is node  # nothing recorded there, so nothing rebuilt
    rebuilt = flat.grad_fn
    assert rebuilt is not node and rebuilt.name == "ViewOfBaseBackward"
    assert flat.grad_fn is rebuilt and (flat + 1).grad_fn.input_fns[0] is rebuilt  # kept once rebuilt
    (flat * flat).sum().backward()
    np.testing.assert_allclose(w.grad.numpy(), 2 * 2 * (2 * draw((4, 6), 36) + 1), rtol=1e-12)


def test_a_view_made_under_no_grad_is_refused_where_pytorch_refuses_it():
    """Changed in place while autograd records, or used while it records after its base changed in place: the
    view has no history, and which one it should have is ambiguous."""
    w, v = leaf(draw((3, 4), 37)), leaf(draw(4, 38))
    y = w * 2
    with tl.no_grad():
        row = y[0]
    np.testing.assert_allclose((row * 2).detach().numpy(), 4 * draw((3, 4), 37)[0], rtol=1e-12)  # unchanged: usable
    with pytest.raises(RuntimeError, match="mul_: a view made under no_grad.. is changed in place while autograd"):
        row.mul_(v)
    y.mul_(3)
    with pytest.raises(RuntimeError, match="a view made under no_grad.. is used while autograd records"):
        row * v
    with tl.no_grad():
        np.testing.assert_allclose((row * 2).numpy(), 12 * draw((3, 4), 37)[0], rtol=1e-12)
    buf = tl.zeros(3, 4, dtype=tl.float64)
    with tl.no_grad():
        plain = buf[1]
    plain.mul_(2)  # nothing to record: allowed
    buf.add_(1)
    assert not (plain * v.detach()).requires_grad


# memory layouts of the tensor written through its views: the views' elements are found by offset and strides
ROOT_LAYOUTS = {
    "row-major": lambda a: a.copy(),
    "column-major": lambda a: np.asfortranarray(a),
    "with gaps": lambda a: np.repeat(np.repeat(a, 2, axis=0), 3, axis=1)[::2, ::3],
    "reversed rows": lambda a: a[::-1].copy()[::-1],
}


def _written_through_views(buf, w):
    row, block = buf[1], buf.t()[2:5]
    block.mul_(w[:, 2:5].t())
    buf[3, ::2] = w[3, ::2] * 2
    row.add_(w[1])
    return buf * buf + row.sum()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("layout", list(ROOT_LAYOUTS))
def test_writes_through_views_of_a_tensor_of_any_memory_layout(layout, dtype):
    a, b = draw((4, 6), 39), draw((4, 6), 40)
    array = ROOT_LAYOUTS[layout](a.astype(dtype))
    assert np.array_equal(array, a.astype(dtype))
    out = _written_through_views(tl.from_numpy(array), leaf(b, dtype))
    expected = a.copy()
    expected[:, 2:5] *= b[:, 2:5]
    expected[3, ::2] = 2 * b[3, ::2]
    expected[1] += b[1]
    np.testing.assert_allclose(out.detach().numpy(), expected ** 2 + expected[1].sum(), **tolerance(dtype))
    if dtype == np.float64:
        assert tl.gradcheck(lambda w: _written_through_views(tl.from_numpy(ROOT_LAYOUTS[layout](a)), w), [leaf(b)])


def _arrays_held(value):
    """The NumPy arrays a graph node holds, through tuples and objects with slots."""
    if isinstance(value, np.ndarray):
        return [value]
    if isinstance(value, (tuple, list)):
        return [a for item in value for a in _arrays_held(item)]
    slots = getattr(type(value), "__slots__", ())
    return [a for name in slots if hasattr(value, name) for a in _arrays_held(getattr(value, name))]


def test_a_write_through_a_view_holds_no_index_per_element():
    """The nodes of a write through a view (and of the view reading its base again) describe the view by offset
    and strides: they hold no array of the view's size, only the values the op itself needs."""
    w = leaf(draw((20, 30), 41))
    y = w * 2
    flat = y.view(-1)
    flat[45] = 0.0
    y.view(30, 20).relu_()
    for node in (y.grad_fn, flat.grad_fn):
        held = [a for key, value in vars(node).items() if key != "inputs" for a in _arrays_held(value)]
        assert all(a.size <= 1 for a in held), [a.shape for a in held]
    y.sum().backward()
    expected = (2 * draw((20, 30), 41) > 0) * 2.0
    expected.reshape(-1)[45] = 0
    np.testing.assert_array_equal(w.grad.numpy(), expected)


def test_writes_into_elements_that_share_memory_are_refused_as_in_pytorch():
    """An expand() view repeats elements of its base: writing elementwise into several that share a location is
    refused (copy_, in-place ops, assignment to a region that repeats, any write while autograd records); a region
    where each element has its own location, a fill with one value and, unrecorded, an index array are allowed."""
    a, b, c = draw((1, 4), 42), draw(4, 43), draw((3, 4), 44)
    w, v = leaf(a), leaf(b)
    refused = "more than one element of the written-to tensor .* refers to a single memory location"
    expanded = (w * 2).expand(3, 4)
    for change in (lambda e: e.copy_(v * 1), lambda e: e.zero_(), lambda e: e.fill_(1.0), lambda e: e.mul_(v),
                   lambda e: _assigned(e, (slice(None), 1), v[0]), lambda e: _assigned(e, [0, 1], v)):
        with pytest.raises(RuntimeError, match=refused):
            change(expanded)
    y = w * 2
    e = y.expand(3, 4)
    e[1] = v * 3  # one row: its elements have their own locations
    e[2].mul_(v)
    (e * tl.tensor(c)).sum().backward()
    np.testing.assert_allclose(y.detach().numpy(), [3 * b * b], rtol=1e-12)
    np.testing.assert_array_equal(w.grad.numpy(), np.zeros((1, 4)))
    np.testing.assert_allclose(v.grad.numpy(), 3 * c.sum(0) * 2 * b, rtol=1e-12)

    plain = tl.zeros(1, 4, dtype=tl.float64).expand(3, 4)
    plain[0] = 1.0
    plain[[0, 2], 1] = 2.0
    plain[1].add_(1.0)
    np.testing.assert_array_equal(plain.numpy(), np.tile([2.0, 3.0, 2.0, 2.0], (3, 1)))
    plain.fill_(5.0)
    assert plain.numpy().tolist() == [[5.0] * 4] * 3
    plain.zero_()
    for change in (lambda e: e.copy_(tl.ones(3, 4)), lambda e: e.mul_(2),
                   lambda e: _assigned(e, (slice(1, None), 1), 1.0)):
        with pytest.raises(RuntimeError, match=refused):
            change(plain)
    assert not plain.numpy().any()


DIAGONALS = [((3, 4), 0, 0, 1), ((4, 3), -1, 0, 1), ((3, 5, 4), 1, 2, 0), ((2, 4, 4, 3), 0, -2, 1), ((3, 2), 3, 0, 1)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape, offset, dim1, dim2", DIAGONALS)
def test_diagonal_is_a_view_writes_reach_the_tensor(shape, offset, dim1, dim2, dtype):
    """diagonal() reads NumPy's diagonal and shares the tensor's memory, as PyTorch's view: an in-place change
    through it changes the tensor (recorded: the gradient flows through the write), and a fill through it too."""
    a, b = draw(shape, 45), draw(shape, 46)
    expected = np.diagonal(a, offset, dim1, dim2)
    d = tl.tensor(a.astype(dtype)).diagonal(offset, dim1, dim2)
    assert d.shape == expected.shape and d.dtype == dtype
    np.testing.assert_allclose(d.numpy(), expected, **tolerance(dtype))

    def scaled(w, s):
        y = w * 2
        y.diagonal(offset, dim1, dim2).mul_(s)
        return y * y

    w, s = leaf(a, dtype), leaf(draw(expected.shape, 47), dtype)
    out = scaled(w, s)
    reference = 2 * a
    moved = np.moveaxis(reference, (dim1 % len(shape), dim2 % len(shape)), (-2, -1))  # a view of reference
    rows = np.arange(expected.shape[-1]) + max(-offset, 0)
    moved[..., rows, rows + offset] *= s.detach().numpy().astype(np.float64)
    np.testing.assert_allclose(out.detach().numpy(), reference ** 2, **tolerance(dtype))
    if dtype == np.float64:
        assert tl.gradcheck(scaled, [leaf(a), leaf(draw(expected.shape, 47))])
        assert tl.gradcheck(lambda w: w.diagonal(offset, dim1, dim2) * 3, [leaf(b)])

    plain = tl.tensor(b.astype(dtype))
    plain.diagonal(offset, dim1, dim2).fill_(np.inf)
    filled = b.astype(dtype)
    np.moveaxis(filled, (dim1 % len(shape), dim2 % len(shape)), (-2, -1))[..., rows, rows + offset] = np.inf
    np.testing.assert_array_equal(plain.numpy(), filled)


def test_refusals_stay_as_in_pytorch():
    w = leaf(draw((2, 3), 28))
    with pytest.raises(RuntimeError, match="view of a leaf tensor that requires grad"):
        w[0].mul_(2)
    with pytest.raises(RuntimeError, match="view of a leaf tensor that requires grad"):
        w.reshape(3, 2)[:, 1] = 0.0
    with pytest.raises(RuntimeError, match="__setitem__: a leaf tensor that requires grad"):
        w[:, 1] = 0.0
    with pytest.raises(RuntimeError, match="leaf tensor that requires grad"):
        w.zero_()
    with tl.no_grad():
        w[0].mul_(2)  # an update, allowed there
    y = w * 2
    squared = y * y  # saves y
    y[0] = 0.0
    with pytest.raises(RuntimeError, match="changed by an in-place operation"):
        squared.sum().backward()
    e = w.exp()  # saves its output
    e[:, 0] = 1.0
    with pytest.raises(RuntimeError, match="changed by an in-place operation"):
        e.sum().backward()


# ---- views returned by a Function in PyTorch's form ---------------------------------------------------------
class Ident(tl.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return x  # an input returned as it is: the output is a view of it

    @staticmethod
    def backward(ctx, grad):
        return grad * 3


class FirstRow(Ident):
    @staticmethod
    def forward(ctx, x):
        return x[0]  # a view made in forward


def test_a_view_returned_by_a_custom_function_is_refused_where_pytorch_refuses_it():
    """Its node is the function's own backward, which would not see an in-place change of the view or of its base:
    changing it in place while autograd records, or using it there after its base changed, is refused."""
    a, b, c = draw((3, 4), 52), draw(4, 53), draw((3, 4), 54)
    w, v = leaf(a), leaf(b)
    for function, shape in ((Ident, (3, 4)), (FirstRow, (4,))):
        out = function.apply(w * 2)
        with pytest.raises(RuntimeError, match=f"mul_: output 0 of {function.__name__} is a view .* changed in "
                                               "place while autograd records"):
            out.mul_(v)
        y = w * 2
        out = function.apply(y)
        y.mul_(v)
        with pytest.raises(RuntimeError, match=f"output 0 of {function.__name__} is a view .* was changed in place "
                                               "since"):
            out * 1
    out = Ident.apply(w * 2)  # used before any change: its own backward runs
    (out * tl.tensor(c)).sum().backward()
    np.testing.assert_allclose(w.grad.numpy(), 3 * 2 * c, rtol=1e-12)
    out = Ident.apply(w * 2)
    with tl.no_grad():
        out.add_(1.0)  # unrecorded: allowed, and the view is stale from then on
    np.testing.assert_allclose(out.detach().numpy(), 2 * a + 1, rtol=1e-12)
    with pytest.raises(RuntimeError, match="output 0 of Ident is a view"):
        out * 1


def test_mark_dirty_of_a_view_is_refused_while_autograd_records():
    class Double(tl.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            x.mul_(2)
            ctx.mark_dirty(x)
            return x

        @staticmethod
        def backward(ctx, grad):
            return grad * 2

    w = leaf(draw((3, 4), 55))
    with pytest.raises(RuntimeError, match=r"Double: input 0 \(marked dirty\) is a view .* of another tensor, which "
                                           "a Function in PyTorch's form does not change in place here"):
        Double.apply((w * 1)[1:])
    plain = tl.tensor(draw((3, 4), 55))
    Double.apply(plain[1:])  # nothing recorded: allowed, and the base changes
    np.testing.assert_allclose(plain.numpy()[1:], 2 * draw((3, 4), 55)[1:], rtol=1e-12)


# ---- an input left out of the result still gets a gradient: zeros ----------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(3, 5), (5,), (1, 5)])
def test_addmm_with_beta_0_gives_the_ignored_input_a_zero_gradient(shape, dtype):
    """As PyTorch: with beta = 0 the input is left out of the result (its NaNs too) and its gradient is zeros."""
    m, n, c = draw((3, 4), 48), draw((4, 5), 49), draw((3, 5), 50)
    ignored = leaf(np.full(shape, np.nan), dtype)
    x, y = leaf(m, dtype), leaf(n, dtype)
    out = tl.addmm(ignored, x, y, beta=0, alpha=1.5)
    np.testing.assert_allclose(out.detach().numpy(), 1.5 * m @ n, **tolerance(dtype))
    (out * tl.tensor(c.astype(dtype))).sum().backward()
    assert ignored.grad.dtype == dtype and ignored.grad.shape == shape
    np.testing.assert_array_equal(ignored.grad.numpy(), np.zeros(shape))
    np.testing.assert_allclose(x.grad.numpy(), 1.5 * c @ n.T, **tolerance(dtype))
    np.testing.assert_allclose(y.grad.numpy(), 1.5 * m.T @ c, **tolerance(dtype))
    if dtype == np.float64:
        assert tl.gradcheck(lambda b, x, y: tl.addmm(b, x, y, beta=0, alpha=-2), [leaf(draw(shape, 51)), leaf(m),
                                                                                    leaf(n)])


# ---- view() ------------------------------------------------------------------------------------------------
def test_view_refuses_a_layout_it_cannot_view():
    x = tl.tensor(np.arange(6.0).reshape(2, 3))
    with pytest.raises(RuntimeError, match=r"view size .* is not compatible .* Use \.reshape\(\.\.\.\) instead"):
        x.t().view(6)
    with pytest.raises(RuntimeError, match="Use .reshape"):
        x[:, ::2].view_as(tl.zeros(4))
    flat = x.t().reshape(6)  # reshape copies instead
    np.testing.assert_array_equal(flat.numpy(), [0, 3, 1, 4, 2, 5])
    split = x.t().view(3, 1, 2)  # size-1 dims and a dim kept whole need no copy
    split[0, 0, 1] = 100.0
    assert x[1, 0].item() == 100.0
    v = x.view(3, 2)
    v[2, 1] = -1.0  # a view writes through
    assert x[1, 2].item() == -1.0
    assert tl.zeros(0, 3).t().view(3, 0).shape == (3, 0)


def test_in_place_writes_on_the_cuda_device_match_the_cpu(tier):
    a, b, c = draw((3, 4), 29), draw((3, 4), 30), draw((3, 4), 31)
    results = []
    for device in ("cpu", "cuda"):
        w = tl.tensor(a, device=device, requires_grad=True)
        v = tl.tensor(b, device=device, requires_grad=True)
        y = w * 2
        y[:, 0] = 0.0
        y[1].mul_(v[1])
        y[2, [0, 3]] = v[0, 1:3]
        y.diagonal(1).mul_(v[0, :3])
        y.expand(2, 3, 4)[1, 0] = v[2] * 2  # a region of an expand() view whose elements have their own locations
        buf = tl.zeros(3, 4, dtype=tl.float64, device=device)
        row = buf[1]  # made before buf requires grad
        buf.copy_(v.cpu() if device == "cuda" else v)  # from the other device: the gradient goes back there
        column_major = w.t() * 1  # NumPy keeps the layout: its memory is in column-major order
        column_major[1:3, ::2].mul_(v[1:, 1:3].t())
        (y * tl.tensor(c, device=device) + buf + row * row + column_major.t() ** 2).sum().backward()
        results.append([t.cpu().numpy() for t in (y.detach(), w.grad, v.grad)])
    for on_cpu, on_cuda in zip(*results):
        np.testing.assert_allclose(on_cuda, on_cpu, rtol=1e-12)
