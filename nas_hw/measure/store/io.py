"""Export and import of cache rows as CSV or JSON files (the format is chosen by extension).

An export is written through :func:`nas_hw.files.atomic_write`: a reader never sees half a
file, and a link at the destination is refused, never followed. An import is checked whole
before anything is stored: its size before it is parsed (JSON is parsed whole, CSV is streamed
line by line with a bounded line length), then every field of every row through
:func:`~nas_hw.measure.store.rows.check_row`. Whatever the file holds (deep nesting, huge
fields, NUL bytes, a byte-order mark, text that is not UTF-8, one endless line), the outcome
is the rows or one :class:`~nas_hw.errors.CacheError` line naming the row and the field.
Nothing here knows which store the rows go to.
"""
import codecs
import csv
import json
import os
import stat
import time

from ...constants import CACHE_SCHEMA_VERSION, MAX_IMPORT_CSV_BYTES, MAX_IMPORT_JSON_BYTES, MAX_IMPORT_LINE_BYTES
from ...errors import CacheError
from ...files import atomic_write
from .rows import COLUMNS, REQUIRED, RowError, check_info, check_key, check_row, show

__all__ = ["ExportFile", "write_export", "check_info"]
#: How many malformed rows an import refusal names (the count says how many there were).
SHOWN_ERRORS = 5
_JSON_KEYS = ("nas_hw_cache_schema", "fingerprints", "rows")


def _format_of(path):
    ext = os.path.splitext(os.fspath(path))[1].lower()
    if ext not in (".csv", ".json"):
        raise CacheError(f"export/import format is chosen by extension: .csv or .json, got {os.fspath(path)!r}")
    return ext[1:]


def write_export(path, rows, fingerprints, schema_version):
    """Writes ``rows`` (dicts of :data:`~nas_hw.measure.store.rows.COLUMNS`) to ``path``; returns
    their count. JSON files also carry the fingerprints' descriptions and the schema version.

    Raises:
        FileWriteError: the destination is a link or the write failed (nothing is left behind).
    """
    fmt = _format_of(path)
    with atomic_write(path, newline="") as fh:
        if fmt == "json":
            json.dump({"nas_hw_cache_schema": schema_version, "fingerprints": fingerprints, "rows": rows},
                      fh, indent=1, allow_nan=False)
        else:
            writer = csv.DictWriter(fh, fieldnames=list(COLUMNS))
            writer.writeheader()
            writer.writerows(rows)
    return len(rows)


class _Stop(Exception):
    """The file itself cannot be read further (not one row's field): the message says where."""


class ExportFile:
    """An export file to import: its size checked, its header (CSV) or document (JSON) read.

    Args:
        path: a ``.csv`` or ``.json`` file.

    Attributes:
        fingerprints: fingerprint -> description (JSON text), validated.

    Raises:
        CacheError: the file is missing, not a regular file, over the size limit for its
            format, or its header / document shape is not an export's.
    """

    def __init__(self, path):
        self.path = os.fspath(path)
        self.fmt = _format_of(self.path)
        self.now = time.time()
        self.fingerprints = {}
        limit = MAX_IMPORT_JSON_BYTES if self.fmt == "json" else MAX_IMPORT_CSV_BYTES
        try:
            st = os.stat(self.path)
        except OSError as err:
            raise CacheError(f"cannot read {self.path!r}: {err.strerror or err}") from None
        if not stat.S_ISREG(st.st_mode):
            raise CacheError(f"cannot read {self.path!r}: not a regular file")
        if st.st_size > limit:
            raise CacheError(f"{self.path!r} is {st.st_size} bytes, over the {limit} bytes an import "
                             f"{self.fmt.upper()} file may have" + (" (use CSV for larger tables)" if self.fmt == "json" else ""))
        if self.fmt == "json":
            self._doc = self._read_json(limit)
        else:
            self._header = self._csv_header()

    # -- JSON ------------------------------------------------------------------------
    def _fail(self, message):
        return CacheError(f"{self.path!r}: {message}")

    def _read_json(self, limit):
        try:
            with open(self.path, "rb") as fh:
                data = fh.read(limit + 1)
        except OSError as err:
            raise CacheError(f"cannot read {self.path!r}: {err.strerror or err}") from None
        try:
            doc = json.loads(data.decode("utf-8-sig"))
        except UnicodeDecodeError as err:
            raise self._fail(f"is not UTF-8 text (byte {err.start})") from None
        except RecursionError:
            raise self._fail("is not a nas_hw cache export (JSON nested too deeply)") from None
        except json.JSONDecodeError as err:
            raise self._fail(f"is not valid JSON ({err.msg} at line {err.lineno} column {err.colno})") from None
        except ValueError as err:  # e.g. an integer of more digits than Python converts
            raise self._fail(f"is not valid JSON ({show(str(err), 100)})") from None
        finally:
            data = None
        if not isinstance(doc, dict) or not isinstance(doc.get("rows"), list):
            raise self._fail("is not a nas_hw cache export (expected a JSON object with 'rows')")
        odd = [k for k in doc if k not in _JSON_KEYS]
        if odd:
            raise self._fail(f"is not a nas_hw cache export: unknown key {show(odd[0])} (keys: {', '.join(_JSON_KEYS)})")
        version = doc.get("nas_hw_cache_schema", CACHE_SCHEMA_VERSION)
        if isinstance(version, bool) or not isinstance(version, int) or not 1 <= version <= CACHE_SCHEMA_VERSION:
            raise self._fail(f"nas_hw_cache_schema={show(version)}: this nas_hw reads exports of schema 1 to "
                             f"{CACHE_SCHEMA_VERSION}")
        info = doc.get("fingerprints") or {}
        if not isinstance(info, dict):
            raise self._fail(f"'fingerprints' must map a fingerprint to its description, got {type(info).__name__}")
        try:
            for fp, desc in info.items():
                where = f"fingerprints[{show(fp)}]"
                self.fingerprints[check_key("fingerprint", fp, where)] = check_info(desc, where)
        except RowError as err:
            raise self._fail(str(err)) from None
        return doc

    # -- CSV -------------------------------------------------------------------------
    def _lines(self, fh):
        """The file's lines as text, each bounded in length (one endless line is never read whole)."""
        n = 0
        while True:
            raw = fh.readline(MAX_IMPORT_LINE_BYTES + 1)
            if not raw:
                return
            n += 1
            if len(raw) > MAX_IMPORT_LINE_BYTES:
                raise _Stop(f"line {n} is longer than {MAX_IMPORT_LINE_BYTES} bytes")
            if n == 1 and raw.startswith(codecs.BOM_UTF8):
                raw = raw[len(codecs.BOM_UTF8):]
            try:
                yield raw.decode("utf-8")
            except UnicodeDecodeError as err:
                raise _Stop(f"line {n} is not UTF-8 text (byte {err.start})") from None

    def _csv_records(self):
        """``(row number, list of fields)`` of the data rows; the header first as row 0."""
        try:
            fh = open(self.path, "rb")
        except OSError as err:
            raise CacheError(f"cannot read {self.path!r}: {err.strerror or err}") from None
        with fh:
            reader = csv.reader(self._lines(fh), strict=True)
            i = 0
            while True:
                try:
                    fields = next(reader)
                except StopIteration:
                    return
                except csv.Error as err:
                    raise _Stop(f"{f'row {i}' if i else 'header'} (line {reader.line_num}): {err}") from None
                if fields or i == 0:
                    yield i, fields
                    i += 1

    def _csv_header(self):
        try:
            for _, header in self._csv_records():
                break
            else:
                header = []
        except _Stop as err:
            raise self._fail(str(err)) from None
        odd = [h for h in header if h not in COLUMNS]
        missing = [c for c in REQUIRED if c not in header]
        if not header or odd or missing or len(set(header)) != len(header):
            what = (f"unknown column {show(odd[0])}" if odd else f"missing column(s) {missing}" if missing
                    else "repeated column" if header else "empty file")
            raise self._fail(f"is not a nas_hw cache export ({what}; the CSV header must hold {list(REQUIRED)}, "
                             f"may hold {list(COLUMNS)})")
        return header

    # -- rows --------------------------------------------------------------------------
    def _raw(self):
        """``(where, mapping, source)`` of every row, as the file holds it."""
        if self.fmt == "json":
            for i, row in enumerate(self._doc["rows"], start=1):
                yield f"row {i}", row, "json"
            return
        width = len(self._header)
        for i, fields in self._csv_records():
            if i == 0:
                continue
            if len(fields) != width:
                yield f"row {i}", f"has {len(fields)} fields, the header has {width}", "csv"
                continue
            yield f"row {i}", dict(zip(self._header, fields)), "csv"

    def _checked(self, where, row, source):
        if isinstance(row, str):  # a shape problem found while reading
            raise RowError(where, None, None, row)
        if not isinstance(row, dict):
            raise RowError(where, "row", row, f"is {type(row).__name__}, not an object")
        return check_row(row, where, source, now=self.now)

    def check(self):
        """Validates every row (streaming); raises one :class:`CacheError` listing the first bad
        rows and how many there are, naming each row and field."""
        errors, n_bad = [], 0
        try:
            for where, row, source in self._raw():
                try:
                    self._checked(where, row, source)
                except RowError as err:
                    n_bad += 1
                    if len(errors) < SHOWN_ERRORS:
                        errors.append(str(err))
        except _Stop as err:
            n_bad += 1
            errors.append(str(err))
        if errors:
            more = f" (+{n_bad - len(errors)} more)" if n_bad > len(errors) else ""
            raise self._fail(f"{n_bad} malformed row(s), nothing imported: " + "; ".join(errors) + more)

    def rows(self):
        """The validated row tuples (in :data:`COLUMNS` order), streamed; the first bad row
        raises :class:`CacheError` (the caller's transaction then stores nothing)."""
        try:
            for where, row, source in self._raw():
                yield self._checked(where, row, source)
        except (RowError, _Stop) as err:
            raise self._fail(f"malformed row, nothing imported: {err}") from None
