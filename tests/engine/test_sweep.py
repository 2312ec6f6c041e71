"""The orphan sweep (``engine.store.sweep``, docs/design.md "The orphan sweep"): vault
directories recovered from one phrase share local-folder providers; a share object no
catalog names is deleted only once every other device has written a record after seeing it
listed, so a loser's copy of a concurrent move goes and another device's put in progress
stays."""

from __future__ import annotations

import os
import random
import shutil
from pathlib import Path

import pytest

from ownvault.core.journal import Record
from ownvault.core.pack import new_pack_id
from ownvault.engine.store.gc import collect
from ownvault.engine.store.packwriter import PackWriter
from ownvault.engine.store.placement import Policy
from ownvault.engine.store.shares import data_share_name
from ownvault.engine.vault import Vault
from ownvault.errors import OwnvaultError

from .helpers import Vaults, run
from .test_journal_late_revoke_gc import _late
from .test_journalstore import folder_vault, obj, second_device


@pytest.fixture
def pair(tmp_path: Path, vaults: Vaults) -> tuple[Vault, Vault, list[Path]]:
    a, dirs = folder_vault(vaults, tmp_path, count=4)
    return a, second_device(vaults, a, tmp_path, dirs[0]), dirs


def _gc(v: Vault, *, dry_run: bool = False) -> dict[str, object]:
    async def go() -> dict[str, object]:
        if dry_run:
            await v.ctx.pull()
            return (await collect(v.ctx, dry_run=True, orphans=True)).to_json()
        async with v.ctx.write():
            return (await collect(v.ctx, orphans=True)).to_json()

    return run(go())


def _swept(got: dict[str, object]) -> tuple[int, int]:
    sweep = got["sweep"]
    assert isinstance(sweep, dict)
    return int(sweep["objects"]), int(sweep["waiting"])


def _read(v: Vault, name: str) -> bytes:
    async def go() -> bytes:
        return b"".join([p async for p in v.files.read(name)])

    return run(go())


def _clean(v: Vault) -> None:
    report = run(v.health.deep_check())
    assert report.shares_bad == 0 and report.healthy


def _orphan(folder: Path) -> Path:
    """A share object of a pack no device knows (a put killed before its record)."""
    path = obj(folder, data_share_name(new_pack_id(), 0))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(os.urandom(5_000))
    return path


def test_one_device_sweeps_an_orphan_in_one_run_and_dry_run_reports_it(
    tmp_path: Path, vaults: Vaults
) -> None:
    a, dirs = folder_vault(vaults, tmp_path, count=2)
    (tmp_path / "doc").write_bytes(random.Random(1).randbytes(50_000))
    run(a.files.put([tmp_path / "doc"]))
    orphan = _orphan(dirs[1])
    dry = _gc(a, dry_run=True)
    assert dry["sweep"] == {
        "dry_run": True,
        "objects": 1,
        "bytes": 5_000,
        "waiting": 0,
        "providers": [
            {"provider": "ext-1", "objects": 1, "bytes": 5_000, "waiting": 0, "waiting_bytes": 0}
        ],
    }
    assert orphan.exists()
    assert _swept(_gc(a)) == (1, 0)
    assert not orphan.exists()
    assert _read(a, "doc") == random.Random(1).randbytes(50_000)
    assert _swept(_gc(a)) == (0, 0) and a.catalog.sweep.marks() == []
    _clean(a)


def test_the_loser_of_a_concurrent_move_is_swept_once_both_devices_saw_the_listing(
    pair: tuple[Vault, Vault, list[Path]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both devices move share 0 of one pack without seeing each other's move, each
    copying it to another folder: the later clock wins on both, the loser's copy stays
    behind until A's sweep has listed it and B has written a record after seeing that."""
    a, b, dirs = pair
    data = random.Random(2).randbytes(100_000)
    (tmp_path / "doc").write_bytes(data)
    run(a.files.put([tmp_path / "doc"]))
    run(b.ctx.pull())
    pack = a.catalog.live_packs()[0]
    pack_id = a.catalog.pack_info(pack)[0]
    name = data_share_name(pack_id, 0)
    names = {p.id: p.name for p in a.catalog.providers()}
    start = next(s for s in a.catalog.shares_of(pack) if s.idx == 0)
    here = int(names[start.provider].split("-")[1])
    spots = [i for i in range(4) if i != here][:2]

    async def offline(*_args: object) -> list[Record]:
        return []

    def move(v: Vault, to: int) -> None:
        ids = {p.name: p.id for p in v.catalog.providers()}
        shutil.copyfile(obj(dirs[here], name), obj(dirs[to], name))
        vp = v.catalog.live_packs()[0]

        async def go() -> None:
            async with v.ctx.write():
                v.catalog.move_share(vp, 0, ids[f"ext-{to}"])

        with monkeypatch.context() as m:
            m.setattr(v.ctx.journal, "pull", offline)
            run(go())

    move(a, spots[0])
    move(b, spots[1])
    obj(dirs[here], name).unlink()  # the movers delete the old copy
    run(a.ctx.pull())
    run(b.ctx.pull())
    won = {names[s.provider] for s in a.catalog.shares_of(a.catalog.live_packs()[0]) if s.idx == 0}
    assert len(won) == 1
    winner = int(won.pop().split("-")[1])
    loser = obj(dirs[spots[1] if winner == spots[0] else spots[0]], name)
    assert loser.exists()
    # A lists it and marks it; B has not written since: it stays, reported as waiting.
    assert _swept(_gc(a)) == (0, 1)
    assert _swept(_gc(a, dry_run=True)) == (0, 1)
    assert loser.exists()
    # B's gc pulls A's record of the listing and writes its own: then A sweeps it.
    assert _swept(_gc(b)) == (0, 1)
    assert _swept(_gc(a)) == (1, 0)
    assert not loser.exists() and obj(dirs[winner], name).exists()
    assert _swept(_gc(b)) == (0, 0) and b.catalog.sweep.marks() == []
    for v in (a, b):
        assert _read(v, "doc") == data
        _clean(v)


def test_a_put_another_device_has_not_recorded_yet_is_not_swept(
    pair: tuple[Vault, Vault, list[Path]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """B's put has written its shares but no record (B is away before it could send it):
    A's sweep marks them and never deletes them while B has not written since; an orphan
    B had acknowledged goes in the same run. Once B's record comes, they are named."""
    a, b, dirs = pair
    orphan = _orphan(dirs[2])
    assert _swept(_gc(a)) == (0, 1)  # marked
    assert _swept(_gc(b)) == (0, 1)  # B writes a record after seeing A's listing

    async def refuse(*_args: object, **_kw: object) -> Record:
        raise OwnvaultError("offline")

    data = random.Random(3).randbytes(120_000)
    (tmp_path / "new").write_bytes(data)
    with monkeypatch.context() as m:
        m.setattr(b.ctx.journal, "append", refuse)
        run(b.files.put([tmp_path / "new"]))
        pack_id = b.catalog.pack_info(b.catalog.live_packs()[0])[0]
        b_shares = [
            obj(d, data_share_name(pack_id, s.idx))
            for s in b.catalog.shares_of(b.catalog.live_packs()[0])
            for d in dirs
            if obj(d, data_share_name(pack_id, s.idx)).exists()
        ]
        assert b_shares
        got = _gc(a)
        assert _swept(got) == (1, len(b_shares))
        assert not orphan.exists()
        assert all(p.exists() for p in b_shares)
        assert _swept(_gc(a)) == (0, len(b_shares))
        assert all(p.exists() for p in b_shares)
    # B is back: its next write block sends the put; A then holds it and sweeps nothing.
    assert _swept(_gc(b)) == (0, 0)
    assert _swept(_gc(a)) == (0, 0)
    assert all(p.exists() for p in b_shares) and a.catalog.sweep.marks() == []
    assert _read(a, "new") == data
    for v in (a, b):
        _clean(v)


def test_a_move_fails_over_rather_than_adopt_a_copy_no_row_names(
    tmp_path: Path, vaults: Vaults
) -> None:
    """An identical copy of a share already on the target is someone else's (maybe one a
    sweep is deleting): the move writes elsewhere and leaves it alone."""
    a, dirs = folder_vault(vaults, tmp_path, count=4)
    run(a.fleet.set_policy(Policy(1, 2)))
    (tmp_path / "doc").write_bytes(random.Random(4).randbytes(30_000))
    run(a.files.put([tmp_path / "doc"]))
    pack = a.catalog.live_packs()[0]
    pack_id = a.catalog.pack_info(pack)[0]
    name = data_share_name(pack_id, 0)
    ids = {p.name: p.id for p in a.catalog.providers()}
    held = {s.provider for s in a.catalog.shares_of(pack)}
    src = next(s.provider for s in a.catalog.shares_of(pack) if s.idx == 0)
    free = [i for i in range(4) if ids[f"ext-{i}"] not in held]
    src_dir = dirs[next(i for i in range(4) if ids[f"ext-{i}"] == src)]
    blob = obj(src_dir, name).read_bytes()
    copy = obj(dirs[free[0]], name)
    copy.parent.mkdir(parents=True, exist_ok=True)
    copy.write_bytes(blob)
    ctx = a.ctx
    writer = PackWriter(ctx.catalog, ctx.store, ctx.policy, ctx.candidates())
    others = [c for c in ctx.candidates() if c.id in held and c.id != src]

    async def go() -> int:
        async with ctx.write():
            return await writer.put_share(
                pack, 0, blob, ids[f"ext-{free[0]}"], others, name=name, recorded=src
            )

    placed = run(go())
    assert placed == ids[f"ext-{free[1]}"]
    assert obj(dirs[free[1]], name).read_bytes() == blob
    assert copy.exists()  # untouched: the sweep's to judge
    assert next(s.provider for s in a.catalog.shares_of(pack) if s.idx == 0) == placed


def test_a_late_revocation_does_not_hold_the_sweep_back_for_ever(
    tmp_path: Path, vaults: Vaults
) -> None:
    """A merged C's records after its cut-off before the revocation came (its vector
    keeps them); B refused them. B's sweep still goes once A has written after its
    listing."""

    def later(c: Vault, where: Path) -> None:
        (where / "f2").write_bytes(b"C's later put")
        run(c.files.put([where / "f2"]))

    s = _late(tmp_path, vaults, later)
    a, b = s.a, s.b
    run(a.ctx.pull())  # the revocation arrives late at A
    c_id = s.c.ctx.journal.device.id
    orphan = _orphan(s.dirs[0])
    # B also lists the shares of C's later put, which it refused: garbage to it too (A
    # undid that put; its pack waits for GC there).
    swept, waiting = _swept(_gc(b))
    assert swept == 0 and waiting == 1 + len(s.dirs)
    assert _gc(a)["packs_deleted"] == 1  # A's GC takes C's later put (B saw the revocation)
    assert a.catalog.journal.head(c_id).seq > s.cut  # A's vector names C's later records
    assert _swept(_gc(b)) == (1, 0)
    assert not orphan.exists()
    for v in (a, b):
        _clean(v)
        assert v.catalog.gc.candidates() == []
