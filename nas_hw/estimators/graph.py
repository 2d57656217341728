"""Layer-based latency per nnabla function (``LatencyGraphEstimator``)."""
import nnabla as nn
import nnabla.functions as F

from ..measure.graph import batch_of, non_parameter_leaves, walk
from .layer import LayerEstimator


class LatencyGraphEstimator(LayerEstimator):
    """Estimates a graph's latency as the sum of its functions' latencies, each function
    measured once alone (forward only) and then served from the persistent cache.

    Same constructor arguments as :class:`~nas_hw.estimators.base.LayerEstimator`
    (the seed's ``device_id``, ``ext_name``, ``outlier``, ``time_scale``, ``n_warmup``,
    ``max_measure_execution_time``, ``n_run`` plus ``cache``, ``batch_size``...).

    Re-estimating the very same graph (the same output Variable) is answered from a small
    in-process memo of whole estimates; ``reset()`` clears it.

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
        if inputs is None:
            hit = self._estimates.get(graph)
            if hit is not None:
                self._begin()
                self.breakdown = list(hit[1])
                return hit[0]
        funcs, all_leaves = walk(graph)
        leaves = self._batch_leaves(funcs, all_leaves, inputs)
        self._begin()
        total = self._finish(self._function_costs(funcs, leaves, inputs=inputs))
        if inputs is None and not self.failures:
            self._estimates.put(graph, total, self.breakdown)
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
            leaves = non_parameter_leaves(funcs)
        graph_batch = batch_of(leaves)
        if graph_batch == self.batch_size:
            return []
        if graph_batch is None and leaves:
            raise ValueError("cannot tell the graph's batch axis (its inputs disagree on the first "
                             "dimension); pass inputs=[...] to get_estimation")
        return leaves

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
        with nn.auto_forward(False):
            out = module(*xs)
        if isinstance(out, (list, tuple)):
            out = F.sink(*out)
        return self.predict(out, inputs=xs)


def _with_inference(module, fn):
    state = module.training
    module.apply(training=False)
    try:
        return fn()
    finally:
        module.apply(training=state)
