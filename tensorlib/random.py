"""Random generators: the global one behind ``rand``, ``randn`` and everything that draws (init, dropout,
shuffling), and ``Generator`` objects for the ``generator=`` arguments.

The creation functions take PyTorch's signatures: ``rand(*size)`` / ``rand(size=...)``, ``randn`` likewise,
``randint(high, size)`` / ``randint(low, high, size)`` (size required), ``randperm(n)``. Arguments PyTorch
refuses are refused here with an error naming the argument: a non-float dtype for ``rand``/``randn``, float or
bool bounds, bounds (or an ``n``) that the requested dtype cannot hold exactly.

Every generator is NumPy's PCG64 bit generator; a seed means the same stream everywhere, so
``Generator().manual_seed(5)`` draws what the global generator draws after ``manual_seed(5)``.
"""

from __future__ import annotations

import numbers
import os

import numpy as np

from tensorlib.device import move, normalize_device
from tensorlib.tensor import Tensor, _size, get_default_dtype, int64, uint8

_generator = np.random.default_rng(0)

_SEED_RANGE = (-2**63, 2**64)  # what torch.manual_seed accepts: a signed or an unsigned 64-bit int
_DEFAULT_SEED = 67280421310721  # the seed of a fresh torch.Generator, kept so initial_seed() agrees


def _seeded_state(seed: int, function: str) -> dict:
    """The PCG64 state for ``seed``, an int in [-2**63, 2**64); a negative seed is taken modulo 2**64."""
    if not _SEED_RANGE[0] <= seed < _SEED_RANGE[1]:
        raise ValueError(f"{function}: seed must be an int in [-2**63, 2**64), got {seed}")
    return np.random.PCG64(seed % 2**64).state


def manual_seed(seed: int) -> np.random.Generator:
    """Reseed the global generator in place (holders of it see the new seed); same seed, same draws.

    As ``torch.manual_seed``: ``seed`` is converted with ``int()`` and may be any int in [-2**63, 2**64);
    a negative seed is taken modulo 2**64 (torch reads -1 as 2**64 - 1), so ``manual_seed(-1)`` and
    ``manual_seed(2**64 - 1)`` give the same draws.
    """
    _generator.bit_generator.state = _seeded_state(int(seed), "manual_seed")
    return _generator


class Generator:
    """A random generator of its own, as ``torch.Generator``: pass it as ``generator=`` to ``rand``, ``randn``,
    ``randint``, ``randperm``, ``nn.init``, ``random_split``, the samplers and ``DataLoader`` to draw from it
    instead of the global generator.

        g = Generator().manual_seed(42)     # manual_seed returns the generator
        x = tl.rand(3, generator=g)
        state = g.get_state()               # a uint8 tensor; g.set_state(state) replays the draws after it

    A fresh generator is seeded with torch's default seed (67280421310721); ``seed()`` reseeds it from the
    operating system's entropy and returns the new seed; ``initial_seed()`` is the last seed set.
    ``device`` ("cpu" or "cuda") is recorded for PyTorch's signature: draws are made on the host and moved to
    the tensor's device, so a generator serves either.
    """

    def __init__(self, device="cpu"):
        self.device = normalize_device(device)
        self._numpy = np.random.Generator(np.random.PCG64())
        self.manual_seed(_DEFAULT_SEED)

    def manual_seed(self, seed: int) -> Generator:
        """Reseed with ``seed``, an int in [-2**63, 2**64) (negative ones taken modulo 2**64); returns self."""
        if not isinstance(seed, numbers.Integral) or isinstance(seed, (bool, np.bool_)):
            raise RuntimeError(f"Generator.manual_seed: seed must be an int, got {type(seed).__name__} {seed!r}")
        self._numpy.bit_generator.state = _seeded_state(int(seed), "Generator.manual_seed")
        self._initial_seed = int(seed) % 2**64
        return self

    def seed(self) -> int:
        """Reseed from the operating system's entropy; returns the seed, an int in [0, 2**64)."""
        seed = int.from_bytes(os.urandom(8), "little")
        self.manual_seed(seed)
        return seed

    def initial_seed(self) -> int:
        """The seed this generator was last seeded with, in [0, 2**64)."""
        return self._initial_seed

    def get_state(self) -> Tensor:
        """The generator's state as a 1-d uint8 tensor: the initial seed and the PCG64 state."""
        state = self._numpy.bit_generator.state
        words = (self._initial_seed, state["state"]["state"], state["state"]["inc"], state["has_uint32"],
                 state["uinteger"])
        raw = b"".join(int(word).to_bytes(size, "little") for word, size in zip(words, _STATE_LAYOUT))
        return Tensor._make(np.frombuffer(raw, dtype=np.uint8).copy())

    def set_state(self, new_state: Tensor) -> Generator:
        """Restore a state ``get_state`` returned (of this or another Generator); returns self."""
        if not isinstance(new_state, Tensor) or new_state.dtype != uint8:
            what = f"a {new_state.dtype} tensor" if isinstance(new_state, Tensor) else type(new_state).__name__
            raise TypeError(f"Generator.set_state: new_state must be a uint8 tensor from get_state(), got {what}")
        raw = new_state.numpy().tobytes()
        if new_state.ndim != 1 or len(raw) != sum(_STATE_LAYOUT):
            raise RuntimeError(f"Generator.set_state: new_state must be a 1-d uint8 tensor of {sum(_STATE_LAYOUT)} "
                               f"bytes from get_state(), got shape {tuple(new_state.shape)}")
        words, start = [], 0
        for size in _STATE_LAYOUT:
            words.append(int.from_bytes(raw[start:start + size], "little"))
            start += size
        initial_seed, state, inc, has_uint32, uinteger = words
        if inc % 2 == 0 or has_uint32 > 1:  # PCG64 increments are odd; get_state never writes anything else
            raise RuntimeError("Generator.set_state: new_state is not a state get_state() wrote")
        self._numpy.bit_generator.state = {"bit_generator": "PCG64", "state": {"state": state, "inc": inc},
                                           "has_uint32": has_uint32, "uinteger": uinteger}
        self._initial_seed = initial_seed
        return self

    def __repr__(self) -> str:
        return f"Generator(device={self.device!r}, initial_seed={self._initial_seed})"


_STATE_LAYOUT = (8, 16, 16, 1, 4)  # bytes of: initial seed, PCG64 state, PCG64 increment, has_uint32, uinteger


def default_generator() -> np.random.Generator:
    return _generator


def generator_or_default(generator) -> np.random.Generator:
    """The NumPy Generator a ``generator=`` argument draws from: the global one for None, a ``Generator``'s own,
    or a ``numpy.random.Generator`` itself."""
    if generator is None:
        return _generator
    if isinstance(generator, Generator):
        return generator._numpy
    if not isinstance(generator, np.random.Generator):
        raise TypeError(f"generator must be a numpy.random.Generator or None, got {type(generator).__name__}: pass "
                        "a tensorlib Generator (Generator().manual_seed(seed)), a numpy.random.Generator or None")
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
