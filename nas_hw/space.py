"""Search-space discovery: the choice points (MixedOps) of an nnabla_nas-style model.

MixedOps are found by duck typing (``_ops`` candidates, ``_alpha`` architecture parameter,
``_mode``), never by importing nnabla_nas. Architecture parameters shared by several choice
points (DARTS cells sharing alphas) form one *group*: choices and argmax are per group.
"""
import contextlib
from collections import OrderedDict
from dataclasses import dataclass
from typing import List, Tuple

import numpy as np

from .errors import GraphNotBuiltError

MIXED_OP_MODES = ("full", "sample", "max", "fair")


def is_mixed_op(m):
    """True for an nnabla_nas MixedOp (or anything shaped like one)."""
    return hasattr(m, "_ops") and hasattr(m, "_alpha") and hasattr(m, "_mode")


@contextlib.contextmanager
def overriding_calls(overrides):
    """Runs each ``(module, fn)``'s ``fn`` in place of ``module.call`` while the block is open
    (an instance attribute, as nnabla_nas's own fast mode sets), then restores what was there."""
    saved = [(m, m.__dict__.get("call")) for m, _ in overrides]
    for m, fn in overrides:
        m.__dict__["call"] = fn
    try:
        yield
    finally:
        for m, previous in reversed(saved):
            if previous is None:
                m.__dict__.pop("call", None)
            else:
                m.__dict__["call"] = previous


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
        return self.mixedop._active

    @property
    def mode(self):
        return self.mixedop._mode


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
        if not is_mixed_op(m):
            continue
        shapes = [tuple(int(d) for d in s) for s in m.input_shapes]
        if require_shapes and not shapes:
            raise GraphNotBuiltError(f"choice point {name!r} has no input shape: build the model's graph "
                                     "once (out = model(x)) at the shape to estimate before using it")
        group = next((i for i, a in enumerate(groups) if a is m._alpha), None)
        if group is None:
            groups.append(m._alpha)
            group = len(groups) - 1
        n = len(m._ops)
        if int(np.prod(m._alpha.shape)) != n:
            raise ValueError(f"choice point {name!r}: alpha has {int(np.prod(m._alpha.shape))} entries "
                             f"for {n} candidates")
        points.append(ChoicePoint(name, m, list(m._ops), m._alpha, group, shapes))
    return points


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
    if mode not in MIXED_OP_MODES:
        raise ValueError(f"mode must be one of {MIXED_OP_MODES}, got {mode!r}")
    for cp in find_choice_points(model, require_shapes=False):
        cp.mixedop._mode = mode


def group_alphas(points):
    """One alpha per group, in group order."""
    out = {}
    for cp in points:
        out.setdefault(cp.group, cp.alpha)
    return [out[g] for g in range(len(out))]


def argmax_choices(model_or_points):
    """The derived architecture: argmax of each group's alpha."""
    points = _points(model_or_points)
    return [int(np.argmax(a.d.reshape(-1))) for a in group_alphas(points)]


def current_choices(model_or_points):
    """The active candidate of each choice point (``None`` where none was sampled yet)."""
    return [cp.active_index for cp in _points(model_or_points)]


def _points(model_or_points):
    if isinstance(model_or_points, list):
        return model_or_points
    return find_choice_points(model_or_points, require_shapes=False)
