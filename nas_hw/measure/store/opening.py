"""Opening a store file: recognising it (before SQLite writes anything), creating it where no
file exists, and choosing SQLite's read-write or read-only mode."""
import logging
import os
import pathlib
import sqlite3

from ...constants import CACHE_APPLICATION_ID, CACHE_SCHEMA_VERSION
from ...errors import CacheError
from .schema import (LEGACY_VERSION, check_objects, create_file, foreign_error, init_schema, read_header,
                     require_sqlite)

logger = logging.getLogger(__name__)

MEMORY = ":memory:"


def migrate_hint(path):
    return (f"{path!r} is a nas_hw cache of schema {LEGACY_VERSION} (before rows kept their quality); this nas_hw "
            f"writes schema {CACHE_SCHEMA_VERSION} and reads that file read-only only: convert it with `nas-hw cache "
            f"migrate {path}` (in place, keeping the old file as {path + '.schema1'!r}) or `nas-hw cache migrate "
            f"{path} NEW` (a new file), then run again")


def _connection(target, timeout_s, uri=False):
    conn = sqlite3.connect(target, timeout=timeout_s, isolation_level=None, check_same_thread=False, uri=uri)
    conn.execute(f"PRAGMA busy_timeout={int(timeout_s * 1000)}")
    conn.execute("PRAGMA trusted_schema=OFF")  # a file's schema never runs functions with side effects
    return conn


def _empty(timeout_s):
    conn = _connection(MEMORY, timeout_s)
    init_schema(conn, wal=False)
    return conn, CACHE_SCHEMA_VERSION


def _check_directory(path, readonly):
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise CacheError(f"cache directory {directory!r} does not exist (cache path {path!r}); "
                         "create it or set NAS_HW_CACHE to a file in an existing directory")
    if not readonly and not os.access(directory, os.W_OK):
        raise CacheError(f"cache directory {directory!r} is not writable (cache path {path!r}); "
                         "set NAS_HW_CACHE to a writable location")
    if os.path.exists(path) and not os.access(path, os.R_OK if readonly else os.R_OK | os.W_OK):
        raise CacheError(f"cache file {path!r} is not readable" + ("" if readonly else " and writable"))


def _newer(path, version):
    return CacheError(f"{path!r} is a nas_hw cache of schema {version}; this nas_hw reads schema "
                      f"{CACHE_SCHEMA_VERSION} (and {LEGACY_VERSION}): use the nas_hw that wrote it, or move the "
                      "file away; it was left untouched")


def _check_file(conn, path, readonly):
    app_id = conn.execute("PRAGMA application_id").fetchone()[0]
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if app_id == CACHE_APPLICATION_ID:
        if version != CACHE_SCHEMA_VERSION:
            raise _newer(path, version)
    elif app_id != 0 or version != LEGACY_VERSION:
        raise foreign_error(path, conn)
    check_objects(conn, path, version)
    if version == LEGACY_VERSION and not readonly:
        raise CacheError(migrate_hint(path))
    # The file's structure only: a row breaking a CHECK (changed outside nas_hw) is named when
    # it is read (check_row), and `nas-hw cache clear --signature` can still delete it.
    conn.execute("PRAGMA ignore_check_constraints=ON")
    check = conn.execute("PRAGMA quick_check").fetchone()[0]
    conn.execute("PRAGMA ignore_check_constraints=OFF")
    if check != "ok":
        raise CacheError(f"{path!r} failed SQLite's integrity check ({' '.join(check.split())[:200]}); "
                         "it was left untouched")
    return version


def open_store(path, readonly, timeout_s):
    """An SQLite connection to the cache at ``path`` and its schema version.

    ``":memory:"`` gives a fresh empty cache; a missing file is created whole (read-write) or
    read as an empty cache (read-only, nothing created). An existing file is recognised from
    its header bytes first, then opened with SQLite's ``mode=rw`` or ``mode=ro`` (never
    created by SQLite) and checked: nas_hw's mark, its exact schema, SQLite's structure check.

    Raises:
        CacheError: the file is not a usable nas_hw cache (it is left untouched).
    """
    require_sqlite()
    if path == MEMORY:
        return _empty(timeout_s)
    _check_directory(path, readonly)
    kind, version = read_header(path)
    if kind == "missing" and readonly:
        logger.info("no cache file at %s: reading it as an empty cache (nothing is created)", path)
        return _empty(timeout_s)
    if kind == "missing":
        create_file(path)  # False: another process created it first, which is as good
        kind, version = read_header(path)
    if kind == "foreign":
        raise foreign_error(path, user_version=version)
    if kind == "ours" and version != CACHE_SCHEMA_VERSION:
        raise _newer(path, version)
    conn = None
    try:
        uri = pathlib.Path(os.path.abspath(path)).as_uri() + ("?mode=ro" if readonly else "?mode=rw")
        conn = _connection(uri, timeout_s, uri=True)
        return conn, _check_file(conn, path, readonly)
    except BaseException as err:
        if conn is not None:  # never keep a handle on a file we refused
            conn.close()
        if not isinstance(err, sqlite3.DatabaseError):
            raise
        raise CacheError(f"{path!r} is not a usable nas_hw latency cache ({' '.join(str(err).split())}); it was "
                         "left untouched: move or delete it, or point NAS_HW_CACHE elsewhere") from err
