"""Small search spaces for the tests, built from nnabla_nas.module blocks."""
import nnabla as nn

from nas_hw.search.spaces import DartsSpace, MobileNetSpace


def mobilenet(mode="full", size=8, in_channels=3, **kw):
    args = dict(in_channels=in_channels, stem_channels=8, stage_channels=(8, 16), stage_blocks=(2, 1),
                stage_strides=(1, 2), kernels=(3, 5), expansions=(1, 3), head_channels=16)
    args.update(kw)
    net = MobileNetSpace(mode=mode, **args)
    net.apply(training=False)
    out = net(nn.Variable((1, in_channels, size, size)))
    return net, out


def darts(mode="full", size=8, in_channels=3, **kw):
    args = dict(in_channels=in_channels, channels=4, n_cells=2, n_nodes=2, reduction_cells=(1,))
    args.update(kw)
    net = DartsSpace(mode=mode, **args)
    net.apply(training=False)
    out = net(nn.Variable((1, in_channels, size, size)))
    return net, out


SPACES = {"mobilenet": mobilenet, "darts": darts}


def hand_table(net, seed=0, unit="u", metrics=("latency", "param_bytes")):
    """A hand-made CandidateTable bound to ``net``'s choice points: random positive costs, no
    measurement (for tests of code that only reads a table)."""
    import numpy as np

    from nas_hw.nas.choices import find_choice_points
    from nas_hw.nas.table import CandidateTable

    rng = np.random.RandomState(seed)
    points = find_choice_points(net, require_shapes=False)
    costs = {m: [list(rng.uniform(1.0, 50.0, cp.n_candidates)) for cp in points] for m in metrics}
    fixed = {m: float(rng.uniform(5.0, 20.0)) for m in metrics}
    table = CandidateTable(costs, fixed, [cp.group for cp in points], [cp.name for cp in points],
                           [[type(c).__name__ for c in cp.candidates] for cp in points], unit=unit)
    return table.bind(net)
