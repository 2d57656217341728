"""Tests of nas_hw.evidence.analysis on hand-made runs whose answers are known."""
import numpy as np
import pytest

from nas_hw.errors import UsageError
from nas_hw.evidence.analysis import (analyse, best_random_at, latency_source, random_front, uniform_spread,
                                      versus_random, weight_changes)
from nas_hw.evidence.runs import Run, load_runs
from tests.evidence.fake_sweep import make_sweep


def run(method, seed, lat, test, valid=None, weight=None, candidate=None, name=None, **report):
    setting = {"search": f"darts latency.weight={weight:g}" if weight is not None else "",
               "random": "random", "uniform": f"uniform {candidate}"}[method]
    baseline = None if method == "search" else {"kind": method, "candidate": candidate}
    rep = dict({"estimated_latency_ms": lat, "test_acc": test, "valid_acc": test if valid is None else valid,
                "baseline": baseline, "algorithm": "darts", "choices": [0]}, **report)
    return Run(run_dir=".", name=name or f"{method}/{seed}/{lat}", method=method, setting=setting, task="t", seed=seed,
               weight=weight, architecture=str(lat), report=rep)


def test_changes_against_weight_0_and_the_goal_verdicts(tmp_path):
    runs = load_runs(make_sweep(str(tmp_path)))
    (c,) = weight_changes(runs, "estimated_latency_ms", n_boot=500)
    assert c["latency_change_pct"]["value"] == pytest.approx(100 * (0.10 / 0.39 - 1))
    assert c["acc_change_pt"]["value"] == pytest.approx(-0.5)
    assert c["acc_change_pt"]["ci"] == pytest.approx((-0.5, -0.5))  # the same change on every seed
    assert c["goal_point"] and c["goal_ci"] and c["seeds"] == [0, 1, 2, 3, 4]
    costly = load_runs(make_sweep(str(tmp_path / "b"), search_acc=lambda w, s: 0.9 - 0.03 * w + 0.01 * (s % 2)))
    (c,) = weight_changes(costly, "estimated_latency_ms", n_boot=500)
    assert c["acc_change_pt"]["value"] == pytest.approx(-1.5) and not c["goal_point"] and not c["goal_ci"]


def test_the_goal_can_hold_in_the_point_estimates_only():
    runs = [run("search", s, 1.0, 0.90, weight=0) for s in range(5)]
    accs = [0.905, 0.880, 0.899, 0.915, 0.870]  # median change -0.1 pt, but seeds swing by 3 pt
    runs += [run("search", s, 0.5, a, weight=1) for s, a in enumerate(accs)]
    (c,) = weight_changes(runs, "estimated_latency_ms", n_boot=2000)
    assert c["goal_point"] and not c["goal_ci"] and c["acc_change_pt"]["ci"][0] < -1


def test_the_random_pick_is_chosen_on_validation_within_the_budget():
    rnd = [run("random", 0, 1.0, test=0.95, valid=0.70, name="a"), run("random", 0, 1.0, test=0.80, valid=0.85, name="b"),
           run("random", 0, 3.0, test=0.99, valid=0.99, name="c")]
    assert best_random_at(2.0, rnd, "estimated_latency_ms").name == "b"   # best valid, not best test
    assert best_random_at(3.0, rnd, "estimated_latency_ms").name == "c"
    assert best_random_at(0.5, rnd, "estimated_latency_ms") is None
    assert random_front(rnd, "estimated_latency_ms", [0.5, 1.0, 3.0]) == [None, 0.80, 0.99]


def test_search_against_random_pairs_by_seed_and_tests_one_sided():
    runs = []
    for s in range(5):
        runs += [run("random", s, 1.0, 0.80, name=f"r{s}a"), run("random", s, 2.0, 0.85, name=f"r{s}b")]
        runs += [run("search", s, 1.5, 0.83 + 0.001 * s, weight=0.3), run("search", s, 0.5, 0.6, weight=3.0)]
    out = versus_random(runs, "estimated_latency_ms", n_boot=500)
    assert len(out["pairs"]) == 5 and len(out["unmatched"]) == 5  # nothing random is as fast as 0.5 ms
    assert all(p["random_run"].endswith("a") for p in out["pairs"])
    t = out["per_weight"][0.3]
    assert t["wins"] == 5 and t["p_value"] == pytest.approx(1 / 32) and t["mean_pt"] == pytest.approx(3.2)
    assert out["pooled"]["p_value"] == pytest.approx(1 / 32) and out["pooled"]["weights"] == [0.3]
    assert out["n_draws"] == {s: 2 for s in range(5)}
    assert versus_random([r for r in runs if r.method == "search"], "estimated_latency_ms") is None


def test_uniform_spread_beyond_and_within_seed_noise():
    clear = [run("uniform", s, 1.0, 0.70 + 0.002 * s, candidate="small") for s in range(5)]
    clear += [run("uniform", s, 4.0, 0.80 + 0.002 * s, candidate="big") for s in range(5)]
    u = uniform_spread(clear, "estimated_latency_ms", n_boot=500)
    assert (u["smallest"], u["largest"]) == ("small", "big") and u["measurable"]
    assert u["diff_median_pt"] == pytest.approx(10.0) and u["p_value"] == pytest.approx(1 / 32)
    noisy = [run("uniform", s, 1.0, a, candidate="small") for s, a in enumerate([0.70, 0.75, 0.72, 0.78, 0.71])]
    noisy += [run("uniform", s, 4.0, a, candidate="big") for s, a in enumerate([0.74, 0.73, 0.76, 0.77, 0.70])]
    assert not uniform_spread(noisy, "estimated_latency_ms", n_boot=500)["measurable"]
    assert uniform_spread(clear[:5], "estimated_latency_ms") is None


def test_latency_source_prefers_the_remeasurement():
    runs = [run("search", 0, 1.0, 0.9, weight=0, true_latency_ms=2.0), run("search", 1, 1.0, 0.9, weight=0)]
    assert latency_source(runs) == "estimated_latency_ms"
    runs[1].report["true_latency_ms"] = 2.5
    assert latency_source(runs) == "true_latency_ms"
    for r in runs:
        r.remeasured_latency_ms = 1.7
    assert latency_source(runs) == "remeasured_latency_ms"
    bare = run("search", 2, None, 0.9, weight=0, name="bare")
    with pytest.raises(UsageError, match=r"runs without any latency .*\['bare'\]"):
        latency_source([bare])


def test_analyse_leaves_out_runs_without_a_test_accuracy(tmp_path):
    runs = load_runs(make_sweep(str(tmp_path)))
    runs[0].report["test_acc"] = None
    (task,) = analyse(runs, n_boot=200).values()
    assert task["excluded"] == ["search/0"] and task["settings"]["darts latency=none"]["n"] == 4
    assert task["settings"]["uniform ir_k5_e3"]["test_acc"]["median"] == pytest.approx(np.median(
        [0.85 + 0.002 * s for s in range(5)]))
