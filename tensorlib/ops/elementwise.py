"""Elementwise ops with NumPy broadcasting. Each backward returns gradients of the broadcast shape; the
engine sums them down to each input's shape."""

from __future__ import annotations

import builtins
import functools
import math
import numbers

import numpy as np

from kernels import device_arrays
from kernels import elementwise as elementwise_kernels
from kernels.activation import activation_backward
from tensorlib.autograd import Function
from tensorlib.device import array_device, array_module, move
from tensorlib.tensor import Tensor, _require_tensor, bool_, get_default_dtype


def _category(dtype) -> int:
    return 0 if dtype.kind == "b" else 1 if dtype.kind in "iu" else 2


def _promote(a, b):
    """Two dtypes' common dtype: within a category NumPy's rule, across categories the higher one's dtype
    (PyTorch: int64 with float32 gives float32, where NumPy gives float64)."""
    if a is None or b is None:
        return a if b is None else b
    if _category(a) == _category(b):
        return np.promote_types(a, b)
    return a if _category(a) > _category(b) else b


def _combine(higher, lower):
    """PyTorch's rule for operands of lower priority (0-d tensors below dimensioned ones, numbers below both):
    they change the dtype only when their category is higher."""
    if higher is None:
        return lower
    if lower is None or _category(higher) >= _category(lower):
        return higher
    return _promote(higher, lower)


def _number_dtype(value) -> np.dtype:
    if isinstance(value, (bool, np.bool_)):
        return np.dtype(bool)
    if isinstance(value, (numbers.Integral, np.integer)):
        return np.dtype(np.int64)
    return get_default_dtype()


def result_type(*operands) -> np.dtype:
    """The dtype of an elementwise op's result, by PyTorch's promotion: dimensioned tensors decide; 0-d tensors
    and numbers count only where their category (bool < integer < float) is higher. So float32 tensors stay
    float32 with a float64 0-d tensor or any Python or NumPy number, and integer tensors with a float number
    become the default float dtype."""
    dimensioned = zero_dim = number = None
    for operand in operands:
        if isinstance(operand, Tensor):
            if operand.ndim:
                dimensioned = _promote(dimensioned, operand.dtype)
            else:
                zero_dim = _promote(zero_dim, operand.dtype)
        elif operand is not None:
            number = _promote(number, _number_dtype(operand))
    return _combine(dimensioned, _combine(zero_dim, number))


def _as_number(value, dtype):
    """A number as the Python number of ``dtype``'s category, which NumPy 2 combines without changing the
    array's dtype (a NumPy float64 scalar would make a float32 result float64). An integer outside an integer
    dtype's range wraps into it, as PyTorch casts it (uint8 + -1 adds 255); beyond int64 it raises
    OverflowError."""
    if dtype.kind == "b":
        return bool(value)
    if dtype.kind not in "iu":
        return float(value)
    value = int(value)
    low, high = _integer_range(dtype)
    if low <= value <= high:
        return value
    return np.array(value, dtype=np.int64).astype(dtype).item()


@functools.lru_cache(maxsize=None)
def _integer_range(dtype) -> tuple[int, int]:
    limits = np.iinfo(dtype)
    return int(limits.min), int(limits.max)


def _operands(*operands):
    """The operands of an elementwise op brought to their common dtype (``result_type``): arrays wrapped as
    tensors, tensors cast (differentiably), numbers as Python numbers of that category."""
    first = operands[0]
    if isinstance(first, Tensor) and first.dtype.kind == "f":  # fast path: float tensors of one dtype, Python numbers
        dtype = first.dtype
        if all(type(o) in (float, int) or (isinstance(o, Tensor) and o.dtype == dtype) for o in operands[1:]):
            return operands
    operands = [Tensor._make(o) if isinstance(o, np.ndarray) else o for o in operands]
    if not any(isinstance(o, Tensor) for o in operands):
        raise TypeError(
            "expected at least one Tensor operand, got " + " and ".join(type(o).__name__ for o in operands)
        )
    dtype = result_type(*operands)
    out = []
    for o in operands:
        if o is None:  # clamp's missing bound
            out.append(o)
        elif isinstance(o, Tensor):
            out.append(o if o.dtype == dtype else o.to(dtype))
        elif isinstance(o, (numbers.Number, np.generic)):
            out.append(_as_number(o, dtype))
        else:
            raise TypeError(f"expected a Tensor or a number, got {type(o).__name__}")
    return out


def _floating(x):
    """An integer or bool tensor as the default float dtype (PyTorch's rule for exp, log, sigmoid, ...)."""
    return x.to(get_default_dtype()) if x.dtype.kind != "f" else x


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
        # each gradient needs the other operand only: save just what backward will read
        self.a = a if self.needs_input_grad[1] else None
        self.b = b if self.needs_input_grad[0] else None
        return a * b

    def backward(self, g):
        return (g * self.b if self.needs_input_grad[0] else None,
                g * self.a if self.needs_input_grad[1] else None)


class Div(Function):
    def forward(self, a, b):
        self.a = a if self.needs_input_grad[1] else None
        self.b = b if any(self.needs_input_grad) else None
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
            # e * b^(e-1), and 0 where e = 0 (b^0 is constant; at b = 0 the formula would give 0 * inf)
            if isinstance(self.exponent, numbers.Number) and self.exponent == 0:
                gb = xp.zeros_like(g)
            else:
                with np.errstate(divide="ignore", invalid="ignore"):
                    gb = g * self.exponent * self.base ** (self.exponent - 1)
                if not isinstance(self.exponent, numbers.Number):
                    gb = xp.where(self.exponent == 0, 0, gb)
        if self.needs_input_grad[1]:
            # d(b^e)/de = b^e * log(b): 0 where b = 0 and e >= 0 (b^e is 0 or 1 there, instead of 0 * -inf),
            # NaN for a negative base (no real logarithm), as in PyTorch. A number base (2 ** t) takes its log
            # on the host: cupy.where needs an array condition
            if isinstance(self.base, numbers.Number):
                log_base = math.log(self.base) if self.base > 0 else -math.inf if self.base == 0 else math.nan
                with np.errstate(invalid="ignore"):  # 0 * -inf where 0^e = 0: masked just below
                    ge = g * self.out * log_base
                if self.base == 0:
                    ge = xp.where(self.exponent >= 0, 0, ge)
            else:
                with np.errstate(divide="ignore", invalid="ignore"):
                    ge = g * self.out * xp.log(self.base)
                ge = xp.where((self.base == 0) & (self.exponent >= 0), 0, ge)
        return gb, ge


class Clone(Function):
    def forward(self, x):
        return x.copy()

    def backward(self, g):
        return g


def clone(input):
    """A copy of the data that gradients flow through."""
    return Clone.apply(input)


class FloorDivide(Function):
    def forward(self, a, b):
        return array_module(a if not isinstance(a, numbers.Number) else b).floor_divide(a, b)

    def backward(self, g):
        raise RuntimeError("floor division (//) has no gradient: it is piecewise constant; detach() its inputs")


class Remainder(Function):
    """a - floor(a / b) * b, with the sign of b (Python's %, PyTorch's remainder)."""

    def forward(self, a, b):
        xp = array_module(a if not isinstance(a, numbers.Number) else b)
        self.a, self.b = a, b
        return xp.remainder(a, b)

    def backward(self, g):
        xp = array_module(g)
        gb = -g * xp.floor_divide(self.a, self.b) if self.needs_input_grad[1] else None
        return g, gb


def _check_integer_divisor(a, b, op):
    """Integer division by zero raises, as in PyTorch (NumPy would warn and return 0). It reads the divisor, so
    it is skipped while a CUDA graph captures."""
    if not isinstance(b, Tensor):
        if b == 0 and a.dtype.kind in "iub":
            raise ZeroDivisionError(f"{op}: integer division by zero")
        return
    if b.dtype.kind in "iub" and not device_arrays.capturing(b.array) and bool((b.array == 0).any()):
        raise ZeroDivisionError(f"{op}: integer division by zero (the divisor tensor holds a 0)")


def floor_divide(input, other):
    input, other = _operands(input, other)
    _refuse_bool("floor_divide (//)", _dtype_of(input, other))
    _check_integer_divisor(input, other, "floor_divide (//)")
    return FloorDivide.apply(input, other)


def remainder(input, other):
    input, other = _operands(input, other)
    _refuse_bool("remainder (%)", _dtype_of(input, other))
    _check_integer_divisor(input, other, "remainder (%)")
    return Remainder.apply(input, other)


class Fmod(Function):
    """a - trunc(a / b) * b, with the sign of a (C's fmod); the gradient of b is -trunc(a / b)."""

    def forward(self, a, b):
        xp = array_module(a if not isinstance(a, numbers.Number) else b)
        self.a, self.b = a, b
        with np.errstate(invalid="ignore"):  # fmod(x, 0) of floats is NaN, as in PyTorch
            return xp.fmod(a, b)

    def backward(self, g):
        xp = array_module(g)
        gb = None
        if self.needs_input_grad[1]:
            with np.errstate(divide="ignore", invalid="ignore"):
                gb = -g * xp.trunc(xp.true_divide(self.a, self.b))
        return g, gb


def fmod(input, other):
    """The remainder of input / other with the sign of input (C's fmod; ``remainder`` takes other's sign)."""
    input, other = _operands(input, other)
    _refuse_bool("fmod", _dtype_of(input, other))
    _check_integer_divisor(input, other, "fmod")
    return Fmod.apply(input, other)


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


class Expm1(Function):
    """exp(x) - 1, exact for small x (where exp(x) - 1 loses the digits to rounding)."""

    def forward(self, x):
        self.out = array_module(x).expm1(x)
        return self.out

    def backward(self, g):
        return g * (self.out + 1)


class Log1p(Function):
    """log(1 + x), exact for small x."""

    def forward(self, x):
        self.x = x
        return array_module(x).log1p(x)

    def backward(self, g):
        return g / (1 + self.x)


class Log(Function):
    def forward(self, x):
        self.x = x
        return array_module(x).log(x)

    def backward(self, g):
        return g / self.x


class LogBase(Function):
    """The logarithm to base 2 or 10: log(x) / log(base), of derivative 1 / (x log(base)). log of 0 is -inf
    and of a negative number NaN, as in PyTorch."""

    def forward(self, x, base):
        self.x, self.log_base = x, math.log(base)
        with np.errstate(divide="ignore", invalid="ignore"):
            return (array_module(x).log2 if base == 2 else array_module(x).log10)(x)

    def backward(self, g):
        with np.errstate(divide="ignore", invalid="ignore"):
            return g / (self.x * self.log_base), None


class Atan2(Function):
    """The angle of the point (b, a) in (-pi, pi]; d/da = b / (a^2 + b^2), d/db = -a / (a^2 + b^2)."""

    def forward(self, a, b):
        self.a, self.b = a, b
        return array_module(a).arctan2(a, b)

    def backward(self, g):
        with np.errstate(divide="ignore", invalid="ignore"):  # 0 / 0 at the origin: NaN, as in PyTorch
            scale = g / (self.a * self.a + self.b * self.b)
        return scale * self.b, -scale * self.a


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


def stable_sigmoid(x):
    """sigmoid of a raw array, in its dtype, from exp(-|x|): exp of a negative argument only, no overflow."""
    xp = array_module(x)
    e = xp.exp(-xp.abs(x))
    return xp.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype, copy=False)


class Sigmoid(Function):
    def forward(self, x):
        self.out = stable_sigmoid(x)
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


class Sin(Function):
    def forward(self, x):
        self.x = x
        with np.errstate(invalid="ignore"):  # sin(inf) is NaN, as in PyTorch
            return array_module(x).sin(x)

    def backward(self, g):
        return g * array_module(g).cos(self.x)


class Cos(Function):
    def forward(self, x):
        self.x = x
        with np.errstate(invalid="ignore"):
            return array_module(x).cos(x)

    def backward(self, g):
        return -g * array_module(g).sin(self.x)


class Reciprocal(Function):
    def forward(self, x):
        with np.errstate(divide="ignore"):  # 1 / 0 is inf, as in PyTorch
            self.out = 1 / x
        return self.out

    def backward(self, g):
        return -g * self.out * self.out


class Rsqrt(Function):
    """1 / sqrt(x); its derivative is -out^3 / 2."""

    def forward(self, x):
        with np.errstate(divide="ignore", invalid="ignore"):  # inf at 0 and NaN below, as in PyTorch
            self.out = 1 / array_module(x).sqrt(x)
        return self.out

    def backward(self, g):
        return -0.5 * g * self.out * self.out * self.out


class NanToNum(Function):
    """NaN, inf and -inf replaced by three numbers of x's dtype; the gradient passes where x is finite."""

    def forward(self, x, replacements):
        xp = array_module(x)
        self.finite = xp.isfinite(x)
        nan, posinf, neginf = replacements
        return xp.where(self.finite, x, xp.where(xp.isnan(x), nan, xp.where(x > 0, posinf, neginf)))

    def backward(self, g):
        return g * self.finite, None


def nan_to_num(input, nan=0.0, posinf=None, neginf=None):
    """``input`` with NaN replaced by ``nan``, inf by ``posinf`` and -inf by ``neginf`` (by default the largest and the
    lowest finite value of its dtype); a replacement beyond the dtype's range becomes inf, as its cast does.
    Integer and bool tensors have nothing to replace: a copy."""
    for name, value in (("nan", nan), ("posinf", posinf), ("neginf", neginf)):
        if value is not None and (not isinstance(value, (numbers.Real, np.generic)) or isinstance(value, np.bool_)):
            raise TypeError(f"nan_to_num: {name} must be a real number or None, got {type(value).__name__} {value!r}")
    if input.dtype.kind != "f":
        return clone(input)
    limits = np.finfo(input.dtype)
    with np.errstate(over="ignore"):  # a replacement beyond the dtype's range is inf
        replacements = tuple(input.dtype.type(limit if value is None else value)
                             for value, limit in ((nan, 0.0), (posinf, limits.max), (neginf, limits.min)))
    return NanToNum.apply(input, replacements)


class Stepwise(Function):
    """An op constant between its jumps (floor, ceil, round, trunc, sign): the gradient is 0, as in PyTorch.
    ``step`` computes it on the raw array."""

    def forward(self, x, step):
        return step(x)

    def backward(self, g):
        return array_module(g).zeros_like(g), None


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
    """min(max(x, low), high), with ``low`` and ``high`` numbers, tensors or None. The gradient goes to x where
    low <= x <= high, to low where x < low < high, and to high where max(x, low) > high (PyTorch's rule)."""

    def forward(self, x, low, high):
        xp = array_module(x)
        self.x, self.low, self.high = x, low, high
        out = x if low is None else xp.maximum(x, low)
        return out if high is None else xp.minimum(out, high)

    def backward(self, g):
        xp = array_module(g)
        x, low, high = self.x, self.low, self.high
        inside = xp.ones(x.shape, dtype=bool)
        if low is not None:
            inside &= x >= low
        if high is not None:
            inside &= x <= high
        g_low = g_high = None
        if self.needs_input_grad[1]:
            g_low = g * ((x < low) & (low < high) if high is not None else x < low)
        if self.needs_input_grad[2]:
            g_high = g * ((xp.maximum(x, low) if low is not None else x) > high)
        return g * inside, g_low, g_high


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
    def forward(self, condition, a, b, dtype):
        self.condition = condition
        out = array_module(condition).where(condition, a, b)
        return out if out.dtype == dtype else out.astype(dtype)  # where(c, 1.0, 0.0) makes float64

    def backward(self, g):
        xp = array_module(g)
        return None, xp.where(self.condition, g, 0), xp.where(self.condition, 0, g)


def _dtype_of(a, b) -> np.dtype:
    """The dtype of two operands already brought to their common dtype by ``_operands``."""
    return (a if isinstance(a, Tensor) else b).dtype


def _scaled(op, operands, alpha):
    """``operands`` at their common dtype with the second one times ``alpha`` (add's and sub's argument):
    a number of that dtype's category, as PyTorch checks it."""
    a, b = _operands(*operands)
    if type(alpha) is int and alpha == 1:  # the default: the common case stays cheap
        return a, b
    if not isinstance(alpha, (numbers.Number, np.generic)) or isinstance(alpha, complex):
        raise TypeError(f"{op}: alpha must be a real number, got {type(alpha).__name__} {alpha!r}")
    dtype = _dtype_of(a, b)
    if isinstance(alpha, (bool, np.bool_)) and dtype.kind != "b":
        raise TypeError(f"{op}: a bool alpha={alpha} is only supported for bool tensors, got dtype {dtype}")
    if dtype.kind in "biu" and not isinstance(alpha, (numbers.Integral, np.integer, np.bool_)):
        raise TypeError(f"{op}: alpha must be an integer for integer or bool tensors (dtype {dtype}), got {alpha!r}")
    alpha = _as_number(alpha, dtype)
    return a, (Mul.apply(b, alpha) if isinstance(b, Tensor) else b * alpha)


def add(input, other, *, alpha=1):
    """input + alpha * other (broadcast, PyTorch's promotion)."""
    return Add.apply(*_scaled("add", (input, other), alpha))


def _is_bool(value) -> bool:
    return value.array.dtype.kind == "b" if isinstance(value, Tensor) else isinstance(value, (bool, np.bool_))


def sub(input, other, *, alpha=1):
    """input - alpha * other. Bool operands are refused, as in PyTorch (``~`` inverts a mask, ``^`` is a bool
    difference)."""
    if _is_bool(input) or _is_bool(other):
        if _is_bool(input) and _is_bool(other):
            raise TypeError("sub (-) of two bools is not supported; use ^ or logical_xor() instead")
        raise TypeError("sub (-) with a bool tensor or a bool number is not supported; to invert a mask use ~ or "
                        "logical_not() instead")
    return Sub.apply(*_scaled("sub", (input, other), alpha))


def mul(input, other):
    return Mul.apply(*_operands(input, other))


subtract, multiply = sub, mul


class RoundedDiv(Function):
    """a / b rounded toward zero ("trunc") or down ("floor", Python's //); its gradient is 0, as PyTorch's."""

    def forward(self, a, b, mode):
        xp = array_module(a if not isinstance(a, numbers.Number) else b)
        if mode == "floor":
            with np.errstate(divide="ignore", invalid="ignore"):  # x / 0 is inf or NaN, as in PyTorch
                return xp.floor_divide(a, b)
        if _dtype_of_array(a, b).kind == "f":
            with np.errstate(divide="ignore", invalid="ignore"):
                return xp.trunc(xp.true_divide(a, b))
        quotient = xp.floor_divide(a, b)
        # floor and trunc differ by one where the quotient is negative and inexact
        return quotient + ((quotient < 0) & (quotient * b != a))

    def backward(self, g):
        zeros = array_module(g).zeros_like(g)
        return zeros, zeros, None


def _dtype_of_array(a, b) -> np.dtype:
    return (a if not isinstance(a, numbers.Number) else b).dtype


def div(input, other, *, rounding_mode=None):
    """input / other: the true quotient (integers give the default float dtype), or with ``rounding_mode`` "trunc" or
    "floor" the quotient rounded toward zero or down, in the operands' common dtype (integers stay integers;
    integer division by zero raises)."""
    if rounding_mode is None:
        return Div.apply(*_operands(input, other))
    if rounding_mode not in ("trunc", "floor"):
        raise ValueError(f"div: rounding_mode must be None, 'trunc' or 'floor', got {rounding_mode!r}")
    input, other = _operands(input, other)
    _refuse_bool(f"div with rounding_mode={rounding_mode!r}", _dtype_of(input, other))
    _check_integer_divisor(input, other, f"div (rounding_mode={rounding_mode!r})")
    return RoundedDiv.apply(input, other, rounding_mode)


def true_divide(input, other):
    """input / other, the true quotient (``div`` without a rounding mode)."""
    return Div.apply(*_operands(input, other))


divide = div


def _refuse_bool(op, dtype):
    if dtype == np.bool_:
        raise TypeError(f"{op} of bool operands is not supported; cast them to an integer or float dtype first")


def pow(input, exponent):
    input, exponent = _operands(input, exponent)
    _refuse_bool("pow (**)", _dtype_of(input, exponent))
    return Pow.apply(input, exponent)


def neg(input):
    if input.dtype == np.bool_:
        raise TypeError("neg (-) of a bool tensor is not supported; use ~ or logical_not() to invert a mask")
    return Neg.apply(input)


def exp(input):
    return Exp.apply(_floating(input))


def log(input):
    return Log.apply(_floating(input))


def expm1(input):
    return Expm1.apply(_floating(input))


def log2(input):
    return LogBase.apply(_floating(input), 2)


def log10(input):
    return LogBase.apply(_floating(input), 10)


def atan2(input, other):
    """The angle of the point (other, input) in radians, elementwise (broadcast); both operands are tensors, and
    integer ones give the default float dtype."""
    _two_tensors("atan2", input, other)
    input, other = _operands(input, other)
    return Atan2.apply(_floating(input), _floating(other))


def log1p(input):
    return Log1p.apply(_floating(input))


def sqrt(input):
    return Sqrt.apply(_floating(input))


def abs(input):
    return Abs.apply(input)


def tanh(input):
    return Tanh.apply(_floating(input))


def sigmoid(input):
    return Sigmoid.apply(_floating(input))


def erf(input):
    return Erf.apply(_floating(input))


def relu(input):
    return Relu.apply(input)


def sin(input):
    return Sin.apply(_floating(input))


def cos(input):
    return Cos.apply(_floating(input))


def reciprocal(input):
    return Reciprocal.apply(_floating(input))


def rsqrt(input):
    return Rsqrt.apply(_floating(input))


def square(input):
    """input ** 2; integer tensors stay integer and bool tensors become int64, as in PyTorch."""
    return pow(input, 2)


def _stepwise(x, name, step):
    """``step`` on a float tensor; an integer tensor is its own floor, ceil, round and trunc (a copy)."""
    if x.dtype == np.bool_:
        raise TypeError(f"{name} of a bool tensor is not supported")
    return x.clone() if x.dtype.kind in "iu" else Stepwise.apply(x, step)


def floor(input):
    return _stepwise(input, "floor", lambda a: array_module(a).floor(a))


def ceil(input):
    return _stepwise(input, "ceil", lambda a: array_module(a).ceil(a))


def trunc(input):
    return _stepwise(input, "trunc", lambda a: array_module(a).trunc(a))


def round(input, decimals=0):
    """To the nearest integer, halves to even (0.5 -> 0, 1.5 -> 2); with ``decimals``, to that many decimal
    places (negative: to tens, hundreds, ...)."""
    if not isinstance(decimals, (int, np.integer)) or isinstance(decimals, bool):
        raise TypeError(f"round: decimals must be an int, got {decimals!r}")
    if decimals and input.dtype.kind != "f":
        raise TypeError(f"round: decimals={decimals} needs a floating-point tensor, got dtype {input.dtype}")
    return _stepwise(input, "round", lambda a: array_module(a).round(a, int(decimals)))


def _sign(a):
    xp = array_module(a)
    return xp.where(xp.isnan(a), 0, xp.sign(a)).astype(a.dtype, copy=False)  # sign(NaN) is 0 in PyTorch


def sign(input):
    """-1, 0 or 1 by the sign of each element (0 for NaN); a bool tensor is its own sign."""
    return input.clone() if input.dtype == np.bool_ else Stepwise.apply(input, _sign)


def clamp(input, min=None, max=None):
    """input limited to [min, max]; either bound may be None, a number or a tensor (broadcast against input)."""
    if min is None and max is None:
        raise ValueError("clamp needs at least one of min and max")
    input, min, max = _operands(input, min, max)
    return Clamp.apply(input, min, max)


def maximum(input, other):
    return Maximum.apply(*_operands(input, other))


def minimum(input, other):
    return Minimum.apply(*_operands(input, other))


_MISSING = object()


def where(condition, input=_MISSING, other=_MISSING):
    """``input`` where ``condition`` holds, else ``other`` (differentiable in both). A Tensor condition is a bool
    (or uint8) tensor on the operands' device, as PyTorch requires; one that is not a Tensor (a bool, list or NumPy
    array) is made there.
    ``where(condition)`` alone is ``nonzero(condition, as_tuple=True)``: the indices where a Tensor condition
    holds."""
    if input is _MISSING and other is _MISSING:
        from tensorlib.ops.reduce import nonzero

        if not isinstance(condition, Tensor):  # PyTorch takes a Tensor only, here
            raise TypeError(f"where(condition): condition must be a Tensor, got {type(condition).__name__}")
        return nonzero(condition, as_tuple=True)
    if input is _MISSING or other is _MISSING:
        raise TypeError("where takes a condition alone or a condition and both operands, got one operand")
    if isinstance(condition, Tensor) and condition.dtype not in (np.bool_, np.uint8):
        raise TypeError(f"where: condition must be a bool tensor (or a uint8 one), got dtype {condition.dtype}")
    if not isinstance(input, Tensor) and not isinstance(other, Tensor):  # where(mask, 1.0, 0.0)
        if not isinstance(condition, Tensor):
            raise TypeError("where needs a Tensor condition or at least one Tensor operand")
        dtype = result_type(input, other)
        return Where.apply(condition.to(bool_) if condition.dtype != np.bool_ else condition,
                           _as_number(input, dtype), _as_number(other, dtype), dtype=dtype)
    input, other = _operands(input, other)
    if not isinstance(condition, Tensor):
        device = (input if isinstance(input, Tensor) else other).device
        if array_device(condition) == "cpu":  # a bool, a list or a NumPy array (a device array stays as it is)
            condition = np.asarray(condition, dtype=bool)
        condition = Tensor._make(move(condition, device))
    if condition.dtype != np.bool_:
        condition = Tensor._make(array_module(condition.array).asarray(condition.array, dtype=bool))
    return Where.apply(condition, input, other, dtype=(input if isinstance(input, Tensor) else other).dtype)


def masked_fill(input, mask, value):
    """``input`` with ``value`` (a number or a 0-d tensor, cast to input's dtype) where the bool ``mask``
    (broadcast against input) holds. Differentiable in input, and in a 0-d tensor ``value`` (the sum of the filled
    positions)."""
    if not isinstance(mask, Tensor) or mask.dtype != np.bool_:
        raise TypeError(f"masked_fill: mask must be a bool tensor, got {getattr(mask, 'dtype', type(mask).__name__)}")
    if isinstance(value, Tensor):
        if value.ndim != 0:
            raise ValueError(f"masked_fill: value must be a number or a 0-d tensor, got a tensor of shape {value.shape}")
        value = value.to(input.device, input.dtype)
    elif isinstance(value, (numbers.Number, np.generic)):
        value = _as_number(value, input.dtype)
    else:
        raise TypeError(f"masked_fill: value must be a number or a 0-d tensor, got {type(value).__name__}")
    return Where.apply(mask, value, input, dtype=input.dtype)


def clamp_min(input, min):
    return clamp(input, min, None)


def clamp_max(input, max):
    return clamp(input, None, max)


def _addc_operands(op, x, tensor1, tensor2, value):
    """The three tensors and ``value`` as a Python number of their result's dtype: PyTorch casts the value to
    it, so 0.5 is 0 for integer tensors (truncated toward zero, wrapping as a cast into unsigned dtypes does).
    ``value`` is a real number or a one-element tensor."""
    for name, t in (("input", x), ("tensor1", tensor1), ("tensor2", tensor2)):
        if not isinstance(t, Tensor):
            raise TypeError(f"{op}: {name} must be a Tensor, got {type(t).__name__}")
    dtype = result_type(x, tensor1, tensor2)
    if dtype == np.bool_:
        raise TypeError(f"{op} of bool tensors is not supported")
    if isinstance(value, Tensor):
        if value.numel() != 1:
            raise ValueError(f"{op}: value must be a number or a one-element tensor, got a tensor of shape "
                             f"{value.shape}")
        value = value.item()
    if not isinstance(value, (numbers.Real, np.bool_, np.integer, np.floating)):
        raise TypeError(f"{op}: value must be a real number, got {type(value).__name__} {value!r}")
    if dtype.kind == "f":
        return float(value)
    if not math.isfinite(value) or not -2**63 <= int(value) < 2**63:
        raise ValueError(f"{op}: value {value!r} cannot be converted to the integer dtype {dtype} of the tensors")
    return np.array(int(value), dtype=np.int64).astype(dtype).item()  # int() truncates toward zero


def addcmul(input, tensor1, tensor2, *, value=1):
    """input + value * tensor1 * tensor2 (broadcast), in that order of operations, as PyTorch computes it; ``value``
    is cast to the tensors' dtype first (an integer for integer tensors)."""
    value = _addc_operands("addcmul", input, tensor1, tensor2, value)
    return add(input, mul(mul(value, tensor1), tensor2) if value != 1 else mul(tensor1, tensor2))


def addcdiv(input, tensor1, tensor2, *, value=1):
    """input + value * tensor1 / tensor2 (broadcast); ``value`` is cast to the tensors' dtype first. Integer tensor1
    and tensor2 are refused, as in PyTorch: their quotient would be ambiguous between true and floor division."""
    if all(isinstance(t, Tensor) and t.dtype.kind in "biu" for t in (tensor1, tensor2)):
        raise TypeError(f"addcdiv: tensor1 and tensor2 are both integer tensors ({tensor1.dtype} and "
                        f"{tensor2.dtype}); cast one to a floating-point dtype for a true division")
    value = _addc_operands("addcdiv", input, tensor1, tensor2, value)
    return add(input, div(mul(value, tensor1) if value != 1 else tensor1, tensor2))


def lerp(input, end, weight):
    """start + weight * (end - start) with ``input`` the start, computed from the nearer end (exact at weight 0
    and 1, as PyTorch does). ``input`` and ``end`` are float tensors of one dtype; ``weight`` a number or a
    tensor."""
    for name, t in (("start", input), ("end", end)):
        if not isinstance(t, Tensor) or t.dtype.kind != "f":
            raise TypeError(f"lerp: {name} must be a floating-point tensor, got {getattr(t, 'dtype', type(t).__name__)}")
    if input.dtype != end.dtype:
        raise TypeError(f"lerp: start and end must share a dtype, got {input.dtype} and {end.dtype}")
    diff = end - input
    if isinstance(weight, Tensor):
        return where(abs(weight) < 0.5, input + weight * diff, end - diff * (1 - weight))
    if not isinstance(weight, (numbers.Real, np.generic)):
        raise TypeError(f"lerp: weight must be a number or a tensor, got {type(weight).__name__}")
    return input + weight * diff if builtins.abs(weight) < 0.5 else end - diff * (1 - weight)


def unrecorded(array) -> Tensor:
    """A result autograd does not track (a comparison, a mask, indices) as a tensor; NumPy's 0-d results,
    which are scalars, made arrays."""
    return Tensor._make(np.asarray(array) if isinstance(array, np.generic) else array)


_COMPARISONS = {"eq": "equal", "ne": "not_equal", "lt": "less", "le": "less_equal", "gt": "greater",
                "ge": "greater_equal"}


def _raw_operands(a, b):
    """(array module, common dtype, [raw a, raw b]): two operands (tensors, NumPy arrays, lists or numbers) as raw
    arrays and Python numbers of their common dtype (``result_type``); no graph is recorded."""
    a, b = (np.asarray(o) if isinstance(o, (list, tuple)) else o for o in (a, b))
    a, b = (Tensor._make(o) if isinstance(o, np.ndarray) else o for o in (a, b))
    for o in (a, b):
        if not isinstance(o, (Tensor, numbers.Number, np.generic)) or isinstance(o, complex):
            raise TypeError(f"expected a Tensor or a real number, got {type(o).__name__} {o!r}")
    if not isinstance(a, Tensor) and not isinstance(b, Tensor):
        raise TypeError(f"expected at least one Tensor operand, got {type(a).__name__} and {type(b).__name__}")
    dtype = result_type(a, b)
    raw = [_as_number(o, dtype) if not isinstance(o, Tensor) else o.array if o.dtype == dtype else o.array.astype(dtype)
           for o in (a, b)]
    return array_module(raw[0] if isinstance(a, Tensor) else raw[1]), dtype, raw


def compare(kind, a, b):
    """Elementwise comparison in the operands' common dtype (PyTorch's promotion: a float32 tensor compares
    with a float64 0-d tensor or a Python float in float32, and a uint8 tensor with -1 as with 255); a bool
    tensor that records no graph."""
    raw_a = a.array if isinstance(a, Tensor) else None
    if raw_a is not None and (  # the common cases, where NumPy compares in a's dtype already
        type(b) in (float, int) and raw_a.dtype.char in "fd" or isinstance(b, Tensor) and b.array.dtype is raw_a.dtype
    ):
        return unrecorded(getattr(array_module(raw_a), _COMPARISONS[kind])(raw_a, getattr(b, "array", b)))
    xp, _, (raw_a, raw_b) = _raw_operands(a, b)
    with np.errstate(over="ignore"):  # a number beyond float16's range compares as inf, as in PyTorch
        return unrecorded(getattr(xp, _COMPARISONS[kind])(raw_a, raw_b))


def eq(input, other):
    return compare("eq", input, other)


def ne(input, other):
    return compare("ne", input, other)


def lt(input, other):
    return compare("lt", input, other)


def le(input, other):
    return compare("le", input, other)


def gt(input, other):
    return compare("gt", input, other)


def ge(input, other):
    return compare("ge", input, other)


def isnan(input):
    return unrecorded(array_module(input.array).isnan(input.array))


def isinf(input):
    return unrecorded(array_module(input.array).isinf(input.array))


def isfinite(input):
    return unrecorded(array_module(input.array).isfinite(input.array))


def _two_tensors(op, a, b):
    if not isinstance(a, Tensor) or not isinstance(b, Tensor):
        raise TypeError(f"{op} takes two tensors, got {type(a).__name__} and {type(b).__name__}")
    if a.device != b.device:
        raise RuntimeError(f"{op}: expected both tensors on the same device, found {a.device} and {b.device}")


def isclose(input, other, rtol=1e-05, atol=1e-08, equal_nan=False):
    """|input - other| <= atol + rtol * |other| elementwise (broadcast), infinities close to themselves only; NaN
    close to NaN only with ``equal_nan``. Both tensors must share a dtype, as in PyTorch."""
    _two_tensors("isclose", input, other)
    if input.dtype != other.dtype:
        raise TypeError(f"isclose: the tensors must share a dtype, got {input.dtype} and {other.dtype}")
    for name, tolerance in (("rtol", rtol), ("atol", atol)):
        if tolerance < 0:
            raise ValueError(f"isclose: {name} must be >= 0, got {tolerance}")
    xp = array_module(input.array)
    return unrecorded(xp.isclose(input.array, other.array, rtol=rtol, atol=atol, equal_nan=equal_nan))


def allclose(input, other, rtol=1e-05, atol=1e-08, equal_nan=False) -> bool:
    """Whether every element of ``isclose(input, other, ...)`` holds."""
    return bool(isclose(input, other, rtol, atol, equal_nan).array.all())


def equal(input, other) -> bool:
    """Whether the tensors have the same shape and the same values (of any dtypes; NaN equals nothing)."""
    _two_tensors("equal", input, other)
    return input.shape == other.shape and bool((input.array == other.array).all())


# ---- bitwise and logical ops ------------------------------------------------------------------------------
def logical(kind, a, b):
    """The bitwise op ``kind`` ("and", "or", "xor": the operators &, |, ^) of integer or bool operands in their
    common dtype (bool & bool is bool, bool & 1 is int64, uint8 & -1 is uint8: as in PyTorch)."""
    xp, dtype, (raw_a, raw_b) = _raw_operands(a, b)
    if dtype.kind not in "biu":
        raise TypeError(f"bitwise_{kind} (the operator {_BITWISE_OPERATORS[kind]}) needs integer or bool operands, "
                        f"got dtype {dtype}")
    return unrecorded(getattr(xp, f"bitwise_{kind}")(raw_a, raw_b))


_BITWISE_OPERATORS = {"and": "&", "or": "|", "xor": "^"}


def bitwise_and(input, other):
    return logical("and", input, other)


def bitwise_or(input, other):
    return logical("or", input, other)


def bitwise_xor(input, other):
    return logical("xor", input, other)


def bitwise_not(input):
    """~input: each bit of an integer tensor flipped, a bool tensor negated."""
    _require_tensor("bitwise_not", input)
    if input.dtype.kind not in "biu":
        raise TypeError(f"bitwise_not (the operator ~) needs an integer or bool tensor, got dtype {input.dtype}")
    return unrecorded(array_module(input.array).invert(input.array))


def _truth(op, x, name="input"):
    """Whether each element is nonzero (NaN counts as nonzero), as a raw bool array."""
    _require_tensor(op, x, name)
    return x.array if x.dtype == np.bool_ else x.array != 0


def _logical(op, a, b):
    raw_a, raw_b = _truth(op, a), _truth(op, b, "other")
    if a.device != b.device:
        raise RuntimeError(f"{op}: expected both tensors on the same device, found {a.device} and {b.device}")
    return unrecorded(getattr(array_module(raw_a), op)(raw_a, raw_b))


def logical_and(input, other):
    """Whether both elements are nonzero (broadcast): a bool tensor, for operands of any dtype."""
    return _logical("logical_and", input, other)


def logical_or(input, other):
    return _logical("logical_or", input, other)


def logical_xor(input, other):
    return _logical("logical_xor", input, other)


def logical_not(input):
    """Whether each element is zero: a bool tensor, for a tensor of any dtype."""
    return unrecorded(~_truth("logical_not", input))
