"""One cached measurement (a row) and the one validation every row passes.

Times are in seconds. :func:`check_row` is the single gate: rows measured here (``put``), rows
imported from a file (JSON values or CSV text) and rows read back from any store all pass it,
so a value the store refuses can never come in through another door, and a row tampered with
outside nas_hw is named on read instead of being turned into a number. Nothing here knows
which database holds the rows: a second store backend uses the same checks.
"""
import json
import math
import numbers
import re
import time
from dataclasses import dataclass, field
from typing import Dict

from ...constants import (MAX_FINGERPRINT_CHARS, MAX_FUTURE_S, MAX_LOAD, MAX_PEERS, MAX_RUNS,
                          MAX_SETTINGS_BYTES, MAX_SIGNATURE_CHARS, MAX_SPREAD, MAX_TIMING_S,
                          OLDEST_ROW_TIME_S)
from ..timing import TimingStats

STAT_FIELDS = ("mean_s", "median_s", "std_s", "min_s")
#: What judging a row needs (issue 13): the robust value served, the runs' relative spread, the
#: rounds they were taken in, the 1-min load average, other measuring processes, the verdict.
QUALITY_FIELDS = ("value_s", "spread", "n_rounds", "load1", "peers", "disturbed")
#: Every stored column, in the order rows are stored, exported and read.
COLUMNS = (("fingerprint", "signature") + STAT_FIELDS + ("n_kept", "n_measured") + QUALITY_FIELDS
           + ("noop", "settings", "created"))
#: The columns of schema 1 (nas_hw before the quality fields); their rows read with unknown quality.
LEGACY_COLUMNS = ("fingerprint", "signature") + STAT_FIELDS + ("n_kept", "n_measured", "noop", "settings", "created")
#: Fields an imported row must give; the others default (quality unknown, no settings, now).
REQUIRED = ("fingerprint", "signature") + STAT_FIELDS + ("n_kept", "n_measured")
#: Where a row comes from: typed values (a measurement, a JSON file, a database) or CSV text.
SOURCES = ("put", "json", "csv", "read")

# kind, nullable, low, high
_SPEC = {
    "fingerprint": ("key", False, 1, MAX_FINGERPRINT_CHARS),
    "signature": ("key", False, 1, MAX_SIGNATURE_CHARS),
    **{f: ("real", False, 0.0, MAX_TIMING_S) for f in STAT_FIELDS},
    "n_kept": ("int", False, 1, MAX_RUNS),
    "n_measured": ("int", False, 1, MAX_RUNS),
    "value_s": ("real", True, 0.0, MAX_TIMING_S),
    "spread": ("real", True, 0.0, MAX_SPREAD),
    "n_rounds": ("int", False, 1, MAX_RUNS),
    "load1": ("real", True, 0.0, MAX_LOAD),
    "peers": ("int", True, 0, MAX_PEERS),
    "disturbed": ("flag", True, 0, 1),
    "noop": ("flag", False, 0, 1),
    "settings": ("json", False, 0, MAX_SETTINGS_BYTES),
    "created": ("time", False, OLDEST_ROW_TIME_S, None),
}
#: What a missing optional field becomes (``None``: unknown, stored as NULL).
_DEFAULTS = {"value_s": None, "spread": None, "n_rounds": 1, "load1": None, "peers": None,
             "disturbed": None, "noop": 0, "settings": "{}"}
_DECIMAL = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d{1,4})?")
_INTEGER = re.compile(r"[+-]?\d{1,18}")
_FLAGS = {"0": 0, "1": 1, "false": 0, "true": 1}
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_TOLERANCE = 1e-9  # relative: mean and median are computed sums, min is a sample


class _Bad(Exception):
    """Why one field's value is refused (turned into a :class:`RowError` naming the row)."""


class RowError(ValueError):
    """A row field that no store may hold; the message names the row and the field."""

    def __init__(self, where, field_name, value, problem):
        named = f"{field_name}={show(value)} " if field_name is not None else ""
        super().__init__(f"{where}: {named}{problem}")
        self.where, self.field = where, field_name


def show(value, limit=60):
    """A value as a short one-line repr (messages stay one line whatever a file holds)."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def row_name(fingerprint, signature):
    """How a stored row is named in messages."""
    return f"row (fingerprint={show(fingerprint, 80)}, signature={show(signature, 120)})"


def _number(v, source, integer):
    """``v`` as an int / float (bools and text are not numbers; CSV text must be plain decimal)."""
    if source == "csv":
        text = v.strip(" ") if isinstance(v, str) else v
        if not isinstance(text, str) or not (_INTEGER if integer else _DECIMAL).fullmatch(text):
            raise _Bad("is not " + ("an integer" if integer else "a decimal number"))
        return int(text) if integer else float(text)
    if isinstance(v, bool):
        raise _Bad("is a boolean, not a number")
    if integer and not isinstance(v, numbers.Integral):
        raise _Bad(f"is {type(v).__name__}, not an integer")
    if not isinstance(v, numbers.Real):
        raise _Bad(f"is {type(v).__name__}, not a number")
    return int(v) if integer else float(v)


def _check_field(name, v, source, now):
    kind, _, low, high = _SPEC[name]
    if kind == "key":
        if not isinstance(v, str):
            raise _Bad(f"is {type(v).__name__}, not text")
        if not low <= len(v) <= high:
            raise _Bad(f"must hold {low} to {high} characters (has {len(v)})")
        if _CONTROL.search(v):
            raise _Bad("holds control characters (NUL, newline...)")
        try:
            v.encode("utf-8")
        except UnicodeEncodeError:
            raise _Bad("is not valid Unicode text") from None
        return v
    if kind == "flag":
        if source == "csv":
            got = _FLAGS.get(v.strip(" ").lower()) if isinstance(v, str) else None
        elif isinstance(v, bool) or (isinstance(v, numbers.Integral) and v in (0, 1)):
            got = int(v)
        else:
            got = None
        if got is None:
            raise _Bad("must be 0 or 1 (true or false)")
        return got
    if kind == "json":
        return _settings(v)
    got = _number(v, source, integer=kind == "int")
    if not math.isfinite(got):
        raise _Bad("is not finite")
    if kind == "time":
        if got < low:
            raise _Bad("is before 2000-01-01 (not a plausible measurement time)")
        if source != "read" and got > now + MAX_FUTURE_S:
            raise _Bad("is more than a day in the future")
        return got
    if not low <= got <= high:
        unit = " seconds" if name.endswith("_s") else ""
        raise _Bad(f"must be in [{low:g}, {high:g}]{unit}")
    return got


def _settings(v):
    if isinstance(v, str):
        if len(v.encode("utf-8", "surrogatepass")) > MAX_SETTINGS_BYTES:
            raise _Bad(f"is over {MAX_SETTINGS_BYTES} bytes")
        try:
            v = json.loads(v)
        except RecursionError:
            raise _Bad("is nested too deeply") from None
        except ValueError:
            raise _Bad("is not JSON") from None
    if not isinstance(v, dict):
        raise _Bad(f"must be a JSON object, got {type(v).__name__}")
    try:
        text = json.dumps(v, sort_keys=True, allow_nan=False)
    except RecursionError:
        raise _Bad("is nested too deeply") from None
    except (TypeError, ValueError):
        raise _Bad("holds values JSON cannot carry (NaN, infinity, objects)") from None
    if len(text.encode("utf-8", "surrogatepass")) > MAX_SETTINGS_BYTES:
        raise _Bad(f"is over {MAX_SETTINGS_BYTES} bytes")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise _Bad("is not valid Unicode text") from None
    return text


def check_row(values, where, source, now=None):
    """Validates one row; returns its values as a tuple in :data:`COLUMNS` order.

    Args:
        values: a mapping of column names (a subset of :data:`COLUMNS`; missing optional fields
            get their defaults: quality unknown, ``n_rounds`` 1, no settings, ``created`` now).
        where: how the row is named in messages (``"row 3"``, :func:`row_name`).
        source: one of :data:`SOURCES`: ``"csv"`` values are text; the others are typed
            (text is never read as a number, nor a boolean as one). Rows read back from a store
            (``"read"``) are not held to the future-time bound (a clock may have moved back).

    Raises:
        RowError: a field is missing, of the wrong type, not finite, out of range, or the
            statistics contradict each other (``min > median``...).
    """
    if source not in SOURCES:
        raise ValueError(f"source must be one of {SOURCES}, got {source!r}")
    now = time.time() if now is None else now
    unknown = [k for k in values if k not in _SPEC]
    if unknown:
        raise RowError(where, str(unknown[0])[:60], values[unknown[0]], f"is not a field (fields: {', '.join(COLUMNS)})")
    out = {}
    for name in COLUMNS:
        v = values.get(name)
        if v is None or (source == "csv" and v == ""):
            if name in REQUIRED or (source == "read" and not _SPEC[name][1]):
                raise RowError(where, name, v, "is missing")
            out[name] = now if name == "created" else _DEFAULTS[name]
            continue
        try:
            out[name] = _check_field(name, v, source, now)
        except _Bad as bad:
            raise RowError(where, name, v, str(bad)) from None
    _check_order(out, where)
    return tuple(out[c] for c in COLUMNS)


def check_key(name, value, where):
    """A fingerprint or signature checked alone (e.g. a key of an export's fingerprint table)."""
    try:
        return _check_field(name, value, "json", 0.0)
    except _Bad as bad:
        raise RowError(where, name, value, str(bad)) from None


def check_info(info, where):
    """A fingerprint's description (a JSON object of bounded size); returns its JSON text."""
    try:
        return _settings(info)
    except _Bad as bad:
        raise RowError(where, "description", info, str(bad)) from None


def _check_order(r, where):
    if r["n_kept"] > r["n_measured"]:
        raise RowError(where, "n_kept", r["n_kept"], f"is more than n_measured={r['n_measured']}")
    for other in ("median_s", "mean_s"):
        if r["min_s"] > r[other] * (1 + _TOLERANCE):
            raise RowError(where, "min_s", r["min_s"], f"is more than {other}={r[other]!r}")


@dataclass(frozen=True)
class Record:
    """One cached measurement. Times in seconds; ``noop`` marks a layer that runs no function.

    ``stats`` carries the quality fields; in a row migrated from schema 1 they are unknown
    (``value``, ``spread``, ``load1``, ``peers`` and ``disturbed`` are ``None``).
    """

    fingerprint: str
    signature: str
    stats: TimingStats
    settings: Dict = field(default_factory=dict)
    created: float = 0.0
    noop: bool = False

    def latency(self, time_scale="m", stat="mean"):
        """The latency as a float in ``time_scale`` units."""
        return self.stats.to(time_scale, stat)

    @property
    def disturbed(self):
        """``True`` / ``False``, or ``None`` when unknown (a row from before quality was kept)."""
        return self.stats.disturbed

    def as_row(self):
        """The row as a dict of :data:`COLUMNS` (settings as JSON text); not validated."""
        s = self.stats
        return {"fingerprint": self.fingerprint, "signature": self.signature,
                "mean_s": s.mean, "median_s": s.median, "std_s": s.std, "min_s": s.min,
                "n_kept": s.n_kept, "n_measured": s.n_measured, "value_s": s.value, "spread": s.spread,
                "n_rounds": s.n_rounds, "load1": s.load1, "peers": s.peers,
                "disturbed": None if s.disturbed is None else int(bool(s.disturbed)),
                "noop": int(bool(self.noop)), "settings": json.dumps(self.settings, sort_keys=True),
                "created": self.created}


def noop_stats():
    """Statistics of a layer that runs no function at all (an identity): exactly zero time."""
    return TimingStats(0.0, 0.0, 0.0, 0.0, 1, 1)


def record_from_values(values):
    """A :class:`Record` from a validated tuple in :data:`COLUMNS` order."""
    r = dict(zip(COLUMNS, values))
    stats = TimingStats(r["mean_s"], r["median_s"], r["std_s"], r["min_s"], r["n_kept"], r["n_measured"],
                        value=r["value_s"], spread=r["spread"], n_rounds=r["n_rounds"], load1=r["load1"],
                        peers=r["peers"], disturbed=None if r["disturbed"] is None else bool(r["disturbed"]))
    return Record(r["fingerprint"], r["signature"], stats, json.loads(r["settings"]), r["created"], bool(r["noop"]))


def read_record(values):
    """Validates a row read back from a store (a tuple in :data:`COLUMNS` order) and returns its
    :class:`Record`.

    Raises:
        RowError: the row was changed outside nas_hw (text, infinity, out of range...); the
            message names it by fingerprint and signature, and the field.
    """
    raw = dict(zip(COLUMNS, values))
    return record_from_values(check_row(raw, row_name(raw.get("fingerprint"), raw.get("signature")), "read"))


def stats_row(fingerprint, signature, stats, settings, noop, created):
    """The validated row tuple of a new measurement (``put``)."""
    rec = Record(fingerprint, signature, stats, settings, created, noop)
    try:
        row = rec.as_row()
    except (TypeError, ValueError, RecursionError) as err:
        raise RowError(row_name(fingerprint, signature), "settings", settings, f"is not JSON: {err}") from None
    return check_row(row, row_name(fingerprint, signature), "put", now=created)
