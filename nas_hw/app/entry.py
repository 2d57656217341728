"""What every ``nas-hw`` command shares: one-line errors with exit codes, and how a Hydra app is
entered from the ``nas-hw`` command line.

Exit codes: 0 success, 2 bad input (an argument, an override, a config value, an input file), 1 a
failure while running (a layer that cannot be measured, an unusable cache, an I/O error).
"""
import sys

from ..errors import ConfigInputError, NetworkInputError, UsageError
from .config import renamed_key, secret_in_override

PROG = "nas-hw"
#: Errors the user fixes by changing what they typed or gave (exit code 2).
BAD_INPUT = (ConfigInputError, NetworkInputError, UsageError)


def one_line(err):
    """An exception's message as one line."""
    text = " ".join(str(err).split())
    return text or type(err).__name__


def fail(err, code=None):
    """Prints ``nas-hw: error: <one line>`` on stderr; returns the exit code (2 for bad input,
    else 1, unless ``code`` is given)."""
    if code is None:
        code = 2 if isinstance(err, BAD_INPUT) else 1
    sys.stderr.write(f"{PROG}: error: {one_line(err)}\n")
    return code


def run_hydra_app(hydra_main, argv, prog):
    """Runs a ``@hydra.main`` function on ``argv`` (Hydra reads ``sys.argv``); returns the exit code.

    An override naming a key of an earlier version is refused first, naming the new key, and so
    is one that would record a password in the run's config.
    """
    for arg in argv:
        hint = renamed_key(arg)
        if hint is not None:
            return fail(ConfigInputError(f"{arg.split('=', 1)[0].lstrip('+~')} was renamed: use {hint}"))
        secret = secret_in_override(arg)
        if secret is not None:  # refused before Hydra writes it into a run directory
            return fail(ConfigInputError(secret))
    saved = sys.argv
    sys.argv = [prog] + list(argv)
    try:
        hydra_main()
    except SystemExit as exit_:
        return exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
    finally:
        sys.argv = saved
    return 0


class TaskError(SystemExit):
    """Ends a Hydra task with an exit code after its one-line error was printed (Hydra lets
    ``SystemExit`` through; any other exception would be printed as a traceback)."""
