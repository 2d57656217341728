import math

import nnabla as nn
import numpy as np
import pytest

from nas_hw import CandidateTable, LatencyCache, LatencyGraphEstimator, LatencyPenalty, MemoryPenalty
from nas_hw.errors import GraphNotBuiltError
from nas_hw.search.spaces import MobileNetSpace
from tests.spaces_util import SPACES

LOSS = 1.7


def make_table(space, mode="full", time_scale="u"):
    net, _ = SPACES[space](mode=mode, **({"n_cells": 3} if space == "darts" else {}))
    est = LatencyGraphEstimator(device_id=0, ext_name="cpu", n_run=3, n_warmup=1, time_scale=time_scale,
                                cache=LatencyCache(":memory:"))
    return net, CandidateTable.build(net, est, progress=False)


def reference(table, alphas, mode, weight, target, a=0.2, b=0.3):
    """The penalised loss in float64 numpy, straight from the formulas."""
    e = table.fixed["latency"]
    for alpha, c in zip(alphas, table.group_costs()):
        x = alpha.reshape(-1)
        p = np.exp(x - x.max()) / np.exp(x - x.max()).sum()
        e += float(p @ c)
    if mode == "linear":
        return LOSS + (weight * e if target is None else weight * (e - target) / target)
    if mode == "hinge":
        return LOSS + weight * max(0.0, e - target) / target
    return LOSS * a * (math.log(e) / math.log(target)) ** b


CASES = [("linear", None), ("linear", "mid"), ("hinge", "low"), ("log", "mid")]


@pytest.mark.parametrize("space", ["mobilenet", "darts"])
@pytest.mark.parametrize("mode, target", CASES)
def test_gradient_matches_central_differences(space, mode, target):
    net, table = make_table(space)
    rng = np.random.RandomState(0)
    for alpha in table.alphas:
        alpha.d = rng.randn(*alpha.shape) * 0.5
    target_value = {None: None, "mid": (table.min() + table.max()) / 2, "low": table.min() * 1.05}[target]
    pen = LatencyPenalty(table, weight=0.5, target=target_value, mode=mode)
    loss = nn.Variable.from_numpy_array(np.array(LOSS, dtype=np.float32))
    out = pen.apply(loss)
    for alpha in table.alphas:
        alpha.grad.zero()
    out.forward()
    out.backward()
    base = [alpha.d.astype(np.float64).copy() for alpha in table.alphas]
    assert float(out.d) == pytest.approx(reference(table, base, mode, 0.5, target_value), rel=1e-4)
    h = 1e-5
    for gi, alpha in enumerate(table.alphas):
        numeric = np.zeros(base[gi].size)
        for i in range(base[gi].size):
            plus = [x.copy() for x in base]
            minus = [x.copy() for x in base]
            plus[gi].reshape(-1)[i] += h
            minus[gi].reshape(-1)[i] -= h
            numeric[i] = (reference(table, plus, mode, 0.5, target_value)
                          - reference(table, minus, mode, 0.5, target_value)) / (2 * h)
        analytic = alpha.g.reshape(-1).astype(np.float64)
        err = np.linalg.norm(analytic - numeric) / max(np.linalg.norm(numeric), 1e-12)
        assert err < 1e-3, (gi, analytic, numeric)


def test_shared_alphas_receive_the_sum_of_their_choice_points():
    net, table = make_table("darts")
    assert len(table.groups) > table.n_groups  # some alphas are shared
    pen = LatencyPenalty(table, weight=1.0)
    e = pen.expected_latency()
    e.forward()
    assert float(e.d) == pytest.approx(table.expected(), rel=1e-5)


def test_proxyless_order_penalty_adds_to_reinforce_gradient():
    net, table = make_table("mobilenet", mode="sample")
    pen = LatencyPenalty(table, weight=0.3)
    term = pen.penalty_of()  # the penalty term alone (no task loss)
    for alpha in table.alphas:
        alpha.grad.zero()
    term.forward()
    term.backward()
    penalty_grad = [alpha.g.copy() for alpha in table.alphas]
    # 1) the MixedOps' forward assigns alpha.g (REINFORCE: softmax - onehot) ...
    net(nn.Variable((1, 3, 8, 8)))
    reinforce = [alpha.g.copy() for alpha in table.alphas]
    assert any(np.abs(r).sum() > 0 for r in reinforce)
    # 2) ... then the penalty's backward accumulates on top of it.
    term.forward()
    term.backward()
    for alpha, r, p in zip(table.alphas, reinforce, penalty_grad):
        np.testing.assert_allclose(alpha.g, r + p, rtol=1e-5, atol=1e-7)


def test_memory_penalty_uses_param_bytes():
    net, table = make_table("mobilenet")
    pen = MemoryPenalty(table, weight=1e-6)
    e = pen.expected_cost()
    e.forward()
    assert float(e.d) == pytest.approx(table.expected("param_bytes"), rel=1e-5)


@pytest.mark.parametrize("kwargs, message", [
    ({"weight": -1}, "weight must be a finite number >= 0"),
    ({"weight": "0.1"}, "weight must be a finite number"),
    ({"weight": float("nan")}, "weight must be a finite number"),
    ({"mode": "square"}, "mode must be one of"),
    ({"mode": "hinge"}, "target is required by mode='hinge'"),
    ({"mode": "log"}, "target is required by mode='log'"),
    ({"target": -2.0}, "target must be a finite number > 0"),
    ({"mode": "log", "target": 0.5}, "target must be > 1"),
    ({"mode": "log", "target": 100.0, "b": 0}, "b must be a finite number > 0"),
])
def test_invalid_settings_name_the_setting(kwargs, message):
    _, table = make_table("mobilenet")
    with pytest.raises(ValueError, match=message):
        LatencyPenalty(table, **kwargs)


def test_model_without_graph_is_refused():
    net = MobileNetSpace(in_channels=3, stage_channels=(8,), stage_blocks=(1,), stage_strides=(1,))
    est = LatencyGraphEstimator(device_id=0, ext_name="cpu", n_run=2, cache=LatencyCache(":memory:"))
    with pytest.raises(GraphNotBuiltError):
        CandidateTable.build(net, est, progress=False)
