"""nn.optim.swa_utils against NumPy references: AveragedModel's running equal average and moving averages
(parameters, and buffers with use_buffers), update_bn's cumulative batch-norm statistics, SWALR's annealing,
the device, and the errors."""

import math

import numpy as np
import pytest

import nn
import tensorlib as tl
from nn.data import DataLoader, TensorDataset
from nn.optim import SGD
from nn.optim.swa_utils import (
    SWALR, AveragedModel, get_ema_avg_fn, get_ema_multi_avg_fn, get_swa_avg_fn, get_swa_multi_avg_fn, update_bn,
)

DTYPES = [tl.float64, tl.float32]


def small_model(channels, hidden, dtype=tl.float64):
    """BatchNorm2d on the input, then a linear layer and BatchNorm1d: 4x4 images with ``channels`` channels."""
    return nn.Sequential(nn.BatchNorm2d(channels), nn.Flatten(), nn.Linear(channels * 16, hidden),
                         nn.BatchNorm1d(hidden, momentum=0.3)).to(dtype=dtype)


def random_weights(rng, model, count):
    return [[rng.standard_normal(p.shape).astype(p.dtype) for p in model.parameters()] for _ in range(count)]


def set_weights(model, arrays):
    for param, array in zip(model.parameters(), arrays):
        param.array[...] = array


def averaged_arrays(averaged):
    return [p.detach().numpy() for p in averaged.module.parameters()]


def tolerance(dtype):
    return dict(rtol=1e-12, atol=1e-12) if np.dtype(dtype) == np.float64 else dict(rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("channels, hidden", [(1, 2), (3, 5)])
def test_the_default_average_is_the_mean_of_the_updates(dtype, channels, hidden):
    rng = np.random.default_rng(channels)
    model = small_model(channels, hidden, dtype)
    averaged = AveragedModel(model)
    assert averaged.module is not model and averaged.n_averaged.item() == 0
    snapshots = random_weights(rng, model, 5)
    for count, arrays in enumerate(snapshots, start=1):
        set_weights(model, arrays)
        model[0].running_mean.array[...] = rng.standard_normal(channels)
        averaged.update_parameters(model)
        assert averaged.n_averaged.item() == count
        for got, *seen in zip(averaged_arrays(averaged), *snapshots[:count]):
            np.testing.assert_allclose(got, np.mean(np.asarray(seen, dtype=np.float64), axis=0), **tolerance(dtype))
        # without use_buffers the buffers are the model's
        np.testing.assert_array_equal(averaged.module[0].running_mean.detach().numpy(),
                                      model[0].running_mean.detach().numpy())
    for got, want in zip(model.parameters(), snapshots[-1]):  # the model itself is left alone
        np.testing.assert_array_equal(got.detach().numpy(), want)
    x = tl.tensor(rng.standard_normal((4, channels, 4, 4)), dtype=dtype)
    averaged.eval()
    np.testing.assert_array_equal(averaged(x).detach().numpy(), averaged.module(x).detach().numpy())
    assert list(averaged.state_dict())[0] == "n_averaged"


def ema_reference(snapshots, decay):
    average = [np.asarray(a, dtype=np.float64) for a in snapshots[0]]
    for arrays in snapshots[1:]:
        average = [decay * a + (1 - decay) * np.asarray(b, dtype=np.float64) for a, b in zip(average, arrays)]
    return average


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("make, decay", [(get_ema_multi_avg_fn, 0.9), (get_ema_multi_avg_fn, 0.3),
                                         (get_ema_avg_fn, 0.99), (get_ema_avg_fn, 0.6)])
def test_exponential_moving_averages(dtype, make, decay):
    rng = np.random.default_rng(7)
    model = small_model(2, 3, dtype)
    option = "multi_avg_fn" if make is get_ema_multi_avg_fn else "avg_fn"
    averaged = AveragedModel(model, **{option: make(decay)})
    snapshots = random_weights(rng, model, 6)
    for arrays in snapshots:
        set_weights(model, arrays)
        averaged.update_parameters(model)
    for got, want in zip(averaged_arrays(averaged), ema_reference(snapshots, decay)):
        assert got.dtype == dtype
        np.testing.assert_allclose(got, want, **tolerance(dtype))


@pytest.mark.parametrize("option, make", [("avg_fn", get_swa_avg_fn), ("multi_avg_fn", get_swa_multi_avg_fn)])
def test_the_swa_average_functions_give_the_mean(option, make):
    rng = np.random.default_rng(2)
    model = small_model(2, 3)
    averaged = AveragedModel(model, **{option: make()})
    snapshots = random_weights(rng, model, 4)
    for arrays in snapshots:
        set_weights(model, arrays)
        averaged.update_parameters(model)
    # get_swa_multi_avg_fn rounds its weight 1 / (n + 1) to float32, as PyTorch does
    rtol = 1e-12 if option == "avg_fn" else 1e-6
    for got, *seen in zip(averaged_arrays(averaged), *snapshots):
        np.testing.assert_allclose(got, np.mean(seen, axis=0), rtol=rtol, atol=rtol)


def test_use_buffers_averages_the_buffers_too():
    rng = np.random.default_rng(4)
    model = small_model(3, 2)
    averaged = AveragedModel(model, use_buffers=True)
    means, counts = [], []
    for count in (3, 8, 10, 17):
        model[0].running_mean.array[...] = rng.standard_normal(3)
        model[0].num_batches_tracked.array[...] = count
        means.append(model[0].running_mean.detach().numpy().copy())
        counts.append(count)
        averaged.update_parameters(model)
    np.testing.assert_allclose(averaged.module[0].running_mean.detach().numpy(), np.mean(means, axis=0), rtol=1e-12)
    # an integer buffer keeps its dtype: each running-average update is truncated
    want = counts[0]
    for n, count in enumerate(counts[1:], start=1):
        want = int(want + (count - want) / (n + 1))
    assert averaged.module[0].num_batches_tracked.dtype == np.int64
    assert averaged.module[0].num_batches_tracked.item() == want == 8


def test_avg_fn_sees_the_count_of_averaged_models():
    seen = []

    def keep_the_latest(average, current, n_averaged):
        seen.append(n_averaged.item())
        return current * 1.0

    model = small_model(1, 2)
    averaged = AveragedModel(model, avg_fn=keep_the_latest)
    for arrays in random_weights(np.random.default_rng(0), model, 4):
        set_weights(model, arrays)
        averaged.update_parameters(model)
    assert seen == [1] * 6 + [2] * 6 + [3] * 6  # from the second update on, once for each of the 6 parameters
    for got, want in zip(averaged_arrays(averaged), arrays):
        np.testing.assert_array_equal(got, want)


def batch_norm_statistics(batches):
    """Per-channel means and unbiased variances of each batch (channels on axis 1), averaged over the batches."""
    axes = lambda x: (0,) + tuple(range(2, x.ndim))  # noqa: E731
    means = [x.mean(axis=axes(x)) for x in batches]
    variances = [x.var(axis=axes(x), ddof=1) for x in batches]
    return np.mean(means, axis=0), np.mean(variances, axis=0)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("channels, hidden, batch_sizes", [(2, 3, [5, 5, 5]), (3, 4, [6, 2, 7, 3])])
def test_update_bn_recomputes_the_statistics_as_a_cumulative_average(dtype, channels, hidden, batch_sizes):
    rng = np.random.default_rng(hidden)
    model = small_model(channels, hidden, dtype)
    set_weights(model, random_weights(rng, model, 1)[0])
    model[0].running_mean.array[...] = 5.0  # stale statistics, which update_bn resets
    model.eval()
    batches = [rng.standard_normal((n, channels, 4, 4)) * 2 + 1 for n in batch_sizes]
    update_bn([(tl.tensor(x, dtype=dtype), tl.zeros(len(x))) for x in batches], model)

    first, linear, second = model[0], model[2], model[3]
    mean, var = batch_norm_statistics(batches)
    np.testing.assert_allclose(first.running_mean.numpy(), mean, **tolerance(dtype))
    np.testing.assert_allclose(first.running_var.numpy(), var, **tolerance(dtype))
    # the second layer saw the first one's training-mode output through the linear layer
    weight, bias, w, b = (p.detach().numpy().astype(np.float64) for p in
                          (first.weight, first.bias, linear.weight, linear.bias))
    hidden_batches = []
    for x in batches:
        axes = (0, 2, 3)
        normed = (x - x.mean(axis=axes, keepdims=True)) / np.sqrt(x.var(axis=axes, keepdims=True) + first.eps)
        normed = normed * weight[None, :, None, None] + bias[None, :, None, None]
        hidden_batches.append(normed.reshape(len(x), -1) @ w.T + b)
    mean, var = batch_norm_statistics(hidden_batches)
    np.testing.assert_allclose(second.running_mean.numpy(), mean, **tolerance(dtype))
    np.testing.assert_allclose(second.running_var.numpy(), var, rtol=tolerance(dtype)["rtol"] * 10)
    assert first.num_batches_tracked.item() == second.num_batches_tracked.item() == len(batches)
    assert (first.momentum, second.momentum) == (0.1, 0.3) and not model.training


def test_update_bn_takes_bare_batches_and_a_loader_and_keeps_training_mode():
    rng = np.random.default_rng(5)
    data = rng.standard_normal((12, 2, 4, 4))
    model, other = small_model(2, 3), small_model(2, 3)
    update_bn([tl.tensor(data[i:i + 4]) for i in range(0, 12, 4)], model)
    update_bn(DataLoader(TensorDataset(tl.tensor(data), tl.zeros(12)), batch_size=4), other)
    assert model.training and other.training
    np.testing.assert_array_equal(model[0].running_var.numpy(), other[0].running_var.numpy())


def test_update_bn_without_batch_norm_does_not_read_the_loader():
    class Untouchable:
        def __iter__(self):
            raise AssertionError("the loader was read")

    model = nn.Sequential(nn.Linear(3, 2))
    update_bn(Untouchable(), model)


def swalr_lrs(anneal_epochs, strategy, swa_lrs, base_lrs=(0.5, 0.2), steps=14):
    params = [tl.zeros(2, requires_grad=True), tl.zeros(3, requires_grad=True)]
    optimizer = SGD([{"params": [p], "lr": lr} for p, lr in zip(params, base_lrs)])
    scheduler = SWALR(optimizer, swa_lr=swa_lrs, anneal_epochs=anneal_epochs, anneal_strategy=strategy)
    lrs = [scheduler.get_last_lr()]
    for _ in range(steps):
        optimizer.step()
        scheduler.step()
        lrs.append(scheduler.get_last_lr())
    return np.array(lrs), optimizer, scheduler


@pytest.mark.parametrize("strategy", ["cos", "linear"])
@pytest.mark.parametrize("anneal_epochs", [0, 1, 3, 10])
def test_swalr_anneals_to_swa_lr(strategy, anneal_epochs):
    swa_lrs = [0.05, 0.3]
    lrs, optimizer, _ = swalr_lrs(anneal_epochs, strategy, swa_lrs)
    anneal = (lambda t: t) if strategy == "linear" else (lambda t: (1 - math.cos(math.pi * t)) / 2)
    for step, row in enumerate(lrs):
        alpha = anneal(min(1, step / anneal_epochs)) if anneal_epochs else 1.0
        want = [swa * alpha + base * (1 - alpha) for swa, base in zip(swa_lrs, (0.5, 0.2))]
        np.testing.assert_allclose(row, want, rtol=1e-12)
    assert [group["swa_lr"] for group in optimizer.param_groups] == swa_lrs


def test_swalr_state_dict_resumes_the_schedule():
    lrs, optimizer, scheduler = swalr_lrs(6, "cos", 0.01, steps=3)
    saved, group_lrs = scheduler.state_dict(), [group["lr"] for group in optimizer.param_groups]
    params = [tl.zeros(2, requires_grad=True), tl.zeros(3, requires_grad=True)]
    resumed = SGD([{"params": [p], "lr": lr} for p, lr in zip(params, group_lrs)])
    other = SWALR(resumed, swa_lr=0.01, anneal_epochs=6)
    other.load_state_dict(saved)
    for _ in range(5):
        scheduler.step()
        other.step()
        assert other.get_last_lr() == scheduler.get_last_lr()


def test_device_averaging_and_update_bn_match_the_host(tier, small_blocks_in_the_simulator):
    rng = np.random.default_rng(9)
    model = small_model(2, 3)
    snapshots = random_weights(rng, model, 3)
    batches = [tl.tensor(rng.standard_normal((4, 2, 4, 4))) for _ in range(2)]
    results = []
    for device in ("cpu", "cuda"):
        averaged = AveragedModel(model, device=device)
        assert averaged.n_averaged.device == device and averaged.module[2].weight.device == device
        for arrays in snapshots:
            set_weights(model, arrays)  # the model stays on the host
            averaged.update_parameters(model)
        update_bn(batches, averaged, device=device)
        results.append({name: value.cpu().numpy() for name, value in averaged.state_dict().items()})
    for name, value in results[0].items():
        np.testing.assert_allclose(results[1][name], value, rtol=1e-12, atol=1e-12)


def test_errors():
    model = small_model(1, 2)
    with pytest.raises(ValueError, match="Only one of avg_fn and multi_avg_fn"):
        AveragedModel(model, avg_fn=get_ema_avg_fn(), multi_avg_fn=get_ema_multi_avg_fn())
    with pytest.raises(TypeError, match="AveragedModel averages a Module, got list"):
        AveragedModel([model])
    optimizer = SGD(model.parameters(), lr=0.1)
    with pytest.raises(ValueError, match="anneal_strategy must be one of 'cos' or 'linear', got 'step'"):
        SWALR(optimizer, 0.01, anneal_strategy="step")
    for bad in (-1, 1.5, True):
        with pytest.raises(ValueError, match=f"anneal_epochs must be an integer >= 0, got {bad!r}"):
            SWALR(optimizer, 0.01, anneal_epochs=bad)
    with pytest.raises(ValueError, match="swa_lr must have one value per param group: got 2 values for 1 groups"):
        SWALR(optimizer, [0.01, 0.02])
    with pytest.raises(TypeError, match="list is not an Optimizer"):
        SWALR([optimizer], 0.01)
