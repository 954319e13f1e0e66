"""What the benchmarks ran on, and the machine's measured roofs.

CPU peak FLOP/s is cores x clock x FMA width, measured rather than looked up: an LLVM loop of fused
multiply-adds on the widest vectors the CPU has (16 float32 lanes with AVX-512, 8 with AVX2), twelve
independent accumulators so the FMA units never wait on a result, one copy per core. It is written in
LLVM IR through llvmlite (Numba's compiler) because Numba itself prefers 256-bit vectors on AVX-512 parts
and would report half the peak. Bandwidth is a parallel copy far larger than the caches (read + write
bytes over the time). The BLAS GEMM figure is the practical roof the convolutions' GEMMs can reach.
On a GPU the roofs are a device-to-device copy (``cudaMemcpyAsync`` of 256 MiB, five times the H100's L2,
read + write bytes over the time) and cuBLAS's FP32 GEMM through CuPy (``cupy.matmul``, which uses TF32
only when ``CUPY_TF32=1``), both timed with CUDA events; the pooling and batch-norm rows are reported as
a share of that copy's bandwidth. Each figure is the best of a few rounds: a busy neighbour can only make
a round slower.
"""

from __future__ import annotations

import ctypes
import datetime
import os
import platform
import socket
import threading
import time

import numpy as np

from tensorlib.device import cuda_device_name

ACCUMULATORS = 12


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def blas_pools() -> list[str]:
    from threadpoolctl import threadpool_info

    return [f"{p['internal_api']} {p['version']} ({p.get('architecture', '?')}, {p['num_threads']} threads)"
            for p in threadpool_info() if p["user_api"] == "blas"]


def blas_threads() -> int:
    from threadpoolctl import threadpool_info

    return next((p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"), cpu_cores())


def describe(device: str) -> dict:
    import numba

    info = {
        "host": socket.gethostname(),
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "device": device,
        "cpu": cpu_model(),
        "cores": cpu_cores(),
        "blas": blas_pools(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "numba": numba.__version__,
    }
    try:
        import torch
    except ImportError:
        info["torch"] = None
    else:
        info["torch"] = torch.__version__
    if device == "cuda":
        import cupy

        props = cupy.cuda.runtime.getDeviceProperties(cupy.cuda.Device().id)
        info["gpu"] = cuda_device_name()
        info["gpu_properties"] = {"multiprocessors": props.get("multiProcessorCount"), "l2_bytes": props.get("l2CacheSize"),
                                  "memory_bytes": props.get("totalGlobalMem"), "compute_capability": f"{props.get('major')}.{props.get('minor')}"}
        info["cuda_runtime"] = cupy.cuda.runtime.runtimeGetVersion()
        info["cuda_driver"] = cupy.cuda.runtime.driverGetVersion()
        info["cupy"] = cupy.__version__
        info["cupy_tf32"] = os.environ.get("CUPY_TF32", "0")
    return info


def _fma_kernel(lanes: int):
    """A compiled ``float fma_loop(int64 count)``: ACCUMULATORS chains of ``count`` vector FMAs each."""
    import llvmlite.binding as llvm

    llvm.initialize_native_target()
    llvm.initialize_native_asmprinter()
    vec = f"<{lanes} x float>"

    def splat(value):
        return "<" + ", ".join([f"float {value}"] * lanes) + ">"

    body = "\n".join(
        [f"  %a{k} = phi {vec} [{splat(1.0)}, %entry], [%b{k}, %loop]" for k in range(ACCUMULATORS)]
        + [f"  %b{k} = call {vec} @llvm.fma.v{lanes}f32({vec} %a{k}, {vec} {splat(0.5)}, {vec} {splat(0.25)})"
           for k in range(ACCUMULATORS)])
    total = "\n".join(f"  %s{k} = fadd {vec} %s{k - 1}, %b{k}" for k in range(1, ACCUMULATORS))
    ir = f"""
declare {vec} @llvm.fma.v{lanes}f32({vec}, {vec}, {vec})
define float @fma_loop(i64 %count) {{
entry:
  br label %loop
loop:
  %i = phi i64 [0, %entry], [%next, %loop]
{body}
  %next = add i64 %i, 1
  %done = icmp eq i64 %next, %count
  br i1 %done, label %exit, label %loop
exit:
  %s0 = fadd {vec} %b0, {splat(0.0)}
{total}
  %r = extractelement {vec} %s{ACCUMULATORS - 1}, i32 0
  ret float %r
}}
"""
    module = llvm.parse_assembly(ir)
    module.verify()
    features = llvm.get_host_cpu_features()
    target = llvm.Target.from_default_triple().create_target_machine(
        cpu=llvm.get_host_cpu_name(), features=features.flatten(), opt=2)
    engine = llvm.create_mcjit_compiler(module, target)
    engine.finalize_object()
    fn = ctypes.CFUNCTYPE(ctypes.c_float, ctypes.c_int64)(engine.get_function_address("fma_loop"))
    return fn, engine  # the engine owns the machine code: keep it alive while fn is used


def fma_lanes() -> int:
    import llvmlite.binding as llvm

    llvm.initialize_native_target()
    features = llvm.get_host_cpu_features()
    return 16 if features.get("avx512f") else 8 if features.get("avx") else 4


def peak_gflops(seconds: float, rounds: int) -> tuple[float, int]:
    """(GFLOP/s of the FMA loop on every core at once, float32 lanes per vector)."""
    lanes = fma_lanes()
    fn, _engine = _fma_kernel(lanes)
    fn(1000)
    start = time.perf_counter()
    fn(10**6)
    count = max(10**5, int(10**6 * seconds / (time.perf_counter() - start)))
    cores, best = cpu_cores(), 0.0
    for _ in range(rounds):
        threads = [threading.Thread(target=fn, args=(count,)) for _ in range(cores)]  # ctypes drops the GIL
        start = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - start
        best = max(best, 2 * lanes * ACCUMULATORS * count * cores / elapsed / 1e9)
    return best, lanes


def _parallel_copy():
    import numba

    @numba.njit(parallel=True, cache=True)
    def copy(src, dst):
        for i in numba.prange(src.size):
            dst[i] = src[i]

    return copy


def copy_gbs(nbytes: int, rounds: int) -> float:
    copy = _parallel_copy()
    src = np.ones(nbytes // 4, np.float32)
    dst = np.empty_like(src)
    copy(src, dst)
    best = min(_seconds(lambda: copy(src, dst)) for _ in range(rounds))
    return 2 * src.nbytes / best / 1e9


def gemm_gflops(n: int, rounds: int) -> float:
    a = np.ones((n, n), np.float32)
    b = np.ones((n, n), np.float32)
    np.matmul(a, b)
    best = min(_seconds(lambda: np.matmul(a, b)) for _ in range(rounds))
    return 2 * n**3 / best / 1e9


def _seconds(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def calibrate(device: str, quick: bool) -> dict:
    """The roofs of ``device``; ``quick`` uses small sizes (for the tiny shape set, a fraction of a second)."""
    rounds = 2 if quick else 5
    if device == "cuda":
        return _calibrate_cuda(quick, rounds)
    # the best of several longer rounds: single 0.1 s rounds read anywhere from 370 to 485 GFLOP/s here
    peak, lanes = peak_gflops(0.02 if quick else 0.25, rounds if quick else 2 * rounds)
    n = 256 if quick else 2048
    return {"peak_gflops": peak, "fma_lanes": lanes, "bandwidth_gbs": copy_gbs((1 << 24) if quick else (1 << 28), rounds),
            "gemm_gflops": gemm_gflops(n, rounds), "gemm_n": n,
            "method": f"peak: {ACCUMULATORS} chains of {lanes}-lane float32 FMAs per core; "
                      "bandwidth: parallel copy (read + write bytes); GEMM: numpy.matmul float32"}


def _calibrate_cuda(quick: bool, rounds: int) -> dict:
    import cupy

    from bench.timing import CudaTimer

    timer, copies = CudaTimer(hold=False), 10
    src = cupy.ones((1 << (24 if quick else 28)) // 4, cupy.float32)
    dst = cupy.empty_like(src)

    def copy():
        for _ in range(copies):  # back to back: the launches queue while the first copy runs
            dst.data.copy_from_device_async(src.data, src.nbytes)

    copy()
    bandwidth = 2 * src.nbytes / (min(timer.seconds(copy) for _ in range(rounds)) / copies) / 1e9
    n = 1024 if quick else 8192
    a, b = (cupy.random.standard_normal((n, n), dtype=cupy.float32) for _ in range(2))
    cupy.matmul(a, b)
    gemm = 2 * n**3 / min(timer.seconds(lambda: cupy.matmul(a, b)) for _ in range(rounds)) / 1e9
    mib = src.nbytes >> 20
    del src, dst, a, b
    cupy.get_default_memory_pool().free_all_blocks()  # the benchmarks run in other processes: give the memory back
    return {"peak_gflops": None, "bandwidth_gbs": bandwidth, "gemm_gflops": gemm, "gemm_n": n,
            "method": f"bandwidth: cudaMemcpyAsync device-to-device of {mib} MiB (read + write bytes); "
                      f"GEMM: cupy.matmul float32 (cuBLAS, CUPY_TF32={os.environ.get('CUPY_TF32', '0')}) on random "
                      "inputs; CUDA events, best of rounds"}
