"""The drive's byte paths: verified ranged reads through a bounded cache of packs, and
writes spooled to a bounded private folder in the vault directory.

Reads: a file's chunk list comes from the catalog; :class:`PackCache` fetches each pack
from k verified shares (the same ``ShareStore.fetch_pack`` as ``get``) and keeps the most
recently used ones up to ``cache_bytes``; every chunk is opened with its own key (AES-GCM
authenticates it and binds its id) and its length checked against the catalog, exactly
as :mod:`ownvault.engine.store.restore` does. A :class:`ReadHandle` that reads where its
last read ended starts fetching the packs of the next ``readahead`` bytes.

Writes: a :class:`Spool` is one file under ``VAULT/spool/drive-PID-RANDOM/`` (the folder
0700, the file 0600, created with ``O_EXCL | O_NOFOLLOW`` and written by descriptor, so
no symlink planted there is followed). All spools of one drive together hold at most
``spool_bytes``; a write past that fails with :class:`SpoolFullError`. The drive stores a
spool with the normal put pipeline when it is closed; until then nothing in the catalog
changes, so a crash mid-write leaves the previous version as it was (the next drive
removes folders of dead processes).
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import functools
import os
import secrets
import shutil
import threading
from collections import OrderedDict
from pathlib import Path

from ownvault.core.keys import VaultKeys
from ownvault.engine.store.catalog import ChunkRef
from ownvault.engine.store.context import VaultContext
from ownvault.engine.store.restore import open_chunk_in_pack
from ownvault.engine.store.shares import DATA_PREFIX
from ownvault.errors import OwnvaultError

__all__ = [
    "PackCache",
    "ReadHandle",
    "Spool",
    "SpoolArea",
    "SpoolFullError",
    "remove_dead_spools",
]

SPOOL_DIR = "spool"


class SpoolFullError(OwnvaultError):
    """The drive's write spool is full (``--spool-mib``): ENOSPC, 507."""


class PackCache:
    """Decoded (verified, erasure-decoded, still encrypted per chunk) packs, least recently
    used first out, at most ``max_bytes`` in all; concurrent asks for one pack share a fetch.
    Also keeps the last few opened chunks, since reads are usually smaller than a chunk."""

    CHUNKS = 8

    def __init__(self, ctx: VaultContext, max_bytes: int) -> None:
        self.ctx = ctx
        self.max_bytes = max_bytes
        self._packs: OrderedDict[int, bytes] = OrderedDict()
        self._held = 0
        self._inflight: dict[int, asyncio.Task[bytes]] = {}
        self._chunks: OrderedDict[int, bytes] = OrderedDict()
        self.fetches = 0  # packs fetched from the providers (for tests and benchmarks)

    def __len__(self) -> int:
        return len(self._packs)

    @property
    def held_bytes(self) -> int:
        return self._held

    async def _load(self, pack: int) -> bytes:
        cat = self.ctx.catalog
        pack_id, size, k, n = cat.pack_info(pack)
        shares = [(s.idx, s.provider, s.size, s.root) for s in cat.shares_of(pack)]
        self.fetches += 1
        return await self.ctx.store.fetch_pack(DATA_PREFIX, pack_id, size, k, n, shares)

    def prefetch(self, pack: int) -> None:
        if pack not in self._packs and pack not in self._inflight:
            task = asyncio.ensure_future(self._load(pack))
            self._inflight[pack] = task
            task.add_done_callback(functools.partial(self._landed, pack))

    def _landed(self, pack: int, task: asyncio.Task[bytes]) -> None:
        self._inflight.pop(pack, None)
        if task.cancelled() or task.exception() is not None:
            return
        data = task.result()
        if pack not in self._packs:
            self._packs[pack] = data
            self._held += len(data)
        while self._held > self.max_bytes and len(self._packs) > 1:
            _p, old = self._packs.popitem(last=False)
            self._held -= len(old)

    async def pack(self, pack: int) -> bytes:
        data = self._packs.get(pack)
        if data is not None:
            self._packs.move_to_end(pack)
            return data
        self.prefetch(pack)
        task = self._inflight.get(pack)
        if task is None:  # landed between prefetch and here
            return await self.pack(pack)
        return await asyncio.shield(task)

    async def chunk(self, ref: ChunkRef, keys: VaultKeys) -> bytes:
        """The verified plaintext of one chunk."""
        plain = self._chunks.get(ref.row)
        if plain is not None:
            self._chunks.move_to_end(ref.row)
            return plain
        packdata = await self.pack(ref.pack)
        if ref.length > 1 << 20:
            plain = await asyncio.to_thread(open_chunk_in_pack, keys, ref, packdata)
        else:
            plain = open_chunk_in_pack(keys, ref, packdata)
        self._chunks[ref.row] = plain
        while len(self._chunks) > self.CHUNKS:
            self._chunks.popitem(last=False)
        return plain

    async def close(self) -> None:
        tasks = list(self._inflight.values())
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(BaseException):
                await task
        self._inflight.clear()
        self._packs.clear()
        self._chunks.clear()
        self._held = 0


class ReadHandle:
    """Ranged reads of one stored content stream (see the module docstring)."""

    def __init__(
        self, cache: PackCache, keys: VaultKeys, refs: list[ChunkRef], size: int, readahead: int
    ) -> None:
        self.cache = cache
        self.keys = keys
        self.refs = refs
        self.size = size
        self.readahead = readahead
        self._starts = [r.stream_offset for r in refs]
        self._next = 0  # where the last read ended: a read from here is sequential

    def _covering(self, start: int, end: int) -> list[ChunkRef]:
        i = max(0, bisect.bisect_right(self._starts, start) - 1)
        out: list[ChunkRef] = []
        while i < len(self.refs) and self.refs[i].stream_offset < end:
            r = self.refs[i]
            if r.stream_offset + r.plain_len > start:
                out.append(r)
            i += 1
        return out

    async def read(self, offset: int, size: int) -> bytes:
        """Up to ``size`` bytes from ``offset`` (fewer only at the end of the file)."""
        end = min(self.size, offset + size)
        if offset >= end:
            return b""
        wanted = self._covering(offset, end)
        for r in wanted:  # fetch the packs of this read together
            self.cache.prefetch(r.pack)
        if offset == self._next and self.readahead:
            for r in self._covering(end, min(self.size, end + self.readahead)):
                self.cache.prefetch(r.pack)
        parts: list[bytes] = []
        for r in wanted:
            plain = await self.cache.chunk(r, self.keys)
            lo = max(0, offset - r.stream_offset)
            hi = min(r.plain_len, end - r.stream_offset)
            parts.append(plain[lo:hi])
        self._next = end
        return b"".join(parts)


class SpoolArea:
    """This drive's folder of spools, and the bytes they hold together."""

    def __init__(self, vault: Path, max_bytes: int) -> None:
        base = vault / SPOOL_DIR
        base.mkdir(mode=0o700, exist_ok=True)
        if base.is_symlink() or not base.is_dir():
            raise OwnvaultError(f"{base} is not a directory")
        os.chmod(base, 0o700, follow_symlinks=False)
        remove_dead_spools(vault)
        self.dir = base / f"drive-{os.getpid()}-{secrets.token_hex(4)}"
        self.dir.mkdir(mode=0o700)
        self.max_bytes = max_bytes
        self.used = 0
        self.lock = threading.Lock()  # spools are written from front ends' threads too

    def new(self) -> Spool:
        return Spool(self)

    def close(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


def remove_dead_spools(vault: Path) -> None:
    """Remove the spool folders of drives whose process is gone (killed mid-write)."""
    base = vault / SPOOL_DIR
    if base.is_symlink() or not base.is_dir():
        return
    for d in base.iterdir():
        parts = d.name.split("-")
        if len(parts) != 3 or parts[0] != "drive" or not parts[1].isdigit():
            continue
        try:
            os.kill(int(parts[1]), 0)
        except ProcessLookupError:
            shutil.rmtree(d, ignore_errors=True)
        except PermissionError:
            pass


class Spool:
    """One file being written: random access, counted against its :class:`SpoolArea`.
    Thread-safe: a FUSE thread writes here directly (a hop to the event loop for every
    4 KiB the kernel sends would cost more than the write)."""

    def __init__(self, area: SpoolArea) -> None:
        self.area = area
        self.path = area.dir / secrets.token_hex(8)
        flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        self.fd = os.open(self.path, flags, 0o600)
        self.size = 0
        self.dirty = False  # changed since the last store (writes or a truncation)
        self.written = False  # bytes written since the last store

    def _grow(self, new_size: int) -> None:
        with self.area.lock:
            extra = new_size - self.size
            if extra <= 0:
                return
            if self.area.used + extra > self.area.max_bytes:
                raise SpoolFullError(
                    f"the drive's write spool is full ({self.area.max_bytes >> 20} MiB): "
                    "close files being written, or raise --spool-mib"
                )
            self.area.used += extra
            self.size = new_size

    def write(self, offset: int, data: bytes) -> int:
        self._grow(offset + len(data))
        written = os.pwrite(self.fd, data, offset)
        self.dirty = self.written = True
        return written

    def read(self, offset: int, size: int) -> bytes:
        return os.pread(self.fd, max(0, min(size, self.size - offset)), offset)

    def truncate(self, size: int) -> None:
        if size > self.size:
            self._grow(size)
        else:
            with self.area.lock:
                self.area.used -= self.size - size
                self.size = size
        os.ftruncate(self.fd, size)
        self.dirty = True

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
            with self.area.lock:
                self.area.used -= self.size
                self.size = 0
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
