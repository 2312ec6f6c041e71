"""Many small files: a put reads them in batches (one worker-thread hop and one files-cache
query per batch, not per file), with every per-file check of a read kept; a file that grew
past a block or changed is read again on its own; a batch stops at a filled pack."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from ownvault.core.chunking import ChunkerParams
from ownvault.core.pack import PackBuilder
from ownvault.engine.store import ingest, treeread
from ownvault.engine.store.catalog.filescache import MAX_PATHS, FilesCache
from ownvault.engine.store.filescache import FilesCacheRun, key_of
from ownvault.engine.store.ingest import FILE_TRIES, FileRecord, Ingestor
from ownvault.engine.vault import Vault

from .helpers import Vaults, run, tree_state


def _small_tree(root: Path, files: int, size: int = 3000) -> None:
    for i in range(files):
        d = root / f"d{i % 7}"
        d.mkdir(parents=True, exist_ok=True)
        (d / f"f{i:04d}").write_bytes(os.urandom(100 + (i * 37) % size))
    (root / "link").symlink_to("d0/f0000")
    (root / "empty").mkdir()


def _vault(vaults: Vaults, tmp_path: Path, **options: object) -> Vault:
    vault = vaults.create(tmp_path / "v", providers=3, k=2, n=3, **options)
    vault.clock = lambda: time.time() + 60  # files written by the test are old enough
    return vault


def _count(monkeypatch: pytest.MonkeyPatch, owner: object, name: str) -> list[object]:
    """Record the result of every call of ``owner.name``."""
    real = getattr(owner, name)
    seen: list[object] = []

    def counted(*args: object, **kwargs: object) -> object:
        out = real(*args, **kwargs)
        seen.append(out)
        return out

    monkeypatch.setattr(owner, name, counted)
    return seen


def test_small_files_are_read_in_batches(
    vaults: Vaults, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = tmp_path / "src"
    _small_tree(src, 600)
    vault = _vault(vaults, tmp_path)
    batches = _count(monkeypatch, treeread, "_read_batch")
    queries = _count(monkeypatch, FilesCache, "candidates")
    threads: set[int] = set()
    real_read = Ingestor.read_small

    def read_small(self: Ingestor, path: Path, buf: bytearray) -> object:
        threads.add(threading.get_ident())
        return real_read(self, path, buf)

    monkeypatch.setattr(Ingestor, "read_small", read_small)
    [first] = run(vault.files.put([src]))
    per_batch = -(-600 // treeread.BATCH_FILES)
    assert len(batches) == per_batch and len(queries) == per_batch
    assert threading.get_ident() not in threads  # read on a worker thread, never the loop
    assert first.files == 600 and first.unchanged == 0
    run(vault.files.get("src", tmp_path / "back"))
    assert tree_state(tmp_path / "back") == tree_state(src)
    # The re-put finds every file in the files cache, a batch at a time, reading none.
    batches.clear()
    queries.clear()
    [again] = run(vault.files.put([src]))
    assert again.unchanged == 600 and again.read_bytes == 0 and again.cid == first.cid
    assert len(batches) == per_batch and len(queries) == per_batch


def test_a_small_file_grown_past_a_block_is_read_on_its_own(
    vaults: Vaults, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file that was small at the scan but is longer than one read block when a batch
    reads it (here: a 64 KiB block, a 300 KB file) is read again by ``ingest_file``,
    with the tries left, and stored whole."""
    monkeypatch.setattr(ingest, "BLOCK_SIZE", 64 * 1024)
    src = tmp_path / "src"
    _small_tree(src, 20)
    (src / "grown.bin").write_bytes(os.urandom(300_000))
    vault = _vault(vaults, tmp_path)
    alone = _count(monkeypatch, Ingestor, "_ingest_once")
    tries: list[int] = []
    real = Ingestor.ingest_file

    async def ingest_file(self: Ingestor, path: Path, tries_left: int = FILE_TRIES) -> FileRecord:
        tries.append(tries_left)
        return await real(self, path, tries_left)

    monkeypatch.setattr(Ingestor, "ingest_file", ingest_file)
    [res] = run(vault.files.put([src]))
    assert tries == [FILE_TRIES - 1] and len(alone) == 1
    assert res.warnings == ()
    run(vault.files.get("src", tmp_path / "back"))
    assert tree_state(tmp_path / "back") == tree_state(src)


def test_a_batch_stops_after_the_file_that_fills_a_pack(
    vaults: Vaults, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Packs of 64 KiB, 200 files of up to 3 KB (one batch by count and bytes): each hop
    ends at a filled pack, so the packs waiting for upload stay bounded."""
    monkeypatch.setattr(PackBuilder.__init__, "__defaults__", (64 * 1024, 2))
    src = tmp_path / "src"
    _small_tree(src, 200)
    small = ChunkerParams("test-small", 1024, 4096, 16384)
    vault = _vault(vaults, tmp_path, chunker=small)
    batches = _count(monkeypatch, treeread, "_read_batch")
    run(vault.files.put([src]))
    packs = vault.catalog.conn.execute("SELECT COUNT(*) FROM packs").fetchone()[0]
    assert packs >= 4 and len(batches) >= packs - 1
    for done in batches[:-1]:
        assert isinstance(done, list)
        filled = [sum(len(d.read.full) for d in done if d.read is not None)]
        assert filled == [1]
    deep = run(vault.health.deep_check())
    assert deep.shares_bad == 0, deep.to_json()
    run(vault.files.get("src", tmp_path / "back"))
    assert tree_state(tmp_path / "back") == tree_state(src)


def test_read_ahead_never_blocks_on_a_fifo_nor_follows_a_link(tmp_path: Path) -> None:
    """The kernel read-ahead hint opens files the way the read does: a FIFO that took a
    file's place is not waited on (no writer ever comes here), a link not followed, a
    missing file skipped."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    target = tmp_path / "target"
    target.write_bytes(b"x" * 10_000)
    (tmp_path / "link").symlink_to(target)
    done = threading.Event()

    def advise() -> None:
        treeread._advise([fifo, tmp_path / "link", tmp_path / "missing", target])  # noqa: SLF001
        done.set()

    worker = threading.Thread(target=advise, daemon=True)
    worker.start()
    assert done.wait(10), "read-ahead blocked"


def test_files_cache_candidates_come_in_bounded_queries(vaults: Vaults, tmp_path: Path) -> None:
    src = tmp_path / "src"
    _small_tree(src, 3)
    vault = _vault(vaults, tmp_path)
    run(vault.files.put([src]))
    with pytest.raises(ValueError, match="at most"):
        vault.catalog.filescache.candidates([b"/x"] * (MAX_PATHS + 1), "p")
    cache = FilesCacheRun(vault.catalog, src, _params(vault), vault.clock)
    real = key_of(src / "d1" / "f0001")
    keys = [f"/nowhere/{i}".encode() for i in range(2 * MAX_PATHS)] + [real]
    known = cache.candidates(keys)
    assert list(known) == [real]
    probe = cache.probe(real, src / "d1" / "f0001", known)
    assert probe.hit is not None and probe.hit.size == (src / "d1" / "f0001").stat().st_size


def _params(vault: Vault) -> str:
    row = vault.catalog.conn.execute("SELECT params FROM filescache LIMIT 1").fetchone()
    return str(row[0])
