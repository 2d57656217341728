"""The real SearchNets of the nnabla-nas 0.15.0 wheel as nas_hw spaces
(nas_hw/search/spaces/searchnets.py), with every MixedOp space the wheel ships: discovery, table,
penalty gradient, derivation by the space's own rule, and two search steps of each algorithm."""
import dataclasses
import functools

import nnabla as nn
import numpy as np
import pytest

from nas_hw import CandidateTable, LatencyCache, LatencyGraphEstimator, LatencyPenalty
from nas_hw.nas.choices import derivation_rule, find_choice_points
from nas_hw.search import SEARCHERS
from nas_hw.search.datasets import Split, adapt_images, load_dataset
from nas_hw.search.spaces.searchnets import SearchNetSpace, deriver, searchnet_arguments
from tests.searchnets_util import SEARCHNETS, FakeTimer, space

ALL = ["darts", "pnas", "darts_unshared", "mobilenet", "fairnas"]
#: (choice points, choice groups, candidates per point) of each space at its test settings
SHAPES = {"darts": (5, 5, 8), "pnas": (5, 5, 8), "darts_unshared": (10, 10, 8),
          "mobilenet": (3, 3, None), "fairnas": (3, 3, None)}


def table_of(name, timer=None, cache=None):
    model, shape = space(name)
    model.apply(training=False)
    est = LatencyGraphEstimator(n_run=1, n_warmup=0, cache=cache or LatencyCache(":memory:"),
                                timer=timer or FakeTimer())
    return model, shape, est, CandidateTable.build(model, est, input_shape=shape, progress=False)


def random_architecture(model, table, rng):
    """A random architecture the model's rule can derive (DARTS: two non-Zero edges per node)."""
    points = table.points
    rule = derivation_rule(model, points)
    if rule.name == "argmax":
        return [int(rng.randint(n)) for n in [len(c) for c in model.candidate_names_per_group]]
    per_point = [None] * len(points)
    for node in rule.nodes:
        kept = set(rng.choice(len(node), 2, replace=False))
        for j, i in enumerate(node):
            zero = rule.zero_index[i]
            per_point[i] = int(rng.choice([k for k in range(points[i].n_candidates) if k != zero])) \
                if j in kept else zero
    groups = {}
    for cp, c in zip(points, per_point):
        groups.setdefault(cp.group, c)
    return [groups[g] for g in range(len(groups))]


def set_one_hot(table, choices, strength=30.0):
    for alpha, c in zip(table.alphas, choices):
        d = np.zeros(alpha.shape, dtype=np.float32)
        d.reshape(-1)[c] = strength
        alpha.d = d


@pytest.mark.parametrize("name", ALL)
def test_choice_points_of_the_real_searchnets_are_found(name):
    model, _ = space(name, mode="sample")
    points = find_choice_points(model, require_shapes=False)
    n_points, n_groups, n_cands = SHAPES[name]
    assert len(points) == n_points and len({cp.group for cp in points}) == n_groups == model.n_choice_groups
    if n_cands:
        assert {cp.n_candidates for cp in points} == {n_cands}
    names = model.candidate_names_per_group
    if name.startswith("darts") or name == "pnas":
        assert names[0][-1] == "none" and "sep_conv_3x3" in names[0]  # nnabla_nas's DARTS names
    else:  # MobileNet / FairNAS: the SearchNet's candidates, skip_connect where the block has it
        assert names == [["MB3 3x3", "MB6 5x5", "skip_connect"], ["MB3 3x3", "MB6 5x5"],
                         ["MB3 3x3", "MB6 5x5", "skip_connect"]]
    assert derivation_rule(model, points).name == SEARCHNETS[name][1]["rule"]
    assert {cp.mode for cp in points} == {"sample"}  # set on the MixedOps (FairNAS's are 'fair' otherwise)


@pytest.mark.parametrize("name", ALL)
def test_candidate_table_of_the_real_searchnets(name):
    timer = FakeTimer()
    model, shape, _, table = table_of(name, timer)
    assert timer.calls > 0
    assert len(table.costs["latency"]) == SHAPES[name][0]
    assert table.fixed["latency"] > 0 and table.fixed["n_layers"] > 0
    assert all(np.all(c >= 0) and np.any(c > 0) for c in table.costs["latency"])
    assert table.min() < table.expected() < table.max()
    assert table.input_shape == shape


@pytest.mark.parametrize("name", ALL)
def test_penalty_gradient_matches_finite_differences(name):
    _, _, _, table = table_of(name)
    rng = np.random.RandomState(1)
    for alpha in table.alphas:
        alpha.d = rng.randn(*alpha.shape).astype(np.float32)
    penalty = LatencyPenalty(table, weight=1.0)
    e = penalty.expected_cost()
    for alpha in table.alphas:
        alpha.grad.zero()
    e.forward()
    e.backward()
    eps = 1e-2
    for g, alpha in enumerate(table.alphas):
        for k in range(0, alpha.size, 3):
            saved = alpha.d.copy()
            up, down = saved.copy(), saved.copy()
            up.reshape(-1)[k] += eps
            down.reshape(-1)[k] -= eps
            alpha.d = up
            hi = table.expected()
            alpha.d = down
            lo = table.expected()
            alpha.d = saved
            assert alpha.g.reshape(-1)[k] == pytest.approx((hi - lo) / (2 * eps), rel=2e-2, abs=1e-6), (g, k)


@pytest.mark.parametrize("name", ALL)
def test_one_hot_expected_latency_is_the_derived_networks_estimate(name):
    """The table's latency of a derived architecture is the layer-based estimate of exactly the
    network that is derived (and retrained): same layers, nothing missing, nothing extra."""
    model, shape, est, table = table_of(name)
    rng = np.random.RandomState(0)
    for _ in range(2):
        choices = random_architecture(model, table, rng)
        set_one_hot(table, choices)
        assert table.argmax_choices() == choices  # the rule derives what the alphas say
        assert table.expected() == pytest.approx(table.for_choices(choices), rel=1e-3)
        net = model.derive(choices)
        assert not find_choice_points(net, require_shapes=False) and net.choices == choices
        assert not [k for k in net.get_parameters() if "alpha" in k]  # no architecture parameter left
        net.apply(training=False)
        derived_ms = est.get_estimation(net(nn.Variable(shape)))
        assert table.argmax() == pytest.approx(derived_ms, rel=0.01)
        assert len(net.choice_names()) == len(choices)


def test_darts_rule_is_nnabla_nas_own_derivation():
    """Our DARTS rule against the wheel's own (darts/helper.py: parse_weights), normal and
    reduction cells, on random alphas."""
    from nnabla_nas.contrib.classification import darts
    from nnabla_nas.contrib.classification.darts.helper import parse_weights

    net = darts.SearchNet(in_channels=1, init_channels=2, num_cells=3, num_classes=10, num_choices=3,
                          multiplier=2, stem_multiplier=1, shared=True)
    points = find_choice_points(net, require_shapes=False)
    rule = derivation_rule(net, points)
    assert rule.name == "darts"  # found from the DARTS cells
    rng = np.random.RandomState(3)
    for _ in range(5):
        for a in net.get_arch_parameters().values():
            a.d = rng.randn(*a.shape)
        ours = rule(points)
        theirs = []
        for kind in (0, 1):  # groups come in order of first use: normal cell 0, then reduction cell 1
            choice = parse_weights(net._alpha[kind], 3)[2]
            theirs += [choice[k] for k in range(len(choice))]
        assert ours == theirs


def test_derived_network_built_for_the_runner_from_a_raw_searchnet():
    factory, _, shape = SEARCHNETS["mobilenet"]
    derive = deriver(functools.partial(factory, num_classes=10))
    net = derive([0, 1, 2])
    assert not find_choice_points(net, require_shapes=False)
    net.apply(training=False)
    assert net(nn.Variable(shape)).shape == (1, 10)
    with pytest.raises(ValueError, match="one index per choice group \\(3\\)"):
        derive([0, 1])


def test_searchnet_arguments_are_mapped_by_name():
    from nnabla_nas.contrib.classification import darts, fairnas, mobilenet

    values = dict(in_channels=1, n_classes=7, seed=3)
    assert searchnet_arguments(darts.SearchNet, **values) == dict(in_channels=1, num_classes=7)
    assert searchnet_arguments(mobilenet.SearchNet, **values) == dict(num_classes=7)
    assert searchnet_arguments(fairnas.SearchNet, **values) == dict(num_classes=7, seed=3)
    with pytest.raises(ValueError, match="net.num_classes is set by nas_hw"):
        searchnet_arguments(functools.partial(mobilenet.SearchNet, num_classes=5), **values)
    with pytest.raises(ValueError, match="image_channels is required"):
        SearchNetSpace(functools.partial(mobilenet.SearchNet, width_mult=0.25, settings=[[8, 1, 1]]))


def test_spaces_without_mixedops_are_refused():
    from nnabla_nas.contrib.classification.zoph import zoph

    net = functools.partial(zoph.SearchNet, input_shape=(3, 8, 8), stem_channels=4, cells=[zoph.ZophCell] * 3,
                            cell_depth=[1] * 3, cell_channels=[4] * 3, reducing=[False, True, True],
                            join_parameters=[[None]] * 3)
    with pytest.raises(ValueError, match="has no MixedOp.*zoph's static Join"):
        SearchNetSpace(net, image_channels=3, image_size=8)


def test_a_shape_the_searchnet_cannot_take_is_named():
    model, _ = space("darts")  # one cell: the classifier's 8x8 pooling needs 16x16 inputs
    with pytest.raises(ValueError, match="image_size: .*cannot take inputs of shape \\[1, 1, 32, 32\\]"):
        model.check_input((1, 1, 32, 32))
    model.check_input((1, 1, 16, 16))
    assert model.input_shape_for((1, 8, 8)) == (1, 16, 16)
    mobile, _ = space("mobilenet")
    assert mobile.input_shape_for((1, 8, 8)) == (3, 8, 8)


def tiny_data(shape, n=48):
    ds = adapt_images(load_dataset("digits"), shape)
    return dataclasses.replace(ds, train=Split(ds.train.x[:n], ds.train.y[:n]),
                               valid=Split(ds.valid.x[:n // 2], ds.valid.y[:n // 2]),
                               test=Split(ds.test.x[:n // 2], ds.test.y[:n // 2]))


@pytest.mark.parametrize("algorithm", ["darts", "proxyless"])
@pytest.mark.parametrize("name", ["darts", "pnas", "mobilenet", "fairnas"])
def test_two_search_steps_of_each_algorithm(name, algorithm, tmp_path):
    model, shape, _, table = table_of(name)
    data = tiny_data(shape[1:])
    before = [a.d.copy() for a in table.alphas]
    kwargs = dict(n_samples=2) if algorithm == "proxyless" else {}
    searcher = SEARCHERS[algorithm](model, data, table, penalty=LatencyPenalty(weight=0.1), output_dir=str(tmp_path),
                                    epochs=1, warmup_epochs=0, batch_size=16, max_batches=2, arch_lr=0.05,
                                    checkpoint=False, **kwargs)
    assert searcher.derive_fn == model.derive  # the space's own
    choices = searcher.run()
    assert searcher.arch_step_count == 2
    assert any(not np.array_equal(b, a.d) for b, a in zip(before, table.alphas))
    assert choices == table.argmax_choices() == searcher.history[-1]["choices"]
    assert len(choices) == model.n_choice_groups
