"""Property-based bad-input tests: generated bad settings, files and Hydra overrides thrown at
nas_hw's public constructors and at the search entry point.

Every case must end in one of the documented exceptions (nas_hw's own errors, ``ValueError``,
``TypeError``, ``FileNotFoundError``, or Hydra/OmegaConf's config errors) whose message names the
offending field, raised by nas_hw / Hydra code (never a bare error from deep inside nnabla), and
before any measurement or training starts. ``pytest -s`` prints how many cases each property
tried; the last test checks that at least 200 bad cases were tried in all.
"""
import collections
import csv
import json
import math
import os
import sqlite3
import tempfile
import zipfile

import nnabla as nn
import nnabla.functions as F
import pytest
from hydra.errors import HydraException
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from omegaconf.errors import OmegaConfBaseException

import nas_hw.measure.timing as timing_module  # the layer estimators time through timing.measure
import nas_hw.nas.table as table_module
from nas_hw.app import pipeline
from nas_hw.checks import check_timing as check_settings
from nas_hw.constants import DTYPE_BYTES, EXT_NAMES, PENALTY_MODES as MODES, TIME_SCALES, TYPE_CONFIGS
from nas_hw.errors import CacheError, NasHwError, NetworkInputError
from nas_hw.estimators.activations import ACTIVATION_STATS, ActivationMemoryEstimator
from nas_hw.estimators.calibrated import Calibrator
from nas_hw.estimators.flops import FLOPS_COUNTS, FlopsEstimator
from nas_hw.estimators.graph import LatencyGraphEstimator
from nas_hw.estimators.incontext import InContextProfiler
from nas_hw.estimators.module import LatencyEstimator
from nas_hw.estimators.network import Profiler
from nas_hw.estimators.params import ParameterMemoryEstimator
from nas_hw.estimators.power import PowerEstimator
from nas_hw.estimators.throughput import ThroughputEstimator
from nas_hw.measure.store import LatencyCache
from nas_hw.measure.timing import measure
from nas_hw.nas.penalty import LatencyPenalty, MemoryPenalty
from nas_hw.nas.table import CandidateTable
from nas_hw.report.loader import load_network
from nas_hw.search.datasets import load_dataset
from nas_hw.search.loop import Searcher
from nas_hw.search.retrain import Retrainer
from nas_hw.search.spaces import DartsSpace, MobileNetSpace
from tests.conftest import compose, summary

DOCUMENTED = (NasHwError, ValueError, TypeError, FileNotFoundError, HydraException, OmegaConfBaseException)
COUNTS = collections.Counter()
MIN_TOTAL_CASES = 200

FUZZ = settings(derandomize=True, deadline=None, database=None, print_blob=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                       HealthCheck.filter_too_much])


def fuzz(max_examples):
    """Fixed-seed (derandomized) settings, no deadline, no example database."""
    return settings(FUZZ, max_examples=max_examples)


def refused(kind, field, call):
    """Runs ``call``; it must raise a documented error naming ``field``, raised outside nnabla."""
    COUNTS[kind] += 1
    try:
        call()
    except DOCUMENTED as err:
        message = str(err)
        assert field in message, f"{kind}: the error does not name {field!r}: {type(err).__name__}: {message}"
        frame = err.__traceback__
        while frame.tb_next is not None:
            frame = frame.tb_next
        origin = frame.tb_frame.f_code.co_filename
        assert f"{os.sep}nnabla{os.sep}" not in origin and f"{os.sep}nnabla_nas{os.sep}" not in origin, \
            f"{kind}: {type(err).__name__} raised from inside nnabla ({origin}): {message}"
        return err
    raise AssertionError(f"{kind}: bad {field} was accepted")


def report(kind_prefix):
    tried = {k: v for k, v in sorted(COUNTS.items()) if k.startswith(kind_prefix)}
    summary(f"\n[fuzz] {kind_prefix}: {sum(tried.values())} bad cases: {tried}")


# -- generated bad values ------------------------------------------------------------------
WORDS = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=8)
NOT_NUMBERS = st.one_of(st.none(), st.booleans(), WORDS, st.lists(st.integers(), max_size=2),
                        st.builds(object))
NON_FINITE = st.sampled_from([math.nan, math.inf, -math.inf])

BAD_SETTINGS = {
    "n_run": st.one_of(st.integers(max_value=0), st.floats(), NOT_NUMBERS),
    "n_warmup": st.one_of(st.integers(max_value=-1), st.floats(), NOT_NUMBERS),
    "max_measure_execution_time": st.one_of(st.floats(max_value=0), NON_FINITE, NOT_NUMBERS),
    "outlier": st.one_of(st.floats(min_value=0.5), st.floats(max_value=0, exclude_max=True),
                         NON_FINITE, NOT_NUMBERS),
    "time_scale": st.one_of(WORDS.filter(lambda s: s not in TIME_SCALES), st.integers(), st.none(),
                            st.lists(WORDS, max_size=1)),
}
BAD_DEVICE = {
    "ext_name": st.one_of(WORDS.filter(lambda s: s not in EXT_NAMES), st.integers(), st.lists(WORDS, max_size=1)),
    "device_id": st.one_of(st.integers(max_value=-1), st.floats().filter(lambda f: not float(f).is_integer()),
                           WORDS, st.booleans()),
}
BAD_ESTIMATOR_ONLY = {
    "batch_size": st.one_of(st.integers(max_value=0), st.floats(), NOT_NUMBERS),
    "on_error": st.one_of(WORDS.filter(lambda s: s not in ("raise", "warn")), st.integers(), st.none()),
    "run_timeout": st.one_of(st.floats(max_value=0), NON_FINITE, WORDS, st.booleans()),
    "type_config": WORDS.filter(lambda s: s not in TYPE_CONFIGS),
    "cache": st.one_of(st.integers(), st.floats(), st.builds(object), st.lists(WORDS, max_size=1)),
    "fingerprint": st.one_of(st.just(""), st.integers(), st.floats(), st.lists(WORDS, max_size=1)),
}


def _tiny_graph():
    x = nn.Variable((1, 3))
    return F.relu(x)


GRAPH = _tiny_graph()
CALLS = collections.Counter()


def _counted():
    CALLS["measured"] += 1


SETTING_TARGETS = {
    # name: (constructor taking keyword settings, the setting names it takes)
    "check_settings": (lambda **kw: check_settings(**kw), tuple(BAD_SETTINGS)),
    "measure": (lambda **kw: measure(_counted, **kw), tuple(k for k in BAD_SETTINGS if k != "time_scale")),
    "LatencyGraphEstimator": (lambda **kw: LatencyGraphEstimator(cache=kw.pop("cache", ":memory:"), **kw),
                              tuple(BAD_SETTINGS) + tuple(BAD_DEVICE) + tuple(BAD_ESTIMATOR_ONLY)),
    "LatencyEstimator": (lambda **kw: LatencyEstimator(cache=kw.pop("cache", ":memory:"), **kw),
                         tuple(BAD_SETTINGS) + tuple(BAD_DEVICE) + tuple(BAD_ESTIMATOR_ONLY)),
    "Profiler": (lambda **kw: Profiler(GRAPH, **kw), tuple(BAD_SETTINGS) + tuple(BAD_DEVICE)),
    "InContextProfiler": (lambda **kw: InContextProfiler(GRAPH, **kw),
                          ("n_run", "n_warmup", "time_scale") + tuple(BAD_DEVICE)),
    "ThroughputEstimator": (lambda **kw: ThroughputEstimator(**kw), tuple(BAD_SETTINGS) + tuple(BAD_DEVICE)),
    "PowerEstimator": (lambda **kw: PowerEstimator(**kw), ("n_run", "n_warmup") + tuple(BAD_DEVICE)),
}
BAD_MEMORY = {
    "stat": st.one_of(WORDS.filter(lambda s: s not in ACTIVATION_STATS), st.integers(), st.none()),
    "memory_batch_size": st.one_of(st.integers(max_value=0), st.floats(), WORDS, st.booleans()),
    "dtype": st.one_of(WORDS.filter(lambda s: s not in DTYPE_BYTES), st.integers(), st.none(),
                       st.lists(WORDS, max_size=1)),
    "count": st.one_of(WORDS.filter(lambda s: s not in FLOPS_COUNTS), st.integers(), st.none()),
    "active_only": st.one_of(WORDS, st.integers(), st.none()),
}
SETTING_TARGETS.update({
    "ActivationMemoryEstimator": (lambda **kw: ActivationMemoryEstimator(
        **{("batch_size" if k == "memory_batch_size" else k): v for k, v in kw.items()}),
        ("stat", "memory_batch_size", "dtype")),
    "FlopsEstimator": (lambda **kw: FlopsEstimator(**kw), ("count",)),
    "ParameterMemoryEstimator": (lambda **kw: ParameterMemoryEstimator(**kw), ("dtype", "active_only")),
    "Calibrator": (lambda **kw: Calibrator(LatencyGraphEstimator(cache=":memory:"), **kw),
                   ("n_run", "n_warmup", "max_measure_execution_time")),
})
ALL_BAD = {**BAD_SETTINGS, **BAD_DEVICE, **BAD_ESTIMATOR_ONLY, **BAD_MEMORY}


@st.composite
def bad_setting(draw):
    target = draw(st.sampled_from(sorted(SETTING_TARGETS)))
    field = draw(st.sampled_from(SETTING_TARGETS[target][1]))
    return target, field, draw(ALL_BAD[field])


@fuzz(max_examples=120)
@given(case=bad_setting())
def test_bad_measurement_settings_are_refused_before_measuring(case):
    target, field, value = case
    before = CALLS["measured"]
    named = "batch_size" if field == "memory_batch_size" else field
    refused(f"settings/{target}", named, lambda: SETTING_TARGETS[target][0](**{field: value}))
    assert CALLS["measured"] == before, f"{target} ran the measured call despite a bad {field}"


def test_bad_measurement_settings_report():
    report("settings/")


# -- penalties -------------------------------------------------------------------------
def _hand_table():
    table = CandidateTable({"latency": [[1.0, 2.0, 3.0]], "param_bytes": [[10.0, 20.0, 30.0]]},
                           {"latency": 0.5, "param_bytes": 4.0}, [0], ["cp0"], [["a", "b", "c"]])
    return table


TABLE = _hand_table()
POSITIVE = st.floats(min_value=1.5, max_value=1e6)


@st.composite
def bad_penalty(draw):
    cls = draw(st.sampled_from([LatencyPenalty, MemoryPenalty]))
    kwargs = dict(weight=0.1, target=draw(POSITIVE), mode=draw(st.sampled_from(MODES)))
    field = draw(st.sampled_from(["weight", "target", "mode", "missing_target", "a", "b", "log_target", "metric"]))
    if field == "weight":
        kwargs["weight"] = draw(st.one_of(st.floats(max_value=0, exclude_max=True), NON_FINITE, NOT_NUMBERS))
    elif field == "target":
        kwargs["target"] = draw(st.one_of(st.floats(max_value=0), NON_FINITE, WORDS, st.booleans()))
    elif field == "mode":
        kwargs["mode"] = draw(st.one_of(WORDS.filter(lambda s: s not in MODES), st.integers(), st.none()))
    elif field == "missing_target":
        kwargs.update(target=None, mode=draw(st.sampled_from(["hinge", "log"])))
        field = "target"
    elif field in ("a", "b"):
        kwargs["mode"] = "log"
        kwargs[field] = draw(st.one_of(st.floats(max_value=0), NON_FINITE, WORDS))
    elif field == "log_target":
        kwargs.update(mode="log", target=draw(st.floats(min_value=1e-9, max_value=1.0)))
        field = "target"
    else:
        kwargs["metric"] = draw(WORDS.filter(lambda s: s not in TABLE.costs))
    return cls, field, kwargs


@fuzz(max_examples=40)
@given(case=bad_penalty())
def test_bad_penalty_settings_are_refused(case):
    cls, field, kwargs = case
    refused(f"penalty/{cls.__name__}", field, lambda: cls(TABLE, **kwargs))


def test_bad_penalty_settings_report():
    report("penalty/")


@st.composite
def bad_table_dict(draw):
    d = TABLE.to_dict()
    field = draw(st.sampled_from(["costs", "fixed", "groups", "names", "candidate_names", "unit", "missing"]))
    if field == "costs":
        d["costs"]["latency"][0][draw(st.integers(0, 2))] = draw(st.one_of(NON_FINITE, WORDS, st.none()))
    elif field == "fixed":
        d["fixed"]["latency"] = draw(st.one_of(NON_FINITE, WORDS, st.none(), st.booleans()))
    elif field == "groups":
        d["groups"] = draw(st.one_of(st.just([]), st.lists(st.integers(max_value=-1), min_size=1, max_size=1),
                                     st.lists(st.integers(0, 3), min_size=2, max_size=3), WORDS))
    elif field == "names":
        d["names"] = draw(st.one_of(st.lists(WORDS, min_size=2, max_size=3), st.just([]), st.integers()))
    elif field == "candidate_names":
        d["candidate_names"] = draw(st.one_of(st.lists(st.lists(WORDS, max_size=2), min_size=1, max_size=1),
                                              st.just([]), st.integers()))
    elif field == "unit":
        d["unit"] = draw(st.one_of(WORDS.filter(lambda s: s not in TIME_SCALES), st.integers(), st.none()))
    else:
        field = draw(st.sampled_from(["costs", "fixed", "groups", "names", "candidate_names", "unit"]))
        del d[field]
    return field, d


@fuzz(max_examples=25)
@given(case=bad_table_dict())
def test_malformed_candidate_tables_are_refused(case):
    field, d = case
    refused("table/from_dict", field, lambda: CandidateTable.from_dict(d))


# -- the cache: paths, foreign files and imported LUTs -------------------------------------
GOOD_ROW = {"fingerprint": "cpu|fuzz", "signature": "Sig(x)", "mean_s": 1e-4, "median_s": 1e-4,
            "std_s": 1e-6, "min_s": 9e-5, "n_kept": 10, "n_measured": 10, "noop": 0,
            "settings": "{}", "created": 1.75e9}


@st.composite
def malformed_row(draw):
    row = dict(GOOD_ROW, signature=f"Sig({draw(WORDS)})")
    field = draw(st.sampled_from(["fingerprint", "signature", "mean_s", "median_s", "std_s", "min_s",
                                  "n_kept", "n_measured", "settings", "created"]))
    if field in ("fingerprint", "signature"):
        row[field] = draw(st.sampled_from([None, ""]))
    elif field.endswith("_s"):
        row[field] = draw(st.one_of(st.floats(max_value=0, exclude_max=True), NON_FINITE, WORDS, st.just("")))
    elif field == "n_kept":
        row[field] = draw(st.one_of(st.integers(max_value=0), WORDS, st.just("")))
    elif field == "n_measured":
        row["n_kept"] = draw(st.integers(2, 100))
        row[field] = draw(st.one_of(st.integers(1, row["n_kept"] - 1), WORDS))
    elif field == "settings":
        row[field] = draw(WORDS.map(lambda s: "{" + s))
    else:
        row[field] = draw(WORDS)
    fmt = draw(st.sampled_from(["csv", "json"]))
    n_good = draw(st.integers(0, 3))
    position = draw(st.integers(0, n_good))
    return field, fmt, n_good, position, row


def _write_lut(path, fmt, rows):
    if fmt == "json":
        with open(path, "w") as fh:
            json.dump({"nas_hw_cache_schema": 1, "fingerprints": {}, "rows": rows}, fh)
    else:
        with open(path, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(GOOD_ROW))
            writer.writeheader()
            writer.writerows(rows)


@fuzz(max_examples=45)
@given(case=malformed_row())
def test_imported_lut_with_a_malformed_row_is_refused_whole(case):
    field, fmt, n_good, position, bad = case
    rows = [dict(GOOD_ROW, signature=f"Good({i})") for i in range(n_good)]
    rows.insert(position, bad)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, f"lut.{fmt}")
        _write_lut(path, fmt, rows)
        with LatencyCache(os.path.join(tmp, "c.sqlite")) as cache:
            err = refused(f"cache/import-{fmt}", field, lambda: cache.import_(path))
            assert isinstance(err, CacheError)
            assert f"row {position + 1}" in str(err)
            assert len(cache) == 0, "a LUT with a malformed row was partly imported"


@st.composite
def bad_cache_file(draw):
    kind = draw(st.sampled_from(["missing_dir", "parent_is_file", "garbage", "foreign_db", "schema",
                                 "path_type", "timeout"]))
    return kind, draw(WORDS), draw(st.binary(min_size=1, max_size=200)), draw(st.integers(3, 99))


@fuzz(max_examples=30)
@given(case=bad_cache_file())
def test_unusable_cache_paths_and_files_are_refused(case):
    kind, name, junk, version = case
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, f"{name}.sqlite")
        if kind == "missing_dir":
            refused("cache/path", "does not exist", lambda: LatencyCache(os.path.join(tmp, name, "c.sqlite")))
            return
        if kind == "parent_is_file":
            open(os.path.join(tmp, name), "w").close()
            refused("cache/path", "cache directory", lambda: LatencyCache(os.path.join(tmp, name, "c.sqlite")))
            return
        if kind == "path_type":
            refused("cache/path", "cache path", lambda: LatencyCache(junk))
            return
        if kind == "timeout":
            refused("cache/path", "timeout_s", lambda: LatencyCache(":memory:", timeout_s=-len(junk)))
            return
        if kind == "garbage":
            with open(path, "wb") as fh:
                fh.write(b"not sqlite " + junk)
            field = "not a nas_hw latency cache"
        elif kind == "foreign_db":
            with sqlite3.connect(path) as conn:
                conn.execute(f"CREATE TABLE {name}_t (x)")
            conn.close()
            field = "not a nas_hw latency cache"
        else:  # another schema version: refused with instructions, file untouched
            with LatencyCache(path):
                pass
            conn = sqlite3.connect(path)
            conn.execute(f"PRAGMA user_version={version}")
            conn.commit()
            conn.close()
            field = "cache of schema"
        with open(path, "rb") as fh:
            before = fh.read()
        err = refused(f"cache/file-{kind}", field, lambda: LatencyCache(path))
        assert isinstance(err, CacheError)
        if kind == "schema":
            assert "use the nas_hw that wrote it" in str(err)  # the instructions
        with open(path, "rb") as fh:
            assert fh.read() == before, "a refused cache file was modified"


def test_cache_report():
    report("cache/")


# -- datasets, spaces, .nnp files ----------------------------------------------------------
@st.composite
def bad_dataset(draw):
    field = draw(st.sampled_from(["name", "root", "root_digits", "valid_fraction", "test_fraction", "seed"]))
    kwargs = {"name": "digits"}
    if field == "name":
        kwargs["name"] = draw(st.one_of(WORDS.filter(lambda s: s not in ("digits", "cifar10")), st.integers()))
    elif field == "root":
        kwargs.update(name="cifar10", root=os.path.join("/nonexistent_nas_hw", draw(WORDS)))
    elif field == "root_digits":
        kwargs["root"] = draw(WORDS)
        field = "root"
    elif field == "valid_fraction":
        kwargs[field] = draw(st.one_of(st.floats(min_value=1.0), st.floats(max_value=0, exclude_max=True),
                                       NON_FINITE, WORDS, st.none()))
    elif field == "test_fraction":
        kwargs[field] = draw(st.one_of(st.floats(min_value=1.0), st.floats(max_value=0, exclude_max=True),
                                       NON_FINITE, WORDS))
    else:
        kwargs[field] = draw(st.one_of(st.integers(max_value=-1), st.floats(), WORDS))
    return field, kwargs


@fuzz(max_examples=25)
@given(case=bad_dataset())
def test_bad_dataset_arguments_are_refused(case):
    field, kwargs = case
    refused("data/load_dataset", field, lambda: load_dataset(**kwargs))


SPACE_FIELDS = {
    MobileNetSpace: {
        "in_channels": st.integers(max_value=0), "n_classes": st.integers(max_value=0),
        "stem_channels": st.one_of(st.integers(max_value=0), WORDS),
        "stage_channels": st.one_of(st.just([]), st.lists(st.integers(max_value=0), min_size=2, max_size=2)),
        "stage_strides": st.lists(st.integers(3, 9), min_size=2, max_size=2),
        "kernels": st.one_of(st.lists(st.sampled_from([2, 4, 6]), min_size=1, max_size=1), st.just([3, 3])),
        "expansions": st.one_of(st.just([]), st.lists(st.integers(max_value=0), min_size=1, max_size=1)),
        "dropout": st.one_of(st.floats(min_value=1.0), st.floats(max_value=0, exclude_max=True)),
        "mode": WORDS.filter(lambda s: s not in ("full", "sample", "max")),
        "seed": st.integers(max_value=-1),
    },
    DartsSpace: {
        "channels": st.integers(max_value=0), "n_cells": st.integers(max_value=0),
        "n_nodes": st.integers(max_value=0),
        "ops": st.one_of(st.just([]), st.lists(WORDS, min_size=1, max_size=2)),
        "mode": WORDS.filter(lambda s: s not in ("full", "sample", "max")),
        "seed": st.integers(max_value=-1),
    },
}


@st.composite
def bad_space(draw):
    cls = draw(st.sampled_from([MobileNetSpace, DartsSpace]))
    field = draw(st.sampled_from(sorted(SPACE_FIELDS[cls])))
    return cls, field, draw(SPACE_FIELDS[cls][field])


@fuzz(max_examples=25)
@given(case=bad_space())
def test_bad_search_space_arguments_are_refused(case):
    cls, field, value = case
    refused(f"space/{cls.__name__}", field, lambda: cls(**{field: value}))


@st.composite
def not_an_nnp(draw):
    kind = draw(st.sampled_from(["bytes", "empty_zip", "zip_without_network", "zip_with_garbage_network"]))
    return kind, draw(st.binary(max_size=300)), draw(WORDS)


@fuzz(max_examples=25)
@given(case=not_an_nnp())
def test_a_file_that_is_not_an_nnp_is_refused(case):
    kind, junk, name = case
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, f"{name}.nnp")
        if kind == "bytes":
            with open(path, "wb") as fh:
                fh.write(junk)
        else:
            with zipfile.ZipFile(path, "w") as zf:
                if kind == "zip_without_network":
                    zf.writestr(f"{name}.txt", junk)
                elif kind == "zip_with_garbage_network":
                    zf.writestr("network.nntxt", b"network { " + junk)
        err = refused(f"nnp/{kind}", path, lambda: load_network(path))
        assert isinstance(err, NetworkInputError)


def test_inputs_report():
    report("data/")
    report("space/")
    report("nnp/")
    report("table/")


# -- the Hydra entry point ---------------------------------------------------------------
class LongWorkStarted(BaseException):
    """Raised by the patched measuring/training functions: nothing wraps a BaseException."""


@pytest.fixture
def no_long_work(monkeypatch):
    """Measuring a layer, building the table, searching, training and measuring the derived
    network all raise :class:`LongWorkStarted`."""
    def forbidden(name):
        def fn(*args, **kwargs):
            CALLS["long_work"] += 1
            raise LongWorkStarted(f"{name} was called: a bad config got past the start-up checks")
        return fn

    monkeypatch.setattr(timing_module, "measure", forbidden("timing.measure"))
    monkeypatch.setattr(table_module.CandidateTable, "build", classmethod(forbidden("CandidateTable.build")))
    monkeypatch.setattr(Searcher, "run", forbidden("Searcher.run"))
    monkeypatch.setattr(Retrainer, "train", forbidden("Retrainer.train"))
    monkeypatch.setattr(pipeline, "measure_network_latency_ms", forbidden("measure_network_latency_ms"))
    return monkeypatch


def search_entry(overrides, output_dir):
    """What ``nas-hw search`` does with its command line: compose, validate, run."""
    return pipeline.run_search(compose(overrides), output_dir)


RESERVED = {"true", "false", "null", "nan", "inf", "none"}
HWORD = WORDS.filter(lambda s: s.lower() not in RESERVED)
GROUP_OPTIONS = {"estimator": ("graph", "module"), "search": ("darts", "proxyless"),
                 "space": ("darts", "mobilenet"), "data": ("digits", "cifar10"),
                 "device": ("cpu", "cuda", "cudnn"), "callbacks": ("default", "none"),
                 "latency": ("default", "none"), "retrain": ("default", "none"), "table": ("default",)}
KNOWN_KEYS = ["latency.weight", "latency.target", "latency.mode", "table.input_shape",
              "estimator.n_run", "estimator.outlier", "estimator.time_scale", "search.epochs",
              "search.batch_size", "data.valid_fraction", "device.device_id", "space.kernels"]


def _num(x):
    return repr(float(x)) if math.isfinite(x) else ("nan" if math.isnan(x) else ("inf" if x > 0 else "-inf"))


def _misspell(draw, key):
    group, leaf = key.split(".")
    i = draw(st.integers(0, len(leaf) - 1))
    op = draw(st.sampled_from(["drop", "double", "swap", "letter"]))
    if op == "drop":
        leaf2 = leaf[:i] + leaf[i + 1:]
    elif op == "double":
        leaf2 = leaf[:i] + leaf[i] + leaf[i:]
    elif op == "swap" and i + 1 < len(leaf) and leaf[i] != leaf[i + 1]:
        leaf2 = leaf[:i] + leaf[i + 1] + leaf[i] + leaf[i + 2:]
    else:
        leaf2 = leaf[:i] + draw(st.sampled_from("qxz")) + leaf[i + 1:]
    return f"{group}.{leaf2}"


@st.composite
def bad_overrides(draw):
    """(overrides, the field the error must name)."""
    kind = draw(st.sampled_from([
        "group", "misspelt", "append", "weight", "target", "mode", "needs_target", "log_target",
        "outlier", "n_run", "n_warmup", "time_scale", "max_time", "input_shape", "input_channels",
        "cifar_root", "cifar_no_root", "valid_fraction", "device_id", "type_config", "cache_dir",
        "monitor_n_run", "constraint_weight", "search_value", "resume", "space_value", "estimator_target",
    ]))
    if kind == "group":
        group = draw(st.sampled_from(sorted(GROUP_OPTIONS)))
        name = draw(HWORD.filter(lambda s: s not in GROUP_OPTIONS[group]))
        return [f"{group}={name}"], group
    if kind == "misspelt":
        key = _misspell(draw, draw(st.sampled_from(KNOWN_KEYS)))
        if key in KNOWN_KEYS or key.split(".")[1] in ("a", "b", "mode", "target", "weight", "n_warmup"):
            key = key + "x"
        return [f"{key}=1"], key
    if kind == "append":
        group = draw(st.sampled_from(["latency", "estimator", "search", "data", "device", "retrain", "table"]))
        key = draw(HWORD.filter(lambda s: s not in ("a", "b"))) + "_setting"
        return [f"+{group}.{key}=1"], f"{group}.{key}"
    if kind == "weight":
        value = draw(st.one_of(st.floats(max_value=-1e-9, allow_infinity=False).map(_num),
                               HWORD, NON_FINITE.map(_num)))
        return [f"latency.weight={value}"], "latency.weight"
    if kind == "target":
        value = draw(st.one_of(st.floats(max_value=0, allow_infinity=False).map(_num), HWORD, NON_FINITE.map(_num)))
        return [f"latency.target={value}"], "latency.target"
    if kind == "mode":
        return [f"latency.mode={draw(HWORD.filter(lambda s: s not in MODES))}"], "latency.mode"
    if kind == "needs_target":
        return [f"latency.mode={draw(st.sampled_from(['hinge', 'log']))}", "latency.weight=0.1"], "latency.target"
    if kind == "log_target":
        return ["latency.mode=log", f"latency.target={_num(draw(st.floats(1e-6, 1.0)))}"], "latency.target"
    if kind == "outlier":
        value = draw(st.one_of(st.floats(min_value=0.5, allow_infinity=False),
                               st.floats(max_value=-1e-9, allow_infinity=False), NON_FINITE))
        return [f"estimator.outlier={_num(value)}"], "estimator.outlier"
    if kind == "n_run":
        value = draw(st.one_of(st.integers(max_value=0).map(str),
                               st.floats(allow_nan=False, allow_infinity=False).filter(
                                   lambda f: not f.is_integer()).map(_num), HWORD))
        return [f"estimator.n_run={value}"], "estimator.n_run"
    if kind == "n_warmup":
        return [f"estimator.n_warmup={draw(st.integers(max_value=-1))}"], "estimator.n_warmup"
    if kind == "time_scale":
        return [f"estimator.time_scale={draw(HWORD.filter(lambda s: s not in TIME_SCALES))}"], "estimator.time_scale"
    if kind == "max_time":
        value = draw(st.one_of(st.floats(max_value=0, allow_infinity=False), NON_FINITE))
        return [f"estimator.max_measure_execution_time={_num(value)}"], "estimator.max_measure_execution_time"
    if kind == "input_shape":
        shape = draw(st.one_of(st.lists(st.integers(1, 8), min_size=0, max_size=6).filter(lambda s: len(s) != 4),
                               st.lists(st.integers(-3, 8), min_size=4, max_size=4).filter(lambda s: min(s) <= 0)))
        return [f"table.input_shape=[{','.join(map(str, shape))}]"], "table.input_shape"
    if kind == "input_channels":  # digits has 1 channel
        shape = [1, draw(st.integers(2, 4)), 8, 8]
        return [f"table.input_shape=[{','.join(map(str, shape))}]"], "table.input_shape"
    if kind == "cifar_root":
        return ["data=cifar10", f"data.root=/nonexistent_nas_hw/{draw(HWORD)}"], "root"
    if kind == "cifar_no_root":
        return ["data=cifar10"], "data.root"
    if kind == "valid_fraction":
        value = draw(st.one_of(st.floats(min_value=1.0, allow_infinity=False),
                               st.floats(max_value=-1e-9, allow_infinity=False)))
        return [f"data.valid_fraction={_num(value)}"], "data.valid_fraction"
    if kind == "device_id":
        return [f"device.device_id={draw(st.integers(max_value=-1))}"], "device.device_id"
    if kind == "type_config":
        return [f"device.type_config={draw(HWORD.filter(lambda s: s not in TYPE_CONFIGS))}"], "device.type_config"
    if kind == "cache_dir":
        return [f"cache.path=/nonexistent_nas_hw/{draw(HWORD)}/latency.sqlite"], "cache"
    if kind == "monitor_n_run":
        return [f"callbacks.monitor.n_run={draw(st.integers(max_value=0))}"], "n_run"
    if kind == "constraint_weight":
        return [f"callbacks.constraint.weight={_num(draw(st.floats(max_value=-1e-9, allow_infinity=False)))}"], "weight"
    if kind == "search_value":
        key, value = draw(st.sampled_from([
            ("search.epochs", st.integers(max_value=-1).map(str)),
            ("search.batch_size", st.integers(max_value=0).map(str)),
            ("search.net_optimizer", HWORD.filter(lambda s: s not in ("momentum", "sgd", "adam"))),
            ("search.arch_lr", st.floats(max_value=0, allow_infinity=False).map(_num)),
            ("search.baseline_decay", st.floats(min_value=1.0, allow_infinity=False).map(_num)),
            ("retrain.epochs", st.integers(max_value=-1).map(str)),
        ]))
        return [f"{key}={draw(value)}"], key
    if kind == "resume":
        return [f"search.resume=/nonexistent_nas_hw/{draw(HWORD)}"], "search.resume"
    if kind == "space_value":
        key, value, field = draw(st.sampled_from([
            ("space.stem_channels", st.integers(max_value=0).map(str), "stem_channels"),
            ("space.kernels", st.sampled_from(["[2]", "[4,6]", "[]", "[3,3]"]), "kernels"),
            ("space.stage_strides", st.sampled_from(["[3,1]", "[1,5]"]), "stage_strides"),
        ]))
        return [f"{key}={draw(value)}"], field
    # an estimator class that does not exist
    return [f"estimator._target_=nas_hw.estimators.{draw(HWORD)}.Nope"], "estimator"


@fuzz(max_examples=120)
@given(case=bad_overrides())
def test_bad_search_configs_fail_before_any_long_work(case, no_long_work, tmp_path):
    overrides, field = case
    before = CALLS["long_work"]
    refused(f"hydra/{overrides[-1].split('=')[0].lstrip('+~')}", field,
            lambda: search_entry(overrides, str(tmp_path / "run")))
    assert CALLS["long_work"] == before


def test_hydra_report():
    report("hydra/")


def test_the_good_default_config_reaches_the_long_work(no_long_work, tmp_path):
    """The guard above can fail: the default config gets past every start-up check."""
    with pytest.raises(LongWorkStarted, match="CandidateTable.build"):
        search_entry(["retrain.epochs=0", f"cache.path={tmp_path / 'c.sqlite'}"], str(tmp_path / "run"))


def test_at_least_200_bad_cases_were_tried():
    total = sum(COUNTS.values())
    groups = collections.Counter()
    for kind, n in COUNTS.items():
        groups[kind.split("/")[0]] += n
    summary(f"\n[fuzz] total: {total} bad cases: {dict(sorted(groups.items()))}")
    assert total >= MIN_TOTAL_CASES, f"only {total} bad cases were tried (run the whole module)"
