"""The node's write path (``server.node.store``, ``server.node.upload``): an upload streams to
its temp file with ``O_DIRECT`` or, where the file system refuses it, buffered, byte for
byte either way; the body is hashed by the writing thread, not the event loop; a directory
the upload creates is fsynced into its parent."""

from __future__ import annotations

import asyncio
import errno
import hashlib
import os
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ownvault.providers.directio import DirectRefused
from ownvault.server.node import store as node_store
from ownvault.server.node import upload as node_upload
from ownvault.server.node.store import AccountStore, UploadBudget

SIZES = [0, 1, 4095, 4096, 4097, node_upload.BUFFER - 1, node_upload.BUFFER + 3, 3 * 1024 * 1024]


async def _chunks(data: bytes, step: int = 65536) -> AsyncIterator[bytes]:
    for i in range(0, len(data), step):
        await asyncio.sleep(0)
        yield data[i : i + step]


async def _put(store: AccountStore, name: str, data: bytes) -> list[int]:
    """Store ``data`` as ``name`` for one account; the threads that hashed its chunks."""
    account = await store.get("did:key:ztest", create=True)
    assert account is not None
    hasher = hashlib.sha256()
    threads: list[int] = []

    def digest(chunk: bytes) -> None:
        threads.append(threading.get_ident())
        hasher.update(chunk)

    size = await store.put_stream(
        account,
        name,
        _chunks(data),
        max_size=1 << 30,
        budget=UploadBudget(1 << 30),
        digest=digest,
        digest_ok=lambda: hasher.digest() == hashlib.sha256(data).digest(),
    )
    assert size == len(data)
    assert not list((account.provider.root / "tmp").iterdir())  # no temp file left
    return threads


def _stored(store: AccountStore, name: str) -> bytes:
    [account] = store.accounts
    return (account.provider.root / "objects" / name).read_bytes()


def _takes_o_direct(directory: Path) -> bool:
    probe = directory / "probe"
    try:
        fd = node_upload.open_direct(probe)
    except DirectRefused:
        return False
    try:
        buf = node_upload.upload_buffers().take()
        try:
            os.write(fd, memoryview(buf)[:4096])
        except OSError:
            return False
        finally:
            buf.close()
    finally:
        os.close(fd)
        probe.unlink()
    return True


def _store(tmp_path: Path) -> AccountStore:
    store = AccountStore(tmp_path / "data", quota=None)
    store.scan()
    return store


def test_uploads_are_stored_byte_for_byte_direct_and_buffered(tmp_path: Path) -> None:
    store = _store(tmp_path)
    datas = {f"d/{size}": os.urandom(size) for size in SIZES}

    async def go() -> None:
        for name, data in datas.items():
            await _put(store, name, data)

    asyncio.run(go())
    assert store.direct == _takes_o_direct(tmp_path)
    for name, data in datas.items():
        assert _stored(store, name) == data
    store.direct = False  # as after a refusal: buffered writes (writev)
    buffered = {f"b/{size}": os.urandom(size) for size in SIZES}
    datas = buffered
    asyncio.run(go())
    for name, data in buffered.items():
        assert _stored(store, name) == data


@pytest.mark.parametrize("where", ["open", "first write"])
def test_a_file_system_refusing_o_direct_gets_buffered_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    """``EINVAL`` at the open or at the first direct write: the upload is written buffered
    from offset 0, stored whole, and later uploads do not ask for O_DIRECT again."""
    if where == "open":

        def refuse(path: Path) -> int:
            raise DirectRefused("no")

        monkeypatch.setattr(node_upload, "open_direct", refuse)
    else:
        real = node_upload._write_all  # noqa: SLF001
        first = [True]

        def write_all(fd: int, view: memoryview) -> None:
            if first[0]:
                first[0] = False
                raise OSError(errno.EINVAL, "Invalid argument")
            real(fd, view)

        monkeypatch.setattr(node_upload, "_write_all", write_all)
    store = _store(tmp_path)
    data = os.urandom(node_upload.BUFFER + 12345)
    asyncio.run(_put(store, "x/y", data))
    assert _stored(store, "x/y") == data and not store.direct
    small = os.urandom(5000)
    asyncio.run(_put(store, "x/z", small))
    assert _stored(store, "x/z") == small


def test_the_body_is_hashed_by_the_writing_thread_not_the_event_loop(tmp_path: Path) -> None:
    store = _store(tmp_path)

    async def go() -> tuple[int, list[int]]:
        return threading.get_ident(), await _put(store, "h/1", os.urandom(3 << 20))

    loop_thread, threads = asyncio.run(go())
    assert threads and loop_thread not in threads


def test_a_directory_an_upload_creates_is_fsynced_into_its_parent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each directory made for ``a/b/c`` is fsynced into its parent (else the object could
    vanish with it after a crash), and the object's own directory after the link."""
    synced: list[tuple[int, int]] = []
    real = os.fsync

    def fsync(fd: int) -> None:
        st = os.fstat(fd)
        synced.append((st.st_dev, st.st_ino))
        real(fd)

    monkeypatch.setattr(node_store.os, "fsync", fsync)
    store = _store(tmp_path)
    asyncio.run(_put(store, "a/b/c", b"data"))
    [account] = store.accounts
    objects = account.provider.root / "objects"

    def ident(p: Path) -> tuple[int, int]:
        st = p.stat()
        return st.st_dev, st.st_ino

    for directory in (objects, objects / "a", objects / "a" / "b"):
        assert ident(directory) in synced, directory
