"""A put of many small files: the work of its rows and its chunk lookups does not grow
with a query or a thread hop per file (docs/design.md, "Many small files", round 3). Each
test checks the behaviour (statements run, where the work runs, the same bytes), never
the time it takes."""

from __future__ import annotations

import gc
import threading
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest

from ownvault.core.journalfields import canonical
from ownvault.engine.store import journalrows, knownchunks
from ownvault.engine.store.catalog import Catalog
from ownvault.engine.store.catalog.journalrows import JournalRowTables, RawRows
from ownvault.engine.store.catalog.packs import PackTables
from ownvault.engine.store.ingest import Ingestor
from ownvault.engine.store.journalrows import decode_rows, encode_rows
from ownvault.engine.store.journalsync import EncodedRows
from ownvault.engine.vault import Vault

from .external import vault_with_external
from .helpers import Vaults, run


def _tree(root: Path, files: int, tag: str = "") -> Path:
    root.mkdir()
    for i in range(files):
        (root / f"f{i:04d}.txt").write_text(f"file {i}{tag}\n")
    return root


def _statements(v: Vault, step: Callable[[], object]) -> list[str]:
    ran: list[str] = []
    v.catalog.conn.set_trace_callback(ran.append)
    try:
        step()
    finally:
        v.catalog.conn.set_trace_callback(None)
    return ran


def test_a_versions_rows_are_read_in_a_few_queries_whatever_its_files(
    tmp_path: Path, vaults: Vaults
) -> None:
    """The export read each content's row with a query of its own (10,000 for 10,000
    files); now the version, its entries, their contents and chunks are four queries, and
    only the packs go one by one."""
    a, _dirs = vault_with_external(tmp_path)
    vaults.track(a)
    run(a.files.put([_tree(tmp_path / "t", 300)]))
    version = a.catalog.version("t", None).id
    got = []
    ran = _statements(a, lambda: got.append(a.catalog.jrows.export(version)))
    rows = got[0]
    assert len(rows.entries) == 301 and len(rows.contents) == 300
    assert len(ran) == 4 + 2 * len(rows.packs), ran  # a pack: its row, its shares
    assert decode_rows(encode_rows(rows)) == rows


def test_large_rows_are_compressed_on_a_thread_while_the_checks_run(
    tmp_path: Path, vaults: Vaults, monkeypatch: pytest.MonkeyPatch
) -> None:
    """zlib runs without the GIL: rows of many files are compressed on a thread of their
    own, concurrently with the decoder's checks, into the same bytes as before (level 6,
    one stream); small rows are compressed in the caller's thread."""
    a, _dirs = vault_with_external(tmp_path)
    vaults.track(a)
    run(a.files.put([_tree(tmp_path / "t", 1500, "x" * 200)]))
    (tmp_path / "one").write_text("one\n")
    run(a.files.put([tmp_path / "one"]))
    big = a.catalog.jrows.export(a.catalog.version("t", None).id)
    small = a.catalog.jrows.export(a.catalog.version("one", None).id)
    threads: list[str] = []
    checks: list[str] = []
    compress, check = zlib.compress, journalrows._rows_of_value  # noqa: SLF001

    def watched(data: bytes, level: int = -1) -> bytes:
        threads.append(threading.current_thread().name)
        return compress(data, level)

    def checked(value: journalrows.JSONValue) -> journalrows.VersionRows:
        checks.append(threading.current_thread().name)
        return check(value)

    monkeypatch.setattr(journalrows.zlib, "compress", watched)
    monkeypatch.setattr(journalrows, "_rows_of_value", checked)
    here = threading.current_thread().name
    for rows, where in ((big, "rows-zlib"), (small, here)):
        threads.clear()
        text = canonical(journalrows._doc(rows))  # noqa: SLF001
        assert (len(text) >= journalrows._THREADED) == (where != here)  # noqa: SLF001
        blob = encode_rows(rows)
        assert threads == [where] and checks[-1] == here
        assert blob == journalrows.MAGIC + compress(text, 6)
        assert decode_rows(blob) == rows


def test_a_decoder_fault_is_raised_after_the_compressing_thread_is_done(
    tmp_path: Path, vaults: Vaults
) -> None:
    a, _dirs = vault_with_external(tmp_path)
    vaults.track(a)
    run(a.files.put([_tree(tmp_path / "t", 1500, "x" * 200)]))
    rows = a.catalog.jrows.export(a.catalog.version("t", None).id)
    bad = journalrows.VersionRows(
        rows.created_at, rows.file_count, rows.cid_profile, rows.entries, rows.contents,
        rows.chunks, (*rows.packs, rows.packs[0]),
    )  # fmt: skip
    before = {t.name for t in threading.enumerate()}
    with pytest.raises(journalrows.FormatError):
        encode_rows(bad)
    assert "rows-zlib" not in {t.name for t in threading.enumerate()} - before


def _lookups(monkeypatch: pytest.MonkeyPatch) -> tuple[list[bytes], list[int]]:
    asked: list[bytes] = []
    loads: list[int] = []
    live_chunk, live_ids = PackTables.live_chunk, PackTables.live_chunk_ids

    def one(self: PackTables, chunk_id: bytes, *, referenced: bool = False) -> bool:
        asked.append(chunk_id)
        return live_chunk(self, chunk_id, referenced=referenced)

    def every(self: PackTables, *, referenced: bool = False) -> set[bytes]:
        got = live_ids(self, referenced=referenced)
        loads.append(len(got))
        return got

    monkeypatch.setattr(PackTables, "live_chunk", one)
    monkeypatch.setattr(PackTables, "live_chunk_ids", every)
    return asked, loads


def test_a_put_of_about_as_many_files_as_the_vault_holds_loads_the_chunk_ids_once(
    tmp_path: Path, vaults: Vaults, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One lookup per chunk cost a query each on the shared connection (10,000 for the
    benchmark's tree); past ``PRELOAD_AFTER`` lookups, a put that will look up about as
    many chunks as the vault holds loads them all in one query, and deduplicates the same:
    chunks stored before the put, and by the put itself, are not stored again."""
    monkeypatch.setattr(knownchunks, "PRELOAD_AFTER", 20)
    a, _dirs = vault_with_external(tmp_path)
    vaults.track(a)
    run(a.files.put([_tree(tmp_path / "old", 30)]))  # the vault holds 30 chunks
    new = _tree(tmp_path / "new", 200)
    for i in range(30):  # the first 30 files of "new" hold the contents of "old"
        (new / f"f{i:04d}.txt").write_text(f"file {i}\n")
    for i in range(190, 200):  # ... and the last 10 those of files 30-39 of "new" itself
        (new / f"f{i:04d}.txt").write_text(f"file {i - 160}\n")
    asked, loads = _lookups(monkeypatch)
    got = run(a.files.put([new]))[0]
    assert len(asked) == 19 and loads == [30]  # 19 one by one, then every id at once
    assert got.new_chunks == 200 - 30 - 10
    out = tmp_path / "out"
    run(a.files.get("new", out))
    for i in range(200):
        assert (out / f"f{i:04d}.txt").read_bytes() == (new / f"f{i:04d}.txt").read_bytes()


def test_a_small_put_in_a_large_vault_looks_its_chunks_up_one_by_one(
    tmp_path: Path, vaults: Vaults, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(knownchunks, "PRELOAD_AFTER", 20)
    a, _dirs = vault_with_external(tmp_path)
    vaults.track(a)
    run(a.files.put([_tree(tmp_path / "old", 300)]))
    asked, loads = _lookups(monkeypatch)
    got = run(a.files.put([_tree(tmp_path / "new", 40, "new")]))[0]
    assert len(asked) == 40 and loads == []  # 300 > 4 x the 20 lookups still to come
    assert got.new_chunks == 40


def test_a_put_goes_on_while_its_rows_are_compressed_and_the_record_waits_for_them(
    tmp_path: Path, vaults: Vaults, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The check that a version's rows fit one record needs their compressed size only
    past ``MAX_PLAIN`` bytes of text: below, the put goes on while zlib runs, and the
    record that carries the rows takes the same bytes when they are ready."""
    a, _dirs = vault_with_external(tmp_path)
    vaults.track(a)
    run(a.files.put([_tree(tmp_path / "t", 1500, "x" * 200)]))
    version = a.catalog.version("t", None).id
    release = threading.Event()
    done: list[bool] = []
    compress = zlib.compress

    def slow(data: bytes, level: int = -1) -> bytes:
        release.wait(10)
        done.append(True)
        return compress(data, level)

    monkeypatch.setattr(journalrows.zlib, "compress", slow)
    memo = EncodedRows()
    memo.check(a.catalog, version)
    assert done == []  # checked, still compressing
    release.set()
    rows, blob = memo.encode(a.catalog, version)
    assert done == [True]  # compressed once, for the check and the record
    assert blob == encode_rows(rows) and decode_rows(blob) == rows


def test_a_packs_chunks_go_in_by_batch_and_a_known_row_moves_keeping_its_id(
    tmp_path: Path, vaults: Vaults
) -> None:
    """``commit_pack`` made a SELECT and an INSERT per chunk; now one query per 500 ids
    and one ``executemany`` each for the moved and the new rows (each row a step the
    trace shows, and the triggers see), with the same rows and ids: a chunk the catalog has (one no content refers to) moves to the new pack under
    its id, the others are new rows, each id the row of its chunk."""
    a, _dirs = vault_with_external(tmp_path)
    vaults.track(a)
    cat = a.catalog
    provider = int(cat.conn.execute("SELECT MIN(id) FROM providers").fetchone()[0])
    old = cat.begin_pack(b"\x01" * 16, 4096, 1, 2, [(0, provider, 10, bytes(32))])
    first = cat.commit_pack(old, [(b"\xaa" * 32, 0, 40, 8, b"k" * 40)], 0)
    new = cat.begin_pack(b"\x02" * 16, 4096, 1, 2, [(0, provider, 10, bytes(32))])
    items = [(i.to_bytes(32), 40 * i, 40, 8, i.to_bytes(40)) for i in range(1, 1201)]
    items.insert(700, (b"\xaa" * 32, 99, 41, 9, b"m" * 40))  # the known one, moved here
    got: dict[bytes, int] = {}
    statements = _statements(a, lambda: got.update(cat.commit_pack(new, items, 2)))
    assert got[b"\xaa" * 32] == first[b"\xaa" * 32]
    assert len(got) == 1201 and len(set(got.values())) == 1201
    rows = {
        bytes(r[0]): (int(r[1]), int(r[2]), int(r[3]), int(r[4]), int(r[5]), bytes(r[6]), int(r[7]))
        for r in cat.conn.execute(
            "SELECT chunk_id, id, pack, offset, length, plain_len, wrapped_key, key_epoch "
            "FROM chunks"
        )
    }
    assert len(rows) == 1201
    for chunk_id, offset, length, plain_len, wrapped in items:
        assert rows[chunk_id] == (got[chunk_id], new, offset, length, plain_len, wrapped, 2)
    lookups = [s for s in statements if s.startswith("SELECT") and "FROM chunks" in s]
    assert len(lookups) <= 5, lookups[:10]  # one IN query per 500 ids, the new rows' ids


def test_the_record_compares_what_the_queries_return_and_builds_rows_only_if_changed(
    tmp_path: Path, vaults: Vaults, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The record that sends a put's rows reads the version's rows again (they may have
    changed since the put checked them) but compares what the queries return, and builds
    and encodes the rows again only if that changed: here a share's place."""
    a, _dirs = vault_with_external(tmp_path)
    vaults.track(a)
    run(a.files.put([_tree(tmp_path / "t", 50)]))
    version = a.catalog.version("t", None).id
    memo = EncodedRows()
    memo.check(a.catalog, version)
    built: list[int] = []
    rows_of = JournalRowTables.rows_of

    def counted(raw: RawRows) -> journalrows.VersionRows:
        built.append(len(raw.entries))
        return rows_of(raw)

    monkeypatch.setattr(JournalRowTables, "rows_of", staticmethod(counted))
    rows, blob = memo.encode(a.catalog, version)
    assert built == [] and decode_rows(blob) == rows == a.catalog.jrows.export(version)
    built.clear()
    with a.catalog.transaction() as c:
        c.execute("UPDATE shares SET size = size + 1 WHERE idx = 0")
    moved, blob = memo.encode(a.catalog, version)  # changed since the check: built again
    assert built == [51]
    assert moved != rows and decode_rows(blob) == moved
    assert moved.packs[0].shares[0].size == rows.packs[0].shares[0].size + 1


def test_the_versions_transaction_runs_with_the_collector_paused_and_reads_skip_the_old_heap(
    tmp_path: Path, vaults: Vaults, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Python's cyclic collector walked every object of the process in each of its full
    passes: during the reads, the objects that existed before them (imports, the scan)
    are frozen (``gc.freeze``: the passes skip them), and the version's transaction (no
    await in it: rows, their check) runs with the collector off; both as before after."""
    a, _dirs = vault_with_external(tmp_path)
    vaults.track(a)
    tree = _tree(tmp_path / "t", 20)
    seen: dict[str, list[object]] = {"entries": [], "reads": []}
    add_entries = Catalog.add_entries
    read_small = Ingestor.read_small

    def entries(self: Catalog, *args: object) -> None:
        seen["entries"].append(gc.isenabled())
        add_entries(self, *args)  # type: ignore[arg-type]

    def small(self: Ingestor, *args: object) -> object:
        seen["reads"].append(gc.get_freeze_count() > 0)
        return read_small(self, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(Catalog, "add_entries", entries)
    monkeypatch.setattr(Ingestor, "read_small", small)
    assert gc.isenabled()
    frozen = gc.get_freeze_count()
    run(a.files.put([tree]))
    assert seen["entries"] == [False]
    assert seen["reads"] == [True] * 20
    assert gc.isenabled() and gc.get_freeze_count() == frozen == 0


def test_a_heap_someone_else_froze_stays_frozen_after_a_put(tmp_path: Path, vaults: Vaults) -> None:
    a, _dirs = vault_with_external(tmp_path)
    vaults.track(a)
    gc.freeze()
    try:
        frozen = gc.get_freeze_count()
        assert frozen > 0
        run(a.files.put([_tree(tmp_path / "t", 20)]))
        assert gc.get_freeze_count() > frozen * 9 // 10  # not unfrozen (some were freed)
    finally:
        gc.unfreeze()
