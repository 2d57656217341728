"""Readable, stable keys for one nnabla function or one leaf module.

A signature holds everything that changes the cost of running a layer on a given device:
the operation type, its arguments, its input shapes (the batch size included) and dtypes.
The device itself is not part of it: the cache pairs each signature with a fingerprint.

    fn:Convolution|base_axis=1,dilation=(1,1),group=1,pad=(1,1),stride=(1,1)|in=1x3x32x32:float32,...
    mod:Conv(in_channels=3, out_channels=16, kernel=(3, 3), ...)|in=1x3x32x32
"""
import numpy as np

_DTYPE_NAMES = {}  # numpy's dtype.name is slow; a query asks it for every parameter


def _fmt_value(value):
    if isinstance(value, (list, tuple)):
        return "(" + ",".join(_fmt_value(v) for v in value) + ")"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, np.ndarray):
        return _fmt_value(value.tolist())
    return str(value)


def fmt_shape(shape):
    return "x".join(str(int(d)) for d in shape) if len(shape) else "scalar"


def variable_dtype(v, default="float32"):
    """dtype name of a variable's data. An array with no memory yet (never written, or only
    zero-filled lazily) gets the context's default type when nnabla first allocates it."""
    data = v.data
    if data.modification_count == 0 and not data.zeroing:
        return default
    try:
        dtype = data.dtype
    except RuntimeError:  # nnabla: "Array is not initialized" (a lazy zero, no memory yet)
        return default
    name = _DTYPE_NAMES.get(dtype)
    if name is None:
        name = _DTYPE_NAMES[dtype] = np.dtype(dtype).name
    return name


def with_batch(shape, batch_size):
    """``shape`` with its first (batch) axis replaced; ``None`` keeps it as it is."""
    shape = tuple(int(d) for d in shape)
    if batch_size is None or not shape:
        return shape
    return (int(batch_size),) + shape[1:]


def function_signature(func, input_shapes=None, dtypes=None):
    """Signature of one nnabla function (a graph node).

    Args:
        func: an ``nnabla`` function node (``variable.parent``).
        input_shapes: shapes to use instead of the inputs' own (batch-adjusted ones).
        dtypes: dtype names of the inputs, default from the variables.
    """
    shapes = input_shapes if input_shapes is not None else [v.shape for v in func.inputs]
    dtypes = dtypes if dtypes is not None else [variable_dtype(v) for v in func.inputs]
    args = ",".join(f"{k}={_fmt_value(v)}" for k, v in sorted(func.info.args.items()))
    ins = ",".join(f"{fmt_shape(s)}:{d}" for s, d in zip(shapes, dtypes))
    return f"fn:{func.info.type_name}|{args}|in={ins}"


def module_signature(module, input_shapes):
    """Signature of one leaf module: class, its arguments (``extra_repr``), parameter shapes
    and the input shapes it is called with."""
    cls = type(module).__name__
    extra = module.extra_repr() if hasattr(module, "extra_repr") else ""
    params = ""
    if hasattr(module, "parameters"):
        params = ",".join(f"{k}:{fmt_shape(p.shape)}" for k, p in sorted(module.parameters.items()))
    ins = ",".join(fmt_shape(s) for s in input_shapes)
    return f"mod:{cls}({extra})|params={params}|in={ins}"
