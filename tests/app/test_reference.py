"""The accuracy-only reference beside a search's result (nas_hw/app/reference.py), and the
hardware-aware default of ``make search``."""
import json
import logging
import os
import re

import pytest

from nas_hw.app import reference as ref
from nas_hw.app.pipeline import run_search
from nas_hw.errors import ConfigInputError
from tests.app.test_pipeline import TINY_OVERRIDES
from tests.conftest import REPO, compose


def fake_report(latency_ms, test_acc, **extra):
    report = {"algorithm": "darts", "data": "digits", "ext_name": "cpu", "deploy_input_shape": [1, 1, 8, 8],
              "choices": [0, 1], "candidates": ["a", "b"], "estimated_latency_ms": latency_ms * 1.1,
              "true_latency_ms": latency_ms, "search_valid_acc": test_acc - 0.01, "valid_acc": test_acc,
              "test_acc": test_acc, "param_bytes": 100, "flops": 1000}
    report.update(extra)
    return report


def fake_measure(cfg, choices):
    """The side-by-side seam: this run 1.0 ms, the reference 2.0 ms."""
    assert len(choices) == 2
    return {"latency_ms": [1.0, 2.0], "rounds": 5, "n_run": 20, "load_avg_1min": 0.5}


class FakeSearch:
    """The ``run_search`` seam: counts the reference runs and returns a made-up report."""

    def __init__(self):
        self.calls = []

    def __call__(self, cfg, output_dir):
        self.calls.append((cfg, output_dir))
        os.makedirs(output_dir, exist_ok=True)
        return fake_report(2.0, 0.99)


def test_make_search_is_hardware_aware_and_runs_the_reference():
    cfg = compose()
    assert cfg.latency is not None and cfg.latency.weight == 0.1 and cfg.latency.mode == "linear"
    makefile = open(os.path.join(REPO, "Makefile")).read()
    recipe = re.search(r"^search:.*\n((?:\t.*\n)+)", makefile, re.M).group(1)
    assert "examples/search.py" in recipe and "reference.mode=auto" in recipe
    assert "latency=none" not in recipe and "latency.weight" not in recipe  # the default penalty


def test_key_ignores_the_penalty_callbacks_and_cache_but_not_the_search():
    base = compose(["reference.mode=auto"])
    same = [["latency.weight=0.5"], ["latency=none"], ["~callbacks.csv"], ["cache.path=/tmp/x.sqlite"],
            ["progress=false"], ["search.resume=/tmp/run"], ["reference.mode=off"]]
    for overrides in same:
        assert ref.reference_key(compose(overrides)) == ref.reference_key(base), overrides
    for overrides in (["seed=1"], ["space=darts"], ["search.epochs=2"], ["retrain=none"],
                      ["table.input_shape=[1,1,16,16]"], ["estimator=module"]):
        assert ref.reference_key(compose(overrides)) != ref.reference_key(base), overrides


def test_reference_config_is_the_same_search_without_penalty():
    cfg = compose(["search.resume=/tmp/run", "reference.mode=auto"])
    rc = ref.reference_config(cfg)
    assert rc.latency is None and ref.reference_mode(rc) == "off" and rc.search.resume is None
    assert sorted(rc.callbacks) == ["csv", "tensorboard"]  # only the file writers
    assert rc.space == cfg.space and rc.search.epochs == cfg.search.epochs and rc.seed == cfg.seed
    assert cfg.latency is not None and ref.reference_mode(cfg) == "auto"  # the original is untouched


def test_a_wrong_mode_is_refused_when_the_config_is_validated():
    with pytest.raises(ConfigInputError, match=r"reference.mode.*expected one of \[auto, cached, off\]"):
        compose(["reference.mode=always"])


def test_auto_runs_the_reference_once_then_reuses_it(tmp_path, caplog):
    cfg = compose(["reference.mode=auto", f"cache.path={tmp_path / 'c.sqlite'}"])
    search = FakeSearch()
    run1 = tmp_path / "run1"
    run1.mkdir()
    with caplog.at_level(logging.INFO, logger="nas_hw.app.reference"):
        report = ref.finish_run(cfg, str(run1), fake_report(1.0, 0.98), search, measure=fake_measure)
    assert len(search.calls) == 1
    ref_cfg, ref_dir = search.calls[0]
    assert ref_cfg.latency is None and ref_dir == str(run1 / "reference")
    entry = report["reference"]
    assert entry["source"] == "run now" and entry["true_latency_ms"] == 2.0 and entry["test_acc"] == 0.99
    assert entry["side_by_side"] == {"this_ms": 1.0, "reference_ms": 2.0, "rounds": 5, "n_run": 20,
                                     "load_avg_1min": 0.5}
    assert json.loads((run1 / "report.json").read_text())["reference"] == entry
    text = caplog.text
    assert "hardware-aware (latency.weight=0.1)" in text and "accuracy-only reference (latency=none)" in text
    assert ("estimated latency 0.50x the reference's, measured latency 0.50x the reference's, "
            "test acc -1.00 points") in text
    assert "both whole networks timed now, interleaved, median of 5 rounds of 20 runs" in text

    run2 = tmp_path / "run2"
    run2.mkdir()
    report = ref.finish_run(cfg, str(run2), fake_report(1.5, 0.97), search, measure=fake_measure)
    assert len(search.calls) == 1  # reused from the cache
    assert report["reference"]["source"] == "cached"
    assert report["reference"]["run_dir"] == str(run1 / "reference")


def test_cached_mode_never_runs_one_and_says_how_to_get_it(tmp_path, caplog):
    cfg = compose([f"cache.path={tmp_path / 'c.sqlite'}"])  # the default mode: cached
    search = FakeSearch()
    with caplog.at_level(logging.INFO, logger="nas_hw.app.reference"):
        report = ref.finish_run(cfg, str(tmp_path), fake_report(1.0, 0.98), search, measure=fake_measure)
    assert search.calls == [] and report["reference"] is None
    assert "add reference.mode=auto" in caplog.text and "latency=none" in caplog.text


def test_an_accuracy_only_run_is_stored_as_the_reference(tmp_path):
    cache = f"cache.path={tmp_path / 'c.sqlite'}"
    search = FakeSearch()
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    own = ref.finish_run(compose(["latency=none", cache]), str(tmp_path / "a"), fake_report(3.0, 0.995), search)
    assert own["reference"]["source"] == "this run"
    report = ref.finish_run(compose([cache]), str(tmp_path / "b"), fake_report(1.0, 0.98), search,
                            measure=fake_measure)
    assert search.calls == []
    assert report["reference"]["source"] == "cached" and report["reference"]["true_latency_ms"] == 3.0


def test_off_writes_no_reference(tmp_path):
    search = FakeSearch()
    report = ref.finish_run(compose(["reference.mode=off"]), str(tmp_path), fake_report(1.0, 0.98), search,
                            measure=fake_measure)
    assert report["reference"] is None and search.calls == []


def test_the_pipeline_runs_the_reference_once_and_stores_it(tmp_path):
    overrides = TINY_OVERRIDES + ["retrain.epochs=0", "~callbacks.monitor", "reference.mode=auto",
                                  f"cache.path={tmp_path / 'cache.sqlite'}"]
    overrides = [o for o in overrides if not o.startswith("callbacks.monitor")]
    first = run_search(compose(overrides), str(tmp_path / "a"))
    entry = first["reference"]
    assert entry["source"] == "run now"
    own = json.loads((tmp_path / "a" / "reference" / "report.json").read_text())
    assert own["latency_weight"] is None and own["reference"] is None
    assert entry["true_latency_ms"] == own["true_latency_ms"] > 0
    assert entry["choices"] == own["choices"]
    side = entry["side_by_side"]  # both derived networks timed again, interleaved
    assert side["this_ms"] > 0 and side["reference_ms"] > 0 and side["rounds"] == ref.ROUNDS
    assert side["n_run"] == 2  # estimator.n_run of the tiny settings
    assert os.listdir(tmp_path / "a" / "reference" / "tensorboard")  # its curves too
    second = run_search(compose(overrides), str(tmp_path / "b"))
    assert second["reference"]["source"] == "cached"
    assert not (tmp_path / "b" / "reference").exists()


def test_the_summary_says_when_the_table_used_flagged_rows(tmp_path):
    cfg = compose([f"cache.path={tmp_path / 'c.sqlite'}"])
    flagged = [{"where": "the fixed part", "layer": "3:Convolution", "signature": "fn:Convolution|..."}]
    text = ref.summary(cfg, fake_report(1.0, 0.98, flagged_rows=flagged))
    assert "WARNING: the candidate table used 1 layer measurement(s) flagged disturbed" in text
    assert "nas-hw cache verify --refresh --disturbed" in text
    assert "flagged" not in ref.summary(cfg, fake_report(1.0, 0.98, flagged_rows=[]))
