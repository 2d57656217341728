"""CandidateTable under nnabla_nas's fast mode (NNABLA_NAS_MIXEDOP_FAST_MODE), and its refusal
of a negative fixed part whatever the cause."""
import nnabla as nn
import pytest

import nas_hw  # noqa: F401  (the OFA placeholder, so the real SearchNets import)
from nas_hw import CandidateTable, LatencyEstimator, LatencyGraphEstimator, MeasurementError
from nas_hw.measure.timing import TimingStats

KW = dict(device_id=0, ext_name="cpu", n_run=1, n_warmup=0)


def counting_measure(fn, **kwargs):
    """1 ms per nnabla function the measured call runs."""
    ran = []
    nn.set_function_pre_hook("nas_hw_test_fast", lambda f: ran.append(1))
    try:
        fn()
    finally:
        nn.unset_function_pre_hook("nas_hw_test_fast")
    t = 1e-3 * len(ran)
    return TimingStats(t, t, 0.0, t, 1, 1)


def real_mobilenet():
    from nnabla_nas.contrib.classification import mobilenet
    net = mobilenet.SearchNet(num_classes=10, mode="sample", settings=[[24, 2, 2], [32, 1, 2]])
    net.apply(training=False)
    net(nn.Variable((1, 3, 32, 32)))  # the graph a search built (and fast mode caches)
    return net


@pytest.mark.parametrize("estimator_cls", [LatencyGraphEstimator, LatencyEstimator])
def test_fast_mode_tables_equal_the_plain_ones(estimator_cls, monkeypatch):
    """In fast mode every module answers with the graph it built first; the table must still
    measure each candidate on its own and the network as built at the table's shape."""
    plain = CandidateTable.build(real_mobilenet(), estimator_cls(cache=":memory:", timer=counting_measure, **KW),
                                 input_shape=(1, 3, 32, 32), progress=False)
    monkeypatch.setenv("NNABLA_NAS_MIXEDOP_FAST_MODE", "1")
    net = real_mobilenet()
    assert "_call_create" in net.__dict__, "the model is in nnabla_nas's fast mode"
    fast = CandidateTable.build(net, estimator_cls(cache=":memory:", timer=counting_measure, **KW),
                                input_shape=(1, 3, 32, 32), progress=False)
    assert fast.fixed == plain.fixed and fast.fixed["latency"] > 0
    assert [c.tolist() for c in fast.costs["latency"]] == [c.tolist() for c in plain.costs["latency"]]
    assert "call" in net.__dict__ and net.__dict__["call"] == net._call_cached  # fast mode left as it was


def test_a_negative_fixed_part_is_refused_whatever_the_cause():
    net = real_mobilenet()

    class Inconsistent(LatencyGraphEstimator):
        """Measures the whole network at nothing (as a cached graph once made it too cheap)."""

        def estimate_module(self, module, input_shapes):
            value = super().estimate_module(module, input_shapes)
            return 0.0 if module is net else value

    with pytest.raises(MeasurementError, match="fixed part .* negative"):
        CandidateTable.build(net, Inconsistent(cache=":memory:", timer=counting_measure, **KW),
                             input_shape=(1, 3, 32, 32), progress=False)
    table = CandidateTable.build(real_mobilenet(), LatencyGraphEstimator(cache=":memory:", timer=counting_measure, **KW),
                                 input_shape=(1, 3, 32, 32), progress=False)
    d = table.to_dict()
    d["fixed"]["latency"] = -7.76
    with pytest.raises(ValueError, match=r"fixed\['latency'\] must be >= 0"):
        CandidateTable.from_dict(d)
