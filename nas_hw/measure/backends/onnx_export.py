"""nnabla graph (or a part of one) -> an ONNX model in memory, built with ``onnx.helper``.

nnabla's own exporter (``nnabla.utils.converter.onnx``) ships in the ``nnabla-converter``
distribution, which requires TensorFlow; this module needs only the ``onnx`` package. Every
nnabla function becomes the ONNX node(s) of :data:`.onnx_ops.CONVERTERS`, named ``f<index>:<type>`` after
its position in the function list, so that a node of the runtime's graph can be traced back to
the nnabla function it came from (:attr:`ExportedModel.node_function`). Parameters become
initializers holding their data (zeros where it was never written); the ``inputs`` become the
model's inputs. A function no converter handles raises
:class:`~nas_hw.errors.UnsupportedOperationError` naming every such function type.

Exactness is tested function by function against nnabla's forward (tests/measure/backends).
"""
from dataclasses import dataclass, field
from typing import Dict, List, Tuple

import numpy as np

from ...constants import ONNX_OPSET
from ...errors import UnsupportedOperationError
from .extras import import_onnx
from .onnx_ops import CONVERTERS


@dataclass
class ExportedModel:
    """An exported model and how it maps back to the nnabla graph.

    Attributes:
        model: the ``onnx.ModelProto``.
        input_names: names of the model's inputs, in the order of the ``inputs`` given.
        input_shapes: their shapes.
        output_names: names of the model's outputs.
        node_function: ONNX node name -> index of the nnabla function it came from.
        function_outputs: the tensor names of each function's outputs, by function index.
    """

    model: object
    input_names: List[str]
    input_shapes: List[Tuple[int, ...]]
    output_names: List[str]
    node_function: Dict[str, int] = field(default_factory=dict)
    function_outputs: List[List[str]] = field(default_factory=list)

    def serialized(self):
        return self.model.SerializeToString()


class _Builder:
    """Accumulates nodes and initializers; names tensors after the nnabla variables."""

    def __init__(self, onnx, names):
        self.onnx = onnx
        self.helper = onnx.helper
        self.nodes, self.initializers = [], []
        self._names = names  # nnabla variable -> tensor name
        self._pending = {}  # tensor name -> constant variable whose initializer is not written yet
        self._n_const = self._n_temp = self._n_nodes = 0
        self.index = 0  # the function being converted
        self.node_function = {}

    def name(self, v):
        """Tensor name of an nnabla variable; a variable nothing produces is a constant, written as
        an initializer once a node reads it under this name (converters that reshape a
        parameter read it through :meth:`param` instead)."""
        name = self._names.get(v)
        if name is None:
            name = self._names[v] = f"p{len(self._names)}"
            self._pending[name] = v
        return name

    def const(self, array, dtype=np.float32):
        """A new initializer holding ``array``; returns its name."""
        name = f"c{self.index}_{self._n_const}"
        self._n_const += 1
        self.initializers.append(self.onnx.numpy_helper.from_array(np.asarray(array, dtype=dtype), name))
        return name

    def param(self, v, shape):
        """An initializer holding ``v``'s data reshaped to ``shape`` (nnabla keeps BN statistics as
        (1, C, 1, 1) and depthwise kernels without their group axis)."""
        return self.const(_data(v).reshape(shape))

    def temp(self):
        """A fresh name for a tensor internal to one function's nodes."""
        self._n_temp += 1
        return f"t{self.index}_{self._n_temp}"

    def node(self, op_type, inputs, outputs, domain=None, **attrs):
        for name in inputs:
            v = self._pending.pop(name, None)
            if v is not None:
                self.initializers.append(self.onnx.numpy_helper.from_array(_data(v), name))
        name = f"f{self.index}:{self._type}:{self._n_nodes}"
        self._n_nodes += 1
        self.nodes.append(self.helper.make_node(op_type, list(inputs), list(outputs), name=name,
                                                domain=domain, **attrs))
        self.node_function[name] = self.index
        return outputs[0] if len(outputs) == 1 else outputs

    def begin(self, index, type_name):
        self.index, self._type = index, type_name
        self._n_nodes = self._n_const = self._n_temp = 0


def _data(v):
    """The data of a constant variable as float32, without touching a buffer never written."""
    if v.data.modification_count == 0 and not v.data.zeroing:
        return np.zeros(v.shape, dtype=np.float32)
    return np.asarray(v.d, dtype=np.float32)


def unsupported(funcs):
    """The function types among ``funcs`` that :func:`export` cannot convert (sorted)."""
    return sorted({f.info.type_name for f in funcs if f.info.type_name not in CONVERTERS})


def export(funcs, inputs, outputs, input_shapes=None, opset=ONNX_OPSET, graph_name="nas_hw"):
    """Exports the nnabla functions ``funcs`` (inputs before consumers) as an ONNX model.

    Args:
        funcs: the function nodes to export, in topological order (``measure.graph.walk``).
        inputs: the variables the model takes as inputs (fed at run time); every other
            variable ``funcs`` read without producing it becomes an initializer (a constant).
        outputs: the variables the model returns.
        input_shapes: shapes of ``inputs`` (default: their own); a batch axis may differ.
        opset: the ONNX opset of the default domain.
        graph_name: the graph's name.

    Returns:
        ExportedModel

    Raises:
        UnsupportedOperationError: some function types have no converter, or a function's
            arguments have no ONNX equivalent (the message names them).
        BackendUnavailableError: the ``onnx`` package is not installed.
    """
    onnx = import_onnx()
    missing = unsupported(funcs)
    if missing:
        raise UnsupportedOperationError(
            f"the ONNX exporter cannot convert nnabla function(s) {missing}; supported: "
            f"{sorted(CONVERTERS)}", functions=missing)
    inputs, outputs = list(inputs), list(outputs)
    shapes = [tuple(int(d) for d in s) for s in (input_shapes or [v.shape for v in inputs])]
    if len(shapes) != len(inputs):
        raise ValueError(f"input_shapes must hold one shape per input ({len(inputs)}), got {len(shapes)}")
    names = {v: f"x{i}" for i, v in enumerate(inputs)}
    for i, f in enumerate(funcs):
        for k, v in enumerate(f.outputs):
            names.setdefault(v, f"v{i}_{k}")
    b = _Builder(onnx, names)
    for i, f in enumerate(funcs):
        b.begin(i, f.info.type_name)
        ins = [b.name(v) for v in f.inputs]
        outs = [b.name(v) for v in f.outputs]
        try:
            CONVERTERS[f.info.type_name](b, f, ins, outs)
        except (ValueError, KeyError, TypeError) as err:
            raise UnsupportedOperationError(
                f"nnabla function {f.info.type_name} (function {i}) cannot be exported to ONNX: {err}",
                functions=[f.info.type_name]) from err
    helper, tp = onnx.helper, onnx.TensorProto
    graph = helper.make_graph(
        b.nodes, graph_name,
        [helper.make_tensor_value_info(names[v], tp.FLOAT, list(s)) for v, s in zip(inputs, shapes)],
        [helper.make_tensor_value_info(names[v], tp.FLOAT, None) for v in outputs],
        b.initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", int(opset))],
                              producer_name="nas_hw")
    model.ir_version = min(model.ir_version, 8)  # onnx 1.13 writes IR 8 for opsets <= 18
    return ExportedModel(model, [names[v] for v in inputs], shapes, [names[v] for v in outputs],
                         b.node_function, [[names[v] for v in f.outputs] for f in funcs])


def replicated(exported, copies):
    """``exported`` with its graph repeated ``copies`` times side by side: every copy reads the
    same inputs, has its own initializers and nodes, and returns its own outputs. Timing it
    amortises the runtime's fixed per-call cost over the copies (see the onnxruntime backend)."""
    if copies == 1:
        return exported
    onnx = import_onnx()
    graph = exported.model.graph
    shared = set(exported.input_names)

    def rename(name, c):
        return name if (not name or name in shared) else f"{name}#{c}"

    nodes, inits, outputs = [], [], []
    node_function = {}
    for c in range(copies):
        for node in graph.node:
            new = onnx.NodeProto()
            new.CopyFrom(node)
            new.name = rename(node.name, c)
            new.ClearField("input")
            new.ClearField("output")
            new.input.extend(rename(n, c) for n in node.input)
            new.output.extend(rename(n, c) for n in node.output)
            nodes.append(new)
            node_function[new.name] = exported.node_function[node.name]
        for init in graph.initializer:
            new = onnx.TensorProto()
            new.CopyFrom(init)
            new.name = rename(init.name, c)
            inits.append(new)
        for out in graph.output:
            new = onnx.ValueInfoProto()
            new.CopyFrom(out)
            new.name = rename(out.name, c)
            outputs.append(new)
    helper = onnx.helper
    model = helper.make_model(helper.make_graph(nodes, graph.name, list(graph.input), outputs, inits),
                              opset_imports=list(exported.model.opset_import), producer_name="nas_hw")
    model.ir_version = exported.model.ir_version
    return ExportedModel(model, list(exported.input_names), list(exported.input_shapes),
                         [o.name for o in outputs], node_function,
                         [[rename(n, c) for n in names] for c in range(copies) for names in exported.function_outputs])
