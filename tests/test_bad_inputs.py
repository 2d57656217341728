"""The explicit list of bad inputs of the reliability issue: each gets one clear error (a
documented exception whose message names the field), raised before any long work starts.

The generated variants of the same inputs are in tests/test_fuzz.py.
"""
import csv
import json
import os
import sqlite3
import stat
import zipfile

import nnabla as nn
import pytest
from hydra.errors import ConfigCompositionException, MissingConfigException

import nas_hw.measure.timing as timing_module  # the layer estimators time through timing.measure
from nas_hw.app.pipeline import plan_search
from nas_hw.checks import check_timing as check_settings
from nas_hw.errors import CacheError, ConfigInputError, GraphNotBuiltError, NetworkInputError
from nas_hw.estimators.activations import ActivationMemoryEstimator
from nas_hw.estimators.graph import LatencyGraphEstimator
from nas_hw.estimators.module import LatencyEstimator
from nas_hw.measure.store import SCHEMA_VERSION, LatencyCache
from nas_hw.nas.penalty import LatencyPenalty
from nas_hw.nas.table import CandidateTable
from nas_hw.report.loader import load_network
from nas_hw.search.datasets import load_dataset
from nas_hw.search.spaces import MobileNetSpace
from tests.conftest import compose

TINY = dict(in_channels=1, stem_channels=4, stage_channels=(4,), stage_blocks=(1,), stage_strides=(1,),
            kernels=(3, 5), expansions=(1,), head_channels=8)


def compose_and_validate(overrides, tmp_dir="/tmp/nas_hw_test_plan"):
    """What a search does with its command line before measuring anything: compose, validate
    the types, build and check every object."""
    plan = plan_search(compose(overrides), tmp_dir)
    plan.setup.cache.close()
    return plan


def table():
    return CandidateTable({"latency": [[1.0, 2.0]]}, {"latency": 0.5}, [0], ["cp"], [["a", "b"]])


@pytest.fixture
def no_measuring(monkeypatch):
    """Any layer measurement fails the test: the bad input must be refused before."""
    def forbidden(*args, **kwargs):
        raise AssertionError("a layer was measured despite the bad input")
    monkeypatch.setattr(timing_module, "measure", forbidden)


# -- unknown estimator or mode -------------------------------------------------------------
def test_unknown_estimator_group_names_it_and_the_choices():
    with pytest.raises(MissingConfigException, match="estimator/grpah") as info:
        compose_and_validate(["estimator=grpah"])
    assert "graph" in str(info.value) and "module" in str(info.value)


def test_an_object_that_is_no_estimator_is_refused_by_the_table():
    net = MobileNetSpace(**TINY)
    with pytest.raises(TypeError, match="estimator must be a nas_hw"):
        CandidateTable.build(net, object(), input_shape=(1, 1, 8, 8), progress=False)


@pytest.mark.parametrize("make", [
    lambda: LatencyPenalty(table(), mode="quadratic"),
    lambda: compose_and_validate(["latency.mode=quadratic"]),
])
def test_unknown_penalty_mode_names_mode_and_the_choices(make):
    with pytest.raises(ValueError, match=r"mode must be one of \('linear', 'hinge', 'log'\)"):
        make()


def test_unknown_space_mode_names_mode():
    with pytest.raises(ValueError, match="mode must be one of"):
        MobileNetSpace(mode="random", **TINY)


def test_unknown_on_error_names_it():
    with pytest.raises(ValueError, match="on_error must be one of"):
        LatencyGraphEstimator(cache=":memory:", on_error="ignore")


# -- weight / target -------------------------------------------------------------------------
@pytest.mark.parametrize("field,value", [("weight", -0.1), ("weight", "0.1x"), ("weight", float("nan")),
                                         ("weight", None), ("target", -1.0), ("target", "fast"),
                                         ("target", 0.0), ("target", float("inf"))])
def test_bad_weight_or_target_of_the_penalty(field, value):
    kwargs = {"weight": 0.1, "target": 2.0, "mode": "linear", field: value}
    with pytest.raises(ValueError, match=field):
        LatencyPenalty(table(), **kwargs)


@pytest.mark.parametrize("override", ["latency.weight=-0.1", "latency.weight=fast", "latency.weight=nan",
                                      "latency.target=-3", "latency.target=fast", "latency.weight=0"])
def test_bad_weight_or_target_in_the_config(override, no_measuring):
    with pytest.raises(ConfigInputError, match=override.split("=")[0].replace(".", r"\.")):
        compose_and_validate([override])


@pytest.mark.parametrize("mode", ["hinge", "log"])
def test_modes_that_need_a_target_say_so(mode):
    with pytest.raises(ValueError, match="target"):
        LatencyPenalty(table(), mode=mode)
    with pytest.raises(ConfigInputError, match=r"latency\.target"):
        compose_and_validate([f"latency.mode={mode}", "latency.weight=0.1"])


# -- measurement settings ----------------------------------------------------------------------
@pytest.mark.parametrize("outlier", [0.5, 0.9, -0.01, float("nan"), "0.1"])
def test_outlier_outside_the_allowed_range(outlier):
    with pytest.raises(ValueError, match=r"outlier must be a fraction in \[0, 0\.5\)"):
        LatencyGraphEstimator(cache=":memory:", outlier=outlier)


@pytest.mark.parametrize("n_run", [0, -5, 2.0, "10", None, True])
def test_n_run_below_one_or_not_an_integer(n_run):
    with pytest.raises(ValueError, match="n_run must be an integer >= 1"):
        LatencyEstimator(cache=":memory:", n_run=n_run)
    with pytest.raises(ValueError, match="n_run must be an integer >= 1"):
        check_settings(n_run=n_run)


@pytest.mark.parametrize("time_scale", ["s", "ms", "M", "", None, 1e-3])
def test_unknown_time_scale_names_the_choices(time_scale):
    with pytest.raises(ValueError, match=r"time_scale must be one of \('m', 'u', 'n'\)"):
        LatencyGraphEstimator(cache=":memory:", time_scale=time_scale)


def test_config_n_run_outlier_and_time_scale():
    for override, field in [("estimator.n_run=0", "estimator.n_run"), ("estimator.outlier=0.5", "estimator.outlier"),
                            ("estimator.time_scale=s", "estimator.time_scale")]:
        with pytest.raises(ValueError, match=field.replace(".", r"\.")):
            compose_and_validate([override])


# -- a model whose graph was never built ---------------------------------------------------------
def test_module_estimator_on_a_model_never_called(no_measuring):
    est = LatencyEstimator(cache=":memory:")
    with pytest.raises(GraphNotBuiltError, match=r"never called.*net\(x\)"):
        est.get_estimation(MobileNetSpace(**TINY))


def test_candidate_table_of_a_model_never_called(no_measuring):
    with pytest.raises(GraphNotBuiltError, match="no input shape"):
        CandidateTable.build(MobileNetSpace(**TINY), LatencyGraphEstimator(cache=":memory:"), progress=False)


def test_activation_memory_of_a_model_never_called():
    with pytest.raises(GraphNotBuiltError, match=r"has no input_shapes: call it once"):
        ActivationMemoryEstimator().get_estimation(MobileNetSpace(**TINY))


# -- cache files ----------------------------------------------------------------------------------
def test_cache_in_a_missing_directory(tmp_path):
    path = tmp_path / "nope" / "c.sqlite"
    with pytest.raises(CacheError, match="does not exist") as info:
        LatencyCache(str(path))
    assert "NAS_HW_CACHE" in str(info.value)
    assert not path.parent.exists()


def _read_only_directory(tmp_path):
    """A directory this process cannot write: chmod for a user, /proc/self for root."""
    if os.geteuid() != 0:
        d = tmp_path / "ro"
        d.mkdir()
        d.chmod(stat.S_IRUSR | stat.S_IXUSR)
        return str(d)
    if not os.access("/proc/self", os.W_OK):
        return "/proc/self"
    pytest.skip("root, and no read-only directory is available to test with")


def test_cache_in_a_read_only_directory(tmp_path):
    directory = _read_only_directory(tmp_path)
    try:
        with pytest.raises(CacheError, match="is not writable") as info:
            LatencyCache(os.path.join(directory, "c.sqlite"))
        assert "NAS_HW_CACHE" in str(info.value)
    finally:
        if directory.startswith(str(tmp_path)):
            os.chmod(directory, stat.S_IRWXU)


def test_cache_of_another_schema_version_is_refused_with_instructions(tmp_path):
    path = str(tmp_path / "old.sqlite")
    with LatencyCache(path):
        pass
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    conn.commit()
    conn.close()
    with pytest.raises(CacheError, match=f"cache of schema {SCHEMA_VERSION + 1}") as info:
        LatencyCache(path)
    assert "use the nas_hw that wrote it" in str(info.value) and "left untouched" in str(info.value)
    conn = sqlite3.connect(path)  # left untouched
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION + 1
    conn.close()


def test_imported_lut_with_malformed_rows_is_refused_whole(tmp_path):
    good = {"fingerprint": "cpu|x", "signature": "Conv(a)", "mean_s": 1e-4, "median_s": 1e-4, "std_s": 0.0,
            "min_s": 1e-4, "n_kept": 3, "n_measured": 3, "noop": 0, "settings": "{}", "created": 1.75e9}
    rows = [good, dict(good, signature="Conv(b)", mean_s="fast"), dict(good, signature="Conv(c)", n_kept=0)]
    path = tmp_path / "lut.csv"
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(good))
        writer.writeheader()
        writer.writerows(rows)
    cache = LatencyCache(str(tmp_path / "c.sqlite"))
    with pytest.raises(CacheError, match=r"2 malformed row\(s\), nothing imported") as info:
        cache.import_(str(path))
    assert "row 2: mean_s='fast'" in str(info.value) and "row 3: n_kept=" in str(info.value)
    assert len(cache) == 0
    (tmp_path / "lut.json").write_text(json.dumps({"rows": "not a list"}))
    with pytest.raises(CacheError, match="'rows'"):
        cache.import_(str(tmp_path / "lut.json"))


# -- network files and datasets --------------------------------------------------------------
@pytest.mark.parametrize("content", [b"", b"hello, not a network", b"PK\x03\x04 truncated"])
def test_a_file_that_is_not_an_nnp(tmp_path, content):
    path = tmp_path / "model.nnp"
    path.write_bytes(content)
    with pytest.raises(NetworkInputError, match="is not an .nnp file"):
        load_network(str(path))


def test_a_zip_that_is_not_an_nnp(tmp_path):
    path = tmp_path / "model.nnp"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("readme.txt", "nothing")
    with pytest.raises(NetworkInputError, match="without nnp content"):
        load_network(str(path))


def test_missing_dataset_root(tmp_path):
    missing = str(tmp_path / "cifar")
    with pytest.raises(FileNotFoundError, match=r"root .* \(CIFAR-10\) is not a directory"):
        load_dataset("cifar10", root=missing)
    with pytest.raises(ConfigInputError, match=r"data\.root"):
        compose_and_validate(["data=cifar10"])


def test_unknown_dataset_name():
    with pytest.raises(ValueError, match="name must be one of"):
        load_dataset("mnist")
    with pytest.raises(MissingConfigException, match="data/mnist"):
        compose_and_validate(["data=mnist"])


def test_input_shape_malformed():
    with pytest.raises(ConfigInputError, match=r"table\.input_shape must be 4 positive ints"):
        compose_and_validate(["table.input_shape=[1,8,8]"])
    with pytest.raises(ConfigInputError, match=r"table\.input_shape"):
        compose_and_validate(["table.input_shape=[1,x,8,8]"])


def test_misspelt_and_appended_keys():
    with pytest.raises(ConfigCompositionException, match=r"latency\.wieght"):
        compose_and_validate(["latency.wieght=0.1"])
    with pytest.raises(ConfigInputError, match=r"latency\.wieght"):
        compose_and_validate(["+latency.wieght=0.1"])


def test_valid_tiny_space_builds():
    """The TINY arguments above are valid: the errors in this file come from the bad input."""
    net = MobileNetSpace(**TINY)
    net(nn.Variable((1, 1, 8, 8)))
    assert net.input_shapes
