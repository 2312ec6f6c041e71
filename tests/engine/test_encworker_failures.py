"""A put whose encoding worker (``engine.store.encworker``) dies or is cancelled: the put
fails cleanly or stops, the worker is gone, and nothing of its shared memory is left."""

from __future__ import annotations

import asyncio
import gc
import os
import signal
from pathlib import Path

import pytest

from ownvault.core.pack import PackBuilder
from ownvault.engine.store import encworker, ingest
from ownvault.engine.store.encworker import RemoteEncoder
from ownvault.errors import OwnvaultError

from .helpers import Vaults, run
from .test_encworker_shares import PACK, SMALL, shared_memory


def test_a_worker_killed_mid_put_fails_the_put_and_the_same_put_then_succeeds(
    vaults: Vaults, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The worker is killed after its third answer: the put raises an OwnvaultError that
    says the encoding worker exited, no pack is left pending, its shared memory is gone,
    and the same put then succeeds and gets back whole."""
    monkeypatch.setattr(ingest, "PROCESS_CUT_MIN", 0)
    monkeypatch.setattr(PackBuilder.__init__, "__defaults__", (PACK, 2))
    real = encworker._Worker.ask  # noqa: SLF001
    answers = [0]

    def ask(self: encworker._Worker, request: bytes, expect: int) -> bytes:
        out = real(self, request, expect)
        answers[0] += 1
        if answers[0] == 3:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        return out

    monkeypatch.setattr(encworker._Worker, "ask", ask)  # noqa: SLF001
    data = os.urandom(3_000_000)
    src = tmp_path / "a.bin"
    src.write_bytes(data)
    vault = vaults.create(tmp_path / "v", providers=6, k=3, n=6, chunker=SMALL)
    with pytest.raises(OwnvaultError, match=r"encoding worker exited \(status -9\)"):
        run(vault.files.put([src]))
    pending = vault.catalog.conn.execute(
        "SELECT COUNT(*) FROM packs WHERE state != 'live'"
    ).fetchone()[0]
    assert pending == 0
    gc.collect()
    assert not shared_memory()
    monkeypatch.setattr(encworker._Worker, "ask", real)  # noqa: SLF001
    assert run(vault.files.put([src]))[0].size == len(data)
    run(vault.files.get("a.bin", tmp_path / "back"))
    assert (tmp_path / "back").read_bytes() == data
    gc.collect()
    assert not shared_memory()


def test_a_cancelled_put_stops_the_encoding_worker_and_frees_its_memory(
    vaults: Vaults, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C reaches a put as a cancellation of its task: once the put has returned the
    worker has exited and no descriptor or mapping of the shared slots is left."""
    monkeypatch.setattr(ingest, "PROCESS_CUT_MIN", 0)
    monkeypatch.setattr(PackBuilder.__init__, "__defaults__", (PACK, 2))
    encoders: list[RemoteEncoder] = []
    pids: set[int] = set()
    real = RemoteEncoder.encode

    def encode(
        self: RemoteEncoder, pack_id: bytes, data: bytes | memoryview, k: int, n: int
    ) -> object:
        encoders.append(self)
        pids.update(self.pids)
        return real(self, pack_id, data, k, n)

    monkeypatch.setattr(RemoteEncoder, "encode", encode)
    src = tmp_path / "a.bin"
    src.write_bytes(os.urandom(8_000_000))
    vault = vaults.create(tmp_path / "v", providers=6, k=3, n=6, chunker=SMALL)

    async def cancelled() -> None:
        task = asyncio.ensure_future(vault.files.put([src]))
        while len(encoders) < 3:
            await asyncio.sleep(0.002)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    run(cancelled())
    assert encoders[0].pids == []  # closed
    assert pids and all(not os.path.exists(f"/proc/{pid}") for pid in pids)  # exited, reaped
    gc.collect()
    assert not shared_memory()
