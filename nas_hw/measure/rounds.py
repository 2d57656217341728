"""Taking a measurement's runs in rounds: the raw material of the timing core
(:mod:`nas_hw.measure.timing` summarises it)."""
import time
from dataclasses import dataclass
from typing import List, Optional

from ..constants import ROUND_PAUSE_S, SLOW_LIMIT, TIMING_ROUNDS
from ..errors import MeasurementError


def _median(values):
    ordered = sorted(values)
    n = len(ordered)
    mid = n // 2
    return ordered[mid] if n % 2 else (ordered[mid - 1] + ordered[mid]) / 2


@dataclass(frozen=True)
class Rounds:
    """The raw runs of one measurement attempt.

    Attributes:
        runs: one list of timed runs (seconds) per round.
        speeds: per round, the larger of the CPU speed probe's ratios before and after it
            (``None`` per round when no probe was given).
    """

    runs: List[List[float]]
    speeds: List[Optional[float]]

    def fast(self, slow_limit=SLOW_LIMIT):
        """The rounds taken at full speed (all of them without a probe)."""
        return [r for r, s in zip(self.runs, self.speeds) if s is None or s <= slow_limit]


def time_rounds(fn, n_run=100, n_warmup=10, max_measure_execution_time=1.0, n_rounds=TIMING_ROUNDS,
                synchronize=None, clock=time.perf_counter, run_timeout=None, pause=time.sleep,
                pause_s=ROUND_PAUSE_S, probe=None):
    """Times ``fn()`` in rounds and returns the raw runs (:class:`Rounds`).

    ``n_warmup`` untimed runs first, then at most ``n_run`` timed runs split into at most
    ``n_rounds`` rounds; before each round the process sleeps ``pause_s`` (it gives the core up,
    so the round starts on a fresh scheduler slice). The rounds are sized so that all of them fit
    in the time budget ``max_measure_execution_time`` (warm-up and pauses included) as far as the
    runs measured so far tell; once the budget is spent measuring stops, keeping at least one
    timed run. ``probe`` (``() -> speed ratio``, e.g. :meth:`~nas_hw.measure.load.SpeedProbe.ratio`)
    is read before each round and after the last.

    Raises:
        MeasurementError: ``fn`` raised, or one run exceeded ``run_timeout``.
    """
    sync = synchronize or (lambda: None)
    budget = float(max_measure_execution_time)
    start = clock()
    times = []  # every run, warm-up included: the estimate of one run's cost

    def one():
        sync()
        t0 = clock()
        fn()
        sync()
        elapsed = clock() - t0
        if run_timeout is not None and elapsed > run_timeout:
            raise MeasurementError(f"one run took {elapsed:.3g} s, over run_timeout={run_timeout} s")
        times.append(elapsed)
        return elapsed

    def size(r_left, taken):
        """Runs for the next round: what is left of ``n_run``, shared among the rounds left, and
        no more than the remaining budget fits (by the median run so far)."""
        left = n_run - taken
        if times:
            cost = _median(times) + pause_s
            fit = int((budget - (clock() - start)) / cost) if cost > 0 else left
            left = max(1, min(left, fit))
        return max(1, -(-left // r_left))

    n_rounds = max(1, min(int(n_rounds), int(n_run)))
    rounds, probes, taken = [], [], 0
    try:
        for _ in range(n_warmup):
            if clock() - start >= budget:
                break  # budget spent during warm-up: go on to the one timed run
            one()
        for r in range(n_rounds):
            if taken >= n_run or (taken and clock() - start >= budget):
                break
            if pause_s:
                pause(pause_s)
            if probe is not None:
                probes.append(probe())
            want = size(n_rounds - r, taken) if times else None
            current = []
            while taken < n_run:
                if taken and clock() - start >= budget:
                    break
                current.append(one())
                taken += 1
                if want is None:  # no run before this one: size the round now
                    want = size(n_rounds - r, taken - 1)
                if len(current) >= want:
                    break
            rounds.append(current)
        if probe is not None:
            probes.append(probe())
    except MeasurementError:
        raise
    except Exception as err:
        raise MeasurementError(f"the measured call raised {type(err).__name__}: {err}") from err
    if probe is None:
        speeds = [None] * len(rounds)
    else:
        speeds = [None if a is None or b is None else max(a, b) for a, b in zip(probes, probes[1:])]
    kept = [(r, s) for r, s in zip(rounds, speeds) if r]
    return Rounds([r for r, _ in kept], [s for _, s in kept])
