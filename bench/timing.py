"""Timing one callable: its first call (JIT and compile time included) apart, then rounds of repeats.

On the CPU each call is timed with ``time.perf_counter``. On a GPU each call is timed with CUDA events
recorded on a stream around it, so the time is the device's, not the launch's:

- Which stream: tensorlib's kernels (CuPy's and the Numba ones, launched on CuPy's current stream) are timed
  on CuPy's current stream, PyTorch's on torch's current stream. Both are by default the legacy default
  stream (handle 0) of the device's primary context, so they are one stream and ordered with each other;
  timing each library on its own current stream stays right if either ever runs on another one.
- Kernel rows (``hold=True``): before each call a buffer of at least 256 MB is zeroed on that stream. It
  evicts the previous call's data from the L2 (an H100's holds 50 MB, more than a CIFAR-sized activation:
  repeats would otherwise read from it, and memory-bound rows would beat the DRAM copy they are compared
  with), and it keeps the GPU busy while the host launches the call: Python launchers take tens of
  microseconds, longer than many of these kernels run. The start event fires after the memset, when the
  call's kernels are already queued, so the launch gaps stay out. The memset is sized to last twice the
  longest launch of the last few calls (at most 4 GiB, about 1.3 ms on an H100); a call that takes longer
  to launch, or that waits on the device itself, has the excess counted. The host's launch time of each
  call is reported apart ("launch_ms"): where it exceeds the device time, eager use of the op is host-bound.
- Training steps (``hold=False``): plain events around the step. The GPU idles while Python runs, so the
  time is the step's wall time, host overhead included -- which is what a CUDA graph removes.

Each round reports the median and interquartile range of its repeats; the round with the lowest median is
kept, because on a shared machine another process can only make a round slower. Callables compared side by
side (variants, PyTorch) take their rounds in turn, so a busy spell hits them alike. Before each round the
timer sleeps briefly (on the CPU): worker threads of the previous library (OpenBLAS, Numba, PyTorch) keep
spinning for a while after their last call and would steal the cores from the next. A callable that raises
is dropped from the rounds and reported with its error; the others are still timed.
"""

from __future__ import annotations

import collections
import statistics
import time


class CpuTimer:
    def seconds(self, fn) -> float:
        start = time.perf_counter()
        fn()
        return time.perf_counter() - start


class CudaTimer:
    """CUDA events on ``stream()`` (default: CuPy's current stream) around the call; ``hold``: the memset
    of the module docstring before it."""

    FLUSH_BYTES = 256 << 20
    MAX_HOLD_BYTES = 4 << 30

    def __init__(self, stream=None, hold: bool = True):
        import cupy

        self.cupy = cupy
        self.stream = stream or cupy.cuda.get_current_stream
        self.before, self.start, self.stop = cupy.cuda.Event(), cupy.cuda.Event(), cupy.cuda.Event()
        self.buffer = cupy.empty(self.MAX_HOLD_BYTES, cupy.uint8) if hold else None
        self.hold_bytes = self.FLUSH_BYTES
        self.launches = collections.deque(maxlen=8)

    def seconds(self, fn) -> float:
        stream = self.stream()
        if self.buffer is not None:
            self.before.record(stream)
            self.cupy.cuda.runtime.memsetAsync(self.buffer.data.ptr, 0, self.hold_bytes, stream.ptr)
        self.start.record(stream)
        launched = time.perf_counter()
        fn()
        self.last_launch_s = time.perf_counter() - launched
        self.launches.append(self.last_launch_s)
        self.stop.record(stream)
        self.stop.synchronize()
        if self.buffer is not None:
            memset_bytes_per_s = self.hold_bytes / max(self.cupy.cuda.get_elapsed_time(self.before, self.start) / 1e3, 1e-6)
            wanted = int(2 * max(self.launches) * memset_bytes_per_s)
            self.hold_bytes = min(self.MAX_HOLD_BYTES, max(self.FLUSH_BYTES, wanted))
        return self.cupy.cuda.get_elapsed_time(self.start, self.stop) / 1e3


def torch_stream(torch):
    """A callable giving torch's current CUDA stream as a CuPy stream (for ``CudaTimer``)."""
    import cupy

    def current():
        stream = torch.cuda.current_stream()
        return cupy.cuda.Stream.null if stream.cuda_stream == 0 else cupy.cuda.Stream.from_external(stream)
    return current


def timers_for(device: str, torch=None, hold: bool = True) -> tuple:
    """(tensorlib's timer, PyTorch's timer) on ``device``; ``hold`` as in ``CudaTimer`` (kernel rows)."""
    if device != "cuda":
        return CpuTimer(), CpuTimer()
    return CudaTimer(hold=hold), (CudaTimer(torch_stream(torch), hold=hold) if torch is not None else None)


def error_text(error: BaseException) -> str:
    """The first line of an exception, with its type, short enough for a table cell."""
    text = f"{type(error).__name__}: {error}".splitlines()[0]
    return text if len(text) <= 160 else text[:157] + "..."


def measure(fns: dict, timer, repeats: int | None, rounds: int, settle_s: float, budget_s: float = 0.4,
            torch_timer=None) -> dict:
    """First-call, median and IQR milliseconds of each callable of ``fns`` (name -> callable).

    The callables' rounds are interleaved (a round of each, then the next round of each), so a busy
    spell on the machine hits them alike; ``repeats`` None picks about ``budget_s`` per round. Names that
    start with "torch" are PyTorch's, timed by ``torch_timer`` when given. A callable that raises gets
    ``{"error": text}`` instead of times.
    """
    first, counts, best, errors, launches = {}, {}, {}, {}, {}
    clocks = {name: torch_timer if torch_timer is not None and name.startswith("torch") else timer for name in fns}
    for name, fn in fns.items():
        try:
            first[name] = clocks[name].seconds(fn)
            warm = min(clocks[name].seconds(fn) for _ in range(2))
        except Exception as error:
            errors[name] = error_text(error)
            continue
        counts[name] = repeats or max(5, min(50, int(budget_s / max(warm, 1e-6))))
    for _ in range(rounds):
        for name, fn in fns.items():
            if name in errors:
                continue
            time.sleep(settle_s)
            try:
                fn()
                samples = []
                for _ in range(counts[name]):
                    samples.append(clocks[name].seconds(fn))
                    if hasattr(clocks[name], "last_launch_s"):
                        launches.setdefault(name, []).append(clocks[name].last_launch_s)
            except Exception as error:
                errors[name] = error_text(error)
                best.pop(name, None)
                continue
            median = statistics.median(samples)
            if name not in best or median < best[name][0]:
                quartiles = statistics.quantiles(samples, n=4) if len(samples) > 1 else [median] * 3
                best[name] = (median, quartiles[2] - quartiles[0])
    timed = {name: {"first_call_ms": first[name] * 1e3, "compile_ms": max(0.0, (first[name] - median) * 1e3),
                    "median_ms": median * 1e3, "iqr_ms": iqr * 1e3, "repeats": counts[name], "rounds": rounds}
             for name, (median, iqr) in best.items()}
    for name in timed.keys() & launches.keys():
        timed[name]["launch_ms"] = statistics.median(launches[name]) * 1e3
    return {**timed, **{name: {"error": text} for name, text in errors.items()}}
