"""Regenerate ``nas_hw/data/digits.npz`` from scikit-learn's bundled digits data.

scikit-learn ships the UCI optical-recognition digits (1,797 images of 8x8 pixels,
values 0..16) inside its package, so this needs no network. nas_hw itself never
imports scikit-learn: it reads the committed npz file.

Usage: ``.venv/bin/python tools/make_digits.py [output_path]``
"""
import os
import sys

import numpy as np


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out_path = argv[0] if argv else os.path.join(root, "nas_hw", "data", "digits.npz")
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = np.asarray(digits.images)
    if images.shape != (1797, 8, 8) or images.min() < 0 or images.max() > 16:
        raise ValueError(f"unexpected digits data: shape {images.shape}, "
                         f"range {images.min()}..{images.max()}")
    if not np.array_equal(images, np.round(images)):
        raise ValueError("digits pixels are expected to be integers 0..16")
    images_u8 = images.astype(np.uint8)
    labels = np.asarray(digits.target).astype(np.int64)
    os.makedirs(os.path.dirname(out_path), exist_ok=True)
    np.savez_compressed(out_path, images=images_u8, labels=labels)
    sys.stdout.write(f"wrote {out_path}: images {images_u8.shape} uint8, labels {labels.shape}\n")


if __name__ == "__main__":
    main()
