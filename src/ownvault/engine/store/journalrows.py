"""The catalog rows of one version, as the ``rows`` of a journal ``put`` (format ``OVRW`` v1).

A ``put`` record (``core.journalops.Put``) names a version and its packs; what a reader on
another device needs to ``ls``, ``get``, ``cat`` and ``versions`` it travels in ``rows``,
which the merge never reads: the version's entries, their contents, the chunks of those
contents (where they sit in which pack, their wrapped keys) and those packs with their share
placement. Layout (docs/design.md, "Catalog journal and multi-device merge", "Rows of a put")::

    rows := "OVRW" || 0x01 || zlib(C(doc))
    doc  := {"created_at", "file_count", "cid_profile", "entries", "contents", "chunks", "packs"}

``C`` is the canonical JSON of ``core.journalops``. Entries refer to contents, contents to
chunks, chunks to packs by their index in the list that follows, and every list after
``entries`` is in order of first use, each item used, so that one version has one ``doc``.
The compressed stream is not canonical (the record's hash covers its bytes); the text it
holds is, and is checked. Decoding is bounded: at most ``MAX_BIG_ROWS`` bytes in,
``MAX_PLAIN`` bytes of text out (``MAX_BIG_PLAIN`` for rows over ``INLINE_ROWS``, which
travel as rows objects: ``core.rowsobjects``), and the limits of ``core.journalops`` on
every field.

This module is the codec only (no SQL): ``engine.store.catalog.journalrows`` reads a
version into a :class:`VersionRows` and inserts one into another catalog.
"""

from __future__ import annotations

import json
import threading
import zlib
from dataclasses import dataclass

from ownvault.core.journalops import (
    MAX_NAME,
    MAX_SHORT,
    MAX_U32,
    MAX_U64,
    canonical,
    need_hex,
    need_int,
    need_list,
    need_name,
    need_obj,
    need_str,
)
from ownvault.core.jsonvalue import JSONValue
from ownvault.core.rowsobjects import INLINE_ROWS, MAX_BIG_ROWS
from ownvault.errors import FormatError

__all__ = [
    "MAGIC",
    "MAX_BIG_PLAIN",
    "MAX_PLAIN",
    "ChunkRow",
    "ContentRow",
    "EntryOut",
    "PackRow",
    "RowsBlob",
    "ShareOut",
    "VersionRows",
    "decode_rows",
    "encode_rows",
    "start_rows",
]

MAGIC = b"OVRW\x01"
MAX_PLAIN = 64 * 1024 * 1024  # bytes of JSON text rows carried in a record may expand to
MAX_BIG_PLAIN = 1536 * 1024 * 1024  # ... and rows stored as objects (core.rowsobjects)
MAX_ITEMS = 4_000_000  # entries, contents, chunks or packs of one version
MAX_SHARES = 256  # shares of one pack (n <= 32 by the policy; headroom for old vaults)
MAX_KEY = 1024  # bytes of one wrapped chunk key
_FIELDS = frozenset(
    {"created_at", "file_count", "cid_profile", "entries", "contents", "chunks", "packs"}
)
_ENTRY_KINDS = ("file", "dir", "symlink")
# zlib's level 6 gives within 0.2% of level 9's size on a put's rows (hex ids and keys are
# most of them), in 0.7x its time; the stream is not canonical, so any level decodes.
_LEVEL = 6
_THREADED = 256 * 1024  # text at least this long is compressed on a thread of its own
_MIN_I64, _MAX_I64 = -(2**63), 2**63 - 1


@dataclass(frozen=True, slots=True)
class ShareOut:
    """One share of a pack: its index, the provider holding it (by name), size, root."""

    idx: int
    provider: str
    size: int
    root: bytes


@dataclass(frozen=True, slots=True)
class PackRow:
    pack_id: bytes
    size: int
    k: int
    n: int
    created_at: int
    shares: tuple[ShareOut, ...]


@dataclass(frozen=True, slots=True)
class ChunkRow:
    """A chunk: where it sits in ``packs[pack]``, and its key wrapped under ``key_epoch``."""

    chunk_id: bytes
    pack: int
    offset: int
    length: int
    plain_len: int
    wrapped_key: bytes
    key_epoch: int


@dataclass(frozen=True, slots=True)
class ContentRow:
    """A content stream: ``chunks`` are indexes into the chunk list, in stream order."""

    size: int
    cid: str | None
    cid_profile: str | None
    tsize: int | None
    chunks: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class EntryOut:
    """An entry of the version: ``content`` is an index into the content list."""

    path: str
    kind: str
    mode: int
    mtime_ns: int
    size: int
    content: int | None
    target: str | None


@dataclass(frozen=True, slots=True)
class VersionRows:
    """Everything a reader needs of one version, besides what the ``put`` itself says
    (name, kind, size, CID, packs)."""

    created_at: int
    file_count: int
    cid_profile: str | None
    entries: tuple[EntryOut, ...]
    contents: tuple[ContentRow, ...]
    chunks: tuple[ChunkRow, ...]
    packs: tuple[PackRow, ...]

    def pack_ids(self) -> tuple[bytes, ...]:
        """The sorted pack ids (the ``packs`` of the ``put`` op)."""
        return tuple(sorted(p.pack_id for p in self.packs))


# -- encoding ------------------------------------------------------------------------------------


def _doc(rows: VersionRows) -> dict[str, JSONValue]:
    return {
        "created_at": rows.created_at,
        "file_count": rows.file_count,
        "cid_profile": rows.cid_profile,
        "entries": [
            [e.path, e.kind, e.mode, e.mtime_ns, e.size, e.content, e.target] for e in rows.entries
        ],
        "contents": [
            [c.size, c.cid, c.cid_profile, c.tsize, list(c.chunks)] for c in rows.contents
        ],
        "chunks": [
            [
                c.chunk_id.hex(),
                c.pack,
                c.offset,
                c.length,
                c.plain_len,
                c.wrapped_key.hex(),
                c.key_epoch,
            ]
            for c in rows.chunks
        ],
        "packs": [
            [
                p.pack_id.hex(),
                p.size,
                p.k,
                p.n,
                p.created_at,
                [[s.idx, s.provider, s.size, s.root.hex()] for s in p.shares],
            ]
            for p in rows.packs
        ],
    }


class RowsBlob:
    """The bytes of rows :func:`start_rows` checked: ``MAGIC || zlib(text)`` at the rows'
    level, compressed on a thread of its own (started at once) if ``text`` is at least
    ``_THREADED`` bytes, else in the thread that asks for them (:meth:`result`)."""

    def __init__(self, text: bytes) -> None:
        self._text = text
        self._out: list[bytes] = []
        self._thread: threading.Thread | None = None
        if len(text) >= _THREADED:
            self._thread = threading.Thread(target=self._run, name="rows-zlib", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        self._out.append(MAGIC + zlib.compress(self._text, _LEVEL))

    def result(self) -> bytes:
        """The bytes (waiting for the compressing thread if it has not finished)."""
        if self._thread is not None:
            self._thread.join()
        if not self._out:  # no thread, or it died (MemoryError): compress here
            self._run()
        return self._out[0]


def encode_rows(rows: VersionRows) -> bytes:
    """``rows`` as the bytes of a ``put``; ``FormatError`` if they are not canonical (see the
    module docstring) or come to more than ``MAX_BIG_ROWS`` bytes (rows over
    ``INLINE_ROWS`` travel as rows objects, ``core.rowsobjects``)."""
    return start_rows(rows).result()


def start_rows(rows: VersionRows) -> RowsBlob:
    """:func:`encode_rows`, the bytes perhaps still being compressed: every check is done
    (``FormatError`` raised) when this returns. Rows of at most ``MAX_PLAIN`` bytes of text
    cannot break a bound that depends on their compressed size (zlib adds at most 0.03%
    and a few bytes, ``_most_deflated``, and ``MAX_BIG_ROWS`` is far above), so only
    longer ones wait for it."""
    doc = _doc(rows)
    text = canonical(doc)
    if len(text) > MAX_BIG_PLAIN:
        raise FormatError(
            f"the rows of this version are {len(text)} bytes of text (max {MAX_BIG_PLAIN})"
        )
    # zlib runs without the GIL: it compresses on a thread of its own while this one runs
    # the decoder's checks and the caller goes on (half the encoding's time each or more).
    blob = RowsBlob(text)
    fault: FormatError | None = None
    try:
        same = _rows_of_value(doc) == rows
    except FormatError as exc:
        fault, same = exc, False
    bounded = len(text) <= MAX_PLAIN and len(MAGIC) + _most_deflated(len(text)) <= MAX_BIG_ROWS
    if not bounded or fault is not None or not same:
        _check_size(blob.result(), len(text), rows)
    # What decode_rows(blob) would give: the text parses back to ``doc`` itself (it holds
    # only dicts with string keys, lists, strings, ints and None, which JSON carries
    # exactly), and ``text`` is ``C(doc)``, so the decoder's canonical check holds.
    if fault is not None:
        raise fault
    if not same:
        raise FormatError("version rows do not survive their own decoder (a field out of range)")
    return blob


def _most_deflated(size: int) -> int:
    """More than zlib's output for ``size`` bytes in can be (stored blocks: 5 bytes per
    16 KiB, 2 of header, 4 of checksum), whatever it makes of them."""
    return size + size // 1000 + 64


def _check_size(blob: bytes, plain: int, rows: VersionRows) -> None:
    if len(blob) > MAX_BIG_ROWS:
        raise FormatError(
            f"the rows of this version are {len(blob)} bytes compressed, over the journal's "
            f"{MAX_BIG_ROWS} per put ({len(rows.entries)} entries, {len(rows.chunks)} chunks)"
        )
    if len(blob) <= INLINE_ROWS and plain > MAX_PLAIN:
        raise FormatError(  # what a record carries expands to at most MAX_PLAIN
            f"the rows of this version are {plain} bytes of text (max {MAX_PLAIN} for "
            f"rows of at most {INLINE_ROWS} bytes compressed)"
        )


# -- decoding ------------------------------------------------------------------------------------


def _inflate(blob: bytes) -> bytes:
    if len(blob) > MAX_BIG_ROWS:
        raise FormatError(f"put rows are over {MAX_BIG_ROWS} bytes")
    plain = MAX_PLAIN if len(blob) <= INLINE_ROWS else MAX_BIG_PLAIN
    if blob[:4] != MAGIC[:4]:
        raise FormatError("put rows do not start with OVRW")
    if blob[4:5] != MAGIC[4:]:
        raise FormatError(f"put rows of unknown version {blob[4:5].hex() or 'none'}")
    inflater = zlib.decompressobj()
    try:
        text = inflater.decompress(blob[5:], plain + 1)
    except zlib.error as exc:
        raise FormatError(f"put rows are not a zlib stream: {exc}") from None
    if len(text) > plain:
        raise FormatError(f"put rows expand to more than {plain} bytes")
    if not inflater.eof or inflater.unused_data:
        raise FormatError("put rows are a truncated zlib stream or have trailing bytes")
    return text


def _opt_int(value: JSONValue, what: str) -> int | None:
    return None if value is None else need_int(value, what, 0, MAX_U64)


def _opt_str(value: JSONValue, what: str) -> str | None:
    return None if value is None else need_str(value, what, MAX_SHORT)


def _tuple(value: JSONValue, what: str, size: int) -> list[JSONValue]:
    items = need_list(value, what, size)
    if len(items) != size:
        raise FormatError(f"{what} does not have {size} fields")
    return items


def _entry(value: JSONValue, what: str) -> EntryOut:
    v = _tuple(value, what, 7)
    path = need_str(v[0], f"{what} path", MAX_NAME)
    if "\x00" in path:
        raise FormatError(f"{what} path holds NUL")
    if v[1] not in _ENTRY_KINDS:
        raise FormatError(f"{what} kind is not file, dir or symlink")
    target = None if v[6] is None else need_str(v[6], f"{what} target", MAX_NAME)
    return EntryOut(
        path,
        str(v[1]),
        need_int(v[2], f"{what} mode", 0, MAX_U32),
        need_int(v[3], f"{what} mtime_ns", -(2**63), 2**63 - 1),
        need_int(v[4], f"{what} size", 0, MAX_U64),
        None if v[5] is None else need_int(v[5], f"{what} content", 0, MAX_ITEMS - 1),
        target,
    )


def _content(value: JSONValue, what: str) -> ContentRow:
    v = _tuple(value, what, 5)
    chunks = tuple(
        need_int(c, f"{what} chunk", 0, MAX_ITEMS - 1)
        for c in need_list(v[4], f"{what} chunks", MAX_ITEMS)
    )
    return ContentRow(
        need_int(v[0], f"{what} size", 0, MAX_U64),
        _opt_str(v[1], f"{what} cid"),
        _opt_str(v[2], f"{what} cid_profile"),
        _opt_int(v[3], f"{what} tsize"),
        chunks,
    )


def _chunk(value: JSONValue, what: str) -> ChunkRow:
    v = _tuple(value, what, 7)
    key = v[5]
    if not isinstance(key, str) or not 0 < len(key) <= 2 * MAX_KEY or len(key) % 2:
        raise FormatError(f"{what} wrapped key is not hex of at most {MAX_KEY} bytes")
    return ChunkRow(
        need_hex(v[0], f"{what} id", 32),
        need_int(v[1], f"{what} pack", 0, MAX_ITEMS - 1),
        need_int(v[2], f"{what} offset", 0, MAX_U64),
        need_int(v[3], f"{what} length", 0, MAX_U64),
        need_int(v[4], f"{what} plain_len", 0, MAX_U64),
        need_hex(key, f"{what} wrapped key", len(key) // 2),
        need_int(v[6], f"{what} key_epoch", 0, MAX_U32),
    )


# Fast paths: an item that passes every check inline is built at once; anything else goes
# to the checking decoder above (``_entry``, ``_content``, ``_chunk``), which names the
# fault. They accept exactly what the checking decoders accept and build the same values
# (tests/engine/test_journalrows.py compares both on valid and broken items): a put of
# 10,000 small files spent most of its rows check building error labels for each field.


def _text_ok(value: object, limit: int) -> bool:
    """``value`` is a string of at most ``limit`` UTF-8 bytes (``need_str``'s test)."""
    if type(value) is not str:
        return False
    try:
        return len(value.encode()) <= limit
    except UnicodeEncodeError:
        return False


def _hex_of(value: object, size: int) -> bytes | None:
    """``value`` as ``size`` bytes if it is their lowercase hex (``need_hex``'s test)."""
    if type(value) is not str or len(value) != 2 * size:
        return None
    try:
        raw = bytes.fromhex(value)
    except ValueError:
        return None
    return raw if raw.hex() == value else None


def _entry_fast(value: JSONValue, i: int) -> EntryOut:
    if type(value) is list and len(value) == 7:
        path, kind, mode, mtime_ns, size, content, target = value
        if (
            type(mode) is int
            and 0 <= mode <= MAX_U32
            and type(mtime_ns) is int
            and _MIN_I64 <= mtime_ns <= _MAX_I64
            and type(size) is int
            and 0 <= size <= MAX_U64
            and (content is None or (type(content) is int and 0 <= content < MAX_ITEMS))
            and type(kind) is str
            and kind in _ENTRY_KINDS
            and _text_ok(path, MAX_NAME)
            and "\x00" not in path  # type: ignore[operator]
            and (target is None or _text_ok(target, MAX_NAME))
        ):
            return EntryOut(path, kind, mode, mtime_ns, size, content, target)  # type: ignore[arg-type]
    return _entry(value, f"entry {i}")


def _content_fast(value: JSONValue, i: int) -> ContentRow:
    if type(value) is list and len(value) == 5:
        size, cid, profile, tsize, chunks = value
        if (
            type(size) is int
            and 0 <= size <= MAX_U64
            and (cid is None or _text_ok(cid, MAX_SHORT))
            and (profile is None or _text_ok(profile, MAX_SHORT))
            and (tsize is None or (type(tsize) is int and 0 <= tsize <= MAX_U64))
            and type(chunks) is list
            and len(chunks) <= MAX_ITEMS
            and all(type(c) is int and 0 <= c < MAX_ITEMS for c in chunks)
        ):
            return ContentRow(size, cid, profile, tsize, tuple(chunks))  # type: ignore[arg-type]
    return _content(value, f"content {i}")


def _chunk_fast(value: JSONValue, i: int) -> ChunkRow:
    if type(value) is list and len(value) == 7:
        chunk_id, pack, offset, length, plain_len, key, epoch = value
        if (
            type(pack) is int
            and 0 <= pack < MAX_ITEMS
            and type(offset) is int
            and 0 <= offset <= MAX_U64
            and type(length) is int
            and 0 <= length <= MAX_U64
            and type(plain_len) is int
            and 0 <= plain_len <= MAX_U64
            and type(epoch) is int
            and 0 <= epoch <= MAX_U32
            and type(key) is str
            and 0 < len(key) <= 2 * MAX_KEY
        ):
            raw_id, raw_key = _hex_of(chunk_id, 32), _hex_of(key, len(key) // 2)
            if raw_id is not None and raw_key is not None:
                return ChunkRow(raw_id, pack, offset, length, plain_len, raw_key, epoch)
    return _chunk(value, f"chunk {i}")


def _pack(value: JSONValue, what: str) -> PackRow:
    v = _tuple(value, what, 6)
    shares = []
    for i, s in enumerate(need_list(v[5], f"{what} shares", MAX_SHARES)):
        sv = _tuple(s, f"{what} share {i}", 4)
        shares.append(
            ShareOut(
                need_int(sv[0], f"{what} share {i} index", 0, MAX_SHARES - 1),
                need_name(sv[1], f"{what} share {i} provider"),
                need_int(sv[2], f"{what} share {i} size", 0, MAX_U64),
                need_hex(sv[3], f"{what} share {i} root", 32),
            )
        )
    if [s.idx for s in shares] != sorted({s.idx for s in shares}):
        raise FormatError(f"{what} shares are not sorted by index or repeat one")
    return PackRow(
        need_hex(v[0], f"{what} id", 16),
        need_int(v[1], f"{what} size", 0, MAX_U64),
        need_int(v[2], f"{what} k", 1, MAX_SHARES),
        need_int(v[3], f"{what} n", 1, MAX_SHARES),
        need_int(v[4], f"{what} created_at", 0, MAX_U64),
        tuple(shares),
    )


def _first_use(refs: list[int], count: int, what: str) -> None:
    """``refs`` must use every index below ``count``, first using them in order 0, 1, 2..."""
    nxt = 0
    for r in refs:
        if r > nxt or r >= count:
            raise FormatError(f"{what} {r} is used out of order or does not exist")
        if r == nxt:
            nxt += 1
    if nxt != count:
        raise FormatError(f"{count - nxt} {what}(s) are listed but never used")


def _check_links(rows: VersionRows) -> None:
    paths = [e.path for e in rows.entries]
    if not paths or paths != sorted(set(paths)) or paths[0] != "":
        raise FormatError("version rows: entries are empty, unsorted, repeated or lack the root")
    for e in rows.entries:
        if (e.kind == "file") != (e.content is not None) or (e.kind == "symlink") != (
            e.target is not None
        ):
            raise FormatError(f"version rows: entry {e.path[:80]!r} has the wrong references")
    _first_use(
        [e.content for e in rows.entries if e.content is not None], len(rows.contents), "content"
    )
    _first_use([c for ct in rows.contents for c in ct.chunks], len(rows.chunks), "chunk")
    _first_use([c.pack for c in rows.chunks], len(rows.packs), "pack")
    ids = [c.chunk_id for c in rows.chunks]
    if len(set(ids)) != len(ids) or len({p.pack_id for p in rows.packs}) != len(rows.packs):
        raise FormatError("version rows list one chunk or one pack twice")


def decode_rows(blob: bytes) -> VersionRows:
    """The rows of a ``put``; ``FormatError`` naming the first fault."""
    return _rows_of_text(_inflate(blob))


def _rows_of_text(text: bytes) -> VersionRows:
    """The rows of a ``put`` from their inflated text (:func:`decode_rows` after inflating)."""
    try:
        value: JSONValue = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise FormatError(f"put rows are not JSON: {str(exc)[:80]}") from None
    rows = _rows_of_value(value)
    if canonical(value) != text:
        raise FormatError("put rows are not in canonical form")
    return rows


def _rows_of_value(value: JSONValue) -> VersionRows:
    """The rows a parsed ``doc`` holds, every field and link checked."""
    v = need_obj(value, "put rows", _FIELDS)

    def items(key: str) -> list[JSONValue]:
        return need_list(v[key], f"rows {key}", MAX_ITEMS)

    rows = VersionRows(
        need_int(v["created_at"], "rows created_at", 0, MAX_U64),
        need_int(v["file_count"], "rows file_count", 0, MAX_U64),
        _opt_str(v["cid_profile"], "rows cid_profile"),
        tuple(_entry_fast(e, i) for i, e in enumerate(items("entries"))),
        tuple(_content_fast(c, i) for i, c in enumerate(items("contents"))),
        tuple(_chunk_fast(c, i) for i, c in enumerate(items("chunks"))),
        tuple(_pack(p, f"pack {i}") for i, p in enumerate(items("packs"))),
    )
    _check_links(rows)
    return rows
