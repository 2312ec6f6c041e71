"""The chunking worker reads each range into memory shared with the put (a ``memfd``) and
hashes the chunk ids there (``engine.store.cutter``): the ids are those of the bytes
sealed, a dead worker fails the put cleanly, and no shared memory outlives the worker."""

from __future__ import annotations

import asyncio
import os
import random
import signal
from pathlib import Path

import pytest

from ownvault.core import crypto
from ownvault.engine.store import ingest
from ownvault.engine.store.cutter import RemoteCutter
from ownvault.errors import OwnvaultError

from .helpers import Vaults, memfd_in_use, run
from .test_cutter import SMALL


def _shared_fds() -> list[str]:
    return memfd_in_use("ownvault-ranges")


def _shm_names() -> set[str]:
    return set(os.listdir("/dev/shm")) if os.path.isdir("/dev/shm") else set()


@pytest.mark.parametrize("seed", range(3))
def test_the_worker_hashes_the_bytes_it_hands_over(tmp_path: Path, seed: int) -> None:
    """Each chunk's id is the keyed BLAKE3 of the bytes in the slot, range after range,
    with both slots in use (range i + 1 asked before range i is taken)."""
    rnd = random.Random(seed)
    data = rnd.randbytes(300_000 + rnd.randrange(100_000))
    key = rnd.randbytes(32)
    path = tmp_path / "f"
    path.write_bytes(data)
    span = 50_000
    remote = RemoteCutter(SMALL, key, span)
    fd = os.open(path, os.O_RDONLY)
    try:
        offset = 0
        remote.ask(fd, 0, span)
        more = True
        while more:
            cuts, used, got = remote.answer()
            ids, view = remote.ids, remote.data(used)
            more = got == span
            if more:
                remote.ask(fd, offset + used, span)  # into the other slot
            with view:
                assert bytes(view) == data[offset : offset + used]
                pos = 0
                for length, chunk_id in zip(cuts, ids, strict=True):
                    assert chunk_id == crypto.blake3_keyed(key, view[pos : pos + length])
                    pos += length
            offset += used
    finally:
        os.close(fd)
        remote.close()
    assert offset == len(data)
    assert not _shared_fds()


def test_a_put_through_the_worker_leaves_no_shared_memory(
    vaults: Vaults, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After a put (two large files: the worker and its slots serve both), nothing of the
    slots stays open and nothing appeared in /dev/shm; the bytes come back, and the same
    bytes cut in-process dedup against them (the worker's ids are the parent's)."""
    monkeypatch.setattr(ingest, "PROCESS_CUT_MIN", 0)
    before = _shm_names()
    files = []
    for name in ("a.bin", "b.bin"):
        src = tmp_path / name
        src.write_bytes(os.urandom(20_000_000))
        files.append(src)
    vault = vaults.create(tmp_path / "v")
    results = run(vault.files.put(files))
    assert [r.new_bytes for r in results] == [20_000_000, 20_000_000]
    assert not _shared_fds()
    assert _shm_names() <= before
    monkeypatch.setattr(ingest, "PROCESS_CUT_MIN", 1 << 62)
    again = run(vault.files.put([files[0]], name="copy.bin"))[0]
    assert again.new_bytes == 0
    run(vault.files.get("b.bin", tmp_path / "back"))
    assert (tmp_path / "back").read_bytes() == files[1].read_bytes()


def test_a_worker_killed_mid_put_fails_the_put_and_the_vault_stays_usable(
    vaults: Vaults, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The worker is killed after its second answer: the put raises an OwnvaultError that
    says the worker exited, the worker's slots are closed, no pack is left pending, and the
    same put then succeeds and gets back whole."""
    monkeypatch.setattr(ingest, "PROCESS_CUT_MIN", 0)
    data = os.urandom(50_000_000)
    src = tmp_path / "a.bin"
    src.write_bytes(data)
    vault = vaults.create(tmp_path / "v")
    real = RemoteCutter.answer
    answers = [0]

    def answer(self: RemoteCutter) -> tuple[list[int], int, int]:
        out = real(self)
        answers[0] += 1
        if answers[0] == 2:
            os.kill(self._proc.pid, signal.SIGKILL)
            self._proc.wait()
        return out

    monkeypatch.setattr(RemoteCutter, "answer", answer)
    with pytest.raises(OwnvaultError, match="chunking worker exited"):
        run(vault.files.put([src]))
    assert not _shared_fds()
    pending = vault.catalog.conn.execute(
        "SELECT COUNT(*) FROM packs WHERE state != 'live'"
    ).fetchone()[0]
    assert pending == 0
    monkeypatch.setattr(RemoteCutter, "answer", real)
    assert run(vault.files.put([src]))[0].size == len(data)
    run(vault.files.get("a.bin", tmp_path / "back"))
    assert (tmp_path / "back").read_bytes() == data
    assert not _shared_fds()


def test_a_cancelled_put_stops_the_worker_and_frees_its_slots(
    vaults: Vaults, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C reaches a put as a cancellation of its task: the put returns only after the
    worker has stopped and its slots are closed."""
    monkeypatch.setattr(ingest, "PROCESS_CUT_MIN", 0)
    src = tmp_path / "a.bin"
    src.write_bytes(os.urandom(60_000_000))
    vault = vaults.create(tmp_path / "v")
    workers: list[RemoteCutter] = []
    real = RemoteCutter.answer

    def answer(self: RemoteCutter) -> tuple[list[int], int, int]:
        workers.append(self)
        return real(self)

    monkeypatch.setattr(RemoteCutter, "answer", answer)

    async def cancelled() -> None:
        task = asyncio.ensure_future(vault.files.put([src]))
        while len(workers) < 2:
            await asyncio.sleep(0.005)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    run(cancelled())
    assert workers
    assert workers[0]._proc.poll() is not None  # noqa: SLF001
    assert not _shared_fds()
