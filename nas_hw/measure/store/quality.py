"""How good the rows of a store are, per device fingerprint (what ``nas-hw cache ls`` shows).

Works on validated :class:`~nas_hw.measure.store.rows.Record` objects, whatever store they
came from.
"""
import statistics


def summarize(records):
    """One dict per fingerprint, sorted by fingerprint.

    Keys: ``fingerprint``, ``rows``, ``sum_mean_ms``, ``first`` / ``last`` (row times, epoch
    seconds), ``disturbed`` (rows flagged disturbed), ``unknown`` (rows whose verdict is unknown:
    migrated from schema 1), ``spread_median`` (median relative spread of the rows that know it,
    else ``None``), ``load_min`` / ``load_max`` (range of the 1-min load averages recorded, else
    ``None``).
    """
    groups = {}
    for rec in records:
        groups.setdefault(rec.fingerprint, []).append(rec)
    out = []
    for fp in sorted(groups):
        recs = groups[fp]
        spreads = [r.stats.spread for r in recs if r.stats.spread is not None]
        loads = [r.stats.load1 for r in recs if r.stats.load1 is not None]
        out.append({
            "fingerprint": fp, "rows": len(recs), "sum_mean_ms": sum(r.stats.mean for r in recs) * 1e3,
            "first": min(r.created for r in recs), "last": max(r.created for r in recs),
            "disturbed": sum(1 for r in recs if r.stats.disturbed),
            "unknown": sum(1 for r in recs if r.stats.disturbed is None),
            "spread_median": statistics.median(spreads) if spreads else None,
            "load_min": min(loads) if loads else None, "load_max": max(loads) if loads else None,
        })
    return out
