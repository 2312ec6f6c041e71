"""Writing a restored file's bytes: staged in aligned buffers, large files with O_DIRECT.

A buffered write of 1 GiB costs this VM's kernel 1.3-2.1 CPU-s (the page-cache copy,
ext4's delayed allocation and the writeback after it) and ``dd conv=fsync`` takes 1.9-3.7 s;
the same with ``O_DIRECT`` from an aligned buffer 0.16 CPU-s and 1.3-1.6 s (docs/design.md,
"Reading"). So :class:`StagedWriter` copies the pieces it is given into one of
``BUFFERS`` page-aligned buffers (``STAGE`` bytes each) and writes a full buffer from a
thread while the next ones fill (several writes in flight: the disk is the limit here); the first time a buffer fills it turns ``O_DIRECT`` on for the file.
A reader can also decrypt straight into the staged bytes
(:meth:`reserve`, :meth:`commit`): no plaintext object, no copy. A file smaller than one buffer is written by one ordinary ``write`` at :meth:`close` (no
``O_DIRECT``: small files gain nothing from it). The last, partial block of a large file
is written with ``O_DIRECT`` turned off again (direct I/O needs block-sized writes).

Where the file system refuses ``O_DIRECT`` (``EINVAL``: tmpfs, some FUSE and network file
systems), the writer stays buffered; nothing else changes. It writes into a descriptor it
is given and never opens, renames, syncs or chmods anything: durability (``fsync``) and
every rule of "Writing restored files" stay with :class:`~ownvault.engine.store.outdir.OutputDir`.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import mmap
import os
from concurrent.futures import ThreadPoolExecutor

__all__ = ["ALIGN", "STAGE", "StagedWriter"]

STAGE = 8 << 20  # bytes per staging buffer (a multiple of any block size)
BUFFERS = 4  # staging buffers: one filling, up to BUFFERS - 1 being written
ALIGN = 4096  # O_DIRECT alignment of offsets, lengths and addresses used here


class StagedWriter:
    """Write pieces to ``fd`` (open for writing at offset 0) in order; call :meth:`close`
    once at the end (it writes what is left). Not for use by two tasks at once."""

    def __init__(self, fd: int, *, direct: bool = True) -> None:
        self.fd = fd
        self.direct_wanted = direct
        self.direct = False  # O_DIRECT is on for fd
        self._buffers = [mmap.mmap(-1, STAGE)]  # the others made when first needed
        self._current = 0
        self._fill = 0  # bytes staged in the current buffer
        self._offset = 0  # file offset of the current buffer's first byte
        self._pending: list[asyncio.Future[None] | None] = [None] * BUFFERS  # their writes
        self._executor: ThreadPoolExecutor | None = None

    async def write(self, piece: bytes | bytearray | memoryview) -> None:
        """Stage ``piece`` (copied: the caller may reuse it once this returns)."""
        view = memoryview(piece).cast("B")
        while view.nbytes:
            take = min(view.nbytes, STAGE - self._fill)
            buf = self._buffers[self._current]
            buf[self._fill : self._fill + take] = view[:take]
            self._fill += take
            view = view[take:]
            if self._fill == STAGE:
                await self._flush()

    async def reserve(self, size: int) -> memoryview:
        """``size`` (at most ``STAGE - ALIGN``) contiguous staged bytes to fill in place, e.g.
        by decrypting into them; :meth:`commit` says how many were filled. Uncommitted bytes
        are never written."""
        if not 0 <= size <= STAGE - ALIGN:
            raise ValueError(f"cannot reserve {size} bytes")
        if self._fill + size > STAGE:
            await self._flush()
        return memoryview(self._buffers[self._current])[self._fill : self._fill + size]

    def commit(self, size: int) -> None:
        """Mark ``size`` bytes of the last :meth:`reserve` as filled."""
        if self._fill + size > STAGE:
            raise ValueError("commit beyond the staging buffer")
        self._fill += size

    async def _flush(self) -> None:
        """Write the current buffer's whole blocks from a thread, move its last partial
        block (if any) to the start of the next buffer and continue there (once that
        buffer's own write has finished)."""
        nxt = (self._current + 1) % BUFFERS
        await self._wait(nxt)
        if self.direct_wanted and not self.direct and self._offset == 0:
            self.direct = _set_direct(self.fd, on=True)
        if nxt == len(self._buffers):
            self._buffers.append(mmap.mmap(-1, STAGE))
        cur, other = self._buffers[self._current], self._buffers[nxt]
        whole = self._fill - self._fill % ALIGN
        tail = self._fill - whole
        other[:tail] = cur[whole : self._fill]
        if self._executor is None:  # own threads: the loop's pool is busy reading shares
            self._executor = ThreadPoolExecutor(BUFFERS - 1, thread_name_prefix="ownvault-write")
        self._pending[self._current] = asyncio.get_running_loop().run_in_executor(
            self._executor, self._write_at, cur, whole, self._offset
        )
        self._current = nxt
        self._offset += whole
        self._fill = tail

    async def _wait(self, index: int) -> None:
        pending = self._pending[index]
        if pending is not None:
            self._pending[index] = None
            await pending

    def _write_at(self, buf: mmap.mmap, length: int, offset: int) -> None:
        view = memoryview(buf)[:length]
        try:
            done = 0
            while done < length:
                try:
                    done += os.pwrite(self.fd, view[done:], offset + done)
                except OSError as exc:
                    if exc.errno != errno.EINVAL or not self.direct:
                        raise
                    # The file system took O_DIRECT at fcntl but refuses the write.
                    if not _set_direct(self.fd, on=False):
                        raise
                    self.direct = False
        finally:
            view.release()

    async def close(self) -> None:
        """Write what is staged (the file's end) and wait for every write; the writer
        cannot be used afterwards."""
        try:
            for index in range(BUFFERS):
                await self._wait(index)
            if self._fill:
                aligned = self._fill - self._fill % ALIGN if self.direct else 0
                buf = self._buffers[self._current]
                if aligned:
                    await asyncio.to_thread(self._write_at, buf, aligned, self._offset)
                if self.direct:
                    self.direct = not _set_direct(self.fd, on=False)
                rest = memoryview(buf)[aligned : self._fill]
                try:
                    await asyncio.to_thread(_pwrite_all, self.fd, rest, self._offset + aligned)
                finally:
                    rest.release()
        finally:
            await self._release()

    async def abort(self) -> None:
        """Stop without writing what is staged (the file is being thrown away)."""
        await self._release()

    async def _release(self) -> None:
        for pending in self._pending:  # an error left writes running: let them end first
            if pending is not None:
                with contextlib.suppress(BaseException):
                    await pending
        self._pending = [None] * BUFFERS
        if self._executor is not None:
            self._executor.shutdown(wait=False)
            self._executor = None
        for buf in self._buffers:
            with contextlib.suppress(BufferError):  # a cancelled thread's view: GC frees it
                buf.close()


def _pwrite_all(fd: int, view: memoryview, offset: int) -> None:
    done = 0
    while done < view.nbytes:
        done += os.pwrite(fd, view[done:], offset + done)


def _set_direct(fd: int, *, on: bool) -> bool:
    """Turn O_DIRECT on or off for ``fd``; whether that was done (False: EINVAL, the file
    system does not do direct I/O)."""
    flags = fcntl.fcntl(fd, fcntl.F_GETFL)
    wanted = flags | os.O_DIRECT if on else flags & ~os.O_DIRECT
    try:
        fcntl.fcntl(fd, fcntl.F_SETFL, wanted)
    except OSError as exc:
        if exc.errno != errno.EINVAL:
            raise
        return False
    return True
