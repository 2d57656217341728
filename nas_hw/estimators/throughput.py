"""Network-based throughput: whole forward passes timed at a chosen batch size.

The network is given as a builder ``build(batch_size) -> nnabla.Variable`` (its output), so
the same network can be rebuilt at batch 1, 8, 64... Parametric functions created under the
same names (``PF.convolution(..., name='c1')``) share their parameters between batch sizes.
"""
import logging
from dataclasses import dataclass

import nnabla as nn

from ..device import check_device_id, check_ext_name, get_context, synchronize
from ..errors import MeasurementError
from ..graph_utils import functions_of, init_unset_inputs, leaf_variables
from ..timing import TimingStats, check_settings, measure, scale_factor

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ThroughputResult:
    """Latency and throughput of one batch size.

    Attributes:
        batch_size: samples per forward pass.
        latency: mean time of one forward pass, in ``time_scale`` units.
        time_scale: 'm' (ms), 'u' (us) or 'n' (ns).
        samples_per_s: ``batch_size / latency`` (latency in seconds).
        stats: the full :class:`~nas_hw.timing.TimingStats` in seconds.
    """

    batch_size: int
    latency: float
    time_scale: str
    samples_per_s: float
    stats: TimingStats


def _check_batch_size(batch_size):
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
    return batch_size


@dataclass(frozen=True)
class ThroughputEstimator:
    """Times whole forward passes of a network rebuilt at a given batch size.

    Settings have the same names and meaning as :class:`~nas_hw.estimators.network.Profiler`'s.

    Example:
        >>> def build(batch_size):
        ...     x = nn.Variable((batch_size, 3, 32, 32))
        ...     return PF.convolution(x, 16, (3, 3), name="c1")
        >>> est = ThroughputEstimator(n_run=20)
        >>> est.measure(build, batch_size=8).samples_per_s   # samples per second
    """

    n_run: int = 100
    n_warmup: int = 10
    max_measure_execution_time: float = 1.0
    outlier: float = 0.0
    time_scale: str = "m"
    ext_name: str = "cpu"
    device_id: int = 0

    def __post_init__(self):
        check_settings(self.n_run, self.n_warmup, self.max_measure_execution_time,
                       self.outlier, self.time_scale)
        check_device_id(self.device_id)
        check_ext_name(self.ext_name)

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
        batch_size = _check_batch_size(batch_size)
        ctx = get_context(self.ext_name, self.device_id)
        with nn.context_scope(ctx):
            output = build(batch_size)
            if not isinstance(output, nn.Variable):
                raise TypeError(f"build({batch_size}) returned {type(output).__name__}, "
                                "expected the output nnabla.Variable")
            init_unset_inputs(leaf_variables(functions_of(output)))
            stats = measure(lambda: output.forward(clear_no_need_grad=True),
                            n_run=self.n_run, n_warmup=self.n_warmup,
                            max_measure_execution_time=self.max_measure_execution_time,
                            outlier=self.outlier,
                            synchronize=lambda: synchronize(self.ext_name, self.device_id))
        if stats.mean <= 0:
            raise MeasurementError(f"forward at batch {batch_size} measured {stats.mean} s; "
                                   "no throughput can be derived from a zero time")
        logger.debug("batch %d: %.6f s per forward (%d runs)", batch_size, stats.mean,
                     stats.n_measured)
        return ThroughputResult(batch_size=batch_size,
                                latency=stats.mean * scale_factor(self.time_scale),
                                time_scale=self.time_scale,
                                samples_per_s=batch_size / stats.mean, stats=stats)

    def sweep(self, build, batch_sizes):
        """:meth:`measure` at each of ``batch_sizes``; a list of :class:`ThroughputResult`."""
        return [self.measure(build, b) for b in batch_sizes]

    def get_estimation(self, build, batch_size=1):
        """Throughput in samples per second at ``batch_size`` (a float)."""
        return self.measure(build, batch_size).samples_per_s


def measure_throughput(build, batch_size=1, **settings):
    """Shortcut for ``ThroughputEstimator(**settings).measure(build, batch_size)``."""
    return ThroughputEstimator(**settings).measure(build, batch_size)
