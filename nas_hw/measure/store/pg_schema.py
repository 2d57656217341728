"""The server store's tables: their definition, how a database is recognised as a nas_hw store
(``nas_hw_meta``) and how they are created once when several clients open an empty database.
"""
import time

from ...constants import CACHE_SCHEMA_VERSION
from ...errors import CacheError
from .pg_lock import lock_key
from .rows import COLUMNS, STAT_FIELDS

#: The server tables' version: the rows' format version, the SQLite store's (their columns are
#: :data:`~nas_hw.measure.store.rows.COLUMNS`).
SERVER_SCHEMA_VERSION = CACHE_SCHEMA_VERSION
APPLICATION = "nas_hw"
TABLES = ("nas_hw_meta", "nas_hw_measurements", "nas_hw_fingerprints", "nas_hw_blobs")

# NaN sorts above +Infinity in PostgreSQL, so "< 'Infinity'" refuses both.
_FINITE = "{0} >= 0 AND {0} < 'Infinity'"
#: The column of each row field (the rows' fields are :data:`~nas_hw.measure.store.rows.COLUMNS`;
#: the quality fields are used once the rows carry them). Range and type checks of every field
#: are the rows' validation's; these CHECKs refuse what any other client might write.
_COLUMN_SQL = {
    "fingerprint": "text NOT NULL",
    "signature": "text NOT NULL",
    **{f: f"double precision NOT NULL CHECK ({_FINITE.format(f)})" for f in STAT_FIELDS},
    "n_kept": "integer NOT NULL CHECK (n_kept >= 1)",
    "n_measured": "integer NOT NULL CHECK (n_measured >= n_kept)",
    "value_s": f"double precision CHECK ({_FINITE.format('value_s')})",
    "spread": f"double precision CHECK ({_FINITE.format('spread')})",
    "n_rounds": "integer NOT NULL DEFAULT 1 CHECK (n_rounds >= 1)",
    "load1": f"double precision CHECK ({_FINITE.format('load1')})",
    "peers": "integer CHECK (peers >= 0)",
    "disturbed": "smallint CHECK (disturbed IN (0, 1))",
    "noop": "smallint NOT NULL DEFAULT 0 CHECK (noop IN (0, 1))",
    "settings": "text NOT NULL",
    "created": f"double precision NOT NULL CHECK ({_FINITE.format('created')})",
}
_SCHEMA = [
    "CREATE TABLE IF NOT EXISTS nas_hw_meta (key text PRIMARY KEY, value text NOT NULL)",
    "CREATE TABLE IF NOT EXISTS nas_hw_measurements ("
    + "".join(f" {c} {_COLUMN_SQL[c]}," for c in COLUMNS) + " PRIMARY KEY (fingerprint, signature))",
    "CREATE TABLE IF NOT EXISTS nas_hw_fingerprints (fingerprint text PRIMARY KEY, info text NOT NULL)",
    "CREATE TABLE IF NOT EXISTS nas_hw_blobs (fingerprint text NOT NULL, kind text NOT NULL,"
    " name text NOT NULL, payload text NOT NULL, created double precision NOT NULL,"
    " PRIMARY KEY (fingerprint, kind, name))",
]


#: Serialises creating the tables (two first clients at once).
_SCHEMA_LOCK = lock_key("schema")


def _tables(conn):
    """nas_hw's tables present in the connection's schema (one statement: one snapshot)."""
    row = conn.execute("SELECT " + ", ".join(["to_regclass(%s) IS NOT NULL"] * len(TABLES)), TABLES).fetchone()
    return [t for t, present in zip(TABLES, row) if present]


def check_schema(conn, path, create, timeout_s=60.0):
    """Whether the connection's schema holds a nas_hw store, creating its tables in an empty one
    when ``create``; ``path`` (the redacted URL) names it in errors; ``timeout_s`` bounds the wait
    for another client that is creating them.

    Raises:
        CacheError: tables of nas_hw's names that nas_hw did not mark, or another version.
        psycopg.Error: the server refused a statement (the caller turns it into one line).
    """
    found = _tables(conn)
    if set(found) != set(TABLES):
        # None or some of them: another client may be creating them right now (it holds
        # this lock while it does). Looked at again under the lock, each statement its own
        # transaction, so what that client committed is seen.
        deadline = time.monotonic() + timeout_s
        while not conn.execute("SELECT pg_try_advisory_lock(%s)", (_SCHEMA_LOCK,)).fetchone()[0]:
            if time.monotonic() > deadline:
                raise CacheError(f"{path}: another client has held the lock that guards creating nas_hw's "
                                 f"tables for over {timeout_s:g} s (timeout_s); is it stopped?")
            time.sleep(0.05)
        try:
            found = _tables(conn)
            if not found and create:
                with conn.transaction():
                    for stmt in _SCHEMA:
                        conn.execute(stmt)
                    conn.execute("INSERT INTO nas_hw_meta VALUES ('application', %s), "
                                 "('schema_version', %s)", (APPLICATION, str(SERVER_SCHEMA_VERSION)))
                found = _tables(conn)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_SCHEMA_LOCK,))
    if not found:
        return False
    if "nas_hw_meta" not in found:
        raise CacheError(f"{path} holds table(s) {found} but no nas_hw_meta: not a nas_hw "
                         "latency store; it was left untouched (use another database or schema)")
    meta = dict(conn.execute("SELECT key, value FROM nas_hw_meta").fetchall())
    if meta.get("application") != APPLICATION:
        raise CacheError(f"{path}: nas_hw_meta does not mark a nas_hw latency store "
                         f"(application={meta.get('application')!r}); it was left untouched")
    if meta.get("schema_version") != str(SERVER_SCHEMA_VERSION) or set(found) != set(TABLES):
        raise CacheError(f"{path} has store schema version {meta.get('schema_version')!r} "
                         f"(tables {sorted(found)}), this nas_hw reads version {SERVER_SCHEMA_VERSION}; "
                         "copy it with the nas_hw that wrote it (`nas-hw cache copy`) into another database")
    return True
