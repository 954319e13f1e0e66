"""nn.parallel and DistributedSampler: 2-rank jobs under mpiexec (collectives, DDP against one process, a failing
rank, the CLI) and the single-process fallback in this process."""

import json
from pathlib import Path

import numpy as np
import pytest

import tensorlib as tl
from nn import parallel
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
    assert sum(b.flat.size for b in ddp._grad_buckets) == sum(p.data.size for p in model.parameters())
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
