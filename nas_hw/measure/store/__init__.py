"""The persistent store of measurements, keyed by device fingerprint and signature."""
import os

from .rows import Record, noop_stats
from .sqlite import MEMORY, SCHEMA_VERSION, LatencyCache, default_cache_path


def open_cache(cache):
    """A :class:`LatencyCache` from an instance, a path, ``":memory:"`` or ``None`` (default path)."""
    if isinstance(cache, LatencyCache):
        return cache
    if cache is None or isinstance(cache, (str, os.PathLike)):
        return LatencyCache(cache)
    raise TypeError(f"cache must be a LatencyCache, a path, ':memory:' or None, got {type(cache).__name__}")


__all__ = ["LatencyCache", "Record", "noop_stats", "open_cache", "default_cache_path", "MEMORY",
           "SCHEMA_VERSION"]
