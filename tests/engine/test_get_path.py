"""The get path's buffers: packs as views of their fragments (``PackPieces``), share
buffers reused across packs (``BufferPool``), chunks decrypted straight into the output
file's staging buffer (``open_chunk_into_pack``, ``StagedWriter``), large files written
with O_DIRECT and everything else as before."""

from __future__ import annotations

import asyncio
import dataclasses
import errno
import fcntl
import itertools
import mmap
import os
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ownvault.core.crypto import AEAD_OVERHEAD
from ownvault.core.keys import VaultKeys
from ownvault.core.pack import seal_chunk, wrap_chunk_key
from ownvault.engine.store import filewrite, restore
from ownvault.engine.store.catalog import ChunkRef
from ownvault.engine.store.filewrite import ALIGN, STAGE, StagedWriter
from ownvault.engine.store.outdir import OutputDir
from ownvault.engine.store.restore import open_chunk_in_pack, open_chunk_into_pack
from ownvault.engine.store.shares import BufferPool, PackPieces
from ownvault.errors import IntegrityError

from .helpers import Vaults, run

# -- PackPieces and BufferPool ------------------------------------------------------------


def test_pack_pieces_slice_views_within_a_piece_and_joins_across_pieces() -> None:
    data = os.urandom(10_000)
    cuts = [0, 3_334, 6_668, 10_000]
    pieces = PackPieces(len(data), [memoryview(data)[a:b] for a, b in itertools.pairwise(cuts)])
    inside = pieces.slice(100, 3_000)
    assert isinstance(inside, memoryview) and inside.obj is data  # a view: no copy
    assert bytes(inside) == data[100:3_100]
    for offset, length in [(3_000, 5_000), (0, 10_000), (3_334, 1), (6_667, 2), (9_990, 50)]:
        assert bytes(pieces.slice(offset, length)) == data[offset : offset + length]
    assert pieces.slice(10_000, 5) == b""


def test_buffer_pool_gives_back_only_its_own_buffers_for_reuse() -> None:
    pool = BufferPool(keep=1)
    a = pool.take(100)
    assert pool.owned([a, mmap.mmap(-1, 100), b"x"]) == [a]
    pool.give([a, mmap.mmap(-1, 100)])  # a stranger is never kept
    assert pool.take(50) is a  # a big enough free buffer is reused
    assert pool.take(50) is not a


# -- decrypting into a buffer -------------------------------------------------------------


def _sealed_ref(keys: VaultKeys, plain: bytes, offset: int) -> tuple[ChunkRef, bytes]:
    chunk_id, chunk_key = os.urandom(32), os.urandom(32)
    blob = seal_chunk(chunk_key, chunk_id, plain)
    wrapped = wrap_chunk_key(keys.content_key(0), chunk_id, chunk_key)
    ref = ChunkRef(1, chunk_id, 1, b"p" * 16, 0, offset, len(blob), len(plain), wrapped, 0)
    return ref, blob


def test_a_chunk_is_opened_into_a_buffer_across_fragments_and_tampering_is_refused() -> None:
    keys = VaultKeys(os.urandom(32))
    plain = os.urandom(5_000)
    ref, blob = _sealed_ref(keys, plain, 700)
    pack = bytearray(os.urandom(700) + blob + os.urandom(300))
    half = len(pack) // 2  # the chunk spans both fragments
    pieces = PackPieces(len(pack), [memoryview(pack)[:half], memoryview(pack)[half:]])
    out = bytearray(len(plain))
    open_chunk_into_pack(keys, ref, pieces, memoryview(out))
    assert out == plain
    assert open_chunk_in_pack(keys, ref, bytes(pack)) == plain
    pack[700 + AEAD_OVERHEAD + 10] ^= 1
    with pytest.raises(IntegrityError, match="failed authentication"):
        open_chunk_into_pack(keys, ref, pieces, memoryview(bytearray(len(plain))))
    longer = dataclasses.replace(ref, plain_len=5_001)
    with pytest.raises(IntegrityError, match="wrong length"):
        open_chunk_into_pack(keys, longer, pieces, memoryview(bytearray(5_001)))


# -- StagedWriter ---------------------------------------------------------------------------


async def _write(path: Path, steps: list[bytes | int], *, direct: bool = True) -> StagedWriter:
    """Write ``steps`` (bytes: copied in; an int n: n random bytes reserved and filled)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        writer = StagedWriter(fd, direct=direct)
        for step in steps:
            if isinstance(step, int):
                space = await writer.reserve(step)
                space[:] = os.urandom(step)
                space.release()
                writer.commit(step)
            else:
                await writer.write(step)
        await writer.close()
        return writer
    finally:
        os.close(fd)


def _expected(path: Path, steps: list[bytes | int]) -> None:
    """Check the file holds the bytes of ``steps`` (reserved bytes read back from it)."""
    got = path.read_bytes()
    assert len(got) == sum(s if isinstance(s, int) else len(s) for s in steps)
    pos = 0
    for step in steps:
        size = step if isinstance(step, int) else len(step)
        if not isinstance(step, int):
            assert got[pos : pos + size] == step
        pos += size


def _direct_io_works(folder: Path) -> bool:
    try:
        fd = os.open(folder / ".probe", os.O_WRONLY | os.O_CREAT | os.O_DIRECT, 0o600)
    except OSError:
        return False
    os.close(fd)
    (folder / ".probe").unlink()
    return True


@pytest.mark.parametrize(
    "sizes",
    [
        [0],
        [1],
        [ALIGN - 1, 1],
        [STAGE - 1],
        [STAGE],
        [STAGE, 1],
        [STAGE + ALIGN + 7, 3 * ALIGN],
        [1_000_000] * 20 + [123],
    ],
)
def test_staged_writes_give_the_same_bytes_at_every_size(tmp_path: Path, sizes: list[int]) -> None:
    steps: list[bytes | int] = [os.urandom(n) for n in sizes]
    writer = run(_write(tmp_path / "f", steps))
    _expected(tmp_path / "f", steps)
    if sum(sizes) < STAGE:
        assert not writer.direct  # a small file: one ordinary write at the end


def test_chunks_reserved_in_place_mixed_with_copies_land_in_order(tmp_path: Path) -> None:
    steps: list[bytes | int] = [os.urandom(3), 4_000_000, os.urandom(5_000), 4_194_304, 1, 7]
    steps += [4_194_304, os.urandom(STAGE - ALIGN), 4_000_000]
    run(_write(tmp_path / "f", steps))
    _expected(tmp_path / "f", steps)
    back = (tmp_path / "f").read_bytes()
    assert back.count(bytes(4096)) == 0  # no reserved byte was left unwritten (zero)


def test_a_large_file_is_written_with_o_direct_where_the_file_system_allows(
    tmp_path: Path,
) -> None:
    if not _direct_io_works(tmp_path):
        pytest.skip("this file system has no O_DIRECT")
    steps: list[bytes | int] = [os.urandom(3 * STAGE + 5)]
    writer = run(_write(tmp_path / "f", steps))
    assert not writer.direct  # turned off again for the last partial block
    _expected(tmp_path / "f", steps)
    flags: list[int] = []
    real = filewrite._set_direct  # noqa: SLF001  recorded, not changed

    def record(fd: int, *, on: bool) -> bool:
        flags.append(on)
        return real(fd, on=on)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(filewrite, "_set_direct", record)
        run(_write(tmp_path / "g", steps))
        run(_write(tmp_path / "h", [os.urandom(STAGE - 1)]))
    assert flags == [True, False]  # on for the large file, never for the small one


def test_a_file_system_refusing_o_direct_gets_buffered_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = fcntl.fcntl

    def no_direct(fd: int, cmd: int, arg: int = 0) -> int:
        if cmd == fcntl.F_SETFL and arg & os.O_DIRECT:
            raise OSError(errno.EINVAL, "Invalid argument")
        return real(fd, cmd, arg)

    monkeypatch.setattr(fcntl, "fcntl", no_direct)
    steps: list[bytes | int] = [os.urandom(2 * STAGE + 99), 3_000_000]
    writer = run(_write(tmp_path / "f", steps))
    assert not writer.direct
    _expected(tmp_path / "f", steps)


def test_a_write_refused_under_o_direct_is_retried_buffered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = os.pwrite
    refused: list[int] = []

    def picky(fd: int, data: memoryview, offset: int) -> int:
        if fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_DIRECT:
            refused.append(offset)
            raise OSError(errno.EINVAL, "Invalid argument")
        return real(fd, data, offset)

    monkeypatch.setattr(os, "pwrite", picky)
    steps: list[bytes | int] = [os.urandom(2 * STAGE + 4097)]
    run(_write(tmp_path / "f", steps))
    _expected(tmp_path / "f", steps)
    if _direct_io_works(tmp_path):
        assert refused == [0]


def test_a_failed_fill_leaves_no_file_and_no_unauthenticated_bytes(tmp_path: Path) -> None:
    async def fill(writer: StagedWriter) -> AsyncIterator[int]:
        await writer.write(os.urandom(STAGE + 10))
        yield STAGE + 10
        space = await writer.reserve(1000)
        space[:] = b"u" * 1000  # decrypted, then authentication fails: never committed
        space.release()
        raise IntegrityError("chunk failed authentication")

    async def go() -> None:
        with OutputDir(tmp_path) as out:
            await out.write_file(["f"], fill)

    with pytest.raises(IntegrityError):
        run(go())
    assert list(tmp_path.iterdir()) == []


def test_a_cancelled_fill_releases_the_writer(tmp_path: Path) -> None:
    started = asyncio.Event()

    async def fill(writer: StagedWriter) -> AsyncIterator[int]:
        await writer.write(os.urandom(2 * STAGE))
        yield 2 * STAGE
        started.set()
        await asyncio.sleep(60)
        yield 0

    async def go() -> None:
        with OutputDir(tmp_path) as out:
            task = asyncio.ensure_future(out.write_file(["f"], fill))
            await started.wait()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

    run(go())
    assert list(tmp_path.iterdir()) == []


def test_a_get_cancelled_while_a_chunk_is_decrypted_ends_cancelled_and_leaves_no_file(
    vaults: Vaults, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The decrypting thread still holds the staging buffer when the task is cancelled:
    the buffer is left to the collector, and the cancellation (not a BufferError) ends the
    get, which removes its temporary file."""
    (tmp_path / "f.bin").write_bytes(os.urandom(12_000_000))
    vault = vaults.create(tmp_path / "v")
    run(vault.files.put([tmp_path / "f.bin"]))
    entered = threading.Event()
    rfd, wfd = os.pipe()

    def slow(*args: object) -> None:
        entered.set()
        os.readv(rfd, [args[3]])  # type: ignore[list-item]  # holds the buffer, as AES-GCM does

    monkeypatch.setattr(restore, "open_chunk_into_pack", slow)
    out = tmp_path / "out"
    out.mkdir()

    async def go() -> None:
        task = asyncio.ensure_future(vault.files.get("f.bin", out / "f.bin"))
        await asyncio.to_thread(entered.wait, 30)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        os.write(wfd, b"x")  # let the thread end

    try:
        run(go())
    finally:
        os.close(rfd)
        os.close(wfd)
    assert list(out.iterdir()) == []


def test_trees_and_ranges_of_large_files_come_back_byte_for_byte(
    vaults: Vaults, tmp_path: Path
) -> None:
    """Large files in a tree (staged, O_DIRECT where allowed, packs shared between files)
    next to small ones, and a range cut inside chunks (decrypted, then copied)."""
    src = tmp_path / "tree"
    (src / "sub").mkdir(parents=True)
    big = os.urandom(3 * STAGE + 12_345)
    (src / "big.bin").write_bytes(big)
    (src / "sub" / "small.txt").write_bytes(os.urandom(5_000))
    (src / "sub" / "mid.bin").write_bytes(os.urandom(STAGE - 1))
    vault = vaults.create(tmp_path / "v")
    run(vault.files.put([src]))
    run(vault.files.get("tree", tmp_path / "back"))
    for f in ("big.bin", "sub/small.txt", "sub/mid.bin"):
        assert (tmp_path / "back" / f).read_bytes() == (src / f).read_bytes()
    run(vault.files.get("tree/big.bin", tmp_path / "part", byte_range=(1_000_001, 20_000_003)))
    assert (tmp_path / "part").read_bytes() == big[1_000_001:20_000_003]
