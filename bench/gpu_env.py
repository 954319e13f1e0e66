"""What a GPU machine offers the gpu-check run: each package the gpu tier and the benchmarks import (a
missing one would fail them for a reason that has nothing to do with the kernels), the GPU, and NCCL.

    python -m bench.gpu_env
"""

from __future__ import annotations

import importlib
import importlib.metadata

PACKAGES = ("numpy", "numba", "numba_cuda", "cupy", "torch", "pytest", "pytest_benchmark", "hypothesis", "mpi4py")


def main():
    for module in PACKAGES:
        try:
            version = getattr(importlib.import_module(module), "__version__", "?")
        except Exception as error:  # an import that fails for any reason is what this report is for
            version = f"MISSING ({type(error).__name__}: {error})"
        print(f"{module:18} {version}")
    import tensorlib as tl
    from nn.parallel import nccl_available

    reason = tl.cuda_unavailable_reason()
    print(f"{'cuda':18} {'usable' if reason is None else 'not usable: ' + reason}")
    if reason is None:
        from tensorlib.device import cuda_device_name

        print(f"{'gpu':18} {cuda_device_name()}")
    print(f"{'nccl':18} {'available' if nccl_available() else 'not found (the NCCL tests skip)'}")
    print(f"{'host allocator':18} {'tuned' if tl.host_allocator_tuned() else 'system'}")


if __name__ == "__main__":
    main()
