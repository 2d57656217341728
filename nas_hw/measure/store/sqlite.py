"""The persistent latency cache: one SQLite row per (device fingerprint, signature).

Every measurement nas_hw takes lands here and is reused by every later call, process and
run on the same device. Guarantees:

- A row is written in one transaction: a killed process leaves either the whole row or
  nothing (SQLite's journal, WAL mode).
- Several processes may read and fill one file at once (WAL, a busy timeout). Measuring a
  missing signature happens under an exclusive file lock (``<cache>.lock``), so parallel jobs
  never time layers at the same moment and never measure one signature twice.
- A file that is not a nas_hw cache (another SQLite database, a truncated or corrupt file,
  another schema version) raises :class:`~nas_hw.errors.CacheError` naming it; it is never
  replaced or repaired silently.
- NaN or negative timings are refused by the schema itself (infinite ones by :meth:`LatencyCache.put`
  and by import's validation).
"""
import contextlib
import json
import logging
import math
import os
import sqlite3
import threading
import time

from ...errors import CacheError
from .io import read_export, write_export
from .location import is_server_url, redact
from .lock import exclusive_lock
from .rows import COLUMNS, Record, record_from_row

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 1
MEMORY = ":memory:"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS measurements (
    fingerprint TEXT NOT NULL,
    signature   TEXT NOT NULL,
    mean_s      REAL NOT NULL CHECK (mean_s >= 0),
    median_s    REAL NOT NULL CHECK (median_s >= 0),
    std_s       REAL NOT NULL CHECK (std_s >= 0),
    min_s       REAL NOT NULL CHECK (min_s >= 0),
    n_kept      INTEGER NOT NULL CHECK (n_kept >= 1),
    n_measured  INTEGER NOT NULL CHECK (n_measured >= n_kept),
    noop        INTEGER NOT NULL DEFAULT 0,
    settings    TEXT NOT NULL,
    created     REAL NOT NULL,
    PRIMARY KEY (fingerprint, signature)
);
CREATE TABLE IF NOT EXISTS fingerprints (
    fingerprint TEXT PRIMARY KEY,
    info        TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS blobs (
    fingerprint TEXT NOT NULL,
    kind        TEXT NOT NULL,
    name        TEXT NOT NULL,
    payload     TEXT NOT NULL,
    created     REAL NOT NULL,
    PRIMARY KEY (fingerprint, kind, name)
);
"""
_TABLES = {"measurements", "fingerprints", "blobs"}


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
            :func:`default_cache_path`. An explicit path's directory must exist.

    Attributes:
        hits, misses, measurements: counters of this object's lookups and of the
            measurements it stored (observable, e.g. to assert a warm cache measures nothing).

    Raises:
        CacheError: the file is not a valid cache or cannot be opened/written.
    """

    def __init__(self, path=None, timeout_s=60.0):
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
        if is_server_url(path if path is not None else default_cache_path()):
            raise ValueError(f"LatencyCache is the SQLite file store; open the server store "
                             f"{redact(path or default_cache_path())} with open_cache(url) or PostgresStore(url)")
        if path is None:
            path = default_cache_path()
            os.makedirs(os.path.dirname(path), exist_ok=True)
        self.path = os.fspath(path)
        self.timeout_s = float(timeout_s)
        self.hits = 0
        self.misses = 0
        self.measurements = 0
        self._memo = {}
        self._loaded = set()
        self._thread_lock = threading.RLock()
        self._conn = None
        self._pid = None
        self._connect()

    # -- connection -----------------------------------------------------------------
    def _connect(self):
        if self.path != MEMORY:
            directory = os.path.dirname(os.path.abspath(self.path))
            if not os.path.isdir(directory):
                raise CacheError(f"cache directory {directory!r} does not exist (cache path {self.path!r}); "
                                 "create it or set NAS_HW_CACHE to a file in an existing directory")
            if not os.access(directory, os.W_OK):
                raise CacheError(f"cache directory {directory!r} is not writable (cache path {self.path!r}); "
                                 "set NAS_HW_CACHE to a writable location")
            if os.path.exists(self.path) and not os.access(self.path, os.R_OK | os.W_OK):
                raise CacheError(f"cache file {self.path!r} is not readable and writable")
        conn = None
        try:
            conn = sqlite3.connect(self.path, timeout=self.timeout_s, isolation_level=None,
                                   check_same_thread=False)
            conn.execute(f"PRAGMA busy_timeout={int(self.timeout_s * 1000)}")
            self._check_schema(conn)
        except BaseException as err:
            if conn is not None:  # never keep a handle on a file we refused
                conn.close()
            if not isinstance(err, sqlite3.DatabaseError):
                raise
            raise CacheError(f"{self.path!r} is not a usable nas_hw latency cache ({err}); it was left "
                             "untouched: move or delete it, or point NAS_HW_CACHE elsewhere") from err
        self._conn, self._pid = conn, os.getpid()

    def _check_schema(self, conn):
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if not tables:
            if self.path != MEMORY:
                conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("BEGIN IMMEDIATE")
            try:
                # Another process may have created it between our look and the lock.
                if not conn.execute("SELECT name FROM sqlite_master WHERE type='table'").fetchall():
                    for stmt in _SCHEMA.strip().split(";"):
                        if stmt.strip():
                            conn.execute(stmt)
                    conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            return
        if not _TABLES <= tables:
            raise CacheError(f"{self.path!r} is an SQLite database but not a nas_hw latency cache "
                             f"(tables {sorted(tables)}); it was left untouched")
        if version != SCHEMA_VERSION:
            raise CacheError(f"{self.path!r} has cache schema version {version}, this nas_hw reads version "
                             f"{SCHEMA_VERSION}; export it with the nas_hw that wrote it "
                             "(`nas-hw cache export`) and import it here, or move it away")
        check = conn.execute("PRAGMA quick_check").fetchone()[0]
        if check != "ok":
            raise CacheError(f"{self.path!r} failed SQLite's integrity check ({check}); it was left untouched")

    @property
    def conn(self):
        if self._pid != os.getpid():  # a forked child must not share the parent's connection
            self._memo, self._loaded = {}, set()
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
        return f"LatencyCache({self.path!r}, hits={self.hits}, misses={self.misses}, measurements={self.measurements})"

    # -- lookups --------------------------------------------------------------------
    def _load_fingerprint(self, fingerprint):
        rows = self.conn.execute(f"SELECT {','.join(COLUMNS)} FROM measurements WHERE fingerprint=?",
                                 (fingerprint,)).fetchall()
        for row in rows:
            rec = record_from_row(row)
            self._memo[(fingerprint, rec.signature)] = rec
        self._loaded.add(fingerprint)

    def peek(self, fingerprint, signature):
        """The cached :class:`Record` or ``None``, without touching the counters."""
        with self._thread_lock:
            if fingerprint not in self._loaded:
                self._load_fingerprint(fingerprint)
            rec = self._memo.get((fingerprint, signature))
            if rec is None:
                row = self.conn.execute(f"SELECT {','.join(COLUMNS)} FROM measurements "
                                        "WHERE fingerprint=? AND signature=?", (fingerprint, signature)).fetchone()
                if row is not None:
                    rec = self._memo[(fingerprint, signature)] = record_from_row(row)
            return rec

    def get(self, fingerprint, signature):
        """The cached :class:`Record` or ``None``; counts a hit or a miss."""
        rec = self.peek(fingerprint, signature)
        if rec is None:
            self.misses += 1
        else:
            self.hits += 1
        return rec

    def put(self, fingerprint, signature, stats, settings=None, noop=False, fingerprint_info=None):
        """Stores a measurement (the first one stored wins) and returns the stored record.

        Raises:
            CacheError: a statistic is NaN, infinite or negative, or a run count is below 1
                (the schema's CHECKs refuse NaN and negatives; infinity is refused here).
        """
        bad = {k: getattr(stats, k) for k in ("mean", "median", "std", "min")
               if not isinstance(getattr(stats, k), (int, float)) or not math.isfinite(getattr(stats, k))
               or getattr(stats, k) < 0}
        if bad:
            raise CacheError(f"refusing to store invalid measurement for {signature!r}: "
                             f"timings must be finite and >= 0 seconds, got {bad}")
        rec = Record(fingerprint, signature, stats, dict(settings or {}), time.time(), bool(noop))
        row = rec.as_row()
        with self._thread_lock:
            try:
                with self._transaction() as c:
                    if fingerprint_info is not None:
                        c.execute("INSERT OR IGNORE INTO fingerprints VALUES (?, ?)",
                                  (fingerprint, json.dumps(fingerprint_info, sort_keys=True)))
                    # ON CONFLICT DO NOTHING skips only an existing (fingerprint, signature) row;
                    # ``INSERT OR IGNORE`` would also silently drop a row failing a CHECK (NaN,
                    # negative) and return nothing.
                    c.execute(f"INSERT INTO measurements ({','.join(COLUMNS)}) "
                              f"VALUES ({','.join('?' * len(COLUMNS))}) "
                              "ON CONFLICT(fingerprint, signature) DO NOTHING", [row[k] for k in COLUMNS])
            except sqlite3.IntegrityError as err:
                raise CacheError(f"refusing to store invalid measurement for {signature!r} "
                                 f"({stats}): {err}") from err
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
        with self.measuring_lock():
            rec = self.peek(fingerprint, signature)
            if rec is not None:
                return rec
            stats, noop = measure_fn()
            self.measurements += 1
            return self.put(fingerprint, signature, stats, settings, noop, fingerprint_info)

    @contextlib.contextmanager
    def _transaction(self):
        c = self.conn
        c.execute("BEGIN IMMEDIATE")
        try:
            yield c
        except BaseException:
            c.execute("ROLLBACK")
            raise
        c.execute("COMMIT")

    @contextlib.contextmanager
    def measuring_lock(self):
        """Exclusive across processes sharing this file (and threads of this process)."""
        with self._thread_lock:
            if self.path == MEMORY:
                yield
                return
            with exclusive_lock(self.path + ".lock"):
                yield

    def reset_counters(self):
        self.hits = self.misses = self.measurements = 0

    def forget(self):
        """Drops this object's in-process view; the file keeps every row."""
        with self._thread_lock:
            self._memo, self._loaded = {}, set()

    # -- whole-cache operations ------------------------------------------------------
    def records(self, fingerprint=None):
        sql = f"SELECT {','.join(COLUMNS)} FROM measurements"
        args = ()
        if fingerprint is not None:
            sql, args = sql + " WHERE fingerprint=?", (fingerprint,)
        return [record_from_row(r) for r in self.conn.execute(sql + " ORDER BY fingerprint, signature", args)]

    def __len__(self):
        return self.conn.execute("SELECT COUNT(*) FROM measurements").fetchone()[0]

    def summary(self):
        """One dict per fingerprint: rows, total measured ms, oldest and newest row time."""
        out = []
        for fp, n, total, first, last in self.conn.execute(
                "SELECT fingerprint, COUNT(*), SUM(mean_s), MIN(created), MAX(created) "
                "FROM measurements GROUP BY fingerprint ORDER BY fingerprint"):
            out.append({"fingerprint": fp, "rows": n, "sum_mean_ms": total * 1e3,
                        "first": first, "last": last})
        return out

    def fingerprint_info(self):
        return {fp: json.loads(info) for fp, info in self.conn.execute("SELECT fingerprint, info FROM fingerprints")}

    def clear(self, fingerprint=None):
        """Deletes rows (of one fingerprint, or all); returns how many."""
        with self._thread_lock, self._transaction() as c:
            if fingerprint is None:
                n = c.execute("DELETE FROM measurements").rowcount
                c.execute("DELETE FROM blobs")
                c.execute("DELETE FROM fingerprints")
            else:
                n = c.execute("DELETE FROM measurements WHERE fingerprint=?", (fingerprint,)).rowcount
                c.execute("DELETE FROM blobs WHERE fingerprint=?", (fingerprint,))
                c.execute("DELETE FROM fingerprints WHERE fingerprint=?", (fingerprint,))
            self.forget()
        return n

    def export(self, path, fingerprint=None):
        """Writes rows to ``path`` (``.csv`` or ``.json``, by extension); returns the row count."""
        info = {k: v for k, v in self.fingerprint_info().items() if fingerprint is None or k == fingerprint}
        return write_export(path, [r.as_row() for r in self.records(fingerprint)], info, SCHEMA_VERSION)

    def import_(self, path, overwrite=False):
        """Merges rows from a CSV/JSON export (rows keep their fingerprint).

        All rows are validated first; one malformed row refuses the whole file.

        Returns:
            the number of rows added (or replaced with ``overwrite``).

        Raises:
            CacheError: the file is missing or malformed (the message lists the bad rows).
        """
        rows, info = read_export(path)
        # REPLACE and ON CONFLICT DO NOTHING resolve only key conflicts; a CHECK failure aborts
        # the whole transaction (rows are validated above, so it would be a bug here).
        with self._thread_lock, self._transaction() as c:
            for fp, data in info.items():
                c.execute("INSERT OR IGNORE INTO fingerprints VALUES (?, ?)", (fp, json.dumps(data, sort_keys=True)))
            after_fp = c.total_changes
            values = f"({','.join(COLUMNS)}) VALUES ({','.join('?' * len(COLUMNS))})"
            if overwrite:
                c.executemany(f"INSERT OR REPLACE INTO measurements {values}", rows)
            else:
                c.executemany(f"INSERT INTO measurements {values} "
                              "ON CONFLICT(fingerprint, signature) DO NOTHING", rows)
            added = c.total_changes - after_fp
        self.forget()
        return added

    # -- small JSON documents (candidate tables, calibrations) ------------------------
    def put_blob(self, fingerprint, kind, name, payload):
        with self._thread_lock, self._transaction() as c:
            c.execute("INSERT OR REPLACE INTO blobs VALUES (?, ?, ?, ?, ?)",
                      (fingerprint, kind, name, json.dumps(payload, sort_keys=True), time.time()))

    def get_blob(self, fingerprint, kind, name):
        row = self.conn.execute("SELECT payload FROM blobs WHERE fingerprint=? AND kind=? AND name=?",
                                (fingerprint, kind, name)).fetchone()
        return None if row is None else json.loads(row[0])

    def blob_fingerprints(self, kind, name):
        """The fingerprints that hold a document ``kind/name``, sorted."""
        rows = self.conn.execute("SELECT fingerprint FROM blobs WHERE kind=? AND name=? ORDER BY fingerprint",
                                 (kind, name)).fetchall()
        return [r[0] for r in rows]


