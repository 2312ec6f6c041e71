"""The put pipeline: files and trees -> chunks -> encrypted blobs -> packs -> shares.

Per block of input (8 MiB) a worker thread chunks (FastCDC), computes keyed chunk ids,
and seals new chunks; the file's IPFS CID is computed on a second thread from the same
blocks (hashlib releases the GIL). Full packs are erasure-coded and uploaded (``engine.store.packwriter``) in the
background, at most ``MAX_INFLIGHT`` at once, while the next pack fills. Memory stays
bounded by (block + packs in flight), whatever the file size.

Crash safety: a pack is recorded ``pending`` (with its planned shares) before any share
is written, and made ``live`` with its chunks only after all n shares are durable. The
version and its entries are inserted in one transaction after every pack is live. A
re-run of the same put finds the already-live chunks by id and skips them.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import stat
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from io import FileIO
from pathlib import Path
from typing import TYPE_CHECKING

from ownvault.core import crypto
from ownvault.core.chunking import Chunker, ChunkerParams
from ownvault.core.isal import system_isal
from ownvault.core.keys import VaultKeys
from ownvault.core.pack import ChunkKeyWrapper, PackBuilder
from ownvault.core.unixfs import FileImporter, ImportProfile, import_bytes
from ownvault.engine.store import cutter
from ownvault.engine.store.catalog import Catalog
from ownvault.engine.store.cutter import PROCESS_CUT_MIN, RemoteCutter
from ownvault.engine.store.filerecord import FileRecord, SealedPack, SmallLoad, SmallRead, identity
from ownvault.engine.store.knownchunks import KnownChunks
from ownvault.engine.store.packwriter import PackWriter
from ownvault.engine.store.placement import Candidate, Policy
from ownvault.engine.store.shares import ShareStore
from ownvault.engine.store.treescan import utf8_ok
from ownvault.errors import OwnvaultError, UsageError

if TYPE_CHECKING:
    from ownvault.engine.store.encworker import RemoteEncoder

__all__ = [
    "BLOCK_SIZE",
    "FILE_TRIES",
    "FileRecord",
    "Ingestor",
    "SmallLoad",
    "SmallRead",
    "utf8_ok",
]

BLOCK_SIZE = 8 * 1024 * 1024
# Packs coded and written at once (~33 MiB each): 2 held a put near 200 MB/s, 4 peaked
# over 300 MB on a 10 GiB put (docs/design.md, "Put pipeline", round 4).
MAX_INFLIGHT = 3
ENCODE_WORKERS = 1  # worker processes coding the packs of large files (``encworker``)
# Pack buffers shared with them: MAX_INFLIGHT being written, the packs of a range waiting
# for a slot, and the one filling (with 5, 2-3 packs of 19 in a 300 MB put found none free
# and were coded in-process, in fresh buffers).
PACK_SLOTS = MAX_INFLIGHT + 3
FILE_TRIES = 4  # a file that changes while it is read is read again, at most 3 more times

Progress = Callable[[int], None]
# chunk id, offset, blob length, plain length, wrapped key
_PackChunk = tuple[bytes, int, int, int, bytes]
_SealedPack = SealedPack  # a pack lent by the builder
# a range read: bytes, (chunk id, length) per chunk, packs filled, whether more follow
_Range = tuple[int, list[tuple[bytes, int]], list[_SealedPack], bool]


@dataclass
class Ingestor:
    """One put operation's pipeline state. Not reusable across vault writers."""

    catalog: Catalog
    keys: VaultKeys
    store: ShareStore
    policy: Policy
    chunker: ChunkerParams
    profile: ImportProfile
    candidates: list[Candidate]
    progress: Progress | None = None
    known: KnownChunks = field(init=False)
    rows: dict[bytes, int] = field(default_factory=dict)
    _new_bytes: int = 0
    _new_chunks: int = 0
    packs_written: int = 0
    packs: list[int] = field(default_factory=list)  # catalog ids of the packs this put wrote
    _builder: PackBuilder = field(default_factory=lambda: PackBuilder(keep=MAX_INFLIGHT))
    _builder_chunks: list[_PackChunk] = field(default_factory=list)
    _buffers: list[bytearray] = field(default_factory=list)  # read buffers, reused per file
    _claimed: set[bytes] = field(default_factory=set)
    _uploads: set[asyncio.Task[None]] = field(default_factory=set)
    _slots: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(MAX_INFLIGHT))
    _cid_pool: ThreadPoolExecutor = field(default_factory=lambda: ThreadPoolExecutor(1, "cid"))
    _reader: ThreadPoolExecutor = field(default_factory=lambda: ThreadPoolExecutor(1, "reader"))
    _failure: BaseException | None = None
    writer: PackWriter = field(init=False)
    _cutter: Chunker = field(init=False)
    _remote: RemoteCutter | None = None
    _encoder: RemoteEncoder | None = None  # codes the packs of large files (``_use_encoder``)
    _cid_pending: Future[None] | None = None  # the CID thread's hashing of the last range
    key_epoch: int = 0
    _content_key: bytes = field(default=b"", repr=False)
    _random: crypto.RandomPool = field(default_factory=crypto.RandomPool, repr=False)
    _wrapper: ChunkKeyWrapper = field(init=False, repr=False)

    def __post_init__(self) -> None:
        # New chunk keys are wrapped under the content key of the current epoch (keys rotate).
        self.key_epoch = int(self.catalog.meta("content_epoch") or "0")
        self._content_key = self.keys.content_key(self.key_epoch)
        self._wrapper = ChunkKeyWrapper(self._content_key, self._random)
        self.known = KnownChunks(self.catalog, referenced=len(self.catalog.journal.devices()) > 1)
        self._cutter = Chunker(self.chunker)
        self.writer = PackWriter(self.catalog, self.store, self.policy, self.candidates)

    def close(self) -> None:
        self._cid_pool.shutdown(wait=True)
        self._reader.shutdown(wait=True)
        if self._remote is not None:
            self._remote.close()
            self._remote = None
        if self._encoder is not None:
            self.writer.remote = None
            self._builder.drop_buffers()
            self._encoder.close()
            self._encoder = None

    def _use_encoder(self) -> None:
        """Code this put's packs in a worker process from now on (``engine.store.encworker``:
        the builder seals into buffers shared with it), when ISA-L is here to code them."""
        if self._encoder is not None or system_isal() is None:
            return
        from ownvault.engine.store.encworker import RemoteEncoder  # noqa: PLC0415 - large puts

        target = self._builder.target
        self._encoder = RemoteEncoder(
            self.policy.k, self.policy.n, target, PACK_SLOTS, MAX_INFLIGHT, ENCODE_WORKERS
        )
        self._builder.use_buffers(self._encoder.pack_buffers())
        self.writer.remote = self._encoder.encode

    # -- per-block work (worker thread) -------------------------------------------------

    def _process(
        self,
        view: memoryview,
        carry: int,
        nread: int,
        importer: FileImporter,
        final: bool,
        lens: list[int] | None = None,
        ids: list[bytes] | None = None,
    ) -> tuple[list[tuple[bytes, int]], list[_SealedPack], int]:
        """Chunk ``view[: carry + nread]`` (the carried bytes, then the ones just read),
        compute chunk ids and seal the new chunks straight into the open pack. Returns
        (chunk id, length) of each chunk, the packs that filled up, and the bytes cut (the
        rest is carried to the next block). ``lens``: the chunk lengths, already cut by the
        worker process (``engine.store.cutter``), covering all the bytes; ``ids``: their
        keyed ids, hashed there over the same bytes."""
        # The CID's SHA-256 runs on its own thread (hashlib releases the GIL) while this
        # one chunks and seals; small blocks are hashed inline (a hand-off costs more).
        fresh = view[carry : carry + nread]
        fut = self._cid_pool.submit(importer.update, fresh) if nread >= 1 << 20 else None
        if fut is None and nread:
            importer.update(fresh)
        try:
            if lens is None:
                pieces, used = self._cutter.cut(view[: carry + nread], final)
            else:
                pieces, used = [], 0
                for length in lens:
                    pieces.append(view[used : used + length])
                    used += length
            out, full = self._seal_pieces(pieces, ids)
        finally:
            if fut is not None:
                fut.result()
        return out, full, used

    def _seal_pieces(
        self, pieces: list[memoryview], ids: list[bytes] | None = None
    ) -> tuple[list[tuple[bytes, int]], list[_SealedPack]]:
        out: list[tuple[bytes, int]] = []
        full: list[_SealedPack] = []
        dedup = self.keys.dedup
        builder = self._builder
        pool = self._random
        wrap = self._wrapper.wrap
        for i, piece in enumerate(pieces):
            chunk_id = crypto.blake3_keyed(dedup, piece) if ids is None else ids[i]
            out.append((chunk_id, len(piece)))
            if chunk_id in self._claimed or chunk_id in self.known:
                continue
            self._claimed.add(chunk_id)
            if not builder.fits(len(piece) + crypto.AEAD_OVERHEAD):
                full.append(self._take_pack())
            chunk_key = pool.take(crypto.KEY_SIZE)
            offset, blob_len = builder.add_chunk(chunk_key, chunk_id, piece, pool)
            wrapped = wrap(chunk_id, chunk_key)
            self._builder_chunks.append((chunk_id, offset, blob_len, len(piece), wrapped))
            self._new_bytes += len(piece)
            self._new_chunks += 1
        return out, full

    def _take_pack(self) -> _SealedPack:
        """The open pack, padded, and its chunks; the builder starts the next one."""
        data = self._builder.lend()
        chunks, self._builder_chunks = self._builder_chunks, []
        return data, chunks

    def _read_process(
        self, f: FileIO, buf: bytearray, carry: int, importer: FileImporter
    ) -> tuple[int, bool, list[tuple[bytes, int]], list[_SealedPack], int]:
        """Read the next block into ``buf`` after the ``carry`` bytes left at its start,
        and process it; the uncut tail is moved to the start for the next call."""
        with memoryview(buf) as view:
            nread = 0
            while nread < BLOCK_SIZE:
                got = f.readinto(view[carry + nread : carry + BLOCK_SIZE])
                if not got:
                    break
                nread += got
            final = nread < BLOCK_SIZE
            results, full, used = self._process(view, carry, nread, importer, final)
            tail = bytes(view[used : carry + nread])
        buf[: len(tail)] = tail
        return nread, final, results, full, len(tail)

    def _read_cut(
        self, data: memoryview, lens: list[int], ids: list[bytes], importer: FileImporter
    ) -> tuple[int, list[tuple[bytes, int]], list[_SealedPack]]:
        """Process the bytes the worker read (``data``, a view of its slot) as it cut them
        into ``lens`` and hashed them into ``ids``; returns (bytes taken, chunks, full
        packs). The worker's read is the only one, so ``data`` is exactly the cut bytes.
        The CID thread hashes the range meanwhile and is not waited for here: only before
        the worker reads into this slot again, two ranges on (:meth:`_cid_wait`), so the
        seal of the next range overlaps this range's SHA-256."""
        if data:
            self._cid_pending = self._cid_pool.submit(importer.update, data)
        pieces, at = [], 0
        for length in lens:
            pieces.append(data[at : at + length])
            at += length
        results, full = self._seal_pieces(pieces, ids)
        return len(data), results, full

    def _cid_wait(self) -> None:
        """Wait until the CID thread has hashed the last range handed to it."""
        fut, self._cid_pending = self._cid_pending, None
        if fut is not None:
            fut.result()

    # -- files ----------------------------------------------------------------------------

    async def ingest_file(self, path: Path, tries: int = FILE_TRIES) -> FileRecord:
        """Store one file. A file whose (device, inode, size, mtime, ctime) differ after it
        was read from what they were before -- it was written to, truncated or replaced
        meanwhile -- is read again, up to ``tries`` times in all (``FILE_TRIES``, less the
        tries already made); if it never holds still, the last read is returned with
        ``changed`` set (borg: "file changed while we backed it up")."""
        for _try in range(max(1, tries)):
            record, stable = await self._ingest_once(path)
            if stable:
                return record
        record.changed = True
        return record

    async def _ingest_local(
        self, f: FileIO, buf: bytearray, importer: FileImporter, ids: list[bytes], lens: list[int]
    ) -> int:
        """Read and cut the file here, one hop to the reader thread per block."""
        size = carry = 0
        while True:
            self.raise_failure()
            nread, final, results, full, carry = await asyncio.get_running_loop().run_in_executor(
                self._reader, self._read_process, f, buf, carry, importer
            )
            size += nread
            await self._take_results(nread, results, full, ids, lens)
            if final:
                return size

    async def _ingest_remote(
        self, fd: int, importer: FileImporter, ids: list[bytes], lens: list[int]
    ) -> int:
        """The worker process reads, cuts and hashes the next range into its other slot of
        shared memory while this one seals the range before it (``engine.store.cutter``),
        one hop to the reader thread per range, sealing range i + 1 while the event loop
        hands range i's packs on."""
        span = BLOCK_SIZE + self.chunker.max_size
        if self._remote is None:
            self._remote = RemoteCutter(self.chunker, self.keys.dedup, span)
        remote = self._remote
        offset = 0
        remote.ask(fd, 0, span)

        def next_range(at: int) -> Future[_Range]:
            return self._reader.submit(self._next_range, remote, fd, at, importer)

        ahead: Future[_Range] | None = next_range(0)
        try:
            while ahead is not None:
                nread, results, full, more = await asyncio.wrap_future(ahead)
                ahead = None
                offset += nread
                if more:  # the next range is sealed meanwhile
                    ahead = next_range(offset)
                await self._take_results(nread, results, full, ids, lens)
                self.raise_failure()
            await asyncio.wrap_future(self._reader.submit(self._cid_wait))
            return offset
        finally:
            # the reader seals from the worker's slot, the worker reads our fd into the
            # other: both finish first
            if ahead is not None:
                await cutter.settled(ahead)
            if remote.pending:
                with contextlib.suppress(OwnvaultError):
                    await asyncio.to_thread(remote.answer)
            if self._cid_pending is not None:  # it reads the worker's slot
                await cutter.settled(self._cid_pending)
                self._cid_pending = None

    def _next_range(self, remote: RemoteCutter, fd: int, offset: int, imp: FileImporter) -> _Range:
        """In the reader thread: the worker's cuts, ids and bytes of the range at
        ``offset``, the next range asked (into the worker's other slot), then this one
        processed; ``more``: another range follows."""
        span = BLOCK_SIZE + self.chunker.max_size
        cuts, used, got = remote.answer()
        ids = remote.ids
        if got == span:
            self._cid_wait()  # the range before this one, in the slot asked into now
            remote.ask(fd, offset + used, span)
        data = remote.data(used)  # after the ask: a view a failed ask left would pin the slots
        nread, results, full = self._read_cut(data, cuts, ids, imp)
        return nread, results, full, remote.pending

    async def _take_results(
        self,
        nread: int,
        results: list[tuple[bytes, int]],
        full: list[_SealedPack],
        ids: list[bytes],
        lens: list[int],
    ) -> None:
        for chunk_id, plain_len in results:
            ids.append(chunk_id)
            lens.append(plain_len)
        for data, chunks in full:
            await self._upload_pack(data, chunks)
        if self.progress is not None and nread:
            self.progress(nread)

    def open_file(self, path: Path) -> tuple[int, os.stat_result]:
        """Open ``path`` for reading: its descriptor and ``fstat``, or :class:`UsageError`
        (gone, unreadable, no longer a regular file). Every read of a put starts here."""
        try:
            # O_NOFOLLOW | O_NONBLOCK: a symlink or FIFO put in the file's place since the
            # scan is neither followed nor waited on.
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        except FileNotFoundError:
            raise UsageError(f"file vanished while storing: {path}") from None
        except OSError as exc:
            raise UsageError(f"cannot read {path}: {exc.strerror}") from None
        try:
            before = os.fstat(fd)
            if not stat.S_ISREG(before.st_mode):
                raise UsageError(f"no longer a regular file while storing: {path}")
        except BaseException:
            os.close(fd)
            raise
        return fd, before

    def take_buffer(self) -> bytearray:
        """A read buffer (block + carry); give it back with :meth:`give_buffer`."""
        return (
            self._buffers.pop() if self._buffers else bytearray(BLOCK_SIZE + self.chunker.max_size)
        )

    def give_buffer(self, buf: bytearray) -> None:
        self._buffers.append(buf)

    async def _ingest_once(self, path: Path) -> tuple[FileRecord, bool]:
        importer = FileImporter(self.profile)
        ids: list[bytes] = []
        lens: list[int] = []
        fd, before = self.open_file(path)
        f = os.fdopen(fd, "rb", buffering=0)
        try:
            if before.st_size >= PROCESS_CUT_MIN and cutter.available():  # in a worker process
                self._use_encoder()
                size = await self._ingest_remote(fd, importer, ids, lens)
            else:
                buf = self.take_buffer()
                try:
                    size = await self._ingest_local(f, buf, importer, ids, lens)
                finally:
                    self.give_buffer(buf)
            after = os.fstat(fd)
        finally:
            f.close()
        record, stable, _now = self._record(path, importer, ids, lens, size, before, after)
        return record, stable

    def _record(
        self,
        path: Path,
        importer: FileImporter,
        ids: list[bytes],
        lens: list[int],
        size: int,
        before: os.stat_result,
        after: os.stat_result,
    ) -> tuple[FileRecord, bool, os.stat_result | None]:
        """The file as read, whether it held still (same identity before and after the
        read, and still at its name), and its ``lstat`` by name after the read."""
        try:
            now = os.stat(path, follow_symlinks=False)  # still the same file at that name?
        except OSError:
            now = None
        stable = (
            size == before.st_size
            and identity(after) == identity(before)
            and now is not None
            and identity(now) == identity(before)
        )
        root = importer.finish()
        record = FileRecord(
            size,
            str(root.cid),
            self.profile.name,
            root.tsize,
            ids,
            lens,
            stat.S_IMODE(before.st_mode),
            before.st_mtime_ns,
            root=root.cid,
        )
        return record, stable, now

    def load_small(self, path: Path, scanned: int) -> SmallLoad:
        """Open and read a file of less than one block (any thread: see
        ``engine.store.treeread``, whose reader threads call this for many files at once),
        with the checks of :meth:`ingest_file`'s tries: ``O_NOFOLLOW | O_NONBLOCK`` open,
        ``fstat`` before and after the read, the name's ``lstat`` after it. A file larger
        now than ``scanned`` (its size at the scan) is not read here (``data`` None: it is
        read on its own), so what a batch holds stays bounded by what the scan saw."""
        fd, before = self.open_file(path)
        try:
            if before.st_size > scanned:
                return SmallLoad(before, None, before, None)
            data = self._read_small_bytes(fd, min(BLOCK_SIZE, before.st_size + 1))
            after = os.fstat(fd)
        finally:
            os.close(fd)
        try:
            now = os.stat(path, follow_symlinks=False)  # still the same file at that name?
        except OSError:
            now = None
        return SmallLoad(before, data, after, now)

    @staticmethod
    def _read_small_bytes(fd: int, limit: int) -> bytes:
        """Up to ``limit`` bytes from ``fd``: to its end, or ``limit`` if it is longer."""
        parts: list[bytes] = []
        got = 0
        while got < limit:
            part = os.read(fd, limit - got)
            if not part:
                break
            parts.append(part)
            got += len(part)
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def read_small(self, path: Path, load: SmallLoad) -> SmallRead:
        """Chunk, hash and seal a file :meth:`load_small` read (in the one thread that
        seals: chunks go into the open pack in file order). A file that grew past a block,
        or changed while it was read, comes back with ``record`` None, to be read again on
        its own (nothing of it sealed)."""
        data, before = load.data, load.before
        if data is None:
            return SmallRead(None, False, [], 0, None)
        nread = len(data)
        if (
            nread >= BLOCK_SIZE
            or nread != before.st_size
            or identity(load.after) != identity(before)
            or load.now is None
            or identity(load.now) != identity(before)
        ):
            return SmallRead(None, False, [], nread, None)
        view = memoryview(data)
        # FastCDC cuts nothing out of a stream no longer than its minimum chunk.
        pieces = [view] if 0 < nread <= self.chunker.min_size else self._cutter.cut(view, True)[0]
        results, full = self._seal_pieces(pieces)
        root = import_bytes(view, self.profile)
        record = FileRecord(
            nread,
            str(root.cid),
            self.profile.name,
            root.tsize,
            [chunk_id for chunk_id, _len in results],
            [length for _id, length in results],
            stat.S_IMODE(before.st_mode),
            before.st_mtime_ns,
            root=root.cid,
        )
        return SmallRead(record, True, full, nread, load.now)

    async def take_packs(self, full: list[_SealedPack], nread: int) -> None:
        """Upload the packs a worker thread filled (see :meth:`read_small`) and report
        ``nread`` bytes read."""
        await self._take_results(nread, [], full, [], [])

    # -- packs ----------------------------------------------------------------------------

    @property
    def new_bytes(self) -> int:
        """Plaintext bytes of the chunks this put stored (not found already stored)."""
        return self._new_bytes

    @property
    def new_chunks(self) -> int:
        return self._new_chunks

    async def _upload_pack(self, data: memoryview, chunks: list[_PackChunk]) -> None:
        """Start the upload of a sealed pack, waiting while ``MAX_INFLIGHT`` are running."""
        await self._slots.acquire()
        if self._failure is not None:
            self._slots.release()
            raise self._failure
        task = asyncio.ensure_future(self._upload(data, chunks))
        self._uploads.add(task)
        task.add_done_callback(self._upload_done)

    async def _seal_current(self) -> None:
        if self._builder_chunks:
            await self._upload_pack(*self._take_pack())

    def _upload_done(self, task: asyncio.Task[None]) -> None:
        self._uploads.discard(task)
        self._slots.release()
        if not task.cancelled() and task.exception() is not None and self._failure is None:
            self._failure = task.exception()

    def raise_failure(self) -> None:
        if self._failure is not None:
            raise self._failure

    async def _upload(self, data: memoryview, chunks: list[_PackChunk]) -> None:
        # ``data`` is the builder's buffer, lent (the data fragments' payloads are views
        # of it): it goes back for reuse only once write_pack has returned, every share
        # durable and no thread reading it. On failure or cancellation a thread may still
        # read it (to_thread cannot be cancelled), so it is left to the collector.
        written = await self.writer.write_pack(data)
        self._builder.give_back(data)
        self.packs.append(written.pack)
        rows = self.catalog.commit_pack(written.pack, chunks, self.key_epoch)
        self.rows.update(rows)
        self.known.update(rows)
        self.packs_written += 1

    async def flush(self) -> None:
        """Seal the open pack and wait until every pack is live; raise the first failure."""
        self.raise_failure()
        await self._seal_current()
        while self._uploads:
            await asyncio.wait(set(self._uploads))
        self.raise_failure()

    async def abort(self) -> None:
        """Let in-flight uploads settle (at most MAX_INFLIGHT packs) so none writes later."""
        if self._uploads:
            await asyncio.wait(set(self._uploads))

    def chunk_rows(self, ids: list[bytes]) -> list[int]:
        out = []
        for chunk_id in ids:
            row = self.rows.get(chunk_id)
            if row is None:
                row = self.catalog.lookup_chunk(chunk_id)
                if row is None:
                    raise OwnvaultError(f"internal error: chunk {chunk_id.hex()} not stored")
                self.rows[chunk_id] = row
            out.append(row)
        return out
