"""Choice points: the MixedOps of a search space, their groups, the one argmax and the
derivation rules.

Architecture parameters shared by several choice points (DARTS cells sharing alphas) form one
*group*: choices and argmax are per group. MixedOps are reached through
:mod:`nas_hw.nnabla_nas_compat` only.

A *derivation rule* turns the alphas into the architecture that is derived and retrained; the
candidate table, the searchers and the callbacks all derive through the model's rule
(:func:`derivation_rule`), so the table's argmax latency is the derived network's:

* ``argmax``: each group's most likely candidate (``Zero`` included). ProxylessNAS, MobileNet,
  FairNAS, PNAS (nnabla_nas's ``TrainNet`` picks ``argmax(alpha)`` per block), nas_hw's spaces.
* ``darts``: DARTS's own rule (nnabla_nas ``darts/helper.py: parse_weights``): in every node of a
  cell, the two incoming edges whose strongest non-``Zero`` candidate is strongest keep that
  candidate; every other edge takes ``Zero``.
"""
from collections import OrderedDict
from dataclasses import dataclass
from typing import List, Tuple

import numpy as np

from .. import nnabla_nas_compat as nnas
from ..checks import check_one_of
from ..constants import DERIVATION_RULES, MIXED_OP_MODES
from ..errors import GraphNotBuiltError


@dataclass
class ChoicePoint:
    """One MixedOp of a model.

    Attributes:
        name: its path in ``model.get_modules()``.
        mixedop: the MixedOp module.
        candidates: its candidate modules, in order.
        alpha: its architecture parameter (shape ``(n, 1, 1, 1, 1)``), maybe shared.
        group: index of ``alpha`` among the model's distinct architecture parameters.
        input_shapes: the input shapes it saw when the graph was last built.
    """

    name: str
    mixedop: object
    candidates: List
    alpha: object
    group: int
    input_shapes: List[Tuple[int, ...]]

    @property
    def n_candidates(self):
        return len(self.candidates)

    @property
    def active_index(self):
        """The candidate the MixedOp last ran (``None`` if it never sampled one)."""
        return nnas.active_index(self.mixedop)

    @property
    def mode(self):
        return nnas.mode(self.mixedop)


def find_choice_points(model, require_shapes=True):
    """The model's choice points in ``get_modules()`` order.

    Raises:
        TypeError: ``model`` is not an nnabla_nas-style Module.
        GraphNotBuiltError: ``require_shapes`` and a MixedOp never saw an input.
    """
    if not hasattr(model, "get_modules"):
        raise TypeError(f"expected an nnabla_nas-style Module with get_modules(), got {type(model).__name__}")
    points, groups = [], []
    for name, m in model.get_modules():
        if not nnas.is_mixed_op(m):
            continue
        shapes = nnas.input_shapes(m)
        if require_shapes and not shapes:
            raise GraphNotBuiltError(f"choice point {name!r} has no input shape: build the model's graph "
                                     "once (out = model(x)) at the shape to estimate before using it")
        a = nnas.alpha(m)
        group = next((i for i, g in enumerate(groups) if g is a), None)
        if group is None:
            groups.append(a)
            group = len(groups) - 1
        cands = nnas.candidates(m)
        if int(np.prod(a.shape)) != len(cands):
            raise ValueError(f"choice point {name!r}: alpha has {int(np.prod(a.shape))} entries "
                             f"for {len(cands)} candidates")
        points.append(ChoicePoint(name, m, cands, a, group, shapes))
    return points


def group_alphas(points):
    """One alpha per group, in group order."""
    out = {}
    for cp in points:
        out.setdefault(cp.group, cp.alpha)
    return [out[g] for g in range(len(out))]


def argmax_choices(model_or_points):
    """The most likely architecture: the argmax of each group's alpha (``Zero`` included; a
    space whose own derivation rule differs derives through its rule, not this)."""
    return [int(np.argmax(a.d.reshape(-1))) for a in group_alphas(_points(model_or_points))]


def _softmax(values):
    a = np.asarray(values, dtype=np.float64).reshape(-1)
    e = np.exp(a - a.max())
    return e / e.sum()


class ArgmaxRule:
    """Each group's most likely candidate (:func:`argmax_choices`)."""

    name = "argmax"

    def __call__(self, points):
        return argmax_choices(points)


class TopEdgesRule:
    """DARTS's rule: per node, the ``n_edges`` incoming edges whose best non-``Zero`` candidate is
    the most likely keep it, every other edge takes ``Zero``; choice points outside the nodes
    take their argmax.

    Args:
        nodes: per node, the indices (into the choice points) of its incoming edges.
        zero_index: per choice point, the index of its ``Zero`` candidate (``None`` without one;
            every edge of a node must have one).
        n_edges: edges kept per node (2 in DARTS).
    """

    name = "darts"

    def __init__(self, nodes, zero_index, n_edges=2):
        for node in nodes:
            missing = [i for i in node if zero_index[i] is None]
            if missing:
                raise ValueError(f"rule 'darts' needs a Zero candidate on every edge of a node; choice point(s) "
                                 f"{missing} have none")
        self.nodes = [list(node) for node in nodes]
        self.zero_index = list(zero_index)
        self.n_edges = n_edges

    def point_choices(self, points):
        """The chosen candidate of every choice point."""
        out = [int(np.argmax(cp.alpha.d.reshape(-1))) for cp in points]
        for node in self.nodes:
            best, strength = {}, []
            for i in node:
                p = _softmax(points[i].alpha.d)
                p[self.zero_index[i]] = -np.inf
                best[i] = int(np.argmax(p))
                strength.append(p[best[i]])
            # stable: ties go to the earlier edge, as nnabla_nas's sorted() does
            keep = {node[j] for j in sorted(range(len(node)), key=lambda j: -strength[j])[:self.n_edges]}
            for i in node:
                out[i] = best[i] if i in keep else self.zero_index[i]
        return out

    def __call__(self, points):
        per_point = self.point_choices(points)
        groups = {}
        for cp, c in zip(points, per_point):
            if groups.setdefault(cp.group, c) != c:
                raise ValueError(f"rule 'darts': choice points sharing alpha group {cp.group} derive different "
                                 f"candidates ({groups[cp.group]} and {c}): their cells differ in structure")
        return [groups[g] for g in range(len(groups))]


def derivation_rule(model, points=None, rule=None):
    """The rule deriving ``model``'s architecture (see the module docstring).

    Args:
        model: the search space.
        points: its choice points (found when ``None``).
        rule: ``'argmax'``, ``'darts'`` or ``None``: the model's own ``derivation_rule``
            attribute, else ``'darts'`` for nnabla_nas's DARTS cells, else ``'argmax'``.

    Returns:
        a callable ``points -> choices`` (one index per group) with a ``name``.

    Raises:
        ValueError: an unknown rule, or ``'darts'`` for a model without DARTS cells.
    """
    points = find_choice_points(model, require_shapes=False) if points is None else points
    nodes = nnas.darts_nodes(model)
    if rule is None:
        rule = getattr(model, "derivation_rule", None) or ("darts" if nodes else "argmax")
    check_one_of("rule", rule, DERIVATION_RULES)
    if rule == "argmax":
        return ArgmaxRule()
    if not nodes:
        raise ValueError(f"rule 'darts' needs nnabla_nas's DARTS cells (darts.SearchNet); "
                         f"{type(model).__name__} has none: use rule 'argmax'")
    index = {id(cp.mixedop): i for i, cp in enumerate(points)}
    zero = [next((k for k, c in enumerate(cp.candidates) if nnas.is_zero_op(c)), None) for cp in points]
    return TopEdgesRule([[index[id(m)] for m in node] for node in nodes], zero)


def per_point(points, choices):
    """One candidate index per choice point from one per group."""
    return [int(choices[cp.group]) for cp in points]


def current_choices(model_or_points):
    """The active candidate of each choice point (``None`` where none was sampled yet)."""
    return [cp.active_index for cp in _points(model_or_points)]


def arch_parameters(model):
    """The distinct architecture parameters (alphas), in group order, keyed by their first name."""
    params = OrderedDict()
    for cp in find_choice_points(model, require_shapes=False):
        if not any(p is cp.alpha for p in params.values()):
            params[f"{cp.name}/_alpha" if cp.name else "_alpha"] = cp.alpha
    return params


def net_parameters(model, grad_only=False):
    """Every parameter of the model except the architecture parameters."""
    alphas = list(arch_parameters(model).values())
    return OrderedDict((k, p) for k, p in model.get_parameters(grad_only=grad_only).items()
                       if not any(p is a for a in alphas))


def set_mode(model, mode):
    """Sets every MixedOp's mode (``full``, ``sample``, ``max``, ``fair``)."""
    check_one_of("mode", mode, MIXED_OP_MODES)
    for cp in find_choice_points(model, require_shapes=False):
        nnas.set_mode(cp.mixedop, mode)


def fixed_choices(points, choices):
    """A context in which choice point ``i`` runs only candidate ``choices[i]``."""
    return nnas.fixed_choices([cp.mixedop for cp in points], choices)


def _points(model_or_points):
    if isinstance(model_or_points, list):
        return model_or_points
    return find_choice_points(model_or_points, require_shapes=False)
