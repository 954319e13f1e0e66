"""``tensorlib bench`` on the tiny shape set: every registered CPU variant checked and timed, JSON with
every field, plots, Markdown, the comparison with an earlier run, and a clean refusal without a GPU."""

import json

import numpy as np
import pytest
from PIL import Image

import kernels
from bench import runner
from bench.cases import FAMILIES, cases
from kernels.registry import Variant
from nn.cli import build_parser

ROW_FIELDS = {"device", "op", "pass", "variant", "shape", "dims", "status", "check", "first_call_ms", "compile_ms",
              "median_ms", "iqr_ms", "repeats", "gflops", "gbs", "pct_peak", "flops", "bytes", "intensity",
              "vs_baseline", "vs_torch", "baseline"}


def bench(tmp_path, *options):
    return runner.run(build_parser().parse_args(["bench", "--device", "cpu", "--shapes", "tiny", *options]))


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    code = bench(out, "--op", "all", "--json", str(out / "run.json"), "--markdown", str(out / "run.md"), "--plot", str(out))
    assert code == 0
    return out, json.loads((out / "run.json").read_text())


def test_json_has_every_field_for_every_cpu_variant_and_case(tiny_run):
    _, document = tiny_run
    machine = document["machine"]
    assert {"cpu", "cores", "blas", "numpy", "numba", "date"} <= set(machine)
    assert {"peak_gflops", "bandwidth_gbs", "gemm_gflops"} <= set(machine["calibration"])
    rows = {(r["op"], r["pass"], r["variant"], r["shape"]): r for r in document["rows"]}
    for family in FAMILIES:
        for case in cases(family, "tiny"):
            for pass_, ops in case.passes.items():
                keys = {v.key for op in ops for v in kernels.variants(op) if v.device == "cpu"}
                for key in keys:
                    row = rows[(family, pass_, key, case.name)]
                    assert ROW_FIELDS <= set(row), ROW_FIELDS - set(row)
                    assert row["status"] == "ok" and row["check"] == "reference"
                    assert row["median_ms"] > 0 and row["iqr_ms"] >= 0 and row["gflops"] > 0


def test_training_steps_have_throughput_and_breakdown(tiny_run):
    _, document = tiny_run
    models = {r["model"]: r for r in document["train"] if r["variant"] == "tensorlib"}
    assert set(models) == {"lenet5", "resnet20", "vgg11_bn"}
    for result in models.values():
        assert result["median_ms"] > 0 and result["images_per_s"] > 0
        breakdown = result["breakdown"]
        assert {"Conv2d", "pooling", "loss"} <= set(breakdown["forward_ms"])
        assert breakdown["backward_ms"]["Conv2d"] > 0 and breakdown["optimizer_ms"] > 0
        assert 0 < breakdown["kernels_ms"] <= breakdown["ops_ms"] < breakdown["step_ms"]
    assert {"BatchNorm", "Linear"} <= set(models["resnet20"]["breakdown"]["forward_ms"])
    assert {"BatchNorm", "activations"} <= set(models["vgg11_bn"]["breakdown"]["forward_ms"])


def test_plots_are_pngs_and_markdown_is_a_table(tiny_run):
    out, document = tiny_run
    for name in ("roofline.png", "crossover.png"):
        with Image.open(out / name) as image:
            assert image.format == "PNG" and image.size[0] > 100
    lines = (out / "run.md").read_text().splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("| op |"))
    assert lines[header + 1].startswith("|---")
    table = lines[header:lines.index("", header)]
    assert sum(line.startswith("| matmul |") for line in table) == sum(r["op"] == "matmul" for r in document["rows"])
    assert "Fastest tensorlib variant per case:" in lines


def test_a_wrong_variant_is_reported_failed_and_never_timed(tmp_path, monkeypatch, capsys):
    calls = []

    def off_by_one(a, b):
        calls.append(a.shape)
        return np.matmul(a, b) + 1

    wrong = Variant("matmul", "numpy", "v9_off_by_one", "cpu", off_by_one)
    monkeypatch.setitem(kernels.registry._variants["matmul"], wrong.key, wrong)
    assert bench(tmp_path, "--op", "matmul", "--json", str(tmp_path / "run.json")) == 0
    rows = [r for r in json.loads((tmp_path / "run.json").read_text())["rows"] if r["variant"] == wrong.key]
    assert len(rows) == len(cases("matmul", "tiny")) == len(calls)  # one correctness call per case, no timing
    assert all(r["status"].startswith("FAILED") and "median_ms" not in r for r in rows)
    assert "FAILED" in capsys.readouterr().out


def test_compare_prints_per_row_ratios(tiny_run, tmp_path, capsys):
    _, document = tiny_run
    # the comparison re-measures: an old run 1000x slower keeps "faster" certain on a busy machine (2x was not)
    old = dict(document, rows=[dict(r, median_ms=r["median_ms"] * 1000) for r in document["rows"]])
    (tmp_path / "old.json").write_text(json.dumps(old))
    assert bench(tmp_path, "--op", "matmul", "--compare", str(tmp_path / "old.json")) == 0
    lines = capsys.readouterr().out.split("against")[1].splitlines()
    assert "new/old" in lines[1]
    assert sum(line.startswith("matmul") and "faster" in line for line in lines) == len(cases("matmul", "tiny"))


def test_cuda_without_a_gpu_exits_with_a_message(tmp_path, capsys, monkeypatch):
    import tensorlib.device

    monkeypatch.setattr(tensorlib.device, "cuda_unavailable_reason", lambda: "no CUDA device found")
    assert bench(tmp_path, "--device", "cuda") == 1
    assert "no CUDA device" in capsys.readouterr().err
