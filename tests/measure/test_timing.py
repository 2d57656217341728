import math

import pytest

from nas_hw.errors import MeasurementError
from nas_hw.checks import check_timing as check_settings
from nas_hw.measure.timing import TimingStats, measure, scale_factor, summarize


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


def test_statistics_on_fake_clock():
    clock = FakeClock([0.001, 0.002, 0.003, 0.004, 0.100])
    st = measure(clock.fn, n_run=5, n_warmup=0, max_measure_execution_time=10, clock=clock)
    assert st.n_measured == 5 and st.n_kept == 5
    assert st.mean == pytest.approx(0.110 / 5)
    assert st.median == pytest.approx(0.003)
    assert st.min == pytest.approx(0.001)
    expected_std = math.sqrt(sum((x - 0.022) ** 2 for x in [0.001, 0.002, 0.003, 0.004, 0.1]) / 5)
    assert st.std == pytest.approx(expected_std)


def test_outlier_trimming_removes_each_end():
    clock = FakeClock([0.5, 0.001, 0.002, 0.003, 0.004, 0.005, 0.006, 0.007, 0.008, 0.0001])
    st = measure(clock.fn, n_run=10, n_warmup=0, max_measure_execution_time=100, outlier=0.1, clock=clock)
    assert st.n_measured == 10 and st.n_kept == 8
    assert st.min == pytest.approx(0.001)
    assert st.mean == pytest.approx(sum([0.001, 0.002, 0.003, 0.004, 0.005, 0.006, 0.007, 0.008]) / 8)


def test_warmup_runs_are_not_timed():
    clock = FakeClock([1.0, 1.0, 0.01])
    st = measure(clock.fn, n_run=3, n_warmup=2, max_measure_execution_time=100, clock=clock)
    assert clock.calls == 5
    assert st.n_measured == 3


def test_time_budget_stops_early_but_keeps_one_run():
    clock = FakeClock([0.4])
    st = measure(clock.fn, n_run=100, n_warmup=0, max_measure_execution_time=1.0, clock=clock)
    assert st.n_measured == 3  # 0.4, 0.8, 1.2 s: stop once the budget is spent
    slow = FakeClock([5.0])
    st = measure(slow.fn, n_run=100, n_warmup=10, max_measure_execution_time=1.0, clock=slow)
    assert st.n_measured == 1  # warm-up spent the budget: still one timed run
    assert slow.calls == 2


def test_synchronize_called_around_every_run():
    clock = FakeClock([0.001])
    syncs = []
    measure(clock.fn, n_run=4, n_warmup=1, max_measure_execution_time=10, clock=clock,
            synchronize=lambda: syncs.append(clock.calls))
    assert len(syncs) == 2 * 5


def test_time_scale_conversion_and_errors():
    st = TimingStats(0.002, 0.001, 0.0005, 0.0009, 3, 4)
    assert st.to("m") == pytest.approx(2.0)
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
        measure(clock.fn, n_run=3, n_warmup=0, clock=clock, run_timeout=1.0)
