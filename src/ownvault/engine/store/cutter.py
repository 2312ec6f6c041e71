"""FastCDC in a worker process: chunk boundaries of a large file, computed on another core.

FastCDC (``fastcdc``, Cython) holds the GIL for its whole scan: on 2 cores it was ~0.9
CPU-s per GiB of a put's ~1.6 GIL-held seconds, so threads cannot run it beside sealing,
Merkle hashing and erasure coding. The worker reads the same open file itself (through
``/proc/PID/fd/N``: a file renamed or replaced meanwhile is still the one the parent
opened) and answers only the chunk lengths of each range: no plaintext crosses the process
boundary; the parent reads its own copy from the page cache and cuts it where the worker
said.

The worker is ``python -c WORKER`` importing only ``fastcdc``: a ``multiprocessing`` child
(spawn) of ``python -m ownvault`` would run the CLI again (its ``__main__``), it would
import the ``ownvault`` package and the engine module it unpickles (the package used to
pull in the whole engine: 1-1.3 s here), and a fork of this process (threads, an event
loop, SQLite) is not safe. ``WORKER``
applies ``Chunker.cut``'s rule (a chunk is final when cut before the end of the range or
at ``max_size``); ``tests/engine/test_cutter.py`` checks it gives ``Chunker.cut``'s
chunks.

Should the file change between the two reads, the parent's bytes are still what is stored
(only the cut points came from the worker, each at most ``max_size`` apart); the put
notices the change (size, mtime, ctime) and reads the file again.
"""

from __future__ import annotations

import asyncio
import contextlib
import mmap
import os
import subprocess
import sys
from concurrent.futures import Future
from typing import IO, TypeVar

from ownvault.core.chunking import ChunkerParams
from ownvault.errors import OwnvaultError

__all__ = ["PROCESS_CUT_MIN", "WORKER", "RangeCuts", "RemoteCutter", "available", "settled"]

# Below this a file is cut in-process: a put of a smaller file is over before the worker
# pays for itself (start ~0.05-0.1 s here).
PROCESS_CUT_MIN = 64 * 1024 * 1024
DEFAULT_SLOT = 16 * 1024 * 1024  # bytes of one range slot (the put asks for its block + max chunk)

T = TypeVar("T")
RangeCuts = tuple[list[int], int, int]  # chunk lengths, bytes they cover, bytes read

WORKER = r"""
import mmap, os, sys
from fastcdc import fastcdc
lo, avg, hi, slot, shm = (int(x) for x in sys.argv[1:6])
key = bytes.fromhex(sys.stdin.readline().strip())
if key:
    from blake3 import blake3
ranges = mmap.mmap(shm, 2 * slot)
whole = memoryview(ranges)
for line in sys.stdin:
    path, offset, length, into = line.split()
    offset, length, base = int(offset), int(length), int(into) * slot
    fd = os.open(path, os.O_RDONLY)
    try:
        got = 0
        while got < length:
            n = os.preadv(fd, [whole[base + got : base + length]], offset + got)
            if not n:
                break
            got += n
        if got == length:  # the next range comes from the disk while this one is cut
            os.posix_fadvise(fd, offset + got, length, os.POSIX_FADV_WILLNEED)
    finally:
        os.close(fd)
    data = whole[base : base + got]
    final = got < length
    lens, ids, used = [], [], 0
    if got:
        for c in fastcdc(data, lo, avg, hi, False):
            stop = c.offset + c.length
            if not final and stop >= got and c.length < hi:
                break
            lens.append(c.length)
            if key:
                ids.append(blake3(data[c.offset : stop], key=key).hexdigest())
            used = stop
    del data
    sys.stdout.write(f"{got} {used} {','.join(map(str, lens))} {','.join(ids)}\n")
    sys.stdout.flush()
"""


async def settled(fut: Future[T]) -> None:
    """Wait until ``fut`` (a range being read by a put's reader thread) is done or was
    cancelled before it ran, whatever it raised, even while this task is cancelled: a
    thread cannot be stopped, and its buffer (and our fd the worker reads) must not be
    reused while it runs. An awaited ``wrap_future`` is done once cancelled, its thread
    still running."""
    while not fut.done():
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait([asyncio.wrap_future(fut)])


def available() -> bool:
    """Whether a worker can run here: an interpreter to start, and ``/proc`` to reach this
    process's open files through (Linux); elsewhere files are cut in-process."""
    return (
        bool(sys.executable)
        and hasattr(os, "memfd_create")
        and os.path.isdir(f"/proc/{os.getpid()}/fd")
    )


class RemoteCutter:
    """One worker process for one put, one range asked at a time; ``close()`` stops it.

    The worker reads each range into one of two slots of ``slot`` bytes of memory shared
    with this process (a ``memfd``: no name in ``/dev/shm`` to leak, freed when both
    processes have closed it), range i into slot i % 2, so the parent takes range i's bytes
    (:meth:`data`) while the worker reads range i + 1 into the other slot. With ``key``
    (the vault's dedup key, sent on the worker's stdin, never on its command line) it also
    answers each chunk's keyed BLAKE3 id (:attr:`ids`), computed over the very bytes the
    parent then seals."""

    def __init__(
        self, params: ChunkerParams, key: bytes | None = None, slot: int = DEFAULT_SLOT
    ) -> None:
        self.params = params
        self.slot = slot
        self._shm = os.memfd_create("ownvault-ranges", os.MFD_CLOEXEC)
        try:
            os.ftruncate(self._shm, 2 * slot)
            self._map = mmap.mmap(self._shm, 2 * slot)
            args = [str(params.min_size), str(params.avg_size), str(params.max_size)]
            self._proc = subprocess.Popen(
                [sys.executable, "-I", "-c", WORKER, *args, str(slot), str(self._shm)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
                pass_fds=(self._shm,),
            )
        except BaseException:
            os.close(self._shm)
            raise
        stdin, _ = self._pipes()
        stdin.write(f"{(key or b'').hex()}\n")
        stdin.flush()
        self._pending = False
        self._asked = 0  # ranges asked: range i goes to slot i % 2
        self._slot = 0  # the slot of the last answer
        self.ids: list[bytes] = []  # the last answer's chunk ids (with a key)

    def _pipes(self) -> tuple[IO[str], IO[str]]:
        stdin, stdout = self._proc.stdin, self._proc.stdout
        if stdin is None or stdout is None:
            raise OwnvaultError("internal error: chunking worker has no pipes")
        return stdin, stdout

    def ask(self, fd: int, offset: int, length: int) -> None:
        """Ask for the cuts of ``length`` bytes (at most ``slot``) at ``offset`` of this
        process's open ``fd``."""
        if self._pending:
            raise OwnvaultError("internal error: chunking worker asked twice")
        if length > self.slot:
            raise OwnvaultError("internal error: a range longer than the worker's slot")
        stdin, _ = self._pipes()
        try:
            stdin.write(f"/proc/{os.getpid()}/fd/{fd} {offset} {length} {self._asked % 2}\n")
            stdin.flush()
        except OSError as exc:  # BrokenPipeError: it died
            raise self._died() from exc
        self._pending = True
        self._asked += 1

    def _died(self) -> OwnvaultError:
        return OwnvaultError(f"chunking worker exited (status {self._proc.poll()})")

    def answer(self) -> RangeCuts:
        """The answer to the last :meth:`ask` (blocks until it comes): chunk lengths, the
        bytes they cover, the bytes read; the bytes are :meth:`data`."""
        _, stdout = self._pipes()
        line = stdout.readline()
        self._pending = False
        if not line:
            raise self._died()
        got, used, lens, ids = line.rstrip("\n").split(" ")
        cuts = [int(x) for x in lens.split(",")] if lens else []
        self.ids = [bytes.fromhex(x) for x in ids.split(",")] if ids else []
        self._slot = (self._asked - 1) % 2
        return cuts, int(used), int(got)

    def data(self, length: int) -> memoryview:
        """The first ``length`` bytes the last answer's range read (a view of its slot,
        valid until the range after the next is asked: release it before)."""
        base = self._slot * self.slot
        with memoryview(self._map) as whole:
            return whole[base : base + min(length, self.slot)]

    @property
    def pending(self) -> bool:
        return self._pending

    def close(self) -> None:
        """Stop the worker (it exits at the end of its input) and free the shared slots."""
        stdin, _ = self._pipes()
        with contextlib.suppress(OSError):
            stdin.close()
        self._proc.wait()
        if self._proc.stdout is not None:
            self._proc.stdout.close()
        with contextlib.suppress(BufferError):  # a view still held: freed with it
            self._map.close()
        os.close(self._shm)
