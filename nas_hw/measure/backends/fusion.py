"""Units: which functions of a graph a runtime executes as one kernel, and how a unit is named.

ONNX Runtime rewrites the exported graph before running it: a convolution absorbs the batch
normalization after it (its statistics folded into the weights), then an activation
(``FusedConv``: ReLU, Clip for ReLU6...), and at the ``all`` level also a residual addition
(and a ReLU after it); a ``MatMul`` absorbs an ``Add``; constants are folded. Timing each nnabla
function alone measures kernels that never run. :func:`fused_units` reads the optimized graph
the runtime wrote and groups the nnabla functions the way it did: a tensor of the exported
graph that no longer exists in the optimized one was made internal to a fused kernel, so the
function producing it and every function reading it form one unit.

A unit's signature (:func:`unit_signature`) lists its functions' own signatures and how they
are wired, so a unit measured once is reused wherever the same fused pattern recurs.
"""
import hashlib
from collections import defaultdict

from ...constants import MAX_SIGNATURE_CHARS


def fused_units(exported, optimized, n_funcs):
    """Groups the functions of ``exported`` (an :class:`~.onnx_export.ExportedModel` of
    ``n_funcs`` functions) as the runtime's ``optimized`` graph (an ``onnx.ModelProto``) does.

    Returns:
        A list of lists of function indices (each in increasing order, the lists ordered by
        their first index).
    """
    graph = optimized.graph
    alive = {o.name for o in graph.output} | {i.name for i in graph.initializer}
    for node in graph.node:
        alive.update(node.input)
        alive.update(node.output)
    readers = defaultdict(set)  # tensor name -> functions reading it (in the exported graph)
    for node in exported.model.graph.node:
        j = exported.node_function[node.name]
        for name in node.input:
            readers[name].add(j)
    parent = list(range(n_funcs))

    def find(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, names in enumerate(exported.function_outputs):
        for name in names:
            if name not in alive:
                for j in readers[name]:
                    a, b = find(i), find(j)
                    if a != b:
                        parent[max(a, b)] = min(a, b)
    groups = defaultdict(list)
    for i in range(n_funcs):
        groups[find(i)].append(i)
    return sorted(groups.values())


def graph_inputs(funcs):
    """The leaf variables of ``funcs`` that are neither registered parameters nor need a
    gradient: what a graph is fed at run time. A parameter becomes a constant of the exported
    model, which lets the runtime fold a batch normalization into the convolution before it, as
    it would in deployment (pass the inputs explicitly where a graph input needs a gradient)."""
    import nnabla as nn

    params = set(nn.get_parameters(grad_only=False).values())
    seen, found = set(), []
    for f in funcs:
        for v in f.inputs:
            if v.parent is None and not v.need_grad and v not in params and v not in seen:
                seen.add(v)
                found.append(v)
    return found


class GraphIndex:
    """Who produces and who reads each variable of a function list (a graph or a part of one).

    A variable is fed at run time (an activation) when it is one of the graph's ``inputs`` or
    some function computes it (inside the list or outside it); every other variable the
    functions read (a parameter, a constant) is a constant of the unit that reads it.
    """

    def __init__(self, funcs, inputs, outputs):
        self.funcs = funcs
        self.inputs = set(inputs)
        self.outputs = list(outputs)
        self.producer = {}
        self.readers = defaultdict(set)
        for i, f in enumerate(funcs):
            for v in f.outputs:
                self.producer[v] = i
            for v in f.inputs:
                self.readers[v].add(i)

    def is_activation(self, v):
        return v in self.inputs or v in self.producer or v.parent is not None

    def inputs_of_graph(self):
        """The activations the functions read and do not compute (first-use order)."""
        seen, found = set(), []
        for f in self.funcs:
            for v in f.inputs:
                if v not in seen and v not in self.producer and self.is_activation(v):
                    seen.add(v)
                    found.append(v)
        return found

    def outputs_of_graph(self):
        """The given outputs, then what the functions compute and none of them reads."""
        found = list(self.outputs)
        known = set(found)
        for f in self.funcs:
            for v in f.outputs:
                if v not in known and not self.readers.get(v):
                    known.add(v)
                    found.append(v)
        return found

    def boundary(self, unit):
        """``(inputs, outputs)`` of the unit (a list of function indices): the activations it reads
        and does not compute, and the variables it computes that other functions read, the graph
        returns or nothing reads (both in first-use order)."""
        members = set(unit)
        ins, outs, seen = [], [], set()
        for i in unit:
            for v in self.funcs[i].inputs:
                if v in seen:
                    continue
                inside = v in self.producer and self.producer[v] in members
                if not inside and self.is_activation(v):
                    seen.add(v)
                    ins.append(v)
        returned = set(self.outputs)
        for i in unit:
            for v in self.funcs[i].outputs:
                readers = self.readers.get(v, set())
                if v in returned or not readers or readers - members:
                    outs.append(v)
        return ins, outs


def unit_signature(signatures, funcs, inputs):
    """The signature of a unit made of ``funcs`` (with their own ``signatures``) reading
    ``inputs``: one function's signature as it is; several functions joined, each followed by
    where its inputs come from (``x<j>``: the unit's j-th input, ``u<k>.<o>``: output o of the
    unit's k-th function, ``c``: a constant), e.g. ``unit[fn:Convolution|...<-x0,c;fn:ReLU|...<-u0.0]``."""
    if len(funcs) == 1:
        return signatures[0]
    where = {v: f"x{j}" for j, v in enumerate(inputs)}
    parts = []
    for k, (f, sig) in enumerate(zip(funcs, signatures)):
        refs = ",".join(where.get(v, "c") for v in f.inputs)
        parts.append(f"{sig}<-{refs}")
        for o, v in enumerate(f.outputs):
            where[v] = f"u{k}.{o}"
    full = "unit[" + ";".join(parts) + "]"
    if len(full) <= MAX_SIGNATURE_CHARS:
        return full
    # too long for the store's key column: its function types stay readable, a digest keeps it exact
    kinds = "+".join(f.info.type_name for f in funcs[:12]) + ("+..." if len(funcs) > 12 else "")
    return f"unit[{len(funcs)} functions: {kinds}]#sha256={hashlib.sha256(full.encode()).hexdigest()}"
