"""Exact FLOPs and MACs of small hand-computed graphs."""
from collections import OrderedDict

import nnabla as nn
import nnabla.functions as F
import nnabla.parametric_functions as PF
import pytest

from nas_hw.estimators.flops import FLOPS_TABLE, FlopsEstimator, count_flops


@pytest.fixture(autouse=True)
def fresh_scope():
    with nn.parameter_scope("", OrderedDict()):
        yield


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
