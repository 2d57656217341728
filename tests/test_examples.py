"""The examples/ scripts."""
import csv
import json
import os
import sys

import pytest

from tests.conftest import REPO


def test_sweep_report_tables_and_plot(tmp_path):
    sys.path.insert(0, os.path.join(REPO, "examples"))
    try:
        import sweep_report
    finally:
        sys.path.pop(0)
    for i, (w, seed, lat, acc) in enumerate([(0.0, 0, 2.0, 0.99), (0.0, 1, 2.2, 0.98),
                                              (1.0, 0, 1.0, 0.985), (1.0, 1, 1.2, 0.97)]):
        run = tmp_path / "sweep" / str(i)
        run.mkdir(parents=True)
        (run / "report.json").write_text(json.dumps({
            "latency_weight": w, "seed": seed, "algorithm": "darts", "choices": [0, 1],
            "candidates": ["a", "b"], "estimated_latency_ms": lat, "true_latency_ms": lat,
            "param_bytes": 100, "search_valid_acc": acc, "valid_acc": acc, "test_acc": acc}))
    assert sweep_report.main([str(tmp_path / "sweep"), "--out", str(tmp_path / "out")]) == 0
    rows = list(csv.DictReader(open(tmp_path / "out.csv")))
    assert [float(r["latency_weight"]) for r in rows] == [0.0, 0.0, 1.0, 1.0]
    summary = sweep_report.medians(sweep_report.load_reports(str(tmp_path / "sweep")))
    assert summary[1]["measured_latency_ms"] == pytest.approx(1.1)
    assert summary[1]["latency_source"] == "true_latency_ms"
    assert summary[1]["latency_change_pct"] == pytest.approx(-47.619, abs=1e-3)
    assert summary[1]["test_acc_change_points"] == pytest.approx(-0.75)
    assert (tmp_path / "out.png").stat().st_size > 1000
    assert "| latency_weight |" in (tmp_path / "out.md").read_text()
    assert sweep_report.pareto_front([(1, 90), (2, 95), (3, 94), (0.5, 80)]) == \
        [(0.5, 80), (1, 90), (2, 95)]
    with pytest.raises(FileNotFoundError, match="no report.json"):
        sweep_report.load_reports(str(tmp_path / "empty"))


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
