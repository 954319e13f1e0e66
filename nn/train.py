"""The training loop behind ``tensorlib train``: epochs of SGD-style steps, validation, checkpoints that
resume exactly (mid-epoch included), a NaN guard and a clean stop on Ctrl-C."""

from __future__ import annotations

import json
import math
import os
import signal
import threading
import time
from contextlib import contextmanager

import numpy as np

import tensorlib as tl
from nn.graphed import GraphedStep
from nn.losses import CrossEntropyLoss
from nn.serialization import load, load_into, save

CHECKPOINT = "checkpoint.safetensors"
METRICS = "metrics.jsonl"


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


def _progress(iterable, total, description, enabled):
    from tqdm import tqdm

    # disable=None turns the bar off when the output is not a terminal
    return tqdm(iterable, total=total, desc=description, leave=False, disable=None if enabled else True,
                dynamic_ncols=True)


def confusion_matrix(predictions: np.ndarray, labels: np.ndarray, num_classes: int) -> np.ndarray:
    """counts[true class, predicted class]."""
    counts = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(counts, (labels, predictions), 1)
    return counts


class Trainer:
    """Trains ``model`` with ``optimizer`` on batches of (inputs, class labels).

    ``scheduler_interval`` is "epoch" (StepLR, cosine) or "batch" (OneCycleLR, warm-up). With ``out_dir``,
    every epoch writes ``checkpoint.safetensors`` (atomically) and appends a line to ``metrics.jsonl``.
    ``cuda_graph`` (device "cuda") replays each step as one captured CUDA graph (``nn.GraphedStep``); its
    NaN guard then looks at the loss after the update, which the run stops on all the same.
    """

    def __init__(self, model, optimizer, loss_fn=None, scheduler=None, scheduler_interval="epoch", device="cpu",
                 out_dir=None, log=print, progress=True, config=None, cuda_graph=False):
        if scheduler_interval not in ("epoch", "batch"):
            raise ValueError(f"scheduler_interval must be 'epoch' or 'batch', got {scheduler_interval!r}")
        if cuda_graph and device != "cuda":
            raise ValueError(f"cuda_graph=True needs device='cuda', got device={device!r}")
        self.model, self.optimizer, self.scheduler = model, optimizer, scheduler
        self.loss_fn = loss_fn or CrossEntropyLoss()
        self.graphed = GraphedStep(model, optimizer, self.loss_fn) if cuda_graph else None
        self.scheduler_interval, self.device = scheduler_interval, device
        self.out_dir, self.log, self.progress, self.config = out_dir, log, progress, config or {}
        self.epoch = 0  # completed epochs
        self.batch = 0  # completed batches of the current epoch
        self.epoch_rng_state = None
        self.sums = {"loss": 0.0, "correct": 0, "seen": 0, "seconds": 0.0}
        self.history = []
        self._stop = False
        self._callbacks = []

    # ---- control ------------------------------------------------------------------------------------
    def request_stop(self):
        """Stop after the batch in progress and save a checkpoint (what Ctrl-C does)."""
        self._stop = True

    def add_callback(self, callback):
        """``callback(trainer)`` runs after every training batch."""
        self._callbacks.append(callback)

    @contextmanager
    def _ctrl_c_stops_cleanly(self):
        """The first Ctrl-C finishes the current step and checkpoints; a second one interrupts at once."""
        if threading.current_thread() is not threading.main_thread():  # signals reach the main thread only
            yield
            return

        def handler(signum, frame):
            if self._stop:
                raise KeyboardInterrupt
            self.log("interrupt: finishing this step, then saving a checkpoint (press Ctrl-C again to abort)")
            self._stop = True

        previous = signal.signal(signal.SIGINT, handler)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)

    # ---- one step, one epoch ---------------------------------------------------------------------------
    def _step(self, inputs, labels):
        # Overflow on the way to a NaN loss is reported once, by the guard below, not as NumPy warnings.
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            return self._guarded_step(inputs, labels)

    def _guarded_step(self, inputs, labels):
        if self.graphed is not None:
            loss, correct = self.graphed(inputs, labels)
            value = self._finite(float(loss.item()))
            if self.scheduler is not None and self.scheduler_interval == "batch":
                self.scheduler.step()
            return value, int(correct.item())
        self.model.train()
        logits = self.model(inputs)
        loss = self.loss_fn(logits, labels)
        value = self._finite(float(loss.item()))
        self.optimizer.zero_grad()
        loss.backward()
        if hasattr(self.model, "sync_gradients"):  # DistributedDataParallel: average over the ranks
            self.model.sync_gradients()
        self.optimizer.step()
        if self.scheduler is not None and self.scheduler_interval == "batch":
            self.scheduler.step()
        correct = int((logits.data.argmax(1) == labels.data).sum())
        return value, correct

    def _finite(self, value: float) -> float:
        if not math.isfinite(value):
            raise TrainingDiverged(
                f"loss became {value} at epoch {self.epoch + 1}, batch {self.batch + 1}; stopping "
                + (f"(the last good checkpoint is {os.path.join(self.out_dir, CHECKPOINT)})" if self.out_dir else "")
                + " - try a smaller learning rate")
        return value

    def _batches(self, loader):
        """The loader's batches for this epoch, resuming after ``self.batch`` of them if restored mid-epoch."""
        if hasattr(loader.dataset, "set_epoch"):  # a DistributedShard: this epoch's shard, shuffled alike on all ranks
            loader.dataset.set_epoch(self.epoch)
        if self.batch == 0 or self.epoch_rng_state is None:
            self.epoch_rng_state = tl.get_rng_state()
            return iter(loader)
        current = tl.get_rng_state()
        tl.set_rng_state(self.epoch_rng_state)  # the same shuffle as the interrupted epoch
        iterator = iter(loader)
        for _ in range(self.batch):
            next(iterator)
        tl.set_rng_state(current)
        return iterator

    def train_epoch(self, loader):
        """Train until the end of the epoch or a stop request; returns the epoch's training metrics."""
        batches = self._batches(loader)
        bar = _progress(batches, len(loader) - self.batch, f"epoch {self.epoch + 1}", self.progress)
        try:
            for inputs, labels in bar:
                started = time.perf_counter()
                inputs, labels = inputs.to(self.device), labels.to(self.device)
                loss, correct = self._step(inputs, labels)
                self.sums["seconds"] += time.perf_counter() - started
                self.sums["loss"] += loss * len(labels)
                self.sums["correct"] += correct
                self.sums["seen"] += len(labels)
                self.batch += 1
                bar.set_postfix(loss=f"{loss:.4f}", refresh=False)
                for callback in self._callbacks:
                    callback(self)
                if self._stop_agreed():
                    return None
        finally:
            bar.close()
        sums = _summed_over_ranks(self.sums)
        seen = max(sums["seen"], 1)
        return {"train_loss": sums["loss"] / seen, "train_accuracy": sums["correct"] / seen,
                "images_per_second": sums["seen"] / max(sums["seconds"], 1e-9)}

    def _stop_agreed(self) -> bool:
        """Whether to stop now; in a distributed job, when any rank asked, so that all stop at the same batch."""
        from nn import parallel

        if parallel.get_world_size() == 1:
            return self._stop
        flag = tl.tensor([int(self._stop)], dtype=tl.int64, device=parallel.collective_device())
        self._stop = bool(parallel.all_reduce(flag).item())
        return self._stop

    def evaluate(self, loader, num_classes=None):
        """Loss, accuracy, per-class accuracy and confusion matrix over ``loader`` (eval mode, no graph)."""
        was_training = self.model.training
        self.model.eval()
        total_loss, predictions, targets = 0.0, [], []
        try:
            with tl.no_grad():
                for inputs, labels in loader:
                    logits = self.model(inputs.to(self.device))
                    total_loss += float(self.loss_fn(logits, labels.to(self.device)).item()) * len(labels)
                    predictions.append(np.asarray(logits.argmax(1).cpu().numpy()))
                    targets.append(labels.numpy())
        finally:
            self.model.train(was_training)
        predictions, targets = np.concatenate(predictions), np.concatenate(targets)
        classes = num_classes or int(max(predictions.max(), targets.max()) + 1)
        matrix = confusion_matrix(predictions, targets, classes)
        with np.errstate(invalid="ignore", divide="ignore"):
            per_class = np.diag(matrix) / matrix.sum(1)
        return {"loss": total_loss / max(len(targets), 1), "accuracy": float((predictions == targets).mean()),
                "per_class_accuracy": per_class.tolist(), "confusion_matrix": matrix}

    # ---- the loop ---------------------------------------------------------------------------------------
    def fit(self, train_loader, val_loader=None, epochs=1, num_classes=None):
        """Train up to ``epochs`` completed epochs (continuing from a restored state). Returns the history;
        ``self.stopped`` tells whether a stop request cut it short."""
        self.stopped = False
        with self._ctrl_c_stops_cleanly():
            while self.epoch < epochs:
                metrics = self.train_epoch(train_loader)
                if metrics is None:
                    self.stopped = True
                    self.save_checkpoint()
                    self.log(f"stopped during epoch {self.epoch + 1} after {self.batch} batches; "
                             + (f"resume with --resume {self.out_dir}" if self.out_dir else "checkpoint state kept"))
                    return self.history
                self.epoch += 1
                metrics = {"epoch": self.epoch, **metrics, "lr": self.optimizer.param_groups[0]["lr"]}
                if val_loader is not None:
                    result = self.evaluate(val_loader, num_classes)
                    metrics.update(val_loss=result["loss"], val_accuracy=result["accuracy"])
                if self.scheduler is not None and self.scheduler_interval == "epoch":
                    self.scheduler.step()
                self.batch, self.epoch_rng_state = 0, None
                self.sums = {"loss": 0.0, "correct": 0, "seen": 0, "seconds": 0.0}
                self.history.append(metrics)
                self._write_metrics(metrics)
                self.save_checkpoint()
                self.log(_epoch_line(metrics, epochs))
        return self.history

    # ---- checkpoints ------------------------------------------------------------------------------------
    def state(self) -> dict:
        state = {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "progress": {"epoch": self.epoch, "batch": self.batch, "sums": dict(self.sums)},
            "rng": json.dumps(tl.get_rng_state()),
            "epoch_rng": json.dumps(self.epoch_rng_state) if self.epoch_rng_state is not None else None,
            "config": json.dumps(self.config),
        }
        if self.scheduler is not None:
            state["scheduler"] = self.scheduler.state_dict()
        return state

    def save_checkpoint(self):
        if self.out_dir is not None:
            save(self.state(), os.path.join(self.out_dir, CHECKPOINT))

    def restore(self, path):
        """Continue exactly where the checkpoint at ``path`` (a file or a run directory) stopped."""
        if os.path.isdir(path):
            path = os.path.join(path, CHECKPOINT)
        state = load(path)
        load_into(self.model, state["model"], path)
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler is not None and "scheduler" in state:
            self.scheduler.load_state_dict(state["scheduler"])
        progress = state["progress"]
        self.epoch, self.batch = int(progress["epoch"]), int(progress["batch"])
        self.sums = dict(progress["sums"])
        tl.set_rng_state(json.loads(state["rng"]))
        self.epoch_rng_state = json.loads(state["epoch_rng"]) if state.get("epoch_rng") else None
        return state

    def _write_metrics(self, metrics):
        if self.out_dir is None:
            return
        os.makedirs(self.out_dir, exist_ok=True)
        with open(os.path.join(self.out_dir, METRICS), "a", encoding="utf-8") as handle:
            handle.write(json.dumps(metrics) + "\n")


def _summed_over_ranks(sums):
    """The epoch's sums over all ranks of a distributed job (seconds: the mean over ranks)."""
    from nn import parallel

    if parallel.get_world_size() == 1:
        return sums
    device = parallel.collective_device()
    totals = parallel.all_reduce(tl.tensor([sums["loss"], sums["correct"], sums["seen"]], dtype=tl.float64,
                                           device=device))
    seconds = parallel.all_reduce(tl.tensor([sums["seconds"]], dtype=tl.float64, device=device), "mean")
    return {**dict(zip(("loss", "correct", "seen"), totals.numpy().tolist())), "seconds": float(seconds.item())}


def _epoch_line(m, epochs):
    line = (f"epoch {m['epoch']}/{epochs}  train loss {m['train_loss']:.4f}  acc {m['train_accuracy']:.4f}  "
            f"{m['images_per_second']:.0f} img/s  lr {m['lr']:.4g}")
    if "val_loss" in m:
        line += f"  val loss {m['val_loss']:.4f}  acc {m['val_accuracy']:.4f}"
    return line


def fit(model, train_loader, val_loader=None, epochs=1, optimizer=None, lr=0.01, **trainer_options):
    """Train ``model`` (SGD with momentum 0.9 unless an optimizer is given); returns the Trainer."""
    if optimizer is None:
        from nn.optim import SGD

        optimizer = SGD(model.parameters(), lr=lr, momentum=0.9)
    trainer = Trainer(model, optimizer, **trainer_options)
    trainer.fit(train_loader, val_loader, epochs)
    return trainer
