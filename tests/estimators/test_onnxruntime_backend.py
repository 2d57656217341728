"""The estimators with ``backend="onnxruntime"`` (nas_hw/estimators/layer.py, module.py,
network.py, calibrated.py; nas_hw/nas/table.py): units are the runtime's fused kernels, rows are
stored under the runtime's fingerprint, failures name the function, nnabla stays the default."""
import nnabla as nn
import nnabla.functions as F
import nnabla.parametric_functions as PF
import pytest

from nas_hw import LatencyCache, LatencyEstimator, LatencyGraphEstimator, MeasurementError, Profiler
from nas_hw.errors import UnsupportedOperationError
from nas_hw.measure.backends import make_backend
from nas_hw.measure.backends.onnxruntime import OrtBackend
from nas_hw.measure.timing import TimingStats
from nas_hw.nas.table import CandidateTable
from nas_hw.search.spaces import MobileNetSpace
from tests.measure.backends.onnx_util import requires_onnx

pytestmark = requires_onnx
FAST = dict(n_run=3, n_warmup=0, max_measure_execution_time=0.05)


def one_ms(fn, **kwargs):
    """A deterministic timer: runs the unit once, says 1 ms."""
    fn()
    return TimingStats(1e-3, 1e-3, 0.0, 1e-3, 1, 1)


def block(x):
    h = F.relu(PF.batch_normalization(PF.convolution(x, 8, (3, 3), pad=(1, 1), with_bias=False, name="c"),
                                      batch_stat=False, name="bn"))
    h = F.add2(h, F.relu6(PF.batch_normalization(PF.depthwise_convolution(h, (3, 3), pad=(1, 1), name="dw"),
                                                  batch_stat=False, name="bn2")))
    return PF.affine(F.global_average_pooling(F.max_pooling(h, (2, 2))), 10, name="fc")


@pytest.fixture
def graph():
    nn.clear_parameters()
    x = nn.Variable((1, 3, 16, 16))
    return x, block(x)


def test_the_graph_is_costed_by_fused_units_under_the_runtimes_fingerprint(graph):
    x, out = graph
    cache = LatencyCache(":memory:")
    est = LatencyGraphEstimator(cache=cache, backend="onnxruntime", timer=one_ms, **FAST)
    latency = est.get_estimation(out)
    names = [c.name.split(":", 1)[1] for c in est.breakdown]
    assert names == ["Convolution+BatchNormalization+ReLU", "DepthwiseConvolution+BatchNormalization+ReLU6",
                     "Add2", "MaxPooling", "GlobalAveragePooling", "Affine"]
    assert est.fingerprint_key.startswith("onnxruntime|CPUExecutionProvider|")
    assert isinstance(latency, float) and latency > 0
    # one fake millisecond per unit run, turned into one copy's own work: never more than 1 ms each
    assert all(0 < c.latency <= 1.0 for c in est.breakdown)
    assert [c.functions for c in est.breakdown][:2] == [(0, 1, 2), (3, 4, 5)]
    assert all(row.fingerprint == est.fingerprint_key for row in cache.records())
    assert all(row.settings["backend"] == "onnxruntime" for row in cache.records())
    # nnabla's rows never mix with these: the default estimator measures its own
    nnabla_est = LatencyGraphEstimator(cache=cache, timer=one_ms, **FAST)
    assert nnabla_est.backend.name == "nnabla"
    before = cache.measurements
    nnabla_est.get_estimation(out)
    assert len(nnabla_est.breakdown) == 10  # one per function
    assert cache.measurements - before == len({c.signature for c in nnabla_est.breakdown})
    assert nnabla_est.fingerprint_key != est.fingerprint_key


def test_a_second_query_measures_nothing(graph):
    x, out = graph
    cache = LatencyCache(":memory:")
    est = LatencyGraphEstimator(cache=cache, backend="onnxruntime", timer=one_ms, **FAST)
    first = est.get_estimation(out)
    taken = cache.measurements
    again = LatencyGraphEstimator(cache=cache, backend=est.backend, timer=one_ms, **FAST)
    assert again.get_estimation(block(nn.Variable((1, 3, 16, 16)))) == pytest.approx(first)
    assert cache.measurements == taken


def test_units_are_measured_at_the_estimators_batch_size(graph):
    x, out = graph
    est = LatencyGraphEstimator(cache=":memory:", backend="onnxruntime", timer=one_ms, batch_size=4, **FAST)
    est.get_estimation(out)
    assert "in=4x3x16x16" in est.breakdown[0].signature
    assert est.breakdown[0].signature.startswith("unit[fn:Convolution|")


def test_a_function_onnx_lacks_is_named_never_a_zero():
    nn.clear_parameters()
    x = nn.Variable((1, 3, 8, 8))
    out = F.sin(PF.convolution(x, 4, (3, 3), name="c"))
    est = LatencyGraphEstimator(cache=":memory:", backend="onnxruntime", timer=one_ms, **FAST)
    with pytest.raises(UnsupportedOperationError, match=r"\['Sin'\]"):
        est.get_estimation(out)
    warn = LatencyGraphEstimator(cache=":memory:", backend="onnxruntime", timer=one_ms, on_error="warn", **FAST)
    warn.get_estimation(out)
    assert warn.failures and "Sin" in warn.failures[0].error
    assert issubclass(UnsupportedOperationError, MeasurementError)


def test_module_estimator_agrees_with_the_graph_estimator_unit_for_unit():
    """nas_hw's MobileNet space: a conv module, its batch norm and its activation are separate
    leaf modules, yet the runtime runs them as one kernel: both estimators cost the same units."""
    nn.clear_parameters()
    net = MobileNetSpace(in_channels=3, stem_channels=8, stage_channels=(8,), stage_blocks=(1,),
                         stage_strides=(1,), mode="sample", seed=0)
    net.apply(training=False)
    out = net(nn.Variable((1, 3, 16, 16)))
    cache = LatencyCache(":memory:")
    backend = make_backend("onnxruntime")
    by_graph = LatencyGraphEstimator(cache=cache, backend=backend, timer=one_ms, **FAST)
    by_module = LatencyEstimator(cache=cache, backend=backend, timer=one_ms, **FAST)
    g, m = by_graph.get_estimation(out), by_module.get_estimation(net)
    assert sorted(c.signature for c in by_module.breakdown) == sorted(c.signature for c in by_graph.breakdown)
    assert m == pytest.approx(g)


def test_profiler_times_the_exported_network_and_its_units(graph):
    x, out = graph
    prof = Profiler(out, n_run=3, n_warmup=0, backend="onnxruntime")
    result = prof.run()
    assert result["forward_all"] > 0 and prof.fingerprint_key.startswith("onnxruntime|")
    assert [s.function_name for s in result["forward"]][:2] == ["Convolution+BatchNormalization+ReLU",
                                                                 "DepthwiseConvolution+BatchNormalization+ReLU6"]
    with pytest.raises(ValueError, match="nnabla backend only"):
        Profiler(out, solver=object(), backend="onnxruntime")


def test_table_carries_its_backend_and_a_saved_table_gets_it_back(tmp_path):
    nn.clear_parameters()
    model = MobileNetSpace(in_channels=1, stem_channels=4, stage_channels=(6,), stage_blocks=(2,),
                           stage_strides=(1,), kernels=(3,), expansions=(1, 3), mode="full", seed=0)
    model(nn.Variable((1, 1, 8, 8)))
    backend = make_backend("onnxruntime", threads=1)
    est = LatencyGraphEstimator(cache=":memory:", backend=backend, timer=one_ms, **FAST)
    table = CandidateTable.build(model, est, input_shape=(1, 1, 8, 8), progress=False)
    assert table.backend is backend and table.fingerprint == backend.fingerprint.key
    assert table.argmax() > 0
    # the fixed part is what runs outside every choice point, costed on its own (never a
    # remainder that a kernel spanning a candidate and its residual addition could make negative)
    from nas_hw.nas.outside import outside_functions

    funcs, _ = outside_functions(model, table.points, [(1, 1, 8, 8)])
    kinds = {f.info.type_name for f in funcs}
    assert {"Convolution", "Add2", "Affine"} <= kinds and table.fixed["latency"] > 0
    assert 0 < table.fixed["n_layers"] <= len(funcs)
    table.save(str(tmp_path / "t.json"))
    loaded = CandidateTable.load(str(tmp_path / "t.json"))
    assert isinstance(loaded.backend, OrtBackend) and loaded.backend.fingerprint.key == table.fingerprint
    with pytest.raises(ValueError, match="backend must name one of"):
        CandidateTable.from_dict(dict(table.to_dict(), backend={"backend": "tvm"}))


def test_calibration_measures_the_true_latency_on_the_estimators_backend(graph, monkeypatch):
    from nas_hw.estimators.calibrated import Calibrator

    x, out = graph
    est = LatencyGraphEstimator(cache=":memory:", backend="onnxruntime", timer=one_ms, **FAST)
    used = []
    original = OrtBackend.prepare_network
    monkeypatch.setattr(OrtBackend, "prepare_network", lambda self, *a, **k: used.append(self) or original(self, *a, **k))
    assert Calibrator(est, n_run=3, n_warmup=0).measure_true(out) > 0
    assert used == [est.backend]


def test_a_graph_whose_input_looks_like_a_parameter_is_refused_not_folded_to_zero():
    nn.clear_parameters()
    x = nn.Variable((1, 3, 8, 8), need_grad=True)
    out = F.relu(PF.convolution(x, 4, (3, 3), name="c"))
    est = LatencyGraphEstimator(cache=":memory:", backend="onnxruntime", timer=one_ms, **FAST)
    with pytest.raises(MeasurementError, match="no input the runtime is fed"):
        est.get_estimation(out)
    assert est.get_estimation(out, inputs=[x]) > 0  # named explicitly, it is measured
