"""The journal on the providers (engine.store.journalstore): two devices of one vault on
local folders, hostile providers, placement, and one provider being enough."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from ownvault.core.journal import MAX_RECORD_SIZE, JournalKeys, revoke_device
from ownvault.core.journalops import DeviceAdd, Tag
from ownvault.core.merge import heads, state_of
from ownvault.engine.keys.recovery import recover_vault
from ownvault.engine.store.journalstore import JournalStore, record_name
from ownvault.engine.store.placement import Policy
from ownvault.engine.vault import Vault
from ownvault.errors import JournalError
from ownvault.providers.base import Provider

from .helpers import FAST_KDF, PASS, Vaults, run


def folder_vault(
    vaults: Vaults, base: Path, count: int = 3, k: int = 1
) -> tuple[Vault, list[Path]]:
    """A vault whose providers are ``count`` local folders outside its directory."""
    vault = vaults.create(base / "a", providers=0, k=k, n=count)
    dirs = []
    # Set up as a vault of the snapshot era: its providers travel in the snapshot only, not
    # as settings records (these tests count this device's records from its certificate).

    async def setup() -> None:
        async with vault.ctx.write():
            for i in range(count):
                d = base / f"ext-{i}"
                await vault.fleet.add_provider(f"ext-{i}", d.as_uri(), jurisdiction="DE")
                dirs.append(d)
            vault.catalog.jns.drop_outbox()

    run(setup())
    run(vault.snapshot())
    return vault, dirs


def second_device(vaults: Vaults, a: Vault, base: Path, provider: Path) -> Vault:
    """Another copy of ``a``'s vault, recovered from the phrase and one provider."""
    run(recover_vault(base / "b", a.keys.entropy, PASS, [provider.as_uri()], kdf=FAST_KDF))
    return vaults.open(base / "b")


def obj(folder: Path, name: str) -> Path:
    return folder / "objects" / name


def tag(store: JournalStore, name: str, value: str) -> None:
    run(store.append(store.device, store.body([Tag(name, value)])))


@pytest.fixture
def pair(vaults: Vaults, tmp_path: Path) -> tuple[Vault, Vault, list[Path]]:
    a, dirs = folder_vault(vaults, tmp_path)
    return a, second_device(vaults, a, tmp_path, dirs[0]), dirs


def test_two_devices_append_and_pull_each_others_records(
    pair: tuple[Vault, Vault, list[Path]],
) -> None:
    a, b, dirs = pair
    ja, jb = JournalStore(a.ctx), JournalStore(b.ctx)
    assert ja.device.id != jb.device.id
    # a enrolled in its first write block that reached a provider; b when it was recovered
    # (a recovery applies the records after the snapshot, so it reads a's first record).
    assert run(ja.enroll()) is None  # once
    first = next(r for r in run(ja.history()) if r.device == ja.device.id)
    assert first.seq == 1
    assert isinstance(first.ops[0], DeviceAdd) and first.ops[0].device == ja.device.id
    tag(ja, "docs/a.txt", "work")
    for d in dirs:  # a whole copy on every provider the policy allows
        assert obj(d, record_name(ja.device.id, 2)).is_file()

    got = run(jb.pull())
    assert [(r.device, r.seq) for r in got] == [(ja.device.id, 2)]
    assert b.catalog.journal.head(jb.device.id).seq == 1
    tag(jb, "docs/b.txt", "home")
    back = run(ja.pull())
    assert [(r.device, r.seq) for r in back] == [(jb.device.id, 1), (jb.device.id, 2)]
    # b's second record says it had seen a's chain up to seq 2 (its version vector).
    assert dict(back[1].body.seen)[ja.device.id] == 2
    assert {d.device for d in a.catalog.journal.devices()} == {ja.device.id, jb.device.id}
    assert run(ja.pull()) == [] and run(jb.pull()) == []
    # The clock of a record written after a pull sorts after what it pulled.
    tag(ja, "docs/a.txt", "later")
    assert run(jb.pull())[0].hlc > back[-1].hlc


def test_one_provider_is_enough_to_pull_every_chain(
    pair: tuple[Vault, Vault, list[Path]], tmp_path: Path
) -> None:
    a, b, dirs = pair
    ja, jb = JournalStore(a.ctx), JournalStore(b.ctx)
    run(ja.enroll())
    tag(ja, "y", "2")
    run(jb.enroll())
    for d in dirs[1:]:
        d.rename(tmp_path / f"away-{d.name}")  # unreachable: the folder is gone
    warnings: list[str] = []
    b.warn = warnings.append
    got = run(jb.pull())
    assert [r.seq for r in got] == [2]  # b read a's first record when it was recovered
    assert any("cannot be listed" in w for w in warnings)


def test_a_provider_the_policy_excludes_never_gets_a_record(vaults: Vaults, tmp_path: Path) -> None:
    a, _dirs = folder_vault(vaults, tmp_path, count=2)
    us = tmp_path / "us"
    # The policy first: the provider's own addition is a settings record, which a
    # provider still allowed when it was written would get.
    run(a.fleet.set_policy(Policy(1, 2, exclude=("US",))))
    run(a.fleet.add_provider("us-1", us.as_uri(), jurisdiction="US"))
    ja = JournalStore(a.ctx)
    run(ja.enroll())
    tag(ja, "n", "t")
    assert not (us / "objects" / "journal").exists()
    last = a.catalog.journal.head(ja.device.id).seq
    assert last > 1 and obj(tmp_path / "ext-0", record_name(ja.device.id, last)).is_file()


def hostile(pair: tuple[Vault, Vault, list[Path]]) -> tuple[JournalStore, JournalStore]:
    """a writes records 2 and 3 (1, its certificate, b read when it was recovered)."""
    a, b, _dirs = pair
    ja, jb = JournalStore(a.ctx), JournalStore(b.ctx)
    run(ja.enroll())
    tag(ja, "f", "1")
    tag(ja, "f", "2")
    run(jb.enroll())
    return ja, jb


def everywhere(dirs: list[Path], name: str) -> list[Path]:
    return [obj(d, name) for d in dirs]


def refused(jb: JournalStore, device: bytes, seq: int, words: str) -> JournalError:
    with pytest.raises(JournalError) as info:
        run(jb.pull())
    exc = info.value
    assert exc.device == device.hex() and exc.seq == seq, (exc.device, exc.seq, exc.message)
    assert exc.provider and exc.provider.startswith("ext-"), exc.provider
    assert words in exc.message, exc.message
    return exc


def test_a_tampered_record_is_refused(pair: tuple[Vault, Vault, list[Path]]) -> None:
    ja, jb = hostile(pair)
    for p in everywhere(pair[2], record_name(ja.device.id, 2)):
        data = bytearray(p.read_bytes())
        data[100] ^= 1
        p.write_bytes(bytes(data))
    refused(jb, ja.device.id, 2, "refused")


def test_a_truncated_record_is_refused(pair: tuple[Vault, Vault, list[Path]]) -> None:
    ja, jb = hostile(pair)
    for p in everywhere(pair[2], record_name(ja.device.id, 3)):
        p.write_bytes(p.read_bytes()[:-10])
    refused(jb, ja.device.id, 3, "refused")


def test_a_record_under_another_name_or_replayed_is_refused(
    pair: tuple[Vault, Vault, list[Path]],
) -> None:
    ja, jb = hostile(pair)
    dirs = pair[2]
    three = [obj(d, record_name(ja.device.id, 3)) for d in dirs]
    kept = three[0].read_bytes()
    # Replay: record 2's bytes served again as record 3.
    for d, p in zip(dirs, three, strict=True):
        p.write_bytes(obj(d, record_name(ja.device.id, 2)).read_bytes())
    refused(jb, ja.device.id, 3, "another device or sequence number")
    # Renamed to another device: a's record stored under b's name.
    for d, p in zip(dirs, three, strict=True):
        p.write_bytes(kept)
        obj(d, record_name(jb.device.id, 2)).write_bytes(
            obj(d, record_name(ja.device.id, 2)).read_bytes()
        )
    refused(JournalStore(pair[0].ctx), jb.device.id, 2, "another device or sequence number")


class ReadSpy:
    """A provider whose reads are measured: the most bytes one ``get`` returned."""

    def __init__(self, inner: Provider) -> None:
        self.inner = inner
        self.most = 0

    def __getattr__(self, attr: str) -> object:
        return getattr(self.inner, attr)

    async def get(self, name: str, offset: int = 0, length: int | None = None) -> bytes:
        data = await self.inner.get(name, offset, length)
        self.most = max(self.most, len(data))
        return data


def test_an_oversized_record_is_refused_without_reading_it_whole(
    pair: tuple[Vault, Vault, list[Path]],
) -> None:
    """A hostile provider serving a huge object under a record's name costs the reader the
    record bound, not the object's size (a sparse file twice the bound stands for one of
    many gigabytes)."""
    ja, jb = hostile(pair)
    for p in everywhere(pair[2], record_name(ja.device.id, 2)):
        with p.open("r+b") as f:
            f.truncate(2 * MAX_RECORD_SIZE)
    spies = {pid: ReadSpy(p) for pid, p in jb.host.store.providers.items()}
    jb.host.store.providers.update(spies)  # type: ignore[arg-type]
    refused(jb, ja.device.id, 2, "size limit")
    assert 0 < max(s.most for s in spies.values()) <= MAX_RECORD_SIZE + 1


def test_reordered_records_are_refused(pair: tuple[Vault, Vault, list[Path]]) -> None:
    ja, jb = hostile(pair)
    for d in pair[2]:
        two, three = (obj(d, record_name(ja.device.id, s)) for s in (2, 3))
        b2, b3 = two.read_bytes(), three.read_bytes()
        two.write_bytes(b3)
        three.write_bytes(b2)
    refused(jb, ja.device.id, 2, "another device or sequence number")


def test_a_withheld_record_is_refused(pair: tuple[Vault, Vault, list[Path]]) -> None:
    ja, jb = hostile(pair)
    for p in everywhere(pair[2], record_name(ja.device.id, 2)):
        p.unlink()
    refused(jb, ja.device.id, 2, "withheld")


def test_a_rolled_back_chain_is_refused(pair: tuple[Vault, Vault, list[Path]]) -> None:
    ja, jb = hostile(pair)
    assert len(run(jb.pull())) == 2
    # One provider forgets a's last record after b saw it listed there.
    obj(pair[2][1], record_name(ja.device.id, 3)).unlink()
    exc = refused(jb, ja.device.id, 3, "rollback")
    assert exc.provider == "ext-1"


def test_a_device_detects_its_own_records_withheld(
    pair: tuple[Vault, Vault, list[Path]],
) -> None:
    ja, _jb = hostile(pair)
    for p in everywhere(pair[2], record_name(ja.device.id, 3)):
        p.unlink()
    a = pair[0]
    a.catalog.conn.execute("DELETE FROM journal_marks")  # no listing seen yet: own seq only
    refused(ja, ja.device.id, 3, "this device wrote seq 3")


def test_a_bad_copy_is_skipped_when_another_provider_has_a_good_one(
    pair: tuple[Vault, Vault, list[Path]],
) -> None:
    ja, jb = hostile(pair)
    bad = obj(pair[2][0], record_name(ja.device.id, 2))
    data = bytearray(bad.read_bytes())
    data[len(data) // 2] ^= 0x01  # inside the sealed body (zeroing the signature's last
    bad.write_bytes(bytes(data))  # byte, as before, left it as it was in 1 run of ~16)
    warnings: list[str] = []
    pair[1].warn = warnings.append
    assert [r.seq for r in run(jb.pull())] == [2, 3]
    [fault] = jb.faults
    assert (fault.device, fault.seq, fault.provider) == (ja.device.id.hex(), 2, "ext-0")
    assert any("ext-0" in w for w in warnings)


def test_a_revoked_devices_later_records_are_refused(
    pair: tuple[Vault, Vault, list[Path]],
) -> None:
    ja, jb = hostile(pair)
    run(ja.pull())
    keys = JournalKeys.of(pair[0].keys)
    revocation = revoke_device(keys, jb.device.id, 1)
    run(ja.append(ja.device, ja.body([revocation])))
    tag(jb, "late", "x")  # b has not pulled its revocation: it writes seq 2
    assert run(ja.pull()) == []
    [fault] = ja.faults
    assert fault.device == jb.device.id.hex() and fault.seq == 2
    assert "revoked after seq 1" in fault.message
    run(jb.pull())
    with pytest.raises(JournalError, match="revoked"):
        tag(jb, "later", "y")


def test_a_copy_of_the_vault_directory_writing_as_the_same_device_is_a_fork(
    pair: tuple[Vault, Vault, list[Path]], vaults: Vaults, tmp_path: Path
) -> None:
    a = pair[0]
    ja = JournalStore(a.ctx)
    run(ja.enroll())
    vaults.close(a)
    shutil.copytree(tmp_path / "a", tmp_path / "clone")
    clone = vaults.open(tmp_path / "clone")
    jc = JournalStore(clone.ctx)
    assert jc.device.id == ja.device.id
    tag(jc, "c", "1")
    a2 = vaults.open(tmp_path / "a")
    with pytest.raises(JournalError, match="fork"):
        run(JournalStore(a2.ctx).pull())


def test_checkpoints_are_written_everywhere_and_the_latest_good_one_is_read(
    pair: tuple[Vault, Vault, list[Path]],
) -> None:
    ja, jb = hostile(pair)
    assert run(jb.latest_checkpoint()) is None
    older = run(ja.write_checkpoint(state_of(run(ja.history()))))
    tag(ja, "f", "3")
    newer = run(ja.write_checkpoint(state_of(run(ja.history()))))
    assert older < newer  # named by the records they cover
    for d in pair[2]:
        assert obj(d, newer).is_file()
    got = run(jb.latest_checkpoint())
    assert got is not None and got.signer == ja.device.id
    assert heads(got.state)[ja.device.id].seq == 4 and heads(got.state)[jb.device.id].seq == 1
    for d in pair[2]:  # every copy of the newest one tampered: the older one is used
        p = obj(d, newer)
        data = bytearray(p.read_bytes())
        data[-3] ^= 1
        p.write_bytes(bytes(data))
    got = run(jb.latest_checkpoint())
    assert got is not None and heads(got.state)[ja.device.id].seq == 3
    assert jb.faults and all(f.device == ja.device.id.hex() for f in jb.faults)
