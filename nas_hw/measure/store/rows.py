"""One cached measurement (a row) and the validation every row passes before it is stored.

Times are in seconds. The same validation serves rows measured here, rows imported from a
file and rows read back from any store.
"""
import json
import math
import time
from dataclasses import dataclass, field
from typing import Dict

from ..timing import TimingStats

STAT_FIELDS = ("mean_s", "median_s", "std_s", "min_s")
COLUMNS = ("fingerprint", "signature") + STAT_FIELDS + ("n_kept", "n_measured", "noop", "settings", "created")


@dataclass(frozen=True)
class Record:
    """One cached measurement. Times in seconds; ``noop`` marks a layer that runs no function."""

    fingerprint: str
    signature: str
    stats: TimingStats
    settings: Dict = field(default_factory=dict)
    created: float = 0.0
    noop: bool = False

    def latency(self, time_scale="m", stat="mean"):
        """The latency as a float in ``time_scale`` units."""
        return self.stats.to(time_scale, stat)

    def as_row(self):
        s = self.stats
        return {"fingerprint": self.fingerprint, "signature": self.signature,
                "mean_s": s.mean, "median_s": s.median, "std_s": s.std, "min_s": s.min,
                "n_kept": s.n_kept, "n_measured": s.n_measured, "noop": int(self.noop),
                "settings": json.dumps(self.settings, sort_keys=True), "created": self.created}


def noop_stats():
    """Statistics of a layer that runs no function at all (an identity): exactly zero time."""
    return TimingStats(0.0, 0.0, 0.0, 0.0, 1, 1)


def record_from_row(row):
    fp, sig, mean, median, std, mn, n_kept, n_measured, noop, settings, created = row
    return Record(fp, sig, TimingStats(mean, median, std, mn, n_kept, n_measured),
                  json.loads(settings), created, bool(noop))


def row_from_mapping(row, where):
    """Validates one imported row; returns the tuple to insert or raises ``ValueError``."""
    missing = [c for c in COLUMNS if c not in row or row[c] in (None, "")]
    missing = [c for c in missing if c not in ("noop", "settings", "created")]
    if missing:
        raise ValueError(f"{where}: missing field(s) {missing}")
    out = [str(row["fingerprint"]), str(row["signature"])]
    for c in STAT_FIELDS:
        try:
            v = float(row[c])
        except (TypeError, ValueError):
            raise ValueError(f"{where}: {c}={row[c]!r} is not a number") from None
        if not math.isfinite(v) or v < 0:
            raise ValueError(f"{where}: {c}={row[c]!r} must be a finite number >= 0")
        out.append(v)
    for c in ("n_kept", "n_measured"):
        try:
            v = int(row[c])
        except (TypeError, ValueError):
            raise ValueError(f"{where}: {c}={row[c]!r} is not an integer") from None
        if v < 1:
            raise ValueError(f"{where}: {c}={row[c]!r} must be >= 1")
        out.append(v)
    if out[-1] < out[-2]:
        raise ValueError(f"{where}: n_measured must be >= n_kept")
    noop = row.get("noop") or 0
    out.append(int(noop in (1, "1", True, "True", "true")))
    settings = row.get("settings") or "{}"
    if isinstance(settings, dict):
        settings = json.dumps(settings, sort_keys=True)
    try:
        json.loads(settings)
    except (TypeError, ValueError):
        raise ValueError(f"{where}: settings is not JSON: {settings!r}") from None
    out.append(settings)
    try:
        out.append(float(row.get("created") or time.time()))
    except (TypeError, ValueError):
        raise ValueError(f"{where}: created={row.get('created')!r} is not a number") from None
    return tuple(out)
