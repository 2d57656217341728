"""Copying rows between two stores (a local file and a server, either way, or any two).

The rows travel through an export file in a private temporary directory and are imported with
:meth:`import_`, so a copy passes exactly the validation of an import (every row checked, the
whole copy refused if one is malformed) and writes all rows in one transaction.
"""
import os
import tempfile


def copy_rows(src, dst, fingerprint=None, overwrite=False):
    """Copies ``src``'s rows (of ``fingerprint``, or all) and device descriptions into ``dst``.

    Returns:
        ``(read, added)``: rows read from ``src`` and rows added to ``dst`` (or replaced, with
        ``overwrite``; otherwise rows ``dst`` already holds are kept).
    """
    with tempfile.TemporaryDirectory(prefix="nas_hw_copy.") as tmp:
        path = os.path.join(tmp, "rows.json")
        read = src.export(path, fingerprint=fingerprint)
        added = dst.import_(path, overwrite=overwrite)
    return read, added
