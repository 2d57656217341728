"""Network-based estimation: the true latency of a whole graph (``Profiler``) and throughput."""
import logging
import os
from dataclasses import dataclass
from typing import Optional, Tuple

import nnabla as nn

from ..constants import unit_name
from ..measure.backends import make_backend
from ..measure.backends.fusion import graph_inputs
from ..measure.backends.nnabla import NnablaBackend
from ..measure.backends.units import plan_units
from ..measure.device import Device
from ..measure.graph import functions_of, init_unset_inputs, leaf_variables
from ..measure.timing import TimedSettings, describe_quality, scale_factor
from .base import Estimator

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class FunctionStat:
    """One function's forward (or backward) time inside a profiled graph, like nnabla's
    ``ProfileStat`` but with ``mean_time`` a float in the profiler's ``time_scale``, and
    ``time`` the robust statistic every nas_hw latency is (see :mod:`nas_hw.measure.timing`)."""

    parameter_scope: str
    inputs_shape: Tuple
    args_info: Tuple
    function_name: str
    mean_time: float
    n_run: int
    time: Optional[float] = None
    disturbed: bool = False


class Profiler(TimedSettings, Estimator):
    """Network-based latency: times the whole graph at once (the *true* latency).

    The seed's API: ``Profiler(graph, device_id, ext_name, ...)``, ``run()``,
    ``result['forward_all']`` (a float in ``time_scale``); ``get_estimation()`` runs and returns
    that float (the estimator contract). Per-function forward times are in
    ``result['forward']`` as with nnabla's ``GraphProfiler``; with a ``solver`` also
    ``backward_all`` and ``training`` (forward + backward + update).

    Every time in ``result`` is the robust statistic of nas_hw's timing core, the one every
    layer latency is (:mod:`nas_hw.measure.timing`: the median of the round minimums of the
    ``n_run`` runs, taken in rounds, over the rounds the CPU ran at full speed), not the mean:
    ``result['forward_all']`` is the network's latency as the layer estimators and the
    calibration see it. The full statistics are in ``result['forward_all_stats']``
    (:class:`~nas_hw.measure.timing.TimingStats`); ``result['disturbed']`` names the
    measurements that stayed disturbed after the core's repeats (logged as a WARNING).

    Inputs and parameters whose data was never set are zero-filled before timing, so no
    function reads uninitialised memory; data you did set is left untouched.

    Args:
        graph: the output ``nnabla.Variable`` of the network.
        device_id: device index (ignored on ``cpu``).
        ext_name: ``cpu``, ``cuda`` or ``cudnn``.
        solver: an ``nnabla.solvers.Solver`` to also time training steps, or ``None``.
        n_run: timed runs per measurement.
        max_measure_execution_time: time budget in seconds per measurement.
        time_scale: unit of the results: 'm' (ms), 'u' (us), 'n' (ns).
        n_warmup: untimed runs first.
        outlier: fraction trimmed from each end of the sorted runs, in [0, 0.5).
        per_function: also time every function on its own (``result['forward']``); on a
            fusing backend, every unit the runtime runs (a fused kernel) on its own.
        backend: where the network runs: ``"nnabla"`` (default), ``"onnxruntime"`` (exported to
            ONNX, run on ONNX Runtime; the ``onnx`` extra) or a backend built with
            :func:`nas_hw.measure.backends.make_backend`. Only nnabla times a ``solver``.
        inputs: the graph's input Variables, for a backend that exports the graph (default:
            its leaves that are neither registered parameters nor need a gradient).
    """

    def __init__(self, graph, device_id=0, ext_name="cpu", solver=None, n_run=100,
                 max_measure_execution_time=1, time_scale="m", n_warmup=10, outlier=0.0,
                 per_function=True, backend="nnabla", inputs=None):
        if not isinstance(graph, nn.Variable):
            raise TypeError(f"graph must be an nnabla.Variable (the network output), got {type(graph).__name__}")
        self._init_timing(n_run, n_warmup, max_measure_execution_time, outlier, time_scale)
        self.graph = graph
        self.device = Device(ext_name, device_id)
        self.backend = NnablaBackend(device=self.device) if backend == "nnabla" else make_backend(backend)
        if solver is not None and self.backend.name != "nnabla":
            raise ValueError(f"solver: training steps are timed on the nnabla backend only, not on "
                             f"{self.backend.name!r}")
        self.solver = solver
        self.inputs = None if inputs is None else list(inputs)
        self.per_function = per_function
        self.result = {}

    ext_name = property(lambda self: self.device.ext_name, doc="The nnabla extension measured on.")
    device_id = property(lambda self: self.device.device_id, doc="The device index measured on.")

    @property
    def unit(self):
        """``'ms'``, ``'us'`` or ``'ns'``, from ``time_scale``."""
        return unit_name(self.time_scale)

    @property
    def fingerprint_key(self):
        """The key of the device and backend the network is timed on."""
        return self.backend.fingerprint.key

    def _sync(self):
        self.backend.sync()

    def get_estimation(self, graph=None):
        """The true latency of the whole graph (``result['forward_all']``), in ``time_scale``.

        Args:
            graph: another output Variable to profile instead of the constructor's.
        """
        if graph is not None:
            if not isinstance(graph, nn.Variable):
                raise TypeError(f"graph must be an nnabla.Variable (the network output), got {type(graph).__name__}")
            self.graph = graph
            self.inputs = None  # the constructor's inputs belong to the constructor's graph
        return self.run()["forward_all"]

    def measure_forward(self):
        """Times the whole forward pass on the backend and returns its
        :class:`~nas_hw.measure.timing.TimingStats` (s)."""
        prepared = self.backend.prepare_network(self.graph, self.inputs)
        return prepared.adjust(self._time(prepared.run, label="forward_all"))

    def time_profiling_forward(self):
        """Times each function's forward on its own, in graph order (each unit's, on a fusing
        backend: ``function_name`` then names its functions, ``Convolution+BatchNormalization+ReLU``)."""
        if not self.backend.single_function_units:
            return self._time_units()
        funcs = functions_of(self.graph)
        init_unset_inputs(leaf_variables(funcs))
        self.graph.forward()  # every intermediate buffer holds real data before timing
        name_of = {v: k for k, v in nn.get_parameters(grad_only=False).items()}
        factor = scale_factor(self.time_scale)
        stats = []
        for f in funcs:
            st = self._time(lambda f=f: f.forward(f.inputs, f.outputs))
            scope = None
            if len(f.inputs) > 1 and f.inputs[1] in name_of:
                scope = os.path.dirname(name_of[f.inputs[1]])
            stats.append(FunctionStat(scope, tuple(tuple(x.shape) for x in f.inputs),
                                      tuple(f.info.args.items()), f.info.type_name,
                                      st.mean * factor, st.n_measured, st.robust * factor, st.disturbed))
        self.result["forward"] = stats
        return stats

    def _time_units(self):
        funcs = functions_of(self.graph)
        factor = scale_factor(self.time_scale)
        stats = []
        inputs = graph_inputs(funcs) if self.inputs is None else self.inputs
        for u in plan_units(self.backend, funcs, inputs, [self.graph]):
            prepared = self.backend.prepare_functions(list(u.funcs), list(u.inputs), list(u.outputs),
                                                      list(u.input_shapes))
            mean, n = 0.0, 0
            if not prepared.noop:
                st = prepared.adjust(self._time(prepared.run))
                mean, n = st.mean * factor, st.n_measured
            stats.append(FunctionStat(None, u.input_shapes, (), "+".join(f.info.type_name for f in u.funcs), mean, n))
        self.result["forward"] = stats
        return stats

    def run(self):
        """Measures everything; results land in ``self.result``. Returns ``self.result``."""
        factor = scale_factor(self.time_scale)
        disturbed = []
        if self.per_function:
            self.time_profiling_forward()
        fwd = self.measure_forward()
        self.result["forward_all"] = fwd.robust * factor
        self.result["n_run_forward_all"] = fwd.n_measured
        self.result["forward_all_stats"] = fwd
        if fwd.disturbed:
            disturbed.append("forward_all")
        if self.solver is not None:
            bwd = self._time(lambda: self.graph.backward(clear_buffer=True), label="backward_all")
            self.result["backward_all"] = bwd.robust * factor
            self.result["n_run_backward_all"] = bwd.n_measured
            if bwd.disturbed:
                disturbed.append("backward_all")

            def step():
                self.solver.zero_grad()
                self.graph.forward(clear_no_need_grad=True)
                self.graph.backward(clear_buffer=True)
                self.solver.update()

            train = self._time(step, label="training")
            self.result["training"] = train.robust * factor
            self.result["n_run_training"] = train.n_measured
            if train.disturbed:
                disturbed.append("training")
        self.result["disturbed"] = disturbed
        if disturbed:
            logger.warning("Profiler: %s stayed disturbed after the timing core's repeats (%s): the machine is "
                           "busy, these latencies are not clean truth", ", ".join(disturbed), describe_quality(fwd))
        return self.result
