"""The bare put: a put's per-byte work alone, on both cores, with no engine around it.

What a put of one large file must do to every byte, whatever the code around it, done by
the library calls ownvault itself makes and nothing else, in two processes on buffers
reused in place (the design of the prototype in the performance issue, plus the CID the
prototype left out):

* process A (the reader): the file read in 8 MiB ranges (``preadv`` into one reused
  buffer, the uncut tail carried), FastCDC with the vault's parameters, each chunk's keyed
  BLAKE3 id, the file's CID leaves (``core.unixfs.FileImporter``, the ``kubo-v1`` profile:
  SHA-256 of every 256 KiB leaf), each chunk sealed with its own key (``crypto.seal_into``)
  straight into a 16 MiB pack slot of memory shared with B, its key wrapped
  (``ChunkKeyWrapper``); a full pack padded to its size class and handed to B;
* process B (the coder): each pack erasure-coded 3-of-6 (``ErasureCode.encode_fragments``:
  ISA-L, parity into reused buffers), each share's header, Merkle leaves and tree
  (``core.pack.share_parts``), the 6 shares written to 6 folders as the local provider
  writes them (a temp file with ``O_DIRECT`` from reused aligned buffers, ``fsync``,
  ``link`` to its name, the folder ``fsync``ed, the temp name removed), 6 writes at once on
  threads, at most 2 packs being written; a pack's slot goes back to A when its 6 shares
  are durable.

Left out: what is the engine's, not the bytes': the catalog, the journal record, the dedup
lookups, the files cache, the event loop. ``bench/ceilings.py`` adds stage figures measured
apart; this runs the same calls together, with the reads, copies, hand-offs and the kernel's
share of the I/O, so its CPU seconds (user + system, both processes) say what the work
costs when it runs as a put runs it. It is not a bound on the put's time: the put's own
pipeline overlaps more than these two processes do, and is faster (docs/design.md, "The
bare put"). ``bench/vault.py`` and ``bench/putab.py --bare`` time it in the same rounds as
the CLI and borg.

    python bench/putbare.py FILE WORKDIR [--cpu]
"""

from __future__ import annotations

import argparse
import mmap
import os
import resource
import shutil
import struct
import sys
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from fastcdc import fastcdc

from ownvault.core import crypto
from ownvault.core.chunking import DEFAULT_CHUNKER as P
from ownvault.core.erasure import ErasureCode
from ownvault.core.pack import (
    CHUNK_AD,
    MAX_PACK_SIZE,
    PACK_HEADER,
    ChunkKeyWrapper,
    ShareHeader,
    pack_size_class,
    share_parts,
)
from ownvault.core.unixfs import PROFILES, FileImporter
from ownvault.providers.directio import AlignedBuffers, DirectRefused, open_direct, write_direct
from ownvault.providers.durable import fsync_dir
from ownvault.providers.local import write_parts

MiB = 1 << 20
RANGE = 8 * MiB
SLOTS = 4  # packs: one filling, up to 3 with B (the engine's MAX_INFLIGHT + 1)
K, N = 3, 6
WRITING = 2  # packs whose shares B writes at once


def reader(src: str, slots: memoryview, to_b: int, from_b: int) -> str:
    """Process A: chunk, hash, seal into pack slots; the file's CID."""
    dedup, content = os.urandom(32), os.urandom(32)
    pool = crypto.RandomPool()
    wrap = ChunkKeyWrapper(content, pool).wrap
    importer = FileImporter(PROFILES["kubo-v1"])
    buf = mmap.mmap(-1, RANGE + P.max_size)  # page-aligned, reused
    view = memoryview(buf)
    free = list(range(SLOTS))
    slot, used = free.pop(), len(PACK_HEADER)
    slots[slot * MAX_PACK_SIZE : slot * MAX_PACK_SIZE + used] = PACK_HEADER
    wrapped: list[bytes] = []

    def hand_over() -> None:
        nonlocal slot, used
        size = pack_size_class(used)
        base = slot * MAX_PACK_SIZE
        slots[base + used : base + size] = bytes(size - used)
        os.write(to_b, struct.pack("<II", slot, size))
        if not free:
            free.append(struct.unpack("<I", os.read(from_b, 4))[0])
        slot, used = free.pop(), len(PACK_HEADER)
        slots[slot * MAX_PACK_SIZE : slot * MAX_PACK_SIZE + used] = PACK_HEADER

    fd = os.open(src, os.O_RDONLY)
    offset = carry = 0
    while True:
        got = 0
        while got < RANGE:
            n = os.preadv(fd, [view[carry + got : carry + RANGE]], offset + got)
            if not n:
                break
            got += n
        offset += got
        final = got < RANGE
        importer.update(view[carry : carry + got])
        data = view[: carry + got]
        cut = 0
        for c in fastcdc(data, P.min_size, P.avg_size, P.max_size, False):
            stop = c.offset + c.length
            if not final and stop >= len(data) and c.length < P.max_size:
                break
            piece = data[c.offset : stop]
            chunk_id = crypto.blake3_keyed(dedup, piece)
            if used + len(piece) + crypto.AEAD_OVERHEAD > MAX_PACK_SIZE:
                hand_over()
            key = pool.take(crypto.KEY_SIZE)
            base = slot * MAX_PACK_SIZE
            used += crypto.seal_into(
                key, piece, CHUNK_AD + chunk_id, slots[base + used : base + MAX_PACK_SIZE], pool
            )
            wrapped.append(wrap(chunk_id, key))
            cut = stop
        carry = len(data) - cut
        view[:carry] = data[cut:]
        del data
        if final:
            break
    os.close(fd)
    if used > len(PACK_HEADER):
        hand_over()
    os.write(to_b, struct.pack("<II", 0, 0))
    return str(importer.finish().cid)


def write_share(
    root: Path, name: str, parts: tuple[bytes | memoryview, ...], aligned: AlignedBuffers | None
) -> None:
    """One share, as ``providers.local`` writes an object (O_DIRECT, fsync, link, fsync)."""
    tmp = root / "tmp" / f"{name}.tmp"
    final = root / "objects" / name[:2] / name
    views = [memoryview(p) for p in parts]
    try:
        fd = open_direct(tmp)
    except DirectRefused:  # tmpfs and some FUSE file systems: buffered, as the provider does
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        aligned = None
    try:
        if aligned is None:
            write_parts(fd, views)
        else:
            write_direct(fd, views, aligned)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.link(tmp, final)
    fsync_dir(final.parent)
    os.unlink(tmp)


def coder(slots: memoryview, work: Path, from_a: int, to_a: int) -> None:
    """Process B: code each pack, build its shares, write them to N folders."""
    code = ErasureCode(K, N)
    roots = [work / f"p{i}" for i in range(N)]
    for r in roots:
        (r / "tmp").mkdir(parents=True)
        for a in range(256):
            (r / "objects" / f"{a:02x}").mkdir(parents=True)
    aligned = [AlignedBuffers(keep=WRITING + 1) for _ in roots]
    parity = [[bytearray(-(-MAX_PACK_SIZE // K)) for _ in range(N - K)] for _ in range(WRITING)]
    writing: list[tuple[int, list[Future[None]]]] = []
    with ThreadPoolExecutor(N * WRITING) as threads:
        packs = 0
        while True:
            slot, size = struct.unpack("<II", os.read(from_a, 8))
            if not size:
                break
            if len(writing) == WRITING:
                done_slot, futs = writing.pop(0)
                for f in futs:
                    f.result()
                os.write(to_a, struct.pack("<I", done_slot))
            pack_id = os.urandom(16)
            base = slot * MAX_PACK_SIZE
            frags = code.encode_fragments(slots[base : base + size], parity[packs % WRITING])
            futs = []
            for i, f in enumerate(frags):
                parts, _root = share_parts(ShareHeader(K, N, i, pack_id), *f.pieces)
                name = f"{pack_id.hex()}.{i}"
                futs.append(threads.submit(write_share, roots[i], name, parts, aligned[i]))
            writing.append((slot, futs))
            packs += 1
        for _slot, futs in writing:
            for f in futs:
                f.result()


def print_cpu(process: str) -> None:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(f"{process}: user {usage.ru_utime:.2f} s, sys {usage.ru_stime:.2f} s", file=sys.stderr)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("file", type=Path)
    ap.add_argument("workdir", type=Path, help="a new folder for the 6 share folders")
    ap.add_argument("--cpu", action="store_true", help="each process's CPU seconds to stderr")
    args = ap.parse_args()
    args.workdir.mkdir()
    shared = mmap.mmap(-1, SLOTS * MAX_PACK_SIZE)  # MAP_SHARED: the child sees the same pages
    slots = memoryview(shared)
    a_to_b, b_from_a = os.pipe()[::-1]
    b_to_a, a_from_b = os.pipe()[::-1]
    pid = os.fork()
    if pid == 0:  # B
        status = 1
        try:
            coder(slots, args.workdir, b_from_a, b_to_a)
            status = 0
            if args.cpu:
                print_cpu("coder")
        finally:
            os._exit(status)
    try:
        cid = reader(str(args.file), slots, a_to_b, a_from_b)
    finally:
        if args.cpu:
            print_cpu("reader")
        _, status = os.waitpid(pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        print("the coder process failed", file=sys.stderr)
        return 1
    shutil.rmtree(args.workdir)
    print(cid)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
