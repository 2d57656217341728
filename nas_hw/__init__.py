"""nas_hw: hardware-aware neural architecture search tools for nnabla / nnabla_nas."""
from .errors import (CacheError, ExtensionUnavailableError, MeasurementError,
                     MissingMeasurementsError, NasHwError, PowerUnavailableError)
from .estimators.network import Profiler

__version__ = "0.1.0"

__all__ = [
    "Profiler",
    "NasHwError", "MeasurementError", "CacheError", "ExtensionUnavailableError",
    "MissingMeasurementsError", "PowerUnavailableError",
]
