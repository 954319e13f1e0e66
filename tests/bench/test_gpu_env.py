"""bench.gpu_env, the first thing `make gpu-check` writes: it runs without a GPU, and a compiler probe that
fails is reported with its error instead of stopping the report."""

from bench import gpu_env


def test_report_runs_without_a_gpu(capsys):
    gpu_env.main()
    out = capsys.readouterr().out
    assert "numpy" in out and "cuda" in out and "nccl" in out


def test_probe_report_names_the_failure_or_the_detail():
    def broken():
        raise OSError("libnvrtc.so.13: cannot open shared object file")

    assert gpu_env.probe_report(broken) == "FAILED (OSError: libnvrtc.so.13: cannot open shared object file)"
    assert gpu_env.probe_report(lambda: "NVRTC 13.0") == "ok (NVRTC 13.0)"
    assert gpu_env.probe_report(lambda: "") == "ok"
