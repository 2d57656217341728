"""Tests of nas_hw.evidence.stats: bootstrap intervals and the sign-flip test, against values
worked out by hand."""
import numpy as np
import pytest

from nas_hw.evidence.stats import bootstrap_ci, paired_bootstrap_ci, sign_flip_test


def test_bootstrap_interval_is_seeded_and_brackets_the_median():
    x = [0.81, 0.84, 0.79, 0.86, 0.83]
    a = bootstrap_ci(x, np.median, n_boot=2000, seed=1)
    assert a == bootstrap_ci(x, np.median, n_boot=2000, seed=1)
    assert a[0] <= np.median(x) <= a[1] and min(x) <= a[0] and a[1] <= max(x)
    assert bootstrap_ci([0.5] * 4) == (0.5, 0.5)


def test_more_seeds_give_a_narrower_interval():
    rng = np.random.default_rng(0)
    few, many = np.array([-1.0, 1.0, -0.5, 0.5, 0.0]), rng.normal(0, 1, 200)
    w = [np.subtract(*bootstrap_ci(v, np.mean)[::-1]) for v in (few, many)]
    assert w[1] < w[0] / 3  # about sqrt(200 / 5) = 6 times narrower


def test_a_statistic_without_axis_is_applied_row_by_row():
    x = [1.0, 2.0, 3.0, 4.0]
    assert bootstrap_ci(x, lambda v: float(np.max(v)), n_boot=500) == bootstrap_ci(x, np.max, n_boot=500)


def test_paired_interval_of_a_constant_difference_is_that_difference():
    a = np.array([0.9, 0.8, 0.85, 0.7])
    lo, hi = paired_bootstrap_ci(a + 0.02, a, lambda x, y: np.median(x - y, axis=1))
    assert lo == pytest.approx(0.02) and hi == pytest.approx(0.02)
    with pytest.raises(ValueError, match="paired"):
        paired_bootstrap_ci([1, 2], [1, 2, 3], lambda x, y: x.mean(axis=1))


def test_sign_flip_p_values_worked_out_by_hand():
    # all five differences positive: only the observed pattern reaches its mean, p = 1/32
    t = sign_flip_test([1, 2, 3, 4, 5])
    assert t["exact"] and t["p_value"] == pytest.approx(1 / 32) and t["min_p_value"] == pytest.approx(1 / 32)
    # [1, -1]: the four means are 0, 1, -1, 0; observed 0; three are >= 0
    assert sign_flip_test([1, -1])["p_value"] == pytest.approx(3 / 4)
    assert sign_flip_test([1, -1], alternative="two-sided")["p_value"] == pytest.approx(1.0)
    # [3, -1, 2]: means of the 8 patterns: 4/3, 2, -2/3, 0, 0, 2/3, -2, -4/3; observed 4/3 -> 2 of 8
    assert sign_flip_test([3, -1, 2])["p_value"] == pytest.approx(2 / 8)
    assert sign_flip_test([3, -1, 2], alternative="less")["p_value"] == pytest.approx(7 / 8)
    assert sign_flip_test([0, 0, 0])["p_value"] == 1.0


def test_many_pairs_use_seeded_random_patterns():
    d = np.linspace(-0.5, 1.5, 20)
    t = sign_flip_test(d, seed=3)
    assert not t["exact"] and t["n_patterns"] == 20001 and t["p_value"] == sign_flip_test(d, seed=3)["p_value"]
    assert 0 < t["p_value"] < 0.01


@pytest.mark.parametrize("call, message", [
    (lambda: bootstrap_ci([]), "values must hold at least one number"),
    (lambda: bootstrap_ci([1, float("nan")]), "values must be finite"),
    (lambda: bootstrap_ci([1, 2], n_boot=10), "n_boot must be an integer >= 100"),
    (lambda: bootstrap_ci([1, 2], level=1.0), "level must be a finite number in [0.5, 1)"),
    (lambda: sign_flip_test([1, 2], alternative="bigger"), "alternative must be one of"),
])
def test_bad_arguments_are_named(call, message):
    with pytest.raises(ValueError) as err:
        call()
    assert str(err.value).startswith(message)
