"""When a catalog snapshot (the journal's checkpoint) is written: once the journal records
sent or applied since the last one reach a sixteenth of its size (``VaultContext.snapshot_due``),
so a recovery reads one snapshot and a bounded tail of records, whatever the vault's size,
and the snapshots cost a bounded multiple of the journal."""

from __future__ import annotations

from pathlib import Path

import pytest

from ownvault.core.keys import phrase_to_entropy
from ownvault.engine.keys.recovery import RecoveryResult, recover_vault
from ownvault.engine.store import context
from ownvault.engine.store.snapshots import NewerSnapshot, _heads_of, _pieces_size, padded_size
from ownvault.engine.vault import Vault

from .external import vault_with_external
from .helpers import FAST_KDF, Vaults, run


def _journal_cost(v: Vault) -> int:
    meta = v.catalog.meta
    raw = int(meta("journal_since_snapshot") or "0")
    return raw + context.RECORD_COST * int(meta("records_since_snapshot") or "0")


def _history_bytes(v: Vault, device: bytes, after: int) -> int:
    return sum(
        len(r.raw) for r in run(v.ctx.journal.history()) if r.device == device and r.seq > after
    )


def _recover(a: Vault, where: Path) -> RecoveryResult:
    """Recover ``a``'s vault at ``where`` from its external folders (a new device)."""
    ext = [p.url for p in a.catalog.providers() if p.name.startswith("ext-")]
    return run(recover_vault(where, phrase_to_entropy(a.keys.phrase), "pw", ext, kdf=FAST_KDF))


def _tree(where: Path, files: int) -> Path:
    where.mkdir()
    for i in range(files):
        (where / f"f{i:04d}").write_text(f"file {i}\n")
    return where


def test_a_snapshot_follows_once_the_journal_reaches_a_sixteenth_of_the_last_one(
    tmp_path: Path, vaults: Vaults, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(context, "SNAPSHOT_FLOOR", 16 * 1024)  # a small vault's snapshot rules
    a, _dirs = vault_with_external(tmp_path)
    vaults.track(a)
    run(a.files.put([_tree(tmp_path / "tree", 300)]))
    snap = run(a.snapshot())
    size = int(a.catalog.meta("snapshot_bytes") or "0")
    assert size == snap.bytes and size >= 64 * 1024
    threshold = max(size // context.SNAPSHOT_SHARE, context.SNAPSHOT_FLOOR)
    seq = snap.seq
    puts = 0
    while int(a.catalog.meta("snapshot_seq") or "0") == seq:
        owed = _journal_cost(a)
        assert owed < threshold  # no snapshot is written before it is due
        (tmp_path / "one").write_text(f"change {puts}\n")
        run(a.files.put([tmp_path / "one"]))
        puts += 1
        assert puts < 100, "no snapshot followed"
        if int(a.catalog.meta("snapshot_seq") or "0") == seq:
            assert _journal_cost(a) > owed  # each record counts
    assert puts > 1  # it was not simply every change
    assert _journal_cost(a) == 0  # counted from the new snapshot


def test_records_applied_from_another_device_count_towards_its_next_snapshot(
    tmp_path: Path, vaults: Vaults
) -> None:
    a, _dirs = vault_with_external(tmp_path)
    vaults.track(a)
    _recover(a, tmp_path / "b")
    b = vaults.open(tmp_path / "b", "pw")
    run(b.ctx.pull())
    before = int(b.catalog.meta("journal_since_snapshot") or "0")
    device = a.ctx.journal.device.id
    head = a.catalog.journal.head(device).seq
    for i in range(3):
        (tmp_path / f"x{i}").write_text(f"from a {i}\n")
        run(a.files.put([tmp_path / f"x{i}"]))
    run(b.ctx.pull())
    pulled = _history_bytes(a, device, head)
    assert pulled > 0
    assert int(b.catalog.meta("journal_since_snapshot") or "0") - before == pulled


def test_a_recovery_reports_the_snapshot_and_the_records_it_read(
    tmp_path: Path, vaults: Vaults
) -> None:
    a, _dirs = vault_with_external(tmp_path)
    vaults.track(a)
    (tmp_path / "early").write_text("in the snapshot\n")
    run(a.files.put([tmp_path / "early"]))
    snap = run(a.snapshot())
    device = a.ctx.journal.device.id
    head = a.catalog.journal.head(device).seq
    for i in range(2):
        (tmp_path / f"late{i}").write_text(f"after the snapshot {i}\n")
        run(a.files.put([tmp_path / f"late{i}"]))
    result = _recover(a, tmp_path / "b")
    assert result.seq == snap.seq
    assert result.snapshot_bytes == snap.bytes
    assert result.journal_bytes == _history_bytes(a, device, head) > 0
    assert result.to_json()["journal_bytes"] == result.journal_bytes
    b = vaults.open(tmp_path / "b", "pw")
    assert sorted(b.catalog.version_counts()) == ["early", "late0", "late1"]


def _two(tmp_path: Path, vaults: Vaults) -> tuple[Vault, Vault]:
    a, _dirs = vault_with_external(tmp_path)
    vaults.track(a)
    _recover(a, tmp_path / "b")
    return a, vaults.open(tmp_path / "b", "pw")


def test_a_newer_snapshot_of_another_device_is_counted_from_then_superseded(
    tmp_path: Path, vaults: Vaults, monkeypatch: pytest.MonkeyPatch
) -> None:
    """B (recovered: its snapshot numbers start above A's) writes a snapshot. When A's
    next one is due, A finds B's holds nothing A lacks: A counts its journal from B's
    snapshot and writes none; when one is due again, A writes its own, numbered above
    B's, and a recovery reads it (before, A wrote none while B's stayed the newest)."""
    a, b = _two(tmp_path, vaults)
    theirs = run(b.snapshot())
    assert theirs.seq > int(a.catalog.meta("seq") or "0")
    monkeypatch.setattr(context, "SNAPSHOT_FLOOR", 1)  # every record of A makes one due
    monkeypatch.setattr(context, "SNAPSHOT_SHARE", 1 << 40)
    before = a.catalog.meta("snapshot_seq")
    (tmp_path / "one").write_text("first\n")
    run(a.files.put([tmp_path / "one"]))
    assert a.catalog.meta("snapshot_seq") == before  # B's compacted it: none written
    assert int(a.catalog.meta("seq") or "0") == theirs.seq
    assert int(a.catalog.meta("snapshot_bytes") or "0") == theirs.bytes
    assert _journal_cost(a) == 0
    (tmp_path / "one").write_text("second\n")
    run(a.files.put([tmp_path / "one"]))
    ours = int(a.catalog.meta("snapshot_seq") or "0")
    assert ours == theirs.seq + 1
    assert _recover(a, tmp_path / "c").seq == ours


def test_a_snapshot_that_does_not_name_its_heads_is_not_superseded(
    tmp_path: Path, vaults: Vaults, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A snapshot that carries versions no record does (``undotted``) names no heads: no
    other device can tell it holds them, so none supersedes it nor counts from it."""
    a, b = _two(tmp_path, vaults)
    monkeypatch.setattr(type(b.catalog.jns), "undotted", lambda _self: 1)
    theirs = run(b.snapshot()).seq
    monkeypatch.undo()
    monkeypatch.setattr(context, "SNAPSHOT_FLOOR", 1)
    monkeypatch.setattr(context, "SNAPSHOT_SHARE", 1 << 40)
    before = int(a.catalog.meta("snapshot_seq") or "0")
    for i in range(2):
        (tmp_path / "one").write_text(f"change {i}\n")
        run(a.files.put([tmp_path / "one"]))
    assert int(a.catalog.meta("snapshot_seq") or "0") == before < theirs
    assert int(a.catalog.meta("seq") or "0") < theirs
    assert _journal_cost(a) > 0


def test_of_two_devices_applying_the_same_records_the_first_by_id_comes_due_first(
    tmp_path: Path, vaults: Vaults
) -> None:
    """Both count the same journal; the device whose id sorts second waits for half as much
    more, so the first one's snapshot is there to count from (not two snapshots at once)."""
    a, b = _two(tmp_path, vaults)
    run(a.ctx.pull())  # each has enrolled and knows the other
    run(b.ctx.pull())
    first, second = sorted((a, b), key=lambda v: v.ctx.journal.device.id)
    threshold = 1 << 20  # a 16 MiB snapshot: the floor
    for v in (a, b):
        with v.catalog.transaction():
            v.catalog.set_meta("snapshot_bytes", str(16 << 20))
            v.catalog.set_meta("records_since_snapshot", "0")
            v.catalog.set_meta("journal_since_snapshot", str(threshold * 5 // 4))
    assert first.ctx.snapshot_due() and not second.ctx.snapshot_due()
    with second.catalog.transaction():
        second.catalog.set_meta("journal_since_snapshot", str(threshold * 3 // 2))
    assert second.ctx.snapshot_due()


def test_covered_by_needs_named_heads_each_at_most_the_catalogs() -> None:
    d1, d2 = b"\x01" * 16, b"\x02" * 16
    assert NewerSnapshot(9, "p", {d1: 3, d2: 1}).covered_by({d1: 3, d2: 5})
    assert not NewerSnapshot(9, "p", {d1: 4}).covered_by({d1: 3, d2: 5})
    assert not NewerSnapshot(9, "p", {d2: 1}).covered_by({d1: 3})
    assert not NewerSnapshot(9, "p", None).covered_by({d1: 3})
    assert _heads_of({"heads": {d1.hex(): 3}}) == {d1: 3}
    for bad in (
        {"heads": {"zz": 3}},
        {"heads": {d1.hex(): -1}},
        {"heads": {d1.hex(): True}},
        {"heads": []},
        {},
    ):
        assert _heads_of(bad) is None


def test_padme_pads_by_at_most_an_eighth_and_keeps_few_significant_bits() -> None:
    assert padded_size(1) == padded_size(64 * 1024) == 64 * 1024
    for length in (65_537, 100_000, 1_000_003, 176_042_490, 3 << 30):
        size = padded_size(length)
        exponent = length.bit_length() - 1
        assert length <= size <= length * 1.125
        assert size % (1 << (exponent - exponent.bit_length())) == 0
        assert padded_size(size) == size
    assert padded_size(1 << 27) == 1 << 27


def test_a_snapshot_padded_to_a_size_that_is_no_power_of_two_recovers(
    tmp_path: Path, vaults: Vaults
) -> None:
    a, _dirs = vault_with_external(tmp_path)
    vaults.track(a)
    run(a.files.put([_tree(tmp_path / "tree", 600)]))
    snap = run(a.snapshot())
    assert snap.bytes > 64 * 1024 and snap.bytes & (snap.bytes - 1), snap.bytes
    result = _recover(a, tmp_path / "b")
    assert result.seq == snap.seq and result.snapshot_bytes == snap.bytes
    b = vaults.open(tmp_path / "b", "pw")
    assert run(b.files.ls("tree")) == run(a.files.ls("tree"))


def test_a_locators_pieces_size_is_read_strictly() -> None:
    """What another device's locator says of its size only sets when this device's next
    snapshot is due: a malformed one counts as 0 instead of failing the commit."""
    assert _pieces_size({"pieces": [{"size": 65536}, {"size": 4096}]}) == 69632
    for bad in (
        {},
        {"pieces": "x"},
        {"pieces": [{"size": "1"}]},
        {"pieces": [7]},
        {"pieces": [{"size": -1}]},
        {"pieces": [{"size": True}]},
        {"pieces": [{}]},
    ):
        assert _pieces_size(bad) == 0
