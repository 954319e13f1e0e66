"""Timing one callable: its first call (JIT and compile time included) apart, then rounds of repeats.

On the CPU each call is timed with ``time.perf_counter``; on a GPU with CUDA events recorded on the
current stream around the call, so the time is the device's, not the launch's. Each round reports the
median and interquartile range of its repeats; the round with the lowest median is kept, because on a
shared machine another process can only make a round slower. Callables compared side by side (variants,
PyTorch) take their rounds in turn, so a busy spell hits them alike. Before each round the timer sleeps briefly:
worker threads of the previous library (OpenBLAS, Numba, PyTorch) keep spinning for a while after their
last call and would steal the cores from the next.
"""

from __future__ import annotations

import statistics
import time


class CpuTimer:
    def seconds(self, fn) -> float:
        start = time.perf_counter()
        fn()
        return time.perf_counter() - start


class CudaTimer:
    def __init__(self):
        import cupy

        self.cupy = cupy
        self.start, self.stop = cupy.cuda.Event(), cupy.cuda.Event()

    def seconds(self, fn) -> float:
        self.start.record()
        fn()
        self.stop.record()
        self.stop.synchronize()
        return self.cupy.cuda.get_elapsed_time(self.start, self.stop) / 1e3


def timer_for(device: str):
    return CudaTimer() if device == "cuda" else CpuTimer()


def measure(fns: dict, timer, repeats: int | None, rounds: int, settle_s: float, budget_s: float = 0.4) -> dict:
    """First-call, median and IQR milliseconds of each callable of ``fns`` (name -> callable).

    The callables' rounds are interleaved (a round of each, then the next round of each), so a busy
    spell on the machine hits them alike; ``repeats`` None picks about ``budget_s`` per round.
    """
    first, counts, best = {}, {}, {}
    for name, fn in fns.items():
        first[name] = timer.seconds(fn)
        warm = min(timer.seconds(fn) for _ in range(2))
        counts[name] = repeats or max(5, min(50, int(budget_s / max(warm, 1e-6))))
    for _ in range(rounds):
        for name, fn in fns.items():
            time.sleep(settle_s)
            fn()
            samples = [timer.seconds(fn) for _ in range(counts[name])]
            median = statistics.median(samples)
            if name not in best or median < best[name][0]:
                quartiles = statistics.quantiles(samples, n=4) if len(samples) > 1 else [median] * 3
                best[name] = (median, quartiles[2] - quartiles[0])
    return {name: {"first_call_ms": first[name] * 1e3, "compile_ms": max(0.0, (first[name] - median) * 1e3),
                   "median_ms": median * 1e3, "iqr_ms": iqr * 1e3, "repeats": counts[name], "rounds": rounds}
            for name, (median, iqr) in best.items()}
