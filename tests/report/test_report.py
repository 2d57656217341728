"""``nas-hw report``: per-layer table, CSV/JSON/PNG outputs, and clear errors on bad input."""
import argparse
import csv
import json
import os
import subprocess
import sys
import textwrap
import zipfile
from collections import OrderedDict

import nnabla as nn
import nnabla.functions as F
import nnabla.parametric_functions as PF
import pytest

from nas_hw.app import report as report_cmd
from nas_hw.report import build_report, load_network
from nas_hw.report.writers import top_rows
from nas_hw.measure.store import LatencyCache

from tests.conftest import REPO
FAST = ["--n-run", "3", "--n-warmup", "0", "--max-measure-execution-time", "0.05"]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

NETS_MODULE = textwrap.dedent('''
    import nnabla as nn
    import nnabla.functions as F
    import nnabla.parametric_functions as PF


    def net(x):
        h = F.relu(PF.convolution(x, 4, (3, 3), pad=(1, 1), name="c1"))
        return PF.affine(F.average_pooling(h, (2, 2)), 5, name="fc")


    def no_arg():
        return net(nn.Variable((2, 3, 8, 8)))


    def not_a_variable(x):
        return 3


    def two_args(x, y):
        return x


    VALUE = 7
''')


def _small_conv(x):
    h = PF.convolution(x, 4, (3, 3), pad=(1, 1), name="conv1")
    h = PF.batch_normalization(h, batch_stat=False, name="bn1")
    h = F.relu(h)
    h = F.max_pooling(h, (2, 2))
    return PF.affine(h, 10, name="fc")


@pytest.fixture
def nnp_file(tmp_path):
    """A small conv network saved as .nnp (parameters kept out of nnabla's global scope)."""
    from nnabla.utils.save import save

    path = str(tmp_path / "small.nnp")
    with nn.parameter_scope("", scope=OrderedDict()):
        x = nn.Variable((1, 3, 8, 8))
        y = _small_conv(x)
        save(path, {"networks": [{"name": "small", "batch_size": 1, "outputs": {"y": y},
                                  "names": {"x": x}}],
                    "executors": [{"name": "runtime", "network": "small", "data": ["x"],
                                   "output": ["y"]}]})
    return path


@pytest.fixture
def nets_module(tmp_path, monkeypatch):
    """An importable module ``report_nets`` of network-building functions."""
    pkg = tmp_path / "mods"
    pkg.mkdir()
    (pkg / "report_nets.py").write_text(NETS_MODULE)
    monkeypatch.syspath_prepend(str(pkg))
    sys.modules.pop("report_nets", None)
    yield str(pkg)
    sys.modules.pop("report_nets", None)


def _parse(argv):
    parser = argparse.ArgumentParser(prog="nas-hw report")
    report_cmd.add_arguments(parser)
    return parser.parse_args(argv)


def _run(argv, capsys):
    code = report_cmd.run(_parse(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _read_csv(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_report_on_nnp_prints_table_and_writes_outputs(nnp_file, tmp_path, capsys):
    out_dir = tmp_path / "out"
    cache = str(tmp_path / "c.sqlite")
    code, out, err = _run([nnp_file, "--cache", cache, "--out", str(out_dir), "--top", "3"] + FAST, capsys)
    assert code == 0, err
    for column in ("layer", "type", "latency_ms", "share_%", "params", "activations", "flops"):
        assert column in out
    for type_name in ("Convolution", "BatchNormalization", "ReLU", "MaxPooling", "Affine"):
        assert type_name in out
    assert "layer-based estimate" in out and "true (Profiler" in out

    rows = _read_csv(out_dir / "report.csv")
    assert [r["type"] for r in rows] == ["Convolution", "BatchNormalization", "ReLU",
                                         "MaxPooling", "Affine"]
    assert rows[0]["layer"] == "conv1/conv"
    summary = json.loads((out_dir / "report.json").read_text())
    # per-layer latencies add up to the layer-based estimate
    assert sum(float(r["latency_ms"]) for r in rows) == pytest.approx(summary["layer_latency"], rel=1e-9)
    assert sum(float(r["share_percent"]) for r in rows) == pytest.approx(100.0)
    assert summary["true_latency"] > 0
    # static columns: conv 4x3x3x3 + 4 bias, BN 4 x (beta, gamma, mean, var), affine 4*4*4 x 10 + 10
    assert [int(r["params"]) for r in rows] == [112, 16, 0, 0, 650]
    assert summary["param_count"] == 778
    assert int(rows[0]["activation_bytes"]) == 4 * 8 * 8 * 4
    assert int(rows[0]["flops"]) == 2 * (4 * 8 * 8) * 27 + 4 * 8 * 8
    assert summary["input_shapes"] == [[1, 3, 8, 8]]
    png = (out_dir / "report.png").read_bytes()
    assert png.startswith(PNG_MAGIC)
    # every layer was measured once and stored in the given cache
    with LatencyCache(cache) as c:
        assert len(c) == 5
    assert summary["measurements"] == 5

    # a second run is served by the cache and gives the same layer latencies
    code, out, err = _run([nnp_file, "--cache", cache, "--out", str(out_dir)] + FAST, capsys)
    assert code == 0, err
    assert "layer measurements taken: 0" in out
    again = _read_csv(out_dir / "report.csv")
    assert [r["latency_ms"] for r in again] == [r["latency_ms"] for r in rows]


def test_report_layer_latencies_sum_to_estimate_in_other_units(nnp_file, tmp_path):
    before = set(nn.get_parameters(grad_only=False))
    network = load_network(nnp_file)
    from nas_hw.estimators.graph import LatencyGraphEstimator

    est = LatencyGraphEstimator(ext_name="cpu", device_id=0, n_run=3, n_warmup=0,
                                max_measure_execution_time=0.05, time_scale="u",
                                cache=str(tmp_path / "c.sqlite"))
    rep = build_report(network, est, n_run=3)
    assert rep.unit_name == "us"
    assert sum(r.latency for r in rep.rows) == pytest.approx(rep.layer_latency, rel=1e-12)
    assert rep.layer_latency == pytest.approx(est.get_estimation(network.output, network.inputs))
    assert [r.index for r in top_rows(rep, 2)] == sorted(
        range(len(rep.rows)), key=lambda i: -rep.rows[i].latency)[:2]
    # loading never touches nnabla's global parameter scope (other tests may have filled it)
    assert set(nn.get_parameters(grad_only=False)) == before


def test_report_nnp_batch_size_can_change(nnp_file, tmp_path, capsys):
    out_dir = tmp_path / "out"
    code, out, err = _run([nnp_file, "--input-shape", "2,3,8,8", "--out", str(out_dir)] + FAST, capsys)
    assert code == 0, err
    summary = json.loads((out_dir / "report.json").read_text())
    assert summary["input_shapes"] == [[2, 3, 8, 8]]
    assert int(_read_csv(out_dir / "report.csv")[0]["activation_bytes"]) == 2 * 4 * 8 * 8 * 4


def test_report_module_function(nets_module, tmp_path, capsys):
    out_dir = tmp_path / "out"
    code, out, err = _run(["report_nets:net", "--input-shape", "1,3,8,8", "--time-scale", "u",
                           "--out", str(out_dir)] + FAST, capsys)
    assert code == 0, err
    assert "latency_us" in out
    rows = _read_csv(out_dir / "report.csv")
    assert [r["type"] for r in rows] == ["Convolution", "ReLU", "AveragePooling", "Affine"]
    assert rows[0]["layer"] == "c1/conv"
    summary = json.loads((out_dir / "report.json").read_text())
    assert sum(float(r["latency_us"]) for r in rows) == pytest.approx(summary["layer_latency"], rel=1e-9)
    assert (out_dir / "report.png").read_bytes().startswith(PNG_MAGIC)

    # a function with no argument builds its own input
    code, out, err = _run(["report_nets:no_arg", "--out", str(out_dir)] + FAST, capsys)
    assert code == 0, err
    assert json.loads((out_dir / "report.json").read_text())["input_shapes"] == [[2, 3, 8, 8]]


@pytest.mark.parametrize("kind", ["missing", "text", "zip", "not_nnp_name", "directory"])
def test_report_bad_file_fails_clearly(kind, tmp_path, capsys):
    path = tmp_path / "net.nnp"
    if kind == "text":
        path.write_text("this is not a network\n")
    elif kind == "zip":
        with zipfile.ZipFile(path, "w") as zf:
            zf.writestr("readme.txt", "no network here")
    elif kind == "not_nnp_name":
        path = tmp_path / "net.txt"
        path.write_text("x")
    elif kind == "directory":
        path = tmp_path / "dir.nnp"
        path.mkdir()
    expected = {"missing": "does not exist", "text": "is not an .nnp file",
                "zip": "without nnp content", "not_nnp_name": "is not an .nnp file",
                "directory": "not a regular file"}[kind]
    code, out, err = _run([str(path), "--out", str(tmp_path / "out")] + FAST, capsys)
    assert code == 2
    assert err.startswith("nas-hw: error: ") and err.count("\n") == 1
    assert expected in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("spec, expected", [
    ("no_such_module_xyz:net", "cannot import module 'no_such_module_xyz'"),
    ("report_nets:missing", "has no function 'missing'"),
    ("report_nets:VALUE", "is not a function (it is a 'int' value)"),
    ("report_nets:not_a_variable", "returned int, expected the network's output nnabla.Variable"),
    ("report_nets:two_args", "needs 2 arguments"),
    ("report_nets:", "needs both parts"),
])
def test_report_bad_function_fails_clearly(spec, expected, nets_module, tmp_path, capsys):
    code, out, err = _run([spec, "--out", str(tmp_path / "out")] + FAST, capsys)
    assert code == 2
    assert err.startswith("nas-hw: error: ") and err.count("\n") == 1
    assert expected in err


@pytest.mark.parametrize("argv, expected", [
    (["--input-shape", "1,x,8"], "--input-shape must be comma-separated positive integers"),
    (["--input-shape", "1,3,16,16"], "does not fit network"),
    (["--top", "0"], "--top must be >= 1"),
    (["--ext-name", "tpu"], "ext_name must be one of"),
])
def test_report_bad_options_fail_clearly(argv, expected, nnp_file, tmp_path, capsys):
    code, out, err = _run([nnp_file, "--out", str(tmp_path / "out")] + FAST + argv, capsys)
    assert code == 2
    assert err.startswith("nas-hw: error: ") and err.count("\n") == 1
    assert expected in err


def test_report_input_shape_refused_for_function_without_argument(nets_module, tmp_path, capsys):
    code, out, err = _run(["report_nets:no_arg", "--input-shape", "1,3,8,8"] + FAST, capsys)
    assert code == 2
    assert "takes no argument" in err


def test_report_without_matplotlib_says_how_to_install(nnp_file, tmp_path, capsys, monkeypatch):
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    code, out, err = _run([nnp_file, "--out", str(tmp_path / "out")] + FAST, capsys)
    assert code == 1
    assert "pip install matplotlib" in err and "--no-plot" in err and err.count("\n") == 1
    assert not (tmp_path / "out").exists()  # failed before measuring or writing anything
    # --no-plot needs no matplotlib: the table, CSV and JSON, no PNG
    code, out, err = _run([nnp_file, "--out", str(tmp_path / "out"), "--no-plot"] + FAST, capsys)
    assert code == 0, err
    assert sorted(os.listdir(tmp_path / "out")) == ["report.csv", "report.json"]
    assert "(no chart: --no-plot)" in out


def test_report_as_a_subprocess(nnp_file, tmp_path):
    out_dir = tmp_path / "out"
    env = dict(os.environ, NAS_HW_CACHE=str(tmp_path / "sub.sqlite"))
    proc = subprocess.run([sys.executable, "-m", "nas_hw.app.cli", "report", nnp_file, "--out", str(out_dir)] + FAST,
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "latency_ms" in proc.stdout and "Convolution" in proc.stdout
    assert (out_dir / "report.csv").exists() and (out_dir / "report.png").exists()

    bad = subprocess.run([sys.executable, "-m", "nas_hw.app.cli", "report", str(tmp_path / "nope.nnp")],
                         cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2
    assert "nas-hw: error: " in bad.stderr and "does not exist" in bad.stderr


def test_report_says_which_latencies_come_from_flagged_rows(nnp_file, tmp_path):
    from nas_hw.estimators.graph import LatencyGraphEstimator
    from nas_hw.measure.timing import TimingStats
    from nas_hw.report.writers import format_table, write_csv, write_json

    def timer(fn, label=None, **kwargs):  # convolutions come out disturbed
        bad = "fn:Convolution|" in (label or "")
        return TimingStats(2e-3, 1e-3, 0.0, 1e-3, 3, 3, value=1e-3, spread=0.3 if bad else 0.0, n_rounds=3,
                           load1=6.0, peers=0, disturbed=bad)

    network = load_network(nnp_file)
    est = LatencyGraphEstimator(ext_name="cpu", n_run=3, n_warmup=0, cache=LatencyCache(":memory:"), timer=timer)
    rep = build_report(network, est, n_run=3)
    conv = [r.index for r in rep.rows if r.type_name == "Convolution"]
    assert rep.flagged == conv and all(rep.rows[i].disturbed for i in conv)
    assert rep.rows[conv[0]].latency == pytest.approx(1.0)  # the robust value, in ms
    text = format_table(rep)
    assert "1.0000!" in text and "WARNING: 1 layer latency(ies) (marked !)" in text
    assert "nas-hw cache verify --refresh --disturbed" in text and "minimum of the runs" in text
    write_csv(rep, tmp_path / "r.csv")
    rows = _read_csv(tmp_path / "r.csv")
    assert [int(r["disturbed"]) for r in rows] == [int(r.disturbed) for r in rep.rows]
    write_json(rep, tmp_path / "r.json")
    doc = json.loads((tmp_path / "r.json").read_text())
    assert doc["flagged"] == conv and doc["statistic"].startswith("minimum of the runs")
