"""The examples/ scripts: thin wrappers over the nas-hw commands."""
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
