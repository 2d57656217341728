"""The Hydra config tree (conf/) and its schemas (nas_hw/config.py)."""
import os
import subprocess
import sys

import pytest
from hydra import compose, initialize_config_dir
from hydra.errors import ConfigCompositionException, MissingConfigException
from hydra.utils import instantiate
from omegaconf.errors import ValidationError

from nas_hw.callbacks import BudgetCheckpoint, CSVLogger, LatencyConstraint, LatencyMonitor
from nas_hw.config import Config, validate
from nas_hw.search.pipeline import build_callbacks

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONF = os.path.join(REPO, "conf")


def compose_config(overrides=()):
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        return compose("config", overrides=list(overrides))


def test_default_config_composes_and_validates():
    cfg = compose_config()
    obj = validate(cfg)
    assert isinstance(obj, Config)
    assert cfg.search.algorithm == "darts" and cfg.data.name == "digits"
    assert cfg.device.ext_name == "cpu" and cfg.estimator.n_run == 20
    assert cfg.cache.path is None  # the shared user cache, never the run directory
    assert cfg.latency.input_shape is None
    assert list(cfg.callbacks) == ["monitor", "constraint", "checkpoint", "csv"]


def test_overrides_of_groups_and_values():
    cfg = compose_config(["estimator=module", "search=proxyless", "space=darts", "device=cudnn",
                          "latency.weight=0.1", "latency.target=0.5", "latency.mode=hinge",
                          "latency.input_shape=[1,1,32,32]", "data=cifar10", "data.root=/data"])
    validate(cfg)
    assert cfg.estimator._target_.endswith("LatencyEstimator")
    assert cfg.search.algorithm == "proxyless" and cfg.search.n_samples == 4
    assert cfg.space._target_.endswith("DartsSpace") and cfg.space.n_cells == 3
    assert cfg.device.ext_name == "cudnn"
    assert cfg.latency.weight == 0.1 and list(cfg.latency.input_shape) == [1, 1, 32, 32]
    assert cfg.data.name == "cifar10" and cfg.data.root == "/data"
    # the callbacks read the latency target through interpolation
    assert cfg.callbacks.constraint.bound_ms == 0.5 and cfg.callbacks.checkpoint.budget_ms == 0.5


def test_callbacks_can_be_removed_or_changed_from_the_command_line():
    cfg = compose_config(["~callbacks.csv", "callbacks.monitor.n_run=7", "latency.target=2.0"])
    cbs = build_callbacks(cfg.callbacks)
    assert [type(c) for c in cbs] == [LatencyMonitor, LatencyConstraint, BudgetCheckpoint]
    assert cbs.callbacks[0].n_run == 7 and cbs.callbacks[1].bound_ms == 2.0
    assert [name for name, _ in cbs.named] == ["monitor", "constraint", "checkpoint"]
    assert len(build_callbacks(compose_config(["callbacks=none"]).callbacks)) == 0
    added = build_callbacks(compose_config(["callbacks=none", "+callbacks.log._target_=nas_hw.callbacks.CSVLogger",
                                            "+callbacks.log.filename=mine.csv"]).callbacks)
    assert [name for name, _ in added.named] == ["log"] and added.callbacks[0].filename == "mine.csv"
    assert isinstance(build_callbacks(compose_config().callbacks).callbacks[-1], CSVLogger)


def test_estimator_config_instantiates_with_run_time_arguments(tmp_path):
    from nas_hw.cache import LatencyCache
    cfg = compose_config(["estimator.n_run=3"])
    est = instantiate(cfg.estimator)(device_id=0, ext_name="cpu",
                                     cache=LatencyCache(str(tmp_path / "c.sqlite")))
    assert type(est).__name__ == "LatencyGraphEstimator" and est.n_run == 3


@pytest.mark.parametrize("override", ["latency.wieght=0.1", "search.epoch=3", "space.kernel=[3]"])
def test_misspelt_key_fails_at_composition(override):
    with pytest.raises(ConfigCompositionException):
        compose_config([override])


@pytest.mark.parametrize("override", ["estimator=grpah", "search=enas", "space=resnet"])
def test_unknown_group_option_fails_at_composition(override):
    with pytest.raises(MissingConfigException):
        compose_config([override])


@pytest.mark.parametrize("override", ["latency.weight=abc", "search.epochs=1.5",
                                      "progress=maybe", "device.device_id=gpu"])
def test_wrong_type_fails_with_hydras_message(override):
    with pytest.raises((ConfigCompositionException, ValidationError)):
        compose_config([override])


@pytest.mark.parametrize("override,message", [
    ("latency.mode=quadratic", "latency.mode must be one of ('linear', 'hinge', 'log'), got 'quadratic'"),
    ("search.algorithm=enas", "search.algorithm must be one of ('darts', 'proxyless')"),
    ("device.ext_name=tpu", "device.ext_name must be one of ('cpu', 'cuda', 'cudnn')"),
    ("search.arch_optimizer=lbfgs", "search.arch_optimizer must be one of"),
    ("latency.weight=-1", "latency.weight must be >= 0"),
    ("latency.mode=hinge", "latency.mode='hinge' needs latency.target"),
    ("latency.input_shape=[1,8,8]", "latency.input_shape must be 4 positive ints"),
    ("estimator.outlier=0.7", "estimator.outlier must be in [0, 0.5)"),
])
def test_invalid_values_fail_validation_with_one_line(override, message):
    cfg = compose_config([override])
    with pytest.raises(ValueError) as err:
        validate(cfg)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_cifar10_needs_a_root():
    with pytest.raises(ValueError, match="data=cifar10 needs data.root"):
        validate(compose_config(["data=cifar10"]))
    with pytest.raises(ValueError, match="data.name must be one of"):
        validate(compose_config(["data.name=mnist"]))


def test_command_line_reports_a_bad_value_in_one_line(tmp_path):
    done = subprocess.run([sys.executable, os.path.join(REPO, "examples", "search.py"),
                           "latency.mode=quadratic", f"hydra.run.dir={tmp_path / 'run'}"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    lines = [ln for ln in done.stderr.strip().splitlines() if "nnabla][INFO]" not in ln]
    assert lines == ["config error: latency.mode must be one of ('linear', 'hinge', 'log'), "
                     "got 'quadratic'"]
