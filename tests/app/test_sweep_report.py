"""``nas-hw sweep-report``: the document, CSV, JSON and plot generated from sweep directories
(hand-made ones, and one real tiny multirun of the random baseline)."""
import csv
import json
import os
import subprocess
import sys

from nas_hw.app.cli import main
from tests.app.test_pipeline import TINY_OVERRIDES
from tests.evidence.fake_sweep import make_sweep


def test_the_report_is_generated_whole_from_the_runs(tmp_path, capsys):
    dirs = make_sweep(str(tmp_path / "sweep"))
    out = str(tmp_path / "doc")
    assert main(["sweep-report", *dirs, "--out", out, "--remeasure", "0", "--n-boot", "300"]) == 0
    md = open(out + ".md").read()
    data = json.load(open(out + ".json"))
    (task,) = data["analysis"].values()
    change = task["changes"][0]
    # the sentences carry the computed numbers
    assert f"latency {change['latency_change_pct']['value']:+.1f}%" in md
    assert "Verdict on goal 1: shown, with both 95% intervals inside the bounds" in md
    assert "Verdict on goal 2:" in md and "one-sided paired sign-flip" in md
    assert "**Do architectures differ on digits?** Yes, beyond seed noise" in md
    assert "`nas-hw search -m search=random 'search.draw=range(0,4)' latency=none seed=0,1,2,3,4`" in md
    assert f"nas-hw sweep-report {dirs[0]}" in md and "--remeasure 0" in md
    assert "![test accuracy against latency](doc.png)" in md and os.path.getsize(out + ".png") > 10000
    rows = list(csv.DictReader(open(out + ".csv")))
    assert len(rows) == 40 and {r["method"] for r in rows} == {"search", "random", "uniform"}


def test_bad_input_is_one_line_with_exit_code_2(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["sweep-report", str(tmp_path / "empty")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no report.json under" in err[0]
    dirs = make_sweep(str(tmp_path / "s"))
    assert main(["sweep-report", *dirs, "--rounds", "0"]) == 2
    assert main(["sweep-report", *dirs, "--out", str(tmp_path / "no" / "such" / "dir" / "x")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_a_real_multirun_of_the_random_baseline_is_reported(tmp_path):
    overrides = [o for o in TINY_OVERRIDES if not o.startswith("search.")]
    env = dict(os.environ, NAS_HW_CACHE=str(tmp_path / "cache.sqlite"))
    sweep = tmp_path / "random"
    done = subprocess.run([sys.executable, "-m", "nas_hw.app.cli", "search", "-m", "search=random",
                           "search.draw=0,1", "seed=0,1", "latency=none", "hydra/job_logging=disabled",
                           f"hydra.sweep.dir={sweep}", *overrides], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    out = str(tmp_path / "doc")
    assert main(["sweep-report", str(sweep), "--out", out, "--remeasure", "2", "--rounds", "1",
                 "--n-boot", "200", "--no-plot"]) == 0
    md = open(out + ".md").read()
    assert "nas-hw search -m search=random search.draw=0,1 seed=0,1 latency=none" in md
    assert "re-timed in the report step" in md and "Goal 2** (" in md and "Not tested" in md
    rows = list(csv.DictReader(open(out + ".csv")))
    assert len(rows) == 4 and all(float(r["remeasured_latency_ms"]) > 0 for r in rows)
    assert not os.path.exists(out + ".png")
