"""Everything ``nas-hw search`` and ``nas-hw profile`` build, from a composed config.

Objects are built from the config's ``_target_`` entries (:func:`build`); a value an object
refuses ends in one :class:`~nas_hw.errors.ConfigInputError` line naming the config group.
:func:`setup` is the one set-up path both commands share (device, data, space, deployment
shape, cache, estimator), so a table the search builds and a table ``nas-hw profile`` stores
are measured the same way, under the same fingerprint.

:func:`run_search`:

1. builds every object and checks every setting (penalty, callbacks, searcher, retraining)
   before anything is measured;
2. builds the candidate table (every candidate measured at the deployment input shape,
   through the shared latency cache) and, with ``table.calibrate``, calibrates it;
3. runs the search (DARTS or ProxylessNAS), resuming from ``search.resume`` when given;
4. derives the architecture, measures its true latency, retrains it from scratch;
5. writes ``report.json`` in the output directory and returns it as a dict, with the
   accuracy-only reference beside it (:mod:`nas_hw.app.reference`).
"""
import datetime
import json
import logging
import math
import os
import time
from dataclasses import dataclass

import nnabla as nn
import numpy as np
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from ..checks import check_one_of, check_seed
from ..constants import BACKENDS, MAX_BATCH_SIZE, MAX_INPUT_ELEMENTS
from ..errors import ConfigInputError, MissingMeasurementsError
from .config import cache_location, config_error_line
from .reference import finish_run
from ..estimators.calibrated import Calibrator
from ..files import atomic_write
from ..measure.backends import make_backend
from ..measure.store import open_cache
from ..nas.callbacks import CallbackList
from ..nas.table import CandidateTable
from ..search.derive import measure_network_latency_ms
from .space_input import adapt_data, check_space_input

logger = logging.getLogger(__name__)

REPORT_FILE = "report.json"
TABLE_BLOB = "candidate_table"


def first_line(err):
    """An exception's message as one line."""
    text = " ".join(str(err).split())
    return text or type(err).__name__


def config_error(group, err, keys=()):
    """A :class:`ConfigInputError` naming the config key an object's message is about: objects
    start their messages with the argument's name (``weight must be ...``), which becomes
    ``latency.weight must be ...``; other messages get the group as a prefix."""
    if isinstance(err, OmegaConfBaseException):
        return ConfigInputError(config_error_line(err))
    text = first_line(err)
    head = text.split(" ", 1)[0]
    name = head.split("=", 1)[0].strip(":,")
    if name in keys:
        return ConfigInputError(f"{group}.{text}")
    return ConfigInputError(f"{group}: {text}")


def _keys(node):
    return [k for k in node.keys() if not str(k).startswith("_")] if isinstance(node, DictConfig) else []


def build(node, group, **kwargs):
    """``hydra.utils.instantiate(node, **kwargs)``, a refused value ending in one line naming the
    config key (see :func:`config_error`).

    Raises:
        ConfigInputError: ``<group>.<key> ...`` or ``<group>: <what the object said>``.
    """
    keys = _keys(node) + list(kwargs)
    try:
        return instantiate(node, _convert_="all", **kwargs)
    except InstantiationException as err:
        cause = err.__cause__ if err.__cause__ is not None else err
        raise config_error(group, cause, keys) from cause
    except (ValueError, TypeError, FileNotFoundError, OmegaConfBaseException) as err:
        raise config_error(group, err, keys) from err


def seed_everything(seed):
    np.random.seed(seed)
    from nnabla import random as nn_random
    nn_random.prng = np.random.RandomState(seed)
    nn.seed(seed)


def deploy_input_shape(table_cfg, dataset):
    """The deployment input shape: ``table.input_shape`` or batch 1 at the image shape."""
    image_shape = tuple(int(s) for s in dataset.input_shape)
    if table_cfg.input_shape is None:
        return (1,) + image_shape
    shape = tuple(int(s) for s in table_cfg.input_shape)
    if len(shape) != 4 or any(d <= 0 for d in shape):
        raise ConfigInputError(f"table.input_shape must be 4 positive ints (N, C, H, W), got {list(shape)}")
    if shape[0] > MAX_BATCH_SIZE or math.prod(shape) > MAX_INPUT_ELEMENTS:
        raise ConfigInputError(f"table.input_shape {list(shape)} is too large: at most {MAX_BATCH_SIZE} samples "
                               f"and {MAX_INPUT_ELEMENTS} elements in all")
    if shape[1] != image_shape[0]:
        raise ConfigInputError(f"table.input_shape {list(shape)} has {shape[1]} channels, the data has "
                               f"{image_shape[0]}")
    return shape


def build_backend(backend_cfg, device):
    """The measuring backend of the ``backend`` group: ``"nnabla"`` (the estimators then time on
    ``device``) or an ONNX Runtime backend (its GPU index is the device's).

    Raises:
        ConfigInputError: ``backend.<key> ...`` naming a refused value.
        BackendUnavailableError: the onnx extra or the provider is missing here.
    """
    name = "nnabla" if backend_cfg is None else backend_cfg.name
    try:
        check_one_of("name", name, BACKENDS)
    except ValueError as err:
        raise config_error("backend", err, ["name"]) from err
    if name == "nnabla":
        return name
    options = dict(provider=backend_cfg.provider, threads=backend_cfg.threads,
                   optimization=backend_cfg.optimization, device_id=device.device_id)
    try:
        return make_backend(name, **options)
    except (ValueError, TypeError) as err:
        raise config_error("backend", err, ["name"] + list(options)) from err


def build_callbacks(callbacks_cfg):
    """A :class:`~nas_hw.nas.callbacks.CallbackList` from the ``callbacks`` dict of named
    ``_target_`` entries (a ``null`` entry is skipped, so ``callbacks.csv=null`` removes one)."""
    return CallbackList({name: build(node, f"callbacks.{name}")
                         for name, node in callbacks_cfg.items() if node is not None})


@dataclass
class Setup:
    """What both commands build from a config before measuring.

    Attributes:
        device: the :class:`~nas_hw.measure.device.Device` everything runs and is measured on.
        dataset: the loaded data.
        model: the search space (MixedOps in mode ``full``, inference mode).
        deploy_shape: the input shape (N, C, H, W) every latency is for.
        cache: the latency cache (close it when done).
        estimator: the layer-based estimator filling the table, at the deployment batch.
    """

    device: object
    dataset: object
    model: object
    deploy_shape: tuple
    cache: object  # LatencyCache or PostgresStore (open_cache)
    estimator: object


def setup(cfg):
    """Builds the shared objects of a config (see :class:`Setup`); nothing is measured.

    Raises:
        ConfigInputError: a value the device, data, space or estimator refused.
        CacheError: the cache file is unusable.
        ExtensionUnavailableError: the device's extension is missing.
    """
    try:
        seed_everything(check_seed(cfg.seed))
    except ValueError as err:
        raise ConfigInputError(first_line(err)) from None
    device = build(cfg.device, "device")
    dataset = build(cfg.data, "data")
    with nn.context_scope(device.context):
        model = build(cfg.space, "space", mode="full", in_channels=int(dataset.input_shape[0]),
                      n_classes=int(dataset.n_classes), seed=int(cfg.seed))
        dataset = adapt_data(model, dataset)
        shape = deploy_input_shape(cfg.table, dataset)
        check_space_input(model, shape)
    model.apply(training=False)
    make_estimator = build(cfg.estimator, "estimator")
    backend = build_backend(OmegaConf.select(cfg, "backend"), device)
    # table.stored jobs only read the cache (read-only): parallel jobs never write it
    cache = open_cache(cache_location(cfg.cache), readonly=bool(cfg.table.stored))
    kwargs = dict(device_id=device.device_id, ext_name=device.ext_name, type_config=device.type_config,
                  cache=cache, batch_size=shape[0], backend=backend)
    try:
        estimator = _call(make_estimator, "estimator", **kwargs)
        if cfg.table.stored:  # read what `nas-hw profile` stored, offline: nothing can be measured
            with nn.context_scope(device.context):
                key = CandidateTable.key_of(model, estimator, shape)
            fingerprint = stored_fingerprint(cache, key, estimator.fingerprint_key, cfg.table.fingerprint)
            estimator = _call(make_estimator, "estimator", fingerprint=fingerprint, **kwargs)
    except BaseException:
        cache.close()
        raise
    return Setup(device, dataset, model, shape, cache, estimator)


def stored_fingerprint(cache, key, own, wanted=None):
    """The fingerprint whose stored table ``key`` a ``table.stored`` job reads: ``wanted`` when
    given; else this device's own when it has the table; else the one device that has it (a
    parallel job may run with other thread settings than the profile, e.g. joblib sets
    OMP_NUM_THREADS=1: the table describes the profiled device, not the job).

    Raises:
        MissingMeasurementsError: no stored table (run ``nas-hw profile`` first), or several
            devices have one and ``table.fingerprint`` does not say which.
    """
    have = cache.blob_fingerprints(TABLE_BLOB, key)
    if wanted is not None:
        if wanted not in have:
            raise MissingMeasurementsError(
                f"table.fingerprint={wanted!r} has no stored candidate table {key} in {cache.path!r} "
                f"(devices that have one: {have}): run `nas-hw profile` on that device first")
        return wanted
    if own in have:
        return own
    if len(have) == 1:
        logger.info("table.stored: reading the table profiled on %s (this job's device key is %s)", have[0], own)
        return have[0]
    if not have:
        raise MissingMeasurementsError(
            f"table.stored=true but {cache.path!r} holds no candidate table {key} for this space and input "
            "shape: run `nas-hw profile` with the same space, data, table, estimator and device settings first")
    raise MissingMeasurementsError(f"table.stored=true: several devices have candidate table {key}: {have}; "
                                   "name one with table.fingerprint=...")


def _call(factory, group, **kwargs):
    """Calls a ``_partial_`` factory, a refused value ending in one line naming the config key."""
    try:
        return factory(**kwargs)
    except (ValueError, TypeError, FileNotFoundError) as err:
        raise config_error(group, err, list(getattr(factory, "keywords", {})) + list(kwargs)) from err


def build_table(s, progress=True):
    """Measures (or reads from the cache) the candidate table of ``s.model`` and stores it in the
    cache under ``candidate_table/<space_key>`` with the estimator's settings."""
    with nn.context_scope(s.device.context):
        table = CandidateTable.build(s.model, s.estimator, input_shape=s.deploy_shape, progress=progress)
    payload = table.to_dict()
    payload["estimator"] = dict(s.estimator.settings, batch_size=s.estimator.batch_size)
    s.cache.put_blob(table.fingerprint, TABLE_BLOB, table.space_key, payload)
    return table


def load_stored_table(s):
    """The table ``nas-hw profile`` stored for this space, shape, device and estimator, bound to
    ``s.model``; nothing is measured.

    Raises:
        MissingMeasurementsError: no such table in the cache (run ``nas-hw profile`` first).
    """
    with nn.context_scope(s.device.context):
        key = CandidateTable.key_of(s.model, s.estimator, s.deploy_shape)
    payload = s.cache.get_blob(s.estimator.fingerprint_key, TABLE_BLOB, key)
    if payload is None:  # setup() chose a fingerprint that has it: only a concurrent clear gets here
        raise MissingMeasurementsError(f"candidate table {key} vanished from {s.cache.path!r}")
    payload = {k: v for k, v in payload.items() if k != "estimator"}
    return CandidateTable.from_dict(payload).bind(s.model)


def make_calibrator(s, cfg):
    """The :class:`~nas_hw.estimators.calibrated.Calibrator` of ``table.calibrate`` (``None``
    when off), its settings checked before anything is measured (``calibration_points`` even
    when off: a wrong value is refused whether or not it is used)."""
    calibrator = Calibrator(s.estimator, n_run=max(int(s.estimator.n_run), 10))
    try:
        calibrator.check_count(cfg.table.calibration_points)
    except ValueError as err:
        raise ConfigInputError(f"table.calibration_points: {first_line(err)}") from err
    return calibrator if cfg.table.calibrate else None


def calibrate_table(s, table, calibrator, cfg):
    """The table calibrated on ``table.calibration_points`` subnetworks, and the calibration.
    With ``table.stored`` the calibration must be in the cache already (``nas-hw profile
    table.calibrate=true`` stores it): nothing is measured."""
    if cfg.table.stored:
        calibration = calibrator.stored_for_space(s.model, s.deploy_shape)
        if calibration is None:
            raise MissingMeasurementsError(
                f"table.stored=true and table.calibrate=true but {s.cache.path!r} holds no calibration for "
                "this space and device: run `nas-hw profile table.calibrate=true` with the same settings first")
    else:
        calibration = calibrator.calibrate_space(s.model, s.deploy_shape, n_points=cfg.table.calibration_points,
                                                 seed=int(cfg.seed))
    logger.info("calibrated latencies (%d whole-network measurement(s), %s): scale %.4g, per layer "
                "%.4g %ss, const %.4g %ss", calibrator.n_measurements,
                "measured now" if calibrator.n_measurements else "reused from the cache",
                calibration.scale, calibration.per_layer, calibration.unit, calibration.const, calibration.unit)
    return table.calibrated(calibration), calibration


@dataclass
class SearchPlan:
    """Every object of a search, built and checked, nothing measured yet (see :func:`plan_search`)."""

    cfg: object
    setup: Setup
    penalty: object
    callbacks: CallbackList
    retrainer: object
    searcher: object
    calibrator: object
    output_dir: str


def plan_search(cfg, output_dir):
    """Builds every object of the search described by ``cfg`` and checks every setting; nothing
    is measured or trained, and nothing is written to ``output_dir``. The caller closes
    ``plan.setup.cache``.

    Raises:
        ConfigInputError: a value an object refused (one line naming the config group).
    """
    # the penalty first: the callbacks read its target (a bad latency.target is named as such)
    penalty = None if cfg.latency is None else build(cfg.latency, "latency")
    callbacks = build_callbacks(cfg.callbacks)
    check_nothing_measured(cfg, callbacks)
    s = setup(cfg)
    try:
        retrainer = None if cfg.retrain is None else build(cfg.retrain, "retrain")
        make_searcher = build(cfg.search, "search")
        searcher = _call(make_searcher, "search", model=s.model, dataset=s.dataset, penalty=penalty,
                         callbacks=callbacks, derive_fn=s.model.derive, output_dir=output_dir,
                         deploy_input_shape=s.deploy_shape, ext_name=s.device.ext_name,
                         device_id=s.device.device_id, seed=int(cfg.seed), progress=bool(cfg.progress))
        calibrator = make_calibrator(s, cfg)
    except BaseException:
        s.cache.close()
        raise
    return SearchPlan(cfg, s, penalty, callbacks, retrainer, searcher, calibrator, output_dir)


def check_nothing_measured(cfg, callbacks):
    """With ``table.stored`` a job measures nothing on the device (parallel sweep jobs would
    time layers while other jobs train): a callback that would measure is refused."""
    if not cfg.table.stored:
        return
    for name, cb in callbacks.named:
        if getattr(cb, "measures_on_device", False):
            raise ConfigInputError(
                f"callbacks.{name} measures latency on the device, but table.stored=true runs a job that "
                f"measures nothing: use callbacks=sweep or set callbacks.{name}.measure_true_latency=false")


def run_search(cfg, output_dir):
    """Runs search, derivation, retraining and measurement; writes ``report.json``.

    Args:
        cfg: the composed, validated config (see :func:`nas_hw.app.config.validate`).
        output_dir: the run directory (created if missing).

    Returns:
        dict: the report.
    """
    started = time.perf_counter()
    plan = plan_search(cfg, output_dir)
    try:
        os.makedirs(output_dir, exist_ok=True)
        with nn.context_scope(plan.setup.device.context):
            report = _search(plan, started)
    finally:
        plan.setup.cache.close()
    # the accuracy-only reference next to the result, and the end-of-run summary
    return finish_run(cfg, output_dir, report, run_search, REPORT_FILE)


def _search(plan, started):
    cfg, s, searcher = plan.cfg, plan.setup, plan.searcher
    progress = bool(cfg.progress)
    dataset, model = s.dataset, s.model
    logger.info("data %s: %d train, %d valid, %d test, input %s, %d classes", dataset.name,
                len(dataset.train), len(dataset.valid), len(dataset.test),
                tuple(dataset.input_shape), dataset.n_classes)
    table_start = time.perf_counter()
    raw_table = load_stored_table(s) if cfg.table.stored else build_table(s, progress)
    table_time_s = time.perf_counter() - table_start
    logger.info("candidate table %s in %.1f s (cache %s)", "read" if cfg.table.stored else "built",
                table_time_s, s.cache.path)
    table, calibration = raw_table, None
    if plan.calibrator is not None:
        table, calibration = calibrate_table(s, raw_table, plan.calibrator, cfg)
    searcher.attach_table(table)

    search_start = time.perf_counter()
    choices = searcher.run()
    search_time_s = time.perf_counter() - search_start

    arch = searcher.describe_architecture(choices)
    true_latency_ms = None  # a job reading a stored table measures nothing: the sweep re-measures
    if not cfg.table.stored:
        true_latency_ms = measure_network_latency_ms(model.derive(choices), s.deploy_shape,
                                                     s.device.ext_name, s.device.device_id,
                                                     n_run=int(s.estimator.n_run), backend=s.estimator.backend)
    retrain_start = time.perf_counter()
    retrained = None
    retrainer, penalty = plan.retrainer, plan.penalty
    if retrainer is not None:
        retrained = retrainer.train(model.derive(choices), dataset, seed=int(cfg.seed), progress=progress)
    retrain_time_s = time.perf_counter() - retrain_start

    last = searcher.history[-1] if searcher.history else {}
    budget = callbacks_best(plan.callbacks)
    baseline = getattr(searcher, "baseline", None)  # search=random|uniform: chosen by rule
    report = {
        "algorithm": searcher.algorithm,
        "baseline": baseline,
        "space": OmegaConf.select(cfg, "space._target_"),
        "data": dataset.name,
        "data_adapted_from": None if dataset.adapted_from is None else list(dataset.adapted_from),
        "n_classes": int(dataset.n_classes),
        "seed": int(cfg.seed),
        "latency_penalty": None if cfg.latency is None else OmegaConf.to_container(cfg.latency),
        "latency_weight": None if penalty is None or baseline is not None else penalty.weight,
        "deploy_input_shape": list(s.deploy_shape),
        "ext_name": s.device.ext_name,
        "backend": s.estimator.backend.name,
        "derived": "the argmax architecture after the last search epoch (what was retrained)",
        "choices": list(choices),
        "candidates": arch.get("candidates"),
        "estimated_latency_ms": arch["latency_ms"],
        "estimated_latency_raw_ms": raw_table.for_choices(choices, unit="m"),
        "calibration": None if calibration is None else calibration.to_dict(),
        "true_latency_ms": true_latency_ms,
        "table_stored": bool(cfg.table.stored),
        "table_fingerprint": raw_table.fingerprint,
        # layer measurements flagged disturbed (taken on a busy machine) the table's latencies used
        "flagged_rows": list(raw_table.flagged),
        "param_bytes": arch.get("param_bytes"),
        "flops": arch.get("flops"),
        "search_valid_acc": last.get("valid_acc"),
        "valid_acc": None if retrained is None else retrained.get("valid_acc"),
        "test_acc": None if retrained is None else retrained.get("test_acc"),
        "retrain": {"epochs": 0} if retrained is None else dict(retrained, epochs=retrainer.epochs),
        "budget_checkpoint": budget,
        "epochs_searched": searcher.epoch,
        "table_time_s": table_time_s,
        "search_time_s": search_time_s,
        "retrain_time_s": retrain_time_s,
        "total_time_s": time.perf_counter() - started,
        "finished_utc": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "load_avg_1min": round(os.getloadavg()[0], 2),
        "cache_path": os.fspath(s.cache.path),
    }
    with atomic_write(os.path.join(plan.output_dir, REPORT_FILE)) as f:
        json.dump(report, f, indent=2)
    logger.info("derived %s: estimated %.4f ms, measured %s ms, test acc %s",
                report["candidates"] or choices, report["estimated_latency_ms"],
                "(not in this job)" if true_latency_ms is None else f"{true_latency_ms:.4f}", report["test_acc"])
    return report


def callbacks_best(callbacks):
    """What the budget checkpoint kept (its file, epoch and choices), or ``None`` without one."""
    from ..nas.callbacks import BudgetCheckpoint

    for name, cb in callbacks.named:
        if isinstance(cb, BudgetCheckpoint):
            if cb.best is None:
                return {"callback": name, "file": None, "note": "no architecture fitted the budget"}
            return {"callback": name, "file": cb.filename, "epoch": cb.best.get("epoch"),
                    "choices": cb.best.get("choices"),
                    "selected_by": cb.best.get("selected_by")}
    return None
