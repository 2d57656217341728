import nnabla as nn
import numpy as np
import pytest

from nas_hw.errors import GraphNotBuiltError
from nas_hw.search.spaces import DartsSpace, MobileNetSpace
from nas_hw.nas.choices import (arch_parameters, argmax_choices, current_choices, find_choice_points,
                          net_parameters, set_mode)
from tests.spaces_util import darts, mobilenet


def test_mobilenet_choice_points_and_shapes():
    net, _ = mobilenet(size=8)
    points = find_choice_points(net)
    assert len(points) == 3
    assert [cp.n_candidates for cp in points] == [4, 5, 4]  # residual block also offers zero
    assert [cp.group for cp in points] == [0, 1, 2]
    assert points[0].input_shapes == [(1, 8, 8, 8)]
    assert points[2].input_shapes == [(1, 8, 8, 8)]  # first block of stage 2 sees stage-1 output


def test_darts_shared_alphas_form_groups():
    net, _ = darts(n_cells=3)  # normal, reduction, normal: the two normal cells share alphas
    points = find_choice_points(net)
    alphas = arch_parameters(net)
    assert len(points) == 15 and len(alphas) == 10
    groups = {}
    for cp in points:
        groups.setdefault(cp.group, []).append(cp.alpha)
    for members in groups.values():
        assert all(a is members[0] for a in members)
    assert len(argmax_choices(net)) == len(alphas)


def test_net_parameters_exclude_alphas():
    net, _ = darts()
    alphas = list(arch_parameters(net).values())
    params = net_parameters(net)
    assert params and not any(p is a for p in params.values() for a in alphas)
    n_all = len({id(p) for p in net.get_parameters().values()})
    assert len({id(p) for p in params.values()}) == n_all - len(alphas)


def test_argmax_and_modes():
    net, _ = mobilenet()
    points = find_choice_points(net)
    points[0].alpha.d = np.array([0, 0, 5, 0]).reshape(points[0].alpha.shape)
    assert argmax_choices(net)[0] == 2
    set_mode(net, "sample")
    assert all(cp.mode == "sample" for cp in find_choice_points(net))
    net(nn.Variable((1, 3, 8, 8)))
    assert all(c is not None for c in current_choices(net))
    with pytest.raises(ValueError, match="mode must be one of"):
        set_mode(net, "random")


def test_graph_never_built_is_a_clear_error():
    net = MobileNetSpace(in_channels=3, stage_channels=(8,), stage_blocks=(1,), stage_strides=(1,))
    with pytest.raises(GraphNotBuiltError, match="build the model's graph"):
        find_choice_points(net)
    with pytest.raises(TypeError, match="get_modules"):
        find_choice_points(object())


def test_darts_space_class_is_duck_typed():
    net = DartsSpace(in_channels=3, channels=4, n_cells=1, n_nodes=1, reduction_cells=())
    assert len(find_choice_points(net, require_shapes=False)) == 2


def _points(alphas, zero_last=True):
    """Choice points over plain arrays (a rule reads alpha.d only)."""
    from types import SimpleNamespace

    from nas_hw.nas.choices import ChoicePoint

    return [ChoicePoint(f"e{i}", None, [None] * len(a), SimpleNamespace(d=np.asarray(a, dtype=np.float32)), i, [])
            for i, a in enumerate(alphas)]


def test_darts_rule_keeps_the_two_strongest_non_zero_edges_of_each_node():
    from nas_hw.nas.choices import TopEdgesRule

    # node 0: edges 0, 1; node 1: edges 2, 3, 4. Candidates [conv, pool, zero]
    alphas = [[0, 1, 5],     # Zero strongest, then pool: kept anyway (a node keeps two edges)
              [2, 0, 0],
              [0, 3, 0],     # pool at p=0.91: the strongest edge of node 1
              [1, 0, 0],     # conv at p=0.58: kept
              [0.5, 0, 0],   # conv at p=0.45: the weakest of node 1, dropped (-> Zero)
              ]
    rule = TopEdgesRule([[0, 1], [2, 3, 4]], [2] * 5)
    assert rule(_points(alphas)) == [1, 0, 1, 0, 2]
    # probabilities, not raw alphas: Zero's mass weakens an edge (here edge 3 loses to edge 2)
    alphas[3] = [1, 0, 4]
    assert rule(_points(alphas)) == [1, 0, 1, 2, 0]
    from nas_hw.nas.choices import argmax_choices
    assert argmax_choices(_points(alphas)) == [2, 0, 1, 2, 0]  # what the plain argmax would derive
    with pytest.raises(ValueError, match="needs a Zero candidate on every edge"):
        TopEdgesRule([[0, 1]], [2, None])


def test_darts_rule_is_refused_for_a_space_without_darts_cells():
    from nas_hw.nas.choices import derivation_rule

    net, _ = mobilenet()
    assert derivation_rule(net).name == "argmax"
    with pytest.raises(ValueError, match="rule 'darts' needs nnabla_nas's DARTS cells"):
        derivation_rule(net, rule="darts")
    with pytest.raises(ValueError, match="rule must be one of"):
        derivation_rule(net, rule="best")
