"""Estimators of what a network costs on a device; each follows :class:`~nas_hw.estimators.base.Estimator`."""
from .activations import ActivationMemoryEstimator, activation_memory
from .base import Estimator
from .calibrated import CalibratedEstimator, Calibrator
from .calibration import Calibration, fit_calibration
from .flops import FlopsEstimator, count_flops
from .graph import LatencyGraphEstimator
from .incontext import InContextProfiler
from .layer import LayerEstimator
from .module import LatencyEstimator
from .network import Profiler
from .params import ParameterMemoryEstimator, parameter_bytes, parameter_count
from .power import PowerEstimator
from .throughput import ThroughputEstimator, measure_throughput

__all__ = [
    "Estimator", "LayerEstimator", "Profiler", "LatencyGraphEstimator", "LatencyEstimator",
    "InContextProfiler", "ParameterMemoryEstimator", "ActivationMemoryEstimator", "FlopsEstimator",
    "parameter_count", "parameter_bytes", "activation_memory", "count_flops",
    "ThroughputEstimator", "measure_throughput", "PowerEstimator",
    "Calibration", "fit_calibration", "Calibrator", "CalibratedEstimator",
]
