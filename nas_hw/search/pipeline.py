"""The whole hardware-aware search of ``examples/search.py``, from a config to a report.

:func:`run_search` takes the composed config (Hydra's ``DictConfig`` or the validated
dataclasses of :mod:`nas_hw.config`) and an output directory, and:

1. loads the data, builds the supernet and the candidate table (every candidate measured
   at the deployment input shape, through the shared latency cache);
2. runs the search (DARTS or ProxylessNAS) with the latency penalty and the callbacks,
   resuming from ``search.resume`` when given;
3. derives the architecture (argmax per choice group), trains it from scratch
   (``retrain.epochs``; 0 skips) and measures its true latency;
4. writes ``report.json`` in the output directory and returns it as a dict.

Nothing here needs Hydra: ``hydra.utils.instantiate`` only reads ``_target_`` entries.
"""
import json
import logging
import os
import time

import nnabla as nn
import numpy as np
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from ..calibration import Calibrator
from ..callbacks import CallbackList
from ..device import get_context
from .retrain import train_from_scratch
from .searcher import CHECKPOINT_STATE, make_searcher, measure_network_latency_ms

logger = logging.getLogger(__name__)

REPORT_FILE = "report.json"


def _as_dictconfig(cfg):
    return cfg if isinstance(cfg, DictConfig) else OmegaConf.structured(cfg)


def _seed_everything(seed):
    np.random.seed(seed)
    from nnabla import random as nn_random
    nn_random.prng = np.random.RandomState(seed)
    nn.seed(seed)


def build_callbacks(callbacks_cfg):
    """A :class:`~nas_hw.callbacks.CallbackList` from the ``callbacks`` dict of named
    ``_target_`` entries (a ``null`` entry is skipped, so ``callbacks.csv=null`` removes one)."""
    named = {}
    for name, node in callbacks_cfg.items():
        if node is None:
            continue
        named[name] = instantiate(node)
    return CallbackList(named)


def deploy_input_shape(latency_cfg, dataset):
    """The deployment input shape: ``latency.input_shape`` or batch 1 at the image shape."""
    if latency_cfg.input_shape is None:
        return (1,) + tuple(int(s) for s in dataset.input_shape)
    shape = tuple(int(s) for s in latency_cfg.input_shape)
    if shape[1] != dataset.input_shape[0]:
        raise ValueError(f"latency.input_shape {list(shape)} has {shape[1]} channels, the data has "
                         f"{dataset.input_shape[0]}")
    return shape


def check_resume(path):
    """Raises ``FileNotFoundError`` naming ``search.resume`` unless ``path`` holds a checkpoint
    (the checkpoint directory, or a run directory holding ``checkpoint/``)."""
    if not path:
        return
    path = os.fspath(path)
    directory = os.path.join(path, "checkpoint") if os.path.isdir(os.path.join(path, "checkpoint")) else path
    if not os.path.isfile(os.path.join(directory, CHECKPOINT_STATE)):
        raise FileNotFoundError(f"search.resume={path!r} holds no checkpoint (no {CHECKPOINT_STATE} in "
                                f"{directory!r}): give a run directory of an earlier search or its checkpoint/")


def run_search(cfg, output_dir):
    """Runs search, derivation, retraining and measurement; writes ``report.json``.

    Args:
        cfg: the composed config (``DictConfig`` or :class:`nas_hw.config.Config`).
        output_dir: the run directory (created if missing).

    Returns:
        dict: the report.
    """
    from ..cache import LatencyCache
    from ..penalty import LatencyPenalty
    from ..table import CandidateTable

    cfg = _as_dictconfig(cfg)
    os.makedirs(output_dir, exist_ok=True)
    started = time.perf_counter()
    _seed_everything(cfg.seed)
    nn.set_default_context(get_context(cfg.device.ext_name, cfg.device.device_id,
                                       cfg.device.type_config))

    dataset = instantiate(cfg.data)
    logger.info("data %s: %d train, %d valid, %d test, input %s, %d classes", dataset.name,
                len(dataset.train), len(dataset.valid), len(dataset.test),
                tuple(dataset.input_shape), dataset.n_classes)
    in_channels = int(dataset.input_shape[0])
    mode = "full" if cfg.search.algorithm == "darts" else "sample"
    space_kwargs = dict(in_channels=in_channels, n_classes=int(dataset.n_classes),
                        seed=int(cfg.seed), _convert_="all")
    model = instantiate(cfg.space, mode="full", **space_kwargs)

    deploy_shape = deploy_input_shape(cfg.latency, dataset)
    cache = LatencyCache(cfg.cache.path)
    make_estimator = instantiate(cfg.estimator)  # _partial_: the device and cache come from here
    # the estimator's batch_size is the batch it measures at: the deployment batch
    estimator = make_estimator(device_id=cfg.device.device_id, ext_name=cfg.device.ext_name,
                               cache=cache, batch_size=deploy_shape[0])
    # Everything that can be refused is refused before the table is measured: the callbacks'
    # settings and the checkpoint to resume from.
    callbacks = build_callbacks(cfg.callbacks)
    check_resume(cfg.search.resume)
    model.apply(training=False)
    table_start = time.perf_counter()
    table = CandidateTable.build(model, estimator, input_shape=deploy_shape,
                                 progress=bool(cfg.progress))
    table_time_s = time.perf_counter() - table_start
    logger.info("candidate table built in %.1f s (cache %s)", table_time_s, cache.path)
    raw_table, calibration = table, None
    if cfg.latency.calibrate:
        calibrator = Calibrator(estimator, n_run=max(int(cfg.estimator.n_run), 10))
        calibration = calibrator.calibrate_space(model, deploy_shape, n_points=int(cfg.latency.calibration_points),
                                                 seed=int(cfg.seed))
        table = raw_table.calibrated(calibration)
        logger.info("calibrated latencies (%d whole-network measurement(s), %s): scale %.4g, per layer "
                    "%.4g ms, const %.4g ms", calibrator.n_measurements,
                    "measured now" if calibrator.n_measurements else "reused from the cache",
                    calibration.scale, calibration.per_layer, calibration.const)
    penalty = None
    if cfg.latency.weight > 0:
        penalty = LatencyPenalty(table, weight=cfg.latency.weight, target=cfg.latency.target,
                                 mode=cfg.latency.mode, a=cfg.latency.a, b=cfg.latency.b)

    s = cfg.search
    searcher = make_searcher(
        s.algorithm, model, dataset, table, penalty=penalty, callbacks=callbacks,
        derive_fn=model.derive, output_dir=output_dir, epochs=s.epochs,
        warmup_epochs=s.warmup_epochs, batch_size=s.batch_size, max_batches=s.max_batches,
        net_optimizer=s.net_optimizer, net_lr=s.net_lr, net_momentum=s.net_momentum,
        net_weight_decay=s.net_weight_decay, arch_optimizer=s.arch_optimizer, arch_lr=s.arch_lr,
        arch_weight_decay=s.arch_weight_decay, deploy_input_shape=deploy_shape,
        ext_name=cfg.device.ext_name, device_id=cfg.device.device_id, seed=int(cfg.seed),
        progress=bool(cfg.progress), checkpoint=bool(s.checkpoint),
        n_samples=s.n_samples, baseline_decay=s.baseline_decay)
    if s.resume:
        searcher.load_checkpoint(s.resume)
    search_start = time.perf_counter()
    choices = searcher.run()
    search_time_s = time.perf_counter() - search_start

    arch = searcher.describe_architecture(choices)
    n_run = int(cfg.estimator.n_run)
    true_latency_ms = measure_network_latency_ms(model.derive(choices), deploy_shape,
                                                 cfg.device.ext_name, cfg.device.device_id,
                                                 n_run=n_run)
    r = cfg.retrain
    retrain = {"epochs": int(r.epochs)}
    retrain_start = time.perf_counter()
    if r.epochs > 0:
        net = model.derive(choices)
        retrain.update(train_from_scratch(
            net, dataset, epochs=r.epochs, batch_size=r.batch_size, max_batches=r.max_batches,
            optimizer=r.optimizer, lr=r.lr, momentum=r.momentum, weight_decay=r.weight_decay,
            seed=int(cfg.seed), progress=bool(cfg.progress)))
    retrain_time_s = time.perf_counter() - retrain_start

    last = searcher.history[-1] if searcher.history else {}
    report = {
        "algorithm": s.algorithm,
        "space": OmegaConf.select(cfg, "space._target_"),
        "data": dataset.name,
        "seed": int(cfg.seed),
        "latency_weight": float(cfg.latency.weight),
        "latency_target_ms": cfg.latency.target,
        "latency_mode": cfg.latency.mode,
        "deploy_input_shape": list(deploy_shape),
        "ext_name": cfg.device.ext_name,
        "choices": list(choices),
        "candidates": arch.get("candidates"),
        "estimated_latency_ms": arch["latency_ms"],
        "estimated_latency_raw_ms": raw_table.for_choices(choices),
        "calibration": None if calibration is None else calibration.to_dict(),
        "true_latency_ms": true_latency_ms,
        "param_bytes": arch.get("param_bytes"),
        "flops": arch.get("flops"),
        "search_valid_acc": last.get("valid_acc"),
        "valid_acc": retrain.get("valid_acc"),
        "test_acc": retrain.get("test_acc"),
        "retrain": retrain,
        "epochs_searched": searcher.epoch,
        "table_time_s": table_time_s,
        "search_time_s": search_time_s,
        "retrain_time_s": retrain_time_s,
        "total_time_s": time.perf_counter() - started,
        "cache_path": os.fspath(cache.path),
    }
    with open(os.path.join(output_dir, REPORT_FILE), "w") as f:
        json.dump(report, f, indent=2)
    logger.info("derived %s: estimated %.4f ms, measured %.4f ms, test acc %s",
                report["candidates"] or choices, report["estimated_latency_ms"],
                true_latency_ms, report["test_acc"])
    return report
