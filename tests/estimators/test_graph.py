"""LatencyGraphEstimator keeps no graph: any number of distinct graphs in bounded memory."""
import os

import nnabla as nn
import nnabla.functions as F
import numpy as np
import pytest

from nas_hw import LatencyGraphEstimator
from nas_hw.measure.graph import walk, walk_inputs
from nas_hw.measure.timing import TimingStats
from tests.estimators.helpers_refs import reachable

KW = dict(device_id=0, ext_name="cpu", n_run=1, n_warmup=0)


def fixed_measure(fn, **kwargs):
    return TimingStats(1e-3, 1e-3, 0.0, 1e-3, 1, 1)


def forwarded_graph(width=16, size=128, depth=10):
    """A graph whose forward leaves about ``depth * 2`` MB of buffers behind (as a search step
    does before the latency is asked)."""
    h = nn.Variable.from_numpy_array(np.ones((1, width, size, size), np.float32))
    for k in range(depth):
        h = F.add_scalar(F.relu(h), float(k))
    h.forward()
    return h


def _rss_mb():
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2 ** 20


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs Linux /proc to read resident memory")
def test_memory_stays_flat_over_many_distinct_graphs():
    """30 distinct graphs, each run forward before it is estimated: holding them would grow the
    process by about 20 MB per graph; the estimator must not."""
    est = LatencyGraphEstimator(cache=":memory:", timer=fixed_measure, **KW)
    rss = []
    for _ in range(30):
        est.get_estimation(forwarded_graph())
        rss.append(_rss_mb())
    assert rss[-1] - rss[4] < 40, f"resident memory grew {rss[-1] - rss[4]:.0f} MB after the 5th graph"


def test_the_estimator_references_no_graph_object():
    est = LatencyGraphEstimator(cache=":memory:", timer=fixed_measure, **KW)
    for size in (8, 16, 8):
        total = est.get_estimation(forwarded_graph(width=2, size=size, depth=3))
        assert total == pytest.approx(6.0)  # every query walks and sums: 6 functions, 1 ms each
    for obj in reachable(est):
        assert not isinstance(obj, nn.Variable), "the estimator holds a Variable"
        assert not (type(obj).__name__ == "Function" and hasattr(obj, "inputs")), "the estimator holds a Function"
        assert type(obj).__name__ != "NdArray", "the estimator holds an array"


def test_walk_inputs_lists_each_functions_inputs_and_stops_where_told():
    x = nn.Variable((1, 2))
    y = F.relu(x)
    z = F.add2(y, F.sigmoid(y))
    funcs, inputs_of, leaves = walk_inputs(z)
    assert [f.info.type_name for f in funcs] == ["ReLU", "Sigmoid", "Add2"] == [f.info.type_name for f in walk(z)[0]]
    assert [len(i) for i in inputs_of] == [1, 1, 2] and leaves == [x]
    funcs, _, leaves = walk_inputs([z], stop={y})
    assert [f.info.type_name for f in funcs] == ["Sigmoid", "Add2"] and leaves == [y]
    assert walk_inputs(x) == ([], [], [])
