"""The ``nas-hw`` command line (``nas_hw.cli.main``)."""
import json
import os
import subprocess
import sys

import pytest

from nas_hw import LatencyCache
from nas_hw.app.cli import HYDRA_COMMANDS, build_parser, main
from nas_hw.measure.timing import TimingStats

from tests.conftest import REPO as ROOT


def stats(ms):
    s = ms * 1e-3
    return TimingStats(s, s, 0.0, s, 3, 3)


@pytest.fixture
def cache_file(tmp_path):
    path = str(tmp_path / "c.sqlite")
    with LatencyCache(path) as cache:
        for i in range(3):
            cache.put("cpu|test-chip", f"sig:{i}", stats(1.0 + i))
        cache.put("cuda|test-gpu", "sig:0", stats(0.5))
    return path


def errors(err):
    return [line for line in err.splitlines() if line.startswith("nas-hw: error:")]


def test_ls_summarises_each_fingerprint(cache_file, capsys):
    assert main(["cache", "ls", "--cache", cache_file]) == 0
    out = capsys.readouterr().out
    assert "4 row(s), 2 fingerprint(s)" in out
    header = next(line for line in out.splitlines() if line.startswith("rows"))
    assert header.split()[:6] == ["rows", "disturbed", "unknown", "spread_med", "load1", "sum_mean_ms"]
    cpu = next(line for line in out.splitlines() if line.endswith("cpu|test-chip"))
    # rows, disturbed, unknown verdicts, median spread and load range (unknown here), sum of means
    assert cpu.split()[:6] == ["3", "0", "0", "-", "-", "6.000"] and "UTC" in cpu
    gpu = next(line for line in out.splitlines() if line.endswith("cuda|test-gpu"))
    assert gpu.split()[:6] == ["1", "0", "0", "-", "-", "0.500"]


def test_ls_of_a_missing_file_creates_nothing(tmp_path, capsys):
    path = str(tmp_path / "none.sqlite")
    assert main(["cache", "ls", "--cache", path]) == 0
    assert "no file yet" in capsys.readouterr().out and not os.path.exists(path)


def test_default_cache_is_NAS_HW_CACHE(cache_file, monkeypatch, capsys):
    monkeypatch.setenv("NAS_HW_CACHE", cache_file)
    assert main(["cache", "ls"]) == 0
    assert cache_file in capsys.readouterr().out


@pytest.mark.parametrize("ext", ["csv", "json"])
def test_export_then_import_round_trip(cache_file, tmp_path, ext, capsys):
    dump = str(tmp_path / f"dump.{ext}")
    assert main(["cache", "export", dump, "--cache", cache_file]) == 0
    assert "exported 4 row(s)" in capsys.readouterr().out
    other = str(tmp_path / "other.sqlite")
    assert main(["cache", "import", dump, "--cache", other]) == 0
    assert "4 row(s) added" in capsys.readouterr().out
    with LatencyCache(other) as c:
        assert {(r.fingerprint, r.signature) for r in c.records()} == {
            ("cpu|test-chip", "sig:0"), ("cpu|test-chip", "sig:1"), ("cpu|test-chip", "sig:2"),
            ("cuda|test-gpu", "sig:0")}
    # importing again adds nothing; --overwrite replaces
    assert main(["cache", "import", dump, "--cache", other]) == 0
    assert "0 row(s) added" in capsys.readouterr().out
    assert main(["cache", "import", dump, "--cache", other, "--overwrite"]) == 0
    assert "4 row(s) added or replaced" in capsys.readouterr().out


def test_export_one_fingerprint(cache_file, tmp_path, capsys):
    dump = tmp_path / "gpu.json"
    assert main(["cache", "export", str(dump), "--fingerprint", "cuda|test-gpu", "--cache", cache_file]) == 0
    rows = json.loads(dump.read_text())["rows"]
    assert [(r["fingerprint"], r["signature"]) for r in rows] == [("cuda|test-gpu", "sig:0")]
    assert main(["cache", "export", str(dump), "--fingerprint", "nope", "--cache", cache_file]) == 2
    err = capsys.readouterr().err
    assert errors(err) and "'nope'" in err and "cuda|test-gpu" in err
    assert main(["cache", "export", str(tmp_path / "dump.txt"), "--cache", cache_file]) == 2
    assert main(["cache", "export", str(tmp_path / "no" / "dump.csv"), "--cache", cache_file]) == 2
    assert main(["cache", "export", str(dump), "--cache", str(tmp_path / "absent.sqlite")]) == 2
    err = capsys.readouterr().err
    assert ".csv or .json" in err and "does not exist" in err and "nothing to export" in err


def test_clear_needs_yes(cache_file, capsys):
    assert main(["cache", "clear", "--cache", cache_file]) == 2
    err = capsys.readouterr().err
    assert len(errors(err)) == 1 and "--yes" in err and "4 row(s)" in err
    with LatencyCache(cache_file) as c:
        assert len(c) == 4
    assert main(["cache", "clear", "--fingerprint", "cuda|test-gpu", "--yes", "--cache", cache_file]) == 0
    assert "deleted 1 row(s)" in capsys.readouterr().out
    assert main(["cache", "clear", "--yes", "--cache", cache_file]) == 0
    assert "deleted 3 row(s)" in capsys.readouterr().out
    with LatencyCache(cache_file) as c:
        assert len(c) == 0


def test_malformed_import_is_bad_input_and_imports_nothing(cache_file, tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("fingerprint,signature,mean_s,median_s,std_s,min_s,n_kept,n_measured\n"
                   "fp,sig:ok,0.001,0.001,0,0.001,3,3\n"
                   "fp,sig:nan,nan,0.001,0,0.001,3,3\n")
    assert main(["cache", "import", str(bad), "--cache", cache_file]) == 2
    err = capsys.readouterr().err
    assert len(errors(err)) == 1 and "row 2" in err and "nothing imported" in err
    with LatencyCache(cache_file) as c:
        assert len(c) == 4
    assert main(["cache", "import", str(tmp_path / "missing.csv"), "--cache", cache_file]) == 2
    assert main(["cache", "import", cache_file, "--cache", cache_file]) == 2  # not .csv/.json


def test_unusable_cache_is_a_runtime_error(tmp_path, capsys):
    text = tmp_path / "notes.sqlite"
    text.write_text("not a database\n" * 20)
    assert main(["cache", "ls", "--cache", str(text)]) == 1
    err = capsys.readouterr().err
    assert len(errors(err)) == 1 and str(text) in err
    assert main(["cache", "import", str(tmp_path / "x.csv"), "--cache", str(tmp_path / "no" / "c.sqlite")]) == 2


@pytest.mark.parametrize("argv, words", [([], "a command is required"),
                                         (["cache"], "needs an action"),
                                         (["cache", "frobnicate"], "invalid choice"),
                                         (["cache", "ls", "--bogus"], "unrecognized arguments")])
def test_usage_errors_exit_2_with_one_line(argv, words, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert len(errors(err)) == 1 and words in err and "usage:" not in err


def test_registered_commands_are_wired(capsys):
    parser = build_parser()
    subcommands = parser._subparsers._group_actions[0].choices
    for name in ["cache", "report", *HYDRA_COMMANDS]:
        assert name in subcommands, f"{name} is not offered"
    args = parser.parse_args(["report", "pkg.mod:fn", "--n-run", "3"])
    assert args.n_run == 3 and callable(args.external)
    # the Hydra apps take their own command line: --cfg prints the composed config
    assert main(["profile", "space=darts", "progress=false", "--cfg", "job"]) == 0
    out = capsys.readouterr().out
    assert "nas_hw.search.spaces.DartsSpace" in out and "progress: false" in out


def test_report_runs_through_main(tmp_path, capsys):
    """``nas-hw report`` end to end through the dispatcher: a tiny graph, real measurements."""
    mod = tmp_path / "tiny_net_for_cli.py"
    mod.write_text("import nnabla as nn\nimport nnabla.functions as F\n"
                   "def build(x):\n    return F.relu(F.add_scalar(x, 1.0))\n")
    sys.path.insert(0, str(tmp_path))
    try:
        code = main(["report", "tiny_net_for_cli:build", "--input-shape", "1,2,4,4", "--n-run", "2",
                     "--n-warmup", "0", "--cache", str(tmp_path / "c.sqlite"), "--out", str(tmp_path / "out")])
    finally:
        sys.path.remove(str(tmp_path))
    captured = capsys.readouterr()
    if code == 1 and "matplotlib" in captured.err:
        pytest.skip("report needs matplotlib for its chart")
    assert code == 0, captured.err
    assert (tmp_path / "out" / "report.csv").exists()
    with LatencyCache(str(tmp_path / "c.sqlite")) as c:
        assert len(c) == 2
    assert main(["report", "no_such_module_xyz:build", "--cache", str(tmp_path / "c.sqlite")]) == 2


def test_console_script_in_a_subprocess(cache_file, tmp_path):
    exe = os.path.join(os.path.dirname(sys.executable), "nas-hw")
    cmd = [exe] if os.path.exists(exe) else [sys.executable, "-m", "nas_hw.app.cli"]
    ok = subprocess.run(cmd + ["cache", "ls", "--cache", cache_file], capture_output=True, text=True,
                        cwd=ROOT, timeout=120)
    assert ok.returncode == 0 and "cpu|test-chip" in ok.stdout
    bad = subprocess.run(cmd + ["cache", "clear", "--cache", cache_file], capture_output=True, text=True,
                         cwd=ROOT, timeout=120)
    assert bad.returncode == 2
    assert len(errors(bad.stderr)) == 1 and bad.stderr.rstrip().splitlines()[-1].startswith("nas-hw: error:")
