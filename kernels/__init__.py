"""Raw-array kernels, one package per op family (matmul, conv2d, pool2d, softmax_xent, batchnorm, activation), each a ladder of variants.

``kernels`` knows NumPy and CuPy arrays only, never Tensors. See ``kernels.registry`` for how a variant
is chosen; ``kernels.use(...)`` and ``kernels.variants(op)`` are re-exported here.
"""

from kernels.registry import get, ops, register, selected, use, variant, variants

__all__ = ["get", "ops", "register", "selected", "use", "variant", "variants"]

from kernels import activation, batchnorm, conv2d, matmul, pool2d, softmax_xent  # noqa: E402,F401  (importing a family registers its variants)
