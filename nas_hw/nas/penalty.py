"""Differentiable expected-cost penalties built from a :class:`~nas_hw.nas.table.CandidateTable`.

``E[lat] = fixed + sum over choice points of softmax(alpha) . candidate costs`` is an nnabla
Variable, so gradients reach every architecture parameter through nnabla's autograd.

Modes (``T`` = ``target``, ``w`` = ``weight``):

- ``linear``: ``loss + w * E`` ; with a target ``loss + w * (E - T) / T`` (ProxylessNAS add#linear)
- ``hinge``:  ``loss + w * max(0, E - T) / T``
- ``log``:    ``loss * a * (log E / log T) ** b`` (FBNet / ProxylessNAS mul#log; ``weight`` is
  not used, ``a`` and ``b`` set its strength). ``T`` and ``E`` must be above 1 in the penalty's
  ``unit`` (``unit='u'``, microseconds, for sub-millisecond networks).

``E`` and ``T`` are in the penalty's ``unit`` (a time scale, default the table's own unit);
the table's costs are converted once, when the penalty is built.

Order with ProxylessNAS-style MixedOps (modes ``sample``/``max``): their forward *assigns*
``alpha.g`` (the REINFORCE gradient of the sampled choice). Run the model's forward first, then
``penalised.backward()``: nnabla accumulates the penalty's gradient onto ``alpha.g`` instead of
overwriting it. Zeroing gradients between the two would lose the REINFORCE part.
"""
import math

import nnabla as nn
import nnabla.functions as F
import numpy as np

from ..checks import check_number, check_one_of, check_positive, check_time_scale
from ..constants import MAX_PENALTY_WEIGHT, PENALTY_MODES


class CostPenalty:
    """Expected-cost penalty for one metric of a candidate table.

    Args:
        table: a bound :class:`~nas_hw.nas.table.CandidateTable`, or ``None`` to give it later
            with :meth:`bind` (settings are checked at once either way).
        weight: strength (>= 0) for ``linear`` and ``hinge``.
        target: the budget in the table's unit (required by ``hinge`` and ``log``).
        mode: ``linear``, ``hinge`` or ``log``.
        a, b: the ``log`` mode's factor and exponent (ProxylessNAS defaults 0.2 and 0.3).
        metric: the table metric penalised.
        unit: the time scale of ``target`` and of E[latency] ('m', 'u', 'n'); ``None``: the
            table's own unit.

    Raises:
        ValueError: a setting is out of range (the message names it).
    """

    metric = "latency"

    def __init__(self, table=None, weight=0.1, target=None, mode="linear", a=0.2, b=0.3, metric=None,
                 unit=None):
        self.mode = check_one_of("mode", mode, PENALTY_MODES)
        self.weight = check_number("weight", weight, low=0, high=MAX_PENALTY_WEIGHT)
        self.target = check_positive("target", target, allow_none=True)
        if mode in ("hinge", "log") and self.target is None:
            raise ValueError(f"target is required by mode={mode!r} (the budget in the penalty's unit)")
        if mode != "log" and self.weight == 0:
            raise ValueError(f"weight=0 makes a {mode!r} penalty a no-op: give weight > 0, or no penalty "
                             "at all for an accuracy-only search (nas-hw search latency=none)")
        self.a = check_number("a", a, low=-MAX_PENALTY_WEIGHT, high=MAX_PENALTY_WEIGHT)
        self.b = check_number("b", b, low=-MAX_PENALTY_WEIGHT, high=MAX_PENALTY_WEIGHT)
        if mode == "log":
            check_positive("a", a)
            check_positive("b", b)
            if self.target <= 1:
                raise ValueError(f"target must be > 1 in the penalty's unit for mode='log', got {target!r}: "
                                 "use a finer unit (e.g. unit='u', microseconds)")
        if metric is not None:
            self.metric = metric
        if unit is not None:
            check_time_scale(unit, "unit")
        self.unit = unit
        self.table = None
        self._factor = None
        self._expected = None
        if table is not None:
            self.bind(table)

    def bind(self, table):
        """Computes the penalty from ``table`` (a bound :class:`~nas_hw.nas.table.CandidateTable`);
        the penalty's ``unit`` defaults to the table's. Returns ``self``."""
        table.check_metric(self.metric)
        self._factor = table.factor(self.metric, self.unit)
        if self.unit is None and self.metric == "latency":
            self.unit = table.unit
        self.table = table
        self._expected = None
        return self

    def _bound_table(self):
        if self.table is None:
            raise RuntimeError("this penalty has no candidate table yet: call penalty.bind(table)")
        return self.table

    def expected_value(self):
        """E[cost] as a float in the penalty's unit (table arithmetic, no graph)."""
        return self._bound_table().expected(self.metric) * self._factor

    def expected_cost(self):
        """E[cost] as an nnabla Variable of shape ``()``, differentiable in the alphas.

        Built once and reused: call ``.forward()`` on it (or on a loss using it) each step."""
        if self._expected is None:
            terms = []
            table = self._bound_table()
            for alpha, costs in zip(table.alphas, table.group_costs(self.metric)):
                p = F.softmax(F.reshape(alpha, (int(np.prod(alpha.shape)),)), axis=0)
                c = nn.Variable.from_numpy_array((costs * self._factor).astype(np.float32))
                terms.append(F.sum(p * c))
            total = terms[0] if len(terms) == 1 else F.add_n(*terms)
            self._expected = F.add_scalar(total, table.fixed[self.metric] * self._factor)
        return self._expected

    def penalty_of(self, loss=None):
        """The penalised loss as an nnabla Variable (``loss`` may be ``None`` for the term alone in
        additive modes)."""
        e = self.expected_cost()
        if self.mode == "log":
            if loss is None:
                raise ValueError("log mode multiplies the loss: pass the loss")
            ratio = F.log(e) / math.log(self.target)
            return loss * (self.a * ratio ** self.b)
        if self.mode == "hinge":
            term = F.relu(e - self.target) * (self.weight / self.target)
        elif self.target is None:
            term = e * self.weight
        else:
            term = (e - self.target) * (self.weight / self.target)
        return term if loss is None else loss + term

    def apply(self, loss):
        """``loss`` with the penalty, as an nnabla Variable (forward it before reading ``.d``)."""
        return self.penalty_of(loss)


class LatencyPenalty(CostPenalty):
    """Expected-latency penalty (see the module docstring for the modes and the gradient order).

    Example:
        >>> table = CandidateTable.build(model, LatencyGraphEstimator(), input_shape=(1, 3, 32, 32))
        >>> penalty = LatencyPenalty(table, weight=0.1, target=0.5, mode="hinge")
        >>> arch_loss = penalty.apply(task_loss)
        >>> arch_loss.forward(); arch_loss.backward()
    """

    metric = "latency"

    def expected_latency(self):
        """E[latency] as an nnabla Variable, in the penalty's unit."""
        return self.expected_cost()


class MemoryPenalty(CostPenalty):
    """Expected parameter-memory penalty (bytes), same modes as :class:`LatencyPenalty`."""

    metric = "param_bytes"
