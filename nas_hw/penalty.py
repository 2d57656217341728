"""Differentiable expected-cost penalties built from a :class:`~nas_hw.table.CandidateTable`.

``E[lat] = fixed + sum over choice points of softmax(alpha) . candidate costs`` is an nnabla
Variable, so gradients reach every architecture parameter through nnabla's autograd.

Modes (``T`` = ``target``, ``w`` = ``weight``):

- ``linear``: ``loss + w * E`` ; with a target ``loss + w * (E - T) / T`` (ProxylessNAS add#linear)
- ``hinge``:  ``loss + w * max(0, E - T) / T``
- ``log``:    ``loss * a * (log E / log T) ** b`` (FBNet / ProxylessNAS mul#log; ``weight`` is
  not used, ``a`` and ``b`` set its strength). ``T`` and ``E`` must be above 1 in the table's
  unit (use ``time_scale='u'`` for sub-millisecond networks).

Order with ProxylessNAS-style MixedOps (modes ``sample``/``max``): their forward *assigns*
``alpha.g`` (the REINFORCE gradient of the sampled choice). Run the model's forward first, then
``penalised.backward()``: nnabla accumulates the penalty's gradient onto ``alpha.g`` instead of
overwriting it. Zeroing gradients between the two would lose the REINFORCE part.
"""
import math

import nnabla as nn
import nnabla.functions as F
import numpy as np

MODES = ("linear", "hinge", "log")


def _finite_number(name, value, allow_none=False):
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return float(value)


class CostPenalty:
    """Expected-cost penalty for one metric of a candidate table.

    Args:
        table: a bound :class:`~nas_hw.table.CandidateTable`.
        weight: strength (>= 0) for ``linear`` and ``hinge``.
        target: the budget in the table's unit (required by ``hinge`` and ``log``).
        mode: ``linear``, ``hinge`` or ``log``.
        a, b: the ``log`` mode's factor and exponent (ProxylessNAS defaults 0.2 and 0.3).
        metric: the table metric penalised.

    Raises:
        ValueError: a setting is out of range (the message names it).
    """

    metric = "latency"

    def __init__(self, table, weight=0.1, target=None, mode="linear", a=0.2, b=0.3, metric=None):
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        self.weight = _finite_number("weight", weight)
        if self.weight < 0:
            raise ValueError(f"weight must be >= 0, got {weight!r}")
        self.target = _finite_number("target", target, allow_none=True)
        if self.target is not None and self.target <= 0:
            raise ValueError(f"target must be > 0 (a budget in the table's unit), got {target!r}")
        if mode in ("hinge", "log") and self.target is None:
            raise ValueError(f"mode={mode!r} needs a target (the budget in the table's unit)")
        self.a = _finite_number("a", a)
        self.b = _finite_number("b", b)
        if mode == "log":
            if self.a <= 0 or self.b <= 0:
                raise ValueError(f"log mode needs a > 0 and b > 0, got a={a!r}, b={b!r}")
            if self.target <= 1:
                raise ValueError(f"log mode needs target > 1 in the table's unit, got {target!r}: "
                                 "use a finer time_scale (e.g. 'u') for the table")
        self.mode = mode
        if metric is not None:
            self.metric = metric
        table._check_metric(self.metric)
        self.table = table
        self._expected = None

    def expected_value(self):
        """E[cost] as a float (table arithmetic, no graph)."""
        return self.table.expected(self.metric)

    def expected_cost(self):
        """E[cost] as an nnabla Variable of shape ``()``, differentiable in the alphas.

        Built once and reused: call ``.forward()`` on it (or on a loss using it) each step."""
        if self._expected is None:
            terms = []
            for alpha, costs in zip(self.table.alphas, self.table.group_costs(self.metric)):
                p = F.softmax(F.reshape(alpha, (int(np.prod(alpha.shape)),)), axis=0)
                c = nn.Variable.from_numpy_array(costs.astype(np.float32))
                terms.append(F.sum(p * c))
            total = terms[0] if len(terms) == 1 else F.add_n(*terms)
            self._expected = F.add_scalar(total, self.table.fixed[self.metric])
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
        """E[latency] as an nnabla Variable, in the table's unit."""
        return self.expected_cost()


class MemoryPenalty(CostPenalty):
    """Expected parameter-memory penalty (bytes), same modes as :class:`LatencyPenalty`."""

    metric = "param_bytes"
