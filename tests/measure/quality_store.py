"""A stand-in for the schema-2 store while it is not on main (issue 16 adds it).

The schema-1 ``LatencyCache`` keeps only the first six statistics of a row, and its ``put`` has no
``replace``. :class:`QualityCache` keeps every :class:`TimingStats` field of the rows it stored (in
memory, next to the SQLite rows) and accepts ``put(..., replace=True)``, the interface the
schema-2 store offers. Tests of code that reads the quality fields back use it; once the schema-2
store is on main, they use ``LatencyCache`` itself and this file goes.
"""
import inspect
from dataclasses import replace

from nas_hw.measure.store import LatencyCache

#: True when the real store already keeps the quality fields and replaces rows.
NATIVE = "replace" in inspect.signature(LatencyCache.put).parameters


class QualityCache(LatencyCache):
    """``LatencyCache`` keeping the quality fields of the rows it stores (see the module docstring)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._quality = {}

    def _attach(self, rec):
        if rec is None:
            return None
        stats = self._quality.get((rec.fingerprint, rec.signature))
        return rec if stats is None else replace(rec, stats=stats)

    def put(self, fingerprint, signature, stats, settings=None, noop=False, fingerprint_info=None, replace=False):
        if NATIVE:
            return super().put(fingerprint, signature, stats, settings, noop, fingerprint_info, replace=replace)
        key = (fingerprint, signature)
        if replace:
            with self._thread_lock, self._transaction() as c:
                c.execute("DELETE FROM measurements WHERE fingerprint=? AND signature=?", key)
            self._memo.pop(key, None)
            self._quality.pop(key, None)
        if key not in self._quality and self.peek(fingerprint, signature) is None:
            self._quality[key] = stats
        return self._attach(super().put(fingerprint, signature, stats, settings, noop, fingerprint_info))

    def peek(self, fingerprint, signature):
        return self._attach(super().peek(fingerprint, signature))

    def records(self, fingerprint=None, *args, **kwargs):
        return [self._attach(r) for r in super().records(fingerprint, *args, **kwargs)]
