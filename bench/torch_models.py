"""LeNet-5, CIFAR ResNet-20 and CIFAR VGG-11 with batch norm in PyTorch, the same architectures as
``nn.models`` (for side-by-side training steps; imported only when torch is)."""

from __future__ import annotations


def build(torch, name: str):
    tnn = torch.nn
    if name == "lenet5":
        return tnn.Sequential(
            tnn.Conv2d(1, 6, 5, padding=2), tnn.Tanh(), tnn.AvgPool2d(2),
            tnn.Conv2d(6, 16, 5), tnn.Tanh(), tnn.AvgPool2d(2), tnn.Flatten(),
            tnn.Linear(400, 120), tnn.Tanh(), tnn.Linear(120, 84), tnn.Tanh(), tnn.Linear(84, 10))
    if name == "vgg11_bn":  # nn.models.vgg11(num_classes=10, batch_norm=True, small_input=True)
        layers, channels = [], 3
        for item in (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"):
            if item == "M":
                layers.append(tnn.MaxPool2d(2, 2))
                continue
            layers += [tnn.Conv2d(channels, item, 3, padding=1), tnn.BatchNorm2d(item), tnn.ReLU()]
            channels = item
        return tnn.Sequential(*layers, tnn.AdaptiveAvgPool2d(1), tnn.Flatten(), tnn.Linear(512, 10))

    class Block(tnn.Module):
        """conv-BN-ReLU-conv-BN + shortcut, ReLU; option A shortcut (subsample, zero-pad channels)."""

        def __init__(self, cin, cout, stride):
            super().__init__()
            self.conv1 = tnn.Conv2d(cin, cout, 3, stride, 1, bias=False)
            self.bn1 = tnn.BatchNorm2d(cout)
            self.conv2 = tnn.Conv2d(cout, cout, 3, 1, 1, bias=False)
            self.bn2 = tnn.BatchNorm2d(cout)
            self.stride, self.extra = stride, cout - cin

        def forward(self, x):
            out = self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x)))))
            shortcut = x
            if self.stride != 1 or self.extra:
                shortcut = torch.nn.functional.pad(x[:, :, ::self.stride, ::self.stride],
                                                   (0, 0, 0, 0, self.extra // 2, self.extra - self.extra // 2))
            return torch.relu(out + shortcut)

    layers = [tnn.Conv2d(3, 16, 3, 1, 1, bias=False), tnn.BatchNorm2d(16), tnn.ReLU()]
    for cin, cout, stride in ((16, 16, 1), (16, 32, 2), (32, 64, 2)):
        layers += [Block(cin, cout, stride), Block(cout, cout, 1), Block(cout, cout, 1)]
    layers += [tnn.AdaptiveAvgPool2d(1), tnn.Flatten(), tnn.Linear(64, 10)]
    return tnn.Sequential(*layers)
