"""``tensorlib bench``: every registered kernel variant (and training steps) on one device.

    tensorlib bench [--op matmul|conv2d|pool2d|train|all] [--device cpu|cuda] [--shapes tiny|small|cnn|large]
                    [--json FILE] [--markdown FILE] [--plot DIR] [--compare OLD.json] [--repeats N]

The run first measures the machine's roofs (``bench.machine``), then benchmarks each family
(``bench.kernels_bench``: check against the oracle, first call, rounds of repeats) and the training
steps (``bench.train``), printing each row as it is done. See those modules for what is measured and how.
"""

from __future__ import annotations

import json
import sys

from bench import machine, report
from bench.cases import FAMILIES
from bench.kernels_bench import bench_family
from bench.timing import timer_for
from bench.train import bench_training


def _torch(device: str):
    """PyTorch for the side-by-side rows (CPU only), on as many threads as the BLAS, or None."""
    if device != "cpu":
        return None
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(machine.blas_threads())
    return torch


def run(args) -> int:
    if args.device == "cuda":
        from tensorlib.device import cuda_unavailable_reason

        reason = cuda_unavailable_reason()
        if reason is not None:
            print(f"tensorlib bench: no CUDA device to benchmark ({reason}); nothing was run", file=sys.stderr)
            return 1
    families = FAMILIES if args.op == "all" else tuple(f for f in FAMILIES if f == args.op)
    tiny = args.shapes == "tiny"
    settle_s, rounds = (0.0, 1) if tiny else (0.2, 5)
    timer, torch = timer_for(args.device), _torch(args.device)

    info = machine.describe(args.device)
    info["calibration"] = calibration = machine.calibrate(args.device, quick=tiny)
    print(f"{info['cpu']}, {info['cores']} cores; BLAS: {'; '.join(info['blas']) or 'none found'}; "
          f"numpy {info['numpy']}, numba {info['numba']}" + (f", torch {info['torch']}" if info["torch"] else ""))
    if args.device == "cuda":
        print(f"GPU: {info['gpu']}, cupy {info['cupy']}")
    peak = f"peak {calibration['peak_gflops']:.0f} GFLOP/s (FMA loop), " if calibration["peak_gflops"] else ""
    print(f"roofs: {peak}copy {calibration['bandwidth_gbs']:.1f} GB/s, "
          f"GEMM {calibration['gemm_gflops']:.0f} GFLOP/s (n={calibration['gemm_n']})")

    document = {"machine": info, "shapes": args.shapes, "rows": [], "train": []}
    if families:
        print(report.text_header())
        for family in families:
            document["rows"] += bench_family(family, args.shapes, args.device, timer, calibration, settle_s,
                                             args.repeats, rounds, torch, lambda row: print(report.text_row(row), flush=True))
    if args.op in ("train", "all") and args.device == "cpu":
        print("\ntraining steps (SGD, momentum 0.9, random data)")
        document["train"] = bench_training(args.shapes, args.device, timer, settle_s, args.repeats, rounds, torch, _print_train)
    elif args.op in ("train", "all"):
        print("training steps on cuda are not benchmarked yet")

    if args.json:
        report.write_json(args.json, document)
        print(f"wrote {args.json}")
    if args.markdown:
        with open(args.markdown, "w", encoding="utf-8") as handle:
            handle.write(markdown(document))
        print(f"wrote {args.markdown}")
    if args.plot and document["rows"]:
        for path in report.plot(document, args.plot):
            print(f"wrote {path}")
    if args.compare:
        with open(args.compare, encoding="utf-8") as handle:
            print("\n".join(["", f"against {args.compare}:"] + report.compare(document, json.load(handle))))
    failed = [row for row in document["rows"] if row["status"] != "ok"]
    if failed:
        print(f"{len(failed)} rows FAILED their correctness check (not timed)")
    return 0


def _print_train(result: dict):
    line = (f"{result['model']:<9} batch {result['batch']:<4} {result['variant']:<10} {result['median_ms']:9.1f} ms/step "
            f"(IQR {result['iqr_ms']:.1f}) {result['images_per_s']:8.0f} images/s, first step {result['first_call_ms']:.0f} ms")
    if result.get("vs_torch") and result["variant"] != "torch":
        line += f", {result['vs_torch']:.2f}x torch's time"
    print(line, flush=True)
    if "breakdown" in result:
        print("\n".join(report.breakdown_lines(result)), flush=True)


def markdown(document: dict) -> str:
    info, calibration = document["machine"], document["machine"]["calibration"]
    peak = f"{calibration['peak_gflops']:.0f} GFLOP/s FMA peak, " if calibration["peak_gflops"] else ""
    parts = [f"{info.get('gpu') or info['cpu']}, {info['cores']} cores, BLAS {'; '.join(info['blas'])}, numpy {info['numpy']}, "
             f"numba {info['numba']}" + (f", torch {info['torch']}" if info["torch"] else "") + f"; {info['date']}.",
             f"Roofs measured by the run: {peak}{calibration['bandwidth_gbs']:.1f} GB/s copy, "
             f"{calibration['gemm_gflops']:.0f} GFLOP/s BLAS GEMM (n={calibration['gemm_n']}). "
             "Medians (lowest of rounds) and IQR in ms; ratios are time ratios (below 1 is faster).", ""]
    if document["rows"]:
        parts.append(report.markdown_table(document["rows"]))
    if document["train"]:
        parts += ["", report.train_markdown(document["train"])]
    return "\n".join(parts) + "\n"
