"""Late revocations meeting GC and crypto-shredding (``engine.store.journalrevoke``,
docs/design.md "The merge model", rule 6): the revoked device's later put whose packs are
GC candidates, and its later ``forget``; afterwards both remaining devices hold the same
names and check clean."""

from __future__ import annotations

import random
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ownvault.engine.store.gc import collect
from ownvault.engine.vault import Vault

from .helpers import Vaults, run
from .test_journal_late_revoke import _pack_ids, _put, _read, _records_after, _view
from .test_journalstore import folder_vault, second_device


@dataclass
class Setup:
    a: Vault
    b: Vault
    c: Vault
    dirs: list[Path]
    f1: bytes
    cut: int


def _late(
    tmp: Path,
    vaults: Vaults,
    later: Callable[[Vault, Path], None],
    before_revoke: Callable[[Vault], None] = lambda _a: None,
) -> Setup:
    """A, B and C hold f1 and g; C then does ``later``, which A applies; B revokes C
    without seeing it (its records hidden meanwhile). The revocation has not reached A."""
    a, dirs = folder_vault(vaults, tmp, count=2)
    b = second_device(vaults, a, tmp, dirs[0])
    (tmp / "c").mkdir()
    c = second_device(vaults, a, tmp / "c", dirs[1])
    f1 = random.Random(5).randbytes(120_000)
    _put(a, tmp / "f1", f1)
    _put(a, tmp / "g", b"kept")
    for v in (b, c):
        run(v.ctx.pull())
    c_id = c.ctx.journal.device.id
    cut = c.catalog.journal.head(c_id).seq
    later(c, tmp / "c")
    run(a.ctx.pull())
    before_revoke(a)
    hidden = []
    for i, p in enumerate(_records_after(dirs, c_id, cut)):
        to = tmp / "hidden" / str(i)
        to.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(p, to)
        hidden.append((to, p))
    assert hidden
    assert run(b.keyring.revoke_device(c_id.hex()[:12])).last_seq == cut
    for to, p in hidden:
        shutil.move(to, p)
    return Setup(a, b, c, dirs, f1, cut)


def _gc(v: Vault) -> dict[str, object]:
    async def go() -> dict[str, object]:
        async with v.ctx.write():
            return (await collect(v.ctx)).to_json()

    return run(go())


def _packs(v: Vault) -> set[bytes]:
    return {v.catalog.pack_info(p)[0] for p in v.catalog.live_packs()}


def _clean(v: Vault) -> None:
    report = run(v.health.deep_check())
    assert report.shares_bad == 0 and report.healthy, report


def _stored(dirs: list[Path], packs: set[bytes]) -> list[Path]:
    return [p for d in dirs for pack in packs for p in (d / "objects").rglob(f"*{pack.hex()}*")]


def test_a_late_revocation_of_a_put_whose_packs_are_gc_candidates_leaves_both_equal(
    tmp_path: Path, vaults: Vaults
) -> None:
    """C, after its cut-off, puts f2 and removes f1 and f2 again: on A, f1's and f2's packs
    are GC candidates, waiting for C's later records to be acknowledged. The late
    revocation brings f1 back (its packs referenced again) and keeps f2 out; f2's packs
    then wait for the revocation's record instead (no device holding it acknowledges C's
    later records) and go, f1's never."""
    f2_packs: set[bytes] = set()

    def later(c: Vault, where: Path) -> None:
        _put(c, where / "f2", random.Random(6).randbytes(70_000))
        f2_packs.update(_pack_ids(c, "f2"))
        run(c.files.rm("f1"))
        run(c.files.rm("f2"))

    def candidates(a: Vault) -> None:  # A writes no record: that would raise the cut-off
        assert f2_packs <= {c.pack_id for c in a.catalog.gc.candidates()}

    s = _late(tmp_path, vaults, later, candidates)
    a, b = s.a, s.b
    run(a.ctx.pull())  # the revocation arrives late at A
    want = [("f1", [], [(1, len(s.f1))]), ("g", [], [(1, 4)])]
    assert _view(a) == want
    f1_packs = _pack_ids(a, "f1")
    assert not f1_packs & {c.pack_id for c in a.catalog.gc.candidates()}
    for _ in range(2):
        for v in (b, a):
            _gc(v)
    assert _view(b) == want
    assert not _stored(s.dirs, f2_packs)  # collected: no device's state names them
    assert all(_stored(s.dirs, {p}) for p in f1_packs)
    for v in (a, b):
        assert v.catalog.gc.candidates() == []
        assert _read(v, "f1") == s.f1
        _clean(v)


def test_a_late_revocation_of_a_forget_leaves_both_devices_equal_and_clean(
    tmp_path: Path, vaults: Vaults
) -> None:
    """C, after its cut-off, crypto-shreds f1 (its shares deleted everywhere). The late
    revocation cannot bring destroyed data back: A keeps f1 out, and B, which refused C's
    records, learns from A that f1's data is gone; both hold the same names and check
    clean."""

    def later(c: Vault, _where: Path) -> None:
        run(c.keyring.forget("f1"))

    s = _late(tmp_path, vaults, later)
    a, b = s.a, s.b
    assert [n for n, _t, _v in _view(a)] == ["g"]
    warnings: list[str] = []
    a.warn = warnings.append
    run(a.ctx.pull())  # the revocation arrives late at A
    assert any("stay forgotten" in w for w in warnings), warnings
    for _ in range(2):
        for v in (b, a):
            run(v.ctx.pull())
            _gc(v)
    want = [("g", [], [(1, 4)])]
    assert _view(a) == want
    assert _view(b) == want
    for v in (a, b):
        _clean(v)
    # B's copy of f1's pack waits for a record of A after its forget (A no longer holds
    # that pack, so it owes no acknowledgment of its own): A's next change is one.
    assert a.catalog.gc.candidates() == []
    run(a.files.set_tags("g", add=["later"]))
    run(b.ctx.pull())
    _gc(b)
    assert b.catalog.gc.candidates() == [] and _packs(b) == _packs(a)
    for v in (a, b):
        _clean(v)
