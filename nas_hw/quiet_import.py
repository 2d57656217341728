"""Importing nnabla without its import-time banner.

``import nnabla`` logs ``Initializing CPU extension...`` at INFO level while it is imported, on
the ``nnabla`` logger, through a root handler that nnabla installs itself
(``logging.basicConfig`` in ``nnabla/logger.py``). It came before every ``nas-hw`` message, so
no ``nas-hw`` error was one line. :func:`import_nnabla_quietly` (run first by ``import nas_hw``)
holds back the ``nnabla`` logger's records below WARNING during that import only, and only
when nobody set that logger's level: warnings and errors pass, and the level is restored at
once, so nnabla's later INFO messages are untouched.
"""
import logging
import sys


def import_nnabla_quietly():
    """Imports nnabla with its import-time INFO records held back (see the module docstring).

    Returns:
        bool: whether the banner was held back (``False`` when nnabla was already imported or
        the ``nnabla`` logger's level was set by someone).
    """
    if "nnabla" in sys.modules:
        return False
    log = logging.getLogger("nnabla")
    if log.level != logging.NOTSET:  # someone chose a level for nnabla's records: respect it
        import nnabla  # noqa: F401
        return False
    log.setLevel(logging.WARNING)
    try:
        import nnabla  # noqa: F401
    finally:
        log.setLevel(logging.NOTSET)
    return True
