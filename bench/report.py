"""Presenting results: the aligned text table, Markdown, the comparison with an earlier JSON, and plots."""

from __future__ import annotations

import json
import os

COLUMNS = [  # (header, row key, format)
    ("op", "op", "{}"), ("pass", "pass", "{}"), ("variant", "variant", "{}"), ("shape", "shape", "{}"),
    ("median ms", "median_ms", "{:.3f}"), ("IQR ms", "iqr_ms", "{:.3f}"), ("1st call ms", "first_call_ms", "{:.1f}"),
    ("launch ms", "launch_ms", "{:.3f}"),
    ("GFLOP/s", "gflops", "{:.1f}"), ("GB/s", "gbs", "{:.1f}"), ("% peak", "pct_peak", "{:.0f}"),
    ("FLOP/B", "intensity", "{:.1f}"), ("vs v0", "vs_baseline", "{:.2f}"), ("vs torch", "vs_torch", "{:.2f}"),
    ("check", "status", "{}"),
]
WIDTHS = [9, 8, 28, 18, 10, 8, 11, 9, 8, 7, 6, 7, 6, 8, 0]


def cell(row: dict, key: str, fmt: str) -> str:
    value = row.get(key)
    if key == "status":
        return value if value != "ok" else row.get("check", "ok")
    return "" if value is None else fmt.format(value)


def text_header() -> str:
    return " ".join(h.rjust(w) if i >= 4 else h.ljust(w) for i, ((h, _, _), w) in enumerate(zip(COLUMNS, WIDTHS)))


def text_row(row: dict) -> str:
    cells = [cell(row, key, fmt) for _, key, fmt in COLUMNS]
    return " ".join(c.rjust(w) if i >= 4 and i < len(cells) - 1 else c.ljust(w) for i, (c, w) in enumerate(zip(cells, WIDTHS))).rstrip()


def markdown_table(rows: list[dict], columns=COLUMNS) -> str:
    lines = ["| " + " | ".join(h for h, _, _ in columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(row, key, fmt) for _, key, fmt in columns) + " |" for row in rows]
    return "\n".join(lines)


TRAIN_COLUMNS = [("model", "model", "{}"), ("batch", "batch", "{}"), ("variant", "variant", "{}"),
                 ("ms/step", "median_ms", "{:.2f}"), ("IQR ms", "iqr_ms", "{:.2f}"), ("images/s", "images_per_s", "{:.0f}"),
                 ("1st step ms", "first_call_ms", "{:.0f}"), ("launch ms", "launch_ms", "{:.2f}"), ("vs torch", "vs_torch", "{:.2f}"),
                 ("vs torch+graph", "vs_torch_graph", "{:.2f}"), ("status", "status", "{}")]


def breakdown_lines(result: dict) -> list[str]:
    b = result["breakdown"]
    fwd = ", ".join(f"{k} {v:.1f}" for k, v in sorted(b["forward_ms"].items(), key=lambda kv: -kv[1]))
    bwd = ", ".join(f"{k} {v:.1f}" for k, v in sorted(b["backward_ms"].items(), key=lambda kv: -kv[1]))
    return [f"  forward ms: {fwd}", f"  backward ms: {bwd}, autograd engine {b['engine_ms']:.1f}",
            f"  optimizer {b['optimizer_ms']:.1f} ms, zero_grad {b['zero_grad_ms']:.1f} ms; inside kernels {b['kernels_ms']:.1f} ms, "
            f"inside ops {b['ops_ms']:.1f} ms, Python overhead {b['python_overhead_ms']:.1f} ms "
            f"(profiled step {b['step_ms']:.1f} ms)"]


def train_line(result: dict) -> str:
    """One result as a line of text: its time and throughput, or its error."""
    line = f"{result['model']:<9} batch {result['batch']:<4} {result['variant']:<16}"
    if "median_ms" not in result:
        return f"{line} {result['status']}"
    line += (f" {result['median_ms']:9.2f} ms/step (IQR {result['iqr_ms']:.2f}) {result['images_per_s']:8.0f} images/s, "
             f"first step {result['first_call_ms']:.0f} ms")
    for key, label in (("vs_torch", "torch"), ("vs_torch_graph", "torch+graph")):
        if result.get(key) and not result["variant"].startswith("torch"):
            line += f", {result[key]:.2f}x {label}'s time"
    return line


def train_markdown(results: list[dict]) -> str:
    table = markdown_table(results, TRAIN_COLUMNS)
    notes = [f"- {r['model']}: " + "; ".join(line.strip() for line in breakdown_lines(r)) for r in results if "breakdown" in r]
    notes += [f"- {r['model']} {r['variant']}: {r['note']}" for r in results if "note" in r]
    return table + ("\n\n" + "\n".join(notes) if notes else "")


def fastest(rows: list[dict]) -> list[dict]:
    """Per (op, pass, shape): the fastest timed tensorlib variant, FP32 and TF32 apart, with the time ratio to
    the family's v0 (on a GPU the vendor library, so not a tensorlib variant itself), else to PyTorch."""
    groups = {}
    for row in rows:
        vendor = row["device"] == "cuda" and row["variant"] == row.get("baseline")
        if row.get("median_ms") and row["variant"] != "torch" and not vendor:
            precision = "tf32" if "tf32" in row["variant"] else "fp32"
            groups.setdefault((row["op"], row["pass"], row["shape"], precision), []).append(row)
    best = []
    for group in groups.values():
        row = min(group, key=lambda r: r["median_ms"])
        if row.get("vs_baseline") and row["variant"] != row["baseline"]:
            against, ratio = row["baseline"], row["vs_baseline"]
        else:
            against, ratio = "torch", row.get("vs_torch")
        best.append(dict(row, against=against if ratio else None, ratio=ratio))
    return best


FASTEST_COLUMNS = [("op", "op", "{}"), ("pass", "pass", "{}"), ("shape", "shape", "{}"), ("fastest tensorlib variant", "variant", "{}"),
                   ("median ms", "median_ms", "{:.3f}"), ("% peak", "pct_peak", "{:.0f}"), ("against", "against", "{}"),
                   ("time ratio", "ratio", "{:.2f}")]


def write_json(path: str, document: dict):
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(document, handle, indent=1)
        handle.write("\n")


def row_key(row: dict) -> tuple:
    return row.get("device"), row.get("op", row.get("model")), row.get("pass", "step"), row["variant"], row.get("shape", row.get("batch"))


def compare(new: dict, old: dict) -> list[str]:
    """Per-row new/old time ratios; a row is 'faster' or 'slower' only beyond its noise band:
    max(relative IQR of the new row, of the old row, 5%)."""
    previous = {row_key(r): r for r in old.get("rows", []) + old.get("train", []) if r.get("median_ms")}
    lines = [f"{'op':<8} {'pass':<8} {'variant':<22} {'shape':<18} {'old ms':>9} {'new ms':>9} {'new/old':>8} {'band':>6}  verdict"]
    for row in new.get("rows", []) + new.get("train", []):
        before = previous.get(row_key(row))
        if before is None or not row.get("median_ms"):
            continue
        ratio = row["median_ms"] / before["median_ms"]
        band = max(row["iqr_ms"] / row["median_ms"], before["iqr_ms"] / before["median_ms"], 0.05)
        verdict = "faster" if ratio < 1 - band else "slower" if ratio > 1 + band else "same (within noise)"
        op, pass_, variant, shape = row_key(row)[1:]
        lines.append(f"{op:<8} {pass_:<8} {variant:<22} {str(shape):<18} {before['median_ms']:9.3f} {row['median_ms']:9.3f} "
                     f"{ratio:8.2f} {band:6.0%}  {verdict}")
    return lines


def plot(document: dict, directory: str) -> list[str]:
    """roofline.png (GFLOP/s against FLOP/byte under the measured roofs) and crossover.png (time against
    problem size, one line per family, pass and variant)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    os.makedirs(directory, exist_ok=True)
    rows = [r for r in document["rows"] if r.get("median_ms")]
    calibration, device = document["machine"]["calibration"], document["machine"]["device"]
    peak = calibration["peak_gflops"] or calibration["gemm_gflops"]
    bandwidth = calibration["bandwidth_gbs"]

    fig, ax = plt.subplots(figsize=(8, 5.5))
    intensities = [r["intensity"] for r in rows] or [1.0]
    x = [min(intensities + [0.1]) / 2, max(intensities + [peak / bandwidth]) * 2]
    grid = [x[0] * (x[1] / x[0]) ** (i / 100) for i in range(101)]
    ax.plot(grid, [min(peak, bandwidth * i) for i in grid], "k-", label=f"roofs: {peak:.0f} GFLOP/s, {bandwidth:.0f} GB/s")
    ax.axhline(calibration["gemm_gflops"], color="gray", ls="--", label=f"GEMM {calibration['gemm_gflops']:.0f} GFLOP/s")
    markers = {"matmul": "s", "conv2d": "o", "pool2d": "^"}
    for (family, variant), group in _groups(rows, ("family", "variant")).items():
        ax.scatter([r["intensity"] for r in group], [r["gflops"] for r in group], marker=markers.get(family, "x"),
                   label=f"{family} {variant}", alpha=0.8)
    ax.set(xscale="log", yscale="log", xlabel="arithmetic intensity (FLOP/byte)", ylabel="GFLOP/s",
           title=f"roofline, {device}: {document['machine'].get('gpu') or document['machine']['cpu']}")
    ax.legend(fontsize=7)
    fig.tight_layout()
    paths = [os.path.join(directory, "roofline.png")]
    fig.savefig(paths[0], dpi=110)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(8, 5.5))
    for (family, pass_, variant), group in _groups(rows, ("family", "pass", "variant")).items():
        group = sorted(group, key=lambda r: r["flops"])
        ax.plot([r["flops"] for r in group], [r["median_ms"] for r in group], marker=markers.get(family, "x"),
                label=f"{device} {family} {pass_} {variant}")
    ax.set(xscale="log", yscale="log", xlabel="problem size (FLOPs)", ylabel="median ms",
           title="time against problem size (where the lines cross, the faster variant changes)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    paths.append(os.path.join(directory, "crossover.png"))
    fig.savefig(paths[1], dpi=110)
    plt.close(fig)
    return paths


def _groups(rows, keys):
    groups = {}
    for row in rows:
        groups.setdefault(tuple(row[k] for k in keys), []).append(row)
    return groups
