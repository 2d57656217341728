"""The one contract every estimator follows.

An estimator answers ``get_estimation(target)`` with a number in the unit its ``unit``
attribute names (``'ms'``, ``'bytes'``, ``'FLOPs'``, ``'samples/s'``, ``'mJ'``...), raises a
typed error instead of inventing a number, and forgets its in-process state on ``reset()``.
Code that consumes estimators relies on this contract only: it never probes attributes or
class names.

Layer-based latency estimators (:class:`~nas_hw.estimators.layer.LayerEstimator`) add what a
candidate table and a calibration need: ``estimate_module(module, input_shapes)``,
``estimate_network(net, out, inputs)`` and ``n_layers`` of the last estimate.
"""


class Estimator:
    """Base of every nas_hw estimator.

    Attributes:
        unit: the unit of every number :meth:`get_estimation` returns.
    """

    unit = None

    def get_estimation(self, target, *args, **kwargs):
        """The estimate of ``target`` (a graph's output Variable, a module, a builder...), a
        number in :attr:`unit`."""
        raise NotImplementedError(f"{type(self).__name__} must implement get_estimation")

    def reset(self):
        """Forgets what this object remembers in-process (persistent stores keep their rows)."""
