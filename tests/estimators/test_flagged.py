"""Measurements that stayed disturbed: stored flagged, never served as clean truth (issue 13).

The estimators serve the timing core's robust value, list the layers whose rows are flagged
(:attr:`LayerEstimator.flagged`), warn when they store or use one, and report a busy machine
before their first measurement. A fake timer decides which layers come out disturbed.
"""
import logging

import nnabla as nn
import pytest

import nas_hw.estimators.layer as layer_module
from nas_hw import LatencyEstimator, LatencyGraphEstimator
from nas_hw.measure.load import MachineState
from nas_hw.measure.timing import TimingStats
from nas_hw.nas.table import CandidateTable
from nas_hw.search.spaces import MobileNetSpace
from nas_hw.measure.store import LatencyCache

KW = dict(device_id=0, ext_name="cpu", n_warmup=0, n_run=4, max_measure_execution_time=1)
SHAPE = (1, 3, 8, 8)


def fake_timer(disturbed_types=("Convolution",), calls=None):
    """1 ms served (the robust value; the mean says 9 ms), disturbed for the listed function
    types (``None``: every measurement)."""
    def timer(fn, label=None, **kwargs):
        if calls is not None:
            calls.append(label)
        bad = disturbed_types is None or any(f"fn:{t}|" in (label or "") for t in disturbed_types)
        return TimingStats(mean=9e-3, median=2e-3, std=1e-3, min=1e-3, n_kept=4, n_measured=4, value=1e-3,
                           spread=0.4 if bad else 0.0, n_rounds=4, load1=7.5, peers=1, disturbed=bad)
    return timer


def _net():
    nn.clear_parameters()
    net = MobileNetSpace(in_channels=3, stem_channels=4, stage_channels=(4, 8), stage_blocks=(1, 1),
                         stage_strides=(1, 2), kernels=(3,), expansions=(1,), head_channels=8, mode="sample")
    net.apply(training=False)
    out = net(nn.Variable(SHAPE))
    return net, out


def test_the_robust_value_is_served_not_the_mean():
    _, out = _net()
    est = LatencyGraphEstimator(cache=LatencyCache(":memory:"), timer=fake_timer(()), **KW)
    total = est.get_estimation(out)
    assert total == pytest.approx(1.0 * est.n_layers)  # 1 ms each, not the 9 ms mean
    assert est.flagged == []


def test_disturbed_layers_are_stored_flagged_warned_and_listed(caplog):
    _, out = _net()
    cache = LatencyCache(":memory:")
    est = LatencyGraphEstimator(cache=cache, timer=fake_timer(), **KW)
    with caplog.at_level(logging.WARNING, logger="nas_hw"):
        est.get_estimation(out)
    flagged = est.flagged
    assert flagged and all(layer.signature.startswith("fn:Convolution|") for layer in flagged)
    assert all(layer.disturbed for layer in flagged)
    stored = [r for r in cache.records() if r.stats.disturbed]
    assert {r.signature for r in stored} == {layer.signature for layer in flagged}
    warned = [r.message for r in caplog.records if "stayed disturbed" in r.message]
    assert len(warned) == len({layer.signature for layer in flagged})
    assert "nas-hw cache verify --refresh --disturbed" in warned[0] and "load average 7.5" in warned[0]

    # another estimator on the same cache measures nothing, serves the rows, and says they are flagged
    caplog.clear()
    calls = []
    again = LatencyGraphEstimator(cache=cache, timer=fake_timer(calls=calls), **KW)
    with caplog.at_level(logging.WARNING, logger="nas_hw"):
        again.get_estimation(out)
        again.reset()
        again.get_estimation(out)
    assert calls == [] and {layer.signature for layer in again.flagged} == {layer.signature for layer in flagged}
    used = [r.message for r in caplog.records if "flagged disturbed" in r.message]
    assert len(used) == 1  # once per estimator and row, not at every query
    # an estimate served from the memo still lists them
    assert again.get_estimation(out) and again.flagged


def test_module_estimator_flags_too():
    net, _ = _net()
    est = LatencyEstimator(cache=LatencyCache(":memory:"), timer=fake_timer(None), **KW)
    est.get_estimation(net)
    assert est.flagged and len(est.flagged) == est.n_layers  # every layer came out disturbed


def test_a_busy_machine_is_reported_once_before_the_first_measurement(monkeypatch):
    seen = []

    def fake_check(what, cache_path=None, wait_for_quiet=0.0, **kwargs):
        seen.append((what, wait_for_quiet))
        return MachineState(cores=2, load1=9.0, others_running=5.0, peers=[])

    monkeypatch.setattr(layer_module, "check_quiet", fake_check)
    _, out = _net()
    cache = LatencyCache(":memory:")
    est = LatencyGraphEstimator(cache=cache, timer=fake_timer(()), wait_for_quiet=3, **KW)
    est.get_estimation(out)
    est.reset()
    est.get_estimation(out)
    assert len(seen) == 1 and seen[0][1] == 3.0 and est.machine_at_start.busy
    warm = LatencyGraphEstimator(cache=cache, timer=fake_timer(()), **KW)
    warm.get_estimation(out)
    assert len(seen) == 1 and warm.machine_at_start is None  # all cached: nothing measured, no look
    with pytest.raises(ValueError, match="wait_for_quiet"):
        LatencyGraphEstimator(cache=":memory:", wait_for_quiet=-1, **KW)


def test_the_candidate_table_records_its_flagged_rows():
    net, _ = _net()
    est = LatencyGraphEstimator(cache=LatencyCache(":memory:"), timer=fake_timer(), **KW)
    table = CandidateTable.build(net, est, input_shape=SHAPE, progress=False)
    assert table.flagged and all(f["signature"].startswith("fn:Convolution|") for f in table.flagged)
    assert {"where", "layer", "signature"} <= set(table.flagged[0])
    again = CandidateTable.from_dict(table.to_dict())
    assert again.flagged == table.flagged
    with pytest.raises(ValueError, match="flagged"):
        CandidateTable.from_dict(dict(table.to_dict(), flagged="x"))
