"""Hostile and old files for the store tests, made with plain ``sqlite3`` and plain file writes
(never through nas_hw), and a way to see that a file was left exactly as it was."""
import hashlib
import json
import os
import sqlite3

#: The schema nas_hw 0.x released (schema 1, on main before issue 16), as its sqlite.py wrote it.
SCHEMA_1 = """
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
NOW = 1.75e9
#: A valid JSON export row (typed values).
GOOD_ROW = {"fingerprint": "cpu|fuzz", "signature": "fn:ReLU|in=1x8:float32", "mean_s": 1e-4, "median_s": 1e-4,
            "std_s": 1e-6, "min_s": 9e-5, "n_kept": 10, "n_measured": 10, "value_s": 1e-4, "spread": 0.02,
            "n_rounds": 5, "load1": 0.5, "peers": 0, "disturbed": 0, "noop": 0, "settings": "{}",
            "created": NOW}


def legacy_row(i, fp="cpu|old", **over):
    row = dict(fingerprint=fp, signature=f"fn:Old{i}", mean_s=1e-3 * (i + 1), median_s=1e-3 * (i + 1),
               std_s=0.0, min_s=1e-3 * (i + 1), n_kept=3, n_measured=3, noop=0,
               settings=json.dumps({"n_run": 3}), created=NOW + i)
    row.update(over)
    return row


def make_schema1(path, rows=(), wal=True, info=None, blobs=()):
    """A cache as the released nas_hw (schema 1) left it."""
    conn = sqlite3.connect(path)
    if wal:
        conn.execute("PRAGMA journal_mode=WAL")
    conn.executescript(SCHEMA_1)
    conn.execute("PRAGMA user_version=1")
    cols = ("fingerprint", "signature", "mean_s", "median_s", "std_s", "min_s", "n_kept", "n_measured",
            "noop", "settings", "created")
    for row in rows:
        conn.execute(f"INSERT INTO measurements ({','.join(cols)}) VALUES ({','.join('?' * len(cols))})",
                     [row[c] for c in cols])
    for fp, desc in (info or {}).items():
        conn.execute("INSERT INTO fingerprints VALUES (?, ?)", (fp, json.dumps(desc)))
    for blob in blobs:
        conn.execute("INSERT INTO blobs VALUES (?, ?, ?, ?, ?)", blob)
    conn.commit()
    conn.close()


def raw_sql(path, *statements, ignore_checks=False):
    """Runs statements on ``path`` with plain sqlite3 (a user's tool, not nas_hw)."""
    conn = sqlite3.connect(path)
    try:
        if ignore_checks:
            conn.execute("PRAGMA ignore_check_constraints=ON")
        for st in statements:
            if isinstance(st, tuple):
                conn.execute(*st)
            else:
                conn.execute(st)
        conn.commit()
    finally:
        conn.close()


def snapshot(path):
    """The file's bytes digest, size and modification time (``None`` when absent)."""
    if not os.path.lexists(path):
        return None
    st = os.lstat(path)
    with open(path, "rb") as fh:
        digest = hashlib.sha256(fh.read()).hexdigest()
    return digest, st.st_size, st.st_mtime_ns


def listing(directory):
    return sorted(os.listdir(directory))
