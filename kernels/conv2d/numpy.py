"""CPU conv2d variants (being written)."""
