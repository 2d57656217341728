"""The module estimator (LatencyEstimator) on the real nnabla_nas SearchNets: a plan answers a
never-seen architecture with the numbers a rebuild gives, without rebuilding; static-graph
models; nothing of a model outlives it in the estimator."""
import gc
import zlib

import nnabla as nn
import nnabla.functions as F
import numpy as np
import pytest
from nnabla_nas.module import Conv, MixedOp, Module, ReLU

import nas_hw  # noqa: F401  (the OFA placeholder, so the real SearchNets import)
import nas_hw.estimators.module as module_estimator
from nas_hw import LatencyEstimator, LatencyGraphEstimator
from nas_hw import nnabla_nas_compat as nnas
from nas_hw.estimators.recording import sampling_mixed_ops
from nas_hw.measure.timing import TimingStats
from tests.estimators.helpers_refs import reachable

KW = dict(device_id=0, ext_name="cpu", n_run=1, n_warmup=0)


def per_function_measure(fn, **kwargs):
    """A deterministic stand-in for ``measure``: every nnabla function the measured call runs
    costs 1-2 ms, a value fixed by its type, arguments and input shapes; a sum then tells
    which functions were counted, and how many times."""
    ran = []
    nn.set_function_pre_hook("nas_hw_test_fn", lambda f: ran.append(
        (f.info.type_name, repr(f.info.args), tuple(tuple(v.shape) for v in f.inputs))))
    try:
        fn()
    finally:
        nn.unset_function_pre_hook("nas_hw_test_fn")
    t = sum(1e-3 * (1 + zlib.crc32(repr(r).encode()) % 997 / 997) for r in ran)
    return TimingStats(t, t, 0.0, t, 1, 1)


def estimators():
    return (LatencyEstimator(cache=":memory:", timer=per_function_measure, **KW),
            LatencyGraphEstimator(cache=":memory:", timer=per_function_measure, **KW))


def real_mobilenet():
    from nnabla_nas.contrib.classification import mobilenet
    return mobilenet.SearchNet(num_classes=10, mode="sample", settings=[[24, 2, 2], [32, 2, 2]]), (1, 3, 32, 32)


def real_darts():
    from nnabla_nas.contrib.classification import darts
    return darts.SearchNet(in_channels=3, init_channels=4, num_cells=3, num_classes=10, num_choices=2, multiplier=2,
                           mode="sample"), (1, 3, 32, 32)


def seeded(net):
    """Each MixedOp its own generator (nnabla_nas seeds them all alike): diverse samples."""
    for i, m in enumerate(sampling_mixed_ops(net)):
        nnas.set_rng(m, np.random.RandomState(100 + i))
    return net


def rebuilt(est, net):
    """The old path: the model rebuilt at its current architecture, every query."""
    return est._estimate_units(est._units_by_rebuild(net, sampling_mixed_ops(net)))


@pytest.mark.parametrize("make", [real_mobilenet, real_darts], ids=["mobilenet", "darts"])
def test_new_architectures_match_a_rebuild_without_rebuilding(make, monkeypatch):
    """On the real SearchNets, every sampled architecture gets exactly the estimate of a rebuild
    (the old path) and of the graph estimator on its graph; after the first query, a new
    architecture records no graph at all."""
    net, shape = make()
    seeded(net).apply(training=False)
    mod, graph = estimators()
    records = []
    real_record = module_estimator.record
    monkeypatch.setattr(module_estimator, "record", lambda *a, **k: records.append(k.get("mixed")) or real_record(*a, **k))
    seen = set()
    for i in range(12):
        out = net(nn.Variable(shape))
        arch = tuple(nnas.active_index(m) for m in sampling_mixed_ops(net))
        n_before = len(records)
        new = mod.get_estimation(net)
        if i > 0:
            assert len(records) == n_before, "a query after the first must not rebuild the model"
        n_layers = mod.n_layers
        old = rebuilt(mod, net)
        assert new == pytest.approx(old, rel=1e-12) and n_layers == mod.n_layers
        assert new == pytest.approx(graph.get_estimation(out), rel=1e-12)
        seen.add(arch)
    assert len(seen) >= 8, "the test must see many distinct architectures"
    assert records[:2] == ["all", "active"]  # the plan, then its check against a rebuild
    if make is real_darts:  # DARTS node sums are operations outside leaf modules
        mod.get_estimation(net)
        assert any(c.name.startswith("outside/") for c in mod.breakdown)


class _Constant(Module):
    """A candidate whose output does not read its input."""

    def __init__(self, channels):
        Module.__init__(self)
        self._channels = channels

    def call(self, x):
        return F.constant(0.0, (x.shape[0], self._channels) + tuple(x.shape[2:]))

    def extra_repr(self):
        return f"channels={self._channels}"


class _Net(Module):
    def __init__(self):
        Module.__init__(self)
        self.pre = Conv(1, 4, (3, 3), pad=(1, 1))
        self.act = ReLU()
        self.mixed = MixedOp([Conv(4, 4, (3, 3), pad=(1, 1)), _Constant(4)], mode="sample")
        self.post = Conv(4, 2, (1, 1))

    def call(self, x):
        return self.post(self.mixed(self.act(self.pre(x))) + x)


def test_what_a_choice_leaves_unread_is_not_counted():
    """A candidate that ignores its input makes everything before it unread (as in a rebuilt
    graph): the plan walks what the output depends on for every architecture."""
    net = _Net()
    net.apply(training=False)
    net(nn.Variable((1, 1, 8, 8)))
    mod, _ = estimators()
    totals = {}
    for choice in (0, 1, 0, 1):
        nnas.set_active_index(net.mixed, choice)
        totals[choice] = mod.get_estimation(net)
        names = [c.signature.split("|")[0] for c in mod.breakdown]
        assert totals[choice] == pytest.approx(rebuilt(mod, net), rel=1e-12)
        assert ("mod:Conv(in_channels=1" in " ".join(names)) == (choice == 0)
    plan = next(iter(mod._models[net].plans.values()))
    assert plan.uniform is None and plan.problem is None
    assert totals[1] < totals[0]


# --------------------------------------------------------------------------- static graphs


def real_zoph():
    from nnabla_nas.contrib.classification import zoph
    return zoph.SearchNet(input_shape=(3, 16, 16), stem_channels=8, cell_channels=[8, 16, 16], cell_depth=[2, 2, 2])


def real_random_wired():
    from nnabla_nas.contrib.classification import random_wired
    nn.seed(3)
    return random_wired.TrainNet(n_vertices=6, input_shape=(3, 16, 16), min_channels=8, max_channels=16)


@pytest.mark.parametrize("make", [real_zoph, real_random_wired], ids=["zoph", "random_wired"])
def test_static_graph_models_are_estimated_as_built(make):
    """nnabla_nas's static models (zoph, random_wired): the module estimate counts the very
    functions of the graph the user built (no re-sampling of its Join choices), and the
    user's graph is left in place."""
    net = make()
    net.apply(training=False)
    mod, graph = estimators()
    for _ in range(3):
        out = net(nn.Variable(net.input_shapes[0]))
        choices = nnas.static_choices(net)
        total = mod.get_estimation(net)
        assert total == pytest.approx(graph.get_estimation(out), rel=1e-12)
        assert nnas.static_output(net) is out and nnas.static_choices(net) == choices
        assert mod.n_layers > 0 and all(np.isfinite(c.latency) for c in mod.breakdown)


def test_a_static_model_never_built_is_built_once():
    net = real_zoph()
    net.apply(training=False)
    mod, graph = estimators()
    total = mod.get_estimation(net)
    out = nnas.static_output(net)
    assert out is not None and total == pytest.approx(graph.get_estimation(out), rel=1e-12)


# --------------------------------------------------------------------------- holding nothing


def test_the_module_estimator_holds_no_graph_and_lets_the_model_go():
    net, shape = real_darts()
    net.apply(training=False)
    mod, _ = estimators()
    for _ in range(3):
        net(nn.Variable(shape))
        mod.get_estimation(net)
    held = reachable(mod, opaque=Module)
    assert not [o for o in held if isinstance(o, nn.Variable) and o.parent is not None], "a graph is held"
    assert not [o for o in held if type(o).__name__ == "Function" and hasattr(o, "inputs")]
    assert len(mod._models) == 1
    del net, held
    gc.collect()
    assert len(mod._models) == 0, "the estimator keeps a model alive"


# --------------------------------------------------------------------------- the seed's example


def batch_stat_measure(fn, **kwargs):
    """1 ms per function run, 1 ms more for a batch normalization computing batch statistics."""
    ran = []
    nn.set_function_pre_hook("nas_hw_test_bn", lambda f: ran.append(
        2 if f.info.type_name == "BatchNormalization" and f.info.args.get("batch_stat") else 1))
    try:
        fn()
    finally:
        nn.unset_function_pre_hook("nas_hw_test_bn")
    t = 1e-3 * sum(ran)
    return TimingStats(t, t, 0.0, t, 1, 1)


def test_seed_example_on_the_real_mobilenet_differs_only_by_training_mode_batch_norm():
    """The seed's example verbatim on the real MobileNetV2 SearchNet: built once in training
    mode. The graph estimator times the graph as built (batch normalization computing batch
    statistics); the module estimator times every module in inference mode (as nnabla_nas's
    does). That, and nothing else, separates them: the difference is exactly the cost the
    training-mode batch normalizations add, and on the same architecture built in inference
    mode both count the very same functions."""
    from nnabla_nas.contrib.classification.mobilenet import SearchNet
    from nas_hw.nas.choices import current_choices, find_choice_points, fixed_choices

    net = SearchNet()
    out = net(nn.Variable((1, 3, 32, 32)))
    kw = dict(cache=":memory:", timer=batch_stat_measure, **KW)
    module_ms = LatencyEstimator(**kw).get_estimation(net)
    graph = LatencyGraphEstimator(**kw)
    graph_ms = graph.get_estimation(out)
    n_batch_stat = sum(1 for c in graph.breakdown if c.signature.startswith("fn:BatchNormalization|")
                       and "batch_stat=True" in c.signature)
    assert n_batch_stat > 30 and net.training
    assert graph_ms - module_ms == pytest.approx(n_batch_stat * 1.0)
    points = find_choice_points(net)
    net.apply(training=False)
    with fixed_choices(points, current_choices(points)):
        inference_out = net(nn.Variable((1, 3, 32, 32)))
    assert graph.get_estimation(inference_out) == pytest.approx(module_ms)
