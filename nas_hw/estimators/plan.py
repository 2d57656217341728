"""``ArchitecturePlan``: what every architecture of a search space runs, found in one build.

A search loop asks the module estimator about a new architecture at every step. Rebuilding the
model for each one (re-applying training modes to thousands of modules, recording a fresh
graph) costs far more than the answer. A plan is built once per model, input shapes and
MixedOp modes, from one recording build in which every sampling MixedOp runs *all* of its
candidates on the same input (:mod:`.recording`). It holds, with no graph, Variable or array:

- the *fixed* units: leaf modules and operations outside leaf modules (residual additions,
  DARTS node sums) that do not belong to any candidate;
- per MixedOp and candidate, the units that candidate runs (a block);
- which units each unit reads from (so that only what the output depends on is counted, as a
  rebuilt graph would: a module whose output no later operation reads is left out).

Answering an architecture is then a walk over this small structure with each MixedOp's
current choice, and a few additions of memoised block costs.

Assumption (checked once per plan against a real rebuild of the current architecture): the
model's code outside its MixedOps does not depend on which candidate each MixedOp chose, and
every candidate of a MixedOp returns one Variable of the same shape, as in nnabla_nas's
SearchNets. A model that breaks it is estimated by rebuilding, as before.
"""
from typing import Callable, NamedTuple

from ..measure.graph import functions_between, walk_inputs


class Unit(NamedTuple):
    """One measured layer: a leaf module or an nnabla function, with its signature and the
    callable that measures it (used only on a cache miss)."""

    name: str
    signature: str
    measure: Callable


class Block:
    """Units counted together; their summed cost is kept once every unit had a value."""

    __slots__ = ("units", "total", "costs")

    def __init__(self, units):
        self.units = tuple(units)
        self.total = None
        self.costs = None  # the LayerCost of each unit, once all are known

    def resolve(self, est):
        """Adds this block's layers to ``est.breakdown`` and returns their summed latency
        (measuring what is not measured yet)."""
        if self.costs is not None:
            est.breakdown.extend(self.costs)
            est.cache.hits += len(self.costs)
            return self.total
        start, n_failed, n_missing = len(est.breakdown), len(est.failures), len(est._missing)
        total = 0.0
        for u in self.units:
            cost = est._cost(u.name, u.signature, u.measure)
            if cost is not None:
                total += cost
        if len(est.failures) == n_failed and len(est._missing) == n_missing:
            self.costs, self.total = tuple(est.breakdown[start:]), total
        return total


class ArchitecturePlan:
    """The units of every architecture of one model (see the module docstring).

    Attributes:
        mixed_ops: the sampling MixedOps, whose choices select the candidates' blocks.
        problem: why this model cannot be planned (``None`` when it can).
    """

    def __init__(self, mixed_ops):
        self.mixed_ops = list(mixed_ops)
        self.problem = None
        self.fixed = []        # fixed node i -> Block
        self.fixed_deps = []   # fixed node i -> node ids it reads from
        self.cands = []        # MixedOp j -> [Block per candidate]
        self.cand_deps = []    # MixedOp j -> [node ids per candidate]
        self.roots = []
        self.uniform = None    # (fixed Block, reachable MixedOp indices) when reach never changes

    # -- building -------------------------------------------------------------------
    @classmethod
    def build(cls, recording, mixed_ops, leaf_unit, function_unit):
        """A plan from a ``mixed='all'`` :class:`~.recording.Recording` of a model whose
        sampling MixedOps are ``mixed_ops``.

        Args:
            leaf_unit: ``(LeafCall) -> Unit``.
            function_unit: ``(name, function, inputs) -> Unit``.
        """
        plan = cls(mixed_ops)
        if recording.problems:
            plan.problem = recording.problems[0]
            return plan
        mixed = sorted(recording.mixed, key=lambda mc: mc.index)
        if len({mc.index for mc in mixed}) != len(mixed):
            plan.problem = "a MixedOp is called more than once per forward"
            return plan
        markers = {mc.marker: mc.index for mc in mixed}
        fixed_owner = object()
        # Fixed region: everything reachable from the outputs and from every MixedOp's inputs,
        # without entering any MixedOp (its marker stands for it).
        roots = list(recording.outputs) + [v for mc in mixed for v in mc.inputs]
        funcs, inputs_of, _ = walk_inputs(roots, stop=markers)
        owner = {f: fixed_owner for f in funcs}
        for mc in mixed:
            owner[mc.marker.parent] = mc.index
        producers = {}
        fixed_calls = [c for c in recording.calls if c.region is None]
        inside = set()
        nodes = []  # (Block, input Variables) per fixed node
        for call in fixed_calls:
            body = functions_between(call.outputs, call.inputs)
            inside.update(body)
            i = len(nodes)
            nodes.append((Block([leaf_unit(call)]), call.inputs))
            for v in call.outputs:
                producers.setdefault(v, []).append(i)
            for f in body:
                for v in f.outputs:
                    producers.setdefault(v, []).append(i)
        k = 0
        for f, ins in zip(funcs, inputs_of):
            if f in inside:
                continue
            i = len(nodes)
            nodes.append((Block([function_unit(f"outside/{k}:{f.info.type_name}", f, ins)]), ins))
            k += 1
            for v in f.outputs:
                producers.setdefault(v, []).append(i)
        n_fixed = len(nodes)
        for mc in mixed:
            producers.setdefault(mc.marker, []).append(n_fixed + mc.index)
        plan.fixed = [b for b, _ in nodes]
        plan.fixed_deps = [_deps(ins, producers) for _, ins in nodes]
        plan.roots = _deps(recording.outputs, producers)
        # One block per candidate: what it runs between the MixedOp's inputs and its output.
        calls_of = {}
        for call in recording.calls:
            if call.region is not None:
                calls_of.setdefault(call.region, []).append(call)
        plan.cands = [[] for _ in mixed_ops]  # a MixedOp the build never called keeps no block
        plan.cand_deps = [[] for _ in mixed_ops]
        for mc in mixed:
            blocks, deps = plan.cands[mc.index], plan.cand_deps[mc.index]
            for c, out in enumerate(mc.outputs):
                region, region_inputs, _ = walk_inputs([out], stop=set(mc.inputs))
                for f in region:
                    if owner.setdefault(f, (mc.index, c)) != (mc.index, c):
                        plan.problem = (f"candidate {c} of MixedOp {mc.index} shares operations with the "
                                        "rest of the model")
                        return plan
                read = {out}
                for ins in region_inputs:
                    read.update(ins)
                calls = [call for call in calls_of.get((mc.index, c), ()) if any(v in read for v in call.outputs)]
                body = set()
                for call in calls:
                    body.update(functions_between(call.outputs, call.inputs))
                units = [leaf_unit(call) for call in calls]
                j = 0
                for f, ins in zip(region, region_inputs):
                    if f not in body:
                        units.append(function_unit(f"outside/{mc.index}.{c}.{j}:{f.info.type_name}", f, ins))
                        j += 1
                blocks.append(Block(units))
                deps.append(_deps([v for v in mc.inputs if v in read], producers))
        if all(len({tuple(d) for d in deps}) <= 1 for deps in plan.cand_deps):
            fixed_nodes, mixed_nodes = plan._reach([0] * len(mixed_ops))
            plan.uniform = (Block([u for i in fixed_nodes for u in plan.fixed[i].units]), mixed_nodes)
        return plan

    # -- answering --------------------------------------------------------------------
    def _reach(self, choices):
        """``(fixed node ids, MixedOp indices)`` the outputs depend on under ``choices``."""
        n_fixed = len(self.fixed)
        seen = bytearray(n_fixed + len(self.cands))
        fixed_nodes, mixed_nodes = [], []
        stack = list(self.roots)
        while stack:
            i = stack.pop()
            if seen[i]:
                continue
            seen[i] = 1
            if i < n_fixed:
                fixed_nodes.append(i)
                stack.extend(self.fixed_deps[i])
            else:
                j = i - n_fixed
                mixed_nodes.append(j)
                stack.extend(self.cand_deps[j][choices[j]])
        fixed_nodes.sort()
        mixed_nodes.sort()
        return fixed_nodes, mixed_nodes

    def blocks(self, choices):
        """The blocks the architecture ``choices`` runs (a choice per MixedOp)."""
        if self.uniform is not None:
            fixed, reach = self.uniform
            cands = self.cands
            return [fixed] + [cands[j][choices[j]] for j in reach]
        fixed_nodes, mixed_nodes = self._reach(choices)
        return [self.fixed[i] for i in fixed_nodes] + [self.cands[j][choices[j]] for j in mixed_nodes]

    def units(self, choices):
        """Every unit of the architecture ``choices`` (for checks; a query uses :meth:`blocks`)."""
        return [u for b in self.blocks(choices) for u in b.units]


def _deps(variables, producers):
    out = []
    for v in variables:
        for i in producers.get(v, ()):
            if i not in out:
                out.append(i)
    return out
