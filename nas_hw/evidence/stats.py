"""The statistics of a sweep report, numpy only and seeded: the same numbers give the same
intervals and p-values on every machine.

* :func:`bootstrap_ci`: percentile bootstrap interval of a statistic of one sample (resampling
  the seeds).
* :func:`paired_bootstrap_ci`: the same for a statistic of two samples paired by seed (one
  index draw resamples both).
* :func:`sign_flip_test`: the paired permutation test of a mean difference (exact, by
  enumerating every sign pattern, up to :data:`EXACT_MAX_PAIRS` pairs; Monte Carlo above).
"""
import itertools

import numpy as np

from ..checks import check_int, check_number, check_one_of

#: Resamples of every bootstrap interval.
N_BOOT = 10000
#: Confidence level of every interval.
LEVEL = 0.95
#: Pairs up to which :func:`sign_flip_test` enumerates all 2**n sign patterns.
EXACT_MAX_PAIRS = 16
#: Random sign patterns drawn above :data:`EXACT_MAX_PAIRS` pairs.
N_PERM = 20000
ALTERNATIVES = ("greater", "less", "two-sided")


def _sample(values, name="values"):
    a = np.asarray(values, dtype=np.float64).ravel()
    if a.size == 0:
        raise ValueError(f"{name} must hold at least one number, got none")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} must be finite numbers, got {a.tolist()}")
    return a


def _settings(n_boot, level, seed):
    return (check_int("n_boot", n_boot, low=100), check_number("level", level, low=0.5, high=1, high_open=True),
            check_int("seed", seed, low=0))


def bootstrap_ci(values, stat=np.median, n_boot=N_BOOT, level=LEVEL, seed=0):
    """Percentile bootstrap interval of ``stat(values)``.

    Args:
        values: one number per seed.
        stat: ``array -> float`` (applied along axis 1 of the resampled matrix when it takes
            ``axis``; numpy's ``median`` and ``mean`` do).
        n_boot: resamples (>= 100).
        level: confidence level in [0.5, 1).
        seed: seeds ``numpy.random.default_rng``.

    Returns:
        tuple: ``(low, high)`` floats; ``(v, v)`` for a single value.
    """
    a = _sample(values)
    n_boot, level, seed = _settings(n_boot, level, seed)
    idx = np.random.default_rng(seed).integers(0, a.size, (n_boot, a.size))
    stats = _apply(stat, a[idx])
    tail = 100 * (1 - level) / 2
    return float(np.percentile(stats, tail)), float(np.percentile(stats, 100 - tail))


def paired_bootstrap_ci(a, b, stat, n_boot=N_BOOT, level=LEVEL, seed=0):
    """Percentile bootstrap interval of ``stat(a, b)`` for samples paired by position (the
    same seeds): each resample draws one set of positions for both.

    Args:
        a, b: equally long samples.
        stat: ``(a_resampled, b_resampled) -> array`` over axis 1 (one value per resample), e.g.
            ``lambda a, b: np.median(a, axis=1) - np.median(b, axis=1)``.
        n_boot, level, seed: as :func:`bootstrap_ci`.

    Returns:
        tuple: ``(low, high)``.
    """
    a, b = _sample(a, "a"), _sample(b, "b")
    if a.size != b.size:
        raise ValueError(f"a and b must be paired (equally long), got {a.size} and {b.size}")
    n_boot, level, seed = _settings(n_boot, level, seed)
    idx = np.random.default_rng(seed).integers(0, a.size, (n_boot, a.size))
    stats = np.asarray(stat(a[idx], b[idx]), dtype=np.float64)
    tail = 100 * (1 - level) / 2
    return float(np.percentile(stats, tail)), float(np.percentile(stats, 100 - tail))


def _apply(stat, matrix):
    try:
        return np.asarray(stat(matrix, axis=1), dtype=np.float64)
    except TypeError:
        return np.array([stat(row) for row in matrix], dtype=np.float64)


def sign_flip_test(diffs, alternative="greater", n_perm=N_PERM, seed=0):
    """Paired permutation (sign-flip) test of the mean of paired differences.

    Under the null hypothesis each difference is as likely positive as negative (the two
    members of a pair are exchangeable), so every pattern of signs is equally likely; the
    p-value is the share of sign patterns whose mean is at least as extreme as the observed
    one (the observed pattern included).

    Args:
        diffs: one difference per pair (e.g. per seed: search accuracy - random-search accuracy).
        alternative: ``'greater'`` (mean > 0), ``'less'`` or ``'two-sided'``.
        n_perm: sign patterns drawn when there are more than :data:`EXACT_MAX_PAIRS` pairs.
        seed: seeds those draws.

    Returns:
        dict: ``mean`` (observed), ``p_value``, ``n`` (pairs), ``exact`` (bool),
        ``n_patterns`` (patterns compared), ``alternative``, ``min_p_value`` (the smallest
        p-value this many pairs can give: 1/2**n for an exact one-sided test).
    """
    d = _sample(diffs, "diffs")
    check_one_of("alternative", alternative, ALTERNATIVES)
    n = d.size
    exact = n <= EXACT_MAX_PAIRS
    if exact:
        signs = np.array(list(itertools.product((1.0, -1.0), repeat=n)))
    else:
        check_int("n_perm", n_perm, low=100)
        rng = np.random.default_rng(check_int("seed", seed, low=0))
        signs = np.vstack([np.ones(n), rng.choice((1.0, -1.0), (n_perm, n))])
    means = signs @ d / n
    observed = float(d.mean())
    tol = 1e-12 * max(1.0, float(np.abs(d).max()))  # float noise must not decide a tie
    if alternative == "greater":
        hits = means >= observed - tol
    elif alternative == "less":
        hits = means <= observed + tol
    else:
        hits = np.abs(means) >= abs(observed) - tol
    n_patterns = int(signs.shape[0])
    min_p = (2.0 if alternative == "two-sided" else 1.0) / 2 ** n if exact else 1.0 / n_patterns
    return {"mean": observed, "p_value": float(hits.mean()), "n": int(n), "exact": bool(exact),
            "n_patterns": n_patterns, "alternative": alternative, "min_p_value": float(min(1.0, min_p))}
