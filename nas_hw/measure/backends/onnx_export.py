"""nnabla graph (or a part of one) -> an ONNX model in memory, built with ``onnx.helper``.

nnabla's own exporter (``nnabla.utils.converter.onnx``) ships in the ``nnabla-converter``
distribution, which requires TensorFlow; this module needs only the ``onnx`` package. Every
nnabla function becomes the ONNX node(s) of :data:`CONVERTERS`, named ``f<index>:<type>`` after
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


# -- converters: (builder, function, input names, output names) -> None -----------------------
def _spatial(args, key, default):
    return [int(a) for a in args.get(key, default)]


def _conv_attrs(args, n_spatial):
    if args.get("channel_last"):
        raise ValueError("channel_last=True")
    if args.get("base_axis", 1) != 1:
        raise ValueError(f"base_axis={args.get('base_axis')} (only 1)")
    pad = _spatial(args, "pad", [0] * n_spatial)
    return {"pads": pad + pad, "strides": _spatial(args, "stride", [1] * n_spatial),
            "dilations": _spatial(args, "dilation", [1] * n_spatial)}


def _convolution(b, f, ins, outs):
    w = f.inputs[1]
    attrs = _conv_attrs(f.info.args, len(w.shape) - 2)
    b.node("Conv", ins, outs, group=int(f.info.args.get("group", 1)),
           kernel_shape=list(w.shape[2:]), **attrs)


def _depthwise_convolution(b, f, ins, outs):
    # nnabla: weight (C * multiplier, *kernel), output channel j reads input channel
    # j // multiplier: ONNX Conv with group=C and weight (C * multiplier, 1, *kernel)
    w = f.inputs[1]
    mult = int(f.info.args.get("multiplier", 1))
    attrs = _conv_attrs(f.info.args, len(w.shape) - 1)
    weight = b.param(w, (w.shape[0], 1) + tuple(w.shape[1:]))
    inputs = [ins[0], weight] + list(ins[2:])
    b.node("Conv", inputs, outs, group=w.shape[0] // mult, kernel_shape=list(w.shape[1:]), **attrs)


def _batch_normalization(b, f, ins, outs):
    args = f.info.args
    if args.get("batch_stat"):
        raise ValueError("batch_stat=True (training mode: export the inference graph)")
    if list(args.get("axes", [1])) != [1]:
        raise ValueError(f"axes={args.get('axes')} (only [1])")
    # inputs: x, beta (unless no_bias), gamma (unless no_scale), mean, variance
    rest = list(f.inputs[1:])
    c = int(f.inputs[0].shape[1])
    beta = None if args.get("no_bias") else rest.pop(0)
    gamma = None if args.get("no_scale") else rest.pop(0)
    mean, var = rest
    bias = b.param(beta, (c,)) if beta is not None else b.const(np.zeros(c))
    scale = b.param(gamma, (c,)) if gamma is not None else b.const(np.ones(c))
    b.node("BatchNormalization", [ins[0], scale, bias, b.param(mean, (c,)), b.param(var, (c,))], outs,
           epsilon=float(args.get("eps", 1e-5)))


def _pooling(op):
    def convert(b, f, ins, outs):
        args = f.info.args
        if args.get("channel_last"):
            raise ValueError("channel_last=True")
        if not args.get("ignore_border", True):
            raise ValueError("ignore_border=False (ONNX pooling floors like ignore_border=True)")
        kernel = _spatial(args, "kernel", [])
        pad = _spatial(args, "pad", [0] * len(kernel))
        attrs = {"kernel_shape": kernel, "strides": _spatial(args, "stride", kernel), "pads": pad + pad}
        if op == "AveragePool":
            attrs["count_include_pad"] = int(bool(args.get("including_pad", True)))
        b.node(op, ins, outs, **attrs)
    return convert


def _affine(b, f, ins, outs):
    x, w = f.inputs[0], f.inputs[1]
    base = int(f.info.args.get("base_axis", 1))
    n_out = int(np.prod(w.shape[1:]))
    flat = b.node("Flatten", [ins[0]], [b.temp()], axis=base)
    weight = b.param(w, (w.shape[0], n_out))
    bias = [b.param(f.inputs[2], (n_out,))] if len(ins) > 2 else []
    if base == 1 and len(w.shape) == 2:
        b.node("Gemm", [flat, weight] + bias, outs)
        return
    y = b.node("Gemm", [flat, weight] + bias, [b.temp()])
    shape = [-1] + [int(d) for d in x.shape[1:base]] + [int(d) for d in w.shape[1:]]
    b.node("Reshape", [y, b.const(shape, np.int64)], outs)


def _unary(op, **fixed):
    def convert(b, f, ins, outs):
        b.node(op, ins, outs, **fixed)
    return convert


def _clip(low, high):
    def convert(b, f, ins, outs):
        b.node("Clip", [ins[0], b.const(low), b.const(high)], outs)
    return convert


def _scalar(op):
    def convert(b, f, ins, outs):
        b.node(op, [ins[0], b.const(float(f.info.args["val"]))], outs)
    return convert


def _leaky_relu(b, f, ins, outs):
    b.node("LeakyRelu", ins, outs, alpha=float(f.info.args.get("alpha", 0.1)))


def _swish(b, f, ins, outs):
    b.node("Mul", [ins[0], b.node("Sigmoid", ins, [b.temp()])], outs)


def _concatenate(b, f, ins, outs):
    b.node("Concat", ins, outs, axis=int(f.info.args.get("axis", len(f.inputs[0].shape) - 1)))


def _stack(b, f, ins, outs):
    axis = int(f.info.args.get("axis", 0))
    axes = b.const([axis], np.int64)
    parts = [b.node("Unsqueeze", [x, axes], [b.temp()]) for x in ins]
    b.node("Concat", parts, outs, axis=axis)


def _slice(b, f, ins, outs):
    args = f.info.args
    start, stop, step = (list(args[k]) for k in ("start", "stop", "step"))
    ndim = len(f.inputs[0].shape)
    axes = list(range(ndim - len(start), ndim))  # nnabla slices the trailing axes
    b.node("Slice", [ins[0], b.const(start, np.int64), b.const(stop, np.int64), b.const(axes, np.int64),
                     b.const(step, np.int64)], outs)


def _reduce(op):
    def convert(b, f, ins, outs):
        args = f.info.args
        axes = list(args.get("axes", range(len(f.inputs[0].shape))))
        keep = int(bool(args.get("keep_dims", False)))
        if op == "ReduceSum":  # opset 13: axes is an input
            b.node(op, [ins[0], b.const(axes, np.int64)], outs, keepdims=keep)
        else:
            b.node(op, ins, outs, axes=axes, keepdims=keep)
    return convert


def _softmax(b, f, ins, outs):
    b.node("Softmax", ins, outs, axis=int(f.info.args.get("axis", len(f.inputs[0].shape) - 1)))


def _reshape(b, f, ins, outs):
    b.node("Reshape", [ins[0], b.const(list(f.info.args["shape"]), np.int64)], outs)


def _transpose(b, f, ins, outs):
    b.node("Transpose", ins, outs, perm=[int(a) for a in f.info.args["axes"]])


def _binary(op):
    def convert(b, f, ins, outs):
        b.node(op, ins, outs)
    return convert


#: nnabla function type -> converter. The function types of nas_hw's and nnabla_nas's search
#: spaces (MobileNet, DARTS) and the common activations; anything else is refused by name.
CONVERTERS = {
    "Convolution": _convolution,
    "DepthwiseConvolution": _depthwise_convolution,
    "BatchNormalization": _batch_normalization,
    "Affine": _affine,
    "ReLU": _unary("Relu"),
    "ReLU6": _clip(0.0, 6.0),
    "HardTanh": _clip(-1.0, 1.0),
    "LeakyReLU": _leaky_relu,
    "Sigmoid": _unary("Sigmoid"),
    "Tanh": _unary("Tanh"),
    "Swish": _swish,
    "Identity": _unary("Identity"),
    "Add2": _binary("Add"),
    "Sub2": _binary("Sub"),
    "Mul2": _binary("Mul"),
    "Div2": _binary("Div"),
    "AddScalar": _scalar("Add"),
    "MulScalar": _scalar("Mul"),
    "MaxPooling": _pooling("MaxPool"),
    "AveragePooling": _pooling("AveragePool"),
    "GlobalAveragePooling": _unary("GlobalAveragePool"),
    "Concatenate": _concatenate,
    "Stack": _stack,
    "Slice": _slice,
    "Sum": _reduce("ReduceSum"),
    "Mean": _reduce("ReduceMean"),
    "Softmax": _softmax,
    "Reshape": _reshape,
    "Transpose": _transpose,
}


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
