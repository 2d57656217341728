import nnabla as nn
import numpy as np
import pytest

from nas_hw import CandidateTable, LatencyCache, LatencyEstimator, LatencyGraphEstimator
from nas_hw.nas.choices import find_choice_points
from nas_hw.estimators.params import ParameterMemoryEstimator
from tests.spaces_util import SPACES, hand_table

FAST = dict(device_id=0, ext_name="cpu", n_run=3, n_warmup=1)


def build(space, estimator_cls, cache, mode="sample", **kw):
    net, _ = SPACES[space](mode=mode, **kw)
    est = estimator_cls(cache=cache, **FAST)
    return net, est, CandidateTable.build(net, est, progress=False)


@pytest.mark.parametrize("space", ["mobilenet", "darts"])
@pytest.mark.parametrize("estimator_cls", [LatencyGraphEstimator, LatencyEstimator])
def test_sampled_matches_estimator_on_the_built_subnetwork(space, estimator_cls):
    cache = LatencyCache(":memory:")
    net, est, table = build(space, estimator_cls, cache)
    for _ in range(4):
        out = net(nn.Variable((1, 3, 8, 8)))  # samples a new subnetwork
        direct = est.get_estimation(out) if estimator_cls is LatencyGraphEstimator else est.get_estimation(net)
        assert table.sampled() == pytest.approx(direct, rel=0.01)


def signatures_of(est, fn):
    fn()
    return {layer.signature for layer in est.breakdown}


def test_measurements_are_distinct_signatures_and_zero_when_warm(tmp_path):
    cache = LatencyCache(str(tmp_path / "c.sqlite"))
    net, est, table = build("mobilenet", LatencyGraphEstimator, cache)
    # Count the distinct signatures independently, from the estimator's own breakdowns.
    probe = LatencyGraphEstimator(cache=cache, **FAST)
    sigs = set()
    for cp in find_choice_points(net):
        for cand in cp.candidates:
            sigs |= signatures_of(probe, lambda: probe.estimate_module(cand, cp.input_shapes))
    from nas_hw.nas.choices import fixed_choices
    points = find_choice_points(net)
    with fixed_choices(points, [0] * len(points)):
        sigs |= signatures_of(probe, lambda: probe.estimate_module(net, net.input_shapes))
    assert cache.measurements == len(sigs) == len(cache)
    warm = LatencyCache(str(tmp_path / "c.sqlite"))
    again = CandidateTable.build(net, LatencyGraphEstimator(cache=warm, **FAST), progress=False)
    assert warm.measurements == 0
    assert again.costs["latency"][0].tolist() == table.costs["latency"][0].tolist()


def test_queries_are_table_arithmetic():
    net, _ = SPACES["darts"](mode="full", n_cells=3)
    table = hand_table(net)
    rng = np.random.RandomState(1)
    for a in table.alphas:
        a.d = rng.randn(*a.shape)
    expected = table.fixed["latency"]
    for g, c in zip(table.groups, table.costs["latency"]):
        a = table.alphas[g].d.reshape(-1).astype(np.float64)
        p = np.exp(a - a.max()) / np.exp(a - a.max()).sum()
        expected += float(p @ c)
    assert table.expected() == pytest.approx(expected)
    choices = table.argmax_choices()
    manual = table.fixed["latency"] + sum(c[choices[g]] for g, c in zip(table.groups, table.costs["latency"]))
    assert table.argmax() == pytest.approx(manual)
    assert table.min() <= table.argmax() <= table.max()
    assert table.expected("param_bytes") > 0
    with pytest.raises(ValueError, match="metric must be one of"):
        table.expected("watts")
    with pytest.raises(ValueError, match="one index per group"):
        table.for_choices([0])


@pytest.mark.parametrize("space", ["mobilenet"])
def test_param_bytes_of_the_table_equal_the_memory_estimator_on_the_derived_network(space):
    """The table's param_bytes (candidate sums + fixed part) against an independent count: the
    parameter-memory estimator on the derived fixed network, for several architectures."""
    net, _, table = build(space, LatencyGraphEstimator, LatencyCache(":memory:"), mode="full")
    rng = np.random.RandomState(0)
    estimator = ParameterMemoryEstimator(dtype="float32")
    for _ in range(4):
        choices = [int(rng.randint(len(names))) for names in net.candidate_names_per_group]
        derived = net.derive(choices)
        assert table.for_choices(choices, "param_bytes") == estimator.get_estimation(derived)


def test_queries_in_another_unit():
    net, _ = SPACES["mobilenet"](mode="full")
    table = hand_table(net, unit="u")
    assert table.argmax(unit="m") == pytest.approx(table.argmax() / 1000)
    assert table.min(unit="n") == pytest.approx(table.min() * 1000)
    with pytest.raises(ValueError, match="only latency has a time unit"):
        table.expected("param_bytes", unit="m")


def test_save_load_bind(tmp_path):
    net, _ = SPACES["mobilenet"](mode="sample")
    table = hand_table(net)
    path = tmp_path / "table.json"
    table.save(path)
    loaded = CandidateTable.load(path, net)
    assert loaded.to_dict() == table.to_dict()
    net(nn.Variable((1, 3, 8, 8)))
    assert loaded.sampled() == table.sampled()
    other, _ = SPACES["darts"]()
    with pytest.raises(ValueError, match="does not match"):
        CandidateTable.load(path, other)
    with pytest.raises(RuntimeError, match="not bound"):
        CandidateTable.load(path).expected()


def test_deployment_shape_differs_from_training_shape():
    net, _ = SPACES["mobilenet"](mode="sample", size=8)
    cache = LatencyCache(":memory:")
    est = LatencyGraphEstimator(cache=cache, **FAST)
    small = CandidateTable.build(net, est, progress=False)
    small_sigs = {r.signature for r in cache.records()}
    big = CandidateTable.build(net, est, input_shape=(1, 3, 16, 16), progress=False)
    assert big.input_shape == (1, 3, 16, 16) and small.input_shape != big.input_shape
    # the deployment shape is measured at its own shapes (no wall-clock comparison: the machine is shared)
    big_sigs = {r.signature for r in cache.records()} - small_sigs
    assert big_sigs and any("x16x16:" in s for s in big_sigs)


def test_graph_estimate_of_a_lazily_zeroed_input():
    """x.data.zero() allocates nothing: its dtype is the context default, not an error."""
    from nas_hw.search.spaces import MobileNetSpace
    net = MobileNetSpace(in_channels=3, stage_channels=(8,), stage_blocks=(1,), stage_strides=(1,), choices=[0])
    net.apply(training=False)
    x = nn.Variable((1, 3, 8, 8), need_grad=False)
    x.data.zero()
    out = net(x)
    est = LatencyGraphEstimator(cache=LatencyCache(":memory:"), **FAST)
    assert est.get_estimation(out) > 0


def test_module_estimator_skips_modules_the_output_does_not_read():
    """A derived DARTS cell whose node edges all chose 'zero' still calls a preprocessing module
    whose output no later operation reads: it does not run in the network, so it is not counted."""
    from nas_hw.search.spaces import DartsSpace
    space = DartsSpace(in_channels=3, channels=4, n_cells=3, n_nodes=2, reduction_cells=(1,))
    names = space.candidate_names_per_group
    choices = [n.index("zero") for n in names]
    choices[0] = names[0].index("sep_conv_3x3")
    net = space.derive(choices)
    net.apply(training=False)
    out = net(nn.Variable((1, 3, 8, 8)))
    cache = LatencyCache(":memory:")
    graph = LatencyGraphEstimator(cache=cache, **FAST)
    module = LatencyEstimator(cache=cache, **FAST)
    graph.get_estimation(out)
    module.get_estimation(net)
    inside_modules = [b for b in module.breakdown if not b.noop and not b.name.startswith("outside/")]
    outside = [b for b in module.breakdown if b.name.startswith("outside/")]
    from nas_hw.measure.graph import functions_of
    assert len(functions_of(out)) == len(graph.breakdown)
    # every function of the graph is either in a counted leaf module or counted outside, once
    n_functions_in_modules = len(graph.breakdown) - len(outside)
    assert len(inside_modules) <= n_functions_in_modules


def test_input_shape_batch_must_match_the_estimator():
    net, _ = SPACES["mobilenet"](mode="sample")
    est = LatencyGraphEstimator(cache=LatencyCache(":memory:"), **FAST)
    with pytest.raises(ValueError, match="batch_size=16"):
        CandidateTable.build(net, est, input_shape=(16, 3, 8, 8), progress=False)
    est16 = LatencyGraphEstimator(cache=LatencyCache(":memory:"), batch_size=16, **FAST)
    t16 = CandidateTable.build(net, est16, input_shape=(16, 3, 8, 8), progress=False)
    t1 = CandidateTable.build(net, est, input_shape=(1, 3, 8, 8), progress=False)
    # every layer of each table was measured at its batch (a timing comparison of the two tables
    # would be a wall-clock assertion, and a shared machine slows the cores by 1.5x for spells)
    assert t16.input_shape[0] == 16 and t1.input_shape[0] == 1 and t16.space_key != t1.space_key
    batches = {r.signature.split("|in=")[1].split("x")[0] for r in est16.cache.records() if r.signature.startswith("fn:")}
    assert batches == {"16"}
    assert {r.signature.split("|in=")[1].split("x")[0] for r in est.cache.records()
            if r.signature.startswith("fn:")} == {"1"}


def test_load_names_a_file_that_is_not_a_table(tmp_path):
    bad = tmp_path / "table.json"
    bad.write_text("not json at all")
    with pytest.raises(ValueError, match="table.json.*not a saved candidate table"):
        CandidateTable.load(bad)
    bad.write_text('{"format": 99}')
    with pytest.raises(ValueError, match="table.json"):
        CandidateTable.load(bad)


def test_table_refuses_estimates_with_failed_layers(monkeypatch):
    """With on_error='warn' a failed layer is left out of an estimate; a table must not store
    that (too cheap) sum."""
    import nas_hw.measure.timing as timing
    from nas_hw.errors import MeasurementError
    real = timing.measure
    calls = []

    def failing_on_third(fn, **kw):
        calls.append(1)
        if len(calls) == 3:
            raise MeasurementError("injected")
        return real(fn, **kw)

    monkeypatch.setattr(timing, "measure", failing_on_third)
    net, _ = SPACES["mobilenet"](mode="sample")
    est = LatencyGraphEstimator(cache=LatencyCache(":memory:"), on_error="warn", **FAST)
    with pytest.raises(MeasurementError, match="cannot tabulate.*injected"):
        CandidateTable.build(net, est, progress=False)
