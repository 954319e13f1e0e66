"""nn.data.transforms: Pad, CenterCrop, Resize, Lambda, and RandomCrop's options, on NumPy arrays (HWC / HW),
tensors (CHW) and PIL images, each against a NumPy reference; a PIL image comes back as a PIL image."""

import numpy as np
import pytest
from PIL import Image

import tensorlib as tl
from nn.data import ImageDataset, default_collate
from nn.data import transforms as T

RNG = np.random.default_rng(0)


def image(kind, height, width, channels=3, dtype=np.uint8):
    """(the image as ``kind``, its HWC or HW array)."""
    shape = (height, width, channels) if channels else (height, width)
    array = RNG.integers(0, 256, size=shape).astype(dtype) if dtype == np.uint8 else RNG.random(shape).astype(dtype)
    if kind == "pil":
        return Image.fromarray(array), array
    if kind == "tensor":
        return tl.tensor(array.transpose(2, 0, 1) if channels else array), array
    return array, array


def pixels(out, kind):
    """The HWC / HW array of a transform's output, checking it is of the input's kind."""
    if kind == "pil":
        assert isinstance(out, Image.Image)
        return np.asarray(out)
    if kind == "tensor":
        assert isinstance(out, tl.Tensor)
        values = out.numpy()
        return values.transpose(1, 2, 0) if values.ndim == 3 else values
    assert isinstance(out, np.ndarray)
    return out


def np_pad(array, left, top, right, bottom, mode, fill=0):
    widths = [(top, bottom), (left, right)] + [(0, 0)] * (array.ndim - 2)
    if mode != "constant":
        return np.pad(array, widths, mode=mode)
    padded = np.pad(array, widths)
    mask = np.ones(array.shape[:2], bool)
    mask = np.pad(mask, widths[:2]) == 0
    padded[mask] = fill
    return padded


KINDS = ["array", "tensor", "pil"]


# ---- Pad ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("mode", ["constant", "edge", "reflect", "symmetric"])
@pytest.mark.parametrize("padding, ltrb", [(2, (2, 2, 2, 2)), ((1, 3), (1, 3, 1, 3)), ((0, 1, 3, 2), (0, 1, 3, 2))])
@pytest.mark.parametrize("channels", [3, 0])
def test_pad_matches_numpy(kind, mode, padding, ltrb, channels):
    picture, array = image(kind, 5, 6, channels)
    out = T.Pad(padding, fill=7, padding_mode=mode)(picture)
    np.testing.assert_array_equal(pixels(out, kind), np_pad(array, *ltrb, mode, fill=7))


@pytest.mark.parametrize("kind", KINDS)
def test_pad_fills_per_channel(kind):
    picture, array = image(kind, 4, 3)
    out = pixels(T.Pad((1, 2), fill=(10, 20, 30))(picture), kind)
    assert out.shape == (8, 5, 3)
    np.testing.assert_array_equal(out[2:6, 1:4], array)
    np.testing.assert_array_equal(out[0, 0], [10, 20, 30])
    np.testing.assert_array_equal(out[7, 4], [10, 20, 30])
    with pytest.raises(ValueError, match=r"fill \(1, 2\) does not match the number of channels of the image "
                                         r"\(2 != 3\)"):
        T.Pad(1, fill=(1, 2))(picture)


def test_pad_float_images_and_batches():
    floats = RNG.random((2, 4, 5)).astype(np.float32)
    out = T.Pad(1, padding_mode="reflect")(tl.tensor(floats))
    assert out.dtype == tl.float32
    np.testing.assert_array_equal(out.numpy(), np.pad(floats, [(0, 0), (1, 1), (1, 1)], mode="reflect"))
    batch = RNG.integers(0, 256, size=(3, 4, 5, 2), dtype=np.uint8)
    padded = T.Pad((2, 1), fill=9).apply_batch(batch)
    np.testing.assert_array_equal(padded, np.stack([T.Pad((2, 1), fill=9)(b) for b in batch]))


def test_pad_argument_errors():
    with pytest.raises(ValueError, match="padding must be an int or a sequence of 1, 2 or 4 ints, got \\(1, 2, 3\\)"):
        T.Pad((1, 2, 3))
    with pytest.raises(ValueError, match="padding must be non-negative, got -1"):
        T.Pad(-1)
    with pytest.raises(ValueError, match="padding_mode should be either constant, edge, reflect or symmetric, got "
                                         "'wrap'"):
        T.Pad(1, padding_mode="wrap")
    with pytest.raises(TypeError, match="fill must be a number or a sequence of numbers .*got 'red'"):
        T.Pad(1, fill="red")
    with pytest.raises(ValueError, match=r"reflect padding \(3, 3, 3, 3\) must be smaller than the image \(3, 5\)"):
        T.Pad(3, padding_mode="reflect")(tl.zeros(1, 3, 5))


# ---- CenterCrop ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("size", [(4, 4), (3, 6), (5, 2), (7, 7)])
def test_center_crop_takes_the_rounded_middle(kind, size):
    picture, array = image(kind, 7, 8)
    out = pixels(T.CenterCrop(size)(picture), kind)
    top, left = int(round((7 - size[0]) / 2)), int(round((8 - size[1]) / 2))  # Python's round, as torchvision
    np.testing.assert_array_equal(out, array[top:top + size[0], left:left + size[1]])


@pytest.mark.parametrize("kind", KINDS)
def test_center_crop_pads_a_small_image_with_zeros(kind):
    picture, array = image(kind, 3, 4)
    out = pixels(T.CenterCrop((6, 5))(picture), kind)
    expected = np.zeros((6, 5, 3), np.uint8)
    expected[1:4, 0:4] = array  # (6 - 3) // 2 rows above, (5 - 4) // 2 columns left
    np.testing.assert_array_equal(out, expected)
    assert pixels(T.CenterCrop(2)(picture), kind).shape[:2] == (2, 2)


def test_center_crop_batch_equals_per_sample():
    batch = RNG.integers(0, 256, size=(4, 9, 6), dtype=np.uint8)
    crop = T.CenterCrop((5, 8))
    np.testing.assert_array_equal(crop.apply_batch(batch), np.stack([crop(b) for b in batch]))
    tensors = tl.tensor(RNG.random((2, 3, 9, 6)))
    np.testing.assert_array_equal(crop.apply_batch(tensors).numpy(), np.stack([crop(t).numpy() for t in tensors]))
    with pytest.raises(ValueError, match="CenterCrop: size must be an int or a sequence of 1 or 2 ints"):
        T.CenterCrop((1, 2, 3))


# ---- Resize ----------------------------------------------------------------------------------------------
def reference_resize(array, out_h, out_w, antialias=True):
    """float64 by the definition: output pixel i averages input pixels j with weights max(1 - |j + 0.5 - c| / s,
    0), c = (i + 0.5) * in / out, s = max(in / out, 1) (antialias) or 1, normalised; rows, then columns."""
    def along(values, out_size):  # resample axis 0
        in_size = values.shape[0]
        scale = in_size / out_size
        support = max(scale, 1.0) if antialias else 1.0
        out = np.empty((out_size,) + values.shape[1:])
        for i in range(out_size):
            weights = np.maximum(1 - np.abs(np.arange(in_size) + 0.5 - (i + 0.5) * scale) / support, 0)
            out[i] = np.tensordot(weights / weights.sum(), values, axes=1)
        return out

    rows = along(array.astype(np.float64), out_h)
    return np.swapaxes(along(np.swapaxes(rows, 0, 1), out_w), 0, 1)


@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-12), (np.float32, 1e-4)])
@pytest.mark.parametrize("shape, size", [((7, 9), (3, 4)), ((5, 5), (11, 8)), ((32, 17), (13, 40)),
                                         ((3, 30), (1, 7)), ((10, 10), (10, 3))])
@pytest.mark.parametrize("antialias", [True, False])
def test_resize_float_images_match_the_reference(dtype, rtol, shape, size, antialias):
    array = RNG.random(shape + (2,)).astype(dtype)
    expected = reference_resize(array, *size, antialias=antialias)
    out = T.Resize(size, antialias=antialias)(array)
    assert out.dtype == dtype and out.shape == size + (2,)
    np.testing.assert_allclose(out, expected, rtol=rtol, atol=rtol)
    tensor = T.Resize(size, antialias=antialias)(tl.tensor(array.transpose(2, 0, 1)))
    assert isinstance(tensor, tl.Tensor) and tensor.dtype == dtype
    np.testing.assert_allclose(tensor.numpy().transpose(1, 2, 0), expected, rtol=rtol, atol=rtol)


@pytest.mark.parametrize("shape, size", [((37, 29), (13, 11)), ((20, 20), (31, 45)), ((9, 40), (9, 7)),
                                         ((30, 8), (11, 8)), ((6, 7), (12, 3))])
def test_resize_uint8_arrays_give_pils_pixels(shape, size):
    array = RNG.integers(0, 256, size=shape + (3,), dtype=np.uint8)
    out = T.Resize(size)(array)
    pil = T.Resize(size)(Image.fromarray(array))
    assert isinstance(pil, Image.Image) and pil.size == size[::-1] and out.dtype == np.uint8
    difference = np.abs(out.astype(int) - np.asarray(pil))
    one_axis = shape[0] == size[0] or shape[1] == size[1]
    assert difference.max() <= (0 if one_axis else 1)  # Pillow 13 may run two passes in the other order
    np.testing.assert_allclose(out, reference_resize(array, *size), atol=1)
    tensor = T.Resize(size)(tl.tensor(array.transpose(2, 0, 1)))
    np.testing.assert_array_equal(tensor.numpy().transpose(1, 2, 0), out)


@pytest.mark.parametrize("height, width, size, max_size, expected", [
    (20, 30, 10, None, (10, 15)), (30, 20, 10, None, (15, 10)), (17, 17, 8, None, (8, 8)),
    (10, 33, 7, None, (7, 23)),  # int(7 * 33 / 10) = 23
    (20, 60, 10, 24, (8, 24)),   # the longer side capped, the shorter in proportion
    (20, 30, (12, 5), None, (12, 5)), (20, 30, [10], None, (10, 15)),
])
def test_resize_output_size_like_torchvision(height, width, size, max_size, expected):
    resize = T.Resize(size, max_size=max_size)
    assert resize.output_size(height, width) == expected
    assert T.Resize(size, max_size=max_size)(np.zeros((height, width), np.uint8)).shape == expected
    assert T.Resize(size, max_size=max_size)(Image.new("L", (width, height))).size == expected[::-1]


def test_resize_keeps_an_image_of_the_output_size_and_batches():
    array = RNG.random((6, 4, 3))
    assert T.Resize((6, 4))(array) is array and T.Resize(4)(array) is array
    batch = RNG.integers(0, 256, size=(3, 9, 7, 3), dtype=np.uint8)
    np.testing.assert_array_equal(T.Resize((4, 5)).apply_batch(batch), np.stack([T.Resize((4, 5))(b) for b in batch]))


def test_resize_argument_errors():
    for size in ((1, 2, 3), "big", 0, (4, -1)):
        with pytest.raises(ValueError, match="Resize: size"):
            T.Resize(size)
    with pytest.raises(ValueError, match=r"max_size = 10 must be an int strictly greater than the requested size "
                                         r"for the smaller edge size \(size = 10\)"):
        T.Resize(10, max_size=10)
    with pytest.raises(ValueError, match="max_size should only be passed if size is the length of the shorter side"):
        T.Resize((10, 12), max_size=20)
    with pytest.raises(ValueError, match="interpolation='bicubic' is not supported"):
        T.Resize(10, interpolation="bicubic")


# ---- RandomCrop, RandomHorizontalFlip, Lambda ------------------------------------------------------------
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("mode", ["constant", "edge", "reflect", "symmetric"])
def test_random_crop_is_a_window_of_the_padded_image(kind, mode):
    picture, array = image(kind, 5, 6)
    padded = np_pad(array, 1, 2, 1, 2, mode, fill=3)
    crop = T.RandomCrop((4, 5), padding=(1, 2), fill=3, padding_mode=mode)
    tl.manual_seed(0)
    outs = [pixels(crop(picture), kind) for _ in range(12)]
    windows = {(top, left): padded[top:top + 4, left:left + 5].tobytes() for top in range(6) for left in range(4)}
    assert all(out.tobytes() in windows.values() for out in outs)
    assert len({out.tobytes() for out in outs}) > 1
    tl.manual_seed(0)
    np.testing.assert_array_equal(pixels(crop(picture), kind), outs[0])


@pytest.mark.parametrize("kind", KINDS)
def test_random_crop_pad_if_needed_pads_by_the_shortfall_on_both_ends(kind):
    picture, array = image(kind, 3, 4)
    crop = T.RandomCrop((5, 6), pad_if_needed=True, padding_mode="edge")
    padded = np.pad(array, [(2, 2), (2, 2), (0, 0)], mode="edge")  # as torchvision: shortfall on both ends
    tl.manual_seed(1)
    outs = [pixels(crop(picture), kind) for _ in range(10)]
    windows = [padded[top:top + 5, left:left + 6] for top in range(3) for left in range(3)]
    assert all(any(np.array_equal(out, window) for window in windows) for out in outs)
    with pytest.raises(ValueError, match=r"required crop size \(5, 6\) is larger than the \(padded\) input image "
                                         r"size \(3, 4\); pass pad_if_needed=True"):
        T.RandomCrop((5, 6))(picture)


def test_random_crop_of_the_whole_image_draws_nothing():
    array = RNG.integers(0, 256, size=(4, 5), dtype=np.uint8)
    state = tl.get_rng_state()
    np.testing.assert_array_equal(T.RandomCrop((4, 5))(array), array)
    assert tl.get_rng_state() == state


def test_random_crop_and_flip_keep_pil_images_and_agree_with_arrays():
    _, array = image("array", 6, 7)
    pil = Image.fromarray(array)
    for transform in (T.RandomCrop(4, padding=1), T.RandomHorizontalFlip(p=1.0)):
        tl.manual_seed(3)
        from_pil = transform(pil)
        tl.manual_seed(3)
        assert isinstance(from_pil, Image.Image) and from_pil.mode == "RGB"
        np.testing.assert_array_equal(np.asarray(from_pil), transform(array))
    palette = Image.fromarray(array[..., 0]).convert("P")
    assert T.Pad(2, padding_mode="reflect")(palette).mode == "P"


def test_lambda():
    assert T.Lambda(lambda x: x * 2)(3) == 6 and not T.Lambda(abs).batchable
    with pytest.raises(TypeError, match="Lambda: lambd should be callable, got int 3"):
        T.Lambda(3)


def test_deterministic_geometry_keeps_the_datasets_batch_path():
    images = RNG.integers(0, 256, size=(10, 12, 9, 3), dtype=np.uint8)
    transform = T.Compose([T.Pad(1, padding_mode="edge"), T.CenterCrop((10, 8)), T.Resize((6, 5)), T.ToTensor(),
                           T.Normalize((0.5, 0.4, 0.3), (0.2, 0.25, 0.3))])
    assert transform.batchable
    dataset = ImageDataset(images, np.arange(10) % 3, "train", transform=transform)
    indices = np.array([4, 0, 9])
    batch, _ = dataset.get_batch(indices)
    per_sample, _ = default_collate([dataset[int(i)] for i in indices])
    assert batch.shape == (3, 3, 6, 5)
    np.testing.assert_allclose(batch.numpy(), per_sample.numpy(), rtol=1e-6, atol=1e-6)


def test_tensor_transforms_stay_on_the_cuda_device(tier):
    transforms = [T.Resize((4, 5)), T.Resize(9), T.Pad((1, 2), padding_mode="reflect"), T.Pad(1, fill=(1, 2, 3)),
                  T.CenterCrop((3, 8)), T.RandomHorizontalFlip(p=1.0)]
    for dtype in (tl.float32, tl.uint8):
        host = tl.tensor(RNG.integers(0, 256, size=(3, 6, 7)), dtype=dtype)
        device = host.to("cuda")
        for transform in transforms:
            out = transform(device)
            assert out.device == "cuda" and out.dtype == dtype
            np.testing.assert_allclose(out.numpy(), transform(host).numpy(), rtol=1e-6)
        tl.manual_seed(0)
        crops = T.RandomCrop(5, padding=1)(device)
        tl.manual_seed(0)
        np.testing.assert_array_equal(crops.numpy(), T.RandomCrop(5, padding=1)(host).numpy())
