"""Benchmark every registered variant of an op family on every case of a shape set.

For each case the oracle is computed once: the float64 reference on the tiny shape set (the reference
is a Python loop), otherwise the CPU variant chosen by default, run on host copies of the same inputs
(it is itself tested against the reference on random shapes). Each variant is then checked on every
array its case's passes produce -- ``|out - oracle| <= atol + rtol * |oracle|`` with rtol 1e-4 and atol
1e-4 * max|oracle| against the reference (float32 against float64), rtol and atol 1e-3 against the CPU
default (float32 against float32, summed in another order); indices must be equal -- and only a
variant that passes is timed. TF32 variants are checked at 1e-2: TF32 keeps 10 mantissa bits, so each
product is good to about 1e-3. The CPU default is not checked against itself on big shapes: it is the
oracle there, marked "oracle".

The baseline of a family is its ``v0`` variant on the device (NumPy/BLAS on the CPU, the vendor library
through CuPy on a GPU: cuBLAS for matmul; CuPy has no cuDNN, so conv2d, pooling and batch norm have no v0
on a GPU). PyTorch, when it imports, is timed as its own row, "torch": on a GPU that row is the cuDNN
(and cuBLAS) baseline. Ratios are time ratios: variant median over baseline median, below 1 is faster.
"% peak" is against the run's GEMM (or FMA) roof, and for the memory-bound families (pooling, batch norm,
activation gradients, softmax cross-entropy) against the copy bandwidth.

A row whose setup, check or timing raises records the error ("ERROR (...)") and the run goes on. On a GPU,
``SLOW_ON_GPU`` caps the problem size of the rungs too slow to time at the largest shapes ("skipped").
"""

from __future__ import annotations

import numpy as np

import kernels
from bench import cases as case_sets
from bench.timing import error_text, measure
from kernels.device_arrays import to_device, to_host

MEMORY_BOUND = ("pool2d", "batchnorm", "activation", "softmax_xent")
# variant -> the most FLOPs it is timed at on a GPU, and why
SLOW_ON_GPU = {
    "numba_cuda.v1_naive": (2 * 2048**3, "uncoalesced, 1-2% of cuBLAS: tenths of a second per 4096^3 product; "
                                         "its place in the ladder shows up to 2048^3"),
}


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


def _verdict(key, ops, steps, oracle, check, rtol, device, flops) -> tuple[str, str]:
    """(status, how it was checked) of variant ``key``: "ok", "FAILED (...)", "ERROR (...)" or "skipped (...)"."""
    cap = SLOW_ON_GPU.get(key) if device == "cuda" else None
    if cap is not None and flops > cap[0]:
        return f"skipped ({cap[1]})", "-"
    if check == "cpu default" and device == "cpu" and all(kernels.selected(op, "cpu")[0].key == key for op in ops):
        return "ok", "oracle"
    tolerance = max(rtol, 1e-2) if "tf32" in key else rtol
    try:
        with kernels.use(**_pinned(key, ops)):
            error = _mismatch(_outputs(steps), oracle, tolerance, tolerance)
    except Exception as exception:
        return f"ERROR ({error_text(exception)})", check
    return ("ok" if error is None else f"FAILED ({error})"), check


def _torch_steps(case, torch, device) -> tuple[dict, str | None]:
    if torch is None:
        return {}, None
    try:
        return case.torch_steps(torch, device), None
    except Exception as error:
        return {}, f"ERROR ({error_text(error)})"


def bench_family(family, shape_set, device, timer, torch_timer, calibration, settle_s, repeats, rounds, torch, emit):
    """Rows for every (case, pass, variant) of ``family``, each handed to ``emit(row)`` as it is done."""
    peak = calibration["peak_gflops"] or calibration["gemm_gflops"]
    bandwidth = calibration["bandwidth_gbs"]
    for case in case_sets.cases(family, shape_set):
        base = {"device": device, "family": family, "op": family, "shape": case.name, "dims": case.dims}
        try:
            host = case.host_inputs()
            if shape_set == "tiny":
                oracle, check, rtol = case.reference(**host), "reference", 1e-4
            else:
                oracle, check, rtol = _outputs(case.steps(**host)), "cpu default", 1e-3
            arrays = {name: to_device(a) for name, a in host.items()} if device == "cuda" else host
            steps = case.steps(**arrays)
        except Exception as error:
            for pass_ in case.passes:
                emit(dict(base, **{"pass": pass_}, variant="-", check="-", status=f"ERROR (setup: {error_text(error)})"))
            continue
        keys = _variant_keys(case, device)
        all_ops = [op for ops in case.passes.values() for op in ops]
        largest = max(case.flops(pass_) for pass_ in case.passes)
        verdicts = {key: _verdict(key, _variant_ops(key, all_ops, device), steps, oracle, check, rtol, device, largest)
                    for key in keys}
        theirs, torch_error = _torch_steps(case, torch, device)
        baseline = next((k for k in keys if k.split(".", 1)[1].startswith("v0_")), None)
        for pass_, pass_ops in case.passes.items():
            row_base = dict(base, **{"pass": pass_}, flops=case.flops(pass_), bytes=case.bytes(pass_))
            row_base["intensity"] = row_base["flops"] / row_base["bytes"]
            fns = {"torch": theirs[pass_]} if pass_ in theirs else {}
            for key in keys:
                ops = _variant_ops(key, pass_ops, device)
                if ops and verdicts[key][0] == "ok":
                    fns[key] = _pinned_call(steps[pass_], key, ops)
            timed = measure(fns, timer, repeats, rounds, settle_s, torch_timer=torch_timer)
            reference_ms = {name: t["median_ms"] for name, t in timed.items() if "median_ms" in t}
            shown = (["torch"] if "torch" in timed or torch_error else []) + [k for k in keys if _variant_ops(k, pass_ops, device)]
            for key in shown:
                status, how = verdicts.get(key, (torch_error or "ok", "torch"))
                row = dict(row_base, variant=key, check=how, status=status)
                t = timed.get(key, {})
                if "error" in t:
                    row["status"] = f"ERROR ({t['error']})"
                elif t:
                    seconds = t["median_ms"] / 1e3
                    row.update(t, gflops=row["flops"] / seconds / 1e9, gbs=row["bytes"] / seconds / 1e9)
                    roof, achieved = (bandwidth, row["gbs"]) if family in MEMORY_BOUND else (peak, row["gflops"])
                    row["pct_peak"] = 100 * achieved / roof if roof else None
                    row["vs_baseline"] = t["median_ms"] / reference_ms[baseline] if baseline in reference_ms else None
                    row["vs_torch"] = t["median_ms"] / reference_ms["torch"] if "torch" in reference_ms else None
                    row["baseline"] = baseline
                emit(row)
