"""Ceilings for bench/vault.py: what each stage of put and get can do on this machine, measured
the way a pipeline runs it, in interleaved rounds (bench/rounds.py).

Every stage works on warm buffers that are reused from one round to the next (one warm-up
pass runs before the rounds), so a figure is the stage's own speed, not the cost of touching
fresh memory for the first time. In this VM first-touch costs dominate: the previous version
of this benchmark wrote 64 new 16 MiB files once, into a new directory, and reported the disk
at 190 MB/s; the same writes repeated into a warm directory give 366-1477 MB/s and O_DIRECT
2.3 GB/s. Its erasure figure was pyeclib's wrapper (which holds the GIL and copies), not the
ISA-L code underneath; both are measured here.

Stages (one core each, MB/s of input):

* ``fastcdc``: boundaries with the vault's chunker parameters (``DEFAULT_CHUNKER``);
* ``blake3_keyed``, ``sha256``: per chunk, as chunk ids and CID leaves are hashed;
* ``aes_gcm_seal`` / ``aes_gcm_open``: AES-256-GCM per chunk into a reused output buffer;
* ``merkle_leaves``: ``ownvault.core.merkle.merkle_leaves`` over share-sized pieces;
* ``erasure_encode``: ``ownvault.core.erasure.ErasureCode(k, n).encode`` of 16 MiB packs
  (what the pipeline calls today: joined ``bytes`` fragments), and
  ``erasure_encode_fragments``: its ``encode_fragments`` with parity into reused buffers
  (header and payload views, nothing joined), where that exists;
* ``isal_encode``: ISA-L itself (Debian's ``libisal.so.2`` by ctypes, which releases the GIL):
  Cauchy matrix, ``ec_init_tables``, ``ec_encode_data`` over the same packs split in k
  (checked to give ErasureCode's parity); ``isal_decode_one_lost``: rebuilding one lost data
  piece per pack from the other k - 1 and one parity piece (``gf_invert_matrix``), the work
  of a get with a data share missing (an intact get slices the data shares, no decode);
* ``disk_write_buffered``: 16 MiB files written and fsynced one by one, then the directory
  fsynced, into a directory that was written before (the previous round's files are deleted
  first, untimed); ``disk_write_direct``: the same with O_DIRECT from an aligned (mmap) buffer;
  ``disk_read_direct``: reading those files back with O_DIRECT (never from the page cache).

Run alone it prints the rounds as JSON: ``python bench/ceilings.py --rounds 5 --mib 256``.
"""

from __future__ import annotations

import argparse
import ctypes
import hashlib
import json
import mmap
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import blake3
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from fastcdc import fastcdc

from ownvault.core.chunking import DEFAULT_CHUNKER
from ownvault.core.erasure import ErasureCode
from ownvault.core.isal import buffer_address, system_isal
from ownvault.core.merkle import merkle_leaves

sys.path.insert(0, str(Path(__file__).resolve().parent))
from rounds import interleave

MiB = 1 << 20
PACK = 16 * MiB
K, N = 3, 6
TAG = 16


class RawIsaL:
    """ISA-L's Reed-Solomon encoder over k pieces of one pack, with nothing of ownvault's
    fragment format around it: the bare library calls of ``ownvault.core.isal`` (ctypes, the
    GIL released), so this is the ceiling the erasure stage can approach.

    The pack's k data pieces are read in place at the caller's address; the n - k parity
    pieces go into one buffer reused for every pack."""

    def __init__(self, k: int, n: int, piece: int) -> None:
        isal = system_isal()
        if isal is None:
            raise SystemExit("no system ISA-L (libisal.so.2): install libisal2")
        self.isal, self.k, self.m, self.piece = isal, k, n - k, piece
        self.matrix = isal.cauchy_matrix(n, k)
        self.tables = isal.init_tables(k, self.m, self.matrix[k * k :])
        self.parity = bytearray(self.m * piece)
        base = buffer_address(self.parity) or 0
        self.out = [base + i * piece for i in range(self.m)]

    def decoder(self, lost: int) -> Callable[[int], None]:
        """Rebuild data piece ``lost`` of the pack at an address from the other k - 1 data
        pieces and parity piece 0 (in ``self.parity``) into ``self.rebuilt``: the degraded
        read, when one data share is missing."""
        k, piece, isal = self.k, self.piece, self.isal
        survivors = [i for i in range(k) if i != lost] + [k]  # row k: the first parity row
        sub = b"".join(self.matrix[r * k : r * k + k] for r in survivors)
        inverse = isal.invert(sub, k)
        if inverse is None:
            raise SystemExit("ISA-L: the surviving rows are not invertible")
        tables = isal.init_tables(k, 1, inverse[lost * k : lost * k + k])
        self.rebuilt = bytearray(piece)
        out = [buffer_address(self.rebuilt) or 0]
        parity0 = self.out[0]

        def decode(address: int) -> None:
            src = [address + i * piece for i in survivors[:-1]] + [parity0]
            isal.encode(piece, tables, src, out)

        return decode

    def encode(self, address: int) -> None:
        """Parity of the k pieces at ``address``, ``address + piece``, ..."""
        src = [address + i * self.piece for i in range(self.k)]
        self.isal.encode(self.piece, self.tables, src, self.out)


def cpu_cases(mib: int) -> dict[str, Callable[[], float]]:
    """One callable per CPU stage; each returns the bytes it processed."""
    size = mib * MiB
    data = bytearray(os.urandom(size))
    view = memoryview(data)
    p = DEFAULT_CHUNKER
    chunks = [
        (c.offset, c.length) for c in fastcdc(view, p.min_size, p.avg_size, p.max_size, False)
    ]
    key = os.urandom(32)
    aead = AESGCM(os.urandom(32))
    nonce = os.urandom(12)
    sealed = bytearray(p.max_size + TAG)
    opened = bytearray(p.max_size)
    boxes = [bytes(aead.encrypt(nonce, view[o : o + n], b"")) for o, n in chunks[:64]]
    box_bytes = sum(len(b) - TAG for b in boxes)
    piece = -(-PACK // K)
    packs = [bytes(view[i : i + PACK]) for i in range(0, size - PACK + 1, PACK)]
    code = ErasureCode(K, N)
    fragments = hasattr(code, "encode_fragments")  # in place, parity into reused buffers
    isal = RawIsaL(K, N, piece)
    # ISA-L reads the pack in place: k pieces of ``piece`` bytes (the last padded with zeros).
    padded = bytearray(len(packs) * K * piece)
    for i, pk in enumerate(packs):
        padded[i * K * piece : i * K * piece + PACK] = pk
    pinned = (ctypes.c_char * len(padded)).from_buffer(padded)  # keeps ``padded`` alive
    # The same computation as ErasureCode: its parity fragments end with ISA-L's parity.
    isal.encode(ctypes.addressof(pinned))
    for j, frag in enumerate(code.encode(packs[0])[K:]):
        if frag[-piece:] != bytes(isal.parity)[j * piece : (j + 1) * piece]:
            raise SystemExit("raw ISA-L parity differs from ErasureCode's: not the same code")
    rebuild = isal.decoder(0)
    rebuild(ctypes.addressof(pinned))
    if bytes(isal.rebuilt) != packs[0][:piece]:
        raise SystemExit("raw ISA-L did not rebuild the lost piece")

    def chunker() -> float:
        return sum(c.length for c in fastcdc(view, p.min_size, p.avg_size, p.max_size, False))

    def blake3_keyed() -> float:
        for o, n in chunks:
            blake3.blake3(view[o : o + n], key=key).digest()
        return size

    def sha256() -> float:
        for o, n in chunks:
            hashlib.sha256(view[o : o + n]).digest()
        return size

    def seal() -> float:
        for o, n in chunks:
            aead.encrypt_into(nonce, view[o : o + n], b"", memoryview(sealed)[: n + TAG])
        return size

    def open_() -> float:
        for box in boxes:
            aead.decrypt_into(nonce, box, b"", memoryview(opened)[: len(box) - TAG])
        return box_bytes

    def leaves() -> float:
        for i in range(0, size - piece + 1, piece):
            merkle_leaves(view[i : i + piece])
        return size - size % piece

    def erasure() -> float:
        for pk in packs:
            code.encode(pk)
        return len(packs) * PACK

    parity = [bytearray(piece) for _ in range(N - K)]

    def erasure_fragments() -> float:
        for pk in packs:
            code.encode_fragments(pk, parity)
        return len(packs) * PACK

    def isal_encode() -> float:
        base = ctypes.addressof(pinned)
        for i in range(len(packs)):
            isal.encode(base + i * K * piece)
        return len(packs) * PACK

    def isal_decode() -> float:
        base = ctypes.addressof(pinned)
        for i in range(len(packs)):
            rebuild(base + i * K * piece)
        return len(packs) * PACK

    return {
        "fastcdc": chunker,
        "blake3_keyed": blake3_keyed,
        "sha256": sha256,
        "aes_gcm_seal": seal,
        "aes_gcm_open": open_,
        "merkle_leaves": leaves,
        "erasure_encode": erasure,
        **({"erasure_encode_fragments": erasure_fragments} if fragments else {}),
        "isal_encode": isal_encode,
        "isal_decode_one_lost": isal_decode,
    }


def disk_cases(workdir: Path, files: int) -> dict[str, Callable[[], float]]:
    """Share-like writes: ``files`` files of 16 MiB, each fsynced, then the directory."""
    buffered_dir, direct_dir = workdir / "buffered", workdir / "direct"
    buffered_dir.mkdir()
    direct_dir.mkdir()
    blob = os.urandom(PACK)
    aligned = mmap.mmap(-1, PACK)  # page-aligned, as O_DIRECT needs
    aligned.write(blob)
    direct = getattr(os, "O_DIRECT", 0)

    def write_all(folder: Path, flags: int, buf: bytes | mmap.mmap) -> float:
        for f in folder.iterdir():
            f.unlink()
        t0 = time.perf_counter()
        for i in range(files):
            fd = os.open(folder / f"s{i}", os.O_WRONLY | os.O_CREAT | os.O_TRUNC | flags, 0o600)
            try:
                done = 0
                mv = memoryview(buf)
                while done < PACK:
                    done += os.write(fd, mv[done:])
                os.fsync(fd)
            finally:
                os.close(fd)
        dfd = os.open(folder, os.O_RDONLY)
        os.fsync(dfd)
        os.close(dfd)
        return time.perf_counter() - t0

    def read_direct() -> float:
        t0 = time.perf_counter()
        for i in range(files):
            fd = os.open(direct_dir / f"s{i}", os.O_RDONLY | direct)
            try:
                done = 0
                while done < PACK:
                    n = os.preadv(fd, [memoryview(aligned)[done:]], done)
                    if n <= 0:
                        raise OSError("short O_DIRECT read")
                    done += n
            finally:
                os.close(fd)
        return time.perf_counter() - t0

    total = files * PACK
    return {
        "disk_write_buffered": lambda: total / write_all(buffered_dir, 0, blob) / 1e6,
        "disk_write_direct": lambda: total / write_all(direct_dir, direct, aligned) / 1e6,
        "disk_read_direct": lambda: total / read_direct() / 1e6,
    }


def measure(rounds: int, mib: int, disk_files: int, workdir: Path) -> dict[str, list[float]]:
    """MB/s of every stage, one figure per round, rounds interleaved across stages."""

    def rate(fn: Callable[[], float]) -> Callable[[], float]:
        def timed() -> float:
            t0 = time.perf_counter()
            n = fn()
            return n / (time.perf_counter() - t0) / 1e6

        return timed

    cases = {name: rate(fn) for name, fn in cpu_cases(mib).items()}
    cases.update(disk_cases(workdir, disk_files))
    for case in cases.values():  # warm-up: touch every buffer, file and table once
        case()
    return interleave(cases, rounds)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--mib", type=int, default=256, help="data per CPU stage per round")
    ap.add_argument("--disk-files", type=int, default=16, help="16 MiB files per disk round")
    ap.add_argument("--workdir", type=Path, default=None)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ownvault-ceilings-", dir=args.workdir))
    try:
        print(json.dumps(measure(args.rounds, args.mib, args.disk_files, work)))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
