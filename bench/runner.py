"""``tensorlib bench``: every registered kernel variant (and training steps) on one device.

    tensorlib bench [--op matmul|conv2d|pool2d|batchnorm|activation|softmax_xent|train|all] [--device cpu|cuda] [--shapes tiny|small|cnn|large]
                    [--json FILE] [--markdown FILE] [--plot DIR] [--compare OLD.json] [--repeats N]

The run first measures the machine's roofs (``bench.machine``), then benchmarks each family
(``bench.kernels_bench``: check against the oracle, first call, rounds of repeats) and the training
steps (``bench.train``), printing each row as it is done. See those modules for what is measured and how.
The JSON and Markdown files are rewritten after each row, so a run that is stopped keeps what it measured;
a failure inside one section (a family, or the training steps) is recorded under "errors" and the run goes
on with the next. On a GPU each section runs in a process of its own (``python -m bench.runner``): a kernel
that faults leaves the CUDA context unusable for the rest of its process, so it costs that section only.
There the environment variable ``TENSORLIB_BENCH_SECONDS`` bounds the run: each section gets a share of the
time left (``SECTION_WEIGHTS``), and one that outlasts its share is stopped with the rows it has done, so a
slow section cannot starve the ones after it.

On "cuda", PyTorch (when it imports and sees the GPU) runs with ``cudnn.benchmark`` on -- its fastest
algorithm for each shape, picked during the first call, which is kept out of the medians -- and TF32 off
for convolutions and matmuls, so its rows are the cuDNN and cuBLAS FP32 baselines.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

from bench import machine, report
from bench.cases import FAMILIES
from bench.kernels_bench import MEMORY_BOUND, bench_family
from bench.timing import error_text, timers_for
from bench.train import bench_training


SECTION_WEIGHTS = {"matmul": 1, "conv2d": 4, "pool2d": 1, "batchnorm": 1, "activation": 0.5, "softmax_xent": 0.5,
                   "train": 3}


def _plan(device: str, tiny: bool) -> tuple[float, int, float]:
    """(pause before each round, rounds, seconds of repeats per training round). The pause lets CPU thread
    pools go to sleep; GPU timings do not depend on them, and their rounds vary far less."""
    if tiny:
        return 0.0, 1, 2.0
    return (0.0, 3, 1.0) if device == "cuda" else (0.2, 5, 2.0)


def _torch(device: str):
    """(PyTorch set up for the side-by-side rows, or None; why it is None)."""
    try:
        import torch

        if device == "cpu":
            torch.set_num_threads(machine.blas_threads())
            return torch, None
        if not torch.cuda.is_available():
            return None, f"torch {torch.__version__} sees no CUDA device"
        torch.backends.cudnn.benchmark = True
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cuda.matmul.allow_tf32 = False
        return torch, None
    except Exception as error:  # ImportError, or a CUDA build whose libraries fail to load
        return None, f"torch unavailable: {error_text(error)}"


def _torch_on_cuda(torch) -> dict:
    """The settings PyTorch's rows run with, each read on its own: since torch 2.9 a TF32 getter may refuse
    to answer (after a mix of its legacy and new APIs), and that must not stop the run."""
    import cupy

    getters = {
        "version": lambda: torch.__version__, "cuda": lambda: torch.version.cuda, "cudnn": torch.backends.cudnn.version,
        "cudnn_benchmark": lambda: torch.backends.cudnn.benchmark, "cudnn_allow_tf32": lambda: torch.backends.cudnn.allow_tf32,
        "matmul_allow_tf32": lambda: torch.backends.cuda.matmul.allow_tf32,
        "matmul_fp32_precision": lambda: getattr(torch.backends.cuda.matmul, "fp32_precision", None),
        "same_stream_as_cupy": lambda: torch.cuda.current_stream().cuda_stream == cupy.cuda.get_current_stream().ptr,
    }
    settings = {}
    for key, get in getters.items():
        try:
            settings[key] = get()
        except Exception as error:
            settings[key] = error_text(error)
    return settings


def _calibrate(device: str, quick: bool) -> dict:
    try:
        return machine.calibrate(device, quick)
    except Exception as error:
        return {"peak_gflops": None, "bandwidth_gbs": None, "gemm_gflops": None, "gemm_n": None, "error": error_text(error)}


def roofs(calibration: dict) -> str:
    if "error" in calibration:
        return f"not measured ({calibration['error']})"
    peak = f"{calibration['peak_gflops']:.0f} GFLOP/s FMA peak, " if calibration["peak_gflops"] else ""
    return (f"{peak}{calibration['bandwidth_gbs']:.1f} GB/s copy, {calibration['gemm_gflops']:.0f} GFLOP/s GEMM "
            f"(n={calibration['gemm_n']})")


def run_section(name, device, shapes, repeats, calibration, torch, emit):
    """Benchmark one section: a family of ``FAMILIES`` or "train"; ``emit(kind, row)`` gets each row as it is
    done, kind "rows" or "train" (the document's list it belongs to)."""
    settle_s, rounds, train_budget_s = _plan(device, shapes == "tiny")
    if name == "train":
        timer, torch_timer = timers_for(device, torch, hold=False)
        bench_training(shapes, device, timer, torch_timer, settle_s, repeats, rounds, train_budget_s, torch,
                       lambda row: emit("train", row))
    else:
        timer, torch_timer = timers_for(device, torch)
        bench_family(name, shapes, device, timer, torch_timer, calibration, settle_s, repeats, rounds, torch,
                     lambda row: emit("rows", row))


def _print_row(kind: str, row: dict):
    print(report.text_row(row) if kind == "rows" else report.train_line(row), flush=True)
    if "breakdown" in row:
        print("\n".join(report.breakdown_lines(row)), flush=True)


def _run_apart(name: str, config: dict, record, limit_s: float | None = None):
    """``run_section`` in a child process, which prints its rows as it goes; ``record(kind, row)`` gets each
    row while the child runs (so a run stopped meanwhile keeps them), also those written before a failure.
    The child is stopped after ``limit_s``. Raises RuntimeError when it did not exit cleanly."""
    root = str(Path(__file__).resolve().parent.parent)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")])))
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "rows.jsonl"
        path.touch()
        child = subprocess.Popen([sys.executable, "-m", "bench.runner", json.dumps(dict(config, section=name)), str(path)],
                                 env=env)
        count, pending, start, stopped = 0, "", time.monotonic(), ""
        with open(path, encoding="utf-8") as rows:
            while True:
                if limit_s is not None and time.monotonic() - start > limit_s and child.poll() is None:
                    child.kill()
                    child.wait()
                    stopped = f" (stopped after its {limit_s:.0f} s share of TENSORLIB_BENCH_SECONDS)"
                code = child.poll()
                pending += rows.read()
                *lines, pending = pending.split("\n")  # a line still being written stays pending
                for line in lines:
                    record(*json.loads(line))
                count += len(lines)
                if code is not None:
                    break
                time.sleep(0.2)
    if code != 0:
        raise RuntimeError(f"its process exited with code {code}{stopped} after {count} rows")


def run(args) -> int:
    if args.device == "cuda":
        from tensorlib.device import cuda_unavailable_reason

        reason = cuda_unavailable_reason()
        if reason is not None:
            print(f"tensorlib bench: no CUDA device to benchmark ({reason}); nothing was run", file=sys.stderr)
            return 1
    start = time.monotonic()
    budget = os.environ.get("TENSORLIB_BENCH_SECONDS")
    families = FAMILIES if args.op == "all" else tuple(f for f in FAMILIES if f == args.op)
    torch, torch_note = _torch(args.device)

    info = machine.describe(args.device)
    info["calibration"] = calibration = _calibrate(args.device, args.shapes == "tiny")
    if torch_note:
        info["torch_note"] = torch_note
    if torch is not None and args.device == "cuda":
        info["torch_cuda"] = _torch_on_cuda(torch)
    print(f"{info['cpu']}, {info['cores']} cores; BLAS: {'; '.join(info['blas']) or 'none found'}; "
          f"numpy {info['numpy']}, numba {info['numba']}" + (f", torch {info['torch']}" if info["torch"] else ""))
    if args.device == "cuda":
        print(f"GPU: {info['gpu']}, cupy {info['cupy']}; torch: {info.get('torch_cuda') or torch_note}")
    print(f"roofs: {roofs(calibration)}")

    document = {"machine": info, "shapes": args.shapes, "rows": [], "train": [], "errors": []}
    _save(args, document)

    def record(kind, row):
        document[kind].append(row)
        _save(args, document)

    def emit(kind, row):
        record(kind, row)
        _print_row(kind, row)

    config = {"device": args.device, "shapes": args.shapes, "repeats": args.repeats, "calibration": calibration}
    sections = list(families) + (["train"] if args.op in ("train", "all") else [])
    for index, name in enumerate(sections):
        if name == "train":
            print("\ntraining steps (SGD, momentum 0.9, random data)")
        elif name == sections[0]:
            print(report.text_header())
        try:
            if args.device == "cuda":
                limit_s = None
                if budget:
                    left = float(budget) - (time.monotonic() - start)
                    limit_s = max(0.0, left) * SECTION_WEIGHTS[name] / sum(SECTION_WEIGHTS[n] for n in sections[index:])
                _run_apart(name, config, record, limit_s)
            else:
                run_section(name, args.device, args.shapes, args.repeats, calibration, torch, emit)
        except Exception as error:  # a fault of the harness or of a whole process: keep what was measured, go on
            traceback.print_exc()
            document["errors"].append(f"{name}: {error_text(error)}")
        _save(args, document)

    for path in (args.json, args.markdown):
        if path:
            print(f"wrote {path}")
    if args.plot and document["rows"] and "error" not in calibration:
        for path in report.plot(document, args.plot):
            print(f"wrote {path}")
    if args.compare:
        with open(args.compare, encoding="utf-8") as handle:
            print("\n".join(["", f"against {args.compare}:"] + report.compare(document, json.load(handle))))
    failed = [r for r in document["rows"] + document["train"] if r["status"].startswith(("FAILED", "ERROR"))]
    if failed:
        print(f"{len(failed)} rows FAILED their correctness check or raised (not timed)")
    for error in document["errors"]:
        print(f"harness error in {error}")
    return 0


def _save(args, document: dict):
    if args.json:
        report.write_json(args.json, document)
    if args.markdown:
        with open(args.markdown, "w", encoding="utf-8") as handle:
            handle.write(markdown(document))


def markdown(document: dict) -> str:
    info, calibration = document["machine"], document["machine"]["calibration"]
    parts = [f"{info.get('gpu') or info['cpu']}, {info['cores']} cores, BLAS {'; '.join(info['blas'])}, numpy {info['numpy']}, "
             f"numba {info['numba']}" + (f", torch {info['torch']}" if info["torch"] else "") + f"; {info['date']}.",
             f"Roofs measured by the run: {roofs(calibration)}. "
             "Medians (lowest of rounds) and IQR in ms; ratios are time ratios (below 1 is faster)."]
    if info["device"] == "cuda":
        parts.append(f"GPU times are CUDA events around each call: kernel rows start with a cold L2 and leave out the "
                     f"host's launch time, reported apart as launch ms (`bench/timing.py`); training steps are whole "
                     f"steps, host included. % peak is "
                     f"of the GEMM roof (cuBLAS FP32), for {', '.join(MEMORY_BOUND[:-1])} and {MEMORY_BOUND[-1]} of the "
                     f"copy bandwidth.")
        torch_cuda = info.get("torch_cuda")
        parts.append(f"PyTorch {torch_cuda['version']} (CUDA {torch_cuda['cuda']}, cuDNN {torch_cuda['cudnn']}), "
                     f"cudnn.benchmark {torch_cuda['cudnn_benchmark']}, cudnn.allow_tf32 {torch_cuda['cudnn_allow_tf32']}, "
                     f"cuda.matmul.allow_tf32 {torch_cuda['matmul_allow_tf32']}: its rows are the cuDNN and cuBLAS "
                     "baselines, FP32 where both allow_tf32 are False." if torch_cuda else f"No PyTorch rows: {info.get('torch_note')}.")
    parts.append("")
    if document["rows"]:
        parts += [report.markdown_table(document["rows"]), "", "Fastest tensorlib variant per case:", "",
                  report.markdown_table(report.fastest(document["rows"]), report.FASTEST_COLUMNS)]
    if document["train"]:
        parts += ["", report.train_markdown(document["train"])]
    if document.get("errors"):
        parts += ["", "Harness errors (the sections they name are incomplete):"] + [f"- {e}" for e in document["errors"]]
    return "\n".join(parts) + "\n"


def _section_main(argv) -> int:
    """The child process of ``_run_apart``: ``python -m bench.runner CONFIG_JSON ROWS_FILE``."""
    config, rows = json.loads(argv[0]), argv[1]
    torch, _ = _torch(config["device"])
    with open(rows, "a", encoding="utf-8") as out:
        def emit(kind, row):
            _print_row(kind, row)
            out.write(json.dumps([kind, row]) + "\n")
            out.flush()

        run_section(config["section"], config["device"], config["shapes"], config["repeats"], config["calibration"], torch, emit)
    return 0


if __name__ == "__main__":
    sys.exit(_section_main(sys.argv[1:]))
