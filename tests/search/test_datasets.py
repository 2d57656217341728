"""Tests of nas_hw.datasets: the embedded digits data, the CIFAR-10 reader and batching."""
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest

from nas_hw.search.datasets import (CIFAR10_TEST_FILE, CIFAR10_TRAIN_FILES, DatasetError,
                             adapt_images, iterate_batches, load_dataset, read_cifar10_batch)
from nas_hw.errors import NasHwError


def test_digits_loads_1797_real_samples_split_as_asked():
    ds = load_dataset('digits', valid_fraction=0.2, test_fraction=0.2, seed=0)
    n = len(ds.train) + len(ds.valid) + len(ds.test)
    assert n == 1797
    assert len(ds.test) == round(1797 * 0.2) and len(ds.valid) == round(1797 * 0.2)
    assert ds.n_classes == 10 and ds.input_shape == (1, 8, 8)
    for split in (ds.train, ds.valid, ds.test):
        assert split.x.dtype == np.float32 and split.x.shape[1:] == (1, 8, 8)
        assert split.y.dtype == np.int32 and split.y.shape == (len(split), 1)
        assert set(np.unique(split.y)) <= set(range(10))
    # every class appears in training; normalised with training statistics
    assert set(np.unique(ds.train.y)) == set(range(10))
    assert abs(float(ds.train.x.mean())) < 1e-4
    assert abs(float(ds.train.x.std()) - 1.0) < 1e-3


def test_digits_other_fractions():
    ds = load_dataset(valid_fraction=0.0, test_fraction=0.5, seed=3)
    assert len(ds.valid) == 0 and ds.valid.x.shape == (0, 1, 8, 8)
    assert len(ds.test) == round(1797 * 0.5)
    assert len(ds.train) == 1797 - len(ds.test)


def test_digits_split_is_deterministic_by_seed():
    a = load_dataset(seed=1)
    b = load_dataset(seed=1)
    c = load_dataset(seed=2)
    np.testing.assert_array_equal(a.train.x, b.train.x)
    np.testing.assert_array_equal(a.test.y, b.test.y)
    assert not np.array_equal(a.train.y, c.train.y)


def test_digits_splits_are_disjoint_and_cover_the_data():
    ds = load_dataset(seed=0)
    raw = np.load(os.path.join(os.path.dirname(__import__('nas_hw').__file__), 'data', 'digits.npz'))
    images = raw['images']
    assert images.dtype == np.uint8 and images.shape == (1797, 8, 8)
    assert images.max() == 16 and raw['labels'].shape == (1797,)
    # undo the normalisation and match each sample back to a unique raw image
    rows = {}
    for i, img in enumerate(images):
        rows.setdefault(img.tobytes(), []).append(i)
    seen = []
    for split in (ds.train, ds.valid, ds.test):
        back = np.rint((split.x[:, 0] * ds.std[0] + ds.mean[0]) * 16).astype(np.uint8)
        for img in back:
            assert img.tobytes() in rows
            seen.append(img.tobytes())
    assert len(seen) == 1797


def test_digits_does_not_need_sklearn():
    code = ("import sys; sys.modules['sklearn'] = None\n"
            "from nas_hw.search.datasets import load_dataset\n"
            "d = load_dataset()\n"
            "assert len(d.train) + len(d.valid) + len(d.test) == 1797\n"
            "assert 'sklearn' not in [m for m in sys.modules if sys.modules[m] is not None]\n")
    subprocess.run([sys.executable, '-c', code], check=True)


@pytest.mark.parametrize('kwargs, match', [
    (dict(name='mnist'), 'name must be one of'),
    (dict(valid_fraction=1.0), 'valid_fraction'),
    (dict(valid_fraction=-0.1), 'valid_fraction'),
    (dict(test_fraction='a'), 'test_fraction'),
    (dict(valid_fraction=0.5, test_fraction=0.5), 'valid_fraction \\+ test_fraction'),
    (dict(seed=-1), 'seed'),
    (dict(root='/tmp'), 'takes no root'),
])
def test_bad_arguments_raise_clear_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        load_dataset(**kwargs)


def _write_batch(path, n, rng, label_offset=0):
    data = rng.randint(0, 256, size=(n, 3072)).astype(np.uint8)
    labels = [int((i + label_offset) % 10) for i in range(n)]
    with open(path, 'wb') as f:
        pickle.dump({b'batch_label': b'fake', b'data': data, b'labels': labels}, f)
    return data, labels


@pytest.fixture
def fake_cifar(tmp_path):
    rng = np.random.RandomState(0)
    written = {}
    for i, name in enumerate(CIFAR10_TRAIN_FILES):
        written[name] = _write_batch(tmp_path / name, 6, rng, label_offset=i)
    written[CIFAR10_TEST_FILE] = _write_batch(tmp_path / CIFAR10_TEST_FILE, 5, rng)
    return tmp_path, written


def test_cifar10_reader_on_fake_root(fake_cifar):
    root, written = fake_cifar
    ds = load_dataset('cifar10', root=str(root), valid_fraction=0.2, seed=0)
    assert ds.input_shape == (3, 32, 32) and ds.n_classes == 10
    assert len(ds.train) == 24 and len(ds.valid) == 6 and len(ds.test) == 5
    assert ds.train.x.dtype == np.float32 and ds.train.x.shape == (24, 3, 32, 32)
    assert ds.test.y.dtype == np.int32 and ds.test.y.shape == (5, 1)
    np.testing.assert_array_equal(ds.test.y[:, 0], written[CIFAR10_TEST_FILE][1])
    # the test images are the test batch, in order, in channel-planar layout
    raw = written[CIFAR10_TEST_FILE][0].reshape(5, 3, 32, 32).astype(np.float32) / 255
    back = ds.test.x * ds.std[None, :, None, None] + ds.mean[None, :, None, None]
    np.testing.assert_allclose(back, raw, atol=1e-5)
    assert np.allclose(ds.train.x.mean(axis=(0, 2, 3)), 0, atol=1e-4)


def test_cifar10_accepts_parent_of_batches_folder(fake_cifar, tmp_path):
    root, _ = fake_cifar
    parent = tmp_path / 'parent'
    parent.mkdir()
    os.symlink(root, parent / 'cifar-10-batches-py')
    ds = load_dataset('cifar10', root=parent, valid_fraction=0.0)
    assert len(ds.train) == 30 and len(ds.valid) == 0


def test_read_cifar10_batch_shapes(fake_cifar):
    root, written = fake_cifar
    images, labels = read_cifar10_batch(root / 'data_batch_2')
    assert images.shape == (6, 3, 32, 32) and images.dtype == np.uint8
    np.testing.assert_array_equal(images.reshape(6, -1), written['data_batch_2'][0])
    np.testing.assert_array_equal(labels, written['data_batch_2'][1])


def test_cifar10_missing_root_and_files(tmp_path, fake_cifar):
    with pytest.raises(ValueError, match='root is required'):
        load_dataset('cifar10')
    with pytest.raises(FileNotFoundError, match='not a directory'):
        load_dataset('cifar10', root=str(tmp_path / 'nowhere'))
    root, _ = fake_cifar
    os.remove(root / 'data_batch_3')
    with pytest.raises(FileNotFoundError, match='data_batch_3'):
        load_dataset('cifar10', root=root)
    with pytest.raises(ValueError, match='test_fraction must be None'):
        load_dataset('cifar10', root=root, test_fraction=0.2)


@pytest.mark.parametrize('content, match', [
    (b'not a pickle at all', 'not a readable pickle'),
    (pickle.dumps([1, 2, 3]), 'must hold a dict'),
    (pickle.dumps({b'labels': [0]}), "no 'data' entry"),
    (pickle.dumps({b'data': np.zeros((2, 3072), np.uint8)}), "no 'labels' entry"),
    (pickle.dumps({b'data': np.zeros((2, 100), np.uint8), b'labels': [0, 1]}), 'shape'),
    (pickle.dumps({b'data': np.zeros((2, 3072), np.float32), b'labels': [0, 1]}), 'uint8'),
    (pickle.dumps({b'data': np.zeros((2, 3072), np.uint8), b'labels': [0]}), 'one per image'),
    (pickle.dumps({b'data': np.zeros((2, 3072), np.uint8), b'labels': [0, 10]}), '0..9'),
])
def test_cifar10_malformed_batches(tmp_path, content, match):
    path = tmp_path / 'data_batch_1'
    path.write_bytes(content)
    with pytest.raises(DatasetError, match=match) as info:
        read_cifar10_batch(path)
    assert isinstance(info.value, NasHwError) and str(path) in str(info.value)


def test_iterate_batches_covers_every_sample_once():
    x = np.arange(10, dtype=np.float32).reshape(10, 1)
    y = np.arange(10, dtype=np.int32).reshape(10, 1)
    batches = list(iterate_batches(x, y, 4, rng=0))
    assert [len(b[0]) for b in batches] == [4, 4, 2]
    got = np.concatenate([b[1] for b in batches]).ravel()
    assert sorted(got.tolist()) == list(range(10))
    assert got.tolist() != list(range(10))  # shuffled with this seed
    for bx, by in batches:
        np.testing.assert_array_equal(bx, by.astype(np.float32))  # pairs stay aligned


def test_iterate_batches_options():
    x = np.arange(10)
    y = np.arange(10)
    ordered = list(iterate_batches(x, y, 3, shuffle=False, drop_last=True))
    assert [b[0].tolist() for b in ordered] == [[0, 1, 2], [3, 4, 5], [6, 7, 8]]
    a = [b[0].tolist() for b in iterate_batches(x, y, 3, rng=np.random.RandomState(5))]
    b = [b[0].tolist() for b in iterate_batches(x, y, 3, rng=np.random.RandomState(5))]
    assert a == b
    assert len(list(iterate_batches(x, y, 20, drop_last=True))) == 0


@pytest.mark.parametrize('kwargs, match', [
    (dict(batch_size=0), 'batch_size'),
    (dict(batch_size=2.5), 'batch_size'),
    (dict(batch_size=2, rng='seed'), 'rng must be'),
])
def test_iterate_batches_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        list(iterate_batches(np.zeros(4), np.zeros(4), **kwargs))
    with pytest.raises(ValueError, match='same number of samples'):
        list(iterate_batches(np.zeros(4), np.zeros(3), 2))


def test_adapt_images_repeats_grey_channels_and_resizes_by_nearest_neighbour():
    ds = load_dataset('digits')
    big = adapt_images(ds, (3, 32, 32))
    assert big.input_shape == (3, 32, 32) and big.adapted_from == (1, 8, 8)
    assert big.train.x.shape == (len(ds.train), 3, 32, 32) and big.train.x.dtype == np.float32
    # every pixel became a 4x4 block, the same in every channel; labels untouched
    np.testing.assert_array_equal(big.train.x[:, 0, ::4, ::4], ds.train.x[:, 0])
    np.testing.assert_array_equal(big.train.x[:, 0, 3::4, 3::4], ds.train.x[:, 0])
    np.testing.assert_array_equal(big.valid.x[:, 2], big.valid.x[:, 0])
    np.testing.assert_array_equal(big.test.y, ds.test.y)
    assert big.mean.shape == big.std.shape == (3,)
    assert adapt_images(ds, (1, 8, 8)) is ds
    assert adapt_images(big, (3, 16, 16)).adapted_from == (1, 8, 8)  # the stored shape stays known


@pytest.mark.parametrize("shape,match", [
    ((2, 8, 8), "only 1-channel images are repeated"),
    ((3, 8), "3 positive ints"),
    ((3, 0, 8), "3 positive ints"),
])
def test_adapt_images_refuses_what_it_cannot_do(shape, match, fake_cifar):
    root, _ = fake_cifar
    ds = load_dataset('cifar10', root=str(root))  # 3 channels: cannot become 2
    with pytest.raises(ValueError, match=match):
        adapt_images(ds, shape)
