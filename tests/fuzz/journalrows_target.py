"""The fuzz target of the rows of a journal ``put`` (registered as ``journal_rows`` in
``tests/fuzz/targets.py``), its seeds and its hand-made corrupt fixtures.

Modes (the first byte, modulo 2): 0 the rows as a record carries them (``OVRW`` v1, zlib);
1 the JSON text of a rows document, compressed here, so that the fuzzer reaches the JSON
decoder behind the compression. Round trip: rows that decode re-encode to rows that decode
to the same value, and in mode 1 to the same text (the decoder accepts canonical JSON only).
"""

from __future__ import annotations

import zlib

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


def journal_rows(data: bytes) -> None:
    if not data:
        return
    mode, rest = data[0] % 2, data[1:]
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


def journal_rows_seeds() -> list[bytes]:
    blob = encode_rows(_tree())
    return [b"\x00" + blob, b"\x01" + zlib.decompress(blob[len(MAGIC) :])]


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
    }
