"""Choice points: the MixedOps of a search space, their groups, and the one argmax.

Architecture parameters shared by several choice points (DARTS cells sharing alphas) form one
*group*: choices and argmax are per group. MixedOps are reached through
:mod:`nas_hw.nnabla_nas_compat` only.
"""
from collections import OrderedDict
from dataclasses import dataclass
from typing import List, Tuple

import numpy as np

from .. import nnabla_nas_compat as nnas
from ..checks import check_one_of
from ..constants import MIXED_OP_MODES
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
