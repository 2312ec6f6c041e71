"""The drive layer (engine/files/drive.py) that WebDAV and the FUSE mount share."""

from __future__ import annotations

import errno
import os
import random
from pathlib import Path

import pytest

from ownvault.engine.files.drive import Drive, DriveError, DriveOptions
from ownvault.engine.files.driveio import SpoolFullError
from ownvault.engine.files.results import ObjectInfo, ObjectListing, TreeListing
from ownvault.engine.vault import Vault
from ownvault.errors import NotFoundError
from tests.engine.helpers import Vaults, run


def _objects(listing: ObjectListing | TreeListing) -> list[ObjectInfo]:
    assert isinstance(listing, ObjectListing)
    return listing.objects


def _vault(tmp_path: Path, vaults: Vaults) -> Vault:
    return vaults.create(tmp_path / "v", providers=3, k=2)


async def _write(drive: Drive, path: str, data: bytes) -> None:
    h = await drive.open_write(path, truncate=True)
    await drive.write(h, 0, data)
    await drive.release(h)


async def _read_all(drive: Drive, path: str) -> bytes:
    h = await drive.open_read(path)
    try:
        return await drive.read(h, 0, 1 << 30)
    finally:
        await drive.release(h)


def test_names_as_folders_latest_version_and_ranged_reads(tmp_path: Path, vaults: Vaults) -> None:
    vault = _vault(tmp_path, vaults)
    rnd = random.Random(7)
    big = rnd.randbytes(3_000_000)
    src = tmp_path / "big.bin"
    src.write_bytes(big)
    tree = tmp_path / "photos"
    (tree / "2024").mkdir(parents=True)
    (tree / "2024" / "a.jpg").write_bytes(b"jpeg bytes")
    run(vault.files.put([src], name="docs/big.bin"))
    run(vault.files.put([tree]))

    async def go() -> None:
        drive = Drive(vault.ctx, DriveOptions(cache_mib=1))
        try:
            root = [(n.path, n.kind) for n in await drive.listdir("/")]
            assert root == [(".versions", "dir"), ("docs", "dir"), ("photos", "dir")]
            [big_node] = await drive.listdir("docs")
            assert (big_node.path, big_node.kind, big_node.size) == (
                "docs/big.bin",
                "file",
                len(big),
            )
            assert big_node.etag == (await vault.files.stat("docs/big.bin")).cid
            assert [n.path for n in await drive.listdir("photos/2024")] == ["photos/2024/a.jpg"]
            assert await _read_all(drive, "photos/2024/a.jpg") == b"jpeg bytes"
            h = await drive.open_read("docs/big.bin")
            for _ in range(20):
                off = rnd.randrange(len(big))
                size = rnd.randrange(1, 300_000)
                assert await drive.read(h, off, size) == big[off : off + size]
            assert await drive.read(h, len(big) - 5, 100) == big[-5:]
            assert await drive.read(h, len(big) + 5, 100) == b""
            # the cache of decoded packs stays within its size (one pack may exceed it)
            assert drive.cache.held_bytes <= 1 << 20 or len(drive.cache) == 1
            with pytest.raises(NotFoundError):
                await drive.stat("docs/nothing")
        finally:
            await drive.close()

    run(go())


def test_write_stores_a_version_and_versions_folder_keeps_the_old(
    tmp_path: Path, vaults: Vaults
) -> None:
    vault = _vault(tmp_path, vaults)

    async def go() -> None:
        drive = Drive(vault.ctx)
        try:
            await drive.mkdir("notes")
            await _write(drive, "notes/a.txt", b"first")
            await _write(drive, "notes/a.txt", b"second, longer")
            # rewrite in place without truncating: the stored bytes are copied first
            h = await drive.open_write("notes/a.txt", truncate=False)
            await drive.write(h, 0, b"S")
            await drive.release(h)
            await vault.files.get("notes/a.txt", tmp_path / "out.txt")
            assert (tmp_path / "out.txt").read_bytes() == b"Second, longer"
            versions = await drive.listdir(".versions/notes/a.txt")
            assert [n.path for n in versions] == [f".versions/notes/a.txt/{i}" for i in (1, 2, 3)]
            assert await _read_all(drive, ".versions/notes/a.txt/1") == b"first"
            with pytest.raises(DriveError) as exc:
                await drive.open_write(".versions/notes/a.txt/1", truncate=True)
            assert exc.value.errno == errno.EROFS
            # an empty new file is stored too (touch)
            h = await drive.open_write("notes/empty", truncate=True)
            await drive.flush(h)
            await drive.release(h)
            assert (await vault.files.stat("notes/empty")).size == 0
        finally:
            await drive.close()

    run(go())


def test_a_write_never_closed_leaves_the_previous_version(tmp_path: Path, vaults: Vaults) -> None:
    vault = _vault(tmp_path, vaults)

    async def go() -> None:
        drive = Drive(vault.ctx)
        await _write(drive, "f", b"kept")
        h = await drive.open_write("f", truncate=True)
        await drive.write(h, 0, b"half-written")
        spool = h.spool.path
        assert spool.exists() and (spool.stat().st_mode & 0o777) == 0o600
        assert (spool.parent.stat().st_mode & 0o777) == 0o700
        await drive.close()  # the front end went away before close(2)
        assert not spool.exists()
        assert [v.version for v in await vault.files.versions("f")] == [1]
        again = Drive(vault.ctx)
        assert await _read_all(again, "f") == b"kept"
        await again.close()

    run(go())


def test_dead_spool_folders_are_removed(tmp_path: Path, vaults: Vaults) -> None:
    vault = _vault(tmp_path, vaults)
    dead = vault.path / "spool" / "drive-999999999-abcd"
    dead.mkdir(parents=True)
    (dead / "x").write_bytes(b"left by a killed writer")

    async def go() -> None:
        drive = Drive(vault.ctx)
        await _write(drive, "f", b"x")
        await drive.close()

    run(go())
    assert not dead.exists()


def test_rename_remove_folders_and_names(tmp_path: Path, vaults: Vaults) -> None:
    vault = _vault(tmp_path, vaults)
    tree = tmp_path / "t"
    tree.mkdir()
    (tree / "in.txt").write_bytes(b"in a tree")
    run(vault.files.put([tree], name="tree"))

    async def go() -> None:
        drive = Drive(vault.ctx)
        try:
            await _write(drive, "a/b/one", b"1")
            await _write(drive, "a/b/two", b"2")
            await drive.rename("a/b/one", "a/uno")
            assert await _read_all(drive, "a/uno") == b"1"
            await drive.rename("a/b", "c")  # a folder: every name under it
            assert sorted(o.name for o in _objects(await vault.files.ls())) == [
                "a/uno",
                "c/two",
                "tree",
            ]
            await drive.rename("a/uno", "c/two")  # over an existing file: replaced
            assert await _read_all(drive, "c/two") == b"1"
            with pytest.raises(DriveError) as exc:
                await drive.rmdir("c")
            assert exc.value.errno == errno.ENOTEMPTY
            await drive.remove("c/two")
            with pytest.raises(NotFoundError):
                await vault.files.stat("c/two")
            await drive.mkdir("empty")
            await drive.rmdir("empty")
            for bad in ("x/../y", "tree/new.txt", ".versions/z"):
                with pytest.raises(DriveError) as exc:
                    await drive.open_write(bad, truncate=True)
                assert exc.value.errno in (errno.EINVAL, errno.EROFS), bad
            with pytest.raises(DriveError) as exc:
                await drive.open_write("bad\udcff", truncate=True)
            assert exc.value.errno == errno.EINVAL
            await drive.rmdir("tree", recursive=True)
            assert _objects(await vault.files.ls()) == []
        finally:
            await drive.close()

    run(go())


def test_read_only_drive_and_full_spool(tmp_path: Path, vaults: Vaults) -> None:
    vault = _vault(tmp_path, vaults)

    async def go() -> None:
        ro = Drive(vault.ctx, DriveOptions(read_only=True))
        with pytest.raises(DriveError) as exc:
            await ro.mkdir("x")
        assert exc.value.errno == errno.EROFS
        await ro.close()
        small = Drive(vault.ctx, DriveOptions(spool_mib=1))
        h = await small.open_write("big", truncate=True)
        await small.write(h, 0, os.urandom(1 << 19))
        with pytest.raises(SpoolFullError):
            await small.write(h, 1 << 19, os.urandom(1 << 20))
        await small.abort(h)
        await small.close()
        with pytest.raises(NotFoundError):
            await vault.files.stat("big")

    run(go())


def test_listings_are_remembered_until_the_catalog_changes(tmp_path: Path, vaults: Vaults) -> None:
    vault = _vault(tmp_path, vaults)
    (tmp_path / "a.txt").write_bytes(b"one")
    run(vault.files.put([tmp_path / "a.txt"]))
    other = vaults.open(vault.path)  # another connection: a CLI command during a mount
    (tmp_path / "a.txt").write_bytes(b"two, longer")

    async def go() -> None:
        drive = Drive(vault.ctx)
        try:
            [node] = [n for n in await drive.listdir("") if n.path == "a.txt"]
            assert (await drive.stat("a.txt")) is node  # from the listing
            assert drive.peek("/a.txt") is node  # and without the loop (FUSE getattr)
            await drive.mkdir("new")  # a change here: nothing listed before is trusted
            assert drive.peek("/a.txt") is None
            await other.files.put([tmp_path / "a.txt"])
            fresh = await drive.stat("a.txt")
            assert fresh.size == len(b"two, longer") and fresh.etag != node.etag
            await drive.listdir("")
            await other.files.rm("a.txt")
            with pytest.raises(NotFoundError):
                await drive.stat("a.txt")
        finally:
            await drive.close()

    run(go())
