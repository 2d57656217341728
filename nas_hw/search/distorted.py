"""``distorted_digits``: a harder embedded task, generated from the 8x8 digits without downloads.

On the 8x8 digits every network of nas_hw's spaces scores 98-99.5% (a default RBF SVM 99.2%):
architectures hardly differ there. This task places every digit on a larger canvas
(``size`` x ``size``, 12 by default), upscaled, rotated, shifted and with pixel noise, so
that the receptive field and the capacity of a network matter:

1. the 1,797 source images are split *per class* (stratified, seeded by ``seed``) into train,
   valid and test sources, so no source image has copies in two splits and every split holds
   the ten classes in the proportions of the whole data;
2. every training source image yields ``copies`` distorted images, every valid and test one
   ``eval_copies`` (more test images make a smaller difference of accuracy measurable; they
   cost only forward passes): a random affine map (scale in
   ``scale``, rotation within +-``max_rotation_deg`` degrees, a shift of the digit's centre
   within +-``max_shift`` pixels of the canvas centre) resampled bilinearly, then Gaussian
   noise of standard deviation ``noise_std`` (pixel values are in 0..1 before the noise);
3. the splits are normalised with the training split's mean and standard deviation, as the
   other datasets are.

Everything follows from the arguments: the same arguments give the same arrays, bit for bit
(the split from ``numpy.random.RandomState(seed)``, the distortions from
``numpy.random.default_rng([seed, split index])``).
"""
import logging

import numpy as np

from ..checks import check_fraction, check_int, check_number
from .datasets import DIGITS_MAX_PIXEL, Dataset, Split, _labels, _normalise, read_embedded_digits

logger = logging.getLogger(__name__)

NAME = "distorted_digits"
#: Side of the source images (the embedded digits are 8x8).
SOURCE_SIZE = 8
N_CLASSES = 10


def _check_scale(scale):
    if (not isinstance(scale, (list, tuple)) or len(scale) != 2
            or any(isinstance(s, bool) or not isinstance(s, (int, float)) for s in scale)
            or not 0 < scale[0] <= scale[1]):
        raise ValueError(f"scale must be two numbers [low, high] with 0 < low <= high, got {scale!r}")
    return float(scale[0]), float(scale[1])


def stratified_split(labels, valid_fraction, test_fraction, seed):
    """Indices ``(train, valid, test)`` of a per-class split: each class is permuted (seeded) and
    cut at the fractions, so every split holds each class in its share of the data.

    Args:
        labels: int labels, shape ``(N,)``.
        valid_fraction, test_fraction: shares of every class held out (their sum < 1).
        seed: seeds the per-class permutations.

    Returns:
        tuple: three sorted int arrays of indices into ``labels``.
    """
    rng = np.random.RandomState(seed)
    parts = ([], [], [])
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        idx = idx[rng.permutation(len(idx))]
        n_test = int(round(len(idx) * test_fraction))
        n_valid = int(round(len(idx) * valid_fraction))
        parts[2].append(idx[:n_test])
        parts[1].append(idx[n_test:n_test + n_valid])
        parts[0].append(idx[n_test + n_valid:])
    return tuple(np.sort(np.concatenate(p)).astype(np.int64) for p in parts)


def distort(images, size, copies, rng, scale=(1.1, 1.4), max_rotation_deg=30.0, max_shift=1.5,
            noise_std=0.2):
    """``copies`` random affine distortions of every image, on a ``size`` x ``size`` canvas.

    Args:
        images: float images ``(N, h, w)`` with values in 0..1.
        size: side of the output canvas (pixels).
        copies: distorted images per source image.
        rng: a ``numpy.random.Generator``.
        scale: range of the upscaling factor (output pixels per source pixel).
        max_rotation_deg: rotations are uniform in +-this many degrees.
        max_shift: the digit's centre is moved uniformly within +-this many pixels per axis.
        noise_std: standard deviation of the Gaussian pixel noise added afterwards.

    Returns:
        numpy.ndarray: float32 ``(N * copies, size, size)``, copies of image ``i`` at rows
        ``i * copies .. i * copies + copies - 1``.
    """
    n, h, w = images.shape
    m = n * copies
    s = rng.uniform(scale[0], scale[1], m)
    theta = np.deg2rad(rng.uniform(-max_rotation_deg, max_rotation_deg, m))
    shift = rng.uniform(-max_shift, max_shift, (m, 2))
    # inverse map: output pixel (row, col) -> source coordinates, about both centres
    grid = np.arange(size, dtype=np.float64) - (size - 1) / 2.0
    rows, cols = np.meshgrid(grid, grid, indexing="ij")
    dr = rows[None] - shift[:, 0, None, None]
    dc = cols[None] - shift[:, 1, None, None]
    cos, sin = (np.cos(theta) / s)[:, None, None], (np.sin(theta) / s)[:, None, None]
    src_r = cos * dr - sin * dc + (h - 1) / 2.0
    src_c = sin * dr + cos * dc + (w - 1) / 2.0
    source = np.repeat(images.astype(np.float64), copies, axis=0)
    out = _bilinear(source, src_r, src_c)
    out += rng.normal(0.0, noise_std, out.shape) if noise_std > 0 else 0.0
    return out.astype(np.float32)


def _bilinear(images, r, c):
    """``images[k]`` sampled at (``r[k]``, ``c[k]``), bilinearly, 0 outside the image."""
    m, h, w = images.shape
    padded = np.zeros((m, h + 2, w + 2))
    padded[:, 1:-1, 1:-1] = images
    r = np.clip(r + 1.0, 0.0, h + 1.0)  # in the padded frame; the border is 0
    c = np.clip(c + 1.0, 0.0, w + 1.0)
    r0 = np.minimum(np.floor(r).astype(np.int64), h)
    c0 = np.minimum(np.floor(c).astype(np.int64), w)
    fr, fc = r - r0, c - c0
    k = np.arange(m)[:, None, None]
    return ((1 - fr) * (1 - fc) * padded[k, r0, c0] + (1 - fr) * fc * padded[k, r0, c0 + 1]
            + fr * (1 - fc) * padded[k, r0 + 1, c0] + fr * fc * padded[k, r0 + 1, c0 + 1])


def load_distorted_digits(name=NAME, size=12, copies=1, eval_copies=3, scale=(1.1, 1.4),
                          max_rotation_deg=30.0, max_shift=1.5, noise_std=0.2, valid_fraction=0.2,
                          test_fraction=0.2, seed=0):
    """The ``distorted_digits`` task (see the module docstring).

    Args:
        name: must be ``'distorted_digits'`` (the config's ``data.name``).
        size: side of the square canvas, >= 8.
        copies: distorted images per training source image, >= 1.
        eval_copies: distorted images per valid and per test source image, >= 1.
        scale, max_rotation_deg, max_shift, noise_std: the distortion (see :func:`distort`).
        valid_fraction, test_fraction: shares of each class's source images held out.
        seed: seeds the split and the distortions.

    Returns:
        Dataset: float32 ``x`` ``(N, 1, size, size)``, int32 ``y`` ``(N, 1)``, 10 classes.

    Raises:
        ValueError: a bad argument (one line naming it and what is allowed).
    """
    if name != NAME:
        raise ValueError(f"name must be {NAME!r} for this loader, got {name!r}")
    size = check_int("size", size, low=SOURCE_SIZE)
    copies = check_int("copies", copies, low=1)
    eval_copies = check_int("eval_copies", eval_copies, low=1)
    scale = _check_scale(scale)
    max_rotation_deg = check_number("max_rotation_deg", max_rotation_deg, low=0, high=180)
    max_shift = check_number("max_shift", max_shift, low=0, high=size / 2)
    noise_std = check_number("noise_std", noise_std, low=0)
    valid_fraction = check_fraction("valid_fraction", valid_fraction)
    test_fraction = check_fraction("test_fraction", test_fraction)
    if valid_fraction + test_fraction >= 1.0:
        raise ValueError(f"valid_fraction + test_fraction must be < 1 so that some training data "
                         f"remains, got {valid_fraction} + {test_fraction}")
    seed = check_int("seed", seed, low=0)
    images, labels = read_embedded_digits()
    images = images.astype(np.float64) / DIGITS_MAX_PIXEL
    splits = []
    for i, idx in enumerate(stratified_split(labels, valid_fraction, test_fraction, seed)):
        rng = np.random.default_rng([seed, i])
        n_copies = copies if i == 0 else eval_copies
        x = distort(images[idx], size, n_copies, rng, scale=scale, max_rotation_deg=max_rotation_deg,
                    max_shift=max_shift, noise_std=noise_std)[:, None]
        splits.append((x, _labels(np.repeat(labels[idx], n_copies))))
    (train_x, train_y), (valid_x, valid_y), (test_x, test_y) = splits
    train_x, valid_x, test_x, mean, std = _normalise(train_x, valid_x, test_x)
    logger.debug("distorted digits %dx%d: %d train, %d valid, %d test (seed %d)", size, size,
                 len(train_y), len(valid_y), len(test_y), seed)
    return Dataset(name=NAME, train=Split(train_x, train_y), valid=Split(valid_x, valid_y),
                   test=Split(test_x, test_y), n_classes=N_CLASSES, input_shape=(1, size, size),
                   mean=mean, std=std, class_names=tuple(str(i) for i in range(N_CLASSES)))
