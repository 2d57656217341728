"""Estimators of what a network costs on a device."""
from .graph import LatencyGraphEstimator
from .module import LatencyEstimator
from .network import Profiler

__all__ = ["Profiler", "LatencyGraphEstimator", "LatencyEstimator"]
