"""The "cuda" device end to end. Under NUMBA_ENABLE_CUDASIM=1 it is simulated (host memory marked as
device memory, Numba CUDA kernels run by the simulator), which exercises dispatch, transfers, device checks
and ``model.to("cuda")`` without a GPU; on a GPU machine the same tests run on CuPy arrays."""

import numpy as np
import pytest

import nn
import tensorlib as tl
from nn import optim


def test_transfers_round_trip(tier):
    host = tl.randn(3, 4)
    device = host.to("cuda")
    assert device.device == "cuda" and host.device == "cpu"
    np.testing.assert_array_equal(device.cpu().numpy(), host.numpy())
    assert tl.zeros(2, device="cuda").device == "cuda"
    assert tl.randn(2, device="cuda").device == "cuda"
    assert tl.tensor([1.0, 2.0], device="cuda").device == "cuda"


def test_ops_stay_on_the_device_and_match_the_cpu(tier):
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((3, 4)), rng.standard_normal((4, 2))
    ca = tl.tensor(a, device="cuda", requires_grad=True)
    cb = tl.tensor(b, device="cuda", requires_grad=True)
    out = ((ca @ cb).relu().softmax(1) * 2 + ca[:, :2].exp()).sum()
    assert out.device == "cuda"
    out.backward()
    assert ca.grad.device == "cuda" and cb.grad.device == "cuda"
    ha, hb = tl.tensor(a, requires_grad=True), tl.tensor(b, requires_grad=True)
    expected = ((ha @ hb).relu().softmax(1) * 2 + ha[:, :2].exp()).sum()
    expected.backward()
    assert out.item() == pytest.approx(expected.item(), rel=1e-10)
    np.testing.assert_allclose(ca.grad.cpu().numpy(), ha.grad.numpy(), rtol=1e-10)
    np.testing.assert_allclose(cb.grad.cpu().numpy(), hb.grad.numpy(), rtol=1e-10)


def test_mixing_devices_names_both(tier):
    with pytest.raises(RuntimeError, match="cpu and cuda"):
        tl.ones(2) + tl.ones(2).to("cuda")


def tiny_cnn():
    return nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(2 * 3 * 3, 3))


def test_model_to_cuda_trains_like_the_cpu(tier, small_blocks_in_the_simulator):
    tl.manual_seed(0)
    cpu_model = tiny_cnn()
    cuda_model = tiny_cnn()
    cuda_model.load_state_dict(cpu_model.state_dict())
    weight = cuda_model[0].weight
    cuda_model.to("cuda")
    assert cuda_model[0].weight is weight and weight.device == "cuda"
    x = np.random.default_rng(1).standard_normal((2, 1, 6, 6)).astype(np.float32)
    y = np.array([0, 2])
    losses = []
    for model, device in ((cpu_model, "cpu"), (cuda_model, "cuda")):
        optimizer = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        run = []
        for _ in range(2):
            optimizer.zero_grad()
            loss = nn.functional.cross_entropy(model(tl.tensor(x, device=device)), tl.tensor(y, device=device))
            loss.backward()
            optimizer.step()
            run.append(loss.item())
        losses.append(run)
    np.testing.assert_allclose(losses[1], losses[0], rtol=1e-5)
    for (name, a), (_, b) in zip(cpu_model.state_dict().items(), cuda_model.state_dict().items()):
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-6, err_msg=name)


def test_assignments_take_values_from_either_device(tier):
    """Lists, NumPy arrays and CPU tensors assigned into a cuda tensor are copied to the device (CuPy's
    arrays refuse host arrays in an assignment), as PyTorch copies them."""
    t = tl.zeros(3, 4, device="cuda")
    t[0] = np.arange(4.0)
    t[:, 1] = [7.0, 8.0, 9.0]
    t[2] = tl.ones(4)
    t[tl.tensor([1]), 3] = 5.0
    t[[0, 2], 0] = tl.tensor([-1.0, -2.0])
    expected = np.zeros((3, 4), np.float32)
    expected[0] = np.arange(4.0)
    expected[:, 1] = [7.0, 8.0, 9.0]
    expected[2] = 1.0
    expected[1, 3] = 5.0
    expected[[0, 2], 0] = [-1.0, -2.0]
    assert t.device == "cuda"
    np.testing.assert_array_equal(t.cpu().numpy(), expected)
    t.fill_(tl.tensor(2.5))
    np.testing.assert_array_equal(t.cpu().numpy(), np.full((3, 4), 2.5, np.float32))
    t.copy_(np.ones((3, 4)))
    np.testing.assert_array_equal(t.cpu().numpy(), np.ones((3, 4), np.float32))
    with pytest.raises(RuntimeError, match=r"0-d tensor, got a tensor of shape \(2,\)"):
        t.fill_(tl.ones(2))


def test_out_of_range_index_arrays_raise_on_the_device(tier):
    """CuPy wraps an index array that reaches past its axis; tensorlib checks it, as NumPy does on the CPU."""
    t = tl.arange(12.0, device="cuda").reshape(3, 4)
    assert t[tl.tensor([2, -3]), 1:].cpu().numpy().tolist() == [[9.0, 10.0, 11.0], [1.0, 2.0, 3.0]]
    for index, message in (((tl.tensor([0, 3]),), "index 3 is out of bounds for axis 0 with size 3"),
                           ((Ellipsis, [1, 4]), "index 4 is out of bounds for axis 1 with size 4"),
                           ((np.array([True, False, True]), [-5]), "index -5 is out of bounds for axis 1 with size 4")):
        with pytest.raises(IndexError, match=message):
            t[index]
        with pytest.raises(IndexError, match=message):
            t[index] = 0.0


def test_backward_gradient_on_another_device_names_both(tier):
    x = tl.ones(3, device="cuda", requires_grad=True)
    with pytest.raises(RuntimeError, match="gradient is on cpu but the output is on cuda"):
        (x * 2).backward(tl.ones(3))
    (x * 2).backward(np.ones(3))  # an array (not a tensor) is taken onto the output's device
    np.testing.assert_array_equal(x.grad.cpu().numpy(), [2.0, 2.0, 2.0])


def test_gradcheck_runs_on_the_device(tier):
    """The perturbations, the projection weights and the analytic gradients stay on the inputs' device
    (elementwise ops and a reduction: every element costs two evaluations in the simulator)."""
    rng = np.random.default_rng(4)
    a = tl.tensor(rng.standard_normal((2, 3)), dtype=tl.float64, device="cuda", requires_grad=True)
    b = tl.tensor(rng.standard_normal((2, 3)), dtype=tl.float64, device="cuda", requires_grad=True)
    assert tl.gradcheck(lambda a, b: (a * b).tanh() + a.sigmoid() * b.sum(), [a, b])
    assert a.device == "cuda" and b.device == "cuda"
    with pytest.raises(tl.GradcheckError, match="gradient mismatch for input 0"):
        tl.gradcheck(lambda a: a.detach() ** 2 + a, [a])  # the detached square has no analytic gradient


def test_a_parameter_wraps_a_device_array(tier):
    data = tl.randn(2, 3, device="cuda").array
    parameter = nn.Parameter(data)
    assert parameter.device == "cuda" and parameter.array is data


def round_two_ops(x, y, device):
    """Every differentiable op of the second round of the Tensor API in one expression (a scalar)."""
    index = tl.tensor([[0, 1, 0], [1, 0, 1]], device=device)
    return (x.tril().sum() + x.triu(1).sum() * 2 + tl.diag(x, 1).sum() + tl.trace(x[:, :2]) * 3
            + tl.einsum("ij,kj->ik", x, y).sum() + tl.einsum("ii->i", x[:, :2]).sum() + tl.outer(x[0], y[1]).sum()
            + x.scatter(0, index, y).sum() * 2 + tl.scatter_add(x, 1, index, y).sum() + x.median(1).values.sum()
            + x.median() + tl.var_mean(x, 1)[0].sum() + tl.std_mean(x)[1] + x.addcmul(x, y, value=0.5).sum()
            + x.addcdiv(y, x * x + 1).sum() + x.clamp_min(0.1).sum() + x.clamp_max(0.1).sum() + x.t().contiguous()[1, 0])


def test_round_two_ops_on_cuda_match_the_cpu(tier):
    rng = np.random.default_rng(31)
    arrays = [rng.standard_normal((2, 3)), rng.standard_normal((2, 3))]
    results = {}
    for device in ("cpu", "cuda"):
        inputs = [tl.tensor(a, device=device, requires_grad=True) for a in arrays]
        out = round_two_ops(*inputs, device)
        out.backward()
        assert out.device == device and all(t.grad.device == device for t in inputs)
        results[device] = [out.detach().cpu().numpy()] + [t.grad.cpu().numpy() for t in inputs]
    for got, expected in zip(results["cuda"], results["cpu"]):
        np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-12)


def test_devices_and_the_counting_ops_on_cuda(tier):
    x = tl.tensor([[0.0, 1.5, -2.0], [1.5, 0.0, 3.0]], device="cuda")
    assert x.device == tl.device("cuda") and x.device.type == "cuda" and x.device.index == 0
    assert repr(x.device) == "device(type='cuda', index=0)" and x.type() == "tensorlib.cuda.FloatTensor"
    assert str(x.device) == f"{x.device}" == "cuda:0" and x.device == "cuda" and x.device != "cuda:0"
    assert {"cpu": 0, "cuda": 1}[x.device] == 1 and {x.device: 2}[tl.device("cuda:0")] == 2
    assert repr(x[0]) == "tensor([ 0.0000,  1.5000, -2.0000], device='cuda:0')"
    assert tl.cuda.is_available() and tl.cuda.device_count() >= 1 and tl.cuda.current_device() == 0
    assert x.to(tl.device("cpu")).device == "cpu" and tl.ones(1).to(x).device == "cuda"
    for result, expected in [(x.nonzero(), [[0, 1], [0, 2], [1, 0], [1, 2]]), (tl.where(x > 2)[1], [2]),
                             (x.count_nonzero(0), [1, 1, 2]), (x.unique(), [-2.0, 0.0, 1.5, 3.0]),
                             (x.unique(return_inverse=True)[1], [[1, 2, 0], [2, 1, 3]]),
                             (tl.bincount(tl.tensor([1, 1, 3], device="cuda")), [0, 2, 0, 1]),
                             (tl.randint_like(x, 1, 2), [[1, 1, 1], [1, 1, 1]]),
                             (tl.empty(2, device="cuda").bernoulli_(1.0), [1, 1])]:
        assert result.device == "cuda"
        assert result.cpu().tolist() == expected
    assert tl.empty(3, device="cuda").normal_().device == "cuda" and tl.randn_like(x).device == "cuda"


@pytest.mark.parametrize("dtype", [tl.int64, tl.float32, tl.int32, tl.int16, tl.int8, tl.uint8, tl.bool])
def test_scatter_add_of_every_dtype_on_cuda(tier, dtype):
    """CuPy's atomic add takes int32, uint32/64 and floats only: int64 adds as uint64 (the same bits), narrower
    integers and bools in int32. Repeated positions add up, as NumPy's add.at does on the cpu."""
    rng = np.random.default_rng(8)
    x = rng.integers(0, 3 if dtype == tl.bool else 60, (4, 5)).astype(dtype)
    src = rng.integers(0 if dtype in (tl.bool, tl.uint8) else -40, 3 if dtype == tl.bool else 40, (6, 5)).astype(dtype)
    index = rng.integers(0, 4, (6, 5))
    if dtype == tl.int64:  # beyond int32 and float64's exact integers, and wrapping past int64's max
        x[0, 0], src[0, 0], index[0, 0] = 2**62 + 1, 2**62, 0
    expected = x.copy()
    np.add.at(expected, (index, np.arange(5)), src)
    on_cuda = tl.tensor(x, device="cuda").scatter_add(0, tl.tensor(index, device="cuda"), tl.tensor(src, device="cuda"))
    assert on_cuda.device == "cuda" and on_cuda.dtype == dtype
    np.testing.assert_array_equal(on_cuda.cpu().numpy(), expected)
    in_place = tl.tensor(x, device="cuda")
    in_place.scatter_add_(1, tl.tensor(index[:4, :3] % 5, device="cuda"), tl.tensor(src[:4], device="cuda"))
    expected = x.copy()
    np.add.at(expected, (np.arange(4)[:, None], index[:4, :3] % 5), src[:4, :3])
    np.testing.assert_array_equal(in_place.cpu().numpy(), expected)


def test_median_unique_and_printing_on_cuda(tier):
    ints = np.random.default_rng(9).integers(0, 5, (3, 6))
    x = tl.tensor(ints, device="cuda")
    assert x.median().device == "cuda" and x.median().item() == np.sort(ints.reshape(-1))[(ints.size - 1) // 2]
    values, indices = x.median(1)
    np.testing.assert_array_equal(values.cpu().numpy(), np.sort(ints, axis=1)[:, 2])
    picked = np.take_along_axis(ints, indices.cpu().numpy()[:, None], 1)[:, 0]
    np.testing.assert_array_equal(picked, values.cpu().numpy())
    ties = tl.tensor([2.0, 1.0, 2.0, 3.0, 2.0], device="cuda", requires_grad=True)
    ties.median().backward()
    np.testing.assert_allclose(ties.grad.cpu().numpy(), [1 / 3, 0, 1 / 3, 0, 1 / 3], rtol=1e-6)
    values, inverse, counts = tl.tensor([np.nan, 1.0, np.nan, 1.0], device="cuda").unique(return_inverse=True,
                                                                                            return_counts=True)
    assert values.device == "cuda" and counts.cpu().tolist() == [2, 1, 1]  # each NaN its own value, as on the cpu
    assert values.cpu().numpy()[0] == 1.0 and np.isnan(values.cpu().numpy()[1:]).all()
    assert inverse.cpu().tolist() == [1, 0, 2, 0]
    half_weights = tl.ones(3, dtype=tl.float16, device="cuda")
    assert tl.bincount(tl.tensor([0, 2, 2], device="cuda"), half_weights).dtype == tl.float64
    large = tl.arange(2000.0).reshape(40, 50)
    assert repr(large.to("cuda")) == repr(large)[:-1] + ", device='cuda:0')"  # the summarised corners only


def test_data_and_array_on_the_device(tier):
    """.data is a device tensor on the same memory; .array is the device array (CuPy on a GPU)."""
    w = tl.tensor([1.0, -2.0], device="cuda", requires_grad=True)
    (w * w).sum().backward()
    assert w.data.device == "cuda" and w.data.array is w.array
    if tier == "gpu":
        assert type(w.array).__module__.startswith("cupy")
    w.data = w.data - 0.25 * w.grad
    w.data.sub_(0.25 * w.grad)
    np.testing.assert_allclose(w.detach().cpu().numpy(), [0.0, 0.0])
