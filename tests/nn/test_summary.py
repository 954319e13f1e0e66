"""nn.summary: rows, totals and table from a forward pass on a small batch; the model left as it was."""

import math

import numpy as np
import pytest

import nn
import tensorlib as tl
from nn import models
from nn.summary import summary

# LeNet-5 on 1x28x28: (row, output shape, MACs). MACs of a conv: N*K*P*Q*(C/groups)*R*S.
LENET5_ROWS = [
    ("conv1", (1, 6, 28, 28), 6 * 28 * 28 * 1 * 5 * 5),
    ("act1", (1, 6, 28, 28), 0),
    ("pool1", (1, 6, 14, 14), 0),
    ("conv2", (1, 16, 10, 10), 16 * 10 * 10 * 6 * 5 * 5),
    ("act2", (1, 16, 10, 10), 0),
    ("pool2", (1, 16, 5, 5), 0),
    ("flatten", (1, 400), 0),
    ("fc1", (1, 120), 400 * 120),
    ("act3", (1, 120), 0),
    ("fc2", (1, 84), 120 * 84),
    ("act4", (1, 84), 0),
    ("fc3", (1, 10), 84 * 10),
]


def test_primer_quiz_layer(capsys):
    stats = summary(nn.Conv2d(3, 10, 5, stride=1, padding=2), input_size=(3, 32, 32))
    (row,) = stats.rows
    assert (row.name, row.type, row.output_shape, row.params) == ("", "Conv2d", (1, 10, 32, 32), 760)
    assert row.macs == stats.total_macs == 10 * 32 * 32 * 3 * 5 * 5 == 768_000
    printed = capsys.readouterr().out
    assert printed.strip() == str(stats).strip()
    for text in ("[1, 10, 32, 32]", "760", "768,000"):
        assert text in printed


def test_lenet5_rows_and_totals():
    stats = summary(models.lenet5(), (1, 28, 28), verbose=False)
    assert [(row.name, row.output_shape, row.macs) for row in stats.rows] == LENET5_ROWS
    assert stats.total_params == stats.trainable_params == sum(row.params for row in stats.rows) == 61_706
    assert stats.total_macs == sum(row.macs for row in stats.rows) == 416_520
    assert stats.param_bytes == 61_706 * 4
    assert stats.activation_bytes == sum(math.prod(shape) for _, shape, _ in LENET5_ROWS) * 4
    assert stats.param_mb == pytest.approx(61_706 * 4 / 2**20)
    table = str(stats)
    assert "fc1 (Linear)" in table and "61,706" in table and "416,520" in table
    widths = {len(line) for line in table.splitlines()[:3 + len(stats.rows) + 1]}
    assert len(widths) == 1  # the header, rules and rows are aligned to one width


def test_batch_size_scales_shapes_macs_and_activations():
    one = summary(models.lenet5(), (1, 28, 28), verbose=False)
    eight = summary(models.lenet5(), (1, 28, 28), batch_size=8, verbose=False)
    assert [row.output_shape for row in eight.rows] == [(8, *row.output_shape[1:]) for row in one.rows]
    assert eight.total_macs == 8 * one.total_macs
    assert eight.activation_bytes == 8 * one.activation_bytes
    assert (eight.total_params, eight.param_bytes) == (one.total_params, one.param_bytes)


class SharedLayer(nn.Module):
    """Owns a parameter directly and calls one Linear twice."""

    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(tl.ones(4))
        self.fc = nn.Linear(4, 4)

    def forward(self, x):
        return self.fc(self.fc(x)) * self.scale


def test_repeated_calls_and_parameters_owned_by_a_container():
    stats = summary(SharedLayer(), (4,), batch_size=3, verbose=False)
    rows = {row.name: row for row in stats.rows}
    assert set(rows) == {"", "fc"}  # the model owns `scale`, so it has a row despite having children
    assert (rows[""].params, rows["fc"].params) == (4, 20)
    assert stats.total_params == sum(row.params for row in stats.rows) == 24
    assert rows["fc"].macs == 2 * 3 * 4 * 4  # both calls
    assert stats.activation_bytes == (2 + 1) * 3 * 4 * 4  # two fc outputs and the model's output, float32


def test_tuple_outputs_and_dtype():
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.MaxPool2d(2, return_indices=True)).double()
    stats = summary(model, (3, 8, 8), verbose=False)
    assert stats.rows[1].output_shape == ((1, 4, 4, 4), (1, 4, 4, 4))
    assert stats.param_bytes == (4 * 3 * 9 + 4) * 8  # float64 parameters
    assert stats.activation_bytes == 4 * 8 * 8 * 8 + 2 * 4 * 4 * 4 * 8  # float64 outputs and int64 indices
    assert "[1, 4, 4, 4], [1, 4, 4, 4]" in str(stats)


def test_layers_not_run_are_listed_without_shape():
    stats = summary(models.googlenet(aux_logits=True), (3, 224, 224), verbose=False)
    aux = [row for row in stats.rows if row.name.startswith("aux1.")]
    assert aux and all(row.output_shape is None and row.macs == 0 for row in aux)
    assert "aux1.fc1 (Linear)" in str(stats)
    assert stats.total_params == sum(row.params for row in stats.rows)


def test_failing_forward_names_input_size_and_layer():
    with pytest.raises(RuntimeError, match=r"input size \(1, 8, 8\).* 'conv2' \(Conv2d\)"):
        summary(models.lenet5(), (1, 8, 8), verbose=False)
    with pytest.raises(RuntimeError, match=r"input size \(1, 32, 32\).* 'fc1' \(Linear\)"):
        summary(models.lenet5(), (1, 32, 32), verbose=False)
    with pytest.raises(ValueError, match="input_size"):
        summary(models.lenet5(), (1, 0, 28), verbose=False)


@pytest.mark.parametrize("input_size", [(1, 28, 28), (1, 8, 8)], ids=["ok", "failing"])
def test_modes_restored_and_hooks_removed(input_size):
    model = models.lenet5().train()
    model.pool1.eval()
    seen = []
    model.fc3.register_forward_hook(lambda module, inputs, output: seen.append(output.shape))
    try:
        summary(model, input_size, verbose=False)
    except RuntimeError:
        pass
    assert [module.training for module in model.modules()] == [module is not model.pool1 for module in model.modules()]
    assert all(not module._forward_hooks for module in model.modules() if module is not model.fc3)
    assert len(model.fc3._forward_hooks) == 1  # the user's hook survives
    model(tl.randn(2, 1, 28, 28))
    assert seen[-1] == (2, 10)


class FlattenByBatch(nn.Module):
    """Flattens with the batch size read from the input, the common ``x.reshape(x.shape[0], -1)`` idiom."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3)
        self.bn = nn.BatchNorm2d(2)
        self.fc = nn.Linear(2 * 4 * 4, 3)

    def forward(self, x):
        x = self.bn(self.conv(x))
        x = x.view(x.size(0), -1)
        return self.fc(x.reshape(x.shape[0], -1))


@pytest.mark.parametrize("batch_size", [1, 5])
def test_forward_reading_the_batch_size_from_the_input(batch_size):
    stats = summary(FlattenByBatch(), (1, 6, 6), batch_size=batch_size, verbose=False)
    assert [(row.name, row.output_shape) for row in stats.rows] == [
        ("conv", (batch_size, 2, 4, 4)), ("bn", (batch_size, 2, 4, 4)), ("fc", (batch_size, 3))]
    assert stats.total_macs == batch_size * (2 * 4 * 4 * 1 * 3 * 3 + 32 * 3)


def test_summary_leaves_batch_norm_statistics_modes_and_random_state_alone():
    tl.manual_seed(1)
    model = FlattenByBatch().train()
    model(tl.randn(4, 1, 6, 6) * 2 + 3)  # running statistics away from their initial values
    before = {key: value.clone() for key, value in model.state_dict().items()}
    rng_state = tl.get_rng_state()
    summary(model, (1, 6, 6), verbose=False)
    assert tl.get_rng_state() == rng_state
    assert all(module.training for module in model.modules())
    after = model.state_dict()
    for key in ("bn.running_mean", "bn.running_var", "bn.num_batches_tracked"):
        np.testing.assert_array_equal(after[key], before[key], err_msg=key)
    assert after["bn.num_batches_tracked"] == 1


class CountsCalls(nn.Module):
    """A layer whose forward writes its own buffer, even in eval mode."""

    def __init__(self):
        super().__init__()
        self.register_buffer("calls", tl.tensor(0))

    def forward(self, x):
        self.calls.array[...] += 1
        return x


def test_buffers_written_by_a_forward_are_restored():
    model = nn.Sequential(CountsCalls(), nn.Linear(3, 2))
    summary(model, (3,), verbose=False)
    assert model[0].calls.item() == 0


def test_batch_norm_using_batch_statistics_in_eval_gets_two_samples():
    model = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3, track_running_stats=False))
    stats = summary(model, (4,), batch_size=3, verbose=False)
    assert [row.output_shape for row in stats.rows] == [(3, 3), (3, 3)]
    assert stats.total_macs == 3 * 4 * 3


class AssignsAndDraws(nn.Module):
    """A layer whose forward replaces its buffer by a new tensor and draws noise, even in eval mode."""

    def __init__(self):
        super().__init__()
        self.register_buffer("ema", tl.zeros(3))

    def forward(self, x):
        self.ema = self.ema * 0.5 + x.mean(0)
        return x + tl.randn(*x.shape) * 0.01


def test_assigned_buffers_and_the_random_state_are_restored():
    model = nn.Sequential(AssignsAndDraws(), nn.Linear(3, 2))
    original = model[0].ema
    rng_state = tl.get_rng_state()
    summary(model, (3,), verbose=False)
    assert model[0].ema is original and not original.numpy().any()
    assert tl.get_rng_state() == rng_state


class SumOverBatch(nn.Module):
    def forward(self, x):
        return x.sum(0, keepdim=True)


def test_a_leading_one_that_is_not_the_batch_is_reported_as_it_is():
    model = nn.Sequential(nn.Linear(4, 3), SumOverBatch(), nn.Linear(3, 2))
    stats = summary(model, (4,), batch_size=8, verbose=False)
    assert [row.output_shape for row in stats.rows] == [(8, 3), (1, 3), (1, 2)]
    assert stats.total_macs == 8 * 4 * 3 + 1 * 3 * 2
