"""The persistent store of measurements, keyed by device fingerprint and signature.

Two backends share one interface: :class:`LatencyCache`, an SQLite file (the embedded default),
and :class:`~nas_hw.measure.store.postgres.PostgresStore`, a PostgreSQL server shared by a team
(the ``postgres`` extra). :func:`open_cache` picks one from a location: a file path or a
``postgresql://`` URL.
"""
import os

from .location import describe, is_server_url, redact
from .postgres import PostgresStore
from .rows import Record, noop_stats
from .sqlite import MEMORY, SCHEMA_VERSION, LatencyCache, default_cache_path


def open_cache(cache=None, readonly=False):
    """A store from an instance, a path, ``":memory:"``, a ``postgresql://`` URL or ``None``
    (``$NAS_HW_CACHE``, which may be a URL too, else the per-user file).

    ``readonly`` opens a server store that creates nothing and refuses writes (an instance is
    used as it is).
    """
    if isinstance(cache, (LatencyCache, PostgresStore)):
        return cache
    if cache is None:
        cache = default_cache_path()
    if is_server_url(cache):
        return PostgresStore(cache, readonly=readonly)
    if isinstance(cache, (str, os.PathLike)):
        return LatencyCache(cache)
    raise TypeError(f"cache must be a LatencyCache, a path, ':memory:', a postgresql:// URL or None, "
                    f"got {type(cache).__name__}")


__all__ = ["LatencyCache", "PostgresStore", "Record", "noop_stats", "open_cache", "default_cache_path", "MEMORY",
           "SCHEMA_VERSION", "is_server_url", "redact", "describe"]
