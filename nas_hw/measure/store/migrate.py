"""Converting a schema-1 cache (nas_hw before rows kept their quality) to schema 2.

Rows keep every value they had; the quality fields they never had are stored as unknown
(NULL: no robust value, spread, load, peer count or verdict), and ``n_rounds`` is 1 (schema-1
nas_hw took each row's runs in one go). Every row is validated on the way: a row changed
outside nas_hw stops the migration, naming it, before anything is written.

Two ways, both asked for explicitly (``nas-hw cache migrate OLD [NEW]``):

- to a new file ``NEW`` (which must not exist): ``OLD`` is only read, never written;
- in place: ``OLD`` is first copied whole to ``OLD.schema1`` (which must not exist), then its
  tables are converted in one SQLite transaction, under the measuring lock: a crash leaves
  the old schema or the new one, never a mix.
"""
import os
import pathlib
import sqlite3

from ...constants import CACHE_APPLICATION_ID, CACHE_SCHEMA_VERSION
from ...errors import CacheError
from ...files import publish_new
from .rows import COLUMNS, RowError, check_info, read_record
from .schema import LEGACY_VERSION, SELECT, TABLES, init_schema
from .sqlite import LatencyCache

BACKUP_SUFFIX = ".schema1"
_INSERT = f"INSERT INTO measurements ({','.join(COLUMNS)}) VALUES ({','.join('?' * len(COLUMNS))})"


def _legacy_rows(conn, table, path):
    for row in conn.execute(f"SELECT {SELECT[LEGACY_VERSION]} FROM {table}"):
        try:
            rec = read_record(row)
        except RowError as err:
            raise CacheError(f"{path!r}: {err}; nothing was migrated: delete that row with an older nas_hw, or "
                             "export the others") from None
        r = rec.as_row()
        yield tuple(r[c] for c in COLUMNS)


def _copy(dst, src, path, suffix=""):
    """Copies the legacy tables of ``src`` (names + ``suffix``) into the schema-2 tables of ``dst``."""
    n = 0
    for row in _legacy_rows(src, "measurements" + suffix, path):
        dst.execute(_INSERT, row)
        n += 1
    for fp, info in src.execute(f"SELECT fingerprint, info FROM fingerprints{suffix}").fetchall():
        try:
            dst.execute("INSERT INTO fingerprints VALUES (?, ?)", (fp, check_info(info, f"fingerprint {fp!r}")))
        except RowError as err:
            raise CacheError(f"{path!r}: {err}; nothing was migrated") from None
    dst.executemany("INSERT INTO blobs VALUES (?, ?, ?, ?, ?)",
                    src.execute(f"SELECT fingerprint, kind, name, payload, created FROM blobs{suffix}").fetchall())
    return n


def _open_legacy(old):
    """The schema-1 file read-only (all rows validated once); refuses anything else."""
    if not os.path.exists(old):
        raise CacheError(f"no cache file at {old!r}: nothing to migrate")
    cache = LatencyCache(old, readonly=True)
    if cache.schema != LEGACY_VERSION:
        cache.close()
        raise CacheError(f"{old!r} is already a schema-{CACHE_SCHEMA_VERSION} nas_hw cache: nothing to migrate")
    cache.records()  # every row validated before anything is written
    return cache


def migrate_to(old, new):
    """Writes a schema-2 copy of the schema-1 cache ``old`` at ``new`` (``old`` is only read).

    Returns:
        the number of rows migrated.
    """
    if os.path.lexists(new):
        raise CacheError(f"{new!r} exists: migrate into a new file (nothing was written)")
    src = _open_legacy(old)
    count = []

    def build(tmp):
        dst = sqlite3.connect(tmp, isolation_level=None)
        try:
            init_schema(dst, wal=True)
            with dst:
                dst.execute("BEGIN")
                count.append(_copy(dst, src.conn, old))
        finally:
            dst.close()

    try:
        if not publish_new(new, build):
            raise CacheError(f"{new!r} appeared while migrating: nothing was written there")
    finally:
        src.close()
    return count[0]


def migrate_in_place(old):
    """Converts the schema-1 cache ``old`` itself, after copying it whole to ``old + '.schema1'``.

    Returns:
        ``(rows migrated, backup path)``.
    """
    backup = old + BACKUP_SUFFIX
    src = _open_legacy(old)
    try:
        if os.path.lexists(backup):
            raise CacheError(f"{backup!r} exists (an earlier migration's copy?): move it away first; nothing was "
                             "changed")
        with src.measuring_lock():
            publish_new(backup, lambda tmp: _backup(src.conn, tmp))
            uri = pathlib.Path(os.path.abspath(old)).as_uri() + "?mode=rw"
            conn = sqlite3.connect(uri, uri=True, isolation_level=None, timeout=src.timeout_s)
            try:
                n = _convert(conn, old)
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # the new mark into the file's own header
            finally:
                conn.close()
    finally:
        src.close()
    return n, backup


def _backup(conn, tmp):
    dst = sqlite3.connect(tmp)
    try:
        conn.backup(dst)
    finally:
        dst.close()


def _convert(conn, path):
    conn.execute("BEGIN IMMEDIATE")
    try:
        app_id = conn.execute("PRAGMA application_id").fetchone()[0]
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if (app_id, version) != (0, LEGACY_VERSION):
            raise CacheError(f"{path!r} changed while migrating (application_id {app_id}, user_version {version}); "
                             "nothing was changed")
        for table in TABLES:
            conn.execute(f"ALTER TABLE {table} RENAME TO {table}_schema1")
        for ddl in TABLES.values():
            conn.execute(ddl)
        n = _copy(conn, conn, path, suffix="_schema1")
        for table in TABLES:
            conn.execute(f"DROP TABLE {table}_schema1")
        conn.execute(f"PRAGMA application_id={CACHE_APPLICATION_ID}")
        conn.execute(f"PRAGMA user_version={CACHE_SCHEMA_VERSION}")
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return n
