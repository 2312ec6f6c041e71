"""Writing a file with ``O_DIRECT`` from aligned buffers (the local provider's object writes).

A buffered write copies every byte into the page cache and leaves it dirty for the
``fsync`` to write back; on this VM the first touch of page-cache memory is the slow part
(the benchmark's note in docs/design.md, "Put pipeline"). ``O_DIRECT`` moves the bytes
from the process's memory to the disk, but only from an address, at a file offset and in
a length that are multiples of the device's block size, and an object's parts (a header,
views of a pack at any offset, a tree) are none of these. So the parts are copied, in
order, into a few page-aligned buffers that are reused across writes (an anonymous
``mmap`` is page-aligned; fresh ones would cost the same first-touch faults), each written
when full (a slice assignment, under the GIL: ``ctypes.memmove`` without it measured no
faster through the CLI, 0.94x, 0.67-1.09, 7 rounds); the last one is padded with zeros
to the alignment and the file is then cut to its size (``ftruncate``, covered by the
``fsync`` that follows, as before).

A file system that refuses ``O_DIRECT`` says so with ``EINVAL`` at ``open`` (tmpfs before
Linux 6.6, some FUSE file systems) or at the first write; the caller then writes the same
parts buffered (:func:`ownvault.providers.local.write_parts`).
"""

from __future__ import annotations

import contextlib
import errno
import mmap
import os
import threading
from collections.abc import Sequence

__all__ = ["ALIGN", "AlignedBuffers", "DirectRefused", "open_direct", "write_direct"]

ALIGN = 4096  # a multiple of every logical block size Linux uses (512, 4096)
CHUNK = 2 * 1024 * 1024  # the bytes one direct write moves (a multiple of ALIGN)
O_DIRECT: int = getattr(os, "O_DIRECT", 0)


class DirectRefused(Exception):
    """The file system does not take ``O_DIRECT`` writes (``EINVAL``)."""


class AlignedBuffers:
    """Page-aligned buffers of ``size`` bytes (``CHUNK`` unless told), shared by the writing
    threads of one provider or server: at most ``keep`` are kept for reuse."""

    def __init__(self, keep: int = 2, size: int = CHUNK) -> None:
        if size % ALIGN:
            raise ValueError(f"buffer size {size} is not a multiple of {ALIGN}")
        self._keep, self.size = keep, size
        self._free: list[mmap.mmap] = []
        self._lock = threading.Lock()

    def take(self) -> mmap.mmap:
        with self._lock:
            if self._free:
                return self._free.pop()
        return mmap.mmap(-1, self.size)

    def give(self, buffer: mmap.mmap) -> None:
        with self._lock:
            if len(self._free) < self._keep:
                self._free.append(buffer)
                return
        buffer.close()


def open_direct(path: str | os.PathLike[str]) -> int:
    """Create ``path`` (exclusively, mode 0600) for ``O_DIRECT`` writes; ``DirectRefused``
    when the file system refuses them."""
    if not O_DIRECT:
        raise DirectRefused("no O_DIRECT on this platform")
    try:
        return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | O_DIRECT, 0o600)
    except OSError as exc:
        if exc.errno == errno.EINVAL:
            with contextlib.suppress(OSError):
                os.unlink(path)
            raise DirectRefused(str(exc)) from None
        raise


def _write_all(fd: int, view: memoryview) -> None:
    while view:
        view = view[os.write(fd, view) :]


def write_direct(fd: int, parts: Sequence[memoryview], buffers: AlignedBuffers) -> None:
    """Write the concatenation of ``parts`` from offset 0 of ``fd`` (opened by
    :func:`open_direct`); ``DirectRefused`` if the first write is refused (nothing
    written then: the caller may write buffered from offset 0)."""
    total = sum(len(p) for p in parts)
    buf = buffers.take()
    view = memoryview(buf)
    try:
        fill = 0
        first = True
        for part in parts:
            pos = 0
            while pos < len(part):
                take = min(CHUNK - fill, len(part) - pos)
                view[fill : fill + take] = part[pos : pos + take]
                fill, pos = fill + take, pos + take
                if fill == CHUNK:
                    _write_first(fd, view, first)
                    fill, first = 0, False
        if fill:
            padded = -(-fill // ALIGN) * ALIGN
            view[fill:padded] = bytes(padded - fill)
            _write_first(fd, view[:padded], first)
        if total % ALIGN:
            os.ftruncate(fd, total)
    finally:
        view.release()
        buffers.give(buf)


def _write_first(fd: int, view: memoryview, first: bool) -> None:
    try:
        _write_all(fd, view)
    except OSError as exc:
        if first and exc.errno == errno.EINVAL:
            raise DirectRefused(str(exc)) from None
        raise
