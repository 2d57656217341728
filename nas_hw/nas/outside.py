"""The part of a network outside its choice points, as its own functions.

A candidate table adds the cost of the chosen candidates to a fixed part. On nnabla the fixed
part is the whole network's cost minus its candidates' (every function is costed alone, so the
parts add up exactly). A fusing backend's kernels may span a candidate and the network around it
(a candidate's last convolution fused with the residual addition after it), so the whole minus the
candidates alone is not the cost of anything and can even be negative; the functions outside every
choice point, costed on their own (:func:`outside_functions`), are.
"""
import nnabla as nn

from .. import nnabla_nas_compat as nnas
from ..measure.graph import functions_between, walk


def outside_functions(model, points, input_shapes, choices=None):
    """``(functions, inputs)``: the functions of ``model`` built at ``input_shapes`` (inference
    mode, choice point ``i`` running candidate ``choices[i]``, default 0) that no candidate
    runs, in topological order, and the graph's input Variables."""
    choices = [0] * len(points) if choices is None else list(choices)
    calls = []

    def recording(cp, c):
        def run(x, op=cp.candidates[c]):
            out = op(x)
            calls.append((x, out))
            return out
        return run

    state = model.training
    model.apply(training=False)
    try:
        with nnas.fixed_choices([cp.mixedop for cp in points], choices), \
                nnas.overriding_calls([(cp.mixedop, recording(cp, c)) for cp, c in zip(points, choices)]), \
                nn.auto_forward(False):
            inputs = [nn.Variable(tuple(s), need_grad=False) for s in input_shapes]
            out = model(*inputs)
    finally:
        model.apply(training=state)
    inside = set()
    for x, y in calls:
        inside.update(functions_between(list(y) if isinstance(y, (list, tuple)) else [y], [x]))
    funcs, _ = walk(out if not isinstance(out, (list, tuple)) else out[0])
    return [f for f in funcs if f not in inside], inputs
