"""nn.data where it meets PyTorch's API edges: subclasses that override __getitem__ (the get_batch fast path
must not bypass them), TensorDataset batches that keep the graph, Subset indices, random_split's warning,
IterableDataset/ChainDataset (in process and in workers) and StackDataset."""

import math
import warnings

import numpy as np
import pytest

import tensorlib as tl
from nn.data import (
    ChainDataset, ConcatDataset, DataLoader, Dataset, ImageDataset, IterableDataset, StackDataset, Subset,
    TensorDataset, get_worker_info, random_split,
)
from nn.data.dataset import get_batch_applies
from nn.data.transforms import ToTensor


def plain(batch):
    """A batch as nested Python lists (tensors as their values)."""
    if isinstance(batch, (list, tuple)):
        return [plain(part) for part in batch]
    return batch.tolist() if isinstance(batch, tl.Tensor) else batch


def batches(loader):
    return [plain(batch) for batch in loader]


def arange_dataset(n, cls=TensorDataset):
    return cls(tl.tensor(np.arange(n, dtype=np.float64)), tl.tensor(np.arange(n)))


# ---- the get_batch fast path and __getitem__ overrides ---------------------------------------------------------
class Doubled(TensorDataset):
    """A transform and a label remap in __getitem__, get_batch inherited."""

    def __getitem__(self, index):
        x, y = super().__getitem__(index)
        return x * 2, y + 100


class Shifted(Subset):
    def __getitem__(self, index):
        x, y = super().__getitem__(index)
        return x + 0.5, y


class Gathering(TensorDataset):
    """Overrides both: its get_batch (which counts its calls) still serves the loader."""

    calls = 0

    def __getitem__(self, index):
        x, y = super().__getitem__(index)
        return -x, y

    def get_batch(self, indices):
        Gathering.calls += 1
        x, y = super().get_batch(indices)
        return [-x, y]


def test_an_overridden_getitem_is_not_bypassed():
    assert batches(DataLoader(Doubled(*arange_dataset(5).tensors), batch_size=2)) == [
        [[0.0, 2.0], [100, 101]], [[4.0, 6.0], [102, 103]], [[8.0], [104]]]
    doubled = Doubled(*arange_dataset(6).tensors)
    assert batches(DataLoader(Subset(doubled, [4, 1]), batch_size=2)) == [[[8.0, 2.0], [104, 101]]]
    for part in random_split(doubled, [0.5, 0.5]):
        for (x, y), index in zip(DataLoader(part, batch_size=3), [part.indices]):
            np.testing.assert_array_equal(x.numpy(), 2.0 * index)
            np.testing.assert_array_equal(y.numpy(), 100 + index)
    shifted = Shifted(arange_dataset(4), [3, 2])
    assert batches(DataLoader(shifted, batch_size=2)) == [[[3.5, 2.5], [3, 2]]]
    assert batches(DataLoader(StackDataset(doubled, arange_dataset(6)), batch_size=2))[0] == [
        [[0.0, 2.0], [100, 101]], [[0.0, 1.0], [0, 1]]]


def test_the_fast_path_stays_where_it_belongs():
    Gathering.calls = 0
    assert batches(DataLoader(Gathering(*arange_dataset(4).tensors), batch_size=2)) == [
        [[0.0, -1.0], [0, 1]], [[-2.0, -3.0], [2, 3]]]
    assert Gathering.calls == 2
    assert get_batch_applies(arange_dataset(3)) and get_batch_applies(Subset(arange_dataset(3), [0]))
    assert not get_batch_applies(Doubled(tl.zeros(2))) and not get_batch_applies(Shifted(arange_dataset(3), [0]))
    assert not get_batch_applies([1, 2, 3])


class Inverted(ImageDataset):
    def __getitem__(self, index):
        image, label = super().__getitem__(index)
        return 1 - image, label


def test_an_image_dataset_subclass_overriding_getitem_is_fetched_per_sample():
    images = np.random.default_rng(0).integers(0, 256, (5, 3, 4), dtype=np.uint8)
    dataset = Inverted(images, np.arange(5), split=None, transform=ToTensor())
    (batch, labels), = list(DataLoader(dataset, batch_size=5))
    np.testing.assert_allclose(batch.numpy(), 1 - images[:, None].astype(np.float64) / 255, rtol=1e-6)
    assert labels.tolist() == list(range(5))


# ---- TensorDataset and the graph ----------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [tl.float32, tl.float64])
@pytest.mark.parametrize("shape", [(7,), (6, 3), (5, 2, 3)])
def test_tensor_dataset_batches_keep_the_graph(dtype, shape):
    rng = np.random.default_rng(1)
    values = rng.standard_normal(shape)
    x = tl.tensor(values, dtype=dtype, requires_grad=True)
    dataset = TensorDataset(x, tl.tensor(np.arange(shape[0])))
    weights = rng.standard_normal(shape[1:])
    total, counts = None, np.zeros(shape[0])
    for sampled in (dataset, Subset(dataset, [shape[0] - 1, 0, 0, 1])):
        for xb, yb in DataLoader(sampled, batch_size=3, shuffle=True):
            assert xb.requires_grad and not yb.requires_grad and xb.dtype == dtype
            np.testing.assert_array_equal(xb.detach().numpy(), values[yb.numpy()].astype(xb.dtype))
            loss = (xb * tl.tensor(weights, dtype=dtype)).sum()
            total = loss if total is None else total + loss
            np.add.at(counts, yb.numpy(), 1)
    total.backward()
    want = counts.reshape((-1,) + (1,) * len(shape[1:])) * weights
    np.testing.assert_allclose(x.grad.numpy(), want, rtol=1e-5 if dtype == tl.float32 else 1e-12)


def test_tensor_dataset_without_grad_gives_plain_batches():
    xb, _ = next(iter(DataLoader(arange_dataset(4), batch_size=2)))
    assert not xb.requires_grad and xb.is_leaf


# ---- Subset --------------------------------------------------------------------------------------------------------
class Recorder(Dataset):
    def __len__(self):
        return 10

    def __getitem__(self, index):
        return ("list", list(index)) if isinstance(index, list) else ("one", index)


def test_subset_keeps_its_indices_and_takes_a_list():
    indices = [7, 2, 5]
    subset = Subset(arange_dataset(10), indices)
    assert subset.indices is indices
    assert [v.tolist() for v in subset[[0, 2]]] == [[7.0, 5.0], [7, 5]]
    assert Subset(Recorder(), np.array([7, 2, 5]))[[2, 0]] == ("list", [5, 7])
    index = Subset(Recorder(), np.array([7, 2, 5]))[1][1]
    assert type(index) is int and index == 2
    with pytest.raises(IndexError):
        subset[3]
    for given in ([7, 2, 5], np.array([7, 2, 5]), (7, 2, 5), range(7, 1, -5)):
        chosen = [int(i) for i in given]
        want = [[[float(i) for i in chosen[start:start + 2]], chosen[start:start + 2]]
                for start in range(0, len(chosen), 2)]
        assert batches(DataLoader(Subset(arange_dataset(10), given), batch_size=2)) == want


def test_random_split_warns_for_an_empty_split():
    with pytest.warns(UserWarning, match="Length of split at index 1 is 0. This might result in an empty dataset"):
        parts = random_split(range(5), [0.9, 0.1])
    assert [len(part) for part in parts] == [5, 0]
    with pytest.warns(UserWarning, match="index 2 is 0"):
        random_split(range(2), [0.5, 0.5, 0.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert [len(part) for part in random_split(range(5), [5, 0])] == [5, 0]  # given as counts: no warning
        random_split(range(4), [0.5, 0.5])


# ---- IterableDataset ------------------------------------------------------------------------------------------------
class Stream(IterableDataset):
    """range(start, end); in a worker, that worker's contiguous share of it (PyTorch's documented sharding)."""

    def __init__(self, start, end):
        self.start, self.end = start, end

    def __iter__(self):
        info = get_worker_info()
        if info is None:
            return iter(range(self.start, self.end))
        per_worker = int(math.ceil((self.end - self.start) / info.num_workers))
        first = self.start + info.id * per_worker
        return iter(range(first, min(first + per_worker, self.end)))

    def __len__(self):
        return self.end - self.start


class Unsized(IterableDataset):
    def __iter__(self):
        yield from ({"x": np.full(2, i, dtype=np.float32), "y": i} for i in range(3))


@pytest.mark.parametrize("batch_size, drop_last, want", [
    (3, False, [[3, 4, 5], [6, 7, 8], [9, 10]]), (3, True, [[3, 4, 5], [6, 7, 8]]),
    (8, False, [[3, 4, 5, 6, 7, 8, 9, 10]]), (None, False, [3, 4, 5, 6, 7, 8, 9, 10]),
])
def test_an_iterable_dataset_is_batched_in_stream_order(batch_size, drop_last, want):
    loader = DataLoader(Stream(3, 11), batch_size=batch_size, drop_last=drop_last)
    assert batches(loader) == want == batches(loader)  # each epoch streams the dataset again
    assert len(loader) == len(want)
    assert batches(DataLoader(Stream(3, 11), batch_size=batch_size, drop_last=drop_last, prefetch=True)) == want


def test_an_iterable_dataset_of_mappings_and_without_a_length():
    batch, = list(DataLoader(Unsized(), batch_size=4))
    np.testing.assert_array_equal(batch["x"].numpy(), np.repeat(np.arange(3, dtype=np.float32)[:, None], 2, axis=1))
    assert batch["y"].tolist() == [0, 1, 2]
    with pytest.raises(TypeError, match="Unsized has no len()"):  # a TypeError, so that list(loader) works
        len(DataLoader(Unsized()))


@pytest.mark.parametrize("option, value", [("shuffle", True), ("sampler", [0, 1]), ("batch_sampler", [[0]])])
def test_an_iterable_dataset_refuses_an_order(option, value):
    with pytest.raises(ValueError, match=rf"DataLoader with IterableDataset: expected unspecified {option} option, "
                                         rf"but got {option}="):
        DataLoader(Stream(0, 3), **{option: value})
    DataLoader(Stream(0, 3), shuffle=False)


def test_workers_stream_their_shares_in_turn():
    # PyTorch 2.13 gives these batches (worker 0 streams 3..8, worker 1 9..13; a finished worker is skipped)
    assert batches(DataLoader(Stream(3, 14), batch_size=2, num_workers=2)) == [
        [3, 4], [9, 10], [5, 6], [11, 12], [7, 8], [13]]
    loader = DataLoader(Stream(3, 14), batch_size=2, num_workers=3, drop_last=True, persistent_workers=True)
    assert batches(loader) == [[3, 4], [7, 8], [11, 12], [5, 6], [9, 10]] == batches(loader)


def test_chain_dataset_and_adding_streams():
    assert batches(DataLoader(Stream(0, 5) + Stream(10, 12), batch_size=4)) == [[0, 1, 2, 3], [4, 10, 11]]
    chained = ChainDataset([Stream(0, 2), Stream(5, 6)])
    assert list(chained) == [0, 1, 5] and len(chained) == 3
    with pytest.raises(TypeError, match="ChainDataset only supports IterableDataset, got a list"):
        list(ChainDataset([Stream(0, 2), [1, 2]]))
    with pytest.raises(TypeError, match=r"ConcatDataset does not support IterableDataset \(datasets\[1\]"):
        ConcatDataset([arange_dataset(2), Stream(0, 2)])


# ---- StackDataset -----------------------------------------------------------------------------------------------
def test_stack_dataset_samples_and_batches():
    rng = np.random.default_rng(2)
    images, labels = rng.standard_normal((6, 2, 3)), rng.integers(0, 5, 6)
    stacked = StackDataset(TensorDataset(tl.tensor(images)), list(labels))
    assert len(stacked) == 6
    assert stacked[4][1] == labels[4] and np.array_equal(stacked[4][0][0].numpy(), images[4])
    (image_batch,), label_batch = next(iter(DataLoader(stacked, batch_size=4)))
    np.testing.assert_array_equal(image_batch.numpy(), images[:4])
    assert label_batch.tolist() == labels[:4].tolist()
    named = StackDataset(image=TensorDataset(tl.tensor(images)), label=TensorDataset(tl.tensor(labels)))
    batch = next(iter(DataLoader(named, batch_size=6)))
    assert list(batch) == ["image", "label"]
    np.testing.assert_array_equal(batch["image"][0].numpy(), images)
    np.testing.assert_array_equal(batch["label"][0].numpy(), labels)


def test_stack_dataset_errors():
    with pytest.raises(ValueError, match=r"size mismatch between datasets: their lengths are \{0: 3, 1: 4\}"):
        StackDataset([1, 2, 3], [1, 2, 3, 4])
    with pytest.raises(ValueError, match="at least one dataset"):
        StackDataset()
    with pytest.raises(ValueError, match="either as arguments .* or as keyword arguments .*, but both were given"):
        StackDataset([1], a=[2])
