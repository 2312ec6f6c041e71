"""Chunk blobs, packs and shares: what providers hold, byte for byte.

chunk blob (``BLOB_FORMAT`` v1)::

    blob := seal(chunk_key, chunk_plaintext, AD = "ownvault/v1/chunk" || chunk_id)
          = 0x01 || nonce(12) || ciphertext || tag(16)

Each chunk has its own random 32-byte key, stored in the catalog wrapped under the content
key (``wrap_chunk_key``), so a grant can hand out exactly the chunks of one file and
forgetting a file destroys its keys.

pack (v1)::

    pack := "OVPK" || 0x01 || 0x000000 || blob_1 || ... || blob_m || zero padding

The padded size is a power of two between 64 KiB and 16 MiB (``pack_size_class``); blob
boundaries are not marked (the catalog knows offsets and lengths), so a provider learns
neither chunk sizes nor counts, only the size class of each pack.

share (v1), one per erasure-coded fragment of a pack, with its Merkle tree's leaf level
(``merkle-blake3-16k-v1``) and a trailer appended (docs/design.md, "Shares")::

    share   := data || leaves || trailer
    data    := "OVSH" || 0x01 || k(u8) || n(u8) || index(u8) || pack_id(16) || fragment
    leaves  := leaf_0 || ... || leaf_{L-1}         L = max(1, ceil(|data| / 16 KiB)), 32 bytes each
    trailer := |data| (u64 BE) || tree format (u8, 1 = merkle-blake3-16k-v1) || 0x000000 || "OVMT"

The Merkle root recorded in the catalog covers ``data`` only; the leaves let a provider
that holds the share prove any block, and let a client that can only read ranges check a
block against the root (:class:`ShareLayout` gives every offset).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

from ownvault.core import crypto
from ownvault.core.merkle import (
    BLOCK_SIZE,
    HASH_SIZE,
    block_count,
    merkle_leaves,
    merkle_leaves_parts,
    root_from_leaves,
)
from ownvault.errors import FormatError, IntegrityError

__all__ = [
    "MAX_PACK_SIZE",
    "MIN_PACK_SIZE",
    "PACK_HEADER",
    "PACK_ID_SIZE",
    "SHARE_HEADER_SIZE",
    "TRAILER_SIZE",
    "ChunkKeyWrapper",
    "PackBuilder",
    "ShareHeader",
    "ShareLayout",
    "attach_tree",
    "build_share",
    "decode_share",
    "encode_share",
    "new_pack_id",
    "open_chunk",
    "open_chunk_into",
    "pack_size_class",
    "seal_chunk",
    "share_name",
    "share_parts",
    "share_parts_from_tree",
    "share_tree",
    "split_share",
    "unwrap_chunk_key",
    "wrap_chunk_key",
]

BufferT = TypeVar("BufferT", bytes, memoryview)
PACK_MAGIC = b"OVPK"
PACK_VERSION = 1
PACK_HEADER = PACK_MAGIC + bytes((PACK_VERSION, 0, 0, 0))
MIN_PACK_SIZE = 64 * 1024
MAX_PACK_SIZE = 16 * 1024 * 1024
PACK_ID_SIZE = 16
SHARE_MAGIC = b"OVSH"
SHARE_VERSION = 1
SHARE_HEADER_SIZE = 4 + 1 + 3 + PACK_ID_SIZE
TREE_MAGIC = b"OVMT"
TREE_FORMAT_V1 = 1  # merkle-blake3-16k-v1
TRAILER_SIZE = 16
MAX_SHARE_DATA = 1 << 40
CHUNK_AD = b"ownvault/v1/chunk"
CHUNK_KEY_AD = b"ownvault/v1/chunk-key"


def new_pack_id() -> bytes:
    return crypto.random_bytes(PACK_ID_SIZE)


def share_name(prefix: str, pack_id: bytes, index: int) -> str:
    """Provider object name of share ``index`` of a pack: ``PREFIX/ab/abcd….3``."""
    h = pack_id.hex()
    return f"{prefix}/{h[:2]}/{h}.{index}"


def seal_chunk(chunk_key: bytes, chunk_id: bytes, plaintext: bytes) -> bytes:
    return crypto.seal(chunk_key, plaintext, CHUNK_AD + chunk_id)


def open_chunk(chunk_key: bytes, chunk_id: bytes, blob: bytes | memoryview) -> bytes:
    return crypto.open_box(chunk_key, blob, CHUNK_AD + chunk_id)


def open_chunk_into(
    chunk_key: bytes, chunk_id: bytes, blob: bytes | memoryview, out: memoryview
) -> int:
    """:func:`open_chunk` into ``out``; the plaintext's length (``crypto.open_box_into``)."""
    return crypto.open_box_into(chunk_key, blob, CHUNK_AD + chunk_id, out)


def wrap_chunk_key(content_key: bytes, chunk_id: bytes, chunk_key: bytes) -> bytes:
    return crypto.seal(content_key, chunk_key, CHUNK_KEY_AD + chunk_id)


class ChunkKeyWrapper:
    """:func:`wrap_chunk_key` under one content key, set up once, nonces from ``pool``:
    the same wrapped keys, for a put that wraps one per new chunk."""

    __slots__ = ("_sealer",)

    def __init__(self, content_key: bytes, pool: crypto.RandomPool) -> None:
        self._sealer = crypto.BoxSealer(content_key, pool)

    def wrap(self, chunk_id: bytes, chunk_key: bytes) -> bytes:
        return self._sealer.seal(chunk_key, CHUNK_KEY_AD + chunk_id)


def unwrap_chunk_key(content_key: bytes, chunk_id: bytes, wrapped: bytes) -> bytes:
    key = crypto.open_box(content_key, wrapped, CHUNK_KEY_AD + chunk_id)
    if len(key) != crypto.KEY_SIZE:
        raise IntegrityError("wrapped chunk key has the wrong length")
    return key


def pack_size_class(used: int) -> int:
    """The padded size of a pack whose header and blobs take ``used`` bytes."""
    if used > MAX_PACK_SIZE:
        raise FormatError(f"pack content of {used} bytes exceeds {MAX_PACK_SIZE}")
    size = MIN_PACK_SIZE
    while size < used:
        size *= 2
    return size


class PackBuilder:
    """Accumulates blobs into one pack buffer; ``seal()`` returns the padded pack bytes.

    Blobs are written straight into a buffer of the target size (``add_chunk`` seals a
    chunk into place: no blob object, no join), and the buffer is reused after ``seal()``,
    so a put of any size allocates it once. ``lend()`` hands the pack out as a view of its
    buffer instead of a copy and goes on in another buffer; the lent one comes back with
    ``give_back`` (at most ``keep`` are kept for reuse), so a pipeline with m packs in
    flight cycles through m + 1 buffers. A buffer is made only when a blob is added to
    it: a builder that stores nothing (a put that finds every file unchanged) allocates
    none, and a last pack lent does not leave a fresh buffer behind it (a new 16 MiB
    buffer is zeroed and faulted in under the GIL, 16-18 ms here: 38% of the profiled
    samples of an unchanged 64-file re-put's own work, imports excluded, before this)."""

    def __init__(self, target: int = MAX_PACK_SIZE, keep: int = 2) -> None:
        if not MIN_PACK_SIZE <= target <= MAX_PACK_SIZE:
            raise FormatError("pack target size out of range")
        self.target = target
        self.keep = keep
        self._buf: bytearray | memoryview | None = None  # made on first use (``_buffer``)
        self._free: list[bytearray | memoryview] = []  # given back; only the filling thread pops
        self._lent: dict[int, memoryview] = {}  # id(lent view) -> its external buffer
        self._external: set[int] = set()  # ids of the buffers given by ``use_buffers``
        self.used = len(PACK_HEADER)
        self.count = 0

    def use_buffers(self, buffers: list[memoryview]) -> None:
        """Fill these writable buffers of ``target`` bytes (memory shared with an encoding
        process: ``engine.store.encworker``) from now on, before any of its own: the ones
        given back are dropped, the one filling (if any) is kept until lent. They cycle as
        its own do (lent, given back, refilled) until :meth:`drop_buffers`."""
        for buf in buffers:
            if len(buf) != self.target or buf.readonly:
                raise FormatError("pack buffers must be writable and of the target size")
            buf[: len(PACK_HEADER)] = PACK_HEADER
        self._external = {id(b) for b in buffers}
        self._free = list(buffers)

    def drop_buffers(self) -> None:
        """Forget every buffer :meth:`use_buffers` gave (the filling one too, with anything
        added to it: call it when nothing more is stored), so their memory can be freed."""
        self._free = [b for b in self._free if id(b) not in self._external]
        if self._buf is not None and id(self._buf) in self._external:
            self._buf = None
            self.used = len(PACK_HEADER)
            self.count = 0
        self._external = set()
        self._lent = {}

    def _new_buffer(self) -> bytearray:
        buf = bytearray(self.target)
        buf[: len(PACK_HEADER)] = PACK_HEADER
        return buf

    def _buffer(self) -> bytearray | memoryview:
        """The buffer being filled: one given back, else a new one, made when first needed."""
        if self._buf is None:
            self._buf = self._free.pop() if self._free else self._new_buffer()
        return self._buf

    @property
    def allocated(self) -> int:
        """Buffers this builder holds now (the one filling and those given back), not
        counting the lent ones."""
        return (self._buf is not None) + len(self._free)

    def fits(self, blob_len: int) -> bool:
        return self.used + blob_len <= self.target

    def add(self, blob: bytes) -> int:
        """Append a blob; return its offset in the pack."""
        if not self.fits(len(blob)):
            raise FormatError("blob does not fit in this pack")
        offset = self.used
        self._buffer()[offset : offset + len(blob)] = blob
        self.used += len(blob)
        self.count += 1
        return offset

    def add_chunk(
        self,
        chunk_key: bytes,
        chunk_id: bytes,
        plaintext: bytes | memoryview,
        pool: crypto.RandomPool | None = None,
    ) -> tuple[int, int]:
        """Seal a chunk (``seal_chunk``) straight into the pack, its nonce from ``pool`` if
        given; return (offset, blob length)."""
        if not self.fits(len(plaintext) + crypto.AEAD_OVERHEAD):
            raise FormatError("blob does not fit in this pack")
        offset = self.used
        with memoryview(self._buffer()) as view:
            size = crypto.seal_into(chunk_key, plaintext, CHUNK_AD + chunk_id, view[offset:], pool)
        self.used += size
        self.count += 1
        return offset, size

    def _pad(self) -> int:
        size = pack_size_class(self.used)
        self._buffer()[self.used : size] = bytes(size - self.used)
        self.used = len(PACK_HEADER)
        self.count = 0
        return size

    def seal(self) -> bytes:
        """The padded pack, copied out; the builder is empty (and reusable) afterwards."""
        size = self._pad()
        with memoryview(self._buffer()) as view:
            return bytes(view[:size])

    def lend(self) -> memoryview:
        """The padded pack as a writable view of the builder's buffer, without a copy.

        The buffer is the caller's until it is given back (``give_back``): the builder goes
        on in a buffer given back earlier, or a new one, and never writes a lent one. Give
        it back only when nothing reads the pack any more (a stored pack: once its shares
        are durable and no thread still reads them, since the data fragments' payloads are
        views of it); a view never given back just leaves its buffer to the collector."""
        size = self._pad()
        buf = self._buffer()
        with memoryview(buf) as whole:
            view = whole[:size]
        if isinstance(buf, memoryview) and id(buf) in self._external:  # ``obj``: the whole map
            self._lent[id(view)] = buf
        self._buf = None  # the next one is taken or made when a blob comes
        return view

    def give_back(self, view: memoryview) -> None:
        """Return a buffer ``lend()`` returned (``view`` is released); any thread may call it."""
        buf: bytearray | memoryview | None = self._lent.pop(id(view), None)
        if buf is None:
            buf = view.obj if isinstance(view.obj, bytearray) else None
        view.release()
        if buf is None or len(buf) != self.target:
            return
        # a shared buffer always comes back (they are few); one of its own, up to ``keep``
        ours = isinstance(buf, bytearray) and len(self._free) < self.keep
        if ours or id(buf) in self._external:
            self._free.append(buf)


@dataclass(frozen=True, slots=True)
class ShareHeader:
    k: int
    n: int
    index: int
    pack_id: bytes


def _share_head(header: ShareHeader) -> bytes:
    return SHARE_MAGIC + bytes((SHARE_VERSION, header.k, header.n, header.index)) + header.pack_id


def encode_share(header: ShareHeader, fragment: bytes) -> bytes:
    return _share_head(header) + fragment


def build_share(header: ShareHeader, *fragment: bytes | memoryview) -> tuple[bytes, bytes]:
    """``attach_tree(encode_share(header, fragment))`` with one copy of the fragment instead
    of three: the stored share joined once from :func:`share_parts`."""
    parts, root = share_parts(header, *fragment)
    return b"".join(parts), root


def share_parts(
    header: ShareHeader, *fragment: bytes | memoryview
) -> tuple[tuple[bytes | memoryview, ...], bytes]:
    """The stored share as parts that, joined, are its bytes (header, the fragment's pieces
    as given, the leaf level, the trailer), and its Merkle root. Nothing of the fragment is
    copied: the leaves are hashed over the header and the pieces in place, so a provider
    can write the share from the pieces (views of a pack) directly."""
    leaves, root = share_tree(header, *fragment)
    return share_parts_from_tree(header, fragment, leaves), root


def share_tree(header: ShareHeader, *fragment: bytes | memoryview) -> tuple[bytes, bytes]:
    """The share's leaf level (joined) and Merkle root, hashed over the header and the
    fragment's pieces in place: the hashing half of :func:`share_parts` (what the encoding
    worker process, ``engine.store.encworker``, answers)."""
    leaves = merkle_leaves_parts((_share_head(header), *fragment))
    return b"".join(leaves), root_from_leaves(leaves)


def share_parts_from_tree(
    header: ShareHeader, fragment: tuple[bytes | memoryview, ...], leaves: bytes
) -> tuple[bytes | memoryview, ...]:
    """The stored share's parts from the fragment's pieces and the leaf level
    :func:`share_tree` gave for them; ``FormatError`` when ``leaves`` is not one leaf per
    block of that share."""
    head = _share_head(header)
    layout = ShareLayout(len(head) + sum(len(p) for p in fragment))
    if len(leaves) != layout.leaves_len:
        raise FormatError(f"a share's leaf level is {len(leaves)} bytes, not {layout.leaves_len}")
    return (head, *fragment, leaves, layout.trailer())


def decode_share(data: BufferT) -> tuple[ShareHeader, BufferT]:
    """Split a share into header and fragment (a slice of ``data``: a view when ``data``
    is a ``memoryview``); ``FormatError`` when it is not one."""
    if len(data) < SHARE_HEADER_SIZE:
        raise FormatError("share too short")
    if data[:4] != SHARE_MAGIC:
        raise FormatError("not a share (bad magic)")
    if data[4] != SHARE_VERSION:
        raise FormatError(f"unknown share version {data[4]}")
    k, n, index = data[5], data[6], data[7]
    if not (1 <= k < n and index < n):
        raise FormatError("share header has impossible k/n/index")
    header = ShareHeader(k, n, index, bytes(data[8:SHARE_HEADER_SIZE]))
    return header, data[SHARE_HEADER_SIZE:]


@dataclass(frozen=True, slots=True)
class ShareLayout:
    """Where everything is in a stored share whose data part has ``data_len`` bytes."""

    data_len: int

    def __post_init__(self) -> None:
        if not 0 <= self.data_len <= MAX_SHARE_DATA:
            raise FormatError("share data length out of range")

    @property
    def blocks(self) -> int:
        return block_count(self.data_len)

    @property
    def leaves_offset(self) -> int:
        return self.data_len

    @property
    def leaves_len(self) -> int:
        return HASH_SIZE * self.blocks

    @property
    def trailer_offset(self) -> int:
        return self.data_len + self.leaves_len

    @property
    def total(self) -> int:
        return self.trailer_offset + TRAILER_SIZE

    def block_range(self, index: int) -> tuple[int, int]:
        """(offset, length) of block ``index`` of the data part."""
        if not 0 <= index < self.blocks:
            raise FormatError(f"block {index} out of range (share has {self.blocks})")
        start = index * BLOCK_SIZE
        return start, min(BLOCK_SIZE, self.data_len - start)

    def trailer(self) -> bytes:
        return self.data_len.to_bytes(8, "big") + bytes((TREE_FORMAT_V1, 0, 0, 0)) + TREE_MAGIC

    @classmethod
    def for_total(cls, total: int) -> ShareLayout:
        """The layout of a stored share of ``total`` bytes (``FormatError`` if none fits)."""
        body = total - TRAILER_SIZE - HASH_SIZE
        if body < 0:
            raise FormatError(f"{total} bytes is too short for a share")
        # total = D + 32 * max(1, ceil(D / B)) + 16, strictly increasing in D: D sits just
        # below body * B / (B + 32).
        guess = body * BLOCK_SIZE // (BLOCK_SIZE + HASH_SIZE)
        for d in range(max(0, guess - 2), guess + 34):
            if d > MAX_SHARE_DATA:
                break
            layout = cls(d)
            if layout.total == total:
                return layout
            if layout.total > total:
                break
        raise FormatError(f"no share layout has {total} bytes")

    @classmethod
    def from_trailer(cls, trailer: bytes) -> ShareLayout:
        """Parse the 16-byte trailer at the end of a stored share."""
        if len(trailer) != TRAILER_SIZE or trailer[12:] != TREE_MAGIC:
            raise FormatError("share has no tree trailer (bad magic)")
        if trailer[8] != TREE_FORMAT_V1 or trailer[9:12] != b"\0\0\0":
            raise FormatError(f"unknown share tree format {trailer[8]}")
        return cls(int.from_bytes(trailer[:8], "big"))


def attach_tree(data: bytes) -> tuple[bytes, bytes]:
    """The stored share for a data part (``encode_share``), and its Merkle root."""
    leaves = merkle_leaves(data)
    layout = ShareLayout(len(data))
    return b"".join((data, *leaves, layout.trailer())), root_from_leaves(leaves)


def split_share(stored: bytes | memoryview) -> tuple[memoryview, list[bytes]]:
    """A stored share's data part and its stored leaf level, after checking the layout.

    The leaves are the share's own claim: compare ``root_from_leaves(leaves)`` with the
    recorded root (and the data's own leaves) before trusting them.
    """
    view = memoryview(stored)
    if len(view) < TRAILER_SIZE:
        raise FormatError("share too short for its trailer")
    layout = ShareLayout.from_trailer(bytes(view[-TRAILER_SIZE:]))
    if layout.total != len(view):
        raise FormatError(f"share trailer says {layout.total} bytes, the share has {len(view)}")
    raw = view[layout.leaves_offset : layout.trailer_offset]
    leaves = [bytes(raw[i : i + HASH_SIZE]) for i in range(0, len(raw), HASH_SIZE)]
    return view[: layout.data_len], leaves
