"""Baselines a latency-aware search must beat, run through the same pipeline as a search.

``nas-hw search search=random`` and ``search=uniform`` pick an architecture without training a
supernet; the rest of the run is the search's own (the same candidate table, derivation,
latency measurement, retraining from scratch and ``report.json``), so a sweep report compares
like with like:

* :class:`RandomArchitecture` (``search=random search.draw=K``): the ``K``-th architecture drawn
  uniformly from the space (every choice group's candidate drawn independently and uniformly),
  from a generator seeded by ``(seed, K)``. ``search.draw=range(0,N) seed=...`` is random search
  with ``N`` samples per seed; the sweep report keeps the best at each latency budget.
* :class:`UniformArchitecture` (``search=uniform search.candidate=NAME``): every choice group
  takes the same candidate (by name, or by index where the space does not name its
  candidates): the family from the smallest to the largest network.

Both take the arguments of a searcher and ignore the penalty, the callbacks and the training
settings; their ``report.json`` says which baseline it is under ``baseline``.
"""
import logging

import numpy as np

from ..checks import check_int
from .derive import describe_architecture

logger = logging.getLogger(__name__)


class BaselineArchitecture:
    """A searcher that chooses an architecture by rule instead of by search.

    Args:
        model: the supernet (its choice groups and, when it names them, their candidates).
        derive_fn: ``choices -> Module``, the fixed network of an architecture.
        deploy_input_shape: (N, C, H, W) of the latency and FLOP figures.
        seed: the run's seed.
        **ignored: the other searcher arguments (dataset, penalty, callbacks, ...), unused.
    """

    algorithm = None
    #: A baseline never trains the supernet: nothing to resume, no epochs.
    epoch = 0

    def __init__(self, model, derive_fn=None, deploy_input_shape=None, seed=0, **ignored):
        self.model = model
        self.derive_fn = derive_fn if derive_fn is not None else model.derive
        self.deploy_input_shape = deploy_input_shape
        self.seed = check_int("seed", seed, low=0)
        self.table = None
        self.history = []

    def attach_table(self, table):
        """Gives the baseline the candidate table (group sizes and latency estimates)."""
        self.table = table

    def group_candidates(self):
        """Per choice group, its candidates' names (the space's own names where it has them,
        else ``'0'``, ``'1'``, ...)."""
        names = getattr(self.model, "candidate_names_per_group", None)
        if names is not None:
            return [list(n) for n in names]
        if self.table is None:
            raise RuntimeError("the baseline has no candidate table: call attach_table(table) first")
        return [[str(i) for i in range(len(c))] for c in self.table.group_costs()]

    def choose(self):
        """One candidate index per choice group."""
        raise NotImplementedError

    @property
    def baseline(self):
        """What ``report.json`` records under ``baseline`` (JSON-ready)."""
        raise NotImplementedError

    def run(self):
        """The chosen architecture (one candidate index per choice group)."""
        choices = [int(c) for c in self.choose()]
        logger.info("%s baseline %s: choices %s", self.algorithm, self.baseline, choices)
        return choices

    def describe_architecture(self, choices):
        """A JSON-ready description (see :func:`nas_hw.search.derive.describe_architecture`)."""
        return describe_architecture(self.table, self.derive_fn(list(choices)), choices,
                                     self.deploy_input_shape)


class RandomArchitecture(BaselineArchitecture):
    """The ``draw``-th architecture drawn uniformly from the space for the run's seed.

    Args:
        draw: which draw (>= 0); the generator is ``numpy.random.default_rng([seed, draw])``,
            so draws are independent across draws and seeds and repeatable.
    """

    algorithm = "random"

    def __init__(self, model, draw=0, **kwargs):
        super().__init__(model, **kwargs)
        self.draw = check_int("draw", draw, low=0)

    def choose(self):
        rng = np.random.default_rng([self.seed, self.draw])
        return [int(rng.integers(len(names))) for names in self.group_candidates()]

    @property
    def baseline(self):
        return {"kind": "random", "draw": self.draw, "generator": f"numpy default_rng([{self.seed}, {self.draw}])"}


class UniformArchitecture(BaselineArchitecture):
    """Every choice group takes the same candidate.

    Args:
        candidate: a candidate name every group offers (``ir_k3_e3``), or an index (int) into
            every group's candidates where the space does not name them.
    """

    algorithm = "uniform"

    def __init__(self, model, candidate=None, **kwargs):
        super().__init__(model, **kwargs)
        if candidate is None or isinstance(candidate, bool) or not isinstance(candidate, (str, int)):
            raise ValueError(f"candidate must be a candidate name or index offered by every choice group, "
                             f"got {candidate!r}")
        self.candidate = candidate

    def common_candidates(self):
        """The candidate names every choice group offers, in the first group's order."""
        groups = self.group_candidates()
        return [n for n in groups[0] if all(n in g for g in groups[1:])]

    def choose(self):
        groups = self.group_candidates()
        if isinstance(self.candidate, int):
            if not all(0 <= self.candidate < len(g) for g in groups):
                raise ValueError(f"candidate must be an index below {min(len(g) for g in groups)} "
                                 f"(the smallest group's size), got {self.candidate}")
            return [self.candidate] * len(groups)
        common = self.common_candidates()
        if self.candidate not in common:
            raise ValueError(f"candidate must be one of {common} (offered by every choice group), "
                             f"got {self.candidate!r}")
        return [g.index(self.candidate) for g in groups]

    @property
    def baseline(self):
        return {"kind": "uniform", "candidate": self.candidate}
