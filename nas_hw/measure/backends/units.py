"""A graph cut into the units a backend measures, each with its boundary, shapes and signature.

What the layer-based estimators (and the benchmarks) iterate over: for the ``nnabla`` backend one
unit per function, signed exactly as before backends existed (``fn:...``); for ``onnxruntime`` one
unit per fused kernel, signed ``unit[...]`` when it holds several functions.
"""
from dataclasses import dataclass
from typing import List, Tuple

from ..signature import function_signature
from .fusion import GraphIndex, unit_signature


@dataclass(frozen=True)
class Unit:
    """One measured unit of a graph.

    Attributes:
        indices: positions of its functions in the graph's function list.
        funcs: its function nodes (topological order).
        inputs: the variables other units (or the graph's inputs) hand it.
        outputs: the variables it hands on (or the graph returns).
        input_shapes: the shapes of ``inputs`` to measure at.
        signature: its cache key (without the device: the store pairs it with the fingerprint).
        name: ``<prefix><first index>:<Type>[+<Type>...]``, for breakdowns and errors.
    """

    indices: Tuple[int, ...]
    funcs: Tuple
    inputs: Tuple
    outputs: Tuple
    input_shapes: Tuple[Tuple[int, ...], ...]
    signature: str
    name: str


def plan_units(backend, funcs, inputs, outputs, signatures=None, shapes=None, prefix="", groups_memo=None):
    """The units ``backend`` measures for the functions ``funcs`` of a graph.

    Args:
        backend: a :class:`~.base.MeasuringBackend`.
        funcs: the graph's function nodes, topological order.
        inputs: the graph's input variables (those carrying the batch axis).
        outputs: the variables the graph returns.
        signatures: each function's signature (default: at its variables' own shapes).
        shapes: ``{variable: shape}`` overriding the shapes of activations (a batch axis set);
            variables not in it keep their own.
        prefix: put before every unit's name.
        groups_memo: a dict remembering the backend's grouping per graph structure (the
            functions' signatures and wiring): a graph seen before is not analysed again.

    Returns:
        A list of :class:`Unit`, in graph order.
    """
    shapes = shapes or {}
    if signatures is None:
        signatures = [function_signature(f, [shapes.get(v, v.shape) for v in f.inputs]) for f in funcs]
    index = GraphIndex(funcs, inputs, outputs)
    graph_inputs, graph_outputs = index.inputs_of_graph(), index.outputs_of_graph()
    key = None
    if groups_memo is not None:
        key = (unit_signature(signatures, funcs, graph_inputs) if len(funcs) != 1 else signatures[0],
               len(graph_outputs))
        groups = groups_memo.get(key)
    if key is None or groups is None:
        groups = backend.units(funcs, graph_inputs, graph_outputs)
        if key is not None:
            groups_memo[key] = groups
    units = []
    for group in groups:
        members = [funcs[i] for i in group]
        ins, outs = index.boundary(group)
        sig = unit_signature([signatures[i] for i in group], members, ins)
        name = f"{prefix}{group[0]}:" + "+".join(f.info.type_name for f in members)
        units.append(Unit(tuple(group), tuple(members), tuple(ins), tuple(outs),
                          tuple(tuple(int(d) for d in shapes.get(v, v.shape)) for v in ins), sig, name))
    return units


def unit_names(units) -> List[str]:
    """The names of ``units`` (for logs and tests)."""
    return [u.name for u in units]
