"""Calibration of layer-based latency estimates against whole-network measurements.

A layer-based estimate sums layers timed one at a time. Inside a whole forward pass every
function also pays framework overhead (dispatch, memory allocation, cache effects) that
isolated timing never sees, and layers may run faster or slower than alone. On small inputs
that overhead dominates. :class:`Calibrator` fits the small physically meaningful model

    true_latency = scale * raw_sum + per_layer * n_layers + const

from at most a handful of whole-network measurements (nas_hw's network-based
:class:`~nas_hw.estimators.network.Profiler`), where ``raw_sum`` is the estimator's sum and
``n_layers`` the number of layers (non-noop entries of ``estimator.breakdown``) it summed.

* ``scale`` (dimensionless, >= 0): how much slower/faster layers run in context.
* ``per_layer`` (estimator unit per layer, >= 0): the per-function overhead.
* ``const`` (estimator unit, >= 0): what is paid once per forward.

Degenerate data: when the measured points cannot identify all three parameters (fewer points
than parameters, ``raw`` and ``n_layers`` collinear...), parameters are dropped in the fixed
order ``const`` then ``per_layer`` (the model falls back to ``scale, per_layer``, then
``scale, const``, then ``scale`` alone; when ``n_layers`` is the same for every point, a
per-layer cost cannot be told from a constant, so ``per_layer`` is dropped first and
``scale, const`` is fitted) and the result says so in
:attr:`Calibration.dropped` and :attr:`Calibration.note`, with a logged warning. It is never
silent. No data, or invalid data (non-finite, non-positive latencies), raises ``ValueError``.

Calibrations are stored in the latency cache (``put_blob(fingerprint, 'calibration', name)``)
and reused: a second :meth:`Calibrator.calibrate_space` on the same device, estimator and
space takes zero whole-network measurements (:attr:`Calibrator.n_measurements`).
"""
import hashlib
import json
import logging
import math
from dataclasses import asdict, dataclass, field
from typing import Dict, Optional, Tuple

import nnabla as nn
import numpy as np

from .cache import open_cache
from .estimators.network import Profiler
from .graph_utils import functions_of, init_unset_inputs, leaf_variables
from .timing import check_settings, scale_factor

logger = logging.getLogger(__name__)

BLOB_KIND = "calibration"
PARAMETERS = ("scale", "per_layer", "const")
# Parameter sets tried in order when the data cannot identify all three.
FALLBACKS = (("scale", "per_layer", "const"), ("scale", "per_layer"), ("scale", "const"), ("scale",))
STATS = ("median", "mean", "min")
CALIBRATION_FORMAT = 1


def n_layers_of(estimator):
    """Number of layers that ran a function in ``estimator``'s last estimate (no-ops excluded)."""
    return sum(1 for layer in estimator.breakdown if not layer.noop)


@dataclass(frozen=True)
class Calibration:
    """An affine correction of a layer-based latency estimate.

    ``calibrated = scale * raw + per_layer * n_layers + const`` in the estimator's ``unit``.

    Attributes:
        scale: multiplier of the raw layer sum (>= 0, dimensionless).
        per_layer: overhead per layer, in ``unit`` per layer (>= 0).
        const: fixed overhead per forward, in ``unit`` (>= 0).
        n_points: whole-network measurements the fit used.
        rms_residual: root-mean-square residual of the fit points, in ``unit``.
        max_abs_residual: largest absolute residual of the fit points, in ``unit``.
        mape_fit_pct: mean absolute percentage error on the fit points (in-sample, %).
        fingerprint: the device key the calibration belongs to.
        estimator: the estimator class name (``LatencyGraphEstimator``, ``LatencyEstimator``).
        unit: the time scale ('m', 'u', 'n') of ``per_layer``, ``const`` and residuals.
        fitted: the parameters actually fitted (all three unless the data was degenerate).
        dropped: parameters the data could not identify, fixed at 0.
        note: why parameters were dropped, or which bounds were active ('' when neither).
        name: the cache name it is stored under.
        points: the fit data ``[(raw, n_layers, true), ...]`` in ``unit``.
    """

    scale: float
    per_layer: float
    const: float
    n_points: int
    rms_residual: float
    max_abs_residual: float
    mape_fit_pct: float
    fingerprint: str
    estimator: str
    unit: str = "m"
    fitted: Tuple[str, ...] = PARAMETERS
    dropped: Tuple[str, ...] = ()
    note: str = ""
    name: str = ""
    points: Tuple[Tuple[float, int, float], ...] = field(default_factory=tuple)

    @property
    def degenerate(self):
        """True when some parameters could not be identified and were fixed at 0."""
        return bool(self.dropped)

    def apply(self, raw, n_layers):
        """The calibrated latency of a network whose raw layer sum is ``raw`` over ``n_layers``."""
        return self.scale * float(raw) + self.per_layer * float(n_layers) + self.const

    def check_compatible(self, fingerprint=None, estimator=None, unit=None):
        """Raises ``ValueError`` when used with another device, estimator class or unit."""
        if fingerprint is not None and fingerprint != self.fingerprint:
            raise ValueError(f"calibration was fitted on device {self.fingerprint!r}, cannot be applied to "
                             f"{fingerprint!r}: calibrate on that device")
        if estimator is not None and estimator != self.estimator:
            raise ValueError(f"calibration was fitted for {self.estimator}, cannot be applied to {estimator}")
        if unit is not None and unit != self.unit:
            raise ValueError(f"calibration is in time_scale {self.unit!r}, the estimates are in {unit!r}: "
                             "use the same time_scale or convert with .to_unit()")

    def to_unit(self, unit):
        """The same calibration expressed in another time scale."""
        f = scale_factor(unit) / scale_factor(self.unit)
        return Calibration(self.scale, self.per_layer * f, self.const * f, self.n_points,
                           self.rms_residual * f, self.max_abs_residual * f, self.mape_fit_pct,
                           self.fingerprint, self.estimator, unit, self.fitted, self.dropped, self.note,
                           self.name, tuple((r * f, n, t * f) for r, n, t in self.points))

    def to_dict(self):
        d = asdict(self)
        d["fitted"], d["dropped"] = list(self.fitted), list(self.dropped)
        d["points"] = [list(p) for p in self.points]
        d["format"] = CALIBRATION_FORMAT
        return d

    @classmethod
    def from_dict(cls, d):
        if not isinstance(d, dict) or d.get("format") != CALIBRATION_FORMAT:
            raise ValueError(f"not a nas_hw calibration (format {CALIBRATION_FORMAT} expected): {d!r}")
        d = dict(d)
        d.pop("format")
        d["fitted"], d["dropped"] = tuple(d["fitted"]), tuple(d["dropped"])
        d["points"] = tuple((float(r), int(n), float(t)) for r, n, t in d["points"])
        return cls(**d)


def _check_points(raw, n_layers, true):
    raw = np.asarray(raw, dtype=np.float64).reshape(-1)
    n_layers = np.asarray(n_layers, dtype=np.float64).reshape(-1)
    true = np.asarray(true, dtype=np.float64).reshape(-1)
    if not (len(raw) == len(n_layers) == len(true)):
        raise ValueError(f"raw, n_layers and true must have the same length, got {len(raw)}, "
                         f"{len(n_layers)}, {len(true)}")
    if len(raw) == 0:
        raise ValueError("cannot calibrate from zero points: measure at least one network")
    for name, arr in (("raw", raw), ("n_layers", n_layers), ("true", true)):
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{name} must be finite, got {arr.tolist()}")
    if np.any(raw <= 0) or np.any(true <= 0):
        raise ValueError(f"raw and true latencies must be > 0, got raw={raw.tolist()} true={true.tolist()}")
    if np.any(n_layers < 0) or np.any(n_layers != np.round(n_layers)):
        raise ValueError(f"n_layers must be non-negative integers, got {n_layers.tolist()}")
    return raw, n_layers, true


def _identifiable(design, rtol=1e-6):
    """True when the columns of ``design`` are linearly independent: at least as many rows as
    columns and a smallest singular value (of the column-normalised matrix) above ``rtol``
    times the largest."""
    if design.shape[0] < design.shape[1]:
        return False
    norms = np.linalg.norm(design, axis=0)
    if np.any(norms == 0):
        return False
    s = np.linalg.svd(design / norms, compute_uv=False)
    return bool(s[-1] > rtol * s[0])


def fit_calibration(raw, n_layers, true, fingerprint="", estimator="", unit="m", name=""):
    """Least-squares fit of ``true ~ scale*raw + per_layer*n_layers + const``.

    Bounds: ``scale >= 0``, ``per_layer >= 0``, ``const >= 0`` (each is a cost: a negative
    value would only be a noisy fit compensating another parameter). The fit is weighted by
    ``1/true`` so it minimises *relative* errors (a 10% miss on a small network counts as
    much as on a large one). Parameters the data cannot identify are dropped (see the module
    docstring) and reported in the result.

    Args:
        raw: raw layer sums, one per network (``unit``).
        n_layers: layers summed for each network.
        true: measured whole-network latencies (``unit``).
        fingerprint, estimator, unit, name: recorded in the result.

    Returns:
        Calibration

    Raises:
        ValueError: no points, mismatched lengths, non-finite or non-positive latencies.
    """
    from scipy.optimize import lsq_linear

    raw, n_layers, true = _check_points(raw, n_layers, true)
    columns = {"scale": raw, "per_layer": n_layers, "const": np.ones_like(raw)}
    reasons = []
    constant_n = len(raw) > 1 and np.ptp(n_layers) == 0
    if constant_n:
        reasons.append("n_layers is the same for every point, so a per-layer cost cannot be told "
                       "from a constant one")
    for params in FALLBACKS:
        if constant_n and "per_layer" in params:
            continue
        design = np.stack([columns[p] for p in params], axis=1)
        if _identifiable(design):
            break
        reasons.append(f"{'+'.join(params)} not identifiable from {len(raw)} point(s)")
    else:  # scale alone is identifiable whenever raw > 0, which _check_points enforces
        raise ValueError("cannot calibrate: even scale alone is not identifiable")
    w = 1.0 / true
    lower = [0.0] * len(params)
    res = lsq_linear(design * w[:, None], true * w, bounds=(lower, [np.inf] * len(params)), method="bvls")
    if not res.success:
        raise ValueError(f"calibration least squares failed: {res.message}")
    # BVLS may land a round-off below a bound (-2e-19): the documented parameters are >= 0.
    values = dict(zip(params, (max(float(v), lo) for v, lo in zip(res.x, lower))))
    active = [p for p, v, lo in zip(params, res.x, lower) if v <= lo + 1e-15]
    dropped = tuple(p for p in PARAMETERS if p not in params)
    notes = []
    if dropped:
        notes.append("; ".join(reasons) + f": fitted {', '.join(params)} only, {', '.join(dropped)} fixed at 0")
        logger.warning("degenerate calibration data (%s): %s", name or estimator, notes[-1])
    if active:
        notes.append(f"bound active: {', '.join(active)} = 0")
        logger.info("calibration %s: bound active for %s", name or estimator, active)
    scale = values.get("scale", 0.0)
    per_layer = values.get("per_layer", 0.0)
    const = values.get("const", 0.0)
    pred = scale * raw + per_layer * n_layers + const
    resid = pred - true
    return Calibration(scale=scale, per_layer=per_layer, const=const, n_points=len(raw),
                       rms_residual=float(math.sqrt(np.mean(resid ** 2))),
                       max_abs_residual=float(np.max(np.abs(resid))),
                       mape_fit_pct=float(np.mean(np.abs(resid) / true) * 100),
                       fingerprint=fingerprint, estimator=estimator, unit=unit,
                       fitted=tuple(params), dropped=dropped, note="; ".join(notes), name=name,
                       points=tuple((float(r), int(n), float(t)) for r, n, t in zip(raw, n_layers, true)))


def _is_module_estimator(estimator):
    """nas_hw's LatencyEstimator walks Modules; LatencyGraphEstimator walks graphs."""
    return type(estimator).__name__ == "LatencyEstimator" or (
        hasattr(estimator, "_module_cost") and not hasattr(estimator, "_estimate_built"))


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


def raw_estimate(estimator, net=None, out=None, x=None):
    """``(raw, n_layers)`` of a built network with a nas_hw layer-based estimator.

    The graph estimator reads the output Variable ``out`` (its input ``x`` carries the batch
    axis); the module estimator reads the Module ``net``.
    """
    if _is_module_estimator(estimator):
        if net is None:
            raise ValueError(f"{type(estimator).__name__} estimates Modules: pass net=")
        raw = estimator.get_estimation(net)
    else:
        if out is None:
            raise ValueError(f"{type(estimator).__name__} estimates graphs: pass out= (the output Variable)")
        raw = estimator.get_estimation(out, inputs=None if x is None else [x])
    return float(raw), n_layers_of(estimator)


class Calibrator:
    """Fits, stores and reuses a :class:`Calibration` for one layer-based estimator.

    Args:
        estimator: a nas_hw ``LatencyGraphEstimator`` or ``LatencyEstimator`` (its device,
            ``time_scale`` and cache are used).
        n_run: timed forwards per whole-network measurement.
        n_warmup: untimed forwards first.
        max_measure_execution_time: time budget in seconds per whole-network measurement.
        stat: statistic of the whole-network runs taken as the true latency
            (``median``, ``mean`` or ``min``).
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

    def __init__(self, estimator, n_run=30, n_warmup=5, max_measure_execution_time=60.0, stat="median",
                 max_points=5, cache=None):
        if not hasattr(estimator, "time_scale") or not hasattr(estimator, "cache"):
            raise TypeError(f"estimator must be a nas_hw LatencyGraphEstimator or LatencyEstimator, "
                            f"got {type(estimator).__name__}")
        if stat not in STATS:
            raise ValueError(f"stat must be one of {STATS}, got {stat!r}")
        if not isinstance(max_points, int) or isinstance(max_points, bool) or max_points < 1:
            raise ValueError(f"max_points must be an integer >= 1, got {max_points!r}")
        check_settings(n_run, n_warmup, max_measure_execution_time)
        self.estimator = estimator
        self.n_run = n_run
        self.n_warmup = n_warmup
        self.max_measure_execution_time = max_measure_execution_time
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
        return None if payload is None else Calibration.from_dict(payload)

    def store(self, calibration):
        self.cache.put_blob(calibration.fingerprint, BLOB_KIND, calibration.name, calibration.to_dict())

    # -- measuring ----------------------------------------------------------------------------
    def measure_true(self, out):
        """Whole-network latency of the graph ending in ``out`` (``stat`` of ``n_run`` forwards,
        in the estimator's unit). Counts one measurement."""
        prof = Profiler(out, device_id=self.estimator.device_id, ext_name=self.estimator.ext_name,
                        n_run=self.n_run, n_warmup=self.n_warmup,
                        max_measure_execution_time=self.max_measure_execution_time,
                        time_scale=self.unit, per_function=False)
        with nn.context_scope(self.estimator.ctx):
            result = prof.run()
        self.n_measurements += 1
        return result["forward_all_stats"].to(self.unit, self.stat)

    def _fit_and_store(self, points, name):
        raw, n, true = zip(*points)
        cal = fit_calibration(raw, n, true, fingerprint=self.fingerprint, estimator=self.estimator_name,
                              unit=self.unit, name=name)
        self.store(cal)
        logger.info("calibration %s: scale=%.4g per_layer=%.4g%ss const=%.4g%ss from %d network(s)%s",
                    name, cal.scale, cal.per_layer, cal.unit, cal.const, cal.unit, cal.n_points,
                    f" ({cal.note})" if cal.note else "")
        return cal

    def _check_count(self, n):
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
        self._check_count(len(nets))
        points = []
        for net in nets:
            x, out = build_inference_graph(net, input_shape)
            raw, n = raw_estimate(self.estimator, net=net, out=out, x=x)
            points.append((raw, n, self.measure_true(out)))
        return self._fit_and_store(points, key)

    def calibrate_graphs(self, graphs, name, refresh=False):
        """Calibrates the graph estimator on given output Variables (built in inference mode)."""
        if _is_module_estimator(self.estimator):
            raise ValueError(f"{self.estimator_name} estimates Modules: use calibrate_networks or calibrate_space")
        key = self.cache_name(name)
        if not refresh:
            cal = self.load(key)
            if cal is not None:
                return cal
        graphs = list(graphs)
        self._check_count(len(graphs))
        points = []
        for out in graphs:
            raw, n = raw_estimate(self.estimator, out=out)
            points.append((raw, n, self.measure_true(out)))
        return self._fit_and_store(points, key)

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
        self._check_count(n_points)
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
            raw, n = raw_estimate(self.estimator, net=net, out=out, x=x)
            points.append((raw, n, self.measure_true(out)))
        return self._fit_and_store(points, key)


class CalibratedEstimator:
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
        self.last_n_layers = n_layers_of(self.estimator)
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


def calibration_summary(cal) -> Dict:
    """A small dict for reports."""
    return {"scale": cal.scale, "per_layer": cal.per_layer, "const": cal.const, "unit": cal.unit,
            "n_points": cal.n_points, "fitted": list(cal.fitted), "dropped": list(cal.dropped),
            "note": cal.note, "mape_fit_pct": cal.mape_fit_pct, "rms_residual": cal.rms_residual}
