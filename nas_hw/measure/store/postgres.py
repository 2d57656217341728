"""The latency store on a PostgreSQL server: one store for a team's machines.

``open_cache("postgresql://user@host/db")`` (or ``cache.url=``, ``NAS_HW_CACHE=``, ``--cache``)
returns a :class:`PostgresStore`, which keeps the guarantees of the SQLite file
(:class:`~nas_hw.measure.store.sqlite.LatencyCache`) for several writers on several hosts:

- A row is written in one transaction: a lost connection or a killed client leaves the whole row
  or nothing. The first row stored for a (fingerprint, signature) wins
  (``INSERT ... ON CONFLICT DO NOTHING``); nothing is lost when many clients write at once.
- Measuring a missing signature happens under a session advisory lock per device fingerprint
  (``pg_try_advisory_lock``, waited for at most ``timeout_s``): no layer is measured twice at once
  across hosts, and a client that dies releases its lock with its connection.
- Every row passes :func:`~nas_hw.measure.store.rows.check_row`, the SQLite store's validation,
  when it is stored, imported and read back (a row changed outside nas_hw is named, never
  served); the tables' CHECKs refuse NaN, infinite and negative timings from any other client.
- The tables are nas_hw's own (``nas_hw_*``, marked in ``nas_hw_meta``); a database holding
  other tables of those names is refused and left untouched. A read-only store
  (``readonly=True``) never creates them and refuses every write.
- A lost connection (a server restart) is retried for ``reconnect_s`` seconds, then ends in one
  :class:`~nas_hw.errors.CacheError` line. Every operation is idempotent, so a retried one stores
  nothing twice. A wrong password, a missing database, an unreachable host: one line each.
- The URL's password is never shown: :attr:`PostgresStore.path` is the redacted URL, and every
  message is scrubbed. Keep passwords out of URLs anyway (``PGPASSWORD``, ``~/.pgpass``,
  ``PGSERVICE``: libpq reads them).

Needs the ``postgres`` extra (``pip install 'nas_hw[postgres]'``: psycopg 3).
"""
import contextlib
import json
import logging
import os
import socket
import threading
import time

from ...errors import CacheError
from .base import StoreBase, check_timeout
from .io import ExportFile, check_info
from .location import describe, is_server_url, scrub
from .pg_errors import connect_hint, connection_lost
from .pg_lock import acquire, lock_key
from .pg_schema import SERVER_SCHEMA_VERSION as SCHEMA_VERSION, check_schema
from .quality import summarize
from .rows import COLUMNS, RowError, read_record, stats_row

logger = logging.getLogger(__name__)

DEFAULT_CONNECT_TIMEOUT_S = 10
_COLS = ", ".join(COLUMNS)
_SELECT = f"SELECT {_COLS} FROM nas_hw_measurements"


def _psycopg():
    try:
        import psycopg
    except ImportError as err:
        raise CacheError("a postgresql:// latency store needs the server driver: "
                         "pip install 'nas_hw[postgres]' (psycopg 3)") from err
    return psycopg


class PostgresStore(StoreBase):
    """Persistent, device-keyed store of layer measurements on a PostgreSQL server.

    The same interface as :class:`~nas_hw.measure.store.sqlite.LatencyCache`.

    Args:
        url: ``postgresql://[user[:password]@][host][:port]/dbname[?option=...]`` (libpq's URL;
            ``PGPASSWORD``, ``~/.pgpass``, ``PGSERVICE`` and the other ``PG*`` variables apply).
        timeout_s: longest wait for another client's measuring lock.
        readonly: never write: the tables are not created in a database that has none (see
            :attr:`exists`), and every write raises :class:`CacheError`.
        reconnect_s: how long a lost connection is retried before giving up.

    Attributes:
        path: the redacted URL (what messages and reports show).
        exists: the database holds a nas_hw store.

    Raises:
        CacheError: the server cannot be reached or refuses the login, the database is missing,
            or it holds tables of these names that are not a nas_hw store.
    """

    def __init__(self, url, timeout_s=60.0, readonly=False, reconnect_s=30.0):
        if not is_server_url(url):
            raise ValueError(f"url must be a postgresql:// URL, got {describe(url) if isinstance(url, str) else url!r}")
        self.timeout_s = check_timeout(timeout_s)
        self.reconnect_s = check_timeout(reconnect_s, "reconnect_s")
        self._psycopg = _psycopg()
        self._url = url
        self.path = describe(url)
        self.readonly = bool(readonly)
        self.exists = False
        #: the row format's version (the server tables always hold the current one)
        self.schema = SCHEMA_VERSION
        self.hits = self.misses = self.measurements = 0
        self._memo, self._loaded = {}, set()
        self._thread_lock = threading.RLock()
        self._conn, self._pid = None, None
        self._connect()

    def __repr__(self):
        return (f"PostgresStore({self.path!r}, hits={self.hits}, misses={self.misses}, "
                f"measurements={self.measurements})")

    # -- connection -------------------------------------------------------------------
    def _connect_kwargs(self):
        given = self._psycopg.conninfo.conninfo_to_dict(self._url)
        kwargs = {"autocommit": True}
        if "connect_timeout" not in given and "PGCONNECT_TIMEOUT" not in os.environ:
            kwargs["connect_timeout"] = DEFAULT_CONNECT_TIMEOUT_S
        if "application_name" not in given and "PGAPPNAME" not in os.environ:
            kwargs["application_name"] = f"nas_hw {socket.gethostname()}:{os.getpid()}"[:63]
        return kwargs

    def _connect(self):
        psycopg = self._psycopg
        try:
            conn = psycopg.connect(self._url, **self._connect_kwargs())
        except psycopg.Error as err:
            raise CacheError(f"cannot connect to the latency store {self.path}: {self._reason(err)}"
                             f"{connect_hint(err)}") from None
        try:
            self._check_schema(conn)
        except BaseException:
            conn.close()  # never keep a session on a database we refused
            raise
        self._conn, self._pid = conn, os.getpid()

    def _reason(self, err):
        text = " ".join(str(err).split()) or type(err).__name__
        return scrub(text, self._url)

    def _check_schema(self, conn):
        try:
            self.exists = check_schema(conn, self.path, not self.readonly, self.timeout_s)
        except self._psycopg.Error as err:
            raise CacheError(f"cannot use the latency store {self.path}: {self._reason(err)}") from None

    @property
    def conn(self):
        if self._pid != os.getpid():  # a forked child must not share the parent's session
            self._memo, self._loaded = {}, set()
            self._conn = None
            self._connect()
        if self._conn is None:
            raise CacheError(f"the latency store {self.path} was closed")
        return self._conn

    def close(self):
        if self._conn is not None and self._pid == os.getpid():
            self._conn.close()
        self._conn = None

    def _writable(self, what):
        if self.readonly:
            raise CacheError(f"cannot {what}: the latency store {self.path} was opened read-only")

    def _run(self, work, what):
        """``work(conn)`` in one transaction; a lost connection is re-opened and ``work`` run again
        (every operation here is idempotent) for up to ``reconnect_s`` seconds."""
        psycopg = self._psycopg
        deadline = None
        while True:
            conn = self.conn
            try:
                with conn.transaction():
                    return work(conn)
            except psycopg.errors.IntegrityError as err:
                raise CacheError(f"the latency store {self.path} refused to {what}: {self._reason(err)}") from None
            except psycopg.Error as err:
                if not connection_lost(psycopg, conn, err):
                    raise CacheError(f"cannot {what} in the latency store {self.path}: {self._reason(err)}") from None
                if deadline is None:
                    deadline = time.monotonic() + self.reconnect_s
                    logger.warning("lost the connection to the latency store %s while trying to %s (%s); "
                                   "reconnecting for up to %.0f s", self.path, what, self._reason(err),
                                   self.reconnect_s)
                self._reconnect(deadline, what, err)

    def _reconnect(self, deadline, what, cause):
        old, self._conn = self._conn, None
        if old is not None:
            with contextlib.suppress(Exception):
                old.close()
        delay = 0.1
        while True:
            try:
                self._connect()
                logger.warning("reconnected to the latency store %s", self.path)
                return
            except CacheError as err:
                cause = err
            if time.monotonic() + delay > deadline:
                raise CacheError(f"lost the connection to the latency store {self.path} while trying to "
                                 f"{what} and could not reconnect within {self.reconnect_s:g} s ({cause}); "
                                 "every row stored before is kept: run again to measure only what is missing")
            time.sleep(delay)
            delay = min(delay * 2, 2.0)

    # -- lookups ----------------------------------------------------------------------
    def _rows(self, where="", args=()):
        """Validated records of ``SELECT ... FROM nas_hw_measurements <where>``."""
        raw = self._run(lambda c: c.execute(f"{_SELECT} {where}", args).fetchall(), "read rows")
        out = []
        for row in raw:
            try:
                out.append(read_record(row))
            except RowError as err:
                raise CacheError(f"{self.path}: {err}; that row was changed outside nas_hw and is never served: "
                                 "delete it with `nas-hw cache clear --fingerprint FP --signature SIG --yes` "
                                 "(it is then measured again)") from None
        return out

    def _load_fingerprint(self, fingerprint):
        for rec in self._rows("WHERE fingerprint = %s", (fingerprint,)):
            self._memo[(fingerprint, rec.signature)] = rec
        self._loaded.add(fingerprint)

    def peek(self, fingerprint, signature):
        """The stored :class:`Record` or ``None``, without touching the counters. A row this
        object has not seen yet is asked of the server (rows never change once stored)."""
        with self._thread_lock:
            if fingerprint not in self._loaded:
                self._load_fingerprint(fingerprint)
            rec = self._memo.get((fingerprint, signature))
            if rec is None:
                got = self._rows("WHERE fingerprint = %s AND signature = %s", (fingerprint, signature))
                if got:
                    rec = self._memo[(fingerprint, signature)] = got[0]
            return rec

    def put(self, fingerprint, signature, stats, settings=None, noop=False, fingerprint_info=None,
            replace=False):
        """Stores a measurement and returns the stored record: the first one stored wins, unless
        ``replace`` (a re-measurement that supersedes it).

        Raises:
            CacheError: the row fails validation (a NaN, infinite or negative timing, a run count
                below 1...), or the server refused it.
        """
        self._writable(f"store the measurement of {signature!r}")
        try:
            row = stats_row(fingerprint, signature, stats, dict(settings or {}), noop, time.time())
            info = None if fingerprint_info is None else check_info(fingerprint_info, "fingerprint_info")
        except (RowError, ValueError, TypeError) as err:
            raise CacheError(f"refusing to store an invalid measurement: {err}") from None
        conflict = ("DO UPDATE SET " + ", ".join(f"{c} = EXCLUDED.{c}" for c in COLUMNS[2:])) if replace \
            else "DO NOTHING"

        def work(c):
            if info is not None:
                c.execute("INSERT INTO nas_hw_fingerprints VALUES (%s, %s) ON CONFLICT DO NOTHING",
                          (fingerprint, info))
            c.execute(f"INSERT INTO nas_hw_measurements ({_COLS}) VALUES ({', '.join(['%s'] * len(COLUMNS))}) "
                      f"ON CONFLICT (fingerprint, signature) {conflict}", row)

        with self._thread_lock:
            self._run(work, f"store the measurement of {signature!r}")
            self._memo.pop((fingerprint, signature), None)
            stored = self.peek(fingerprint, signature)
            if stored is None:  # only if another client cleared the store at that moment
                raise CacheError(f"measurement for {signature!r} was not stored in {self.path}")
            return stored

    @contextlib.contextmanager
    def measuring_lock(self, fingerprint=None):
        """Exclusive across every client of this server measuring ``fingerprint`` (``None``: the
        whole store), and across this object's threads. Waits at most ``timeout_s``."""
        key = lock_key(f"measure:{fingerprint}" if fingerprint is not None else "measure")
        with self._thread_lock:
            acquire(self._run, key, f"fingerprint {fingerprint!r} in {self.path}", self.timeout_s)
            try:
                yield
            finally:
                conn = self._conn
                if conn is not None and not conn.broken and not conn.closed:
                    with contextlib.suppress(self._psycopg.Error):
                        conn.execute("SELECT pg_advisory_unlock(%s)", (key,))
                # a broken connection took its lock with it

    def forget(self):
        """Drops this object's in-process view; the server keeps every row."""
        with self._thread_lock:
            self._memo, self._loaded = {}, set()

    # -- whole-store operations -------------------------------------------------------
    def records(self, fingerprint=None, disturbed=None):
        """Every row (of one fingerprint), validated, sorted by fingerprint and signature.

        Args:
            disturbed: ``True``: only rows flagged disturbed; ``False``: only rows known clean;
                ``None``: all (rows of unknown quality included).
        """
        clauses, args = [], []
        if fingerprint is not None:
            clauses.append("fingerprint = %s")
            args.append(fingerprint)
        if disturbed is not None:
            clauses.append("disturbed = %s")
            args.append(int(bool(disturbed)))
        where = ("WHERE " + " AND ".join(clauses)) if clauses else ""
        return self._rows(where + " ORDER BY fingerprint, signature", tuple(args))

    def __len__(self):
        return self._run(lambda c: c.execute("SELECT COUNT(*) FROM nas_hw_measurements").fetchone()[0],
                         "count rows")

    def summary(self):
        """One dict per fingerprint: rows, their quality, total measured ms, oldest and newest row
        time (:func:`~nas_hw.measure.store.quality.summarize`)."""
        return summarize(self.records())

    def fingerprint_info(self):
        rows = self._run(lambda c: c.execute("SELECT fingerprint, info FROM nas_hw_fingerprints").fetchall(),
                         "read fingerprints")
        out = {}
        for fp, info in rows:
            try:
                out[fp] = json.loads(info)
            except (TypeError, ValueError, RecursionError):
                raise CacheError(f"{self.path}: the description of fingerprint {fp!r} is not JSON; it was "
                                 "changed outside nas_hw") from None
        return out

    def clear(self, fingerprint=None, signature=None):
        """Deletes rows (one row, one fingerprint's, or all); returns how many. Rows are deleted
        without being read, so a row changed outside nas_hw can be removed this way."""
        self._writable("delete rows")
        if signature is not None and fingerprint is None:
            raise ValueError("clearing one signature needs its fingerprint")

        def work(c):
            if signature is not None:
                return c.execute("DELETE FROM nas_hw_measurements WHERE fingerprint = %s AND signature = %s",
                                 (fingerprint, signature)).rowcount
            where, args = ("", ()) if fingerprint is None else (" WHERE fingerprint = %s", (fingerprint,))
            n = c.execute("DELETE FROM nas_hw_measurements" + where, args).rowcount
            c.execute("DELETE FROM nas_hw_blobs" + where, args)
            c.execute("DELETE FROM nas_hw_fingerprints" + where, args)
            return n

        with self._thread_lock:
            n = self._run(work, "delete rows")
            self.forget()
        return n

    def import_(self, path, overwrite=False):
        """Merges rows from a CSV/JSON export (rows keep their fingerprint), all or nothing.

        The whole file is validated first (size, then every field of every row, as an SQLite
        import); one malformed row refuses the whole file.

        Returns:
            the number of rows added (or replaced with ``overwrite``).
        """
        self._writable(f"import {os.fspath(path)!r}")
        source = ExportFile(path)
        source.check()
        return self.import_rows(source.rows(), source.fingerprints, overwrite)

    def import_rows(self, rows, info=None, overwrite=False):
        """Stores validated row tuples (:data:`COLUMNS` order) in one transaction; returns how many
        were added (or replaced with ``overwrite``). ``info``: fingerprint -> description (JSON
        text). A key repeated in ``rows``: the first wins, or the last with ``overwrite`` (as an
        SQLite import)."""
        self._writable("import rows")
        unique = {}
        for row in rows:
            if overwrite or (row[0], row[1]) not in unique:
                unique[(row[0], row[1])] = row
        conflict = ("DO UPDATE SET " + ", ".join(f"{c} = EXCLUDED.{c}" for c in COLUMNS[2:])) if overwrite \
            else "DO NOTHING"

        def work(c):
            for fp, text in (info or {}).items():
                c.execute("INSERT INTO nas_hw_fingerprints VALUES (%s, %s) ON CONFLICT DO NOTHING", (fp, text))
            c.execute("CREATE TEMP TABLE nas_hw_incoming (LIKE nas_hw_measurements) ON COMMIT DROP")
            with c.cursor().copy(f"COPY nas_hw_incoming ({_COLS}) FROM STDIN") as copy:
                for row in unique.values():
                    copy.write_row(row)
            return c.execute(f"INSERT INTO nas_hw_measurements ({_COLS}) SELECT {_COLS} FROM nas_hw_incoming "
                             f"ON CONFLICT (fingerprint, signature) {conflict}").rowcount

        with self._thread_lock:
            added = self._run(work, "import rows")
            self.forget()
        return added

    # -- small JSON documents (candidate tables, calibrations) --------------------------
    def put_blob(self, fingerprint, kind, name, payload):
        self._writable(f"store {kind}/{name}")
        text = json.dumps(payload, sort_keys=True)
        self._run(lambda c: c.execute(
            "INSERT INTO nas_hw_blobs VALUES (%s, %s, %s, %s, %s) ON CONFLICT (fingerprint, kind, name) "
            "DO UPDATE SET payload = EXCLUDED.payload, created = EXCLUDED.created",
            (fingerprint, kind, name, text, time.time())), f"store {kind}/{name}")

    def get_blob(self, fingerprint, kind, name):
        row = self._run(lambda c: c.execute(
            "SELECT payload FROM nas_hw_blobs WHERE fingerprint = %s AND kind = %s AND name = %s",
            (fingerprint, kind, name)).fetchone(), f"read {kind}/{name}")
        return None if row is None else json.loads(row[0])

    def blob_fingerprints(self, kind, name):
        """The fingerprints that hold a document ``kind/name``, sorted."""
        rows = self._run(lambda c: c.execute(
            "SELECT fingerprint FROM nas_hw_blobs WHERE kind = %s AND name = %s ORDER BY fingerprint",
            (kind, name)).fetchall(), f"look up {kind}/{name}")
        return [r[0] for r in rows]
