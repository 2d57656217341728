"""What a sweep shows, computed from its runs: medians with bootstrap intervals per setting, the
change of each latency weight against weight 0, the latency-aware search against random search
at equal latency, the spread of the uniform family, and the verdicts on the goals.

Every number is computed here from :class:`~nas_hw.evidence.runs.Run` records; the markdown
(:mod:`nas_hw.evidence.markdown`) only formats them. Accuracies are fractions here (the
markdown shows % and points); latencies are in ms.
"""
import logging
from collections import OrderedDict

import numpy as np

from ..errors import UsageError
from .runs import RANDOM, SEARCH, UNIFORM
from .stats import LEVEL, N_BOOT, bootstrap_ci, paired_bootstrap_ci, sign_flip_test

logger = logging.getLogger(__name__)

#: Where a run's latency is read from, best first: the interleaved re-measurement of the report
#: step, the run's own measurement (at its own time and load), the table's estimate.
LATENCY_SOURCES = ("remeasured_latency_ms", "true_latency_ms", "estimated_latency_ms")
#: The goal of issue 18: at least this much lower latency than weight 0 ...
GOAL_LATENCY_DROP_PCT = 30.0
#: ... for at most this many accuracy points.
GOAL_ACC_COST_PT = 1.0
#: Significance level of the tests.
ALPHA = 0.05


def latency_ms(run, source):
    """The run's latency (ms) from ``source`` (one of :data:`LATENCY_SOURCES`)."""
    if source == "remeasured_latency_ms":
        return run.remeasured_latency_ms
    return run.get(source)


def latency_source(runs):
    """The best of :data:`LATENCY_SOURCES` that every run has."""
    for source in LATENCY_SOURCES:
        if all(latency_ms(r, source) is not None for r in runs):
            return source
    missing = [r.name for r in runs if all(latency_ms(r, s) is None for s in LATENCY_SOURCES)]
    raise UsageError(f"runs without any latency (no re-measurement, no measured or estimated latency in "
                     f"report.json): {missing[:5]}{' ...' if len(missing) > 5 else ''}")


def _median_ci(values, n_boot, seed):
    values = np.asarray(values, dtype=np.float64)
    return {"median": float(np.median(values)), "ci": bootstrap_ci(values, np.median, n_boot=n_boot, seed=seed)}


def summarise(runs, source, n_boot=N_BOOT, seed=0):
    """One entry per setting: its seeds, the medians over seeds of latency, test and valid
    accuracy, each with its bootstrap interval.

    Returns:
        OrderedDict: setting -> dict with ``method``, ``weight``, ``candidate``, ``n``, ``seeds``,
        ``latency_ms``, ``test_acc``, ``valid_acc`` (each ``{"median", "ci"}``), ``param_bytes``.
    """
    groups = OrderedDict()
    for r in runs:
        groups.setdefault(r.setting, []).append(r)
    out = OrderedDict()
    for setting, group in groups.items():
        first = group[0]
        entry = {"method": first.method, "weight": first.weight, "candidate": first.candidate,
                 "n": len(group), "seeds": sorted({r.seed for r in group}),
                 "latency_ms": _median_ci([latency_ms(r, source) for r in group], n_boot, seed),
                 "test_acc": _median_ci([r.test_acc for r in group], n_boot, seed),
                 "param_bytes": float(np.median([r.get("param_bytes") or 0 for r in group]))}
        valid = [r.valid_acc for r in group if r.valid_acc is not None]
        entry["valid_acc"] = _median_ci(valid, n_boot, seed) if valid else None
        out[setting] = entry
    return out


def _by_seed(runs, source):
    return {r.seed: (latency_ms(r, source), r.test_acc) for r in runs}


def weight_changes(runs, source, n_boot=N_BOOT, seed=0):
    """Each search setting against weight 0 of the same algorithm: the change of the median
    latency (%) and of the median test accuracy (points), with paired bootstrap intervals
    (seeds resampled together; the seeds both settings ran).

    Returns:
        list of dict: ``setting``, ``reference`` (the weight-0 setting), ``weight``, ``seeds``,
        ``latency_change_pct`` and ``acc_change_pt`` (each ``{"value", "ci"}``), and the goal
        verdicts ``goal_point`` (the point estimates meet it) and ``goal_ci`` (both intervals
        inside the bounds). Empty when no weight-0 search ran.
    """
    searches = [r for r in runs if r.method == SEARCH]
    out = []
    for algorithm in sorted({r.get("algorithm") for r in searches}):
        mine = [r for r in searches if r.get("algorithm") == algorithm]
        base = [r for r in mine if r.weight == 0]
        if not base:
            continue
        base_by_seed = _by_seed(base, source)
        for weight in sorted({r.weight for r in mine if r.weight != 0}):
            group = [r for r in mine if r.weight == weight]
            mine_by_seed = _by_seed(group, source)
            seeds = sorted(set(mine_by_seed) & set(base_by_seed))
            if not seeds:
                continue
            lat_w = np.array([mine_by_seed[s][0] for s in seeds])
            lat_0 = np.array([base_by_seed[s][0] for s in seeds])
            acc_w = np.array([mine_by_seed[s][1] for s in seeds])
            acc_0 = np.array([base_by_seed[s][1] for s in seeds])

            def lat_change(a, b):
                return 100 * (np.median(a, axis=-1) / np.median(b, axis=-1) - 1)

            def acc_change(a, b):
                return 100 * (np.median(a, axis=-1) - np.median(b, axis=-1))

            lat = {"value": float(lat_change(lat_w, lat_0)),
                   "ci": paired_bootstrap_ci(lat_w, lat_0, lat_change, n_boot=n_boot, seed=seed)}
            acc = {"value": float(acc_change(acc_w, acc_0)),
                   "ci": paired_bootstrap_ci(acc_w, acc_0, acc_change, n_boot=n_boot, seed=seed)}
            out.append({
                "setting": group[0].setting, "reference": base[0].setting, "weight": weight, "seeds": seeds,
                "latency_change_pct": lat, "acc_change_pt": acc,
                "goal_point": lat["value"] <= -GOAL_LATENCY_DROP_PCT and acc["value"] >= -GOAL_ACC_COST_PT,
                "goal_ci": lat["ci"][1] <= -GOAL_LATENCY_DROP_PCT and acc["ci"][0] >= -GOAL_ACC_COST_PT,
            })
    return out


def best_random_at(budget_ms, random_runs, source):
    """The random-search pick at a latency budget: among the random architectures whose latency
    is at most ``budget_ms``, the one with the best retrained *validation* accuracy (ties: the
    faster); ``None`` when none fits. Chosen on validation, scored on test, as a search is."""
    fits = [r for r in random_runs if latency_ms(r, source) <= budget_ms and r.test_acc is not None]
    if not fits:
        return None
    return max(fits, key=lambda r: ((r.valid_acc if r.valid_acc is not None else r.test_acc),
                                    -latency_ms(r, source)))


def random_front(random_runs, source, budgets):
    """Per budget, the median over seeds of the test accuracy of :func:`best_random_at` (the
    seeds with no architecture under the budget left out); ``None`` where no seed has one."""
    seeds = sorted({r.seed for r in random_runs})
    out = []
    for b in budgets:
        picks = [best_random_at(b, [r for r in random_runs if r.seed == s], source) for s in seeds]
        accs = [p.test_acc for p in picks if p is not None]
        out.append(float(np.median(accs)) if accs else None)
    return out


def _test_diffs(diffs, n_boot, seed):
    d = np.asarray(diffs, dtype=np.float64)
    test = sign_flip_test(d, alternative="greater", seed=seed)
    return {"n": int(d.size), "mean_pt": 100 * float(d.mean()), "median_pt": 100 * float(np.median(d)),
            "ci_mean_pt": tuple(100 * v for v in bootstrap_ci(d, np.mean, n_boot=n_boot, seed=seed)),
            "p_value": test["p_value"], "exact": test["exact"], "min_p_value": test["min_p_value"],
            "wins": int(np.sum(d > 0)), "ties": int(np.sum(d == 0)), "losses": int(np.sum(d < 0))}


def versus_random(runs, source, n_boot=N_BOOT, seed=0):
    """The latency-aware search against random search at equal latency.

    Each search run of seed ``s`` is paired with the random-search pick of the same seed at
    its latency (:func:`best_random_at` over the random architectures of seed ``s``); the
    difference is search test accuracy minus the pick's. Tested per weight, and pooled over
    the latency-aware weights (> 0) as one mean difference per seed, with
    :func:`~nas_hw.evidence.stats.sign_flip_test` (one-sided: the search is more accurate)
    and a bootstrap interval of the mean difference.

    Returns:
        dict or None (no random runs): ``pairs`` (one per search run), ``per_weight``
        (weight -> test dict), ``pooled`` (test dict over seeds, or ``None``), ``unmatched``
        (search runs with no random architecture that fast), ``n_draws`` (random draws per seed).
    """
    random_runs = [r for r in runs if r.method == RANDOM]
    searches = [r for r in runs if r.method == SEARCH]
    if not random_runs or not searches:
        return None
    pairs, unmatched = [], []
    for r in searches:
        budget = latency_ms(r, source)
        pick = best_random_at(budget, [x for x in random_runs if x.seed == r.seed], source)
        if pick is None:
            unmatched.append({"run": r.name, "setting": r.setting, "seed": r.seed, "budget_ms": budget})
            continue
        pairs.append({"run": r.name, "setting": r.setting, "weight": r.weight, "seed": r.seed,
                      "budget_ms": budget, "search_test_acc": r.test_acc, "random_run": pick.name,
                      "random_latency_ms": latency_ms(pick, source), "random_valid_acc": pick.valid_acc,
                      "random_test_acc": pick.test_acc, "diff": r.test_acc - pick.test_acc})
    per_weight = OrderedDict()
    for w in sorted({p["weight"] for p in pairs}):
        per_weight[w] = _test_diffs([p["diff"] for p in pairs if p["weight"] == w], n_boot, seed)
    aware = [p for p in pairs if p["weight"] > 0]
    pooled = None
    if aware:
        seeds = sorted({p["seed"] for p in aware})
        per_seed = [np.mean([p["diff"] for p in aware if p["seed"] == s]) for s in seeds]
        pooled = dict(_test_diffs(per_seed, n_boot, seed), seeds=seeds,
                      weights=sorted({p["weight"] for p in aware}))
    draws = {}
    for r in random_runs:
        draws[r.seed] = draws.get(r.seed, 0) + 1
    return {"pairs": pairs, "per_weight": per_weight, "pooled": pooled, "unmatched": unmatched,
            "n_draws": draws}


def uniform_spread(runs, source, n_boot=N_BOOT, seed=0):
    """Do architectures differ on this task? The uniform family's fastest and slowest members
    (by median latency) compared seed by seed: the paired test-accuracy difference, its
    bootstrap interval, the one-sided sign-flip test, and the seed-to-seed standard deviation of
    each. ``measurable`` holds when the interval excludes 0 and the median difference exceeds
    twice the larger seed-to-seed standard deviation. ``None`` with fewer than two members."""
    uniform = [r for r in runs if r.method == UNIFORM]
    groups = OrderedDict()
    for r in uniform:
        groups.setdefault(r.candidate, []).append(r)
    if len(groups) < 2:
        return None
    by_lat = sorted(groups, key=lambda c: np.median([latency_ms(r, source) for r in groups[c]]))
    small, large = by_lat[0], by_lat[-1]
    a, b = _by_seed(groups[large], source), _by_seed(groups[small], source)
    seeds = sorted(set(a) & set(b))
    if not seeds:
        return None
    acc_l = np.array([a[s][1] for s in seeds])
    acc_s = np.array([b[s][1] for s in seeds])
    diff = acc_l - acc_s

    def med_diff(x, y):
        return 100 * np.median(x - y, axis=-1)

    ci = paired_bootstrap_ci(acc_l, acc_s, med_diff, n_boot=n_boot, seed=seed)
    sd = max(float(np.std(acc_l, ddof=1)) if len(seeds) > 1 else 0.0,
             float(np.std(acc_s, ddof=1)) if len(seeds) > 1 else 0.0)
    median_pt = 100 * float(np.median(diff))
    test = sign_flip_test(diff, alternative="greater", seed=seed)
    return {"smallest": small, "largest": large, "seeds": seeds, "order": by_lat,
            "smallest_acc": 100 * float(np.median(acc_s)), "largest_acc": 100 * float(np.median(acc_l)),
            "diff_median_pt": median_pt, "diff_ci_pt": ci, "seed_sd_pt": 100 * sd,
            "p_value": test["p_value"], "min_p_value": test["min_p_value"],
            "measurable": bool(ci[0] > 0 and median_pt > 2 * 100 * sd) or bool(ci[1] < 0 and -median_pt > 2 * 100 * sd)}


def analyse(runs, n_boot=N_BOOT, seed=0):
    """Everything the report shows, per task (see the functions above).

    Returns:
        OrderedDict: task -> dict with ``source`` (the latency used), ``settings``
        (:func:`summarise`), ``changes`` (:func:`weight_changes`), ``random``
        (:func:`versus_random`), ``uniform`` (:func:`uniform_spread`), ``excluded`` (runs
        without a retrained test accuracy), ``level``, ``n_boot``.
    """
    tasks = OrderedDict()
    for r in runs:
        tasks.setdefault(r.task, []).append(r)
    out = OrderedDict()
    for task, group in tasks.items():
        scored = [r for r in group if r.test_acc is not None]
        excluded = [r.name for r in group if r.test_acc is None]
        if excluded:
            logger.warning("%s: %d run(s) without a retrained test accuracy left out: %s", task,
                           len(excluded), excluded)
        if not scored:
            continue
        source = latency_source(scored)
        out[task] = {"source": source, "level": LEVEL, "n_boot": n_boot, "excluded": excluded,
                     "settings": summarise(scored, source, n_boot, seed),
                     "changes": weight_changes(scored, source, n_boot, seed),
                     "random": versus_random(scored, source, n_boot, seed),
                     "uniform": uniform_spread(scored, source, n_boot, seed)}
    return out
