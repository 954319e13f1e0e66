"""Matrix product on the registered matmul kernel (BLAS on the CPU)."""

from __future__ import annotations

from kernels import matmul as matmul_kernels
from tensorlib.autograd import Function
from tensorlib.ops.elementwise import _operands


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
    """``a @ b`` with numpy.matmul's rules: batched, broadcast leading dims, 1-D operands promoted."""
    return MatMul.apply(*_operands(a, b))
