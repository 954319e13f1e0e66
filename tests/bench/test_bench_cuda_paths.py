"""The pure logic of ``tensorlib bench --device cuda`` without a GPU: the CUDA timer's order of work on the
stream and its hold (with a fake CuPy), PyTorch's FP32 settings (with a fake torch), error and skipped rows,
the TF32 tolerance, training rows with the graph variants, the Markdown of a GPU run, and results written
before a later section fails. The last test runs the kernel rows on "cuda" under the simulator."""

import json
import sys
import types

import numpy as np
import pytest

import kernels
from bench import cases, kernels_bench, report, runner, timing, train
from bench.timing import CpuTimer, CudaTimer, measure
from kernels.registry import Variant
from nn.cli import build_parser


def run_cpu_tiny(*options):
    return runner.run(build_parser().parse_args(["bench", "--device", "cpu", "--shapes", "tiny", *options]))


# --- timing -------------------------------------------------------------------------------------------------

class FixedTimer:
    """Every call takes a millisecond: ratios and rates are defined whatever the machine."""

    def seconds(self, fn):
        fn()
        return 1e-3


class CountingTimer(CpuTimer):
    def __init__(self):
        self.calls = 0

    def seconds(self, fn):
        self.calls += 1
        return super().seconds(fn)


def test_measure_reports_a_raising_callable_and_times_the_rest():
    calls = []

    def breaks_on_its_third_call():
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("illegal address\nmore lines")

    ours, theirs = CountingTimer(), CountingTimer()
    timed = measure({"torch": lambda: None, "ours": lambda: None, "bad": breaks_on_its_third_call}, ours, 3, 2, 0.0,
                    torch_timer=theirs)
    assert timed["bad"] == {"error": "RuntimeError: illegal address"}
    assert timed["ours"]["median_ms"] >= 0 and timed["torch"]["repeats"] == 3
    assert theirs.calls == 3 + 2 * 3  # first, two warm-up calls, two rounds of three: torch's rows on torch's timer


def fake_cupy(log, elapsed_ms):
    """Just what CudaTimer touches: events that log where they are recorded, memsetAsync, empty."""
    ids = iter(range(100))

    class Event:
        def __init__(self):
            self.id = next(ids)

        def record(self, stream):
            log.append(("record", self.id, stream.ptr))

        def synchronize(self):
            pass

    stream = types.SimpleNamespace(ptr=7)
    runtime = types.SimpleNamespace(memsetAsync=lambda ptr, value, size, stream_ptr: log.append(("memset", size, stream_ptr)))
    cuda = types.SimpleNamespace(Event=Event, runtime=runtime, get_current_stream=lambda: stream,
                                 get_elapsed_time=lambda a, b: elapsed_ms[(a.id, b.id)],
                                 Stream=types.SimpleNamespace(null=types.SimpleNamespace(ptr=0), from_external=None))
    return types.SimpleNamespace(cuda=cuda, uint8=np.uint8,
                                 empty=lambda n, dtype: types.SimpleNamespace(data=types.SimpleNamespace(ptr=99)))


def test_cuda_timer_zeroes_the_buffer_then_times_the_call_on_the_same_stream(monkeypatch):
    log = []
    monkeypatch.setitem(sys.modules, "cupy", fake_cupy(log, {(0, 1): 0.5, (1, 2): 0.25}))  # before, start, stop
    timer = CudaTimer()
    assert timer.seconds(lambda: log.append("call")) == 0.25e-3
    assert log == [("record", 0, 7), ("memset", CudaTimer.FLUSH_BYTES, 7), ("record", 1, 7), "call", ("record", 2, 7)]
    assert measure({"call": lambda: None}, timer, 2, 1, 0.0)["call"]["launch_ms"] >= 0  # the host's side, reported apart


def test_cuda_timer_hold_covers_the_longest_recent_launch(monkeypatch):
    log, clock = [], [0.0]
    monkeypatch.setitem(sys.modules, "cupy", fake_cupy(log, {(0, 1): 0.1, (1, 2): 0.25}))
    monkeypatch.setattr(timing.time, "perf_counter", lambda: clock[0])
    timer = CudaTimer()

    def launch(seconds):
        def fn():
            clock[0] += seconds
        return fn

    def next_hold():
        log.clear()
        timer.seconds(launch(0.0))
        return next(entry[1] for entry in log if entry[0] == "memset")

    timer.seconds(launch(0.005))  # e.g. a JIT compile: the GPU would idle for it without a longer hold
    assert next_hold() == CudaTimer.MAX_HOLD_BYTES
    for _ in range(7):
        next_hold()
    assert next_hold() == CudaTimer.FLUSH_BYTES  # the slow launch has left the window of recent ones


def test_training_timer_has_no_hold(monkeypatch):
    log = []
    monkeypatch.setitem(sys.modules, "cupy", fake_cupy(log, {(1, 2): 2.0}))
    assert CudaTimer(hold=False).seconds(lambda: None) == 2e-3
    assert [entry[0] for entry in log] == ["record", "record"]


def test_torch_rows_are_timed_on_torchs_current_stream(monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", fake_cupy([], {}))
    torch = types.SimpleNamespace(cuda=types.SimpleNamespace(current_stream=lambda: types.SimpleNamespace(cuda_stream=0)))
    assert timing.torch_stream(torch)().ptr == 0


def test_torch_on_cuda_is_fp32_with_cudnn_benchmark(monkeypatch):
    flags = types.SimpleNamespace(benchmark=False, allow_tf32=True)
    matmul = types.SimpleNamespace(allow_tf32=True)
    torch = types.SimpleNamespace(__version__="9.9", cuda=types.SimpleNamespace(is_available=lambda: True),
                                  backends=types.SimpleNamespace(cudnn=flags, cuda=types.SimpleNamespace(matmul=matmul)))
    monkeypatch.setitem(sys.modules, "torch", torch)
    assert runner._torch("cuda") == (torch, None)
    assert flags.benchmark and not flags.allow_tf32 and not matmul.allow_tf32
    torch.cuda.is_available = lambda: False
    assert runner._torch("cuda") == (None, "torch 9.9 sees no CUDA device")


# --- kernel rows ----------------------------------------------------------------------------------------------

def add_matmul_variant(monkeypatch, name, fn):
    variant = Variant("matmul", "numpy", name, "cpu", fn)
    monkeypatch.setitem(kernels.registry._variants["matmul"], variant.key, variant)
    return variant.key


def test_tf32_variants_are_checked_at_1e_2(tmp_path, monkeypatch):
    rounded = lambda a, b: np.matmul(a, b) * np.float32(1 + 2e-3)  # noqa: E731  (TF32-sized error)
    tf32 = add_matmul_variant(monkeypatch, "v9_tf32_rounded", rounded)
    fp32 = add_matmul_variant(monkeypatch, "v9_rounded", rounded)
    assert run_cpu_tiny("--op", "matmul", "--json", str(tmp_path / "run.json")) == 0
    rows = json.loads((tmp_path / "run.json").read_text())["rows"]
    assert all(r["status"] == "ok" and r["median_ms"] > 0 for r in rows if r["variant"] == tf32)
    assert all(r["status"].startswith("FAILED") for r in rows if r["variant"] == fp32)


def test_a_raising_variant_is_an_error_row_and_the_others_are_timed(tmp_path, monkeypatch):
    def broken(a, b):
        raise RuntimeError("launch failed")

    key = add_matmul_variant(monkeypatch, "v9_broken", broken)
    assert run_cpu_tiny("--op", "matmul", "--json", str(tmp_path / "run.json")) == 0
    rows = json.loads((tmp_path / "run.json").read_text())["rows"]
    assert all(r["status"] == "ERROR (RuntimeError: launch failed)" and "median_ms" not in r for r in rows if r["variant"] == key)
    assert all(r["median_ms"] > 0 for r in rows if r["variant"] == "numpy.v0_blas")


def test_slow_rungs_are_skipped_on_the_gpu_past_their_cap():
    case = cases.MatmulCase(4, 5, 6)
    host = case.host_inputs()
    steps, oracle = case.steps(**host), kernels_bench._outputs(case.steps(**host))
    cap, _ = kernels_bench.SLOW_ON_GPU["numba_cuda.v1_naive"]
    status, how = kernels_bench._verdict("numba_cuda.v1_naive", ["matmul"], steps, oracle, "cpu default", 1e-3, "cuda", 2 * cap)
    assert status.startswith("skipped (uncoalesced") and how == "-"
    status, _ = kernels_bench._verdict("numba_cuda.v1_naive", ["matmul"], steps, oracle, "cpu default", 1e-3, "cpu", 2 * cap)
    assert status == "ok"


def test_a_section_that_fails_is_recorded_and_earlier_results_are_already_on_disk(tmp_path, monkeypatch):
    path = tmp_path / "run.json"
    real_family, seen = runner.bench_family, {}

    def family(name, *args):
        if name == "conv2d":
            raise RuntimeError("harness bug")
        return real_family(name, *args)

    def training(*args):
        seen.update(json.loads(path.read_text()))
        raise MemoryError("out of memory")

    monkeypatch.setattr(runner, "bench_family", family)
    monkeypatch.setattr(runner, "bench_training", training)
    assert run_cpu_tiny("--op", "all", "--json", str(path), "--markdown", str(tmp_path / "run.md")) == 0
    assert {r["op"] for r in seen["rows"]} == {"matmul", "pool2d", "batchnorm", "activation", "softmax_xent"}
    document = json.loads(path.read_text())
    assert document["errors"] == ["conv2d: RuntimeError: harness bug", "train: MemoryError: out of memory"]
    assert "- train: MemoryError: out of memory" in (tmp_path / "run.md").read_text()


CALIBRATION = {"peak_gflops": None, "gemm_gflops": 1.0, "bandwidth_gbs": 1.0, "gemm_n": 1}


def test_a_section_in_a_process_of_its_own_hands_back_its_rows():
    records = []
    config = {"device": "cpu", "shapes": "tiny", "repeats": 1, "calibration": CALIBRATION}
    runner._run_apart("matmul", config, lambda kind, row: records.append((kind, row)))
    assert [(kind, row["shape"], row["status"]) for kind, row in records] == [
        ("rows", case.name, "ok") for case in cases.cases("matmul", "tiny")]
    with pytest.raises(RuntimeError, match="its process exited with code 1 after 0 rows"):
        runner._run_apart("no_such_family", config, lambda kind, row: records.append(row))
    with pytest.raises(RuntimeError, match=r"code -9 \(stopped after its 0 s share of TENSORLIB_BENCH_SECONDS\)"):
        runner._run_apart("matmul", config, lambda kind, row: records.append(row), limit_s=0.0)


def test_on_cuda_each_section_runs_apart_and_a_failed_one_is_recorded(tmp_path, monkeypatch):
    import tensorlib.device

    monkeypatch.setattr(tensorlib.device, "cuda_unavailable_reason", lambda: None)
    info = runner.machine.describe("cpu")
    monkeypatch.setattr(runner.machine, "describe", lambda device: dict(info, device=device, gpu="GPU", cupy="14"))
    monkeypatch.setattr(runner.machine, "calibrate", lambda device, quick: CALIBRATION)
    monkeypatch.setattr(runner, "_torch", lambda device: (None, "no torch here"))
    monkeypatch.setenv("TENSORLIB_BENCH_SECONDS", "100")
    sections, limits = [], {}

    def apart(name, config, record, limit_s):
        sections.append(name)
        limits[name] = limit_s
        if name == "pool2d":
            raise RuntimeError("its process exited with code -11 after 0 rows")
        record("train" if name == "train" else "rows", {"op": name, "variant": "v", "status": "ok", "model": name,
                                                         "batch": 1, "device": "cuda", "pass": "fwd", "shape": "s"})

    monkeypatch.setattr(runner, "_run_apart", apart)
    args = build_parser().parse_args(["bench", "--device", "cuda", "--json", str(tmp_path / "run.json"),
                                      "--markdown", str(tmp_path / "run.md")])
    assert runner.run(args) == 0
    document = json.loads((tmp_path / "run.json").read_text())
    assert sections == ["matmul", "conv2d", "pool2d", "batchnorm", "activation", "softmax_xent", "train"]
    assert 0 < limits["matmul"] <= 100 * 1 / 11 and 0 < limits["conv2d"] <= 100 * 4 / 10  # shares of the time left
    assert [r["op"] for r in document["rows"]] == ["matmul", "conv2d", "batchnorm", "activation", "softmax_xent"]
    assert len(document["train"]) == 1
    assert document["errors"] == ["pool2d: RuntimeError: its process exited with code -11 after 0 rows"]
    assert "No PyTorch rows: no torch here." in (tmp_path / "run.md").read_text()


# --- training rows ----------------------------------------------------------------------------------------------

def test_cuda_training_variants_are_eager_and_graphed_for_both_libraries():
    assert list(train._builders("lenet5", 8, "cuda", torch=object())) == ["torch", "torch+graph", "tensorlib", "tensorlib+graph"]
    assert list(train._builders("lenet5", 8, "cpu", torch=None)) == ["tensorlib"]


def fake_builders(name, batch, device, torch):
    def fails_to_capture():
        raise RuntimeError("CaptureError: item() inside the capture")

    return {"torch": lambda: lambda: None, "torch+graph": lambda: lambda: None, "tensorlib": lambda: lambda: None,
            "tensorlib+graph": fails_to_capture}


def test_cuda_training_rows_with_a_variant_that_fails(monkeypatch):
    monkeypatch.setattr(train, "_builders", fake_builders)
    results = []
    train.bench_training("tiny", "cuda", FixedTimer(), FixedTimer(), 0.0, 2, 1, 1.0, object(), results.append)
    rows = {(r["model"], r["variant"]): r for r in results}
    assert len(rows) == 4 * len(train.MODELS)
    ours = rows["resnet20", "tensorlib"]
    assert ours["status"] == "ok" and ours["vs_torch"] == ours["vs_torch_graph"] == 1.0 and "breakdown" not in ours
    assert "no per-layer breakdown" in ours["note"]
    failed = rows["lenet5", "tensorlib+graph"]
    assert failed["status"] == "ERROR (RuntimeError: CaptureError: item() inside the capture)" and "median_ms" not in failed
    text = report.train_markdown(results)
    assert "| lenet5 | 8 | tensorlib+graph |" in text and "ERROR (RuntimeError" in text
    assert "- lenet5 torch+graph: captured after 3 eager warm-up steps" in text
    assert "ERROR" in report.train_line(failed) and "torch+graph's time" in report.train_line(ours)


# --- the Markdown of a GPU run -----------------------------------------------------------------------------------

def gpu_row(op, pass_, variant, shape, median_ms=None, status="ok", baseline=None, vs_baseline=None, vs_torch=None):
    row = {"device": "cuda", "family": op, "op": op, "pass": pass_, "variant": variant, "shape": shape, "dims": shape,
           "status": status, "check": "cpu default"}
    if median_ms is not None:
        row.update(median_ms=median_ms, iqr_ms=0.0, first_call_ms=median_ms, gflops=1.0, gbs=1.0, pct_peak=50.0,
                   intensity=1.0, baseline=baseline, vs_baseline=vs_baseline, vs_torch=vs_torch)
    return row


def test_markdown_of_a_gpu_run():
    rows = [gpu_row("matmul", "fwd", "torch", "4096^2", 3.0, baseline="cupy.v0_cublas", vs_baseline=1.0, vs_torch=1.0),
            gpu_row("matmul", "fwd", "cupy.v0_cublas", "4096^2", 3.0, baseline="cupy.v0_cublas", vs_baseline=1.0, vs_torch=1.0),
            gpu_row("matmul", "fwd", "cupy.v7_cuda_blocktile", "4096^2", 4.0, baseline="cupy.v0_cublas", vs_baseline=4 / 3, vs_torch=4 / 3),
            gpu_row("matmul", "fwd", "cupy.v8_tf32_mma", "4096^2", 1.5, baseline="cupy.v0_cublas", vs_baseline=0.5, vs_torch=0.5),
            gpu_row("matmul", "fwd", "numba_cuda.v1_naive", "4096^2", status="skipped (slow)"),
            gpu_row("conv2d", "dgrad", "torch", "c64_8x8_3x3", 0.1, vs_torch=1.0),
            gpu_row("conv2d", "dgrad", "cupy.v4_implicit_gemm", "c64_8x8_3x3", 0.2, vs_torch=2.0),
            gpu_row("conv2d", "dgrad", "numba_cuda.v1_direct", "c64_8x8_3x3", status="ERROR (CUDARuntimeError: boom)")]
    train_rows = [{"device": "cuda", "model": "lenet5", "batch": 64, "variant": "tensorlib+graph", "status": "ok",
                   "median_ms": 0.5, "iqr_ms": 0.0, "images_per_s": 128000.0, "first_call_ms": 9.0, "vs_torch": 0.5,
                   "vs_torch_graph": 1.5, "note": "median of replays"}]
    machine = {"device": "cuda", "gpu": "NVIDIA H100 80GB HBM3", "cpu": "x86", "cores": 16, "blas": [], "numpy": "2",
               "numba": "0.6", "torch": "2.11", "date": "today",
               "calibration": {"peak_gflops": None, "bandwidth_gbs": 3000.0, "gemm_gflops": 50000.0, "gemm_n": 8192},
               "torch_cuda": {"version": "2.11", "cuda": "13.0", "cudnn": 91000, "cudnn_benchmark": True,
                              "cudnn_allow_tf32": False, "matmul_allow_tf32": False, "same_stream_as_cupy": True}}
    text = runner.markdown({"machine": machine, "rows": rows, "train": train_rows, "errors": ["pool2d: KeyError: 'x'"]})
    assert "cudnn.benchmark True, cudnn.allow_tf32 False, cuda.matmul.allow_tf32 False: its rows" in text
    assert "3000.0 GB/s copy, 50000 GFLOP/s GEMM (n=8192)" in text and "for pool2d, batchnorm, activation and softmax_xent of the copy bandwidth" in text
    assert "| conv2d | dgrad | numba_cuda.v1_direct | c64_8x8_3x3 |" in text and "ERROR (CUDARuntimeError: boom)" in text
    fastest = text.split("Fastest tensorlib variant per case:")[1]
    assert "| matmul | fwd | 4096^2 | cupy.v7_cuda_blocktile | 4.000 | 50 | cupy.v0_cublas | 1.33 |" in fastest
    assert "| matmul | fwd | 4096^2 | cupy.v8_tf32_mma | 1.500 | 50 | cupy.v0_cublas | 0.50 |" in fastest
    assert "| conv2d | dgrad | c64_8x8_3x3 | cupy.v4_implicit_gemm | 0.200 | 50 | torch | 2.00 |" in fastest
    assert "| lenet5 | 64 | tensorlib+graph | 0.50 |" in text and "- pool2d: KeyError: 'x'" in text


# --- the simulator -----------------------------------------------------------------------------------------------

@pytest.mark.cudasim
def test_kernel_rows_on_cuda_in_the_simulator(monkeypatch):
    """Inputs moved to the device, each CUDA variant checked against the CPU oracle and timed; the rungs past
    their cap skipped (all but the two cheapest here: the simulator runs about 1 ms per thread)."""
    monkeypatch.setitem(cases.SHAPE_SETS["small"], "matmul", [(5, 17, 3)])
    cheap = ("numba_cuda.v1_naive", "numba_cuda.v2_coalesced")
    capped = [v.key for v in kernels.variants("matmul") if v.device == "cuda" and v.available and v.key not in cheap]
    monkeypatch.setattr(kernels_bench, "SLOW_ON_GPU", {key: (0, "capped for the test") for key in capped})
    rows = []
    kernels_bench.bench_family("matmul", "small", "cuda", CpuTimer(), None, {"peak_gflops": None, "gemm_gflops": 1.0, "bandwidth_gbs": 1.0},
                 0.0, 1, 1, None, rows.append)
    by_variant = {r["variant"]: r for r in rows}
    assert set(by_variant) == set(cheap) | set(capped)
    assert all(by_variant[key]["status"] == "ok" and by_variant[key]["median_ms"] > 0 for key in cheap)
    assert all(by_variant[key]["status"] == "skipped (capped for the test)" and "median_ms" not in by_variant[key] for key in capped)
