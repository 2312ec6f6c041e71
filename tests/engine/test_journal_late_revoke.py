"""A revocation that arrives after the revoked device's later records were applied takes
them back out (``engine.store.journalrevoke``, docs/design.md "The merge model", rule 6):
three vault directories share local-folder providers; the device that applied the records
first ends up holding what the device that revoked holds."""

from __future__ import annotations

import random
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from ownvault.core.journal import Record
from ownvault.engine.store.journalpull import Pull
from ownvault.engine.vault import Vault
from ownvault.errors import DataUnavailableError

from .helpers import Vaults, run
from .test_journalstore import folder_vault, second_device


def _put(v: Vault, path: Path, data: bytes) -> None:
    path.write_bytes(data)
    run(v.files.put([path]))


def _view(v: Vault) -> list[tuple[str, list[str], list[tuple[int, int]]]]:
    """Each name: its tags and its versions (number, size)."""
    objects = run(v.files.ls()).objects  # type: ignore[union-attr]
    return [
        (o.name, sorted(o.tags), [(x.version, x.size) for x in run(v.files.versions(o.name))])
        for o in objects
    ]


def _read(v: Vault, name: str) -> bytes:
    async def go() -> bytes:
        return b"".join([p async for p in v.files.read(name)])

    return run(go())


def _pack_ids(v: Vault, name: str) -> set[bytes]:
    cat = v.catalog
    return {
        ch.pack_id
        for version in cat.versions(name)
        for e in cat.entries(version.id)
        if e.content is not None
        for ch in cat.content_chunks(e.content)
    }


def _records_after(dirs: list[Path], device: bytes, cut: int) -> list[Path]:
    """The files of ``device``'s records after seq ``cut`` on the folder providers."""
    found = [p for d in dirs for p in d.rglob(f"journal/{device.hex()}/*") if p.is_file()]
    return sorted(p for p in found if int(p.name, 16) > cut)


@dataclass
class Late:
    """A applied C's later records (f2 put, f1 removed, g tagged "late" and untagged
    "kept"); B revoked C without seeing them. The revocation has not reached A yet."""

    a: Vault
    b: Vault
    c: Vault
    f1: bytes
    cut: int
    f2_packs: set[bytes]
    revocation: int  # the seq of B's record that revokes C


def _late(tmp: Path, vaults: Vaults, before_revoke: Callable[[Vault, Vault], None]) -> Late:
    a, dirs = folder_vault(vaults, tmp, count=2)
    b = second_device(vaults, a, tmp, dirs[0])
    (tmp / "c").mkdir()
    c = second_device(vaults, a, tmp / "c", dirs[1])
    rnd = random.Random(16)
    f1 = rnd.randbytes(120_000)
    _put(a, tmp / "f1", f1)
    _put(a, tmp / "g", b"to be tagged")
    run(a.files.set_tags("g", add=["kept"]))
    for v in (b, c):
        run(v.ctx.pull())
    c_id = c.ctx.journal.device.id
    cut = c.catalog.journal.head(c_id).seq
    _put(c, tmp / "c" / "f2", rnd.randbytes(60_000))
    run(c.files.rm("f1"))
    run(c.files.set_tags("g", add=["late"], remove=["kept"]))
    _put(c, tmp / "c" / "f3", b"put and removed after the cut")
    run(c.files.rm("f3"))
    run(a.ctx.pull())
    assert _view(a) == [("f2", [], [(1, 60_000)]), ("g", ["late"], [(1, 12)])]
    f2_packs = _pack_ids(a, "f2")
    # B revokes C while C's later records are not listed to it (they come back after).
    late = _records_after(dirs, c_id, cut)
    assert len(late) >= 3
    moved = []
    for i, p in enumerate(late):
        to = tmp / "hidden" / str(i)
        to.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(p, to)
        moved.append((to, p))
    before_revoke(a, b)
    b_before = b.catalog.journal.head(b.ctx.journal.device.id).seq
    assert run(b.keyring.revoke_device(c_id.hex()[:12])).last_seq == cut
    # The revocation is B's first record after it (a settings record of the key rotation
    # may follow it).
    revocation = b_before + 1
    for to, p in moved:
        shutil.move(to, p)
    return Late(a, b, c, f1, cut, f2_packs, revocation)


def _nothing(_a: Vault, _b: Vault) -> None:
    pass


def test_a_late_revocation_takes_the_revoked_devices_later_records_back_out(
    tmp_path: Path, vaults: Vaults
) -> None:
    s = _late(tmp_path, vaults, _nothing)
    a, b = s.a, s.b
    warnings: list[str] = []
    a.warn = warnings.append
    run(a.ctx.pull())  # the revocation arrives late at A
    assert any("revoked after" in w for w in warnings), warnings
    assert not [w for w in warnings if "no record makes" in w], warnings
    run(b.ctx.pull())  # C's later records arrive after the revocation at B: refused
    want = [("f1", [], [(1, len(s.f1))]), ("g", ["kept"], [(1, 12)])]
    assert _view(b) == want
    assert _view(a) == want
    assert _read(a, "f1") == s.f1
    c_id = s.c.ctx.journal.device.id
    assert a.catalog.journal.revoked() == {c_id: s.cut}
    assert a.catalog.late.pending() == {}
    assert a.catalog.jns.outbox() == []  # the undo is not this device's to send
    # f2's packs wait for every device to see the revocation; f1's are referenced again.
    b_id = b.ctx.journal.device.id
    revocation = s.revocation
    cands = {c.pack_id: c for c in a.catalog.gc.candidates()}
    assert set(cands) >= s.f2_packs
    assert not set(cands) & _pack_ids(a, "f1")
    assert all(not c.unresolved for c in cands.values())
    assert all((b_id, revocation) in cands[p].waits for p in s.f2_packs)
    # The revoked device's own catalog keeps what it wrote (it is not the vault's any more).
    run(s.c.ctx.pull())
    assert [o.name for o in run(s.c.files.ls()).objects] == ["f2", "g"]  # type: ignore[union-attr]
    assert s.c.catalog.late.pending() == {}


def test_a_removal_a_valid_device_made_too_stays_and_names_are_renumbered(
    tmp_path: Path, vaults: Vaults, monkeypatch: pytest.MonkeyPatch
) -> None:
    def b_removes_f1(_a: Vault, b: Vault) -> None:
        run(b.files.rm("f1"))  # the version C removed

    s = _late(tmp_path, vaults, b_removes_f1)
    a, b = s.a, s.b

    async def offline(*_args: object) -> list[Record]:
        return []

    with monkeypatch.context() as m:  # A writes a second f2 before the revocation reaches it
        m.setattr(a.ctx.journal, "pull", offline)
        _put(a, tmp_path / "f2", b"A's own version after C's")
    assert [v for _n, _t, v in _view(a)] == [[(1, 60_000), (2, 25)], [(1, 12)]]
    run(a.ctx.pull())
    run(b.ctx.pull())
    want = [("f2", [], [(1, 25)]), ("g", ["kept"], [(1, 12)])]
    assert _view(a) == want
    assert _view(b) == want
    assert _read(a, "f2") == b"A's own version after C's"


def test_an_undo_whose_read_fails_is_done_by_the_next_pull(
    tmp_path: Path, vaults: Vaults, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = _late(tmp_path, vaults, _nothing)
    a = s.a

    async def unreachable(_self: Pull) -> list[object]:
        raise DataUnavailableError("journal: no provider could be listed")

    with monkeypatch.context() as m:
        m.setattr(Pull, "history", unreachable)
        run(a.ctx.pull())  # warned; the revocation is held, its undo noted
    c_id = s.c.ctx.journal.device.id
    assert set(a.catalog.late.pending()) == {c_id}
    assert [o.name for o in run(a.files.ls()).objects] == ["f2", "g"]  # type: ignore[union-attr]
    run(a.ctx.pull())
    assert a.catalog.late.pending() == {}
    assert _view(a) == [("f1", [], [(1, len(s.f1))]), ("g", ["kept"], [(1, 12)])]
