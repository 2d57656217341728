"""The server store's locks: PostgreSQL session advisory locks, keyed by a name (a fingerprint's
measuring lock, the lock that serialises creating the tables). A session lock is released when
its client's connection ends, however the client ends."""
import hashlib
import logging
import time

from ...errors import CacheError

logger = logging.getLogger(__name__)


def lock_key(name):
    """A signed 64-bit advisory-lock key for ``name`` (stable across hosts and versions)."""
    return int.from_bytes(hashlib.sha256(f"nas_hw:{name}".encode()).digest()[:8], "big", signed=True)


def acquire(run, key, what, timeout_s):
    """Takes advisory lock ``key`` through ``run(work, what)`` (the store's retrying runner),
    polling ``pg_try_advisory_lock``; ``what`` names the lock in messages.

    Raises:
        CacheError: still held by another client after ``timeout_s`` (one line naming it).
    """
    start = time.monotonic()
    delay, told = 0.02, False
    while not run(lambda c: c.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()[0],
                  "take the measuring lock"):
        waited = time.monotonic() - start
        if waited >= timeout_s:
            raise CacheError(f"waited {waited:.0f} s (timeout_s={timeout_s:g}) for the measuring lock of {what}, "
                             f"held by {holder(run, key)}")
        if not told and waited > 2.0:
            logger.info("waiting for the measuring lock of %s, held by %s", what, holder(run, key))
            told = True
        time.sleep(min(delay, max(0.0, timeout_s - waited)))
        delay = min(delay * 2, 0.5)


def holder(run, key):
    """Who holds advisory lock ``key``: the client's application name (nas_hw sets it to
    ``nas_hw <host>:<pid>``), its address and since when it is connected."""
    hi, lo = (key >> 32) & 0xFFFFFFFF, key & 0xFFFFFFFF
    row = run(lambda c: c.execute(
        "SELECT a.application_name, a.client_addr::text, a.pid, a.backend_start FROM pg_locks l "
        "LEFT JOIN pg_stat_activity a ON a.pid = l.pid WHERE l.locktype = 'advisory' AND l.granted "
        "AND l.classid::bigint = %s AND l.objid::bigint = %s AND l.objsubid = 1", (hi, lo)).fetchone(),
        "find the lock's holder")
    if row is None:
        return "a client that just released it"
    app, addr, pid, since = row
    return (f"{app or 'a client'} (server process {pid}, from {addr or 'a local socket'}, "
            f"connected since {since:%Y-%m-%d %H:%M:%S %Z})" if since else f"server process {pid}")
