"""Draws examples of data=distorted_digits next to their 8x8 sources: docs/distorted_digits.png.

    .venv/bin/python tools/show_distorted_digits.py [--out docs/distorted_digits.png] [--seed 0]

An illustration of what the task looks like (the default settings of
nas_hw/app/conf/data/distorted_digits.yaml); it shows images, no result.
"""
import argparse

import matplotlib
import numpy as np

from nas_hw.search.datasets import DIGITS_MAX_PIXEL, read_embedded_digits
from nas_hw.search.distorted import distort

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="docs/distorted_digits.png")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    images, labels = read_embedded_digits()
    picks = [int(np.flatnonzero(labels == c)[0]) for c in range(10)]
    src = images[picks].astype(np.float64) / DIGITS_MAX_PIXEL
    copies = 4
    out = distort(src, 12, copies, np.random.default_rng([args.seed, 2]))
    fig, axes = plt.subplots(copies + 1, 10, figsize=(10, 1.1 * (copies + 1)))
    for c in range(10):
        axes[0, c].imshow(src[c], cmap="gray", vmin=0, vmax=1)
        axes[0, c].set_title(str(c), fontsize=9)
        for k in range(copies):
            axes[k + 1, c].imshow(out[c * copies + k], cmap="gray")
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    axes[0, 0].set_ylabel("8x8 source", fontsize=7)
    for k in range(copies):
        axes[k + 1, 0].set_ylabel(f"12x12 #{k + 1}", fontsize=7)
    fig.suptitle("data=distorted_digits (default settings): each source digit and 4 distortions", fontsize=9)
    fig.tight_layout()
    fig.savefig(args.out, dpi=90)


if __name__ == "__main__":
    main()
