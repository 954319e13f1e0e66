"""nn.GraphedStep: a training step captured as a CUDA graph gives the eager step's numbers, step after step.

Each test runs in two tiers: the simulator (NUMBA_ENABLE_CUDASIM=1: the capture runs the step with the
host-access checks armed and replays re-run it) and a real GPU (a CuPy stream capture replayed as one
graph launch). The simulator runs ~1 ms per GPU thread, so its model is a small MLP with BatchNorm (matmul,
batch-norm and cross-entropy kernels, running statistics) on the naive matmul variant, and its eager
reference runs on the CPU (other kernels: rtol 1e-4); on a GPU the reference is the eager GPU step (1e-6).
"""

import numpy as np
import pytest

import kernels
import nn
import tensorlib as tl
from kernels import softmax_xent
from nn import optim
from tensorlib.graphs import CaptureError, Graph

REFERENCE = {"simulator": ("cpu", 1e-4), "gpu": ("cuda", 1e-6)}


@pytest.fixture(autouse=True)
def cheap_kernels_in_the_simulator(small_blocks_in_the_simulator):
    from kernels.device_arrays import simulating

    if simulating():  # one thread per output instead of 128x128 tiles of threads
        with kernels.use(matmul="numba_cuda.v1_naive"):
            yield
    else:
        yield


def small_model(dropout=0.0):
    # no bias before BatchNorm: its gradient is rounding noise, which Adam would scale up to lr-sized steps
    layers = [nn.Linear(4, 2, bias=False), nn.BatchNorm1d(2), nn.ReLU(), nn.Linear(2, 3)]
    if dropout:
        layers.insert(-1, nn.Dropout(dropout))
    return nn.Sequential(*layers)


def batches(count, batch=3, seed=1, device="cuda"):
    rng = np.random.default_rng(seed)
    return [(tl.tensor(rng.standard_normal((batch, 4)).astype(np.float32), device=device),
             tl.tensor(rng.integers(0, 3, batch), device=device)) for _ in range(count)]


def make(optimizer_factory, scheduler_factory=None, device="cuda"):
    tl.manual_seed(0)
    model = small_model().to(device)
    optimizer = optimizer_factory(model.parameters())
    scheduler = scheduler_factory(optimizer) if scheduler_factory else None
    return model, optimizer, scheduler


def eager_reference(tier, optimizer_factory, scheduler_factory, data):
    device, rtol = REFERENCE[tier]
    model, optimizer, scheduler = make(optimizer_factory, scheduler_factory, device)
    losses = []
    for inputs, labels in data:
        inputs, labels = inputs.to(device), labels.to(device)
        model.train()
        optimizer.zero_grad()
        logits = model(inputs)
        loss = nn.functional.cross_entropy(logits, labels)
        loss.backward()
        optimizer.step()
        if scheduler:
            scheduler.step()
        losses.append((loss.item(), int((logits.array.argmax(1) == labels.array).sum())))
    return model, optimizer, losses, rtol


def run_graphed(step, scheduler, data):
    losses = []
    for inputs, labels in data:
        loss, correct = step(inputs, labels)
        if scheduler:
            scheduler.step()
        losses.append((loss.item(), correct.item()))
    return losses


def assert_same_training(reference, graphed, losses):
    ref_model, ref_optimizer, ref_losses, rtol = reference
    model, optimizer = graphed
    np.testing.assert_allclose([l for l, _ in losses], [l for l, _ in ref_losses], rtol=rtol)
    assert [c for _, c in losses] == [c for _, c in ref_losses]
    for (name, a), (_, b) in zip(ref_model.state_dict().items(), model.state_dict().items()):
        np.testing.assert_allclose(b, a, rtol=rtol, atol=rtol / 100, err_msg=name)
    for (_, a), (_, b) in zip(ref_optimizer.state_dict()["state"].items(), optimizer.state_dict()["state"].items()):
        assert a.keys() == b.keys()
        for key in a:
            np.testing.assert_allclose(b[key], a[key], rtol=rtol, atol=rtol / 100, err_msg=key)
    for ref_param, param in zip(ref_model.parameters(), model.parameters()):
        np.testing.assert_allclose(param.grad.numpy(), ref_param.grad.numpy(), rtol=rtol, atol=rtol / 100)


OPTIMIZERS = {
    "sgd-momentum": (lambda p: optim.SGD(p, lr=0.1, momentum=0.9, weight_decay=1e-3), None),
    # OneCycleLR changes lr and momentum (SGD, RMSprop) or beta1 (Adam) at every step
    "sgd-onecycle": (lambda p: optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True),
                     lambda o: optim.lr_scheduler.OneCycleLR(o, max_lr=0.2, total_steps=8)),
    "adamw-steplr": (lambda p: optim.AdamW(p, lr=0.01), lambda o: optim.lr_scheduler.StepLR(o, 1, gamma=0.5)),
    "adam-onecycle": (lambda p: optim.Adam(p, lr=0.01, amsgrad=True),
                      lambda o: optim.lr_scheduler.OneCycleLR(o, max_lr=0.02, total_steps=8)),
    "rmsprop-onecycle": (lambda p: optim.RMSprop(p, lr=0.01, momentum=0.5, centered=True),
                         lambda o: optim.lr_scheduler.OneCycleLR(o, max_lr=0.02, total_steps=8)),
    "sgd-cyclic": (lambda p: optim.SGD(p, lr=0.1, momentum=0.9),
                   lambda o: optim.lr_scheduler.CyclicLR(o, base_lr=0.01, max_lr=0.1, step_size_up=2)),
    "adagrad": (lambda p: optim.Adagrad(p, lr=0.05, lr_decay=0.01, weight_decay=1e-3), None),
    "adadelta": (lambda p: optim.Adadelta(p, lr=1.0, weight_decay=1e-3), None),
    "adamax": (lambda p: optim.Adamax(p, lr=0.01), None),
    "nadam": (lambda p: optim.NAdam(p, lr=0.01, decoupled_weight_decay=True, weight_decay=1e-2), None),
    # RAdam picks its rectified or plain step on the device (xp.where), so a replay can take either
    "radam": (lambda p: optim.RAdam(p, lr=0.01), None),
}
SIMULATED_OPTIMIZERS = ("sgd-onecycle", "adamw-steplr")  # one of each kind of scalar; the GPU runs them all


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_replays_match_eager_steps(tier, name):
    """An eager warm-up step, the capture, 2 more replays: losses, weights, running statistics, gradients,
    optimizer buffers and step counts equal the eager run's, the scheduled learning rate and Adam's bias
    corrections included (the step counters advance on the host at every replay)."""
    if tier == "simulator" and name not in SIMULATED_OPTIMIZERS:
        pytest.skip("the simulator covers one optimizer of each kind of scalar (lr and momentum; step counts)")
    data = batches(4)
    reference = eager_reference(tier, *OPTIMIZERS[name], data)
    model, optimizer, scheduler = make(*OPTIMIZERS[name])
    step = nn.GraphedStep(model, optimizer, warmup=1)
    losses = run_graphed(step, scheduler, data)
    assert step.replays == 3
    assert_same_training(reference, (model, optimizer), losses)


def test_a_batch_of_another_shape_runs_eagerly(tier):
    data = batches(2) + batches(1, batch=2, seed=5) + batches(1, seed=7)
    reference = eager_reference(tier, OPTIMIZERS["sgd-momentum"][0], None, data)
    model, optimizer, _ = make(OPTIMIZERS["sgd-momentum"][0])
    step = nn.GraphedStep(model, optimizer, warmup=1)
    losses = run_graphed(step, None, data)
    assert step.replays == 2  # steps 2 and 4; step 3 had 2 rows
    assert_same_training(reference, (model, optimizer), losses)


def test_resuming_the_optimizer_captures_again(tier):
    data = batches(4)
    reference = eager_reference(tier, OPTIMIZERS["sgd-momentum"][0], None, data)
    model, optimizer, _ = make(OPTIMIZERS["sgd-momentum"][0])
    step = nn.GraphedStep(model, optimizer, warmup=1)
    losses = run_graphed(step, None, data[:2])
    optimizer.load_state_dict(optimizer.state_dict())  # new buffers, same values
    losses += run_graphed(step, None, data[2:])
    assert step.replays == 2  # step 2, then step 4 after the eager step 3
    assert_same_training(reference, (model, optimizer), losses)


def test_replacing_a_parameter_array_captures_again(tier):
    """p.data = ... gives the parameter a new array, which a captured graph would never read: the step runs
    the warm-up again and captures anew, and training stays the eager run's."""
    data = batches(4)
    reference = eager_reference(tier, OPTIMIZERS["sgd-momentum"][0], None, data)
    model, optimizer, _ = make(OPTIMIZERS["sgd-momentum"][0])
    step = nn.GraphedStep(model, optimizer, warmup=1)
    losses = run_graphed(step, None, data[:2])
    weight = next(iter(model.parameters()))
    weight.data = weight.data.clone()  # same values, new array
    losses += run_graphed(step, None, data[2:])
    assert step.replays == 2  # step 2, then step 4 after the eager step 3
    assert_same_training(reference, (model, optimizer), losses)


def test_log_softmax_and_nll_loss_are_capturable(tier):
    """nll_loss's target range check reads the device: it is skipped while the graph is captured."""
    model, optimizer, _ = make(OPTIMIZERS["sgd-momentum"][0])
    model = nn.Sequential(model, nn.LogSoftmax(dim=1))
    step = nn.GraphedStep(model, optimizer, loss_fn=nn.NLLLoss(), warmup=1)
    losses = run_graphed(step, None, batches(3))
    assert step.replays == 2 and all(np.isfinite(loss) for loss, _ in losses)


def test_changing_a_fixed_hyper_parameter_after_capture_raises(tier):
    model, optimizer, _ = make(OPTIMIZERS["sgd-momentum"][0])
    step = nn.GraphedStep(model, optimizer, warmup=1)
    run_graphed(step, None, batches(2))
    optimizer.param_groups[0]["momentum"] = 0.5  # read from the device table: fine
    step(*batches(1)[0])
    optimizer.param_groups[0]["weight_decay"] = 0.01
    with pytest.raises(ValueError, match=r"param_groups\[0\]\['weight_decay'\] changed from 0.001 to 0.01"):
        step(*batches(1)[0])


def test_host_reads_inside_the_step_are_refused(tier):
    model, optimizer, _ = make(OPTIMIZERS["sgd-momentum"][0])

    def loss_read_on_host(logits, labels):
        loss = nn.functional.cross_entropy(logits, labels)
        print(loss.item())
        return loss

    step = nn.GraphedStep(model, optimizer, loss_fn=loss_read_on_host, warmup=1)
    step(*batches(1)[0])
    with pytest.raises(CaptureError, match="captured step must not"):
        step(*batches(1)[0])


def test_dropout_draws_on_the_host_and_is_refused(tier):
    tl.manual_seed(0)
    model = small_model(dropout=0.5).to("cuda")
    step = nn.GraphedStep(model, optim.SGD(model.parameters(), lr=0.1), warmup=1)
    step(*batches(1)[0])
    with pytest.raises(CaptureError):
        step(*batches(1)[0])


def test_host_tensors_are_refused(tier):
    model, optimizer, _ = make(OPTIMIZERS["sgd-momentum"][0])
    inputs, labels = batches(1)[0]
    with pytest.raises(ValueError, match="inputs is on 'cpu'"):
        nn.GraphedStep(model, optimizer)(inputs.cpu(), labels)
    with pytest.raises(ValueError, match="warmup must be an int >= 1"):
        nn.GraphedStep(model, optimizer, warmup=0)


def test_out_of_range_targets_give_a_nan_loss_inside_a_capture(tier):
    """Checking target values would read the device on the host; inside a capture the kernel marks the
    row NaN instead of reading out of bounds (eagerly the check raises IndexError)."""
    logits = tl.randn(3, 4, device="cuda").array
    targets = tl.tensor([1, 7, -100], device="cuda").array
    with pytest.raises(IndexError, match="target value 7"):
        softmax_xent.softmax_xent_forward(logits, targets)
    graph = Graph()
    losses, _ = graph.capture(lambda: softmax_xent.softmax_xent_forward(logits, targets))
    graph.replay()
    values = tl.Tensor._make(losses).numpy()
    assert np.isfinite(values[0]) and np.isnan(values[1]) and values[2] == 0


def test_trainer_replays_captured_steps(tier):
    from nn.data import DataLoader, TensorDataset
    from nn.train import Trainer

    data = batches(4)
    dataset = TensorDataset(tl.cat([x.cpu() for x, _ in data]), tl.cat([y.cpu() for _, y in data]))
    model, optimizer, _ = make(OPTIMIZERS["sgd-momentum"][0])
    trainer = Trainer(model, optimizer, device="cuda", cuda_graph=True, progress=False, log=lambda *_: None)
    history = trainer.fit(DataLoader(dataset, batch_size=3), epochs=1)
    assert trainer.graphed.replays == 2  # 2 eager warm-up steps, then the capture and one more replay
    assert np.isfinite(history[0]["train_loss"]) and 0 <= history[0]["train_accuracy"] <= 1
    with pytest.raises(ValueError, match="cuda_graph=True needs device='cuda', got device='cpu'"):
        Trainer(model, optimizer, device="cpu", cuda_graph=True)


@pytest.mark.parametrize("mode", ["reflect", "replicate", "circular"])
def test_index_padding_builds_its_indices_on_the_device(tier, mode):
    """Reflect/replicate/circular padding gathers with index arrays made on the device, so a captured step
    (a conv with padding_mode) holds no host-to-device copy."""
    x = tl.randn(1, 2, 4, 5, device="cuda")
    graph = Graph()
    out = graph.capture(lambda: tl.pad(x, (1, 2, 3, 1), mode=mode).array)
    graph.replay()
    numpy_mode = {"reflect": "reflect", "replicate": "edge", "circular": "wrap"}[mode]
    expected = np.pad(x.cpu().numpy(), ((0, 0), (0, 0), (3, 1), (1, 2)), mode=numpy_mode)
    np.testing.assert_array_equal(tl.Tensor._make(out).numpy(), expected)


class WithAuxiliaryHead(nn.Module):
    """GoogLeNet's training-mode output in small: a named tuple (logits, aux1, aux2), aux2 absent."""

    def __init__(self):
        super().__init__()
        self.main, self.aux = nn.Linear(4, 3), nn.Linear(4, 3)

    def forward(self, x):
        from nn.models import GoogLeNetOutputs

        return GoogLeNetOutputs(self.main(x), self.aux(x), None) if self.training else self.main(x)


def aux_model_and_optimizer(device):
    tl.manual_seed(0)
    model = WithAuxiliaryHead().to(device)
    return model, optim.SGD(model.parameters(), lr=0.1, momentum=0.9)


def test_the_step_trains_auxiliary_heads_as_the_trainer_does():
    """GraphedStep's step function (what it runs eagerly and captures) on the CPU: the loss of the logits plus
    0.3 times the auxiliary head's, the same loss, gradients and update as the Trainer's eager step."""
    from nn.train import Trainer

    x, y = batches(1, device="cpu")[0]
    model, optimizer = aux_model_and_optimizer("cpu")
    loss, correct = nn.GraphedStep(model, optimizer)._step(x, y, optimizer.step)
    reference, reference_optimizer = aux_model_and_optimizer("cpu")
    trainer = Trainer(reference, reference_optimizer, progress=False, log=lambda *_: None)
    expected_loss, expected_correct = trainer._step(x, y)
    assert float(loss) == pytest.approx(expected_loss, rel=1e-6) and int(correct) == expected_correct
    assert np.abs(model.aux.weight.grad.numpy()).sum() > 0  # the auxiliary head was trained
    for (name, a), (_, b) in zip(reference.state_dict().items(), model.state_dict().items()):
        np.testing.assert_allclose(b, a, rtol=1e-6, err_msg=name)


def test_replays_train_auxiliary_heads(tier):
    device, rtol = REFERENCE[tier]
    data = batches(3)
    reference, reference_optimizer = aux_model_and_optimizer(device)
    ref_losses = []
    for inputs, labels in data:
        reference.train()
        reference_optimizer.zero_grad()
        logits, loss = nn.graphed.training_loss(reference(inputs.to(device)), labels.to(device), nn.CrossEntropyLoss())
        loss.backward()
        reference_optimizer.step()
        ref_losses.append((loss.item(), int((logits.array.argmax(1) == labels.to(device).array).sum())))
    model, optimizer = aux_model_and_optimizer("cuda")
    step = nn.GraphedStep(model, optimizer, warmup=1)
    losses = run_graphed(step, None, data)
    assert step.replays == 2
    np.testing.assert_allclose([l for l, _ in losses], [l for l, _ in ref_losses], rtol=rtol)
    assert [c for _, c in losses] == [c for _, c in ref_losses]
    for (name, a), (_, b) in zip(reference.state_dict().items(), model.state_dict().items()):
        np.testing.assert_allclose(b, a, rtol=rtol, atol=rtol / 100, err_msg=name)
