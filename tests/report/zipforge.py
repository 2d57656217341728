"""Builds hostile zip archives byte by byte (nothing of this is stored in the repository): bombs
whose compressed stream is repeated instead of computed, headers that lie about sizes and
member counts.

A deflate block flushed with ``Z_FULL_FLUSH`` refers to nothing before it, so the same
compressed bytes can be repeated to inflate to any multiple of their chunk: a 1 GiB member costs
about 1 MB on disk and a second to write.
"""
import struct
import zlib
from dataclasses import dataclass

LOCAL = struct.Struct("<4s5H3L2H")
CENTRAL = struct.Struct("<4s6H3L5H2L")
END = struct.Struct("<4s4H2LH")


@dataclass
class Member:
    """One member as written: ``stream`` is the stored bytes (compressed when ``method`` is 8);
    ``size`` and ``crc`` describe the uncompressed data; ``declared_size`` / ``declared_crc`` are
    what the headers say (the truth when ``None``)."""

    name: str
    stream: bytes
    size: int
    crc: int
    method: int = 8
    declared_size: int = None
    declared_crc: int = None
    flags: int = 0


def stored(name, data, **kw):
    """A member stored uncompressed."""
    return Member(name, data, len(data), zlib.crc32(data), method=0, **kw)


def deflated(name, data, **kw):
    """A member compressed with deflate."""
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    return Member(name, c.compress(data) + c.flush(), len(data), zlib.crc32(data), method=8, **kw)


def bomb(name, inflated_bytes, chunk=b" " * 2**20, **kw):
    """A deflated member of ``chunk`` repeated up to ``inflated_bytes`` (a multiple of the chunk)."""
    times = inflated_bytes // len(chunk)
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = c.compress(chunk) + c.flush(zlib.Z_FULL_FLUSH)
    crc = 0
    for _ in range(times):
        crc = zlib.crc32(chunk, crc)
    return Member(name, block * times + c.flush(), times * len(chunk), crc, method=8, **kw)


def write_zip(path, members, declared_entries=None, declared_cd_size=None):
    """Writes ``members`` as a zip archive; the end record may lie about the member count and
    the directory's size. Returns the path."""
    central = []
    with open(path, "wb") as fh:
        for m in members:
            name = m.name.encode("utf-8")
            size = m.size if m.declared_size is None else m.declared_size
            crc = m.crc if m.declared_crc is None else m.declared_crc
            offset = fh.tell()
            flags = m.flags | 0x800  # names are UTF-8
            fh.write(LOCAL.pack(b"PK\x03\x04", 20, flags, m.method, 0, 0x21, crc, len(m.stream), size,
                                len(name), 0))
            fh.write(name)
            fh.write(m.stream)
            central.append(CENTRAL.pack(b"PK\x01\x02", 20, 20, flags, m.method, 0, 0x21, crc,
                                        len(m.stream), size, len(name), 0, 0, 0, 0, 0, offset) + name)
        cd_offset = fh.tell()
        directory = b"".join(central)
        fh.write(directory)
        n = len(members) if declared_entries is None else declared_entries
        fh.write(END.pack(b"PK\x05\x06", 0, 0, min(n, 0xFFFF), min(n, 0xFFFF),
                          len(directory) if declared_cd_size is None else declared_cd_size, cd_offset, 0))
    return path
