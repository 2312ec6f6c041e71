"""Garbage collection across devices (``engine.store.gc``, docs/design.md "GC in the
engine"): vault directories recovered from one phrase share local-folder providers; a pack
of a removed version is deleted only once every active device has acknowledged the removal,
a revoked device no longer holds GC back, and a put racing the GC keeps its data."""

from __future__ import annotations

import random
import shutil
import sqlite3
from pathlib import Path

import pytest

from ownvault.core.journal import Record
from ownvault.engine.store.catalog import SCHEMA_VERSION, Catalog
from ownvault.engine.store.gc import collect
from ownvault.engine.store.shares import data_share_name
from ownvault.engine.vault import Vault
from ownvault.errors import OwnvaultError

from .helpers import Vaults, run
from .test_golden import GOLDEN
from .test_journalstore import folder_vault, obj, second_device


def _put(v: Vault, path: Path, data: bytes, name: str | None = None) -> int:
    path.write_bytes(data)
    return run(v.files.put([path], name=name))[0].new_bytes


def _shares(v: Vault, dirs: list[Path], name: str) -> list[Path]:
    """The share files of every pack of ``name``'s versions, as the catalog places them."""
    cat = v.catalog
    out: list[Path] = []
    for version in cat.versions(name):
        for e in cat.entries(version.id):
            if e.content is None:
                continue
            for ch in cat.content_chunks(e.content):
                for s in cat.shares_of(ch.pack):
                    out += [obj(d, data_share_name(ch.pack_id, s.idx)) for d in dirs]
    return sorted({p for p in out if p.exists()})


def _cat(v: Vault, name: str) -> bytes:
    async def go() -> bytes:
        return b"".join([p async for p in v.files.read(name)])

    return run(go())


def _gc(v: Vault, *, dry_run: bool = False) -> dict[str, object]:
    async def go() -> dict[str, object]:
        if dry_run:
            await v.ctx.pull()
            return (await collect(v.ctx, dry_run=True)).to_json()
        async with v.ctx.write():
            return (await collect(v.ctx)).to_json()

    return run(go())


def _offline(v: Vault, monkeypatch: pytest.MonkeyPatch) -> None:
    """``v`` neither reads nor writes the journal (its device is away)."""

    async def nothing(*_args: object, **_kw: object) -> list[Record]:
        return []

    async def refuse(*_args: object, **_kw: object) -> Record:
        raise OwnvaultError("offline")

    monkeypatch.setattr(v.ctx.journal, "pull", nothing)
    monkeypatch.setattr(v.ctx.journal, "append", refuse)


@pytest.fixture
def pair(tmp_path: Path, vaults: Vaults) -> tuple[Vault, Vault, list[Path]]:
    a, dirs = folder_vault(vaults, tmp_path, count=2)
    return a, second_device(vaults, a, tmp_path, dirs[0]), dirs


def test_a_pack_goes_only_once_every_device_has_acknowledged_the_rm(
    pair: tuple[Vault, Vault, list[Path]], tmp_path: Path
) -> None:
    a, b, dirs = pair
    _put(a, tmp_path / "doc", random.Random(1).randbytes(300_000))
    run(b.ctx.pull())
    shares = _shares(a, dirs, "doc")
    assert shares
    # rm on A while B has not written since: nothing is deleted, B is named.
    assert run(a.files.rm("doc")).packs_deleted == 0
    assert all(p.exists() for p in shares)
    assert _gc(a)["packs_deleted"] == 0
    dry = _gc(a, dry_run=True)
    b_id = b.ctx.journal.device.id.hex()
    assert [(h["device"], h["packs"]) for h in dry["held_back"]] == [(b_id, 1)]  # type: ignore[index,union-attr]
    assert dry["held_back"][0]["bytes"] >= 300_000  # type: ignore[index]
    assert all(p.exists() for p in shares)
    # B pulls and writes its acknowledgment; A's next gc deletes the pack everywhere.
    got = _gc(b)
    assert got["acknowledged"] is True and got["packs_deleted"] == 0
    got = _gc(a)
    assert got["packs_deleted"] == 1 and got["held_back"] == []
    assert not any(p.exists() for p in shares)
    # B's catalog lets the pack go too (its shares are gone already): A's record of the
    # deletion (a drop_packs op) took it out on B's pull, before B's own gc; both check clean.
    assert _gc(b)["packs_deleted"] == 0 and b.catalog.live_packs() == []
    for v in (a, b):
        assert v.catalog.gc.candidates() == []
        report = run(v.health.deep_check())
        assert report.shares_bad == 0 and report.healthy


def test_a_device_that_never_comes_back_holds_gc_back_until_revoked(
    tmp_path: Path, vaults: Vaults
) -> None:
    a, dirs = folder_vault(vaults, tmp_path, count=2)
    b = second_device(vaults, a, tmp_path, dirs[0])
    c_dir = tmp_path / "c"
    c_dir.mkdir()
    c = second_device(vaults, a, c_dir, dirs[1])
    _put(a, tmp_path / "old", random.Random(2).randbytes(200_000))
    _put(a, tmp_path / "keep", random.Random(3).randbytes(50_000))
    run(b.ctx.pull())
    run(c.ctx.pull())
    shares = _shares(a, dirs, "old")
    c_id, c_name = c.ctx.journal.device.id.hex(), c.ctx.journal.device.name
    vaults.close(c)  # C never comes back
    run(a.files.rm("old"))
    _gc(b)
    got = _gc(a)
    assert got["packs_deleted"] == 0
    held = got["held_back"]
    assert [(h["device"], h["name"]) for h in held] == [(c_id, c_name)]  # type: ignore[union-attr,index]
    assert all(p.exists() for p in shares)
    run(a.keyring.revoke_device(c_id[:12]))
    got = _gc(a)
    assert got["packs_deleted"] >= 1 and got["held_back"] == []
    assert not any(p.exists() for p in shares)
    assert _cat(a, "keep") == (tmp_path / "keep").read_bytes()
    run(b.ctx.pull())
    assert _cat(b, "keep") == (tmp_path / "keep").read_bytes()


def test_a_put_that_did_not_see_the_rm_protects_the_pack_it_reuses(
    pair: tuple[Vault, Vault, list[Path]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b, dirs = pair
    data = random.Random(4).randbytes(250_000)
    _put(a, tmp_path / "doc", data)
    run(b.ctx.pull())
    shares = _shares(a, dirs, "doc")
    run(a.files.rm("doc"))
    # B, away, puts the same bytes: it deduplicates onto the pack A removed, and its
    # record is not written yet (a put in progress as far as A can tell).
    with monkeypatch.context() as m:
        _offline(b, m)
        assert _put(b, tmp_path / "copy", data) == 0
    assert _gc(a)["packs_deleted"] == 0
    # B comes back: its put and its acknowledgment arrive together; A's gc keeps the pack.
    _gc(b)
    assert _gc(a)["packs_deleted"] == 0
    assert all(p.exists() for p in shares)
    assert _cat(a, "copy") == _cat(b, "copy") == data
    # Once B's version is removed too and acknowledged, the pack goes.
    run(b.files.rm("copy"))
    _gc(a)
    by_b = _gc(b)["packs_deleted"]  # B may hold every acknowledgment first
    # One of them deletes it; the other drops it from its catalog on pull (drop_packs).
    assert by_b + _gc(a)["packs_deleted"] == 1
    assert not any(p.exists() for p in shares)


def test_a_device_that_saw_the_rm_stores_the_chunks_again_and_survives_the_gc(
    pair: tuple[Vault, Vault, list[Path]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b, dirs = pair
    data = random.Random(5).randbytes(250_000)
    _put(a, tmp_path / "doc", data)
    run(b.ctx.pull())
    shares = _shares(a, dirs, "doc")
    run(a.files.rm("doc"))
    _gc(b)  # B saw the rm and acknowledged it
    # B puts the same bytes, its record delayed: it must not deduplicate onto the removed
    # pack, which A is now free to delete.
    with monkeypatch.context() as m:
        monkeypatch_append = b.ctx.journal.append

        async def refuse(*_args: object, **_kw: object) -> Record:
            raise OwnvaultError("offline")

        m.setattr(b.ctx.journal, "append", refuse)
        assert _put(b, tmp_path / "copy", data) == len(data)
        assert _gc(a)["packs_deleted"] == 1
        assert not any(p.exists() for p in shares)
        assert _cat(b, "copy") == data
    assert b.ctx.journal.append == monkeypatch_append
    run(b.files.set_tags("copy", add=["back"]))  # B sends its put
    run(a.ctx.pull())
    assert _cat(a, "copy") == data
    for v in (a, b):
        report = run(v.health.deep_check())
        assert report.shares_bad == 0 and report.shares_verified > 0 and report.healthy


def test_packs_of_a_version_put_and_removed_before_it_was_sent_go_at_once(
    pair: tuple[Vault, Vault, list[Path]], tmp_path: Path
) -> None:
    a, _b, dirs = pair
    (tmp_path / "tmp").write_bytes(random.Random(6).randbytes(100_000))

    async def put_and_rm() -> int:
        async with a.ctx.write():
            await a.files.put([tmp_path / "tmp"])
            shares.extend(_shares(a, dirs, "tmp"))
            return (await a.files.rm("tmp")).packs_deleted

    shares: list[Path] = []
    assert run(put_and_rm()) == 1
    assert shares and not any(p.exists() for p in shares)


def test_the_golden_vault_migrates_to_the_gc_tables(tmp_path: Path, vaults: Vaults) -> None:
    """Schema 12 on a catalog of schema 1: the tables and triggers are there and a vault
    of one device still frees a removed version's packs at once."""
    shutil.copytree(GOLDEN / "vault-v1", tmp_path / "g")
    v = vaults.open(tmp_path / "g", "golden")
    assert v.catalog.meta("schema_version") == str(SCHEMA_VERSION) and SCHEMA_VERSION >= 12
    assert v.catalog.gc.candidates() == [] and v.catalog.gc.acks() == {}
    assert run(v.files.rm("note.txt")).packs_deleted >= 1
    assert v.catalog.gc.candidates() == []


def test_a_device_holding_the_collected_pack_reads_the_chunks_from_where_the_writer_put_them(
    tmp_path: Path, vaults: Vaults, monkeypatch: pytest.MonkeyPatch
) -> None:
    """C still lists the removed pack (its GC has not run) when B's put of the same bytes,
    stored again, arrives after A collected the pack: C takes B's place for the chunks."""
    a, dirs = folder_vault(vaults, tmp_path, count=2)
    b = second_device(vaults, a, tmp_path, dirs[0])
    c_dir = tmp_path / "c"
    c_dir.mkdir()
    c = second_device(vaults, a, c_dir, dirs[1])
    data = random.Random(7).randbytes(200_000)
    _put(a, tmp_path / "doc", data)
    for v in (b, c):
        run(v.ctx.pull())
    shares = _shares(a, dirs, "doc")
    run(a.files.rm("doc"))
    _gc(b)
    _gc(c)
    with monkeypatch.context() as m:
        _offline(b, m)
        assert _put(b, tmp_path / "copy", data) == len(data)
    assert _gc(a)["packs_deleted"] == 1
    assert not any(p.exists() for p in shares)
    run(b.files.set_tags("copy", add=["sent"]))
    run(c.ctx.pull())
    assert _cat(c, "copy") == data
    report = run(c.health.deep_check())
    assert report.shares_bad == 0 and report.healthy


def test_a_device_joining_during_an_rm_of_a_single_device_vault_is_counted(
    tmp_path: Path, vaults: Vaults, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A's rm starts while A is alone (its block's pull does not show B yet); B, recovered
    meanwhile, holds the version: the rm sends its record and pulls again before it
    deletes, sees B, and waits for B instead of deleting the pack under B's put."""
    a, dirs = folder_vault(vaults, tmp_path, count=2)
    data = random.Random(8).randbytes(200_000)
    _put(a, tmp_path / "doc", data)
    shares = _shares(a, dirs, "doc")
    b = second_device(vaults, a, tmp_path, dirs[0])
    pull = a.ctx.journal.pull
    calls: list[int] = []

    async def late(*args: object, **kw: object) -> list[Record]:
        calls.append(1)
        if len(calls) == 1:
            return []  # the block's pull: B's certificate not on the providers yet
        return await pull(*args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(a.ctx.journal, "pull", late)
    assert run(a.files.rm("doc")).packs_deleted == 0
    assert len(a.catalog.journal.devices()) == 2
    assert all(p.exists() for p in shares)
    monkeypatch.setattr(a.ctx.journal, "pull", pull)
    with monkeypatch.context() as m:  # B, in the middle of its first put, has not seen the rm
        _offline(b, m)
        assert _put(b, tmp_path / "copy", data) == 0  # it deduplicates onto the removed pack
    assert _gc(a)["packs_deleted"] == 0
    _gc(b)
    _gc(a)
    assert all(p.exists() for p in shares)
    assert _cat(a, "copy") == _cat(b, "copy") == data


@pytest.mark.parametrize("unsent", [0, 2])
def test_a_catalog_copied_from_a_snapshot_waits_for_the_writers_removals(
    pair: tuple[Vault, Vault, list[Path]], tmp_path: Path, unsent: int
) -> None:
    """The writer's removals not resolved when its snapshot was taken (its record seq is
    not known to the copy, nor which chain is the writer's) wait for every chain's head
    held, plus one record per op it had not sent."""
    a, _b, _dirs = pair
    _put(a, tmp_path / "x", b"x")
    conn = a.catalog.conn
    conn.execute("INSERT INTO gc_removed(pack_id, local) VALUES (x'ab', 1)")
    for _ in range(unsent):
        conn.execute("INSERT INTO journal_out(op, version) SELECT 'put', MAX(id) FROM versions")
    heads = {d: h.seq for d, h in a.catalog.journal.heads().items() if h.seq > 0}
    copy = Catalog.from_image(tmp_path / "copy.db", a.catalog.image())
    try:
        rows = copy.conn.execute(
            "SELECT pack_id, device, seq FROM gc_removed ORDER BY device"
        ).fetchall()
        assert rows == [(b"\xab", d, s + unsent) for d, s in sorted(heads.items())]
        assert len(heads) == 2 and copy.jns.outbox() == []
    finally:
        copy.close()


def test_packs_an_older_catalog_kept_wait_for_every_device_then_go(
    pair: tuple[Vault, Vault, list[Path]], tmp_path: Path, vaults: Vaults
) -> None:
    """A catalog of schema 11 in a vault of two devices kept the packs of what it removed
    (nothing collected them); schema 12 makes them wait for every chain's head it held."""
    a, b, dirs = pair
    _put(a, tmp_path / "doc", random.Random(9).randbytes(150_000))
    run(b.ctx.pull())
    shares = _shares(a, dirs, "doc")
    path = a.path
    vaults.close(a)
    conn = sqlite3.connect(path / "catalog.db")
    conn.execute("PRAGMA foreign_keys = ON")
    with conn:  # back to schema 11, and the rm of that version made there
        for trigger in ("gc_version_removed", "gc_unsent_removed", "gc_pack_dropped"):
            conn.execute(f"DROP TRIGGER {trigger}")
        conn.execute("DROP TABLE gc_removed")
        conn.execute("DROP TABLE journal_acks")
        conn.execute("UPDATE meta SET value = '11' WHERE key = 'schema_version'")
        conn.execute("DELETE FROM versions")
        conn.execute("DELETE FROM objects")
        conn.execute("DELETE FROM contents")
    conn.close()
    a = vaults.open(path)
    assert len(a.catalog.gc.candidates()) == 1
    assert _gc(a)["packs_deleted"] == 0
    assert all(p.exists() for p in shares)
    _gc(b)
    assert _gc(a)["packs_deleted"] == 1
    assert not any(p.exists() for p in shares)
