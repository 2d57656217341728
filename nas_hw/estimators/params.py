"""Parameter memory: bytes of the parameters a graph or a module holds.

Nothing is run; the figure is computed from shapes and a dtype (``float32`` = 4 bytes per
element), so it is exact and the same on every device.
"""
import nnabla as nn

from ..checks import check_bool, dtype_bytes
from ..measure.graph import functions_of, is_module, numel
from .base import Estimator


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
    if is_module(graph_or_module):
        return _module_parameters(graph_or_module, active_only)
    raise TypeError("expected an nnabla.Variable (a graph output) or a module with "
                    f"get_parameters(), got {type(graph_or_module).__name__}")


def parameter_count(graph_or_module, active_only=True):
    """Number of parameter elements (an ``int``); see :func:`parameters_of`."""
    return sum(numel(v.shape) for v in parameters_of(graph_or_module, active_only))


def parameter_bytes(graph_or_module, dtype="float32", active_only=True):
    """Parameter memory in bytes (an ``int``): :func:`parameter_count` x bytes per element."""
    return parameter_count(graph_or_module, active_only) * dtype_bytes(dtype)


class ParameterMemoryEstimator(Estimator):
    """Parameter memory in bytes: ``get_estimation(graph_or_module) -> int``.

    Args:
        dtype: element type of the parameters (a name from :data:`~nas_hw.constants.DTYPE_BYTES`).
        active_only: for a module, leave out the parameters of inactive modules.
    """

    unit = "bytes"

    def __init__(self, dtype="float32", active_only=True):
        dtype_bytes(dtype)
        self.dtype = dtype
        self.active_only = check_bool("active_only", active_only)

    def get_estimation(self, graph_or_module):
        return parameter_bytes(graph_or_module, self.dtype, self.active_only)
