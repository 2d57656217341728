"""Which other processes measure into the same latency store.

A small registry next to the store file, ``<store>.measuring/``: a process that measures into
the store puts one file there (``<host>-<pid>.json``: pid, host, the process's start time, its
command) and takes it away when it is done (at exit at the latest). Another process lists the
files and keeps the entries of live processes on the same host; an entry whose process is gone
(killed, crashed) or whose pid was reused by another program (its start time differs) is stale
and is removed (the registry is nas_hw's own).

A registered process is one that measures or measured into the store during its life: a search
job that built its table and now trains stays registered, which is what a measurement in
another process wants to know (that job competes for the cores).

The store's measuring lock (:mod:`nas_hw.measure.store.lock`) serialises the measurements
themselves; this registry only says who else is around.
"""
import json
import logging
import os
import socket
import sys
import time
import weakref

from ..files import atomic_write

logger = logging.getLogger(__name__)

SUFFIX = ".measuring"


def registry_dir(cache_path):
    """The registry directory of the store at ``cache_path`` (``None`` for an in-memory store or a
    server store: a ``postgresql://`` store has no file to sit beside, and no peers are counted)."""
    if cache_path is None or os.fspath(cache_path) == ":memory:" or "://" in os.fspath(cache_path):
        return None  # in memory, or a server store (whose processes may be on other hosts)
    return os.fspath(cache_path) + SUFFIX


def _start_time(pid):
    """The process's start time in clock ticks since boot (``/proc/<pid>/stat``), or ``None``."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            text = fh.read()
        return int(text.rsplit(")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def _alive(entry):
    pid = entry.get("pid")
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        pass
    except OSError:
        return False
    started = entry.get("started_ticks")
    return started is None or _start_time(pid) in (None, started)


class Registration:
    """This process's entry in a store's registry; :meth:`close` (or exit) removes it."""

    def __init__(self, cache_path):
        self.path = None
        directory = registry_dir(cache_path)
        if directory is None:
            return
        entry = {"pid": os.getpid(), "host": socket.gethostname(), "started_ticks": _start_time(os.getpid()),
                 "registered": time.time(), "command": " ".join(sys.argv)[:200]}
        path = os.path.join(directory, f"{entry['host']}-{entry['pid']}.json")
        try:
            os.makedirs(directory, exist_ok=True)
            with atomic_write(path, sync=False) as fh:  # never seen half-written by a reader
                json.dump(entry, fh)
        except OSError as err:  # an unwritable directory: measuring still works, peers are unknown
            logger.info("cannot register in %s (%s): other measuring processes will not see this one",
                        directory, err)
            return
        self.path = path
        self._finalizer = weakref.finalize(self, _remove, path)

    def close(self):
        if self.path is not None:
            self._finalizer()
            self.path = None


def _remove(path):
    try:
        os.remove(path)
    except OSError:
        pass


_registrations = {}  # registry directory -> this process's Registration (one per store per process)


def register(cache_path):
    """Registers this process as measuring into the store at ``cache_path`` (once per process and
    store; the entry stays until exit). Returns the :class:`Registration`."""
    directory = registry_dir(cache_path)
    reg = _registrations.get((directory, os.getpid()))
    if reg is None or (reg.path is not None and not os.path.exists(reg.path)):
        reg = _registrations[(directory, os.getpid())] = Registration(cache_path)
    return reg


def measuring_peers(cache_path):
    """The other live processes on this host registered as measuring into the store at
    ``cache_path``: a list of their entries (dicts with ``pid``, ``command``...). Stale entries
    are removed. An in-memory store has none."""
    directory = registry_dir(cache_path)
    if directory is None or not os.path.isdir(directory):
        return []
    host, me = socket.gethostname(), os.getpid()
    peers = []
    try:
        names = sorted(os.listdir(directory))
    except OSError:
        return []
    for name in names:
        if not name.endswith(".json"):
            continue
        path = os.path.join(directory, name)
        try:
            with open(path) as fh:
                entry = json.load(fh)
        except (OSError, ValueError):
            continue  # being written, or not ours to judge
        if not isinstance(entry, dict) or entry.get("host") != host:
            continue  # another machine sharing the file system: its processes cannot be checked
        if entry.get("pid") == me:
            continue
        if _alive(entry):
            peers.append(entry)
        else:
            _remove(path)
    return peers


def count_peers(cache_path):
    """``len(measuring_peers(cache_path))``."""
    return len(measuring_peers(cache_path))
