"""Calibrating an estimator on whole-network measurements, and calibrated estimates.

:class:`Calibrator` measures at most a handful of whole networks with nas_hw's network-based
:class:`~nas_hw.estimators.network.Profiler`, fits a :class:`~nas_hw.estimators.calibration.Calibration`
and stores it in the latency cache (``put_blob(fingerprint, 'calibration', name)``); a second
call on the same device, estimator and space takes zero whole-network measurements
(:attr:`Calibrator.n_measurements`). :class:`CalibratedEstimator` wraps an estimator.
"""
import hashlib
import json
import logging
import time
from typing import Optional

import nnabla as nn
import numpy as np

from ..checks import check_int, check_one_of
from ..measure.graph import functions_of, init_unset_inputs, leaf_variables
from ..measure.store import open_cache
from ..measure.timing import TimedSettings
from .base import Estimator
from ..measure.load import cores
from .calibration import Calibration, fit_calibration
from .layer import LayerEstimator
from .network import Profiler

logger = logging.getLogger(__name__)

BLOB_KIND = "calibration"
#: Statistics of the whole-network runs a Calibrator may take as the true latency ('value': the
#: timing core's robust statistic, the one every layer latency is; the default).
STATS = ("value", "median", "mean", "min")


def space_id(space):
    """A short stable id of a space's constructor arguments (choices, mode and name excluded)."""
    config = dict(getattr(space, "config", {}) or {})
    for k in ("choices", "mode", "name"):
        config.pop(k, None)
    text = json.dumps({"class": type(space).__name__, "config": config}, sort_keys=True, default=str)
    return f"{type(space).__name__}-{hashlib.sha1(text.encode()).hexdigest()[:12]}"


def random_choices(space, rng):
    """One random candidate index per choice group of ``space``."""
    return [int(rng.randint(len(names))) for names in space.candidate_names_per_group]


def build_inference_graph(net, input_shape):
    """Puts ``net`` in inference mode, builds its graph on a zeroed input of ``input_shape`` and
    runs one forward (so every variable holds data: estimators read dtypes from them).

    Returns:
        (input Variable, output Variable)
    """
    net.apply(training=False)
    x = nn.Variable(tuple(int(d) for d in input_shape), need_grad=False)
    x.data.zero()
    with nn.auto_forward(False):
        out = net(x)
    if isinstance(out, (list, tuple)):
        raise ValueError("calibration needs a network with a single output")
    init_unset_inputs(leaf_variables(functions_of(out)))
    out.forward(clear_no_need_grad=True)
    return x, out


def raw_estimate(estimator, net, out, x):
    """``(raw, n_layers)`` of a built network (``net`` built on ``x``, output ``out``) with a
    nas_hw layer-based estimator."""
    raw = estimator.estimate_network(net, out, None if x is None else [x])
    return float(raw), estimator.n_layers


def _point(estimator, net, out, x, true_stats, unit, stat):
    """One calibration point: raw sum, layer count, true latency, and what it was measured in."""
    raw, n = raw_estimate(estimator, net, out, x)
    return {"raw": raw, "n_layers": n, "true": true_stats.to(unit, stat), "load1": true_stats.load1,
            "true_disturbed": bool(true_stats.disturbed), "flagged_layers": len(estimator.flagged)}


class Calibrator(TimedSettings):
    """Fits, stores and reuses a :class:`Calibration` for one layer-based estimator.

    Args:
        estimator: a nas_hw ``LatencyGraphEstimator`` or ``LatencyEstimator`` (its device,
            ``time_scale`` and cache are used).
        n_run: timed forwards per whole-network measurement.
        n_warmup: untimed forwards first.
        max_measure_execution_time: time budget in seconds per whole-network measurement.
        stat: statistic of the whole-network runs taken as the true latency: ``value`` (the
            default: the timing core's robust statistic, the same as every layer latency),
            ``median``, ``mean`` or ``min``.
        max_points: the most networks measured for one calibration.
        cache: where calibrations are stored; ``None`` uses the estimator's cache.

    Attributes:
        n_measurements: whole-network measurements this calibrator has taken (0 when every
            calibration came from the cache).

    Example:
        >>> est = LatencyGraphEstimator(ext_name="cpu")
        >>> cal = Calibrator(est).calibrate_space(MobileNetSpace(in_channels=3), (1, 3, 32, 32))
        >>> calibrated_ms = CalibratedEstimator(est, cal).get_estimation(out)
    """

    def __init__(self, estimator, n_run=30, n_warmup=5, max_measure_execution_time=60.0, stat="value",
                 max_points=5, cache=None):
        if not isinstance(estimator, LayerEstimator):
            raise TypeError(f"estimator must be a nas_hw LatencyGraphEstimator or LatencyEstimator, "
                            f"got {type(estimator).__name__}")
        check_one_of("stat", stat, STATS)
        check_int("max_points", max_points, low=1)
        self._init_timing(n_run, n_warmup, max_measure_execution_time, 0.0, estimator.time_scale)
        self.estimator = estimator
        self.stat = stat
        self.max_points = max_points
        self.cache = estimator.cache if cache is None else open_cache(cache)
        self.n_measurements = 0

    @property
    def unit(self):
        return self.estimator.time_scale

    @property
    def fingerprint(self):
        return self.estimator.fingerprint_key

    @property
    def estimator_name(self):
        return type(self.estimator).__name__

    # -- cache ----------------------------------------------------------------------------
    def cache_name(self, what, input_shape=None):
        """The blob name a calibration is stored under: estimator, what it covers, input shape,
        batch size and unit."""
        shape = "" if input_shape is None else "x".join(str(int(d)) for d in input_shape)
        return f"{self.estimator_name}|{what}|input={shape}|bs={self.estimator.batch_size}|unit={self.unit}"

    def load(self, name):
        """The stored calibration called ``name`` for this device, or ``None``."""
        payload = self.cache.get_blob(self.fingerprint, BLOB_KIND, name)
        if payload is None:
            return None
        cal = Calibration.from_dict(payload)
        if cal.refused:
            logger.warning("the stored calibration %s was refused (%s): the estimates stay uncalibrated; "
                           "calibrate again on a quiet machine (refresh)", name, cal.refused)
        return cal

    def store(self, calibration):
        self.cache.put_blob(calibration.fingerprint, BLOB_KIND, calibration.name, calibration.to_dict())

    # -- measuring ----------------------------------------------------------------------------
    def measure_true_stats(self, out):
        """Whole-network :class:`~nas_hw.measure.timing.TimingStats` (seconds) of the graph ending
        in ``out`` (``n_run`` forwards through the timing core). Counts one measurement."""
        prof = Profiler(out, device_id=self.estimator.device_id, ext_name=self.estimator.ext_name,
                        n_run=self.n_run, n_warmup=self.n_warmup,
                        max_measure_execution_time=self.max_measure_execution_time,
                        time_scale=self.unit, per_function=False, backend=self.estimator.backend)
        with nn.context_scope(self.estimator.ctx):
            result = prof.run()
        self.n_measurements += 1
        return result["forward_all_stats"]

    def measure_true(self, out):
        """Whole-network latency of the graph ending in ``out`` (``stat`` of ``n_run`` forwards,
        in the estimator's unit). Counts one measurement."""
        return self.measure_true_stats(out).to(self.unit, self.stat)

    def _measure_point(self, net, out, x):
        return _point(self.estimator, net, out, x, self.measure_true_stats(out), self.unit, self.stat)

    def _fit_and_store(self, points, name):
        """Fits on the points measured clean (a point whose true latency stayed disturbed, or whose
        layer sum used rows flagged disturbed, is left out with a WARNING); with none left the
        calibration is refused (the identity). Stores the result with the conditions."""
        conditions = {"measured_at": time.time(), "n_run": self.n_run, "stat": self.stat, "cores": cores(),
                      "load1": [p["load1"] for p in points],
                      "disturbed": [p["true_disturbed"] or p["flagged_layers"] > 0 for p in points],
                      "flagged_layers": sum(p["flagged_layers"] for p in points)}
        clean = [p for p, bad in zip(points, conditions["disturbed"]) if not bad]
        if len(clean) < len(points):
            logger.warning("calibration %s: %d of %d point(s) measured disturbed on a busy machine (true latency "
                           "disturbed, or layer rows flagged): left out of the fit", name,
                           len(points) - len(clean), len(points))
        if not clean:
            reason = "every point was measured disturbed (a busy machine): nothing clean to fit"
            logger.warning("calibration %s refused: %s; the estimates stay uncalibrated", name, reason)
            resid = np.array([p["raw"] - p["true"] for p in points])  # the identity's residuals
            cal = Calibration(scale=1.0, per_layer=0.0, const=0.0, n_points=0,
                              rms_residual=float(np.sqrt(np.mean(resid ** 2))),
                              max_abs_residual=float(np.max(np.abs(resid))),
                              mape_fit_pct=float(np.mean([abs(r) / p["true"] for r, p in zip(resid, points)]) * 100),
                              fingerprint=self.fingerprint, estimator=self.estimator_name, unit=self.unit,
                              fitted=(), dropped=(), name=name,
                              points=tuple((p["raw"], p["n_layers"], p["true"]) for p in points),
                              refused=reason, conditions=conditions)
            self.store(cal)
            return cal
        cal = fit_calibration([p["raw"] for p in clean], [p["n_layers"] for p in clean], [p["true"] for p in clean],
                              fingerprint=self.fingerprint, estimator=self.estimator_name, unit=self.unit,
                              name=name, conditions=conditions)
        self.store(cal)
        logger.info("calibration %s: scale=%.4g per_layer=%.4g%ss const=%.4g%ss from %d network(s)%s",
                    name, cal.scale, cal.per_layer, cal.unit, cal.const, cal.unit, cal.n_points,
                    f" ({cal.note})" if cal.note else "")
        return cal

    def check_count(self, n):
        """Raises ``ValueError`` unless ``n`` networks may be measured for one calibration."""
        if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= self.max_points:
            raise ValueError(f"number of calibration networks must be an integer in [1, {self.max_points}], got {n!r}")

    # -- entry points ---------------------------------------------------------------------------
    def calibrate_networks(self, nets, input_shape, name, refresh=False):
        """Calibrates on fixed networks (nnabla_nas-style Modules), measured at ``input_shape``.

        Args:
            nets: at most ``max_points`` networks with a single output.
            input_shape: the input shape, batch axis included.
            name: what the networks stand for (part of the cache name).
            refresh: measure again even if a calibration is stored.
        """
        key = self.cache_name(name, input_shape)
        if not refresh:
            cal = self.load(key)
            if cal is not None:
                return cal
        nets = list(nets)
        self.check_count(len(nets))
        points = []
        for net in nets:
            x, out = build_inference_graph(net, input_shape)
            points.append(self._measure_point(net, out, x))
        return self._fit_and_store(points, key)

    def calibrate_graphs(self, graphs, name, refresh=False):
        """Calibrates the graph estimator on given output Variables (built in inference mode).
        A module estimator refuses (it needs the Modules: use :meth:`calibrate_networks`)."""
        key = self.cache_name(name)
        if not refresh:
            cal = self.load(key)
            if cal is not None:
                return cal
        graphs = list(graphs)
        self.check_count(len(graphs))
        points = []
        for out in graphs:
            points.append(self._measure_point(None, out, None))
        return self._fit_and_store(points, key)

    def stored_for_space(self, space, input_shape):
        """The calibration stored for ``space`` at ``input_shape`` on this device, or ``None``
        (nothing is measured)."""
        return self.load(self.cache_name(space_id(space), input_shape))

    def calibrate_space(self, space, input_shape, n_points=5, seed=0, exclude=(), refresh=False):
        """Calibrates on ``n_points`` random fixed subnetworks of ``space``.

        Args:
            space: a search space with ``candidate_names_per_group`` and ``derive(choices)``
                (:class:`~nas_hw.search.spaces.MobileNetSpace`, ``DartsSpace``).
            input_shape: the input shape, batch axis included.
            n_points: networks measured (at most ``max_points``).
            seed: seed of the choice sampling.
            exclude: choice lists never sampled (e.g. the networks you evaluate on).
            refresh: measure again even if a calibration is stored.

        Returns:
            Calibration: stored in the cache; reused (no measurement) on the next call.
        """
        if not hasattr(space, "derive") or not hasattr(space, "candidate_names_per_group"):
            raise TypeError(f"space must offer derive(choices) and candidate_names_per_group, got {type(space).__name__}")
        self.check_count(n_points)
        key = self.cache_name(space_id(space), input_shape)
        if not refresh:
            cal = self.load(key)
            if cal is not None:
                logger.info("calibration %s reused from the cache", key)
                return cal
        excluded = {tuple(int(c) for c in ch) for ch in exclude}
        rng = np.random.RandomState(seed)
        chosen, tries = [], 0
        while len(chosen) < n_points:
            ch = tuple(random_choices(space, rng))
            tries += 1
            if ch not in excluded and ch not in chosen:
                chosen.append(ch)
            elif tries > 1000 * n_points:
                raise ValueError(f"space has too few distinct subnetworks outside exclude to draw {n_points}")
        points = []
        for ch in chosen:
            net = space.derive(list(ch))
            x, out = build_inference_graph(net, input_shape)
            points.append(self._measure_point(net, out, x))
        return self._fit_and_store(points, key)


class CalibratedEstimator(Estimator):
    """A layer-based estimator whose estimates are calibrated.

    ``get_estimation`` returns ``calibration.apply(raw, n_layers)``; the raw layer sum and the
    layer count of the last call stay available as :attr:`last_raw` and :attr:`last_n_layers`.
    Everything else (``breakdown``, ``cache``, ``time_scale``...) is the wrapped estimator's.

    Args:
        estimator: a nas_hw ``LatencyGraphEstimator`` or ``LatencyEstimator``.
        calibration: a :class:`Calibration` fitted for this estimator class, device and unit.

    Raises:
        ValueError: the calibration belongs to another device, estimator class or unit.
    """

    def __init__(self, estimator, calibration):
        calibration.check_compatible(estimator.fingerprint_key, type(estimator).__name__, estimator.time_scale)
        self.estimator = estimator
        self.calibration = calibration
        self.last_raw: Optional[float] = None
        self.last_n_layers: Optional[int] = None

    def _calibrated(self, raw):
        self.last_raw = float(raw)
        self.last_n_layers = self.estimator.n_layers
        return self.calibration.apply(self.last_raw, self.last_n_layers)

    def get_estimation(self, *args, **kwargs):
        """Calibrated latency (the wrapped estimator's arguments), in its ``time_scale``."""
        return self._calibrated(self.estimator.get_estimation(*args, **kwargs))

    def estimate_module(self, module, input_shapes):
        """Calibrated latency of ``module`` called on inputs of ``input_shapes``."""
        return self._calibrated(self.estimator.estimate_module(module, input_shapes))

    def __getattr__(self, name):
        if name in ("estimator", "calibration"):
            raise AttributeError(name)
        return getattr(self.estimator, name)

    def __repr__(self):
        c = self.calibration
        return (f"CalibratedEstimator({type(self.estimator).__name__}, scale={c.scale:.4g}, "
                f"per_layer={c.per_layer:.4g}{c.unit}s, const={c.const:.4g}{c.unit}s)")
