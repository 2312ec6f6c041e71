"""A stale provider seen by the journal (engine.health.journallag): a put writes a journal
record, not a catalog snapshot, so a provider restored from a copy taken before the put
holds the newest snapshot and lacks the record. The health verdict names it stale from
one listing (the device, the seq it holds, the seq known); a provider added after a
device's last record is not stale; repair copies the records it lacks."""

from __future__ import annotations

import shutil
from pathlib import Path

from ownvault.engine.health.journallag import ChainLag
from ownvault.engine.store.journalstore import JournalStore, record_name
from ownvault.engine.vault import Vault
from tests.cli.test_keys import js, ov

from .helpers import Vaults, run
from .test_journalstore import folder_vault, second_device


def _put(vault: Vault, tmp_path: Path, name: str) -> None:
    (tmp_path / name).write_bytes(name.encode() * 10_000)
    run(vault.files.put([tmp_path / name], name=name))


def _restore(folder: Path, copy: Path) -> None:
    shutil.rmtree(folder)
    shutil.copytree(copy, folder)


def _lag(vault: Vault, device: bytes, held: int) -> ChainLag:
    [row] = [d for d in vault.catalog.journal.devices() if d.device == device]
    return ChainLag(device.hex(), row.name, held, row.head.seq)


def test_a_folder_restored_without_the_newest_record_is_stale(
    vaults: Vaults, tmp_path: Path
) -> None:
    a, dirs = folder_vault(vaults, tmp_path)
    _put(a, tmp_path, "one")
    assert run(a.health.verdict()).stale_providers == ()
    own = JournalStore(a.ctx).device.id
    held = a.catalog.journal.head(own).seq
    shutil.copytree(dirs[1], tmp_path / "ext-1-old")
    _put(a, tmp_path, "two")  # a record, no snapshot: the old copy has the newest snapshot
    assert a.catalog.journal.head(own).seq == held + 1
    _restore(dirs[1], tmp_path / "ext-1-old")

    v = run(a.health.verdict())
    assert v.state == "degraded"
    [stale] = v.stale_providers
    assert stale.name == "ext-1" and not stale.snapshot_behind
    assert stale.journal == (_lag(a, own, held),)
    assert stale.missing_shares == 1  # two's share
    line = (
        f"ext-1 is stale: it holds the journal of device {stale.journal[0].device_name} "
        f"({own.hex()[:8]}) up to seq {held}, this device knows seq {held + 1}; 1 of its "
    )
    assert stale.line().startswith(line) and stale.line() in v.reasons
    doc = stale.to_json()["journal"]
    assert doc == [
        {
            "device": own.hex(),
            "device_name": stale.journal[0].device_name,
            "held_seq": held,
            "known_seq": held + 1,
        }
    ]

    # Repair rewrites the missing share and copies the record: nothing stale any more.
    report = run(a.health.repair())
    assert report.journal_records_copied == 1 and not report.failures
    assert (dirs[1] / "objects" / record_name(own, held + 1)).is_file()
    assert run(a.health.verdict()).stale_providers == ()
    assert run(a.pull()) == 0  # its marks are raised with the copy: no rollback either


def test_another_devices_chain_counts_a_provider_added_later_does_not(
    vaults: Vaults, tmp_path: Path
) -> None:
    a, dirs = folder_vault(vaults, tmp_path)
    b = second_device(vaults, a, tmp_path, dirs[0])
    _put(b, tmp_path, "from-b")
    run(a.pull())
    dev_b = JournalStore(b.ctx).device.id
    held = a.catalog.journal.head(dev_b).seq
    # A provider added now holds none of b's chain (nor of a's): the snapshot written
    # when it was added covers the records before it. Not stale.
    run(a.fleet.add_provider("late", (tmp_path / "late").as_uri(), jurisdiction="DE"))
    shutil.copytree(dirs[2], tmp_path / "ext-2-old")
    _put(b, tmp_path, "from-b-2")
    assert run(a.pull()) == 1
    assert run(a.health.verdict()).stale_providers == ()
    _restore(dirs[2], tmp_path / "ext-2-old")

    [stale] = run(a.health.verdict()).stale_providers
    assert stale.name == "ext-2" and stale.journal == (_lag(a, dev_b, held),)
    assert stale.journal[0].known == held + 1
    report = run(a.health.repair())
    assert report.journal_records_copied == 1
    assert run(a.health.verdict()).stale_providers == ()


def test_status_and_check_name_it_from_the_cli(tmp_path: Path) -> None:
    home = tmp_path / "vault"
    ov(home, "init", "--providers", "0", "--k", "1", "--n", "3", "--device-name", "laptop",
       "--phrase-file", str(tmp_path / "phrase"))  # fmt: skip
    for i in range(3):
        ov(home, "provider", "add", f"ext-{i}", (tmp_path / f"ext-{i}").as_uri())
    (tmp_path / "a.txt").write_bytes(b"a" * 50_000)
    ov(home, "put", str(tmp_path / "a.txt"))
    ov(home, "audit")
    assert js(ov(home, "status", "--json"))["health"]["state"] == "healthy"
    shutil.copytree(tmp_path / "ext-0", tmp_path / "ext-0-old")
    (tmp_path / "b.txt").write_bytes(b"b" * 50_000)
    ov(home, "put", str(tmp_path / "b.txt"))
    _restore(tmp_path / "ext-0", tmp_path / "ext-0-old")

    status = js(ov(home, "status", "--json"))
    check = js(ov(home, "check", "--json"))  # exit 0: every file is readable
    for doc in (status, check):
        h = doc["health"]
        assert h["state"] == "degraded"
        [stale] = h["stale_providers"]
        assert stale["name"] == "ext-0" and stale["newest_snapshot"] == stale["expected_snapshot"]
        [lag] = stale["journal"]
        assert lag["device_name"] == "laptop" and lag["held_seq"] == lag["known_seq"] - 1
        assert h["reasons"][0].startswith("1 piece(s) have fewer than n good shares")
        assert any(
            r.startswith("ext-0 is stale: it holds the journal of device laptop")
            for r in h["reasons"]
        )
    assert status["verdict"] == "DEGRADED"
    assert [p["name"] for p in status["providers"] if p["stale"]] == ["ext-0"]
    text = ov(home, "status").stdout
    assert text.startswith("vault: DEGRADED") and "ext-0 is stale" in text
    assert "ext-0 came back with older data" in text

    assert "journal: 1 record(s) copied to stale providers" in ov(home, "repair").stdout
    after = js(ov(home, "status", "--json"))
    assert after["health"]["stale_providers"] == [] and after["verdict"] == "HEALTHY"
