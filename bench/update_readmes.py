"""Fill the measured-results blocks of the READMEs from ``tensorlib bench`` JSON files.

    python -m bench.update_readmes bench/results/cpu-NAME.json [more.json ...]

Each README gets (or keeps) one block between ``<!-- bench:cpu:begin -->`` and ``<!-- bench:cpu:end -->``;
only the text between the markers is rewritten, and a missing block is appended at the end of the file.
The rows of all files are merged (a later file's row replaces an earlier one's); the machine is the first's.
"""

from __future__ import annotations

import json
import re
import sys

from bench.report import COLUMNS, markdown_table, row_key, train_markdown

BEGIN, END = "<!-- bench:cpu:begin -->", "<!-- bench:cpu:end -->"
FAMILY_COLUMNS = [c for c in COLUMNS if c[1] not in ("op", "first_call_ms", "launch_ms")]  # launch: GPU runs only


def fill(path: str, body: str):
    with open(path, encoding="utf-8") as handle:
        text = handle.read()
    block = f"{BEGIN}\n{body.strip()}\n{END}"
    if BEGIN in text:
        text = re.sub(re.escape(BEGIN) + ".*?" + re.escape(END), lambda _: block, text, flags=re.S)
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)


def machine_line(document: dict, sources: list[str]) -> str:
    m, c = document["machine"], document["machine"]["calibration"]
    return (f"Measured by `tensorlib bench` ({', '.join(f'`{s}`' for s in sources)}): {m['cpu']}, {m['cores']} cores, "
            f"BLAS {'; '.join(m['blas'])}, numpy {m['numpy']}" + (f", torch {m['torch']}" if m.get("torch") else "")
            + f"; roofs {c['peak_gflops']:.0f} GFLOP/s FMA peak, {c['bandwidth_gbs']:.0f} GB/s copy, "
            f"{c['gemm_gflops']:.0f} GFLOP/s BLAS GEMM (n={c['gemm_n']}); {m['date'][:10]}. Medians (lowest of 5 interleaved rounds) "
            "and IQR in ms; ratios are time ratios, below 1 is faster. Regenerate with `make bench-report`.")


def default_variant(row: dict) -> str:
    """The variant tensorlib runs by default for the row's op on its device (the headline's "tensorlib")."""
    from bench.cases import BN_OPS, CONV_OPS, POOL_OPS
    from kernels import registry

    op = {"conv2d": CONV_OPS[0], "matmul": "matmul", "batchnorm": BN_OPS[0], "activation": "activation_backward",
          "softmax_xent": "softmax_xent_forward"}.get(row["op"])
    if row["op"] == "pool2d":
        op = POOL_OPS[row["shape"].split("_")[0]] + "_forward"
    return registry.selected(op, row["device"])[0].key


def headline(rows: list[dict], train: list[dict]) -> str:
    def ours(row):
        return row["variant"] != "torch" and row["variant"] == default_variant(row) and row.get("median_ms")

    lines = ["| what | shape | tensorlib ms | torch ms | tensorlib / torch |", "|---|---|---|---|---|"]
    for row in rows:
        if ours(row) and row["pass"] == "fwd+bwd" and row.get("vs_torch"):
            torch_ms = row["median_ms"] / row["vs_torch"]
            what = row["dims"] if row["op"] == "conv2d" else f"{row['shape']} {row['dims']}"
            lines.append(f"| {row['op']} fwd+bwd | {what} | {row['median_ms']:.2f} | {torch_ms:.2f} | {row['vs_torch']:.2f} |")
    for result in train:
        if result["variant"] != "torch" and result.get("vs_torch"):
            torch_ms = result["median_ms"] / result["vs_torch"]
            lines.append(f"| {result['model']} training step | batch {result['batch']} | {result['median_ms']:.1f} "
                         f"({result['images_per_s']:.0f} images/s) | {torch_ms:.1f} | {result['vs_torch']:.2f} |")
    gemms = [r for r in rows if ours(r) and r["op"] == "matmul"]
    if gemms:
        best = max(gemms, key=lambda r: r["flops"])
        lines += ["", f"matmul ({best['variant']}, {best['dims']}): {best['gflops']:.0f} GFLOP/s, "
                      f"{best['pct_peak']:.0f}% of the measured FMA peak."]
    return "\n".join(lines)


def main(argv=None) -> int:
    paths = (argv if argv is not None else sys.argv[1:])
    if not paths:
        print(__doc__)
        return 2
    documents = []
    for path in paths:
        with open(path, encoding="utf-8") as handle:
            documents.append(json.load(handle))
    rows = list({row_key(r): r for d in documents for r in d["rows"]}.values())
    train = [r for d in documents for r in d["train"]]
    intro = machine_line(documents[0], paths)
    for family in ("conv2d", "pool2d", "matmul", "batchnorm", "activation", "softmax_xent"):
        family_rows = [r for r in rows if r["op"] == family]
        if family_rows:
            fill(f"kernels/{family}/README.md", f"{intro}\n\n{markdown_table(family_rows, FAMILY_COLUMNS)}")
    summary = headline(rows, train)
    if train:
        summary += "\n\nTraining steps (SGD with momentum on random data) and where a tensorlib step goes:\n\n" + train_markdown(train)
    fill("README.md", f"{intro}\n\n{summary}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
