"""Matrix product on the registered matmul kernel (BLAS on the CPU), mv, addmm, dot, outer and einsum; the
matrix parts: tril, triu, diag, diagonal, trace."""

from __future__ import annotations

import collections
import numbers
import string

import numpy as np

from kernels import matmul as matmul_kernels
from tensorlib.autograd import Function
from tensorlib.device import array_module
from tensorlib.ops.elementwise import _as_number, add, mul
from tensorlib.ops.shape import _as_strided
from tensorlib.tensor import Tensor, int64


class MatMul(Function):
    def forward(self, a, b):
        self.a, self.b = a, b
        return matmul_kernels.matmul(a, b)

    def backward(self, g):
        a, b = self.a, self.b
        # Treat 1-D operands as the matrices numpy.matmul promotes them to, then drop the added axis.
        a2 = a[None, :] if a.ndim == 1 else a
        b2 = b[:, None] if b.ndim == 1 else b
        g2 = g[..., None] if b.ndim == 1 else g
        g2 = g2[..., None, :] if a.ndim == 1 else g2
        ga = gb = None
        if self.needs_input_grad[0]:
            ga = matmul_kernels.matmul(g2, b2.swapaxes(-1, -2))
            ga = ga[..., 0, :] if a.ndim == 1 else ga
        if self.needs_input_grad[1]:
            gb = matmul_kernels.matmul(a2.swapaxes(-1, -2), g2)
            gb = gb[..., 0] if b.ndim == 1 else gb
        return ga, gb


def matmul(input, other):
    """``input @ other`` with numpy.matmul's rules: batched, broadcast leading dims, 1-D operands promoted. Both
    operands must be tensors of one dtype (as in PyTorch: no silent promotion of a whole product)."""
    input = Tensor._make(input) if isinstance(input, np.ndarray) else input
    other = Tensor._make(other) if isinstance(other, np.ndarray) else other
    if not isinstance(input, Tensor) or not isinstance(other, Tensor):
        raise TypeError(f"matmul needs two tensors, got {type(input).__name__} and {type(other).__name__}")
    if input.dtype != other.dtype:
        raise TypeError(f"matmul: the operands must share a dtype, got {input.dtype} and {other.dtype}")
    if input.ndim == 0 or other.ndim == 0:
        raise ValueError(f"matmul needs operands of at least one dimension, got shapes {input.shape} and {other.shape}")
    return MatMul.apply(input, other)


def mm(input, mat2):
    """The product of two matrices (2-D only, as torch.mm)."""
    if input.ndim != 2 or mat2.ndim != 2:
        raise ValueError(f"mm needs two 2-D tensors, got shapes {input.shape} and {mat2.shape}")
    return matmul(input, mat2)


def bmm(input, mat2):
    """Batched product of (B, n, k) and (B, k, m) tensors (3-D only, same batch, as torch.bmm)."""
    if input.ndim != 3 or mat2.ndim != 3 or input.shape[0] != mat2.shape[0]:
        raise ValueError(f"bmm needs two 3-D tensors with the same batch size, got shapes {input.shape} and "
                         f"{mat2.shape}")
    return matmul(input, mat2)


def mv(input, vec):
    """The product of a matrix (n, m) and a vector (m,): a vector (n,)."""
    if not isinstance(input, Tensor) or input.ndim != 2:
        raise ValueError(f"mv: input must be a matrix (2-D tensor), got {_described(input)}")
    if not isinstance(vec, Tensor) or vec.ndim != 1:
        raise ValueError(f"mv: vec must be a 1-D tensor, got {_described(vec)}")
    if input.shape[1] != vec.shape[0]:
        raise ValueError(f"mv: size mismatch, a matrix of shape {input.shape} times a vector of length "
                         f"{vec.shape[0]}")
    return matmul(input, vec)


class IgnoredInput(Function):
    """``result`` as it is, ``ignored`` left out of it (its NaNs included) but given a zero gradient, as PyTorch
    gives the input of addmm with beta = 0."""

    def forward(self, result, ignored):
        self.ignored_shape = ignored.shape
        return result.copy()

    def backward(self, g):
        return g, array_module(g).zeros(self.ignored_shape, g.dtype)


def addmm(input, mat1, mat2, *, beta=1, alpha=1):
    """beta * input + alpha * (mat1 @ mat2), with input broadcast to the product's shape (n, m); beta and alpha are cast
    to the tensors' dtype (truncated to integers for integer ones). With beta = 0, input is ignored (its NaNs
    included), as in PyTorch."""
    for name, t in (("mat1", mat1), ("mat2", mat2)):
        if not isinstance(t, Tensor) or t.ndim != 2:
            raise ValueError(f"addmm: {name} must be a matrix (2-D tensor), got {_described(t)}")
    if not isinstance(input, Tensor):
        raise TypeError(f"addmm: input must be a Tensor, got {type(input).__name__}")
    if input.dtype != mat1.dtype:
        raise TypeError(f"addmm: input and the matrices must share a dtype, got {input.dtype} and {mat1.dtype}")
    product = mm(mat1, mat2)
    shape = product.shape
    try:
        if np.broadcast_shapes(input.shape, shape) != shape:
            raise ValueError
    except ValueError:
        raise ValueError(f"addmm: input of shape {input.shape} does not broadcast to the product's shape "
                         f"{shape}") from None
    for name, value in (("beta", beta), ("alpha", alpha)):
        if not isinstance(value, (numbers.Real, np.integer, np.floating)) or isinstance(value, (bool, np.bool_)):
            raise TypeError(f"addmm: {name} must be a real number, got {type(value).__name__} {value!r}")
    # integers for integer matrices, as PyTorch
    beta, alpha = _as_number(beta, input.dtype), _as_number(alpha, input.dtype)
    scaled = product if alpha == 1 else mul(product, alpha)
    if beta == 0:
        return IgnoredInput.apply(scaled, input) if input.requires_grad else scaled
    return add(scaled, input if beta == 1 else mul(input, beta))


def dot(input, tensor):
    """The inner product of two 1-D tensors of one dtype and length (a 0-d tensor)."""
    for name, t in (("input", input), ("tensor", tensor)):
        if not isinstance(t, Tensor) or t.ndim != 1:
            raise ValueError(f"dot: {name} must be a 1-D tensor, got {_described(t)}")
    if input.dtype != tensor.dtype:
        raise TypeError(f"dot: the tensors must share a dtype, got {input.dtype} and {tensor.dtype}")
    if input.shape != tensor.shape:
        raise ValueError(f"dot: the tensors must have the same length, got {input.shape[0]} and {tensor.shape[0]}")
    return matmul(input, tensor)


def outer(input, vec2):
    """The outer product of two 1-D tensors: out[i, j] = input[i] * vec2[j] (the dtypes promoted as for *)."""
    for name, t in (("input", input), ("vec2", vec2)):
        if not isinstance(t, Tensor) or t.ndim != 1:
            raise ValueError(f"outer: {name} must be a 1-D tensor, got {_described(t)}")
    return mul(input.reshape(-1, 1), vec2.reshape(1, -1))


def _described(value) -> str:
    return f"shape {value.shape}" if isinstance(value, Tensor) else type(value).__name__


# ---- einsum ---------------------------------------------------------------------------------------------
class Einsum(Function):
    """The array module's einsum over explicit subscripts (one per dim, sizes agreeing). The gradient of each
    operand is an einsum too: of the output's gradient and the other operands, onto the operand's subscripts.
    A label repeated within the operand (a diagonal) gets a fresh label tied to it by an identity matrix; a
    label summed in that operand alone gets a vector of ones, which spreads the gradient along it."""

    def forward(self, *arrays, terms, output):
        self.arrays, self.terms, self.out_term = arrays, terms, output
        return array_module(arrays[0]).einsum(",".join(terms) + "->" + output, *arrays)

    def backward(self, g):
        xp = array_module(g)
        used = set("".join(self.terms) + self.out_term)
        fresh = iter(c for c in string.ascii_letters if c not in used)
        grads = []
        for i, (array, term) in enumerate(zip(self.arrays, self.terms)):
            if not self.needs_input_grad[i]:
                grads.append(None)
                continue
            factors, subscripts = [g], [self.out_term]
            for j, (other, other_term) in enumerate(zip(self.arrays, self.terms)):
                if j != i:
                    factors.append(other)
                    subscripts.append(other_term)
            elsewhere, target = "".join(subscripts), ""
            for label, size in zip(term, array.shape):
                if label in target:  # a diagonal
                    label_again = next(fresh)
                    factors.append(xp.eye(size, dtype=g.dtype))
                    subscripts.append(label + label_again)
                    target += label_again
                    continue
                if label not in elsewhere:
                    factors.append(xp.ones(size, dtype=g.dtype))
                    subscripts.append(label)
                target += label
            grads.append(xp.einsum(",".join(subscripts) + "->" + target, *factors))
        return tuple(grads)


def _einsum_subscripts(equation: str, operands) -> tuple[list, str]:
    """The subscripts of each operand and of the output, with an ellipsis spelled out as unused letters (an
    operand with fewer dims under it takes the last ones) and the implicit output (no "->": the labels seen
    once, in alphabetical order, after the ellipsis dims) made explicit."""
    equation = equation.replace(" ", "")
    inputs, arrow, output = equation.partition("->")
    for position, char in enumerate(equation):
        if char not in string.ascii_letters and char not in ",.->":
            raise ValueError(f"einsum: invalid subscript {char!r} at index {position} of the equation "
                             f"{equation!r}; subscripts must be letters a-z or A-Z")
    terms = inputs.split(",")
    if len(terms) != len(operands):
        raise ValueError(f"einsum: the equation {equation!r} names {len(terms)} operand(s), got {len(operands)}")
    ellipsis_dims = []
    for i, (term, t) in enumerate(zip(terms, operands)):
        explicit = len(term.replace("...", ""))
        if term.count("...") > 1 or "." in term.replace("...", "", 1):
            raise ValueError(f"einsum: operand {i}'s subscripts {term!r} hold a '.' outside one '...'")
        if ("..." in term and t.ndim < explicit) or ("..." not in term and t.ndim != explicit):
            raise ValueError(f"einsum: the subscripts {term!r} name {explicit} dims, but operand {i} has "
                             f"{t.ndim} (shape {t.shape})" + ("" if "..." in term else " and no ellipsis was given"))
        ellipsis_dims.append(t.ndim - explicit)
    spare = [c for c in string.ascii_letters if c not in equation]
    ellipsis = "".join(spare[:max(ellipsis_dims, default=0)])
    terms = [term.replace("...", ellipsis[len(ellipsis) - n:]) for term, n in zip(terms, ellipsis_dims)]
    if not arrow:
        counts = collections.Counter("".join(terms))
        return terms, ellipsis + "".join(sorted(c for c in counts if counts[c] == 1 and c not in ellipsis))
    if output.count("...") > 1 or "." in output.replace("...", "", 1):
        raise ValueError(f"einsum: the output subscripts {output!r} hold a '.' outside one '...'")
    output = output.replace("...", ellipsis)
    for label in output:
        if output.count(label) > 1:
            raise ValueError(f"einsum: output subscript {label} appears more than once in the output")
        if label not in "".join(terms):
            raise ValueError(f"einsum: output subscript {label} does not appear in any input operand")
    return terms, output


def einsum(equation: str, *operands):
    """Einstein summation, as PyTorch's ``einsum("ij,jk->ik", a, b)`` (or with the operands in one list):
    explicit or implicit output, ``...`` for broadcast dims, repeated labels for diagonals (of equal sizes); a
    dim of size 1 broadcasts against its label's size in another operand. The operands must share a dtype."""
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    if not isinstance(equation, str) or not operands:
        raise TypeError("einsum takes an equation string and at least one tensor operand")
    for i, t in enumerate(operands):
        if not isinstance(t, Tensor):
            raise TypeError(f"einsum: operand {i} must be a Tensor, got {type(t).__name__}")
        if t.dtype != operands[0].dtype:
            raise TypeError(f"einsum: the operands must share a dtype, got {operands[0].dtype} and {t.dtype} "
                            f"(operand {i})")
    terms, output = _einsum_subscripts(equation, operands)
    sizes = {}
    for i, (term, t) in enumerate(zip(terms, operands)):
        own = {}  # a label repeated within one operand (a diagonal) needs equal sizes: no broadcasting there
        for label, size in zip(term, t.shape):
            if own.setdefault(label, size) != size:
                raise ValueError(f"einsum: subscript {label} is repeated for operand {i} but its sizes differ, "
                                 f"{own[label]} != {size} (shape {t.shape})")
            if sizes.get(label, 1) not in (1, size) and size != 1:
                raise ValueError(f"einsum: subscript {label} has size {size} in operand {i}, which does not "
                                 f"broadcast with its size {sizes[label]} elsewhere")
            sizes[label] = size if sizes.get(label, 1) == 1 else sizes[label]
    targets = [tuple(sizes[label] for label in term) for term in terms]
    operands = [t if t.shape == target else t.expand(*target) for t, target in zip(operands, targets)]
    return Einsum.apply(*operands, terms=terms, output=output)


# ---- triangles and diagonals ----------------------------------------------------------------------------
class Triangle(Function):
    """The lower (tril) or upper (triu) triangle of the last two dims, from diagonal ``k`` (> 0: above the
    main one), zeros elsewhere; the gradient keeps the same triangle."""

    def forward(self, x, k, upper):
        self.k, self.upper = k, upper
        return self._keep(x)

    def _keep(self, a):
        xp = array_module(a)
        return (xp.triu if self.upper else xp.tril)(a, self.k)

    def backward(self, g):
        return self._keep(g)


def _triangle(x, diagonal, upper):
    name = "triu" if upper else "tril"
    if x.ndim < 2:
        raise ValueError(f"{name}: input must have at least 2 dimensions, got shape {x.shape}")
    if not isinstance(diagonal, (int, np.integer)) or isinstance(diagonal, bool):
        raise TypeError(f"{name}: diagonal must be an int, got {diagonal!r}")
    return Triangle.apply(x, int(diagonal), upper)


def tril(input, diagonal=0):
    """The lower triangle of the last two dims: elements on and below diagonal ``diagonal``, zeros above."""
    return _triangle(input, diagonal, False)


def triu(input, diagonal=0):
    """The upper triangle of the last two dims: elements on and above diagonal ``diagonal``, zeros below."""
    return _triangle(input, diagonal, True)


class Diag(Function):
    """A vector placed on a diagonal of a square matrix, or a matrix's diagonal taken out: the elements at
    (rows[i], cols[i]). Each gradient is the other direction."""

    def forward(self, x, rows, cols, size):
        self.shape, self.rows, self.cols = x.shape, rows, cols
        if x.ndim == 2:
            return x[rows, cols]
        out = array_module(x).zeros((size, size), dtype=x.dtype)
        out[rows, cols] = x
        return out

    def backward(self, g):
        if len(self.shape) == 1:
            return g[self.rows, self.cols], None, None, None
        gx = array_module(g).zeros(self.shape, dtype=g.dtype)
        gx[self.rows, self.cols] = g
        return gx, None, None, None


def diag(input, diagonal=0):
    """For a 1-D tensor, the square matrix with it on diagonal ``diagonal`` (> 0: above the main one); for a
    2-D tensor, that diagonal of it as a 1-D tensor."""
    if input.ndim not in (1, 2):
        raise ValueError(f"diag: input must be 1-D or 2-D, got shape {input.shape}")
    if not isinstance(diagonal, (int, np.integer)) or isinstance(diagonal, bool):
        raise TypeError(f"diag: diagonal must be an int, got {diagonal!r}")
    k = int(diagonal)
    first_row, first_col = max(-k, 0), max(k, 0)
    length = input.shape[0] if input.ndim == 1 else max(0, min(input.shape[0] - first_row, input.shape[1] - first_col))
    steps = array_module(input.array).arange(length)
    return Diag.apply(input, steps + first_row, steps + first_col, length + abs(k))


class Diagonal(Function):
    """The diagonal ``offset`` of the matrices in dims ``axis1`` and ``axis2`` of x (those dims removed, the
    diagonal appended as the last one), as a view of x's memory: writes through it change x, as in PyTorch."""

    returns_view = True

    def forward(self, x, offset, axis1, axis2):
        self.shape, self.where = x.shape, (offset, axis1, axis2)
        return _diagonal_view(x, offset, axis1, axis2)

    def backward(self, g):
        gx = array_module(g).zeros(self.shape, dtype=g.dtype)
        _diagonal_view(gx, *self.where)[...] = g
        return gx, None, None, None


def _diagonal_view(array, offset, axis1, axis2):
    """The diagonal of ``array`` as a writable view: CuPy's own, or on NumPy (whose diagonal is read-only) the
    elements from the diagonal's first one on, stride(axis1) + stride(axis2) bytes apart."""
    if not isinstance(array, np.ndarray):
        return array.diagonal(offset, axis1, axis2)
    first = {axis1: max(-offset, 0), axis2: max(offset, 0)}
    length = max(0, min(array.shape[axis1] - first[axis1], array.shape[axis2] - first[axis2]))
    others = [i for i in range(array.ndim) if i not in first]
    start = array[tuple(slice(first.get(i, 0), None) for i in range(array.ndim))]
    shape = tuple(array.shape[i] for i in others) + (length,)
    strides = tuple(array.strides[i] for i in others) + (array.strides[axis1] + array.strides[axis2],)
    return _as_strided(start, shape, strides)


def diagonal(input, offset=0, dim1=0, dim2=1):
    """The diagonal ``offset`` (> 0: above the main one) of the matrices that dims ``dim1`` and ``dim2`` hold:
    those two dims removed and the diagonal appended as the last one, as a view (writes through it change
    ``input``), as in PyTorch."""
    if not isinstance(input, Tensor):
        raise TypeError(f"diagonal: input must be a Tensor, got {type(input).__name__}")
    if not isinstance(offset, (int, np.integer)) or isinstance(offset, bool):
        raise TypeError(f"diagonal: offset must be an int, got {offset!r}")
    axes = []
    for name, dim in (("dim1", dim1), ("dim2", dim2)):
        if not isinstance(dim, (int, np.integer)) or isinstance(dim, bool):
            raise TypeError(f"diagonal: {name} must be an int, got {dim!r}")
        if not -input.ndim <= dim < input.ndim:
            raise IndexError(f"diagonal: {name}={dim} is out of range for a tensor of {input.ndim} dimensions")
        axes.append(int(dim) % input.ndim)
    if axes[0] == axes[1]:
        raise ValueError(f"diagonal: dim1 and dim2 must differ, got {dim1} and {dim2}")
    return Diagonal.apply(input, int(offset), axes[0], axes[1])


def trace(input):
    """The sum of a matrix's main diagonal; integer and bool matrices sum in int64, as in PyTorch."""
    if input.ndim != 2:
        raise ValueError(f"trace: input must be a matrix (2-D), got shape {input.shape}")
    if input.dtype.kind in "biu":
        input = input.to(int64)
    return diag(input).sum()
