"""A small CNN learns: LeNet-5 on a fixed synthetic task, deterministically."""

import numpy as np

import nn
import tensorlib as tl
from nn.data import DataLoader, get_dataset


def train_lenet(steps=100, seed=0):
    tl.manual_seed(seed)
    model = nn.models.lenet5(num_classes=4, activation="relu", pooling="max")
    optimizer = nn.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    loader = DataLoader(get_dataset("synthetic", split="train", n=640), batch_size=64, shuffle=True)
    losses = []
    while len(losses) < steps:
        for images, labels in loader:
            loss = nn.functional.cross_entropy(model(images), labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
            if len(losses) == steps:
                break
    return model, losses


def test_lenet5_learns_the_synthetic_task_deterministically():
    model, losses = train_lenet()
    assert np.mean(losses[:5]) > 1.0  # chance level for 4 classes is ln 4 = 1.39
    assert np.mean(losses[-5:]) < 0.1  # within 100 steps
    _, again = train_lenet()
    assert again == losses  # same seed, same numbers
    test = get_dataset("synthetic", split="test", n=200)
    images, labels = next(iter(DataLoader(test, batch_size=200)))
    model.eval()
    with tl.no_grad():
        accuracy = (model(images).argmax(1).numpy() == labels.numpy()).mean()
    assert accuracy > 0.95
