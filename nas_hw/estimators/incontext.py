"""In-context per-layer timing: every function timed *inside* a whole-graph forward.

Isolated timing (the layer-based estimators) runs one function alone on fresh inputs, again
and again; it never sees what a function costs between its neighbours (cold caches, the
framework's dispatch between functions). :class:`InContextProfiler` instead runs the whole
forward pass ``n_run`` times with nnabla's ``function_pre_hook`` / ``function_post_hook`` and
times each function between its two hooks (the device synchronised on both sides), then
summarises each function by the median over the runs.

The hooks add a little Python work *between* functions, so the timed forward is slower than a
plain one; the per-function times themselves exclude the hooks' own work, so their sum
approximates the plain forward minus the framework's between-function overhead.
"""
import logging
import time
from dataclasses import dataclass
from typing import List

import nnabla as nn
import numpy as np

from ..checks import check_one_of, check_timing
from ..constants import unit_name
from ..errors import MeasurementError
from ..measure.device import Device
from ..measure.graph import functions_of, init_unset_inputs, leaf_variables
from ..measure.timing import scale_factor
from .base import Estimator

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class InContextStat:
    """One function's time inside the whole forward, in the profiler's ``time_scale``.

    Attributes:
        index: position of the function in the graph's topological order.
        function_name: nnabla type name (``Convolution``...).
        inputs_shape: shapes of its inputs.
        median, mean, min: over the ``n_run`` timed forwards.
        n_run: timed forwards.
    """

    index: int
    function_name: str
    inputs_shape: tuple
    median: float
    mean: float
    min: float
    n_run: int


class InContextProfiler(Estimator):
    """Times each function of a graph inside whole forward passes.

    Args:
        graph: the output ``nnabla.Variable``.
        device_id: device index (ignored on ``cpu``).
        ext_name: ``cpu``, ``cuda`` or ``cudnn``.
        n_run: timed forwards.
        n_warmup: untimed forwards first (without hooks).
        time_scale: unit of the results: 'm', 'u' or 'n'.

    Attributes:
        stats: one :class:`InContextStat` per function after :meth:`run`.
        forward_hooked: median wall time of the hooked forward passes (``time_scale``).

    Example:
        >>> prof = InContextProfiler(out, ext_name="cpu", n_run=30)
        >>> stats = prof.run()
        >>> prof.total()   # sum of per-function medians, in ms
    """

    def __init__(self, graph, device_id=0, ext_name="cpu", n_run=30, n_warmup=3, time_scale="m"):
        if not isinstance(graph, nn.Variable):
            raise TypeError(f"graph must be an nnabla.Variable (the network output), got {type(graph).__name__}")
        check_timing(n_run=n_run, n_warmup=n_warmup, time_scale=time_scale)
        self.graph = graph
        self.device = Device(ext_name, device_id)
        self.n_run = n_run
        self.n_warmup = n_warmup
        self.time_scale = time_scale
        self.stats: List[InContextStat] = []
        self.forward_hooked = None

    def run(self):
        """Runs the timed forwards; returns :attr:`stats` (graph order).

        Raises:
            MeasurementError: a forward ran a function outside the graph's function list, or
                some function never ran.
        """
        funcs = functions_of(self.graph)
        if not funcs:
            raise MeasurementError("the graph has no function to time")
        index = {f: i for i, f in enumerate(funcs)}
        init_unset_inputs(leaf_variables(funcs))
        for _ in range(self.n_warmup):
            self.graph.forward(clear_no_need_grad=True)
        samples = [[] for _ in funcs]
        clock = time.perf_counter
        sync = self._sync
        started = {}

        def pre(f):
            sync()
            started[f] = clock()

        def post(f):
            sync()
            t = clock()
            i = index.get(f)
            if i is None:
                raise MeasurementError(f"function {f.info.type_name} ran but is not in the graph's function list")
            samples[i].append(t - started.pop(f))

        totals = []
        for _ in range(self.n_run):
            sync()
            t0 = clock()
            self.graph.forward(clear_no_need_grad=True, function_pre_hook=pre, function_post_hook=post)
            sync()
            totals.append(clock() - t0)
        factor = scale_factor(self.time_scale)
        missing = [f"{i}:{funcs[i].info.type_name}" for i, s in enumerate(samples) if len(s) != self.n_run]
        if missing:
            raise MeasurementError(f"functions not timed once per forward: {missing[:10]}")
        self.stats = [InContextStat(i, f.info.type_name, tuple(tuple(v.shape) for v in f.inputs),
                                    float(np.median(s)) * factor, float(np.mean(s)) * factor,
                                    float(np.min(s)) * factor, len(s))
                      for i, (f, s) in enumerate(zip(funcs, samples))]
        self.forward_hooked = float(np.median(totals)) * factor
        return self.stats

    def total(self, stat="median"):
        """Sum over functions of one statistic (``median``, ``mean`` or ``min``), in ``time_scale``."""
        check_one_of("stat", stat, ("median", "mean", "min"))
        if not self.stats:
            raise RuntimeError("nothing measured yet: call run() first")
        return float(sum(getattr(s, stat) for s in self.stats))

    ext_name = property(lambda self: self.device.ext_name, doc="The nnabla extension measured on.")
    device_id = property(lambda self: self.device.device_id, doc="The device index measured on.")

    @property
    def unit(self):
        """``'ms'``, ``'us'`` or ``'ns'``, from ``time_scale``."""
        return unit_name(self.time_scale)

    def get_estimation(self, graph=None):
        """Sum of the per-function in-context medians of ``graph`` (default: the constructor's)."""
        if graph is not None:
            if not isinstance(graph, nn.Variable):
                raise TypeError(f"graph must be an nnabla.Variable (the network output), got {type(graph).__name__}")
            self.graph = graph
        self.run()
        return self.total()

    def _sync(self):
        self.device.sync()


def incontext_latency(graph, device_id=0, ext_name="cpu", n_run=30, n_warmup=3, time_scale="m"):
    """Sum of the per-function in-context median times of ``graph`` (see :class:`InContextProfiler`)."""
    return InContextProfiler(graph, device_id, ext_name, n_run, n_warmup, time_scale).get_estimation()
