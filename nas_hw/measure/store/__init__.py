"""The persistent store of measurements, keyed by device fingerprint and signature.

Modules: ``rows`` (a row, :class:`Record`, and the one validation every row passes), ``io``
(export / import files), ``quality`` (row quality per fingerprint), ``lock`` (the measuring
lock), ``sqlite`` (the SQLite store, :class:`LatencyCache`), ``opening``, ``schema`` and
``migrate`` (how its files are recognised and opened, their format, the schema-1 conversion).

The store interface: what every store backend offers (the SQLite one today; a server store
implements the same methods, with rows validated by ``rows.check_row`` and files read and
written by ``io``, so no check is written twice):

- ``__init__(location, timeout_s=60.0, readonly=False)``; attributes ``path`` (where it is, for
  messages), ``readonly``, ``timeout_s``, the counters ``hits``, ``misses``, ``measurements``;
  ``close()``, context manager; ``reset_counters()``; ``forget()`` (drop the in-process view).
- ``peek(fingerprint, signature)`` / ``get(...)`` (counts a hit or miss): a validated
  :class:`Record` or ``None``; a row that fails validation raises ``CacheError`` naming it.
- ``put(fingerprint, signature, stats, settings=None, noop=False, fingerprint_info=None,
  replace=False)``: first write wins unless ``replace``; invalid values raise ``CacheError``.
- ``get_or_measure(fingerprint, signature, measure_fn, settings=None, fingerprint_info=None)``
  and ``measuring_lock()``: one process measures a missing row; the wait is bounded by
  ``timeout_s`` and names the holder.
- ``records(fingerprint=None, disturbed=None)``, ``__len__()``, ``summary()`` (per fingerprint,
  with quality: ``quality.summarize``), ``fingerprint_info()``.
- ``clear(fingerprint=None, signature=None)``, ``export(path, fingerprint=None)``,
  ``import_(path, overwrite=False)``: all-or-nothing, through ``io.ExportFile``.
- ``put_blob(fingerprint, kind, name, payload)``, ``get_blob(...)``, ``blob_fingerprints(kind, name)``:
  small JSON documents (candidate tables, calibrations).
"""
import os

from .rows import Record, noop_stats
from .sqlite import MEMORY, SCHEMA_VERSION, LatencyCache, default_cache_path


def open_cache(cache, readonly=False):
    """A :class:`LatencyCache` from an instance, a path, ``":memory:"`` or ``None`` (default path);
    a path is opened read-only with ``readonly`` (an instance is used as it is)."""
    if isinstance(cache, LatencyCache):
        return cache
    if cache is None or isinstance(cache, (str, os.PathLike)):
        return LatencyCache(cache, readonly=readonly)
    raise TypeError(f"cache must be a LatencyCache, a path, ':memory:' or None, got {type(cache).__name__}")


__all__ = ["LatencyCache", "Record", "noop_stats", "open_cache", "default_cache_path", "MEMORY",
           "SCHEMA_VERSION"]
