"""What bench/scale.py found costly in a big vault, fixed; each test checks the behaviour
(work not done twice, the same bytes on the providers), never the time it takes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from ownvault.core.journalops import Put
from ownvault.core.jsonvalue import JSONValue
from ownvault.engine.store import journalrows
from ownvault.engine.store.catalog import Catalog
from ownvault.engine.store.catalog.rows import ChunkRef
from ownvault.engine.store.journalrows import VersionRows, decode_rows, encode_rows
from ownvault.engine.store.journalsync import EncodedRows
from ownvault.engine.vault import Vault

from .external import vault_with_external
from .helpers import Vaults, run


def _tree(root: Path, files: int) -> Path:
    root.mkdir()
    for i in range(files):
        (root / f"f{i:04d}.txt").write_text(f"file {i}\n")
    return root


def _counting_encodes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Every encoding of rows, whichever module calls ``encode_rows`` (it builds the
    document with ``journalrows._doc``), by the rows' entry count."""
    calls: list[int] = []
    doc = journalrows._doc  # noqa: SLF001

    def counted(rows: VersionRows) -> dict[str, JSONValue]:
        calls.append(len(rows.entries))
        return doc(rows)

    monkeypatch.setattr(journalrows, "_doc", counted)
    return calls


def _last_put(v: Vault) -> Put:
    device = v.ctx.journal.device.id
    ops = [op for r in run(v.ctx.journal.history()) if r.device == device for op in r.ops]
    put = ops[-1]
    assert isinstance(put, Put)
    return put


def test_a_puts_rows_are_encoded_once_for_the_check_and_the_record(
    tmp_path: Path, vaults: Vaults, monkeypatch: pytest.MonkeyPatch
) -> None:
    a, _dirs = vault_with_external(tmp_path)
    vaults.track(a)
    calls = _counting_encodes(monkeypatch)
    run(a.files.put([_tree(tmp_path / "t", 200)]))
    assert calls == [201]  # the tree and its 200 files: once, not once more when sent
    put = _last_put(a)
    version = a.catalog.version("t", None)
    assert decode_rows(put.rows) == a.catalog.jrows.export(version.id)


def test_rows_changed_after_the_check_are_encoded_again_from_the_catalog(
    tmp_path: Path, vaults: Vaults
) -> None:
    """The kept bytes are only reused for the very rows they encode: a version whose rows
    moved on (here: another version's rows under its id) is encoded from the catalog."""
    a, _dirs = vault_with_external(tmp_path)
    vaults.track(a)
    run(a.files.put([_tree(tmp_path / "t", 3)]))
    (tmp_path / "u").write_text("another\n")
    run(a.files.put([tmp_path / "u"]))
    t, u = a.catalog.version("t", None).id, a.catalog.version("u", None).id
    memo = EncodedRows()
    rows_t, blob_t = memo.encode(a.catalog, t)
    assert blob_t == encode_rows(rows_t)
    memo.kept[u] = memo.kept[t]  # stale bytes under u's id
    rows_u, blob_u = memo.encode(a.catalog, u)
    assert rows_u == a.catalog.jrows.export(u) != rows_t
    assert decode_rows(blob_u) == rows_u


def test_kept_rows_are_bounded(tmp_path: Path, vaults: Vaults) -> None:
    a, _dirs = vault_with_external(tmp_path)
    vaults.track(a)
    for i in range(3):
        (tmp_path / f"n{i}").write_text(f"{i}\n")
        run(a.files.put([tmp_path / f"n{i}"]))
    memo = EncodedRows(keep=2)
    ids = [a.catalog.version(f"n{i}", None).id for i in range(3)]
    for v in ids:
        memo.encode(a.catalog, v)
    assert list(memo.kept) == ids[1:]


def test_check_finds_a_versions_packs_in_one_query_not_one_per_file(
    tmp_path: Path, vaults: Vaults, monkeypatch: pytest.MonkeyPatch
) -> None:
    a, _dirs = vault_with_external(tmp_path)
    vaults.track(a)
    run(a.files.put([_tree(tmp_path / "t", 300)]))
    (tmp_path / "one").write_text("one\n")
    run(a.files.put([tmp_path / "one"]))
    per_file: list[int] = []
    chunks_of = Catalog.content_chunks

    def counted(self: Catalog, content: int) -> list[ChunkRef]:
        per_file.append(content)
        return chunks_of(self, content)

    monkeypatch.setattr(Catalog, "content_chunks", counted)
    report = run(a.health.check())
    assert per_file == []  # a million files made a million queries
    by_name = {f.name: f for f in report.files}
    for name in ("t", "one"):
        v = a.catalog.version(name, None)
        packs = {r.pack for e in a.catalog.entries(v.id) if e.content is not None
                 for r in chunks_of(a.catalog, e.content)}  # fmt: skip
        assert by_name[name].packs == len(packs) > 0
        assert by_name[name].healthy and by_name[name].readable


def _big_reads(v: Vault, step: Callable[[], object], most: int) -> list[str]:
    """Statements ``step`` ran on the catalog that return more than ``most`` rows (each
    SELECT is run again afterwards, with its bound values, to count them)."""
    conn = v.catalog.conn
    ran: list[str] = []
    conn.set_trace_callback(ran.append)
    try:
        step()
    finally:
        conn.set_trace_callback(None)
    out = []
    for sql in ran:
        if sql.lstrip().upper().startswith("SELECT"):
            rows = len(conn.execute(sql).fetchall())
            if rows > most:
                out.append(f"{rows} rows: {sql[:160]}")
    return out


def test_a_one_file_put_reads_no_table_that_grows_with_the_files(
    tmp_path: Path, vaults: Vaults
) -> None:
    """A one-file put costs O(change): no statement returns a row per file of the vault
    (it looks its chunk up rather than load the id of every chunk stored: seconds and
    ~100 MB at a million files)."""
    a, _dirs = vault_with_external(tmp_path)
    vaults.track(a)
    run(a.files.put([_tree(tmp_path / "t", 300)]))
    (tmp_path / "t" / "f0007.txt").rename(tmp_path / "again")  # content already stored
    (tmp_path / "new").write_text("not stored yet\n")
    new_chunks = {}
    for name in ("again", "new"):

        def put(n: str = name) -> None:
            new_chunks[n] = run(a.files.put([tmp_path / n]))[0].new_chunks

        big = _big_reads(a, put, 100)  # the vault holds 300 files
        assert big == [], big
    assert new_chunks == {"again": 0, "new": 1}  # the stored chunk found, the new one stored
    for name, data in (("again", b"file 7\n"), ("new", b"not stored yet\n")):
        out = tmp_path / f"out-{name}"
        run(a.files.get(name, out))
        assert out.read_bytes() == data
