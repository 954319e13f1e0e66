"""The ``tensorlib`` command: train, evaluate, predict, summary, viz, info (and bench)."""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import platform
import sys
import time
import warnings

import numpy as np

import tensorlib as tl
from tensorlib.device import cuda_device_name

CONFIG = "config.json"


def _resolve_device(name: str, log=print) -> str:
    if name == "auto":
        reason = tl.cuda_unavailable_reason()
        device = "cuda" if reason is None else "cpu"
        log(f"device: {device}" + (f" (cuda not usable: {reason})" if reason else ""))
        return device
    if name == "cuda":
        from tensorlib.device import require_cuda

        require_cuda()
    return name


TRAIN_DEFAULTS = {
    "model": "lenet5", "dataset": "mnist-embedded", "data_dir": None, "epochs": 10, "batch_size": 64,
    "optimizer": "sgd", "lr": 0.05, "momentum": 0.9, "weight_decay": 5e-4, "scheduler": "cosine",
    "device": "auto", "seed": 0, "val_fraction": 0.1, "augment": "none", "cuda_graph": False,
}
# What a resumed run may change: how long it trains, where it runs, where its data files now are.
# Everything else would make it a different run.
CHANGEABLE_ON_RESUME = ("epochs", "device", "cuda_graph", "data_dir")
MOMENTUM_OPTIMIZERS = ("sgd", "rmsprop")
SCHEDULERS = ("none", "cosine", "step", "onecycle", "plateau")
OPTIMIZERS = ("sgd", "adam", "adamw", "rmsprop", "adagrad", "adadelta", "adamax", "nadam", "radam")
AUGMENTS = ("none", "crop", "crop-flip")
DEVICES = ("auto", "cpu", "cuda")


def _option(key: str) -> str:
    return "--" + key.replace("_", "-")


def _model_arg(text: str):
    """"pooling=max" -> ("pooling", "max"); values are read as JSON when they parse (numbers, true)."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise ValueError(f"--model-arg must be KEY=VALUE, got {text!r}")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def _shape(text: str) -> tuple[int, ...]:
    try:
        shape = tuple(int(part) for part in text.lower().split("x"))
    except ValueError:
        shape = ()
    if len(shape) != 3 or min(shape) < 1:
        raise argparse.ArgumentTypeError(f"expected channels x height x width (CxHxW) like 3x32x32, got {text!r}")
    return shape


def _write_json(path, value):
    """Write ``value`` as JSON to ``path`` atomically (a crash leaves the previous file)."""
    temporary = f"{path}.tmp"
    with open(temporary, "w", encoding="utf-8") as handle:
        json.dump(value, handle, indent=2)
        handle.write("\n")
    os.replace(temporary, path)


# ---- settings of a run: defaults, checks, config.json -------------------------------------------------------
def _check_settings(config, source=None):
    """ValueError naming the option (or ``source``, the config file, and the key) of the first bad setting."""

    def bad(key, expected):
        name = f"{source}: {key!r}" if source else _option(key)
        return ValueError(f"{name} must be {expected}, got {config[key]!r}")

    def number(key):
        value = config[key]
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)

    def integer(key):
        return isinstance(config[key], int) and not isinstance(config[key], bool)

    if not integer("epochs") or config["epochs"] < 1:
        raise bad("epochs", "an integer >= 1")
    if not integer("batch_size") or config["batch_size"] < 1:
        raise bad("batch_size", "an integer >= 1")
    if not number("lr") or config["lr"] <= 0:
        raise bad("lr", "a finite number > 0")
    if config["optimizer"] not in OPTIMIZERS:
        raise bad("optimizer", "one of " + ", ".join(OPTIMIZERS))
    if config["optimizer"] in MOMENTUM_OPTIMIZERS and (not number("momentum") or not 0 <= config["momentum"] < 1):
        raise bad("momentum", "a number in [0, 1)")
    if not number("weight_decay") or config["weight_decay"] < 0:
        raise bad("weight_decay", "a finite number >= 0")
    if config["scheduler"] not in SCHEDULERS:
        raise bad("scheduler", "one of " + ", ".join(SCHEDULERS))
    if config["augment"] not in AUGMENTS:
        raise bad("augment", "one of " + ", ".join(AUGMENTS))
    if config["device"] not in DEVICES:
        raise bad("device", "one of " + ", ".join(DEVICES))
    if not integer("seed") or not 0 <= config["seed"] < 2**63:
        raise bad("seed", "an integer in [0, 2**63)")
    if not number("val_fraction") or not 0 <= config["val_fraction"] < 1:
        raise bad("val_fraction", "a fraction in [0, 1)")
    if not isinstance(config.get("model_options", {}), dict):
        raise bad("model_options", "a mapping of the model builder's keyword arguments")


def _new_config(args) -> dict:
    """The settings of a new run from the command line, checked, with defaults for what was not given."""
    given = {key: getattr(args, key) for key in TRAIN_DEFAULTS if getattr(args, key) is not None}
    config = {**TRAIN_DEFAULTS, **given}
    if config["optimizer"] not in MOMENTUM_OPTIMIZERS:
        if args.momentum is not None:
            raise ValueError(f"--momentum applies to sgd and rmsprop; --optimizer {config['optimizer']} takes no "
                             f"momentum (the Adam family's first moment uses betas (0.9, 0.999)), got --momentum {args.momentum}")
        config["momentum"] = None
    config["model_options"] = dict(_model_arg(item) for item in args.model_arg)
    _check_settings(config)
    if config["data_dir"] is not None:
        config["data_dir"] = os.path.abspath(config["data_dir"])  # evaluate, predict and viz may run elsewhere
    stamp = time.strftime("%Y%m%d-%H%M%S")
    config["out"] = args.out or os.path.join("runs", f"{config['model']}-{config['dataset']}-{stamp}")
    return config


def _check_new_run_directory(out):
    if os.path.exists(out) and not os.path.isdir(out):
        raise ValueError(f"--out {out} is a file, not a directory: choose a directory for the run")
    if os.path.isdir(out) and os.listdir(out):
        raise ValueError(f"--out {out} already holds files ({', '.join(sorted(os.listdir(out))[:4])}): continue "
                         f"that run with --resume {out}, or choose another --out")


REQUIRED_KEYS = ("model", "dataset", "epochs", "batch_size", "optimizer", "lr", "momentum", "weight_decay",
                 "scheduler", "device", "seed", "val_fraction", "augment")


def _read_config(run) -> dict:
    """The config.json of the run directory ``run``, checked, with errors that name the file and the key."""
    if not os.path.isdir(run):
        raise FileNotFoundError(f"no run directory {run}" if not os.path.exists(run)
                                else f"{run} is a file, not a run directory")
    path = os.path.join(run, CONFIG)
    try:
        with open(path, encoding="utf-8") as handle:
            config = json.load(handle)
    except FileNotFoundError:
        raise FileNotFoundError(f"{run} has no {CONFIG}: not a run directory written by tensorlib train") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{path}: not valid JSON ({error})") from None
    if not isinstance(config, dict):
        raise ValueError(f"{path}: expected a JSON object of settings, found a {type(config).__name__}")
    missing = [key for key in REQUIRED_KEYS if key not in config]
    if missing:
        raise ValueError(f"{path}: missing the key(s) {', '.join(map(repr, missing))}")
    for key in ("model", "dataset"):
        if not isinstance(config[key], str):
            raise ValueError(f"{path}: {key!r} must be a string, got {config[key]!r}")
    if config.get("data_dir") is not None and not isinstance(config["data_dir"], str):
        raise ValueError(f"{path}: 'data_dir' must be a string or null, got {config['data_dir']!r}")
    if "data" in config:
        _check_description(config["data"], path)
    config.setdefault("data_dir", None)
    config.setdefault("model_options", {})
    config.setdefault("cuda_graph", False)
    _check_settings(config, path)
    config["data_dir"] = _resolve_data_dir(run, config)
    return config


def _check_description(data, path):
    """config.json's "data": what predict needs of the dataset (classes, input size, normalisation)."""
    shapes = {"num_classes": int, "input_size": list, "classes": list, "mean": list, "std": list}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: 'data' must be an object with the keys {', '.join(shapes)}, got {data!r}")
    for key, kind in shapes.items():
        if not isinstance(data.get(key), kind):
            raise ValueError(f"{path}: 'data' needs {key!r} as a JSON {'integer' if kind is int else 'list'}, "
                             f"got {data.get(key)!r}")
    if len(data["input_size"]) != 3 or len(data["classes"]) != data["num_classes"]:
        raise ValueError(f"{path}: 'data' needs a 3-item input_size and one name per class, got {data!r}")


def _resolve_data_dir(run, config):
    """An absolute data directory. Runs written before it was stored absolute hold it relative to the
    directory training ran in: the one that ``config["out"]`` (the run directory as given then) was relative to."""
    data_dir = config.get("data_dir")
    if data_dir is None or os.path.isabs(data_dir):
        return data_dir
    out = os.path.normpath(str(config.get("out") or ""))
    run = os.path.abspath(run)
    if out and not os.path.isabs(out) and (run == out or run.endswith(os.sep + out)):
        return os.path.join(run[: len(run) - len(out)], data_dir)
    return os.path.abspath(data_dir)


def _resume_config(args):
    """(settings of the run in ``args.resume``, with what this command line may change applied; the epochs
    the run was planned for). Options that would change anything else are refused."""
    run = args.resume
    config = _read_config(run)
    if args.out is not None and os.path.abspath(args.out) != os.path.abspath(run):
        raise ValueError(f"--out {args.out} conflicts with --resume {run}: a resumed run stays in its directory")
    for key in TRAIN_DEFAULTS:
        value = getattr(args, key)
        if value is None or key in CHANGEABLE_ON_RESUME:
            continue
        if value != config[key]:
            raise ValueError(
                f"{_option(key)} {value} conflicts with the run's {key} {config[key]!r} ({os.path.join(run, CONFIG)}); "
                f"a resumed run keeps its settings and may change only "
                f"{', '.join(_option(k) for k in CHANGEABLE_ON_RESUME)}: start a new run (--out) to change others")
    for key, value in dict(_model_arg(item) for item in args.model_arg).items():
        if config["model_options"].get(key) != value:
            raise ValueError(f"--model-arg {key}={json.dumps(value)} conflicts with the run's model options "
                             f"{json.dumps(config['model_options'])}; a resumed run keeps its model")
    planned = config["epochs"]
    for key in CHANGEABLE_ON_RESUME:
        if getattr(args, key) is not None:
            config[key] = getattr(args, key)
    if args.data_dir is not None:
        config["data_dir"] = os.path.abspath(args.data_dir)
    config["out"] = run
    _check_settings(config)
    return config, planned


# ---- data, model, optimizer ---------------------------------------------------------------------------------
class RunData:
    """A run's datasets: ``train`` (with the augmentation; a distributed shard in a distributed job),
    ``train_plain`` and ``val`` (the same split, normalised only), ``test``; ``description`` (classes, input
    size, normalisation) is what config.json records for predict."""

    def __init__(self, train, train_plain, val, test, description):
        self.train, self.train_plain, self.val, self.test = train, train_plain, val, test
        self.description = description

    def loader(self, split, batch_size=256):
        from nn.data import DataLoader

        dataset = {"train": self.train_plain, "val": self.val, "test": self.test}[split]
        return DataLoader(dataset, batch_size=batch_size)


def _describe(dataset) -> dict:
    return {"num_classes": dataset.num_classes, "input_size": list(dataset.input_size),
            "classes": [str(c) for c in (getattr(dataset, "classes", None) or range(dataset.num_classes))],
            "mean": list(dataset.mean), "std": list(dataset.std)}


def _load_data(config, distributed=False) -> RunData:
    from nn.data import DistributedSampler, DistributedShard, Subset, get_dataset, random_split
    from nn.data import transforms as T
    from nn.data.datasets.registry import FROM_FILES

    name, root = config["dataset"], config.get("data_dir")
    if name in FROM_FILES and root is None:
        raise ValueError(f"--dataset {name} is read from files: give --data-dir DIR, the directory holding them")
    plain = get_dataset(name, root=root, split="train")
    normalize = T.Compose([T.ToTensor(), T.Normalize(plain.mean, plain.std)])
    steps = []
    if config["augment"] in ("crop", "crop-flip"):
        steps.append(T.RandomCrop(plain.input_size[1:], padding=max(plain.input_size[1] // 14, 1)))
    if config["augment"] == "crop-flip":
        steps.append(T.RandomHorizontalFlip())
    augmented = copy.copy(plain)  # the same images, two transforms: augmentation for training only
    augmented.transform = T.Compose(steps + [T.ToTensor(), T.Normalize(plain.mean, plain.std)])
    plain.transform = normalize
    test = get_dataset(name, root=root, split="test", transform=normalize)
    held_out = int(round(len(plain) * config["val_fraction"]))
    if held_out >= len(plain):
        raise ValueError(f"--val-fraction {config['val_fraction']} holds out all {len(plain)} training images "
                         "of the dataset: leave at least one for training")
    if held_out:
        splitter = np.random.default_rng(config["seed"])  # the split depends on the seed only, never on training
        train_part, val_part = random_split(plain, [len(plain) - held_out, held_out], generator=splitter)
        train, train_plain = Subset(augmented, train_part.indices), train_part
        val = val_part
    else:
        train, train_plain, val = augmented, plain, None
    if distributed:  # this rank's shard of each epoch; the sampler shuffles, the same way on every rank
        train = DistributedShard(train, DistributedSampler(train, seed=config["seed"]))
    return RunData(train, train_plain, val, test, _describe(plain))


def _build_model(config, description):
    """The run's model: the builder's defaults, the dataset's classes and channels, then --model-arg options."""
    import inspect

    from nn.models import available, get_model

    builders = available()
    if config["model"] not in builders:
        raise ValueError(f"--model must be one of {', '.join(builders)}, got {config['model']!r}")
    accepted = inspect.signature(builders[config["model"]]).parameters
    user = config.get("model_options") or {}
    unknown = [key for key in user if key not in accepted]
    if unknown:
        raise ValueError(f"--model-arg {unknown[0]}=...: {config['model']} has no argument {unknown[0]!r}; "
                         f"it takes {', '.join(accepted)}")
    from_data = {"num_classes": description["num_classes"], "in_channels": description["input_size"][0]}
    for key, value in from_data.items():
        if key in user and user[key] != value:
            raise ValueError(f"--model-arg {key}={user[key]} does not match the dataset {config['dataset']}, "
                             f"which has {value} {'classes' if key == 'num_classes' else 'channels'}")
    options = {key: value for key, value in from_data.items() if key in accepted}
    options.update(user)
    try:
        return get_model(config["model"], **options)
    except TypeError as error:
        raise ValueError(f"--model-arg: {config['model']} rejected its options {json.dumps(user)}: {error}") from None


def _check_model_fits(model, config, description):
    """One forward pass of two blank images in training mode (auxiliary heads included), so that a model
    that cannot take the dataset's image size fails here with a clear message, not mid-training. The
    model's buffers and the random generator are restored afterwards: training starts as if it never ran."""
    from nn.models import INPUT_SIZES
    from nn.summary import preserved

    size = description["input_size"]
    images = "x".join(map(str, size))
    try:
        with preserved(model), tl.no_grad(), np.errstate(all="ignore"):
            output = model(tl.zeros(2, *size))
    except Exception as error:  # whatever layer fails, the cause is the image size: say so
        small = (config.get("model_options") or {}).get("small_input")
        designed = "x".join(map(str, (3, 32, 32) if small else INPUT_SIZES.get(config["model"], ())))
        raise ValueError(f"--model {config['model']} cannot take the {images} images of --dataset "
                         f"{config['dataset']} ({type(error).__name__}: {error}); it is built for {designed} images"
                         ) from None
    logits = output[0] if isinstance(output, tuple) else output
    if tuple(logits.shape) != (2, description["num_classes"]):
        raise ValueError(f"--model {config['model']} gives outputs of shape {tuple(logits.shape)[1:]} for "
                         f"{images} images; --dataset {config['dataset']} needs {description['num_classes']} "
                         "class scores")


def _build_optimizer(config, model):
    from nn import optim

    name, options = config["optimizer"], {"lr": config["lr"], "weight_decay": config["weight_decay"]}
    if name == "sgd":
        options.update(momentum=config["momentum"], nesterov=config.get("nesterov", False))
    elif name == "rmsprop":
        options.update(momentum=config["momentum"])
    classes = {"sgd": optim.SGD, "adam": optim.Adam, "adamw": optim.AdamW, "rmsprop": optim.RMSprop,
               "adagrad": optim.Adagrad, "adadelta": optim.Adadelta, "adamax": optim.Adamax, "nadam": optim.NAdam,
               "radam": optim.RAdam}
    return classes[name](model.parameters(), **options)


def _build_scheduler(config, optimizer, steps_per_epoch):
    """(scheduler, interval): cosine and step act per epoch, onecycle per batch; each spans config["epochs"].
    plateau divides the learning rate by 10 at the 3rd epoch in a row without a lower validation loss
    (patience 2: more than 2 bad epochs, as PyTorch counts them; no horizon)."""
    from nn.optim import lr_scheduler

    name, epochs = config["scheduler"], config["epochs"]
    if name == "none":
        return None, "epoch"
    if name == "cosine":
        return lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs), "epoch"
    if name == "step":
        return lr_scheduler.StepLR(optimizer, step_size=max(epochs // 3, 1), gamma=0.1), "epoch"
    if name == "plateau":
        return lr_scheduler.ReduceLROnPlateau(optimizer, mode="min", factor=0.1, patience=2), "epoch"
    return lr_scheduler.OneCycleLR(optimizer, max_lr=config["lr"], epochs=epochs,
                                   steps_per_epoch=steps_per_epoch), "batch"


def _replan_schedule(trainer, config, steps_per_epoch):
    """Give a resumed run whose number of epochs changed the schedule it would have had if planned for
    config["epochs"] from the start, at the step the run has reached: a fresh scheduler, from the base
    learning rate, stepped as many times as the run's scheduler was."""
    if config["scheduler"] == "none":
        return
    if config["scheduler"] == "plateau":  # no horizon: a fresh one, as the saved state is missing
        trainer.scheduler, _ = _build_scheduler(config, trainer.optimizer, steps_per_epoch)
        return
    for group in trainer.optimizer.param_groups:
        group["lr"] = config["lr"]
    scheduler, interval = _build_scheduler(config, trainer.optimizer, steps_per_epoch)
    taken = trainer.epoch if interval == "epoch" else trainer.epoch * steps_per_epoch + trainer.batch
    with warnings.catch_warnings():  # replaying the schedule without optimizer steps is the point here
        warnings.filterwarnings("ignore", message="Detected call of `lr_scheduler.step")
        for _ in range(taken):
            scheduler.step()
    trainer.scheduler = scheduler


def _setup(config, log=print, progress=True, distributed=False):
    """Model, data, optimizer and trainer of a run described by ``config``; with ``distributed``, this rank's
    (the model wrapped in DistributedDataParallel, its shard of the data, and files written by rank 0 only)."""
    from nn import parallel
    from nn.data import DataLoader
    from nn.train import Trainer

    if config.get("cuda_graph") and config["device"] == "cpu":
        raise ValueError("--cuda-graph needs --device cuda (or auto on a machine with a GPU), got --device cpu")
    tl.manual_seed(config["seed"])
    data = _load_data(config, distributed)
    model = _build_model(config, data.description)
    _check_model_fits(model, config, data.description)
    device = _resolve_device(config["device"], log)
    model = model.to(device)
    if distributed:
        model = parallel.DistributedDataParallel(model)
    optimizer = _build_optimizer(config, model)
    train_loader = DataLoader(data.train, batch_size=config["batch_size"], shuffle=not distributed)
    scheduler, interval = _build_scheduler(config, optimizer, len(train_loader))
    cuda_graph = bool(config.get("cuda_graph")) and device == "cuda"
    if config.get("cuda_graph") and device != "cuda":
        log("cuda graphs: off (training on the cpu)")
    trainer = Trainer(model, optimizer, scheduler=scheduler, scheduler_interval=interval, device=device,
                      out_dir=config["out"] if parallel.get_rank() == 0 else None, log=log, progress=progress,
                      config=config, cuda_graph=cuda_graph)
    return trainer, data, train_loader


def command_train(args) -> int:
    """Train; with ``--distributed``, as one rank of an ``mpiexec`` (or torchrun-style) job: every rank trains on
    its shard with ``--batch-size`` images per step (global batch: world size x batch size), rank 0 alone prints
    and writes files, and a rank that fails ends the whole job."""
    from nn import parallel

    if args.distributed:
        parallel.init_process_group(device=args.device)
    try:
        # A no-op in one process; else a rank's error ends the job (the other ranks would wait forever), the
        # errors main() reports in one line reported in one line here too.
        with parallel.abort_on_error(one_line=(ValueError, RuntimeError, OSError)):
            return _train(args)
    finally:
        if args.distributed:
            parallel.destroy_process_group()


def _train(args) -> int:
    from nn import parallel
    from nn.train import TrainingDiverged

    rank = parallel.get_rank()
    say = print if rank == 0 else (lambda *_, **__: None)
    if args.resume:
        config, planned = _resume_config(args)
    else:
        config, planned = _new_config(args), None
        config = parallel.broadcast_object(config)  # rank 0's run directory (its clock names it) everywhere
        if rank == 0:
            _check_new_run_directory(config["out"])
    # Everything that can be refused is checked before the run directory is written.
    trainer, data, train_loader = _setup(config, log=say, progress=not args.no_progress and rank == 0,
                                         distributed=args.distributed)
    config["data"] = data.description
    if args.resume:
        state = trainer.restore(args.resume, scheduler=False)
        if trainer.epoch > config["epochs"] or (trainer.epoch == config["epochs"] and trainer.batch > 0):
            raise ValueError(f"--epochs {config['epochs']}: the run in {args.resume} has already completed "
                             f"{_progress_text(trainer.epoch, trainer.batch)}")
        saved_for = _saved_epochs(state, planned)
        same_plan = saved_for == config["epochs"] or config["scheduler"] == "plateau"  # plateau has no horizon
        if same_plan and "scheduler" in state and trainer.scheduler is not None:
            trainer.scheduler.load_state_dict(state["scheduler"])
        else:
            _replan_schedule(trainer, config, len(train_loader))
            if config["scheduler"] != "none":
                say(f"the {config['scheduler']} schedule is re-planned for {config['epochs']} epochs (it was planned "
                    f"for {saved_for}) and continues after epoch {trainer.epoch} of the new plan")
        say(f"resuming {args.resume} at epoch {trainer.epoch + 1}, batch {trainer.batch}")
    if rank == 0:
        os.makedirs(config["out"], exist_ok=True)
        _write_json(os.path.join(config["out"], CONFIG), config)
    world = parallel.get_world_size()
    say(f"training {config['model']} on {config['dataset']} ({len(train_loader.dataset)} train images"
        + (f" per rank, {world} ranks, global batch {world * config['batch_size']}" if args.distributed else "")
        + f") for {config['epochs']} epochs; run directory {config['out']}")
    val_loader = data.loader("val") if data.val is not None and rank == 0 else None
    try:
        trainer.fit(train_loader, val_loader, config["epochs"], num_classes=data.description["num_classes"])
    except TrainingDiverged as error:  # raised on every rank at the same batch, with the same message
        if rank == 0:
            if not args.resume:
                _remove_if_unstarted(config["out"])
            print(f"tensorlib train: error: {error}", file=sys.stderr)
        return 1
    if trainer.stopped:
        return 130
    if rank != 0:
        return 0
    test_loader = data.loader("test")
    result = trainer.evaluate(test_loader, data.description["num_classes"])
    summary = {"test_accuracy": result["accuracy"], "test_loss": result["loss"],
               "train_seconds": trainer.train_seconds}
    _write_json(os.path.join(config["out"], "test.json"), summary)
    print(f"test accuracy {result['accuracy']:.4f} (loss {result['loss']:.4f}) on {len(data.test)} "
          f"held-out images; {trainer.train_seconds:.1f} s of training")
    return 0


def _progress_text(epoch, batch):
    """"1 epoch and 11 batches of epoch 2", "2 epochs"."""
    text = f"{epoch} epoch" + ("s" if epoch != 1 else "")
    if batch:
        text += f" and {batch} batch" + ("es" if batch != 1 else "") + f" of epoch {epoch + 1}"
    return text


def _remove_if_unstarted(out):
    """Remove the new run directory ``out`` again when it holds nothing but its config.json (no checkpoint
    was written), so that the same --out can be used for the next try."""
    from nn.train import CHECKPOINT

    if os.path.exists(os.path.join(out, CHECKPOINT)):
        return
    os.remove(os.path.join(out, CONFIG))
    if not os.listdir(out):
        os.rmdir(out)


def _saved_epochs(state, planned):
    """The number of epochs the checkpoint's schedule was built for: its own copy of the settings, or
    config.json's value before this command line changed it."""
    try:
        return int(json.loads(state["config"])["epochs"])
    except (KeyError, TypeError, ValueError):
        return planned


# ---- evaluate / predict -------------------------------------------------------------------------------------
def _restore_run(run, with_data=True):
    """(settings, trainer holding the trained model in eval mode, RunData or None) of the run in ``run``.
    Without ``with_data`` the datasets are not read when config.json describes them (runs since it does)."""
    from nn.train import CHECKPOINT, Trainer, read_checkpoint

    config = _read_config(run)
    config["out"] = None
    data = _load_data(config) if with_data or "data" not in config else None
    description = data.description if data is not None else config["data"]
    model = _build_model(config, description)
    path = os.path.join(run, CHECKPOINT)
    from nn.serialization import load_into

    load_into(model, read_checkpoint(path)["model"], path)
    device = _resolve_device(config["device"], log=lambda *_: None)
    model = model.to(device)
    model.eval()
    trainer = Trainer(model, None, device=device, progress=False, log=lambda *_: None)
    return config, trainer, data, description


def command_evaluate(args) -> int:
    config, trainer, data, description = _restore_run(args.run)
    if args.split == "val" and data.val is None:
        raise ValueError(f"--split val: the run in {args.run} was trained with --val-fraction 0 and has no "
                         "validation images; use --split test or --split train")
    result = trainer.evaluate(data.loader(args.split), description["num_classes"])
    classes = description["classes"]
    print(f"{config['model']} on {config['dataset']} ({args.split}): accuracy {result['accuracy']:.4f}, "
          f"loss {result['loss']:.4f}")
    print("per-class accuracy:")
    for name, accuracy in zip(classes, result["per_class_accuracy"]):
        print(f"  {name:>12}  " + ("n/a (no samples)" if math.isnan(accuracy) else f"{accuracy:.4f}"))
    print("confusion matrix (rows: true class, columns: predicted):")
    matrix = result["confusion_matrix"]
    width = max(len(str(matrix.max())), 3)
    print("  " + " ".join(f"{str(c)[:width]:>{width}}" for c in classes))
    for name, row in zip(classes, matrix):
        print("  " + " ".join(f"{v:>{width}}" for v in row) + f"   {name}")
    return 0


def load_image(path, input_size, invert=False) -> np.ndarray:
    """An image file as a float32 (C, H, W) array in [0, 1], converted to the model's channels and size."""
    from PIL import Image, UnidentifiedImageError

    if os.path.isdir(path):
        raise ValueError(f"{path} is a directory, not an image file")
    channels, height, width = input_size
    try:
        with Image.open(path) as image:
            image = image.convert("L" if channels == 1 else "RGB").resize((width, height), Image.BILINEAR)
            array = np.asarray(image, dtype=np.float32) / 255.0
    except UnidentifiedImageError:
        raise ValueError(f"{path}: not an image file Pillow can read (PNG, JPEG, ...)") from None
    array = array[None] if channels == 1 else array.transpose(2, 0, 1)
    return 1.0 - array if invert else array


def command_predict(args) -> int:
    if args.top_k < 1:
        raise ValueError(f"--top-k must be an integer >= 1, got {args.top_k}")
    if not os.path.exists(args.image):
        raise FileNotFoundError(f"no image file {args.image}")
    config, trainer, _, description = _restore_run(args.run, with_data=False)
    image = load_image(args.image, description["input_size"], args.invert)
    mean = np.asarray(description["mean"], dtype=np.float32).reshape(-1, 1, 1)
    std = np.asarray(description["std"], dtype=np.float32).reshape(-1, 1, 1)
    batch = tl.tensor((image - mean) / std).unsqueeze(0).to(trainer.device)
    with tl.no_grad():
        probabilities = tl.softmax(trainer.model(batch), dim=1).cpu().numpy()[0]
    classes = description["classes"]
    print(f"{args.image}: top {min(args.top_k, len(classes))} of {config['model']} ({config['dataset']})")
    for index in np.argsort(-probabilities)[: args.top_k]:
        print(f"  {classes[index]:>12}  {probabilities[index]:.4f}")
    return 0


# ---- summary / viz / info -----------------------------------------------------------------------------------
def command_summary(args) -> int:
    from nn.models import INPUT_SIZES, get_model
    from nn.summary import summary

    if args.num_classes is not None and args.num_classes < 1:
        raise ValueError(f"--num-classes must be an integer >= 1, got {args.num_classes}")
    if args.batch_size < 1:
        raise ValueError(f"--batch-size must be an integer >= 1, got {args.batch_size}")
    options = {"num_classes": args.num_classes} if args.num_classes is not None else {}
    model = get_model(args.model, **options)
    summary(model, input_size=args.input or INPUT_SIZES[args.model], batch_size=args.batch_size, verbose=True)
    return 0


def command_viz(args) -> int:
    from nn import viz
    from nn.layers import Conv2d
    from nn.train import METRICS

    out = args.out or args.run
    if os.path.exists(out) and not os.path.isdir(out):
        raise ValueError(f"--out {out} is a file, not a directory for the pictures")
    _, trainer, data, description = _restore_run(args.run)
    if not 0 <= args.index < len(data.test):
        raise ValueError(f"--index must be the number of a test image, 0..{len(data.test) - 1}, got {args.index}")
    os.makedirs(out, exist_ok=True)
    written = []
    metrics_path = os.path.join(args.run, METRICS)
    if os.path.exists(metrics_path):
        with open(metrics_path, encoding="utf-8") as handle:
            history = [json.loads(line) for line in handle if line.strip()]
        if history:
            written.append(os.path.join(out, "curves.png"))
            viz.plot_curves(history, written[-1])
    first = next((m for m in trainer.model.modules() if isinstance(m, Conv2d)), None)
    if first is not None:
        written.append(os.path.join(out, "filters.png"))
        viz.plot_filters(first.weight.detach().cpu().numpy(), written[-1])
    image, label = data.test[args.index]
    image = image if isinstance(image, tl.Tensor) else tl.tensor(image)
    written.append(os.path.join(out, "input.png"))
    viz.plot_image(image.numpy(), written[-1], title=f"test image {args.index} (label {int(label)})")
    written += viz.plot_activation_maps(trainer.model, image.to(trainer.device), out)
    result = trainer.evaluate(data.loader("test"), description["num_classes"])
    written.append(os.path.join(out, "confusion.png"))
    viz.plot_confusion(result["confusion_matrix"], written[-1], description["classes"])
    for path in written:
        print(path)
    return 0


def _version(package: str) -> str:
    from importlib import metadata

    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def command_info(args) -> int:
    import kernels
    from kernels import registry

    print(f"tensorlib {tl.__version__} on Python {platform.python_version()} ({platform.machine()}, "
          f"{os.cpu_count()} CPUs)")
    for package in ("numpy", "numba", "numba-cuda", "cupy-cuda13x", "cupy-cuda12x", "safetensors"):
        print(f"  {package:<14} {_version(package)}")
    try:
        from threadpoolctl import threadpool_info

        for lib in threadpool_info():
            if lib.get("user_api") == "blas":
                print(f"  BLAS           {lib['internal_api']} {lib['version']} ({lib.get('architecture')}, "
                      f"{lib['num_threads']} threads)")
    except ImportError:
        pass
    reason = tl.cuda_unavailable_reason()
    print("devices:")
    print("  cpu            usable")
    from kernels.device_arrays import simulating

    if simulating():
        print("  cuda           simulated (NUMBA_ENABLE_CUDASIM=1: Numba CUDA kernels run in the simulator)")
    else:
        print(f"  cuda           {'usable' if reason is None else 'not usable: ' + reason}")
    if reason is None and not simulating():
        import cupy

        print(f"  CUDA driver    {cupy.cuda.runtime.driverGetVersion()}, device {cuda_device_name(0)}")
    print("kernels (variant used per device, and why):")
    for op in kernels.ops():
        cells = []
        for device in registry.DEVICES:
            try:
                chosen, why = registry.selected(op, device)
                note = why if chosen.available else "backend unavailable"
                cells.append(f"{device}: {chosen.key} ({note})")
            except NotImplementedError:
                cells.append(f"{device}: none registered")
        print(f"  {op:<30} " + "; ".join(cells))
    return 0


def command_bench(args) -> int:
    from bench.runner import run  # imported only here: nothing else in the library depends on bench

    return run(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tensorlib", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    train = commands.add_parser(
        "train", help="train a model; writes checkpoint, metrics.jsonl, test.json",
        description="Train a model. With --resume RUN the run continues with its own settings; only --epochs "
                    "(the schedule is re-planned for the new total), --device, --cuda-graph and --data-dir may change.")
    default = TRAIN_DEFAULTS
    train.add_argument("--model", default=None, help=f"model name (default {default['model']})")
    train.add_argument("--model-arg", action="append", default=[], metavar="KEY=VALUE",
                       help="keyword argument of the model builder, e.g. activation=relu (repeatable); num_classes "
                            "and in_channels default to the dataset's")
    train.add_argument("--dataset", default=None, help=f"dataset name (default {default['dataset']})")
    train.add_argument("--data-dir", default=None, help="directory with the dataset's files (mnist, cifar10, ...)")
    train.add_argument("--epochs", type=int, default=None, help=f"number of epochs (default {default['epochs']})")
    train.add_argument("--batch-size", type=int, default=None, help=f"default {default['batch_size']}")
    train.add_argument("--optimizer", default=None, choices=list(OPTIMIZERS),
                       help=f"default {default['optimizer']}")
    train.add_argument("--lr", type=float, default=None, help=f"learning rate (default {default['lr']})")
    train.add_argument("--momentum", type=float, default=None,
                       help=f"sgd and rmsprop only (default {default['momentum']})")
    train.add_argument("--weight-decay", type=float, default=None, help=f"default {default['weight_decay']}")
    train.add_argument("--scheduler", default=None, choices=list(SCHEDULERS),
                       help=f"default {default['scheduler']}")
    train.add_argument("--device", default=None, choices=list(DEVICES), help=f"default {default['device']}")
    train.add_argument("--seed", type=int, default=None, help=f"default {default['seed']}")
    train.add_argument("--val-fraction", type=float, default=None,
                       help=f"share of the training images held out for validation, in [0, 1) (default "
                            f"{default['val_fraction']})")
    train.add_argument("--augment", default=None, choices=list(AUGMENTS),
                       help="random crops after zero padding (and horizontal flips) of training images")
    train.add_argument("--out", default=None,
                       help="run directory, new or empty (default runs/MODEL-DATASET-TIME)")
    train.add_argument("--resume", default=None, metavar="RUN", help="continue the run in this directory")
    train.add_argument("--no-progress", action="store_true", help="no progress bars (one line per epoch)")
    train.add_argument("--cuda-graph", action="store_true", default=None,
                       help="capture each training step as one CUDA graph and replay it (device cuda)")
    train.add_argument("--distributed", action="store_true",
                       help="one rank of a data-parallel job: mpiexec -n P tensorlib train --distributed ...")
    train.set_defaults(handler=command_train)

    evaluate = commands.add_parser("evaluate", help="accuracy, per-class accuracy and confusion matrix of a run")
    evaluate.add_argument("run")
    evaluate.add_argument("--split", default="test", choices=["test", "val", "train"])
    evaluate.set_defaults(handler=command_evaluate)

    predict = commands.add_parser("predict", help="top-k classes of an image file (PNG/JPEG)")
    predict.add_argument("run")
    predict.add_argument("image")
    predict.add_argument("--top-k", type=int, default=3)
    predict.add_argument("--invert", action="store_true", help="invert the image (dark digits on white paper)")
    predict.set_defaults(handler=command_predict)

    summary = commands.add_parser("summary", help="layer table: output shapes, parameters, multiply-adds")
    summary.add_argument("--model", required=True)
    summary.add_argument("--input", type=_shape, default=None, help="input size CxHxW, e.g. 3x224x224")
    summary.add_argument("--num-classes", type=int, default=None)
    summary.add_argument("--batch-size", type=int, default=1)
    summary.set_defaults(handler=command_summary)

    viz = commands.add_parser("viz", help="PNG pictures of a run: curves, filters, activation maps, confusion")
    viz.add_argument("run")
    viz.add_argument("--index", type=int, default=0, help="test image whose activation maps are drawn (0..N-1)")
    viz.add_argument("--out", default=None, help="directory for the PNGs (default: the run directory)")
    viz.set_defaults(handler=command_viz)

    bench = commands.add_parser("bench", help="benchmark every kernel variant (and training steps) on a device")
    bench.add_argument("--op", default="all", choices=["matmul", "conv2d", "pool2d", "batchnorm", "activation",
                                                      "softmax_xent", "train", "all"])
    bench.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    bench.add_argument("--shapes", default="cnn", choices=["tiny", "small", "cnn", "large"])
    bench.add_argument("--json", default=None, metavar="FILE", help="write the results as JSON")
    bench.add_argument("--plot", default=None, metavar="DIR", help="write roofline and crossover PNGs here")
    bench.add_argument("--markdown", default=None, metavar="FILE", help="write the table as Markdown")
    bench.add_argument("--compare", default=None, metavar="FILE", help="show the change against an earlier JSON")
    bench.add_argument("--repeats", type=int, default=None, help="timed repeats per row")
    bench.set_defaults(handler=command_bench)

    info = commands.add_parser("info", help="devices, versions, and the kernel variant each op uses")
    info.set_defaults(handler=command_info)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except BrokenPipeError:  # the reader went away (`tensorlib evaluate RUN | head`): stop quietly
        _silence_stdout()
        return 141  # 128 + SIGPIPE, what a shell reports for a process its pipe ended
    except (ValueError, RuntimeError) as error:
        print(f"tensorlib {args.command}: error: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        detail = f"{error.strerror}: {error.filename}" if error.strerror and error.filename else str(error)
        print(f"tensorlib {args.command}: error: {detail}", file=sys.stderr)
        return 2


def _silence_stdout():
    """Point stdout at /dev/null, so that flushing it at exit does not raise BrokenPipeError again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # stdout without a file descriptor (captured): nothing to flush
        pass


if __name__ == "__main__":
    sys.exit(main())
