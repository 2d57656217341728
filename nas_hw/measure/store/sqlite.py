"""The persistent latency cache: one SQLite row per (device fingerprint, signature).

Every measurement nas_hw takes lands here and is reused by every later call, process and
run on the same device. Guarantees (each held by a test named in docs/reliability.md):

- A row is written in one transaction (WAL journal): a killed process leaves either the whole
  row or nothing. A new cache file appears whole (built beside its path, then linked in).
- A file is used as a cache only if it carries nas_hw's mark (``application_id``) and exactly
  the schema nas_hw wrote; anything else (an empty file, another database, a schema changed
  outside nas_hw) raises :class:`~nas_hw.errors.CacheError` naming it and is never written.
  ``readonly=True`` opens the file with SQLite's read-only mode: it can never change it.
- The tables are STRICT with range CHECKs (no text, blob, NaN, infinity or absurd value is
  stored), and every row read back passes :func:`~nas_hw.measure.store.rows.check_row`: a row
  tampered with outside nas_hw raises ``CacheError`` naming it instead of becoming a number.
- Several processes may read and fill one file (WAL, a busy timeout). Missing signatures are
  measured under a cross-process lock (``<cache>.lock``) whose wait is bounded by ``timeout_s``.
- A cache of schema 1 (nas_hw before quality fields) opens read-only; ``nas-hw cache migrate``
  converts it (:mod:`~nas_hw.measure.store.migrate`).
"""
import contextlib
import json
import logging
import math
import os
import sqlite3
import threading
import time

from ...constants import CACHE_SCHEMA_VERSION
from ...errors import CacheError
from .io import ExportFile, check_info, write_export
from .lock import MeasuringLock
from .quality import summarize
from .rows import COLUMNS, RowError, read_record, stats_row
from .opening import MEMORY, migrate_hint, open_store
from .schema import SELECT

logger = logging.getLogger(__name__)

SCHEMA_VERSION = CACHE_SCHEMA_VERSION
__all__ = ["LatencyCache", "default_cache_path", "migrate_hint", "MEMORY", "SCHEMA_VERSION"]


def default_cache_path():
    """``$NAS_HW_CACHE``, else ``$XDG_CACHE_HOME/nas_hw/latency.sqlite`` (``~/.cache`` by default)."""
    env = os.environ.get("NAS_HW_CACHE")
    if env:
        return env
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "nas_hw", "latency.sqlite")


class LatencyCache:
    """Persistent, device-keyed store of layer measurements (SQLite).

    Args:
        path: file path, ``":memory:"`` for a throw-away cache, or ``None`` for
            :func:`default_cache_path`. An explicit path's directory must exist. A missing file is
            created (whole) unless ``readonly``.
        timeout_s: how long a write waits for another process's transaction, and a measurement
            for another process's measuring lock, before a one-line ``CacheError``.
        readonly: open with SQLite's read-only mode: nothing is ever written (``put``, ``import_``,
            ``clear`` raise); a missing file reads as an empty cache and is not created.

    Attributes:
        hits, misses, measurements: counters of this object's lookups and of the
            measurements it stored (observable, e.g. to assert a warm cache measures nothing).
        schema: the file's schema version (1: a pre-quality cache, read-only).

    Raises:
        CacheError: the file is not a nas_hw cache, or cannot be opened/written.
    """

    def __init__(self, path=None, timeout_s=60.0, readonly=False):
        if path is not None and not isinstance(path, (str, os.PathLike)):
            raise TypeError(f"cache path must be a str or os.PathLike, ':memory:' or None, "
                            f"got {type(path).__name__} {path!r}")
        if path is not None and not isinstance(os.fspath(path), str):
            raise TypeError(f"cache path must be a text path, got {path!r}")
        if path is not None and not os.fspath(path):
            raise ValueError("cache path must not be empty (SQLite would open a throw-away "
                             "database): give a file path, ':memory:' or None")
        if (isinstance(timeout_s, bool) or not isinstance(timeout_s, (int, float))
                or not math.isfinite(timeout_s) or timeout_s <= 0):
            raise ValueError(f"timeout_s must be a positive number of seconds, got {timeout_s!r}")
        if path is None:
            path = default_cache_path()
            if not readonly:
                os.makedirs(os.path.dirname(path), exist_ok=True)
        self.path = os.fspath(path)
        self.timeout_s = float(timeout_s)
        self.readonly = bool(readonly)
        self.hits = 0
        self.misses = 0
        self.measurements = 0
        self.schema = None
        self._memo = {}
        self._loaded = set()
        self._thread_lock = threading.RLock()
        self._conn = None
        self._pid = None
        self._lock = None
        self._connect()

    # -- connection -----------------------------------------------------------------
    def _connect(self):
        self._conn, self.schema = open_store(self.path, self.readonly, self.timeout_s)
        self._pid = os.getpid()

    @property
    def conn(self):
        if self._pid != os.getpid():  # a forked child must not share the parent's connection
            self._memo, self._loaded, self._lock = {}, set(), None
            self._connect()
        return self._conn

    def close(self):
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        mode = ", readonly" if self.readonly else ""
        return (f"LatencyCache({self.path!r}{mode}, hits={self.hits}, misses={self.misses}, "
                f"measurements={self.measurements})")

    # -- reading --------------------------------------------------------------------
    def _rows(self, where="", args=()):
        """Validated records of ``SELECT ... FROM measurements <where>``."""
        sql = f"SELECT {SELECT[self.schema]} FROM measurements {where}"
        try:
            raw = self.conn.execute(sql, args).fetchall()
        except sqlite3.Error as err:
            raise CacheError(f"cannot read {self.path!r}: {err}") from err
        out = []
        for row in raw:
            try:
                out.append(read_record(row))
            except RowError as err:
                raise CacheError(f"{self.path!r}: {err}; that row was changed outside nas_hw and is never served: "
                                 "delete it with `nas-hw cache clear --fingerprint FP --signature SIG --yes` "
                                 "(it is then measured again)") from None
        return out

    def _load_fingerprint(self, fingerprint):
        for rec in self._rows("WHERE fingerprint=?", (fingerprint,)):
            self._memo[(fingerprint, rec.signature)] = rec
        self._loaded.add(fingerprint)

    def peek(self, fingerprint, signature):
        """The cached :class:`Record` or ``None``, without touching the counters."""
        with self._thread_lock:
            if fingerprint not in self._loaded:
                self._load_fingerprint(fingerprint)
            rec = self._memo.get((fingerprint, signature))
            if rec is None:
                got = self._rows("WHERE fingerprint=? AND signature=?", (fingerprint, signature))
                if got:
                    rec = self._memo[(fingerprint, signature)] = got[0]
            return rec

    def get(self, fingerprint, signature):
        """The cached :class:`Record` or ``None``; counts a hit or a miss."""
        rec = self.peek(fingerprint, signature)
        if rec is None:
            self.misses += 1
        else:
            self.hits += 1
        return rec

    def records(self, fingerprint=None, disturbed=None):
        """Every row (of one fingerprint), validated, sorted by fingerprint and signature.

        Args:
            disturbed: ``True``: only rows flagged disturbed; ``False``: only rows known clean;
                ``None``: all (rows of unknown quality included).
        """
        clauses, args = [], []
        if fingerprint is not None:
            clauses.append("fingerprint=?")
            args.append(fingerprint)
        if disturbed is not None:
            if self.schema != SCHEMA_VERSION:
                return []  # schema 1 kept no verdict: no row is known disturbed, nor known clean
            clauses.append("disturbed=?")
            args.append(int(bool(disturbed)))
        where = ("WHERE " + " AND ".join(clauses)) if clauses else ""
        return self._rows(where + " ORDER BY fingerprint, signature", tuple(args))

    def __len__(self):
        return self.conn.execute("SELECT COUNT(*) FROM measurements").fetchone()[0]

    def summary(self):
        """One dict per fingerprint: rows, total of mean ms, oldest and newest row time, and the
        rows' quality (disturbed / unknown counts, median spread, load range): see
        :func:`~nas_hw.measure.store.quality.summarize`."""
        return summarize(self.records())

    def fingerprint_info(self):
        out = {}
        for fp, info in self.conn.execute("SELECT fingerprint, info FROM fingerprints"):
            try:
                out[fp] = json.loads(info)
            except (TypeError, ValueError, RecursionError):
                raise CacheError(f"{self.path!r}: the description of fingerprint {fp!r} is not JSON; it was "
                                 "changed outside nas_hw") from None
        return out

    # -- writing --------------------------------------------------------------------
    def _writable(self, what):
        if self.readonly:
            raise CacheError(f"cannot {what}: cache {self.path!r} was opened read-only")

    @contextlib.contextmanager
    def _transaction(self):
        c = self.conn
        try:
            c.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as err:
            raise CacheError(f"cannot write {self.path!r}: {err} (another process held it for more than "
                             f"timeout_s={self.timeout_s:g} s)") from err
        try:
            yield c
            c.execute("COMMIT")
        except BaseException as err:
            if c.in_transaction:
                c.execute("ROLLBACK")
            if isinstance(err, sqlite3.OperationalError):
                raise CacheError(f"cannot write {self.path!r}: {err}; nothing was written") from err
            raise

    def put(self, fingerprint, signature, stats, settings=None, noop=False, fingerprint_info=None, replace=False):
        """Stores a measurement and returns the stored record.

        The first measurement stored wins, unless ``replace=True`` (an explicit re-measurement,
        e.g. ``--refresh``), which overwrites that one row.

        Raises:
            CacheError: a field is out of range (NaN, infinite, negative, text...), the cache is
                read-only, or the file cannot be written.
        """
        self._writable(f"store {signature!r}")
        try:
            row = stats_row(fingerprint, signature, stats, dict(settings or {}), noop, time.time())
            info = None if fingerprint_info is None else check_info(fingerprint_info, "fingerprint_info")
        except (RowError, ValueError, TypeError) as err:
            raise CacheError(f"refusing to store invalid measurement for {signature!r}: {err}") from None
        names, marks = ",".join(COLUMNS), ",".join("?" * len(COLUMNS))
        conflict = ("DO UPDATE SET " + ",".join(f"{c}=excluded.{c}" for c in COLUMNS[2:])) if replace else "DO NOTHING"
        with self._thread_lock:
            try:
                with self._transaction() as c:
                    if info is not None:
                        c.execute("INSERT OR IGNORE INTO fingerprints VALUES (?, ?)", (fingerprint, info))
                    # ON CONFLICT resolves only an existing (fingerprint, signature) row; ``INSERT OR
                    # IGNORE`` would also silently drop a row failing a CHECK.
                    c.execute(f"INSERT INTO measurements ({names}) VALUES ({marks}) "
                              f"ON CONFLICT(fingerprint, signature) {conflict}", row)
            except sqlite3.IntegrityError as err:
                raise CacheError(f"refusing to store invalid measurement for {signature!r} ({stats}): {err}") from err
            self._memo.pop((fingerprint, signature), None)
            stored = self.peek(fingerprint, signature)
            if stored is None:  # cannot happen unless the file is being cleared concurrently
                raise CacheError(f"measurement for {signature!r} was not stored in {self.path!r}")
            return stored

    def get_or_measure(self, fingerprint, signature, measure_fn, settings=None, fingerprint_info=None):
        """The cached record, or measures it with ``measure_fn() -> (TimingStats, noop)`` under the
        cache's measuring lock (re-checking first: another process may have just stored it)."""
        rec = self.get(fingerprint, signature)
        if rec is not None:
            return rec
        self._writable(f"measure {signature!r}")
        with self.measuring_lock():
            rec = self.peek(fingerprint, signature)
            if rec is not None:
                return rec
            stats, noop = measure_fn()
            self.measurements += 1
            return self.put(fingerprint, signature, stats, settings, noop, fingerprint_info)

    @contextlib.contextmanager
    def measuring_lock(self):
        """Exclusive across processes sharing this file (and threads of this process); waits at
        most ``timeout_s``, saying which process it waits for (see :mod:`.lock`)."""
        with self._thread_lock:
            if self.path == MEMORY:
                yield
                return
            if self._lock is None or self._pid != os.getpid():
                self._lock = MeasuringLock(self.path + ".lock", self.timeout_s)
            with self._lock.hold():
                yield

    def reset_counters(self):
        self.hits = self.misses = self.measurements = 0

    def forget(self):
        """Drops this object's in-process view; the file keeps every row."""
        with self._thread_lock:
            self._memo, self._loaded = {}, set()

    def clear(self, fingerprint=None, signature=None):
        """Deletes rows (one row, one fingerprint's, or all); returns how many. Rows are deleted
        without being read, so a row changed outside nas_hw can be removed this way."""
        self._writable("clear rows")
        if signature is not None and fingerprint is None:
            raise ValueError("clearing one signature needs its fingerprint")
        with self._thread_lock, self._transaction() as c:
            if fingerprint is None:
                n = c.execute("DELETE FROM measurements").rowcount
                c.execute("DELETE FROM blobs")
                c.execute("DELETE FROM fingerprints")
            elif signature is not None:
                n = c.execute("DELETE FROM measurements WHERE fingerprint=? AND signature=?",
                              (fingerprint, signature)).rowcount
            else:
                n = c.execute("DELETE FROM measurements WHERE fingerprint=?", (fingerprint,)).rowcount
                c.execute("DELETE FROM blobs WHERE fingerprint=?", (fingerprint,))
                c.execute("DELETE FROM fingerprints WHERE fingerprint=?", (fingerprint,))
            self.forget()
        return n

    # -- files ------------------------------------------------------------------------
    def export(self, path, fingerprint=None):
        """Writes rows to ``path`` (``.csv`` or ``.json``, by extension), atomically; returns the
        row count. Every row is validated on the way out."""
        info = {k: v for k, v in self.fingerprint_info().items() if fingerprint is None or k == fingerprint}
        return write_export(path, [r.as_row() for r in self.records(fingerprint)], info, SCHEMA_VERSION)

    def import_(self, path, overwrite=False):
        """Merges rows from a CSV/JSON export (rows keep their fingerprint).

        The whole file is validated first (size, then every field of every row); one malformed
        row refuses the whole file, and rows are then stored in one transaction.

        Returns:
            the number of rows added (or replaced with ``overwrite``).

        Raises:
            CacheError: the file is missing, too large or malformed (one line naming the first
                bad rows and fields), or the cache is read-only.
        """
        self._writable(f"import {os.fspath(path)!r}")
        source = ExportFile(path)
        source.check()
        verb = "INSERT OR REPLACE" if overwrite else "INSERT"
        tail = "" if overwrite else " ON CONFLICT(fingerprint, signature) DO NOTHING"
        sql = f"{verb} INTO measurements ({','.join(COLUMNS)}) VALUES ({','.join('?' * len(COLUMNS))}){tail}"
        try:
            with self._thread_lock, self._transaction() as c:
                for fp, info in source.fingerprints.items():
                    c.execute("INSERT OR IGNORE INTO fingerprints VALUES (?, ?)", (fp, info))
                after_fp = c.total_changes
                c.executemany(sql, source.rows())  # re-validated: the file may have changed since check()
                added = c.total_changes - after_fp
        except sqlite3.IntegrityError as err:  # rows passed check_row: the schema and it disagree (a bug)
            raise CacheError(f"{os.fspath(path)!r}: a row the checks passed was refused by the schema ({err}); "
                             "nothing imported") from err
        self.forget()
        return added

    # -- small JSON documents (candidate tables, calibrations) ------------------------
    def put_blob(self, fingerprint, kind, name, payload):
        self._writable(f"store {kind}/{name}")
        text = json.dumps(payload, sort_keys=True)
        with self._thread_lock, self._transaction() as c:
            c.execute("INSERT OR REPLACE INTO blobs VALUES (?, ?, ?, ?, ?)", (fingerprint, kind, name, text, time.time()))

    def get_blob(self, fingerprint, kind, name):
        row = self.conn.execute("SELECT payload FROM blobs WHERE fingerprint=? AND kind=? AND name=?",
                                (fingerprint, kind, name)).fetchone()
        if row is None:
            return None
        try:
            return json.loads(row[0])
        except (TypeError, ValueError, RecursionError):
            raise CacheError(f"{self.path!r}: stored document {kind}/{name} of fingerprint {fingerprint!r} is not "
                             "JSON; it was changed outside nas_hw") from None

    def blob_fingerprints(self, kind, name):
        """The fingerprints that hold a document ``kind/name``, sorted."""
        rows = self.conn.execute("SELECT fingerprint FROM blobs WHERE kind=? AND name=? ORDER BY fingerprint",
                                 (kind, name)).fetchall()
        return [r[0] for r in rows]
