"""``nas-hw report`` as a user meets it (nas_hw/app/report.py): a module beside them, the
progress bar, readable totals, and errors of one line from a fresh process."""
import io
import os
import subprocess
import sys
import textwrap

import pytest

from nas_hw.app import report as report_cmd
from nas_hw.app.report import LayerProgress

from tests.report.test_report import FAST, _run

NET = textwrap.dedent('''
    import nnabla.functions as F
    import nnabla.parametric_functions as PF


    def build(x):
        h = F.relu(PF.convolution(x, 8, (3, 3), pad=(1, 1), name="c1"))
        return PF.affine(F.max_pooling(h, (2, 2)), 10, name="fc")
''')


def nas_hw_command():
    """The installed console script (the virtual environment's ``bin/nas-hw``)."""
    exe = os.path.join(os.path.dirname(sys.executable), "nas-hw")
    if not os.path.exists(exe):
        pytest.skip("the nas-hw console script is not installed beside this interpreter")
    return exe


def test_the_console_script_finds_a_module_in_the_current_directory(tmp_path):
    (tmp_path / "mynet_here.py").write_text(NET)
    env = dict(os.environ, NAS_HW_CACHE=str(tmp_path / "c.sqlite"))
    done = subprocess.run([nas_hw_command(), "report", "mynet_here:build", "--no-plot"] + FAST,
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "c1/conv" in done.stdout and "fc/affine" in done.stdout
    assert (tmp_path / "report.csv").exists() and not (tmp_path / "report.png").exists()


def test_in_process_the_current_directory_is_searched_and_sys_path_restored(tmp_path, monkeypatch, capsys):
    (tmp_path / "mynet_inproc.py").write_text(NET)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    before = list(sys.path)
    sys.modules.pop("mynet_inproc", None)
    try:
        code, out, err = _run(["mynet_inproc:build", "--out", str(tmp_path / "o"), "--no-plot"] + FAST, capsys)
    finally:
        sys.modules.pop("mynet_inproc", None)
    assert code == 0, err
    assert sys.path == before
    code, out, err = _run(["not_here_xyz:build"] + FAST, capsys)
    assert code == 2 and err.count("\n") == 1 and "looked in the current directory" in err


def test_report_shows_a_progress_bar_and_readable_totals(tmp_path, monkeypatch, capsys):
    (tmp_path / "mynet_bar.py").write_text(NET)
    monkeypatch.syspath_prepend(str(tmp_path))
    args = ["mynet_bar:build", "--out", str(tmp_path / "o"), "--no-plot", "--progress",
            "--cache", str(tmp_path / "c.sqlite")] + FAST
    code, out, err = _run(args, capsys)
    assert code == 0, err
    assert "measuring layers" in err and "/4" in err  # 4 functions: conv, relu, pool, affine
    # big numbers with a prefix; exact ones stay in the CSV / JSON
    assert "parameters: 20.7 k (80.9 KiB as float32)" in out  # 224 + 20490 parameters
    assert "kFLOPs" in out and "kMACs" in out
    code, out, err = _run([a for a in args if a != "--progress"] + ["--no-progress"], capsys)
    assert code == 0 and "measuring layers" not in err


class FakeCache:
    hits = 0
    measurements = 0


def test_layer_progress_counts_cached_layers_as_passed_and_measured_ones_as_timed():
    cache, out = FakeCache(), io.StringIO()
    progress = LayerProgress(6, enabled=True, file=out)
    cache.hits = 10  # counters from before this report are not counted
    progress.bind(cache)
    cache.hits += 2  # two cached layers passed
    progress.timer(lambda: None, n_run=1, n_warmup=0)  # the third is timed
    assert progress.bar.n == 3 and progress.timed == 1
    cache.measurements += 1
    cache.hits += 1
    progress.timer(lambda: None, n_run=1, n_warmup=0)
    assert progress.bar.n == 5
    progress.close()
    assert progress.bar.n == 6
    assert "measuring layers" in out.getvalue()
    quiet = LayerProgress(3, enabled=False, file=io.StringIO())
    quiet.bind(FakeCache())
    quiet.close()
    assert quiet.file.getvalue() == ""


@pytest.mark.parametrize("argv,code", [
    (["report", "missing.nnp"], 2),
    (["report", "nosuchmodule_xyz:build"], 2),
    (["search", "latency.weight=-1"], 2),
    (["profile", "estimator.n_run=0"], 2),
    (["cache", "export", "rows.txt"], 2),
])
def test_every_error_is_one_line_from_a_fresh_process(argv, code, tmp_path):
    env = dict(os.environ, NAS_HW_CACHE=str(tmp_path / "c.sqlite"))
    done = subprocess.run([nas_hw_command()] + argv, cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == code
    assert done.stderr.startswith("nas-hw: error: ") and done.stderr.count("\n") == 1, done.stderr
    assert "Initializing CPU extension" not in done.stderr + done.stdout
