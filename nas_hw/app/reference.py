"""The accuracy-only reference shown next to a hardware-aware search's result.

A newcomer sees what the latency penalty bought only next to what the same search finds
without it. At the end of ``nas-hw search`` (:func:`finish_run`, called by
:func:`nas_hw.app.pipeline.run_search`) the derived network's estimated and measured latency
and its accuracy are shown beside those of the *accuracy-only reference*: the same search
(space, data, search and retraining settings, seed, table, estimator, device) with
``latency=none``.

The reference is stored in the latency cache (blob kind ``accuracy_reference``) under the
device fingerprint and a key of those settings (:func:`reference_key`), so it is run at most
once per device and settings and reused by every later run:

* an accuracy-only run (``latency=none``) stores itself as the reference;
* ``reference.mode=auto`` runs the reference once, in ``<run>/reference/``, when none is
  stored (``make search`` does this);
* ``reference.mode=cached`` (the default) only reuses a stored reference and otherwise says
  how to get one, so a plain ``nas-hw search`` never runs a second search by itself;
* ``reference.mode=off`` skips it.

The measured latencies in the summary are not the ones each run took at its own end (a cached
reference was measured at another time, maybe under another load): both derived networks are
built again and timed now, side by side, interleaved, :data:`ROUNDS` rounds of
``estimator.n_run`` runs each, the median of the rounds (:func:`measure_side_by_side`).

``report.json`` gets a ``reference`` entry (``None`` when there is none) with those
side-by-side numbers under ``side_by_side``.
"""
import copy
import datetime
import hashlib
import json
import logging
import os
import statistics

import nnabla as nn
from hydra.utils import instantiate
from omegaconf import OmegaConf, open_dict

from ..checks import check_one_of
from ..errors import ConfigInputError
from ..files import atomic_write
from ..measure.store import open_cache
from .config import cache_location
from ..estimators.network import Profiler

logger = logging.getLogger(__name__)

KIND = "accuracy_reference"
MODES = ("auto", "cached", "off")
#: The config groups a reference must share with the run it is shown next to.
KEY_GROUPS = ("space", "data", "search", "retrain", "table", "estimator", "device", "seed")
#: Search settings that do not change what the search finds.
IGNORED_SEARCH_KEYS = ("resume", "checkpoint")
#: Callbacks kept in the reference's own run (they only write files; the others measure or
#: steer by the latency budget, which an accuracy-only run has not).
KEPT_CALLBACKS = ("nas_hw.nas.callbacks.CSVLogger", "nas_hw.nas.monitors.TensorBoardLogger")
#: The numbers a reference keeps (from its run's report).
FIELDS = ("choices", "candidates", "estimated_latency_ms", "true_latency_ms", "search_valid_acc",
          "valid_acc", "test_acc", "param_bytes", "flops")
#: Interleaved rounds of the side-by-side measurement.
ROUNDS = 5


def reference_mode(cfg):
    """``cfg.reference.mode`` checked (``cached`` when the config has no ``reference`` node)."""
    node = OmegaConf.select(cfg, "reference")
    mode = "cached" if node is None else node.get("mode", "cached")
    mode = getattr(mode, "value", mode)  # validated configs hold a ReferenceMode
    try:
        return check_one_of("mode", mode, MODES)
    except ValueError as err:
        raise ConfigInputError(f"reference.{err}") from None


def reference_settings(cfg):
    """The settings a reference is keyed by (see :data:`KEY_GROUPS`), as plain data."""
    settings = {}
    for group in KEY_GROUPS:
        node = OmegaConf.select(cfg, group)
        value = OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else node
        if group == "search" and isinstance(value, dict):
            value = {k: v for k, v in value.items() if k not in IGNORED_SEARCH_KEYS}
        settings[group] = value
    return settings


def reference_key(cfg):
    """A short hash of :func:`reference_settings`: runs that differ only in the latency penalty,
    the callbacks, the progress bar or the cache share their reference."""
    text = json.dumps(reference_settings(cfg), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def reference_config(cfg):
    """``cfg`` as its accuracy-only reference runs it: no penalty, no reference of its own,
    no resume, only the file-writing callbacks."""
    ref = copy.deepcopy(cfg)
    with open_dict(ref):
        ref.latency = None
        if OmegaConf.select(ref, "reference") is None:
            ref.reference = {"mode": "off"}
        else:
            ref.reference.mode = "off"
        ref.search.resume = None
        ref.callbacks = {name: node for name, node in cfg.callbacks.items()
                         if node is not None and node.get("_target_") in KEPT_CALLBACKS}
    return ref


def fingerprint_of(cfg):
    """The fingerprint key of the configured device and backend (what the latencies were
    measured on)."""
    from .pipeline import build_backend  # pipeline imports this module

    device = instantiate(cfg.device)
    backend = build_backend(OmegaConf.select(cfg, "backend"), device)
    return device.fingerprint.key if backend == "nnabla" else backend.fingerprint.key


def entry_of(report, run_dir):
    """What is stored of an accuracy-only run: its numbers, where it ran, when and under what load."""
    entry = {k: report.get(k) for k in FIELDS}
    entry.update(run_dir=os.path.abspath(run_dir), load_avg_1min=round(os.getloadavg()[0], 2),
                 finished=datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"))
    return entry


def _lookup(cfg, key, fingerprint):
    with open_cache(cache_location(cfg.cache)) as cache:
        return cache.get_blob(fingerprint, KIND, key)


def _store(cfg, key, fingerprint, entry, cfg_settings):
    with open_cache(cache_location(cfg.cache)) as cache:
        cache.put_blob(fingerprint, KIND, key, dict(entry, settings=cfg_settings))


def find_reference(cfg, report, output_dir, run_search):
    """The reference entry for the run of ``cfg`` (and where it came from), running it when
    ``reference.mode=auto`` and none is stored.

    Args:
        cfg: the run's config.
        report: the run's report.
        output_dir: the run's directory (the reference runs in its ``reference/``).
        run_search: ``(cfg, output_dir) -> report``, the search to run the reference with.

    Returns:
        dict or None: the entry with ``source`` (``this run``, ``cached`` or ``run now``), or
        ``None`` when none is stored and the mode does not run one.
    """
    mode = reference_mode(cfg)
    if mode == "off" or report.get("baseline") is not None:  # a baseline did not search
        return None
    key, fingerprint = reference_key(cfg), fingerprint_of(cfg)
    settings = reference_settings(cfg)
    if cfg.latency is None:  # this run is accuracy-only: it is the reference of its settings
        entry = entry_of(report, output_dir)
        _store(cfg, key, fingerprint, entry, settings)
        return dict(entry, source="this run", key=key)
    entry = _lookup(cfg, key, fingerprint)
    if entry is not None:
        entry.pop("settings", None)
        return dict(entry, source="cached", key=key)
    if mode == "cached":
        return None
    ref_dir = os.path.join(output_dir, "reference")
    logger.info("no accuracy-only reference stored for these settings on this device (key %s): "
                "running it once in %s (stored in the cache for later runs)", key, ref_dir)
    ref_report = run_search(reference_config(cfg), ref_dir)
    entry = entry_of(ref_report, ref_dir)
    _store(cfg, key, fingerprint, entry, settings)
    return dict(entry, source="run now", key=key)


def measure_side_by_side(cfg, choices, rounds=ROUNDS):
    """Measured latency (ms) of the derived networks of ``choices`` (a list of choice lists),
    timed now, interleaved: ``rounds`` rounds, each timing every network once with
    ``estimator.n_run`` runs, and the median of the rounds per network.

    Returns:
        dict: ``latency_ms`` (one per network), ``rounds``, ``n_run``, ``load_avg_1min``.
    """
    from .pipeline import setup  # pipeline imports this module

    s = setup(cfg)
    n_run = int(cfg.estimator.n_run)
    try:
        with nn.context_scope(s.device.context):
            outputs = []
            for c in choices:  # each graph built once, timed in every round
                net = s.model.derive(list(c))
                net.apply(training=False)
                outputs.append(net(nn.Variable(tuple(s.deploy_shape))))
            samples = [[] for _ in outputs]
            for _ in range(rounds):
                for out, times in zip(outputs, samples):
                    profiler = Profiler(out, device_id=s.device.device_id, ext_name=s.device.ext_name,
                                        n_run=n_run, n_warmup=3, per_function=False,
                                        backend=s.estimator.backend)
                    times.append(float(profiler.run()["forward_all"]))
    finally:
        s.cache.close()
    return {"latency_ms": [statistics.median(x) for x in samples], "rounds": rounds, "n_run": n_run,
            "load_avg_1min": round(os.getloadavg()[0], 2)}


def compare(cfg, report, reference, measure=measure_side_by_side):
    """``reference`` with ``side_by_side``: this run's and the reference's derived networks
    measured now, interleaved (see :func:`measure_side_by_side`); unchanged for a reference that
    is this run itself."""
    if reference is None or reference.get("source") == "this run":
        return reference
    timed = measure(cfg, [report["choices"], reference["choices"]])
    this_ms, reference_ms = timed.pop("latency_ms")
    return dict(reference, side_by_side=dict(timed, this_ms=this_ms, reference_ms=reference_ms))


def _fmt(value, spec):
    return "-" if value is None else format(value, spec)


def penalty_label(cfg):
    """How the run's latency term reads in the summary (``latency.weight=0.1`` ...)."""
    lat = cfg.latency
    baseline = OmegaConf.select(cfg, "search._target_", default="").rsplit(".", 1)[-1]
    if baseline in ("RandomArchitecture", "UniformArchitecture"):
        settings = {k: v for k, v in cfg.search.items() if not str(k).startswith("_")}
        return "baseline " + baseline + " (" + ", ".join(f"search.{k}={v}" for k, v in settings.items()) + ")"
    if lat is None:
        return "accuracy only (latency=none)"
    parts = [f"latency.mode={lat.mode}"] if lat.mode != "linear" else []
    if lat.mode != "log":
        parts.append(f"latency.weight={lat.weight:g}")
    if lat.get("target") is not None:
        parts.append(f"latency.target={lat.target:g}{lat.unit}s")
    return "hardware-aware (" + ", ".join(parts) + ")"


def summary(cfg, report):
    """The end-of-run summary: this run's derived network next to the accuracy-only reference."""
    ref = report.get("reference")
    shape = ",".join(str(s) for s in report["deploy_input_shape"])
    rows = [(penalty_label(cfg), report)]
    if ref is not None and ref.get("source") != "this run":
        rows.append(("accuracy-only reference (latency=none)", ref))
    side = (ref or {}).get("side_by_side")
    measured = [report.get("true_latency_ms")] if side is None else [side["this_ms"], side["reference_ms"]]
    head = ("", "estimated_ms", "measured_ms", "search_valid_acc", "test_acc")
    body = [(label, _fmt(r.get("estimated_latency_ms"), ".4f"), _fmt(m, ".4f"),
             _fmt(r.get("search_valid_acc"), ".4f"), _fmt(r.get("test_acc"), ".4f"))
            for (label, r), m in zip(rows, measured)]
    widths = [max(len(row[i]) for row in [head] + body) for i in range(len(head))]
    how = ("measured = whole network (Profiler) at the end of the run" if side is None else
           f"measured = both whole networks timed now, interleaved, median of {side['rounds']} rounds "
           f"of {side['n_run']} runs (load {side['load_avg_1min']})")
    where = report["ext_name"] if report.get("backend", "nnabla") == "nnabla" else f"{report['backend']} ({report['ext_name']})"
    lines = [f"derived network on {where} at input {shape} ({report['algorithm']}, "
             f"{report['data']}); estimated = candidate table, {how}:"]
    for row in [head] + body:
        lines.append("  " + "  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                                      for i, (c, w) in enumerate(zip(row, widths))).rstrip())
    flagged = report.get("flagged_rows") or []
    if flagged:
        lines.append(f"  WARNING: the candidate table used {len(flagged)} layer measurement(s) flagged disturbed "
                     "(taken on a busy machine): the estimated latencies are not clean; re-measure them with "
                     "`nas-hw cache verify --refresh --disturbed` on a quiet machine (report.json: flagged_rows)")
    if ref is None:
        if reference_mode(cfg) != "off" and report.get("baseline") is None:
            lines.append("  no accuracy-only reference stored for these settings on this device: add "
                         "reference.mode=auto (runs it once, then cached) or run the same command "
                         "with latency=none")
        return "\n".join(lines)
    if ref.get("source") == "this run":
        lines.append(f"  stored as the accuracy-only reference of these settings (key {ref['key']})")
        return "\n".join(lines)
    trade = []
    if report.get("estimated_latency_ms") and ref.get("estimated_latency_ms"):
        trade.append(f"estimated latency {report['estimated_latency_ms'] / ref['estimated_latency_ms']:.2f}x "
                     "the reference's")
    if side is not None and side["reference_ms"] > 0:
        trade.append(f"measured latency {side['this_ms'] / side['reference_ms']:.2f}x the reference's")
    for name in ("test_acc", "search_valid_acc"):
        if report.get(name) is not None and ref.get(name) is not None:
            trade.append(f"{name.replace('_', ' ')} {100 * (report[name] - ref[name]):+.2f} points")
            break
    if trade:
        lines.append("  trade-off: " + ", ".join(trade))
    lines.append(f"  reference: {ref['source']}, from {ref['run_dir']} (finished {ref['finished']})")
    return "\n".join(lines)


def finish_run(cfg, output_dir, report, run_search, report_file="report.json", measure=measure_side_by_side):
    """Adds the accuracy-only reference to ``report`` (see the module docstring), rewrites
    ``report_file`` in ``output_dir`` and logs the summary. Returns the report.

    Args:
        cfg, output_dir, report: the run's config, directory and report.
        run_search: ``(cfg, output_dir) -> report``, runs the reference when needed.
        report_file: the report's file name in ``output_dir``.
        measure: the side-by-side measurement (:func:`measure_side_by_side`; tests pass a fake).
    """
    report["reference"] = compare(cfg, report, find_reference(cfg, report, output_dir, run_search), measure)
    with atomic_write(os.path.join(output_dir, report_file)) as f:
        json.dump(report, f, indent=2)
    logger.info("%s", summary(cfg, report))
    return report
