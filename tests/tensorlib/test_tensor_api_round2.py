"""The Tensor API that ported PyTorch programs use, second part: format(), devices (tl.device, tl.cuda, to()),
the legacy constructors and type names, dtype aliases and dtype questions, from_numpy, finfo/iinfo,
inference_mode, detach_, clamp_min/max, addcmul/addcdiv, the in-place random fills and *_like draws, dot, outer,
einsum, tril/triu, diag, trace, var_mean/std_mean, count_nonzero, nonzero, where(cond), bincount, unique,
scatter/scatter_add, median, and printing. Forward against float64 NumPy on random shapes (float32 and float64),
backward by finite differences (gradcheck)."""

import math
import pickle

import numpy as np
import pytest

import nn
import tensorlib as tl

FLOATS = [np.float32, np.float64]
nan, inf = math.nan, math.inf


def tolerance(dtype):
    return {"rtol": 1e-4 if dtype == np.float32 else 1e-12, "atol": 1e-6 if dtype == np.float32 else 1e-12}


def random(shape, seed=0, dtype=np.float64):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def leaf(array):
    return tl.tensor(np.asarray(array, dtype=np.float64), requires_grad=True)


def assert_matches(out, expected, dtype):
    assert out.shape == np.shape(expected) and out.dtype == dtype
    np.testing.assert_allclose(out.detach().numpy().astype(np.float64), expected, **tolerance(dtype))


# ---- format() -----------------------------------------------------------------------------------------------
def test_a_0d_tensor_formats_as_its_number():
    loss = tl.tensor([0.25, 0.5]).mean()
    assert f"{loss:.4f}" == "0.3750" and "{:.2e}".format(loss) == "3.75e-01"
    assert f"{tl.tensor(3):>4}" == "   3" and f"{tl.tensor(7):d}" == "7"
    assert f"{tl.tensor(1.5, requires_grad=True) * 2:.1f}" == "3.0"
    assert f"{tl.tensor([1.0, 2.0])}" == "tensor([1., 2.])"  # an empty spec prints the tensor
    with pytest.raises(TypeError, match="unsupported format string passed to Tensor.__format__"):
        f"{tl.tensor([2.5]):.2f}"  # as in PyTorch: only 0-d tensors take a number's format


# ---- devices ------------------------------------------------------------------------------------------------
def test_device_objects_as_pytorch():
    cpu, cuda0 = tl.device("cpu"), tl.device("cuda", 0)
    assert (cpu.type, cpu.index, repr(cpu), str(cpu)) == ("cpu", None, "device(type='cpu')", "cpu")
    assert (cuda0.type, cuda0.index, repr(cuda0), str(cuda0)) == ("cuda", 0, "device(type='cuda', index=0)", "cuda:0")
    assert f"{cuda0}" == "cuda:0" and f"{cuda0:>7}" == " cuda:0" and "%s" % cuda0 == "cuda:0"
    assert "run_" + cuda0 == "run_cuda:0" and cuda0.split(":") == ["cuda", "0"]  # as a str, its name
    assert tl.device("cuda:1").index == 1 and tl.device(tl.device("cuda:1")).index == 1
    assert isinstance(cpu, tl.device) and not isinstance("cpu", tl.device)
    assert tl.device(type("OtherDevice", (), {"__str__": lambda self: "cuda:2"})()).index == 2  # by its str
    assert pickle.loads(pickle.dumps(cuda0)) == cuda0 and pickle.loads(pickle.dumps(cuda0)).index == 0


def test_device_equality_and_hash_agree():
    """Devices are told apart by type: equal to every device of their type and to the plain type string, and
    hashed as that string; an indexed string equals no device (PyTorch's devices equal no string at all)."""
    cpu, cuda, cuda0, cuda1 = tl.device("cpu"), tl.device("cuda"), tl.device("cuda:0"), tl.device("cuda", 1)
    assert cpu == "cpu" and "cpu" == cpu and cpu != "cuda" and cpu != cuda0 and cpu != "tpu" and cpu != 0
    assert cuda == cuda0 == cuda1 == "cuda" and "cuda" == cuda1 and not cuda0 != cuda1
    assert cuda0 != "cuda:0" and "cuda:0" != cuda0 and cuda != "cuda:0"
    devices = [cpu, cuda, cuda0, cuda1, "cpu", "cuda", "cuda:0", "cuda:1", tl.device("cpu", 0)]
    for a in devices:
        for b in devices:
            assert (a == b) == (b == a) and (a == b) <= (hash(a) == hash(b)), (a, b)
    assert len(set(devices)) == len(set(devices[::-1])) == 4  # {cpu}, {cuda}, "cuda:0", "cuda:1", in any order
    assert {"cpu": 1, "cuda": 2}[cuda0] == 2 and {cuda1: 3}["cuda"] == 3 and {cuda0: 4}[tl.device("cuda")] == 4
    assert "cuda:0" not in {cuda0} and cuda0 not in {"cuda:0": 1} and len({tl.device("cpu"), "cpu"}) == 1


@pytest.mark.parametrize("args,error,message", [
    (("gpu",), ValueError, r"device must be 'cpu', 'cuda' or 'cuda:N', got 'gpu'"),
    (("cuda:x",), ValueError, r"got 'cuda:x'"),
    (("cuda:0", 1), ValueError, r"the type 'cuda:0' must not include an index when index=1"),
    (("cuda", -1), ValueError, r"index must be >= 0, got -1"),
    (("cuda", "0"), TypeError, r"index must be an int, got str '0'"),
    ((3,), TypeError, r"device must be a str or a device, got int 3"),
])
def test_device_refuses_bad_arguments(args, error, message):
    with pytest.raises(error, match=message):
        tl.device(*args)


def test_tensor_device_and_to():
    x = tl.ones(2, 3, requires_grad=True)
    assert isinstance(x.device, tl.device) and x.device.type == "cpu" and x.device == tl.device("cpu")
    assert x.to(tl.device("cpu"), non_blocking=True) is x and x.to(x) is x and x.cpu() is x
    y = x.to(tl.tensor([1, 2], dtype=tl.float64))
    assert y.dtype == tl.float64 and y.requires_grad
    assert x.to("cpu", tl.float16).dtype == tl.float16 and x.to(device="cpu", dtype=tl.float64).dtype == tl.float64
    copied = x.to(copy=True)
    assert copied is not x and copied.requires_grad and np.shares_memory(copied.array, x.array) is False
    with pytest.raises(TypeError, match=r"to\(\) takes a device, a dtype or a tensor, got float 3.5"):
        x.to(3.5)
    with pytest.raises(TypeError, match=r"to\(other\) takes no device or dtype"):
        x.to(y, tl.float32)


def test_cuda_namespace_and_the_mnist_example_device_line():
    assert tl.cuda.is_available() == tl.cuda_is_available()
    assert (tl.cuda.device_count() > 0) == tl.cuda.is_available()
    use_cuda = False
    device = tl.device("cuda" if use_cuda else "cpu")
    model = nn.Linear(3, 2).to(device)
    data = tl.randn(4, 3).to(device)
    assert model(data).device == device and model.weight.device.type == "cpu"


def test_the_device_module_stays_importable():
    import tensorlib.device as module

    assert callable(module) and module.normalize_device(tl.device("cuda:0")) == "cuda"
    assert module.cuda_unavailable_reason is tl.cuda_unavailable_reason


# ---- constructors, types and dtypes ----------------------------------------------------------------------------
def test_the_legacy_constructor():
    t = tl.Tensor([1, 2])
    assert t.dtype == tl.float32 and t.tolist() == [1.0, 2.0]  # always the default float dtype
    assert tl.Tensor(np.arange(3)).dtype == tl.float32 and tl.Tensor((2, 3)).tolist() == [2.0, 3.0]
    assert tl.Tensor(3, 4).shape == (3, 4) and tl.Tensor(np.int64(3)).shape == (3,)
    assert tl.Tensor().shape == (0,) and tl.Tensor().dtype == tl.float32
    source = tl.tensor([1, 2])
    shared = tl.Tensor(source)  # shares the data, of any dtype
    assert shared.dtype == tl.int64 and np.shares_memory(shared.array, source.array)
    with pytest.raises(TypeError, match="Tensor\\(\\): data must be a sequence or an array, got float 2.5"):
        tl.Tensor(2.5)
    with pytest.raises(TypeError, match="takes sizes \\(ints\\) or one sequence of data"):
        tl.Tensor(2, 3.0)
    with pytest.raises(ValueError, match="size must be non-negative"):
        tl.Tensor(-1)


def test_typed_constructors_and_type_names():
    assert tl.FloatTensor([1, 2]).dtype == tl.float32 and tl.DoubleTensor([1, 2]).dtype == tl.float64
    assert tl.LongTensor([1.7, -1.5]).tolist() == [1, -1] and tl.LongTensor(2, 2).shape == (2, 2)
    assert isinstance(tl.ones(2), tl.FloatTensor) and not isinstance(tl.ones(2), tl.LongTensor)
    assert isinstance(tl.ones(2).double(), tl.DoubleTensor) and isinstance(tl.ones(2).double(), tl.Tensor)
    assert repr(tl.FloatTensor) == "<class 'tensorlib.FloatTensor'>"
    with pytest.raises(TypeError, match="FloatTensor\\(\\): expected a tensor of dtype float32, got int64"):
        tl.FloatTensor(tl.arange(3))
    x = tl.ones(2)
    names = [x.type(), x.long().type(), x.bool().type(), x.half().type(), x.int().type(), x.to(tl.uint8).type()]
    assert names == ["tensorlib.FloatTensor", "tensorlib.LongTensor", "tensorlib.BoolTensor",
                     "tensorlib.HalfTensor", "tensorlib.IntTensor", "tensorlib.ByteTensor"]
    assert x.type(tl.float32) is x and x.type(tl.float64).dtype == tl.float64
    assert x.type(tl.DoubleTensor).dtype == tl.float64 and x.type("tensorlib.LongTensor").dtype == tl.int64
    assert x.type("torch.IntTensor", non_blocking=True).dtype == tl.int32  # PyTorch's names are understood
    for bits in (16, 32, 64):  # NumPy's wider unsigned dtypes have PyTorch's names too
        unsigned = tl.from_numpy(np.ones(2, dtype=f"uint{bits}"))
        assert unsigned.type() == f"tensorlib.UInt{bits}Tensor" and x.type(unsigned.type()).dtype == f"uint{bits}"
    with pytest.raises(ValueError, match="type: invalid type name 'float'"):
        x.type("float")
    with pytest.raises(TypeError, match="type: dtype must be a dtype, a tensor type or its name, got 3"):
        x.type(3)


def test_dtype_aliases_and_questions():
    assert (tl.long, tl.int, tl.short, tl.float, tl.double, tl.half) == (
        tl.int64, tl.int32, tl.int16, tl.float32, tl.float64, tl.float16)
    assert tl.bool == np.bool_ and tl.tensor([True]).dtype == tl.bool
    assert tl.ones(1).is_floating_point() and not tl.is_floating_point(tl.ones(1).long())
    assert tl.is_tensor(tl.ones(1)) and not tl.is_tensor([1]) and not tl.is_tensor(np.ones(1))
    assert tl.numel(tl.ones(2, 3)) == 6
    with pytest.raises(TypeError, match="numel: input must be a Tensor, got list"):
        tl.numel([1, 2])
    with pytest.raises(TypeError, match="is_floating_point: input must be a Tensor, got float"):
        tl.is_floating_point(1.0)


def test_contiguity():
    x = tl.tensor(random((3, 4)), requires_grad=True)
    assert x.is_contiguous() and x.contiguous() is x
    transposed = x.t()
    assert not transposed.is_contiguous() and not tl.ones(3, 1).expand(3, 4).is_contiguous()
    made = transposed.contiguous()
    assert made.is_contiguous() and made.array.flags.c_contiguous
    np.testing.assert_array_equal(made.detach().numpy(), x.detach().numpy().T)
    assert tl.gradcheck(lambda t: t.t().contiguous() * 2, [leaf(random((2, 3)))])


def test_from_numpy_shares_memory():
    array = np.arange(3.0)
    t = tl.from_numpy(array)
    array[0] = 7
    t[1] = 5
    assert t.tolist() == [7.0, 5.0, 2.0] and array.tolist() == [7.0, 5.0, 2.0] and t.dtype == tl.float64
    assert tl.from_numpy(np.arange(3, dtype=np.int32)).dtype == tl.int32
    with pytest.raises(TypeError, match="from_numpy: expected a numpy.ndarray, got list"):
        tl.from_numpy([1, 2])
    with pytest.raises(TypeError, match="from_numpy: dtype <U1 is not supported"):
        tl.from_numpy(np.array(["a"]))


def test_finfo_and_iinfo_give_pytorch_numbers():
    single = tl.finfo(tl.float32)
    assert single.eps == 2.0**-23 and single.tiny == single.smallest_normal == 2.0**-126 and single.bits == 32
    assert single.max == float(np.finfo(np.float32).max) and tl.finfo(tl.float16).min == -65504.0
    assert single.resolution == 1e-6 and tl.finfo(tl.float16).resolution == 1e-3 and single.dtype == tl.float32
    assert tl.finfo().eps == single.eps and tl.finfo(tl.float64).eps == 2.0**-52  # the default dtype first
    # Python numbers, as PyTorch's: no float32 arithmetic (and overflow) where they are used
    assert all(type(getattr(single, name)) is float for name in ("eps", "max", "min", "tiny", "resolution"))
    assert single.max * 10 == float(np.finfo(np.float32).max) * 10 and type(single.bits) is int
    assert tl.iinfo(tl.int64).max == 2**63 - 1 and tl.iinfo(tl.uint8).min == 0 and tl.iinfo(tl.int32).bits == 32
    assert type(tl.iinfo(tl.int32).max) is int and tl.iinfo(tl.int32).max + 1 == 2**31
    assert repr(tl.iinfo(tl.int8)) == "iinfo(min=-128, max=127, dtype=int8)"
    assert repr(tl.finfo(tl.float16)) == ("finfo(resolution=0.001, min=-65504, max=65504, eps=0.000976562, "
                                          "smallest_normal=6.10352e-05, tiny=6.10352e-05, dtype=float16)")
    with pytest.raises(TypeError, match="finfo: dtype must be a floating-point dtype, got int32"):
        tl.finfo(tl.int32)
    with pytest.raises(TypeError, match="iinfo: dtype must be an integer dtype, got float32"):
        tl.iinfo(tl.float32)


def test_inference_mode_records_no_graph():
    with tl.inference_mode():
        assert not (tl.ones(1, requires_grad=True) * 2).requires_grad

    @tl.inference_mode()
    def forward():
        return tl.ones(1, requires_grad=True) * 2

    assert not forward().requires_grad and tl.is_grad_enabled()
    with tl.inference_mode(False):
        assert (tl.ones(1, requires_grad=True) * 2).requires_grad
    with pytest.raises(TypeError, match="inference_mode: mode must be a bool, got int 1"):
        tl.inference_mode(1)


def test_inference_mode_as_pytorch_sets_it():
    @tl.inference_mode  # the bare decorator
    def double(x):
        return x * 2

    out = double(tl.ones(1, requires_grad=True))
    assert isinstance(out, tl.Tensor) and out.tolist() == [2.0] and not out.requires_grad and tl.is_grad_enabled()
    with tl.no_grad(), tl.inference_mode(False):  # False turns recording on, as PyTorch's
        assert tl.is_grad_enabled() and (tl.ones(1, requires_grad=True) * 2).requires_grad
    assert tl.is_grad_enabled()
    with tl.no_grad():
        recording = tl.inference_mode(False)  # made here, applied where it is entered
        off = tl.inference_mode()
    assert tl.is_grad_enabled()
    with tl.no_grad(), recording:
        assert tl.is_grad_enabled()
    with off:
        assert not tl.is_grad_enabled()
    assert tl.is_grad_enabled()

    @tl.inference_mode()
    def depth(n):  # a recursive call enters the same decorator again: each exit restores its own entry's mode
        return depth(n - 1) if n else tl.is_grad_enabled()

    assert depth(3) is False and tl.is_grad_enabled()


def test_detach_in_place():
    x = tl.ones(2, requires_grad=True)
    y = x * 2
    assert y.detach_() is y and not y.requires_grad and y.grad_fn is None and y.is_leaf
    assert x.detach_() is x and not x.requires_grad


# ---- clamp_min/max, addcmul/addcdiv -------------------------------------------------------------------------
def numpy_addcdiv(x, a, b):
    return x + 0.5 * a / b


ELEMENTWISE = {
    "clamp_min": (lambda x, a, b: x.clamp_min(0.1), lambda x, a, b: np.maximum(x, 0.1)),
    "clamp_max": (lambda x, a, b: tl.clamp_max(x, -0.2), lambda x, a, b: np.minimum(x, -0.2)),
    "clamp_min_tensor": (lambda x, a, b: tl.clamp_min(x, a), lambda x, a, b: np.maximum(x, a)),
    "addcmul": (lambda x, a, b: x.addcmul(a, b, value=-1.5), lambda x, a, b: x - 1.5 * a * b),
    "addcmul_default": (lambda x, a, b: tl.addcmul(x, a, b), lambda x, a, b: x + a * b),
    "addcdiv": (lambda x, a, b: tl.addcdiv(x, a, b + 3, value=0.5), lambda x, a, b: numpy_addcdiv(x, a, b + 3)),
}


@pytest.mark.parametrize("name", sorted(ELEMENTWISE))
@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("shapes", [((), (), ()), ((4,), (4,), (4,)), ((2, 3), (3,), (2, 1))], ids=str)
def test_clamp_and_addc_ops_match_numpy(name, dtype, shapes):
    fn, reference = ELEMENTWISE[name]
    arrays = [random(shape, seed) for seed, shape in enumerate(shapes)]
    out = fn(*[tl.tensor(a.astype(dtype)) for a in arrays])
    assert_matches(out, reference(*arrays), dtype)


@pytest.mark.parametrize("name", sorted(ELEMENTWISE))
def test_clamp_and_addc_ops_gradients(name):
    fn, _ = ELEMENTWISE[name]
    assert tl.gradcheck(fn, [leaf(random(s, seed + 5)) for seed, s in enumerate([(2, 3), (3,), (2, 1)])])


def test_in_place_clamp_and_addc_forms():
    x = random((2, 3))
    a, b = random((2, 3), 1), random((3,), 2) + 3
    t = tl.tensor(x)
    assert t.clamp_min_(0.0) is t
    np.testing.assert_array_equal(t.numpy(), np.maximum(x, 0))
    np.testing.assert_array_equal(tl.tensor(x).clamp_max_(0.5).numpy(), np.minimum(x, 0.5))
    np.testing.assert_allclose(tl.tensor(x).addcmul_(tl.tensor(a), tl.tensor(b), value=2).numpy(), x + 2 * a * b)
    np.testing.assert_allclose(tl.tensor(x).addcdiv_(tl.tensor(a), tl.tensor(b)).numpy(), x + a / b)
    with pytest.raises(RuntimeError, match="addcmul_: the result's broadcast shape \\(2, 3\\) does not fit"):
        tl.tensor(x[0]).addcmul_(tl.tensor(a), tl.tensor(b))
    with pytest.raises(TypeError, match="addcdiv: tensor1 and tensor2 are both integer tensors"):
        tl.ones(2).addcdiv(tl.tensor([1, 2]), tl.tensor([3, 4]))
    w = tl.tensor(x, requires_grad=True)
    out = w * 1
    out.addcmul_(w, w)  # recorded: d/dw (w + w*w) = 1 + 2w
    out.sum().backward()
    np.testing.assert_allclose(w.grad.numpy(), 1 + 2 * x)


@pytest.mark.parametrize("dtype", [tl.int64, tl.int32, tl.int16, tl.uint8])
def test_addcmul_on_integers_casts_value_to_their_dtype(dtype):
    """As PyTorch: value becomes a number of the tensors' dtype (0.5 -> 0, -2.7 -> -2; -1 wraps around in uint8),
    so the result keeps the integer dtype."""
    rng = np.random.default_rng(11)
    x, a, b = (rng.integers(0, 9, shape).astype(dtype) for shape in ((2, 3), (3,), (2, 1)))
    for value in (0.5, 2.7, -2.7, True, 3, -1):
        out = tl.addcmul(tl.tensor(x), tl.tensor(a), tl.tensor(b), value=value)
        cast = np.array(int(value)).astype(dtype)
        assert out.dtype == dtype
        np.testing.assert_array_equal(out.numpy(), x + cast * a * b)
    out = tl.tensor(x).addcmul_(tl.tensor(a), tl.tensor(b), value=tl.tensor(2.9))  # a one-element tensor value
    np.testing.assert_array_equal(out.numpy(), x + np.array(2).astype(dtype) * a * b)
    mixed = tl.addcdiv(tl.tensor(x), tl.tensor(a).float(), tl.tensor(b) + 1, value=0.5)  # float tensors: 0.5 stays
    assert mixed.dtype == tl.float32
    np.testing.assert_allclose(mixed.numpy(), x + 0.5 * a / (b + 1.0), rtol=1e-6)


@pytest.mark.parametrize("call,error,message", [
    (lambda o: tl.addcmul(o, o, o, 2), TypeError, "takes 3 positional arguments"),  # value is keyword-only
    (lambda o: o.addcmul(o, o, 2), TypeError, "takes 3 positional arguments"),
    (lambda o: tl.addcmul(o, o, o, value=1e20), ValueError, "value 1e\\+20 cannot be converted to the integer dtype"),
    (lambda o: tl.addcmul(o, o, o, value=math.nan), ValueError, "value nan cannot be converted"),
    (lambda o: tl.addcmul(o.float(), o, o, value=1j), TypeError, "addcmul: value must be a real number, got complex"),
    (lambda o: tl.addcdiv(o.float(), o.float(), o, value="2"), TypeError, "addcdiv: value must be a real number"),
    (lambda o: tl.addcmul(o, o, o, value=tl.ones(2)), ValueError, "a number or a one-element tensor, got a tensor"),
    (lambda o: tl.addcmul(o, 2, o), TypeError, "addcmul: tensor1 must be a Tensor, got int"),
    (lambda o: tl.addcmul(o.bool(), o.bool(), o.bool()), TypeError, "addcmul of bool tensors is not supported"),
    (lambda o: o.addcmul_(o.float(), o, value=0.5), TypeError, "addcmul_: a result of dtype float32 can't be stored"),
])
def test_addcmul_and_addcdiv_refusals(call, error, message):
    with pytest.raises(error, match=message):
        call(tl.ones(2, dtype=tl.int64))


# ---- random fills and *_like draws ------------------------------------------------------------------------------
def test_in_place_random_fills():
    tl.manual_seed(0)
    x = tl.empty(20000)
    assert x.normal_(2.0, 0.5) is x and x.dtype == tl.float32
    assert abs(x.mean().item() - 2.0) < 0.02 and abs(x.std().item() - 0.5) < 0.02
    u = tl.empty(20000, dtype=tl.float64).uniform_(-1.0, 3.0)
    assert -1.0 <= u.min().item() and u.max().item() < 3.0 and abs(u.mean().item() - 1.0) < 0.05
    b = tl.empty(20000).bernoulli_(0.3)
    assert set(np.unique(b.numpy())) <= {0.0, 1.0} and abs(b.mean().item() - 0.3) < 0.02
    np.testing.assert_array_equal(tl.zeros(3, dtype=tl.int64).bernoulli_(tl.tensor([0.0, 1.0, 1.0])).numpy(), [0, 1, 1])
    np.testing.assert_array_equal(tl.zeros(2, 3).bernoulli_(tl.tensor([1.0, 0.0, 1.0])).numpy(), [[1, 0, 1]] * 2)
    tl.manual_seed(5)
    first = tl.empty(4).normal_().numpy().copy()
    tl.manual_seed(5)
    np.testing.assert_array_equal(tl.empty(4).normal_().numpy(), first)
    drawn = tl.empty(3).uniform_(generator=np.random.default_rng(3)).numpy()
    np.testing.assert_array_equal(drawn, tl.rand(3, generator=np.random.default_rng(3)).numpy())


def test_random_fills_refuse_bad_arguments():
    with pytest.raises(TypeError, match="normal_ needs a floating-point tensor, got dtype int64"):
        tl.zeros(2, dtype=tl.int64).normal_()
    with pytest.raises(ValueError, match="normal_: std must be >= 0, got -1"):
        tl.zeros(2).normal_(0, -1)
    with pytest.raises(ValueError, match="uniform_: from_ must be <= to, got from_=3 > to=2"):
        tl.zeros(2).uniform_(3, 2)
    with pytest.raises(ValueError, match=r"bernoulli_: p must be in \[0, 1\], got 1.5"):
        tl.zeros(2).bernoulli_(1.5)
    with pytest.raises(ValueError, match=r"bernoulli_: p must be in \[0, 1\], got a tensor with values outside"):
        tl.zeros(2).bernoulli_(tl.tensor([0.5, -0.1]))
    with pytest.raises(ValueError, match=r"bernoulli_: p of shape \(3, 2\) does not broadcast to this tensor's "
                                         r"shape \(2,\)"):
        tl.zeros(2).bernoulli_(tl.full((3, 2), 0.5))
    with pytest.raises(ValueError, match=r"bernoulli_: p of shape \(3,\) does not broadcast"):
        tl.zeros(2).bernoulli_(tl.full((3,), 0.5))
    with pytest.raises(RuntimeError, match="leaf tensor that requires grad"):
        tl.zeros(2, requires_grad=True).normal_()
    with pytest.raises(RuntimeError, match="uniform_: this tensor was made by a recorded op"):
        (tl.zeros(2, requires_grad=True) * 2).uniform_()


def test_like_draws_take_the_shape_dtype_and_device():
    x = tl.ones(2, 3, dtype=tl.float64)
    assert tl.randn_like(x).shape == (2, 3) and tl.randn_like(x).dtype == tl.float64
    assert tl.rand_like(x, dtype=tl.float32).dtype == tl.float32 and tl.rand_like(x, requires_grad=True).requires_grad
    drawn = tl.randint_like(x, 3, 5)
    assert drawn.dtype == tl.float64 and set(np.unique(drawn.numpy())) <= {3.0, 4.0}
    assert tl.randint_like(tl.tensor([1, 2]), 4).dtype == tl.int64
    assert ((tl.randint_like(tl.zeros(50, dtype=tl.int64), 4).numpy() < 4)).all()
    with pytest.raises(TypeError, match="dtype must be a floating-point dtype"):
        tl.randn_like(tl.tensor([1, 2]))


# ---- dot, outer, einsum ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("n,m", [(1, 1), (5, 3), (0, 2)])
def test_dot_and_outer_match_numpy(dtype, n, m):
    a, b, c = random(n, 1), random(n, 2), random(m, 3)
    assert_matches(tl.dot(tl.tensor(a.astype(dtype)), tl.tensor(b.astype(dtype))), np.dot(a, b), dtype)
    assert_matches(tl.tensor(a.astype(dtype)).outer(tl.tensor(c.astype(dtype))), np.outer(a, c), dtype)


def test_dot_and_outer_dtypes_gradients_and_refusals():
    assert tl.dot(tl.tensor([1, 2]), tl.tensor([3, 4])).item() == 11
    assert tl.outer(tl.tensor([1, 2]), tl.tensor([1.0, 2.0])).dtype == tl.float32  # promoted as for *
    assert tl.gradcheck(tl.dot, [leaf(random(4, 1)), leaf(random(4, 2))])
    assert tl.gradcheck(tl.outer, [leaf(random(3, 1)), leaf(random(2, 2))])
    with pytest.raises(TypeError, match="dot: the tensors must share a dtype, got float32 and int64"):
        tl.dot(tl.ones(2), tl.tensor([1, 2]))
    with pytest.raises(ValueError, match="dot: the tensors must have the same length, got 2 and 3"):
        tl.dot(tl.ones(2), tl.ones(3))
    with pytest.raises(ValueError, match="dot: input must be a 1-D tensor, got shape \\(1, 2\\)"):
        tl.dot(tl.ones(1, 2), tl.ones(2))
    with pytest.raises(ValueError, match="outer: vec2 must be a 1-D tensor, got shape \\(\\)"):
        tl.outer(tl.ones(2), tl.tensor(1.0))


# equation, operand shapes, the same contraction in NumPy (float64)
EINSUMS = [
    ("ij,jk->ik", [(3, 4), (4, 2)], lambda a, b: a @ b),
    ("ij,jk", [(3, 4), (4, 2)], lambda a, b: a @ b),
    ("bij,bjk->bik", [(2, 3, 4), (2, 4, 5)], lambda a, b: a @ b),
    ("ii->i", [(3, 3)], np.diagonal),
    ("ii", [(4, 4)], np.trace),
    ("ij->", [(3, 4)], np.sum),
    ("ij->ji", [(3, 4)], np.transpose),
    ("i,j->ij", [(3,), (4,)], np.outer),
    ("...ij->...ji", [(2, 3, 4)], lambda a: np.swapaxes(a, -1, -2)),
    ("...i,...i->...", [(2, 1, 3), (4, 3)], lambda a, b: (a * b).sum(-1)),
    ("i,i->i", [(1,), (3,)], lambda a, b: a * b),
    ("ba,bc", [(4, 3), (4, 2)], lambda a, b: a.T @ b),
    ("...ba", [(5, 2, 3)], lambda a: np.swapaxes(a, -1, -2)),
    (",i->i", [(), (3,)], lambda a, b: a * b),
    ("iij->j", [(3, 3, 2)], lambda a: np.einsum("iij->j", a)),
    ("ij,ij,ij->i", [(2, 3), (2, 3), (2, 3)], lambda a, b, c: (a * b * c).sum(1)),
    ("i j , j k -> i k", [(2, 3), (3, 2)], lambda a, b: a @ b),
]


@pytest.mark.parametrize("equation,shapes,reference", EINSUMS, ids=[e[0] for e in EINSUMS])
@pytest.mark.parametrize("dtype", FLOATS)
def test_einsum_matches_numpy(equation, shapes, reference, dtype):
    arrays = [random(shape, seed) for seed, shape in enumerate(shapes)]
    out = tl.einsum(equation, *[tl.tensor(a.astype(dtype)) for a in arrays])
    assert_matches(out, reference(*arrays), dtype)


@pytest.mark.parametrize("equation,shapes,reference", EINSUMS, ids=[e[0] for e in EINSUMS])
def test_einsum_gradients(equation, shapes, reference):
    assert tl.gradcheck(lambda *ts: tl.einsum(equation, ts), [leaf(random(s, i + 7)) for i, s in enumerate(shapes)])


@pytest.mark.parametrize("call,error,message", [
    (lambda: tl.einsum("ij,jk->ik", tl.ones(2, 3)), ValueError, "names 2 operand\\(s\\), got 1"),
    (lambda: tl.einsum("ij->ik", tl.ones(2, 3)), ValueError, "output subscript k does not appear"),
    (lambda: tl.einsum("ij->ii", tl.ones(2, 2)), ValueError, "output subscript i appears more than once"),
    (lambda: tl.einsum("i1->i", tl.ones(2, 3)), ValueError, "invalid subscript '1' at index 1"),
    (lambda: tl.einsum("ij->i", tl.ones(2)), ValueError, "'ij' name 2 dims, but operand 0 has 1"),
    (lambda: tl.einsum("ij,jk->ik", tl.ones(2, 3), tl.ones(2, 3)), ValueError,
     "subscript j has size 2 in operand 1, which does not broadcast with its size 3"),
    (lambda: tl.einsum("i,i", tl.ones(2), tl.ones(2, dtype=tl.float64)), TypeError, "must share a dtype"),
    (lambda: tl.einsum("ii->i", tl.ones(2, 1)), ValueError,  # a diagonal does not broadcast
     "subscript i is repeated for operand 0 but its sizes differ, 2 != 1"),
    (lambda: tl.einsum("j,iji->j", tl.ones(3), tl.ones(1, 3, 2)), ValueError, "repeated for operand 1 .* 1 != 2"),
    (lambda: tl.einsum("i", [1.0]), TypeError, "operand 0 must be a Tensor, got float"),
])
def test_einsum_refusals(call, error, message):
    with pytest.raises(error, match=message):
        call()


# ---- tril/triu, diag, trace -------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("shape", [(3, 3), (3, 5), (2, 4, 3), (0, 2)], ids=str)
@pytest.mark.parametrize("k", [-1, 0, 2])
def test_triangles_match_numpy(dtype, shape, k):
    a = random(shape)
    assert_matches(tl.tensor(a.astype(dtype)).tril(k), np.tril(a, k), dtype)
    assert_matches(tl.triu(tl.tensor(a.astype(dtype)), k), np.triu(a, k), dtype)


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("shape", [(4,), (3, 3), (3, 5), (5, 2), (1,)], ids=str)
@pytest.mark.parametrize("k", [-2, 0, 1, 6])
def test_diag_matches_numpy(dtype, shape, k):
    a = random(shape)
    assert_matches(tl.diag(tl.tensor(a.astype(dtype)), k), np.diag(a, k), dtype)


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("shape", [(3, 3), (2, 5), (4, 1)], ids=str)
def test_trace_matches_numpy(dtype, shape):
    a = random(shape)
    assert_matches(tl.tensor(a.astype(dtype)).trace(), np.trace(a), dtype)


def test_matrix_part_gradients_dtypes_and_refusals():
    for fn in (lambda t: t.tril(), lambda t: t.triu(1), lambda t: tl.tril(t, -1), lambda t: t.diag(1),
               lambda t: tl.diag(t, -1), tl.trace):
        assert tl.gradcheck(fn, [leaf(random((3, 4), 2))])
    assert tl.gradcheck(lambda t: tl.diag(t, 1), [leaf(random(3, 3))])
    ints = tl.tensor([[1, 2], [3, 4]], dtype=tl.int32)
    assert ints.trace().dtype == tl.int64 and ints.trace().item() == 5 and ints.tril().dtype == tl.int32
    assert tl.diag(tl.tensor([1, 2])).tolist() == [[1, 0], [0, 2]]
    t = tl.tensor(random((3, 3)))
    assert t.tril_(-1) is t and np.count_nonzero(t.numpy()) == 3
    assert tl.ones(2, 2).triu_().tolist() == [[1, 1], [0, 1]]
    with pytest.raises(ValueError, match="tril: input must have at least 2 dimensions, got shape \\(3,\\)"):
        tl.ones(3).tril()
    with pytest.raises(ValueError, match="diag: input must be 1-D or 2-D, got shape \\(2, 2, 2\\)"):
        tl.ones(2, 2, 2).diag()
    with pytest.raises(ValueError, match="trace: input must be a matrix \\(2-D\\), got shape \\(3,\\)"):
        tl.ones(3).trace()
    with pytest.raises(TypeError, match="triu: diagonal must be an int, got 1.5"):
        tl.ones(2, 2).triu(1.5)


# ---- var_mean/std_mean, count_nonzero, nonzero, where(cond), bincount, unique ------------------------------------
@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("shape,dim", [((5,), None), ((3, 4), 1), ((2, 3, 4), (0, 2))], ids=str)
@pytest.mark.parametrize("correction", [0, 1])
def test_var_mean_and_std_mean_match_numpy(dtype, shape, dim, correction):
    a = random(shape)
    axis = dim if dim is None or isinstance(dim, int) else tuple(dim)
    variance, mean = tl.var_mean(tl.tensor(a.astype(dtype)), dim, correction=correction)
    assert_matches(variance, a.var(axis=axis, ddof=correction), dtype)
    assert_matches(mean, a.mean(axis=axis), dtype)
    std, mean = tl.std_mean(tl.tensor(a.astype(dtype)), dim, keepdim=True, correction=correction)
    assert_matches(std, a.std(axis=axis, ddof=correction, keepdims=True), dtype)
    assert_matches(mean, a.mean(axis=axis, keepdims=True), dtype)


def test_var_mean_std_mean_gradients_and_the_unbiased_flag():
    assert tl.gradcheck(lambda t: tl.var_mean(t, 1)[0] + tl.var_mean(t, 1)[1], [leaf(random((3, 4)))])
    assert tl.gradcheck(lambda t: tl.std_mean(t, 0, keepdim=True)[0] * tl.std_mean(t)[1], [leaf(random((3, 4)))])
    a = random(6)
    # var(x, False) / var_mean(x, False): a bool in dim's place is unbiased, as in PyTorch
    np.testing.assert_allclose(tl.tensor(a).var(False).item(), a.var())
    np.testing.assert_allclose(tl.var_mean(tl.tensor(a), False)[0].item(), a.var())
    np.testing.assert_allclose(tl.std_mean(tl.tensor(a), True)[0].item(), a.std(ddof=1))
    with pytest.raises(TypeError, match="std_mean\\(\\) needs a floating-point tensor, got dtype int64"):
        tl.std_mean(tl.tensor([1, 2]))


@pytest.mark.parametrize("shape", [(), (6,), (3, 4), (2, 0, 3), (2, 3, 4)], ids=str)
def test_counting_and_searching_match_numpy(shape):
    a = np.random.default_rng(1).integers(-2, 3, shape) * 1.5
    t = tl.tensor(a)
    count = tl.count_nonzero(t)
    assert count.dtype == tl.int64 and count.item() == np.count_nonzero(a)
    if len(shape) >= 2:
        np.testing.assert_array_equal(t.count_nonzero(dim=(0, -1)).numpy(), np.count_nonzero(a, axis=(0, -1)))
    expected = np.argwhere(a) if a.ndim else np.zeros((int(a != 0), 0), dtype=np.int64)
    found = t.nonzero()
    assert found.dtype == tl.int64 and found.shape == expected.shape
    np.testing.assert_array_equal(found.numpy(), expected)
    as_tuple = tl.nonzero(t, as_tuple=True)
    for got, want in zip(as_tuple, np.nonzero(a.reshape(-1) if a.ndim == 0 else a)):
        np.testing.assert_array_equal(got.numpy(), want)
    assert len(tl.where(t > 0)) == max(a.ndim, 1)
    for got, want in zip(tl.where(t > 0), np.nonzero(a.reshape(-1) > 0 if a.ndim == 0 else a > 0)):
        assert got.dtype == tl.int64
        np.testing.assert_array_equal(got.numpy(), want)


def test_where_and_nonzero_take_tensors_only():
    with pytest.raises(TypeError, match="where\\(condition\\): condition must be a Tensor, got list"):
        tl.where([True, False])
    with pytest.raises(TypeError, match="nonzero: input must be a Tensor, got list"):
        tl.nonzero([1, 0])
    assert tl.where([True, False], tl.ones(2), 0.0).tolist() == [1.0, 0.0]  # with operands, their device is taken


def test_bincount_matches_numpy_with_pytorch_dtypes():
    x = np.random.default_rng(2).integers(0, 6, 30)
    counts = tl.bincount(tl.tensor(x))
    assert counts.dtype == tl.int64
    np.testing.assert_array_equal(counts.numpy(), np.bincount(x))
    np.testing.assert_array_equal(tl.tensor(x).bincount(minlength=10).numpy(), np.bincount(x, minlength=10))
    for weight_dtype, result_dtype in ((tl.float32, tl.float32), (tl.float64, tl.float64), (tl.int64, tl.float64),
                                       (tl.float16, tl.float64), (tl.bool, tl.float64)):
        weights = random(30, 3) * 4
        got = tl.bincount(tl.tensor(x), weights=tl.tensor(weights.astype(weight_dtype)))
        assert got.dtype == result_dtype
        reference = np.bincount(x, weights.astype(weight_dtype).astype(np.float64))
        np.testing.assert_allclose(got.numpy(), reference, rtol=1e-5)
    assert tl.bincount(tl.tensor([], dtype=tl.int64)).shape == (0,)
    assert tl.bincount(tl.tensor([1, 2], dtype=tl.uint8)).tolist() == [0, 1, 1]
    with pytest.raises(ValueError, match="bincount: input must hold non-negative integers, got -1"):
        tl.bincount(tl.tensor([-1, 1]))
    with pytest.raises(ValueError, match="bincount: input must be a 1-D tensor of non-negative integers"):
        tl.bincount(tl.tensor([1.0, 2.0]))
    with pytest.raises(ValueError, match="bincount: weights must be a tensor of the input's shape \\(2,\\)"):
        tl.bincount(tl.tensor([1, 1]), weights=tl.ones(1))
    with pytest.raises(ValueError, match="bincount: minlength must be an int >= 0, got -1"):
        tl.bincount(tl.tensor([1, 1]), minlength=-1)


@pytest.mark.parametrize("shape", [(), (7,), (3, 4), (0,)], ids=str)
def test_unique_matches_numpy(shape):
    a = np.random.default_rng(3).integers(0, 4, shape).astype(np.float32)
    values, inverse, counts = tl.tensor(a).unique(return_inverse=True, return_counts=True)
    want_values, want_inverse, want_counts = np.unique(a, return_inverse=True, return_counts=True)
    assert values.dtype == tl.float32 and inverse.dtype == tl.int64 and counts.dtype == tl.int64
    assert inverse.shape == a.shape
    np.testing.assert_array_equal(values.numpy(), want_values)
    np.testing.assert_array_equal(inverse.numpy(), want_inverse.reshape(a.shape))
    np.testing.assert_array_equal(counts.numpy(), want_counts)
    np.testing.assert_array_equal(tl.unique(tl.tensor(a), sorted=False).numpy(), want_values)


def test_unique_along_a_dim_and_nans():
    rows = tl.tensor([[3, 1], [3, 1], [0, 2]])
    values, inverse, counts = tl.unique(rows, dim=0, return_inverse=True, return_counts=True)
    assert values.tolist() == [[0, 2], [3, 1]] and inverse.tolist() == [1, 1, 0] and counts.tolist() == [1, 2]
    values, inverse = tl.unique(tl.tensor([[3, 1, 3], [3, 1, 3]]), dim=1, return_inverse=True)
    assert values.tolist() == [[1, 3], [1, 3]] and inverse.tolist() == [1, 0, 1]
    values, counts = tl.tensor([nan, 1.0, nan]).unique(return_counts=True)  # each NaN is its own value
    assert values.numpy()[0] == 1.0 and np.isnan(values.numpy()[1:]).all() and counts.tolist() == [1, 1, 1]
    assert tl.unique(tl.tensor([True, False, True])).tolist() == [False, True]


# ---- scatter, scatter_add ------------------------------------------------------------------------------------------
def numpy_scatter(x, dim, index, src, add):
    out = x.copy()
    for position in np.ndindex(*index.shape):
        target = list(position)
        target[dim] = index[position]
        value = src[position] if isinstance(src, np.ndarray) else src
        out[tuple(target)] = out[tuple(target)] + value if add else value
    return out


def distinct_index(shape, dim, size, seed):
    """Indices along ``dim`` that do not repeat (a repeated one makes scatter's result order-dependent)."""
    rng = np.random.default_rng(seed)
    moved = np.moveaxis(np.zeros(shape, dtype=np.int64), dim, -1)
    for position in np.ndindex(*moved.shape[:-1]):
        moved[position] = rng.permutation(size)[:moved.shape[-1]]
    return np.moveaxis(moved, -1, dim)


SCATTER_CASES = [((4, 5), 0, (3, 5), (3, 6)), ((4, 5), 1, (4, 2), (4, 3)), ((3, 4, 2), 2, (2, 3, 2), (3, 3, 2)),
                 ((5,), 0, (3,), (3,))]


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("shape,dim,index_shape,src_shape", SCATTER_CASES, ids=str)
def test_scatter_matches_numpy(dtype, shape, dim, index_shape, src_shape):
    x, src = random(shape, 1), random(src_shape, 2)
    index = distinct_index(index_shape, dim, shape[dim], 3)
    repeated = np.random.default_rng(4).integers(0, shape[dim], index_shape)
    cast = lambda a: tl.tensor(a.astype(dtype))  # noqa: E731
    assert_matches(cast(x).scatter(dim, tl.tensor(index), cast(src)), numpy_scatter(x, dim, index, src, False), dtype)
    assert_matches(tl.scatter(cast(x), dim, tl.tensor(index), value=2.5), numpy_scatter(x, dim, index, 2.5, False), dtype)
    assert_matches(cast(x).scatter_add(dim, tl.tensor(repeated), cast(src)),
                   numpy_scatter(x, dim, repeated, src, True), dtype)


@pytest.mark.parametrize("shape,dim,index_shape,src_shape", SCATTER_CASES, ids=str)
def test_scatter_gradients(shape, dim, index_shape, src_shape):
    index = tl.tensor(distinct_index(index_shape, dim, shape[dim], 3))
    repeated = tl.tensor(np.random.default_rng(4).integers(0, shape[dim], index_shape))
    inputs = [leaf(random(shape, 1)), leaf(random(src_shape, 2))]
    assert tl.gradcheck(lambda x, src: x.scatter(dim, index, src), inputs)
    assert tl.gradcheck(lambda x, src: tl.scatter_add(x, dim, repeated, src), inputs)
    assert tl.gradcheck(lambda x: x.scatter(dim, index, -1.0), inputs[:1])


def test_scatter_in_place_dtypes_and_refusals():
    x = tl.zeros(2, 3)
    index = tl.tensor([[0, 1, 0], [1, 0, 1]])
    src = tl.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    assert x.scatter_(0, index, src) is x and x.tolist() == [[1, 5, 3], [4, 2, 6]]
    assert tl.zeros(2, 3).scatter_add_(0, tl.zeros(2, 3, dtype=tl.int64), src).tolist() == [[5, 7, 9], [0, 0, 0]]
    assert tl.zeros(2, 3, dtype=tl.int64).scatter(0, index, 2.5).tolist() == [[2, 2, 2], [2, 2, 2]]
    assert tl.zeros(2, 3).scatter(0, index.to(tl.int32), src).tolist() == [[1, 5, 3], [4, 2, 6]]
    w = tl.tensor(random((2, 3)), requires_grad=True)
    out = w * 1
    out.scatter_(1, tl.tensor([[0], [2]]), 0.0)
    out.sum().backward()
    np.testing.assert_array_equal(w.grad.numpy(), [[0, 1, 1], [1, 1, 0]])
    refusals = [
        (lambda: x.scatter(2, index, src), IndexError, "dim 2 is out of range for a tensor of 2 dimensions"),
        (lambda: x.scatter(0, index.float(), src), TypeError, "scatter: index must be an integer tensor of dtype int32 or int64"),
        (lambda: x.scatter(0, tl.tensor([1, 0, 0]), src), ValueError, "scatter: index has 1 dimensions but the input"),
        (lambda: x.scatter(0, index, src.double()), TypeError, "scatter: src must have the input's dtype float32"),
        (lambda: x.scatter(0, tl.tensor([[2, 0, 0]]), src), IndexError, "scatter: index 2 is out of range for dim 0"),
        (lambda: x.scatter(0, tl.tensor([[0, 1, 0, 1]]), src), ValueError, "no larger than src's \\(2, 3\\)"),
        (lambda: x.scatter(0, index), TypeError, "scatter takes one of src"),
        (lambda: x.scatter_add(0, index, 2.0), TypeError, "scatter_add: src must be a tensor, got float"),
    ]
    for call, error, message in refusals:
        with pytest.raises(error, match=message):
            call()


# ---- median -----------------------------------------------------------------------------------------------------
def numpy_lower_median(a, axis):
    n = a.shape[axis]
    ordered = np.sort(a, axis=axis)  # NaN last
    lower = np.take(ordered, (n - 1) // 2, axis=axis)
    return np.where(np.isnan(a).any(axis=axis), np.nan, lower)


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("shape", [(5,), (4,), (3, 4), (2, 3, 5)], ids=str)
def test_median_matches_numpy(dtype, shape):
    a = random(shape)
    t = tl.tensor(a.astype(dtype))
    assert_matches(t.median(), numpy_lower_median(a.reshape(-1), 0), dtype)
    for dim in range(-1, len(shape)):
        values, indices = t.median(dim)
        assert_matches(values, numpy_lower_median(a, dim), dtype)
        assert indices.dtype == tl.int64
        np.testing.assert_array_equal(np.take_along_axis(a, np.expand_dims(indices.numpy(), dim), dim).squeeze(dim),
                                      numpy_lower_median(a, dim))
        kept = tl.median(t, dim, keepdim=True)
        assert kept.values.shape == kept.indices.shape == tuple(1 if i == dim % len(shape) else n
                                                                 for i, n in enumerate(shape))


def test_median_ties_nans_gradients_and_refusals():
    assert tl.tensor([1.0, 4.0, 2.0, 3.0]).median().item() == 2.0  # the lower of the two middle values
    assert tl.tensor([3, 1, 2, 4]).median().item() == 2
    values, indices = tl.tensor([[1.0, nan, 2.0, nan], [3.0, 1.0, 2.0, 0.0]]).median(1)
    assert np.isnan(values.numpy()[0]) and values.numpy()[1] == 1.0 and indices.tolist() == [1, 1]
    assert np.isnan(tl.tensor([1.0, nan]).median().item()) and np.isnan(tl.ones(0).median().item())
    assert tl.tensor(2.5).median(0).values.item() == 2.5 and tl.tensor(2.5).median(0).indices.item() == 0
    assert tl.tensor([[5.0, 5.0, 1.0, 1.0]]).median(1).indices.tolist() == [3]  # as PyTorch picks among ties
    x = tl.tensor([1.0, 3.0, 3.0, 2.0], requires_grad=True)
    x.median().backward()
    assert x.grad.tolist() == [0, 0, 0, 1]
    with pytest.raises(ValueError, match="median\\(\\) of an empty int64 tensor has no value"):
        tl.zeros(0, dtype=tl.int64).median()
    assert tl.gradcheck(lambda t: t.median(), [leaf(random(6))])
    assert tl.gradcheck(lambda t: t.median(1).values, [leaf(random((3, 5)))])
    assert tl.gradcheck(lambda t: tl.median(t, 0, keepdim=True).values, [leaf(random((4, 3)))])
    with pytest.raises(IndexError, match="median\\(\\): dim 1 of size 0 has no median"):
        tl.ones(2, 0).median(1)
    with pytest.raises(TypeError, match="median of a bool tensor is not supported"):
        tl.tensor([True]).median()


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("values,expected", [
    ([2.0, 1.0, 2.0, 3.0, 2.0], [1 / 3, 0, 1 / 3, 0, 1 / 3]),  # three ties at the median
    ([[1.0, 2.0], [2.0, 5.0]], [[0, 0.5], [0.5, 0]]),  # the lower middle value, tied twice
    ([[2.0, nan], [nan, 1.0]], [[0, 0.5], [0.5, 0]]),  # a NaN median: shared among the NaNs
    ([4.0, 1.0, 3.0], [0, 0, 1]),
], ids=["three ties", "2-d two ties", "nans", "no tie"])
def test_median_without_dim_shares_the_gradient_among_ties(dtype, values, expected):
    """As PyTorch (and tl.max()): every element equal to the median gets an equal part of its gradient."""
    x = tl.tensor(np.asarray(values, dtype=dtype), requires_grad=True)
    (x.median() * 3).backward()
    assert x.grad.dtype == dtype
    np.testing.assert_allclose(x.grad.numpy(), 3 * np.asarray(expected), **tolerance(dtype))


@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.int16, np.uint8])
@pytest.mark.parametrize("shape", [(5,), (4,), (3, 4), (2, 3, 5)], ids=str)
def test_median_of_integers_matches_numpy(dtype, shape):
    a = np.random.default_rng(7).integers(0, 9, shape).astype(dtype)  # small range: many ties
    t = tl.tensor(a)
    whole = t.median()
    assert whole.dtype == dtype and whole.item() == np.sort(a.reshape(-1))[(a.size - 1) // 2]
    for dim in range(len(shape)):
        values, indices = t.median(dim)
        assert values.dtype == dtype and indices.dtype == tl.int64
        np.testing.assert_array_equal(values.numpy(), np.take(np.sort(a, axis=dim), (shape[dim] - 1) // 2, axis=dim))
        np.testing.assert_array_equal(np.take_along_axis(a, np.expand_dims(indices.numpy(), dim), dim).squeeze(dim),
                                      values.numpy())


# ---- printing -------------------------------------------------------------------------------------------------
# PyTorch 2.13's repr of the same tensors (its dtype names are "torch.float64"; tensorlib's "float64")
REPRS = [
    ("fractions", lambda: tl.tensor([1.5, 2.]), "tensor([1.5000, 2.0000])"),
    ("whole floats", lambda: tl.tensor([[1., -2.], [30., 4.]]), "tensor([[ 1., -2.],\n        [30.,  4.]])"),
    ("0-d", lambda: tl.tensor(3.14159), "tensor(3.1416)"),
    ("0-d whole", lambda: tl.tensor(-0.), "tensor(-0.)"),
    ("nan and inf", lambda: tl.tensor([nan, inf, -inf, 1.25]), "tensor([   nan,    inf,   -inf, 1.2500])"),
    ("all nan", lambda: tl.tensor([nan, nan]), "tensor([nan, nan])"),
    ("small -> scientific", lambda: tl.tensor([1e-5, 1.]), "tensor([1.0000e-05, 1.0000e+00])"),
    ("large -> scientific", lambda: tl.tensor([1.1e8, 1.]), "tensor([1.1000e+08, 1.0000e+00])"),
    ("wide range -> scientific", lambda: tl.tensor([-1., 2., 3000.]), "tensor([-1.0000e+00,  2.0000e+00,  3.0000e+03])"),
    ("whole wide range", lambda: tl.tensor([1., 2000.]), "tensor([1.0000e+00, 2.0000e+03])"),
    ("ints", lambda: tl.tensor([1, -20, 300]), "tensor([  1, -20, 300])"),
    ("bools", lambda: tl.tensor([[True, False], [False, True]]), "tensor([[ True, False],\n        [False,  True]])"),
    ("float64", lambda: tl.tensor([0.1, 0.2], dtype=tl.float64), "tensor([0.1000, 0.2000], dtype=float64)"),
    ("int32", lambda: tl.tensor([1, 2], dtype=tl.int32), "tensor([1, 2], dtype=int32)"),
    ("float16", lambda: tl.tensor([0.5, 1.25], dtype=tl.float16), "tensor([0.5000, 1.2500], dtype=float16)"),
    ("empty", lambda: tl.zeros(0), "tensor([])"),
    ("empty 2-d", lambda: tl.zeros(2, 0), "tensor([], size=(2, 0))"),
    ("empty int", lambda: tl.zeros(0, 3, dtype=tl.int64), "tensor([], size=(0, 3), dtype=int64)"),
    ("requires grad", lambda: tl.tensor([1., 2.], requires_grad=True), "tensor([1., 2.], requires_grad=True)"),
    ("grad_fn", lambda: tl.tensor([1., 2.], requires_grad=True) * 2, "tensor([2., 4.], grad_fn=<MulBackward>)"),
    ("wrapped rows", lambda: tl.arange(30.) / 7,
     "tensor([0.0000, 0.1429, 0.2857, 0.4286, 0.5714, 0.7143, 0.8571, 1.0000, 1.1429,\n"
     "        1.2857, 1.4286, 1.5714, 1.7143, 1.8571, 2.0000, 2.1429, 2.2857, 2.4286,\n"
     "        2.5714, 2.7143, 2.8571, 3.0000, 3.1429, 3.2857, 3.4286, 3.5714, 3.7143,\n"
     "        3.8571, 4.0000, 4.1429])"),
    ("summarised 1-d", lambda: tl.arange(2000.),
     "tensor([0.0000e+00, 1.0000e+00, 2.0000e+00,  ..., 1.9970e+03, 1.9980e+03,\n        1.9990e+03])"),
    ("summarised 2-d", lambda: tl.arange(2000).reshape(40, 50),
     "tensor([[   0,    1,    2,  ...,   47,   48,   49],\n"
     "        [  50,   51,   52,  ...,   97,   98,   99],\n"
     "        [ 100,  101,  102,  ...,  147,  148,  149],\n"
     "        ...,\n"
     "        [1850, 1851, 1852,  ..., 1897, 1898, 1899],\n"
     "        [1900, 1901, 1902,  ..., 1947, 1948, 1949],\n"
     "        [1950, 1951, 1952,  ..., 1997, 1998, 1999]])"),
    ("3-d", lambda: tl.arange(8.).reshape(2, 2, 2) / 4,
     "tensor([[[0.0000, 0.2500],\n         [0.5000, 0.7500]],\n\n        [[1.0000, 1.2500],\n         [1.5000, 1.7500]]])"),
    ("a long suffix moves to its own line", lambda: (tl.arange(9.) / 7).double().requires_grad_(),
     "tensor([0.0000, 0.1429, 0.2857, 0.4286, 0.5714, 0.7143, 0.8571, 1.0000, 1.1429],\n"
     "       dtype=float64, requires_grad=True)"),
]


@pytest.mark.parametrize("make,expected", [r[1:] for r in REPRS], ids=[r[0] for r in REPRS])
def test_repr_follows_pytorch(make, expected):
    assert repr(make()) == expected
