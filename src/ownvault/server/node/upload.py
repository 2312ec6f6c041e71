"""An upload's temp file: the body written as it streams in, ``O_DIRECT`` where it helps.

A buffered write copies each received chunk into the page cache and leaves it dirty for the
``fsync`` at the end to write back; on this VM touching fresh page-cache memory is the
costly part (docs/design.md, "Put pipeline", round 3). So, as the local provider does
(:mod:`ownvault.providers.directio`), the chunks are copied in order into one page-aligned
buffer of :data:`BUFFER` bytes (an anonymous ``mmap``, reused across uploads), written with
``O_DIRECT`` whenever it is full; the last piece is padded to the alignment and the file cut
to its size (``ftruncate``, covered by the ``fsync`` that follows). Where the file system
refuses ``O_DIRECT`` (``EINVAL`` at open or at the first write: tmpfs before Linux 6.6,
some FUSE file systems) the same bytes are written buffered, a buffer's worth per
``writev``. Either way the upload holds at most one buffer of :data:`BUFFER` bytes.

The body's digest is computed here, by the thread that writes (``hashlib`` releases the
GIL on large inputs), not on the event loop that receives the next chunks.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import mmap
import os
from collections.abc import Callable
from pathlib import Path

from ownvault.providers.directio import ALIGN, O_DIRECT, AlignedBuffers, DirectRefused, open_direct

__all__ = ["BUFFER", "UploadFile", "upload_buffers"]

BUFFER = 1 << 20  # bytes of one upload's write buffer (a multiple of ALIGN)


def upload_buffers() -> AlignedBuffers:
    """The page-aligned :data:`BUFFER`-byte buffers a node's uploads share (4 kept)."""
    return AlignedBuffers(keep=4, size=BUFFER)


class UploadFile:
    """The temp file of one upload. Every method but the constructor blocks (call them in a
    worker thread, one at a time); :meth:`close` always, last."""

    def __init__(self, path: Path, pool: AlignedBuffers, direct: bool) -> None:
        self.path = path
        self.direct = False
        self.size = 0
        self._pool = pool
        self._buffer: mmap.mmap | None = None
        self._view: memoryview | None = None
        self._fill = 0
        self._written = 0  # bytes written to the file so far
        self._fd = -1
        if direct:
            with contextlib.suppress(DirectRefused):
                self._fd = open_direct(path)
                self.direct = True
        if self._fd < 0:
            self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        self._buffer = pool.take()
        self._view = memoryview(self._buffer)

    def write(self, chunks: list[bytes], digest: Callable[[bytes], None]) -> None:
        """Hash and append ``chunks``: copied into the buffer, full buffers written with
        ``O_DIRECT``; written as they are (``writev``) when the file is buffered."""
        if not self.direct:
            for chunk in chunks:
                digest(chunk)
                self.size += len(chunk)
            _writev_all(self._fd, chunks)
            self._written = self.size
            return
        view = self._view
        assert view is not None
        for chunk in chunks:
            digest(chunk)
            self.size += len(chunk)
            pos = 0
            while pos < len(chunk):
                take = min(BUFFER - self._fill, len(chunk) - pos)
                view[self._fill : self._fill + take] = chunk[pos : pos + take]
                self._fill += take
                pos += take
                if self._fill == BUFFER:
                    self._flush(view)
                    self._fill = 0

    def finish(self) -> None:
        """Write what the buffer holds and ``fsync``: the bytes and inode are on disk."""
        view = self._view
        assert view is not None
        if self._fill:
            if self.direct:
                padded = -(-self._fill // ALIGN) * ALIGN
                view[self._fill : padded] = bytes(padded - self._fill)
                self._flush(view[:padded])
            else:
                self._flush(view[: self._fill])
            self._fill = 0
        if self._written != self.size:  # the padding of the last direct write
            os.ftruncate(self._fd, self.size)
        os.fsync(self._fd)

    def _flush(self, piece: memoryview) -> None:
        try:
            _write_all(self._fd, piece)
        except OSError as exc:
            if not (self.direct and self._written == 0 and exc.errno == errno.EINVAL):
                raise
            # The file system refused the first direct write: nothing was written, so the
            # same bytes go buffered, from offset 0.
            self.direct = False
            flags = fcntl.fcntl(self._fd, fcntl.F_GETFL)
            fcntl.fcntl(self._fd, fcntl.F_SETFL, flags & ~O_DIRECT)
            _write_all(self._fd, piece)
        self._written += len(piece)

    def close(self) -> None:
        """Close the file and give the buffer back (the caller removes the file)."""
        if self._view is not None:
            self._view.release()
            self._view = None
        if self._buffer is not None:
            self._pool.give(self._buffer)
            self._buffer = None
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def _write_all(fd: int, view: memoryview) -> None:
    while view:
        view = view[os.write(fd, view) :]


def _writev_all(fd: int, chunks: list[bytes]) -> None:
    """Write ``chunks`` in order, at most ``IOV_MAX`` (1024) of them per ``writev``."""
    views = [memoryview(c) for c in chunks if c]
    i = 0
    while i < len(views):
        done = os.writev(fd, views[i : i + 1024])
        while done:
            if done >= len(views[i]):
                done -= len(views[i])
                i += 1
            else:
                views[i] = views[i][done:]
                done = 0
