"""The dag-pb codec (PBNode / PBLink) and the UnixFS ``Data`` message inside it.

Byte layout (protobuf, canonical dag-pb form: fields in this order, no others)::

    PBNode = { PBLink Links = 2 (repeated) ; bytes Data = 1 (optional) }   -- Links first
    PBLink = { bytes Hash = 1 ; string Name = 2 (optional) ; uint64 Tsize = 3 (optional) }
    UnixFS Data = { Type = 1 ; Data = 2 ; filesize = 3 ; blocksizes = 4 (repeated, unpacked) ;
                    hashType = 5 ; fanout = 6 ; mode = 7 ; mtime = 8 { seconds = 1 ; nanos = 2 } }

Written by hand (rather than generated protobuf code) for two reasons: the importer encodes
one node per 174 chunks and must not pay a generic encoder's cost, and every decoder must
be strict and bounded (:data:`MAX_BLOCK_SIZE`, :data:`MAX_LINKS`, canonical field order,
minimal varints, no unknown fields) since blocks come from untrusted providers and CARs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from ownvault.core.cid import CID, decode_varint, encode_varint
from ownvault.errors import FormatError

__all__ = [
    "MAX_BLOCK_SIZE",
    "MAX_LINKS",
    "UNIXFS_DIRECTORY",
    "UNIXFS_FILE",
    "UNIXFS_HAMT_SHARD",
    "UNIXFS_METADATA",
    "UNIXFS_RAW",
    "UNIXFS_SYMLINK",
    "PBLink",
    "PBNode",
    "UnixFSData",
    "decode_node",
    "decode_unixfs",
    "encode_link",
    "encode_node",
    "encode_unixfs",
    "links_of",
]

MAX_BLOCK_SIZE = 2 * 1024 * 1024  # the largest block any IPFS transport moves (bitswap: 2 MiB)
MAX_LINKS = 1 << 17
_PB_VARINT = 10  # protobuf uint64 varints take up to 10 bytes

UNIXFS_RAW = 0
UNIXFS_DIRECTORY = 1
UNIXFS_FILE = 2
UNIXFS_METADATA = 3
UNIXFS_SYMLINK = 4
UNIXFS_HAMT_SHARD = 5
_UNIXFS_TYPES = range(6)


@dataclass(frozen=True, slots=True)
class PBLink:
    """A dag-pb link. ``name`` None means the field is absent; ``""`` is encoded as empty."""

    cid: CID
    name: str | None = None
    tsize: int | None = None


@dataclass(frozen=True, slots=True)
class PBNode:
    links: tuple[PBLink, ...] = ()
    data: bytes | None = None


def encode_link(cid_bytes: bytes, name: bytes | None, tsize: int | None) -> bytes:
    """One ``Links`` entry of a PBNode (tag, length, PBLink message)."""
    body = b"\x0a" + encode_varint(len(cid_bytes)) + cid_bytes
    if name is not None:
        body += b"\x12" + encode_varint(len(name)) + name
    if tsize is not None:
        body += b"\x18" + encode_varint(tsize)
    return b"\x12" + encode_varint(len(body)) + body


def encode_node(node: PBNode) -> bytes:
    parts = [
        encode_link(
            link.cid.bytes,
            None if link.name is None else link.name.encode("utf-8"),
            link.tsize,
        )
        for link in node.links
    ]
    if node.data is not None:
        parts.append(b"\x0a" + encode_varint(len(node.data)) + node.data)
    return b"".join(parts)


def _uvarint(buf: bytes | memoryview, pos: int) -> tuple[int, int]:
    """A protobuf uint64 varint: up to 10 bytes, and (as in Go's protowire) below 2**64."""
    value, pos = decode_varint(buf, pos, max_bytes=_PB_VARINT)
    if value >> 64:
        raise FormatError("protobuf varint overflows 64 bits")
    return value, pos


def _key(buf: bytes | memoryview, pos: int) -> tuple[int, int, int]:
    key, pos = _uvarint(buf, pos)
    return key >> 3, key & 7, pos


def _bytes_field(buf: bytes | memoryview, pos: int, end: int) -> tuple[bytes, int]:
    length, pos = _uvarint(buf, pos)
    if pos + length > end:
        raise FormatError("protobuf field runs past the end of its message")
    return bytes(buf[pos : pos + length]), pos + length


def _decode_link(buf: bytes | memoryview, pos: int, end: int) -> PBLink:
    cid: CID | None = None
    name: str | None = None
    tsize: int | None = None
    last = 0
    while pos < end:
        num, wire, pos = _key(buf, pos)
        if num <= last:
            raise FormatError("dag-pb link fields out of order or repeated")
        last = num
        if num == 1 and wire == 2:
            raw, pos = _bytes_field(buf, pos, end)
            cid = CID.from_bytes(raw)
        elif num == 2 and wire == 2:
            raw, pos = _bytes_field(buf, pos, end)
            try:
                name = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise FormatError("dag-pb link name is not UTF-8") from None
        elif num == 3 and wire == 0:
            tsize, pos = _uvarint(buf, pos)
        else:
            raise FormatError(f"unexpected dag-pb link field {num} (wire type {wire})")
    if pos != end:
        raise FormatError("dag-pb link overruns its length")
    if cid is None:
        raise FormatError("dag-pb link without Hash")
    return PBLink(cid, name, tsize)


def decode_node(block: bytes | memoryview) -> PBNode:
    """Decode a dag-pb block strictly (canonical order, bounded size and link count)."""
    if len(block) > MAX_BLOCK_SIZE:
        raise FormatError(f"dag-pb block larger than {MAX_BLOCK_SIZE} bytes")
    links: list[PBLink] = []
    data: bytes | None = None
    pos = 0
    end = len(block)
    while pos < end:
        num, wire, pos = _key(block, pos)
        if wire != 2:
            raise FormatError(f"unexpected dag-pb wire type {wire}")
        if num == 2:
            if data is not None:
                raise FormatError("dag-pb Links after Data")
            if len(links) >= MAX_LINKS:
                raise FormatError(f"dag-pb node has more than {MAX_LINKS} links")
            length, pos = _uvarint(block, pos)
            if pos + length > end:
                raise FormatError("dag-pb link runs past the end of the block")
            links.append(_decode_link(block, pos, pos + length))
            pos += length
        elif num == 1:
            if data is not None:
                raise FormatError("dag-pb node has two Data fields")
            data, pos = _bytes_field(block, pos, end)
        else:
            raise FormatError(f"unexpected dag-pb field {num}")
    return PBNode(tuple(links), data)


@dataclass(frozen=True, slots=True)
class UnixFSData:
    """The UnixFS ``Data`` message (the ``Data`` field of a UnixFS dag-pb node)."""

    type: int
    data: bytes | None = None
    filesize: int | None = None
    blocksizes: tuple[int, ...] = field(default=())
    hash_type: int | None = None
    fanout: int | None = None
    mode: int | None = None
    mtime: tuple[int, int | None] | None = None


def encode_unixfs(msg: UnixFSData) -> bytes:
    out = bytearray(b"\x08" + encode_varint(msg.type))
    if msg.data:  # an empty Data field is omitted, as Kubo and the JS importer do
        out += b"\x12" + encode_varint(len(msg.data)) + msg.data
    if msg.filesize is not None:
        out += b"\x18" + encode_varint(msg.filesize)
    for size in msg.blocksizes:
        out += b"\x20" + encode_varint(size)
    if msg.hash_type is not None:
        out += b"\x28" + encode_varint(msg.hash_type)
    if msg.fanout is not None:
        out += b"\x30" + encode_varint(msg.fanout)
    if msg.mode is not None:
        out += b"\x38" + encode_varint(msg.mode)
    if msg.mtime is not None:
        secs, nanos = msg.mtime
        inner = b"\x08" + encode_varint(secs & 0xFFFFFFFFFFFFFFFF)
        if nanos is not None:
            inner += b"\x15" + nanos.to_bytes(4, "little")
        out += b"\x42" + encode_varint(len(inner)) + inner
    return bytes(out)


def _decode_mtime(raw: bytes) -> tuple[int, int | None]:
    secs = 0
    nanos: int | None = None
    pos = 0
    while pos < len(raw):
        num, wire, pos = _key(raw, pos)
        if num == 1 and wire == 0:
            value, pos = _uvarint(raw, pos)
            secs = value - (1 << 64) if value >= 1 << 63 else value
        elif num == 2 and wire == 5:
            if pos + 4 > len(raw):
                raise FormatError("truncated UnixFS mtime")
            nanos = int.from_bytes(raw[pos : pos + 4], "little")
            pos += 4
        else:
            raise FormatError(f"unexpected UnixFS mtime field {num}")
    return secs, nanos


def decode_unixfs(raw: bytes | memoryview) -> UnixFSData:
    """Decode a UnixFS Data message (bounded by the block it came from)."""
    if len(raw) > MAX_BLOCK_SIZE:
        raise FormatError("UnixFS data too large")
    values: dict[int, int | bytes] = {}
    sizes: list[int] = []
    pos = 0
    while pos < len(raw):
        num, wire, pos = _key(raw, pos)
        if num == 4 and wire == 0:
            size, pos = _uvarint(raw, pos)
            sizes.append(size)
            continue
        if num in values:
            raise FormatError(f"UnixFS field {num} repeated")
        if num in (1, 3, 5, 6, 7) and wire == 0:
            values[num], pos = _uvarint(raw, pos)
        elif num in (2, 8) and wire == 2:
            values[num], pos = _bytes_field(raw, pos, len(raw))
        else:
            raise FormatError(f"unexpected UnixFS field {num} (wire type {wire})")
    kind = values.get(1)
    if not isinstance(kind, int) or kind not in _UNIXFS_TYPES:
        raise FormatError("UnixFS data without a valid Type")

    def num_or_none(key: int) -> int | None:
        value = values.get(key)
        return value if isinstance(value, int) else None

    data = values.get(2)
    mtime = values.get(8)
    return UnixFSData(
        type=kind,
        data=data if isinstance(data, bytes) else None,
        filesize=num_or_none(3),
        blocksizes=tuple(sizes),
        hash_type=num_or_none(5),
        fanout=num_or_none(6),
        mode=num_or_none(7),
        mtime=_decode_mtime(mtime) if isinstance(mtime, bytes) else None,
    )


def links_of(block: bytes | memoryview) -> Sequence[CID]:
    """The CIDs a dag-pb block links to, in order."""
    return [link.cid for link in decode_node(block).links]
