"""Big numbers as people read them: ``3.64 GFLOPs``, ``21.0 KiB``, ``5.39 k``.

Text output only (the table ``nas-hw report`` prints); CSV and JSON keep exact integers.
Three significant digits; decimal prefixes for counts (k, M, G, T, P), binary ones for bytes
(KiB, MiB, GiB, TiB), as ``ls -h`` and nnabla's own memory reports do.
"""
import math

SI_PREFIXES = ("", "k", "M", "G", "T", "P")
BINARY_PREFIXES = ("", "Ki", "Mi", "Gi", "Ti", "Pi")


def _fixed(scaled, digits):
    """``scaled`` with ``digits`` significant digits, never in exponent notation."""
    int_digits = len(str(int(abs(scaled)))) if abs(scaled) >= 1 else 1
    return f"{scaled:.{max(digits - int_digits, 0)}f}"


def _scaled(value, base, prefixes, digits):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"value must be a finite number, got {value!r}")
    i = 0
    while i < len(prefixes) - 1 and abs(value) >= base ** (i + 1):
        i += 1
    text = _fixed(value / base ** i, digits)
    if abs(float(text)) >= base and i < len(prefixes) - 1:  # 999.7 k rounds to 1000 k: 1.00 M
        i += 1
        text = _fixed(value / base ** i, digits)
    return text, prefixes[i]


def si(value, unit="", digits=3):
    """``value`` with a decimal prefix: ``si(3637806568, "FLOPs") == "3.64 GFLOPs"``;
    below 1000 the number is written as it is (``si(224) == "224"``)."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) < 1000:
        return f"{value} {unit}".rstrip()
    text, prefix = _scaled(value, 1000, SI_PREFIXES, digits)
    return f"{text} {prefix}{unit}".rstrip()


def binary_bytes(n_bytes, digits=3):
    """Bytes with a binary prefix: ``binary_bytes(21544) == "21.0 KiB"``, ``binary_bytes(40) == "40 B"``."""
    if isinstance(n_bytes, int) and not isinstance(n_bytes, bool) and abs(n_bytes) < 1024:
        return f"{n_bytes} B"
    text, prefix = _scaled(n_bytes, 1024, BINARY_PREFIXES, digits)
    return f"{text} {prefix}B"
