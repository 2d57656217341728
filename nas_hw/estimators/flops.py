"""FLOPs and MACs of a forward pass, from a formula per nnabla function type.

Compute is counted in **MACs** and **FLOPs**, with **1 MAC = 2 FLOPs** (one multiply plus one
add). Bias additions of Convolution / DepthwiseConvolution / Affine are counted as one FLOP
per output element and are *not* MACs. See :data:`FLOPS_TABLE` for every function. A
function with no formula raises (or is listed, never counted as 0 silently).
"""
import logging
from dataclasses import dataclass
from typing import Callable, Dict, Optional, Tuple

import nnabla as nn

from ..checks import check_one_of
from ..measure.graph import as_graph, functions_of, numel
from .base import Estimator

logger = logging.getLogger(__name__)

ON_UNKNOWN = ("raise", "list")
FLOPS_COUNTS = ("flops", "macs")


def _out(f):
    return numel(f.outputs[0].shape)


def _in(f):
    return numel(f.inputs[0].shape)


def _bias(f):
    return _out(f) if len(f.inputs) > 2 else 0


def _conv(f):
    # every output element is a dot product over the weight's non-output axes
    # (C/group x kernel for Convolution, kernel for DepthwiseConvolution)
    macs = _out(f) * numel(f.inputs[1].shape[1:])
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
    return numel(f.info.args["kernel"])


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
    check_one_of("on_unknown", on_unknown, ON_UNKNOWN)
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


class FlopsEstimator(Estimator):
    """FLOPs (or MACs with ``count='macs'``) of a forward pass at the built batch size:
    ``get_estimation(graph_or_module) -> int``. An unsupported function raises
    ``ValueError``; use :func:`count_flops` with ``on_unknown='list'`` to inspect."""

    unit = "FLOPs"

    def __init__(self, count="flops"):
        self.count = check_one_of("count", count, FLOPS_COUNTS)
        if count == "macs":
            self.unit = "MACs"

    def get_estimation(self, graph_or_module):
        result = count_flops(as_graph(graph_or_module), on_unknown="raise")
        return result.flops if self.count == "flops" else result.macs
