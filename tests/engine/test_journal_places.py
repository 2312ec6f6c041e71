"""Pack places through the catalog journal (``engine.store.journalplaces``): shares moved
by a rebalance or a provider drain, packs rewritten by a repack, and packs deleted on one
device reach the other device's cache as ``places``, ``chunks`` and ``drop_packs`` ops, so
it reads the new places and never the old ones."""

from __future__ import annotations

import random
import shutil
from pathlib import Path

import pytest

from ownvault.core.journal import Record
from ownvault.core.journalops import (
    DropPacks,
    Hlc,
    MoveChunks,
    Places,
    SharePlace,
)
from ownvault.core.keys import phrase_to_entropy
from ownvault.engine.keys.recovery import recover_vault
from ownvault.engine.store.repack import rewrite_packs
from ownvault.engine.store.shares import Problem
from ownvault.engine.vault import Vault

from .external import vault_with_external
from .helpers import FAST_KDF, Vaults, run


def _recover(a: Vault, where: Path, vaults: Vaults) -> Vault:
    ext = [p.url for p in a.catalog.providers() if p.name.startswith("ext-")]
    run(recover_vault(where, phrase_to_entropy(a.keys.phrase), "pw", ext, kdf=FAST_KDF))
    return vaults.open(where, "pw")


@pytest.fixture
def two(tmp_path: Path, vaults: Vaults) -> tuple[Vault, Vault, Path, list[Path]]:
    a, dirs = vault_with_external(tmp_path)
    vaults.track(a)
    return a, _recover(a, tmp_path / "b", vaults), tmp_path, dirs


def _places(v: Vault) -> dict[tuple[str, int], str]:
    """Every live pack's shares: (pack id hex, index) -> provider name."""
    names = {p.id: p.name for p in v.catalog.providers(include_removed=True)}
    out = {}
    for pack in v.catalog.live_packs():
        pack_id = v.catalog.pack_info(pack)[0].hex()
        for s in v.catalog.shares_of(pack):
            out[(pack_id, s.idx)] = names[s.provider]
    return out


def _chunks(v: Vault) -> dict[str, tuple[str, int, int]]:
    rows = v.catalog.conn.execute(
        "SELECT c.chunk_id, p.pack_id, c.offset, c.length FROM chunks c "
        "JOIN packs p ON p.id = c.pack"
    ).fetchall()
    return {bytes(r[0]).hex(): (bytes(r[1]).hex(), r[2], r[3]) for r in rows}


def _get(v: Vault, name: str) -> tuple[bytes, list[Problem]]:
    problems: list[Problem] = []
    v.ctx.hooks.on_problem = problems.append

    async def go() -> bytes:
        return b"".join([p async for p in v.files.read(name)])

    try:
        return run(go()), problems
    finally:
        v.ctx.hooks.on_problem = None


def _own_records(v: Vault) -> list[Record]:
    device = v.ctx.journal.device.id
    return [r for r in run(v.ctx.journal.history()) if r.device == device]


def history_of(records: list[Record], v: Vault) -> list[Record]:
    return [r for r in records if r.device == v.ctx.journal.device.id]


def test_shares_moved_by_a_drain_reach_the_other_device_and_it_reads_no_old_place(
    two: tuple[Vault, Vault, Path, list[Path]],
) -> None:
    a, b, tmp, dirs = two
    data = random.Random(1).randbytes(400_000)
    (tmp / "doc").write_bytes(data)
    run(a.files.put([tmp / "doc"]))
    run(b.ctx.pull())
    before = _places(b)
    assert before == _places(a) and "ext-0" in before.values()

    run(a.fleet.remove_provider("ext-0"))  # every share on ext-0 moves elsewhere
    moved = _places(a)
    assert "ext-0" not in moved.values()
    ops = [op for r in _own_records(a) for op in r.ops if isinstance(op, Places)]
    assert ops and all(isinstance(s, SharePlace) for op in ops for s in op.shares)

    shutil.rmtree(dirs[0])  # the old places are gone
    run(b.ctx.pull())
    assert _places(b) == moved
    got, problems = _get(b, "doc")
    assert got == data
    # No read of a share where it no longer is (A's own folders, inside A's vault
    # directory, are out of B's reach: their shares fail as unavailable, as before).
    assert [p for p in problems if p.provider == "ext-0"] == []


def test_a_repack_on_one_device_moves_the_chunks_and_drops_the_old_pack_on_the_other(
    two: tuple[Vault, Vault, Path, list[Path]],
) -> None:
    a, b, tmp, dirs = two
    rnd = random.Random(2)
    data = rnd.randbytes(300_000)
    (tmp / "doc").write_bytes(data)
    run(a.files.put([tmp / "doc"]))
    run(b.ctx.pull())
    old_packs = {a.catalog.pack_info(p)[0] for p in a.catalog.live_packs()}

    async def repack() -> None:
        async with a.ctx.write():
            await rewrite_packs(
                a.ctx, set(a.catalog.live_packs()), lambda _c: "keep", reason="test"
            )

    run(repack())
    new_packs = {a.catalog.pack_info(p)[0] for p in a.catalog.live_packs()}
    assert new_packs and not new_packs & old_packs
    kinds = [type(op) for r in _own_records(a)[-1:] for op in r.ops]
    assert Places in kinds and MoveChunks in kinds and DropPacks in kinds

    for d in dirs:  # nothing of the old packs is left on the providers
        for f in (d / "objects").rglob("*"):
            assert not any(p.hex() in f.name for p in old_packs), f
    run(b.ctx.pull())
    assert {b.catalog.pack_info(p)[0] for p in b.catalog.live_packs()} == new_packs
    assert _chunks(b) == _chunks(a)
    assert _places(b) == _places(a)
    got, problems = _get(b, "doc")
    assert got == data
    assert [p for p in problems if not p.provider.startswith("local-")] == []


def test_concurrent_moves_of_one_share_the_later_clock_wins_on_both_devices(
    two: tuple[Vault, Vault, Path, list[Path]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both devices move share 0 of one pack without seeing each other's move: on each, the
    record with the later (HLC, device) wins, whichever arrives first; never an error."""
    a, b, tmp, _dirs = two
    (tmp / "doc").write_bytes(random.Random(3).randbytes(100_000))
    run(a.files.put([tmp / "doc"]))
    run(b.ctx.pull())

    async def offline(*_args: object) -> list[Record]:
        return []

    def move(v: Vault, provider: str) -> None:
        ids = {p.name: p.id for p in v.catalog.providers()}
        pack = v.catalog.live_packs()[0]

        async def go() -> None:
            async with v.ctx.write():
                v.catalog.move_share(pack, 0, ids[provider])

        with monkeypatch.context() as m:
            m.setattr(v.ctx.journal, "pull", offline)
            run(go())

    move(a, "ext-2")
    move(b, "ext-3")
    history = run(a.ctx.journal.history())  # A reaches every chain (B does not reach A's first)
    ra = history_of(history, a)[-1]
    rb = history_of(history, b)[-1]
    assert any(isinstance(op, Places) for op in ra.ops)
    assert any(isinstance(op, Places) for op in rb.ops)
    later = max((ra.hlc, ra.device, "ext-2"), (rb.hlc, rb.device, "ext-3"))[2]
    run(a.ctx.pull())
    run(b.ctx.pull())
    key = (a.catalog.pack_info(a.catalog.live_packs()[0])[0].hex(), 0)
    assert _places(a)[key] == _places(b)[key] == later
    assert _places(a) == _places(b)
    # An older write of that share arriving later changes nothing.
    with a.catalog.transaction():
        assert not a.catalog.jplaces.wins("share", f"{key[0]}:0", Hlc(0, 0), bytes(16))
