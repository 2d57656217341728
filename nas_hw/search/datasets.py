"""Small image-classification datasets for the search examples and tests.

Two datasets are available through :func:`load_dataset`:

* ``'digits'`` (default): the UCI optical-recognition handwritten digits as shipped
  by scikit-learn (1,797 real 8x8 grey images, pixel values 0..16, 10 classes).
  The data is embedded in this package as ``nas_hw/data/digits.npz`` (generated
  once by ``tools/make_digits.py``), so loading it needs neither scikit-learn nor
  a network.
* ``'cifar10'``: CIFAR-10 read from the standard "python version" batches
  (``data_batch_1`` .. ``data_batch_5`` and ``test_batch``) in a local directory.
  Nothing is downloaded.

Images come back as float32 ``(N, C, H, W)`` arrays normalised per channel with
the mean and standard deviation of the training split; labels as int32 ``(N, 1)``.
"""
import logging
import os
import pickle
from dataclasses import dataclass, replace
from typing import Iterator, Optional, Tuple

import numpy as np

from ..checks import check_fraction, check_seed
from ..errors import DatasetError

logger = logging.getLogger(__name__)

DATASET_NAMES = ('digits', 'cifar10')

DIGITS_PATH = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'data', 'digits.npz')
DIGITS_N_SAMPLES = 1797
DIGITS_MAX_PIXEL = 16

CIFAR10_TRAIN_FILES = tuple(f'data_batch_{i}' for i in range(1, 6))
CIFAR10_TEST_FILE = 'test_batch'
CIFAR10_SUBDIR = 'cifar-10-batches-py'
CIFAR10_CLASS_NAMES = ('airplane', 'automobile', 'bird', 'cat', 'deer',
                       'dog', 'frog', 'horse', 'ship', 'truck')
CIFAR10_IMAGE_SHAPE = (3, 32, 32)

DEFAULT_DIGITS_TEST_FRACTION = 0.2


@dataclass
class Split:
    """One split of a dataset.

    Attributes:
        x: float32 images, shape ``(N, C, H, W)``, normalised.
        y: int32 labels, shape ``(N, 1)``.
    """
    x: np.ndarray
    y: np.ndarray

    def __len__(self):
        return int(self.x.shape[0])


@dataclass
class Dataset:
    """A loaded, split and normalised dataset.

    Attributes:
        name: ``'digits'`` or ``'cifar10'``.
        train: training split.
        valid: validation split (may hold 0 samples when ``valid_fraction=0``).
        test: test split.
        n_classes: number of classes.
        input_shape: ``(C, H, W)`` of one image.
        mean: per-channel mean (in raw pixel units scaled to 0..1) removed from the images.
        std: per-channel standard deviation the images were divided by.
        class_names: one name per class.
        adapted_from: the stored image shape ``(C, H, W)`` when :func:`adapt_images` changed
            it for a network (``None``: the images are as stored).
    """
    name: str
    train: Split
    valid: Split
    test: Split
    n_classes: int
    input_shape: Tuple[int, int, int]
    mean: np.ndarray
    std: np.ndarray
    class_names: Tuple[str, ...]
    adapted_from: Optional[Tuple[int, int, int]] = None


def _check_seed(seed):
    return check_seed(seed)


def _normalise(train_x, *others):
    """Scale with the per-channel statistics of ``train_x``; returns (arrays..., mean, std)."""
    axes = (0, 2, 3)
    mean = train_x.mean(axis=axes, keepdims=True, dtype=np.float64)
    std = train_x.std(axis=axes, keepdims=True, dtype=np.float64)
    if np.any(std <= 0):
        raise DatasetError(f"a channel of the training images is constant (std {std.ravel()}); "
                           "cannot normalise")
    out = [((a - mean) / std).astype(np.float32) for a in (train_x,) + others]
    return out + [mean.ravel().astype(np.float32), std.ravel().astype(np.float32)]


def _labels(y):
    return np.asarray(y, dtype=np.int32).reshape(-1, 1)


def read_embedded_digits():
    """The embedded digits: images ``(1797, 8, 8)`` (pixel values 0..16) and labels ``(1797,)``.

    Raises:
        FileNotFoundError: the package's data file is missing.
        DatasetError: it holds something else.
    """
    if not os.path.isfile(DIGITS_PATH):
        raise FileNotFoundError(f"embedded digits data not found at {DIGITS_PATH}; "
                                "regenerate it with tools/make_digits.py")
    with np.load(DIGITS_PATH) as data:
        if 'images' not in data or 'labels' not in data:
            raise DatasetError(f"{DIGITS_PATH} must hold arrays 'images' and 'labels', "
                               f"found {sorted(data.files)}")
        images = data['images']
        labels = data['labels']
    if images.shape != (DIGITS_N_SAMPLES, 8, 8) or labels.shape != (DIGITS_N_SAMPLES,):
        raise DatasetError(f"{DIGITS_PATH}: expected images (1797, 8, 8) and labels (1797,), "
                           f"got {images.shape} and {labels.shape}")
    return images, labels


def _load_digits(valid_fraction, test_fraction, seed):
    test_fraction = DEFAULT_DIGITS_TEST_FRACTION if test_fraction is None else test_fraction
    test_fraction = check_fraction('test_fraction', test_fraction)
    if valid_fraction + test_fraction >= 1.0:
        raise ValueError(f"valid_fraction + test_fraction must be < 1 so that some training "
                         f"data remains, got {valid_fraction} + {test_fraction}")
    images, labels = read_embedded_digits()
    n = images.shape[0]
    rng = np.random.RandomState(seed)
    order = rng.permutation(n)
    n_test = int(round(n * test_fraction))
    n_valid = int(round(n * valid_fraction))
    test_idx = order[:n_test]
    valid_idx = order[n_test:n_test + n_valid]
    train_idx = order[n_test + n_valid:]
    x = (images.astype(np.float32) / DIGITS_MAX_PIXEL)[:, None, :, :]
    train_x, valid_x, test_x, mean, std = _normalise(x[train_idx], x[valid_idx], x[test_idx])
    logger.debug("digits split: %d train, %d valid, %d test (seed %d)",
                 len(train_idx), len(valid_idx), len(test_idx), seed)
    return Dataset(
        name='digits',
        train=Split(train_x, _labels(labels[train_idx])),
        valid=Split(valid_x, _labels(labels[valid_idx])),
        test=Split(test_x, _labels(labels[test_idx])),
        n_classes=10, input_shape=(1, 8, 8), mean=mean, std=std,
        class_names=tuple(str(i) for i in range(10)))


def _cifar_dir(root):
    if root is None:
        raise ValueError("root is required by dataset 'cifar10': the directory holding the CIFAR-10 "
                         f"python batches {CIFAR10_TRAIN_FILES + (CIFAR10_TEST_FILE,)} (nas_hw never "
                         "downloads it)")
    root = os.fspath(root)
    if not os.path.isdir(root):
        raise FileNotFoundError(f"root {root!r} (CIFAR-10) is not a directory; expected a directory "
                                f"holding {CIFAR10_TRAIN_FILES + (CIFAR10_TEST_FILE,)} "
                                f"(or its subdirectory {CIFAR10_SUBDIR!r})")
    # The official archive unpacks into a 'cifar-10-batches-py' folder: accept its parent too.
    if (not os.path.isfile(os.path.join(root, CIFAR10_TEST_FILE))
            and os.path.isdir(os.path.join(root, CIFAR10_SUBDIR))):
        root = os.path.join(root, CIFAR10_SUBDIR)
    return root


def _get(batch, key, path):
    for k in (key.encode(), key):
        if k in batch:
            return batch[k]
    raise DatasetError(f"CIFAR-10 batch {path} has no {key!r} entry "
                       f"(keys found: {sorted(map(repr, batch.keys()))})")


def read_cifar10_batch(path):
    """Read one CIFAR-10 python batch file.

    The file must be a pickled dict with ``b'data'`` (uint8, shape ``(N, 3072)``, the
    red, green and blue planes of 32x32 images) and ``b'labels'`` (N ints in 0..9).
    Only read files you trust: pickle can run code.

    Args:
        path: path of the batch file.

    Returns:
        tuple: ``(images, labels)``, uint8 ``(N, 3, 32, 32)`` and int64 ``(N,)``.

    Raises:
        FileNotFoundError: the file does not exist.
        DatasetError: the content is not a CIFAR-10 batch.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"CIFAR-10 batch file {path!r} not found; expected the standard "
                                "python batches data_batch_1..5 and test_batch")
    try:
        with open(path, 'rb') as f:
            batch = pickle.load(f, encoding='bytes')
    except Exception as e:  # unpickling errors come in many types
        raise DatasetError(f"CIFAR-10 batch {path} is not a readable pickle: {e}") from e
    if not isinstance(batch, dict):
        raise DatasetError(f"CIFAR-10 batch {path} must hold a dict, got {type(batch).__name__}")
    data = np.asarray(_get(batch, 'data', path))
    labels = np.asarray(_get(batch, 'labels', path))
    n_pixels = int(np.prod(CIFAR10_IMAGE_SHAPE))
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != n_pixels:
        raise DatasetError(f"CIFAR-10 batch {path}: 'data' must be uint8 of shape (N, {n_pixels}), "
                           f"got {data.dtype} {data.shape}")
    if labels.ndim != 1 or labels.shape[0] != data.shape[0]:
        raise DatasetError(f"CIFAR-10 batch {path}: 'labels' must hold {data.shape[0]} labels "
                           f"(one per image), got shape {labels.shape}")
    if labels.size and (not np.issubdtype(labels.dtype, np.integer)
                        or labels.min() < 0 or labels.max() >= len(CIFAR10_CLASS_NAMES)):
        raise DatasetError(f"CIFAR-10 batch {path}: labels must be integers in 0..9")
    return data.reshape((-1,) + CIFAR10_IMAGE_SHAPE), labels.astype(np.int64)


def _load_cifar10(root, valid_fraction, test_fraction, seed):
    if test_fraction is not None:
        raise ValueError("test_fraction must be None for 'cifar10': its test split is the "
                         f"official {CIFAR10_TEST_FILE!r} batch, got test_fraction={test_fraction!r}")
    root = _cifar_dir(root)
    parts = [read_cifar10_batch(os.path.join(root, f)) for f in CIFAR10_TRAIN_FILES]
    images = np.concatenate([p[0] for p in parts])
    labels = np.concatenate([p[1] for p in parts])
    test_images, test_labels = read_cifar10_batch(os.path.join(root, CIFAR10_TEST_FILE))
    n = images.shape[0]
    order = np.random.RandomState(seed).permutation(n)
    n_valid = int(round(n * valid_fraction))
    valid_idx, train_idx = order[:n_valid], order[n_valid:]
    if len(train_idx) == 0:
        raise DatasetError(f"CIFAR-10 under {root} leaves no training images "
                           f"({n} images, valid_fraction={valid_fraction})")
    x = images.astype(np.float32) / 255.0
    train_x, valid_x, test_x, mean, std = _normalise(
        x[train_idx], x[valid_idx], test_images.astype(np.float32) / 255.0)
    logger.debug("cifar10 from %s: %d train, %d valid, %d test",
                 root, len(train_idx), len(valid_idx), len(test_labels))
    return Dataset(
        name='cifar10',
        train=Split(train_x, _labels(labels[train_idx])),
        valid=Split(valid_x, _labels(labels[valid_idx])),
        test=Split(test_x, _labels(test_labels)),
        n_classes=10, input_shape=CIFAR10_IMAGE_SHAPE, mean=mean, std=std,
        class_names=CIFAR10_CLASS_NAMES)


def load_dataset(name='digits', root=None, valid_fraction=0.2, test_fraction=None, seed=0):
    """Load, split and normalise a dataset.

    Args:
        name: ``'digits'`` (embedded, default) or ``'cifar10'`` (read from ``root``).
        root: directory holding the CIFAR-10 python batches (or the folder
            containing ``cifar-10-batches-py``). Must be None for ``'digits'``.
        valid_fraction: share held out for validation, in [0, 1): of all 1,797 samples
            for ``'digits'``, of the 50,000 training-batch images for ``'cifar10'``.
        test_fraction: for ``'digits'`` the share of all samples held out for testing
            (None means 0.2). Must be None for ``'cifar10'``, whose test split is the
            official ``test_batch``.
        seed: seed of the random permutation used to split; equal seeds give equal splits.

    Returns:
        Dataset: train / valid / test splits with float32 ``x`` ``(N, C, H, W)``
        (normalised with training statistics) and int32 ``y`` ``(N, 1)``.

    Raises:
        ValueError: unknown name or bad argument.
        FileNotFoundError: a CIFAR-10 root or batch file is missing.
        DatasetError: a data file has unexpected content.
    """
    if name not in DATASET_NAMES:
        raise ValueError(f"name must be one of {DATASET_NAMES}, got {name!r}")
    valid_fraction = check_fraction('valid_fraction', valid_fraction)
    seed = _check_seed(seed)
    if name == 'digits':
        if root is not None:
            raise ValueError(f"dataset 'digits' is embedded in nas_hw and takes no root, got {root!r}")
        return _load_digits(valid_fraction, test_fraction, seed)
    return _load_cifar10(root, valid_fraction, test_fraction, seed)


def _nearest(size_in, size_out):
    """Source index of every output pixel when resizing ``size_in`` to ``size_out`` (nearest)."""
    return (np.arange(size_out) * size_in) // size_out


def adapt_images(dataset, input_shape):
    """The dataset with images of ``input_shape`` (C, H, W), for a network that needs it.

    nnabla_nas's SearchNets assume RGB images of CIFAR's or ImageNet's resolution (MobileNet's
    and FairNAS's stems read 3 channels; DARTS's classifier pools an 8x8 map, so 32x32 inputs).
    Grey images get their one channel repeated (the normalised values are unchanged, so the
    per-channel mean and std repeat too); each image is resized by nearest neighbour (8x8
    digits to 32x32: every pixel becomes a 4x4 block). Nothing is interpolated, nothing new
    is learnt from: the network sees the same information at the shape it was designed for, and
    every latency is measured at that shape.

    Args:
        dataset: a :class:`Dataset`.
        input_shape: the wanted ``(C, H, W)``; ``C`` must equal the images' channels or they
            must have 1.

    Returns:
        Dataset: a new dataset (``adapted_from`` = the stored shape), or ``dataset`` itself when
        the shapes already agree.

    Raises:
        ValueError: ``input_shape`` is not 3 positive ints, or the channels cannot be adapted.
    """
    shape = tuple(input_shape) if hasattr(input_shape, "__len__") else ()
    if len(shape) != 3 or any(isinstance(d, bool) or not isinstance(d, (int, np.integer)) or d <= 0 for d in shape):
        raise ValueError(f"input_shape must be 3 positive ints (C, H, W), got {input_shape!r}")
    shape = tuple(int(d) for d in shape)
    have = tuple(int(d) for d in dataset.input_shape)
    if shape == have:
        return dataset
    if shape[0] != have[0] and have[0] != 1:
        raise ValueError(f"input_shape {list(shape)} has {shape[0]} channels; images of {have[0]} channels "
                         "can only be used as they are (only 1-channel images are repeated)")
    rows, cols = _nearest(have[1], shape[1]), _nearest(have[2], shape[2])
    repeat = shape[0] // have[0]

    def resize(split):
        x = split.x[:, :, rows][:, :, :, cols]
        return Split(np.ascontiguousarray(np.repeat(x, repeat, axis=1)), split.y)

    logger.info("%s images %s adapted to %s (%s)", dataset.name, have, shape,
                ", ".join(filter(None, ["channel repeated" if repeat > 1 else "",
                                        "nearest-neighbour resize" if shape[1:] != have[1:] else ""])))
    return replace(dataset, train=resize(dataset.train), valid=resize(dataset.valid), test=resize(dataset.test),
                   input_shape=shape, mean=np.repeat(dataset.mean, repeat), std=np.repeat(dataset.std, repeat),
                   adapted_from=dataset.adapted_from or have)


def iterate_batches(x, y, batch_size, rng=None, shuffle=True, drop_last=False) -> Iterator:
    """Yield ``(x_batch, y_batch)`` pairs covering ``x`` and ``y`` once.

    Args:
        x: array of samples, first axis is the sample axis.
        y: array of labels with the same number of samples.
        batch_size: samples per batch (positive int).
        rng: ``numpy.random.Generator``, ``numpy.random.RandomState``, an int seed, or
            None (a fresh, unseeded generator) used to shuffle.
        shuffle: visit samples in a random order when True, in order otherwise.
        drop_last: drop the final batch when it holds fewer than ``batch_size`` samples.

    Yields:
        tuple: ``(x[idx], y[idx])`` for consecutive index chunks.

    Raises:
        ValueError: mismatched lengths or a bad batch size or rng.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) \
            or batch_size <= 0:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    n = len(x)
    if len(y) != n:
        raise ValueError(f"x and y must hold the same number of samples, got {n} and {len(y)}")
    if shuffle:
        if rng is None:
            rng = np.random.default_rng()
        elif isinstance(rng, (int, np.integer)) and not isinstance(rng, bool):
            rng = np.random.default_rng(int(rng))
        elif not isinstance(rng, (np.random.Generator, np.random.RandomState)):
            raise ValueError("rng must be None, an int seed, a numpy Generator or RandomState, "
                             f"got {type(rng).__name__}")
        order = rng.permutation(n)
    else:
        order = np.arange(n)
    stop = n - n % batch_size if drop_last else n
    for start in range(0, stop, batch_size):
        idx = order[start:start + batch_size]
        yield x[idx], y[idx]
