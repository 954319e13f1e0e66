"""Every tensorlib op on the "cuda" device gives the CPU's values and gradients (float64, rtol 1e-10).

Runs in two tiers: the simulator (NUMBA_ENABLE_CUDASIM=1: simulated device arrays, the Numba CUDA kernels in
the simulator) and a real GPU, where the same ops run on CuPy arrays — CuPy's elementwise math and
reductions, and the project's Numba and CuPy kernels. Shapes are tiny: the simulator runs ~1 ms per thread.
"""

import numpy as np
import pytest

import nn.functional as F
import tensorlib as tl


rng = np.random.default_rng(0)
X = rng.standard_normal((2, 3, 4))
POS = rng.uniform(0.3, 2.0, (2, 3, 4))
Y = rng.standard_normal((3, 1))
IMG = rng.standard_normal((2, 2, 5, 5))
W = rng.standard_normal((4, 1, 3, 3))
B = rng.standard_normal(4)
LOGITS = rng.standard_normal((5, 4))
LABELS = np.array([0, 3, 1, 3, 2])

def inplace_and_small_ops(x, y):
    z = x * 1.0
    z += y
    z *= y
    z.clamp_(-1.0, 1.0)
    index = tl.tensor(np.array([[[0, 3], [1, 1], [2, 0]]] * 2), device=x.device)
    return (z + x.clamp(y - 1, y + 1) + x.logsumexp(2, keepdim=True) + x.cumsum(1) + x % 0.7 + x.clone()
            + x.gather(2, index).sum(2, keepdim=True))


# name: (function of tensors, float64 inputs); the output may be a tensor or a tuple of tensors
OPS = {
    "inplace_and_small_ops": (inplace_and_small_ops, [X, Y]),
    "neg_exp_log_sqrt": (lambda x, p: (-x).exp() + p.log() + p.sqrt(), [X, POS]),
    "abs_tanh_sigmoid": (lambda x: x.abs() + x.tanh() + x.sigmoid(), [X]),
    "relu_clamp_pow": (lambda x, p: x.relu() + x.clamp(-0.5, 0.6) + p**1.5 + 2.0**x, [X, POS]),
    "erf_gelu_elu_leaky": (lambda x: tl.erf(x) + F.gelu(x) + F.gelu(x, approximate="tanh") + F.elu(x)
                           + F.leaky_relu(x, 0.1), [X]),
    "broadcasting_arithmetic": (lambda x, y: (x + y) * (x - y) / (y * y + 1), [X, Y]),
    "maximum_minimum_where": (lambda x, y: tl.maximum(x, y) + tl.minimum(x, y) + tl.where(x > 0, x, y), [X, Y]),
    # conditions from the host (a list, a NumPy array, a bool) are made on the operands' device
    "where_host_condition": (lambda x, y: tl.where([True, False, False, True], x, y) + tl.where(X > 0.5, y, x)
                             + tl.where(True, x, 0.0), [X, Y]),
    "pow_number_base": (lambda x: 2.0**x + tl.tensor(0.0, dtype=tl.float64, device=x.device) ** (x * x + 1), [X]),
    "sum_mean": (lambda x: (x.sum(1, keepdim=True) * x.mean((0, 2), keepdim=True)).sum() + x.mean(), [X]),
    "var_std": (lambda x: x.var(2).sum() + x.std(1, correction=0).sum(), [X]),
    "max_min": (lambda x: x.max(2)[0].sum() + x.min(1)[0].sum() + x.max(), [X]),
    "softmax_log_softmax": (lambda x: x.softmax(2) * 3 + x.log_softmax(1), [X]),
    "shapes": (lambda x: x.reshape(6, 4).transpose(0, 1).flatten().unsqueeze(0) * 2
               + x.permute(2, 0, 1).reshape(1, 24), [X]),
    "expand_squeeze": (lambda y: y.expand(3, 4).unsqueeze(0).squeeze(0) * 2, [Y]),
    "getitem": (lambda x: x[1, ::2, 1:] + x[0, tl.tensor([2, 0]), :3].sum() + x[..., [3, -1, 0]].sum()
                + x[np.array([True, False])].sum(), [X]),
    "cat_stack": (lambda x: tl.cat([x, x * 2], 1).sum(1) + tl.stack([x[0], x[1]]).sum(1), [X]),
    "pad": (lambda i: tl.pad(i, (1, 2, 0, 1)) + tl.pad(i, (1, 2, 0, 1), mode="reflect")
            + tl.pad(i, (1, 2, 0, 1), mode="replicate") + tl.pad(i, (1, 2, 0, 1), mode="circular"), [IMG]),
    # 1-D @ 1-D: backward multiplies a broadcast (read-only, stride-0) gradient
    "matmul_vectors": (lambda a, b: (a @ b) + tl.dot(a, b), [B, B[::-1].copy()]),
    "matmul_linear": (lambda x, w, b: (x @ w.reshape(4, 9)[:, :4]) + F.linear(x, w.reshape(4, 9)[:, :4], b),
                      [X, W, B]),
    "conv2d": (lambda i, w, b: tl.conv2d(i, w, b, stride=(1, 2), padding=1, groups=2), [IMG, W, B]),
    "conv2d_dilated": (lambda i, w: tl.conv2d(i, w.reshape(2, 2, 3, 3), dilation=2, padding=1), [IMG, W]),
    "conv2d_relu": (lambda i, w, b: tl.conv2d_relu(i, w, b, padding=1, groups=2), [IMG, W, B]),
    "conv_transpose2d": (lambda i, w, b: tl.conv_transpose2d(i, w.reshape(2, 2, 3, 3), b[:2], stride=2,
                                                           padding=1, output_padding=1), [IMG, W, B]),
    # output_padding 1 >= stride 1, allowed by dilation 2: the input gets a zero row and column appended
    "conv_transpose2d_grouped_dilated": (lambda i, w: tl.conv_transpose2d(
        i[:1, :, :3, :4], w.reshape(2, 2, 3, 3), groups=2, dilation=2, padding=1, output_padding=1), [IMG, W]),
    "adaptive_max_pool": (lambda i: tl.cat([tl.adaptive_max_pool2d(i, (3, 2)).flatten(),
                                            tl.adaptive_max_pool2d(i, (None, 3)).flatten()]), [IMG]),
    "max_avg_pool": (lambda i: tl.max_pool2d(i, 2, ceil_mode=True).sum() + tl.avg_pool2d(i, 3, 2, 1).sum(), [IMG]),
    "lp_adaptive_pool": (lambda i: tl.lp_pool2d(i.abs() + 0.1, 2, 2).sum() + tl.adaptive_avg_pool2d(i, 2).sum(),
                         [IMG]),
    "cross_entropy": (lambda z: F.cross_entropy(z, tl.tensor(LABELS, device=z.device))
                      + F.cross_entropy(z, tl.tensor(LABELS, device=z.device), label_smoothing=0.1,
                                        weight=tl.tensor(np.arange(1.0, 5.0), device=z.device)), [LOGITS]),
    "nll_mse": (lambda z: F.nll_loss(z.log_softmax(1), tl.tensor(LABELS, device=z.device), reduction="sum")
                + F.mse_loss(z, z.detach() * 0.5), [LOGITS]),
    "batch_norm": (lambda i, w, b: F.batch_norm(i, None, None, w[:2, 0, 0, 0], b[:2], training=True)
                   + F.batch_norm(i, tl.tensor(B[:2], device=i.device), tl.tensor(np.abs(B[2:]) + 0.5,
                                  device=i.device), training=False), [IMG, W, B]),
}


def run(fn, arrays, device):
    inputs = [tl.tensor(a, dtype=tl.float64, device=device, requires_grad=True) for a in arrays]
    out = fn(*inputs)
    projection = tl.tensor(np.random.default_rng(1).standard_normal(out.shape), dtype=tl.float64, device=device)
    (out * projection).sum().backward()
    assert out.device == device and all(t.grad is None or t.grad.device == device for t in inputs)
    return out.detach().cpu().numpy(), [None if t.grad is None else t.grad.cpu().numpy() for t in inputs]


@pytest.mark.parametrize("name", sorted(OPS))
def test_op_on_cuda_matches_the_cpu(tier, name):
    fn, arrays = OPS[name]
    expected, expected_grads = run(fn, arrays, "cpu")
    got, grads = run(fn, arrays, "cuda")
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-12)
    for index, (g, e) in enumerate(zip(grads, expected_grads)):
        assert (g is None) == (e is None), f"input {index}"
        if e is not None:
            np.testing.assert_allclose(g, e, rtol=1e-10, atol=1e-12, err_msg=f"gradient of input {index}")


def test_matmul_backward_takes_a_broadcast_gradient(tier):
    """sum() of a 0-d product hands matmul a broadcast (read-only, stride-0) gradient."""
    a = tl.tensor(B, device="cuda", requires_grad=True)
    b = tl.tensor(B[::-1].copy(), device="cuda", requires_grad=True)
    (a @ b).sum().backward()
    np.testing.assert_allclose(a.grad.cpu().numpy(), B[::-1], rtol=1e-12)
    np.testing.assert_allclose(b.grad.cpu().numpy(), B, rtol=1e-12)
