"""nn.data, continued: Generator objects as generator= arguments, the samplers, DataLoader's worker options and
its worker processes."""

import gc
import multiprocessing
import os
import pathlib
import pickle
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

import tensorlib as tl
from nn import init
from nn.data import (
    BatchSampler, DataLoader, Dataset, DistributedSampler, DistributedShard, RandomSampler, SequentialSampler,
    SubsetRandomSampler, TensorDataset, WeightedRandomSampler, get_worker_info, random_split,
)
from tensorlib.random import Generator


class Indices(Dataset):
    """Sample i is (i, 2.5 * i), fetched one call per sample."""

    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, index):
        if not 0 <= index < self.n:
            raise IndexError(index)
        return index, 2.5 * index


def epoch(loader):
    return [[field.numpy().tolist() for field in batch] for batch in loader]


# ---- Generator -------------------------------------------------------------------------------------------
def test_generator_seeding_matches_the_global_generator():
    generator = Generator()
    assert generator.initial_seed() == 67280421310721 and generator.device == "cpu"  # torch's default seed
    assert generator.manual_seed(42) is generator and generator.initial_seed() == 42
    drawn = tl.rand(5, generator=generator).numpy()
    tl.manual_seed(42)
    np.testing.assert_array_equal(drawn, tl.rand(5).numpy())
    assert Generator().manual_seed(-1).initial_seed() == 2**64 - 1  # as torch: negative seeds modulo 2**64
    np.testing.assert_array_equal(tl.randn(3, generator=Generator().manual_seed(-1)).numpy(),
                                  tl.randn(3, generator=Generator().manual_seed(2**64 - 1)).numpy())


def test_generator_seed_is_fresh_and_recorded():
    generator = Generator()
    first, second = generator.seed(), generator.seed()
    assert first != second and generator.initial_seed() == second and 0 <= second < 2**64
    again = tl.rand(4, generator=Generator().manual_seed(second)).numpy()
    np.testing.assert_array_equal(tl.rand(4, generator=generator).numpy(), again)


def test_generator_state_round_trip_replays_the_draws():
    generator = Generator().manual_seed(7)
    tl.rand(3, generator=generator)
    state = generator.get_state()
    assert state.dtype == tl.uint8 and state.ndim == 1
    after = [tl.randn(4, generator=generator).numpy(), tl.randint(0, 100, (5,), generator=generator).numpy()]
    other = Generator().set_state(state)
    assert other.initial_seed() == 7
    replay = [tl.randn(4, generator=other).numpy(), tl.randint(0, 100, (5,), generator=other).numpy()]
    for a, b in zip(after, replay):
        np.testing.assert_array_equal(a, b)


def test_generator_argument_errors():
    generator = Generator()
    for seed in (1.5, "3", True):
        with pytest.raises(RuntimeError, match="seed must be an int"):
            generator.manual_seed(seed)
    for seed in (2**64, -2**63 - 1):
        with pytest.raises(ValueError, match=r"seed must be an int in \[-2\*\*63, 2\*\*64\)"):
            generator.manual_seed(seed)
    with pytest.raises(TypeError, match="uint8 tensor .* got list"):
        generator.set_state([1, 2])
    with pytest.raises(TypeError, match="got a float32 tensor"):
        generator.set_state(tl.zeros(3))
    with pytest.raises(RuntimeError, match="of 45 bytes .* got shape \\(3,\\)"):
        generator.set_state(tl.zeros(3, dtype=tl.uint8))
    with pytest.raises(ValueError, match="device must be"):
        Generator("meta")


def test_generator_is_accepted_wherever_generator_is():
    def draws(generator):
        tensor = tl.empty(4, 3)
        init.kaiming_uniform_(tensor, generator=generator)
        parts = random_split(Indices(10), [4, 6], generator=generator)
        return [tl.rand(2, generator=generator).numpy(), tl.randn(2, generator=generator).numpy(),
                tl.randperm(6, generator=generator).numpy(), tensor.numpy(), parts[0].indices,
                list(RandomSampler(Indices(8), generator=generator)),
                list(SubsetRandomSampler([3, 5, 9], generator=generator)),
                list(WeightedRandomSampler([1.0, 2.0, 3.0], 4, generator=generator)),
                epoch(DataLoader(Indices(7), batch_size=3, shuffle=True, generator=generator))]

    state = tl.get_rng_state()
    first, second = draws(Generator().manual_seed(3)), draws(Generator().manual_seed(3))
    assert tl.get_rng_state() == state  # nothing came from the global generator
    for a, b in zip(first, second):
        np.testing.assert_array_equal(np.asarray(a, dtype=object), np.asarray(b, dtype=object))
    assert draws(Generator().manual_seed(4))[2].tolist() != first[2].tolist()


# ---- samplers --------------------------------------------------------------------------------------------
def test_sequential_and_random_samplers():
    assert list(SequentialSampler(Indices(4))) == [0, 1, 2, 3] and len(SequentialSampler(Indices(4))) == 4
    sampler = RandomSampler(Indices(9), generator=Generator().manual_seed(0))
    first, second = list(sampler), list(sampler)
    assert sorted(first) == sorted(second) == list(range(9)) and first != second  # a fresh draw each epoch
    assert len(sampler) == 9 and all(isinstance(i, int) for i in first)


@pytest.mark.parametrize("n, num_samples", [(5, 13), (7, 3), (4, 8)])
def test_random_sampler_without_replacement_chains_permutations(n, num_samples):
    drawn = list(RandomSampler(Indices(n), num_samples=num_samples, generator=Generator().manual_seed(n)))
    assert len(drawn) == num_samples
    for start in range(0, num_samples - num_samples % n, n):  # each full pass is a permutation
        assert sorted(drawn[start:start + n]) == list(range(n))
    counts = np.bincount(drawn, minlength=n)
    assert counts.min() >= num_samples // n and counts.max() <= -(-num_samples // n)


def test_random_sampler_with_replacement_is_uniform():
    drawn = np.array(list(RandomSampler(Indices(4), replacement=True, num_samples=8000,
                                        generator=Generator().manual_seed(1))))
    assert drawn.min() == 0 and drawn.max() == 3
    np.testing.assert_allclose(np.bincount(drawn) / 8000, 0.25, atol=0.025)


def test_random_sampler_checks_like_torch():
    with pytest.raises(TypeError, match="replacement should be a boolean value, but got replacement=1"):
        RandomSampler(Indices(3), replacement=1)
    for num_samples in (0, 3.0, True):
        with pytest.raises(ValueError, match=f"num_samples should be a positive integer value, but got "
                                             f"num_samples={num_samples!r}"):
            RandomSampler(Indices(3), num_samples=num_samples)
    with pytest.raises(ValueError, match="num_samples=0"):
        RandomSampler(Indices(0))
    with pytest.raises(TypeError, match="generator must be"):
        RandomSampler(Indices(3), generator=3)


def test_subset_random_sampler_permutes_the_given_indices():
    sampler = SubsetRandomSampler([10, 4, 7, 30], generator=Generator().manual_seed(2))
    epochs = [list(sampler) for _ in range(6)]
    assert all(sorted(e) == [4, 7, 10, 30] for e in epochs) and len({tuple(e) for e in epochs}) > 1
    assert len(sampler) == 4


def test_weighted_sampler_with_replacement_follows_the_weights():
    weights = np.array([1.0, 0.0, 3.0, 6.0])
    drawn = np.array(list(WeightedRandomSampler(weights, 20000, generator=Generator().manual_seed(0))))
    assert len(drawn) == 20000 and not (drawn == 1).any()
    np.testing.assert_allclose(np.bincount(drawn, minlength=4) / 20000, weights / weights.sum(), atol=0.015)


def test_weighted_sampler_without_replacement_draws_in_proportion_to_what_is_left():
    weights = np.array([1.0, 2.0, 5.0])
    total = weights.sum()
    # float64 reference: P(i among 2 draws) = w_i/S + sum_{j != i} (w_j/S) * (w_i/(S - w_j))
    included = [weights[i] / total + sum(weights[j] / total * weights[i] / (total - weights[j])
                                         for j in range(3) if j != i) for i in range(3)]
    sampler = WeightedRandomSampler(weights, 2, replacement=False, generator=Generator().manual_seed(5))
    draws = [list(sampler) for _ in range(4000)]
    assert all(len(set(d)) == 2 for d in draws)
    first = np.bincount([d[0] for d in draws], minlength=3) / 4000
    np.testing.assert_allclose(first, weights / total, atol=0.03)
    np.testing.assert_allclose(np.bincount([i for d in draws for i in d], minlength=3) / 4000, included, atol=0.03)


def test_weighted_sampler_without_replacement_puts_zero_weights_last_in_random_order():
    sampler = WeightedRandomSampler([0, 2.0, 0, 0, 1.0], 5, replacement=False, generator=Generator().manual_seed(1))
    draws = [list(sampler) for _ in range(30)]
    assert all(sorted(d[:2]) == [1, 4] and sorted(d[2:]) == [0, 2, 3] for d in draws)
    assert len({tuple(d[2:]) for d in draws}) > 1
    assert sampler.weights.dtype == tl.float64 and len(sampler) == 5


@pytest.mark.parametrize("weights, num_samples, replacement, error, message", [
    ([1, -2, 3], 2, True, RuntimeError, r"probability entry < 0\): weights\[1\] = -2.0"),
    ([1, float("nan"), 0], 2, True, RuntimeError, r"probability entry < 0\): weights\[1\] = nan"),
    ([1, float("inf"), 0], 2, True, RuntimeError, r"infinity or NaN\): weights\[1\] = inf"),
    ([0, 0, 0], 2, True, RuntimeError, "sum of probabilities <= 0"),
    ([], 2, True, RuntimeError, "sum of probabilities <= 0"),
    ([1, 2, 3], 5, False, RuntimeError, "cannot sample n_sample > prob_dist.size\\(-1\\) samples without "
                                        "replacement: num_samples=5 but there are 3 weights"),
    ([[1, 2, 3]], 2, True, ValueError, r"weights should be a 1d sequence but given weights have shape \(1, 3\)"),
    ([1, 2], 0, True, ValueError, "num_samples should be a positive integer value, but got num_samples=0"),
    ([1, 2], 2.0, True, ValueError, "but got num_samples=2.0"),
    ([1, 2], 2, 1, ValueError, "replacement should be a boolean value, but got replacement=1"),
])
def test_weighted_sampler_checks_like_torch(weights, num_samples, replacement, error, message):
    with pytest.raises(error, match=message):
        WeightedRandomSampler(weights, num_samples, replacement=replacement)


def test_batch_sampler():
    assert list(BatchSampler(range(7), 3, False)) == [[0, 1, 2], [3, 4, 5], [6]]
    assert list(BatchSampler(range(7), 3, True)) == [[0, 1, 2], [3, 4, 5]]
    assert (len(BatchSampler(range(7), 3, False)), len(BatchSampler(range(7), 3, True))) == (3, 2)
    for batch_size in (0, 2.0, True):
        with pytest.raises(ValueError, match=f"batch_size should be a positive integer value, but got "
                                             f"batch_size={batch_size!r}"):
            BatchSampler(range(3), batch_size, False)
    with pytest.raises(ValueError, match="drop_last should be a boolean value, but got drop_last=1"):
        BatchSampler(range(3), 2, 1)


def test_loader_builds_torchs_samplers_and_takes_any():
    assert isinstance(DataLoader(Indices(4)).sampler, SequentialSampler)
    loader = DataLoader(Indices(4), batch_size=3, shuffle=True)
    assert isinstance(loader.sampler, RandomSampler) and isinstance(loader.batch_sampler, BatchSampler)
    weighted = DataLoader(Indices(6), batch_size=4, sampler=WeightedRandomSampler([0, 0, 1, 0, 0, 1], 10))
    batches = epoch(weighted)
    assert len(weighted) == 3 and [len(b[0]) for b in batches] == [4, 4, 2]
    assert set(i for b in batches for i in b[0]) <= {2, 5}
    loader = DataLoader(Indices(5), batch_sampler=BatchSampler(SequentialSampler(range(5)), 2, True))
    assert epoch(loader) == [[[0, 1], [0.0, 2.5]], [[2, 3], [5.0, 7.5]]] and loader.batch_size is None


# ---- DataLoader's worker options ------------------------------------------------------------------------
@pytest.mark.parametrize("options, error, message", [
    ({"num_workers": -1}, ValueError, "num_workers option should be non-negative; use num_workers=0 to disable "
                                      "multiprocessing, got num_workers=-1"),
    ({"num_workers": 1.5}, ValueError, "num_workers should be an int .*got 1.5"),
    ({"timeout": -1}, ValueError, "timeout option should be non-negative .*got timeout=-1"),
    ({"prefetch_factor": 2}, ValueError, "prefetch_factor option could only be specified in multiprocessing"),
    ({"num_workers": 2, "prefetch_factor": 0}, ValueError, "prefetch_factor should be a positive int .*got "
                                                           "prefetch_factor=0"),
    ({"persistent_workers": True}, ValueError, "persistent_workers option needs num_workers > 0"),
    ({"multiprocessing_context": "spawn"}, ValueError, "multiprocessing_context can only be used with "
                                                       "multi-process loading"),
    ({"num_workers": 1, "multiprocessing_context": "bogus"}, ValueError, "should specify a valid start method in "
                                                                         ".*got multiprocessing_context='bogus'"),
    ({"num_workers": 1, "multiprocessing_context": 3}, TypeError, "valid context object or a string"),
    ({"num_workers": 1, "worker_init_fn": 3}, TypeError, "worker_init_fn should be callable .*got int 3"),
    ({"num_workers": 1, "prefetch": True}, ValueError, "pass one or the other"),
    ({"drop_last": 1}, ValueError, "drop_last should be a boolean value, but got drop_last=1"),
    ({"generator": 0}, TypeError, "generator must be .*got int"),
])
def test_worker_options_are_checked_like_torch(options, error, message):
    with pytest.raises(error, match=message):
        DataLoader(Indices(4), **options)


def test_pin_memory_and_single_process_options_change_nothing():
    plain = epoch(DataLoader(Indices(5), batch_size=2))
    assert epoch(DataLoader(Indices(5), 2, False, None, None, 0, None, True, False, 0, None, None, None,
                            pin_memory_device="cuda", in_order=True)) == plain
    assert get_worker_info() is None  # the main process is no worker


# ---- worker processes ------------------------------------------------------------------------------------
class Probe(Dataset):
    """Sample i is (i, the worker id, what worker_init_fn left, a draw from the worker's global generator);
    misbehaves at chosen indices."""

    def __init__(self, n, fail_at=None, exit_at=None, sleep_at=None):
        self.n, self.fail_at, self.exit_at, self.sleep_at = n, fail_at, exit_at, sleep_at
        self.marker = -1

    def __len__(self):
        return self.n

    def __getitem__(self, index):
        if index == self.fail_at:
            raise KeyError(f"sample {index} is broken")
        if index == self.exit_at:
            os._exit(3)
        if index == self.sleep_at:
            time.sleep(30)
        info = get_worker_info()
        assert info.dataset is self and info.num_workers >= 1 and info.seed >= 0
        return index, info.id, self.marker, float(tl.rand(()).item())


def mark_worker(worker_id):
    get_worker_info().dataset.marker = 100 + worker_id


def wait_until_dead(processes, timeout=5.0):
    deadline = time.monotonic() + timeout
    while any(p.is_alive() for p in processes) and time.monotonic() < deadline:
        time.sleep(0.01)
    return not any(p.is_alive() for p in processes)


@pytest.mark.parametrize("dataset", [Indices(23), TensorDataset(tl.arange(23), tl.randn(23, 2, dtype=tl.float64))],
                         ids=["per-sample", "get_batch"])
def test_workers_give_the_batches_of_the_calling_process_in_order(dataset):
    def batches(**workers):
        return epoch(DataLoader(dataset, batch_size=4, shuffle=True, generator=Generator().manual_seed(9), **workers))

    expected = batches()
    assert batches(num_workers=2) == expected
    assert batches(num_workers=3, prefetch_factor=1) == expected
    unordered = batches(num_workers=2, in_order=False)
    assert sorted(unordered) == sorted(expected)
    unbatched = DataLoader(dataset, batch_size=None, num_workers=2)
    assert len(unbatched) == 23 and [repr(s) for s in unbatched] == [repr(s) for s in DataLoader(dataset, None)]


def test_workers_run_worker_init_fn_and_are_seeded_apart():
    def run():
        loader = DataLoader(Probe(12), batch_size=2, num_workers=3, worker_init_fn=mark_worker,
                            generator=Generator().manual_seed(1))
        return [batch for batch in loader]

    batches = run()
    for k, (indices, worker_ids, markers, _) in enumerate(batches):
        assert indices.numpy().tolist() == [2 * k, 2 * k + 1]
        assert worker_ids.numpy().tolist() == [k % 3] * 2 and markers.numpy().tolist() == [100 + k % 3] * 2
    draws = [batch[3].numpy() for batch in batches]
    assert len({d.tobytes() for d in draws[:3]}) == 3  # each worker has its own stream ...
    for a, b in zip(draws, [batch[3].numpy() for batch in run()]):
        np.testing.assert_array_equal(a, b)  # ... drawn from the loader's generator: reproducible


def test_worker_errors_are_raised_naming_the_worker():
    loader = DataLoader(Probe(10, fail_at=5), batch_size=2, num_workers=2)
    iterator = iter(loader)
    with pytest.raises(KeyError, match="(?s)Caught KeyError in DataLoader worker process 0.*sample 5 is broken"):
        list(iterator)
    assert wait_until_dead(iterator._pool.processes)

    def broken_init(worker_id):
        raise ValueError(f"no setup for worker {worker_id}")

    with pytest.raises(ValueError, match="(?s)in DataLoader worker process 0.*no setup for worker 0"):
        list(DataLoader(Probe(4), num_workers=2, worker_init_fn=broken_init))
    with pytest.raises(AttributeError, match="(?s)in DataLoader worker process 0 \\(pickling the batch.*Can't pickle"):
        list(DataLoader(Probe(4), batch_size=2, num_workers=2, collate_fn=lambda samples: lambda: samples))


def test_a_dead_worker_is_reported_and_a_stuck_one_times_out():
    started = time.monotonic()
    with pytest.raises(RuntimeError, match=r"worker exited unexpectedly: worker 1 \(pid \d+, exit code 3\)"):
        list(DataLoader(Probe(8, exit_at=3), batch_size=2, num_workers=2))
    loader = DataLoader(Probe(8, sleep_at=2), batch_size=2, num_workers=2, timeout=0.3)
    iterator = iter(loader)
    with pytest.raises(RuntimeError, match="DataLoader timed out after 0.3 seconds"):
        list(iterator)
    assert wait_until_dead(iterator._pool.processes)
    assert time.monotonic() - started < 5


def test_breaking_out_of_an_epoch_stops_the_workers():
    iterator = iter(DataLoader(Probe(400), batch_size=2, num_workers=2))
    next(iterator)
    processes = iterator._pool.processes
    del iterator
    gc.collect()
    assert wait_until_dead(processes)


def test_persistent_workers_serve_every_epoch():
    loader = DataLoader(Probe(10), batch_size=3, num_workers=2, persistent_workers=True, worker_init_fn=mark_worker)
    first = next(iter(loader))  # an abandoned epoch: its late batches must not leak into the next one
    epochs = [[batch[0].numpy().tolist() for batch in loader] for _ in range(2)]
    assert first[0].numpy().tolist() == [0, 1, 2] and epochs == [[[0, 1, 2], [3, 4, 5], [6, 7, 8], [9]]] * 2
    processes = loader._pool.processes
    assert all(p.is_alive() for p in processes)
    old = iter(loader)
    new = iter(loader)
    with pytest.raises(RuntimeError, match="replaced by a later iter"):
        next(old)
    assert next(new)[2].numpy().tolist() == [100] * 3  # worker_init_fn ran once, its state is kept
    del loader, old, new
    gc.collect()
    assert wait_until_dead(processes)


def test_worker_batches_cross_as_pickles():
    batch = next(iter(DataLoader(TensorDataset(tl.arange(6)), batch_size=3, num_workers=1)))
    assert isinstance(batch[0], tl.Tensor) and batch[0].dtype == tl.int64
    assert pickle.loads(pickle.dumps(batch))[0].numpy().tolist() == [0, 1, 2]


def test_persistent_workers_follow_the_epochs_of_a_distributed_shard():
    dataset = TensorDataset(tl.arange(10))

    def epochs(batch_size, **workers):
        sampler = DistributedSampler(dataset, num_replicas=2, rank=1, seed=4)
        loader = DataLoader(DistributedShard(dataset, sampler), batch_size=batch_size, **workers)
        seen = []
        for e in range(3):
            loader.dataset.set_epoch(e)  # as the Trainer does before each epoch
            samples = [np.atleast_1d(batch[0].numpy()).tolist() for batch in loader]
            seen.append(sum(samples, []))
            assert seen[-1] == sampler.indices().tolist()
        return seen

    expected = epochs(2)
    assert len({tuple(shard) for shard in expected}) == 3  # the shard changes with the epoch
    assert epochs(2, num_workers=2, persistent_workers=True) == expected
    assert epochs(None, num_workers=2, persistent_workers=True) == expected


class FirstWaits(Dataset):
    """Sample 0 waits in a worker (up to 10 s) until the main process sets ``go``; the others come at once."""

    def __init__(self, n):
        self.n, self.go = n, multiprocessing.get_context("fork").Event()

    def __len__(self):
        return self.n

    def __getitem__(self, index):
        if index == 0 and get_worker_info() is not None:
            self.go.wait(10)
        return index


@pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(), reason="the event reaches forked workers")
def test_out_of_order_loading_hands_out_a_batch_as_soon_as_it_is_ready():
    dataset = FirstWaits(4)
    iterator = iter(DataLoader(dataset, num_workers=2, in_order=False))
    first = next(iterator)  # worker 0 is stuck on batch 0: worker 1's batch 1 comes first
    dataset.go.set()
    assert first.tolist() == [1] and sorted(batch.item() for batch in iterator) == [0, 2, 3]


def test_a_loader_alive_at_interpreter_exit_lets_it_exit():
    """Loaders whose workers never got a task, still referenced when the interpreter exits (their close()
    runs during finalisation, where no new thread can start): the process exits at once, its workers reaped."""
    script = textwrap.dedent("""
        import faulthandler
        faulthandler.dump_traceback_later(8, exit=True)  # a hang fails with the stack instead of blocking
        import tensorlib as tl
        from nn.data import DataLoader, TensorDataset
        persistent = DataLoader(TensorDataset(tl.arange(4)), batch_size=4, num_workers=2, persistent_workers=True)
        print([batch[0].tolist() for batch in persistent])
        iterator = iter(DataLoader(TensorDataset(tl.arange(4)), batch_size=4, num_workers=2))
        print(next(iterator)[0].tolist())
        print(*[p.pid for p in persistent._pool.processes + iterator._pool.processes])
    """)
    root = pathlib.Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")]))}
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=15, env=env)
    assert done.returncode == 0, done.stderr
    assert time.monotonic() - started < 8
    lines = done.stdout.splitlines()
    assert lines[:2] == ["[[0, 1, 2, 3]]", "[0, 1, 2, 3]"]
    pids = [int(pid) for pid in lines[2].split()]
    deadline = time.monotonic() + 2
    while any(os.path.exists(f"/proc/{pid}") for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not any(os.path.exists(f"/proc/{pid}") for pid in pids), "a worker outlived its main process"


class RandomSamples(Dataset):
    """Sample i: (i, a draw from the global generator), on ``device``."""

    def __init__(self, n, device):
        self.n, self.device = n, device

    def __len__(self):
        return self.n

    def __getitem__(self, index):
        return tl.tensor(index, device=self.device), tl.rand(()).item()


def test_forked_workers_refuse_a_dataset_of_device_data(tier):
    with pytest.raises(RuntimeError, match="num_workers=2 forks worker processes, but the dataset's sample 0 holds "
                                           "a Tensor on 'cuda'.*multiprocessing_context='spawn'"):
        list(DataLoader(TensorDataset(tl.arange(6, device="cuda")), batch_size=2, num_workers=2))
    raw = tl.arange(3, device="cuda").array  # a CuPy array on a GPU, a simulated device array in the simulator
    with pytest.raises(RuntimeError, match=f"num_workers=1 .*sample 2 holds a {type(raw).__name__} on 'cuda'"):
        iter(DataLoader([{"x": [1, 2]}, {"x": [3, 4]}, {"x": [5, raw]}], batch_size=None, num_workers=1,
                        sampler=[2, 0, 1]))
    assert [batch[0].tolist() for batch in DataLoader(RandomSamples(4, "cuda"), batch_size=2)] == [[0, 1], [2, 3]]

    def draws_after_an_epoch(dataset):
        tl.manual_seed(3)
        batches = [batch[0].tolist() for batch in DataLoader(dataset, batch_size=2, shuffle=True, num_workers=2)]
        return batches, tl.rand(4).tolist()

    # host data loads in forked workers, and looking at the first sample leaves the global generator alone
    batches, draws = draws_after_an_epoch(RandomSamples(4, "cpu"))
    assert (sorted(sum(batches, [])), draws) == ([0, 1, 2, 3], draws_after_an_epoch(TensorDataset(tl.arange(4)))[1])
