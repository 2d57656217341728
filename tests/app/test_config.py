"""The packaged Hydra config tree (nas_hw/app/conf) and its schemas (nas_hw/app/config.py)."""
import os
import subprocess
import sys

import pytest
from hydra import compose as hydra_compose
from hydra import initialize_config_dir
from hydra.errors import ConfigCompositionException, MissingConfigException
from hydra.utils import instantiate

from nas_hw.app.config import validate
from nas_hw.app.pipeline import build_callbacks, plan_search
from nas_hw.app.search import main as search_main
from nas_hw.errors import ConfigInputError
from nas_hw.nas.callbacks import BudgetCheckpoint, CSVLogger, LatencyConstraint, LatencyMonitor
from nas_hw.nas.penalty import LatencyPenalty
from nas_hw.search.darts import DartsSearcher
from nas_hw.search.proxyless import ProxylessSearcher
from nas_hw.nas.monitors import TensorBoardLogger
from tests.conftest import CONF, REPO, compose


def raw(overrides=()):
    """The composed config before validation."""
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        return hydra_compose("config", overrides=list(overrides))


def plan(overrides, tmp_path):
    p = plan_search(compose(overrides), str(tmp_path / "run"))
    p.setup.cache.close()
    return p


def test_default_config_composes_and_validates():
    cfg = compose()
    assert cfg.search._target_ == "nas_hw.search.darts.DartsSearcher" and cfg.data.name == "digits"
    assert cfg.device.ext_name == "cpu" and cfg.estimator.n_run == 20
    assert cfg.cache.path is None  # the shared user cache, never the run directory
    assert cfg.table.input_shape is None
    # hardware-aware by default: a latency penalty is on
    assert cfg.latency._target_ == "nas_hw.nas.penalty.LatencyPenalty" and cfg.latency.weight > 0
    assert list(cfg.callbacks) == ["monitor", "constraint", "checkpoint", "csv", "tensorboard"]


def test_overrides_of_groups_and_values():
    cfg = compose(["estimator=module", "search=proxyless", "space=darts", "device=cudnn",
                   "latency.weight=0.1", "latency.target=0.5", "latency.mode=hinge",
                   "table.input_shape=[1,1,32,32]", "data=cifar10", "data.root=/data"])
    assert cfg.estimator._target_.endswith("LatencyEstimator")
    assert cfg.search._target_.endswith("ProxylessSearcher") and cfg.search.n_samples == 4
    assert cfg.space._target_.endswith("DartsSpace") and cfg.space.n_cells == 3
    assert cfg.device.ext_name == "cudnn"
    assert cfg.latency.weight == 0.1 and list(cfg.table.input_shape) == [1, 1, 32, 32]
    assert cfg.data.name == "cifar10" and cfg.data.root == "/data"
    # the callbacks read the latency target (in ms) through interpolation
    assert cfg.callbacks.constraint.bound_ms == 0.5 and cfg.callbacks.checkpoint.budget_ms == 0.5
    us = compose(["latency.target=500", "latency.unit=u"])
    assert us.callbacks.constraint.bound_ms == pytest.approx(0.5)  # 500 us
    assert compose(["latency=none"]).callbacks.constraint.bound_ms is None


def test_latency_none_and_retrain_none_remove_those_steps():
    cfg = compose(["latency=none", "retrain=none"])
    assert cfg.latency is None and cfg.retrain is None


def test_callbacks_can_be_removed_or_changed_from_the_command_line():
    cfg = compose(["~callbacks.csv", "~callbacks.tensorboard", "callbacks.monitor.n_run=7",
                   "latency.target=2.0"])
    cbs = build_callbacks(cfg.callbacks)
    assert [type(c) for c in cbs] == [LatencyMonitor, LatencyConstraint, BudgetCheckpoint]
    assert cbs.callbacks[0].n_run == 7 and cbs.callbacks[1].bound_ms == 2.0
    assert [name for name, _ in cbs.named] == ["monitor", "constraint", "checkpoint"]
    assert len(build_callbacks(compose(["callbacks=none"]).callbacks)) == 0
    added = build_callbacks(compose(["callbacks=none", "+callbacks.log._target_=nas_hw.nas.callbacks.CSVLogger",
                                     "+callbacks.log.filename=mine.csv"]).callbacks)
    assert [name for name, _ in added.named] == ["log"] and added.callbacks[0].filename == "mine.csv"
    assert isinstance(build_callbacks(compose().callbacks).callbacks[-2], CSVLogger)
    assert isinstance(build_callbacks(compose().callbacks).callbacks[-1], TensorBoardLogger)


def test_estimator_config_instantiates_with_run_time_arguments(tmp_path):
    from nas_hw.measure.store import LatencyCache
    cfg = compose(["estimator.n_run=3"])
    est = instantiate(cfg.estimator)(device_id=0, ext_name="cpu",
                                     cache=LatencyCache(str(tmp_path / "c.sqlite")))
    assert type(est).__name__ == "LatencyGraphEstimator" and est.n_run == 3


@pytest.mark.parametrize("override", ["latency.wieght=0.1", "search.epoch=3", "space.kernel=[3]"])
def test_misspelt_key_fails_at_composition(override):
    with pytest.raises(ConfigCompositionException):
        raw([override])


@pytest.mark.parametrize("override", ["estimator=grpah", "search=enas", "space=resnet"])
def test_unknown_group_option_fails_at_composition(override):
    with pytest.raises(MissingConfigException):
        raw([override])


@pytest.mark.parametrize("override,key", [("latency.weight=abc", "latency.weight"),
                                          ("search.epochs=1.5", "search.epochs"),
                                          ("progress=maybe", "progress"),
                                          ("device.device_id=gpu", "device.device_id"),
                                          ("+latency.extra=1", "latency.extra")])
def test_wrong_type_or_appended_key_fails_validation_in_one_line_naming_the_key(override, key):
    with pytest.raises(ConfigInputError) as err:
        validate(raw([override]))
    assert str(err.value).startswith(key) and "\n" not in str(err.value)


@pytest.mark.parametrize("override,message", [
    ("latency.mode=quadratic", "latency.mode must be one of ('linear', 'hinge', 'log'), got 'quadratic'"),
    ("device.ext_name=tpu", "device.ext_name must be one of ('cpu', 'cuda', 'cudnn')"),
    ("search.arch_optimizer=lbfgs", "search.arch_optimizer must be one of"),
    ("latency.weight=-1", "latency.weight must be a finite number in [0, 1000000.0]"),
    ("latency.mode=hinge", "latency.target is required by mode='hinge'"),
    ("table.input_shape=[1,8,8]", "table.input_shape must be 4 positive ints"),
    ("estimator.outlier=0.7", "estimator.outlier must be a fraction in [0, 0.5)"),
    ("data.name=mnist", "data.name must be one of"),
])
def test_invalid_values_fail_before_measuring_with_one_line(override, message, tmp_path):
    with pytest.raises(ConfigInputError) as err:
        plan([override], tmp_path)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_cifar10_needs_a_root(tmp_path):
    with pytest.raises(ConfigInputError, match="data.root"):
        plan(["data=cifar10"], tmp_path)


def test_renamed_keys_name_the_new_key(capsys):
    assert search_main(["latency.input_shape=[1,1,8,8]"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["nas-hw: error: latency.input_shape was renamed: use table.input_shape"]
    assert search_main(["search.algorithm=proxyless"]) == 2
    assert "search=darts or search=proxyless" in capsys.readouterr().err


def test_the_objects_are_built_from_target_entries(tmp_path):
    p = plan(["latency.weight=0.3", "search=proxyless"], tmp_path)
    assert isinstance(p.penalty, LatencyPenalty) and p.penalty.weight == 0.3
    assert isinstance(p.searcher, ProxylessSearcher) and p.searcher.penalty is p.penalty
    assert isinstance(plan([], tmp_path).searcher, DartsSearcher)
    assert plan(["latency=none"], tmp_path).penalty is None


def test_bug_log_mode_with_default_weight_gets_a_penalty(tmp_path):
    """Regression: `latency.mode=log latency.target=5` used to run with no penalty at all (the
    penalty was built only when weight > 0, and log mode never reads the weight)."""
    p = plan(["latency.mode=log", "latency.target=5"], tmp_path)
    assert p.penalty is not None and p.penalty.mode == "log" and p.penalty.target == 5
    # settings that make a penalty a no-op are refused in one line
    with pytest.raises(ConfigInputError, match=r"latency\.weight=0 makes a 'linear' penalty a no-op"):
        plan(["latency.weight=0"], tmp_path)


def test_bug_darts_space_works_out_of_the_box(tmp_path):
    """Regression: `space=darts` failed with `ops must be a sequence ..., got None`."""
    p = plan(["space=darts"], tmp_path)
    assert p.setup.model.config["ops"] == ("skip", "zero", "sep_conv_3x3", "sep_conv_5x5", "dil_conv_3x3",
                                           "max_pool_3x3", "avg_pool_3x3")


def test_help_lists_the_yaml_options_only(capsys):
    assert search_main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "estimator: graph, module" in out and "latency: default, none" in out
    assert "schema" not in out


def test_command_line_reports_a_bad_value_in_one_line(tmp_path):
    done = subprocess.run([sys.executable, os.path.join(REPO, "examples", "search.py"),
                           "latency.mode=quadratic", f"hydra.run.dir={tmp_path / 'run'}"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    lines = [ln for ln in done.stderr.strip().splitlines() if "nnabla][INFO]" not in ln]
    assert lines == ["nas-hw: error: latency.mode must be one of ('linear', 'hinge', 'log'), "
                     "got 'quadratic'"]
