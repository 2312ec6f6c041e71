"""Restoring trees of many small files: catalog lookups and writes in batches.

A restored file of a few KiB costs more in per-file overhead than in bytes: a catalog
query for its chunk list, a thread hop for its write, a walk of its directory path. So
``get`` of a tree (``engine.store.restore.write_tree``)

- looks up the chunk lists of the next :data:`WINDOW` files in one query
  (:class:`ContentRefs`, ``catalog.contents.chunks_of``) and starts fetching the packs the
  window after it begins with, so a file's first pack is rarely waited for;
- queues each file of at most :data:`SMALL_FILE` bytes, decrypted in memory, with the
  directories and symlinks between them, in order (:class:`QueuedWrites`): a worker
  thread runs up to :data:`BATCH_FILES` operations (:data:`BATCH_BYTES`) in one hop while
  the event loop decrypts the next batch (one batch in flight). Each operation is the
  :class:`~ownvault.engine.store.outdir.OutputDir` call it was before
  (:meth:`~ownvault.engine.store.outdir.OutputDir.write_whole` for a file: the same temp
  file, checks and rename), in the same order, so every rule of "Writing restored files"
  holds as it did. A larger file waits for the queue to drain, then is streamed as before.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from ownvault.engine.store.catalog import Catalog, ChunkRef, EntryRow
from ownvault.engine.store.outdir import OutputDir

__all__ = [
    "BATCH_BYTES",
    "BATCH_FILES",
    "SMALL_FILE",
    "WINDOW",
    "ContentRefs",
    "Prefetcher",
    "QueuedWrites",
]

SMALL_FILE = 1 << 20  # files of at most this many bytes are written from memory, queued
BATCH_FILES = 256  # operations per worker-thread hop
BATCH_BYTES = 8 << 20  # file bytes per hop (two batches at most are held: ~16 MiB)
WINDOW = 256  # files whose chunk lists are looked up in one query

_Op = Callable[[], int]  # one queued OutputDir call; returns the file bytes it wrote


class Prefetcher(Protocol):
    """What :class:`ContentRefs` needs of a pack reader: start fetching a pack."""

    def prefetch(self, pack: int) -> None: ...


class ContentRefs:
    """Chunk lists of the file entries of ``entries``, fetched :data:`WINDOW` files at a
    time, in entry order. When a window of small files (each at most :data:`SMALL_FILE`)
    follows the current one, its first ``ahead`` packs are prefetched through ``reader``
    (never for larger files: their own reads prefetch their packs, and packs fetched long
    before use would only hold memory and the reader's prefetch slots)."""

    def __init__(
        self, catalog: Catalog, entries: Sequence[EntryRow], reader: Prefetcher, ahead: int = 2
    ) -> None:
        self._catalog = catalog
        self._contents = [e.content for e in entries if e.kind == "file" and e.content is not None]
        self._reader = reader
        self._ahead = ahead
        self._pos = 0  # index into _contents of the next window to look up
        self._refs: dict[int, list[ChunkRef]] = {}
        self._next: dict[int, list[ChunkRef]] = {}

    def __call__(self, content: int) -> list[ChunkRef]:
        """The chunk list of ``content`` (a file entry's, asked in entry order)."""
        refs = self._refs.get(content)
        if refs is None:
            self._refs = self._next or self._window()
            self._next = self._window()
            self._prefetch(self._next)
            refs = self._refs.get(content)
            if refs is None:  # asked out of order: one query for it alone
                refs = self._catalog.contents.chunks_of([content])[content]
        return refs

    def _window(self) -> dict[int, list[ChunkRef]]:
        window = self._contents[self._pos : self._pos + WINDOW]
        self._pos += len(window)
        return self._catalog.contents.chunks_of(window) if window else {}

    def _prefetch(self, window: dict[int, list[ChunkRef]]) -> None:
        if any(sum(r.plain_len for r in refs) > SMALL_FILE for refs in window.values()):
            return
        packs: list[int] = []
        for content in self._order(window):
            for r in window[content]:
                if r.pack not in packs:
                    packs.append(r.pack)
        for pack in packs[: self._ahead]:
            self._reader.prefetch(pack)

    def _order(self, window: dict[int, list[ChunkRef]]) -> list[int]:
        """The window's contents in entry order (the order their packs are needed)."""
        start = self._pos - len(window)
        seen = dict.fromkeys(c for c in self._contents[start : self._pos] if c in window)
        return list(seen)


@dataclass
class QueuedWrites:
    """Operations on ``out`` run in order on a worker thread, a batch per hop, at most
    one batch running while the next fills. Use :meth:`drain` before touching ``out``
    directly, and :meth:`close` (always: also on errors) before ``out`` is closed."""

    out: OutputDir
    progress: Callable[[int], None] | None = None
    _ops: list[_Op] = field(default_factory=list)
    _bytes: int = 0
    _running: asyncio.Future[int] | None = None

    async def mkdir(self, parts: Sequence[str], mode: int, mtime_ns: int | None) -> None:
        def op() -> int:
            self.out.mkdir(parts, mode, mtime_ns)
            return 0

        await self._add(op, 0)

    async def symlink(self, parts: Sequence[str], target: str, mtime_ns: int | None) -> None:
        def op() -> int:
            self.out.symlink(parts, target, mtime_ns)
            return 0

        await self._add(op, 0)

    async def write(
        self,
        parts: Sequence[str],
        pieces: list[bytes],
        mode: int | None,
        mtime_ns: int | None,
    ) -> None:
        out = self.out
        size = sum(len(p) for p in pieces)
        await self._add(lambda: out.write_whole(parts, pieces, mode, mtime_ns), size)

    async def _add(self, op: _Op, size: int) -> None:
        self._ops.append(op)
        self._bytes += size
        if len(self._ops) >= BATCH_FILES or self._bytes >= BATCH_BYTES:
            await self._launch()

    async def _launch(self) -> None:
        """Wait for the batch running, then start the one queued."""
        await self._settle()
        if self._ops:
            ops, self._ops, self._bytes = self._ops, [], 0
            self._running = asyncio.ensure_future(asyncio.to_thread(self._run, ops))

    def _run(self, ops: list[_Op]) -> int:
        try:
            return sum(op() for op in ops)
        finally:
            self.out.release_dir()

    async def _settle(self) -> None:
        running, self._running = self._running, None
        if running is not None:
            written = await running
            if self.progress is not None and written:
                self.progress(written)

    async def drain(self) -> None:
        """Run everything queued and wait for it."""
        await self._launch()
        await self._settle()

    async def close(self) -> None:
        """Drop what is queued and wait for the batch running, if any, to end (its error
        is dropped: the caller is already failing, or has drained). Cancelled meanwhile,
        it still waits for the thread (which cannot be stopped) before it raises: the
        thread writes through ``out``'s descriptors, which must stay open until then."""
        self._ops.clear()
        running, self._running = self._running, None
        cancelled = False
        while running is not None and not running.done():
            try:
                await asyncio.wait([running])
            except asyncio.CancelledError:
                cancelled = True
        if running is not None and not running.cancelled():
            running.exception()  # retrieved: dropped
        if cancelled:
            raise asyncio.CancelledError
