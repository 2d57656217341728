"""Calibration of layer-based latency estimates: the model and its fit.

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

Refused fits: a fit whose ``scale`` lies outside ``SCALE_BAND`` (layers cannot run 5x slower or
faster in context than alone: such a scale learned the load of one moment, or a fit in which
the layer sum plays no part), or in which the layer sum explains less than ``MIN_RAW_SHARE`` of
the calibrated latency (the rest being the per-layer and constant terms: the estimate would
become a layer count), is refused with a WARNING: the :class:`Calibration` returned is the
identity (``scale=1``, no overhead), so estimates stay uncalibrated, and :attr:`Calibration.refused`
says why. Its ``conditions`` record what the points were measured in (load, time, runs).

Fitting a calibration from measured networks, storing and reusing it, and wrapping an
estimator: :mod:`nas_hw.estimators.calibrated`.
"""
import logging
import math
from dataclasses import asdict, dataclass, field
from typing import Dict, Tuple

import numpy as np

from ..checks import check_time_scale
from ..constants import time_factor

logger = logging.getLogger(__name__)

PARAMETERS = ("scale", "per_layer", "const")
#: The sane band of ``scale``: outside it a fit is refused.
SCALE_BAND = (0.2, 5.0)
#: The least share of the calibrated latency (averaged over the points) the layer sum must
#: explain (``scale * raw / calibrated``); below it the fit is refused.
MIN_RAW_SHARE = 0.5
# Parameter sets tried in order when the data cannot identify all three.
FALLBACKS = (("scale", "per_layer", "const"), ("scale", "per_layer"), ("scale", "const"), ("scale",))
CALIBRATION_FORMAT = 2
#: Formats :meth:`Calibration.from_dict` reads (1: before ``refused`` and ``conditions``).
READABLE_FORMATS = (1, 2)


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
        refused: why the fit was refused ('' when it was not); a refused calibration is the
            identity (the estimates stay uncalibrated).
        conditions: what the points were measured in: ``measured_at`` (epoch s), ``n_run``,
            ``stat``, ``load1`` and ``disturbed`` per point, ``cores``, ``flagged_layers``
            (empty for a calibration fitted from given numbers).
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
    refused: str = ""
    conditions: Dict = field(default_factory=dict, compare=False)

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
        f = time_factor(self.unit, check_time_scale(unit, "unit"))
        return Calibration(self.scale, self.per_layer * f, self.const * f, self.n_points,
                           self.rms_residual * f, self.max_abs_residual * f, self.mape_fit_pct,
                           self.fingerprint, self.estimator, unit, self.fitted, self.dropped, self.note,
                           self.name, tuple((r * f, n, t * f) for r, n, t in self.points), self.refused,
                           dict(self.conditions))

    def to_dict(self):
        d = asdict(self)
        d["fitted"], d["dropped"] = list(self.fitted), list(self.dropped)
        d["points"] = [list(p) for p in self.points]
        d["format"] = CALIBRATION_FORMAT
        return d

    @classmethod
    def from_dict(cls, d):
        if not isinstance(d, dict) or d.get("format") not in READABLE_FORMATS:
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


def refusal(scale, per_layer, const, raw, n_layers):
    """Why a fit must be refused ('' when it is sane): ``scale`` outside :data:`SCALE_BAND`, or
    the layer sum explaining less than :data:`MIN_RAW_SHARE` of the calibrated latencies."""
    low, high = SCALE_BAND
    if not low <= scale <= high:
        return (f"scale {scale:.3g} is outside the sane band [{low:g}, {high:g}] (layers do not run that much "
                "slower or faster inside a network than alone: the points were measured under changing load, "
                "or the layer sum plays no part in the fit)")
    pred = scale * raw + per_layer * n_layers + const
    share = float(np.mean(scale * raw / pred))
    if share < MIN_RAW_SHARE:
        return (f"the layer sum explains only {100 * share:.0f}% of the calibrated latency (the per-layer and "
                f"constant terms the rest; at least {100 * MIN_RAW_SHARE:.0f}% expected): the estimate would "
                "follow the layer count, not the layers")
    return ""


def fit_calibration(raw, n_layers, true, fingerprint="", estimator="", unit="m", name="", conditions=None):
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

        conditions: what the points were measured in (stored with the calibration).

    Returns:
        Calibration: the fit, or the identity with ``refused`` set when the fit is degenerate
        (see :func:`refusal`; logged as a WARNING).

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
    refused = refusal(scale, per_layer, const, raw, n_layers)
    if refused:
        refused = (f"refused fit scale={scale:.4g}, per_layer={per_layer:.4g}{unit}s, const={const:.4g}{unit}s: "
                   f"{refused}")
        logger.warning("calibration %s %s; the estimates stay uncalibrated (scale 1, no overhead)",
                       name or estimator, refused)
        scale, per_layer, const = 1.0, 0.0, 0.0
    pred = scale * raw + per_layer * n_layers + const
    resid = pred - true
    return Calibration(scale=scale, per_layer=per_layer, const=const, n_points=len(raw),
                       rms_residual=float(math.sqrt(np.mean(resid ** 2))),
                       max_abs_residual=float(np.max(np.abs(resid))),
                       mape_fit_pct=float(np.mean(np.abs(resid) / true) * 100),
                       fingerprint=fingerprint, estimator=estimator, unit=unit,
                       fitted=tuple(params), dropped=dropped, note="; ".join(notes), name=name,
                       points=tuple((float(r), int(n), float(t)) for r, n, t in zip(raw, n_layers, true)),
                       refused=refused, conditions=dict(conditions or {}))


def calibration_summary(cal) -> Dict:
    """A small dict for reports."""
    return {"scale": cal.scale, "per_layer": cal.per_layer, "const": cal.const, "unit": cal.unit,
            "n_points": cal.n_points, "fitted": list(cal.fitted), "dropped": list(cal.dropped),
            "note": cal.note, "mape_fit_pct": cal.mape_fit_pct, "rms_residual": cal.rms_residual,
            "refused": cal.refused, "conditions": dict(cal.conditions)}
