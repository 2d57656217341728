"""The whole search from a config (nas_hw/app/pipeline.py, search.py): tiny spaces, real runs."""
import csv
import json
import os
import subprocess
import sys

import pytest

from nas_hw.app.pipeline import run_search
from tests.conftest import REPO, compose

TINY_OVERRIDES = [
    "space.stem_channels=4", "space.stage_channels=[6]", "space.stage_blocks=[2]",
    "space.stage_strides=[1]", "space.kernels=[3,5]", "space.expansions=[1,3]",
    "search.epochs=1", "search.warmup_epochs=1", "search.max_batches=2", "search.batch_size=32",
    "retrain.epochs=1", "retrain.max_batches=2", "retrain.batch_size=32",
    "estimator.n_run=2", "estimator.n_warmup=1", "callbacks.monitor.n_run=2", "progress=false",
]


@pytest.mark.parametrize("algorithm", ["darts", "proxyless"])
def test_pipeline_writes_report_arch_and_csv(algorithm, tmp_path):
    cfg = compose(TINY_OVERRIDES + [f"search={algorithm}", "latency.weight=0.1",
                                    "table.input_shape=[1,1,16,16]",
                                    f"cache.path={tmp_path / 'cache.sqlite'}"])
    out = tmp_path / "run"
    report = run_search(cfg, str(out))
    assert report["algorithm"] == algorithm
    assert report["deploy_input_shape"] == [1, 1, 16, 16]
    assert report["true_latency_ms"] > 0 and report["estimated_latency_ms"] > 0
    assert 0 <= report["test_acc"] <= 1
    assert json.loads((out / "report.json").read_text()) == report
    arch = json.loads((out / "arch.json").read_text())
    assert len(arch["choices"]) == 2 and arch["input_shape"] == [1, 1, 16, 16]
    rows = list(csv.DictReader(open(out / "search_log.csv")))
    assert len(rows) == 1 and float(rows[0]["true_latency_ms"]) > 0
    assert os.path.isfile(tmp_path / "cache.sqlite")  # the cache is outside the run dir
    # Regression: arch.json and report.json named different architectures without saying which
    # is which. Each now says what it holds, and the report points at the budget checkpoint's.
    assert "argmax" in report["derived"] and "retrained" in report["derived"]
    assert "selected_by" in arch and "budget" in arch["selected_by"]
    kept = report["budget_checkpoint"]
    assert kept["file"] == "arch.json" and kept["choices"] == arch["choices"] and kept["epoch"] == arch["epoch"]


def test_bug_run_search_closes_its_cache(tmp_path, monkeypatch):
    """Regression: run_search never closed the latency cache (nor on a failure)."""
    from nas_hw.app import pipeline
    opened = []
    real_open = pipeline.open_cache

    def tracked(*args, **kwargs):
        opened.append(real_open(*args, **kwargs))
        return opened[-1]

    monkeypatch.setattr(pipeline, "open_cache", tracked)
    run_search(compose(TINY_OVERRIDES + ["retrain.epochs=0", f"cache.path={tmp_path / 'c.sqlite'}"]),
               str(tmp_path / "ok"))
    with pytest.raises(Exception):
        run_search(compose(TINY_OVERRIDES + ["search.epochs=-1", f"cache.path={tmp_path / 'c.sqlite'}"]),
                   str(tmp_path / "bad"))
    assert len(opened) == 2 and all(c._conn is None for c in opened)


def test_pipeline_resumes_a_stopped_run(tmp_path):
    first = run_search(compose(TINY_OVERRIDES + ["retrain.epochs=0"]), str(tmp_path / "a"))
    assert first["epochs_searched"] == 1 and first["test_acc"] is None
    second = run_search(compose(TINY_OVERRIDES + ["retrain.epochs=0", "search.epochs=2",
                                                   f"search.resume={tmp_path / 'a'}"]),
                        str(tmp_path / "b"))
    assert second["epochs_searched"] == 2
    rows = list(csv.DictReader(open(tmp_path / "b" / "search_log.csv")))
    assert [r["epoch"] for r in rows] == ["1"]  # only the epoch run after the resume


def test_hydra_multirun_of_the_example(tmp_path):
    env = dict(os.environ, NAS_HW_CACHE=str(tmp_path / "cache.sqlite"))
    sweep = tmp_path / "sweep"
    cmd = [sys.executable, os.path.join(REPO, "examples", "search.py"), "-m",
           "latency=none,default", f"hydra.sweep.dir={sweep}", "hydra/job_logging=disabled",
           "~callbacks.monitor"] + TINY_OVERRIDES[:-2] + ["progress=false"]
    cmd = [c for c in cmd if not c.startswith("callbacks.monitor")]
    done = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    reports = sorted(sweep.glob("*/report.json"))
    assert len(reports) == 2
    weights = sorted(json.loads(p.read_text())["latency_weight"] or 0 for p in reports)
    assert weights == [0.0, 0.1]
    assert not (tmp_path / "outputs").exists()


def test_calibration_switch_calibrates_the_table_once_and_reuses_it(tmp_path, monkeypatch):
    """table.calibrate=true: <= 5 whole-network measurements the first time, stored with the
    fingerprint; the next run reuses it (0 measurements); the report keeps the raw estimate."""
    from nas_hw.estimators import calibrated
    measured = []
    real = calibrated.Calibrator.measure_true

    def counting(self, out):
        measured.append(1)
        return real(self, out)

    monkeypatch.setattr(calibrated.Calibrator, "measure_true", counting)
    overrides = TINY_OVERRIDES + ["retrain.epochs=0", "table.calibrate=true", "table.calibration_points=3",
                                  f"cache.path={tmp_path / 'cache.sqlite'}"]
    cfg = compose(overrides)
    first = run_search(cfg, str(tmp_path / "a"))
    assert len(measured) == 3
    cal = first["calibration"]
    assert cal["n_points"] == 3 and cal["scale"] > 0
    expected = (cal["scale"] * first["estimated_latency_raw_ms"] + cal["const"])
    assert first["estimated_latency_ms"] >= expected - 1e-9  # plus per_layer * layers >= 0
    second = run_search(compose(overrides), str(tmp_path / "b"))
    assert len(measured) == 3  # reused from the cache
    assert second["calibration"] == cal
    with pytest.raises(ValueError, match="calibration_points|number of calibration networks"):
        run_search(compose(TINY_OVERRIDES + ["table.calibrate=true", "table.calibration_points=6"]),
                   str(tmp_path / "c"))


NNABLA_NAS_TINY = [
    "search.epochs=1", "search.warmup_epochs=0", "search.max_batches=1", "search.batch_size=8",
    "retrain.epochs=1", "retrain.max_batches=1", "retrain.batch_size=8",
    "estimator.n_run=1", "estimator.n_warmup=0", "callbacks.monitor.n_run=1", "progress=false",
]


@pytest.mark.parametrize("space", ["darts", "pnas", "mobilenet", "fairnas"])
def test_nnabla_nas_space_configs_compose_to_the_real_searchnets(space):
    cfg = compose([f"space=nnabla_nas/{space}"])
    assert cfg.space._target_ == "nas_hw.search.spaces.searchnets.SearchNetSpace"
    assert cfg.space.net._target_.startswith("nnabla_nas.contrib.classification.")


@pytest.mark.parametrize("space,search", [("darts", "darts"), ("mobilenet", "proxyless")])
def test_the_real_searchnets_run_end_to_end_on_the_digits(space, search, tmp_path):
    """nas-hw search space=nnabla_nas/<space>: the 1x8x8 digits meet the SearchNet's input (DARTS:
    16x16, MobileNet: 3 channels), searched, derived by the space's rule, measured and retrained."""
    cfg = compose(NNABLA_NAS_TINY + [f"space=nnabla_nas/{space}", f"search={search}", "latency.weight=0.1",
                                     "data.valid_fraction=0.05", "data.test_fraction=0.05",
                                     f"cache.path={tmp_path / 'cache.sqlite'}"])
    report = run_search(cfg, str(tmp_path / "run"))
    wanted = {"darts": [1, 1, 16, 16], "mobilenet": [1, 3, 8, 8]}[space]
    assert report["deploy_input_shape"] == wanted and report["data_adapted_from"] == [1, 8, 8]
    assert report["true_latency_ms"] > 0 and 0 <= report["test_acc"] <= 1
    assert len(report["candidates"]) == len(report["choices"])
    if space == "darts":  # DARTS's rule: per node, two edges keep a non-Zero candidate
        assert report["candidates"][:2].count("none") == 0 and report["candidates"][2:].count("none") == 1


def test_the_real_darts_searchnet_on_cifar10_read_from_a_directory(tmp_path):
    """CIFAR-10 in its own python-batch format, from a local directory (written here), at its own
    3x32x32 with a two-cell DARTS SearchNet: the images are used as they are."""
    import pickle

    import numpy as np

    from nas_hw.search.datasets import CIFAR10_TEST_FILE, CIFAR10_TRAIN_FILES

    rng = np.random.RandomState(0)
    for name in CIFAR10_TRAIN_FILES + (CIFAR10_TEST_FILE,):
        with open(tmp_path / name, "wb") as f:
            pickle.dump({b"data": rng.randint(0, 256, (12, 3072)).astype(np.uint8),
                         b"labels": list(rng.randint(0, 10, 12))}, f)
    cfg = compose(NNABLA_NAS_TINY + ["space=nnabla_nas/darts", "space.image_size=32", "space.net.num_cells=2",
                                     "data=cifar10", f"data.root={tmp_path}", "data.valid_fraction=0.2",
                                     f"cache.path={tmp_path / 'cache.sqlite'}"])
    report = run_search(cfg, str(tmp_path / "run"))
    assert report["data"] == "cifar10" and report["data_adapted_from"] is None
    assert report["deploy_input_shape"] == [1, 3, 32, 32] and len(report["choices"]) == 5


def test_a_searchnet_that_cannot_take_the_data_is_refused_in_one_line(tmp_path):
    from nas_hw.errors import ConfigInputError

    cfg = compose(NNABLA_NAS_TINY + ["space=nnabla_nas/darts", "space.image_size=32",
                                     f"cache.path={tmp_path / 'cache.sqlite'}"])
    with pytest.raises(ConfigInputError, match="^space.image_size: .*cannot take inputs of shape \\[1, 1, 32, 32\\]"):
        run_search(cfg, str(tmp_path / "run"))


def test_searchnet_space_keys_are_typed():
    from nas_hw.errors import ConfigInputError

    with pytest.raises(ConfigInputError, match="space.image_size"):
        compose(["space=nnabla_nas/darts", "space.image_size=big"])
    assert compose(["space=nnabla_nas/darts", "space.image_size=32"]).space.image_size == 32
