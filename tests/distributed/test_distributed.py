"""nn.parallel and DistributedSampler: 2-rank jobs under mpiexec (collectives, DDP against one process, a failing
rank, the CLI) and the single-process fallback in this process."""

import json
from pathlib import Path

import numpy as np
import pytest

import tensorlib as tl
from nn import cli, parallel
from nn.data import DistributedSampler, DistributedShard, TensorDataset
from nn.models import lenet5
from nn.serialization import load

WORKERS = Path(__file__).parent / "workers"


def worker(name):
    return WORKERS / name


def test_collectives_on_two_ranks(mpirun):
    result = mpirun([worker("collectives.py")])
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("collectives ok") == 2


def test_ddp_two_ranks_equal_one_process_on_the_global_batch(mpirun):
    result = mpirun([worker("ddp_lenet.py")])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ddp matches one process" in result.stdout


def test_a_failing_rank_ends_the_job_with_its_error(mpirun):
    result = mpirun([worker("failing.py")], timeout=30)  # a hang would raise TimeoutExpired
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "rank 1 failed: ValueError: injected failure at batch 2" in output
    assert "unreachable" not in output


TRAIN = ["-m", "nn.cli", "train", "--distributed", "--device", "cpu", "--model", "lenet5", "--dataset", "synthetic",
         "--batch-size", "100", "--scheduler", "none", "--no-progress", "--seed", "3"]


def test_cli_distributed_writes_from_rank_0_only_and_resumes(mpirun, tmp_path):
    out = tmp_path / "run"
    result = mpirun(TRAIN + ["--epochs", "1", "--out", out])
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("epoch 1/1") == 1 and result.stdout.count("test accuracy") == 1
    assert "2 ranks, global batch 200" in result.stdout
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint.safetensors", "config.json", "metrics.jsonl",
                                                     "test.json"]
    assert [json.loads(line)["epoch"] for line in (out / "metrics.jsonl").read_text().splitlines()] == [1]
    first = load(out / "checkpoint.safetensors")["model"]
    assert "conv1.weight" in first

    result = mpirun(["-m", "nn.cli", "train", "--distributed", "--device", "cpu", "--resume", out, "--epochs", "2",
                     "--no-progress"])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "resuming" in result.stdout and result.stdout.count("epoch 2/2") == 1
    assert [json.loads(line)["epoch"] for line in (out / "metrics.jsonl").read_text().splitlines()] == [1, 2]
    state = load(out / "checkpoint.safetensors")
    assert state["progress"]["epoch"] == 2
    assert not np.array_equal(state["model"]["conv1.weight"], first["conv1.weight"])


def train_cli(mpirun, args, timeout=120):
    """``tensorlib train --distributed`` on 2 ranks through workers/train_cli.py (its hooks: environment variables)."""
    return mpirun([worker("train_cli.py"), "train", "--distributed", "--device", "cpu", *args], timeout=timeout)


def rank_reports(stdout):
    return sorted(line for line in stdout.splitlines() if line.startswith("rank ") and "weights" in line)


NEW_RUN = ["--model", "lenet5", "--dataset", "synthetic", "--batch-size", "100", "--no-progress", "--seed", "3"]


def test_plateau_steps_every_rank_on_rank_0s_validation_loss(mpirun, tmp_path, monkeypatch):
    """Only rank 0 validates; every rank must step ReduceLROnPlateau on that loss, or the ranks change the lr at
    different epochs and their weights drift apart."""
    monkeypatch.setenv("STALL_VALIDATION", "1")
    result = train_cli(mpirun, NEW_RUN + ["--scheduler", "plateau", "--epochs", "5", "--out", tmp_path / "run"])
    assert result.returncode == 0, result.stdout + result.stderr
    reports = rank_reports(result.stdout)
    assert len(reports) == 2, result.stdout
    # a constant validation loss: 3 epochs without improvement after the first, the lr divided after epoch 4
    assert all(": lr 0.005," in line for line in reports), reports
    assert reports[0].split(":", 1)[1] == reports[1].split(":", 1)[1], reports  # same lr, same weights


def test_interrupted_and_resumed_run_equals_the_uninterrupted_one(mpirun, tmp_path, capsys, monkeypatch):
    """A stop in the middle of an epoch saves every rank's sums: the resumed epoch's metrics are those of the
    uninterrupted run, and its weights too. A resume under another world size is refused."""
    straight, interrupted = tmp_path / "straight", tmp_path / "interrupted"
    args = NEW_RUN + ["--scheduler", "onecycle", "--epochs", "2"]
    result = train_cli(mpirun, args + ["--out", straight])
    assert result.returncode == 0, result.stdout + result.stderr
    monkeypatch.setenv("STOP_AT", "0,4")
    result = train_cli(mpirun, args + ["--out", interrupted])
    monkeypatch.delenv("STOP_AT")
    assert "stopped during epoch 1 after 4 batches" in result.stdout, result.stdout + result.stderr
    progress = load(interrupted / "checkpoint.safetensors")["progress"]
    assert progress["world_size"] == 2 and [sums["seen"] for sums in progress["sums"]] == [400, 400]
    result = train_cli(mpirun, ["--resume", interrupted, "--no-progress"])
    assert result.returncode == 0, result.stdout + result.stderr
    assert rank_reports(result.stdout)[0].split(":", 1)[1] == rank_reports(result.stdout)[1].split(":", 1)[1]

    def metrics(run):
        lines = (run / "metrics.jsonl").read_text().splitlines()
        return [{k: v for k, v in json.loads(line).items() if k != "images_per_second"} for line in lines]

    assert metrics(interrupted) == metrics(straight)
    a, b = load(straight / "checkpoint.safetensors")["model"], load(interrupted / "checkpoint.safetensors")["model"]
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)

    capsys.readouterr()
    assert cli.main(["train", "--resume", str(straight), "--epochs", "3", "--no-progress"]) == 2  # one process
    assert "trained with world size 2, but this job has world size 1" in capsys.readouterr().err
    assert json.loads((straight / "config.json").read_text())["epochs"] == 2  # nothing written


def test_resume_under_another_world_size_is_refused_in_one_line(mpirun, tmp_path, capsys):
    one = tmp_path / "one"
    assert cli.main(["train", *NEW_RUN, "--epochs", "1", "--scheduler", "onecycle", "--out", str(one)]) == 0
    code = cli.main(["train", "--resume", str(one), "--epochs", "2", "--no-progress"])
    assert code == 0  # the same world size resumes
    capsys.readouterr()
    result = train_cli(mpirun, ["--resume", one, "--epochs", "3", "--no-progress"], timeout=60)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "trained with world size 1, but this job has world size 2" in output, output
    assert "Traceback" not in output
    assert [json.loads(line)["epoch"] for line in (one / "metrics.jsonl").read_text().splitlines()] == [1, 2]


def test_divergence_ends_every_rank_with_one_error_line(mpirun, tmp_path):
    """As in one process: rank 0 prints the one-line error and every rank exits with status 1 (no tracebacks,
    no abort); the new run directory, with no checkpoint in it, is removed."""
    out = tmp_path / "lr10"
    result = train_cli(mpirun, NEW_RUN + ["--lr", "10", "--epochs", "2", "--out", out], timeout=60)
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert output.count("tensorlib train: error:") == 1, output
    assert "training diverged" in output and "on rank" in output and "smaller learning rate" in output
    assert "Traceback" not in output and "failed" not in output and "MPI_ABORT" not in output
    assert not out.exists()


# ---- in this process ------------------------------------------------------------------------------------
@pytest.mark.parametrize("n, replicas", [(10, 2), (11, 2), (7, 3), (2, 4)])
@pytest.mark.parametrize("drop_last", [False, True])
def test_sampler_shards_are_disjoint_padded_and_shuffled_alike(n, replicas, drop_last):
    dataset = list(range(n))
    samplers = [DistributedSampler(dataset, replicas, rank, seed=5, drop_last=drop_last) for rank in range(replicas)]
    for sampler in samplers:
        sampler.set_epoch(3)
    shards = [list(sampler) for sampler in samplers]
    length = n // replicas if drop_last else -(-n // replicas)
    assert all(len(shard) == len(sampler) == length for shard, sampler in zip(shards, samplers))
    taken = np.concatenate(shards).astype(int)
    if drop_last:
        assert len(set(taken)) == len(taken)  # disjoint
    else:
        assert set(taken) == set(range(n))  # everything seen; only the padding repeats
        assert len(taken) - len(set(taken)) == length * replicas - n
    # One permutation from seed + epoch on every rank: interleaving the shards gives it back.
    interleaved = np.stack([np.asarray(shard) for shard in shards], axis=1).reshape(-1)
    expected = np.resize(np.random.default_rng(5 + 3).permutation(n), length * replicas)
    if not drop_last:
        np.testing.assert_array_equal(interleaved, expected)


def test_sampler_epochs_differ_and_repeat():
    sampler = DistributedSampler(range(100), 2, 1, seed=0)
    first = list(sampler)
    sampler.set_epoch(1)
    assert list(sampler) != first
    sampler.set_epoch(0)
    assert list(sampler) == first
    assert list(DistributedSampler(range(6), 2, 1, shuffle=False)) == [1, 3, 5]
    with pytest.raises(ValueError, match="rank"):
        DistributedSampler(range(6), 2, 2)


def test_shard_follows_the_sampler_epoch():
    images = np.arange(10, dtype=np.float32).reshape(10, 1)
    dataset = TensorDataset(images, np.arange(10))
    shard = DistributedShard(dataset, DistributedSampler(dataset, 2, 0, seed=1))
    for epoch in (0, 1):
        shard.set_epoch(epoch)
        indices = shard.sampler.indices()
        assert len(shard) == 5
        np.testing.assert_array_equal(shard.get_batch(np.arange(5))[1].numpy(), indices)
        assert int(shard[2][1].item()) == indices[2]


@pytest.fixture
def single_process_group():
    parallel.init_process_group(device="cpu")
    yield
    parallel.destroy_process_group()


def test_single_process_fallback(single_process_group):
    assert parallel.is_initialized() and parallel.get_rank() == 0 and parallel.get_world_size() == 1
    t = tl.tensor([1.5, -2.0])
    parallel.all_reduce(t, op="mean")
    parallel.broadcast(t, src=0)
    parallel.barrier()
    np.testing.assert_array_equal(t.numpy(), [1.5, -2.0])
    assert parallel.broadcast_object([1, "a"]) == [1, "a"]
    with pytest.raises(ValueError, match="op"):
        parallel.all_reduce(t, op="max")
    with pytest.raises(RuntimeError, match="already"):
        parallel.init_process_group()


def test_ddp_buckets_and_state_dict_in_one_process(single_process_group):
    tl.manual_seed(0)
    model = lenet5()
    ddp = parallel.DistributedDataParallel(model, bucket_cap_mb=0.05)  # ~52 KB: several buckets
    assert len(ddp._grad_buckets) > 1
    assert sum(b.flat.size for b in ddp._grad_buckets) == sum(p.array.size for p in model.parameters())
    images, labels = tl.randn(4, 1, 28, 28), tl.tensor([0, 1, 2, 3])
    from nn.losses import CrossEntropyLoss

    CrossEntropyLoss()(ddp(images), labels).backward()
    before = {name: p.grad.numpy().copy() for name, p in model.named_parameters()}
    model.fc3.bias.grad = None  # a parameter without a gradient gets the (zero) average
    ddp.sync_gradients()
    for name, p in model.named_parameters():
        np.testing.assert_array_equal(p.grad.numpy(), 0 * before[name] if name == "fc3.bias" else before[name])
    assert list(ddp.state_dict()) == list(model.state_dict())
    ddp.load_state_dict(lenet5().state_dict())


def test_plain_process_needs_no_group():
    assert not parallel.is_initialized() and parallel.get_world_size() == 1
    with pytest.raises(RuntimeError, match="init_process_group"):
        parallel.all_reduce(tl.tensor([1.0]))


def test_without_the_nccl_library_one_process_makes_no_communicator(monkeypatch):
    """CuPy imports cupy.cuda.nccl without libnccl (and says so in ``available``): an explicit NCCL backend, or
    several processes, get an error naming what to install; one process on cuda needs no communicator."""
    monkeypatch.setattr(parallel, "nccl_available", lambda: False)
    with pytest.raises(RuntimeError, match="needs the NCCL library.*nvidia-nccl-cu13"):
        parallel.init_process_group(backend="nccl", device="cuda")
    assert not parallel.is_initialized()
    parallel.init_process_group(device="cuda")
    try:
        assert parallel.get_world_size() == 1 and parallel._current().nccl is None
        assert parallel.collective_device() == "cpu"
        t = tl.tensor([2.0, 3.0])
        np.testing.assert_array_equal(parallel.all_reduce(t, op="mean").numpy(), [2.0, 3.0])
    finally:
        parallel.destroy_process_group()
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    with pytest.raises(RuntimeError, match="needs the NCCL library"):
        parallel.init_process_group(device="cuda")


def test_collective_device_is_cuda_only_for_nccl_without_mpi(monkeypatch):
    """Metric sums and stop flags are host values; a torchrun-style NCCL job (no MPI) can only exchange them
    as device arrays."""
    assert parallel.collective_device() == "cpu"  # no group
    for mpi, nccl, expected in ((None, object(), "cuda"), (object(), object(), "cpu"), (object(), None, "cpu")):
        group = parallel._Group(0, 2, 0, mpi, "cuda")
        group.nccl = nccl
        monkeypatch.setattr(parallel, "_group", group)
        assert parallel.collective_device() == expected
