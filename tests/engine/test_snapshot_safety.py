"""Catalog snapshots follow the placement policy (failure domains included), and recovery
falls back to older snapshots and warns about newer or stale ones (issue 14)."""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

import pytest

from ownvault.core.keys import phrase_to_entropy
from ownvault.core.snapshot import decode_locator, locator_name
from ownvault.engine.keys.recovery import recover_vault
from ownvault.engine.store.placement import THIS_MACHINE
from ownvault.errors import DataUnavailableError
from ownvault.providers.local import LocalProvider

from .helpers import FAST_KDF, Vaults, run

NEW = "new passphrase"


def test_every_snapshot_keeps_k_shares_off_this_machine(vaults: Vaults, tmp_path: Path) -> None:
    vault = vaults.create(tmp_path / "v")  # the default: six embedded folders, 3-of-6
    remote = []
    for i in range(3):
        d = tmp_path / f"usb-{i}"
        run(vault.fleet.add_provider(f"usb-{i}", d.as_uri(), domain=f"usb-{i}"))
        remote.append(d)
    zone = {
        r.name: c.zone
        for r in vault.catalog.providers()
        for c in vault.candidates()
        if c.id == r.id
    }
    assert zone["local-1"] == THIS_MACHINE
    provider = LocalProvider(remote[0])
    seqs = []
    for i in range(6):  # several snapshots: the old rotation put 0..3 shares off this machine
        (tmp_path / f"f{i}.txt").write_text(f"file {i}\n" * 100)
        run(vault.files.put([tmp_path / f"f{i}.txt"]))
        run(vault.snapshot())  # a put writes a journal record; snapshots are checkpoints
        seq = int(vault.catalog.meta("snapshot_seq") or "0")
        seqs.append(seq)
        body = decode_locator(vault.keys.catalog, seq, run(provider.get(locator_name(seq))))
        for piece in body["pieces"]:
            holders = Counter(zone[s["provider"]] for s in piece["shares"])
            assert (piece["k"], piece["n"]) == (3, 6)
            assert holders[THIS_MACHINE] <= 3, holders
    assert len(set(seqs)) == 6
    run(vault.close())
    # Losing this machine: the vault directory (with the embedded folders) is gone.
    phrase = vault.keys.phrase
    shutil.rmtree(tmp_path / "v")
    res = run(
        recover_vault(
            tmp_path / "new", phrase_to_entropy(phrase), NEW, [remote[1].as_uri()], kdf=FAST_KDF
        )
    )
    assert res.seq == seqs[-1] and res.objects == 6 and res.warnings == ()
    back = vaults.open(tmp_path / "new", NEW)
    for i in range(6):
        run(back.files.get(f"f{i}.txt", tmp_path / f"back{i}"))
        assert (tmp_path / f"back{i}").read_text() == f"file {i}\n" * 100


def _external_vault(vaults: Vaults, tmp_path: Path) -> tuple[str, list[LocalProvider], list[int]]:
    """A vault on four external folders (2-of-4) with three files, a snapshot after each."""
    vault = vaults.create(tmp_path / "v", providers=0, k=2, n=4)
    dirs = []
    for i in range(4):
        d = tmp_path / f"ext-{i}"
        run(vault.fleet.add_provider(f"ext-{i}", d.as_uri(), domain=f"d{i}"))
        dirs.append(LocalProvider(d))
    seqs = []
    for name in ("a", "b", "c"):
        (tmp_path / name).write_text(name * 1000)
        run(vault.files.put([tmp_path / name]))
        run(vault.snapshot())
        seqs.append(int(vault.catalog.meta("snapshot_seq") or "0"))
    return vault.keys.phrase, dirs, seqs


async def _drop(providers: list[LocalProvider], seq: int, *, locator: bool) -> None:
    for p in providers:
        async for o in p.list(f"catalog/{seq:016x}/"):
            if locator or not o.name.endswith("/locator"):
                await p.delete(o.name)


def test_recover_falls_back_to_an_older_snapshot_and_warns(vaults: Vaults, tmp_path: Path) -> None:
    phrase, dirs, seqs = _external_vault(vaults, tmp_path)
    vaults.close_all()
    newest = seqs[-1]
    # The newest snapshot's shares are gone everywhere (its locators stay): unreadable.
    run(_drop(dirs, newest, locator=False))
    # ext-3 missed the last two snapshots entirely: a stale provider.
    run(_drop(dirs[3:], newest - 1, locator=True))
    run(_drop(dirs[3:], newest, locator=True))
    # Someone wrote parts of a later snapshot (a copy of the vault elsewhere, or a crash).
    run(dirs[2].put(f"catalog/{newest + 5:016x}/00/{'ab' * 16}.0", b"x" * 100))
    res = run(
        recover_vault(
            tmp_path / "new", phrase_to_entropy(phrase), NEW, [dirs[0].root.as_uri()], kdf=FAST_KDF
        )
    )
    assert res.seq == newest - 1 and res.created is not None
    assert [s.snapshot for s in res.skipped] == [newest]
    text = " | ".join(res.warnings)
    assert f"recovered the older catalog snapshot {newest - 1}" in text
    assert (
        f"snapshot(s) {newest + 5}, newer than the recovered {newest - 1}" in text
        and "rollback" in text
    )
    assert "provider ext-3 is stale" in text
    doc = res.to_json()
    assert doc["snapshot"] == newest - 1 and doc["warnings"] == list(res.warnings)
    vault = vaults.open(tmp_path / "new", NEW)
    names = [o.name for o in run(vault.files.ls()).objects]
    # "c" came after the snapshot that could be read: its journal record brings it.
    assert names == ["a", "b", "c"]
    # The next snapshot is numbered above everything seen on the providers.
    assert int(vault.catalog.meta("seq") or "0") >= newest + 5
    run(vault.snapshot())
    assert int(vault.catalog.meta("snapshot_seq") or "0") > newest + 5


def test_no_readable_snapshot_names_each_reason(vaults: Vaults, tmp_path: Path) -> None:
    phrase, dirs, seqs = _external_vault(vaults, tmp_path)
    vaults.close_all()
    for seq in range(1, seqs[-1] + 1):
        run(_drop(dirs, seq, locator=False))
    with pytest.raises(
        DataUnavailableError, match=f"snapshot {seqs[-1]}: .*snapshot {seqs[-1] - 1}"
    ):
        run(
            recover_vault(
                tmp_path / "new",
                phrase_to_entropy(phrase),
                NEW,
                [dirs[1].root.as_uri()],
                kdf=FAST_KDF,
            )
        )
    assert not (tmp_path / "new" / "ownvault.json").exists()


def test_an_old_copy_and_a_recovered_one_merge_instead_of_refusing(
    vaults: Vaults, tmp_path: Path
) -> None:
    """Before the catalog journal the old copy refused to write (its next snapshot would
    have dropped what the recovered one stored); now both are devices and merge."""
    phrase, dirs, _seqs = _external_vault(vaults, tmp_path)
    old = vaults.open(tmp_path / "v")  # the old laptop, still there
    # A recovery elsewhere, which then writes.
    run(
        recover_vault(
            tmp_path / "new", phrase_to_entropy(phrase), NEW, [dirs[0].root.as_uri()], kdf=FAST_KDF
        )
    )
    new = vaults.open(tmp_path / "new", NEW)
    (tmp_path / "d").write_text("written by the recovered copy")
    run(new.files.put([tmp_path / "d"]))
    assert [o.name for o in run(old.files.ls()).objects] == ["a", "b", "c"]  # not pulled yet
    (tmp_path / "e").write_text("does not drop d")
    run(old.files.put([tmp_path / "e"]))  # pulls d first, then appends its own record
    run(old.files.rm("a"))
    (tmp_path / "f").write_text("more")
    run(new.files.put([tmp_path / "f"]))
    run(old.pull())
    for v in (old, new):
        assert [o.name for o in run(v.files.ls()).objects] == ["b", "c", "d", "e", "f"]
