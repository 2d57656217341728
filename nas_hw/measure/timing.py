"""The one timing core every measurement goes through.

Times a callable (any backend: the caller passes its device synchronisation) with warm-up, a
run count and a time budget, and returns numbers, never strings. The rule, chosen from
measurements under competing load (``benchmarks/statistic.py``, ``docs/benchmarks.md``):

1. ``n_warmup`` untimed runs, then the ``n_run`` timed runs in up to ``TIMING_ROUNDS`` rounds;
   before each round the process sleeps ``ROUND_PAUSE_S`` (:func:`time_rounds`).
2. The latency served everywhere (``TimingStats.value``) is the minimum of the runs
   (``ROBUST_STATISTIC``, :func:`robust_value`): competing load only ever adds time to a run.
   A CPU speed probe (:class:`~nas_hw.measure.load.SpeedProbe`, given by the caller on CPU
   devices) is read around every round to tell the rounds run on a slowed core.
3. ``spread`` = how far the median round minimum lies above the value, relative to the value. A
   measurement is disturbed when most of its rounds ran on a slowed core, or when it has at
   least ``MIN_JUDGED_ROUNDS`` rounds of two runs or more and its spread is above
   ``SPREAD_LIMIT`` (and the median round more than ``SPREAD_FLOOR_S`` above the value): most of
   it was disturbed, and the value rests on a minority of rounds. A disturbed measurement is
   taken again, at most ``MAX_REPEATS`` times; if every attempt is disturbed, the one most at
   full speed (then least spread) is returned with ``disturbed=True`` (stored flagged, never
   served as clean truth).
4. The conditions are recorded with it: ``load1`` (1-minute load average) and ``peers`` (other
   processes measuring into the same store, given by the caller).
"""
import logging
import math
import time
from dataclasses import asdict, dataclass, replace
from typing import Optional

from ..checks import check_int, check_number, check_time_scale, check_timing
from ..constants import (MAX_REPEATS, MIN_JUDGED_ROUNDS, REPEAT_PAUSE_S, ROUND_PAUSE_S, SLOW_LIMIT,
                         SPREAD_FLOOR_S, SPREAD_LIMIT, TIME_SCALES, TIMING_ROUNDS, TIMING_STATS)
from ..errors import MeasurementError
from .load import cpu_speed_probe, load1
from .rounds import Rounds, _median, time_rounds

__all__ = ["TimingStats", "Rounds", "TimedSettings", "describe_quality", "judged", "measure", "robust_value",
           "scale_factor", "spread_of", "summarize", "time_rounds"]

logger = logging.getLogger(__name__)


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

    def to(self, time_scale="m", stat="value"):
        """One statistic as a float in ``time_scale`` units (``'value'``, the default: the robust
        one, the latency nas_hw serves)."""
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


def robust_value(rounds):
    """The robust statistic of a measurement taken in ``rounds`` (lists of seconds): the minimum
    of all runs (``ROBUST_STATISTIC``). Competing load only ever adds time to a run, so the
    fastest run is the one least disturbed; taking the runs in rounds, each after a pause, gives
    more moments to catch the core free."""
    return min(min(r) for r in rounds if r)


def spread_of(rounds, value=None):
    """How far a typical round lies above the value: ``(median of the round minimums - value) /
    value``. Small when most rounds reached the value; large when most rounds were disturbed
    (the value then rests on a minority of rounds). ``None`` with fewer than two rounds (nothing
    to compare)."""
    mins = [min(r) for r in rounds if r]
    if len(mins) < 2:
        return None
    value = robust_value(rounds) if value is None else value
    if value <= 0:
        return 0.0
    return (_median(mins) - value) / value


def judged(rounds):
    """True when a measurement has enough rounds to judge its spread (``MIN_JUDGED_ROUNDS``
    rounds of at least two runs): a round of one run has no minimum worth the name."""
    return sum(1 for r in rounds if len(r) >= 2) >= MIN_JUDGED_ROUNDS


def summarize(samples, outlier=0.0, spread_limit=SPREAD_LIMIT, slow_limit=SLOW_LIMIT):
    """Summarises one measurement.

    Args:
        samples: the timed runs in seconds: a flat list (one round), a list of rounds, or
            :class:`Rounds` (with the speed probe's view of each round).
        outlier: fraction of the sorted runs trimmed from each end for ``mean``, ``median``,
            ``std`` and ``min`` (the robust ``value`` needs no trimming).
        spread_limit: a judged measurement whose spread is above it is ``disturbed``.
        slow_limit: rounds whose speed ratio is above it ran on a slowed core; fewer than half
            of the rounds at full speed make the measurement ``disturbed``.

    Returns:
        TimingStats (seconds) with ``value``, ``spread``, ``n_rounds`` and ``disturbed`` set;
        the conditions (``load1``, ``peers``) are left for the caller.
    """
    if isinstance(samples, Rounds):
        rounds, speeds = samples.runs, samples.speeds
    else:
        if not samples:
            raise MeasurementError("no timed run completed")
        rounds = [list(r) for r in samples] if isinstance(samples[0], (list, tuple)) else [list(samples)]
        speeds = [None] * len(rounds)
    pairs = [(list(r), s) for r, s in zip(rounds, speeds) if r]
    flat = [x for r, _ in pairs for x in r]
    if not flat:
        raise MeasurementError("no timed run completed")
    bad = [x for x in flat if isinstance(x, bool) or not isinstance(x, (float, int)) or not math.isfinite(x) or x < 0]
    if bad:
        raise MeasurementError(f"invalid timings measured (NaN, infinite or negative): {bad[:3]}")
    rounds = [[float(x) for x in r] for r, _ in pairs]
    ordered = sorted(flat)
    k = int(outlier * len(ordered))
    kept = [float(x) for x in (ordered[k:len(ordered) - k] if k else ordered)]
    n = len(kept)
    mean = sum(kept) / n
    std = math.sqrt(sum((x - mean) ** 2 for x in kept) / n)
    n_fast = sum(1 for _, s in pairs if s is None or s <= slow_limit)
    slowed = 2 * n_fast < len(rounds)  # most rounds ran on a slowed core
    value = robust_value(rounds)
    spread = spread_of(rounds, value)
    above = _median([min(r) for r in rounds]) - value  # seconds a typical round lies above the value
    disturbed = bool(slowed or (judged(rounds) and spread is not None and spread > spread_limit
                                and above > SPREAD_FLOOR_S))
    return TimingStats(mean=mean, median=_median(kept), std=std, min=kept[0], n_kept=n,
                       n_measured=len(ordered), value=value, spread=spread, n_rounds=len(rounds),
                       disturbed=disturbed)


def measure(fn, n_run=100, n_warmup=10, max_measure_execution_time=1.0, outlier=0.0,
            synchronize=None, clock=time.perf_counter, run_timeout=None, n_rounds=TIMING_ROUNDS,
            max_repeats=MAX_REPEATS, spread_limit=SPREAD_LIMIT, pause=time.sleep, pause_s=ROUND_PAUSE_S,
            probe=None, peers=None, label=None):
    """Times ``fn()`` robustly (any backend: the device synchronisation is ``synchronize``).

    The runs are taken in rounds (:func:`time_rounds`); the served statistic is
    :func:`robust_value` (the minimum of the runs). A *disturbed* measurement (see
    :func:`summarize`: most rounds above the value by more than ``spread_limit``, or most rounds
    on a slowed core) is taken again, at most ``max_repeats``
    times (without warm-up, after a pause of ``REPEAT_PAUSE_S`` times the attempt number); the
    first clean attempt is returned. When every attempt is disturbed, the least dispersed one
    is returned with ``disturbed=True`` (its caller stores it flagged, with a warning).

    Args:
        fn: the callable to time (no arguments).
        n_run: timed runs wanted (>= 1).
        n_warmup: untimed runs first (>= 0).
        max_measure_execution_time: budget in seconds for one attempt, warm-up included; once
            spent, measuring stops, but at least one timed run is kept.
        outlier: fraction of the sorted runs trimmed from each end of ``mean``/``median``/
            ``std``/``min``, in [0, 0.5).
        synchronize: called before and after every run (device sync); ``None`` for none.
        clock: a function returning seconds (tests pass a fake one).
        run_timeout: if given, a single run longer than this many seconds raises
            ``MeasurementError`` instead of being recorded.
        n_rounds, pause, pause_s, probe: the rounds (see :func:`time_rounds`).
        max_repeats, spread_limit: the disturbance rule.
        peers: ``() -> int``, the other processes measuring into the same store (recorded).
        label: what is measured, for the log.

    Returns:
        TimingStats in seconds, every quality field filled (``load1``: the 1-minute load
        average at the end; ``peers``: ``peers()`` or ``None``).

    Raises:
        ValueError: a setting is out of range.
        MeasurementError: ``fn`` raised, a timing is NaN/negative, or a run exceeded ``run_timeout``.
    """
    check_timing(n_run, n_warmup, max_measure_execution_time, outlier)
    check_int("max_repeats", max_repeats, low=0)
    check_number("spread_limit", spread_limit, low=0, low_open=True)
    attempts = []
    for attempt in range(max_repeats + 1):
        if attempt:
            pause(REPEAT_PAUSE_S * attempt)
        rounds = time_rounds(fn, n_run, n_warmup if not attempt else 0, max_measure_execution_time, n_rounds,
                             synchronize, clock, run_timeout, pause, pause_s, probe)
        stats = summarize(rounds, outlier, spread_limit)
        full_speed = len(rounds.fast()) / len(rounds.runs)
        attempts.append((stats, full_speed))
        if not stats.disturbed:
            break
        logger.debug("%s: disturbed measurement (attempt %d of %d: spread %s, %d of %d rounds at full speed)",
                    label or "measurement", attempt + 1, max_repeats + 1,
                    "n/a" if stats.spread is None else f"{100 * stats.spread:.1f}%",
                    len(rounds.fast()), len(rounds.runs))
    best = attempts[-1][0]
    if best.disturbed:  # the attempt most at full speed, then the least dispersed
        best = min(attempts, key=lambda a: (-a[1], a[0].spread or 0.0))[0]
    return replace(best, load1=load1(), peers=None if peers is None else int(peers()))


def describe_quality(stats):
    """One line on a measurement's quality for logs: spread, rounds, load, peers."""
    from .load import cores

    spread = "n/a" if stats.spread is None else f"{100 * stats.spread:.1f}%"
    load = "unknown" if stats.load1 is None else f"{stats.load1:.1f}"
    peers = "" if not stats.peers else f", {stats.peers} other measuring process(es)"
    return f"spread {spread} over {stats.n_rounds} round(s), 1-min load average {load} on {cores()} core(s){peers}"


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

    def _speed_probe(self):
        """The CPU speed probe's ``ratio`` when this object measures on the CPU (``self.device``
        with ``ext_name == 'cpu'``), else ``None``: a GPU kernel's time does not follow the
        host core's speed."""
        device = getattr(self, "device", None)
        if device is None or getattr(device, "ext_name", None) != "cpu":
            return None
        return cpu_speed_probe().ratio

    def _time(self, fn, label=None, peers=None):
        """:func:`measure` of ``fn`` with this object's settings (TimingStats in seconds).

        Args:
            label: what is measured, for the log.
            peers: ``() -> int``, other processes measuring into the same store (recorded).
        """
        timer = self.timer or measure
        probe = self._speed_probe()
        extra = {k: v for k, v in (("label", label), ("peers", peers), ("probe", probe)) if v is not None}
        return timer(fn, n_run=self.n_run, n_warmup=self.n_warmup,
                     max_measure_execution_time=self.max_measure_execution_time,
                     outlier=self.outlier, synchronize=self._sync, run_timeout=self.run_timeout, **extra)
