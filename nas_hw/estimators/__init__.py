"""Estimators of what a network costs on a device."""
from .graph import LatencyGraphEstimator
from .incontext import InContextProfiler
from .memory import (ActivationMemoryEstimator, FlopsEstimator, ParameterMemoryEstimator,
                     activation_memory, count_flops, parameter_bytes, parameter_count)
from .module import LatencyEstimator
from .network import Profiler
from .power import PowerEstimator
from .throughput import ThroughputEstimator, measure_throughput

__all__ = [
    "Profiler", "LatencyGraphEstimator", "LatencyEstimator", "InContextProfiler",
    "ParameterMemoryEstimator", "ActivationMemoryEstimator", "FlopsEstimator",
    "parameter_count", "parameter_bytes", "activation_memory", "count_flops",
    "ThroughputEstimator", "measure_throughput", "PowerEstimator",
]
