"""A put whose rows are over what one journal record carries: its rows go as rows objects
written before the record (``core.rowsobjects``, ``engine.store.rowsobjects``), read and
checked by the other devices' pulls, refused when a provider serves them damaged."""

from __future__ import annotations

import random
import shutil
import textwrap
from pathlib import Path

import pytest

from ownvault.core import rowsobjects
from ownvault.core.journalops import Put
from ownvault.core.rowsobjects import decode_ref, is_ref
from ownvault.engine.keys.recovery import recover_vault
from ownvault.engine.store.journalrows import decode_rows, encode_rows
from ownvault.engine.store.rowsobjects import ROWS_PREFIX
from ownvault.engine.store.snapshots import snapshot_seqs
from ownvault.engine.vault import Vault
from ownvault.errors import FormatError, JournalError
from ownvault.providers.base import ObjectInfo

from ..server.nodes import NodeCluster
from .helpers import FAST_KDF, PASS, Vaults, run
from .test_journal_crash import kill_at
from .test_journal_late_revoke import _late, _nothing
from .test_journal_late_revoke import _read as late_read
from .test_journal_late_revoke import _view as late_view
from .test_journalrows import _many_small_files
from .test_journalstore import folder_vault, second_device

INLINE = 8 * 1024  # the bounds lowered so that a tree of a few hundred files crosses them
PART = 16 * 1024
FILES = 400


@pytest.fixture
def small_bounds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rowsobjects, "INLINE_ROWS", INLINE)
    monkeypatch.setattr(rowsobjects, "PART_SIZE", PART)


def _tree(where: Path, files: int = FILES) -> Path:
    rnd = random.Random(7)
    for i in range(files):
        d = where / f"d{i % 7}"
        d.mkdir(parents=True, exist_ok=True)
        (d / f"f{i:05d}.txt").write_bytes(rnd.randbytes(rnd.randrange(1, 64)))
    return where


def _listing(v: Vault, name: str) -> tuple[object, ...]:
    return (run(v.files.ls()), run(v.files.ls(name)), run(v.files.ls(f"{name}/d3")))


def _objects(folder: Path) -> list[Path]:
    return sorted((folder / "objects" / ROWS_PREFIX).rglob("*-*-*"))


def _big_put(v: Vault) -> Put:
    own = v.ctx.journal.device.id
    puts = [
        op
        for r in run(v.ctx.journal.history())
        if r.device == own
        for op in r.ops
        if isinstance(op, Put) and is_ref(op.rows)
    ]
    assert len(puts) == 1
    return puts[0]


def _same_tree(a: Vault, b: Vault, name: str, tmp: Path) -> None:
    assert _listing(b, name) == _listing(a, name)
    run(a.files.get(name, tmp / "from-a"))
    run(b.files.get(name, tmp / "from-b"))
    got = {p.relative_to(tmp / "from-b"): p.read_bytes() for p in (tmp / "from-b").rglob("*.txt")}
    want = {p.relative_to(tmp / "from-a"): p.read_bytes() for p in (tmp / "from-a").rglob("*.txt")}
    assert got == want and len(got) == FILES


def test_a_put_over_the_record_bound_reaches_another_device(
    vaults: Vaults, tmp_path: Path, small_bounds: None
) -> None:
    a, dirs = folder_vault(vaults, tmp_path)
    b = second_device(vaults, a, tmp_path, dirs[0])
    run(a.files.put([_tree(tmp_path / "home")], name="home"))
    put = _big_put(a)
    ref = decode_ref(put.rows)
    assert ref.total > INLINE and len(ref.parts) >= 3
    for d in dirs:  # every object on every provider, as records are
        assert [p.stat().st_size for p in _objects(d)] == [p.size for p in ref.parts]
    run(b.ctx.pull())
    _same_tree(a, b, "home", tmp_path)
    assert b.ctx.journal.spool.files == {}  # the pull's temporary files are gone


def test_recovery_reads_a_put_stored_as_rows_objects(
    vaults: Vaults, tmp_path: Path, small_bounds: None
) -> None:
    a, dirs = folder_vault(vaults, tmp_path)
    snapshots = run(snapshot_seqs(a.ctx.store.providers[1]))
    run(a.files.put([_tree(tmp_path / "home")], name="home"))
    assert run(snapshot_seqs(a.ctx.store.providers[1])) == snapshots  # only in the journal
    run(recover_vault(tmp_path / "r", a.keys.entropy, PASS, [dirs[1].as_uri()], kdf=FAST_KDF))
    r = vaults.open(tmp_path / "r")
    _same_tree(a, r, "home", tmp_path)


def _damage(kind: str, objects: list[Path]) -> None:
    first, second = objects[0], objects[1]
    data = first.read_bytes()
    if kind == "too big":
        first.write_bytes(data + b"\x00" * 4096)
    elif kind == "truncated":
        first.write_bytes(data[:-1])
    elif kind == "swapped":
        first.write_bytes(second.read_bytes())
    else:  # a bit flipped: another hash
        first.write_bytes(data[:100] + bytes([data[100] ^ 1]) + data[101:])


@pytest.mark.parametrize("kind", ["too big", "truncated", "swapped", "wrong hash"])
def test_a_damaged_rows_object_is_refused_naming_device_seq_and_provider(
    vaults: Vaults, tmp_path: Path, small_bounds: None, kind: str
) -> None:
    a, dirs = folder_vault(vaults, tmp_path)
    b = second_device(vaults, a, tmp_path, dirs[0])
    c = second_device(vaults, a, tmp_path / "c", dirs[1])
    run(a.files.put([_tree(tmp_path / "home")], name="home"))
    own = a.ctx.journal.device.id.hex()
    _damage(kind, _objects(dirs[0]))  # one bad copy: the next provider's is read
    run(b.ctx.journal.pull(b.ctx._apply))  # noqa: SLF001
    faults = b.ctx.journal.faults
    assert [(f.device, f.provider) for f in faults] == [(own, "ext-0")], faults
    want = {
        "too big": "over the",
        "truncated": "truncated",
        "swapped": "hash",
        "wrong hash": "hash",
    }
    assert want[kind] in faults[0].message and faults[0].seq is not None
    _same_tree(a, b, "home", tmp_path)

    for d in dirs[1:]:  # no good copy anywhere: the pull is refused, nothing applied
        _damage(kind, _objects(d))
    with pytest.raises(JournalError) as refused:
        run(c.ctx.journal.pull(c.ctx._apply))  # noqa: SLF001
    assert refused.value.device == own and refused.value.provider in {"ext-0", "ext-1", "ext-2"}
    assert refused.value.seq == faults[0].seq
    assert c.catalog.version_counts() == {}


CHILD = textwrap.dedent(
    """
    import asyncio, pathlib, sys, time
    from ownvault.core import rowsobjects
    from ownvault.engine.vault import Vault

    rowsobjects.INLINE_ROWS, rowsobjects.PART_SIZE = 8 * 1024, 16 * 1024
    path, point = sys.argv[1], sys.argv[2]
    vault = Vault.open(path, sys.argv[3])
    js = vault.ctx.journal
    written = js._write_copies

    rows_written = []

    async def stop_before_record(targets, name, data):
        if name.startswith("journal/rows/"):
            rows_written.append(name)
        elif rows_written:
            print("stopped", flush=True)  # the rows objects are written, not the record
            time.sleep(600)
        return await written(targets, name, data)

    async def main():
        await vault.ctx.pull()
        js._write_copies = stop_before_record
        await vault.files.put([pathlib.Path(point)], name="home")

    asyncio.run(main())
    """
)


def test_a_kill_between_the_rows_objects_and_the_record_loses_nothing(
    vaults: Vaults, tmp_path: Path
) -> None:
    a, dirs = folder_vault(vaults, tmp_path)
    b = second_device(vaults, a, tmp_path, dirs[0])
    path = a.path
    vaults.close(a)
    tree = _tree(tmp_path / "home")
    kill_at(path, str(tree), CHILD)
    assert all(_objects(d) for d in dirs)  # written before the record
    run(b.ctx.pull())
    assert b.catalog.version_counts() == {}  # no record names them: nothing half seen
    a = vaults.open(path)
    assert a.catalog.version_counts() == {"home": 1}  # committed here before the kill
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(rowsobjects, "INLINE_ROWS", INLINE)
        mp.setattr(rowsobjects, "PART_SIZE", PART)
        warned: list[str] = []
        a.warn = warned.append
        assert run(a.ctx.send_journal()) == 1, warned  # the next write block sends it, whole
        run(b.ctx.pull())
        _same_tree(a, b, "home", tmp_path)
        parts = len(decode_ref(_big_put(a).rows).parts)
    assert [len(_objects(d)) for d in dirs] == [parts] * len(dirs)  # the killed send's: gone


def test_the_real_bounds_cut_rows_over_a_record_into_objects_that_open() -> None:
    """Under the real bounds: rows over ``INLINE_ROWS`` (16 MiB, the old refusal) are cut
    into ``PART_SIZE`` objects that seal, name and open back to the same bytes; and the
    figure of the new bound, 1,000,000 small files at twice these rows' size per file
    (real rows hold CIDs and longer names), is under ``MAX_BIG_ROWS``."""
    files = 180_000
    rows = _many_small_files(files)
    blob = encode_rows(rows)
    assert len(blob) > rowsobjects.INLINE_ROWS
    assert 2 * len(blob) / files * 1_000_000 < rowsobjects.MAX_BIG_ROWS
    key, device = bytes(range(32)), bytes(16)
    cut = rowsobjects.pieces(blob)
    assert len(cut) == 2 and len(cut[0]) == rowsobjects.PART_SIZE
    sealed = [
        rowsobjects.seal_part(key, p, device=device, seq=9, index=0, part=i, count=len(cut))
        for i, p in enumerate(cut)
    ]
    ref = decode_ref(
        rowsobjects.encode_ref(rowsobjects.RowsRef(len(blob), tuple(n for _d, n in sealed)))
    )
    opened = [
        rowsobjects.open_part(key, d, ref, device=device, seq=9, index=0, part=i)
        for i, (d, _n) in enumerate(sealed)
    ]
    assert b"".join(opened) == blob
    del opened, cut
    assert decode_rows(blob) == rows


def test_rows_references_are_strict() -> None:
    """The reference a put carries: bounded part count, sizes and total; exact length."""
    part = rowsobjects.RowsPart(rowsobjects.object_size(rowsobjects.PART_SIZE), bytes(32))
    two = rowsobjects.RowsRef(2 * rowsobjects.PART_SIZE, (part, part))
    good = rowsobjects.encode_ref(two)
    assert decode_ref(good) == two
    bad = {
        "not a rows reference": b"OVRW\x01" + good[5:],
        "1 to 32 objects": good[:13] + b"\x00\x00" + good[15:],
        "is not": good + b"\x00",
        "add up": rowsobjects.encode_ref(rowsobjects.RowsRef(two.total + 1, two.parts)),
        "out of range": rowsobjects.encode_ref(
            rowsobjects.RowsRef(
                two.total + 1, (part, rowsobjects.RowsPart(part.size + 1, bytes(32)))
            )
        ),
        "is not over": rowsobjects.encode_ref(
            rowsobjects.RowsRef(10, (rowsobjects.RowsPart(rowsobjects.object_size(10), bytes(32)),))
        ),
        "1 to 32 objects ": rowsobjects.encode_ref(
            rowsobjects.RowsRef(33 * rowsobjects.PART_SIZE, (part,) * 33)
        ),
    }
    for what, data in bad.items():
        with pytest.raises(FormatError, match=what.strip()):
            decode_ref(data)


def test_a_late_revocation_restores_a_put_stored_as_rows_objects(
    tmp_path: Path, vaults: Vaults, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The undo of a late revocation puts back a version the revoked device removed from
    its ``put``'s rows objects (every put's rows are objects here: the bound is lowered)."""
    monkeypatch.setattr(rowsobjects, "INLINE_ROWS", 64)
    monkeypatch.setattr(rowsobjects, "PART_SIZE", 256)
    s = _late(tmp_path, vaults, _nothing)
    a = s.a
    f1_puts = [
        op
        for r in run(a.ctx.journal.history())
        for op in r.ops
        if isinstance(op, Put) and op.name == "f1"
    ]
    assert f1_puts and all(is_ref(op.rows) for op in f1_puts)
    warnings: list[str] = []
    a.warn = warnings.append
    run(a.ctx.pull())  # the revocation arrives late at A: C's rm of f1 is undone
    assert not [w for w in warnings if "not restored" in w], warnings
    assert late_view(a) == [("f1", [], [(1, len(s.f1))]), ("g", ["kept"], [(1, 12)])]
    assert late_read(a, "f1") == s.f1
    assert a.ctx.journal.spool.files == {}


def test_repair_copies_a_large_puts_rows_objects_with_its_record(
    vaults: Vaults, tmp_path: Path, small_bounds: None
) -> None:
    """A provider restored from a copy taken before a large put lacks its record and its
    rows objects: repair copies both, so a recovery from that provider alone reads it."""
    a, dirs = folder_vault(vaults, tmp_path)
    shutil.copytree(dirs[1], tmp_path / "ext-1-old")
    run(a.files.put([_tree(tmp_path / "home")], name="home"))
    shutil.rmtree(dirs[1])
    shutil.copytree(tmp_path / "ext-1-old", dirs[1])
    assert _objects(dirs[1]) == []
    report = run(a.health.repair())
    assert report.journal_records_copied == 1 and not report.failures
    parts = decode_ref(_big_put(a).rows).parts
    assert [p.stat().st_size for p in _objects(dirs[1])] == [p.size for p in parts]
    run(recover_vault(tmp_path / "r", a.keys.entropy, PASS, [dirs[1].as_uri()], kdf=FAST_KDF))
    _same_tree(a, vaults.open(tmp_path / "r"), "home", tmp_path)


def test_rows_objects_count_towards_the_next_snapshot(
    vaults: Vaults, tmp_path: Path, small_bounds: None
) -> None:
    """A recovery from the next snapshot skips the large put's rows objects too: they count
    in the journal since the last snapshot (``VaultContext.snapshot_due``) like its record."""
    a, dirs = folder_vault(vaults, tmp_path)
    b = second_device(vaults, a, tmp_path, dirs[0])
    before = int(b.catalog.meta("journal_since_snapshot") or "0")
    device = a.ctx.journal.device.id
    head = a.catalog.journal.head(device).seq
    run(a.files.put([_tree(tmp_path / "home")], name="home"))
    run(b.ctx.pull())
    records = [r for r in run(a.ctx.journal.history()) if r.device == device and r.seq > head]
    objects = sum(p.size for p in decode_ref(_big_put(a).rows).parts)
    grew = int(b.catalog.meta("journal_since_snapshot") or "0") - before
    assert grew == sum(len(r.raw) for r in records) + objects


@pytest.mark.slow
def test_a_large_put_reaches_another_device_over_storage_nodes(
    vaults: Vaults, tmp_path: Path, small_bounds: None
) -> None:
    """The rows objects on real storage-node processes (loopback)."""
    with NodeCluster(tmp_path / "nodes") as cluster:
        nodes = cluster.start_many(3)
        a = vaults.create(tmp_path / "a", providers=0, k=1, n=3)
        for i, node in enumerate(nodes):
            run(a.fleet.add_provider(f"node-{i}", node.url))
        run(a.snapshot())
        run(recover_vault(tmp_path / "b", a.keys.entropy, PASS, [nodes[0].url], kdf=FAST_KDF))
        b = vaults.open(tmp_path / "b")
        run(a.files.put([_tree(tmp_path / "home")], name="home"))
        run(b.ctx.pull())
        _same_tree(a, b, "home", tmp_path)
        pids = sorted(a.ctx.store.providers)
        names = {o.name for o in _listed(a, ROWS_PREFIX, pids[0])}
        assert len(names) == len(decode_ref(_big_put(a).rows).parts)
        for pid in pids:  # every node holds every object
            assert {o.name for o in _listed(a, ROWS_PREFIX, pid)} == names


def _listed(v: Vault, prefix: str, pid: int) -> list[ObjectInfo]:
    async def go() -> list[ObjectInfo]:
        return [o async for o in v.ctx.store.providers[pid].list(prefix)]

    return run(go())


def test_rows_objects_no_provider_serves_are_pulled_once_one_does(
    vaults: Vaults, tmp_path: Path, small_bounds: None
) -> None:
    """No provider holds the objects (moved away): the pull is a warning, nothing moves,
    and the next pull, once they are back, applies the put whole."""
    a, dirs = folder_vault(vaults, tmp_path)
    b = second_device(vaults, a, tmp_path, dirs[0])
    run(a.files.put([_tree(tmp_path / "home")], name="home"))
    away = tmp_path / "away"
    shutil.move(dirs[0] / "objects" / ROWS_PREFIX, away)
    for d in dirs[1:]:
        shutil.rmtree(d / "objects" / ROWS_PREFIX)
    device = a.ctx.journal.device.id
    head = b.catalog.journal.head(device)
    warnings: list[str] = []
    b.warn = warnings.append
    assert run(b.ctx.pull()) == 0
    assert any("no reachable provider could serve it" in w for w in warnings), warnings
    assert b.catalog.journal.head(device) == head and b.catalog.version_counts() == {}
    shutil.move(away, dirs[0] / "objects" / ROWS_PREFIX)
    assert run(b.ctx.pull()) >= 1
    _same_tree(a, b, "home", tmp_path)
