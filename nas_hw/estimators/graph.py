"""Layer-based latency per nnabla function (``LatencyGraphEstimator``)."""
import nnabla as nn
import nnabla.functions as F

from .. import nnabla_nas_compat as nnas
from ..measure.graph import walk_inputs
from .layer import LayerEstimator


class LatencyGraphEstimator(LayerEstimator):
    """Estimates a graph's latency as the sum of its functions' latencies, each function
    measured once alone (forward only) and then served from the persistent cache.

    Same constructor arguments as :class:`~nas_hw.estimators.layer.LayerEstimator`
    (the seed's ``device_id``, ``ext_name``, ``outlier``, ``time_scale``, ``n_warmup``,
    ``max_measure_execution_time``, ``n_run`` plus ``cache``, ``batch_size``...).

    A query walks the graph and looks every function up (in-process, then in the cache). The
    estimator keeps no graph, Variable or array: a search loop may estimate any number of
    distinct graphs in bounded memory, and a graph is freed as soon as its user drops it.

    Example:
        >>> est = LatencyGraphEstimator(ext_name="cpu", device_id=0)
        >>> latency_ms = est.get_estimation(out)   # out: the graph's output Variable
    """

    def predict(self, graph, inputs=None):
        """Latency of the graph ending in ``graph`` (an ``nnabla.Variable``), in ``time_scale``.

        Args:
            graph: the output Variable.
            inputs: the graph's input Variables (the ones carrying the batch axis). By default
                every leaf that is neither a registered parameter nor needs a gradient.

        Raises:
            MeasurementError: a function could not be measured (``on_error='raise'``).
            MissingMeasurementsError: offline and some functions are not in the cache.
        """
        if not hasattr(graph, "visit") or not hasattr(graph, "parent"):
            raise TypeError(f"LatencyGraphEstimator needs an nnabla.Variable (a graph's output), "
                            f"got {type(graph).__name__}")
        funcs, inputs_of, all_leaves = walk_inputs(graph)
        leaves = self._batch_leaves(funcs, all_leaves, inputs)
        self._begin()
        return self._finish(self._function_costs(funcs, leaves, inputs=None if inputs is None else list(inputs),
                                                 inputs_of=inputs_of))

    def get_estimation(self, graph, inputs=None):
        """Alias of :meth:`predict`, the seed's name."""
        return self.predict(graph, inputs)

    def estimate_module(self, module, input_shapes):
        """Latency of ``module`` called on inputs of ``input_shapes`` (inference mode)."""
        return _with_inference(module, lambda: self._estimate_built(module, input_shapes))

    def estimate_network(self, net, out, inputs):
        """Latency of the graph ending in ``out`` whose batch axis is carried by ``inputs``."""
        return self.predict(out, inputs=None if inputs is None else list(inputs))

    def _estimate_built(self, module, input_shapes):
        xs = [nn.Variable(tuple(s), need_grad=False) for s in input_shapes]
        with nn.auto_forward(False), nnas.uncached_calls(module):
            out = module(*xs)
        if isinstance(out, (list, tuple)):
            out = F.sink(*out)
        return self.predict(out, inputs=xs)


def _with_inference(module, fn):
    flags = nnas.training_flags(module)
    module.apply(training=False)
    try:
        return fn()
    finally:
        nnas.restore_training_flags(flags)
