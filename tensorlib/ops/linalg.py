"""Matrix product on the registered matmul kernel (BLAS on the CPU)."""

from __future__ import annotations

import numpy as np

from kernels import matmul as matmul_kernels
from tensorlib.autograd import Function
from tensorlib.tensor import Tensor


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


def matmul(a, b):
    """``a @ b`` with numpy.matmul's rules: batched, broadcast leading dims, 1-D operands promoted. Both
    operands must be tensors of one dtype (as in PyTorch: no silent promotion of a whole product)."""
    a = Tensor._make(a) if isinstance(a, np.ndarray) else a
    b = Tensor._make(b) if isinstance(b, np.ndarray) else b
    if not isinstance(a, Tensor) or not isinstance(b, Tensor):
        raise TypeError(f"matmul needs two tensors, got {type(a).__name__} and {type(b).__name__}")
    if a.dtype != b.dtype:
        raise TypeError(f"matmul: the operands must share a dtype, got {a.dtype} and {b.dtype}")
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError(f"matmul needs operands of at least one dimension, got shapes {a.shape} and {b.shape}")
    return MatMul.apply(a, b)


def mm(a, b):
    """The product of two matrices (2-D only, as torch.mm)."""
    if a.ndim != 2 or b.ndim != 2:
        raise ValueError(f"mm needs two 2-D tensors, got shapes {a.shape} and {b.shape}")
    return matmul(a, b)


def bmm(a, b):
    """Batched product of (B, n, k) and (B, k, m) tensors (3-D only, same batch, as torch.bmm)."""
    if a.ndim != 3 or b.ndim != 3 or a.shape[0] != b.shape[0]:
        raise ValueError(f"bmm needs two 3-D tensors with the same batch size, got shapes {a.shape} and {b.shape}")
    return matmul(a, b)
