"""The get pipeline: catalog chunk lists -> packs from k verified shares -> plaintext.

Packs are fetched ahead of use (``PREFETCH`` at once) and kept in a small LRU, since
consecutive chunks of a file usually share a pack. Every chunk is opened with its own key
(AES-GCM authenticates it and binds its id), and its length is checked against the
catalog; a range read fetches only the packs that hold the range.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from ownvault.core.crypto import AEAD_OVERHEAD
from ownvault.core.keys import VaultKeys
from ownvault.core.pack import open_chunk, open_chunk_into, unwrap_chunk_key
from ownvault.engine.store.catalog import Catalog, ChunkRef, EntryRow
from ownvault.engine.store.filewrite import ALIGN, STAGE, StagedWriter
from ownvault.engine.store.outdir import OutputDir, split_rel
from ownvault.engine.store.shares import DATA_PREFIX, BufferPool, PackPieces, ShareStore
from ownvault.engine.store.treewrite import SMALL_FILE, ContentRefs, QueuedWrites
from ownvault.errors import IntegrityError

__all__ = ["PackReader", "open_chunk_in_pack", "write_tree"]

PREFETCH = 3
CACHE_PACKS = 4


@dataclass
class PackReader:
    """Packs for one read, fetched ahead and cached.

    ``reuse_buffers``: shares are read into buffers that come back for later packs once
    their pack leaves the cache. Only for a reader that one task reads from at a time
    (``get``'s file writer): a chunk being opened must never lie in an evicted pack."""

    catalog: Catalog
    keys: VaultKeys
    store: ShareStore
    reuse_buffers: bool = False
    _cache: OrderedDict[int, PackPieces] = field(default_factory=OrderedDict)
    _inflight: dict[int, asyncio.Task[PackPieces]] = field(default_factory=dict)
    _pool: BufferPool = field(default_factory=lambda: BufferPool(keep=(CACHE_PACKS + 1) * 3))
    # Chunks are opened on a thread of their own: in the loop's shared pool they queued
    # behind blocking share reads and file writes (2.7 s of waiting for 0.5 s of AES-GCM
    # per GiB), and AES-GCM releases the GIL, so it runs beside the loop and the hashing.
    _opener: ThreadPoolExecutor | None = None

    async def _load(self, pack: int) -> PackPieces:
        pack_id, size, k, n = self.catalog.pack_info(pack)
        shares = [(s.idx, s.provider, s.size, s.root) for s in self.catalog.shares_of(pack)]
        pool = self._pool if self.reuse_buffers else None
        return await self.store.fetch_pack_pieces(DATA_PREFIX, pack_id, size, k, n, shares, pool)

    def prefetch(self, pack: int) -> None:
        if pack in self._cache or pack in self._inflight:
            return
        self._inflight[pack] = asyncio.ensure_future(self._load(pack))

    async def pack(self, pack: int) -> PackPieces:
        if pack in self._cache:
            self._cache.move_to_end(pack)
            return self._cache[pack]
        self.prefetch(pack)
        task = self._inflight[pack]
        try:
            data = await task
        finally:
            self._inflight.pop(pack, None)
        self._cache[pack] = data
        while len(self._cache) > CACHE_PACKS:
            _, old = self._cache.popitem(last=False)
            self._pool.give(old.buffers)
        return data

    async def close(self) -> None:
        for task in self._inflight.values():
            task.cancel()
        for task in list(self._inflight.values()):
            with contextlib.suppress(BaseException):
                await task
        self._inflight.clear()
        if self._opener is not None:
            self._opener.shutdown(wait=False)
            self._opener = None

    async def _open_into(self, ref: ChunkRef, packdata: PackPieces, out: memoryview) -> None:
        if self._opener is None:
            self._opener = ThreadPoolExecutor(1, thread_name_prefix="ownvault-open")
        await asyncio.get_running_loop().run_in_executor(
            self._opener, open_chunk_into_pack, self.keys, ref, packdata, out
        )

    def _open(self, ref: ChunkRef, packdata: PackPieces) -> bytes:
        return open_chunk_in_pack(self.keys, ref, packdata)

    async def _walk(
        self, refs: list[ChunkRef], start: int, end: int | None
    ) -> AsyncIterator[tuple[ChunkRef, PackPieces, int, int]]:
        """Each chunk overlapping ``[start, end)`` with its pack and the part of its
        plaintext wanted (``lo``, ``hi``), packs fetched ``PREFETCH`` ahead."""
        wanted = [
            r
            for r in refs
            if r.stream_offset + r.plain_len > start and (end is None or r.stream_offset < end)
        ]
        order: list[int] = []
        for r in wanted:
            if not order or order[-1] != r.pack:
                order.append(r.pack)
        next_prefetch = 0
        for r in wanted:
            while next_prefetch < len(order) and (
                order[next_prefetch] == r.pack or len(self._inflight) < PREFETCH
            ):
                self.prefetch(order[next_prefetch])
                next_prefetch += 1
            packdata = await self.pack(r.pack)
            lo = max(0, start - r.stream_offset)
            hi = r.plain_len if end is None else min(r.plain_len, end - r.stream_offset)
            yield r, packdata, lo, hi

    async def read(
        self, refs: list[ChunkRef], start: int = 0, end: int | None = None
    ) -> AsyncIterator[bytes]:
        """The plaintext bytes ``[start, end)`` of a content stream given its chunk refs."""
        async for r, packdata, lo, hi in self._walk(refs, start, end):
            plain = (
                await asyncio.to_thread(self._open, r, packdata)
                if r.length > 1 << 20
                else self._open(r, packdata)
            )
            yield plain[lo:hi] if (lo, hi) != (0, r.plain_len) else plain

    async def write_to(
        self, writer: StagedWriter, refs: list[ChunkRef], start: int = 0, end: int | None = None
    ) -> AsyncIterator[int]:
        """:meth:`read` into ``writer``, yielding the bytes written after each chunk. A whole
        chunk is decrypted straight into the writer's staged bytes (no plaintext object, no
        copy) and committed only once it authenticated."""
        async for r, packdata, lo, hi in self._walk(refs, start, end):
            if (lo, hi) == (0, r.plain_len) and r.plain_len <= STAGE - ALIGN:
                space = await writer.reserve(r.plain_len)
                try:
                    await self._open_into(r, packdata, space)
                finally:
                    with contextlib.suppress(BufferError):  # a cancelled one may still hold it
                        space.release()
                writer.commit(r.plain_len)
            else:
                plain = await asyncio.to_thread(self._open, r, packdata)
                await writer.write(memoryview(plain)[lo:hi])
            yield hi - lo


async def write_file(
    reader: PackReader,
    refs: list[ChunkRef],
    dest: Path,
    entry: EntryRow | None,
    progress: Callable[[int], None] | None,
    start: int = 0,
    end: int | None = None,
    *,
    durable: bool = True,
    overwrite: bool = True,
) -> int:
    """Write a content stream to ``dest`` atomically (temp + rename); return bytes written.

    ``entry`` gives the mode and time to restore (None for a range: a plain new file).
    The file is written by :class:`OutputDir` under ``dest``'s parent, so a symlink at
    ``dest`` is replaced (only with ``overwrite``), never written through."""
    with OutputDir(dest.parent, overwrite=overwrite) as out:
        return await out.write_file(
            [dest.name],
            _filler(reader, refs, start, end),
            mode=entry.mode if entry is not None else None,
            mtime_ns=entry.mtime_ns if entry is not None else None,
            durable=durable,
            progress=progress,
        )


async def write_tree(
    reader: PackReader,
    catalog: Catalog,
    entries: list[EntryRow],
    dest: Path,
    strip: str,
    progress: Callable[[int], None] | None,
    *,
    overwrite: bool = True,
) -> tuple[int, int]:
    """Restore tree entries (paths under ``strip``) into ``dest``; return (files, bytes).

    Tree restores skip the per-file fsync (a restore can be run again, and 10,000 fsyncs
    would dominate restoring small files)."""
    files = 0
    total = 0
    with OutputDir(dest, overwrite=overwrite) as out:
        # Small files are written from memory in batches on a worker thread, with the
        # directories and symlinks between them, in order (engine.store.treewrite).
        queue = QueuedWrites(out, progress)
        refs_of = ContentRefs(catalog, entries, reader)
        try:
            for e in entries:
                rel = e.path[len(strip) :].lstrip("/") if strip else e.path
                parts = split_rel(rel)
                if e.kind == "dir":
                    await queue.mkdir(parts, e.mode, e.mtime_ns)
                elif e.kind == "symlink":
                    await queue.symlink(parts, e.target or "", e.mtime_ns)
                elif e.kind == "file":
                    if e.content is None:
                        raise IntegrityError(f"file entry without content: {e.path}")
                    refs = refs_of(e.content)
                    files += 1
                    if sum(r.plain_len for r in refs) <= SMALL_FILE:
                        pieces = [piece async for piece in reader.read(refs)]
                        total += sum(map(len, pieces))
                        await queue.write(parts, pieces, e.mode, e.mtime_ns)
                        continue
                    await queue.drain()
                    total += await out.write_file(
                        parts,
                        _filler(reader, refs),
                        mode=e.mode,
                        mtime_ns=e.mtime_ns,
                        durable=False,
                        progress=progress,
                    )
            await queue.drain()
        finally:
            await queue.close()
        out.finish()
    return files, total


def open_chunk_in_pack(keys: VaultKeys, ref: ChunkRef, packdata: bytes | PackPieces) -> bytes:
    """The plaintext of chunk ``ref`` cut from its decoded pack (a view, not a copy, unless
    it spans two fragments): authenticated under its unwrapped key and of its recorded
    length, or :class:`IntegrityError`."""
    blob = _chunk_blob(ref, packdata)
    key = unwrap_chunk_key(keys.content_key(ref.key_epoch), ref.chunk_id, ref.wrapped_key)
    try:
        plain = open_chunk(key, ref.chunk_id, blob)
    except IntegrityError:
        raise IntegrityError(
            f"chunk {ref.chunk_id.hex()} failed authentication after decoding its pack"
        ) from None
    if len(plain) != ref.plain_len:
        raise IntegrityError(f"chunk {ref.chunk_id.hex()} has the wrong length")
    return plain


def _filler(
    reader: PackReader, refs: list[ChunkRef], start: int = 0, end: int | None = None
) -> Callable[[StagedWriter], AsyncIterator[int]]:
    """What :meth:`OutputDir.write_file` calls to fill a file from ``refs``."""
    return lambda writer: reader.write_to(writer, refs, start, end)


def _chunk_blob(ref: ChunkRef, packdata: bytes | PackPieces) -> bytes | memoryview:
    if isinstance(packdata, PackPieces):
        blob = packdata.slice(ref.offset, ref.length)
    else:
        blob = memoryview(packdata)[ref.offset : ref.offset + ref.length]
    if len(blob) != ref.length:
        raise IntegrityError(f"chunk {ref.chunk_id.hex()} lies outside its pack")
    return blob


def open_chunk_into_pack(
    keys: VaultKeys, ref: ChunkRef, packdata: bytes | PackPieces, out: memoryview
) -> None:
    """:func:`open_chunk_in_pack` decrypted into ``out`` (``ref.plain_len`` bytes). On
    :class:`IntegrityError` ``out`` may hold unauthenticated bytes: discard them."""
    blob = _chunk_blob(ref, packdata)
    if len(blob) - AEAD_OVERHEAD != ref.plain_len or len(out) != ref.plain_len:
        raise IntegrityError(f"chunk {ref.chunk_id.hex()} has the wrong length")
    key = unwrap_chunk_key(keys.content_key(ref.key_epoch), ref.chunk_id, ref.wrapped_key)
    try:
        open_chunk_into(key, ref.chunk_id, blob, out)
    except IntegrityError:
        raise IntegrityError(
            f"chunk {ref.chunk_id.hex()} failed authentication after decoding its pack"
        ) from None
