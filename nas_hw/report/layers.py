"""The per-layer report of one network: each function's latency, share, parameters,
activation bytes and FLOPs, and the totals next to the true latency."""
import os
from dataclasses import asdict, dataclass, field
from typing import List, Optional, Tuple

import nnabla as nn

from ..checks import dtype_bytes
from ..constants import ROBUST_STATISTIC, TIME_UNITS
from ..estimators.activations import activation_memory
from ..estimators.flops import count_flops
from ..estimators.network import Profiler
from ..estimators.params import parameters_of
from ..measure.graph import functions_of, numel


@dataclass(frozen=True)
class LayerRow:
    """One function of the network. ``latency`` is in the report's unit; ``disturbed``: its
    measurement is flagged disturbed (taken on a busy machine, not clean truth)."""

    index: int
    layer: str
    type_name: str
    latency: float
    share_percent: float
    params: int
    activation_bytes: int
    flops: Optional[int]
    disturbed: bool = False


@dataclass
class NetworkReport:
    """Per-layer costs and totals of one network.

    Attributes:
        rows: one :class:`LayerRow` per function, in execution order.
        unit: time unit of every latency (``m``, ``u`` or ``n``: ms, us, ns).
        layer_latency: the layer-based estimate (the rows' latencies added up).
        true_latency: the Profiler's latency of the whole network (one forward).
        param_count, param_bytes: parameters of the graph (float32 bytes).
        activation_peak_bytes, activation_total_bytes: activation memory of one forward.
        flops, macs: compute of the known functions; ``unknown_flops`` lists functions
            without a formula (left out of the totals).
        input_shapes, ext_name, device_id, fingerprint: what was measured and where.
        flagged: indices of the rows whose measurement is flagged disturbed.
        true_latency_disturbed: the true latency's measurement stayed disturbed.
        machine: the machine's state before the first layer was measured (load average,
            runnable processes, cores, other measuring processes), ``None`` when nothing was.
        statistic: the statistic every latency is (the timing core's robust statistic).
        backend: the measuring backend (``nnabla``, ``onnxruntime``); with a fusing backend a
            row holds the latency of the unit (fused kernel) that starts at its function, and
            the other functions of that unit say which row they were fused into.
    """

    source: str
    name: str
    unit: str
    rows: List[LayerRow]
    layer_latency: float
    true_latency: float
    param_count: int
    param_bytes: int
    activation_peak_bytes: int
    activation_total_bytes: int
    flops: int
    macs: int
    unknown_flops: Tuple[str, ...]
    input_shapes: List[Tuple[int, ...]]
    ext_name: str
    device_id: int
    fingerprint: str
    measurements: int = 0
    flagged: List[int] = field(default_factory=list)
    true_latency_disturbed: bool = False
    machine: Optional[dict] = None
    statistic: str = ROBUST_STATISTIC
    backend: str = "nnabla"

    @property
    def unit_name(self):
        return TIME_UNITS[self.unit]

    def to_dict(self):
        d = asdict(self)
        d["unit_name"] = self.unit_name
        return d


def _param_scope_of(f, names):
    for v in f.inputs[1:]:
        if v in names:
            return os.path.dirname(names[v]) or names[v]
    return ""


def build_report(network, estimator, n_run=100, true_latency=None):
    """Measures ``network`` (a :class:`LoadedNetwork`) and returns a :class:`NetworkReport`.

    Args:
        network: the loaded network.
        estimator: a :class:`~nas_hw.estimators.graph.LatencyGraphEstimator` whose
            ``batch_size`` is the network's batch size and ``on_error`` is ``'raise'``.
        n_run: timed runs of the true-latency measurement (Profiler).
        true_latency: a precomputed true latency in the estimator's unit (skips the Profiler).

    Raises:
        MeasurementError: a function could not be measured.
    """
    out = network.output
    with nn.parameter_scope("", scope=network.parameters):
        funcs = functions_of(out)
        measured_before = estimator.cache.measurements
        layer_latency = estimator.get_estimation(out, inputs=network.inputs)
        breakdown = _per_function(list(estimator.breakdown), funcs)
        memory = activation_memory(out)
        flops = count_flops(out, on_unknown="list")
        params = parameters_of(out)
        names = {v: k for k, v in nn.get_parameters(grad_only=False).items()}
        true_disturbed = False
        if true_latency is None:
            profiler = Profiler(out, device_id=estimator.device_id, ext_name=estimator.ext_name,
                                n_run=n_run, n_warmup=estimator.n_warmup,
                                max_measure_execution_time=estimator.max_measure_execution_time,
                                time_scale=estimator.time_scale, outlier=estimator.outlier,
                                per_function=False, backend=estimator.backend, inputs=network.inputs)
            with nn.context_scope(estimator.ctx):
                result = profiler.run()
            true_latency, true_disturbed = result["forward_all"], bool(result["disturbed"])
    param_set = set(params)
    counted = set()
    rows = []
    for i, (f, (cost, type_name)) in enumerate(zip(funcs, breakdown)):
        n_params = 0
        for v in f.inputs:
            if v in param_set and v not in counted:
                counted.add(v)
                n_params += int(numel(v.shape))
        scope = _param_scope_of(f, names)
        share = 100.0 * cost.latency / layer_latency if layer_latency > 0 else 0.0
        rows.append(LayerRow(i, scope or f.info.type_name, type_name, cost.latency, share,
                             n_params, memory.per_function[i].new_bytes, flops.per_function[i].flops,
                             bool(getattr(cost, "disturbed", False))))
    param_count = sum(int(numel(v.shape)) for v in params)
    return NetworkReport(
        source=network.source, name=network.name, unit=estimator.time_scale, rows=rows,
        layer_latency=float(layer_latency), true_latency=float(true_latency),
        param_count=param_count, param_bytes=param_count * dtype_bytes("float32"),
        activation_peak_bytes=memory.peak_bytes, activation_total_bytes=memory.total_bytes,
        flops=flops.flops, macs=flops.macs, unknown_flops=tuple(flops.unknown),
        input_shapes=[tuple(int(d) for d in v.shape) for v in network.inputs],
        ext_name=estimator.ext_name, device_id=estimator.device_id,
        fingerprint=estimator.fingerprint_key,
        measurements=estimator.cache.measurements - measured_before,
        flagged=[r.index for r in rows if r.disturbed], true_latency_disturbed=true_disturbed,
        machine=None if estimator.machine_at_start is None else estimator.machine_at_start.as_dict(),
        backend=estimator.backend.name)


def _per_function(breakdown, funcs):
    """``(LayerCost, type shown)`` per function. A unit of a fusing backend (its ``functions``
    say which) is shown on its first function's row, typed ``A+B+C``; its other functions cost 0
    there and say ``(fused into row k)``."""
    if not any(cost.functions for cost in breakdown):  # one entry per function, in order
        rows = [(cost, f.info.type_name) for cost, f in zip(breakdown, funcs)]
    else:
        rows = [None] * len(funcs)
        for cost in breakdown:
            first = cost.functions[0]
            kinds = [funcs[j].info.type_name for j in cost.functions]
            for k, j in enumerate(cost.functions):
                rows[j] = ((cost, "+".join(kinds)) if k == 0 else
                           (cost._replace(latency=0.0), f"{kinds[k]} (fused into row {first})"))
    if len(breakdown) > len(funcs) or None in rows or len(rows) != len(funcs):
        raise RuntimeError(f"the estimator reported {len(breakdown)} layers for {len(funcs)} "
                           "functions; use on_error='raise' for a report")
    return rows
