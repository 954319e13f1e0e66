"""The ``tensorlib`` command end to end on the synthetic dataset."""

import json

import numpy as np
import pytest
from PIL import Image

from nn import cli
from nn.serialization import load
from nn.train import Trainer

TRAIN = ["train", "--model", "lenet5", "--dataset", "synthetic", "--batch-size", "100", "--lr", "0.05",
         "--no-progress", "--seed", "3"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "lenet"
    assert cli.main(TRAIN + ["--epochs", "2", "--out", str(out)]) == 0
    return out


def test_train_writes_checkpoint_metrics_and_test_result(trained):
    lines = (trained / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [1, 2]
    first = json.loads(lines[0])
    for key in ("train_loss", "train_accuracy", "val_loss", "val_accuracy", "images_per_second", "lr"):
        assert np.isfinite(first[key])
    state = load(trained / "checkpoint.safetensors")
    assert state["progress"]["epoch"] == 2 and "conv1.weight" in state["model"]
    assert 0 <= json.loads((trained / "test.json").read_text())["test_accuracy"] <= 1
    assert json.loads((trained / "config.json").read_text())["model"] == "lenet5"


@pytest.mark.parametrize("optimizer", ["sgd", "nadam", "radam", "adagrad"])
def test_resume_after_interruption_matches_uninterrupted_run(tmp_path, run_cli, monkeypatch, optimizer):
    settings = TRAIN + ["--optimizer", optimizer] + ([] if optimizer == "sgd" else ["--lr", "0.01"])
    straight, interrupted = tmp_path / "straight", tmp_path / "interrupted"
    assert cli.main(settings + ["--epochs", "2", "--out", str(straight)]) == 0

    original_init = Trainer.__init__

    def stop_mid_epoch(self, *args, **kwargs):
        original_init(self, *args, **kwargs)
        self.add_callback(lambda t: t.request_stop() if (t.epoch, t.batch) == (0, 7) else None)

    monkeypatch.setattr(Trainer, "__init__", stop_mid_epoch)
    code, out, _ = run_cli(settings + ["--epochs", "2", "--out", str(interrupted)])
    assert code == 130 and "stopped during epoch 1 after 7 batches" in out
    assert load(interrupted / "checkpoint.safetensors")["progress"]["batch"] == 7
    monkeypatch.setattr(Trainer, "__init__", original_init)

    code, out, _ = run_cli(["train", "--resume", str(interrupted), "--no-progress"])
    assert code == 0 and "resuming" in out
    a = load(straight / "checkpoint.safetensors")
    b = load(interrupted / "checkpoint.safetensors")
    for key in a["model"]:
        np.testing.assert_array_equal(a["model"][key], b["model"][key], err_msg=key)
    assert a["optimizer"]["state"].keys() == b["optimizer"]["state"].keys() and a["optimizer"]["state"]
    for key, state in a["optimizer"]["state"].items():
        assert state.keys() == b["optimizer"]["state"][key].keys()
        for name, value in state.items():
            np.testing.assert_array_equal(value, b["optimizer"]["state"][key][name], err_msg=f"{key}.{name}")
    metrics_a = [json.loads(line) for line in (straight / "metrics.jsonl").read_text().splitlines()]
    metrics_b = [json.loads(line) for line in (interrupted / "metrics.jsonl").read_text().splitlines()]
    for m_a, m_b in zip(metrics_a, metrics_b):
        assert m_a["train_loss"] == pytest.approx(m_b["train_loss"], rel=1e-12)
        assert m_a["val_accuracy"] == m_b["val_accuracy"]


def test_nan_guard_stops_and_keeps_no_bad_weights(tmp_path, run_cli):
    out = tmp_path / "blowup"
    code, _, err = run_cli(TRAIN + ["--epochs", "2", "--lr", "1e8", "--out", str(out)])
    assert code == 1
    assert "loss became" in err and "smaller learning rate" in err
    checkpoint = out / "checkpoint.safetensors"
    if checkpoint.exists():
        assert all(np.isfinite(v).all() for v in load(checkpoint)["model"].values())


def test_viz_writes_valid_pictures(trained, run_cli):
    code, out, _ = run_cli(["viz", str(trained)])
    assert code == 0
    paths = out.split()
    names = {p.rsplit("/", 1)[-1] for p in paths}
    assert {"curves.png", "filters.png", "confusion.png", "input.png"} <= names
    assert {"activations_01_conv1.png", "activations_02_conv2.png"} <= names  # every convolution of LeNet-5
    for path in paths:
        with Image.open(path) as image:
            image.verify()
    with Image.open(trained / "curves.png") as image:
        assert image.format == "PNG" and image.size == (1000, 400)


def test_evaluate_prints_accuracy_and_confusion(trained, run_cli):
    code, out, _ = run_cli(["evaluate", str(trained)])
    assert code == 0
    assert "accuracy" in out and "per-class accuracy" in out and "confusion matrix" in out
    rows = [line for line in out.splitlines() if line.strip().endswith(("stripes", "square", "cross"))]
    assert sum(int(v) for row in rows[-4:] for v in row.split()[:4]) == 500  # every test image counted once


def test_predict_reads_an_image_file(trained, tmp_path, run_cli):
    from nn.data import get_dataset

    image, label = get_dataset("synthetic", split="test")[0]
    picture = tmp_path / "digit.png"
    Image.fromarray((np.asarray(image).reshape(28, 28) * 255).astype(np.uint8)).resize((56, 56)).save(picture)
    code, out, _ = run_cli(["predict", str(trained), str(picture), "--top-k", "3"])
    assert code == 0
    probabilities = [float(line.split()[-1]) for line in out.splitlines()[1:]]
    assert len(probabilities) == 3 and probabilities == sorted(probabilities, reverse=True)
    assert 0 < sum(probabilities) <= 1 + 1e-6


def test_summary_command(run_cli):
    code, out, _ = run_cli(["summary", "--model", "vgg16", "--input", "3x224x224"])
    assert code == 0 and "138,357,544" in out


def test_info_command(run_cli):
    code, out, _ = run_cli(["info"])
    assert code == 0
    assert "numpy" in out and "cuda" in out and "conv2d_forward" in out and "(default)" in out


def test_errors_are_reported_not_raised(tmp_path, run_cli):
    code, _, err = run_cli(["evaluate", str(tmp_path / "no-such-run")])
    assert code == 2 and "no-such-run" in err
    code, _, err = run_cli(TRAIN + ["--epochs", "1", "--dataset", "mnist", "--out", str(tmp_path / "r")])
    assert code == 2 and "--data-dir" in err
    code, _, err = run_cli(TRAIN + ["--epochs", "1", "--device", "cpu", "--cuda-graph", "--out", str(tmp_path / "g")])
    assert code == 2 and "--cuda-graph needs --device cuda" in err and "got --device cpu" in err


def test_ctrl_c_saves_a_checkpoint_and_exits(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "interrupted"
    process = subprocess.Popen([sys.executable, "-m", "nn.cli", *TRAIN, "--epochs", "50", "--out", str(out)],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 120
    while not (out / "metrics.jsonl").exists() and time.time() < deadline and process.poll() is None:
        time.sleep(0.1)
    process.send_signal(signal.SIGINT)
    output, _ = process.communicate(timeout=60)
    assert process.returncode == 130, output
    assert "saving a checkpoint" in output and "resume with --resume" in output
    state = load(out / "checkpoint.safetensors")
    assert state["progress"]["epoch"] >= 1 and state["progress"]["epoch"] < 50
    assert os.path.exists(out / "config.json")


def test_plateau_schedule_divides_the_lr_when_the_validation_loss_stalls(tmp_path, run_cli, monkeypatch):
    original = Trainer.evaluate

    def stalled(self, loader, num_classes=None):
        result = original(self, loader, num_classes)
        result["loss"] = 1.0  # never improves
        return result

    monkeypatch.setattr(Trainer, "evaluate", stalled)
    out = tmp_path / "plateau"
    code, _, _ = run_cli(TRAIN + ["--epochs", "5", "--scheduler", "plateau", "--out", str(out)])
    assert code == 0
    lrs = [json.loads(line)["lr"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    # best at epoch 1, then 3 epochs without improvement exceed patience 2: divided by 10 after epoch 4
    assert lrs == pytest.approx([0.05, 0.05, 0.05, 0.05, 0.005])
    code, out_text, _ = run_cli(["train", "--resume", str(out), "--epochs", "6", "--no-progress"])
    assert code == 0 and "re-planned" not in out_text
    assert load(out / "checkpoint.safetensors")["scheduler"]["best"] == 1.0
