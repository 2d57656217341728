"""The backend choice in the commands (nas_hw/app/config.py, pipeline.py, report.py):
``backend=onnxruntime`` for nas-hw search / profile, ``--backend onnxruntime`` for nas-hw report."""
import json

import pytest

from nas_hw.app import profile
from nas_hw.app.pipeline import build_backend, setup
from nas_hw.errors import ConfigInputError
from nas_hw.measure.backends.onnxruntime import OrtBackend
from nas_hw.nas.table import CandidateTable
from tests.app.test_profile import TINY, _run, _summary_value
from tests.conftest import compose
from tests.measure.backends.onnx_util import requires_onnx
from tests.report.test_report import FAST
from tests.report.test_report import _run as run_report


def test_nnabla_is_the_default_backend():
    cfg = compose(TINY)
    assert cfg.backend.name == "nnabla"
    s = setup(cfg)
    try:
        assert s.estimator.backend.name == "nnabla" and s.estimator.fingerprint_key == s.device.fingerprint.key
    finally:
        s.cache.close()


@pytest.mark.parametrize("override,match", [
    ("backend.threads=0", "backend.threads"),
    ("backend.optimization=max", "backend.optimization"),
    ("backend.provider=gpu", "backend.provider"),
])
@requires_onnx
def test_a_bad_backend_value_is_named(override, match):
    cfg = compose(TINY + ["backend=onnxruntime", override])
    with pytest.raises(ConfigInputError, match=match):
        build_backend(cfg.backend, setup_device(cfg))


def test_an_unknown_backend_key_is_refused():
    with pytest.raises(Exception, match="backend"):
        compose(TINY + ["+backend.color=red"])


def setup_device(cfg):
    from hydra.utils import instantiate

    return instantiate(cfg.device)


@requires_onnx
def test_profile_on_onnxruntime_stores_a_table_under_the_runtimes_fingerprint(tmp_path, capsys):
    cache_path = str(tmp_path / "lat.sqlite")
    table_json = tmp_path / "table.json"
    argv = TINY + ["backend=onnxruntime", f"cache.path={cache_path}", "--out", str(table_json)]
    code, out, err = _run(argv, capsys)
    assert code == 0, err
    assert int(_summary_value(out, "measurements taken")) > 0
    table = CandidateTable.load(str(table_json))
    assert table.fingerprint.startswith("onnxruntime|CPUExecutionProvider|")
    assert isinstance(table.backend, OrtBackend)
    code, out, err = _run(argv, capsys)
    assert code == 0 and _summary_value(out, "measurements taken") == "0"
    # the nnabla table of the same space is another table, measured on its own
    code, out, err = _run(TINY + [f"cache.path={cache_path}"], capsys)
    assert code == 0 and int(_summary_value(out, "measurements taken")) > 0


@requires_onnx
def test_report_on_onnxruntime_shows_fused_rows(tmp_path, capsys):
    out_dir = tmp_path / "rep"
    (tmp_path / "fused_net.py").write_text(
        "import nnabla.functions as F\nimport nnabla.parametric_functions as PF\n\n\n"
        "def build(x):\n"
        "    h = F.relu(PF.batch_normalization(PF.convolution(x, 8, (3, 3), pad=(1, 1), name='c1'),"
        " batch_stat=False, name='bn1'))\n"
        "    return PF.affine(F.max_pooling(h, (2, 2)), 10, name='fc')\n")
    import sys
    sys.path.insert(0, str(tmp_path))
    try:
        code, out, err = run_report(["fused_net:build", "--backend", "onnxruntime", "--no-plot",
                                     "--out", str(out_dir)] + FAST, capsys)
    finally:
        sys.path.remove(str(tmp_path))
    assert code == 0, err
    assert "device onnxruntime (CPUExecutionProvider)" in out
    assert "Convolution+BatchNormalization+ReLU" in out and "(fused into row 0)" in out
    report = json.loads((out_dir / "report.json").read_text())
    assert report["backend"] == "onnxruntime" and len(report["rows"]) == 5
    assert [r["latency"] for r in report["rows"]][1:3] == [0.0, 0.0]
    assert report["layer_latency"] == pytest.approx(sum(r["latency"] for r in report["rows"]))


def test_report_refuses_an_unknown_backend(capsys):
    with pytest.raises(SystemExit):
        run_report(["x:y", "--backend", "tvm"], capsys)


@requires_onnx
def test_search_on_onnxruntime_reports_where_it_measured(tmp_path):
    from nas_hw.app.pipeline import run_search
    from tests.app.test_pipeline import TINY_OVERRIDES

    cfg = compose(TINY_OVERRIDES + ["backend=onnxruntime", "retrain.epochs=0", "table.input_shape=[1,1,8,8]",
                                    f"cache.path={tmp_path / 'c.sqlite'}"])
    report = run_search(cfg, str(tmp_path / "run"))
    assert report["backend"] == "onnxruntime"
    assert report["table_fingerprint"].startswith("onnxruntime|")
    assert report["true_latency_ms"] > 0 and report["estimated_latency_ms"] > 0
