"""The encoder side of a large put in a worker process: parity and Merkle trees on another core.

A pack's shares cost ~15 ms of CPU per 16 MiB pack to code (ISA-L ~0.1 CPU-s per GiB, the
Merkle leaves of the n shares ~0.6-0.8, the tree above them ~0.1): the leaves are BLAKE3
calls on 16 KiB blocks, too small to release the GIL, so in the put's encoder threads they
competed with the reader, the share writers and the event loop for one GIL
(docs/design.md, "Put pipeline", round 7). Here they run in a child process on memory
shared with the put: one ``memfd`` (no name in ``/dev/shm`` to leak, freed when both
processes have closed it) holds the put's pack buffers (``PackBuilder.use_buffers``: the
builder seals chunks straight into them) and its parity buffers. For each pack the parent
sends one line (where the pack and its parity slot are, its size and id); the worker codes
the parity into the slot and answers the n Merkle roots and leaf levels, which the parent
checks for size and joins with views of the shared buffers into the shares' parts
(``ShareParts``), written as any others. Nothing of a pack crosses the pipe.

The worker is ``python -I -c WORKER`` importing only ``ownvault.core`` (erasure, pack,
merkle and what they import), from the parent's own source tree: a ``multiprocessing``
child (spawn) would run the CLI again, and a fork of a process with threads, a loop and
SQLite is not safe (as ``engine.store.cutter``'s).

Slots are reused only when the put says so: a pack buffer when ``write_pack`` returned (the
builder's ``give_back``), a parity slot when every share write returned
(``ShareStore.release``). A pack that failed never gives its slots back; when no parity
slot is free, or a pack is not in a shared buffer, it is coded in-process as before.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import queue
import subprocess
import sys
import threading
from pathlib import Path
from typing import IO

from ownvault.core.erasure import ErasureCode
from ownvault.core.fragment import HEADER_SIZE, payload_size
from ownvault.core.isal import buffer_address
from ownvault.core.merkle import HASH_SIZE, block_count
from ownvault.core.pack import (
    MAX_PACK_SIZE,
    PACK_ID_SIZE,
    SHARE_HEADER_SIZE,
    ShareHeader,
    share_parts_from_tree,
)
from ownvault.engine.store.shares import EncodedPack, ShareParts
from ownvault.errors import FormatError, OwnvaultError

__all__ = ["WORKER", "RemoteEncoder"]

PAGE = mmap.PAGESIZE

WORKER = r"""
import mmap, sys
sys.path.insert(0, sys.argv[1])
from ownvault.core.erasure import ErasureCode
from ownvault.core.pack import ShareHeader, share_tree
k, n, total, shm = (int(x) for x in sys.argv[2:6])
code = ErasureCode(k, n, engine="isal")
whole = memoryview(mmap.mmap(shm, total))
out = sys.stdout.buffer
for line in sys.stdin.buffer:
    at, length, pack_id, *parity = line.split()
    at, length, pack_id = int(at), int(length), bytes.fromhex(pack_id.decode())
    size = -(-length // k)
    views = [whole[int(p) : int(p) + size] for p in parity]
    data = whole[at : at + length]
    answer = []
    for i, fragment in enumerate(code.encode_fragments(data, views)):
        leaves, root = share_tree(ShareHeader(k, n, i, pack_id), *fragment.pieces)
        answer += (root, leaves)
    del fragment, data, views
    body = b"".join(answer)
    out.write(len(body).to_bytes(8, "little") + body)
    out.flush()
"""


def _round_up(size: int) -> int:
    return -(-size // PAGE) * PAGE


class _Worker:
    """One worker process and its pipes; one request at a time (its caller holds it)."""

    def __init__(self, src: str, k: int, n: int, total: int, shm: int) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-I", "-c", WORKER, src, str(k), str(n), str(total), str(shm)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            pass_fds=(shm,),
        )

    def pipes(self) -> tuple[IO[bytes], IO[bytes]]:
        stdin, stdout = self.proc.stdin, self.proc.stdout
        if stdin is None or stdout is None:
            raise OwnvaultError("internal error: encoding worker has no pipes")
        return stdin, stdout

    def died(self) -> OwnvaultError:
        return OwnvaultError(f"encoding worker exited (status {self.proc.poll()})")

    def ask(self, request: bytes, expect: int) -> bytes:
        """Send one request line and read its answer of exactly ``expect`` bytes."""
        stdin, stdout = self.pipes()
        try:
            stdin.write(request)
            stdin.flush()
        except (OSError, ValueError) as exc:  # BrokenPipeError: it died; ValueError: closed
            raise self.died() from exc
        head = stdout.read(8)
        if len(head) < 8:
            raise self.died()
        got = int.from_bytes(head, "little")
        if got != expect:  # our own child, but still bounded: never read what we did not ask
            raise OwnvaultError(f"encoding worker answered {got} bytes, expected {expect}")
        body = stdout.read(expect)
        if len(body) < expect:
            raise self.died()
        return body

    def close(self) -> None:
        stdin, stdout = self.pipes()
        with contextlib.suppress(OSError):
            stdin.close()
        self.proc.wait()
        stdout.close()


class RemoteEncoder:
    """Worker processes and the shared pack and parity slots of one put, for k-of-n codes.

    ``pack_buffers()`` are for the put's ``PackBuilder.use_buffers``; :meth:`encode` codes
    a pack lent from one of them (from any thread; at most ``workers`` at once, the others
    wait for a worker) or returns None for one it cannot code (not in a shared buffer, no
    parity slot free); ``close()`` stops the workers and frees what no view still holds."""

    def __init__(
        self, k: int, n: int, pack_size: int, packs: int, parities: int, workers: int = 1
    ) -> None:
        if not 0 < pack_size <= MAX_PACK_SIZE or pack_size % PAGE:
            raise OwnvaultError("internal error: a pack slot size out of range")
        self.k, self.n, self.pack_size = k, n, pack_size
        self._code = ErasureCode(k, n)  # headers and views only: the worker codes
        psize = _round_up(payload_size(pack_size, k))
        self._packs_at = [i * pack_size for i in range(packs)]
        base = packs * pack_size
        self._parity_at = [
            [base + (s * (n - k) + j) * psize for j in range(n - k)] for s in range(parities)
        ]
        self.total = base + parities * (n - k) * psize
        self._free_parity: queue.SimpleQueue[int] = queue.SimpleQueue()
        for s in range(parities):
            self._free_parity.put(s)
        self._idle: queue.SimpleQueue[_Worker] = queue.SimpleQueue()
        self._workers: list[_Worker] = []
        self._lock = threading.Lock()  # close() against a request starting
        self._closed = False
        self._map: mmap.mmap | None = None
        self._shm = os.memfd_create("ownvault-packs", os.MFD_CLOEXEC)
        try:
            os.ftruncate(self._shm, self.total)
            self._map = mmap.mmap(self._shm, self.total)
            with memoryview(self._map) as whole:
                self._base = buffer_address(whole) or 0
            src = str(Path(__file__).resolve().parents[3])  # the tree this module is in
            for _ in range(workers):
                worker = _Worker(src, k, n, self.total, self._shm)
                self._workers.append(worker)
                self._idle.put(worker)
        except BaseException:
            self.close()
            raise

    def pack_buffers(self) -> list[memoryview]:
        """Writable views of the shared pack slots, ``pack_size`` bytes each."""
        with self._whole() as whole:
            return [whole[at : at + self.pack_size] for at in self._packs_at]

    def _whole(self) -> memoryview:
        if self._map is None:
            raise OwnvaultError("encoding worker closed")
        return memoryview(self._map)

    def _offset(self, data: memoryview) -> int | None:
        """Where ``data`` starts in a pack slot, or None when it is not in one."""
        if data.readonly or not data.c_contiguous:
            return None
        address = buffer_address(data)
        if address is None:
            return None
        offset = address - self._base
        for at in self._packs_at:
            if at <= offset and offset + data.nbytes <= at + self.pack_size:
                return offset
        return None

    def encode(
        self, pack_id: bytes, data: bytes | memoryview, k: int, n: int
    ) -> EncodedPack | None:
        """The pack's shares coded by a worker, or None when it cannot be (the caller
        codes it in-process). Blocks until a worker is free and has answered."""
        if (k, n) != (self.k, self.n) or not isinstance(data, memoryview):
            return None
        if len(pack_id) != PACK_ID_SIZE or data.nbytes > self.pack_size:
            return None
        offset = self._offset(data)
        if offset is None:
            return None
        try:
            slot = self._free_parity.get_nowait()
        except queue.Empty:
            return None
        try:
            enc = self._encode(pack_id, data, offset, slot)
        except BaseException:
            self._free_parity.put(slot)  # the worker no longer writes it: it answered or died
            raise
        return enc

    def _encode(self, pack_id: bytes, data: memoryview, offset: int, slot: int) -> EncodedPack:
        size = payload_size(data.nbytes, self.k)
        blocks = block_count(SHARE_HEADER_SIZE + HEADER_SIZE + size)
        expect = self.n * HASH_SIZE * (1 + blocks)
        parity = " ".join(map(str, self._parity_at[slot]))
        request = f"{offset} {data.nbytes} {pack_id.hex()} {parity}\n".encode()
        with self._lock:
            if self._closed:
                raise OwnvaultError("encoding worker closed")
            worker = self._idle.get()
        try:
            answer = worker.ask(request, expect)
        finally:
            self._idle.put(worker)
        with self._whole() as whole:
            views = [whole[at : at + size] for at in self._parity_at[slot]]
        frags = self._code.fragments_of(data, views)
        step = HASH_SIZE * (1 + blocks)
        pieces: list[ShareParts] = []
        roots: list[bytes] = []
        for i, frag in enumerate(frags):
            at = i * step
            root, leaves = answer[at : at + HASH_SIZE], answer[at + HASH_SIZE : at + step]
            try:
                parts = share_parts_from_tree(
                    ShareHeader(self.k, self.n, i, pack_id), frag.pieces, leaves
                )
            except FormatError as exc:
                raise OwnvaultError(f"encoding worker: {exc.message}") from None
            pieces.append(ShareParts(parts, sum(len(p) for p in parts)))
            roots.append(root)
        return EncodedPack(
            pack_id,
            data.nbytes,
            self.k,
            self.n,
            pieces,
            roots,
            done=lambda: self._free_parity.put(slot),
        )

    @property
    def pids(self) -> list[int]:
        return [w.proc.pid for w in self._workers]

    def close(self) -> None:
        """Stop the workers (each ends at the end of its input, after the request it is
        on) and free the shared memory (now, or when the last view of it is released)."""
        with self._lock:
            self._closed = True
        for _ in self._workers:
            worker = self._idle.get()  # waits for a request in progress to be answered
            worker.close()
        self._workers = []
        if self._map is not None:
            with contextlib.suppress(BufferError):  # a view still held: freed with the last
                self._map.close()
            self._map = None  # (the map keeps a descriptor of its own until then)
        os.close(self._shm)
