import dataclasses

import nnabla as nn
import numpy as np
import pytest

from nas_hw.measure.store import LatencyCache
from nas_hw.estimators.calibrated import (BLOB_KIND, CalibratedEstimator, Calibrator, build_inference_graph,
                                          space_id)
from nas_hw.estimators.calibration import Calibration, fit_calibration
from nas_hw.estimators.graph import LatencyGraphEstimator
from nas_hw.estimators.module import LatencyEstimator
from nas_hw.search.spaces import MobileNetSpace
from nas_hw.nas.choices import fixed_choices
from nas_hw.nas.table import CandidateTable

FAST = dict(ext_name="cpu", device_id=0, n_run=2, n_warmup=0)
SHAPE = (1, 3, 8, 8)


def _space():
    return MobileNetSpace(in_channels=3, stem_channels=4, stage_channels=(4, 8), stage_blocks=(2, 1),
                          stage_strides=(1, 2), kernels=(3,), expansions=(1, 2), head_channels=8)


# -- the fit ---------------------------------------------------------------------------------
def test_exact_recovery_of_all_three_parameters():
    raw = np.array([1.0, 2.5, 4.0, 7.0, 3.0])
    n = np.array([10, 30, 25, 60, 12])
    true = 1.3 * raw + 0.02 * n + 0.4
    cal = fit_calibration(raw, n, true, fingerprint="fp", estimator="LatencyGraphEstimator")
    assert cal.scale == pytest.approx(1.3, rel=1e-9)
    assert cal.per_layer == pytest.approx(0.02, rel=1e-7)
    assert cal.const == pytest.approx(0.4, rel=1e-7)
    assert cal.fitted == ("scale", "per_layer", "const") and not cal.degenerate and cal.note == ""
    assert cal.rms_residual == pytest.approx(0, abs=1e-9)
    assert cal.apply(2.0, 20) == pytest.approx(1.3 * 2 + 0.02 * 20 + 0.4)
    assert cal.n_points == 5


def test_const_is_kept_non_negative_and_reported():
    raw = np.array([1.0, 2.0, 4.0, 8.0])
    n = np.array([5, 20, 9, 40])
    true = 0.9 * raw + 0.05 * n - 0.2
    cal = fit_calibration(raw, n, true)
    assert cal.const == 0.0 and cal.scale > 0 and cal.per_layer >= 0
    assert "bound active: const" in cal.note


def test_bounds_hold_and_are_reported():
    # data that least squares would fit with a negative per-layer cost
    raw = np.array([1.0, 2.0, 3.0, 4.0])
    n = np.array([10, 5, 40, 20])
    true = 1.0 * raw - 0.01 * n + 1.0
    cal = fit_calibration(raw, n, true)
    assert cal.per_layer == 0.0 and cal.scale >= 0
    assert "bound active: per_layer" in cal.note


def test_constant_n_layers_drops_per_layer_and_says_so(caplog):
    raw = np.array([1.0, 2.0, 3.0])
    true = 2.0 * raw + 0.5
    cal = fit_calibration(raw, [7, 7, 7], true)
    assert cal.degenerate and "per_layer" in cal.dropped and cal.per_layer == 0.0
    assert cal.fitted == ("scale", "const")
    assert "n_layers is the same for every point" in cal.note
    assert (cal.scale, cal.const) == pytest.approx((2.0, 0.5))
    assert any("degenerate" in r.message for r in caplog.records)


def test_two_points_fit_scale_and_per_layer():
    cal = fit_calibration([1.0, 3.0], [10, 20], [1.0 * 1.2 + 0.01 * 10, 3.0 * 1.2 + 0.01 * 20])
    assert cal.dropped == ("const",)
    assert (cal.scale, cal.per_layer) == pytest.approx((1.2, 0.01))


def test_one_point_fits_scale_only():
    cal = fit_calibration([2.0], [10], [3.0])
    assert cal.fitted == ("scale",) and set(cal.dropped) == {"per_layer", "const"}
    assert cal.scale == pytest.approx(1.5)


@pytest.mark.parametrize("raw, n, true, match", [
    ([], [], [], "zero points"),
    ([1.0, 2.0], [1], [1.0, 2.0], "same length"),
    ([1.0, float("nan")], [1, 2], [1.0, 2.0], "finite"),
    ([1.0, -2.0], [1, 2], [1.0, 2.0], "> 0"),
    ([1.0, 2.0], [1, 2], [0.0, 2.0], "> 0"),
    ([1.0, 2.0], [1, 2.5], [1.0, 2.0], "integers"),
])
def test_invalid_points_raise(raw, n, true, match):
    with pytest.raises(ValueError, match=match):
        fit_calibration(raw, n, true)


def test_round_trip_and_compatibility_checks():
    cal = fit_calibration([1.0, 2.0, 4.0], [3, 9, 5], [2.0, 3.5, 5.0], fingerprint="dev",
                          estimator="LatencyGraphEstimator", unit="m", name="n")
    again = Calibration.from_dict(cal.to_dict())
    assert again == cal
    with pytest.raises(ValueError, match="device"):
        cal.check_compatible(fingerprint="other")
    with pytest.raises(ValueError, match="LatencyGraphEstimator"):
        cal.check_compatible(estimator="LatencyEstimator")
    with pytest.raises(ValueError, match="time_scale"):
        cal.check_compatible(unit="u")
    in_us = cal.to_unit("u")
    assert in_us.apply(1000 * 3.0, 7) == pytest.approx(1000 * cal.apply(3.0, 7))
    with pytest.raises(ValueError, match="format"):
        Calibration.from_dict({"scale": 1})


# -- measuring, persistence and reuse ---------------------------------------------------------------
def test_calibrator_persists_and_reuses(tmp_path):
    path = str(tmp_path / "cache.sqlite")
    est = LatencyGraphEstimator(cache=path, **FAST)
    cal1 = Calibrator(est, n_run=3, n_warmup=0)
    space = _space()
    first = cal1.calibrate_space(space, SHAPE, n_points=3, seed=1)
    assert cal1.n_measurements == 3
    # points measured disturbed on a busy machine are left out of the fit (load-dependent), never lost
    disturbed = first.conditions["disturbed"]
    assert len(disturbed) == 3 and first.n_points == 3 - sum(disturbed)
    assert first.scale >= 0 and first.per_layer >= 0
    assert first.fingerprint == est.fingerprint_key and first.estimator == "LatencyGraphEstimator"
    stored = LatencyCache(path).get_blob(est.fingerprint_key, BLOB_KIND, first.name)
    assert stored is not None and space_id(space) in first.name

    est2 = LatencyGraphEstimator(cache=path, **FAST)
    cal2 = Calibrator(est2, n_run=3, n_warmup=0)
    second = cal2.calibrate_space(_space(), SHAPE, n_points=3, seed=1)
    assert cal2.n_measurements == 0
    assert second == first
    # another input shape is another calibration
    cal2.calibrate_space(_space(), (1, 3, 12, 12), n_points=1)
    assert cal2.n_measurements == 1
    # refresh measures again
    cal2.calibrate_space(_space(), SHAPE, n_points=2, refresh=True)
    assert cal2.n_measurements == 3


def test_calibrator_excludes_and_validates():
    est = LatencyGraphEstimator(cache=":memory:", **FAST)
    cal = Calibrator(est, n_run=2, n_warmup=0, max_points=2)
    space = _space()
    with pytest.raises(ValueError, match=r"\[1, 2\]"):
        cal.calibrate_space(space, SHAPE, n_points=3)
    n_all = int(np.prod([len(c) for c in space.candidate_names_per_group]))
    every = list(np.ndindex(*[len(c) for c in space.candidate_names_per_group]))
    with pytest.raises(ValueError, match="too few"):
        cal.calibrate_space(space, SHAPE, n_points=1, exclude=every)
    assert cal.n_measurements == 0 and n_all == len(every)
    with pytest.raises(ValueError, match="stat"):
        Calibrator(est, stat="max")
    _, out = build_inference_graph(space.derive([0, 1, 0]), SHAPE)
    with pytest.raises(ValueError, match="Modules"):
        Calibrator(LatencyEstimator(cache=":memory:", **FAST)).calibrate_graphs([out], "x")


def test_calibrated_estimator_returns_calibrated_and_keeps_raw():
    est = LatencyGraphEstimator(cache=":memory:", **FAST)
    cal = dataclasses.replace(fit_calibration([1.0, 2.0, 3.0], [3, 5, 4], [1.5, 2.0, 3.3]),
                              fingerprint=est.fingerprint_key, estimator="LatencyGraphEstimator")
    net = _space().derive([0, 1, 0])
    x, out = build_inference_graph(net, SHAPE)
    raw = est.get_estimation(out)
    n = est.n_layers
    wrapped = CalibratedEstimator(est, cal)
    value = wrapped.get_estimation(out)
    assert wrapped.last_raw == pytest.approx(raw)
    assert wrapped.last_n_layers == n > 0
    assert value == pytest.approx(cal.scale * raw + cal.per_layer * n + cal.const)
    assert wrapped.breakdown is est.breakdown  # the wrapped estimator's attributes
    with pytest.raises(ValueError, match="LatencyGraphEstimator"):
        CalibratedEstimator(LatencyEstimator(cache=":memory:", **FAST), cal)


def test_table_calibrated_matches_calibrated_estimator():
    est = LatencyEstimator(cache=":memory:", **FAST)
    model = MobileNetSpace(in_channels=3, stem_channels=4, stage_channels=(4, 8), stage_blocks=(2, 1),
                           stage_strides=(1, 2), kernels=(3,), expansions=(1, 2), head_channels=8,
                           mode="sample")
    table = CandidateTable.build(model, est, input_shape=SHAPE, progress=False)
    cal = Calibration(scale=1.25, per_layer=0.003, const=0.07, n_points=3, rms_residual=0.0,
                      max_abs_residual=0.0, mape_fit_pct=0.0, fingerprint=est.fingerprint_key,
                      estimator="LatencyEstimator", unit="m")
    ctable = table.calibrated(cal)
    wrapped = CalibratedEstimator(est, cal)
    for choices in ([0, 0, 0], [1, 2, 1], [0, 2, 1]):
        with fixed_choices(table.points, choices):
            model(nn.Variable(SHAPE, need_grad=False))
            calibrated = wrapped.get_estimation(model)
            assert ctable.sampled() == pytest.approx(calibrated, rel=1e-9)
            assert table.sampled() == pytest.approx(wrapped.last_raw, rel=1e-9)
            assert table.sampled("n_layers") == wrapped.last_n_layers
    assert ctable.for_choices([1, 2, 1]) == pytest.approx(
        1.25 * table.for_choices([1, 2, 1]) + 0.003 * table.for_choices([1, 2, 1], "n_layers") + 0.07)
    assert ctable.costs["param_bytes"][0].tolist() == table.costs["param_bytes"][0].tolist()
    with pytest.raises(ValueError, match="device"):
        table.calibrated(dataclasses.replace(cal, fingerprint="elsewhere"))


def test_raw_proportional_to_n_layers_falls_back_to_scale_and_const():
    n = np.array([10, 20, 40, 80])
    raw = 0.1 * n
    cal = fit_calibration(raw, n, 1.5 * raw + 0.3)
    assert cal.fitted == ("scale", "const") and cal.dropped == ("per_layer",)
    assert "not identifiable" in cal.note
    assert cal.apply(3.0, 30) == pytest.approx(1.5 * 3.0 + 0.3)


# -- refused fits and the conditions of the points (issue 13) ------------------------------------
def test_a_fit_explained_by_the_layer_count_alone_is_refused(caplog):
    # the case: the points measured at one moment of load make scale 0 and 47 us per layer
    raw = np.array([0.30, 0.45, 0.62, 0.80, 0.50])
    n = np.array([20, 25, 30, 37, 28])
    true = 0.047 * n
    with caplog.at_level("WARNING", logger="nas_hw"):
        cal = fit_calibration(raw, n, true, name="space-a")
    assert cal.refused and "outside the sane band" in cal.refused
    assert (cal.scale, cal.per_layer, cal.const) == (1.0, 0.0, 0.0)
    assert cal.apply(0.5, 30) == pytest.approx(0.5)  # the estimate stays uncalibrated
    assert any(r.levelname == "WARNING" and "refused" in r.message for r in caplog.records)
    assert Calibration.from_dict(cal.to_dict()).refused == cal.refused


def test_scale_in_band_but_a_small_share_of_the_layer_sum_is_refused():
    raw = np.array([0.1, 0.2, 0.3, 0.4])
    n = np.array([40, 10, 30, 20])
    true = 0.25 * raw + 0.03 * n + 0.2  # the layer sum explains a few % of it
    cal = fit_calibration(raw, n, true)
    assert cal.refused and "explains only" in cal.refused and cal.scale == 1.0


@pytest.mark.parametrize("scale", [0.1, 6.0])
def test_scale_outside_the_band_is_refused(scale):
    raw = np.array([1.0, 2.0, 3.0])
    cal = fit_calibration(raw, [5, 9, 7], scale * raw)
    assert cal.refused and "sane band" in cal.refused and cal.scale == 1.0


def test_a_sane_fit_is_not_refused():
    raw = np.array([1.0, 2.5, 4.0, 7.0, 3.0])
    n = np.array([10, 30, 25, 60, 12])
    cal = fit_calibration(raw, n, 1.1 * raw + 0.005 * n + 0.05)
    assert not cal.refused and cal.scale == pytest.approx(1.1)


def test_format_1_calibrations_still_read():
    d = fit_calibration([1.0, 2.0], [3, 5], [1.2, 2.3]).to_dict()
    d = {k: v for k, v in d.items() if k not in ("refused", "conditions")}
    d["format"] = 1
    cal = Calibration.from_dict(d)
    assert cal.refused == "" and cal.conditions == {}


def test_calibrator_stores_the_conditions_and_leaves_disturbed_points_out(caplog):
    from dataclasses import replace as dc_replace

    from nas_hw.measure.timing import measure as real_measure

    est = LatencyGraphEstimator(cache=":memory:", **FAST)
    calibrator = Calibrator(est, n_run=3, n_warmup=0)
    seen = []
    real_stats = calibrator.measure_true_stats

    def true_stats(out):  # the second network's whole-forward measurement stayed disturbed
        st = real_stats(out)
        seen.append(st)
        return dc_replace(st, disturbed=len(seen) == 2, load1=5.5)

    calibrator.measure_true_stats = true_stats
    with caplog.at_level("WARNING", logger="nas_hw"):
        cal = calibrator.calibrate_space(_space(), SHAPE, n_points=3, seed=1)
    c = cal.conditions
    assert c["n_run"] == 3 and c["stat"] == "value" and c["load1"] == [5.5] * 3
    # the second point is disturbed (a busy machine may have disturbed others for real)
    assert c["disturbed"][1] is True and len(c["disturbed"]) == 3 and c["cores"] >= 1 and c["measured_at"] > 0
    clean = sum(not d for d in c["disturbed"])
    assert cal.n_points == clean or cal.refused  # disturbed points are left out of the fit
    assert any("left out of the fit" in r.message for r in caplog.records)
    stored = calibrator.load(cal.name)
    assert stored.conditions["disturbed"] == c["disturbed"]
    assert real_measure  # the real timing core measured the points


def test_every_point_disturbed_refuses_the_calibration():
    from dataclasses import replace as dc_replace

    est = LatencyGraphEstimator(cache=":memory:", **FAST)
    calibrator = Calibrator(est, n_run=2, n_warmup=0)
    real_stats = calibrator.measure_true_stats
    calibrator.measure_true_stats = lambda out: dc_replace(real_stats(out), disturbed=True)
    cal = calibrator.calibrate_space(_space(), SHAPE, n_points=2, seed=3)
    assert cal.refused and "every point" in cal.refused and cal.n_points == 0
    assert (cal.scale, cal.per_layer, cal.const) == (1.0, 0.0, 0.0)
    assert np.isfinite(cal.rms_residual) and calibrator.load(cal.name).refused
