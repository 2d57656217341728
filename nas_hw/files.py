"""Writing files safely: the one way nas_hw puts a whole file on disk.

Every file nas_hw writes whole (cache exports, reports, candidate tables, checkpoints, a new
cache) goes through :func:`atomic_write` or :func:`publish_new`:

- the content is written to a temporary file created exclusively (``O_EXCL``, a random name,
  never following a link) in the destination's own directory, flushed to disk, then moved into
  place in one step: a reader sees the old file or the new one, never half of one;
- a destination that is a symbolic link (or a directory, a device...) is refused with one line,
  never written through; a link planted after that check is replaced, never followed, since the
  final move renames over the directory entry itself;
- any write error (a full disk, a file-size limit, a vanished directory) removes the temporary
  file and raises :class:`~nas_hw.errors.FileWriteError` in one line naming the destination.
"""
import contextlib
import errno
import os
import stat
import sys
import tempfile

from .errors import FileWriteError


def _umask():
    """The process umask (read once: ``os.umask`` can only be read by setting it)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


#: The mode a plain ``open(path, "w")`` would give a new file.
FILE_MODE = 0o666 & ~_umask()


def check_destination(path):
    """Refuses a destination nas_hw must not write: a symbolic link, or anything but a regular
    file where something already exists. Returns the absolute path."""
    path = os.fspath(path)
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return os.path.abspath(path)
    except OSError as err:
        raise FileWriteError(f"cannot write {path!r}: {err.strerror or err}") from None
    if stat.S_ISLNK(st.st_mode):
        try:
            target = os.readlink(path)
        except OSError:
            target = "?"
        raise FileWriteError(f"refusing to write {path!r}: it is a symbolic link (to {target!r}); nas_hw never "
                             "writes through a link: remove the link or choose another file")
    if not stat.S_ISREG(st.st_mode):
        raise FileWriteError(f"refusing to write {path!r}: it exists and is not a regular file")
    return os.path.abspath(path)


def _temp_beside(path):
    directory, name = os.path.split(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=directory or ".")
    except OSError as err:
        raise FileWriteError(f"cannot write {path!r}: {err.strerror or err} (creating a temporary file in "
                             f"{directory or '.'!r})") from None
    return fd, tmp


def _remove(*paths):
    for p in paths:
        with contextlib.suppress(OSError):
            os.unlink(p)


def _sync_directory(directory):
    if sys.platform == "win32":
        return
    with contextlib.suppress(OSError):
        fd = os.open(directory or ".", os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _write_error(path, err):
    reason = err.strerror if isinstance(err, OSError) and err.strerror else str(err)
    if isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        reason += " (free some space or write elsewhere)"
    return FileWriteError(f"cannot write {path!r}: {reason}; nothing was written")


@contextlib.contextmanager
def atomic_write(path, mode="w", newline=None, encoding="utf-8", sync=True):
    """Yields a file object open on a fresh temporary file beside ``path``; when the block ends
    without an error, the file replaces ``path`` in one step.

    Args:
        path: the destination (its directory must exist).
        mode: ``"w"`` (text, ``encoding``) or ``"wb"``.
        sync: flush the content to the disk before the move (``False``: still whole when it
            appears, not durable across a power loss).

    Raises:
        FileWriteError: ``path`` is a link or not a regular file, or writing failed (the
            temporary file is removed; ``path`` is unchanged).
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"mode must be 'w' or 'wb', got {mode!r}")
    path = check_destination(path)
    fd, tmp = _temp_beside(path)
    try:
        if hasattr(os, "fchmod"):  # mkstemp's 0600 -> what open() would have given
            os.fchmod(fd, FILE_MODE)
        kwargs = {} if mode == "wb" else {"encoding": encoding, "newline": newline}
        with os.fdopen(fd, mode, **kwargs) as fh:
            fd = None
            yield fh
            fh.flush()
            if sync:
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as err:
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)
        _remove(tmp)
        if isinstance(err, (OSError, UnicodeError)) and not isinstance(err, FileWriteError):
            raise _write_error(path, err) from err
        raise
    if sync:
        _sync_directory(os.path.dirname(path))


def publish_new(path, build):
    """Creates ``path`` only if nothing is there: ``build(tmp_path)`` fills a temporary file
    beside it, which is then linked into place without ever replacing an existing file.

    Returns:
        ``True`` if this call created ``path``; ``False`` if another process created it first
        (the temporary file is dropped and the other file is left as it is).

    Raises:
        FileWriteError: the temporary file could not be written or linked.
    """
    path = os.path.abspath(os.fspath(path))
    fd, tmp = _temp_beside(path)
    os.close(fd)
    try:
        if hasattr(os, "chmod"):
            os.chmod(tmp, FILE_MODE)
        build(tmp)
        try:
            os.link(tmp, path)  # atomic and never replaces: a second creator gets EEXIST
        except FileExistsError:
            return False
        except OSError as err:
            if sys.platform != "win32" or err.errno == errno.EEXIST:
                raise
            try:
                os.rename(tmp, path)  # on Windows rename never replaces an existing file
            except FileExistsError:
                return False
        return True
    except OSError as err:
        if isinstance(err, FileWriteError):
            raise
        raise _write_error(path, err) from err
    finally:
        _remove(tmp, tmp + "-wal", tmp + "-shm", tmp + "-journal")
