"""The chunking worker process (``engine.store.cutter``) cuts exactly as ``Chunker.cut``,
and a put that uses it stores the same chunks as one that does not."""

from __future__ import annotations

import asyncio
import os
import random
import threading
import time
from pathlib import Path

import pytest

from ownvault.core.chunking import Chunker, ChunkerParams
from ownvault.engine.store import cutter, ingest
from ownvault.engine.store.cutter import RemoteCutter
from ownvault.errors import ProviderError
from ownvault.providers.wrappers import Fault, FaultyProvider

from .helpers import Vaults, run

SMALL = ChunkerParams("test-small", 1024, 4096, 16384)


@pytest.mark.parametrize("seed", range(6))
def test_worker_cuts_ranges_as_the_chunker_cuts_the_whole_file(tmp_path: Path, seed: int) -> None:
    rnd = random.Random(seed)
    data = rnd.randbytes(rnd.randrange(0, 400_000))
    path = tmp_path / "f"
    path.write_bytes(data)
    whole = [len(p) for p in Chunker(SMALL).cut(data, True)[0]]
    span = rnd.randrange(SMALL.max_size, 60_000)
    remote = RemoteCutter(SMALL)
    fd = os.open(path, os.O_RDONLY)
    try:
        got: list[int] = []
        offset = 0
        while True:
            remote.ask(fd, offset, span)
            cuts, used, nread = remote.answer()
            assert sum(cuts) == used <= nread
            got += cuts
            offset += used
            if nread < span:
                break
    finally:
        os.close(fd)
        remote.close()
    assert offset == len(data) and got == whole


def test_a_put_cut_by_the_worker_stores_the_chunks_of_one_cut_here(
    vaults: Vaults, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Worker first (every file is "large"), then the same bytes under another name cut
    in-process: nothing is new, so every chunk id agreed; and get returns the bytes."""
    data = os.urandom(40_000_000)
    src = tmp_path / "a.bin"
    src.write_bytes(data)
    vault = vaults.create(tmp_path / "v")
    monkeypatch.setattr(ingest, "PROCESS_CUT_MIN", 0)
    first = run(vault.files.put([src]))[0]
    assert first.new_bytes == len(data)
    monkeypatch.setattr(ingest, "PROCESS_CUT_MIN", 1 << 62)
    second = run(vault.files.put([src], name="b.bin"))[0]
    assert second.new_bytes == 0
    run(vault.files.get("a.bin", tmp_path / "back"))
    assert (tmp_path / "back").read_bytes() == data


def test_a_file_that_shrinks_under_the_worker_is_stored_as_read(
    vaults: Vaults, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The worker cut 12 MiB ranges of a 30 MB file; the file is truncated before the put
    reads them: the short read is cut here, and the put reads the changed file again."""
    src = tmp_path / "a.bin"
    src.write_bytes(os.urandom(30_000_000))
    vault = vaults.create(tmp_path / "v")
    monkeypatch.setattr(ingest, "PROCESS_CUT_MIN", 0)
    real = RemoteCutter.answer
    shrunk = [False]

    def answer(self: RemoteCutter) -> tuple[list[int], int, int]:
        out = real(self)
        if not shrunk[0]:
            shrunk[0] = True
            os.truncate(src, 5_000_000)
        return out

    monkeypatch.setattr(RemoteCutter, "answer", answer)
    [res] = run(vault.files.put([src]))
    assert shrunk[0] and res.size == 5_000_000
    run(vault.files.get("a.bin", tmp_path / "back"))
    assert (tmp_path / "back").read_bytes() == src.read_bytes()


def test_without_proc_a_large_file_is_cut_in_process(
    vaults: Vaults, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where the worker cannot reach the parent's open file (no ``/proc``), no worker is
    started and the put cuts the file itself."""
    src = tmp_path / "a.bin"
    src.write_bytes(os.urandom(3_000_000))
    vault = vaults.create(tmp_path / "v")
    monkeypatch.setattr(ingest, "PROCESS_CUT_MIN", 0)
    monkeypatch.setattr(cutter, "available", lambda: False)

    def no_worker(self: RemoteCutter, params: ChunkerParams) -> None:
        raise AssertionError("a worker was started")

    monkeypatch.setattr(RemoteCutter, "__init__", no_worker)
    [res] = run(vault.files.put([src]))
    assert res.size == 3_000_000
    run(vault.files.get("a.bin", tmp_path / "back"))
    assert (tmp_path / "back").read_bytes() == src.read_bytes()


def test_the_next_range_is_read_while_the_packs_of_one_are_uploaded(
    vaults: Vaults, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The reader thread reads (cuts, hashes, seals) range i + 1 while the event loop
    hands the packs range i filled to the uploads: results held until the next range has
    been read must not stall the put (they did when each range waited for the packs
    before it). The bytes come back whole."""
    monkeypatch.setattr(ingest, "PROCESS_CUT_MIN", 0)
    data = os.urandom(40 << 20)
    src = tmp_path / "a.bin"
    src.write_bytes(data)
    vault = vaults.create(tmp_path / "v")
    ranges: list[bool] = []  # per range read: whether another follows
    read = threading.Condition()
    original_read = ingest.Ingestor._read_cut  # noqa: SLF001  recorded, then called
    original_take = ingest.Ingestor._take_results  # noqa: SLF001  held, then called

    taken = [0]  # bytes processed so far (the ranges come in file order)

    def counting_read(self: ingest.Ingestor, *a: object) -> tuple[int, object, object]:
        out = original_read(self, *a)  # type: ignore[arg-type]
        with read:
            taken[0] += out[0]
            ranges.append(taken[0] < len(data))
            read.notify_all()
        return out

    async def held_take(self: ingest.Ingestor, *a: object) -> None:
        seen = len(ranges)
        if ranges and ranges[-1]:  # another range follows: read before these results go on

            def next_read() -> bool:
                with read:
                    return read.wait_for(lambda: len(ranges) > seen, 20)

            assert await asyncio.to_thread(next_read), "the next range was not read meanwhile"
        await original_take(self, *a)  # type: ignore[arg-type]

    monkeypatch.setattr(ingest.Ingestor, "_read_cut", counting_read)
    monkeypatch.setattr(ingest.Ingestor, "_take_results", held_take)
    stored = run(vault.files.put([src]))[0]
    assert stored.new_bytes == len(data) and len(ranges) >= 4 and not ranges[-1]
    run(vault.files.get("a.bin", tmp_path / "back"))
    assert (tmp_path / "back").read_bytes() == data


def test_a_failed_upload_stops_the_reader_before_the_put_returns(
    vaults: Vaults, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every share write fails while the reader thread is a range ahead: the put raises
    the providers' error only once the range being read is done (its buffer is reused
    by the next file) and the worker has answered; nothing stays stored, and the same
    put succeeds once the providers write again."""
    monkeypatch.setattr(ingest, "PROCESS_CUT_MIN", 0)
    data = os.urandom(40 << 20)
    src = tmp_path / "a.bin"
    src.write_bytes(data)
    vault = vaults.create(tmp_path / "v")
    store = vault.store
    healthy = dict(store.providers)
    for pid, provider in healthy.items():
        store.providers[pid] = FaultyProvider(provider, [Fault("fail", ops=frozenset({"put"}))])
    active = [0]
    original_read = ingest.Ingestor._read_cut  # noqa: SLF001  counted, then called

    def counting_read(self: ingest.Ingestor, *a: object) -> tuple[int, object, object, bool]:
        active[0] += 1
        try:
            time.sleep(0.05)  # the failure comes while this range is being read
            return original_read(self, *a)  # type: ignore[arg-type]
        finally:
            active[0] -= 1

    monkeypatch.setattr(ingest.Ingestor, "_read_cut", counting_read)
    with pytest.raises(ProviderError):
        run(vault.files.put([src]))
    assert active[0] == 0
    assert vault.catalog.conn.execute("SELECT COUNT(*) FROM packs").fetchone()[0] == 0
    store.providers.update(healthy)
    assert run(vault.files.put([src]))[0].new_bytes == len(data)
    run(vault.files.get("a.bin", tmp_path / "back"))
    assert (tmp_path / "back").read_bytes() == data
