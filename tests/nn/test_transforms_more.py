"""nn.data.transforms' augmentations: RandomResizedCrop, the flips, RandomApply/Choice/Order, the colour
adjustments and ColorJitter, Grayscale, RandomErasing, RandomRotation and RandomAffine. Each is checked against a
float64 NumPy reference (or, for uint8 colour work, against PIL itself) on arrays (HWC / HW), tensors (CHW) and
PIL images; the random parameters against their documented distributions under a fixed seed."""

import colorsys
import math

import numpy as np
import pytest
from PIL import Image

import tensorlib as tl
from nn.data import ImageDataset, default_collate
from nn.data import transforms as T
from test_transforms import image, pixels  # the images of every kind, and their pixels back

RNG = np.random.default_rng(0)
KINDS = ["array", "tensor", "pil"]


def frequency(transform, draws=2000, seed=0):
    """How often ``transform`` changes a 2x3 image, over ``draws`` seeded calls."""
    tl.manual_seed(seed)
    array = np.arange(6, dtype=np.uint8).reshape(2, 3)
    return np.mean([not np.array_equal(transform(array), array) for _ in range(draws)])


# ---- RandomResizedCrop ------------------------------------------------------------------------------------
def test_random_resized_crop_params_follow_scale_and_ratio():
    tl.manual_seed(0)
    height, width, scale, ratio = 64, 64, (0.2, 0.7), (0.5, 2.0)
    windows = np.array([T.RandomResizedCrop.get_params(np.zeros((height, width)), scale, ratio)
                        for _ in range(2000)])
    top, left, crop_height, crop_width = windows.T
    assert (top >= 0).all() and (left >= 0).all()
    assert (top + crop_height <= height).all() and (left + crop_width <= width).all()
    areas = crop_height * crop_width / (height * width)
    aspects = crop_width / crop_height
    # sides are rounded to ints: a side of s pixels moves the area and the ratio by about 1/s
    assert areas.min() >= scale[0] * 0.9 and areas.max() <= scale[1] * 1.1
    assert aspects.min() >= ratio[0] * 0.9 and aspects.max() <= ratio[1] * 1.1
    assert abs(np.mean(np.log(aspects))) < 0.05  # log-uniform over a range symmetric in log, on a square
    assert np.ptp(areas) > 0.4 and np.ptp(top) > 20 and np.ptp(left) > 20


@pytest.mark.parametrize("shape, expected", [((40, 10), (13, 0, 13, 10)), ((10, 40), (0, 13, 10, 13)),
                                             ((20, 21), (0, 0, 20, 21))])
def test_random_resized_crop_falls_back_to_the_centre(shape, expected):
    # an area above the image's never fits: after 10 draws the window is the centred crop at the nearest ratio
    assert T.RandomResizedCrop.get_params(np.zeros(shape), (1.5, 2.0), (3 / 4, 4 / 3)) == expected


@pytest.mark.parametrize("kind, dtype", [("array", np.uint8), ("tensor", np.float32), ("tensor", np.uint8),
                                         ("pil", np.uint8), ("array", np.float64)])
@pytest.mark.parametrize("size", [7, (5, 9)])
def test_random_resized_crop_is_resize_of_the_drawn_window(kind, dtype, size):
    picture, array = image(kind, 23, 31, 3, dtype)
    transform = T.RandomResizedCrop(size, scale=(0.3, 0.9))
    tl.manual_seed(4)
    out = pixels(transform(picture), kind)
    tl.manual_seed(4)
    top, left, height, width = T.RandomResizedCrop.get_params(array, transform.scale, transform.ratio)
    window = array[top:top + height, left:left + width]
    expected = T.Resize(size if isinstance(size, tuple) else (size, size))(Image.fromarray(window) if kind == "pil"
                                                                            else window)
    assert out.shape == ((size, size) if isinstance(size, int) else size) + (3,) and out.dtype == dtype
    np.testing.assert_array_equal(out, np.asarray(expected))


def test_random_resized_crop_arguments_and_repr():
    assert repr(T.RandomResizedCrop(224)) == ("RandomResizedCrop(size=(224, 224), scale=(0.08, 1.0), "
                                              "ratio=(0.75, 1.3333), interpolation=bilinear, antialias=True)")
    with pytest.raises(ValueError, match=r"RandomResizedCrop: ratio values should lie in \(0.0, inf\), got \(0, 2\)"):
        T.RandomResizedCrop(8, ratio=(0, 2))
    with pytest.raises(ValueError, match=r"RandomResizedCrop: scale values should lie in \[0.0, inf\), got "
                                         r"\(-0.1, 1\)"):
        T.RandomResizedCrop(8, scale=(-0.1, 1))
    with pytest.raises(TypeError, match="RandomResizedCrop: scale should be a sequence of 2 numbers"):
        T.RandomResizedCrop(8, scale=0.5)
    with pytest.raises(ValueError, match='RandomResizedCrop: interpolation=.nearest. is not supported: only '
                                         '"bilinear"'):
        T.RandomResizedCrop(8, interpolation="nearest")
    with pytest.warns(UserWarning, match=r"scale should be of kind \(min, max\)"):
        T.RandomResizedCrop(8, scale=(1.0, 0.5))


# ---- flips and the random containers ------------------------------------------------------------------------
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("channels", [3, 0])
def test_vertical_flip_mirrors_top_bottom(kind, channels):
    picture, array = image(kind, 5, 4, channels)
    np.testing.assert_array_equal(pixels(T.RandomVerticalFlip(p=1.0)(picture), kind), array[::-1])
    assert T.RandomVerticalFlip(p=0.0)(picture) is picture


@pytest.mark.parametrize("transform, p", [
    (T.RandomVerticalFlip(0.3), 0.3), (T.RandomHorizontalFlip(0.8), 0.8),
    (T.RandomApply([T.RandomVerticalFlip(1.0)], p=0.6), 0.6),
    (T.RandomChoice([T.Lambda(lambda x: x), T.RandomVerticalFlip(1.0)], p=[1, 3]), 0.75),
    (T.RandomChoice([T.Lambda(lambda x: x), T.RandomVerticalFlip(1.0)]), 0.5),
])
def test_probabilities_are_respected(transform, p):
    assert abs(frequency(transform) - p) < 0.04


def test_random_order_draws_every_order_evenly():
    tl.manual_seed(1)
    transform = T.RandomOrder([T.Lambda(lambda s, k=k: s + k) for k in "abc"])
    counts = {}
    for _ in range(1200):
        order = transform("")
        counts[order] = counts.get(order, 0) + 1
    assert sorted(counts) == ["abc", "acb", "bac", "bca", "cab", "cba"]
    assert all(abs(n / 1200 - 1 / 6) < 0.04 for n in counts.values())


def test_random_apply_runs_its_transforms_in_order_and_reprs_like_torchvision():
    transform = T.RandomApply([T.Lambda(lambda s: s + "a"), T.Lambda(lambda s: s + "b")], p=1.0)
    assert transform("") == "ab" and T.RandomApply([T.Lambda(abs)], p=0.0)(-3) == -3
    flip = T.RandomApply([T.RandomHorizontalFlip()], p=0.3)
    assert repr(flip) == "RandomApply(\n    p=0.3\n    RandomHorizontalFlip(p=0.5)\n)"
    assert repr(T.RandomChoice([T.Grayscale()], p=[2])) == "RandomChoice(\n    p=[1.0]\n    " \
                                                             "Grayscale(num_output_channels=1)\n)"


@pytest.mark.parametrize("make", [T.RandomHorizontalFlip, T.RandomVerticalFlip, T.RandomGrayscale,
                                  lambda p: T.RandomApply([T.Grayscale()], p=p), lambda p: T.RandomErasing(p=p)])
@pytest.mark.parametrize("p", [-0.1, 1.5, "0.5"])
def test_p_outside_the_unit_interval_is_refused(make, p):
    with pytest.raises(ValueError, match=rf"p must be a probability in \[0, 1\], got {p!r}"):
        make(p)


def test_container_argument_errors():
    with pytest.raises(TypeError, match="RandomApply: transforms should be a sequence of transforms, got "
                                        "RandomVerticalFlip"):
        T.RandomApply(T.RandomVerticalFlip())
    with pytest.raises(TypeError, match=r"RandomOrder: transforms\[1\] should be callable, got int 3"):
        T.RandomOrder([T.Grayscale(), 3])
    with pytest.raises(ValueError, match=r"RandomChoice: p has 1 weights for 2 transforms, got p=\[1\]"):
        T.RandomChoice([T.Grayscale(), T.Grayscale()], p=[1])
    with pytest.raises(ValueError, match=r"RandomChoice: p must hold non-negative weights with a positive sum, "
                                         r"got \[1, -1\]"):
        T.RandomChoice([T.Grayscale(), T.Grayscale()], p=[1, -1])


# ---- colour -------------------------------------------------------------------------------------------------
def luma64(array):
    return array[..., 0] * 0.299 + array[..., 1] * 0.587 + array[..., 2] * 0.114


def hue_reference(array, factor):
    out = np.empty_like(array, dtype=np.float64)
    for index in np.ndindex(array.shape[:-1]):
        h, s, v = colorsys.rgb_to_hsv(*array[index].astype(np.float64))
        out[index] = colorsys.hsv_to_rgb((h + factor) % 1.0, s, v)
    return out


def color_reference(name, array, factor):
    """The float64 reference of each adjustment of an HWC float image in [0, 1]."""
    if name == "adjust_hue":
        return hue_reference(array, factor)
    other = {"adjust_brightness": 0.0, "adjust_contrast": luma64(array).mean(),
             "adjust_saturation": luma64(array)[..., None]}[name]
    return np.clip(factor * array + (1 - factor) * other, 0, 1)


COLOR_FUNCTIONS = ["adjust_brightness", "adjust_contrast", "adjust_saturation", "adjust_hue"]


@pytest.mark.parametrize("name", COLOR_FUNCTIONS)
@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-12), (np.float32, 1e-5)])
@pytest.mark.parametrize("kind", ["array", "tensor"])
@pytest.mark.parametrize("shape", [(4, 5), (7, 3)])
def test_float_adjustments_match_the_reference(name, dtype, rtol, kind, shape):
    picture, array = image(kind, *shape, 3, dtype)
    for factor in ((-0.4, 0.13, 0.5) if name == "adjust_hue" else (0.0, 0.6, 1.7)):
        out = pixels(getattr(T, name)(picture, factor), kind)
        assert out.dtype == dtype and out.shape == array.shape
        np.testing.assert_allclose(out, color_reference(name, array.astype(np.float64), factor), rtol=rtol,
                                   atol=rtol)


@pytest.mark.parametrize("name", COLOR_FUNCTIONS)
@pytest.mark.parametrize("shape", [(6, 9), (13, 4)])
def test_uint8_adjustments_give_pils_pixels(name, shape):
    function = getattr(T, name)
    picture, array = image("array", *shape, 3)
    ties = array.copy()
    ties[::2, :, 1] = ties[::2, :, 0]  # equal channels take the hue formula's other branches
    for values in (array, ties):
        for factor in ((-0.5, -0.21, 0.07, 0.5) if name == "adjust_hue" else (0.0, 0.35, 1.0, 2.6)):
            expected = np.asarray(function(Image.fromarray(values), factor))
            np.testing.assert_array_equal(function(values, factor), expected)
            np.testing.assert_array_equal(function(tl.tensor(values.transpose(2, 0, 1)), factor).numpy(),
                                          expected.transpose(2, 0, 1))


@pytest.mark.parametrize("name", COLOR_FUNCTIONS)
def test_adjustments_of_one_channel_and_batched_images(name):
    function = getattr(T, name)
    gray, values = image("array", 5, 6, 0)
    factor = 0.3
    np.testing.assert_array_equal(function(gray, factor), np.asarray(function(Image.fromarray(values), factor)))
    batch = RNG.random((2, 3, 4, 5)).astype(np.float32)  # each image of a batch is adjusted on its own
    out = function(tl.tensor(batch), factor).numpy()
    for i in range(2):
        np.testing.assert_allclose(out[i], function(tl.tensor(batch[i]), factor).numpy(), rtol=1e-6, atol=1e-7)


def test_adjustment_argument_errors():
    with pytest.raises(ValueError, match=r"adjust_brightness: brightness_factor must be a non-negative number, "
                                         r"got -0.5"):
        T.adjust_brightness(np.zeros((2, 2)), -0.5)
    with pytest.raises(ValueError, match=r"adjust_hue: hue_factor must be a number in \[-0.5, 0.5\], got 0.7"):
        T.adjust_hue(np.zeros((2, 2, 3)), 0.7)
    with pytest.raises(ValueError, match=r"adjust_contrast expects an image with 1 or 3 channels, got shape "
                                         r"\(2, 2, 4\)"):
        T.adjust_contrast(np.zeros((2, 2, 4)), 0.5)
    with pytest.raises(TypeError, match="adjust_saturation expects a uint8 or floating-point image, got int32"):
        T.adjust_saturation(np.zeros((2, 2, 3), dtype=np.int32), 0.5)


def test_color_jitter_draws_factors_from_the_documented_ranges():
    jitter = T.ColorJitter(brightness=0.5, contrast=(0.2, 0.4), saturation=2.0, hue=0.2)
    assert (jitter.brightness, jitter.contrast, jitter.saturation, jitter.hue) == ((0.5, 1.5), (0.2, 0.4),
                                                                                   (0.0, 3.0), (-0.2, 0.2))
    tl.manual_seed(0)
    draws = [jitter.get_params(jitter.brightness, jitter.contrast, jitter.saturation, jitter.hue)
             for _ in range(3000)]
    orders = {tuple(order) for order, *_ in draws}
    assert len(orders) == 24 and all(sorted(order) == [0, 1, 2, 3] for order in orders)
    for column, (low, high) in zip(np.array([factors for _, *factors in draws]).T,
                                   (jitter.brightness, jitter.contrast, jitter.saturation, jitter.hue)):
        assert low <= column.min() and column.max() <= high
        assert abs(column.mean() - (low + high) / 2) < 0.03 * (high - low)
    order, *factors = T.ColorJitter(contrast=0.3).get_params(None, (0.7, 1.3), None, None)
    assert factors[0] is None and factors[2] is None and factors[3] is None and 0.7 <= factors[1] <= 1.3


@pytest.mark.parametrize("kind, dtype", [("array", np.uint8), ("tensor", np.float32), ("pil", np.uint8)])
def test_color_jitter_applies_the_drawn_adjustments_in_the_drawn_order(kind, dtype):
    picture, _ = image(kind, 6, 7, 3, dtype)
    jitter = T.ColorJitter(0.4, 0.4, 0.4, 0.1)
    tl.manual_seed(7)
    out = pixels(jitter(picture), kind)
    tl.manual_seed(7)
    order, *factors = jitter.get_params(jitter.brightness, jitter.contrast, jitter.saturation, jitter.hue)
    expected = picture
    for index in order:
        expected = getattr(T, COLOR_FUNCTIONS[index])(expected, factors[index])
    np.testing.assert_array_equal(out, pixels(expected, kind))
    tl.manual_seed(7)
    np.testing.assert_array_equal(pixels(jitter(picture), kind), out)  # the same seed, the same image


def test_color_jitter_argument_errors():
    assert repr(T.ColorJitter(brightness=0.2)) == ("ColorJitter(brightness=(0.8, 1.2), contrast=None, "
                                                  "saturation=None, hue=None)")
    with pytest.raises(ValueError, match="ColorJitter: brightness must be non-negative when it is a single number, "
                                         "got -0.1"):
        T.ColorJitter(brightness=-0.1)
    with pytest.raises(ValueError, match=r"ColorJitter: hue values should be between \(-0.5, 0.5\) with min <= "
                                         r"max, got \[-0.6, 0.6\]"):
        T.ColorJitter(hue=0.6)
    with pytest.raises(ValueError, match=r"ColorJitter: contrast values should be between \(0.0, inf\) with min "
                                         r"<= max, got \[0.9, 0.5\]"):
        T.ColorJitter(contrast=(0.9, 0.5))
    with pytest.raises(TypeError, match=r"ColorJitter: saturation should be a single number or a sequence of 2 "
                                        r"numbers \(min, max\), got 'a'"):
        T.ColorJitter(saturation="a")


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("shape", [(5, 4), (8, 11)])
def test_grayscale_is_the_601_luma(kind, shape):
    picture, array = image(kind, *shape)
    one, three = pixels(T.Grayscale()(picture), kind), pixels(T.Grayscale(3)(picture), kind)
    expected = np.floor(luma64(array.astype(np.float64)) + 0.5)  # uint8: rounded, as PIL's convert("L")
    np.testing.assert_allclose(one.reshape(shape), expected, atol=1)  # the fixed-point weights move ties
    np.testing.assert_array_equal(one.reshape(shape), np.asarray(Image.fromarray(array).convert("L")))
    assert three.shape == shape + (3,) and (three == one.reshape(shape + (1,))).all()
    floats = array.astype(np.float32) / 255
    np.testing.assert_allclose(T.rgb_to_grayscale(tl.tensor(floats.transpose(2, 0, 1))).numpy()[0],
                               luma64(floats.astype(np.float64)), rtol=1e-6)


def test_grayscale_shapes_batches_and_random_grayscale():
    assert T.Grayscale()(np.zeros((3, 4, 3), np.uint8)).shape == (3, 4)  # the array of an "L" image
    assert T.Grayscale(3)(np.zeros((3, 4), np.uint8)).shape == (3, 4, 3)
    assert T.Grayscale()(tl.zeros(2, 3, 4, 5)).shape == (2, 1, 4, 5)
    images = RNG.integers(0, 256, size=(5, 6, 7, 3), dtype=np.uint8)
    dataset = ImageDataset(images, np.arange(5), "train", transform=T.Compose([T.Grayscale(), T.ToTensor()]))
    batch, _ = dataset.get_batch(np.array([3, 1]))
    np.testing.assert_array_equal(batch.numpy(), default_collate([dataset[3], dataset[1]])[0].numpy())
    assert batch.shape == (2, 1, 6, 7)
    picture, array = image("pil", 4, 5)
    assert T.RandomGrayscale(p=1.0)(picture).mode == "RGB"
    np.testing.assert_array_equal(T.RandomGrayscale(p=1.0)(array), np.asarray(picture.convert("L").convert("RGB")))
    gray = array[..., 0]
    assert T.RandomGrayscale(p=1.0)(gray) is gray
    with pytest.raises(ValueError, match="Grayscale: num_output_channels should be either 1 or 3, got 2"):
        T.Grayscale(2)


# ---- RandomErasing ------------------------------------------------------------------------------------------
def test_random_erasing_params_follow_scale_and_ratio():
    tl.manual_seed(2)
    image_tensor = tl.zeros(3, 50, 60)
    scale, ratio = (0.05, 0.3), (0.4, 2.5)
    boxes = np.array([T.RandomErasing.get_params(image_tensor, scale, ratio, [0.0])[:4] for _ in range(1500)])
    top, left, height, width = boxes.T
    assert (top >= 0).all() and (left >= 0).all() and (top + height <= 50).all() and (left + width <= 60).all()
    areas, aspects = height * width / 3000, height / width  # the ratio is height / width here, as torchvision
    assert areas.min() >= scale[0] * 0.85 and areas.max() <= scale[1] * 1.1
    assert aspects.min() >= ratio[0] * 0.85 and aspects.max() <= ratio[1] * 1.15
    # nothing fits in a 1-pixel-high image: the draw gives up and returns the whole image
    assert T.RandomErasing.get_params(tl.zeros(1, 1, 9), scale, ratio, [0.0])[:4] == (0, 0, 1, 9)


@pytest.mark.parametrize("value", [0, 0.25, (0.1, 0.2, 0.3), "random"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_random_erasing_overwrites_the_drawn_rectangle(value, dtype):
    data = RNG.random((3, 9, 11)).astype(dtype) + 2  # no erased value can equal an original pixel
    transform = T.RandomErasing(p=1.0, value=value)
    tl.manual_seed(5)
    out = transform(tl.tensor(data)).numpy()
    tl.manual_seed(5)
    tl.random.default_generator().random()  # the draw that decides whether to erase
    values = None if value == "random" else np.atleast_1d(value)
    top, left, height, width, fill = T.RandomErasing.get_params(tl.tensor(data), transform.scale, transform.ratio,
                                                                values)
    expected = data.copy()
    expected[:, top:top + height, left:left + width] = fill
    assert out.dtype == dtype and (out != data).sum() == 3 * height * width > 0
    np.testing.assert_array_equal(out, expected)


def test_random_erasing_inplace_batches_and_errors():
    data = tl.tensor(RNG.random((2, 3, 8, 8)).astype(np.float32) + 1)
    before = data.numpy().copy()
    out = T.RandomErasing(p=1.0, value=(0, 0, 0), inplace=True)(data)
    assert out is data and (data.numpy() == 0).sum() > 0
    assert ((data.numpy() == 0) == (before != data.numpy())).all()
    fresh = tl.tensor(before)
    assert T.RandomErasing(p=1.0)(fresh) is not fresh and np.array_equal(fresh.numpy(), before)
    assert repr(T.RandomErasing()) == ("RandomErasing(p=0.5, scale=(0.02, 0.33), ratio=(0.3, 3.3), value=0, "
                                       "inplace=False)")
    with pytest.raises(ValueError, match=r"RandomErasing: scale values should lie in \[0.0, 1.0\], got \(0.1, 1.5\)"):
        T.RandomErasing(scale=(0.1, 1.5))
    with pytest.raises(ValueError, match="RandomErasing: value must be a number, a sequence of numbers or "
                                         "\"random\", got 'noise'"):
        T.RandomErasing(value="noise")
    with pytest.raises(ValueError, match=r"value \(1.0, 2.0\) must hold one number or one per channel of the image "
                                         r"\(3\)"):
        T.RandomErasing(p=1.0, value=(1.0, 2.0))(tl.zeros(3, 4, 4))
    with pytest.raises(TypeError, match="RandomErasing expects a CHW Tensor"):
        T.RandomErasing(p=1.0)(np.zeros((4, 4, 3)))


# ---- RandomRotation and RandomAffine -------------------------------------------------------------------------
def sample_reference(array, inverse, out_shape, mode, fill, offset=(0.0, 0.0)):
    """Each output pixel (i, j) of an HWC float64 image samples the input at ``inverse`` of its centre
    (j + 0.5 + offset x, i + 0.5 + offset y): the nearest pixel, or the four around weighted bilinearly, with the
    share of the weight outside the image given to ``fill`` (on top of the zero padding, as torchvision; None
    keeps the zeros)."""
    height, width = array.shape[:2]
    out = np.empty(out_shape + array.shape[2:])
    for i, j in np.ndindex(out_shape):
        x, y, _ = inverse @ [j + 0.5 + offset[0], i + 0.5 + offset[1], 1.0]
        x, y = x - 0.5, y - 0.5
        if mode == "nearest":
            row, col = round(y), round(x)
            inside = 0 <= row < height and 0 <= col < width
            out[i, j] = array[row, col] if inside else (0 if fill is None else fill)
            continue
        total, share = 0.0, 0.0
        for row in (math.floor(y), math.floor(y) + 1):
            for col in (math.floor(x), math.floor(x) + 1):
                weight = (1 - abs(y - row)) * (1 - abs(x - col))
                if 0 <= row < height and 0 <= col < width:
                    total, share = total + weight * array[row, col], share + weight
        out[i, j] = total if fill is None else total * share + (1 - share) * np.asarray(fill)
    return out


def rotation_inverse(angle, cx, cy):
    """The map from an output point to the input point it shows, for a counter-clockwise (on screen, y down)
    rotation by ``angle`` degrees about (cx, cy)."""
    c, s = math.cos(math.radians(angle)), math.sin(math.radians(angle))
    return np.array([[c, -s, cx - c * cx + s * cy], [s, c, cy - s * cx - c * cy], [0, 0, 1]])


@pytest.mark.parametrize("mode", ["nearest", "bilinear"])
@pytest.mark.parametrize("kind, dtype", [("tensor", np.float32), ("array", np.float64), ("tensor", np.uint8)])
@pytest.mark.parametrize("shape, center", [((7, 9), None), ((6, 5), (1.5, 4.0))])
def test_rotation_matches_the_reference(mode, kind, dtype, shape, center):
    picture, array = image(kind, *shape, 3, dtype)
    fill = (20, 40, 60) if dtype == np.uint8 else (0.2, 0.4, 0.6)
    transform = T.RandomRotation((-170, 170), interpolation=mode, center=center, fill=fill)
    for seed in range(3):
        tl.manual_seed(seed)
        out = pixels(transform(picture), kind)
        tl.manual_seed(seed)
        angle = transform.get_params(transform.degrees)
        cx, cy = (shape[1] / 2, shape[0] / 2) if center is None else center
        expected = sample_reference(array.astype(np.float64), rotation_inverse(angle, cx, cy), shape, mode, fill)
        if dtype == np.uint8:
            np.testing.assert_allclose(out, np.round(expected), atol=1)  # a sum that lands on .5 may round either way
            assert np.mean(out == np.round(expected)) > 0.97
        else:
            np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kind", KINDS)
def test_quarter_turns_and_expand(kind):
    picture, array = image(kind, 6, 6)
    quarter = T.RandomRotation((90, 90))
    np.testing.assert_array_equal(pixels(quarter(picture), kind), np.rot90(array))  # counter-clockwise
    tall, values = image(kind, 4, 6)
    expanded = pixels(T.RandomRotation((-90, -90), expand=True)(tall), kind)
    np.testing.assert_array_equal(expanded, np.rot90(values, -1))
    diagonal = pixels(T.RandomRotation((45, 45), expand=True)(picture), kind)
    assert diagonal.shape[:2] == (10, 10)  # the bounding box 3 +- 4.24 of the rotated square, rounded outwards


def affine_inverse_closed_form(angle, translate, scale, shear, center):
    """torchvision's documented inverse of the affine map, in closed form."""
    rot, sx, sy = (math.radians(v) for v in (angle, *shear))
    a = math.cos(rot - sy) / math.cos(sy)
    b = -math.cos(rot - sy) * math.tan(sx) / math.cos(sy) - math.sin(rot)
    c = math.sin(rot - sy) / math.cos(sy)
    d = -math.sin(rot - sy) * math.tan(sx) / math.cos(sy) + math.cos(rot)
    linear = np.array([[d, -b], [-c, a]]) / scale  # the inverse of [[a, b], [c, d]] * scale (its determinant is 1)
    center, translate = np.asarray(center, float), np.asarray(translate, float)
    inverse = np.eye(3)
    inverse[:2, :2] = linear
    inverse[:2, 2] = center - linear @ (center + translate)
    return inverse


@pytest.mark.parametrize("mode", ["nearest", "bilinear"])
@pytest.mark.parametrize("kind, dtype", [("tensor", np.float64), ("array", np.uint8)])
def test_random_affine_matches_the_reference(mode, kind, dtype):
    picture, array = image(kind, 8, 7, 3, dtype)
    transform = T.RandomAffine(30, translate=(0.2, 0.3), scale=(0.7, 1.3), shear=(-10, 10, -5, 5),
                               interpolation=mode, fill=3)
    for seed in range(3):
        tl.manual_seed(seed)
        out = pixels(transform(picture), kind)
        tl.manual_seed(seed)
        angle, translate, scale, shear = transform.get_params(transform.degrees, transform.translate,
                                                              transform.scale, transform.shear, (7, 8))
        assert all(isinstance(t, int) and abs(t) <= limit for t, limit in zip(translate, (1.4, 2.4)))
        inverse = affine_inverse_closed_form(angle, translate, scale, shear, (3.5, 4.0))
        expected = sample_reference(array.astype(np.float64), inverse, (8, 7), mode, 3)
        if dtype == np.uint8:
            np.testing.assert_allclose(out, np.round(expected), atol=1)
        else:
            np.testing.assert_allclose(out, expected, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("mode", ["nearest", "bilinear"])
def test_affine_without_fill_keeps_the_zero_padding(mode):
    picture, array = image("tensor", 6, 7, 3, np.float32)
    out = T.affine(picture, 33.0, (1, -1), 0.9, (4.0, -2.0), mode).numpy().transpose(1, 2, 0)
    inverse = affine_inverse_closed_form(33.0, (1, -1), 0.9, (4.0, -2.0), (3.5, 3.0))
    np.testing.assert_allclose(out, sample_reference(array.astype(np.float64), inverse, (6, 7), mode, None),
                               rtol=1e-5, atol=1e-6)


def test_random_affine_params_are_within_their_ranges():
    tl.manual_seed(3)
    draws = [T.RandomAffine.get_params([-10.0, 20.0], (0.1, 0.5), (0.5, 2.0), [-3.0, 3.0], (40, 10))
             for _ in range(500)]
    angles, translations, scales, shears = zip(*draws)
    assert -10 <= min(angles) < 0 < 15 < max(angles) <= 20
    assert max(abs(tx) for tx, _ in translations) == 4 and max(abs(ty) for _, ty in translations) == 5
    assert 0.5 <= min(scales) and max(scales) <= 2.0
    assert all(-3 <= sx <= 3 and sy == 0.0 for sx, sy in shears)


def test_rotation_and_affine_keep_pil_images_and_reproduce_under_a_seed():
    picture, array = image("pil", 9, 8)
    for transform in (T.RandomRotation(40, interpolation="bilinear", fill=(9, 8, 7)),
                      T.RandomAffine(25, translate=(0.1, 0.1), shear=8)):
        tl.manual_seed(11)
        first = transform(picture)
        tl.manual_seed(11)
        assert first.mode == "RGB" and first.size == (8, 9)
        np.testing.assert_array_equal(np.asarray(first), np.asarray(transform(picture)))
    identity = T.RandomAffine(0)
    np.testing.assert_array_equal(np.asarray(identity(picture)), array)
    np.testing.assert_array_equal(identity(array), array)


def test_rotation_and_affine_argument_errors():
    assert repr(T.RandomRotation(30)) == ("RandomRotation(degrees=[-30.0, 30.0], interpolation=nearest, "
                                          "expand=False, fill=0)")
    assert repr(T.RandomAffine(5, scale=(0.9, 1.1), fill=1)) == ("RandomAffine(degrees=[-5.0, 5.0], "
                                                                 "scale=(0.9, 1.1), fill=1)")
    with pytest.raises(ValueError, match="RandomRotation: degrees must be non-negative when it is a single number, "
                                         "got -10"):
        T.RandomRotation(-10)
    with pytest.raises(TypeError, match=r"RandomAffine: shear should be a non-negative number or a sequence of 2 or "
                                        r"4 numbers, got \(1, 2, 3\)"):
        T.RandomAffine(0, shear=(1, 2, 3))
    with pytest.raises(ValueError, match=r"RandomAffine: translate values should be between 0 and 1, got "
                                         r"\(0.5, 1.5\)"):
        T.RandomAffine(0, translate=(0.5, 1.5))
    with pytest.raises(ValueError, match=r"RandomAffine: scale values should be positive, got \(0, 1\)"):
        T.RandomAffine(0, scale=(0, 1))
    with pytest.raises(ValueError, match='RandomRotation: interpolation=.bicubic. is not supported: only "nearest" '
                                         'or "bilinear"'):
        T.RandomRotation(10, interpolation="bicubic")
    with pytest.raises(TypeError, match=r"RandomRotation: center should be a sequence of 2 numbers, got \(1,\)"):
        T.RandomRotation(10, center=(1,))


def test_tensor_augmentations_stay_on_the_cuda_device(tier):
    transforms = [T.RandomResizedCrop((4, 5)), T.RandomVerticalFlip(1.0), T.ColorJitter(0.5, 0.5, 0.5, 0.2),
                  T.Grayscale(3), T.RandomRotation(30, interpolation="bilinear", expand=True, fill=(1, 2, 3)),
                  T.RandomAffine(20, translate=(0.2, 0.1), shear=5), T.RandomErasing(p=1.0, value="random")]
    for dtype in (tl.float32, tl.uint8):
        values = RNG.integers(0, 256, size=(3, 6, 7))
        host = tl.tensor(values / 255 if dtype == tl.float32 else values, dtype=dtype)
        device = host.to("cuda")
        for transform in transforms:
            tl.manual_seed(0)
            out = transform(device)
            tl.manual_seed(0)
            assert out.device == "cuda" and out.dtype == dtype
            np.testing.assert_allclose(out.numpy(), transform(host).numpy(), rtol=1e-6, atol=1e-6)
