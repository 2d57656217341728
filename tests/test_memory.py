"""Exact values of the static estimators on small hand-computed graphs."""
from collections import OrderedDict

import nnabla as nn
import nnabla.functions as F
import nnabla.parametric_functions as PF
import pytest

from nas_hw.errors import GraphNotBuiltError
from nas_hw.estimators.memory import (FLOPS_TABLE, ActivationMemoryEstimator,
                                      FlopsEstimator, ParameterMemoryEstimator,
                                      activation_memory, count_flops, dtype_bytes,
                                      parameter_bytes, parameter_count)


@pytest.fixture(autouse=True)
def fresh_scope():
    with nn.parameter_scope("", OrderedDict()):
        yield


# ------------------------------------------------------------------------- parameters

def small_net(batch=2):
    x = nn.Variable((batch, 3, 8, 8))
    h = PF.convolution(x, 4, (3, 3), pad=(1, 1), name="c1")   # W 4*3*3*3=108, b 4
    h = PF.batch_normalization(h, name="bn")                   # beta, gamma, mean, var: 4 each
    h = F.relu(h)
    h = F.reshape(h, (batch, -1))
    return PF.affine(h, 10, name="fc")                        # W 256*10=2560, b 10


def test_parameter_count_and_bytes_of_a_graph():
    y = small_net()
    expected = 108 + 4 + 4 * 4 + 2560 + 10
    assert parameter_count(y) == expected == 2698
    assert parameter_bytes(y) == 4 * expected
    assert parameter_bytes(y, dtype="half") == 2 * expected
    assert parameter_bytes(y, dtype="int8") == expected
    assert isinstance(parameter_bytes(y), int)
    assert ParameterMemoryEstimator().get_estimation(y) == 4 * expected


def test_parameters_used_twice_count_once_and_inputs_do_not_count():
    x = nn.Variable((1, 5))
    h = PF.affine(x, 5, name="shared")       # 25 + 5
    y = PF.affine(h, 5, name="shared")       # the same parameters again
    assert parameter_count(y) == 30
    x.need_grad = True                       # a leaf that needs grad is counted
    assert parameter_count(y) == 35


def test_bad_dtype_names_the_allowed_values():
    with pytest.raises(ValueError, match="dtype must be one of .*'float32'.*got 'float8'"):
        parameter_bytes(small_net(), dtype="float8")
    assert dtype_bytes("float16") == 2


def test_module_parameters_active_only():
    import nnabla_nas.module as Mo

    class Net(Mo.Module):
        def __init__(self):
            super().__init__()
            self.a = Mo.Linear(4, 3)       # 12 + 3
            self.b = Mo.Linear(4, 5)       # 20 + 5

        def call(self, x):
            return self.a(x)

    net = Net()
    assert parameter_count(net) == 40
    net.b.is_active = False
    assert parameter_count(net) == 15
    assert parameter_count(net, active_only=False) == 40
    assert ParameterMemoryEstimator().get_estimation(net) == 60
    assert ParameterMemoryEstimator(active_only=False).get_estimation(net) == 160
    with pytest.raises(TypeError, match="nnabla.Variable"):
        parameter_count(object())


# ------------------------------------------------------------------------ activations

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
    with pytest.raises(ValueError, match="batch_size must be None or an integer >= 1, got 0"):
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


# ------------------------------------------------------------------------------ FLOPs

def flops_of(y):
    return [(r.type_name, r.macs, r.flops) for r in count_flops(y).per_function]


def test_convolution_flops():
    n, c, h, w, oc, k = 2, 3, 8, 8, 4, 3
    x = nn.Variable((n, c, h, w))
    y = PF.convolution(x, oc, (k, k), pad=(1, 1), name="c")     # output (2, 4, 8, 8)
    macs = n * oc * h * w * c * k * k                             # 13824
    assert flops_of(y) == [("Convolution", macs, 2 * macs + n * oc * h * w)]
    y = PF.convolution(x, oc, (k, k), with_bias=False, name="nb")  # output (2, 4, 6, 6)
    macs = n * oc * 6 * 6 * c * k * k
    assert flops_of(y) == [("Convolution", macs, 2 * macs)]


def test_grouped_and_depthwise_convolution_flops():
    x = nn.Variable((1, 8, 10, 10))
    y = PF.convolution(x, 8, (3, 3), group=4, with_bias=False, name="g")   # out (1,8,8,8)
    macs = 8 * 8 * 8 * (8 // 4) * 3 * 3                                      # 9216
    assert flops_of(y) == [("Convolution", macs, 2 * macs)]
    y = PF.depthwise_convolution(x, (3, 3), name="dw")                       # out (1,8,8,8)
    macs = 8 * 8 * 8 * 3 * 3                                                 # 4608
    assert flops_of(y) == [("DepthwiseConvolution", macs, 2 * macs + 8 * 8 * 8)]
    y = PF.depthwise_convolution(x, (3, 3), multiplier=2, with_bias=False, name="dw2")
    macs = 16 * 8 * 8 * 3 * 3
    assert flops_of(y) == [("DepthwiseConvolution", macs, 2 * macs)]


def test_affine_batchnorm_pooling_softmax_flops():
    x = nn.Variable((4, 2, 3, 3))
    h = PF.batch_normalization(x, batch_stat=False, name="bn")   # 72 elements
    h = F.average_pooling(h, (3, 3))                               # (4, 2, 1, 1)
    h = PF.affine(h, 5, name="fc")                                 # (4, 5)
    y = F.softmax(h)
    assert flops_of(y) == [
        ("BatchNormalization", 72, 144),
        ("AveragePooling", 0, 8 * 9),
        ("Affine", 4 * 2 * 5, 2 * 4 * 2 * 5 + 4 * 5),
        ("Softmax", 0, 5 * 20),
    ]
    result = count_flops(y)
    assert result.macs == 72 + 40
    assert result.flops == 144 + 72 + 100 + 100
    assert FlopsEstimator().get_estimation(y) == 416
    assert FlopsEstimator(count="macs").get_estimation(y) == 112
    assert result.complete and result.unknown == ()


def test_pointwise_and_data_movement_flops():
    x = nn.Variable((1, 4, 4, 4))                                   # 64 elements
    a = F.relu6(x)
    b = F.max_pooling(F.sigmoid(a), (2, 2))                         # (1, 4, 2, 2)
    c = F.concatenate(b, b, axis=1)                                 # (1, 8, 2, 2)
    y = F.sum(F.add2(c, c), axis=1)                                 # 32 -> 4
    assert flops_of(y) == [("ReLU6", 0, 128), ("Sigmoid", 0, 256), ("MaxPooling", 0, 16 * 3),
                           ("Concatenate", 0, 0), ("Add2", 0, 32), ("Sum", 0, 28)]
    assert count_flops(y).data_movement == ("Concatenate",)


def test_unknown_function_raises_or_is_listed_never_zero():
    x = nn.Variable((1, 3, 4, 4))
    y = F.relu(F.exp(PF.convolution(x, 2, (1, 1), with_bias=False, name="c")))
    with pytest.raises(ValueError, match="unsupported function Exp for FLOPs; supported: .*Convolution"):
        count_flops(y)
    with pytest.raises(ValueError, match="unsupported function Exp"):
        FlopsEstimator().get_estimation(y)
    result = count_flops(y, on_unknown="list")
    assert result.unknown == ("Exp",)
    assert not result.complete
    row = result.per_function[1]
    assert (row.type_name, row.macs, row.flops, row.kind) == ("Exp", None, None, "unknown")
    assert result.macs == 32 * 3 and result.flops == 2 * 32 * 3 + 32
    with pytest.raises(ValueError, match=r"on_unknown must be one of \('raise', 'list'\)"):
        count_flops(y, on_unknown="zero")


def test_table_functions_are_pure_over_the_function_shapes():
    class V:
        def __init__(self, shape):
            self.shape = shape

    class Fn:
        inputs = [V((2, 10))]
        outputs = [V((2, 10))]

    assert FLOPS_TABLE["HardSwish"](Fn()) == (0, 100)
    assert FLOPS_TABLE["Reshape"](Fn()) == (0, 0)
