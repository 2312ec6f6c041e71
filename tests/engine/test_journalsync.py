"""Namespace ops captured as the catalog changes, appended by ``ctx.write()`` as this
device's journal records on the providers, and applied by the other devices' pulls
(``engine.store.journalsync``, ``catalog.jns``): vault directories that share the providers
converge to what ``core.merge`` says of the same records, whatever raced."""

from __future__ import annotations

import random
import shutil
from collections.abc import Sequence
from pathlib import Path

import pytest

from ownvault.core.journal import Record
from ownvault.core.journalops import Dot, Put, Remove, Setting, Tag, Untag
from ownvault.core.keys import phrase_to_entropy
from ownvault.core.merge import EMPTY, live_versions, merge, tags
from ownvault.engine.keys.recovery import recover_vault
from ownvault.engine.store import journalrows, journalstore
from ownvault.engine.store.catalog.drive import rename_objects
from ownvault.engine.store.journalsync import apply_records, next_batch
from ownvault.engine.vault import Vault
from ownvault.errors import UsageError

from .external import vault_with_external
from .helpers import FAST_KDF, Vaults, run


def _put(v: Vault, path: Path, data: bytes, name: str | None = None) -> None:
    path.write_bytes(data)
    run(v.files.put([path], name=name))


def _view(v: Vault) -> tuple[object, ...]:
    listing = run(v.files.ls())
    names = [o.name for o in listing.objects]  # type: ignore[union-attr]
    return (listing, {n: run(v.files.versions(n)) for n in names})


def _cache_dots(v: Vault) -> dict[str, list[Dot]]:
    out: dict[str, list[Dot]] = {}
    for name in sorted(v.catalog.version_counts()):
        for row in v.catalog.versions(name):
            found = v.catalog.jns.dot_of(row.id)
            assert found is not None, (name, row.number)
            out.setdefault(name, []).append(found[0])
    return out


def _history(v: Vault) -> list[Record]:
    return run(v.ctx.journal.history())


def _merged(v: Vault) -> tuple[dict[str, list[Dot]], dict[str, frozenset[str]]]:
    state = merge(EMPTY, _history(v))
    return {n: [x.dot for x in vs] for n, vs in live_versions(state).items()}, tags(state)


def _ops(records: Sequence[Record], device: bytes) -> list[str]:
    return [type(op).__name__ for r in records if r.device == device for op in r.ops]


def _cat(v: Vault, name: str, number: int) -> bytes:
    async def go() -> bytes:
        return b"".join([p async for p in v.files.read(name, version=number)])

    return run(go())


def _recover(a: Vault, where: Path, vaults: Vaults) -> Vault:
    ext = [p.url for p in a.catalog.providers() if p.name.startswith("ext-")]
    run(recover_vault(where, phrase_to_entropy(a.keys.phrase), "pw", ext, kdf=FAST_KDF))
    return vaults.open(where, "pw")


@pytest.fixture
def two(tmp_path: Path, vaults: Vaults) -> tuple[Vault, Vault, Path]:
    """Vault A with external folders, and B recovered from its phrase: two devices."""
    a, _dirs = vault_with_external(tmp_path)
    vaults.track(a)
    return a, _recover(a, tmp_path / "b", vaults), tmp_path


def test_each_write_block_appends_its_ops_as_one_record(two: tuple[Vault, Vault, Path]) -> None:
    a, _b, tmp = two
    _put(a, tmp / "x", b"one")
    run(a.files.set_tags("x", add=["work", "red"]))

    (tmp / "y").write_bytes(b"gone before it was sent")

    async def put_and_rm() -> None:  # one block: the put never leaves the device
        async with a.ctx.write():
            await a.files.put([tmp / "y"])
            await a.files.rm("y")

    run(put_and_rm())
    run(a.files.set_tags("x", remove=["red"]))
    device = a.ctx.journal.device.id
    # The vault's setup (its providers and policy) went out first, as settings.
    records = [
        r
        for r in _history(a)
        if r.device == device and not all(isinstance(op, Setting) for op in r.ops)
    ]
    assert [[type(op).__name__ for op in r.ops] for r in records] == [
        ["DeviceAdd"],
        ["Put"],
        ["Tag", "Tag"],
        ["Untag"],
    ]
    put = records[1].ops[0]
    put_seq, tag_seq = records[1].seq, records[2].seq
    assert isinstance(put, Put) and put.name == "x" and put.size == 3
    assert records[2].ops == (Tag("x", "work"), Tag("x", "red"))
    assert records[3].ops == (Untag((Dot(device, tag_seq, 1),)),)
    assert a.catalog.jns.outbox() == []
    assert _cache_dots(a) == {"x": [Dot(device, put_seq, 0)]}
    run(a.files.rm("x"))
    last = _history(a)[-1]
    assert last.ops == (Remove((Dot(device, put_seq, 0),)), Untag((Dot(device, tag_seq, 0),)))


def test_two_devices_converge_and_a_put_racing_an_rm_survives(
    two: tuple[Vault, Vault, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b, tmp = two
    rnd = random.Random(4)
    _put(a, tmp / "doc", rnd.randbytes(300_000))
    run(b.ctx.pull())
    assert _view(b) == _view(a)

    # A stores a second version; B, offline for its pull, removes the one version it saw.
    _put(a, tmp / "doc", rnd.randbytes(200_000))

    async def offline(*_args: object) -> list[Record]:
        return []

    with monkeypatch.context() as m:
        m.setattr(b.ctx.journal, "pull", offline)
        run(b.files.rm("doc"))
    run(b.ctx.pull())
    run(a.ctx.pull())
    want, _tags = _merged(a)
    a_dev = a.ctx.journal.device.id
    assert len(want["doc"]) == 1 and want["doc"][0].device == a_dev  # the put B never saw
    assert _cache_dots(a) == _cache_dots(b) == want
    assert _view(a) == _view(b)
    out = tmp / "out.bin"
    run(b.files.get("doc", out))
    assert out.read_bytes() == (tmp / "doc").read_bytes()


def test_two_devices_committing_in_the_same_millisecond_both_keep_their_version(
    two: tuple[Vault, Vault, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b, tmp = two
    run(b.ctx.pull())  # B enrolled, both clocks start here

    class Frozen:
        @staticmethod
        def time() -> float:
            return 4_000_000_000.0  # later than any clock reading so far

    monkeypatch.setattr(journalstore, "time", Frozen)
    offline_b = b.ctx.journal.pull

    async def offline(*_args: object) -> list[Record]:
        return []

    monkeypatch.setattr(b.ctx.journal, "pull", offline)  # neither sees the other's put
    _put(a, tmp / "a-copy", b"from a", name="same")
    _put(b, tmp / "b-copy", b"from b", name="same")
    monkeypatch.setattr(b.ctx.journal, "pull", offline_b)
    run(a.ctx.pull())
    run(b.ctx.pull())
    want, _tags = _merged(a)
    assert len(want["same"]) == 2
    heads = {r.device: r.hlc for r in _history(a) if any(isinstance(o, Put) for o in r.ops)}
    assert len(set(heads.values())) == 1  # one millisecond, one counter
    assert want["same"][0].device < want["same"][1].device  # the tie goes by device id
    assert _cache_dots(a) == _cache_dots(b) == want
    first = b"from a" if want["same"][0].device == a.ctx.journal.device.id else b"from b"
    for v in (a, b):
        got = [_cat(v, "same", n) for n in (1, 2)]
        assert got[0] == first and sorted(got) == [b"from a", b"from b"]


def test_a_crash_between_the_append_and_its_settle_sends_nothing_twice(
    two: tuple[Vault, Vault, Path],
) -> None:
    a, b, tmp = two
    run(a.ctx.pull())  # enrolled; its setup went out as settings records
    journal = a.ctx.journal
    device = journal.device
    seq = a.catalog.journal.head(device.id).seq + 1
    tmp.joinpath("f").write_bytes(b"f")

    async def unsent_put() -> None:  # a put whose block ends before its record is made
        async with a.ctx.lock.hold():
            await a.files.put([tmp / "f"])

    run(unsent_put())
    ops = next_batch(a.catalog, seq)
    run(journal.append(device, journal.body(ops)))  # written, then the process dies
    assert run(a.ctx.send_journal()) == 0  # settled from the head: not sent again
    assert _cache_dots(a) == {"f": [Dot(device.id, seq, 0)]}
    tmp.joinpath("g").write_bytes(b"g")
    run(unsent_put())
    next_batch(a.catalog, seq + 1)  # stamped, then the append never happened
    assert run(a.ctx.send_journal()) == 1
    assert [o for o in _ops(_history(a), device.id) if o != "Setting"] == [
        "DeviceAdd",
        "Put",
        "Put",
    ]
    run(b.ctx.pull())
    assert _view(b) == _view(a)


def test_a_removal_arriving_before_its_put_keeps_the_put_out(
    two: tuple[Vault, Vault, Path], vaults: Vaults
) -> None:
    a, b, tmp = two
    c = _recover(a, tmp / "c", vaults)
    _put(a, tmp / "h", b"h")
    run(b.ctx.pull())
    run(b.files.rm("h"))
    history = _history(a)
    a_dev, b_dev = a.ctx.journal.device.id, b.ctx.journal.device.id
    puts = [r for r in history if r.device == a_dev]
    removal = [r for r in history if r.device == b_dev]
    with c.catalog.transaction():  # a provider served B's chain before A's
        apply_records(c.catalog, removal)
        apply_records(c.catalog, puts)
    assert c.catalog.version_counts() == {}
    run(c.ctx.pull())
    run(a.ctx.pull())
    assert c.catalog.version_counts() == a.catalog.version_counts() == {}
    assert _merged(a)[0] == {}


def test_a_catalog_recovered_from_a_snapshot_does_not_send_the_writers_ops(
    two: tuple[Vault, Vault, Path], vaults: Vaults
) -> None:
    a, _b, tmp = two
    tmp.joinpath("unsent").write_bytes(b"u")

    async def unsent_put() -> None:
        async with a.ctx.lock.hold():
            await a.files.put([tmp / "unsent"])

    run(unsent_put())
    assert [r.op for r in a.catalog.jns.outbox()] == ["put"]
    run(a.snapshot())  # its image holds A's outbox row; the block's end then sends it
    d = _recover(a, tmp / "d", vaults)
    assert d.catalog.jns.outbox() == []
    run(a.ctx.send_journal())
    run(d.ctx.pull())  # A's put arrives and is adopted, not inserted twice
    assert _view(d) == _view(a)


def test_a_snapshot_era_vault_sends_its_versions_once_as_genesis_records(
    tmp_path: Path, vaults: Vaults, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The golden vault (schema 1) queues a put of each version and a tag of each tag on
    its first open; a copy of it (a device recovered from the same catalog) adopts those
    puts' dots instead of a second copy of each version."""
    golden = Path(__file__).parent.parent / "fixtures" / "golden" / "vault-v1"
    shutil.copytree(golden, tmp_path / "a")
    for folder in (tmp_path / "a" / "providers").iterdir():
        (folder / "tmp").mkdir(exist_ok=True)  # empty in git, so not in the fixture
    a = vaults.open(tmp_path / "a", "golden")
    outbox = a.catalog.jns.outbox()
    puts = sum(a.catalog.version_counts().values())
    assert [r.op for r in outbox] == ["put"] * puts + ["tag"] * (len(outbox) - puts)
    assert len(outbox) > puts  # the golden vault has a tag
    monkeypatch.setattr("ownvault.engine.store.journalsync.MAX_OPS", 1)  # batches of one
    run(a.ctx.send_journal())
    device = a.ctx.journal.device.id
    mine = [r for r in _history(a) if r.device == device]
    assert [len(r.ops) for r in mine] == [1] * (len(outbox) + 1)  # certificate, then one each
    assert run(a.ctx.send_journal()) == 0  # once
    assert _cache_dots(a) == _merged(a)[0]
    assert _merged(a)[1] == {
        n: frozenset(a.catalog.tags(a.catalog.object_id(n) or 0)) for n in _merged(a)[1]
    }


def test_a_rename_and_a_rename_over_a_name_are_journaled(
    two: tuple[Vault, Vault, Path],
) -> None:
    a, b, tmp = two
    _put(a, tmp / "old", b"old")
    _put(a, tmp / "other", b"other")
    run(a.files.set_tags("old", add=["keep"]))
    run(b.ctx.pull())

    async def renames() -> None:
        async with a.ctx.write():
            rename_objects(a.catalog, [("old", "new")])
            rename_objects(a.catalog, [("other", "new2")], replacing="new")

    run(renames())
    last = _history(a)[-1]
    assert {type(op).__name__ for op in last.ops} == {"Remove", "Put", "Untag"}
    run(b.ctx.pull())
    assert _view(b) == _view(a)
    assert [o.name for o in run(b.files.ls()).objects] == ["new2"]  # type: ignore[union-attr]
    want_versions, want_tags = _merged(a)
    assert _cache_dots(b) == _cache_dots(a) == want_versions
    assert want_tags == {}  # the replaced name's tag went with it


def _catalog_bytes(dirs: Sequence[Path]) -> int:
    """Bytes of catalog (snapshots and journal) the provider folders hold."""
    return sum(
        f.stat().st_size
        for d in dirs
        for sub in ("catalog", "journal")
        for f in (d / "objects" / sub).rglob("*")
        if f.is_file()
    )


def test_a_one_file_put_in_a_big_vault_writes_a_record_not_a_snapshot(
    tmp_path: Path, vaults: Vaults
) -> None:
    a, dirs = vault_with_external(tmp_path)
    vaults.track(a)
    for part in range(4):  # 8,000 files in 4 names: one version's rows carry ~5,000
        src = tmp_path / f"many-{part}"
        src.mkdir()
        for i in range(2000):
            (src / f"f{i:05d}.txt").write_text(f"file {part} {i}\n")
        run(a.files.put([src]))
    snapshot = run(a.snapshot())
    assert snapshot.bytes > 1024 * 1024  # what each change wrote before the journal
    before = _catalog_bytes(dirs)
    (tmp_path / "one.txt").write_text("one more\n")
    run(a.files.put([tmp_path / "one.txt"]))
    grew = _catalog_bytes(dirs) - before
    assert 0 < grew < 64 * 1024, grew  # one record, a copy on each of 4 folders
    print(f"snapshot {snapshot.bytes} bytes; a one-file put wrote {grew} bytes of catalog")


def test_a_tree_past_the_rows_bound_is_refused_and_nothing_is_kept(
    tmp_path: Path, vaults: Vaults, monkeypatch: pytest.MonkeyPatch
) -> None:
    a, _dirs = vault_with_external(tmp_path)
    vaults.track(a)
    # The real bound (512 MiB of rows objects, over 1,000,000 files) is lowered so that a
    # small tree crosses it.
    monkeypatch.setattr(journalrows, "MAX_BIG_ROWS", 64 * 1024)
    src = tmp_path / "huge"
    src.mkdir()
    for i in range(1000):
        (src / f"f{i:05d}.txt").write_text(f"file {i}\n")
    with pytest.raises(UsageError, match="too many entries for one version"):
        run(a.files.put([src]))
    assert a.catalog.version_counts() == {}
    assert a.catalog.jns.outbox() == []


def test_a_put_with_rows_that_do_not_decode_is_left_out_with_a_warning(
    two: tuple[Vault, Vault, Path],
) -> None:
    a, b, tmp = two
    journal = a.ctx.journal
    run(a.ctx.pull())
    run(journal.append(journal.device, journal.body([Put("bad", "file", 5, None, (), b"")])))
    _put(a, tmp / "good", b"good")
    warnings: list[str] = []
    b.warn = warnings.append
    run(b.ctx.pull())
    assert [o.name for o in run(b.files.ls()).objects] == ["good"]  # type: ignore[union-attr]
    assert any("put of bad" in w and "left out" in w for w in warnings), warnings


def test_a_settings_change_after_another_devices_newer_snapshot_is_merged_not_refused(
    two: tuple[Vault, Vault, Path],
) -> None:
    """A wrote a newer settings snapshot; B's settings change is no longer refused (exit 9,
    before settings were journal ops): it goes out in B's record, and both devices hold
    both changes."""
    a, b, tmp = two
    run(a.sharing.set_tag_policy("health", never_share=True))  # A's settings snapshot
    run(b.sharing.set_tag_policy("work", never_share=True))  # no error
    assert b.catalog.jns.settings_changed() == set()  # nothing owed: it is in B's record
    _put(b, tmp / "after", b"namespace changes go through the journal as before")
    run(a.ctx.pull())
    assert [o.name for o in run(a.files.ls()).objects] == ["after"]  # type: ignore[union-attr]
    for v in (a, b):
        assert [p.tag for p in v.sharing.tag_policies()] == ["health", "work"]
