"""Benchmark every registered variant of an op family on every case of a shape set.

For each case the oracle is computed once: the float64 reference on the tiny shape set (the reference
is a Python loop), otherwise the CPU variant chosen by default, run on host copies of the same inputs
(it is itself tested against the reference on random shapes). Each variant is then checked on every
array its case's passes produce -- ``|out - oracle| <= atol + rtol * |oracle|`` with rtol 1e-4 and atol
1e-4 * max|oracle| against the reference (float32 against float64), rtol and atol 1e-3 against the CPU
default (float32 against float32, summed in another order); indices must be equal -- and only a
variant that passes is timed. The CPU default is not checked against itself on big shapes: it is the
oracle there, marked "oracle".

The baseline of a family is its ``v0`` variant on the device (NumPy/BLAS on the CPU, the vendor library
through CuPy on a GPU); PyTorch, when it imports, is timed on the CPU as its own row, "torch". Ratios
are time ratios: variant median over baseline median, below 1 is faster.
"""

from __future__ import annotations

import numpy as np

import kernels
from bench import cases as case_sets
from bench.timing import measure
from kernels.device_arrays import to_device, to_host


def _variant_ops(key: str, ops, device: str) -> list[str]:
    """The ops of ``ops`` that ``key`` implements on ``device`` (a variant may implement a subset)."""
    return [op for op in ops if any(v.key == key and v.device == device for v in kernels.variants(op))]


def _variant_keys(case, device: str) -> list[str]:
    """Every available variant of the case's ops on ``device``, v0 first."""
    keys = []
    for op in dict.fromkeys(op for ops in case.passes.values() for op in ops):
        keys += [v.key for v in kernels.variants(op) if v.device == device and v.available and v.key not in keys]
    return sorted(keys, key=lambda key: not key.split(".", 1)[1].startswith("v0_"))


def _mismatch(out: dict, oracle: dict, rtol: float, atol_scale: float) -> str | None:
    """None when every array of ``out`` matches the oracle, else a short description of the first that does not."""
    for name, value in out.items():
        value, expected = to_host(value), np.asarray(oracle[name])
        if value.shape != expected.shape:
            return f"{name}: shape {value.shape}, expected {expected.shape}"
        if expected.dtype.kind in "iu":
            if not np.array_equal(value, expected):
                return f"{name}: {int(np.sum(value != expected))} indices differ"
            continue
        atol = atol_scale * (float(np.max(np.abs(expected))) if expected.size else 0.0)
        error = np.abs(value.astype(np.float64) - expected)
        bad = ~(error <= atol + rtol * np.abs(expected))
        if bad.any():
            return f"{name}: {int(bad.sum())} of {value.size} off, max error {float(np.nanmax(error)):.3g}"
    return None


def _outputs(steps: dict) -> dict:
    """Every array the passes compute, by name (passes that share an output compute the same array)."""
    return {name: array for step in steps.values() for name, array in step().items()}


def _pinned(key: str, ops) -> dict:
    return {op: key for op in ops}


def _pinned_call(fn, key: str, ops):
    """``fn`` run with variant ``key`` picked for ``ops``."""
    choices = _pinned(key, ops)

    def call():
        with kernels.use(**choices):
            return fn()
    return call


def bench_family(family, shape_set, device, timer, calibration, settle_s, repeats, rounds, torch, emit):
    """Rows for every (case, pass, variant) of ``family``; ``emit(row)`` is called as each row is done."""
    rows = []
    peak = calibration["peak_gflops"] or calibration["gemm_gflops"]
    for case in case_sets.cases(family, shape_set):
        host = case.host_inputs()
        if shape_set == "tiny":
            oracle, check, rtol, atol = case.reference(**host), "reference", 1e-4, 1e-4
        else:
            oracle, check, rtol, atol = _outputs(case.steps(**host)), "cpu default", 1e-3, 1e-3
        arrays = {name: to_device(a) for name, a in host.items()} if device == "cuda" else host
        steps = case.steps(**arrays)
        keys = _variant_keys(case, device)
        verdicts = {}
        for key in keys:
            ops = _variant_ops(key, [op for ops in case.passes.values() for op in ops], device)
            is_oracle = check == "cpu default" and device == "cpu" and all(
                kernels.selected(op, "cpu")[0].key == key for op in ops)
            if is_oracle:
                verdicts[key] = (None, "oracle")
                continue
            with kernels.use(**_pinned(key, ops)):
                verdicts[key] = (_mismatch(_outputs(steps), oracle, rtol, atol), check)
        theirs = case.torch_steps(torch) if torch is not None else {}
        for pass_, pass_ops in case.passes.items():
            base = {"device": device, "family": family, "op": family, "pass": pass_, "shape": case.name, "dims": case.dims,
                    "flops": case.flops(pass_), "bytes": case.bytes(pass_)}
            base["intensity"] = base["flops"] / base["bytes"]
            fns = {"torch": theirs[pass_]} if pass_ in theirs else {}
            for key in keys:
                ops = _variant_ops(key, pass_ops, device)
                if ops and verdicts[key][0] is None:
                    fns[key] = _pinned_call(steps[pass_], key, ops)
            timed = measure(fns, timer, repeats, rounds, settle_s)
            baseline = next((k for k in keys if k.split(".", 1)[1].startswith("v0_")), None)
            for key in (["torch"] if "torch" in timed else []) + [k for k in keys if _variant_ops(k, pass_ops, device)]:
                error, how = verdicts.get(key, (None, "torch"))
                row = dict(base, variant=key, check=how, status="ok" if error is None else f"FAILED ({error})")
                if key in timed:
                    t = timed[key]
                    seconds = t["median_ms"] / 1e3
                    row.update(t, gflops=row["flops"] / seconds / 1e9, gbs=row["bytes"] / seconds / 1e9)
                    memory_bound = family == "pool2d"
                    row["pct_peak"] = 100 * (row["gbs"] / calibration["bandwidth_gbs"] if memory_bound else row["gflops"] / peak)
                    row["vs_baseline"] = t["median_ms"] / timed[baseline]["median_ms"] if baseline in timed else None
                    row["vs_torch"] = t["median_ms"] / timed["torch"]["median_ms"] if "torch" in timed else None
                    row["baseline"] = baseline
                rows.append(row)
                emit(row)
    return rows
