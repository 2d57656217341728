"""What every ``nas-hw`` command shares: one-line errors with exit codes, and how a Hydra app is
entered from the ``nas-hw`` command line.

Exit codes: 0 success, 2 bad input (an argument, an override, a config value, an input file), 1 a
failure while running (a layer that cannot be measured, an unusable cache, an I/O error).

A run that never starts leaves nothing on disk: :class:`~nas_hw.app.guard.CheckFirst` checks
the config before Hydra creates the run directory, and an error Hydra raises itself (an
override it cannot parse, an unknown config option) is printed as one line too
(:func:`run_hydra_app`).
"""
import os
import sys

from hydra.errors import HydraException
from omegaconf.errors import OmegaConfBaseException

from ..errors import ConfigInputError, NetworkInputError, UsageError
from .config import config_error_line, renamed_key, secret_in_override

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


def hydra_error_line(err):
    """One line of a Hydra or OmegaConf error: no caret line, no config search path."""
    if isinstance(err, OmegaConfBaseException):
        return config_error_line(err)
    text = str(err).split("\nConfig search path:", 1)[0]
    lines = [line for line in text.splitlines() if line.strip(" \t^")]
    return " ".join(" ".join(lines).split()) or type(err).__name__


def run_hydra_app(hydra_main, argv, prog):
    """Runs a ``@hydra.main`` function on ``argv`` (Hydra reads ``sys.argv``); returns the exit code.

    An override naming a key of an earlier version is refused first, naming the new key, and so
    is one that would record a password in the run's config. Errors
    Hydra raises while composing (an override it cannot parse, an unknown option of a config
    group) end in one line and exit code 2; ``HYDRA_FULL_ERROR=1`` keeps Hydra's traceback.
    """
    for arg in argv:
        hint = renamed_key(arg)
        if hint is not None:
            return fail(ConfigInputError(f"{arg.split('=', 1)[0].lstrip('+~')} was renamed: use {hint}"))
        secret = secret_in_override(arg)
        if secret is not None:  # refused before Hydra writes it into a run directory
            return fail(ConfigInputError(secret))
    saved, saved_env = sys.argv, os.environ.get("HYDRA_FULL_ERROR")
    sys.argv = [prog] + list(argv)
    os.environ["HYDRA_FULL_ERROR"] = "1"  # Hydra raises instead of printing its own lines
    try:
        hydra_main()
    except SystemExit as exit_:
        return exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
    except (HydraException, OmegaConfBaseException) as err:
        if saved_env == "1":
            raise
        return fail(ConfigInputError(hydra_error_line(err)))
    finally:
        sys.argv = saved
        if saved_env is None:
            os.environ.pop("HYDRA_FULL_ERROR", None)
        else:
            os.environ["HYDRA_FULL_ERROR"] = saved_env
    return 0


class TaskError(SystemExit):
    """Ends a Hydra task with an exit code after its one-line error was printed (Hydra lets
    ``SystemExit`` through; any other exception would be printed as a traceback)."""

