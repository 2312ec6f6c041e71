"""The fuzz target of the rows of a journal ``put`` (registered as ``journal_rows`` in
``tests/fuzz/targets.py``), its seeds and its hand-made corrupt fixtures.

Modes (the first byte, modulo 4): 0 the rows as a record carries them (``OVRW`` v1, zlib);
1 the JSON text of a rows document, compressed here, so that the fuzzer reaches the JSON
decoder behind the compression; 2 the reference a large put carries instead of its rows
(``OVRF`` v1, ``decode_ref``); 3 a rows object as a provider serves it (``OVRO`` v1,
``open_part``), against a reference naming its size and hash (as if the device had signed
it), so that the fuzzer reaches the header and AEAD checks behind the hash. Round trip:
rows that decode re-encode to rows that decode to the same value, and in mode 1 to the same
text (the decoder accepts canonical JSON only); a reference re-encodes to its bytes.
"""

from __future__ import annotations

import hashlib
import zlib

from ownvault.core import rowsobjects
from ownvault.core.rowsobjects import (
    RowsPart,
    RowsRef,
    decode_ref,
    encode_ref,
    open_part,
    seal_part,
)
from ownvault.engine.store.journalrows import (
    MAGIC,
    ChunkRow,
    ContentRow,
    EntryOut,
    PackRow,
    ShareOut,
    VersionRows,
    decode_rows,
    encode_rows,
)

__all__ = ["journal_rows", "journal_rows_fixtures", "journal_rows_seeds"]


_KEY = bytes(range(32))
_DEVICE = b"\x85" * 16


def _object(rest: bytes) -> None:
    ref = RowsRef(len(rest), (RowsPart(len(rest), hashlib.sha256(rest).digest()),))
    piece = open_part(_KEY, rest, ref, device=_DEVICE, seq=2, index=0, part=0)
    assert len(piece) == len(rest) - rowsobjects.object_size(0)


def journal_rows(data: bytes) -> None:
    if not data:
        return
    mode, rest = data[0] % 4, data[1:]
    if mode == 2:
        assert encode_ref(decode_ref(rest)) == rest
        return
    if mode == 3:
        _object(rest)
        return
    blob = rest if mode == 0 else MAGIC + zlib.compress(rest)
    rows = decode_rows(blob)
    again = encode_rows(rows)
    assert decode_rows(again) == rows
    if mode == 1:
        assert zlib.decompress(again[len(MAGIC) :]) == rest


def _tree() -> VersionRows:
    share = (ShareOut(0, "p0", 4160, b"\x44" * 32), ShareOut(1, "p1", 4160, b"\x45" * 32))
    return VersionRows(
        1_764_000_000,
        2,
        "kubo-v1",
        (
            EntryOut("", "dir", 0o755, 1, 0, None, None),
            EntryOut("a.txt", "file", 0o644, 2, 5, 0, None),
            EntryOut("b.txt", "file", 0o644, 3, 5, 0, None),
            EntryOut("l", "symlink", 0o777, 4, 0, None, "a.txt"),
        ),
        (ContentRow(5, "bafkreia", "kubo-v1", 13, (0,)),),
        (ChunkRow(b"\x11" * 32, 0, 0, 45, 5, b"\x22" * 44, 0),),
        (PackRow(b"\x33" * 16, 4096, 1, 2, 1_764_000_000, share),),
    )


def _sealed() -> tuple[bytes, RowsPart]:
    return seal_part(_KEY, b"rows" * 64, device=_DEVICE, seq=2, index=0, part=0, count=1)


def _ref() -> bytes:
    size = rowsobjects.object_size(rowsobjects.PART_SIZE)
    part = RowsPart(size, b"\x66" * 32)
    return encode_ref(RowsRef(2 * rowsobjects.PART_SIZE, (part, part)))


def journal_rows_seeds() -> list[bytes]:
    blob = encode_rows(_tree())
    return [
        b"\x00" + blob,
        b"\x01" + zlib.decompress(blob[len(MAGIC) :]),
        b"\x02" + _ref(),
        b"\x03" + _sealed()[0],
    ]


def journal_rows_fixtures() -> dict[str, bytes]:
    """Hand-made damage, each refused with a named error."""
    blob = encode_rows(_tree())
    text = zlib.decompress(blob[len(MAGIC) :])

    def plain(old: bytes, new: bytes) -> bytes:
        assert old in text, old
        return b"\x01" + text.replace(old, new, 1)

    return {
        "rows-truncated.bin": b"\x00" + blob[:-4],
        "rows-trailing.bin": b"\x00" + blob + b"\x00",
        "rows-version-2.bin": b"\x00" + blob[:4] + b"\x02" + blob[5:],
        "rows-bomb.bin": b"\x00" + MAGIC + zlib.compress(b"[" + b"0," * 9_000_000 + b"0]", 9),
        "rows-not-canonical.bin": plain(b",", b", "),
        "rows-content-missing.bin": plain(b'"a.txt","file",420,2,5,0', b'"a.txt","file",420,2,5,7'),
        "rows-chunk-hex-short.bin": plain(b'"' + b"11" * 32, b'"' + b"11" * 31),
        "rows-unsorted-entries.bin": plain(b'["a.txt"', b'["c.txt"'),
        "rows-float.bin": plain(b'"file_count":2', b'"file_count":2.0'),
        "rows-deep.bin": b"\x01" + b"[" * 3000 + b"]" * 3000,
        "rows-ref-no-parts.bin": b"\x02" + _ref()[:13] + b"\x00\x00",
        "rows-ref-33-parts.bin": b"\x02" + _ref()[:13] + b"\x00\x21" + _ref()[15:] * 17,
        "rows-ref-total-off.bin": b"\x02" + _ref()[:12] + b"\x01" + _ref()[13:],
        "rows-object-other-put.bin": b"\x03"
        + seal_part(_KEY, b"rows", device=_DEVICE, seq=3, index=0, part=0, count=1)[0],
        "rows-object-flipped.bin": b"\x03" + _sealed()[0][:-1] + bytes([_sealed()[0][-1] ^ 1]),
    }
