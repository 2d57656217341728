"""Activation memory: bytes of the buffers a forward pass allocates, total and at the peak.

Nothing is run; every figure is computed from shapes, so it is exact for the graph as built
and identical on every device.
"""
from dataclasses import dataclass
from typing import Optional, Tuple

import nnabla as nn

from ..checks import check_batch_size, check_one_of, dtype_bytes
from ..measure.graph import as_graph, functions_of, numel
from .base import Estimator

ACTIVATION_STATS = ("peak", "total")


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
        * Functions run in topological order (:func:`nas_hw.measure.graph.functions_of`); while
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
    batch_size = check_batch_size(batch_size, allow_none=True)
    itemsize = dtype_bytes(dtype)

    def nbytes(shape):
        if batch_size is not None and len(shape):
            shape = (batch_size,) + tuple(shape[1:])
        return numel(shape) * itemsize

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


class ActivationMemoryEstimator(Estimator):
    """Activation memory in bytes (``stat``: ``'peak'`` or ``'total'``) at ``batch_size``
    (``None``: as built): ``get_estimation(graph_or_module) -> int``."""

    unit = "bytes"

    def __init__(self, stat="peak", batch_size=None, dtype="float32"):
        self.stat = check_one_of("stat", stat, ACTIVATION_STATS)
        self.batch_size = check_batch_size(batch_size, allow_none=True)
        dtype_bytes(dtype)
        self.dtype = dtype

    def get_estimation(self, graph_or_module):
        mem = activation_memory(as_graph(graph_or_module), self.batch_size, self.dtype)
        return mem.peak_bytes if self.stat == "peak" else mem.total_bytes
