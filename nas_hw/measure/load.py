"""How busy the machine is: the conditions a measurement is taken in.

Three readings, all cheap and all from the operating system:

* ``load1``: the 1-minute load average (``os.getloadavg``), the figure users know; it follows a
  change of load only after tens of seconds.
* ``others_running``: processes (threads) other than the caller that are runnable right now
  (``/proc/loadavg``'s ``running`` field minus the caller), averaged over a short sampling
  window: what competes for the cores now.
* ``peers``: other processes measuring into the same latency store (:mod:`.peers`).

The machine is *busy* when, on average over the window, at least as many other processes are
runnable as there are cores (a measurement would then share a core), or another process measures
into the same store. :func:`check_quiet` reports a busy machine before a long measuring job and
optionally waits (bounded) for it to become quiet.
"""
import logging
import os
import time
from dataclasses import dataclass, field
from typing import List, Optional

from ..constants import MAX_WAIT_FOR_QUIET_S, SLOW_LIMIT

logger = logging.getLogger(__name__)

#: The sampling window of :func:`machine_state` (seconds) and its number of readings.
SAMPLE_WINDOW_S = 0.2
SAMPLE_READINGS = 5


def cores():
    """CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def load1():
    """The 1-minute load average, or ``None`` where the system does not report one."""
    try:
        return float(os.getloadavg()[0])
    except (AttributeError, OSError):
        return None


def others_running(path="/proc/loadavg"):
    """Runnable processes other than the caller right now, or ``None`` where unknown (no
    ``/proc``). The count includes the caller, which runs while it reads."""
    try:
        with open(path) as fh:
            running = fh.read().split()[3].split("/")[0]
        return max(0, int(running) - 1)
    except (OSError, IndexError, ValueError):
        return None


@dataclass(frozen=True)
class MachineState:
    """The machine's conditions at one moment (see the module docstring).

    Attributes:
        cores: CPU cores available.
        load1: 1-minute load average (``None``: unknown).
        others_running: mean runnable processes besides the caller over the sampling window
            (``None``: unknown).
        peers: other processes measuring into the same store, as
            :func:`~nas_hw.measure.peers.measuring_peers` lists them.
    """

    cores: int
    load1: Optional[float]
    others_running: Optional[float]
    peers: List[dict] = field(default_factory=list)

    @property
    def busy(self):
        """True when other processes would share the cores with a measurement, or other
        processes measure into the same store."""
        crowded = self.others_running is not None and self.others_running >= self.cores
        return crowded or bool(self.peers)

    def describe(self):
        """One line for a log: load, runnable processes, cores, measuring peers."""
        parts = [f"1-min load average {_fmt(self.load1)} on {self.cores} core(s)",
                 f"{_fmt(self.others_running)} other runnable process(es) on average now"]
        if self.peers:
            pids = ", ".join(str(p.get("pid")) for p in self.peers[:5])
            parts.append(f"{len(self.peers)} other process(es) measuring into the same cache (pid {pids})")
        return ", ".join(parts)

    def as_dict(self):
        return {"cores": self.cores, "load1": self.load1, "others_running": self.others_running,
                "peers": len(self.peers), "busy": self.busy}


def _fmt(value):
    return "unknown" if value is None else f"{value:.1f}"


def machine_state(cache_path=None, window_s=SAMPLE_WINDOW_S, readings=SAMPLE_READINGS, sleep=time.sleep):
    """The machine's :class:`MachineState` now, sampling the run queue over ``window_s``.

    Args:
        cache_path: the latency store whose measuring peers count (``None``: none counted).
        window_s, readings: the sampling window (seconds) and its number of readings.
        sleep: the pause between readings (tests pass a fake one).
    """
    from .peers import measuring_peers

    samples = []
    for i in range(max(1, readings)):
        if i:
            sleep(window_s / max(1, readings - 1))
        n = others_running()
        if n is not None:
            samples.append(n)
    mean = sum(samples) / len(samples) if samples else None
    return MachineState(cores(), load1(), mean, measuring_peers(cache_path) if cache_path else [])


def check_quiet(what, cache_path=None, wait_for_quiet=0.0, poll_s=5.0, state_fn=None, sleep=time.sleep,
                clock=time.monotonic):
    """Reports a busy machine before a long measuring job and optionally waits for quiet.

    Args:
        what: the job, for the message (``"candidate table"``, ``"nas-hw report"``).
        cache_path: the store the job measures into (its other measuring processes count).
        wait_for_quiet: seconds to wait at most for a quiet machine (0: report only). After
            that, the job goes ahead on the busy machine, with a WARNING.
        poll_s: seconds between two looks while waiting.
        state_fn: ``() -> MachineState`` (tests pass a fake one); default :func:`machine_state`.

    Returns:
        MachineState: the state the job starts in.
    """
    if (isinstance(wait_for_quiet, bool) or not isinstance(wait_for_quiet, (int, float))
            or not 0 <= wait_for_quiet <= MAX_WAIT_FOR_QUIET_S):
        raise ValueError(f"wait_for_quiet must be a number of seconds in [0, {MAX_WAIT_FOR_QUIET_S:g}], "
                         f"got {wait_for_quiet!r}")
    look = state_fn or (lambda: machine_state(cache_path))
    state = look()
    if not state.busy:
        logger.info("%s: machine quiet (%s)", what, state.describe())
        return state
    if wait_for_quiet <= 0:
        logger.warning("%s: the machine is busy (%s): layer timings may be disturbed; disturbed ones are "
                       "repeated and, if they stay disturbed, stored flagged (wait_for_quiet waits for a "
                       "quiet machine first)", what, state.describe())
        return state
    logger.warning("%s: the machine is busy (%s): waiting up to %.0f s for it to become quiet",
                   what, state.describe(), wait_for_quiet)
    deadline = clock() + float(wait_for_quiet)
    while state.busy and clock() < deadline:
        sleep(max(0.0, min(poll_s, deadline - clock())))
        state = look()
    if state.busy:
        logger.warning("%s: still busy after waiting %.0f s (%s): measuring anyway; disturbed timings "
                       "are repeated, then stored flagged", what, wait_for_quiet, state.describe())
    else:
        logger.info("%s: machine quiet now (%s)", what, state.describe())
    return state


class SpeedProbe:
    """How fast the CPU runs right now, compared with the fastest it was seen running.

    Other load slows a measurement in two ways: it takes the core away (a run preempted: the
    round minimums see past it), and it slows the core itself while sharing it (caches, memory,
    a sibling hardware thread, a busy virtual-machine host), which every run of a round feels
    alike and no statistic of the runs can see. The probe times a fixed piece of pure Python
    (the best of ``repeats`` runs) and returns its time over the best time seen in this process:
    about 1 when the core runs at full speed, 1.5 when it runs a third slower. The best time is
    first looked for during ``warm_s`` seconds, so that a process starting on a slowed core does
    not take the slow speed for the full one.

    A slow reading while no other process is runnable (``competing() == 0``) is not another
    process's doing: it is the core's own clock, lowered during the pause before a round
    (frequency scaling on laptops and cloud machines) and raised again within the round's first
    runs. It reads as full speed; otherwise a quiet machine with frequency scaling would have
    every measurement flagged disturbed.
    """

    def __init__(self, work=2000, repeats=5, warm_s=0.05, clock=time.perf_counter, sleep=time.sleep,
                 competing=None):
        self.work, self.repeats, self.warm_s = int(work), int(repeats), float(warm_s)
        self.clock, self.sleep = clock, sleep
        self.competing = others_running if competing is None else competing
        self.best = None

    def _once(self):
        best, n, clock = None, self.work, self.clock
        for _ in range(self.repeats):
            t0 = clock()
            sum(range(n))
            dt = clock() - t0
            best = dt if best is None or dt < best else best
        return best

    def ratio(self):
        """The probe's time now over its best time (>= 1; ``None`` if it cannot be timed)."""
        if self.best is None:
            start = time.monotonic()
            best = self._once()
            while time.monotonic() - start < self.warm_s:
                self.sleep(0.002)
                best = min(best, self._once())
            self.best = best
        t = self._once()
        if not t or t <= 0 or not self.best:
            return None
        if t < self.best:
            self.best = t
        ratio = t / self.best
        if ratio > SLOW_LIMIT and self.competing() == 0:
            return 1.0  # nothing else runnable: the clock ramping up, not a shared core
        return ratio


_cpu_probe = None


def cpu_speed_probe():
    """This process's :class:`SpeedProbe` (one per process: its best time is the process's)."""
    global _cpu_probe
    if _cpu_probe is None:
        _cpu_probe = SpeedProbe()
    return _cpu_probe
