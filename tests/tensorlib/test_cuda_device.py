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


def test_model_to_cuda_trains_like_the_cpu(tier):
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
