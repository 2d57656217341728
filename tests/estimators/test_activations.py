"""Exact activation memory (total and peak) of small hand-computed graphs."""
from collections import OrderedDict

import nnabla as nn
import nnabla.functions as F
import pytest

from nas_hw.errors import GraphNotBuiltError
from nas_hw.estimators.activations import ActivationMemoryEstimator, activation_memory


@pytest.fixture(autouse=True)
def fresh_scope():
    with nn.parameter_scope("", OrderedDict()):
        yield


def branchy(inplace_add=False):
    """x(1,2,4,4) -> a=relu -> b=a*2, c=a+1 -> d=b+c -> e=maxpool 2x2 -> y=gap.

    Buffers (float32): a, b, c, d: 32 elements = 128 B; e: (1,2,2,2) = 32 B; y: 8 B.
    """
    x = nn.Variable((1, 2, 4, 4))
    a = F.relu(x)
    b = F.mul_scalar(a, 2.0)
    c = F.add_scalar(a, 1.0)
    d = F.add2(b, c, inplace=inplace_add)
    e = F.max_pooling(d, (2, 2))
    return F.global_average_pooling(e)


def test_activation_total_and_peak_on_a_branchy_graph():
    mem = activation_memory(branchy())
    assert mem.total_bytes == 4 * 128 + 32 + 8 == 552
    # relu: a=128 | mul: a+b=256 | add_scalar: a+b+c=384, then a freed -> 256
    # add2: b+c+d=384, then b, c freed -> 128 | maxpool: d+e=160 -> 32 | gap: e+y=40
    assert [s.live_bytes for s in mem.per_function] == [128, 256, 384, 384, 160, 40]
    assert [s.type_name for s in mem.per_function] == [
        "ReLU", "MulScalar", "AddScalar", "Add2", "MaxPooling", "GlobalAveragePooling"]
    assert mem.peak_bytes == 384 < mem.total_bytes


def test_activation_scales_with_batch_size_and_dtype():
    y = branchy()
    mem = activation_memory(y, batch_size=3, dtype="half")
    assert mem.total_bytes == 3 * 552 // 2
    assert mem.peak_bytes == 3 * 384 // 2
    assert ActivationMemoryEstimator(batch_size=3).get_estimation(y) == 3 * 384
    assert ActivationMemoryEstimator(stat="total").get_estimation(y) == 552
    with pytest.raises(ValueError, match=r"batch_size must be an integer in \[1, 65536\] or None, got 0"):
        activation_memory(y, batch_size=0)
    with pytest.raises(ValueError, match=r"stat must be one of \('peak', 'total'\)"):
        ActivationMemoryEstimator(stat="mean")


def test_inplace_function_shares_its_input_buffer():
    mem = activation_memory(branchy(inplace_add=True))
    assert mem.total_bytes == 3 * 128 + 32 + 8 == 424   # d reuses b's buffer
    # add2 allocates nothing: b(=d)+c = 256, then c freed -> 128 | maxpool: 160 | gap: 40
    assert [s.live_bytes for s in mem.per_function] == [128, 256, 384, 256, 160, 40]
    assert [s.new_bytes for s in mem.per_function] == [128, 128, 128, 0, 32, 8]
    assert mem.per_function[3].inplace
    assert mem.peak_bytes == 384


def test_inplace_on_the_graph_input_and_reshape_allocate_nothing():
    x = nn.Variable((2, 6))
    h = F.relu(x, inplace=True)             # reuses the input's buffer: not counted
    y = F.reshape(F.mul_scalar(h, 3.0), (2, 2, 3))   # reshape is in-place in nnabla
    mem = activation_memory(y)
    assert [s.new_bytes for s in mem.per_function] == [0, 48, 0]
    assert mem.total_bytes == mem.peak_bytes == 48


def test_activation_estimator_on_a_called_module():
    import nnabla_nas.module as Mo

    conv = Mo.Conv(3, 4, (3, 3))
    with pytest.raises(GraphNotBuiltError, match="call it once"):
        ActivationMemoryEstimator().get_estimation(conv)
    conv(nn.Variable((2, 3, 8, 8)))
    # one output (2, 4, 6, 6) = 288 floats
    assert ActivationMemoryEstimator().get_estimation(conv) == 288 * 4
    assert ActivationMemoryEstimator(batch_size=1).get_estimation(conv) == 144 * 4
