"""Tests of nas_hw.evidence.claims: the verdicts follow the numbers, both ways."""
from nas_hw.evidence.analysis import analyse
from nas_hw.evidence.claims import claims
from nas_hw.evidence.runs import load_runs
from tests.evidence.fake_sweep import make_sweep


def text(tmp_path, **kwargs):
    (task,) = analyse(load_runs(make_sweep(str(tmp_path), **kwargs)), n_boot=300).values()
    return "\n".join(claims(task, "digits"))


def test_a_sweep_that_meets_both_goals_says_so(tmp_path):
    t = text(tmp_path)
    assert "Verdict on goal 1: shown, with both 95% intervals inside the bounds, by `darts latency.weight=0.5`" in t
    assert "Verdict on goal 2: shown: the search is at least as accurate in the point estimate" in t
    assert "Latency used throughout: estimated latency" in t


def test_a_sweep_that_misses_both_goals_says_so(tmp_path):
    t = text(tmp_path, search_acc=lambda w, s: 0.78 - 0.05 * w, random_acc=lambda d, s, c: 0.85)
    assert "Verdict on goal 1: not shown: no weight meets it, even in the point estimates" in t
    assert "`darts latency.weight=0.5`: latency -74.4%" in t and "test accuracy -2.50 pt" in t
    assert "Verdict on goal 2: not shown: the search is less accurate in the point estimate" in t
    assert "includes negative differences" in t


def test_without_baselines_the_goals_are_not_tested(tmp_path):
    dirs = make_sweep(str(tmp_path))
    (task,) = analyse(load_runs(dirs[:1]), n_boot=300).values()
    t = "\n".join(claims(task, "digits"))
    assert "Goal 2** (the latency-aware search is at least as accurate as the best random-search architecture " \
           "at equal latency). Not tested" in t
    assert "fewer than two members of the uniform family" in t
