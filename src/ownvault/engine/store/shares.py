"""Moving packs to and from providers as verified shares.

Upload: erasure-code a pack into n fragments, wrap each in a share header, append its
Merkle tree (leaf level and trailer, ``core.pack``), and write the shares concurrently, one
per provider, each as its parts (:class:`ShareParts`: header, views of the pack or of a
parity buffer, tree), never joined. Download: ask for k shares (data fragments first: decoding them is a copy),
reading only each share's data part (the tree is for audits), verify it against the size
and Merkle root recorded in the catalog, replace any share that is missing, slow (hedging)
or bad with another, and decode. :func:`share_problem` verifies a whole stored share (data,
tree and trailer), for deep checks, audits and repair. Every provider is treated as hostile: bytes
are verified before use, and every problem is reported with its provider and share.
"""

from __future__ import annotations

import asyncio
import contextlib
import mmap
from bisect import bisect_right
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import accumulate
from typing import Protocol, overload, runtime_checkable

from ownvault.core.erasure import ErasureCode
from ownvault.core.merkle import merkle_leaves, merkle_root, root_from_leaves
from ownvault.core.pack import (
    SHARE_HEADER_SIZE,
    ShareHeader,
    ShareLayout,
    decode_share,
    share_name,
    share_parts,
    split_share,
)
from ownvault.errors import (
    DataUnavailableError,
    FormatError,
    ObjectExistsError,
    ObjectNotFoundError,
    OwnvaultError,
    ProviderError,
    ShareCorruptError,
)
from ownvault.providers.base import Provider, PutData, put_size, same_bytes

__all__ = [
    "BufferPool",
    "EncodedPack",
    "PackPieces",
    "Problem",
    "ShareParts",
    "ShareStore",
    "share_problem",
]

DATA_PREFIX = "shares"
PAGE = mmap.PAGESIZE
PARITY_POOL = 3  # parity buffer sets kept: one per pack encoded or being written at once
ENCODERS = 2  # threads coding packs (ISA-L and most of the Merkle hashing run without the GIL)
_encoder_pool: list[ThreadPoolExecutor] = []  # made at the first encode, one per process


def _encoders() -> ThreadPoolExecutor:
    if not _encoder_pool:
        _encoder_pool.append(ThreadPoolExecutor(ENCODERS, "encode"))
    return _encoder_pool[0]


# Codes a pack elsewhere (``RemoteEncoder.encode``), or declines it with None.
RemoteEncode = Callable[[bytes, bytes | memoryview, int, int], "EncodedPack | None"]


@dataclass(frozen=True, slots=True)
class Problem:
    """Something wrong with one share at one provider, found while reading or writing."""

    provider: str
    share: str
    kind: str  # missing | corrupt | unavailable | error
    message: str

    def to_json(self) -> dict[str, str]:
        return {
            "provider": self.provider,
            "share": self.share,
            "kind": self.kind,
            "message": self.message,
        }


@dataclass(frozen=True, slots=True)
class ShareParts:
    """A stored share as the buffers that, joined, are its bytes: what a provider's ``put``
    takes. ``len()`` is the share's size; ``bytes()`` joins it (a copy)."""

    parts: tuple[bytes | memoryview, ...]
    size: int

    def __len__(self) -> int:
        return self.size

    def __bytes__(self) -> bytes:
        return b"".join(self.parts)


class _Joined(Sequence[bytes]):
    """The shares of an :class:`EncodedPack` as ``bytes``, each joined when asked for."""

    def __init__(self, pieces: list[ShareParts]) -> None:
        self._pieces = pieces

    def __len__(self) -> int:
        return len(self._pieces)

    @overload
    def __getitem__(self, index: int) -> bytes: ...
    @overload
    def __getitem__(self, index: slice) -> list[bytes]: ...
    def __getitem__(self, index: int | slice) -> bytes | list[bytes]:
        if isinstance(index, slice):
            return [bytes(p) for p in self._pieces[index]]
        return bytes(self._pieces[index])


@dataclass(frozen=True, slots=True)
class EncodedPack:
    """A pack's n shares. ``pieces[i]`` is share i as parts: views of the pack's buffer
    (data fragments) and of a parity buffer set (``parity``) that the share store reuses
    once :meth:`ShareStore.release` gives it back, which its owner does only after every
    share was written (a provider may read the parts until its ``put`` returned)."""

    pack_id: bytes
    size: int
    k: int
    n: int
    pieces: list[ShareParts]
    roots: list[bytes]
    parity: list[bytearray] = field(default_factory=list, repr=False)
    done: Callable[[], None] | None = field(default=None, repr=False)  # frees shared parity

    @property
    def shares(self) -> Sequence[bytes]:
        """The shares as ``bytes`` (joined on access: for repair and other single-share
        paths; the pack writer writes ``pieces``)."""
        return _Joined(self.pieces)


@dataclass
class ShareStore:
    """Share I/O over a set of providers keyed by catalog provider id."""

    providers: dict[int, Provider]
    names: dict[int, str]
    hedge_after: float = 2.0
    problems: list[Problem] = field(default_factory=list)
    on_problem: Callable[[Problem], None] | None = None
    _codes: dict[tuple[int, int], ErasureCode] = field(default_factory=dict)
    _parity: list[list[bytearray]] = field(default_factory=list)  # reusable parity buffers

    def code(self, k: int, n: int) -> ErasureCode:
        key = (k, n)
        if key not in self._codes:
            self._codes[key] = ErasureCode(k, n)
        return self._codes[key]

    def report(self, provider: int, share: str, kind: str, message: str) -> None:
        p = Problem(self.names.get(provider, str(provider)), share, kind, message)
        self.problems.append(p)
        if self.on_problem is not None:
            self.on_problem(p)

    # -- encoding ---------------------------------------------------------------------

    def encode_sync(self, pack_id: bytes, data: bytes | memoryview, k: int, n: int) -> EncodedPack:
        # Each share is kept as parts: its header, the fragment's pieces (a data
        # fragment's payload is a view of ``data``, a parity one of a reused parity
        # buffer) and its tree; nothing is joined. Parity goes into buffer sets reused
        # across packs (fresh ones cost zeroing and page faults), each back in the pool
        # only when ``release`` says its shares are written.
        need = -(-len(data) // k)
        try:
            parity = self._parity.pop()
        except IndexError:
            parity = []
        if len(parity) < n - k or any(len(b) < need for b in parity):
            parity = [bytearray(need) for _ in range(n - k)]
        frags = self.code(k, n).encode_fragments(data, parity)
        pieces: list[ShareParts] = []
        roots: list[bytes] = []
        for i, f in enumerate(frags):
            parts, root = share_parts(ShareHeader(k, n, i, pack_id), *f.pieces)
            pieces.append(ShareParts(parts, sum(len(p) for p in parts)))
            roots.append(root)
        return EncodedPack(pack_id, len(data), k, n, pieces, roots, parity)

    def release(self, enc: EncodedPack) -> None:
        """``enc``'s shares are written and no thread reads them: its parity buffers may
        be reused. (Never called for a pack whose write failed or was cancelled.)"""
        if enc.done is not None:
            enc.done()
        if enc.parity and len(self._parity) < PARITY_POOL:
            self._parity.append(enc.parity)

    async def encode(
        self,
        pack_id: bytes,
        data: bytes | memoryview,
        k: int,
        n: int,
        remote: RemoteEncode | None = None,
    ) -> EncodedPack:
        """:meth:`encode_sync` on one of the encoder threads: never queued behind the
        share writes (blocked in ``fsync``) that fill the shared pool while packs fly.
        ``remote``: tried first there (a worker process, ``engine.store.encworker``); a
        pack it declines (None) is coded here."""

        def encode() -> EncodedPack:
            enc = None if remote is None else remote(pack_id, data, k, n)
            return self.encode_sync(pack_id, data, k, n) if enc is None else enc

        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(_encoders(), encode)

    # -- writing ----------------------------------------------------------------------

    async def put_share(
        self, provider: int, name: str, data: PutData | ShareParts, *, adopt: bool = True
    ) -> None:
        """Write one share (as its parts: never joined); a retry that finds identical bytes
        already there succeeds, unless not ``adopt`` (any object there is someone else's)."""
        p = self.providers[provider]
        if isinstance(data, ShareParts):
            data = data.parts
        try:
            await p.put(name, data)
        except ObjectExistsError:
            if not adopt:
                raise
            existing = await p.get(name, 0, put_size(data) + 1)  # longer: not the same
            if not same_bytes(existing, data):
                raise
        except ProviderError as exc:
            if exc.provider is None:
                exc.provider = self.names.get(provider)
            raise

    async def delete_share(self, provider: int, name: str) -> bool:
        p = self.providers.get(provider)
        if p is None:
            return False
        try:
            await p.delete(name)
        except OwnvaultError as exc:
            self.report(provider, name, "error", f"could not delete: {exc.message}")
            return False
        return True

    # -- reading ----------------------------------------------------------------------

    async def _fetch_one(
        self,
        provider: int,
        prefix: str,
        pack_id: bytes,
        idx: int,
        k: int,
        n: int,
        size: int,
        root: bytes,
        pool: BufferPool | None = None,
    ) -> memoryview:
        name = share_name(prefix, pack_id, idx)
        p = self.providers.get(provider)
        if p is None:
            raise DataUnavailableError(f"provider {provider} is not configured")
        try:
            layout = ShareLayout.for_total(size)
        except FormatError:
            raise ShareCorruptError(
                f"share {name} is recorded with an impossible size {size}", share=name
            ) from None
        # Only the data part: the tree after it serves audits, not reads.
        data = await _read_data(p, name, layout.data_len, pool)
        if len(data) != layout.data_len:
            raise ShareCorruptError(
                f"share {name} has {len(data)} data bytes, expected {layout.data_len}",
                provider=self.names.get(provider),
                share=name,
            )
        ok = await asyncio.to_thread(lambda: merkle_root(data) == root)
        if not ok:
            raise ShareCorruptError(
                f"share {name} failed its Merkle check (tampered or corrupt)",
                provider=self.names.get(provider),
                share=name,
            )
        header, fragment = decode_share(data)  # the fragment: a view, no copy
        if header != ShareHeader(k, n, idx, pack_id):
            raise ShareCorruptError(
                f"share {name} has a header for another share",
                provider=self.names.get(provider),
                share=name,
            )
        return fragment

    async def fetch_pack(
        self,
        prefix: str,
        pack_id: bytes,
        size: int,
        k: int,
        n: int,
        shares: Sequence[tuple[int, int, int, bytes]],
    ) -> bytes:
        """Rebuild a pack from k verified shares. ``shares``: (idx, provider, size, root)."""
        pieces = await self.fetch_pack_pieces(prefix, pack_id, size, k, n, shares)
        return b"".join(pieces.pieces)

    async def fetch_pack_pieces(
        self,
        prefix: str,
        pack_id: bytes,
        size: int,
        k: int,
        n: int,
        shares: Sequence[tuple[int, int, int, bytes]],
        pool: BufferPool | None = None,
    ) -> PackPieces:
        """:meth:`fetch_pack` without joining: the pack as views of the k data fragments
        (decoded into new buffers when a data share was replaced by a parity share).

        With ``pool``, shares are read into its buffers (by providers that offer
        ``read_into``); the caller gives them back (``pool.give(pieces.buffers)``) once
        nothing reads the pieces any more."""
        candidates = sorted(shares, key=lambda s: (s[0] >= k, s[0]))
        candidates = [c for c in candidates if c[1] in self.providers]
        good: dict[int, memoryview] = {}
        running: dict[asyncio.Task[memoryview], tuple[int, int, int, bytes]] = {}
        errors: list[str] = []
        queue = list(candidates)

        def launch() -> bool:
            if not queue:
                return False
            c = queue.pop(0)
            task = asyncio.ensure_future(
                self._fetch_one(c[1], prefix, pack_id, c[0], k, n, c[2], c[3], pool)
            )
            running[task] = c
            return True

        try:
            for _ in range(k):
                launch()
            while len(good) < k:
                if not running:
                    raise DataUnavailableError(
                        f"pack {pack_id.hex()} has only {len(good)} of the {k} good shares needed"
                        + (f" ({'; '.join(errors[:4])})" if errors else "")
                    )
                done, _ = await asyncio.wait(
                    running, timeout=self.hedge_after, return_when=asyncio.FIRST_COMPLETED
                )
                if not done:
                    # Hedge: a provider is slow; ask one more.
                    launch()
                    continue
                for task in done:
                    idx, provider, _size, _root = running.pop(task)
                    name = share_name(prefix, pack_id, idx)
                    exc = task.exception()
                    if exc is None:
                        good[idx] = task.result()
                        continue
                    if not isinstance(exc, OwnvaultError):
                        raise exc
                    kind = problem_kind(exc)
                    self.report(provider, name, kind, exc.message)
                    errors.append(f"{self.names.get(provider)}: {kind}")
                    if len(good) + len(running) < k:
                        launch()
        finally:
            for task in running:
                task.cancel()
            for task in running:
                with contextlib.suppress(BaseException):
                    await task
        chosen = dict(sorted(good.items())[:k])
        buffers = [] if pool is None else pool.owned([f.obj for f in chosen.values()])
        code = self.code(k, n)
        if all(i in chosen for i in range(k)):  # slicing: no per-byte work
            pieces = code.decode_pieces(chosen)
        else:
            pieces = await asyncio.to_thread(code.decode_pieces, chosen)
        if sum(p.nbytes for p in pieces) != size:
            raise DataUnavailableError(f"pack {pack_id.hex()} decoded to the wrong size")
        return PackPieces(size, pieces, buffers)


def share_problem(
    stored: bytes, size: int, root: bytes, header: ShareHeader | None = None
) -> str | None:
    """Why a whole stored share is bad (size, trailer, data root, stored tree, header), or None."""
    if len(stored) > size:  # readers ask for size + 1 bytes: how much more is not read
        return f"is longer than the {size} bytes expected"
    if len(stored) < size:
        return f"has {len(stored)} bytes, expected {size}"
    try:
        data, leaves = split_share(stored)
    except FormatError as exc:
        return f"malformed: {exc.message}"
    actual = merkle_leaves(data)
    if root_from_leaves(actual) != root:
        return "data failed its Merkle check (tampered or corrupt)"
    if leaves != actual:
        return "stored Merkle tree does not match the data"
    if header is not None:
        try:
            got, _fragment = decode_share(bytes(data[:SHARE_HEADER_SIZE]))
        except FormatError as exc:
            return f"bad header: {exc.message}"
        if got != header:
            return "has a header for another share"
    return None


def problem_kind(exc: OwnvaultError) -> str:
    if isinstance(exc, ShareCorruptError | FormatError):
        return "corrupt"
    if isinstance(exc, ObjectNotFoundError):
        return "missing"
    if isinstance(exc, ProviderError):
        return "unavailable"
    return "error"


def data_share_name(pack_id: bytes, idx: int) -> str:
    return share_name(DATA_PREFIX, pack_id, idx)


# -- reading into reused buffers ----------------------------------------------------------


@runtime_checkable
class ReadsInto(Protocol):
    """A provider that can read a byte range into a caller's buffer (``LocalProvider``)."""

    async def read_into(self, name: str, offset: int, buffer: memoryview) -> int: ...


class BufferPool:
    """Share-sized buffers reused across the packs of one read (fresh multi-MiB buffers
    cost zeroing and page faults). A buffer is handed out by :meth:`take` and comes back
    by :meth:`give` only when nothing reads it any more; one that never comes back (a
    cancelled or failed read) is freed with the pool. Buffers are anonymous maps: a new
    one is zeroed page by page by the kernel as the reading thread fills it, not by this
    thread under the GIL as a ``bytearray`` would be."""

    def __init__(self, keep: int = 16) -> None:
        self.keep = keep
        self._free: list[mmap.mmap] = []
        self._lent: dict[int, mmap.mmap] = {}

    def take(self, size: int) -> mmap.mmap:
        for i, buf in enumerate(self._free):
            if len(buf) >= size:
                del self._free[i]
                break
        else:
            buf = mmap.mmap(-1, max(size, 1))
        self._lent[id(buf)] = buf
        return buf

    def owned(self, objects: Iterable[object]) -> list[mmap.mmap]:
        """The buffers among ``objects`` that this pool lent."""
        return [self._lent[id(o)] for o in objects if self._lent.get(id(o)) is o]

    def give(self, buffers: Iterable[mmap.mmap]) -> None:
        for buf in buffers:
            if self._lent.pop(id(buf), None) is buf and len(self._free) < self.keep:
                self._free.append(buf)


@dataclass(frozen=True, slots=True)
class PackPieces:
    """A pack as views to read in order (their concatenation is the pack), and the pool
    buffers they point into."""

    size: int
    pieces: list[memoryview]
    buffers: list[mmap.mmap] = field(default_factory=list)
    starts: list[int] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "starts", [0, *accumulate(p.nbytes for p in self.pieces)])

    def slice(self, offset: int, length: int) -> memoryview | bytes:
        """Bytes ``[offset, offset + length)`` of the pack (shorter past its end): a view
        when they lie in one piece, else joined (a chunk across two fragments)."""
        end = min(offset + length, self.size)
        if offset >= end:
            return b""
        i = bisect_right(self.starts, offset) - 1
        lo = offset - self.starts[i]
        if end <= self.starts[i + 1]:
            return self.pieces[i][lo : lo + end - offset]
        parts: list[memoryview] = []
        while offset < end:
            i = bisect_right(self.starts, offset) - 1
            lo = offset - self.starts[i]
            take = min(end, self.starts[i + 1]) - offset
            parts.append(self.pieces[i][lo : lo + take])
            offset += take
        return b"".join(parts)


async def _read_data(p: Provider, name: str, length: int, pool: BufferPool | None) -> memoryview:
    """Bytes ``[0, length)`` of object ``name`` (shorter if it is shorter): into a pool
    buffer when the provider reads into buffers, else as the bytes ``get`` returns."""
    if pool is None or not isinstance(p, ReadsInto):
        return memoryview(await p.get(name, 0, length))
    whole = -(-length // PAGE) * PAGE  # whole pages: the provider may read O_DIRECT
    buf = pool.take(whole)
    got = await p.read_into(name, 0, memoryview(buf)[:whole])
    return memoryview(buf)[: min(got, length)]
