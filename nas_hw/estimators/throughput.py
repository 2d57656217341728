"""Network-based throughput: whole forward passes timed at a chosen batch size.

The network is given as a builder ``build(batch_size) -> nnabla.Variable`` (its output), so
the same network can be rebuilt at batch 1, 8, 64... Parametric functions created under the
same names (``PF.convolution(..., name='c1')``) share their parameters between batch sizes.
"""
import logging
from dataclasses import dataclass

import nnabla as nn

from ..checks import check_batch_size
from ..errors import MeasurementError
from ..measure.device import Device
from ..measure.graph import functions_of, init_unset_inputs, leaf_variables
from ..measure.timing import TimedSettings, TimingStats, scale_factor
from .base import Estimator

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ThroughputResult:
    """Latency and throughput of one batch size.

    Attributes:
        batch_size: samples per forward pass.
        latency: time of one forward pass, in ``time_scale`` units (the timing core's robust
            statistic, as every nas_hw latency).
        time_scale: 'm' (ms), 'u' (us) or 'n' (ns).
        samples_per_s: ``batch_size / latency`` (latency in seconds).
        stats: the full :class:`~nas_hw.measure.timing.TimingStats` in seconds.
    """

    batch_size: int
    latency: float
    time_scale: str
    samples_per_s: float
    stats: TimingStats


class ThroughputEstimator(TimedSettings, Estimator):
    """Times whole forward passes of a network rebuilt at a given batch size.

    Settings have the same names and meaning as :class:`~nas_hw.estimators.network.Profiler`'s.

    Example:
        >>> def build(batch_size):
        ...     x = nn.Variable((batch_size, 3, 32, 32))
        ...     return PF.convolution(x, 16, (3, 3), name="c1")
        >>> est = ThroughputEstimator(n_run=20)
        >>> est.measure(build, batch_size=8).samples_per_s   # samples per second
    """

    unit = "samples/s"

    def __init__(self, n_run=100, n_warmup=10, max_measure_execution_time=1.0, outlier=0.0,
                 time_scale="m", ext_name="cpu", device_id=0):
        self._init_timing(n_run, n_warmup, max_measure_execution_time, outlier, time_scale)
        self.device = Device(ext_name, device_id)

    ext_name = property(lambda self: self.device.ext_name, doc="The nnabla extension measured on.")
    device_id = property(lambda self: self.device.device_id, doc="The device index measured on.")

    def _sync(self):
        self.device.sync()

    def measure(self, build, batch_size=1):
        """Builds the network at ``batch_size`` in the device's context and times its forward.

        Args:
            build: callable ``build(batch_size) -> nnabla.Variable`` returning the output.
            batch_size: samples per forward pass.

        Returns:
            ThroughputResult.

        Raises:
            TypeError: ``build`` is not callable or did not return an ``nnabla.Variable``.
            ValueError: ``batch_size`` is not an integer >= 1.
            ExtensionUnavailableError: ``ext_name`` cannot be used here.
            MeasurementError: the forward pass failed.
        """
        if not callable(build):
            raise TypeError(f"build must be a callable build(batch_size) -> nnabla.Variable, "
                            f"got {type(build).__name__}")
        batch_size = check_batch_size(batch_size)
        with nn.context_scope(self.device.context):
            output = build(batch_size)
            if not isinstance(output, nn.Variable):
                raise TypeError(f"build({batch_size}) returned {type(output).__name__}, "
                                "expected the output nnabla.Variable")
            init_unset_inputs(leaf_variables(functions_of(output)))
            stats = self._time(lambda: output.forward(clear_no_need_grad=True))
        latency_s = stats.robust
        if latency_s <= 0:
            raise MeasurementError(f"forward at batch {batch_size} measured {latency_s} s; "
                                   "no throughput can be derived from a zero time")
        logger.debug("batch %d: %.6f s per forward (%d runs)", batch_size, latency_s, stats.n_measured)
        return ThroughputResult(batch_size=batch_size,
                                latency=latency_s * scale_factor(self.time_scale),
                                time_scale=self.time_scale,
                                samples_per_s=batch_size / latency_s, stats=stats)

    def sweep(self, build, batch_sizes):
        """:meth:`measure` at each of ``batch_sizes``; a list of :class:`ThroughputResult`."""
        return [self.measure(build, b) for b in batch_sizes]

    def get_estimation(self, build, batch_size=1):
        """Throughput in samples per second at ``batch_size`` (a float)."""
        return self.measure(build, batch_size).samples_per_s


def measure_throughput(build, batch_size=1, **settings):
    """Shortcut for ``ThroughputEstimator(**settings).measure(build, batch_size)``."""
    return ThroughputEstimator(**settings).measure(build, batch_size)
