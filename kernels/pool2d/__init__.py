"""pool2d: placeholder until the family lands."""
