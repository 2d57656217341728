import nnabla as nn
import nnabla.functions as F
import nnabla.parametric_functions as PF
import numpy as np
import pytest

from nas_hw.errors import MeasurementError
from nas_hw.estimators.incontext import InContextProfiler, incontext_latency
from nas_hw.measure.graph import functions_of


def _graph():
    nn.clear_parameters()
    x = nn.Variable((1, 3, 8, 8), need_grad=False)
    x.d = np.random.RandomState(0).randn(*x.shape)
    with nn.parameter_scope("incontext_test"):
        h = F.relu(PF.convolution(x, 4, (3, 3), pad=(1, 1)))
        h = F.max_pooling(h, (2, 2))
        y = PF.affine(h, 5)
    return y


def test_one_positive_entry_per_function():
    y = _graph()
    funcs = functions_of(y)
    prof = InContextProfiler(y, ext_name="cpu", n_run=3, n_warmup=1)
    stats = prof.run()
    assert [s.function_name for s in stats] == [f.info.type_name for f in funcs]
    assert [s.index for s in stats] == list(range(len(funcs)))
    for s in stats:
        assert s.median > 0 and s.min > 0 and s.n_run == 3
        assert s.min <= s.median
    assert prof.total() == pytest.approx(sum(s.median for s in stats))
    assert prof.forward_hooked > 0


def test_units_and_convenience():
    y = _graph()
    assert incontext_latency(y, n_run=2, n_warmup=0, time_scale="u") > 0


def test_bad_settings_raise():
    y = _graph()
    with pytest.raises(TypeError, match="nnabla.Variable"):
        InContextProfiler("not a graph")
    with pytest.raises(ValueError, match="n_run"):
        InContextProfiler(y, n_run=0)
    with pytest.raises(ValueError, match="time_scale"):
        InContextProfiler(y, time_scale="s")
    with pytest.raises(ValueError, match="ext_name"):
        InContextProfiler(y, ext_name="tpu")
    prof = InContextProfiler(y, n_run=1)
    with pytest.raises(RuntimeError, match="run"):
        prof.total()
    prof.run()
    with pytest.raises(ValueError, match="stat"):
        prof.total("max")


def test_graph_without_function_raises():
    x = nn.Variable((1, 2))
    with pytest.raises(MeasurementError, match="no function"):
        InContextProfiler(x, n_run=1).run()
