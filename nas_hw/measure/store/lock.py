"""The measuring lock: one process at a time measures into a store file."""
import contextlib
import fcntl


@contextlib.contextmanager
def exclusive_lock(path):
    """Holds an exclusive lock on the file ``path`` (created if missing) while the block runs."""
    with open(path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
