"""Exact parameter memory of small hand-computed graphs and modules."""
from collections import OrderedDict

import nnabla as nn
import nnabla.functions as F
import nnabla.parametric_functions as PF
import pytest

from nas_hw.checks import dtype_bytes
from nas_hw.estimators.params import ParameterMemoryEstimator, parameter_bytes, parameter_count


@pytest.fixture(autouse=True)
def fresh_scope():
    with nn.parameter_scope("", OrderedDict()):
        yield


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
