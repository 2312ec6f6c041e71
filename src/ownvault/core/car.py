"""CAR (Content Addressable aRchive) files: a CARv1 writer and a streaming, verifying reader
for CARv1 and CARv2.

CARv1 (ipld.io/specs/transport/car/carv1)::

    CARv1   = varint(len(H)) || H || section*
    H       = dag-cbor {"roots": [CID, ...], "version": 1}      (CIDs as tag 42, bytes 0x00||cid)
    section = varint(len(cid) + len(block)) || cid || block

CARv2 (carv2 spec) wraps a CARv1 payload::

    CARv2   = pragma || header || [padding] || CARv1 payload || [padding] || [index]
    pragma  = 0a a1 67 76 65 72 73 69 6f 6e 02                 (varint 10, {"version": 2})
    header  = characteristics(16) || data offset(u64 LE) || data size(u64 LE) || index offset(u64 LE)

The writer emits ``roots=[root]`` and the blocks it is given, dropping duplicates; give
it blocks in depth-first pre-order (:func:`dfs_blocks`) to get the trustless gateway's
``order=dfs, dups=n`` layout. The reader takes an iterable of byte chunks (the caller
does the I/O), re-hashes every block against its CID and yields it; it never holds more
than one section. Limits follow go-car's defaults: a section (CID + block) of at most
8 MiB; the header is capped lower, at 1 MiB (go-car: 32 MiB), with at most 1024 roots.

Hand-written because the header is a two-key dag-cbor map (a general CBOR library would
accept far more than a CAR header may contain) and because every length read from the
file must be bounded before it is trusted.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

from ownvault.core.cid import CID, DAG_PB, decode_varint, encode_varint, read_cid
from ownvault.core.dagpb import decode_node
from ownvault.errors import FormatError, IntegrityError

__all__ = [
    "CARV2_PRAGMA",
    "MAX_HEADER_SIZE",
    "MAX_ROOTS",
    "MAX_SECTION_SIZE",
    "CarBlock",
    "CarReader",
    "dfs_blocks",
    "encode_header",
    "encode_section",
    "write_car",
]

MAX_HEADER_SIZE = 1024 * 1024
MAX_SECTION_SIZE = 8 * 1024 * 1024
MAX_ROOTS = 1024
CARV2_PRAGMA = bytes.fromhex("0aa16776657273696f6e02")
_V2_HEADER = 40


# -- dag-cbor (the header's subset) -----------------------------------------------------


def _cbor_head(major: int, n: int) -> bytes:
    if n < 24:
        return bytes((major << 5 | n,))
    for extra, size in ((24, 1), (25, 2), (26, 4), (27, 8)):
        if n < 1 << (8 * size):
            return bytes((major << 5 | extra,)) + n.to_bytes(size, "big")
    raise ValueError("CBOR length too large")


def encode_header(roots: Sequence[CID], version: int = 1) -> bytes:
    """The length-prefixed CARv1 header for ``roots``."""
    body = bytearray(b"\xa2\x65roots")
    body += _cbor_head(4, len(roots))
    for root in roots:
        raw = b"\x00" + root.bytes
        body += b"\xd8\x2a" + _cbor_head(2, len(raw)) + raw
    body += b"\x67version" + _cbor_head(0, version)
    return encode_varint(len(body)) + bytes(body)


class _Cbor:
    """Decoder for the dag-cbor subset a CAR header uses (definite lengths, tag 42 only)."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def _head(self) -> tuple[int, int]:
        if self.pos >= len(self.data):
            raise FormatError("truncated CAR header")
        first = self.data[self.pos]
        self.pos += 1
        major, info = first >> 5, first & 31
        if info < 24:
            return major, info
        if info > 27:
            raise FormatError("CAR header uses indefinite or reserved CBOR lengths")
        size = 1 << (info - 24)
        if self.pos + size > len(self.data):
            raise FormatError("truncated CAR header")
        value = int.from_bytes(self.data[self.pos : self.pos + size], "big")
        self.pos += size
        if value < (24 if size == 1 else 1 << (4 * size)):
            raise FormatError("CAR header uses a non-minimal CBOR length")
        return major, value

    def _take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise FormatError("truncated CAR header")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def text(self) -> str:
        major, n = self._head()
        if major != 3:
            raise FormatError("CAR header map key is not a string")
        try:
            return self._take(n).decode("utf-8")
        except UnicodeDecodeError:
            raise FormatError("CAR header key is not UTF-8") from None

    def uint(self) -> int:
        major, n = self._head()
        if major != 0:
            raise FormatError("CAR header version is not an unsigned integer")
        return n

    def cid(self) -> CID:
        major, tag = self._head()
        if major != 6 or tag != 42:
            raise FormatError("CAR root is not a CID (CBOR tag 42)")
        major, n = self._head()
        if major != 2:
            raise FormatError("CAR root CID is not a byte string")
        raw = self._take(n)
        if raw[:1] != b"\x00":
            raise FormatError("CAR root CID lacks the 0x00 multibase prefix")
        return CID.from_bytes(raw[1:])

    def header(self) -> tuple[int, tuple[CID, ...] | None]:
        major, n = self._head()
        if major != 5:
            raise FormatError("CAR header is not a CBOR map")
        version: int | None = None
        roots: tuple[CID, ...] | None = None
        seen: set[str] = set()
        for _ in range(n):
            key = self.text()
            if key in seen:
                raise FormatError(f"CAR header repeats key {key!r}")
            seen.add(key)
            if key == "version":
                version = self.uint()
            elif key == "roots":
                major, count = self._head()
                if major != 4:
                    raise FormatError("CAR header roots is not an array")
                if count > MAX_ROOTS:
                    raise FormatError(f"CAR header has more than {MAX_ROOTS} roots")
                roots = tuple(self.cid() for _ in range(count))
            else:
                raise FormatError(f"unexpected CAR header key {key!r}")
        if self.pos != len(self.data):
            raise FormatError("trailing bytes in CAR header")
        if version is None:
            raise FormatError("CAR header without version")
        return version, roots


# -- writing ------------------------------------------------------------------------------


def encode_section(cid: CID, block: bytes) -> bytes:
    raw = cid.bytes
    return encode_varint(len(raw) + len(block)) + raw + block


def write_car(roots: Sequence[CID], blocks: Iterable[tuple[CID, bytes]]) -> Iterator[bytes]:
    """Yield a CARv1: the header, then one section per distinct block (duplicates dropped)."""
    if not roots:
        raise FormatError("a CAR needs at least one root")
    yield encode_header(roots)
    seen: set[bytes] = set()
    for cid, block in blocks:
        key = cid.bytes
        if key in seen:
            continue
        seen.add(key)
        if len(key) + len(block) > MAX_SECTION_SIZE:
            raise FormatError("block too large for a CAR section")
        yield encode_section(cid, block)


def dfs_blocks(root: CID, get: Callable[[CID], bytes]) -> Iterator[tuple[CID, bytes]]:
    """The DAG under ``root`` in depth-first pre-order without duplicates (dag-pb links)."""
    seen: set[bytes] = set()
    stack = [root]
    while stack:
        cid = stack.pop()
        if cid.bytes in seen:
            continue
        seen.add(cid.bytes)
        block = get(cid)
        yield cid, block
        if cid.codec == DAG_PB:
            stack.extend(link.cid for link in reversed(decode_node(block).links))


# -- reading ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CarBlock:
    """One verified block of a CAR; ``offset`` = its section's offset in the CARv1 payload."""

    cid: CID
    data: bytes
    offset: int


class _Stream:
    """Pull bytes from an iterable of chunks, with an optional hard end (CARv2 data size)."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._it = iter(chunks)
        self._buf = bytearray()
        self._off = 0
        self.pos = 0  # bytes consumed so far
        self.limit: int | None = None

    def _fill(self, n: int) -> bool:
        while len(self._buf) - self._off < n:
            try:
                chunk = next(self._it)
            except StopIteration:
                return False
            if self._off:
                del self._buf[: self._off]
                self._off = 0
            self._buf += chunk
        return True

    def at_end(self) -> bool:
        if self.limit is not None and self.pos >= self.limit:
            return True
        return not self._fill(1)

    def read(self, n: int, what: str) -> bytes:
        if self.limit is not None and self.pos + n > self.limit:
            raise FormatError(f"truncated CAR: {what} runs past the CARv2 data size")
        if not self._fill(n):
            raise FormatError(f"truncated CAR: {what}")
        out = bytes(self._buf[self._off : self._off + n])
        self._off += n
        self.pos += n
        return out

    def varint(self, what: str) -> int:
        raw = bytearray()
        while True:
            byte = self.read(1, what)
            raw += byte
            if byte[0] < 0x80:
                return decode_varint(bytes(raw))[0]
            if len(raw) >= 9:
                raise FormatError(f"CAR {what} length varint too long")


class CarReader:
    """Streaming CAR reader: ``version`` and ``roots`` after construction, then iterate blocks.

    Every block is re-hashed; a mismatch raises :class:`IntegrityError`. Malformed or
    over-limit input raises :class:`FormatError`.
    """

    def __init__(
        self,
        chunks: Iterable[bytes],
        *,
        max_section_size: int = MAX_SECTION_SIZE,
        max_header_size: int = MAX_HEADER_SIZE,
    ) -> None:
        self._s = _Stream(chunks)
        self._max_section = max_section_size
        self._max_header = max_header_size
        self._started = False
        self.data_offset = 0
        self.data_size: int | None = None
        version, roots = self._read_header()
        self.version = version
        if version == 2:
            self._read_v2_header()
            inner, roots = self._read_header()
            if inner != 1:
                raise FormatError("CARv2 payload is not a CARv1")
        elif version != 1:
            raise FormatError(f"unsupported CAR version {version}")
        if not roots:
            raise FormatError("CAR has no roots")
        self.roots: tuple[CID, ...] = roots

    def _read_header(self) -> tuple[int, tuple[CID, ...] | None]:
        length = self._s.varint("header")
        if length == 0:
            raise FormatError("empty CAR header")
        if length > self._max_header:
            raise FormatError(f"CAR header larger than {self._max_header} bytes")
        version, roots = _Cbor(self._s.read(length, "header")).header()
        if version == 2 and roots is not None:
            raise FormatError("CARv2 pragma must not carry roots")
        if version == 1 and roots is None:
            raise FormatError("CARv1 header without roots")
        return version, roots

    def _read_v2_header(self) -> None:
        raw = self._s.read(_V2_HEADER, "CARv2 header")
        offset = int.from_bytes(raw[16:24], "little")
        size = int.from_bytes(raw[24:32], "little")
        start = len(CARV2_PRAGMA) + _V2_HEADER
        if offset < start:
            raise FormatError("CARv2 data offset points into its header")
        if size == 0:
            raise FormatError("CARv2 data size is zero")
        skip = offset - start
        while skip:
            step = min(skip, 1 << 20)
            self._s.read(step, "CARv2 padding")
            skip -= step
        self.data_offset = offset
        self.data_size = size
        self._s.limit = offset + size

    def __iter__(self) -> Iterator[CarBlock]:
        if self._started:
            raise FormatError("a CarReader can be iterated once")
        self._started = True
        s = self._s
        while not s.at_end():
            offset = s.pos - self.data_offset
            length = s.varint("section")
            if length == 0:
                raise FormatError(f"zero-length CAR section at offset {offset}")
            if length > self._max_section:
                raise FormatError(f"CAR section at offset {offset} larger than {self._max_section}")
            body = s.read(length, "section")
            cid, pos = read_cid(body, 0)
            data = body[pos:]
            if not cid.verify(data):
                raise IntegrityError(f"CAR block {cid} does not match its hash", name=str(cid))
            yield CarBlock(cid, data, offset)
