"""nas_hw: hardware-aware neural architecture search tools for nnabla / nnabla_nas."""
from .quiet_import import import_nnabla_quietly

import_nnabla_quietly()  # before anything imports nnabla: no "Initializing CPU extension..." line
from .nnabla_nas_compat import install_ofa_placeholder  # noqa: E402

install_ofa_placeholder()  # the PyPI wheel of nnabla-nas lacks one subpackage: see nnabla_nas_compat
from .errors import (CacheError, ExtensionUnavailableError, GraphNotBuiltError, MeasurementError,
                     MissingMeasurementsError, NasHwError, PowerUnavailableError)
from .estimators.graph import LatencyGraphEstimator
from .estimators.module import LatencyEstimator
from .estimators.network import Profiler
from .measure.store import LatencyCache
from .nas.penalty import LatencyPenalty, MemoryPenalty
from .nas.table import CandidateTable

__version__ = "0.1.0"

__all__ = [
    "Profiler", "LatencyGraphEstimator", "LatencyEstimator", "LatencyCache",
    "CandidateTable", "LatencyPenalty", "MemoryPenalty",
    "NasHwError", "MeasurementError", "CacheError", "ExtensionUnavailableError",
    "MissingMeasurementsError", "GraphNotBuiltError", "PowerUnavailableError",
]
