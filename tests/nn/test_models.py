"""nn.models: published parameter counts, output and feature-map shapes, gradients, PyTorch's state dict keys.

The ImageNet models are only built and run on a batch of one through ``summary`` (shapes);
each is built once (module-scoped fixture) and freed before the next, since VGG's weights alone are ~550 MB.
"""

import gc
import re

import numpy as np
import pytest

import nn
import tensorlib as tl
from nn import models
from nn.models.resnet import ZeroPadShortcut
from nn.summary import summary


def count(model) -> int:
    return sum(p.array.size for p in model.parameters())


# Option A shortcuts have no parameters; the paper's table 6 gives 0.27M, 0.46M, 0.66M and 0.85M.
CIFAR_RESNETS = {"resnet20": (3, 269_722, 0.27), "resnet32": (5, 464_154, 0.46),
                 "resnet44": (7, 658_586, 0.66), "resnet56": (9, 853_018, 0.85)}


@pytest.mark.parametrize("name, expected", [("lenet5", 61_706), ("nin", 966_986)]
                         + [(name, params) for name, (_, params, _) in CIFAR_RESNETS.items()])
def test_small_models_have_the_published_parameter_counts(name, expected):
    assert count(models.get_model(name)) == expected


@pytest.mark.parametrize("name", CIFAR_RESNETS)
def test_cifar_resnet_counts_follow_from_the_architecture(name):
    n, expected, paper_millions = CIFAR_RESNETS[name]

    def conv3x3_bn(cin, cout):  # the conv has no bias; batch norm has a weight and a bias per channel
        return 9 * cin * cout + 2 * cout

    total, channels = conv3x3_bn(3, 16), 16
    for width in (16, 32, 64):
        for _ in range(n):
            total += conv3x3_bn(channels, width) + conv3x3_bn(width, width)
            channels = width
    total += 64 * 10 + 10
    assert total == expected
    assert round(expected / 1e6, 2) == paper_millions


@pytest.mark.parametrize("name, x_shape, kwargs", [
    ("lenet5", (2, 1, 28, 28), {}),
    ("lenet5", (2, 1, 28, 28), {"activation": "relu", "pooling": "max"}),
    ("resnet20", (2, 3, 32, 32), {}),
    ("nin", (2, 3, 32, 32), {}),
    ("vgg11", (2, 3, 32, 32), {"small_input": True, "num_classes": 10}),
    ("resnet20", (2, 3, 32, 32), {"num_classes": 100}),
])
def test_forward_shapes_on_the_intended_input(name, x_shape, kwargs):
    tl.manual_seed(0)
    model = models.get_model(name, **kwargs).eval()
    with tl.no_grad():
        out = model(tl.randn(*x_shape))
    assert out.shape == (x_shape[0], kwargs.get("num_classes", 10))
    assert np.isfinite(out.numpy()).all()


@pytest.mark.parametrize("name", ["lenet5", "resnet20"])
def test_backward_reaches_every_parameter(name):
    tl.manual_seed(0)
    model = models.get_model(name)
    x = tl.randn(2, *models.INPUT_SIZES[name])
    nn.CrossEntropyLoss()(model(x), tl.tensor([3, 7])).backward()
    for param_name, param in model.named_parameters():
        assert param.grad is not None, param_name
        assert param.grad.shape == param.shape
        assert np.abs(param.grad.numpy()).sum() > 0, param_name


def test_lenet5_layers_and_options():
    model = models.lenet5()
    assert list(model.state_dict()) == [f"{layer}.{kind}" for layer in ("conv1", "conv2", "fc1", "fc2", "fc3")
                                        for kind in ("weight", "bias")]
    assert isinstance(model.act1, nn.Tanh) and isinstance(model.pool1, nn.AvgPool2d)
    fast = models.lenet5(activation="relu", pooling="max")
    assert isinstance(fast.act1, nn.ReLU) and isinstance(fast.pool1, nn.MaxPool2d)
    assert count(fast) == count(model)
    with pytest.raises(ValueError, match="activation"):
        models.lenet5(activation="sigmoid")
    with pytest.raises(ValueError, match="pooling"):
        models.lenet5(pooling="lp")


def test_option_a_shortcut_subsamples_and_pads_channels_with_zeros():
    x = tl.randn(2, 16, 8, 8)
    out = ZeroPadShortcut(16, 32, stride=2)(x).numpy()
    assert out.shape == (2, 32, 4, 4)
    np.testing.assert_array_equal(out[:, 8:24], x.numpy()[:, :, ::2, ::2])
    assert not out[:, :8].any() and not out[:, 24:].any()


def test_cifar_resnet_state_dict_keys():
    keys = list(models.resnet20().state_dict())
    for key in ("conv1.weight", "bn1.running_mean", "layer1.0.conv1.weight", "layer2.0.bn2.num_batches_tracked",
                "layer3.2.conv2.weight", "fc.weight", "fc.bias"):
        assert key in keys
    assert not any("downsample" in key for key in keys)  # option A: no projection weights


def test_googlenet_aux_heads_add_parameters_and_outputs():
    plain, with_aux = models.googlenet(), models.googlenet(aux_logits=True)
    aux_params = count(with_aux) - count(plain)
    assert aux_params == count(with_aux.aux1) + count(with_aux.aux2) == 6_379_728
    stats = summary(with_aux, (3, 224, 224), verbose=False)
    assert stats.total_params == 13_378_280
    assert stats.rows[-1].output_shape == (1, 1000)
    assert all(row.output_shape is None for row in stats.rows if row.name.startswith("aux"))  # eval: not run
    x = tl.zeros(0, 3, 224, 224)  # a zero-size batch runs the training-mode branch on shapes alone
    with tl.no_grad():
        logits, aux1, aux2 = with_aux.train()(x)
        assert logits.shape == aux1.shape == aux2.shape == (0, 1000)
        assert with_aux.eval()(x).shape == (0, 1000)


def test_registry():
    assert list(models.available()) == list(models.INPUT_SIZES)
    assert isinstance(models.get_model("lenet5", num_classes=5), models.LeNet5)
    with pytest.raises(ValueError, match="unknown model 'lenet'.*lenet5"):
        models.get_model("lenet")
    for name, builder in models.available().items():
        assert str(models.INPUT_SIZES[name]) in builder.__doc__, name


PUBLISHED = {
    "alexnet": 60_965_224, "zfnet": 62_357_608,
    "vgg11": 132_863_336, "vgg13": 133_047_848, "vgg16": 138_357_544, "vgg19": 143_667_240,
    "googlenet": 6_998_552, "resnet18": 11_689_512, "resnet34": 21_797_672,
}

# Row name -> side of its square output map on a 224x224 input.
FEATURE_MAPS = {
    "alexnet": {"features.0": 55, "features.2": 27, "features.3": 27, "features.5": 13, "features.10": 13,
                "features.12": 6},
    "zfnet": {"features.0": 110, "features.2": 55, "features.3": 26, "features.5": 13, "features.6": 13,
              "features.10": 13, "features.12": 6},
    "vgg11": {"features.2": 112, "features.5": 56, "features.10": 28, "features.15": 14, "features.20": 7},
    "vgg13": {"features.4": 112, "features.9": 56, "features.14": 28, "features.19": 14, "features.24": 7},
    "vgg16": {"features.4": 112, "features.9": 56, "features.16": 28, "features.23": 14, "features.30": 7},
    "vgg19": {"features.4": 112, "features.9": 56, "features.18": 28, "features.27": 14, "features.36": 7},
    "googlenet": {"conv1.conv": 112, "maxpool1": 56, "conv3.conv": 56, "maxpool2": 28,
                  "inception3b.branch3.1.conv": 28, "maxpool3": 14, "inception4e.branch2.1.conv": 14,
                  "maxpool4": 7, "inception5b.branch4.1.conv": 7, "avgpool": 1},
    "resnet18": {"conv1": 112, "maxpool": 56, "layer1.1.conv2": 56, "layer2.0.conv1": 28,
                 "layer2.0.downsample.0": 28, "layer3.1.conv2": 14, "layer4.1.conv2": 7, "avgpool": 1},
    "resnet34": {"layer1.2.conv2": 56, "layer2.3.conv2": 28, "layer3.5.conv2": 14, "layer4.2.conv2": 7},
}

# A few state dict entries of each model and their shapes (PyTorch's keys and layouts).
STATE_DICT_SHAPES = {
    "alexnet": {"features.0.weight": (96, 3, 11, 11), "features.3.weight": (256, 48, 5, 5),  # groups=2
                "features.6.weight": (384, 256, 3, 3), "features.8.weight": (384, 192, 3, 3),
                "features.10.weight": (256, 192, 3, 3), "classifier.1.weight": (4096, 9216),
                "classifier.6.bias": (1000,)},
    "zfnet": {"features.0.weight": (96, 3, 7, 7), "features.3.weight": (256, 96, 5, 5),
              "features.8.weight": (384, 384, 3, 3), "classifier.1.weight": (4096, 9216)},
    "vgg11": {"features.0.weight": (64, 3, 3, 3), "features.18.bias": (512,), "classifier.0.weight": (4096, 25088),
              "classifier.6.bias": (1000,)},
    "vgg13": {"features.22.weight": (512, 512, 3, 3), "classifier.3.weight": (4096, 4096)},
    "vgg16": {"features.0.weight": (64, 3, 3, 3), "features.28.weight": (512, 512, 3, 3),
              "classifier.0.weight": (4096, 25088), "classifier.6.weight": (1000, 4096)},
    "vgg19": {"features.34.weight": (512, 512, 3, 3), "classifier.6.bias": (1000,)},
    "googlenet": {"conv1.conv.weight": (64, 3, 7, 7), "conv3.conv.weight": (192, 64, 3, 3),
                  "inception3a.branch3.1.conv.weight": (32, 16, 5, 5),
                  "inception5b.branch4.1.conv.weight": (128, 832, 1, 1), "fc.weight": (1000, 1024)},
    "resnet18": {"conv1.weight": (64, 3, 7, 7), "bn1.running_mean": (64,), "bn1.num_batches_tracked": (),
                 "layer1.0.conv1.weight": (64, 64, 3, 3), "layer2.0.downsample.0.weight": (128, 64, 1, 1),
                 "layer2.0.downsample.1.running_var": (128,), "layer4.1.bn2.bias": (512,),
                 "fc.weight": (1000, 512), "fc.bias": (1000,)},
    "resnet34": {"layer3.5.conv2.weight": (256, 256, 3, 3), "layer4.0.downsample.0.weight": (512, 256, 1, 1)},
}


@pytest.fixture(scope="module", params=list(PUBLISHED))
def imagenet_model(request):
    """(name, model, summary at batch size 2); one model alive at a time."""
    model = models.get_model(request.param)
    yield request.param, model, summary(model, models.INPUT_SIZES[request.param], batch_size=2, verbose=False)
    del model
    gc.collect()


def test_imagenet_models_have_the_published_parameter_counts(imagenet_model):
    name, model, stats = imagenet_model
    assert count(model) == stats.total_params == PUBLISHED[name]


def test_imagenet_models_output_one_score_per_class(imagenet_model):
    _, _, stats = imagenet_model
    assert stats.rows[-1].output_shape == (2, 1000)


def test_imagenet_feature_map_sizes(imagenet_model):
    name, _, stats = imagenet_model
    shapes = {row.name: row.output_shape for row in stats.rows}
    for row_name, side in FEATURE_MAPS[name].items():
        assert shapes[row_name][-2:] == (side, side), row_name


def test_imagenet_state_dict_keys_and_shapes(imagenet_model):
    name, model, _ = imagenet_model
    state = model.state_dict()
    for key, shape in STATE_DICT_SHAPES[name].items():
        assert state[key].shape == shape, key



@pytest.mark.parametrize("name, size", [("lenet5", (3, 28, 28)), ("resnet20", (1, 28, 28)), ("nin", (1, 32, 32)),
                                        ("alexnet", (1, 224, 224))])
def test_in_channels(name, size):
    model = nn.models.get_model(name, num_classes=7, in_channels=size[0])
    model.eval()
    with tl.no_grad():
        assert model(tl.randn(1, *size)).shape == (1, 7)


@pytest.mark.parametrize("name", ["alexnet", "vgg11", "googlenet", "resnet18"])
def test_torchvision_weights_arguments(name):
    """The ImageNet builders take torchvision's weights/pretrained/progress keywords: no weights builds the
    model; asking for pretrained weights is refused by name, as none are shipped."""
    builder = getattr(nn.models, name)
    small = {"vgg11": dict(small_input=True)}.get(name, {})
    model = builder(weights=None, pretrained=False, progress=False, num_classes=3, **small)
    assert count(model) == count(builder(num_classes=3, **small))
    for asked, text in ((dict(weights="IMAGENET1K_V1"), "weights='IMAGENET1K_V1'"),
                        (dict(pretrained=True), "pretrained=True")):
        with pytest.raises(ValueError, match=re.escape(f"{name}({text}): no pretrained weights")):
            builder(**asked)


def test_alexnet_with_the_papers_response_normalisation():
    """local_response_norm=True adds the paper's b = a / (2 + 1e-4 * sum of a^2 over 5 channels)^0.75 after the
    first two ReLUs, and no parameters."""
    model = models.alexnet(num_classes=10, local_response_norm=True)
    assert count(model) == count(models.alexnet(num_classes=10))
    assert [i for i, m in enumerate(model.features) if isinstance(m, nn.LocalResponseNorm)] == [2, 6]
    x = tl.tensor(np.random.default_rng(0).standard_normal((1, 3, 67, 67)), dtype=tl.float32)
    with tl.no_grad():
        a = model.features[:2](x).numpy().astype(np.float64)
        b = model.features[2](model.features[:2](x)).numpy()
    squares = np.pad(a ** 2, ((0, 0), (2, 2), (0, 0), (0, 0)))
    window = sum(squares[:, i:i + a.shape[1]] for i in range(5))
    np.testing.assert_allclose(b, a / (2 + 1e-4 * window) ** 0.75, rtol=1e-5, atol=1e-6)
