"""The global random generator behind ``rand``, ``randn`` and everything that draws (init, dropout, shuffling).

The creation functions take PyTorch's signatures: ``rand(*size)`` / ``rand(size=...)``, ``randn`` likewise,
``randint(high, size)`` / ``randint(low, high, size)`` (size required), ``randperm(n)``. Arguments PyTorch
refuses are refused here with an error naming the argument: a non-float dtype for ``rand``/``randn``, float or
bool bounds, bounds (or an ``n``) that the requested dtype cannot hold exactly.
"""

from __future__ import annotations

import numbers

import numpy as np

from tensorlib.device import move, normalize_device
from tensorlib.tensor import Tensor, _size, get_default_dtype, int64

_generator = np.random.default_rng(0)

_SEED_RANGE = (-2**63, 2**64)  # what torch.manual_seed accepts: a signed or an unsigned 64-bit int


def manual_seed(seed: int) -> np.random.Generator:
    """Reseed the global generator in place (holders of it see the new seed); same seed, same draws.

    As ``torch.manual_seed``: ``seed`` is converted with ``int()`` and may be any int in [-2**63, 2**64);
    a negative seed is taken modulo 2**64 (torch reads -1 as 2**64 - 1), so ``manual_seed(-1)`` and
    ``manual_seed(2**64 - 1)`` give the same draws.
    """
    seed = int(seed)
    if not _SEED_RANGE[0] <= seed < _SEED_RANGE[1]:
        raise ValueError(f"manual_seed: seed must be an int in [-2**63, 2**64), got {seed}")
    _generator.bit_generator.state = np.random.PCG64(seed % 2**64).state
    return _generator


def default_generator() -> np.random.Generator:
    return _generator


def generator_or_default(generator) -> np.random.Generator:
    """The ``generator=`` argument of a drawing function: a NumPy Generator, or None for the global one."""
    if generator is None:
        return _generator
    if not isinstance(generator, np.random.Generator):
        raise TypeError(f"generator must be a numpy.random.Generator or None, got {type(generator).__name__}")
    return generator


def get_rng_state() -> dict:
    return _generator.bit_generator.state


def set_rng_state(state: dict):
    _generator.bit_generator.state = state


def _drawn(array, dtype, device, requires_grad):
    array = array.astype(dtype, copy=False)
    if requires_grad and array.dtype.kind != "f":
        raise RuntimeError(f"only floating-point tensors can require gradients, got dtype {array.dtype}")
    device = normalize_device(device)
    data = move(array, device)
    return Tensor._make(data, requires_grad=requires_grad)


def _shape(function: str, size: tuple, keyword_size) -> tuple:
    """The shape of ``rand(*size)`` or ``rand(size=...)``: one of the two, as in PyTorch."""
    if keyword_size is not None:
        if size:
            raise TypeError(f"{function}() got the size both positionally {size} and as size={keyword_size!r}")
        size = (keyword_size,) if isinstance(keyword_size, (tuple, list)) else keyword_size
    if not size:
        raise TypeError(f"{function}() missing the size: call {function}(2, 3), {function}((2, 3)) or "
                        f"{function}(size=(2, 3)) ({function}(()) gives a 0-d tensor)")
    return _size(size)


def _float_dtype(function: str, dtype) -> np.dtype:
    """``dtype`` (default: the default dtype), which must be floating-point: integers cannot be drawn uniformly
    on [0, 1) or from a normal distribution, and truncating such draws would silently give zeros."""
    dtype = np.dtype(dtype or get_default_dtype())
    if dtype.kind != "f":
        raise TypeError(f"{function}(): dtype must be a floating-point dtype (float16, float32 or float64), "
                        f"got {dtype}")
    return dtype


def _uniform(generator: np.random.Generator, shape: tuple, dtype: np.dtype) -> np.ndarray:
    """Uniform on [0, 1) in ``dtype``. float16 is drawn on its own grid of multiples of 2**-11 (as PyTorch does):
    rounding a float64 draw to float16 would give 1.0 for draws above 1 - 2**-12."""
    if dtype in (np.float32, np.float64):
        return generator.random(shape, dtype=dtype)
    digits = np.finfo(dtype).nmant + 1
    return generator.integers(0, 2**digits, size=shape) * 2.0**-digits


def _normal_dtype(dtype: np.dtype) -> np.dtype:
    """float32 and float64 normals are drawn in that precision; float16 ones in float64, then rounded."""
    return dtype if dtype in (np.float32, np.float64) else np.dtype(np.float64)


def rand(*dims, size=None, generator=None, dtype=None, device=None, requires_grad=False) -> Tensor:
    """Uniform on [0, 1): ``rand(2, 3)``, ``rand((2, 3))`` or ``rand(size=(2, 3))``; dtype floating-point."""
    shape, dtype = _shape("rand", dims, size), _float_dtype("rand", dtype)
    values = _uniform(generator_or_default(generator), shape, dtype)
    return _drawn(values, dtype, device, requires_grad)


def randn(*dims, size=None, generator=None, dtype=None, device=None, requires_grad=False) -> Tensor:
    """Standard normal: ``randn(2, 3)``, ``randn((2, 3))`` or ``randn(size=(2, 3))``; dtype floating-point."""
    shape, dtype = _shape("randn", dims, size), _float_dtype("randn", dtype)
    values = generator_or_default(generator).standard_normal(shape, dtype=_normal_dtype(dtype))
    return _drawn(values, dtype, device, requires_grad)


_RANDINT_USAGE = ("call randint(high, size) or randint(low, high, size), e.g. randint(10, (3,)) or "
                  "randint(2, 10, size=(3,))")


def randint(*args, low=None, high=None, size=None, generator=None, dtype=None, device=None,
            requires_grad=False) -> Tensor:
    """Integers uniform on [low, high) (low defaults to 0), as ``torch.randint(low=0, high, size)``.

    ``size`` (a tuple or list of ints) is required, positionally last or by keyword. The values must fit
    ``dtype`` (default int64): an integer dtype must hold ``low`` and ``high - 1``; a float dtype must
    represent every integer in between exactly (|value| <= 2**24 for float32; PyTorch only warns there).
    """
    if size is None:
        if not args:
            raise TypeError(f"randint() missing the size argument: {_RANDINT_USAGE}")
        *args, size = args
    if not isinstance(size, (tuple, list)):
        raise TypeError(f"randint(): size must be a tuple of ints, got {size!r}; {_RANDINT_USAGE}")
    low, high = _randint_bounds(args, low, high)
    dtype = np.dtype(dtype or int64)
    if low >= high:
        raise ValueError(f"randint(): low must be less than high, got low={low}, high={high}")
    _check_representable("randint", dtype, low, high - 1, f"low={low}, high={high}")
    values = generator_or_default(generator).integers(low, high, size=_size((size,)), dtype=np.int64)
    return _drawn(values, dtype, device, requires_grad)


def _randint_bounds(args, low, high) -> tuple[int, int]:
    """(low, high) from randint's positional bounds (``high`` or ``low, high``) and keywords."""
    if len(args) > 2:
        raise TypeError(f"randint() takes at most 3 positional arguments, got {len(args) + 1}; {_RANDINT_USAGE}")
    if len(args) == 2 or (len(args) == 1 and high is not None):
        if low is not None or (len(args) == 2 and high is not None):
            raise TypeError(f"randint() got the bounds both positionally and by keyword; {_RANDINT_USAGE}")
        low, high = args if len(args) == 2 else (args[0], high)
    elif args:
        high = args[0]
    if high is None:
        raise TypeError(f"randint() missing the high argument; {_RANDINT_USAGE}")
    low = 0 if low is None else low
    for name, value in (("low", low), ("high", high)):
        if not isinstance(value, numbers.Integral) or isinstance(value, (bool, np.bool_)):
            raise TypeError(f"randint(): {name} must be an int, got {type(value).__name__} {value!r}")
    return int(low), int(high)


def randperm(n: int, generator=None, dtype=None, device=None, requires_grad=False) -> Tensor:
    """A random permutation of ``0 .. n - 1``; ``dtype`` (default int64) must hold ``n - 1`` exactly."""
    if not isinstance(n, numbers.Integral) or isinstance(n, (bool, np.bool_)):
        raise TypeError(f"randperm(): n must be an int, got {type(n).__name__} {n!r}")
    if n < 0:
        raise ValueError(f"randperm(): n must be non-negative, got {n}")
    dtype = np.dtype(dtype or int64)
    if dtype.kind == "b":
        raise TypeError("randperm(): dtype must be an integer or floating-point dtype, got bool")
    _check_representable("randperm", dtype, 0, max(int(n) - 1, 0), f"n={int(n)}")
    return _drawn(generator_or_default(generator).permutation(int(n)), dtype, device, requires_grad)


def _check_representable(function: str, dtype: np.dtype, lowest: int, highest: int, what: str):
    """Raise unless every integer in [lowest, highest] is exactly a value of ``dtype`` (no wrapping, no rounding)."""
    if dtype.kind == "b":
        ok = 0 <= lowest and highest <= 1
    elif dtype.kind in "iu":
        ok = np.iinfo(dtype).min <= lowest and highest <= np.iinfo(dtype).max
    elif dtype.kind == "f":
        exact = 2 ** (np.finfo(dtype).nmant + 1)  # every integer of magnitude up to this is a float of dtype
        ok = -exact <= lowest and highest <= exact
    else:
        raise TypeError(f"{function}(): dtype must be an integer, bool or floating-point dtype, got {dtype}")
    if not ok:
        raise ValueError(f"{function}(): {what} is out of bounds for dtype {dtype}: its values "
                         f"[{lowest}, {highest}] are not all exactly representable in it")
