"""Tests of nas_hw.evidence.remeasure: every distinct network timed once per round, rounds
interleaved in a seeded order, the median kept; real networks rebuilt from the runs' configs."""
import pytest

from nas_hw.errors import UsageError
from nas_hw.evidence.remeasure import build_networks, remeasure
from nas_hw.evidence.runs import load_runs
from tests.evidence.fake_sweep import make_sweep


def test_rounds_interleave_every_network_and_keep_the_median(tmp_path):
    runs = load_runs(make_sweep(str(tmp_path)))
    keys = sorted({r.architecture for r in runs})
    networks = {k: (k, None) for k in keys}
    calls = []

    def timer(out, device):
        calls.append(out)
        return {0: 5.0, 1: 1.0, 2: 2.0}[len([c for c in calls if c == out]) - 1] * (1 + keys.index(out))

    record = remeasure(runs, n_run=3, rounds=3, timer=timer, networks=networks, seed=1)
    assert len(calls) == 3 * len(keys)
    rounds = [calls[i * len(keys):(i + 1) * len(keys)] for i in range(3)]
    assert all(sorted(r) == keys for r in rounds) and rounds[0] != rounds[1]  # each round: all, reshuffled
    for r in runs:
        assert r.remeasured_latency_ms == pytest.approx(2.0 * (1 + keys.index(r.architecture)))
    assert record["n_networks"] == len(keys) and len(record["load_avg"]) == 4
    assert record["spread"][keys[0]] == pytest.approx((3.5 - 1.5) / 2.0)


def test_networks_are_rebuilt_from_the_run_configs_once_per_architecture(tmp_path):
    runs = load_runs(make_sweep(str(tmp_path)))
    built = build_networks(runs)
    assert sorted(built) == sorted({r.architecture for r in runs})
    for out, device in built.values():
        assert tuple(out.shape) == (1, 10) and device.ext_name == "cpu"
    record = remeasure(runs, n_run=2, rounds=1, n_warmup=0, networks=built)  # the real Profiler
    assert all(v > 0 for v in record["latency_ms"].values())


def test_a_run_without_its_hydra_config_cannot_be_rebuilt(tmp_path):
    runs = load_runs(make_sweep(str(tmp_path)))
    import os
    os.remove(os.path.join(runs[0].run_dir, ".hydra", "config.yaml"))
    with pytest.raises(UsageError, match="config.yaml is missing"):
        build_networks(runs)
    with pytest.raises(ValueError, match="rounds must be an integer >= 1"):
        remeasure(runs, rounds=0, networks={}, timer=lambda o, d: 1.0)
