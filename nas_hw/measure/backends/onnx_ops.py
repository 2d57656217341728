"""nnabla function -> ONNX node(s): one small converter per function type (opset 13).

A converter gets the graph builder of :mod:`.onnx_export`, the nnabla function node and the
tensor names of its inputs and outputs, and adds the nodes computing the same thing. A function's
arguments that have no ONNX equivalent raise ``ValueError`` naming them (the exporter turns it
into an :class:`~nas_hw.errors.UnsupportedOperationError`).
"""
import numpy as np


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


