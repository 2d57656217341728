"""Reading an nnabla ``.nnp`` archive without trusting it.

An ``.nnp`` is a zip archive; a hostile one can declare a million members, hold a 1 MB member
that inflates to gigabytes, lie about a member's size in its headers, or define a network whose
tensors do not fit in memory. Before anything is decompressed or built:

1. the central directory's declared size and member count are read from the archive's end
   record and bounded, before :mod:`zipfile` parses the directory (``max_members``);
2. each network-definition member (``.nntxt`` / ``.prototxt``, the only members read) is checked
   on its declared size (all of them together at most ``max_bytes``) and its compression ratio
   (at most ``max_ratio`` for members of 1 MiB or more);
3. members are read in chunks with a hard cap: a member that yields more than it declared, or
   fails its CRC, is refused, so a lying header cannot make the read grow;
4. the parsed definition is checked before nnabla builds the network: functions and variables
   after loop expansion (``max_graph_nodes``) and the bytes of every tensor the network declares
   at the batch size used (``max_network_bytes``).

Parameter values stored in the archive (``.protobuf``, ``.h5`` members), optimizer states and
any other member are never decompressed: a report depends on the shapes alone, so parameters
are created from the definition's shapes and initializers. A failed check is one
:class:`~nas_hw.errors.NetworkInputError` line naming the member (or network) and the limit.
"""
import math
import os
import struct
import zipfile
from dataclasses import dataclass

from ..checks import check_int, check_number
from ..constants import (NNP_MAX_BYTES, NNP_MAX_GRAPH_NODES, NNP_MAX_MEMBERS, NNP_MAX_NETWORK_BYTES,
                         NNP_MAX_RATIO, NNP_RATIO_MIN_BYTES)
from ..errors import NetworkInputError

#: The members read: nnabla's network definitions in protobuf text format.
DEFINITION_SUFFIXES = (".nntxt", ".prototxt")
#: Bytes of central directory allowed per member (46 fixed bytes, the name, extra fields).
CD_BYTES_PER_MEMBER = 1024
#: nnabla tensors are float32 unless a type configuration says otherwise.
BYTES_PER_ELEMENT = 4
_CHUNK = 2**20
_EOCD = struct.Struct("<4s4H2LH")
_EOCD64_LOCATOR = struct.Struct("<4sLQL")
_EOCD64 = struct.Struct("<4sQ2H2L4Q")


@dataclass(frozen=True)
class NnpLimits:
    """What reading one ``.nnp`` may cost (defaults: :mod:`nas_hw.constants`, ``NNP_*``).

    Attributes:
        max_bytes: bytes decompressed from the network-definition members, all together
            (``nas-hw report --max-nnp-bytes``).
        max_members: members the archive may hold.
        max_ratio: uncompressed / compressed size of a member read (members of 1 MiB or more).
        max_network_bytes: bytes of the tensors (parameters and activations, float32) the
            network declares at the batch size used (``nas-hw report --max-network-bytes``).
        max_graph_nodes: functions, and variables, of all the networks once loops are expanded.
    """

    max_bytes: int = NNP_MAX_BYTES
    max_members: int = NNP_MAX_MEMBERS
    max_ratio: float = NNP_MAX_RATIO
    max_network_bytes: int = NNP_MAX_NETWORK_BYTES
    max_graph_nodes: int = NNP_MAX_GRAPH_NODES

    def __post_init__(self):
        for name in ("max_bytes", "max_members", "max_network_bytes", "max_graph_nodes"):
            check_int(name, getattr(self, name), low=1)
        check_number("max_ratio", self.max_ratio, low=1)


def _refuse(path, what):
    return NetworkInputError(f"{path!r}: {what}")


def _mib(n):
    unit, scale = next((u, s) for u, s in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10), ("B", 1)) if n >= s or s == 1)
    return f"{n} bytes" if unit == "B" else f"{n} bytes ({n / scale:.3g} {unit})"


def directory_bounds(fh):
    """``(members, central directory bytes)`` declared by a zip's end record (zip64 too), or
    ``None`` when the file has no end record."""
    fh.seek(0, os.SEEK_END)
    size = fh.tell()
    tail_len = min(size, _EOCD.size + 0xFFFF + _EOCD64_LOCATOR.size)
    fh.seek(size - tail_len)
    tail = fh.read(tail_len)
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or at + _EOCD.size > len(tail):
        return None
    _, _, _, _, members, cd_size, cd_offset, _ = _EOCD.unpack_from(tail, at)
    locator = at - _EOCD64_LOCATOR.size
    if (0xFFFF in (members,) or 0xFFFFFFFF in (cd_size, cd_offset)) and locator >= 0 \
            and tail[locator:locator + 4] == b"PK\x06\x07":
        offset = _EOCD64_LOCATOR.unpack_from(tail, locator)[2]
        if offset < size:
            fh.seek(offset)
            record = fh.read(_EOCD64.size)
            if len(record) == _EOCD64.size and record[:4] == b"PK\x06\x06":
                fields = _EOCD64.unpack(record)
                members, cd_size = fields[7], fields[8]
    return members, cd_size


def read_definition(path, limits=None):
    """The network definitions of the ``.nnp`` at ``path``, parsed into one
    ``nnabla_pb2.NNablaProtoBuf`` (members in archive order, as nnabla merges them), after the
    checks 1-3 of this module; stored parameter values are left out.

    Raises:
        NetworkInputError: a limit is exceeded, or the archive or a member is unreadable.
    """
    limits = limits or NnpLimits()
    with open(path, "rb") as fh:
        bounds = directory_bounds(fh)
        if bounds is None:
            raise _refuse(path, "not a zip archive (no end of central directory record)")
        members, cd_size = bounds
        if members > limits.max_members or cd_size > limits.max_members * CD_BYTES_PER_MEMBER:
            raise _refuse(path, f"the archive declares {members} members ({_mib(cd_size)} of directory), "
                                f"above the limit of max_members={limits.max_members}")
        try:
            with zipfile.ZipFile(fh) as zf:
                infos = zf.infolist()
                if len(infos) > limits.max_members:
                    raise _refuse(path, f"the archive holds {len(infos)} members, above the limit of "
                                        f"max_members={limits.max_members}")
                definitions = _checked_definitions(path, infos, limits)
                texts = [(info.filename, _read_capped(path, zf, info)) for info in definitions]
        except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError) as err:
            if isinstance(err, NetworkInputError):
                raise
            raise _refuse(path, f"not a readable zip archive: {_one_line(err)}") from None
    return _parse(path, texts)


def _checked_definitions(path, infos, limits):
    """The definition members, each checked on its declared size and ratio before any is read."""
    definitions = [i for i in infos if not i.is_dir() and os.path.splitext(i.filename)[1] in DEFINITION_SUFFIXES]
    if not definitions:
        names = sorted(i.filename for i in infos)[:5]
        raise _refuse(path, f"a zip archive without nnp content (no network definition "
                            f"{'/'.join(DEFINITION_SUFFIXES)} member inside; it holds {names})")
    seen = set()
    total = 0
    for info in definitions:
        name = info.filename
        if name in seen:
            raise _refuse(path, f"member {name!r} appears twice in the archive")
        seen.add(name)
        if info.flag_bits & 0x1:
            raise _refuse(path, f"member {name!r} is encrypted")
        total += info.file_size
        if total > limits.max_bytes:
            raise _refuse(path, f"member {name!r} declares {_mib(info.file_size)} uncompressed, which brings "
                                f"the network definition to {_mib(total)}, above the limit of max_bytes="
                                f"{_mib(limits.max_bytes)} (nas-hw report --max-nnp-bytes)")
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size >= NNP_RATIO_MIN_BYTES and ratio > limits.max_ratio:
            raise _refuse(path, f"member {name!r} declares a compression ratio of {ratio:.0f} "
                                f"({_mib(info.file_size)} from {info.compress_size} bytes), above the "
                                f"limit of max_ratio={limits.max_ratio:g}")
    return definitions


def _read_capped(path, zf, info):
    """The member's text, read in chunks and never past its declared size."""
    chunks, n = [], 0
    try:
        with zf.open(info) as src:
            while True:
                chunk = src.read(min(_CHUNK, info.file_size - n + 1))
                if not chunk:
                    break
                n += len(chunk)
                if n > info.file_size:
                    raise _refuse(path, f"member {info.filename!r} decompresses past the "
                                        f"{info.file_size} bytes it declares")
                chunks.append(chunk)
    except NetworkInputError:
        raise
    except Exception as err:  # zlib.error, lzma.LZMAError, BadZipFile (CRC), NotImplementedError...
        raise _refuse(path, f"member {info.filename!r} cannot be decompressed: {type(err).__name__}: "
                            f"{_one_line(err)}") from None
    if n != info.file_size:
        raise _refuse(path, f"member {info.filename!r} holds {n} bytes, its header declares {info.file_size}")
    try:
        return b"".join(chunks).decode("utf-8")
    except UnicodeDecodeError as err:
        raise _refuse(path, f"member {info.filename!r} is not UTF-8 text: {_one_line(err)}") from None


def _parse(path, texts):
    from google.protobuf import text_format
    from nnabla.utils import nnabla_pb2

    proto = nnabla_pb2.NNablaProtoBuf()
    for name, text in texts:
        try:
            text_format.Merge(text, proto)
        except Exception as err:  # ParseError, RecursionError, MemoryError...
            raise _refuse(path, f"member {name!r} is not a valid nnabla network definition: "
                                f"{type(err).__name__}: {_one_line(err)}") from None
    del proto.parameter[:]  # stored values are never used: shapes come from the network
    return proto


def check_networks(path, proto, first_batch_size, limits=None):
    """Checks the parsed definition before nnabla builds it: functions and variables of all
    networks after loop expansion, and the bytes of the tensors the first network declares at
    ``first_batch_size`` (``None``: the network's own).

    Raises:
        NetworkInputError: naming the network, the variable where one is at fault, and the limit.
    """
    limits = limits or NnpLimits()
    functions = variables = 0
    for index, net in enumerate(proto.network):
        times = {}
        for info in net.repeat_info:
            if info.times < 0:
                raise _refuse(path, f"network {net.name!r}: repeat {info.id!r} has times={info.times}")
            times[info.id] = info.times
        functions += sum(_copies(f.repeat_id, times) for f in net.function)
        variables += sum(_copies(v.repeat_id, times) for v in net.variable)
        for count, what in ((functions, "functions"), (variables, "variables")):
            if count > limits.max_graph_nodes:
                raise _refuse(path, f"network {net.name!r} brings the definition to {count} {what} (loops "
                                    f"expanded), above the limit of max_graph_nodes={limits.max_graph_nodes}")
        if index == 0:
            batch = first_batch_size if first_batch_size is not None else max(int(net.batch_size), 1)
            _check_bytes(path, net, batch, times, limits)


def _check_bytes(path, net, batch, times, limits):
    total = 0
    for v in net.variable:
        dims = list(v.shape.dim)
        if any(d < -1 for d in dims):
            raise _refuse(path, f"network {net.name!r}: variable {v.name!r} has shape {dims} (only -1, "
                                "the batch axis, may be negative)")
        elements = math.prod(batch if d == -1 else d for d in dims)
        total += elements * BYTES_PER_ELEMENT * _copies(v.repeat_id, times)
        if total > limits.max_network_bytes:
            raise _refuse(path, f"network {net.name!r} declares {_mib(total)} of tensors at batch size {batch} "
                                f"(reached at variable {v.name!r}, shape {dims}), above the limit of "
                                f"max_network_bytes={_mib(limits.max_network_bytes)} "
                                "(nas-hw report --max-network-bytes)")


def _copies(repeat_ids, times):
    return math.prod(times.get(r, 1) for r in repeat_ids)


def _one_line(err):
    text = " ".join(str(err).split())
    return text[:300] if text else type(err).__name__
