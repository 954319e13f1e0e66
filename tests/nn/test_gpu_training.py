"""A whole CNN trains on the GPU: LeNet-5's losses over 20 steps match the CPU run to 1e-3 relative."""

import numpy as np
import pytest

import nn
import tensorlib as tl
from nn.data import DataLoader, get_dataset

pytestmark = pytest.mark.gpu


def losses_on(device, steps=20):
    tl.manual_seed(0)
    model = nn.models.lenet5(num_classes=4, activation="relu", pooling="max").to(device)
    optimizer = nn.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    loader = DataLoader(get_dataset("synthetic", split="train", n=64 * steps), batch_size=64)
    losses = []
    for images, labels in loader:
        loss = nn.functional.cross_entropy(model(images.to(device)), labels.to(device))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return np.array(losses)


def test_lenet5_gpu_losses_match_cpu():
    cpu, gpu = losses_on("cpu"), losses_on("cuda")
    assert len(gpu) == 20
    np.testing.assert_allclose(gpu, cpu, rtol=1e-3)


def test_lenet5_graphed_steps_match_eager_gpu_steps():
    """The same 20 steps replayed from one captured CUDA graph (after 2 eager warm-up steps)."""
    tl.manual_seed(0)
    model = nn.models.lenet5(num_classes=4, activation="relu", pooling="max").to("cuda")
    step = nn.GraphedStep(model, nn.optim.SGD(model.parameters(), lr=0.05, momentum=0.9))
    loader = DataLoader(get_dataset("synthetic", split="train", n=64 * 20), batch_size=64)
    losses = [step(images.to("cuda"), labels.to("cuda"))[0].item() for images, labels in loader]
    assert step.replays == 18
    np.testing.assert_allclose(losses, losses_on("cuda"), rtol=1e-5)
