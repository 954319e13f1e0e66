"""Elementwise ops with NumPy broadcasting. Each backward returns gradients of the broadcast shape; the
engine sums them down to each input's shape."""

from __future__ import annotations

import math
import numbers

import numpy as np

from kernels import elementwise as elementwise_kernels
from kernels.activation import activation_backward
from tensorlib.autograd import Function
from tensorlib.device import array_device, array_module, move
from tensorlib.tensor import Tensor, get_default_dtype


def _operands(a, b):
    """Wrap arrays as tensors; a float scalar with an integer tensor promotes the tensor to the default
    float dtype (PyTorch's rule), whereas NumPy would pick float64."""
    a = Tensor._make(a) if isinstance(a, np.ndarray) else a
    b = Tensor._make(b) if isinstance(b, np.ndarray) else b
    if not isinstance(a, Tensor) and not isinstance(b, Tensor):
        raise TypeError(f"expected at least one Tensor operand, got {type(a).__name__} and {type(b).__name__}")
    for scalar, other in ((a, b), (b, a)):
        if isinstance(scalar, float) and isinstance(other, Tensor) and other.dtype.kind in "iub":
            promoted = other.to(get_default_dtype())
            return (promoted, b) if other is a else (a, promoted)
    return a, b


class Add(Function):
    def forward(self, a, b):
        return a + b

    def backward(self, g):
        return g, g


class Sub(Function):
    def forward(self, a, b):
        return a - b

    def backward(self, g):
        return g, -g


class Mul(Function):
    def forward(self, a, b):
        self.a, self.b = a, b
        return a * b

    def backward(self, g):
        return (g * self.b if self.needs_input_grad[0] else None,
                g * self.a if self.needs_input_grad[1] else None)


class Div(Function):
    def forward(self, a, b):
        self.a, self.b = a, b
        out = a / b
        if out.dtype == np.float64 and _is_integral(a) and _is_integral(b):
            out = out.astype(get_default_dtype())
        return out

    def backward(self, g):
        ga = g / self.b if self.needs_input_grad[0] else None
        gb = -g * self.a / (self.b * self.b) if self.needs_input_grad[1] else None
        return ga, gb


def _is_integral(value) -> bool:
    if isinstance(value, numbers.Number):
        return isinstance(value, numbers.Integral)
    return value.dtype.kind in "iub"


class Pow(Function):
    def forward(self, base, exponent):
        self.base, self.exponent = base, exponent
        self.out = base**exponent
        return self.out

    def backward(self, g):
        xp = array_module(g)
        gb = ge = None
        if self.needs_input_grad[0]:
            gb = g * self.exponent * self.base ** (self.exponent - 1)
        if self.needs_input_grad[1]:
            # d(b^e)/de = b^e * log(b); zero where b^e is zero (b = 0, e > 0) instead of 0 * -inf. A number
            # base (2 ** t) takes its log on the host: cupy.where needs an array condition
            if isinstance(self.base, numbers.Number):
                log_base = math.log(self.base) if self.base > 0 else 0.0
            else:
                log_base = xp.log(xp.where(self.base > 0, self.base, 1))
            ge = g * self.out * log_base
        return gb, ge


class Neg(Function):
    def forward(self, x):
        return -x

    def backward(self, g):
        return -g


class Exp(Function):
    def forward(self, x):
        self.out = array_module(x).exp(x)
        return self.out

    def backward(self, g):
        return g * self.out


class Log(Function):
    def forward(self, x):
        self.x = x
        return array_module(x).log(x)

    def backward(self, g):
        return g / self.x


class Sqrt(Function):
    def forward(self, x):
        self.out = array_module(x).sqrt(x)
        return self.out

    def backward(self, g):
        return g / (2 * self.out)


class Abs(Function):
    def forward(self, x):
        self.x = x
        return array_module(x).abs(x)

    def backward(self, g):
        return g * array_module(g).sign(self.x)


class Tanh(Function):
    def forward(self, x):
        self.out = array_module(x).tanh(x)
        return self.out

    def backward(self, g):
        return activation_backward("tanh", g, self.out)


class Sigmoid(Function):
    def forward(self, x):
        xp = array_module(x)
        # exp of a negative argument only: no overflow for large |x|
        e = xp.exp(-xp.abs(x))
        self.out = xp.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype, copy=False)
        return self.out

    def backward(self, g):
        return activation_backward("sigmoid", g, self.out)


def _erf_kernel():
    """math.erf vectorised by Numba (NumPy has no erf); CuPy arrays use cupyx's."""
    global _erf_numpy
    if _erf_numpy is None:
        import math

        import numba

        @numba.vectorize(["float32(float32)", "float64(float64)"], cache=True)
        def erf(value):
            return math.erf(value)

        _erf_numpy = erf
    return _erf_numpy


_erf_numpy = None


class Erf(Function):
    def forward(self, x):
        self.x = x
        if isinstance(x, np.ndarray):  # NumPy, or a simulated device array
            return _erf_kernel()(x)
        import cupyx.scipy.special

        return cupyx.scipy.special.erf(x)

    def backward(self, g):
        xp = array_module(g)
        return g * (2 / np.sqrt(np.pi)) * xp.exp(-self.x * self.x)


class Relu(Function):
    def forward(self, x):
        # the output is saved, not a mask: out <= 0 exactly where x <= 0 (NaN stays NaN and, as in PyTorch,
        # passes its gradient), and the next op keeps it alive anyway
        out = elementwise_kernels.relu(x)
        self.out = array_module(x).maximum(x, 0) if out is None else out
        return self.out

    def backward(self, g):
        return activation_backward("relu", g, self.out)


class Clamp(Function):
    def forward(self, x, low, high):
        xp = array_module(x)
        self.inside = xp.ones(x.shape, dtype=bool)
        if low is not None:
            self.inside &= x >= low
        if high is not None:
            self.inside &= x <= high
        return xp.clip(x, low, high).astype(x.dtype, copy=False)

    def backward(self, g):
        return g * self.inside, None, None


class Maximum(Function):
    """Elementwise max; on ties the gradient is split evenly between the two inputs, as in PyTorch."""

    def forward(self, a, b):
        self.a, self.b = a, b
        return array_module(a).maximum(a, b)

    def backward(self, g):
        share = (self.a > self.b) + 0.5 * (self.a == self.b)
        return g * share, g * (1 - share)


class Minimum(Function):
    def forward(self, a, b):
        self.a, self.b = a, b
        return array_module(a).minimum(a, b)

    def backward(self, g):
        share = (self.a < self.b) + 0.5 * (self.a == self.b)
        return g * share, g * (1 - share)


class Where(Function):
    def forward(self, condition, a, b):
        self.condition = condition
        return array_module(condition).where(condition, a, b)

    def backward(self, g):
        xp = array_module(g)
        return None, xp.where(self.condition, g, 0), xp.where(self.condition, 0, g)


def add(a, b):
    return Add.apply(*_operands(a, b))


def sub(a, b):
    return Sub.apply(*_operands(a, b))


def mul(a, b):
    return Mul.apply(*_operands(a, b))


def div(a, b):
    return Div.apply(*_operands(a, b))


def pow(base, exponent):
    return Pow.apply(*_operands(base, exponent))


def neg(x):
    return Neg.apply(x)


def exp(x):
    return Exp.apply(x)


def log(x):
    return Log.apply(x)


def sqrt(x):
    return Sqrt.apply(x)


def abs(x):
    return Abs.apply(x)


def tanh(x):
    return Tanh.apply(x)


def sigmoid(x):
    return Sigmoid.apply(x)


def erf(x):
    if x.dtype.kind != "f":
        raise TypeError(f"erf needs a floating-point tensor, got dtype {x.dtype}")
    return Erf.apply(x)


def relu(x):
    return Relu.apply(x)


def clamp(x, min=None, max=None):
    if min is None and max is None:
        raise ValueError("clamp needs at least one of min and max")
    if isinstance(min, Tensor) or isinstance(max, Tensor):
        if min is not None:
            x = maximum(x, min)
        return minimum(x, max) if max is not None else x
    return Clamp.apply(x, min, max)


def maximum(a, b):
    return Maximum.apply(*_operands(a, b))


def minimum(a, b):
    return Minimum.apply(*_operands(a, b))


def where(condition, a, b):
    """``a`` where ``condition`` holds, else ``b`` (differentiable in ``a`` and ``b``). A condition that is not
    a Tensor (a bool, list or NumPy array) is made on the operands' device; a Tensor condition must be on it."""
    a, b = _operands(a, b)
    if not isinstance(condition, Tensor):
        device = (a if isinstance(a, Tensor) else b).device
        if array_device(condition) == "cpu":  # a bool, a list or a NumPy array (a device array stays as it is)
            condition = np.asarray(condition, dtype=bool)
        condition = Tensor._make(move(condition, device))
    if condition.dtype != np.bool_:
        condition = Tensor._make(array_module(condition.data).asarray(condition.data, dtype=bool))
    return Where.apply(condition, a, b)


_COMPARISONS = {"eq": "equal", "ne": "not_equal", "lt": "less", "le": "less_equal", "gt": "greater",
                "ge": "greater_equal"}


def compare(kind, a, b):
    """Elementwise comparison; a bool tensor that records no graph."""
    raw_a = a.data if isinstance(a, Tensor) else a
    raw_b = b.data if isinstance(b, Tensor) else b
    xp = array_module(raw_a if isinstance(a, Tensor) else raw_b)
    return Tensor._make(getattr(xp, _COMPARISONS[kind])(raw_a, raw_b))


def logical(kind, a, b):
    raw_a = a.data if isinstance(a, Tensor) else a
    raw_b = b.data if isinstance(b, Tensor) else b
    xp = array_module(raw_a if isinstance(a, Tensor) else raw_b)
    op = {"and": xp.bitwise_and, "or": xp.bitwise_or, "xor": xp.bitwise_xor}[kind]
    return Tensor._make(op(raw_a, raw_b))


def logical_not(x):
    xp = array_module(x.data)
    return Tensor._make(xp.logical_not(x.data) if x.dtype == np.bool_ else xp.invert(x.data))
