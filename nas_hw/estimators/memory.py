"""Static resource estimators: parameter memory, activation memory and FLOPs.

Nothing here runs the network; every figure is computed from shapes, so it is exact for
the graph as built and identical on every device.

Units:
    * parameter and activation memory: **bytes** (plain ``int``), for a given ``dtype``
      (``float32`` = 4 bytes per element, ``float16``/``half`` = 2, ...).
    * compute: **MACs** and **FLOPs**, with **1 MAC = 2 FLOPs** (one multiply plus one add).
      Bias additions of Convolution / DepthwiseConvolution / Affine are counted as one FLOP
      per output element and are *not* MACs. See :data:`FLOPS_TABLE` for every function.

Graphs are given by their output ``nnabla.Variable``. nnabla_nas-style modules are accepted
by duck typing: :func:`parameter_count` needs ``get_parameters()`` (and ``get_modules()`` for
``active_only``); the activation and FLOPs estimators need a module that was called once
(``module.input_shapes`` non-empty) and rebuild its graph with ``module.call``.
"""
import logging
from dataclasses import dataclass
from typing import Callable, ClassVar, Dict, Optional, Tuple

import nnabla as nn
import numpy as np

from ..errors import GraphNotBuiltError
from ..graph_utils import functions_of

logger = logging.getLogger(__name__)

DTYPE_BYTES = {
    "float32": 4, "float": 4, "float16": 2, "half": 2, "bfloat16": 2, "float64": 8,
    "double": 8, "int8": 1, "uint8": 1, "int16": 2, "int32": 4, "int64": 8,
}
ON_UNKNOWN = ("raise", "list")
ACTIVATION_STATS = ("peak", "total")
FLOPS_COUNTS = ("flops", "macs")


def dtype_bytes(dtype):
    """Bytes per element of ``dtype`` (a name from :data:`DTYPE_BYTES`).

    Raises:
        ValueError: unknown dtype name.
    """
    try:
        return DTYPE_BYTES[dtype]
    except (KeyError, TypeError):
        raise ValueError(f"dtype must be one of {tuple(DTYPE_BYTES)}, got {dtype!r}") from None


def _check_batch_size(batch_size):
    if batch_size is None:
        return None
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise ValueError(f"batch_size must be None or an integer >= 1, got {batch_size!r}")
    return batch_size


def _numel(shape):
    return int(np.prod(shape, dtype=np.int64)) if len(shape) else 1


def _is_module(obj):
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
    if not _is_module(graph_or_module) or not callable(getattr(graph_or_module, "call", None)):
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


# ----------------------------------------------------------------------------- parameters

def _graph_parameters(output):
    """Leaf inputs of the graph that need_grad or are registered nnabla parameters."""
    registered = set(nn.get_parameters(grad_only=False).values())
    seen, params = set(), []
    for f in functions_of(output):
        for v in f.inputs:
            if v.parent is None and v not in seen and (v.need_grad or v in registered):
                seen.add(v)
                params.append(v)
    return params


def _module_parameters(module, active_only):
    params = module.get_parameters(grad_only=False)
    inactive = []
    if active_only:
        if not callable(getattr(module, "get_modules", None)):
            raise TypeError(f"active_only=True needs module.get_modules(); "
                            f"{type(module).__name__} has none (pass active_only=False)")
        inactive = [prefix for prefix, m in module.get_modules()
                    if not getattr(m, "is_active", True)]
    if "" in inactive:  # the root itself is inactive: none of its parameters is used
        return []
    seen, kept = set(), []
    for key, v in params.items():
        if any(key == p or key.startswith(p + "/") for p in inactive):
            continue
        if v not in seen:
            seen.add(v)
            kept.append(v)
    return kept


def parameters_of(graph_or_module, active_only=True):
    """The parameter Variables of a graph or module, each once.

    For a graph (its output Variable): leaf variables that need_grad or are registered in
    nnabla's current parameter scope (so batch-norm running mean/var count too). For a
    module: ``get_parameters()``; with ``active_only`` the parameters of modules whose
    ``is_active`` is False (and of their sub-modules) are left out (``active_only`` is
    ignored for graphs: a graph only contains what was used).
    """
    if isinstance(graph_or_module, nn.Variable):
        return _graph_parameters(graph_or_module)
    if _is_module(graph_or_module):
        return _module_parameters(graph_or_module, active_only)
    raise TypeError("expected an nnabla.Variable (a graph output) or a module with "
                    f"get_parameters(), got {type(graph_or_module).__name__}")


def parameter_count(graph_or_module, active_only=True):
    """Number of parameter elements (an ``int``); see :func:`parameters_of`."""
    return sum(_numel(v.shape) for v in parameters_of(graph_or_module, active_only))


def parameter_bytes(graph_or_module, dtype="float32", active_only=True):
    """Parameter memory in bytes (an ``int``): :func:`parameter_count` x bytes per element."""
    return parameter_count(graph_or_module, active_only) * dtype_bytes(dtype)


# ------------------------------------------------------------------------- activations

@dataclass(frozen=True)
class BufferStep:
    """One function of the forward pass in :func:`activation_memory`.

    Attributes:
        index: position in topological order.
        type_name: nnabla function type, e.g. ``Convolution``.
        new_bytes: bytes this function allocated (0 when in-place).
        live_bytes: bytes alive while it ran (its inputs still needed plus its outputs).
        inplace: whether its output reuses an input's buffer.
    """

    index: int
    type_name: str
    new_bytes: int
    live_bytes: int
    inplace: bool


@dataclass(frozen=True)
class ActivationMemory:
    """Activation memory of a forward pass, in bytes.

    Attributes:
        total_bytes: all intermediate buffers (function outputs) added up, an in-place
            output counted once with the buffer it reuses.
        peak_bytes: the most bytes alive at once when the functions run in topological
            order and each buffer is freed right after its last consumer ran.
        per_function: one :class:`BufferStep` per function.
        batch_size: the batch size the figures are for.
    """

    total_bytes: int
    peak_bytes: int
    per_function: Tuple[BufferStep, ...]
    batch_size: Optional[int]


def _inplace_source(f):
    """Index of the input whose buffer ``f``'s output reuses, or ``None``."""
    if f.info.args.get("inplace", False):
        return 0
    for i in range(len(f.inputs)):
        if f.inplace_data(i):  # Function.INPLACE_NOT_MODIFY (1) or Function.INPLACE (2)
            return i
    return None


def activation_memory(output, batch_size=None, dtype="float32"):
    """Total and peak activation memory of the forward pass of ``output``'s graph.

    Model:
        * Buffers are the outputs of all functions. Graph inputs and parameters are *not*
          counted (see :func:`parameter_bytes` for the latter); the graph's output is kept
          alive to the end.
        * Functions run in topological order (:func:`nas_hw.graph_utils.functions_of`); while
          a function runs its inputs and outputs are alive; a buffer is freed right after
          its last consumer ran.
        * An in-place function (``inplace=True`` among its args, e.g.
          ``F.relu(x, inplace=True)``, or one whose ``inplace_data(i)`` is non-zero, e.g.
          ``F.reshape``) writes into its input's buffer and allocates nothing; the shared
          buffer lives until the last consumer of any variable using it. This models the
          in-place request as written, even where nnabla 1.39 ignores the flag at run time
          (ReLU, Add2).
        * ``batch_size``: the graph may be built at any batch size B; every buffer's first
          axis is taken to be the batch axis and replaced by ``batch_size`` (0-d buffers are
          left as they are). This is wrong for a graph that mixes the batch axis into
          another axis (a reshape to ``(1, -1)``): build such a graph at the batch size
          wanted and pass ``batch_size=None`` (the shapes as built).

    Args:
        output: the graph's output ``nnabla.Variable``.
        batch_size: batch size of the estimate, or ``None`` for the shapes as built.
        dtype: element type of the buffers (a name from :data:`DTYPE_BYTES`).

    Returns:
        ActivationMemory (bytes).
    """
    if not isinstance(output, nn.Variable):
        raise TypeError(f"output must be an nnabla.Variable, got {type(output).__name__}")
    batch_size = _check_batch_size(batch_size)
    itemsize = dtype_bytes(dtype)

    def nbytes(shape):
        if batch_size is not None and len(shape):
            shape = (batch_size,) + tuple(shape[1:])
        return _numel(shape) * itemsize

    funcs = functions_of(output)
    buffer_of = {}      # variable -> buffer id (Variables hash by the graph node they wrap)
    size = {}           # buffer id -> bytes
    last_use = {}       # buffer id -> index of the last function reading it
    created = [[] for _ in funcs]
    inplace_flags = []
    for i, f in enumerate(funcs):
        for v in f.inputs:
            b = buffer_of.get(v)
            if b is not None:
                last_use[b] = i
        src = _inplace_source(f)
        inplace_flags.append(src is not None)
        for k, v in enumerate(f.outputs):
            if k == 0 and src is not None:
                shared = buffer_of.get(f.inputs[src])
                if shared is None:  # in-place on a graph input: no new intermediate buffer
                    buffer_of[v] = None
                    continue
                buffer_of[v] = shared
                size[shared] = max(size[shared], nbytes(v.shape))
                last_use[shared] = max(last_use[shared], i)
                continue
            b = len(size)
            buffer_of[v] = b
            size[b] = nbytes(v.shape)
            last_use[b] = i
            created[i].append(b)
    out_buffer = buffer_of.get(output)
    if out_buffer is not None:
        last_use[out_buffer] = len(funcs)
    freed_after = [[] for _ in funcs]
    for b, i in last_use.items():
        if i < len(funcs):
            freed_after[i].append(b)

    live = peak = 0
    steps = []
    for i, f in enumerate(funcs):
        new = sum(size[b] for b in created[i])
        live += new
        peak = max(peak, live)
        steps.append(BufferStep(i, f.info.type_name, new, live, inplace_flags[i]))
        live -= sum(size[b] for b in freed_after[i])
    return ActivationMemory(total_bytes=sum(size.values()), peak_bytes=peak,
                            per_function=tuple(steps), batch_size=batch_size)


# ------------------------------------------------------------------------------- FLOPs

def _out(f):
    return _numel(f.outputs[0].shape)


def _in(f):
    return _numel(f.inputs[0].shape)


def _bias(f):
    return _out(f) if len(f.inputs) > 2 else 0


def _conv(f):
    # every output element is a dot product over the weight's non-output axes
    # (C/group x kernel for Convolution, kernel for DepthwiseConvolution)
    macs = _out(f) * _numel(f.inputs[1].shape[1:])
    return macs, 2 * macs + _bias(f)


def _affine(f):
    macs = _out(f) * f.inputs[1].shape[0]  # W is (inputs, *outputs)
    return macs, 2 * macs + _bias(f)


def _batch_norm(f):
    # inference form folded to y = x * scale + shift: one multiply-add per element
    return _in(f), 2 * _in(f)


def _per_output(n):
    return lambda f: (0, n * _out(f))


def _add_n(f):
    return 0, (len(f.inputs) - 1) * _out(f)


def _sum(f):
    return 0, _in(f) - _out(f)


def _mean(f):
    return 0, _in(f)  # adds, then one division per output element


def _window(f):
    return _numel(f.info.args["kernel"])


def _max_pool(f):
    return 0, _out(f) * (_window(f) - 1)  # comparisons


def _avg_pool(f):
    return 0, _out(f) * _window(f)  # window-1 adds and one division


def _global_avg_pool(f):
    return 0, _in(f)


def _softmax(f):
    return 0, 5 * _in(f)  # max, subtract, exp, sum, divide per element


def _data_movement(f):
    return 0, 0


#: Data-movement functions: 0 FLOPs, listed in :attr:`FlopsResult.data_movement`.
DATA_MOVEMENT = ("Concatenate", "Reshape", "Stack", "Slice", "Split", "Transpose",
                 "Identity", "Broadcast")

#: nnabla function type -> ``fn(function) -> (macs, flops)``. Per-element FLOPs of the
#: point-wise functions are nominal (one per arithmetic operation, exp counted as one).
FLOPS_TABLE: Dict[str, Callable] = {
    "Convolution": _conv,
    "DepthwiseConvolution": _conv,
    "Affine": _affine,
    "BatchNormalization": _batch_norm,
    "ReLU": _per_output(1),
    "ReLU6": _per_output(2),
    "LeakyReLU": _per_output(2),
    "Sigmoid": _per_output(4),
    "Tanh": _per_output(5),
    "Swish": _per_output(5),
    "HardSigmoid": _per_output(4),
    "HardSwish": _per_output(5),
    "HardTanh": _per_output(2),
    "Add2": _per_output(1),
    "Sub2": _per_output(1),
    "Mul2": _per_output(1),
    "Div2": _per_output(1),
    "AddScalar": _per_output(1),
    "MulScalar": _per_output(1),
    "AddN": _add_n,
    "Sum": _sum,
    "Mean": _mean,
    "MaxPooling": _max_pool,
    "AveragePooling": _avg_pool,
    "GlobalAveragePooling": _global_avg_pool,
    "Softmax": _softmax,
    **{name: _data_movement for name in DATA_MOVEMENT},
}


@dataclass(frozen=True)
class FunctionFlops:
    """One function's compute. ``macs``/``flops`` are ``None`` for an unknown function."""

    index: int
    type_name: str
    macs: Optional[int]
    flops: Optional[int]
    kind: str  # 'compute', 'data_movement' or 'unknown'


@dataclass(frozen=True)
class FlopsResult:
    """Compute of a graph's forward pass at the batch size it was built with.

    Attributes:
        macs, flops: totals over the known functions (1 MAC = 2 FLOPs).
        per_function: one :class:`FunctionFlops` per function, in topological order.
        data_movement: type names of the 0-FLOP data-movement functions met.
        unknown: type names of functions with no FLOPs formula (only with
            ``on_unknown='list'``); when non-empty the totals leave them out.
    """

    macs: int
    flops: int
    per_function: Tuple[FunctionFlops, ...]
    data_movement: Tuple[str, ...] = ()
    unknown: Tuple[str, ...] = ()

    @property
    def complete(self):
        """True when every function had a formula."""
        return not self.unknown


def count_flops(output, on_unknown="raise"):
    """MACs and FLOPs of the forward pass of ``output``'s graph (see :data:`FLOPS_TABLE`).

    Args:
        output: the graph's output ``nnabla.Variable`` (FLOPs are for its built batch size).
        on_unknown: ``'raise'``: a function with no formula raises ``ValueError``;
            ``'list'``: it is recorded in :attr:`FlopsResult.unknown` and left out of totals.

    Raises:
        ValueError: an unsupported function with ``on_unknown='raise'``, or a bad option.
    """
    if on_unknown not in ON_UNKNOWN:
        raise ValueError(f"on_unknown must be one of {ON_UNKNOWN}, got {on_unknown!r}")
    if not isinstance(output, nn.Variable):
        raise TypeError(f"output must be an nnabla.Variable, got {type(output).__name__}")
    rows, moves, unknown = [], [], []
    for i, f in enumerate(functions_of(output)):
        name = f.info.type_name
        fn = FLOPS_TABLE.get(name)
        if fn is None:
            if on_unknown == "raise":
                raise ValueError(f"unsupported function {name} for FLOPs; supported: "
                                 f"{', '.join(sorted(FLOPS_TABLE))}")
            logger.warning("no FLOPs formula for %s (function %d); left out of the totals", name, i)
            unknown.append(name)
            rows.append(FunctionFlops(i, name, None, None, "unknown"))
            continue
        macs, flops = fn(f)
        kind = "data_movement" if name in DATA_MOVEMENT else "compute"
        if kind == "data_movement":
            moves.append(name)
        rows.append(FunctionFlops(i, name, int(macs), int(flops), kind))
    known = [r for r in rows if r.kind != "unknown"]
    return FlopsResult(macs=sum(r.macs for r in known), flops=sum(r.flops for r in known),
                       per_function=tuple(rows), data_movement=tuple(moves),
                       unknown=tuple(unknown))


# -------------------------------------------------------------------------- estimators

@dataclass(frozen=True)
class ParameterMemoryEstimator:
    """Parameter memory in bytes: ``get_estimation(graph_or_module) -> int``."""

    unit: ClassVar[str] = "bytes"
    dtype: str = "float32"
    active_only: bool = True

    def __post_init__(self):
        dtype_bytes(self.dtype)
        if not isinstance(self.active_only, bool):
            raise TypeError(f"active_only must be True or False, got {self.active_only!r}")

    def get_estimation(self, graph_or_module):
        return parameter_bytes(graph_or_module, self.dtype, self.active_only)


@dataclass(frozen=True)
class ActivationMemoryEstimator:
    """Activation memory in bytes (``stat``: ``'peak'`` or ``'total'``) at ``batch_size``
    (``None``: as built): ``get_estimation(graph_or_module) -> int``."""

    unit: ClassVar[str] = "bytes"
    stat: str = "peak"
    batch_size: Optional[int] = None
    dtype: str = "float32"

    def __post_init__(self):
        if self.stat not in ACTIVATION_STATS:
            raise ValueError(f"stat must be one of {ACTIVATION_STATS}, got {self.stat!r}")
        _check_batch_size(self.batch_size)
        dtype_bytes(self.dtype)

    def get_estimation(self, graph_or_module):
        mem = activation_memory(as_graph(graph_or_module), self.batch_size, self.dtype)
        return mem.peak_bytes if self.stat == "peak" else mem.total_bytes


@dataclass(frozen=True)
class FlopsEstimator:
    """FLOPs (or MACs with ``count='macs'``) of a forward pass at the built batch size:
    ``get_estimation(graph_or_module) -> int``. An unsupported function raises
    ``ValueError``; use :func:`count_flops` with ``on_unknown='list'`` to inspect."""

    unit: ClassVar[str] = "FLOPs"
    count: str = "flops"

    def __post_init__(self):
        if self.count not in FLOPS_COUNTS:
            raise ValueError(f"count must be one of {FLOPS_COUNTS}, got {self.count!r}")

    def get_estimation(self, graph_or_module):
        result = count_flops(as_graph(graph_or_module), on_unknown="raise")
        return result.flops if self.count == "flops" else result.macs
