import math

import nnabla as nn
import numpy as np
import pytest

from nas_hw import LatencyPenalty, MemoryPenalty
from tests.spaces_util import SPACES, hand_table

LOSS = 1.7


def make_table(space, mode="full"):
    """The space's choice points with a hand-made table (in us): the penalty only reads tables."""
    net, _ = SPACES[space](mode=mode, **({"n_cells": 3} if space == "darts" else {}))
    return net, hand_table(net, unit="u")


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
    ({"weight": -1}, r"weight must be a finite number in \[0, 1000000.0\]"),
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


def test_units_convert_once_when_the_penalty_is_built():
    """A penalty in ms over a table in us: E and the target are in ms, the gradient scaled alike."""
    _, table = make_table("mobilenet")
    in_us = LatencyPenalty(table, weight=1.0)
    in_ms = LatencyPenalty(table, weight=1.0, unit="m")
    assert in_us.unit == "u" and in_ms.unit == "m"
    assert in_ms.expected_value() == pytest.approx(in_us.expected_value() / 1000)
    e = in_ms.expected_latency()
    e.forward()
    assert float(e.d) == pytest.approx(table.expected(unit="m"), rel=1e-5)


def test_a_penalty_built_without_table_checks_its_settings_at_once_and_binds_later():
    with pytest.raises(ValueError, match="weight=0 makes a 'linear' penalty a no-op"):
        LatencyPenalty(weight=0)
    pen = LatencyPenalty(weight=0.5, target=2.0, mode="hinge", unit="m")
    with pytest.raises(RuntimeError, match="no candidate table yet"):
        pen.expected_value()
    _, table = make_table("darts")
    assert pen.bind(table) is pen and pen.expected_value() == pytest.approx(table.expected(unit="m"))
