"""Sweeps on Hydra's launchers (joblib, submitit_local): the table is profiled once, the jobs read it
and measure nothing, and they agree with a serial run of the same settings."""
import json
import os
import subprocess
import sys

import pytest

from nas_hw.measure.store import LatencyCache
from tests.app.test_pipeline import TINY_OVERRIDES

pytest.importorskip("hydra_plugins.hydra_joblib_launcher", reason="needs nas_hw[sweep] (hydra-joblib-launcher)")

SWEEP = [o for o in TINY_OVERRIDES if not o.startswith(("retrain.", "callbacks."))] + [
    "retrain=none", "callbacks=sweep", "hydra/job_logging=disabled"]
JOBS = "seed=0,1"


def nas_hw_cmd(*args, cwd, cache, timeout=600):
    env = dict(os.environ, NAS_HW_CACHE=str(cache))
    done = subprocess.run([sys.executable, "-m", "nas_hw.app.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def reports(sweep_dir):
    out = {}
    for path in sorted(sweep_dir.glob("*/report.json")):
        r = json.loads(path.read_text())
        out[r["seed"]] = r
    return out


@pytest.fixture(scope="module")
def profiled(tmp_path_factory):
    """One `nas-hw profile` of the sweep's space, and a serial multirun (Hydra's basic launcher)
    reading the stored table, to compare the parallel launchers with."""
    root = tmp_path_factory.mktemp("sweep")
    cache = root / "cache.sqlite"
    nas_hw_cmd("profile", *[o for o in SWEEP if not o.startswith(("search.", "callbacks", "retrain"))],
               cwd=root, cache=cache)
    with LatencyCache(str(cache)) as c:
        rows = len(c)
    assert rows > 0
    serial = root / "serial"
    nas_hw_cmd("search", "-m", JOBS, "table.stored=true", f"hydra.sweep.dir={serial}", *SWEEP, cwd=root, cache=cache)
    return root, cache, rows, reports(serial)


def _same_search(a, b):
    for key in ("choices", "estimated_latency_ms", "search_valid_acc", "epochs_searched"):
        assert a[key] == b[key], (key, a[key], b[key])


@pytest.mark.parametrize("launcher", ["joblib", "submitit_local"])
def test_parallel_jobs_read_the_profiled_table_and_agree_with_a_serial_run(launcher, profiled):
    if launcher == "submitit_local":
        pytest.importorskip("hydra_plugins.hydra_submitit_launcher", reason="needs nas_hw[sweep]")
    root, cache, rows, serial = profiled
    sweep = root / launcher
    nas_hw_cmd("search", "-m", f"hydra/launcher={launcher}", JOBS, "table.stored=true",
               f"hydra.sweep.dir={sweep}", *SWEEP, cwd=root, cache=cache)
    parallel = reports(sweep)
    assert sorted(parallel) == sorted(serial) == [0, 1]
    for seed in (0, 1):
        _same_search(parallel[seed], serial[seed])
        assert parallel[seed]["table_stored"] and parallel[seed]["true_latency_ms"] is None
    with LatencyCache(str(cache)) as c:
        assert len(c) == rows  # the jobs measured nothing


def test_a_stored_table_that_was_never_profiled_is_one_line(tmp_path):
    env = dict(os.environ, NAS_HW_CACHE=str(tmp_path / "empty.sqlite"))
    done = subprocess.run([sys.executable, "-m", "nas_hw.app.cli", "search", "table.stored=true",
                           f"hydra.run.dir={tmp_path / 'run'}", *SWEEP], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    lines = [ln for ln in done.stderr.strip().splitlines() if "[nnabla][INFO]" not in ln]
    assert done.returncode == 1 and len(lines) == 1 and "run `nas-hw profile`" in lines[0], done.stderr


def test_a_stored_table_job_refuses_a_callback_that_measures(tmp_path):
    from nas_hw.app.pipeline import plan_search
    from nas_hw.errors import ConfigInputError
    from tests.conftest import compose

    with pytest.raises(ConfigInputError, match="callbacks.monitor measures latency on the device"):
        plan_search(compose(TINY_OVERRIDES + ["table.stored=true"]), str(tmp_path))
