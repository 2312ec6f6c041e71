"""The rows of a large ``put`` stored beside its record: rows objects and the reference the
``put`` carries instead of its rows (formats ``OVRF`` v1 and ``OVRO`` v1).

A ``put``'s rows (``engine.store.journalrows``, ``OVRW`` v1) travel inside its record up
to ``INLINE_ROWS`` bytes. Larger rows are cut into pieces of at most ``PART_SIZE`` bytes,
each sealed under the journal key as one object written to the providers *before* the
record, and the ``put``'s ``rows`` field holds a reference that names every object by its
size and SHA-256 (docs/design.md, "Rows of a put", "Rows objects")::

    ref    := "OVRF" || 0x01 || total (u64 BE) || count (u16 BE)
              || count x (size (u32 BE) || SHA-256 of the object (32))
    header := "OVRO" || 0x01 || device (16) || seq (u64 BE) || index (u16 BE)
              || part (u16 BE) || count (u16 BE)                                  37 bytes
    object := header || seal(journal key, piece, AD = "ownvault/v1/journal-rows" || header)

The record is signed, so the reference is the device's own: an object a provider serves is
refused unless it has exactly the size and hash the reference names (read with that size
+ 1: a huge answer costs one byte more than the object), and its header names the
(device, seq, op index, part, count) of the ``put`` that names it (the header is also the
AEAD's associated data). Pure: no I/O. ``core.crypto`` is imported by the functions that
seal, open or hash: the limits here are imported by the catalog, which ``ls``, ``du`` and an
unchanged put open without the keys or the crypto libraries (tests/cli/test_startup.py).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from ownvault.core.journalfields import DEVICE_ID_SIZE, MAX_OPS, MAX_ROWS, MAX_U64
from ownvault.errors import FormatError, IntegrityError

__all__ = [
    "INLINE_ROWS",
    "MAX_BIG_ROWS",
    "MAX_PARTS",
    "OBJECT_HEADER_SIZE",
    "PART_SIZE",
    "REF_MAGIC",
    "RowsPart",
    "RowsRef",
    "decode_ref",
    "encode_ref",
    "is_ref",
    "object_size",
    "open_part",
    "pieces",
    "seal_part",
]

REF_MAGIC = b"OVRF\x01"
OBJECT_MAGIC = b"OVRO\x01"
ROWS_AD = b"ownvault/v1/journal-rows"
INLINE_ROWS = MAX_ROWS  # rows up to this size travel inside the record (16 MiB)
PART_SIZE = 16 * 1024 * 1024  # plaintext bytes of one rows object
MAX_PARTS = 32
MAX_BIG_ROWS = MAX_PARTS * PART_SIZE  # 512 MiB of compressed rows: >= 1,000,000 small files
_REF_HEAD = struct.Struct(">5sQH")
_REF_PART = struct.Struct(">I32s")
_HEADER = struct.Struct(f">5s{DEVICE_ID_SIZE}sQHHH")
OBJECT_HEADER_SIZE = _HEADER.size


@dataclass(frozen=True, slots=True)
class RowsPart:
    """One rows object as a reference names it: its size in bytes and its SHA-256."""

    size: int
    sha256: bytes


@dataclass(frozen=True, slots=True)
class RowsRef:
    """What a ``put`` whose rows are stored as objects carries: the rows' total size and
    each object, in order."""

    total: int
    parts: tuple[RowsPart, ...]


def is_ref(rows: bytes) -> bool:
    """``rows`` (a ``put``'s field) is a reference to rows objects, not the rows."""
    return rows[: len(REF_MAGIC)] == REF_MAGIC


def object_size(piece: int) -> int:
    """The size of the object that seals a piece of ``piece`` bytes."""
    from ownvault.core import crypto  # noqa: PLC0415 - see the module docstring

    return OBJECT_HEADER_SIZE + crypto.AEAD_OVERHEAD + piece


def encode_ref(ref: RowsRef) -> bytes:
    out = _REF_HEAD.pack(REF_MAGIC, ref.total, len(ref.parts))
    return out + b"".join(_REF_PART.pack(p.size, p.sha256) for p in ref.parts)


def decode_ref(data: bytes) -> RowsRef:
    """A reference from a ``put``'s rows field; ``FormatError`` naming the first fault.
    Bounded: at most ``MAX_PARTS`` objects of at most ``PART_SIZE`` bytes of rows each,
    whose pieces add up to ``total`` (at most ``MAX_BIG_ROWS``)."""
    if len(data) < _REF_HEAD.size or data[: len(REF_MAGIC)] != REF_MAGIC:
        raise FormatError("not a rows reference (OVRF v1)")
    _magic, total, count = _REF_HEAD.unpack_from(data)
    if not 1 <= count <= MAX_PARTS:
        raise FormatError(f"a rows reference names 1 to {MAX_PARTS} objects, not {count}")
    if len(data) != _REF_HEAD.size + count * _REF_PART.size:
        raise FormatError(f"a rows reference of {count} objects is not {len(data)} bytes")
    if not INLINE_ROWS < total <= min(MAX_BIG_ROWS, MAX_U64):
        raise FormatError(
            f"a rows reference's total {total} is not over {INLINE_ROWS} and at most "
            f"{MAX_BIG_ROWS} bytes"
        )
    parts = tuple(
        RowsPart(*_REF_PART.unpack_from(data, _REF_HEAD.size + i * _REF_PART.size))
        for i in range(count)
    )
    for i, p in enumerate(parts):
        if not object_size(1) <= p.size <= object_size(PART_SIZE):
            raise FormatError(f"rows object {i} of {p.size} bytes is out of range")
    if sum(p.size - object_size(0) for p in parts) != total:
        raise FormatError("the rows objects of a reference do not add up to its total")
    return RowsRef(total, parts)


def _header(device: bytes, seq: int, index: int, part: int, count: int) -> bytes:
    if len(device) != DEVICE_ID_SIZE or not (1 <= seq <= MAX_U64 and 0 <= index < MAX_OPS):
        raise FormatError("a rows object is named by a device, a seq and an op index")
    return _HEADER.pack(OBJECT_MAGIC, device, seq, index, part, count)


def seal_part(
    key: bytes,
    piece: bytes | memoryview,
    *,
    device: bytes,
    seq: int,
    index: int,
    part: int,
    count: int,
) -> tuple[bytes, RowsPart]:
    """The object of piece ``part`` (of ``count``) of the rows of op ``index`` of
    ``device``'s record ``seq``, and how the reference names it."""
    if not 0 < len(piece) <= PART_SIZE or not 0 <= part < count <= MAX_PARTS:
        raise FormatError("a rows piece is 1 to PART_SIZE bytes, part < count <= MAX_PARTS")
    from ownvault.core import crypto  # noqa: PLC0415 - see the module docstring

    header = _header(device, seq, index, part, count)
    data = header + crypto.seal(key, bytes(piece), ROWS_AD + header)
    return data, RowsPart(len(data), crypto.sha256(data))


def pieces(blob: bytes) -> list[memoryview]:
    """``blob`` cut into the pieces of its rows objects (``PART_SIZE`` bytes, the last
    shorter); ``FormatError`` past ``MAX_BIG_ROWS``."""
    if not INLINE_ROWS < len(blob) <= MAX_BIG_ROWS:
        raise FormatError(f"rows of {len(blob)} bytes are not stored as objects")
    view = memoryview(blob)
    return [view[i : i + PART_SIZE] for i in range(0, len(blob), PART_SIZE)]


def open_part(
    key: bytes, data: bytes, ref: RowsRef, *, device: bytes, seq: int, index: int, part: int
) -> bytes:
    """The piece a rows object holds, checked against the reference the record signed:
    its size, its SHA-256, its header (device, seq, op index, part, count) and its AEAD.
    ``IntegrityError`` says what is wrong (the caller names device, seq and provider)."""
    from ownvault.core import crypto  # noqa: PLC0415 - see the module docstring

    want = ref.parts[part]
    if len(data) > want.size:
        raise IntegrityError(f"rows object {part} is over the {want.size} bytes its put names")
    if len(data) < want.size:
        raise IntegrityError(
            f"rows object {part} is truncated: {len(data)} of the {want.size} bytes its put names"
        )
    if crypto.sha256(data) != want.sha256:
        raise IntegrityError(f"rows object {part} does not have the hash its put names")
    header = _header(device, seq, index, part, len(ref.parts))
    if data[:OBJECT_HEADER_SIZE] != header:
        raise IntegrityError(f"rows object {part} is another put's (its header)")
    return crypto.open_box(key, data[OBJECT_HEADER_SIZE:], ROWS_AD + header)
