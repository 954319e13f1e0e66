"""The ``tensorlib`` command: train, evaluate, predict, summary, viz, info (and bench)."""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

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
        return tuple(int(part) for part in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a shape like 3x32x32, got {text!r}") from None


# ---- train ------------------------------------------------------------------------------------------------
def _load_data(config, distributed=False):
    from nn.data import DataLoader, DistributedSampler, DistributedShard, get_dataset, random_split
    from nn.data import transforms as T

    info = get_dataset(config["dataset"], root=config.get("data_dir"), split="train")
    normalize = T.Compose([T.ToTensor(), T.Normalize(info.mean, info.std)])
    augment = config.get("augment", "none")
    steps = []
    if augment in ("crop", "crop-flip"):
        steps.append(T.RandomCrop(info.input_size[1:], padding=max(info.input_size[1] // 14, 1)))
    if augment == "crop-flip":
        steps.append(T.RandomHorizontalFlip())
    train_transform = T.Compose(steps + [T.ToTensor(), T.Normalize(info.mean, info.std)])
    train_full = get_dataset(config["dataset"], root=config.get("data_dir"), split="train", transform=train_transform)
    test = get_dataset(config["dataset"], root=config.get("data_dir"), split="test", transform=normalize)
    held_out = int(round(len(train_full) * config["val_fraction"]))
    splitter = np.random.default_rng(config["seed"])  # the split depends on the seed only, never on training
    if held_out:
        train, val = random_split(train_full, [len(train_full) - held_out, held_out], generator=splitter)
    else:
        train, val = train_full, None
    if distributed:  # this rank's shard of each epoch; the sampler shuffles, the same way on every rank
        train = DistributedShard(train, DistributedSampler(train, seed=config["seed"]))
    loaders = {
        "train": DataLoader(train, batch_size=config["batch_size"], shuffle=not distributed, drop_last=False),
        "val": DataLoader(val, batch_size=256) if val is not None else None,
        "test": DataLoader(test, batch_size=256),
    }
    return train_full, loaders


def _build_model(config, info):
    from nn.models import get_model

    options = {"num_classes": info.num_classes}
    options.update(config.get("model_options") or {})
    return get_model(config["model"], **options)


def _build_optimizer(config, model):
    from nn import optim

    params, name = model.parameters(), config["optimizer"]
    if name == "sgd":
        return optim.SGD(params, lr=config["lr"], momentum=config["momentum"], weight_decay=config["weight_decay"],
                         nesterov=config.get("nesterov", False))
    if name == "adam":
        return optim.Adam(params, lr=config["lr"], weight_decay=config["weight_decay"])
    if name == "adamw":
        return optim.AdamW(params, lr=config["lr"], weight_decay=config["weight_decay"])
    if name == "rmsprop":
        return optim.RMSprop(params, lr=config["lr"], momentum=config["momentum"], weight_decay=config["weight_decay"])
    raise ValueError(f"--optimizer must be sgd, adam, adamw or rmsprop, got {name!r}")


def _build_scheduler(config, optimizer, steps_per_epoch):
    """(scheduler, interval): cosine and step act per epoch, onecycle per batch."""
    from nn.optim import lr_scheduler

    name, epochs = config["scheduler"], config["epochs"]
    if name == "none":
        return None, "epoch"
    if name == "cosine":
        return lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs), "epoch"
    if name == "step":
        return lr_scheduler.StepLR(optimizer, step_size=max(epochs // 3, 1), gamma=0.1), "epoch"
    if name == "onecycle":
        return lr_scheduler.OneCycleLR(optimizer, max_lr=config["lr"], epochs=epochs,
                                       steps_per_epoch=steps_per_epoch), "batch"
    raise ValueError(f"--scheduler must be none, cosine, step or onecycle, got {name!r}")


def _setup(config, log=print, progress=True, distributed=False):
    """Model, data, optimizer and trainer of a run described by ``config``; with ``distributed``, this rank's
    (the model wrapped in DistributedDataParallel, its shard of the data, and files written by rank 0 only)."""
    from nn import parallel
    from nn.train import Trainer

    tl.manual_seed(config["seed"])
    device = _resolve_device(config["device"], log)
    info, loaders = _load_data(config, distributed)
    model = _build_model(config, info).to(device)
    if distributed:
        model = parallel.DistributedDataParallel(model)
    optimizer = _build_optimizer(config, model)
    scheduler, interval = _build_scheduler(config, optimizer, len(loaders["train"]))
    cuda_graph = bool(config.get("cuda_graph")) and device == "cuda"
    if config.get("cuda_graph") and device != "cuda":
        if config["device"] == "cpu":
            raise ValueError("--cuda-graph needs --device cuda (or auto on a machine with a GPU), got --device cpu")
        log("cuda graphs: off (training on the cpu)")
    trainer = Trainer(model, optimizer, scheduler=scheduler, scheduler_interval=interval, device=device,
                      out_dir=config["out"] if parallel.get_rank() == 0 else None, log=log, progress=progress,
                      config=config, cuda_graph=cuda_graph)
    return trainer, info, loaders


def command_train(args) -> int:
    """Train; with ``--distributed``, as one rank of an ``mpiexec`` (or torchrun-style) job: every rank trains on
    its shard with ``--batch-size`` images per step (global batch: world size x batch size), rank 0 alone prints
    and writes files, and a rank that fails ends the whole job."""
    from nn import parallel

    if args.distributed:
        parallel.init_process_group(device=args.device)
    try:
        with parallel.abort_on_error():  # no-op in one process; else the other ranks would wait forever
            return _train(args)
    finally:
        if args.distributed:
            parallel.destroy_process_group()


def _train(args) -> int:
    from nn import parallel

    rank = parallel.get_rank()
    say = print if rank == 0 else (lambda *_, **__: None)
    if args.resume:
        with open(os.path.join(args.resume, CONFIG), encoding="utf-8") as handle:
            config = json.load(handle)
        config["out"] = args.resume
        if args.epochs is not None:
            config["epochs"] = args.epochs
    else:
        config = {key: getattr(args, key) for key in (
            "model", "dataset", "data_dir", "epochs", "batch_size", "optimizer", "lr", "momentum", "weight_decay",
            "scheduler", "device", "seed", "out", "val_fraction", "augment", "cuda_graph")}
        config["epochs"] = 10 if args.epochs is None else args.epochs
        config["model_options"] = dict(_model_arg(item) for item in args.model_arg)
        config["out"] = args.out or os.path.join("runs", f"{args.model}-{args.dataset}-{time.strftime('%Y%m%d-%H%M%S')}")
        config = parallel.broadcast_object(config)  # rank 0's run directory (its clock names it) everywhere
        if rank == 0:
            os.makedirs(config["out"], exist_ok=True)
            with open(os.path.join(config["out"], CONFIG), "w", encoding="utf-8") as handle:
                json.dump(config, handle, indent=2)
    from nn.train import TrainingDiverged

    trainer, info, loaders = _setup(config, log=say, progress=not args.no_progress and rank == 0,
                                    distributed=args.distributed)
    if args.resume:
        trainer.restore(args.resume)
        say(f"resuming {args.resume} at epoch {trainer.epoch + 1}, batch {trainer.batch}")
    world = parallel.get_world_size()
    say(f"training {config['model']} on {config['dataset']} ({len(loaders['train'].dataset)} train images"
        + (f" per rank, {world} ranks, global batch {world * config['batch_size']}" if args.distributed else "")
        + f") for {config['epochs']} epochs; run directory {config['out']}")
    started = time.perf_counter()
    try:
        trainer.fit(loaders["train"], loaders["val"] if rank == 0 else None, config["epochs"],
                    num_classes=info.num_classes)
    except TrainingDiverged as error:
        if world > 1:
            raise  # ends the job on every rank
        print(f"error: {error}", file=sys.stderr)
        return 1
    if trainer.stopped:
        return 130
    if rank != 0:
        return 0
    elapsed = time.perf_counter() - started
    result = trainer.evaluate(loaders["test"], info.num_classes)
    summary = {"test_accuracy": result["accuracy"], "test_loss": result["loss"], "train_seconds": elapsed}
    with open(os.path.join(config["out"], "test.json"), "w", encoding="utf-8") as handle:
        json.dump(summary, handle, indent=2)
    print(f"test accuracy {result['accuracy']:.4f} (loss {result['loss']:.4f}) on {len(loaders['test'].dataset)} "
          f"held-out images; {elapsed:.1f} s")
    return 0


# ---- evaluate / predict -------------------------------------------------------------------------------------
def _restore_run(run, log=print):
    with open(os.path.join(run, CONFIG), encoding="utf-8") as handle:
        config = json.load(handle)
    config["out"] = None
    trainer, info, loaders = _setup(config, log=log, progress=False)
    from nn.serialization import load, load_into
    from nn.train import CHECKPOINT

    path = os.path.join(run, CHECKPOINT)
    load_into(trainer.model, load(path)["model"], path)
    trainer.model.eval()
    return config, trainer, info, loaders


def command_evaluate(args) -> int:
    config, trainer, info, loaders = _restore_run(args.run, log=lambda *_: None)
    result = trainer.evaluate(loaders[args.split] if args.split in loaders else loaders["test"], info.num_classes)
    classes = list(getattr(info, "classes", None) or range(info.num_classes))
    print(f"{config['model']} on {config['dataset']} ({args.split}): accuracy {result['accuracy']:.4f}, "
          f"loss {result['loss']:.4f}")
    print("per-class accuracy:")
    for name, accuracy in zip(classes, result["per_class_accuracy"]):
        print(f"  {str(name):>12}  {accuracy:.4f}")
    print("confusion matrix (rows: true class, columns: predicted):")
    matrix = result["confusion_matrix"]
    width = max(len(str(matrix.max())), 3)
    print("  " + " ".join(f"{str(c)[:width]:>{width}}" for c in classes))
    for name, row in zip(classes, matrix):
        print("  " + " ".join(f"{v:>{width}}" for v in row) + f"   {name}")
    return 0


def load_image(path, input_size, invert=False) -> np.ndarray:
    """An image file as a float32 (C, H, W) array in [0, 1], converted to the model's channels and size."""
    from PIL import Image

    channels, height, width = input_size
    with Image.open(path) as image:
        image = image.convert("L" if channels == 1 else "RGB").resize((width, height), Image.BILINEAR)
        array = np.asarray(image, dtype=np.float32) / 255.0
    array = array[None] if channels == 1 else array.transpose(2, 0, 1)
    return 1.0 - array if invert else array


def command_predict(args) -> int:
    config, trainer, info, _ = _restore_run(args.run, log=lambda *_: None)
    image = load_image(args.image, info.input_size, args.invert)
    mean = np.asarray(info.mean, dtype=np.float32).reshape(-1, 1, 1)
    std = np.asarray(info.std, dtype=np.float32).reshape(-1, 1, 1)
    batch = tl.tensor((image - mean) / std).unsqueeze(0).to(trainer.device)
    with tl.no_grad():
        probabilities = tl.softmax(trainer.model(batch), dim=1).cpu().numpy()[0]
    classes = list(getattr(info, "classes", None) or range(info.num_classes))
    print(f"{args.image}: top {min(args.top_k, len(classes))} of {config['model']} ({config['dataset']})")
    for index in np.argsort(-probabilities)[: args.top_k]:
        print(f"  {str(classes[index]):>12}  {probabilities[index]:.4f}")
    return 0


# ---- summary / viz / info -----------------------------------------------------------------------------------
def command_summary(args) -> int:
    from nn.models import INPUT_SIZES, get_model
    from nn.summary import summary

    options = {"num_classes": args.num_classes} if args.num_classes else {}
    model = get_model(args.model, **options)
    summary(model, input_size=args.input or INPUT_SIZES[args.model], batch_size=args.batch_size, verbose=True)
    return 0


def command_viz(args) -> int:
    from nn import viz
    from nn.train import METRICS

    config, trainer, info, loaders = _restore_run(args.run, log=lambda *_: None)
    out = args.out or args.run
    os.makedirs(out, exist_ok=True)
    written = []
    metrics_path = os.path.join(args.run, METRICS)
    if os.path.exists(metrics_path):
        with open(metrics_path, encoding="utf-8") as handle:
            history = [json.loads(line) for line in handle if line.strip()]
        if history:
            written.append(os.path.join(out, "curves.png"))
            viz.plot_curves(history, written[-1])
    from nn.layers import Conv2d

    first = next((m for m in trainer.model.modules() if isinstance(m, Conv2d)), None)
    if first is not None:
        written.append(os.path.join(out, "filters.png"))
        viz.plot_filters(first.weight.detach().cpu().numpy(), written[-1])
    test_set = loaders["test"].dataset
    image, label = test_set[args.index]
    image = image if isinstance(image, tl.Tensor) else tl.tensor(image)
    written.append(os.path.join(out, "input.png"))
    viz.plot_image(image.numpy(), written[-1], title=f"test image {args.index} (label {int(label)})")
    written += viz.plot_activation_maps(trainer.model, image.to(trainer.device), out)
    result = trainer.evaluate(loaders["test"], info.num_classes)
    written.append(os.path.join(out, "confusion.png"))
    viz.plot_confusion(result["confusion_matrix"], written[-1], [str(c) for c in (getattr(info, "classes", None) or [])] or None)
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

    train = commands.add_parser("train", help="train a model; writes checkpoint, metrics.jsonl, test.json")
    train.add_argument("--model", default="lenet5")
    train.add_argument("--model-arg", action="append", default=[], metavar="KEY=VALUE",
                       help="keyword argument of the model builder, e.g. activation=relu (repeatable)")
    train.add_argument("--dataset", default="mnist-embedded")
    train.add_argument("--data-dir", default=None, help="directory with the dataset's files (mnist, cifar10, ...)")
    train.add_argument("--epochs", type=int, default=None, help="number of epochs (default 10)")
    train.add_argument("--batch-size", type=int, default=64)
    train.add_argument("--optimizer", default="sgd", choices=["sgd", "adam", "adamw", "rmsprop"])
    train.add_argument("--lr", type=float, default=0.05)
    train.add_argument("--momentum", type=float, default=0.9)
    train.add_argument("--weight-decay", type=float, default=5e-4)
    train.add_argument("--scheduler", default="cosine", choices=["none", "cosine", "step", "onecycle"])
    train.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--val-fraction", type=float, default=0.1)
    train.add_argument("--augment", default="none", choices=["none", "crop", "crop-flip"],
                       help="random crops after zero padding (and horizontal flips) of training images")
    train.add_argument("--out", default=None, help="run directory (default runs/MODEL-DATASET-TIME)")
    train.add_argument("--resume", default=None, metavar="RUN", help="continue the run in this directory")
    train.add_argument("--no-progress", action="store_true", help="no progress bars (one line per epoch)")
    train.add_argument("--cuda-graph", action="store_true",
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
    viz.add_argument("--index", type=int, default=0, help="test image whose activation maps are drawn")
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
    except (FileNotFoundError, ValueError, KeyError, RuntimeError) as error:
        print(f"tensorlib {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
