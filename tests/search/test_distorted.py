"""Tests of nas_hw.search.distorted: the distorted-digits task (shapes, determinism from the seed,
class balance, no source image in two splits, the warp itself, refused arguments)."""
import numpy as np
import pytest

from nas_hw.search.datasets import read_embedded_digits
from nas_hw.search.distorted import distort, load_distorted_digits, stratified_split
from tests.conftest import compose

SMALL = dict(size=10, copies=1, eval_copies=2)


def test_shapes_sizes_and_normalisation():
    ds = load_distorted_digits(**SMALL)
    _, labels = read_embedded_digits()
    counts = np.bincount(labels)
    n_test = sum(int(round(c * 0.2)) for c in counts)
    assert len(ds.test) == 2 * n_test and len(ds.valid) == 2 * n_test
    assert len(ds.train) == 1797 - 2 * n_test
    assert ds.input_shape == (1, 10, 10) and ds.n_classes == 10 and ds.name == "distorted_digits"
    for split in (ds.train, ds.valid, ds.test):
        assert split.x.dtype == np.float32 and split.x.shape[1:] == (1, 10, 10)
        assert split.y.dtype == np.int32 and split.y.shape == (len(split), 1)
    assert abs(float(ds.train.x.mean())) < 1e-4 and abs(float(ds.train.x.std()) - 1) < 1e-3


def test_the_same_seed_gives_the_same_arrays_another_seed_others():
    a, b = load_distorted_digits(seed=3, **SMALL), load_distorted_digits(seed=3, **SMALL)
    for name in ("train", "valid", "test"):
        np.testing.assert_array_equal(getattr(a, name).x, getattr(b, name).x)
        np.testing.assert_array_equal(getattr(a, name).y, getattr(b, name).y)
    c = load_distorted_digits(seed=4, **SMALL)
    assert not np.array_equal(a.test.x, c.test.x)


def test_every_split_holds_every_class_in_its_share():
    ds = load_distorted_digits(**SMALL)
    _, labels = read_embedded_digits()
    counts = np.bincount(labels)
    for split, fraction, copies in ((ds.test, 0.2, 2), (ds.valid, 0.2, 2)):
        got = np.bincount(split.y.ravel(), minlength=10)
        np.testing.assert_array_equal(got, [copies * int(round(c * fraction)) for c in counts])
    train = np.bincount(ds.train.y.ravel(), minlength=10)
    assert train.min() >= 0.9 * train.max() * counts.min() / counts.max()


def test_no_source_image_lies_in_two_splits():
    _, labels = read_embedded_digits()
    train, valid, test = stratified_split(labels, 0.2, 0.2, seed=0)
    assert not (set(train) & set(valid) or set(train) & set(test) or set(valid) & set(test))
    assert len(train) + len(valid) + len(test) == len(labels)


def test_the_warp_is_the_identity_without_distortion_and_shifts_by_whole_pixels():
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 1, (3, 8, 8))
    same = distort(images, 8, 1, np.random.default_rng(1), scale=(1, 1), max_rotation_deg=0, max_shift=0,
                   noise_std=0)
    np.testing.assert_allclose(same, images, atol=1e-6)
    # on a 10x10 canvas the 8x8 image sits in the middle, a 1-pixel border of zeros around it
    padded = distort(images, 10, 1, np.random.default_rng(1), scale=(1, 1), max_rotation_deg=0, max_shift=0,
                     noise_std=0)
    np.testing.assert_allclose(padded[:, 1:-1, 1:-1], images, atol=1e-6)
    assert np.all(padded[:, 0, :] == 0) and np.all(padded[:, :, -1] == 0)


def test_copies_are_distinct_distortions_of_their_source():
    images = read_embedded_digits()[0][:2].astype(np.float64) / 16
    out = distort(images, 12, 3, np.random.default_rng(0))
    assert out.shape == (6, 12, 12)
    assert not np.allclose(out[0], out[1]) and not np.allclose(out[1], out[2])


@pytest.mark.parametrize("kwargs, field", [
    (dict(size=6), "size"), (dict(copies=0), "copies"), (dict(eval_copies=0), "eval_copies"),
    (dict(scale=(2, 1)), "scale"), (dict(scale=1.5), "scale"), (dict(max_rotation_deg=-1), "max_rotation_deg"),
    (dict(max_shift=7), "max_shift"), (dict(noise_std=-0.1), "noise_std"), (dict(valid_fraction=1.2), "valid_fraction"),
    (dict(valid_fraction=0.5, test_fraction=0.5), "valid_fraction + test_fraction"), (dict(seed=-1), "seed"),
    (dict(name="digits"), "name"),
])
def test_a_bad_argument_is_one_line_naming_it(kwargs, field):
    with pytest.raises(ValueError) as err:
        load_distorted_digits(**kwargs)
    assert str(err.value).startswith(field) and "\n" not in str(err.value)


def test_the_config_group_composes_and_a_bad_value_names_its_key():
    from nas_hw.app.pipeline import build

    cfg = compose(["data=distorted_digits", "data.size=10", "data.eval_copies=1"])
    ds = build(cfg.data, "data")
    assert ds.input_shape == (1, 10, 10) and len(ds.test) == len(ds.valid)
    with pytest.raises(Exception) as err:
        build(compose(["data=distorted_digits", "data.size=4"]).data, "data")
    assert "data.size must be an integer >= 8" in str(err.value)
