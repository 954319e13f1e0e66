"""A whole training step captured as one CUDA graph (tensorlib.graphs) and replayed for every batch.

    step = nn.GraphedStep(model, optimizer)            # model and batches on "cuda"
    for images, labels in loader:
        loss, correct = step(images.to("cuda"), labels.to("cuda"))

The first ``warmup`` calls are eager steps: they compile every kernel and create the optimizer's buffers,
so that the step captured next is the steady-state one (the last of them already updates through the
device tables described below). The next call captures zero_grad,
forward, loss, backward, the gradient all-reduce of a DistributedDataParallel model and the optimizer
update, then replays it; every later call copies the batch into the captured input arrays and replays.
A batch of another shape (the last, smaller batch of an epoch) runs as an eager step.

What stays correct across replays, and how:
- parameters, optimizer buffers and BatchNorm running statistics are updated in place, so the graph
  keeps writing the arrays the model holds; after each replay ``param.grad`` is the captured gradient;
- the learning rate, momentum and Adam's betas (what schedulers change) and Adam's bias corrections are
  read from device memory written before each replay (``nn.optim.optimizer.DeviceScalars``); changing
  another hyper-parameter after the capture raises an error;
- ``optimizer.load_state_dict`` (resuming) replaces the optimizer's buffers, and ``p.data = ...``,
  ``model.to(...)`` or ``load_state_dict(..., assign=True)`` replace a parameter's or buffer's array: the
  graph would keep training the old arrays, so the next call runs the warm-up and captures again;
  anything else that changes the step's structure after the capture (freezing parameters, swapping layers,
  switching a layer to eval mode inside the model) needs a new ``GraphedStep``.
Not capturable, and reported as ``CaptureError`` when met: work that reads device values on the host or
draws random numbers on the host (dropout), and BatchNorm with ``momentum=None`` (it reads its counter).
"""

from __future__ import annotations

import tensorlib as tl
from tensorlib.graphs import Graph

from nn.losses import CrossEntropyLoss
from nn.optim.optimizer import DeviceScalars

# The weight of each auxiliary classifier's loss (GoogLeNet's aux heads), as in the GoogLeNet paper.
AUX_LOSS_WEIGHT = 0.3


def training_loss(outputs, labels, loss_fn):
    """(logits, loss) of a model's training-mode ``outputs``: plain logits, or a named tuple ``(logits, aux1,
    aux2, ...)`` (GoogLeNet with ``aux_logits=True``) whose loss is the logits' plus ``AUX_LOSS_WEIGHT`` (0.3)
    times each auxiliary output's, as in the GoogLeNet paper. The Trainer and GraphedStep both train on it."""
    if not (isinstance(outputs, tuple) and hasattr(outputs, "_fields")):
        return outputs, loss_fn(outputs, labels)
    logits, *auxiliary = outputs
    loss = loss_fn(logits, labels)
    for extra in auxiliary:
        if extra is not None:
            loss = loss + AUX_LOSS_WEIGHT * loss_fn(extra, labels)
    return logits, loss


class GraphedStep:
    """``step(inputs, labels) -> (loss, correct)``: one SGD-style step on a batch, as 0-d device tensors
    (the loss of ``training_loss``, auxiliary heads included, and the number of rows whose logits' arg-max
    is the label)."""

    def __init__(self, model, optimizer, loss_fn=None, warmup: int = 2):
        if isinstance(warmup, bool) or not isinstance(warmup, int) or warmup < 1:
            raise ValueError(f"warmup must be an int >= 1 (eager steps before the capture), got {warmup!r}")
        self.model, self.optimizer, self.warmup = model, optimizer, warmup
        self.loss_fn = loss_fn or CrossEntropyLoss()
        self.replays = 0
        self._reset()

    def _reset(self):
        self._graph = self._outputs = self._scalars = None
        self._eager_left = self.warmup
        self._state_seen = self.optimizer.state
        self._arrays_seen = self._model_arrays()

    def _model_arrays(self) -> list:
        """The arrays of the model's parameters and buffers: the captured kernels read and write these."""
        return [t.array for t in (*self.model.parameters(), *self.model.buffers())]

    def _stale(self) -> bool:
        """Whether the optimizer's buffers (resume) or the model's arrays (``p.data = ...``) were replaced since
        the warm-up began: a captured graph would keep writing the old ones."""
        arrays = self._model_arrays()
        return (self.optimizer.state is not self._state_seen or len(arrays) != len(self._arrays_seen)
                or any(new is not old for new, old in zip(arrays, self._arrays_seen)))

    def __call__(self, inputs, labels):
        _check_on_cuda(inputs=inputs, labels=labels)
        if self._stale():
            self._reset()
        if self._eager_left > 0:
            self._eager_left -= 1
            return self._eager(inputs, labels, through_tables=self._eager_left == 0)
        if self._graph is None:
            self._capture(inputs, labels)
        elif not self._fits(inputs, labels):
            return self._eager(inputs, labels)
        else:
            self._scalars.check_unchanged()
            self._static[0][...] = inputs.array
            self._static[1][...] = labels.array
            self._scalars.refresh()
        self._graph.replay()
        self.replays += 1
        loss, correct, *grads = self._outputs
        for (_, param), grad in zip(self._scalars.entries, grads):
            param.grad = tl.Tensor._make(grad)
        return tl.Tensor._make(loss), tl.Tensor._make(correct)

    def _step(self, inputs, labels, update):
        self.model.train()
        self.optimizer.zero_grad()
        logits, loss = training_loss(self.model(inputs), labels, self.loss_fn)
        loss.backward()
        if hasattr(self.model, "sync_gradients"):  # DistributedDataParallel: average over the ranks
            self.model.sync_gradients()
        update()
        return loss.array, (logits.array.argmax(1) == labels.array).sum()

    def _eager(self, inputs, labels, through_tables=False):
        """An eager step; the last warm-up step updates through the device tables, so that the kernels of
        that arithmetic (0-d array operands instead of Python numbers) compile before the capture."""
        update = self._update_through_tables if through_tables else self.optimizer.step
        loss, correct = self._step(inputs, labels, update)
        return tl.Tensor._make(loss), tl.Tensor._make(correct)

    def _update_through_tables(self):
        self._scalars = DeviceScalars(self.optimizer)  # the parameters that have gradients now
        self._scalars.refresh()
        self._scalars.step()

    def _capture(self, inputs, labels):
        _check_on_cuda(**{f"parameter {name!r}": p for name, p in self.model.named_parameters()})
        self._static = (inputs.array.copy(), labels.array.copy())
        static_inputs, static_labels = (tl.Tensor._make(array) for array in self._static)
        self._scalars.check_unchanged()
        self._scalars.refresh()

        def step():
            loss, correct = self._step(static_inputs, static_labels, self._scalars.step)
            return (loss, correct) + tuple(param.grad.array for _, param in self._scalars.entries)

        self._graph = Graph()
        self._outputs = self._graph.capture(step)

    def _fits(self, inputs, labels) -> bool:
        return all(fresh.shape == static.shape and fresh.dtype == static.dtype
                   for fresh, static in zip((inputs.array, labels.array), self._static))


def _check_on_cuda(**tensors):
    for name, tensor in tensors.items():
        if tensor.device != "cuda":
            raise ValueError(f"GraphedStep runs on 'cuda': {name} is on '{tensor.device}' "
                             "(move the model and the batches with .to('cuda'))")
