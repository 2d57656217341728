"""The one timing core every measurement goes through.

Times a callable with warm-up, a run count, a time budget and outlier trimming,
synchronising the device around every run, and returns numbers, never strings.
"""
import math
import time
from dataclasses import asdict, dataclass, replace
from typing import Optional

from ..checks import check_number, check_time_scale, check_timing
from ..constants import TIME_SCALES, TIMING_STATS
from ..errors import MeasurementError

def scale_factor(time_scale):
    """Seconds -> ``time_scale`` factor ('m': ms, 'u': us, 'n': ns).

    Raises:
        ValueError: ``time_scale`` is not one of 'm', 'u', 'n'.
    """
    return TIME_SCALES[check_time_scale(time_scale)]


@dataclass(frozen=True)
class TimingStats:
    """Statistics of one measurement, in seconds, with what is needed to judge it.

    Attributes:
        mean, median, std, min: over the runs kept after trimming.
        n_kept: runs kept after outlier trimming.
        n_measured: timed runs taken (warm-up excluded).
        value: the robust statistic served as the layer's latency (chosen in this module);
            ``None`` in statistics made before it existed, where :meth:`to` serves the median.
        spread: the runs' relative dispersion (dimensionless, see the timing core), ``None``
            when unknown.
        n_rounds: interleaved rounds the runs were taken in.
        load1: the 1-minute load average when measured (``None``: unknown).
        peers: other processes measuring into the same store when measured (``None``: unknown).
        disturbed: the measurement's own spread or conditions say it was disturbed; a disturbed
            measurement is never served as clean truth (flagged where it is stored and used).
    """

    mean: float
    median: float
    std: float
    min: float
    n_kept: int
    n_measured: int
    value: Optional[float] = None
    spread: Optional[float] = None
    n_rounds: int = 1
    load1: Optional[float] = None
    peers: Optional[int] = None
    disturbed: bool = False

    @property
    def robust(self):
        """The robust statistic in seconds (the median where ``value`` was never set)."""
        return self.median if self.value is None else self.value

    def to(self, time_scale="m", stat="mean"):
        """One statistic as a float in ``time_scale`` units (``'value'``: the robust one)."""
        if stat not in TIMING_STATS:
            raise ValueError(f"stat must be one of {TIMING_STATS}, got {stat!r}")
        return (self.robust if stat == "value" else getattr(self, stat)) * scale_factor(time_scale)

    def scaled(self, time_scale="m"):
        """A copy whose time fields are in ``time_scale`` units instead of seconds."""
        f = scale_factor(time_scale)
        return replace(self, mean=self.mean * f, median=self.median * f, std=self.std * f, min=self.min * f,
                       value=None if self.value is None else self.value * f)

    def as_dict(self):
        return asdict(self)


def summarize(samples, outlier=0.0):
    """Trims ``outlier`` of the sorted samples from each end and summarises the rest."""
    if not samples:
        raise MeasurementError("no timed run completed")
    bad = [s for s in samples if not (isinstance(s, float) or isinstance(s, int)) or not math.isfinite(s) or s < 0]
    if bad:
        raise MeasurementError(f"invalid timings measured (NaN, infinite or negative): {bad[:3]}")
    ordered = sorted(float(s) for s in samples)
    k = int(outlier * len(ordered))
    kept = ordered[k:len(ordered) - k] if k else ordered
    n = len(kept)
    mean = sum(kept) / n
    mid = n // 2
    median = kept[mid] if n % 2 else (kept[mid - 1] + kept[mid]) / 2
    std = math.sqrt(sum((x - mean) ** 2 for x in kept) / n)
    return TimingStats(mean=mean, median=median, std=std, min=kept[0], n_kept=n,
                       n_measured=len(ordered))


def measure(fn, n_run=100, n_warmup=10, max_measure_execution_time=1.0, outlier=0.0,
            synchronize=None, clock=time.perf_counter, run_timeout=None):
    """Times ``fn()``.

    Args:
        fn: the callable to time (no arguments).
        n_run: timed runs wanted (>= 1).
        n_warmup: untimed runs first (>= 0).
        max_measure_execution_time: budget in seconds for the whole measurement, warm-up
            included; once spent, measuring stops, but at least one timed run is kept.
        outlier: fraction of the sorted runs trimmed from each end, in [0, 0.5).
        synchronize: called before and after every run (device sync); ``None`` for none.
        clock: a function returning seconds (tests pass a fake one).
        run_timeout: if given, a single run longer than this many seconds raises
            ``MeasurementError`` instead of being recorded.

    Returns:
        TimingStats in seconds.

    Raises:
        ValueError: a setting is out of range.
        MeasurementError: ``fn`` raised, a timing is NaN/negative, or a run exceeded ``run_timeout``.
    """
    check_timing(n_run, n_warmup, max_measure_execution_time, outlier)
    sync = synchronize or (lambda: None)
    samples = []
    start = clock()
    try:
        for i in range(n_warmup + n_run):
            timed = i >= n_warmup
            if timed and samples and clock() - start >= max_measure_execution_time:
                break
            if not timed and clock() - start >= max_measure_execution_time:
                continue  # budget spent during warm-up: skip to the one timed run
            sync()
            t0 = clock()
            fn()
            sync()
            elapsed = clock() - t0
            if run_timeout is not None and elapsed > run_timeout:
                raise MeasurementError(
                    f"one run took {elapsed:.3g} s, over run_timeout={run_timeout} s")
            if timed:
                samples.append(elapsed)
    except MeasurementError:
        raise
    except Exception as err:
        raise MeasurementError(f"the measured call raised {type(err).__name__}: {err}") from err
    return summarize(samples, outlier)


class TimedSettings:
    """The measurement settings every timing object shares, validated once.

    Mixed into the Profiler and the layer estimators: ``_init_timing`` checks and stores
    ``n_run``, ``n_warmup``, ``max_measure_execution_time``, ``outlier``, ``time_scale`` and
    ``run_timeout``; ``_time(fn)`` measures with them, synchronising through ``self._sync``.

    ``timer`` is the measuring seam: a callable with :func:`measure`'s signature (tests pass a
    fake one); ``None`` uses :func:`measure`.
    """

    timer = None

    def _init_timing(self, n_run, n_warmup, max_measure_execution_time, outlier, time_scale,
                     run_timeout=None, timer=None):
        check_timing(n_run, n_warmup, max_measure_execution_time, outlier, time_scale)
        if run_timeout is not None:
            check_number("run_timeout", run_timeout, low=0, low_open=True)
        self.n_run = n_run
        self.n_warmup = n_warmup
        self.max_measure_execution_time = max_measure_execution_time
        self.outlier = outlier
        self.time_scale = time_scale
        self.run_timeout = run_timeout
        if timer is not None and not callable(timer):
            raise TypeError(f"timer must be a callable like nas_hw.measure.timing.measure, got {timer!r}")
        self.timer = timer

    def _sync(self):
        """Device synchronisation around every timed run; subclasses bind it to their device."""

    def _time(self, fn):
        """:func:`measure` of ``fn`` with this object's settings (TimingStats in seconds)."""
        timer = self.timer or measure
        return timer(fn, n_run=self.n_run, n_warmup=self.n_warmup,
                     max_measure_execution_time=self.max_measure_execution_time,
                     outlier=self.outlier, synchronize=self._sync, run_timeout=self.run_timeout)
