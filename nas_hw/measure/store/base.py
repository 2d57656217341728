"""What every store backend shares above its storage: the counters, the lookup that counts, the
measure-once path and export. A backend provides ``peek``, ``put``, ``measuring_lock``,
``records``, ``fingerprint_info``, ``forget``, ``close`` and ``_writable``."""
import math

from .io import write_export


def check_timeout(timeout_s, name="timeout_s"):
    """``timeout_s`` as a float, or ``ValueError`` naming it."""
    if (isinstance(timeout_s, bool) or not isinstance(timeout_s, (int, float))
            or not math.isfinite(timeout_s) or timeout_s <= 0):
        raise ValueError(f"{name} must be a positive number of seconds, got {timeout_s!r}")
    return float(timeout_s)


class StoreBase:
    """Counters and the store-independent operations.

    Attributes:
        hits, misses, measurements: counters of this object's lookups and of the measurements it
            stored (observable, e.g. to assert a warm store measures nothing).
    """

    hits = misses = measurements = 0

    def get(self, fingerprint, signature):
        """The stored :class:`~nas_hw.measure.store.rows.Record` or ``None``; counts a hit or a miss."""
        rec = self.peek(fingerprint, signature)
        if rec is None:
            self.misses += 1
        else:
            self.hits += 1
        return rec

    def get_or_measure(self, fingerprint, signature, measure_fn, settings=None, fingerprint_info=None):
        """The stored record, or measures it with ``measure_fn() -> (TimingStats, noop)`` under the
        store's measuring lock (re-checking first: another process may have just stored it)."""
        rec = self.get(fingerprint, signature)
        if rec is not None:
            return rec
        self._writable(f"measure {signature!r}")
        with self.measuring_lock(fingerprint):
            rec = self.peek(fingerprint, signature)
            if rec is not None:
                return rec
            stats, noop = measure_fn()
            self.measurements += 1
            return self.put(fingerprint, signature, stats, settings, noop, fingerprint_info)

    def reset_counters(self):
        self.hits = self.misses = self.measurements = 0

    def export(self, path, fingerprint=None):
        """Writes rows to ``path`` (``.csv`` or ``.json``, by extension); returns the row count."""
        from .sqlite import SCHEMA_VERSION

        info = {k: v for k, v in self.fingerprint_info().items() if fingerprint is None or k == fingerprint}
        return write_export(path, [r.as_row() for r in self.records(fingerprint)], info, SCHEMA_VERSION)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
