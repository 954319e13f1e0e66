"""AlexNet (Krizhevsky et al. 2012) and its ILSVRC 2013 refinement ZFNet (Zeiler & Fergus 2013).

Both papers normalise the responses of the first two conv layers across neighbouring channels (local
response / contrast normalisation). By default it is omitted, as in torchvision: it has no parameters, so the
counts are unaffected, and later work found it brings little (VGG) and replaced it with batch norm.
``AlexNet(local_response_norm=True)`` puts the paper's back after the first two ReLUs (section 3.3: k=2, n=5,
alpha=1e-4, beta=0.75; ``nn.LocalResponseNorm`` divides alpha by n, so it is given 5e-4).
"""

from __future__ import annotations

import nn
from nn.models._init import no_pretrained_weights


def _classifier(num_classes: int) -> nn.Sequential:
    """The shared head: dropout, fc 9216->4096, dropout, fc 4096->4096, fc 4096->num_classes, ReLU between."""
    return nn.Sequential(
        nn.Dropout(0.5), nn.Linear(256 * 6 * 6, 4096), nn.ReLU(),
        nn.Dropout(0.5), nn.Linear(4096, 4096), nn.ReLU(),
        nn.Linear(4096, num_classes),
    )


class AlexNet(nn.Module):
    """The paper's network as one model, its split over two GPUs written as ``groups=2``.

    Input (N, 3, 224, 224); the first conv pads by 2 so that 224 gives the paper's 55x55 maps (the paper's
    arithmetic needs 227x227 without padding). Spatial sizes 55, 27, 27, 13, 13, 13, 13, 6; 60,965,224
    parameters at 1000 classes.
    Conv 2, 4 and 5 only see the 48 or 192 channels computed on their own GPU (``groups=2``); conv 3 and the
    fully connected layers see both halves.
    """

    def __init__(self, num_classes: int = 1000, in_channels: int = 3, local_response_norm: bool = False):
        super().__init__()

        def normalised():  # the paper's response normalisation, when asked for (module docstring)
            return [nn.LocalResponseNorm(5, alpha=5e-4, beta=0.75, k=2.0)] if local_response_norm else []

        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 96, 11, stride=4, padding=2), nn.ReLU(), *normalised(), nn.MaxPool2d(3, 2),
            nn.Conv2d(96, 256, 5, padding=2, groups=2), nn.ReLU(), *normalised(), nn.MaxPool2d(3, 2),
            nn.Conv2d(256, 384, 3, padding=1), nn.ReLU(),
            nn.Conv2d(384, 384, 3, padding=1, groups=2), nn.ReLU(),
            nn.Conv2d(384, 256, 3, padding=1, groups=2), nn.ReLU(), nn.MaxPool2d(3, 2),
        )
        self.classifier = _classifier(num_classes)

    def forward(self, x):
        return self.classifier(self.features(x).flatten(1))


class ZFNet(nn.Module):
    """AlexNet with a 7x7 stride-2 first conv, a stride-2 second conv and no GPU split.

    Input (N, 3, 224, 224); spatial sizes 110 (conv1), 55 (pool1), 26 (conv2), 13 (pool2, conv3-5),
    6 (pool3), as in the paper's figure 3. The pools round up (``ceil_mode``, Caffe's convention) so that
    110 -> 55 and 26 -> 13. 62,357,608 parameters at 1000 classes.
    """

    def __init__(self, num_classes: int = 1000, in_channels: int = 3):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 96, 7, stride=2, padding=1), nn.ReLU(), nn.MaxPool2d(3, 2, ceil_mode=True),
            nn.Conv2d(96, 256, 5, stride=2), nn.ReLU(), nn.MaxPool2d(3, 2, ceil_mode=True),
            nn.Conv2d(256, 384, 3, padding=1), nn.ReLU(),
            nn.Conv2d(384, 384, 3, padding=1), nn.ReLU(),
            nn.Conv2d(384, 256, 3, padding=1), nn.ReLU(), nn.MaxPool2d(3, 2, ceil_mode=True),
        )
        self.classifier = _classifier(num_classes)

    def forward(self, x):
        return self.classifier(self.features(x).flatten(1))


@no_pretrained_weights
def alexnet(num_classes: int = 1000, in_channels: int = 3, local_response_norm: bool = False) -> AlexNet:
    """AlexNet for (3, 224, 224) ImageNet images: 60,965,224 parameters at 1000 classes (see ``AlexNet``);
    ``local_response_norm=True`` adds the paper's response normalisation."""
    return AlexNet(num_classes, in_channels, local_response_norm)


def zfnet(num_classes: int = 1000, in_channels: int = 3) -> ZFNet:
    """ZFNet for (3, 224, 224) ImageNet images: 62,357,608 parameters at 1000 classes (see ``ZFNet``)."""
    return ZFNet(num_classes, in_channels)
