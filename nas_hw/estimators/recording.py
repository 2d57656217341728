"""One recording build of a model: which leaf modules ran on which Variables, and what each
sampling MixedOp received and returned.

The module estimator rebuilds a model once, in inference mode and at its ``batch_size``, with
every leaf module's ``call`` wrapped to record ``(module, inputs, outputs)``. Sampling MixedOps
either run their current choice (``mixed='active'``: the architecture as it is) or every
candidate on the same input (``mixed='all'``: what an :class:`~.plan.ArchitecturePlan` is built
from). The model's recorded input shapes, training flags and calls are put back afterwards.
"""
import contextlib
from dataclasses import dataclass, field
from typing import List, Optional, Tuple

import nnabla as nn
import nnabla.functions as F

from .. import nnabla_nas_compat as nnas
from ..errors import GraphNotBuiltError, MeasurementError
from ..measure.signature import with_batch


@dataclass
class LeafCall:
    """One call of a leaf module on Variables (``inputs``: its arguments, lists flattened).
    ``region`` is ``(MixedOp index, candidate)`` when the call ran inside a candidate of a
    sampling MixedOp (``mixed='all'``), else ``None``; ``bad`` names an argument type that is
    neither a Variable nor a list of them (the call cannot be measured as a module)."""

    module: object
    inputs: List
    outputs: List
    region: Optional[Tuple[int, int]] = None
    bad: Optional[str] = None


@dataclass
class MixedCall:
    """What sampling MixedOp ``index`` received and each candidate returned (``mixed='all'``);
    ``marker`` is the Variable the rest of the model read in place of the MixedOp's output."""

    index: int
    inputs: List
    outputs: List
    marker: object


@dataclass
class Recording:
    outputs: List
    calls: List[LeafCall] = field(default_factory=list)
    inputs: List = field(default_factory=list)  # the rebuilt model's input Variables
    mixed: List[MixedCall] = field(default_factory=list)
    problems: List[str] = field(default_factory=list)


def _is_leaf(m):
    return len(m.modules) == 0


def _as_list(out):
    return list(out) if isinstance(out, (list, tuple)) else [out]


def _variables(args):
    """``(Variables among args, lists flattened; the type name of an argument that is none)``.
    ``None`` arguments are skipped (nnabla_nas's static ``Input`` and ``Zero`` take one)."""
    found, bad = [], None
    for a in args:
        if isinstance(a, nn.Variable):
            found.append(a)
        elif isinstance(a, (list, tuple)):
            inner, inner_bad = _variables(a)
            found.extend(inner)
            bad = bad or inner_bad
        elif a is not None:
            bad = bad or type(a).__name__
    return found, bad


def sampling_mixed_ops(net):
    """The model's MixedOps that run one candidate (mode other than ``full``), in module order."""
    return [m for _, m in net.get_modules() if nnas.is_mixed_op(m) and nnas.mode(m) != "full"]


def check_choices(mixed_ops):
    """Raises :class:`GraphNotBuiltError` unless every sampling MixedOp has a current choice."""
    for m in mixed_ops:
        if nnas.active_index(m) is None:
            raise GraphNotBuiltError(f"MixedOp {m.name or m!r} has no active candidate yet: "
                                     "build the graph (net(x)) before estimating")


@contextlib.contextmanager
def _recording_calls(net, mixed_ops, rec, mixed):
    """Wraps each leaf module's ``call`` to record it, and each sampling MixedOp's to run its
    current choice (``'active'``) or every candidate (``'all'``) without sampling anew."""
    index = {m: j for j, m in enumerate(mixed_ops)}
    overrides, region = [], [None]
    for _, m in net.get_modules():
        if m in index:
            overrides.append((m, nnas.run_active(m) if mixed == "active" else _run_all(m, index[m], rec, region)))
        elif _is_leaf(m) and not nnas.is_mixed_op(m):
            original = nnas.original_call(m)

            def recorder(*args, m=m, original=original, **kwargs):
                out = original(*args, **kwargs)
                inputs, bad = _variables(args)
                # A leaf that reads no Variable (a static Input or Zero) is not measured as a
                # module: the functions it runs count as operations outside leaf modules.
                if inputs or bad:
                    rec.calls.append(LeafCall(m, inputs, [v for v in _as_list(out) if isinstance(v, nn.Variable)],
                                              region[0], bad))
                return out

            overrides.append((m, recorder))
    with nnas.overriding_calls(overrides):
        yield


def _run_all(m, j, rec, region):
    """A MixedOp ``call`` that runs every candidate on the same input and returns a marker
    (an identity of the first candidate's output) standing for "the chosen candidate"."""
    ops = nnas.candidates(m)

    def run(*args):
        if region[0] is not None:
            rec.problems.append(f"MixedOp {m.name or j} is nested in a candidate of another MixedOp")
        outs = []
        try:
            for c, op in enumerate(ops):
                region[0] = (j, c)
                outs.append(op(*args))
        finally:
            region[0] = None
        if not all(isinstance(o, nn.Variable) for o in outs):
            rec.problems.append(f"a candidate of MixedOp {m.name or j} returns no single Variable")
            return outs[0]
        if len({tuple(o.shape) for o in outs}) != 1:
            rec.problems.append(f"the candidates of MixedOp {m.name or j} return different shapes")
        marker = F.identity(outs[0])
        rec.mixed.append(MixedCall(j, list(args), outs, marker))
        return marker
    return run


def record(net, batch_size, mixed_ops, mixed="active"):
    """Rebuilds ``net`` at ``batch_size`` in inference mode and returns its :class:`Recording`.

    Raises:
        MeasurementError: the model cannot be rebuilt at ``batch_size``.
    """
    modules = [m for _, m in net.get_modules()]
    # Calling modules records input shapes on them: put back afterwards, as are training flags.
    recorded_shapes = [(m, nnas.recorded_input_shapes(m)) for m in modules]
    flags = nnas.training_flags(net)
    net.apply(training=False)
    try:
        with nn.auto_forward(False), nnas.uncached_calls(net), nnas.static_rebuild(net):
            inputs = [nn.Variable(with_batch(s, batch_size), need_grad=False) for s in net.input_shapes]
            built_shapes = [tuple(s) for s in net.input_shapes]
            rec = Recording([])
            try:
                with _recording_calls(net, mixed_ops, rec, mixed):
                    out = net(*inputs)
            except Exception as err:
                if all(tuple(v.shape) == s for v, s in zip(inputs, built_shapes)):
                    raise
                raise MeasurementError(f"model {type(net).__name__} cannot be rebuilt at batch_size="
                                       f"{batch_size} ({type(err).__name__}: {err})") from err
            finally:
                for m, shapes in recorded_shapes:
                    nnas.restore_input_shapes(m, shapes)
    finally:
        nnas.restore_training_flags(flags)
    rec.outputs = _as_list(out)
    rec.inputs = inputs
    return rec
