"""Pictures of what a network learned: training curves, first-layer filters, activation maps, confusion
matrix. PNG files through matplotlib's Agg backend (no display needed)."""

from __future__ import annotations

import math
import os

import numpy as np

import tensorlib as tl


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _grid_shape(count: int) -> tuple[int, int]:
    columns = math.ceil(math.sqrt(count))
    return math.ceil(count / columns), columns


def _rescale(image: np.ndarray) -> np.ndarray:
    low, high = float(image.min()), float(image.max())
    return (image - low) / (high - low) if high > low else np.zeros_like(image)


def plot_curves(history, path):
    """Loss and accuracy per epoch, training and validation."""
    plt = _pyplot()
    epochs = [m["epoch"] for m in history]
    figure, (loss_axis, accuracy_axis) = plt.subplots(1, 2, figsize=(10, 4))
    for key, label in (("train_loss", "train"), ("val_loss", "validation")):
        if any(key in m for m in history):
            loss_axis.plot(epochs, [m.get(key, np.nan) for m in history], marker="o", label=label)
    for key, label in (("train_accuracy", "train"), ("val_accuracy", "validation")):
        if any(key in m for m in history):
            accuracy_axis.plot(epochs, [m.get(key, np.nan) for m in history], marker="o", label=label)
    loss_axis.set(title="loss", xlabel="epoch")
    accuracy_axis.set(title="accuracy", xlabel="epoch")
    for axis in (loss_axis, accuracy_axis):
        axis.grid(alpha=0.3)
        axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def plot_filters(weight: np.ndarray, path, title="first convolution's filters"):
    """Each filter (K, C, R, S) as a small image: RGB when C is 3, else the mean over input channels."""
    plt = _pyplot()
    count = weight.shape[0]
    rows, columns = _grid_shape(count)
    figure, axes = plt.subplots(rows, columns, figsize=(1.2 * columns, 1.2 * rows + 0.4), squeeze=False)
    for index, axis in enumerate(axes.flat):
        axis.axis("off")
        if index < count:
            kernel = weight[index]
            if kernel.shape[0] == 3:
                axis.imshow(_rescale(kernel.transpose(1, 2, 0)), interpolation="nearest")
            else:
                axis.imshow(kernel.mean(0), cmap="gray", interpolation="nearest")
    figure.suptitle(title)
    figure.savefig(path, dpi=100)
    plt.close(figure)


def activation_maps(model, image) -> list[tuple[str, np.ndarray]]:
    """The output of every Conv2d for one image (C, H, W): [(layer name, (K, P, Q) array)], in order."""
    from nn.layers import Conv2d

    captured, handles = [], []
    for name, module in model.named_modules():
        if isinstance(module, Conv2d):
            handles.append(module.register_forward_hook(
                lambda m, inputs, output, name=name: captured.append((name, output.detach().cpu().numpy()[0]))))
    was_training = model.training
    model.eval()
    try:
        with tl.no_grad():
            model(image.unsqueeze(0))
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()
    return captured


def plot_activation_maps(model, image, directory, max_maps=64) -> list[str]:
    """One PNG per convolution showing its activation maps for ``image``; returns the paths."""
    plt = _pyplot()
    paths = []
    for position, (name, maps) in enumerate(activation_maps(model, image), 1):
        count = min(len(maps), max_maps)
        rows, columns = _grid_shape(count)
        figure, axes = plt.subplots(rows, columns, figsize=(1.3 * columns, 1.3 * rows + 0.4), squeeze=False)
        for index, axis in enumerate(axes.flat):
            axis.axis("off")
            if index < count:
                axis.imshow(maps[index], cmap="viridis", interpolation="nearest")
        figure.suptitle(f"activation maps of {name} ({maps.shape[0]} x {maps.shape[1]}x{maps.shape[2]})")
        path = os.path.join(directory, f"activations_{position:02d}_{name.replace('.', '_') or 'conv'}.png")
        figure.savefig(path, dpi=100)
        plt.close(figure)
        paths.append(path)
    return paths


def plot_confusion(matrix: np.ndarray, path, classes=None):
    """Counts of (true class, predicted class), with the counts written in the cells."""
    plt = _pyplot()
    size = matrix.shape[0]
    classes = classes or [str(i) for i in range(size)]
    figure, axis = plt.subplots(figsize=(1 + 0.6 * size, 1 + 0.6 * size))
    axis.imshow(matrix, cmap="Blues")
    for (i, j), count in np.ndenumerate(matrix):
        axis.text(j, i, str(count), ha="center", va="center", fontsize=8,
                  color="white" if count > matrix.max() / 2 else "black")
    axis.set(xticks=range(size), yticks=range(size), xticklabels=classes, yticklabels=classes,
             xlabel="predicted", ylabel="true", title="confusion matrix")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def plot_image(image: np.ndarray, path, title=""):
    """The input the activation maps were computed for."""
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(3, 3))
    axis.axis("off")
    if image.shape[0] == 3:
        axis.imshow(_rescale(image.transpose(1, 2, 0)))
    else:
        axis.imshow(image[0], cmap="gray")
    axis.set_title(title)
    figure.savefig(path, dpi=100)
    plt.close(figure)
