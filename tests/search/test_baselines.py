"""Tests of nas_hw.search.baselines: the random and uniform architectures, and both run through
the search's pipeline (same derivation, retraining and report as a search)."""
import json
from types import SimpleNamespace

import numpy as np
import pytest

from nas_hw.search.baselines import RandomArchitecture, UniformArchitecture

GROUPS = [["a", "b", "c"], ["a", "b", "c", "zero"], ["b", "a"]]


def fake_model(groups=GROUPS):
    return SimpleNamespace(candidate_names_per_group=groups, derive=lambda choices: None)


def test_a_random_draw_is_repeatable_and_draws_differ():
    first = [RandomArchitecture(fake_model(), draw=d, seed=1).run() for d in range(20)]
    again = [RandomArchitecture(fake_model(), draw=d, seed=1).run() for d in range(20)]
    other_seed = [RandomArchitecture(fake_model(), draw=d, seed=2).run() for d in range(20)]
    assert first == again and first != other_seed
    assert len({tuple(c) for c in first}) > 5
    assert all(0 <= c[g] < len(GROUPS[g]) for c in first for g in range(3))


def test_random_draws_are_uniform_over_each_group():
    draws = np.array([RandomArchitecture(fake_model(), draw=d, seed=0).choose() for d in range(4000)])
    for g, names in enumerate(GROUPS):
        freq = np.bincount(draws[:, g], minlength=len(names)) / len(draws)
        assert np.all(np.abs(freq - 1 / len(names)) < 0.03), (g, freq)


def test_uniform_takes_the_same_candidate_by_name_or_index():
    assert UniformArchitecture(fake_model(), candidate="b").run() == [1, 1, 0]
    assert UniformArchitecture(fake_model(), candidate=1).run() == [1, 1, 1]
    assert UniformArchitecture(fake_model(), candidate="a").common_candidates() == ["a", "b"]
    assert UniformArchitecture(fake_model(), candidate="a").baseline == {"kind": "uniform", "candidate": "a"}


@pytest.mark.parametrize("candidate, message", [
    ("c", "candidate must be one of ['a', 'b']"), ("zero", "candidate must be one of"),
    (2, "candidate must be an index below 2"), (None, "candidate must be a candidate name"),
])
def test_uniform_refuses_a_candidate_some_group_lacks(candidate, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        UniformArchitecture(fake_model(), candidate=candidate).run()


def test_a_space_without_names_is_numbered_from_its_table():
    table = SimpleNamespace(group_costs=lambda: [np.zeros(3), np.zeros(2)])
    base = UniformArchitecture(SimpleNamespace(derive=lambda c: None), candidate=1)
    base.attach_table(table)
    assert base.run() == [1, 1]
    rnd = RandomArchitecture(SimpleNamespace(derive=lambda c: None), draw=0)
    with pytest.raises(RuntimeError, match="attach_table"):
        rnd.run()


def test_negative_draw_is_refused():
    with pytest.raises(ValueError, match="draw must be an integer >= 0"):
        RandomArchitecture(fake_model(), draw=-1)


@pytest.mark.parametrize("overrides, kind", [(["search=random", "search.draw=2"], "random"),
                                             (["search=uniform", "search.candidate=ir_k5_e3"], "uniform")])
def test_baselines_run_through_the_search_pipeline(overrides, kind, tmp_path):
    from nas_hw.app.pipeline import run_search
    from tests.app.test_pipeline import TINY_OVERRIDES
    from tests.conftest import compose

    base = [o for o in TINY_OVERRIDES if not o.startswith("search.")]
    cfg = compose(base + overrides + ["latency=none", "reference.mode=auto"])
    report = run_search(cfg, str(tmp_path / "run"))
    assert report["algorithm"] == kind and report["baseline"]["kind"] == kind
    assert report["latency_weight"] is None and report["reference"] is None  # not a search: no reference
    assert report["true_latency_ms"] > 0 and 0 <= report["test_acc"] <= 1 and report["epochs_searched"] == 0
    assert report["n_classes"] == 10 and report["finished_utc"].endswith("UTC")
    if kind == "uniform":
        assert report["candidates"] == ["ir_k5_e3", "ir_k5_e3"]
    assert json.loads((tmp_path / "run" / "report.json").read_text()) == report
