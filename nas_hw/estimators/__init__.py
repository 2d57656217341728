"""Estimators of what a network costs on a device."""
from .network import Profiler

__all__ = ["Profiler"]
