"""The measuring lock: one process at a time measures into a store file.

Built on ``filelock`` (``fcntl.flock`` on POSIX, ``msvcrt`` locking on Windows): the lock is
released by the operating system when its holder dies, however it dies. Whoever holds it writes
who it is (pid, host, start time, command) into a note ``<lock>.holder``, so a process that
has to wait says what it waits for, and one that gives up after ``timeout_s`` names the holder
in one line instead of waiting forever behind a stopped or hung peer.
"""
import contextlib
import datetime
import json
import logging
import os
import socket
import stat
import sys
import time

import filelock

from ...errors import CacheError
from ...files import FILE_MODE

logger = logging.getLogger(__name__)

#: Seconds between two "still waiting" messages (the first is INFO, later ones WARNING).
REPORT_EVERY_S = 10.0
_HOLDER_BYTES = 512


def holder_path(lock_path):
    return lock_path + ".holder"


def _refuse_link(path):
    """The lock file is a predictable name beside the cache: a link planted there is refused
    (older filelock releases open it without O_NOFOLLOW, and truncating through it would empty
    another file)."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISLNK(st.st_mode) or not stat.S_ISREG(st.st_mode):
        raise CacheError(f"refusing to use lock file {path!r}: it is a symbolic link or not a regular file; "
                         "nas_hw never locks through a link: remove it")


def read_holder(lock_path):
    """What the last holder wrote about itself (a dict), or ``None`` if nothing readable is there."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(holder_path(lock_path), flags)
    except OSError:
        return None
    try:
        with os.fdopen(fd, "rb") as fh:
            data = json.loads(fh.read(_HOLDER_BYTES).decode("utf-8"))  # (trailing blanks: padding)
    except (OSError, ValueError, RecursionError):
        return None
    return data if isinstance(data, dict) else None


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (OSError, ValueError, OverflowError):
        return True  # exists but not ours, or cannot tell
    return True


def describe_holder(info, now=None):
    """One phrase naming the holder: ``pid 123 on host h (python search.py) since 2024-... (40 s)``."""
    if not info:
        return "an unknown process (it wrote nothing about itself)"
    pid, host, since = info.get("pid"), info.get("host"), info.get("since")
    parts = [f"pid {pid!r}"]
    if host:
        parts.append(f"on {str(host)[:64]}")
    if info.get("command"):
        parts.append(f"({str(info['command'])[:80]})")
    if isinstance(since, (int, float)) and not isinstance(since, bool):
        stamp = datetime.datetime.fromtimestamp(since, tz=datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
        parts.append(f"since {stamp} ({(now or time.time()) - since:.0f} s ago)")
    if host == socket.gethostname()[:120] and isinstance(pid, int) and not isinstance(pid, bool) and not _alive(pid):
        parts.append("[that process is gone]")
    return " ".join(parts)


class MeasuringLock:
    """An exclusive, cross-process lock on ``path`` with a bounded, talkative wait.

    Args:
        path: the lock file (created if missing).
        timeout_s: how long :meth:`hold` waits before raising :class:`CacheError`.
    """

    def __init__(self, path, timeout_s):
        self.path = os.fspath(path)
        self.timeout_s = float(timeout_s)
        self._lock = filelock.FileLock(self.path, timeout=-1)

    def _write_holder(self):
        """Who holds the lock, for waiters. Rewritten at every acquisition and never removed: the
        note always names the current holder while the lock is held (a stale one names a process
        that is gone, which :func:`describe_holder` says). A plain write, not an atomic one: it
        is read only to inform, a reader tolerates a torn note, and it costs a tenth as much on
        a path taken once per measured layer. ``O_NOFOLLOW``: a link planted there is refused."""
        info = {"pid": os.getpid(), "host": socket.gethostname()[:120], "since": time.time(),
                "command": " ".join(os.path.basename(a) if i == 0 else a for i, a in enumerate(sys.argv))[:160]}
        # Overwritten in place at a fixed size, never truncated: truncating and rewriting a file
        # makes some file systems (ext4) flush it to disk, milliseconds per measured layer.
        data = json.dumps(info).encode("utf-8")[:_HOLDER_BYTES].ljust(_HOLDER_BYTES)
        flags = os.O_WRONLY | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0)
        with contextlib.suppress(OSError):  # the note is a courtesy to waiters, never a reason to fail
            fd = os.open(holder_path(self.path), flags, FILE_MODE)
            try:
                os.write(fd, data)
            finally:
                os.close(fd)

    def _acquire(self):
        _refuse_link(self.path)
        start = time.monotonic()
        next_report, chunk = 0.0, 0.0  # one quick try first, then waits of up to REPORT_EVERY_S
        while True:
            try:
                self._lock.acquire(timeout=chunk, poll_interval=0.05)
                return
            except filelock.Timeout:
                pass
            except OSError as err:
                raise CacheError(f"cannot lock {self.path!r}: {err.strerror or err}") from None
            waited = time.monotonic() - start
            holder = describe_holder(read_holder(self.path))
            if waited >= self.timeout_s:
                raise CacheError(f"gave up after {self.timeout_s:g} s waiting for the measuring lock {self.path!r}, "
                                 f"held by {holder}: if that process is stopped or hung, resume or end it, "
                                 "or raise the cache's timeout_s")
            if waited >= next_report:
                level = logging.INFO if next_report == 0.0 else logging.WARNING
                logger.log(level, "waiting for the measuring lock %s (up to %g s in all), held by %s",
                           self.path, self.timeout_s, holder)
                next_report = waited + REPORT_EVERY_S
            chunk = max(0.0, min(self.timeout_s - waited, REPORT_EVERY_S))

    @contextlib.contextmanager
    def hold(self):
        """Holds the lock while the block runs (re-entrant within one thread)."""
        nested = self._lock.is_locked
        self._acquire()
        try:
            if not nested:
                self._write_holder()
            yield
        finally:
            self._lock.release()
