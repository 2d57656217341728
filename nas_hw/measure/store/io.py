"""Export and import of cache rows as CSV or JSON files (the format is chosen by extension).

An export is written to a temporary file and moved into place, so a reader never sees half a
file. An import reads and validates every row before anything is stored.
"""
import csv
import json
import os

from ...errors import CacheError
from .rows import COLUMNS, row_from_mapping


def _format_of(path):
    ext = os.path.splitext(os.fspath(path))[1].lower()
    if ext not in (".csv", ".json"):
        raise CacheError(f"export/import format is chosen by extension: .csv or .json, got {path!r}")
    return ext[1:]


def write_export(path, rows, fingerprints, schema_version):
    """Writes ``rows`` (dicts of :data:`~nas_hw.measure.store.rows.COLUMNS`) to ``path``; returns
    their count. JSON files also carry the fingerprints' descriptions and the schema version."""
    fmt = _format_of(path)
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w", newline="") as fh:
        if fmt == "json":
            json.dump({"nas_hw_cache_schema": schema_version, "fingerprints": fingerprints,
                       "rows": rows}, fh, indent=1)
        else:
            writer = csv.DictWriter(fh, fieldnames=list(COLUMNS))
            writer.writeheader()
            writer.writerows(rows)
    os.replace(tmp, path)  # never a half-written export
    return len(rows)


def read_export(path):
    """Reads and validates every row of an export.

    Returns:
        ``(rows, fingerprints)``: the row tuples in :data:`COLUMNS` order and the fingerprints'
        descriptions (JSON only).

    Raises:
        CacheError: the file is missing or malformed (the message lists the bad rows).
    """
    fmt = _format_of(path)
    try:
        with open(path, newline="") as fh:
            if fmt == "json":
                doc = json.load(fh)
                if not isinstance(doc, dict) or not isinstance(doc.get("rows"), list):
                    raise CacheError(f"{path!r} is not a nas_hw cache export (expected a JSON object with 'rows')")
                raw, info = doc["rows"], doc.get("fingerprints") or {}
                if not isinstance(info, dict):
                    raise CacheError(f"{path!r}: 'fingerprints' must map a fingerprint to its "
                                     f"description, got {type(info).__name__}")
            else:
                reader = csv.DictReader(fh)
                if not reader.fieldnames or "signature" not in reader.fieldnames:
                    raise CacheError(f"{path!r} is not a nas_hw cache export (CSV header must hold {list(COLUMNS)})")
                raw, info = list(reader), {}
    except OSError as err:
        raise CacheError(f"cannot read {path!r}: {err}") from err
    except (ValueError, UnicodeDecodeError) as err:
        raise CacheError(f"{path!r} is not valid {fmt.upper()}: {err}") from err
    rows, errors = [], []
    for i, row in enumerate(raw, start=1):
        if not isinstance(row, dict):
            errors.append(f"row {i}: not an object")
            continue
        try:
            rows.append(row_from_mapping(row, f"row {i}"))
        except ValueError as err:
            errors.append(str(err))
    if errors:
        raise CacheError(f"{path!r}: {len(errors)} malformed row(s), nothing imported: " + "; ".join(errors[:5]))
    return rows, info
