"""The machine's conditions (load, runnable processes, the CPU speed probe) and the busy report."""
import logging

import pytest

from nas_hw.measure import load
from nas_hw.measure.load import MachineState, SpeedProbe, check_quiet, machine_state, others_running

QUIET = MachineState(cores=2, load1=0.3, others_running=0.0)
BUSY = MachineState(cores=2, load1=7.9, others_running=4.5)


def test_busy_means_the_cores_are_shared_or_another_process_measures():
    assert not QUIET.busy and BUSY.busy
    assert MachineState(2, 0.1, 0.0, peers=[{"pid": 12}]).busy
    assert not MachineState(2, None, None).busy  # unknown is not busy
    line = MachineState(2, 7.9, 4.5, peers=[{"pid": 12}]).describe()
    assert "7.9 on 2 core(s)" in line and "pid 12" in line
    assert MachineState(2, None, None).as_dict() == {"cores": 2, "load1": None, "others_running": None,
                                                     "peers": 0, "busy": False}


def test_others_running_reads_proc_loadavg(tmp_path):
    f = tmp_path / "loadavg"
    f.write_text("5.10 3.20 1.00 7/412 12345\n")
    assert others_running(str(f)) == 6  # the reader itself is one of the 7
    f.write_text("garbage")
    assert others_running(str(f)) is None
    assert others_running(str(tmp_path / "missing")) is None
    state = machine_state(window_s=0.0, readings=2, sleep=lambda s: None)
    assert state.cores >= 1 and (state.others_running is None or state.others_running >= 0)


def test_a_quiet_machine_is_not_reported(caplog):
    with caplog.at_level(logging.WARNING, logger="nas_hw"):
        assert check_quiet("job", state_fn=lambda: QUIET) is QUIET
    assert not caplog.records


def test_a_busy_machine_is_reported_and_waited_for_within_the_bound(caplog):
    with caplog.at_level(logging.WARNING, logger="nas_hw"):
        assert check_quiet("table build", state_fn=lambda: BUSY) is BUSY
    assert "table build: the machine is busy" in caplog.text and "7.9" in caplog.text

    states = iter([BUSY, BUSY, QUIET])
    slept = []
    now = [0.0]
    state = check_quiet("job", wait_for_quiet=60, poll_s=5, state_fn=lambda: next(states),
                        sleep=lambda s: (slept.append(s), now.__setitem__(0, now[0] + s)), clock=lambda: now[0])
    assert state is QUIET and slept == [5, 5]

    caplog.clear()
    now[0] = 0.0
    with caplog.at_level(logging.WARNING, logger="nas_hw"):
        state = check_quiet("job", wait_for_quiet=12, poll_s=5, state_fn=lambda: BUSY,
                            sleep=lambda s: now.__setitem__(0, now[0] + s), clock=lambda: now[0])
    assert state.busy and now[0] == pytest.approx(12)  # never longer than the bound
    assert "still busy after waiting 12 s" in caplog.text
    for bad in (-1, "5", True, float("nan"), 86401):
        with pytest.raises(ValueError, match="wait_for_quiet"):
            check_quiet("job", wait_for_quiet=bad, state_fn=lambda: QUIET)


class StepClock:
    """Each probe run costs the next duration of ``durations`` (cycled)."""

    def __init__(self, durations):
        self.t, self.durations, self.i, self.reading = 0.0, durations, 0, False

    def __call__(self):
        if self.reading:  # the end of a run
            self.t += self.durations[self.i % len(self.durations)]
            self.i += 1
        self.reading = not self.reading
        return self.t


def test_speed_probe_compares_with_the_best_speed_seen():
    clock = StepClock([2e-5] * 5 + [1e-5] * 5 + [1e-5] * 5 + [1.5e-5] * 5)
    probe = SpeedProbe(repeats=5, warm_s=0.0, clock=clock, sleep=lambda s: None, competing=lambda: 1)
    assert probe.ratio() == pytest.approx(1.0)  # the first look sets the best (2e-5, then 1e-5)
    assert probe.best == pytest.approx(1e-5)
    assert probe.ratio() == pytest.approx(1.0)
    assert probe.ratio() == pytest.approx(1.5)  # a third slower than the best seen
    assert load.cpu_speed_probe() is load.cpu_speed_probe()
    real = SpeedProbe(warm_s=0.01).ratio()
    assert real is None or real >= 1.0


def test_speed_probe_reads_a_slow_clock_without_competition_as_full_speed():
    """CI saw every layer flagged disturbed at load 0.4: after the pause before a round the core's
    clock was down (frequency scaling), the probe read it slow, with nothing else runnable."""
    others = [0]
    clock = StepClock([1e-5] * 5 + [2e-5] * 20)
    probe = SpeedProbe(repeats=5, warm_s=0.0, clock=clock, sleep=lambda s: None, competing=lambda: others[0])
    assert probe.ratio() == pytest.approx(1.0)
    assert probe.ratio() == pytest.approx(1.0)  # twice as slow, but no other process runnable
    others[0] = 3
    assert probe.ratio() == pytest.approx(2.0)  # twice as slow with three others runnable: shared core
    others[0] = None  # unknown (no /proc): the reading stands
    assert probe.ratio() == pytest.approx(2.0)
