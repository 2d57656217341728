"""The examples/ scripts: thin wrappers over the nas-hw commands."""
import csv
import json
import os
import sys

from tests.conftest import REPO
from tests.evidence.fake_sweep import make_sweep


def test_sweep_report_wrapper_is_the_command(tmp_path):
    sys.path.insert(0, os.path.join(REPO, "examples"))
    try:
        import sweep_report
    finally:
        sys.path.pop(0)
    dirs = make_sweep(str(tmp_path / "sweep"))
    out = str(tmp_path / "out")
    assert sweep_report.main([*dirs, "--out", out, "--remeasure", "0", "--n-boot", "200", "--no-plot"]) == 0
    assert "Verdict on goal 1" in open(out + ".md").read()


def test_the_example_runs_the_real_darts_searcher(tmp_path):
    """examples/nnabla_nas_runner.py, as CI runs it: the real DartsSearcher, a few steps, penalty on."""
    import runpy

    example = runpy.run_path(os.path.join(REPO, "examples", "nnabla_nas_runner.py"))
    out = tmp_path / "run"
    assert example["main"](["--epochs", "1", "--samples", "64", "--out", str(out),
                            "--cache", str(tmp_path / "cache.sqlite")]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["algorithm"] == "darts" and summary["estimated_latency_ms"] > 0
    assert len(summary["choices"]) == len(summary["candidates"]) == 5
    rows = list(csv.DictReader(open(out / "search_log.csv")))
    assert len(rows) == 1 and float(rows[0]["true_latency_ms"]) > 0
