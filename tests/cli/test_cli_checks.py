"""The ``tensorlib`` command refuses bad input with messages that name it, and does nothing silently wrong:
validation on plain images, divergence, extending and resuming runs, run directories, models and files."""

import json
import os
import pickle
import warnings

import numpy as np
import pytest
from PIL import Image

import nn
import tensorlib as tl
from nn import cli
from nn.serialization import load
from nn.train import Trainer

TRAIN = ["train", "--dataset", "synthetic", "--batch-size", "100", "--no-progress"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "run"
    assert cli.main(TRAIN + ["--epochs", "1", "--out", str(out)]) == 0
    return out


def synthetic_config(**changes):
    return {**cli.TRAIN_DEFAULTS, "dataset": "synthetic", "model_options": {}, **changes}


# ---- data -----------------------------------------------------------------------------------------------
def test_validation_and_evaluation_images_are_not_augmented():
    data = cli._load_data(synthetic_config(augment="crop-flip"))
    raw = data.val.dataset.images[data.val.indices[0]]
    expected = (raw / np.float32(255) - data.description["mean"][0]) / data.description["std"][0]
    np.testing.assert_allclose(np.asarray(data.val[0][0]).reshape(raw.shape), expected, rtol=1e-5, atol=1e-5)
    first = data.loader("train")
    np.testing.assert_array_equal(next(iter(first))[0].numpy(), next(iter(data.loader("train")))[0].numpy())
    tl.manual_seed(1)
    crops = {np.asarray(data.train[0][0]).tobytes() for _ in range(8)}
    assert len(crops) > 1  # training images are still augmented
    assert set(data.train.indices) == set(data.train_plain.indices)


# ---- divergence -----------------------------------------------------------------------------------------
def test_learning_rate_10_stops_with_a_clear_message(tmp_path, run_cli):
    out = tmp_path / "lr10"
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        code, _, err = run_cli(TRAIN + ["--epochs", "2", "--lr", "10", "--out", str(out)])
    assert code == 1
    assert "training diverged" in err and "100 times" in err and "smaller learning rate" in err
    assert "no checkpoint had been written yet" in err and "last good checkpoint" not in err
    assert not out.exists()  # nothing but its config.json had been written: the --out can be used again


def test_divergence_after_a_checkpoint_names_it(tmp_path):
    trainer = Trainer(nn.Linear(2, 2), nn.optim.SGD(nn.Linear(2, 2).parameters(), lr=0.1), out_dir=str(tmp_path))
    trainer.epoch = 3
    trainer.save_checkpoint()
    assert trainer._check_loss(2.0) == 2.0
    with pytest.raises(nn.train.TrainingDiverged, match=r"checkpoint.safetensors \(epoch 3\) is kept"):
        trainer._check_loss(201.0)
    with pytest.raises(nn.train.TrainingDiverged, match="loss became nan"):
        trainer._check_loss(float("nan"))


def test_auxiliary_heads_add_a_weighted_loss():
    from nn.graphed import training_loss
    from nn.models import GoogLeNetOutputs

    class WithAux(nn.Module):
        def __init__(self):
            super().__init__()
            self.main, self.aux = nn.Linear(3, 2), nn.Linear(3, 2)

        def forward(self, x):
            return GoogLeNetOutputs(self.main(x), self.aux(x), None) if self.training else self.main(x)

    model = WithAux()
    trainer = Trainer(model, nn.optim.SGD(model.parameters(), lr=0.1), progress=False, log=lambda *_: None)
    x, y = tl.randn(4, 3), tl.tensor([0, 1, 1, 0])
    logits, loss = training_loss(model(x), y, trainer.loss_fn)
    expected = nn.CrossEntropyLoss()(model.main(x), y).item() + 0.3 * nn.CrossEntropyLoss()(model.aux(x), y).item()
    assert loss.item() == pytest.approx(expected, rel=1e-6) and logits.shape == (4, 2)
    trainer._step(x, y)
    assert model.aux.weight.grad is not None  # the auxiliary head was trained too


# ---- extending and resuming -----------------------------------------------------------------------------
@pytest.mark.parametrize("scheduler", ["cosine", "onecycle"])
def test_extending_a_run_replans_the_schedule(tmp_path, run_cli, scheduler):
    out = tmp_path / scheduler
    assert run_cli(TRAIN + ["--epochs", "1", "--scheduler", scheduler, "--out", str(out)])[0] == 0
    first_seconds = json.loads((out / "test.json").read_text())["train_seconds"]
    code, printed, err = run_cli(["train", "--resume", str(out), "--epochs", "2", "--no-progress"])
    assert code == 0, err
    assert "re-planned for 2 epochs (it was planned for 1)" in printed
    assert "Detected call of" not in err  # the schedule is replayed without optimizer steps on purpose
    assert json.loads((out / "config.json").read_text())["epochs"] == 2
    lrs = [json.loads(line)["lr"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert len(lrs) == 2 and all(lr > 0 for lr in lrs)
    if scheduler == "cosine":
        assert lrs == [pytest.approx(0.05), pytest.approx(0.025)]  # epoch 2 of a 2-epoch cosine plan
    assert json.loads((out / "test.json").read_text())["train_seconds"] > first_seconds  # the total, both parts
    code, _, err = run_cli(["train", "--resume", str(out), "--epochs", "1"])
    assert code == 2 and "already completed 2 epochs" in err


@pytest.mark.parametrize("scheduler", ["cosine", "onecycle"])
def test_epochs_of_a_run_stopped_part_way_through_them_are_refused(tmp_path, run_cli, monkeypatch, scheduler):
    """A run stopped in epoch 2 has done more than --epochs 1: refused, nothing written."""
    out = tmp_path / "run"
    original_init = Trainer.__init__

    def stop_in_epoch_2(self, *args, **kwargs):
        original_init(self, *args, **kwargs)
        self.add_callback(lambda t: t.request_stop() if (t.epoch, t.batch) == (1, 3) else None)

    monkeypatch.setattr(Trainer, "__init__", stop_in_epoch_2)
    assert run_cli(TRAIN + ["--epochs", "2", "--scheduler", scheduler, "--out", str(out)])[0] == 130
    monkeypatch.setattr(Trainer, "__init__", original_init)
    before = {path.name: path.read_bytes() for path in out.iterdir()}
    code, _, err = run_cli(["train", "--resume", str(out), "--epochs", "1"])
    assert code == 2
    assert "--epochs 1: the run in" in err and "has already completed 1 epoch and 3 batches of epoch 2" in err
    assert {path.name: path.read_bytes() for path in out.iterdir()} == before


def test_a_checkpoint_of_another_world_size_is_refused(tmp_path, monkeypatch):
    from nn import parallel
    from nn.serialization import save

    model = nn.Linear(2, 2)
    trainer = Trainer(model, nn.optim.SGD(model.parameters(), lr=0.1), out_dir=str(tmp_path))
    trainer.save_checkpoint()
    monkeypatch.setattr(parallel, "get_world_size", lambda: 2)
    with pytest.raises(nn.CheckpointError, match="trained with world size 1, but this job has world size 2"):
        trainer.restore(str(tmp_path))
    monkeypatch.undo()
    # A checkpoint from before world sizes were recorded: one process's sums, taken as world size 1.
    state = load(tmp_path / "checkpoint.safetensors")
    state["progress"] = {**state["progress"], "sums": {"loss": 6.0, "correct": 2, "seen": 3, "seconds": 0.5}}
    del state["progress"]["world_size"]
    save(state, tmp_path / "checkpoint.safetensors")
    trainer.restore(str(tmp_path))
    assert trainer.sums == {"loss": 6.0, "correct": 2, "seen": 3, "seconds": 0.5}
    monkeypatch.setattr(parallel, "get_world_size", lambda: 2)
    with pytest.raises(nn.CheckpointError, match=r"world size 1 \(a checkpoint from before world sizes were recorded"):
        trainer.restore(str(tmp_path))


@pytest.mark.parametrize("args, named", [
    (["--lr", "0.1"], "--lr 0.1 conflicts with the run's lr 0.05"),
    (["--model", "nin"], "--model nin conflicts with the run's model 'lenet5'"),
    (["--batch-size", "32"], "--batch-size 32 conflicts with the run's batch_size 100"),
    (["--dataset", "mnist-embedded"], "--dataset mnist-embedded conflicts"),
    (["--optimizer", "adam"], "--optimizer adam conflicts"),
    (["--model-arg", "activation=relu"], "--model-arg activation=\"relu\" conflicts"),
    (["--out", "elsewhere"], "--out elsewhere conflicts with --resume"),
])
def test_resume_refuses_conflicting_settings(trained, run_cli, args, named):
    before = (trained / "config.json").read_text()
    code, _, err = run_cli(["train", "--resume", str(trained), *args])
    assert code == 2 and named in err
    assert (trained / "config.json").read_text() == before


# ---- refused before anything is written -------------------------------------------------------------------
@pytest.mark.parametrize("args, named", [
    (["--epochs", "0"], "--epochs must be an integer >= 1, got 0"),
    (["--epochs", "-1"], "--epochs must be an integer >= 1, got -1"),
    (["--val-fraction", "1.0"], "--val-fraction must be a fraction in [0, 1), got 1.0"),
    (["--val-fraction", "1.5"], "--val-fraction must be a fraction in [0, 1), got 1.5"),
    (["--val-fraction", "0.9999"], "--val-fraction 0.9999 holds out all 2000 training images"),
    (["--seed", "-1"], "--seed must be an integer"),
    (["--batch-size", "0"], "--batch-size must be an integer >= 1"),
    (["--lr", "nan"], "--lr must be a finite number > 0"),
    (["--optimizer", "adam", "--momentum", "0.5"], "--momentum applies to sgd and rmsprop"),
    (["--model-arg", "foo=1"], "lenet5 has no argument 'foo'"),
    (["--model-arg", "num_classes=5"], "--model-arg num_classes=5 does not match the dataset synthetic, which has 4"),
    (["--model", "vgg11", "--model-arg", "small_input=true"], "cannot take the 1x28x28 images"),
    (["--dataset", "cifar10"], "--dataset cifar10 is read from files: give --data-dir"),
])
def test_bad_training_settings_are_refused_before_the_run_directory(tmp_path, run_cli, args, named):
    out = tmp_path / "rejected"
    code, _, err = run_cli(TRAIN + ["--epochs", "1", "--out", str(out), *args])
    assert code == 2 and named in err
    assert not out.exists()


def test_googlenet_aux_heads_on_small_images_are_refused(tmp_path, run_cli):
    code, _, err = run_cli(TRAIN + ["--model", "googlenet", "--model-arg", "aux_logits=true",
                                    "--out", str(tmp_path / "g")])
    assert code == 2 and "--model googlenet cannot take the 1x28x28 images" in err and "3x224x224" in err


def test_an_existing_run_directory_is_not_reused(trained, tmp_path, run_cli):
    lines = (trained / "metrics.jsonl").read_text()
    code, _, err = run_cli(TRAIN + ["--epochs", "1", "--out", str(trained)])
    assert code == 2 and f"--resume {trained}" in err and "another --out" in err
    assert (trained / "metrics.jsonl").read_text() == lines
    (tmp_path / "afile").write_text("x")
    code, _, err = run_cli(TRAIN + ["--epochs", "1", "--out", str(tmp_path / "afile")])
    assert code == 2 and "is a file, not a directory" in err


def test_in_channels_follow_the_dataset():
    description = {"num_classes": 4, "input_size": [1, 28, 28]}
    for name in ("resnet20", "nin"):
        config = synthetic_config(model=name)
        model = cli._build_model(config, description)
        cli._check_model_fits(model, config, description)
    rgb = cli._build_model(synthetic_config(model="lenet5"), {"num_classes": 4, "input_size": [3, 28, 28]})
    assert rgb.conv1.weight.shape == (6, 3, 5, 5)


def test_the_model_check_leaves_buffers_and_random_state_alone():
    config = synthetic_config(model="resnet20")
    description = {"num_classes": 4, "input_size": [1, 28, 28]}
    model = cli._build_model(config, description)
    before = {key: np.array(value) for key, value in model.state_dict().items()}
    state = tl.get_rng_state()
    cli._check_model_fits(model, config, description)
    assert tl.get_rng_state() == state
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(value, before[key], err_msg=key)


# ---- evaluate, predict, viz, summary ----------------------------------------------------------------------
def test_run_records_absolute_data_dir_and_dataset_description(trained):
    config = json.loads((trained / "config.json").read_text())
    assert config["data"]["num_classes"] == 4 and config["data"]["input_size"] == [1, 28, 28]
    assert len(config["data"]["mean"]) == 1 and config["data"]["classes"][0] == "horizontal stripes"
    run_dir = os.path.join("/home/u/work", "runs", "a")
    assert cli._resolve_data_dir(run_dir, {"data_dir": "data", "out": "runs/a"}) == "/home/u/work/data"
    assert cli._resolve_data_dir(run_dir, {"data_dir": "/d", "out": "runs/a"}) == "/d"


def test_predict_needs_no_dataset(trained, tmp_path, run_cli, monkeypatch):
    picture = tmp_path / "shape.png"
    Image.fromarray((np.random.default_rng(0).random((28, 28)) * 255).astype(np.uint8)).save(picture)
    monkeypatch.setattr(cli, "_load_data", lambda *a, **k: pytest.fail("predict read the dataset"))
    code, out, _ = run_cli(["predict", str(trained), str(picture), "--top-k", "2"])
    assert code == 0 and len(out.splitlines()) == 3


@pytest.mark.parametrize("args, named", [
    (["predict", "{run}", "{tmp}/notimage.png"], "notimage.png: not an image file"),
    (["predict", "{run}", "{tmp}"], "is a directory, not an image file"),
    (["predict", "{run}", "{tmp}/missing.png"], "no image file"),
    (["predict", "{run}", "{tmp}/notimage.png", "--top-k", "0"], "--top-k must be an integer >= 1, got 0"),
    (["viz", "{run}", "--index", "99999", "--out", "{tmp}/pictures"], "--index must be the number of a test image"),
    (["viz", "{run}", "--index", "-1", "--out", "{tmp}/pictures"], "0..499, got -1"),
    (["viz", "{run}", "--out", "{tmp}/notimage.png"], "--out {tmp}/notimage.png is a file"),
    (["evaluate", "{tmp}/no-such-run"], "no run directory {tmp}/no-such-run"),
    (["summary", "--model", "lenet5", "--num-classes", "0"], "--num-classes must be an integer >= 1, got 0"),
])
def test_bad_arguments_of_the_other_commands(trained, tmp_path, run_cli, args, named):
    (tmp_path / "notimage.png").write_text("not a picture")
    fill = {"run": str(trained), "tmp": str(tmp_path)}
    code, _, err = run_cli([a.format(**fill) for a in args])
    assert code == 2 and named.format(**fill) in err
    assert not (tmp_path / "pictures").exists()


def test_summary_input_must_be_chw(capsys):
    with pytest.raises(SystemExit):
        cli.main(["summary", "--model", "lenet5", "--input", "32x32"])
    assert "CxHxW" in capsys.readouterr().err


def test_evaluate_val_of_a_run_without_validation(tmp_path, run_cli):
    out = tmp_path / "noval"
    assert run_cli(TRAIN + ["--epochs", "1", "--val-fraction", "0", "--out", str(out)])[0] == 0
    code, _, err = run_cli(["evaluate", str(out), "--split", "val"])
    assert code == 2 and "--val-fraction 0" in err and "--split test" in err


def test_classes_without_samples_print_na(trained, run_cli, monkeypatch):
    evaluate = Trainer.evaluate

    def without_class_0(self, loader, num_classes=None):
        result = evaluate(self, loader, num_classes)
        result["per_class_accuracy"][0] = float("nan")
        return result

    monkeypatch.setattr(Trainer, "evaluate", without_class_0)
    code, out, _ = run_cli(["evaluate", str(trained)])
    assert code == 0 and "n/a (no samples)" in out and "nan" not in out


def test_broken_pipe_ends_quietly(trained, monkeypatch):
    class ClosedPipe:
        def write(self, text):
            raise BrokenPipeError

        def flush(self):
            pass

    monkeypatch.setattr("sys.stdout", ClosedPipe())
    assert cli.main(["evaluate", str(trained)]) == 141


# ---- damaged run files --------------------------------------------------------------------------------------
def copy_run(trained, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(trained, copy)
    return copy


@pytest.mark.parametrize("content, named", [
    ("{not json", "config.json: not valid JSON"),
    ("[1, 2]", "config.json: expected a JSON object"),
    (lambda c: {k: v for k, v in c.items() if k != "seed"}, "config.json: missing the key(s) 'seed'"),
    (lambda c: {**c, "epochs": "ten"}, "config.json: 'epochs' must be an integer >= 1"),
    (lambda c: {**c, "data": {"num_classes": 4}}, "config.json: 'data' needs 'input_size'"),
])
def test_damaged_config_names_the_file_and_key(trained, tmp_path, run_cli, content, named):
    run_dir = copy_run(trained, tmp_path)
    path = run_dir / "config.json"
    text = content if isinstance(content, str) else json.dumps(content(json.loads(path.read_text())))
    path.write_text(text)
    code, _, err = run_cli(["evaluate", str(run_dir)])
    assert code == 2 and named in err


def test_checkpoint_that_is_not_a_training_checkpoint(trained, tmp_path, run_cli):
    run_dir = copy_run(trained, tmp_path)
    weights = load(trained / "checkpoint.safetensors")["model"]
    nn.save(weights, run_dir / "checkpoint.safetensors")  # a plain file of weights
    code, _, err = run_cli(["evaluate", str(run_dir)])
    assert code == 2 and "checkpoint.safetensors: not a training checkpoint" in err and "'model'" in err
    nn.save({"model": 5, "optimizer": {}, "progress": {}, "rng": "x"}, run_dir / "checkpoint.safetensors")
    code, _, err = run_cli(["train", "--resume", str(run_dir)])
    assert code == 2 and "'model' must be a state dict" in err


def test_refused_pickle_global_is_reported(tmp_path, run_cli):
    batches = tmp_path / "cifar" / "cifar-10-batches-py"
    batches.mkdir(parents=True)
    evil = pickle.dumps(os.getcwd)  # a global outside NumPy
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        (batches / name).write_bytes(evil)
    code, _, err = run_cli(TRAIN + ["--dataset", "cifar10", "--data-dir", str(tmp_path / "cifar"),
                                "--out", str(tmp_path / "r")])
    assert code == 2 and "refusing to load the global" in err
    assert not (tmp_path / "r").exists()
