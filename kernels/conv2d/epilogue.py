"""Activations a conv2d forward variant applies in its epilogue, as it writes the output (the way cuDNN and
cutlass fuse them): conv -> ReLU then costs one pass over the output instead of a second kernel that reads
it back and writes it again.

A variant that can do so is marked ``@fuses("relu")`` and takes ``activation="relu"``; for the others the
``conv2d_forward`` entry point applies the activation to the fresh output in place.
"""

from __future__ import annotations

ACTIVATIONS = ("relu",)


def fuses(*activations):
    """Decorator: the forward variant applies ``activations`` itself when called with ``activation=``."""
    unknown = set(activations) - set(ACTIVATIONS)
    if unknown:
        raise ValueError(f"fuses: activations must be among {ACTIVATIONS}, got {sorted(unknown)}")

    def mark(fn):
        fn.activations = frozenset(activations)
        return fn

    return mark
