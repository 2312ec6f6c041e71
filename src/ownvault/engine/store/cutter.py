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

T = TypeVar("T")
RangeCuts = tuple[list[int], int, int]  # chunk lengths, bytes they cover, bytes read

WORKER = r"""
import os, sys
from fastcdc import fastcdc
lo, avg, hi = (int(x) for x in sys.argv[1:4])
for line in sys.stdin:
    path, offset, length = line.split()
    fd = os.open(path, os.O_RDONLY)
    try:
        data = os.pread(fd, int(length), int(offset))
    finally:
        os.close(fd)
    final = len(data) < int(length)
    lens, used = [], 0
    if data:
        for c in fastcdc(memoryview(data), lo, avg, hi, False):
            stop = c.offset + c.length
            if not final and stop >= len(data) and c.length < hi:
                break
            lens.append(c.length)
            used = stop
    sys.stdout.write(f"{len(data)} {used} {','.join(map(str, lens))}\n")
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
    return bool(sys.executable) and os.path.isdir(f"/proc/{os.getpid()}/fd")


class RemoteCutter:
    """One worker process for one put, one range asked at a time; ``close()`` stops it."""

    def __init__(self, params: ChunkerParams) -> None:
        self.params = params
        args = [str(params.min_size), str(params.avg_size), str(params.max_size)]
        self._proc = subprocess.Popen(
            [sys.executable, "-I", "-c", WORKER, *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self._pending = False

    def _pipes(self) -> tuple[IO[str], IO[str]]:
        stdin, stdout = self._proc.stdin, self._proc.stdout
        if stdin is None or stdout is None:
            raise OwnvaultError("internal error: chunking worker has no pipes")
        return stdin, stdout

    def ask(self, fd: int, offset: int, length: int) -> None:
        """Ask for the cuts of ``length`` bytes at ``offset`` of this process's open ``fd``."""
        if self._pending:
            raise OwnvaultError("internal error: chunking worker asked twice")
        stdin, _ = self._pipes()
        stdin.write(f"/proc/{os.getpid()}/fd/{fd} {offset} {length}\n")
        stdin.flush()
        self._pending = True

    def answer(self) -> RangeCuts:
        """The answer to the last :meth:`ask` (blocks until it comes)."""
        _, stdout = self._pipes()
        line = stdout.readline()
        self._pending = False
        if not line:
            raise OwnvaultError(f"chunking worker exited (status {self._proc.poll()})")
        got, used, lens = line.split(" ")
        cuts = [int(x) for x in lens.split(",")] if lens.strip() else []
        return cuts, int(used), int(got)

    @property
    def pending(self) -> bool:
        return self._pending

    def close(self) -> None:
        stdin, _ = self._pipes()
        stdin.close()
        self._proc.wait()
        if self._proc.stdout is not None:
            self._proc.stdout.close()
