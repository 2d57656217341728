"""What the layer-based latency estimators share: settings, device, cache, failures, and the
isolated timing of one nnabla function."""
import logging
import math
from dataclasses import dataclass
from typing import List, NamedTuple, Tuple

import nnabla as nn
import nnabla.function as function_classes

from ..checks import check_batch_size, check_number, check_one_of
from ..constants import MAX_REPEATS, MAX_WAIT_FOR_QUIET_S, ON_ERROR, ROBUST_STATISTIC, TIMING_ROUNDS, unit_name
from ..errors import MeasurementError, MissingMeasurementsError
from ..measure import peers as measuring_peers
from ..measure.backends import make_backend
from ..measure.backends.nnabla import NnablaBackend
from ..measure.backends.fusion import GraphIndex, graph_inputs
from ..measure.backends.units import plan_units
from ..measure.device import Device, current_device
from ..measure.graph import batch_of, non_parameter_leaves
from ..measure.load import check_quiet
from ..measure.signature import SpecNode, function_signature, variable_dtype, with_batch
from ..measure.store import noop_stats, open_cache
from ..measure.timing import TimedSettings, describe_quality
from .base import Estimator

logger = logging.getLogger(__name__)


class LayerCost(NamedTuple):
    """One layer of the last estimate. ``latency`` is in the estimator's ``time_scale``;
    ``disturbed``: its measurement is flagged disturbed (see :attr:`LayerEstimator.flagged`).
    ``functions``: on a fusing backend, the positions in the graph's function list of the
    functions the unit (a fused kernel) runs; empty on nnabla (one entry per function, in
    order) and for a module."""

    name: str
    signature: str
    latency: float
    noop: bool = False
    disturbed: bool = False
    functions: Tuple[int, ...] = ()


@dataclass(frozen=True)
class Failure:
    """A layer that could not be measured (with ``on_error='warn'``); excluded from the sum."""

    name: str
    signature: str
    error: str


class LayerEstimator(TimedSettings, Estimator):
    """Base of the layer-based latency estimators.

    Args:
        device_id: device index; ``None`` takes the current nnabla context's.
        ext_name: ``cpu``, ``cuda`` or ``cudnn``; ``None`` takes the current context's.
        n_run: timed runs per layer.
        max_measure_execution_time: time budget in seconds per layer measurement.
        time_scale: unit of every returned latency: 'm' (ms), 'u' (us), 'n' (ns).
        n_warmup: untimed runs before timing.
        outlier: fraction of sorted runs trimmed from each end, in [0, 0.5).
        cache: a :class:`~nas_hw.measure.store.LatencyCache`, a path, ``":memory:"``, or ``None``
            for the default persistent cache (``$NAS_HW_CACHE`` or the per-user cache dir).
        batch_size: batch size the layers are measured at (1, as the seed assumes).
        on_error: ``raise`` (a :class:`MeasurementError` naming the layer) or ``warn`` (the
            layer goes to :attr:`failures`, is logged, and is left out of the sum).
        fingerprint: measure offline against another device's cached measurements (a
            fingerprint key string or :class:`~nas_hw.measure.device.Fingerprint`): nothing is measured,
            and missing layers raise :class:`MissingMeasurementsError` listing them.
        type_config: ``float``, ``half`` or ``mixed_half``.
        run_timeout: if given, seconds one timed run of a layer may take; a slower run makes
            the layer a :class:`MeasurementError` (a hung or pathological layer is reported,
            not averaged in). ``None`` (default): no limit.
        timer: the measuring seam, a callable like :func:`nas_hw.measure.timing.measure`
            (tests pass a fake one); ``None``: real timing.
        wait_for_quiet: before its first measurement the estimator looks at the machine and
            reports a busy one (load, other measuring processes: a WARNING); with this many
            seconds (> 0) it first waits, at most that long, for the machine to become quiet.
            ``0`` (default): report only.
        backend: where layers are timed: ``"nnabla"`` (default: nnabla's kernels on the device
            above), ``"onnxruntime"`` (exported to ONNX, timed on ONNX Runtime's CPU provider, one
            thread, units = the runtime's fused kernels; the ``onnx`` extra), or a backend built
            with :func:`nas_hw.measure.backends.make_backend` (``provider``, ``threads``...).
            Its fingerprint keys the cache, so rows of different backends never mix.

    Attributes:
        breakdown: the layers of the last estimate (:class:`LayerCost`).
        flagged: the layers of the last estimate whose measurement is flagged disturbed.
        failures: layers that could not be measured (``on_error='warn'``).
        machine_at_start: the :class:`~nas_hw.measure.load.MachineState` seen before the first
            measurement (``None`` until one was taken).
    """

    def __init__(self, device_id=None, ext_name=None, n_run=100, max_measure_execution_time=1,
                 time_scale="m", n_warmup=10, outlier=0.0, cache=None, batch_size=1,
                 on_error="raise", fingerprint=None, type_config="float", run_timeout=None, timer=None,
                 wait_for_quiet=0.0, backend="nnabla"):
        current = current_device()
        self.device = Device(current.ext_name if ext_name is None else ext_name,
                             current.device_id if device_id is None else device_id, type_config)
        self._init_timing(n_run, n_warmup, max_measure_execution_time, outlier, time_scale, run_timeout, timer)
        self.batch_size = check_batch_size(batch_size)
        self.wait_for_quiet = check_number("wait_for_quiet", wait_for_quiet, low=0, high=MAX_WAIT_FOR_QUIET_S)
        self.machine_at_start = None
        self.on_error = check_one_of("on_error", on_error, ON_ERROR)
        self.ctx = self.device.context
        self.backend = NnablaBackend(device=self.device) if backend == "nnabla" else make_backend(backend)
        self._unit_groups = {}  # structure of a graph -> its units (a fusing backend's analysis)
        self.device_fingerprint = self.backend.fingerprint
        if fingerprint is None:
            self.fingerprint_key = self.device_fingerprint.key
        else:
            self.fingerprint_key = getattr(fingerprint, "key", fingerprint)
            if not isinstance(self.fingerprint_key, str) or not self.fingerprint_key:
                raise ValueError(f"fingerprint must be a non-empty key string or a Fingerprint, got {fingerprint!r}")
        self._fingerprint_info = self.device_fingerprint.as_dict()
        self._offline = self.fingerprint_key != self.device_fingerprint.key
        self._latencies = {}  # signature -> (latency in time_scale, noop), from the cache
        # Pure functions of their keys, kept for the estimator's life:
        self._signatures = {}  # (type, args, shapes, dtypes) -> readable signature
        self._output_shape_memo = {}  # (type, args, input shapes) -> output shapes
        self.cache = open_cache(cache, readonly=self._offline)  # offline: the file is only read
        self.breakdown: List[LayerCost] = []
        self.failures: List[Failure] = []
        self._missing: List[str] = []
        self._warned_flagged = set()  # signatures of flagged rows this estimator warned about

    # -- settings -------------------------------------------------------------------
    ext_name = property(lambda self: self.device.ext_name, doc="The nnabla extension measured on.")
    device_id = property(lambda self: self.device.device_id, doc="The device index measured on.")
    type_config = property(lambda self: self.device.type_config, doc="The nnabla type configuration.")

    @property
    def unit(self):
        """``'ms'``, ``'us'`` or ``'ns'``: the unit of every latency (from ``time_scale``)."""
        return unit_name(self.time_scale)

    @property
    def n_layers(self):
        """Layers that ran a function in the last estimate (no-ops excluded)."""
        return sum(1 for layer in self.breakdown if not layer.noop)

    @property
    def flagged(self):
        """Layers of the last estimate whose measurement is flagged disturbed (taken while the
        machine was busy, and still disturbed after the timing core's repeats): the estimate used
        them, but they are not clean truth. Re-measure them on a quiet machine
        (``nas-hw cache verify --refresh --disturbed``)."""
        return [layer for layer in self.breakdown if layer.disturbed]

    @property
    def offline(self):
        """True when bound to another device's fingerprint: only cached values are used."""
        return self._offline

    @property
    def settings(self):
        """How this estimator's rows are measured (stored with each row)."""
        settings = {"n_run": self.n_run, "n_warmup": self.n_warmup, "outlier": self.outlier,
                    "max_measure_execution_time": self.max_measure_execution_time,
                    "estimator": type(self).__name__, "rounds": TIMING_ROUNDS, "statistic": ROBUST_STATISTIC}
        if self.backend.name != "nnabla":  # nnabla rows keep the settings they always had
            settings.update(self.backend.settings)
        return settings

    def reset(self):
        """Clears the in-process view (breakdown, failures, memo); the cache file keeps its rows."""
        self.breakdown, self.failures, self._missing = [], [], []
        self._latencies = {}
        self.cache.forget()

    # -- the layer contract (tables and calibration use only these) -------------------
    def estimate_module(self, module, input_shapes):
        """Latency of ``module`` called on inputs of ``input_shapes`` (inference mode)."""
        raise NotImplementedError

    def estimate_network(self, net, out, inputs):
        """Latency of a built network: the Module ``net`` whose graph ends in ``out`` and starts
        at the Variables ``inputs`` (each estimator reads the one it walks)."""
        raise NotImplementedError

    def estimate_functions(self, funcs, inputs):
        """Latency of the functions ``funcs`` of a graph (topological order, already at
        ``batch_size``) whose inputs are ``inputs``; variables they read that other functions
        compute are inputs too."""
        self._begin()
        return self._finish(self._function_costs(list(funcs), [], prefix="outside/", inputs=list(inputs)))

    # -- measuring --------------------------------------------------------------------
    def _sync(self):
        self.backend.sync()

    def _count_peers(self):
        return measuring_peers.count_peers(self.cache.path)

    def _time(self, fn, label=None, peers=None):
        """The timing core with this estimator's settings; records the other processes
        measuring into the same cache with every measurement."""
        return super()._time(fn, label=label, peers=peers or self._count_peers)

    def _before_measuring(self):
        """Before the first measurement: registers this process as measuring into the cache (other
        processes see it) and reports a busy machine, waiting up to ``wait_for_quiet`` seconds."""
        measuring_peers.register(self.cache.path)
        self.machine_at_start = check_quiet(f"{type(self).__name__} measuring into {self.cache.path}",
                                            self.cache.path, self.wait_for_quiet)

    def _begin(self):
        self.breakdown, self.failures, self._missing = [], [], []

    def _cost(self, name, signature, measure_fn):
        """Latency of one layer in ``time_scale`` (cached, or measured once), or ``None`` when the
        layer failed with ``on_error='warn'`` or is missing offline."""
        known = self._latencies.get(signature)
        if known is not None:  # rows are not re-read within an estimator's life (reset() forgets)
            self.cache.hits += 1
            self.breakdown.append(LayerCost(name, signature, *known))
            return known[0]
        if self._offline:
            rec = self.cache.get(self.fingerprint_key, signature)
            if rec is None:
                self._missing.append(signature)
                return None
        else:
            measured = []
            if self.machine_at_start is None and self.cache.peek(self.fingerprint_key, signature) is None:
                self._before_measuring()  # outside the store's lock: waiting must not hold it

            def measuring():
                stats, noop = measure_fn()
                measured.append(stats)
                return stats, noop

            try:
                rec = self.cache.get_or_measure(self.fingerprint_key, signature, measuring, self.settings,
                                                self._fingerprint_info)
            except MeasurementError as cause:
                err = MeasurementError(f"cannot measure layer {name!r} ({signature}): {cause}{_root_cause(cause)}",
                                       layer=name, signature=signature)
                if self.on_error == "raise":
                    raise err from cause
                logger.warning("%s", err)
                self.failures.append(Failure(name, signature, str(err)))
                return None
            if measured and measured[0].disturbed:
                self._warned_flagged.add(signature)
                logger.warning("layer %r (%s) stayed disturbed after %d measurements (%s): stored flagged; "
                               "estimates using it say so (estimator.flagged); re-measure it on a quiet machine "
                               "with `nas-hw cache verify --refresh --disturbed`", name, signature,
                               MAX_REPEATS + 1, describe_quality(measured[0]))
        latency = rec.latency(self.time_scale, "value")
        disturbed = bool(rec.stats.disturbed)
        self._latencies[signature] = (latency, rec.noop, disturbed)
        self.breakdown.append(LayerCost(name, signature, latency, rec.noop, disturbed))
        return latency

    def _finish(self, total):
        fresh = [layer for layer in self.flagged if layer.signature not in self._warned_flagged]
        if fresh:
            self._warned_flagged.update(layer.signature for layer in fresh)
            logger.warning("this estimate uses %d cached layer measurement(s) flagged disturbed (measured on a "
                           "busy machine): %s; see estimator.flagged, re-measure them with `nas-hw cache verify "
                           "--refresh --disturbed`", len(fresh), ", ".join(repr(layer.name) for layer in fresh[:5])
                           + (" ..." if len(fresh) > 5 else ""))
        if self._missing:
            missing = sorted(set(self._missing))
            raise MissingMeasurementsError(
                f"offline estimator for fingerprint {self.fingerprint_key!r} lacks {len(missing)} "
                f"measurement(s); measure them on that device and import them: {missing[:10]}",
                missing)
        return float(total)

    def _measure_function(self, func, shapes, label=None):
        """Times one nnabla function alone on fresh zeroed inputs of ``shapes`` (every input,
        parameters included), forward only, on the nnabla backend (see
        :mod:`nas_hw.measure.backends.nnabla`)."""
        return self._measure_unit([func], list(func.inputs), list(func.outputs), shapes, label)

    def _measure_unit(self, funcs, inputs, outputs, input_shapes, label=None):
        """The measuring callable of one unit (the cache calls it on a miss): the backend prepares
        it, :meth:`_time` times it; a unit the runtime runs nothing for is a flagged no-op."""
        def run():
            prepared = self.backend.prepare_functions(funcs, inputs, outputs, input_shapes)
            if prepared.noop:
                return noop_stats(), True
            return prepared.adjust(self._time(prepared.run, label=label)), False
        return self._guard(run)

    def measure_spec(self, spec):
        """Times the function an ``fn:`` signature describes (a
        :class:`~nas_hw.measure.signature.FunctionSpec`, see
        :func:`~nas_hw.measure.signature.parse_function_signature`) exactly as a layer of a graph
        is timed, with this estimator's settings; nothing is read from or stored in the cache.

        Returns:
            TimingStats in seconds.

        Raises:
            MeasurementError: the function cannot be built or run.
        """
        if not hasattr(function_classes, spec.type_name):
            raise MeasurementError(f"nnabla has no function {spec.type_name!r}")
        shapes = [tuple(s) for s in spec.input_shapes]
        return self._measure_function(SpecNode(spec), shapes, spec.type_name)()[0]

    @staticmethod
    def _guard(run):
        """Wraps a measuring callable: any exception becomes a :class:`MeasurementError`, and
        statistics that are not finite non-negative numbers are refused before they can be
        stored (the cache's schema would refuse them too, but as a ``CacheError``)."""
        def wrapped():
            try:
                stats, noop = run()
            except MeasurementError:
                raise
            except Exception as err:  # nnabla raises RuntimeError with C++ messages
                raise MeasurementError(f"{type(err).__name__}: {str(err).strip().splitlines()[0] if str(err).strip() else err}") from err
            bad = {k: getattr(stats, k) for k in ("mean", "median", "std", "min")
                   if not _finite_non_negative(getattr(stats, k))}
            if bad or stats.n_kept < 1 or stats.n_measured < stats.n_kept:
                raise MeasurementError(f"invalid timing statistics (NaN, infinite, negative or no run kept): "
                                       f"{bad or stats}")
            return stats, noop
        return wrapped

    def _function_costs(self, funcs, batch_leaves, prefix="", inputs=None, inputs_of=None):
        """Sums the cost of ``funcs``; ``batch_leaves`` are the leaf variables whose first axis
        becomes ``batch_size``. The new shapes of everything computed from them are found by
        setting each function up again on the new input shapes (so an output whose batch is not
        on the first axis, such as a ``Stack`` of branches, gets its true shape).

        On the nnabla backend every function is a unit; a fusing backend's units are costed by
        :meth:`_unit_costs` (``inputs``: the graph's inputs, default ``batch_leaves``).
        ``inputs_of`` (optional) holds each function's input list, as a walk read them. This is
        the whole per-query work of a cached estimate, so it reads each attribute once."""
        if not self.backend.single_function_units:
            return self._unit_costs(funcs, batch_leaves, prefix, inputs)
        new_shapes = {v: with_batch(v.shape, self.batch_size) for v in batch_leaves}
        signatures, latencies, breakdown = self._signatures, self._latencies, self.breakdown
        if inputs_of is None:
            inputs_of = [f.inputs for f in funcs]
        total, n_known = 0.0, 0
        for i, (f, f_inputs) in enumerate(zip(funcs, inputs_of)):
            info = f.info
            type_name = info.type_name
            if new_shapes:
                shapes = tuple([new_shapes.get(v, tuple(v.shape)) for v in f_inputs])
            else:
                shapes = tuple([v.shape for v in f_inputs])
            dtypes = tuple([variable_dtype(v) for v in f_inputs])
            # Formatting a readable signature is the slow part of a cached query: do it once per
            # distinct (type, arguments, shapes, dtypes) seen by this estimator.
            key = (type_name, repr(info.args), shapes, dtypes)
            sig = signatures.get(key)
            if sig is None:
                sig = signatures[key] = function_signature(f, shapes, dtypes)
            name = f"{prefix}{i}:{type_name}"
            if new_shapes and any(v in new_shapes for v in f_inputs):
                try:
                    out_shapes = self._output_shapes(f, shapes)
                except MeasurementError as err:
                    for v in f.outputs:  # best guess, so that later layers can still be tried
                        new_shapes[v] = with_batch(v.shape, self.batch_size)
                    self._fail(name, sig, MeasurementError(
                        f"cannot set layer {name!r} ({sig}) up at batch_size={self.batch_size}: {err}",
                        layer=name, signature=sig))
                    continue
                new_shapes.update(zip(f.outputs, out_shapes))
            known = latencies.get(sig)
            if known is not None:  # rows never change once stored (see _cost)
                n_known += 1
                breakdown.append(LayerCost(name, sig, *known))
                total += known[0]
                continue
            cost = self._cost(name, sig, self._measure_function(f, shapes, sig))
            if cost is not None:
                total += cost
        self.cache.hits += n_known
        return total

    def _batch_leaves(self, funcs, all_leaves, inputs):
        """The leaves whose batch axis must become ``batch_size`` ([] when nothing changes)."""
        if inputs is not None:
            leaves = list(inputs)
        else:
            # Fast path: when every leaf that needs no gradient already has the wanted first
            # dimension, rewriting is a no-op whichever of them are parameters.
            plain = [v for v in all_leaves if not v.need_grad]
            if all(len(v.shape) and v.shape[0] == self.batch_size for v in plain):
                return []
            leaves = non_parameter_leaves(funcs, all_leaves)
        graph_batch = batch_of(leaves)
        if graph_batch == self.batch_size:
            return []
        if graph_batch is None and leaves:
            raise ValueError("cannot tell the graph's batch axis (its inputs disagree on the first "
                             "dimension); pass inputs=[...] to get_estimation")
        return leaves

    def _unit_costs(self, funcs, batch_leaves, prefix, inputs=None):
        """Sums the cost of the backend's units of ``funcs`` (each measured once, then cached),
        at ``batch_size``; ``inputs``: the graph's inputs (default: its leaves that are not
        registered parameters; variables computed outside ``funcs`` are inputs too)."""
        if inputs is None:
            inputs = graph_inputs(funcs)
        if funcs and not GraphIndex(funcs, inputs, []).inputs_of_graph():
            # every leaf a constant: the runtime would fold the whole graph away (a silent 0)
            raise MeasurementError("the graph has no input the runtime is fed: every leaf is a parameter "
                                   "(registered or needing a gradient); pass inputs=[...] to get_estimation")
        new_shapes = {v: with_batch(v.shape, self.batch_size) for v in batch_leaves}
        signatures = []
        for i, f in enumerate(funcs):
            shapes = tuple(tuple(new_shapes.get(v, v.shape)) for v in f.inputs)
            dtypes = tuple(variable_dtype(v) for v in f.inputs)
            key = (f.info.type_name, repr(f.info.args), shapes, dtypes)
            sig = self._signatures.get(key)
            if sig is None:
                sig = self._signatures[key] = function_signature(f, shapes, dtypes)
            signatures.append(sig)
            if new_shapes and any(v in new_shapes for v in f.inputs):
                try:
                    new_shapes.update(zip(f.outputs, self._output_shapes(f, shapes)))
                except MeasurementError as err:
                    raise MeasurementError(f"cannot set layer {prefix}{i}:{f.info.type_name} ({sig}) up at "
                                           f"batch_size={self.batch_size}: {err}", layer=f"{prefix}{i}",
                                           signature=sig) from err
        try:
            units = plan_units(self.backend, funcs, inputs, [], signatures, new_shapes, prefix,
                               groups_memo=self._unit_groups)
        except MeasurementError as err:
            self._fail(f"{prefix}graph", "", err)
            return 0.0
        total = 0.0
        for u in units:
            cost = self._cost(u.name, u.signature,
                              self._measure_unit(list(u.funcs), list(u.inputs), list(u.outputs), list(u.input_shapes),
                                                u.signature))
            if cost is not None:
                total += cost
                self.breakdown[-1] = self.breakdown[-1]._replace(functions=tuple(u.indices))
        return total

    def _output_shapes(self, func, shapes):
        """Output shapes of ``func`` set up on inputs of ``shapes`` (nothing is computed)."""
        memo = self._output_shape_memo
        key = (func.info.type_name, repr(func.info.args), tuple(shapes))
        if key not in memo:
            try:
                with nn.context_scope(self.ctx), nn.auto_forward(False):
                    fn = getattr(function_classes, func.info.type_name)(self.ctx, **func.info.args)
                    outs = fn(*[nn.Variable(s, need_grad=False) for s in shapes])
            except Exception as err:
                raise MeasurementError(f"{type(err).__name__}: {_first_line(err)}") from err
            outs = list(outs) if isinstance(outs, (list, tuple)) else [outs]
            memo[key] = [tuple(v.shape) for v in outs]
        return memo[key]

    def _fail(self, name, signature, err):
        """A layer that cannot be measured: raised (``on_error='raise'``) or listed in
        :attr:`failures` and left out of the sum (``'warn'``)."""
        if self.on_error == "raise":
            raise err
        logger.warning("%s", err)
        self.failures.append(Failure(name, signature, str(err)))

def _root_cause(err):
    """`` (caused by Type: message)`` naming the innermost exception of ``err``'s chain when it
    says more than ``err`` itself (a Python error raised inside an nnabla function surfaces as
    an uninformative ``SystemError``), else ``""``."""
    root, seen = err, set()
    while id(root) not in seen:
        seen.add(id(root))
        nxt = root.__cause__ or root.__context__
        if nxt is None:
            break
        root = nxt
    if root is err or _first_line(root) in str(err):
        return ""
    return f" (caused by {type(root).__name__}: {_first_line(root)})"


def _first_line(err):
    text = str(err).strip()
    return text.splitlines()[0] if text else repr(err)


def _finite_non_negative(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value >= 0
