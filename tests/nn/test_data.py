"""nn.data: datasets, DataLoader semantics (order, batching, shuffling, prefetch), collate, transforms."""

import collections
import gc
import threading
import time

import numpy as np
import pytest

import tensorlib as tl
from nn.data import (
    ConcatDataset, DataLoader, Dataset, ImageDataset, Subset, TensorDataset, default_collate, default_convert,
    random_split,
)
from nn.data import transforms as T
from tensorlib.random import Generator


class Indices(Dataset):
    """Sample i is (i, 2.5 * i): no get_batch, so the loader takes the per-sample path (int64 and float64 batches,
    as PyTorch collates Python ints and floats)."""

    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, index):
        if not 0 <= index < self.n:
            raise IndexError(index)
        return index, 2.5 * index


def index_dataset(kind, n):
    if kind == "per-sample":
        return Indices(n)
    return TensorDataset(tl.arange(n), tl.tensor(2.5 * np.arange(n), dtype=tl.float64))


def epoch(loader):
    return [(x.array.tolist(), y.array.tolist()) for x, y in loader]


def seen(loader):
    return [i for xs, _ in epoch(loader) for i in xs]


# ---- datasets ------------------------------------------------------------------------------------
def test_tensor_dataset_samples_and_length():
    x, y = tl.randn(5, 3), tl.tensor([0, 1, 2, 3, 4])
    dataset = TensorDataset(x, y)
    assert len(dataset) == 5
    sample_x, sample_y = dataset[3]
    np.testing.assert_array_equal(sample_x.array, x.array[3])
    assert sample_y.item() == 3


def test_tensor_dataset_rejects_mismatched_first_dims():
    with pytest.raises(ValueError, match=r"\(5, 3\).*\(4,\)"):
        TensorDataset(tl.randn(5, 3), tl.zeros(4))


def test_concat_dataset_and_add():
    both = Indices(3) + Indices(2)
    assert isinstance(both, ConcatDataset) and len(both) == 5
    assert [both[i] for i in range(5)] == [(0, 0.0), (1, 2.5), (2, 5.0), (0, 0.0), (1, 2.5)]
    assert both[-1] == (1, 2.5) and both[-5] == (0, 0.0)
    with pytest.raises(ValueError, match="should not exceed"):
        both[-6]
    with pytest.raises(IndexError, match="out of range"):
        both[5]
    with pytest.raises(ValueError, match="empty"):
        ConcatDataset([])
    assert seen(DataLoader(both, batch_size=2)) == [0, 1, 2, 0, 1]


def test_subset_maps_indices():
    subset = Subset(Indices(10), [7, 2, 5])
    assert len(subset) == 3 and [subset[i][0] for i in range(3)] == [7, 2, 5]


@pytest.mark.parametrize("lengths, expected", [([3, 7], [3, 7]), ([0.5, 0.5], [5, 5]), ([0.33, 0.33, 0.34], [4, 3, 3])])
def test_random_split_lengths_are_disjoint_and_cover(lengths, expected):
    parts = random_split(Indices(10), lengths, generator=Generator().manual_seed(0))
    assert [len(p) for p in parts] == expected
    members = [p[i][0] for p in parts for i in range(len(p))]
    assert sorted(members) == list(range(10))


def test_random_split_is_reproducible_with_a_seed():
    def split(generator):
        return [part.indices.tolist() for part in random_split(Indices(20), [0.5, 0.5], generator=generator)]

    assert split(Generator().manual_seed(3)) == split(np.random.default_rng(3)) != split(Generator().manual_seed(4))
    with pytest.raises(TypeError, match="generator must be .* got int"):
        split(3)  # as in PyTorch, a seed is not a generator
    tl.manual_seed(1)
    first = split(None)
    tl.manual_seed(1)
    assert split(None) == first


def test_random_split_rejects_wrong_total():
    with pytest.raises(ValueError, match="sum to 9.*10 samples"):
        random_split(Indices(10), [4, 5])


# ---- loader semantics ------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["per-sample", "fast"])
@pytest.mark.parametrize("batch_size", [1, 3, 4, 10, 11])
@pytest.mark.parametrize("shuffle", [False, True])
def test_every_sample_once_per_epoch_in_batches(kind, batch_size, shuffle):
    loader = DataLoader(index_dataset(kind, 10), batch_size=batch_size, shuffle=shuffle,
                        generator=Generator().manual_seed(0))
    batches = epoch(loader)
    sizes = [len(xs) for xs, _ in batches]
    assert sizes == [batch_size] * (10 // batch_size) + ([10 % batch_size] if 10 % batch_size else [])
    assert len(loader) == len(batches)
    indices = [i for xs, _ in batches for i in xs]
    assert sorted(indices) == list(range(10))
    assert (indices == list(range(10))) != shuffle
    assert [y for _, ys in batches for y in ys] == [2.5 * i for i in indices]


@pytest.mark.parametrize("kind", ["per-sample", "fast"])
def test_drop_last(kind):
    loader = DataLoader(index_dataset(kind, 10), batch_size=4, drop_last=True)
    assert len(loader) == 2
    assert [xs for xs, _ in epoch(loader)] == [[0, 1, 2, 3], [4, 5, 6, 7]]


@pytest.mark.parametrize("kind", ["per-sample", "fast"])
def test_batch_dtypes_match_between_paths(kind):
    x, y = next(iter(DataLoader(index_dataset(kind, 10), batch_size=4)))
    assert (x.dtype, y.dtype, x.shape, y.shape) == (tl.int64, tl.float64, (4,), (4,))


def test_shuffle_follows_manual_seed_and_changes_across_epochs():
    loader = DataLoader(Indices(50), batch_size=8, shuffle=True)
    tl.manual_seed(7)
    first, second = seen(loader), seen(loader)
    assert first != second
    tl.manual_seed(7)
    assert seen(loader) == first and seen(loader) == second


def test_shuffle_with_a_seeded_generator_is_reproducible():
    def two_epochs(generator):
        loader = DataLoader(Indices(50), batch_size=8, shuffle=True, generator=generator)
        return seen(loader), seen(loader)

    first, second = two_epochs(Generator().manual_seed(3))
    assert first != second and two_epochs(np.random.default_rng(3)) == (first, second)
    assert two_epochs(Generator().manual_seed(4)) != (first, second)


@pytest.mark.parametrize("batch_size", [0, -1, True, 2.0])
def test_batch_size_must_be_a_positive_int(batch_size):
    with pytest.raises(ValueError, match=f"batch_size should be a positive integer value, but got "
                                         f"batch_size={batch_size!r}"):
        DataLoader(Indices(3), batch_size=batch_size)


def test_batch_size_none_yields_unbatched_converted_samples():
    loader = DataLoader(TensorDataset(np.arange(3), np.arange(3) * 2.5), batch_size=None)
    samples = list(loader)
    assert len(loader) == 3 and [(x.shape, float(y.item())) for x, y in samples] == [((), 0.0), ((), 2.5), ((), 5.0)]
    assert list(DataLoader(Indices(2), batch_size=None)) == [[0, 0.0], [1, 2.5]]  # tuples become lists, as torch
    assert list(DataLoader(Indices(2), batch_size=None, collate_fn=lambda s: s[0])) == [0, 1]
    with pytest.raises(ValueError, match="mutually exclusive with drop_last"):
        DataLoader(Indices(2), batch_size=None, drop_last=True)


def test_sampler_and_batch_sampler():
    loader = DataLoader(Indices(6), batch_size=2, sampler=[5, 0, 3])
    assert len(loader) == 2 and seen(loader) == [5, 0, 3]
    loader = DataLoader(index_dataset("fast", 6), batch_sampler=[[4, 1, 2], [0]])
    assert len(loader) == 2 and [xs for xs, _ in epoch(loader)] == [[4, 1, 2], [0]]
    with pytest.raises(ValueError, match="mutually exclusive with shuffle"):
        DataLoader(Indices(6), sampler=[0], shuffle=True)
    with pytest.raises(ValueError, match="batch_sampler option is mutually exclusive"):
        DataLoader(Indices(6), batch_size=2, batch_sampler=[[0]])


def test_custom_collate_fn_receives_the_samples():
    loader = DataLoader(TensorDataset(tl.arange(6)), batch_size=4, collate_fn=lambda samples: len(samples))
    assert list(loader) == [4, 2]


def test_fast_path_matches_per_sample_collate():
    dataset = TensorDataset(tl.randn(9, 2, 3), tl.arange(9))
    subset = Subset(dataset, [8, 1, 4, 6])
    for data in (dataset, subset):
        indices = np.array([3, 0, 2])
        fast = data.get_batch(indices)
        slow = default_collate([data[int(i)] for i in indices])
        for a, b in zip(fast, slow):
            assert a.dtype == b.dtype
            np.testing.assert_array_equal(a.array, b.array)


def test_image_dataset_fast_path_applies_transforms_like_per_sample():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(12, 10, 10, 3), dtype=np.uint8)
    transform = T.Compose([T.RandomCrop(8, padding=1), T.RandomHorizontalFlip(), T.ToTensor(),
                           T.Normalize((0.5, 0.4, 0.3), (0.2, 0.25, 0.3))])
    dataset = ImageDataset(images, np.arange(12) % 3, "train", transform=transform)
    indices = np.array([5, 0, 11, 3])
    tl.manual_seed(2)
    fast_images, fast_labels = dataset.get_batch(indices)
    tl.manual_seed(2)
    slow_images, slow_labels = default_collate([dataset[int(i)] for i in indices])
    assert fast_images.shape == (4, 3, 8, 8) and fast_images.dtype == tl.float32
    np.testing.assert_allclose(fast_images.array, slow_images.array, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(fast_labels.array, slow_labels.array)


# ---- prefetch ----------------------------------------------------------------------------------------
def prefetch_threads():
    return [t for t in threading.enumerate() if t.name == "nn.data prefetch"]


def wait_for_no_prefetch_threads(timeout=5.0):
    deadline = time.monotonic() + timeout
    while prefetch_threads() and time.monotonic() < deadline:
        time.sleep(0.01)
    return not prefetch_threads()


@pytest.mark.parametrize("kind", ["per-sample", "fast"])
def test_prefetch_gives_identical_batches(kind):
    def batches(prefetch):
        tl.manual_seed(5)
        return epoch(DataLoader(index_dataset(kind, 23), batch_size=4, shuffle=True, prefetch=prefetch))

    assert batches(True) == batches(False)
    assert wait_for_no_prefetch_threads()


class Counting(Indices):
    def __init__(self, n, fail_at=None):
        super().__init__(n)
        self.fetched, self.fail_at = [], fail_at

    def __getitem__(self, index):
        if index == self.fail_at:
            raise KeyError(f"sample {index} is broken")
        self.fetched.append(index)
        return super().__getitem__(index)


def test_prefetch_stays_one_batch_ahead():
    dataset = Counting(20)
    iterator = iter(DataLoader(dataset, batch_size=2, prefetch=True))
    next(iterator)
    time.sleep(0.05)
    assert len(dataset.fetched) <= 4  # the batch in hand and the next one
    assert len(list(iterator)) == 9


def test_prefetch_reraises_dataset_errors_in_the_consumer():
    loader = DataLoader(Counting(10, fail_at=5), batch_size=2, prefetch=True)
    with pytest.raises(KeyError, match="sample 5 is broken"):
        list(loader)
    assert wait_for_no_prefetch_threads()


def test_breaking_out_of_a_prefetching_loop_stops_the_thread():
    loader = DataLoader(Indices(1000), batch_size=2, prefetch=True)
    for i, _ in enumerate(loader):
        if i == 3:
            break
    gc.collect()
    assert wait_for_no_prefetch_threads()


# ---- collate ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("samples, dtype, values", [
    ([1, 2, 3], tl.int64, [1, 2, 3]),
    ([0.5, 1.5], tl.float64, [0.5, 1.5]),            # Python floats: float64, as torch.tensor(batch, dtype=float64)
    ([1.5, 2], tl.float64, [1.5, 2.0]),
    ([1, 2.5], tl.float32, [1.0, 2.5]),              # ints first: inferred over the list, float -> default dtype
    ([True, 2], tl.int64, [1, 2]),                   # not truncated to bool
    ([True, False], tl.bool_, [True, False]),
    ([np.int32(1), np.int32(2)], tl.int32, [1, 2]),  # NumPy scalars keep their dtype ...
    ([np.int32(1), np.float32(2.5)], tl.float32, [1.0, 2.5]),  # ... promoted as PyTorch promotes
    ([np.uint8(1), np.int8(-2)], np.int16, [1, -2]),
    ([np.float32(1), 2.5], tl.float32, [1.0, 2.5]),
    ([1, np.float64(2.5)], tl.float64, [1.0, 2.5]),
])
def test_collate_numbers_match_torch(samples, dtype, values):
    batch = default_collate(samples)
    assert batch.dtype == dtype and batch.array.tolist() == values


def test_collate_arrays_and_tensors_keep_dtype_and_stack_on_dim_0():
    arrays = [np.full((2, 3), i, dtype=np.float64) for i in range(4)]
    stacked = default_collate(arrays)
    assert stacked.shape == (4, 2, 3) and stacked.dtype == tl.float64
    np.testing.assert_array_equal(stacked.array[2], arrays[2])
    tensors = default_collate([tl.tensor(a, dtype=tl.float32) for a in arrays])
    assert isinstance(tensors, tl.Tensor) and tensors.shape == (4, 2, 3) and tensors.dtype == tl.float32
    assert default_collate([np.array(1.5), np.array(2.5)]).array.tolist() == [1.5, 2.5]


@pytest.mark.parametrize("first, second, dtype", [
    (np.zeros(2, np.int32), np.full(2, 1.5, np.float32), tl.float32),  # PyTorch's promotion, not NumPy's float64
    (np.zeros(2, np.float32), np.full(2, 1.5, np.float64), tl.float64),
    (tl.zeros(2, dtype=tl.int32), tl.full((2,), 1.5), tl.float32),
    (np.zeros(2), tl.full((2,), 1.5), tl.float64),
])
def test_collate_mixed_dtypes_promote(first, second, dtype):
    batch = default_collate([first, second])
    assert batch.dtype == dtype and batch.array.tolist() == [[0, 0], [1.5, 1.5]]


def test_collate_containers_elementwise():
    Pair = collections.namedtuple("Pair", "image label")
    batch = default_collate([(np.zeros(2, np.float32), 1, "a"), (np.ones(2, np.float32), 2, "b")])
    assert isinstance(batch, list) and batch[0].shape == (2, 2) and batch[1].array.tolist() == [1, 2]  # torch: a list
    assert batch[2] == ("a", "b")
    images, labels, names = batch
    as_list = default_collate([[1, 2.0], [3, 4.0]])
    assert isinstance(as_list, list) and as_list[0].dtype == tl.int64 and as_list[1].dtype == tl.float64
    named = default_collate([Pair(np.zeros(3), 0), Pair(np.ones(3), 1)])
    assert isinstance(named, Pair) and named.image.shape == (2, 3)
    nested = default_collate([{"x": 1.0, "meta": {"id": 4}}, {"x": 2.0, "meta": {"id": 5}}])
    assert nested["x"].array.tolist() == [1.0, 2.0] and nested["meta"]["id"].array.tolist() == [4, 5]
    ordered = default_collate([collections.OrderedDict(b=1, a=2), collections.OrderedDict(b=3, a=4)])
    assert type(ordered) is collections.OrderedDict and list(ordered) == ["b", "a"]
    assert default_collate([collections.defaultdict(int, a=1)] * 2).default_factory is int
    assert default_collate(["a", "b"]) == ["a", "b"]


def test_collate_errors():
    with pytest.raises(RuntimeError, match="equal size"):
        default_collate([(1, 2), (3,)])
    with pytest.raises(TypeError, match="object"):
        default_collate([object(), object()])
    with pytest.raises(TypeError, match="found an array of dtype <U1"):
        default_collate([np.array(["a"]), np.array(["b"])])
    with pytest.raises(TypeError, match="sample 1 is str 'a'"):
        default_collate([1, "a"])
    with pytest.raises(TypeError, match="sample 1 is of type ndarray"):
        default_collate([tl.ones(2), np.ones(2)])
    with pytest.raises(KeyError, match="sample 1 has no key 'a'"):
        default_collate([{"a": 1}, {"b": 2}])
    with pytest.raises(ValueError, match="empty"):
        default_collate([])


def test_default_convert_for_unbatched_samples():
    converted = default_convert((np.arange(3, dtype=np.int32), 1.5, "x", np.float32(2)))
    assert isinstance(converted, list) and converted[0].dtype == tl.int32 and converted[1:3] == [1.5, "x"]
    assert isinstance(converted[3], tl.Tensor) and converted[3].dtype == tl.float32 and converted[3].shape == ()
    strings = np.array(["a"])
    assert default_convert({"s": strings})["s"] is strings


# ---- transforms -----------------------------------------------------------------------------------
def test_to_tensor_hwc_uint8_to_chw_unit_range():
    image = np.random.default_rng(0).integers(0, 256, size=(5, 4, 3), dtype=np.uint8)
    out = T.ToTensor()(image)
    assert isinstance(out, tl.Tensor) and out.shape == (3, 5, 4) and out.dtype == tl.float32
    np.testing.assert_allclose(out.array, image.transpose(2, 0, 1) / 255, rtol=1e-6)
    assert out.array.flags.c_contiguous


def test_to_tensor_layouts():
    image = np.random.default_rng(1).integers(0, 256, size=(3, 5, 4), dtype=np.uint8)
    np.testing.assert_allclose(T.ToTensor(layout="CHW")(image).array, image / 255, rtol=1e-6)
    assert T.ToTensor()(image[0]).shape == (1, 5, 4)
    floats = np.random.default_rng(2).random((6, 7)).astype(np.float32)
    np.testing.assert_array_equal(T.ToTensor()(floats).array[0], floats)
    with pytest.raises(ValueError, match="layout"):
        T.ToTensor(layout="NHWC")
    with pytest.raises(TypeError, match="NumPy image"):
        T.ToTensor()(tl.ones(3, 4, 4))


def test_to_tensor_divides_by_255_like_torchvision():
    image = np.arange(256, dtype=np.uint8).reshape(16, 16)
    expected = image.astype(np.float32) / np.float32(255)  # torchvision: img.float().div(255), float32 division
    np.testing.assert_array_equal(T.ToTensor()(image).array[0], expected)


def test_to_tensor_batch_equals_per_sample():
    images = np.random.default_rng(3).integers(0, 256, size=(4, 6, 5, 3), dtype=np.uint8)
    batch = T.ToTensor().apply_batch(images)
    np.testing.assert_array_equal(batch.array, np.stack([T.ToTensor()(image).array for image in images]))


def test_normalize_subtracts_then_divides_like_torchvision():
    image = np.random.default_rng(5).random((3, 8, 8)).astype(np.float32)
    mean, std = (0.4914, 0.4822, 0.4465), (0.247, 0.243, -0.261)  # a negative std is allowed, as in torchvision
    mean32, std32 = (np.asarray(v, dtype=np.float32)[:, None, None] for v in (mean, std))
    out = T.Normalize(mean, std)(tl.tensor(image))
    np.testing.assert_array_equal(out.array, (image - mean32) / std32)  # sub(mean).div(std), no multiplication
    with pytest.raises(ValueError, match="std must not be zero"):
        T.Normalize((0.5, 0.5), (0.5, 0.0))
    one_std = T.Normalize((0.1, 0.2, 0.3), 0.5)(tl.tensor(image))
    np.testing.assert_array_equal(one_std.array, (image - np.float32([0.1, 0.2, 0.3])[:, None, None]) / np.float32(0.5))


def test_normalize_per_channel():
    image = tl.tensor(np.random.default_rng(4).random((3, 4, 4)), dtype=tl.float32)
    mean, std = (0.1, 0.5, 0.9), (0.2, 0.3, 0.4)
    out = T.Normalize(mean, std)(image)
    expected = (image.array - np.array(mean)[:, None, None]) / np.array(std)[:, None, None]
    np.testing.assert_allclose(out.array, expected, rtol=1e-5, atol=1e-6)
    assert out.dtype == tl.float32
    with pytest.raises(ValueError, match="3 channel"):
        T.Normalize(mean, std)(tl.ones(2, 4, 4))
    with pytest.raises(TypeError, match="ToTensor first"):
        T.Normalize(mean, std)(np.zeros((3, 4, 4), np.uint8))


@pytest.mark.parametrize("image, spatial", [
    (np.arange(1, 26, dtype=np.uint8).reshape(5, 5), (0, 1)),
    (np.arange(1, 76, dtype=np.uint8).reshape(5, 5, 3), (0, 1)),
    (tl.tensor(np.arange(1, 76, dtype=np.float32).reshape(3, 5, 5)), (1, 2)),
])
def test_random_crop_with_padding_is_a_window_of_the_zero_padded_image(image, spatial):
    data = image.array if isinstance(image, tl.Tensor) else image
    widths = [(2, 2) if axis in spatial else (0, 0) for axis in range(data.ndim)]
    padded = np.pad(data, widths)
    crop = T.RandomCrop(5, padding=2)
    tl.manual_seed(0)
    outs = [crop(image) for _ in range(20)]
    for out in outs:
        out = out.array if isinstance(out, tl.Tensor) else out
        assert out.shape == data.shape and out.dtype == data.dtype
        assert any(np.array_equal(out, padded[_window(data.ndim, spatial, top, left)])
                   for top in range(5) for left in range(5))
    tl.manual_seed(0)
    again = [crop(image) for _ in range(20)]
    assert all(np.array_equal(getattr(a, "array", a), getattr(b, "array", b)) for a, b in zip(outs, again))
    assert len({getattr(o, "array", o).tobytes() for o in outs}) > 1


def _window(ndim, spatial, top, left):
    window = [slice(None)] * ndim
    window[spatial[0]], window[spatial[1]] = slice(top, top + 5), slice(left, left + 5)
    return tuple(window)


def test_random_crop_rejects_crop_larger_than_image():
    with pytest.raises(ValueError, match="larger than"):
        T.RandomCrop(8)(np.zeros((6, 6), np.uint8))
    assert T.RandomCrop((4, 2), padding=(1, 2))(np.zeros((6, 6), np.uint8)).shape == (4, 2)


def test_random_crop_size_and_padding_arguments():
    image = np.arange(36, dtype=np.uint8).reshape(6, 6)
    assert T.RandomCrop([3])(image).shape == (3, 3)  # a one-element size is a square, as in torchvision
    assert T.RandomCrop((4, 2))(image).shape == (4, 2)
    for size in ([1, 2, 3], 0, (2, -1), 2.5):
        with pytest.raises(ValueError, match="RandomCrop: size"):
            T.RandomCrop(size)
    with pytest.raises(ValueError, match="padding must be non-negative, got -1"):
        T.RandomCrop(2, padding=-1)
    with pytest.raises(ValueError, match="padding must be an int or a sequence of 1, 2 or 4 ints"):
        T.RandomCrop(2, padding=(1, 2, 3))


def test_random_horizontal_flip():
    image = np.arange(12, dtype=np.uint8).reshape(2, 3, 2)
    np.testing.assert_array_equal(T.RandomHorizontalFlip(p=1)(image), image[:, ::-1])
    assert T.RandomHorizontalFlip(p=0)(image) is image
    tensor = tl.tensor(image.transpose(2, 0, 1))
    np.testing.assert_array_equal(T.RandomHorizontalFlip(p=1)(tensor).array, tensor.array[..., ::-1])
    tl.manual_seed(0)
    flips = [T.RandomHorizontalFlip()(image) is not image for _ in range(200)]
    assert 60 < sum(flips) < 140


def test_compose_runs_in_order():
    pipeline = T.Compose([T.ToTensor(), T.Normalize((0.5,), (0.5,))])
    out = pipeline(np.array([[0, 255]], dtype=np.uint8))
    np.testing.assert_allclose(out.array, [[[-1.0, 1.0]]])
    assert pipeline.batchable and not T.Compose([T.RandomHorizontalFlip(), T.ToTensor()]).batchable
