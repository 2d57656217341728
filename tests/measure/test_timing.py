import math

import pytest

from nas_hw.errors import MeasurementError
from nas_hw.checks import check_timing as check_settings
from nas_hw.constants import MAX_REPEATS, REPEAT_PAUSE_S, SPREAD_LIMIT
from nas_hw.measure.timing import (Rounds, TimedSettings, TimingStats, measure, robust_value, scale_factor,
                                   spread_of, summarize, time_rounds)


class FakeClock:
    """Each call of fn() advances time by the next duration; clock reads cost nothing."""

    def __init__(self, durations):
        self.t = 0.0
        self.durations = list(durations)
        self.calls = 0

    def __call__(self):
        return self.t

    def fn(self):
        self.t += self.durations[self.calls % len(self.durations)]
        self.calls += 1


NO_PAUSE = dict(pause=lambda s: None)


def test_statistics_on_fake_clock():
    clock = FakeClock([0.001, 0.002, 0.003, 0.004, 0.100])
    st = measure(clock.fn, n_run=5, n_warmup=0, max_measure_execution_time=10, clock=clock, n_rounds=1,
                 **NO_PAUSE)
    assert st.n_measured == 5 and st.n_kept == 5
    assert st.mean == pytest.approx(0.110 / 5)
    assert st.median == pytest.approx(0.003)
    assert st.min == pytest.approx(0.001)
    expected_std = math.sqrt(sum((x - 0.022) ** 2 for x in [0.001, 0.002, 0.003, 0.004, 0.1]) / 5)
    assert st.std == pytest.approx(expected_std)


def test_outlier_trimming_removes_each_end():
    clock = FakeClock([0.5, 0.001, 0.002, 0.003, 0.004, 0.005, 0.006, 0.007, 0.008, 0.0001])
    st = measure(clock.fn, n_run=10, n_warmup=0, max_measure_execution_time=100, outlier=0.1, clock=clock,
                 **NO_PAUSE)
    assert st.n_measured == 10 and st.n_kept == 8
    assert st.min == pytest.approx(0.001)
    assert st.mean == pytest.approx(sum([0.001, 0.002, 0.003, 0.004, 0.005, 0.006, 0.007, 0.008]) / 8)


def test_warmup_runs_are_not_timed():
    clock = FakeClock([1.0, 1.0, 0.01])
    st = measure(clock.fn, n_run=3, n_warmup=2, max_measure_execution_time=100, clock=clock, **NO_PAUSE)
    assert clock.calls == 5
    assert st.n_measured == 3


def test_time_budget_stops_early_but_keeps_one_run():
    clock = FakeClock([0.4])
    st = measure(clock.fn, n_run=100, n_warmup=0, max_measure_execution_time=1.0, clock=clock, **NO_PAUSE)
    assert st.n_measured == 3  # 0.4, 0.8, 1.2 s: stop once the budget is spent
    slow = FakeClock([5.0])
    st = measure(slow.fn, n_run=100, n_warmup=10, max_measure_execution_time=1.0, clock=slow, **NO_PAUSE)
    assert st.n_measured == 1  # warm-up spent the budget: still one timed run
    assert slow.calls == 2


def test_synchronize_called_around_every_run():
    clock = FakeClock([0.001])
    syncs = []
    measure(clock.fn, n_run=4, n_warmup=1, max_measure_execution_time=10, clock=clock,
            synchronize=lambda: syncs.append(clock.calls), **NO_PAUSE)
    assert len(syncs) == 2 * 5


def test_time_scale_conversion_and_errors():
    st = TimingStats(0.002, 0.001, 0.0005, 0.0009, 3, 4)
    assert st.to("m") == pytest.approx(1.0)  # the robust value; without one, the median
    assert st.to("m", "mean") == pytest.approx(2.0)
    assert TimingStats(0.002, 0.001, 0.0005, 0.0009, 3, 4, value=0.0012).to("u") == pytest.approx(1200.0)
    assert st.to("u", "median") == pytest.approx(1000.0)
    assert st.scaled("n").min == pytest.approx(900000.0)
    assert isinstance(st.to("m"), float)
    for bad in ["s", "ms", None, "M"]:
        with pytest.raises(ValueError, match="time_scale must be one of"):
            scale_factor(bad)


@pytest.mark.parametrize("kwargs, field", [
    ({"n_run": 0}, "n_run"), ({"n_run": 2.5}, "n_run"), ({"n_run": True}, "n_run"),
    ({"n_warmup": -1}, "n_warmup"), ({"outlier": 0.5}, "outlier"), ({"outlier": -0.1}, "outlier"),
    ({"outlier": float("nan")}, "outlier"), ({"max_measure_execution_time": 0}, "max_measure_execution_time"),
    ({"time_scale": "x"}, "time_scale"),
])
def test_invalid_settings_name_the_field(kwargs, field):
    with pytest.raises(ValueError, match=field):
        check_settings(**kwargs)


def test_failures_are_measurement_errors_never_numbers():
    def boom():
        raise RuntimeError("kernel failed")

    with pytest.raises(MeasurementError, match="kernel failed"):
        measure(boom, n_run=3, n_warmup=0)
    with pytest.raises(MeasurementError, match="NaN"):
        summarize([0.1, float("nan")])
    with pytest.raises(MeasurementError):
        summarize([])
    clock = FakeClock([2.0])
    with pytest.raises(MeasurementError, match="run_timeout"):
        measure(clock.fn, n_run=3, n_warmup=0, clock=clock, run_timeout=1.0, **NO_PAUSE)


# -- rounds, the robust statistic, disturbance ------------------------------------------------------
class RoundClock(FakeClock):
    """``fn()`` costs ``base`` except in the rounds listed in ``slow`` (counted from 0 over the
    whole life of the clock, a round being ``per_round`` consecutive timed calls), which cost
    ``factor`` times more."""

    def __init__(self, base, per_round, slow=(), factor=10.0):
        super().__init__([base])
        self.base, self.per_round, self.slow, self.factor = base, per_round, set(slow), factor

    def fn(self):
        round_index = self.calls // self.per_round
        self.t += self.base * (self.factor if round_index in self.slow else 1.0)
        self.calls += 1


def test_value_is_the_minimum_and_a_minority_of_bad_rounds_is_not_a_disturbance():
    clock = RoundClock(0.001, per_round=4, slow={1, 3})
    st = measure(clock.fn, n_run=20, n_warmup=0, max_measure_execution_time=100, clock=clock, n_rounds=5,
                 **NO_PAUSE)
    assert st.n_rounds == 5 and st.n_measured == 20
    assert st.value == pytest.approx(0.001) and st.robust == pytest.approx(0.001)
    assert st.mean > 0.004  # the mean a preempting process would have served
    assert st.spread == pytest.approx(0.0) and not st.disturbed
    assert clock.calls == 20  # clean at the first attempt: no repeat


def test_most_rounds_disturbed_is_repeated_then_flagged(caplog):
    clock = RoundClock(0.001, per_round=4, slow=set(range(0, 1000, 5)) | set(range(1, 1000, 5)) | set(range(2, 1000, 5)))
    st = measure(clock.fn, n_run=20, n_warmup=0, max_measure_execution_time=100, clock=clock, n_rounds=5,
                 **NO_PAUSE)
    assert st.disturbed and st.spread > SPREAD_LIMIT
    assert clock.calls == 20 * (MAX_REPEATS + 1)  # every attempt disturbed: the bound holds
    assert st.load1 is None or st.load1 >= 0


def test_a_repeat_that_comes_out_clean_is_served_clean():
    clock = RoundClock(0.001, per_round=4, slow={0, 1, 2})  # only the first attempt is disturbed
    pauses = []
    st = measure(clock.fn, n_run=20, n_warmup=0, max_measure_execution_time=100, clock=clock, n_rounds=5,
                 pause=pauses.append)
    assert not st.disturbed and st.value == pytest.approx(0.001)
    assert clock.calls == 40  # one repeat
    assert pauses.count(REPEAT_PAUSE_S) == 1  # the pause before the repeat


def test_max_repeats_zero_flags_at_once():
    clock = RoundClock(0.001, per_round=4, slow={0, 1, 2})
    st = measure(clock.fn, n_run=20, n_warmup=0, clock=clock, n_rounds=5, max_repeats=0, **NO_PAUSE)
    assert st.disturbed and clock.calls == 20


def test_few_runs_are_not_judged_by_spread():
    # 3 runs make 3 rounds of one run: no round minimum worth the name, never flagged by spread
    clock = FakeClock([0.001, 0.005, 0.009])
    st = measure(clock.fn, n_run=3, n_warmup=0, clock=clock, **NO_PAUSE)
    assert st.n_rounds == 3 and st.spread > SPREAD_LIMIT and not st.disturbed
    assert st.value == pytest.approx(0.001)


def test_a_tiny_function_jitter_is_no_disturbance():
    # rounds 1 us above the best one: 20% of a 5 us function, but under SPREAD_FLOOR_S
    clock = RoundClock(5e-6, per_round=4, slow={1, 2, 3}, factor=1.2)
    st = measure(clock.fn, n_run=20, n_warmup=0, clock=clock, n_rounds=5, **NO_PAUSE)
    assert st.spread == pytest.approx(0.2) and not st.disturbed and clock.calls == 20


def test_speed_probe_excludes_slowed_rounds_and_flags_a_slowed_majority():
    ratios = iter([1.0, 1.0, 1.6, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0])
    clock = RoundClock(0.001, per_round=4, slow={1}, factor=1.5)  # the slowed round is also slower
    taken = time_rounds(clock.fn, n_run=20, n_warmup=0, max_measure_execution_time=100, n_rounds=5, clock=clock,
                        pause=lambda s: None, probe=lambda: next(ratios))
    assert taken.speeds == [1.0, 1.6, 1.6, 1.0, 1.0]  # the larger of the probes before and after
    st = summarize(taken)
    assert st.value == pytest.approx(0.001) and not st.disturbed  # one slowed round of five
    slowed = Rounds(taken.runs, [1.5, 1.5, 1.5, 1.0, 1.0])
    assert summarize(slowed).disturbed  # most rounds on a slowed core
    assert not summarize(Rounds(taken.runs, [None] * 5)).disturbed


def test_rounds_fit_the_budget():
    clock = FakeClock([0.01])
    taken = time_rounds(clock.fn, n_run=100, n_warmup=2, max_measure_execution_time=0.5, n_rounds=5,
                        clock=clock, pause=lambda s: None, pause_s=0.0)
    assert len(taken.runs) == 5  # sized from the warm-up runs: every round fits
    assert sum(len(r) for r in taken.runs) <= 50 and clock.t <= 0.5 + 0.01 + 1e-9


def test_round_helpers():
    rounds = [[0.003, 0.002], [0.004, 0.002], [0.010, 0.020], [0.002, 0.005]]
    assert robust_value(rounds) == pytest.approx(0.002)
    assert spread_of(rounds) == pytest.approx(0.0)  # the median round reached the minimum
    assert spread_of([[0.001], [0.003], [0.002]]) == pytest.approx(1.0)
    assert spread_of([[0.001]]) is None
    assert summarize([0.002, 0.001]).n_rounds == 1  # a flat list is one round


def test_peers_and_load_are_recorded():
    clock = FakeClock([0.001])
    st = measure(clock.fn, n_run=4, n_warmup=0, clock=clock, peers=lambda: 3, **NO_PAUSE)
    assert st.peers == 3 and st.n_rounds == 4
    assert st.load1 is None or isinstance(st.load1, float)
    assert measure(clock.fn, n_run=4, n_warmup=0, clock=clock, **NO_PAUSE).peers is None


def test_settings_pass_the_cpu_speed_probe_only_on_cpu():
    seen = []

    class Timed(TimedSettings):
        def __init__(self, ext):
            self.device = type("D", (), {"ext_name": ext})()
            self._init_timing(2, 0, 1.0, 0.0, "m", timer=lambda fn, **kw: seen.append(kw))

    Timed("cpu")._time(lambda: None)
    Timed("cudnn")._time(lambda: None)
    assert callable(seen[0]["probe"]) and "probe" not in seen[1]
