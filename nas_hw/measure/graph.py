"""Walks over nnabla graphs, shared by everything that measures or counts."""
import nnabla as nn
import numpy as np

from ..errors import GraphNotBuiltError


def functions_of(output):
    """The functions of the graph ending in ``output``, inputs before consumers (topological).

    An explicit depth-first walk: on graphs seen for the first time it is several times faster
    than ``Variable.visit`` and it needs no recursion limit.
    """
    return walk(output)[0]


def walk(output):
    """``(functions in topological order, leaf variables)`` of the graph ending in ``output``."""
    order, _, leaves = walk_inputs(output)
    return order, leaves


def walk_inputs(output, stop=None):
    """``(functions, their input lists, leaf variables)`` of the graph ending in ``output`` (a
    Variable, or a list of them).

    Functions come inputs before consumers (topological), each with the list of its inputs as
    read once during the walk (``Function.inputs`` builds a new list on every access), so a
    caller that needs the inputs again does not pay for them twice. Variables in ``stop`` are
    treated as leaves (the walk does not go past them).
    """
    order, inputs_of, seen, leaves = [], [], set(), {}
    outputs = output if isinstance(output, (list, tuple)) else [output]
    stack = []
    for v in reversed(outputs):
        p = v.parent
        if p is not None and not (stop is not None and v in stop):
            stack.append((p, None))
    while stack:
        f, ins = stack.pop()
        if ins is not None:
            order.append(f)
            inputs_of.append(ins)
            continue
        if f in seen:
            continue
        seen.add(f)
        ins = f.inputs
        stack.append((f, ins))
        for v in reversed(ins):
            p = v.parent
            if p is None or (stop is not None and v in stop):
                leaves[v] = None  # an ordered set
            elif p not in seen:
                stack.append((p, None))
    return order, inputs_of, list(leaves)


def leaf_variables(funcs):
    """Variables that no function in ``funcs`` produces: inputs and parameters."""
    seen, leaves = set(), []
    for f in funcs:
        for v in f.inputs:
            if v.parent is None and v not in seen:
                seen.add(v)
                leaves.append(v)
    return leaves


def init_unset_inputs(variables):
    """Gives every variable whose data was never written a zero buffer.

    Functions then never read garbage (softmax cross entropy reads labels as indices),
    while inputs and parameters the user did set are left as they are.
    """
    for v in variables:
        if v.data.modification_count == 0:
            v.data.zero()



def functions_between(outputs, inputs):
    """Function nodes computing ``outputs`` from ``inputs`` (walks back, stops at ``inputs``)."""
    stop, seen, found, stack = set(inputs), set(), [], list(outputs)
    while stack:
        v = stack.pop()
        if v in stop or v.parent is None:
            continue
        f = v.parent
        if f in seen:
            continue
        seen.add(f)
        found.append(f)
        stack.extend(f.inputs)
    return found


def registered_parameters():
    """The set of Variables in nnabla's parameter registry (every scope, at any depth).

    Read straight from the scope dictionaries: ``nn.get_parameters`` enters each scope and
    builds every name, about 10x slower on nnabla_nas models (a scope per MixedOp)."""
    found, stack = set(), [nn.parameter.get_current_parameter_scope()]
    while stack:
        for v in stack.pop().values():
            if isinstance(v, dict):
                stack.append(v)
            else:
                found.add(v)
    return found


def non_parameter_leaves(funcs, leaves=None):
    """Leaf variables of ``funcs`` that are not registered parameters and need no gradient:
    the graph's inputs, which carry the batch axis. ``leaves``: the leaves a walk already
    listed (same order as found here), to save the pass over ``funcs``."""
    if leaves is None:
        leaves = list({v: None for f in funcs for v in f.inputs if v.parent is None})
    plain = [v for v in leaves if not v.need_grad]
    if not plain:
        return []
    params = registered_parameters()
    return [v for v in plain if v not in params]


def batch_of(leaves):
    """The first dimension the ``leaves`` share, or ``None`` when they disagree (or are none)."""
    sizes = {int(v.shape[0]) for v in leaves if len(v.shape)}
    return sizes.pop() if len(sizes) == 1 else None


def numel(shape):
    """Elements of an array of ``shape`` (1 for a scalar)."""
    return int(np.prod(shape, dtype=np.int64)) if len(shape) else 1


def is_module(obj):
    """True for an nnabla_nas-style module (it has ``get_parameters()``)."""
    return callable(getattr(obj, "get_parameters", None))


def as_graph(graph_or_module):
    """The output ``nnabla.Variable`` of a graph or of a module that was called once.

    A module is rebuilt with ``module.call(*inputs)`` on fresh ``nnabla.Variable`` inputs of
    its recorded ``input_shapes`` (its parameters are reused, nothing is trained).

    Raises:
        GraphNotBuiltError: the module was never called, so its input shapes are unknown.
        TypeError: neither a Variable nor a module, or the module returned no Variable.
    """
    if isinstance(graph_or_module, nn.Variable):
        return graph_or_module
    if not is_module(graph_or_module) or not callable(getattr(graph_or_module, "call", None)):
        raise TypeError(
            "expected an nnabla.Variable (a graph output) or an nnabla_nas-style module with "
            f"get_parameters() and call(), got {type(graph_or_module).__name__}")
    shapes = list(getattr(graph_or_module, "input_shapes", None) or [])
    if not shapes:
        raise GraphNotBuiltError(
            f"module {type(graph_or_module).__name__} has no input_shapes: call it once on an "
            "input (module(x)) before estimating, or pass its output Variable")
    out = graph_or_module.call(*[nn.Variable(tuple(s)) for s in shapes])
    if not isinstance(out, nn.Variable):
        raise TypeError(f"module.call returned {type(out).__name__}, expected one nnabla.Variable")
    return out
