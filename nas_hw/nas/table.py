"""``CandidateTable``: the cost of every candidate of every choice point, measured once.

Latency of a subnetwork = ``fixed`` (everything outside the choice points) + the cost of the
chosen candidate at each choice point. Every query is table arithmetic: no graph work.
"""
import hashlib
import json
import logging
import os

import nnabla as nn
import numpy as np
from tqdm import tqdm

from .. import nnabla_nas_compat as nnas
from ..checks import check_time_scale
from ..constants import BACKENDS, time_factor
from ..errors import MeasurementError
from ..files import atomic_write
from ..estimators.layer import LayerEstimator
from ..estimators.params import parameter_bytes
from ..measure.backends import backend_from_settings
from .choices import derivation_rule, find_choice_points, fixed_choices, group_alphas
from .outside import outside_functions

logger = logging.getLogger(__name__)

TABLE_FORMAT = 1


def param_bytes(module):
    """Bytes of all parameters of ``module`` as float32 (each counted once)."""
    return parameter_bytes(module, "float32", active_only=False)


def _complete(estimator, value, what):
    """``value`` if the estimate left no layer out; with ``on_error='warn'`` a failed layer is
    excluded from the sum, and a table built on such a sum would be silently too cheap."""
    failures = estimator.failures
    if failures:
        raise MeasurementError(f"cannot tabulate {what}: {len(failures)} layer(s) could not be measured "
                               f"({failures[0].name}: {failures[0].error})", layer=failures[0].name,
                               signature=failures[0].signature)
    return value


def _prepare(model, estimator, input_shape):
    """Checks the estimator, builds the model's graph at ``input_shape`` (every choice point on its
    first candidate) and returns ``(choice points, the model's input shapes)``."""
    if not isinstance(estimator, LayerEstimator):
        raise TypeError(f"estimator must be a nas_hw layer-based latency estimator (LatencyGraphEstimator "
                        f"or LatencyEstimator), got {type(estimator).__name__}")
    points = find_choice_points(model, require_shapes=input_shape is None)
    if not points:
        raise ValueError(f"{type(model).__name__} has no choice points (MixedOps) to tabulate")
    if input_shape is not None:
        input_shape = tuple(int(d) for d in input_shape)
        if input_shape[0] != estimator.batch_size:
            # the estimator measures at its own batch_size; silently measuring another batch than
            # the one asked for would give a table for the wrong deployment
            raise ValueError(f"input_shape batch {input_shape[0]} differs from the estimator's "
                             f"batch_size={estimator.batch_size}: build the estimator with "
                             f"batch_size={input_shape[0]}")
        with fixed_choices(points, [0] * len(points)), nn.auto_forward(False):
            model(nn.Variable(input_shape, need_grad=False))
        points = find_choice_points(model)
    return points, [tuple(s) for s in model.input_shapes]


def _note_flagged(flagged, estimator, where):
    """Adds the flagged layers of ``estimator``'s last estimate to ``flagged`` (by signature)."""
    for layer in getattr(estimator, "flagged", ()):
        flagged.setdefault(layer.signature, {"where": where, "layer": layer.name, "signature": layer.signature})


def _softmax(a):
    a = np.asarray(a, dtype=np.float64).reshape(-1)
    e = np.exp(a - a.max())
    return e / e.sum()


class CandidateTable:
    """Per-candidate costs of a search space.

    Attributes:
        costs: ``{metric: [np.ndarray per choice point]}``; latency in ``unit``, bytes for
            ``param_bytes``.
        fixed: ``{metric: cost of everything outside the choice points}``.
        groups: the architecture-parameter group of each choice point.
        names: choice point names; ``candidate_names`` the candidates' class names.
        unit: the latency unit ('m', 'u', 'n' as the estimator's ``time_scale``).
        fingerprint: the device the latencies were measured on.
        flagged: the layer measurements the latencies used that are flagged disturbed (taken
            on a busy machine): ``[{"where", "layer", "signature"}]``, empty when all are clean.
        backend: the measuring backend the latencies come from (the estimator's; a table read
            back gets one built from the settings it was saved with): whole networks derived
            from the table are measured on it too.
    """

    def __init__(self, costs, fixed, groups, names, candidate_names, unit="m", fingerprint="",
                 space_key="", input_shape=None, flagged=(), backend="nnabla"):
        check_time_scale(unit, "unit")
        self.costs = _check_costs(costs)
        self.fixed = _check_fixed(fixed, self.costs)
        n_points = len(self.costs["latency"])
        if (isinstance(groups, (str, bytes)) or not hasattr(groups, "__len__") or len(groups) != n_points
                or any(isinstance(g, bool) or not isinstance(g, (int, np.integer)) or g < 0 for g in groups)):
            raise ValueError(f"groups must hold one integer >= 0 per choice point ({n_points}), got {groups!r}")
        self.groups = [int(g) for g in groups]
        if sorted(set(self.groups)) != list(range(len(set(self.groups)))):
            raise ValueError(f"groups must number the groups 0..n-1 without gaps, got {self.groups}")
        if isinstance(names, (str, bytes)) or not hasattr(names, "__len__") or len(names) != n_points:
            raise ValueError(f"names must hold one name per choice point ({n_points}), got {names!r}")
        self.names = list(names)
        sizes = [len(c) for c in self.costs["latency"]]
        if (isinstance(candidate_names, (str, bytes)) or not hasattr(candidate_names, "__len__")
                or [len(c) if isinstance(c, (list, tuple)) else None for c in candidate_names] != sizes):
            raise ValueError(f"candidate_names must hold one list of names per choice point with one name "
                             f"per candidate ({sizes}), got {candidate_names!r}")
        self.candidate_names = [list(c) for c in candidate_names]
        self.unit = unit
        self.fingerprint = fingerprint
        self.space_key = space_key
        self.input_shape = None if input_shape is None else tuple(input_shape)
        self.flagged = [dict(f) for f in flagged]
        name = backend.get("backend") if isinstance(backend, dict) else getattr(backend, "name", backend)
        if name not in BACKENDS:
            raise ValueError(f"backend must name one of {BACKENDS} (a name, a backend or its settings), "
                             f"got {backend!r}")
        self._backend = backend
        self._points = None
        self._alphas = None
        self._rule = None
        self._group_costs = {}

    # -- building ---------------------------------------------------------------------
    @classmethod
    def build(cls, model, estimator, input_shape=None, progress=True, rule=None):
        """Measures every candidate of every choice point once (through ``estimator`` and its
        cache) and the fixed remainder of the network.

        Args:
            model: an nnabla_nas-style model with MixedOps.
            estimator: a :class:`~nas_hw.LatencyGraphEstimator` or :class:`~nas_hw.LatencyEstimator`.
            input_shape: the deployment input shape to measure at (its batch must equal the
                estimator's ``batch_size``); ``None`` uses the shapes of
                the last graph built (which must exist).
            progress: show a progress bar.
            rule: how the argmax architecture is derived, ``'argmax'`` or ``'darts'``; ``None``:
                the model's own (:func:`~nas_hw.nas.choices.derivation_rule`).

        Raises:
            GraphNotBuiltError: no input shape given and the graph was never built.
        """
        # nnabla_nas's fast mode (NNABLA_NAS_MIXEDOP_FAST_MODE) answers every call with a cached
        # graph: the table builds and measures each candidate anew, as without it.
        with nnas.uncached_calls(model):
            return cls._build(model, estimator, input_shape, progress, rule)

    @classmethod
    def _build(cls, model, estimator, input_shape, progress, rule):
        points, net_shapes = _prepare(model, estimator, input_shape)
        n_total = sum(cp.n_candidates for cp in points) + 1
        lat, pbytes, nlayers, flagged = [], [], [], {}
        bar = tqdm(total=n_total, desc="candidate table", disable=not progress, leave=False)
        try:
            for cp in points:
                row_lat, row_bytes, row_n = [], [], []
                for cand in cp.candidates:
                    where = f"{cp.name} candidate {type(cand).__name__}"
                    row_lat.append(_complete(estimator, estimator.estimate_module(cand, cp.input_shapes), where))
                    _note_flagged(flagged, estimator, where)
                    row_n.append(estimator.n_layers)
                    row_bytes.append(param_bytes(cand))
                    bar.update(1)
                lat.append(row_lat)
                pbytes.append(row_bytes)
                nlayers.append(row_n)
            if estimator.backend.single_function_units:  # the parts add up: fixed = whole - candidates
                with fixed_choices(points, [0] * len(points)):
                    total = _complete(estimator, estimator.estimate_module(model, net_shapes), "the fixed part")
                _note_flagged(flagged, estimator, "the fixed part")
                fixed_lat = total - sum(row[0] for row in lat)
                fixed_n = estimator.n_layers - sum(row[0] for row in nlayers)
            else:  # kernels may span a candidate and its surroundings: cost the outside on its own
                funcs, inputs = outside_functions(model, points, net_shapes)
                fixed_lat = _complete(estimator, estimator.estimate_functions(funcs, inputs), "the fixed part")
                _note_flagged(flagged, estimator, "the fixed part")
                fixed_n = estimator.n_layers
            bar.update(1)
        finally:
            bar.close()
        alphas = group_alphas(points)
        all_bytes = param_bytes(model) - sum(int(np.prod(a.shape)) * 4 for a in alphas)
        fixed_bytes = all_bytes - sum(sum(row) for row in pbytes)
        if fixed_lat < 0 or fixed_n < 0:
            raise MeasurementError(
                f"the fixed part of {type(model).__name__} came out negative (latency {fixed_lat:.4g} "
                f"{estimator.unit}, {fixed_n} layers): the whole network measured cheaper than its first "
                "candidates alone, so the model was not measured as built; no table is made")
        table = cls({"latency": lat, "param_bytes": pbytes, "n_layers": nlayers},
                    {"latency": fixed_lat, "param_bytes": fixed_bytes, "n_layers": fixed_n},
                    [cp.group for cp in points], [cp.name for cp in points],
                    [[type(c).__name__ for c in cp.candidates] for cp in points],
                    unit=estimator.time_scale, fingerprint=estimator.fingerprint_key,
                    space_key=space_key(points, net_shapes, estimator.batch_size, type(estimator).__name__),
                    input_shape=net_shapes[0] if net_shapes else None, flagged=list(flagged.values()),
                    backend=estimator.backend)
        if table.flagged:
            logger.warning("candidate table: %d layer measurement(s) it uses are flagged disturbed (measured on a "
                           "busy machine): its latencies are not clean truth (table.flagged); re-measure them on "
                           "a quiet machine with `nas-hw cache verify --refresh --disturbed`, then rebuild the table",
                           len(table.flagged))
        table._bind_points(points, derivation_rule(model, points, rule))
        return table

    @classmethod
    def key_of(cls, model, estimator, input_shape=None):
        """The ``space_key`` a table of ``model`` built with ``estimator`` at ``input_shape`` gets
        (what ``nas-hw profile`` stores it under); builds the graph, measures nothing."""
        points, net_shapes = _prepare(model, estimator, input_shape)
        return space_key(points, net_shapes, estimator.batch_size, type(estimator).__name__)

    # -- binding to a live model ----------------------------------------------------------
    def bind(self, model, rule=None):
        """Attaches a (re)loaded table to ``model``'s choice points (checked to match); ``rule``
        as in :meth:`build`."""
        points = find_choice_points(model, require_shapes=False)
        if [cp.n_candidates for cp in points] != [len(c) for c in self.costs["latency"]]:
            raise ValueError("this table does not match the model's choice points "
                             f"({len(self.costs['latency'])} tabulated, {len(points)} in the model)")
        self._bind_points(points, derivation_rule(model, points, rule))
        return self

    def _bind_points(self, points, rule):
        self._points = points
        self._alphas = group_alphas(points)
        self._rule = rule

    @property
    def points(self):
        if self._points is None:
            raise RuntimeError("table is not bound to a model: call table.bind(model)")
        return self._points

    @property
    def alphas(self):
        self.points  # noqa: B018 - raises when unbound
        return self._alphas

    @property
    def n_groups(self):
        return max(self.groups) + 1

    def group_costs(self, metric="latency"):
        """Per group, the summed candidate costs of its choice points (shared alphas add up),
        in the table's own unit."""
        if metric not in self._group_costs:
            self.check_metric(metric)
            out = [np.zeros(len(c)) for c in self._first_of_groups(metric)]
            for g, c in zip(self.groups, self.costs[metric]):
                out[g] = out[g] + c
            self._group_costs[metric] = out
        return self._group_costs[metric]

    def _first_of_groups(self, metric):
        firsts = {}
        for g, c in zip(self.groups, self.costs[metric]):
            firsts.setdefault(g, c)
        return [firsts[g] for g in range(len(firsts))]

    def check_metric(self, metric):
        """Raises ``ValueError`` unless the table holds ``metric``."""
        if metric not in self.costs:
            raise ValueError(f"metric must be one of {tuple(self.costs)}, got {metric!r}")
        return metric

    def factor(self, metric="latency", unit=None):
        """Factor from the table's unit of ``metric`` to ``unit`` (a time scale 'm', 'u', 'n';
        ``None``: the table's own). Only latency has a time unit."""
        self.check_metric(metric)
        if unit is None or unit == self.unit and metric == "latency":
            return 1.0
        if metric != "latency":
            raise ValueError(f"only latency has a time unit; {metric!r} is in "
                             f"{'bytes' if metric == 'param_bytes' else 'layers'}")
        return time_factor(self.unit, check_time_scale(unit, "unit"))

    # -- queries (``unit``: the time scale of the answer, default the table's own) ------
    def sampled(self, metric="latency", unit=None):
        """Cost of the currently active candidates (the sampled subnetwork)."""
        f = self.factor(metric, unit)
        costs = self.costs[metric]
        total = self.fixed[metric]
        for cp, c in zip(self.points, costs):
            a = cp.active_index
            if a is None:
                raise RuntimeError(f"choice point {cp.name!r} has no active candidate (mode "
                                   f"{cp.mode!r} samples only during forward)")
            total += c[a]
        return float(total) * f

    def for_choices(self, choices, metric="latency", unit=None):
        """Cost of the subnetwork choosing ``choices[g]`` in every group ``g``."""
        f = self.factor(metric, unit)
        if len(choices) != self.n_groups:
            raise ValueError(f"choices must hold one index per group ({self.n_groups}), got {len(choices)}")
        total = self.fixed[metric] + sum(c[int(choices[g])] for g, c in zip(self.groups, self.costs[metric]))
        return float(total) * f

    def argmax_choices(self):
        """The architecture the model's derivation rule gives now (the argmax of every group's
        alpha, or DARTS's rule: :func:`nas_hw.nas.choices.derivation_rule`)."""
        return self._rule(self.points)

    def argmax(self, metric="latency", unit=None):
        """Cost of the architecture of :meth:`argmax_choices`."""
        return self.for_choices(self.argmax_choices(), metric, unit)

    def expected(self, metric="latency", unit=None):
        """Expected cost under softmax(alpha) of every group."""
        f = self.factor(metric, unit)
        gc = self.group_costs(metric)
        return float(self.fixed[metric] + sum(float(_softmax(a.d) @ c) for a, c in zip(self.alphas, gc))) * f

    def min(self, metric="latency", unit=None):
        """Cheapest subnetwork cost (per group minimum)."""
        f = self.factor(metric, unit)
        return float(self.fixed[metric] + sum(c.min() for c in self.group_costs(metric))) * f

    def max(self, metric="latency", unit=None):
        """Most expensive subnetwork cost (per group maximum)."""
        f = self.factor(metric, unit)
        return float(self.fixed[metric] + sum(c.max() for c in self.group_costs(metric))) * f

    # -- calibration ------------------------------------------------------------------------
    def calibrated(self, calibration):
        """A new table whose latencies are calibrated (see :mod:`nas_hw.estimators.calibration`).

        With ``calibrated = scale * raw + per_layer * n_layers + const``, each candidate's latency
        becomes ``scale * c + per_layer * n_c`` and the fixed part
        ``scale * fixed + per_layer * n_fixed + const``; every query and the penalty then work
        unchanged. Other metrics are copied. The table must record ``n_layers``.

        Raises:
            ValueError: the calibration is for another device or unit, or ``n_layers`` is missing.
        """
        calibration.check_compatible(fingerprint=self.fingerprint or None, unit=self.unit)
        if "n_layers" not in self.costs or "n_layers" not in self.fixed:
            raise ValueError("this table records no n_layers (built by an older nas_hw): rebuild it to calibrate")
        s, p = calibration.scale, calibration.per_layer
        costs = {k: [c.copy() for c in v] for k, v in self.costs.items()}
        costs["latency"] = [s * c + p * n for c, n in zip(self.costs["latency"], self.costs["n_layers"])]
        fixed = dict(self.fixed)
        fixed["latency"] = s * self.fixed["latency"] + p * self.fixed["n_layers"] + calibration.const
        table = type(self)(costs, fixed, self.groups, self.names, self.candidate_names, self.unit,
                           self.fingerprint, self.space_key, self.input_shape, flagged=self.flagged,
                           backend=self._backend)
        if self._points is not None:
            table._bind_points(self._points, self._rule)
        return table

    # -- persistence --------------------------------------------------------------------
    @property
    def backend(self):
        """The measuring backend (a name, or built on first use from the settings saved with it)."""
        if isinstance(self._backend, dict):
            self._backend = backend_from_settings(self._backend)
        return self._backend

    def to_dict(self):
        backend = self._backend if isinstance(self._backend, (str, dict)) else self._backend.settings
        return {"format": TABLE_FORMAT, "unit": self.unit, "fingerprint": self.fingerprint,
                "space_key": self.space_key, "input_shape": self.input_shape,
                "groups": self.groups, "names": self.names, "candidate_names": self.candidate_names,
                "fixed": self.fixed, "costs": {k: [c.tolist() for c in v] for k, v in self.costs.items()},
                "flagged": [dict(f) for f in self.flagged], "backend": backend}

    @classmethod
    def from_dict(cls, d):
        """A table from :meth:`to_dict`'s output.

        Raises:
            ValueError: ``d`` is not a table of this format, or a field is missing or malformed
                (the message names it).
        """
        if not isinstance(d, dict) or d.get("format") != TABLE_FORMAT:
            raise ValueError(f"not a nas_hw candidate table (format {TABLE_FORMAT} expected)")
        missing = [k for k in ("costs", "fixed", "groups", "names", "candidate_names", "unit",
                               "fingerprint", "space_key") if k not in d]
        if missing:
            raise ValueError(f"candidate table is missing field(s) {missing}")
        flagged = d.get("flagged") or []
        if not isinstance(flagged, list) or not all(isinstance(f, dict) for f in flagged):
            raise ValueError("candidate table field 'flagged' must be a list of objects")
        return cls(d["costs"], d["fixed"], d["groups"], d["names"], d["candidate_names"], d["unit"],
                   d["fingerprint"], d["space_key"], d.get("input_shape"), flagged=flagged,
                   backend=d.get("backend") or "nnabla")

    def save(self, path):
        """Writes the table as JSON, atomically (never through a link at ``path``)."""
        with atomic_write(path) as fh:
            json.dump(self.to_dict(), fh, indent=1)

    @classmethod
    def load(cls, path, model=None):
        """Reads a table written by :meth:`save` (and binds it to ``model`` if given).

        Raises:
            FileNotFoundError: no such file.
            ValueError: the file is not a saved candidate table (the message names it).
        """
        with open(path) as fh:
            try:
                doc = json.load(fh)
            except (ValueError, UnicodeDecodeError) as err:
                raise ValueError(f"{os.fspath(path)!r} is not a saved candidate table (not JSON: {err})") from None
        try:
            table = cls.from_dict(doc)
        except ValueError as err:
            raise ValueError(f"{os.fspath(path)!r}: {err}") from None
        return table.bind(model) if model is not None else table

    def __repr__(self):
        return (f"CandidateTable({len(self.names)} choice points, {sum(len(c) for c in self.costs['latency'])} "
                f"candidates, fixed={self.fixed['latency']:.4g}{self.unit}s, fingerprint={self.fingerprint!r})")


def _check_costs(costs):
    """``{metric: [1-D finite arrays, one per choice point]}`` with a ``latency`` entry."""
    if not isinstance(costs, dict) or "latency" not in costs:
        raise ValueError(f"costs must map each metric to per-choice-point candidate costs and hold "
                         f"'latency', got {type(costs).__name__} {sorted(costs) if isinstance(costs, dict) else ''}")
    out, shape = {}, None
    for metric, rows in costs.items():
        if isinstance(rows, (str, bytes)) or not hasattr(rows, "__iter__"):
            raise ValueError(f"costs[{metric!r}] must be a list of candidate costs per choice point, got {rows!r}")
        arrays = []
        for i, row in enumerate(rows):
            try:
                a = np.asarray(row, dtype=np.float64)
            except (TypeError, ValueError):
                raise ValueError(f"costs[{metric!r}][{i}] must be numbers, got {row!r}") from None
            if a.ndim != 1 or a.size == 0 or not np.all(np.isfinite(a)):
                raise ValueError(f"costs[{metric!r}][{i}] must be a non-empty list of finite numbers, got {row!r}")
            arrays.append(a)
        sizes = [a.size for a in arrays]
        if shape is not None and sizes != shape:
            raise ValueError(f"costs[{metric!r}] has {sizes} candidates per choice point, costs['latency'] "
                             f"has {shape}")
        if not arrays:
            raise ValueError(f"costs[{metric!r}] holds no choice point")
        shape = shape or sizes
        out[metric] = arrays
    if [a.size for a in out["latency"]] != shape:
        raise ValueError("costs: every metric must have the same candidates per choice point")
    return out


def _check_fixed(fixed, costs):
    """``{metric: finite number}`` for every metric of ``costs``."""
    if not isinstance(fixed, dict):
        raise ValueError(f"fixed must map each metric to a number, got {type(fixed).__name__}")
    missing = [k for k in costs if k not in fixed]
    if missing:
        raise ValueError(f"fixed lacks the metric(s) {missing}")
    out = {}
    for k, v in fixed.items():
        if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)) or not np.isfinite(v):
            raise ValueError(f"fixed[{k!r}] must be a finite number, got {v!r}")
        if v < 0:  # what lies outside the choice points costs something or nothing, never less
            raise ValueError(f"fixed[{k!r}] must be >= 0 (the cost outside the choice points), got {v!r}")
        out[k] = float(v)
    return out


def space_key(points, net_shapes, batch_size, estimator_name=""):
    """A short stable id of a search space (its candidates and shapes) and of how it was measured."""
    h = hashlib.sha1()
    h.update(repr((net_shapes, batch_size, estimator_name)).encode())
    for cp in points:
        h.update(repr((cp.name, cp.group, cp.input_shapes, [str(c) for c in cp.candidates])).encode())
    return h.hexdigest()[:16]
