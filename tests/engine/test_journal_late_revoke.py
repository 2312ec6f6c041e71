"""A revocation that arrives after the revoked device's later records were applied takes
them back out (``engine.store.journalrevoke``, docs/design.md "The merge model", rule 6):
three vault directories share local-folder providers; the device that applied the records
first ends up holding what the device that revoked holds."""

from __future__ import annotations

import random
import shutil
from pathlib import Path

from ownvault.engine.vault import Vault

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


def _records_after(dirs: list[Path], device: bytes, cut: int) -> list[Path]:
    """The files of ``device``'s records after seq ``cut`` on the folder providers."""
    found = [p for d in dirs for p in d.rglob(f"journal/{device.hex()}/*") if p.is_file()]
    return sorted(p for p in found if int(p.name, 16) > cut)


def test_a_late_revocation_takes_the_revoked_devices_later_records_back_out(
    tmp_path: Path, vaults: Vaults
) -> None:
    a, dirs = folder_vault(vaults, tmp_path, count=2)
    b = second_device(vaults, a, tmp_path, dirs[0])
    c_base = tmp_path / "c"
    c_base.mkdir()
    c = second_device(vaults, a, c_base, dirs[1])
    rnd = random.Random(16)
    f1 = rnd.randbytes(120_000)
    _put(a, tmp_path / "f1", f1)
    _put(a, tmp_path / "g", b"to be tagged")
    run(a.files.set_tags("g", add=["kept"]))
    for v in (b, c):
        run(v.ctx.pull())
    c_id = c.ctx.journal.device.id
    cut = c.catalog.journal.head(c_id).seq
    # C's later records: a put, an rm of A's version, a tag and an untag.
    _put(c, c_base / "f2", rnd.randbytes(60_000))
    run(c.files.rm("f1"))
    run(c.files.set_tags("g", add=["late"], remove=["kept"]))
    run(a.ctx.pull())  # A applies them
    assert [o.name for o in run(a.files.ls()).objects] == ["f2", "g"]  # type: ignore[union-attr]
    # B revokes C while C's later records are not listed to it (they come back after).
    late = _records_after(dirs, c_id, cut)
    assert len(late) >= 3
    hidden = tmp_path / "hidden"
    moved = []
    for i, p in enumerate(late):
        to = hidden / str(i)
        to.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(p, to)
        moved.append((to, p))
    got = run(b.keyring.revoke_device(c_id.hex()[:12]))
    assert got.last_seq == cut
    for to, p in moved:
        shutil.move(to, p)
    run(a.ctx.pull())  # the revocation arrives late at A
    run(b.ctx.pull())  # C's later records arrive after the revocation at B: refused
    want = [("f1", [], [(1, len(f1))]), ("g", ["kept"], [(1, 12)])]
    assert _view(b) == want
    assert _view(a) == _view(b)
    assert _read(a, "f1") == f1
    assert a.catalog.journal.revoked() == {c_id: cut}
