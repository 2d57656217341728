"""Readable, stable keys for one nnabla function or one leaf module.

A signature holds everything that changes the cost of running a layer on a given device:
the operation type, its arguments, its input shapes (the batch size included) and dtypes.
The device itself is not part of it: the cache pairs each signature with a fingerprint.

    fn:Convolution|base_axis=1,dilation=(1,1),group=1,pad=(1,1),stride=(1,1)|in=1x3x32x32:float32,...
    mod:Conv(in_channels=3, out_channels=16, kernel=(3, 3), ...)|in=1x3x32x32

An ``fn:`` signature can be read back (:func:`parse_function_signature`) into the function's
type, arguments, input shapes and dtypes, enough to build and time it again (``nas-hw cache
verify``); a ``mod:`` signature cannot (it names a module class, not its code).
"""
import re
from dataclasses import dataclass
from typing import Any, Dict, Tuple

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


# -- reading a function signature back ------------------------------------------------------------
@dataclass(frozen=True)
class FunctionSpec:
    """What an ``fn:`` signature says: enough to build the function again and time it.

    Attributes:
        type_name: the nnabla function's type (``Convolution``...).
        args: its arguments (ints, floats, bools, strings, ``None``, tuples of them).
        input_shapes: one shape per input (``()`` for a scalar).
        dtypes: one dtype name per input.
    """

    type_name: str
    args: Dict[str, Any]
    input_shapes: Tuple[Tuple[int, ...], ...]
    dtypes: Tuple[str, ...]


class _Info:
    def __init__(self, type_name, args):
        self.type_name, self.args = type_name, args


class SpecNode:
    """The part of an nnabla function node (``info.type_name``, ``info.args``, ``inputs``,
    ``outputs``) that signatures and the layer estimators' timing read, made from a
    :class:`FunctionSpec`. ``inputs`` and ``outputs`` are placeholders standing for variables
    (one per input shape, one output): a backend rebuilds the function on fresh variables at the
    spec's input shapes."""

    def __init__(self, spec):
        self.info = _Info(spec.type_name, dict(spec.args))
        self.inputs = [object() for _ in spec.input_shapes]
        self.outputs = [object()]


def spec_signature(spec):
    """The signature of a :class:`FunctionSpec` (the inverse of :func:`parse_function_signature`)."""
    return function_signature(SpecNode(spec), list(spec.input_shapes), list(spec.dtypes))


def _split_top(text, sep=","):
    """Splits ``text`` on ``sep`` outside parentheses."""
    parts, depth, current = [], 0, []
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth < 0:
                raise ValueError(f"unbalanced ')' in {text!r}")
        if ch == sep and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    if depth:
        raise ValueError(f"unbalanced '(' in {text!r}")
    parts.append("".join(current))
    return parts


_INT = re.compile(r"[-+]?\d+\Z")
_FLOAT = re.compile(r"[-+]?(\d+\.\d*|\.\d+|\d+)([eE][-+]?\d+)?\Z|[-+]?(inf|nan)\Z")


def _parse_value(text):
    if text.startswith("(") and text.endswith(")"):
        inner = text[1:-1]
        return () if not inner else tuple(_parse_value(p) for p in _split_top(inner))
    if text in ("True", "False"):
        return text == "True"
    if text == "None":
        return None
    if _INT.match(text):
        return int(text)
    if _FLOAT.match(text):
        return float(text)
    return text


def _parse_shape(text):
    if text == "scalar":
        return ()
    try:
        shape = tuple(int(d) for d in text.split("x"))
    except ValueError:
        raise ValueError(f"bad shape {text!r}") from None
    if any(d < 0 for d in shape):
        raise ValueError(f"bad shape {text!r}")
    return shape


def parse_function_signature(signature):
    """The :class:`FunctionSpec` of an ``fn:`` signature (see :func:`function_signature`).

    ``mod:`` signatures (leaf modules) cannot be read back: a module's code is not in its
    signature.

    Raises:
        ValueError: not an ``fn:`` signature, or malformed (the message names the part).
    """
    if not isinstance(signature, str) or not signature.startswith("fn:"):
        kind = "a module signature (mod:), which names a class, not its code" if str(signature).startswith("mod:") \
            else "not a function signature"
        raise ValueError(f"cannot read {signature!r} back: {kind}")
    head, sep, ins = signature[3:].rpartition("|in=")
    type_name, bar, args_text = head.partition("|")
    if not sep or not bar or not type_name.isidentifier():
        raise ValueError(f"malformed function signature {signature!r}: expected fn:Type|args|in=shapes")
    args = {}
    if args_text:
        for part in _split_top(args_text):
            key, eq, value = part.partition("=")
            if not eq or not key.isidentifier():
                raise ValueError(f"malformed argument {part!r} in {signature!r}")
            args[key] = _parse_value(value)
    shapes, dtypes = [], []
    if ins:
        for part in ins.split(","):
            shape, colon, dtype = part.rpartition(":")
            if not colon or not dtype:
                raise ValueError(f"malformed input {part!r} in {signature!r}: expected SHAPE:dtype")
            shapes.append(_parse_shape(shape))
            dtypes.append(dtype)
    return FunctionSpec(type_name, args, tuple(shapes), tuple(dtypes))
