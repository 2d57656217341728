"""Throughput at several batch sizes (no wall-clock thresholds: only consistency)."""
from collections import OrderedDict

import nnabla as nn
import nnabla.functions as F
import nnabla.parametric_functions as PF
import pytest

from nas_hw.estimators.throughput import ThroughputEstimator, measure_throughput


@pytest.fixture(autouse=True)
def fresh_scope():
    with nn.parameter_scope("", OrderedDict()):
        yield


def build(batch_size):
    x = nn.Variable((batch_size, 3, 16, 16))
    h = F.relu(PF.convolution(x, 8, (3, 3), pad=(1, 1), name="c1"))
    h = F.max_pooling(h, (2, 2))
    return PF.affine(h, 10, name="fc")


SETTINGS = dict(n_run=5, n_warmup=1, max_measure_execution_time=2.0)


def test_batch_1_and_8_give_positive_consistent_numbers():
    est = ThroughputEstimator(time_scale="m", **SETTINGS)
    results = est.sweep(build, [1, 8])
    assert [r.batch_size for r in results] == [1, 8]
    for r in results:
        assert r.latency > 0 and r.samples_per_s > 0
        assert r.time_scale == "m"
        # latency is in ms: batch / (latency in s) is the throughput
        assert r.samples_per_s == pytest.approx(r.batch_size / (r.latency / 1e3))
        assert r.latency == pytest.approx(r.stats.mean * 1e3)
        assert 1 <= r.stats.n_measured <= 5


def test_time_scale_and_shortcut():
    r = measure_throughput(build, 2, time_scale="u", **SETTINGS)
    assert r.batch_size == 2 and r.time_scale == "u"
    assert r.samples_per_s == pytest.approx(2 / (r.latency / 1e6))
    assert ThroughputEstimator(**SETTINGS).get_estimation(build, 4) > 0


def test_builder_sees_the_requested_batch_size():
    seen = []

    def recording(batch_size):
        seen.append(batch_size)
        return build(batch_size)

    ThroughputEstimator(**SETTINGS).measure(recording, 3)
    assert seen == [3]


def test_bad_arguments_are_named():
    est = ThroughputEstimator(**SETTINGS)
    with pytest.raises(ValueError, match=r"batch_size must be an integer in \[1, 65536\], got 0"):
        est.measure(build, 0)
    with pytest.raises(TypeError, match="build must be a callable"):
        est.measure(build(1), 1)
    with pytest.raises(TypeError, match=r"build\(1\) returned tuple"):
        est.measure(lambda b: (build(b),), 1)
    with pytest.raises(ValueError, match="time_scale must be one of"):
        ThroughputEstimator(time_scale="s")
    with pytest.raises(ValueError, match=r"n_run must be an integer in \[1, 100000\]"):
        ThroughputEstimator(n_run=0)
    with pytest.raises(ValueError, match="ext_name must be one of"):
        ThroughputEstimator(ext_name="tpu", **SETTINGS).measure(build, 1)


def test_mobilenet_style_network_at_batch_1_and_8():
    from nas_hw.search.spaces import MobileNetSpace
    space = MobileNetSpace(in_channels=3, stage_channels=(8, 16), stage_blocks=(1, 1), kernels=(3,),
                           expansions=(3,))
    net = space.derive([0] * space.n_choice_groups)
    net.apply(training=False)
    est = ThroughputEstimator(time_scale="m", **SETTINGS)
    r1, r8 = est.sweep(lambda b: net(nn.Variable((b, 3, 16, 16))), [1, 8])
    assert (r1.batch_size, r8.batch_size) == (1, 8)
    assert r1.samples_per_s > 0 and r8.samples_per_s > 0
    assert r8.samples_per_s == pytest.approx(8 / (r8.latency / 1e3))
