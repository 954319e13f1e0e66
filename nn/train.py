"""The training loop behind ``tensorlib train``: epochs of SGD-style steps, validation, checkpoints that
resume exactly (mid-epoch included), a divergence guard and a clean stop on Ctrl-C."""

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
from nn import parallel
from nn.graphed import GraphedStep, training_loss
from nn.losses import CrossEntropyLoss
from nn.optim.lr_scheduler import ReduceLROnPlateau
from nn.serialization import CheckpointError, load, load_into, save

CHECKPOINT = "checkpoint.safetensors"
METRICS = "metrics.jsonl"

# The run has diverged when a batch's loss exceeds this many times max(the run's first batch loss, 1). A
# cross-entropy starts near ln(classes) and falls; a hundredfold rise only happens when the steps blow up
# (LeNet-5 at lr 10 passes it on its 6th batch, its tanh units saturated, its loss never NaN).
DIVERGENCE_FACTOR = 100.0
SUM_KEYS = ("loss", "correct", "seen", "seconds")  # the running sums of an epoch in progress


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite or grew past the divergence bound; the last checkpoint is kept."""


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

    ``scheduler_interval`` is "epoch" (StepLR, cosine) or "batch" (OneCycleLR, warm-up); a ReduceLROnPlateau
    steps per epoch on the validation loss (the training loss without a validation set). With ``out_dir``,
    every epoch writes ``checkpoint.safetensors`` (atomically) and appends a line to ``metrics.jsonl``.
    ``cuda_graph`` (device "cuda") replays each step as one captured CUDA graph (``nn.GraphedStep``); its
    divergence guard then looks at the loss after the update, which the run stops on all the same.

    Divergence: training stops with ``TrainingDiverged`` when a batch's loss is NaN or infinite, or greater
    than ``DIVERGENCE_FACTOR`` (100) times max(the run's first batch loss, 1), or when the validation loss is
    not finite; the checkpoint of the last completed epoch (if any) is left as it was.

    A model whose training-mode output is a named tuple ``(logits, aux1, aux2, ...)`` (GoogLeNet with
    ``aux_logits=True``) is trained on the loss of the logits plus ``AUX_LOSS_WEIGHT`` (0.3) times the loss
    of each auxiliary output, as in the GoogLeNet paper (``nn.graphed.training_loss``, which ``GraphedStep``
    uses too); accuracy counts the logits.

    In a distributed job (``nn.parallel``; every rank calls ``fit`` with its shard) the ranks agree after every
    batch: all stop at the same batch when one is asked to stop, and all raise ``TrainingDiverged``, with the
    message of the first rank whose loss diverged, at the same batch. The divergence bound's first loss is the
    mean of the ranks' first batch losses; validation (given to rank 0 only, say) and ReduceLROnPlateau use rank
    0's validation loss on every rank. A checkpoint records the world size and every rank's sums of the epoch in
    progress, and ``restore`` refuses one written by a job of another size.
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
        self.sums = _zero_sums()
        self.first_loss = None  # the run's first batch loss: the scale of the divergence bound
        self._divergence = None  # what diverged on this rank, told to the others after the batch (distributed)
        self.history = []
        self._stop = False
        self._callbacks = []
        self._seconds_before = 0.0  # wall-clock seconds of training before this process (from the checkpoint)
        self._fit_started = None
        self._saved_at = None  # (epoch, batch) of the checkpoint on disk that this run wrote or restored

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
        # Overflow on the way to a diverged loss is reported once, by the guard below, not as NumPy warnings.
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            return self._guarded_step(inputs, labels)

    def _guarded_step(self, inputs, labels):
        if self.graphed is not None:
            loss, correct = self.graphed(inputs, labels)
            value = self._check_loss(float(loss.item()))
            if self.scheduler is not None and self.scheduler_interval == "batch":
                self.scheduler.step()
            return value, int(correct.item())
        self.model.train()
        logits, loss = training_loss(self.model(inputs), labels, self.loss_fn)
        value = self._check_loss(float(loss.item()))
        self.optimizer.zero_grad()
        loss.backward()
        if hasattr(self.model, "sync_gradients"):  # DistributedDataParallel: average over the ranks
            self.model.sync_gradients()
        self.optimizer.step()
        if self.scheduler is not None and self.scheduler_interval == "batch":
            self.scheduler.step()
        correct = int((logits.array.argmax(1) == labels.array).sum())
        return value, correct

    def _check_loss(self, value: float) -> float:
        """``value``, or TrainingDiverged when it is not finite or past the divergence bound. In a distributed
        job the step goes on (the other ranks wait for its gradients) and every rank raises after the batch."""
        problem = self._divergence_of(value)
        if problem is not None:
            if parallel.get_world_size() == 1:
                raise self._diverged(problem)
            self._divergence = self._divergence or problem
        return value

    def _divergence_of(self, value: float) -> str | None:
        """What is wrong with the batch loss ``value`` (None when nothing: the message is built only then)."""
        if not math.isfinite(value):
            return f"loss became {value} {self._where()}"
        if self.first_loss is None:
            self.first_loss = value
        if value > DIVERGENCE_FACTOR * max(self.first_loss, 1.0):
            world = parallel.get_world_size()
            first = "the first batch's loss" + (f" (mean over the {world} ranks)" if world > 1 else "")
            return (f"loss became {value:.4g} {self._where()}, more than {DIVERGENCE_FACTOR:g} times "
                    f"max({first} {self.first_loss:.4g}, 1)")
        return None

    def _where(self) -> str:
        return f"at epoch {self.epoch + 1}, batch {self.batch + 1}" + (
            f" on rank {parallel.get_rank()}" if parallel.get_world_size() > 1 else "")

    def _diverged(self, what: str) -> TrainingDiverged:
        if self.out_dir is None:
            kept = "no checkpoint is written by this trainer"
        elif self._saved_at is None:
            kept = "no checkpoint had been written yet, so nothing is kept"
        else:
            epoch, batch = self._saved_at
            kept = (f"the checkpoint {os.path.join(self.out_dir, CHECKPOINT)} (epoch {epoch}"
                    + (f", batch {batch}" if batch else "") + ") is kept")
        return TrainingDiverged(f"{what}: training diverged; stopping ({kept}) - try a smaller learning rate")

    def _batches(self, loader):
        """The loader's batches for this epoch, resuming after ``self.batch`` of them if restored mid-epoch."""
        if hasattr(loader.dataset, "set_epoch"):  # a DistributedShard: this epoch's shard, shuffled alike on all ranks
            loader.dataset.set_epoch(self.epoch)
        if self.batch == 0 or self.epoch_rng_state is None:
            self.epoch_rng_state = tl.get_rng_state()
            return iter(loader)
        if self.batch > len(loader):
            raise ValueError(f"the checkpoint stopped after {self.batch} batches of epoch {self.epoch + 1}, but an "
                             f"epoch of this data has {len(loader)}: the data (or the batch size) changed since")
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
                first_batch = self.first_loss is None  # None on every rank alike (the ranks agree on it)
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
                if self._agree_after_batch(first_batch):
                    return None
        finally:
            bar.close()
        sums = _summed_over_ranks(self.sums)
        seen = max(sums["seen"], 1)
        return {"train_loss": sums["loss"] / seen, "train_accuracy": sums["correct"] / seen,
                "images_per_second": sums["seen"] / max(sums["seconds"], 1e-9)}

    def _agree_after_batch(self, first_batch: bool) -> bool:
        """Whether to stop now. In a distributed job, one all-reduce after each batch makes the ranks agree: all
        stop when any asked; all raise TrainingDiverged, with the first diverged rank's message, when any loss
        diverged; after the run's first batch, all take the mean of the ranks' first losses as the bound's scale."""
        world = parallel.get_world_size()
        if world == 1:
            return self._stop
        rank = parallel.get_rank()
        votes = np.zeros(2 + world)  # [stop, first loss, diverged on rank 0, 1, ...]
        votes[0] = self._stop
        votes[1] = self.first_loss if first_batch and self.first_loss is not None else 0.0
        votes[2 + rank] = self._divergence is not None
        totals = parallel.all_reduce(tl.tensor(votes, dtype=tl.float64, device=parallel.collective_device())).numpy()
        diverged = np.flatnonzero(totals[2:])
        if diverged.size:
            source = int(diverged[0])
            what = parallel.broadcast_object(self._divergence if rank == source else None, source)
            self._divergence = None
            raise self._diverged(what)
        if first_batch:
            self.first_loss = float(totals[1]) / world
        self._stop = bool(totals[0])
        return self._stop

    def evaluate(self, loader, num_classes=None):
        """Loss, accuracy, per-class accuracy and confusion matrix over ``loader`` (eval mode, no graph)."""
        was_training = self.model.training
        self.model.eval()
        total_loss, predictions, targets = 0.0, [], []
        try:  # a diverged model overflows here too; the caller judges the loss, NumPy need not warn
            with tl.no_grad(), np.errstate(over="ignore", invalid="ignore", divide="ignore"):
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
        self._fit_started = time.perf_counter()
        try:
            with self._ctrl_c_stops_cleanly():
                return self._fit(train_loader, val_loader, epochs, num_classes)
        finally:
            self._seconds_before, self._fit_started = self.train_seconds, None

    @property
    def train_seconds(self) -> float:
        """Wall-clock seconds spent in ``fit`` over the whole run, resumed parts included."""
        running = time.perf_counter() - self._fit_started if self._fit_started is not None else 0.0
        return self._seconds_before + running

    def _fit(self, train_loader, val_loader, epochs, num_classes):
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
            judged = _rank_0_value(metrics.get("val_loss", metrics["train_loss"]))  # the same on every rank
            if not math.isfinite(judged):  # training losses are finite (checked batch by batch): validation's
                raise self._diverged(f"validation loss became {judged} after epoch {self.epoch}")
            if self.scheduler is not None and self.scheduler_interval == "epoch":
                if isinstance(self.scheduler, ReduceLROnPlateau):  # judged on the validation loss, else training's
                    self.scheduler.step(judged)
                else:
                    self.scheduler.step()
            self.batch, self.epoch_rng_state = 0, None
            self.sums = _zero_sums()
            self.history.append(metrics)
            self._write_metrics(metrics)
            self.save_checkpoint()
            self.log(_epoch_line(metrics, epochs))
        return self.history

    # ---- checkpoints ------------------------------------------------------------------------------------
    def state(self, sums_of_ranks=None) -> dict:
        """Everything ``restore`` needs. ``sums_of_ranks``: every rank's sums of the epoch in progress, in rank
        order (``save_checkpoint`` gathers them; by default ``_sums_of_every_rank()``, a collective in the middle
        of a distributed epoch)."""
        state = {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "progress": {"epoch": self.epoch, "batch": self.batch, "world_size": parallel.get_world_size(),
                         "sums": sums_of_ranks if sums_of_ranks is not None else self._sums_of_every_rank(),
                         "first_loss": self.first_loss, "train_seconds": self.train_seconds},
            "rng": json.dumps(tl.get_rng_state()),
            "epoch_rng": json.dumps(self.epoch_rng_state) if self.epoch_rng_state is not None else None,
            "config": json.dumps(self.config),
        }
        if self.scheduler is not None:
            state["scheduler"] = self.scheduler.state_dict()
        return state

    def save_checkpoint(self):
        """Write the state to ``out_dir`` (atomically), if this trainer has one. In a distributed job every rank
        calls it (``fit`` does): a checkpoint taken in the middle of an epoch holds every rank's sums."""
        sums_of_ranks = self._sums_of_every_rank()
        if self.out_dir is not None:
            save(self.state(sums_of_ranks), os.path.join(self.out_dir, CHECKPOINT))
            self._saved_at = (self.epoch, self.batch)

    def _sums_of_every_rank(self) -> list:
        """[rank 0's sums, rank 1's, ...] of the epoch in progress; gathered by an all-reduce in the middle of a
        distributed epoch, where each rank holds its own (at an epoch's start they are zeros everywhere)."""
        world = parallel.get_world_size()
        if world == 1 or self.batch == 0:
            return [dict(self.sums) for _ in range(world)]
        rows = np.zeros((world, len(SUM_KEYS)))
        rows[parallel.get_rank()] = [self.sums[key] for key in SUM_KEYS]
        rows = parallel.all_reduce(tl.tensor(rows, dtype=tl.float64, device=parallel.collective_device())).numpy()
        return [{"loss": float(loss), "correct": int(correct), "seen": int(seen), "seconds": float(seconds)}
                for loss, correct, seen, seconds in rows]

    def restore(self, path, scheduler=True):
        """Continue exactly where the checkpoint at ``path`` (a file or a run directory) stopped. With
        ``scheduler=False`` the scheduler's saved state is not loaded (the caller sets the schedule up)."""
        if os.path.isdir(path):
            path = os.path.join(path, CHECKPOINT)
        state = read_checkpoint(path, ("model", "optimizer", "progress", "rng"))
        _check_world_size(state["progress"], path)
        load_into(self.model, state["model"], path)
        try:
            self.optimizer.load_state_dict(state["optimizer"])
            if scheduler and self.scheduler is not None and "scheduler" in state:
                self.scheduler.load_state_dict(state["scheduler"])
            progress = state["progress"]
            self.epoch, self.batch = int(progress["epoch"]), int(progress["batch"])
            sums = progress["sums"]  # one mapping per rank; one mapping in checkpoints written before that
            sums = sums[parallel.get_rank()] if isinstance(sums, (list, tuple)) else sums
            self.sums = {key: sums[key] for key in SUM_KEYS}
            self.first_loss = progress.get("first_loss")
            self._seconds_before = float(progress.get("train_seconds", 0.0))
            tl.set_rng_state(json.loads(state["rng"]))
            self.epoch_rng_state = json.loads(state["epoch_rng"]) if state.get("epoch_rng") else None
        except (KeyError, TypeError, ValueError, AttributeError, IndexError) as error:
            raise CheckpointError(f"{path}: not a training checkpoint this trainer can resume "
                                  f"({type(error).__name__}: {error})") from None
        self._saved_at = (self.epoch, self.batch)
        return state

    def _write_metrics(self, metrics):
        if self.out_dir is None:
            return
        os.makedirs(self.out_dir, exist_ok=True)
        with open(os.path.join(self.out_dir, METRICS), "a", encoding="utf-8") as handle:
            handle.write(json.dumps(metrics) + "\n")


def read_checkpoint(path, required=("model",)) -> dict:
    """The state in the checkpoint file ``path``; CheckpointError naming the file when it is not a mapping
    holding the ``required`` keys (a plain safetensors file of weights, say)."""
    state = load(path)
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: not a training checkpoint (its layout holds a {type(state).__name__})")
    missing = [key for key in required if key not in state]
    if missing:
        raise CheckpointError(f"{path}: not a training checkpoint: it lacks the key(s) {', '.join(map(repr, missing))} "
                              "(a file of weights only? training writes checkpoint.safetensors with them)")
    if not isinstance(state["model"], dict):
        raise CheckpointError(f"{path}: 'model' must be a state dict, found a {type(state['model']).__name__}")
    return state


def _check_world_size(progress, path):
    """CheckpointError naming both sizes when the checkpoint was written by a job of another world size (the
    global batch, each rank's shard and the saved sums depend on it). Checkpoints written before the size was
    recorded hold one process's sums and count as written by one process."""
    world = parallel.get_world_size()
    recorded = progress.get("world_size") if isinstance(progress, dict) else None
    saved = 1 if recorded is None else recorded
    if saved != world:
        unrecorded = "" if recorded is not None else " (a checkpoint from before world sizes were recorded counts as 1)"
        raise CheckpointError(f"{path}: the run was trained with world size {saved}{unrecorded}, but this job has "
                              f"world size {world}: resume it with {saved} process(es), as it was trained (the global "
                              "batch and each rank's share of the data depend on it)")


def _zero_sums() -> dict:
    return {"loss": 0.0, "correct": 0, "seen": 0, "seconds": 0.0}


def _rank_0_value(value: float) -> float:
    """Rank 0's ``value`` on every rank of a distributed job (``value`` itself in one process)."""
    if parallel.get_world_size() == 1:
        return value
    return float(parallel.broadcast(tl.tensor([value], dtype=tl.float64, device=parallel.collective_device())).item())


def _summed_over_ranks(sums):
    """The epoch's sums over all ranks of a distributed job (seconds: the mean over ranks)."""
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
