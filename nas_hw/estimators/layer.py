"""What the layer-based latency estimators share: settings, device, cache, failures, and the
isolated timing of one nnabla function."""
import logging
import math
from dataclasses import dataclass
from typing import List, NamedTuple

import nnabla as nn
import nnabla.function as function_classes
import nnabla.functions as F

from ..checks import check_batch_size, check_one_of
from ..constants import ON_ERROR, unit_name
from ..errors import MeasurementError, MissingMeasurementsError
from ..measure.device import Device, current_device
from ..measure.graph import batch_of, non_parameter_leaves
from ..measure.signature import function_signature, variable_dtype, with_batch
from ..measure.store import open_cache
from ..measure.timing import TimedSettings
from .base import Estimator

logger = logging.getLogger(__name__)


class LayerCost(NamedTuple):
    """One layer of the last estimate. ``latency`` is in the estimator's ``time_scale``."""

    name: str
    signature: str
    latency: float
    noop: bool = False


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
    """

    def __init__(self, device_id=None, ext_name=None, n_run=100, max_measure_execution_time=1,
                 time_scale="m", n_warmup=10, outlier=0.0, cache=None, batch_size=1,
                 on_error="raise", fingerprint=None, type_config="float", run_timeout=None, timer=None):
        current = current_device()
        self.device = Device(current.ext_name if ext_name is None else ext_name,
                             current.device_id if device_id is None else device_id, type_config)
        self._init_timing(n_run, n_warmup, max_measure_execution_time, outlier, time_scale, run_timeout, timer)
        self.batch_size = check_batch_size(batch_size)
        self.on_error = check_one_of("on_error", on_error, ON_ERROR)
        self.ctx = self.device.context
        self.device_fingerprint = self.device.fingerprint
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
    def offline(self):
        """True when bound to another device's fingerprint: only cached values are used."""
        return self._offline

    @property
    def settings(self):
        return {"n_run": self.n_run, "n_warmup": self.n_warmup, "outlier": self.outlier,
                "max_measure_execution_time": self.max_measure_execution_time,
                "estimator": type(self).__name__}

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

    # -- measuring --------------------------------------------------------------------
    def _sync(self):
        self.device.sync()

    def _begin(self):
        self.breakdown, self.failures, self._missing = [], [], []

    def _cost(self, name, signature, measure_fn):
        """Latency of one layer in ``time_scale`` (cached, or measured once), or ``None`` when the
        layer failed with ``on_error='warn'`` or is missing offline."""
        known = self._latencies.get(signature)
        if known is not None:  # rows never change once stored: no need to ask the cache again
            self.cache.hits += 1
            self.breakdown.append(LayerCost(name, signature, known[0], known[1]))
            return known[0]
        if self._offline:
            rec = self.cache.get(self.fingerprint_key, signature)
            if rec is None:
                self._missing.append(signature)
                return None
        else:
            try:
                rec = self.cache.get_or_measure(self.fingerprint_key, signature, measure_fn, self.settings,
                                                self._fingerprint_info)
            except MeasurementError as cause:
                err = MeasurementError(f"cannot measure layer {name!r} ({signature}): {cause}{_root_cause(cause)}",
                                       layer=name, signature=signature)
                if self.on_error == "raise":
                    raise err from cause
                logger.warning("%s", err)
                self.failures.append(Failure(name, signature, str(err)))
                return None
        latency = rec.latency(self.time_scale)
        self._latencies[signature] = (latency, rec.noop)
        self.breakdown.append(LayerCost(name, signature, latency, rec.noop))
        return latency

    def _finish(self, total):
        if self._missing:
            missing = sorted(set(self._missing))
            raise MissingMeasurementsError(
                f"offline estimator for fingerprint {self.fingerprint_key!r} lacks {len(missing)} "
                f"measurement(s); measure them on that device and import them: {missing[:10]}",
                missing)
        return float(total)

    def _measure_function(self, func, shapes):
        """Times one nnabla function alone on fresh zeroed inputs of ``shapes`` (forward only).

        The function runs through the graph engine (``Variable.forward``), the path a network's
        forward takes (and the one :class:`LatencyEstimator` times modules with): calling
        ``Function.forward`` directly costs more for some functions (about 2x for an inference
        ``BatchNormalization`` on CPU), which made the two estimators disagree.
        """
        def run():
            with nn.context_scope(self.ctx), nn.auto_forward(False):
                inputs = [nn.Variable(s, need_grad=False) for s in shapes]
                for v in inputs:
                    v.data.zero()
                fn = getattr(function_classes, func.info.type_name)(self.ctx, **func.info.args)
                outs = fn(*inputs)
                outs = list(outs) if isinstance(outs, (list, tuple)) else [outs]
                sink = outs[0] if len(outs) == 1 else F.sink(*outs)
                stats = self._time(lambda: sink.forward(clear_no_need_grad=True))
            return stats, False
        return self._guard(run)

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

    def _function_costs(self, funcs, batch_leaves, prefix="", inputs_of=None):
        """Sums the cost of ``funcs``; ``batch_leaves`` are the leaf variables whose first axis
        becomes ``batch_size``. The new shapes of everything computed from them are found by
        setting each function up again on the new input shapes (so an output whose batch is not
        on the first axis, such as a ``Stack`` of branches, gets its true shape).

        ``inputs_of`` (optional) holds each function's input list, as a walk read them. This is
        the whole per-query work of a cached estimate, so it reads each attribute once."""
        new_shapes = {v: with_batch(v.shape, self.batch_size) for v in batch_leaves}
        signatures, latencies, breakdown = self._signatures, self._latencies, self.breakdown
        if inputs_of is None:
            inputs_of = [f.inputs for f in funcs]
        total, n_known = 0.0, 0
        for i, (f, inputs) in enumerate(zip(funcs, inputs_of)):
            info = f.info
            type_name = info.type_name
            if new_shapes:
                shapes = tuple([new_shapes.get(v, tuple(v.shape)) for v in inputs])
            else:
                shapes = tuple([v.shape for v in inputs])
            dtypes = tuple([variable_dtype(v) for v in inputs])
            # Formatting a readable signature is the slow part of a cached query: do it once per
            # distinct (type, arguments, shapes, dtypes) seen by this estimator.
            key = (type_name, repr(info.args), shapes, dtypes)
            sig = signatures.get(key)
            if sig is None:
                sig = signatures[key] = function_signature(f, shapes, dtypes)
            name = f"{prefix}{i}:{type_name}"
            if new_shapes and any(v in new_shapes for v in inputs):
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
                breakdown.append(LayerCost(name, sig, known[0], known[1]))
                total += known[0]
                continue
            cost = self._cost(name, sig, self._measure_function(f, shapes))
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
