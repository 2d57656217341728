"""What a nas_hw SQLite cache file is: its mark, its schema, how one is recognised and created.

A cache is an SQLite file whose header carries nas_hw's ``application_id`` and the schema
version as ``user_version``; its tables are STRICT (a value of the wrong type is refused by
SQLite itself) and CHECK that every number is finite and in range (STRICT admits infinity in a
REAL column; ``BETWEEN`` bounds do not). A file is recognised from its header bytes before
SQLite opens it, so a file that is not ours is never opened for writing, and a new cache is
built beside its destination and linked into place whole, so a half-made cache never exists.
"""
import os
import sqlite3
import stat

from ...constants import (CACHE_APPLICATION_ID, CACHE_SCHEMA_VERSION, MAX_FINGERPRINT_CHARS, MAX_LOAD,
                          MAX_PEERS, MAX_RUNS, MAX_SETTINGS_BYTES, MAX_SIGNATURE_CHARS, MAX_SPREAD,
                          MAX_TIMING_S, OLDEST_ROW_TIME_S)
from ...errors import CacheError
from ...files import publish_new
from .rows import COLUMNS, LEGACY_COLUMNS

#: STRICT tables need SQLite 3.37 (2021-11); older libraries cannot open a schema-2 cache.
MIN_SQLITE = (3, 37, 0)
#: The schema of nas_hw before quality fields (read-only here; ``nas-hw cache migrate`` converts it).
LEGACY_VERSION = 1
_MAGIC = b"SQLite format 3\x00"

_T, _R, _FP = MAX_TIMING_S, MAX_RUNS, MAX_FINGERPRINT_CHARS
_CREATED = f"created REAL NOT NULL CHECK (created BETWEEN {OLDEST_ROW_TIME_S:.0f} AND 1e11)"
TABLES = {
    "measurements": f"""CREATE TABLE measurements (
    fingerprint TEXT NOT NULL CHECK (length(fingerprint) BETWEEN 1 AND {_FP}),
    signature   TEXT NOT NULL CHECK (length(signature) BETWEEN 1 AND {MAX_SIGNATURE_CHARS}),
    mean_s      REAL NOT NULL CHECK (mean_s BETWEEN 0 AND {_T:g}),
    median_s    REAL NOT NULL CHECK (median_s BETWEEN 0 AND {_T:g}),
    std_s       REAL NOT NULL CHECK (std_s BETWEEN 0 AND {_T:g}),
    min_s       REAL NOT NULL CHECK (min_s BETWEEN 0 AND {_T:g}),
    n_kept      INTEGER NOT NULL CHECK (n_kept BETWEEN 1 AND {_R}),
    n_measured  INTEGER NOT NULL CHECK (n_measured BETWEEN n_kept AND {_R}),
    value_s     REAL CHECK (value_s BETWEEN 0 AND {_T:g}),
    spread      REAL CHECK (spread BETWEEN 0 AND {MAX_SPREAD:g}),
    n_rounds    INTEGER NOT NULL CHECK (n_rounds BETWEEN 1 AND {_R}),
    load1       REAL CHECK (load1 BETWEEN 0 AND {MAX_LOAD:g}),
    peers       INTEGER CHECK (peers BETWEEN 0 AND {MAX_PEERS}),
    disturbed   INTEGER CHECK (disturbed IN (0, 1)),
    noop        INTEGER NOT NULL CHECK (noop IN (0, 1)),
    settings    TEXT NOT NULL CHECK (length(settings) BETWEEN 2 AND {MAX_SETTINGS_BYTES}),
    {_CREATED},
    CHECK (min_s <= median_s * 1.000000001 AND min_s <= mean_s * 1.000000001),
    PRIMARY KEY (fingerprint, signature)
) STRICT""",
    "fingerprints": f"""CREATE TABLE fingerprints (
    fingerprint TEXT NOT NULL PRIMARY KEY CHECK (length(fingerprint) BETWEEN 1 AND {_FP}),
    info        TEXT NOT NULL CHECK (length(info) BETWEEN 2 AND {MAX_SETTINGS_BYTES})
) STRICT""",
    "blobs": f"""CREATE TABLE blobs (
    fingerprint TEXT NOT NULL CHECK (length(fingerprint) BETWEEN 1 AND {_FP}),
    kind        TEXT NOT NULL,
    name        TEXT NOT NULL,
    payload     TEXT NOT NULL,
    {_CREATED},
    PRIMARY KEY (fingerprint, kind, name)
) STRICT""",
}
#: ``SELECT`` lists giving rows in :data:`~nas_hw.measure.store.rows.COLUMNS` order, per schema:
#: schema-1 rows have unknown quality (NULL) and were taken in one round.
_LEGACY_FILL = {"n_rounds": "1"}
SELECT = {
    CACHE_SCHEMA_VERSION: ",".join(COLUMNS),
    LEGACY_VERSION: ",".join(c if c in LEGACY_COLUMNS else _LEGACY_FILL.get(c, "NULL") for c in COLUMNS),
}
_expected = None


def sqlite_supported():
    return sqlite3.sqlite_version_info >= MIN_SQLITE


def require_sqlite():
    if not sqlite_supported():
        raise CacheError(f"nas_hw's latency cache needs SQLite >= {'.'.join(map(str, MIN_SQLITE))} (STRICT tables); "
                         f"this Python's sqlite3 module uses SQLite {sqlite3.sqlite_version}: use a Python "
                         "built against a newer SQLite (Python 3.10+ from python.org, conda, or pyenv on a "
                         "current distribution)")


def init_schema(conn, wal):
    """Writes the mark, the version and the tables into an empty database (a new file)."""
    conn.execute(f"PRAGMA application_id={CACHE_APPLICATION_ID}")
    conn.execute(f"PRAGMA user_version={CACHE_SCHEMA_VERSION}")
    if wal:
        conn.execute("PRAGMA journal_mode=WAL")
    with conn:
        for ddl in TABLES.values():
            conn.execute(ddl)


def create_file(path):
    """Creates a schema-2 cache at ``path`` if no file is there (whole or not at all).

    Returns:
        ``True`` if this call created it, ``False`` if another process did first.
    """
    require_sqlite()

    def build(tmp):
        conn = sqlite3.connect(tmp, isolation_level=None)
        try:
            init_schema(conn, wal=True)
        finally:
            conn.close()  # the last connection checkpoints: the header is in the file itself

    return publish_new(path, build)


def read_header(path):
    """What the file at ``path`` is, from its bytes alone (SQLite never opens it here).

    Returns:
        ``(kind, user_version)``: kind ``"missing"``, ``"ours"`` (nas_hw's mark), ``"maybe-legacy"``
        (no mark, ``user_version`` 1: a schema-1 nas_hw cache or another database that SQLite must
        tell apart, read-only), or ``"foreign"``.

    Raises:
        CacheError: the path is not a regular file, is empty, or is not an SQLite database.
    """
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return "missing", None
    except OSError as err:
        raise CacheError(f"cannot read cache file {path!r}: {err.strerror or err}") from None
    if not stat.S_ISREG(st.st_mode):
        raise CacheError(f"{path!r} is not a regular file, so not a nas_hw latency cache; it was left untouched")
    if st.st_size == 0:
        raise CacheError(f"{path!r} is an empty file, not a nas_hw latency cache; it was left untouched "
                         "(nas_hw creates a cache only where no file exists): delete it, or choose another path")
    try:
        with open(path, "rb") as fh:
            head = fh.read(100)
    except OSError as err:
        raise CacheError(f"cannot read cache file {path!r}: {err.strerror or err}") from None
    if len(head) < 100 or not head.startswith(_MAGIC):
        raise CacheError(f"{path!r} is not an SQLite database, so not a nas_hw latency cache; it was left untouched: "
                         "move it, or point NAS_HW_CACHE / --cache / cache.path elsewhere")
    user_version = int.from_bytes(head[60:64], "big")
    app_id = int.from_bytes(head[68:72], "big", signed=True)
    if app_id == CACHE_APPLICATION_ID:
        return "ours", user_version
    if app_id == 0 and user_version == LEGACY_VERSION:
        return "maybe-legacy", user_version
    return "foreign", user_version


def foreign_error(path, conn=None, user_version=None):
    """The refusal of an SQLite file without nas_hw's mark (named with what it holds, if known)."""
    what = ""
    if conn is not None:
        objs = conn.execute("SELECT type, name FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' "
                            "ORDER BY name LIMIT 6").fetchall()
        what = f", holding {', '.join(f'{t} {n}' for t, n in objs) or 'nothing'}"
    elif user_version is not None:
        what = f", user_version {user_version}"
    return CacheError(f"{path!r} is an SQLite database without nas_hw's mark (application_id){what}: not a nas_hw "
                      "latency cache; it was left untouched: point NAS_HW_CACHE / --cache / cache.path elsewhere")


def _expected_objects():
    global _expected
    if _expected is None:
        conn = sqlite3.connect(":memory:")
        init_schema(conn, wal=False)
        _expected = _objects(conn)
        conn.close()
    return _expected


def _objects(conn):
    return sorted(conn.execute("SELECT type, name, tbl_name, sql FROM sqlite_master").fetchall(),
                  key=lambda r: (r[0], r[1]))


def check_objects(conn, path, version):
    """Refuses a cache whose tables were changed outside nas_hw (a table no longer STRICT, a
    CHECK dropped, a trigger or view added): only the exact schema nas_hw wrote is used."""
    if version == CACHE_SCHEMA_VERSION:
        have, want = _objects(conn), _expected_objects()
        if have != want:
            odd = sorted({r[1] for r in set(have) ^ set(want)})
            raise CacheError(f"{path!r} carries nas_hw's mark but its schema was changed outside nas_hw "
                             f"(objects {odd} differ from schema {version}); it was left untouched")
        return
    objs = conn.execute("SELECT type, name FROM sqlite_master WHERE name NOT LIKE 'sqlite_autoindex%'").fetchall()
    tables = {n for t, n in objs if t == "table"}
    cols = tuple(r[1] for r in conn.execute("PRAGMA table_info(measurements)"))
    if tables != set(TABLES) or len(objs) != len(TABLES) or cols != LEGACY_COLUMNS:
        raise foreign_error(path, conn)
