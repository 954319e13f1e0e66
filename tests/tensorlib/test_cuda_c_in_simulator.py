"""The GPU's CUDA C defaults (conv2d v6, matmul v7, activation gradients v2) driving the simulated "cuda" device.

Under NUMBA_ENABLE_CUDASIM=1 CuPy is absent, so the simulated device normally runs the Numba variants. Here
the CUDA C variants are made available, with their modules built for the host (``kernels.host_cuda``): the
"cuda" device then dispatches conv2d, matmul and the activation gradients exactly as on a GPU, through the
CUDA C launchers, while pooling and the loss run on the Numba kernels in the simulator. A few SGD steps of a small CNN
must match the CPU's, which checks the glue a GPU run depends on (the autograd ops calling the launchers
with device arrays, the fused ReLU epilogue, the transposed and batched products of backward).
"""

import numpy as np
import pytest

import nn
import tensorlib as tl
from kernels import host_cuda, registry
from kernels.activation import cupy_cuda as activation_cuda
from kernels.conv2d import cupy_cuda as conv_cuda
from kernels.matmul import cupy_cuda as matmul_cuda
from nn import optim

AVAILABLE, WHY = host_cuda.available()
pytestmark = [pytest.mark.cudasim, pytest.mark.skipif(not AVAILABLE, reason=WHY)]


@pytest.fixture
def cuda_c_defaults(monkeypatch):
    """Yields the names of the CUDA C kernels launched (a list, in order)."""
    launched = []

    def recording_module(path, options=()):
        built = host_cuda.module(path, options)

        class Recorder:
            def get_function(self, name):
                kernel = built.get_function(name)

                def launch(grid, block, args, **kwargs):
                    launched.append(name)
                    kernel(grid, block, args, **kwargs)

                return launch

        return Recorder()

    for launcher in (conv_cuda, matmul_cuda, activation_cuda):
        monkeypatch.setattr(launcher, "raw_module", recording_module)
    probe = registry.backend_available
    monkeypatch.setattr(registry, "backend_available", lambda backend: backend == "cupy" or probe(backend))
    expected = {"conv2d_forward": "cupy.v6_implicit_gemm_taps", "conv2d_backward_input": "cupy.v6_implicit_gemm_taps",
                "conv2d_backward_weight": "cupy.v6_implicit_gemm_taps", "matmul": "cupy.v7_cuda_blocktile",
                "activation_backward": "cupy.v2_one_pass"}
    for op, key in expected.items():
        assert registry.selected(op, "cuda")[0].key == key, op
    return launched


def small_cnn():
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(4, 6, 3, stride=2, padding=1), nn.ReLU(),
        nn.Flatten(), nn.Linear(6 * 2 * 2, 5), nn.ReLU(), nn.Linear(5, 3),
    )


def test_gpu_defaults_train_like_the_cpu(cuda_c_defaults, small_blocks_in_the_simulator):
    tl.manual_seed(0)
    cpu_model, cuda_model = small_cnn(), small_cnn()
    cuda_model.load_state_dict(cpu_model.state_dict())
    cuda_model.to("cuda")
    x = np.random.default_rng(1).standard_normal((3, 1, 8, 8)).astype(np.float32)
    y = np.array([0, 2, 1])
    losses = []
    for model, device in ((cpu_model, "cpu"), (cuda_model, "cuda")):
        optimizer = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        run = []
        for _ in range(3):
            optimizer.zero_grad()
            loss = nn.functional.cross_entropy(model(tl.tensor(x, device=device)), tl.tensor(y, device=device))
            loss.backward()
            optimizer.step()
            run.append(loss.item())
        losses.append(run)
    np.testing.assert_allclose(losses[1], losses[0], rtol=1e-5)
    for (name, a), (_, b) in zip(cpu_model.state_dict().items(), cuda_model.state_dict().items()):
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-6, err_msg=name)
    assert set(cuda_c_defaults) == {"conv2d_forward_implicit_gemm_m16_taps_f32", "sgemm_v7_scalar",
                                    "conv2d_backward_input_implicit_gemm_m16_taps_f32",
                                    "conv2d_backward_weight_implicit_gemm_m16_taps_f32", "activation_backward_relu_f32"}


def test_fused_conv_relu_on_the_gpu_default(cuda_c_defaults):
    rng = np.random.default_rng(2)
    x, w, b = (rng.standard_normal(s).astype(np.float32) for s in ((2, 3, 7, 7), (5, 3, 3, 3), (5,)))
    device_x, host_x = tl.tensor(x, device="cuda", requires_grad=True), tl.tensor(x, requires_grad=True)
    out = tl.conv2d_relu(device_x, tl.tensor(w, device="cuda"), tl.tensor(b, device="cuda"), padding=1)
    expected = tl.conv2d(host_x, tl.tensor(w), tl.tensor(b), padding=1).relu()
    assert out.device == "cuda"
    np.testing.assert_allclose(out.detach().cpu().numpy(), expected.detach().numpy(), rtol=1e-5, atol=1e-6)
    out.sum().backward()
    expected.sum().backward()
    np.testing.assert_allclose(device_x.grad.cpu().numpy(), host_x.grad.numpy(), rtol=1e-5, atol=1e-6)
    assert cuda_c_defaults[:2] == ["conv2d_forward_implicit_gemm_relu_m16_taps_f32", "activation_backward_relu_f32"]
