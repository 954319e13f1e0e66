"""What a GPU machine offers the gpu-check run: each package the gpu tier and the benchmarks import (a
missing one would fail them for a reason that has nothing to do with the kernels), the GPU, NCCL, and
whether the two kernel compilers work there: CuPy's NVRTC (every CuPy array operation and every CUDA C
kernel of the project is compiled by it at run time) and Numba's NVVM, each tried on a one-line kernel, so
a machine without them shows at once instead of as hundreds of failing tests.

    python -m bench.gpu_env
"""

from __future__ import annotations

import importlib
import importlib.metadata

import numpy as np

from kernels import device_arrays

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
    if reason is None and device_arrays.simulating():
        print(f"{'gpu':18} none: Numba's CUDA simulator stands in (NUMBA_ENABLE_CUDASIM=1)")
    elif reason is None:
        from tensorlib.device import cuda_device_name

        print(f"{'gpu':18} {cuda_device_name()}")
        for name, probe in (("cupy kernels", cupy_probe), ("numba kernels", numba_probe)):
            print(f"{name:18} {probe_report(probe)}")
    print(f"{'nccl':18} {'available' if nccl_available() else 'not found (the NCCL tests skip)'}")
    print(f"{'host allocator':18} {'tuned' if tl.host_allocator_tuned() else 'system'}")


def probe_report(probe) -> str:
    """"ok" and what the probe returns, or the failure with its error."""
    try:
        detail = probe()
    except Exception as error:  # any failure to compile or launch is what this report is for
        return f"FAILED ({type(error).__name__}: {error})"
    return "ok" + (f" ({detail})" if detail else "")


def cupy_probe() -> str:
    """A CuPy elementwise operation and a RawModule kernel (both NVRTC), checked; the NVRTC version."""
    import cupy

    x = cupy.arange(4, dtype=cupy.float32)
    kernel = cupy.RawModule(code='extern "C" __global__ void one_more(float* y) { y[threadIdx.x] += 1.f; }')
    kernel.get_function("one_more")((1,), (4,), (x,))
    if (x * 2).get().tolist() != [2.0, 4.0, 6.0, 8.0]:
        raise RuntimeError(f"wrong result {(x * 2).get().tolist()}")
    major, minor = cupy.cuda.nvrtc.getVersion()
    return f"NVRTC {major}.{minor}"


def numba_probe() -> str:
    """A Numba CUDA kernel compiled (NVVM), launched and checked."""
    from numba import cuda

    @cuda.jit
    def one_more(y):
        y[cuda.threadIdx.x] += 1

    y = cuda.to_device(np.zeros(4, np.float32))
    one_more[1, 4](y)
    if y.copy_to_host().tolist() != [1.0] * 4:
        raise RuntimeError(f"wrong result {y.copy_to_host().tolist()}")
    return ""


if __name__ == "__main__":
    main()
