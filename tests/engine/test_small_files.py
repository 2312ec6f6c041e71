"""Many small files: a put reads them in batches (one worker-thread hop and one files-cache
query per batch, not per file), with every per-file check of a read kept; a file that grew
past a block or changed is read again on its own; a batch stops at a filled pack. A get
looks chunk lists up a window at a time and writes batches of files on a worker thread,
in order, with every rule of writing restored files kept."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from ownvault.core.chunking import Chunker, ChunkerParams
from ownvault.core.pack import PackBuilder
from ownvault.engine.store import ingest, treeread, treescan, treewrite, versions
from ownvault.engine.store.catalog.contents import MAX_CONTENTS, ContentTables
from ownvault.engine.store.catalog.filescache import MAX_PATHS, FilesCache
from ownvault.engine.store.filescache import FilesCacheRun, key_of
from ownvault.engine.store.ingest import FILE_TRIES, FileRecord, Ingestor, SmallLoad
from ownvault.engine.store.outdir import OutputDir
from ownvault.engine.vault import Vault
from ownvault.errors import UsageError

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

    def read_small(self: Ingestor, path: Path, load: SmallLoad) -> object:
        threads.add(threading.get_ident())
        return real_read(self, path, load)

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


def test_reader_threads_read_several_files_of_a_batch_at_once(
    vaults: Vaults, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first two reads of a batch meet at a barrier: with one reader they could not
    (the barrier breaks after its timeout and the put fails)."""
    src = tmp_path / "src"
    _small_tree(src, 50)
    vault = _vault(vaults, tmp_path)
    barrier = threading.Barrier(2, timeout=30)
    calls = [0]
    lock = threading.Lock()
    readers: set[int] = set()
    real = Ingestor.load_small

    def load_small(self: Ingestor, path: Path, scanned: int) -> SmallLoad:
        with lock:
            calls[0] += 1
            first_two = calls[0] <= 2
            readers.add(threading.get_ident())
        if first_two:
            barrier.wait()
        return real(self, path, scanned)

    monkeypatch.setattr(Ingestor, "load_small", load_small)
    [res] = run(vault.files.put([src]))
    assert res.files == 50 and calls[0] == 50 and len(readers) >= 2
    assert threading.get_ident() not in readers
    run(vault.files.get("src", tmp_path / "back"))
    assert tree_state(tmp_path / "back") == tree_state(src)


def test_reads_a_stopped_batch_started_are_taken_over_not_repeated(
    vaults: Vaults, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Batches stop at filled packs (64 KiB packs, 200 files): the files after the stop were
    already being read, and the next batch uses those reads: every file is opened once."""
    monkeypatch.setattr(PackBuilder.__init__, "__defaults__", (64 * 1024, 2))
    src = tmp_path / "src"
    _small_tree(src, 200)
    vault = _vault(vaults, tmp_path, chunker=ChunkerParams("test-small", 1024, 4096, 16384))
    batches = _count(monkeypatch, treeread, "_read_batch")
    opened = _count(monkeypatch, Ingestor, "open_file")
    [res] = run(vault.files.put([src]))
    assert len(batches) >= 4 and res.files == 200
    assert len(opened) == 200
    run(vault.files.get("src", tmp_path / "back"))
    assert tree_state(tmp_path / "back") == tree_state(src)


def test_a_small_file_grown_since_the_scan_is_read_on_its_own(
    vaults: Vaults, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch holds at most the bytes the scan saw: a file longer at its open than at the
    scan is not read by the batch's readers but by ``ingest_file`` (with the tries left),
    and stored as it now is."""
    src = tmp_path / "src"
    _small_tree(src, 10)
    grown = src / "d1" / "f0001"
    vault = _vault(vaults, tmp_path)
    real_scan = treeread.scan_path

    def scan_then_grow(*args: object, **kwargs: object) -> list[treeread.TreeEntry]:
        out = real_scan(*args, **kwargs)  # type: ignore[arg-type]
        with open(grown, "ab") as f:
            f.write(os.urandom(50_000))
        return out

    monkeypatch.setattr(versions, "scan_path", scan_then_grow)
    loads = _count(monkeypatch, Ingestor, "load_small")
    alone: list[Path] = []
    real = Ingestor.ingest_file

    async def ingest_file(self: Ingestor, path: Path, tries: int = FILE_TRIES) -> FileRecord:
        alone.append(path)
        return await real(self, path, tries)

    monkeypatch.setattr(Ingestor, "ingest_file", ingest_file)
    [res] = run(vault.files.put([src]))
    assert alone == [grown] and res.warnings == ()
    assert [x.data for x in loads if isinstance(x, SmallLoad) and x.data is None] == [None]
    run(vault.files.get("src", tmp_path / "back"))
    assert tree_state(tmp_path / "back") == tree_state(src)


@pytest.mark.parametrize("size", [1, 100, 1023, 1024])
def test_a_stream_no_longer_than_the_minimum_chunk_is_one_chunk(size: int) -> None:
    """``read_small`` skips FastCDC for a file of at most ``min_size`` bytes, taking it as
    one chunk: what FastCDC itself gives."""
    params = ChunkerParams("test-small", 1024, 4096, 16384)
    data = os.urandom(size)
    pieces, used = Chunker(params).cut(memoryview(data), True)
    assert used == size and [bytes(p) for p in pieces] == [data]


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


# -- get: batches of small files --------------------------------------------------------


def test_a_tree_of_small_files_is_restored_in_batches(
    vaults: Vaults, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One chunk-list query per window of files and one worker-thread hop per batch of
    operations (files, directories, symlinks, in order); everything comes back as it was
    (modes, times, links, an empty directory), a large file among them streamed."""
    src = tmp_path / "src"
    _small_tree(src, 600)
    (src / "d3" / "large.bin").write_bytes(os.urandom(treewrite.SMALL_FILE + 1))
    os.chmod(src / "d1", 0o750)
    os.chmod(src / "d2" / "f0002", 0o600)
    vault = _vault(vaults, tmp_path)
    run(vault.files.put([src]))
    queries = _count(monkeypatch, ContentTables, "chunks_of")
    hops = _count(monkeypatch, treewrite.QueuedWrites, "_run")
    streamed = _count(monkeypatch, OutputDir, "write_file")
    written: list[int] = []
    restored = run(vault.files.get("src", tmp_path / "back", progress=written.append))
    assert restored.files == 601 and sum(written) == restored.bytes
    assert tree_state(tmp_path / "back") == tree_state(src)
    assert len(queries) == -(-601 // treewrite.WINDOW)
    ops = 601 + 9 + 1  # files, directories (the root, 7 + "empty"), the symlink
    assert len(hops) <= -(-ops // treewrite.BATCH_FILES) + 2  # + the hop before the large file
    assert len(streamed) == 1


def test_a_queued_symlink_is_never_written_through(
    vaults: Vaults, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A catalog whose tree has a symlink ``b`` -> outside and then a file ``b/x``: the
    queued operations run in order, so the link exists when the file is written, and
    the write through it is refused, as when each was written on its own."""
    src = tmp_path / "src"
    (src / "a").mkdir(parents=True)
    (src / "a" / "x").write_bytes(b"payload")
    outside = tmp_path / "outside"
    outside.mkdir()
    (src / "b").symlink_to(outside)
    vault = _vault(vaults, tmp_path)
    run(vault.files.put([src]))
    c = vault.catalog.conn
    c.execute("DELETE FROM entries WHERE path = 'a'")
    c.execute("UPDATE entries SET path = 'b/x' WHERE path = 'a/x'")
    with pytest.raises(UsageError, match="refusing to write through a symlink"):
        run(vault.files.get("src", tmp_path / "back"))
    assert list(outside.iterdir()) == []


def test_an_error_in_a_batch_fails_the_get(vaults: Vaults, tmp_path: Path) -> None:
    src = tmp_path / "src"
    _small_tree(src, 50)
    vault = _vault(vaults, tmp_path)
    run(vault.files.put([src]))
    back = tmp_path / "back"
    (back / "d3" / "f0010").mkdir(parents=True)
    with pytest.raises(UsageError, match="a directory is in the way"):
        run(vault.files.get("src", back, overwrite=True))
    assert not any(p.name.endswith(".part") for p in back.rglob("*"))


def test_a_cancelled_restore_waits_for_its_running_batch(tmp_path: Path) -> None:
    """The worker thread writes through the output directory's descriptors: a restore
    cancelled while a batch runs must not close them before the batch ends."""
    ended = threading.Event()

    class Slow(OutputDir):
        def write_whole(
            self, parts: Sequence[str], pieces: Sequence[bytes | memoryview],
            mode: int | None, mtime_ns: int | None,
        ) -> int:  # fmt: skip
            time.sleep(0.002)
            out = super().write_whole(parts, pieces, mode, mtime_ns)
            if parts[-1] == f"f{treewrite.BATCH_FILES - 1}":
                ended.set()
            return out

    async def restore(out: OutputDir) -> None:
        queue = treewrite.QueuedWrites(out)
        try:
            for i in range(treewrite.BATCH_FILES + 1):
                await queue.write([f"f{i}"], [b"x"], 0o644, None)
            await asyncio.sleep(30)  # cancelled here, the first batch still running
        finally:
            await queue.close()
            assert ended.is_set()

    async def main() -> None:
        with Slow(tmp_path / "out") as out:
            task = asyncio.ensure_future(restore(out))
            await asyncio.sleep(0.05)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert ended.is_set()

    run(main())


def test_chunk_lists_of_many_contents_in_one_query(vaults: Vaults, tmp_path: Path) -> None:
    src = tmp_path / "src"
    _small_tree(src, 5)
    (src / "empty.bin").write_bytes(b"")
    vault = _vault(vaults, tmp_path)
    run(vault.files.put([src]))
    cat = vault.catalog
    files = [e for e in cat.entries(cat.version("src").id) if e.kind == "file"]
    contents = [e.content for e in files if e.content is not None]
    got = cat.contents.chunks_of([*contents, contents[0]])
    assert got == {c: cat.content_chunks(c) for c in contents}
    assert [] in got.values()  # the empty file
    with pytest.raises(ValueError, match="at most"):
        cat.contents.chunks_of(list(range(1, MAX_CONTENTS + 2)))


def test_content_refs_prefetch_only_ahead_of_small_files(
    vaults: Vaults, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(treewrite, "WINDOW", 4)
    src = tmp_path / "src"
    _small_tree(src, 12)
    vault = _vault(vaults, tmp_path)
    run(vault.files.put([src]))
    cat = vault.catalog
    entries = cat.entries(cat.version("src").id)
    fetched: list[int] = []

    class Reader:
        def prefetch(self, pack: int) -> None:
            fetched.append(pack)

    refs_of = treewrite.ContentRefs(cat, entries, Reader())
    for e in entries:
        if e.kind == "file" and e.content is not None:
            assert refs_of(e.content) == cat.content_chunks(e.content)
    assert fetched and set(fetched) <= set(cat.live_packs())
    monkeypatch.setattr(treewrite, "SMALL_FILE", 10)  # now every file is "large"
    fetched.clear()
    refs_of = treewrite.ContentRefs(cat, entries, Reader())
    for e in entries:
        if e.kind == "file" and e.content is not None:
            refs_of(e.content)
    assert fetched == []


def test_bulk_inserts_give_the_ids_sqlite_gives(vaults: Vaults, tmp_path: Path) -> None:
    """``contents.add_many`` inserts all contents in one statement with ids MAX(id) + 1
    onwards: the rows and ids are those one insert per row gave, also after the row with
    the highest id was deleted."""
    src = tmp_path / "src"
    _small_tree(src, 30)
    vault = _vault(vaults, tmp_path)
    run(vault.files.put([src]))
    cat = vault.catalog
    c = cat.conn
    chunks = {bytes(r[1]): r[0] for r in c.execute("SELECT id, chunk_id FROM chunks")}
    assert sorted(chunks.values()) == list(range(1, len(chunks) + 1))
    top = c.execute("SELECT MAX(id) FROM contents").fetchone()[0]
    assert sorted(r[0] for r in c.execute("SELECT id FROM contents")) == list(range(1, top + 1))
    with cat.transaction():
        c.execute("DELETE FROM filescache WHERE content = ?", (top,))
        c.execute("DELETE FROM entries WHERE content = ?", (top,))
        c.execute("DELETE FROM contents WHERE id = ?", (top,))
        rows = [r[0] for r in c.execute("SELECT id FROM chunks ORDER BY id LIMIT 3")]
        ids = cat.contents.add_many(
            [(10, None, None, None, rows, [4, 3, 3]), (0, "x", "p", 0, [], [])]
        )
    assert ids == [top, top + 1]  # the deleted id is given again, as SQLite does
    refs = cat.content_chunks(top)
    assert [(r.row, r.stream_offset) for r in refs] == [(rows[0], 0), (rows[1], 4), (rows[2], 7)]
    assert cat.content_chunks(top + 1) == []


def test_the_scan_lists_directories_on_several_threads_in_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Sibling directories are listed at once (two listings meet at a barrier: one thread
    could not), an excluded directory is never listed, and entries and warnings come in
    the order of one walk."""
    src = tmp_path / "src"
    _small_tree(src, 30)
    (src / "skipped").mkdir()
    (src / "skipped" / "inner").write_bytes(b"x")
    (src / "d2" / "bad-\udcff").write_bytes(b"y")
    barrier = threading.Barrier(2, timeout=30)
    listed: list[Path] = []
    lock = threading.Lock()
    real = treescan._listing  # noqa: SLF001

    def listing(directory: Path) -> list[object]:
        with lock:
            listed.append(directory)
            meet = directory.name in ("d0", "d1")
        if meet:
            barrier.wait()
        return real(directory)  # type: ignore[return-value]

    monkeypatch.setattr(treescan, "_listing", listing)
    warnings: list[str] = []
    entries = treescan.scan_path(src, warnings.append, lambda rel, is_dir: rel == "skipped")
    assert src / "skipped" not in listed and len(listed) == 9  # the root, d0-d6, empty
    paths = [e.path for e in entries]
    assert paths == sorted(paths) and "skipped" not in paths and len(paths) == 1 + 9 + 30
    assert len(warnings) == 1 and "bad-" in warnings[0]
