"""Namespace ops captured as the catalog changes, sent as real signed records, and applied
on a second vault directory sharing the providers (``engine.store.journalsync``,
``catalog.jns``): both converge to what ``core.merge`` says, whatever raced."""

from __future__ import annotations

import random
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from ownvault.core.journal import (
    GENESIS,
    ChainHead,
    DeviceKey,
    JournalKeys,
    Record,
    certify_device,
    encode_record,
)
from ownvault.core.journalops import Body, Dot, Op, Put, Remove, Tag, Untag
from ownvault.core.keys import phrase_to_entropy
from ownvault.core.merge import EMPTY, live_versions, merge, tags
from ownvault.engine.keys.recovery import recover_vault
from ownvault.engine.store.catalog.drive import rename_objects
from ownvault.engine.store.context import VaultContext
from ownvault.engine.store.journalsync import apply_records, next_batch, send
from ownvault.engine.vault import Vault

from .external import vault_with_external
from .helpers import FAST_KDF, Vaults, run


@dataclass
class Device:
    """One vault directory as a journal device: its key, chain head and clock."""

    vault: Vault
    key: DeviceKey
    jkeys: JournalKeys
    head: ChainHead = GENESIS
    records: list[Record] = field(default_factory=list)
    now_ms: int = 1_764_000_000_000

    def __post_init__(self) -> None:
        # A device writes its certificate first, in a record of its own (as it enrolls).
        run(self.append([certify_device(self.jkeys, self.key.public, "dev")]))

    async def append(self, ops: Sequence[Op]) -> Record:
        body = Body(self.head.hlc.tick(self.now_ms), tuple(ops), ())
        _raw, record = encode_record(self.jkeys, self.key, self.head, body)
        self.head = record.head
        self.records.append(record)
        return record

    def push(self) -> list[Record]:
        return run(send(self.vault.catalog, self.key.id, self.head, self.append))

    def pull(self, records: Sequence[Record]) -> None:
        ordered = sorted(records, key=lambda r: (r.hlc, r.device, r.seq))
        with self.vault.catalog.transaction():
            apply_records(self.vault.catalog, ordered)


def _put(d: Device, path: Path, data: bytes) -> None:
    path.write_bytes(data)
    run(d.vault.files.put([path]))


def _view(v: Vault) -> tuple[object, ...]:
    listing = run(v.files.ls())
    names = [o.name for o in listing.objects]  # type: ignore[union-attr]
    return (listing, {n: run(v.files.versions(n)) for n in names})


def _cache_dots(v: Vault) -> dict[str, list[Dot]]:
    out: dict[str, list[Dot]] = {}
    for name in sorted(v.catalog.version_counts()):
        for row in v.catalog.versions(name):
            found = v.catalog.jns.dot_of(row.id)
            assert found is not None, (name, row.number)
            out.setdefault(name, []).append(found[0])
    return out


def _merged(records: Sequence[Record]) -> tuple[dict[str, list[Dot]], dict[str, frozenset[str]]]:
    state = merge(EMPTY, records)
    return (
        {n: [v.dot for v in vs] for n, vs in live_versions(state).items()},
        tags(state),
    )


@pytest.fixture
def devices(
    tmp_path: Path, vaults: Vaults, monkeypatch: pytest.MonkeyPatch
) -> tuple[Device, Device, Path]:
    # Until ``ctx.write()`` pulls and appends records itself, the snapshot-era refusal of
    # a second writer would stop B: these tests drive the journal side by hand.
    async def no_refusal(_ctx: object) -> None:
        return None

    monkeypatch.setattr(VaultContext, "refuse_if_stale", no_refusal)
    a_vault, dirs = vault_with_external(tmp_path)
    vaults.track(a_vault)
    entropy = phrase_to_entropy(a_vault.keys.phrase)
    run(recover_vault(tmp_path / "b", entropy, "b", [d.as_uri() for d in dirs], kdf=FAST_KDF))
    b_vault = vaults.open(tmp_path / "b", "b")
    jkeys = JournalKeys.of(a_vault.keys)
    keys = sorted((DeviceKey(bytes([i]) * 32) for i in (1, 2)), key=lambda k: k.id)
    return Device(a_vault, keys[0], jkeys), Device(b_vault, keys[1], jkeys), tmp_path


def test_ops_are_captured_in_order_and_sent_as_records(
    devices: tuple[Device, Device, Path],
) -> None:
    a, _b, tmp = devices
    _put(a, tmp / "x", b"one")
    run(a.vault.files.set_tags("x", add=["work", "red"]))
    _put(a, tmp / "y", b"gone before it was sent")
    run(a.vault.files.rm("y"))  # put and rm in one outbox: the put never leaves the device
    run(a.vault.files.set_tags("x", remove=["red"]))  # not sent yet: the tag op goes with it
    [record] = a.push()
    assert [type(op).__name__ for op in record.ops] == ["Put", "Tag"]
    put, tag = record.ops
    assert isinstance(put, Put) and put.name == "x" and put.size == 3
    assert tag == Tag("x", "work")
    assert a.vault.catalog.jns.outbox() == []
    assert _cache_dots(a.vault) == {"x": [Dot(a.key.id, 2, 0)]}
    assert a.push() == []  # nothing owed

    run(a.vault.files.set_tags("x", remove=["work"]))
    run(a.vault.files.rm("x"))
    [record] = a.push()
    assert record.ops == (
        Untag((Dot(a.key.id, 2, 1),)),
        Remove((Dot(a.key.id, 2, 0),)),
    )


def test_two_devices_converge_and_a_put_racing_an_rm_survives(
    devices: tuple[Device, Device, Path],
) -> None:
    a, b, tmp = devices
    rnd = random.Random(4)
    _put(a, tmp / "doc", rnd.randbytes(300_000))
    run(a.vault.files.set_tags("doc", add=["t"]))
    b.pull(a.push())
    assert _view(b.vault) == _view(a.vault)

    # B removes the version it saw while A, not having seen that, stores a second one.
    b.now_ms += 10
    run(b.vault.files.rm("doc"))
    a.now_ms += 20
    _put(a, tmp / "doc", rnd.randbytes(200_000))
    b_out, a_out = b.push(), a.push()
    a.pull(b_out)
    b.pull(a_out)
    every = a.records + b.records
    want_versions, want_tags = _merged(every)
    assert _cache_dots(a.vault) == _cache_dots(b.vault) == want_versions
    assert want_versions == {"doc": [Dot(a.key.id, 3, 0)]}
    assert _view(a.vault) == _view(b.vault)
    assert want_tags == {}  # the rm of the name untagged what B had seen of it
    for d in (a, b):
        assert d.vault.catalog.tags(d.vault.catalog.object_id("doc") or 0) == []
    out = tmp / "out.bin"
    run(b.vault.files.get("doc", out))
    assert out.read_bytes() == (tmp / "doc").read_bytes()


def test_two_devices_committing_in_the_same_millisecond_both_keep_their_version(
    devices: tuple[Device, Device, Path],
) -> None:
    a, b, tmp = devices
    _put(a, tmp / "a-copy", b"from a")
    _put(b, tmp / "b-copy", b"from b")
    for d, src in ((a, "a-copy"), (b, "b-copy")):
        run(d.vault.files.put([tmp / src], name="same"))
    a_out, b_out = a.push(), b.push()
    assert a_out[-1].hlc == b_out[-1].hlc  # one millisecond, one counter
    a.pull(b_out)
    b.pull(a_out)
    want, _tags = _merged(a.records + b.records)
    assert len(want["same"]) == 2 and want["same"][0].device == a.key.id  # tie: device id
    assert _cache_dots(a.vault) == _cache_dots(b.vault) == want
    for d in (a, b):
        got = [_cat(d.vault, "same", n) for n in (1, 2)]
        assert got == [b"from a", b"from b"]


def _cat(v: Vault, name: str, number: int) -> bytes:
    async def go() -> bytes:
        return b"".join([p async for p in v.files.read(name, version=number)])

    return run(go())


def test_a_crash_between_the_append_and_its_settle_sends_nothing_twice(
    devices: tuple[Device, Device, Path],
) -> None:
    a, b, tmp = devices
    _put(a, tmp / "f", b"f")
    ops = next_batch(a.vault.catalog, 2)
    run(a.append(ops))  # written, then the process dies before the dots are settled
    assert a.push() == []  # settled from the head: the put is not sent again
    assert _cache_dots(a.vault) == {"f": [Dot(a.key.id, 2, 0)]}
    _put(a, tmp / "g", b"g")
    next_batch(a.vault.catalog, 3)  # stamped, then the append never happened
    [again] = a.push()
    assert again.seq == 3 and [type(o).__name__ for o in again.ops] == ["Put"]
    b.pull(a.records)
    assert _view(b.vault) == _view(a.vault)


def test_a_removal_arriving_before_its_put_keeps_the_put_out(
    devices: tuple[Device, Device, Path],
) -> None:
    a, b, tmp = devices
    c_dir = tmp / "c"
    ext = [p.url for p in a.vault.catalog.providers() if p.name.startswith("ext-")]
    run(recover_vault(c_dir, phrase_to_entropy(a.vault.keys.phrase), "c", ext, kdf=FAST_KDF))
    c = Device(Vault.open(c_dir, "c"), DeviceKey(bytes([3]) * 32), a.jkeys)
    try:
        _put(a, tmp / "h", b"h")
        first = a.push()
        b.pull(first)
        run(b.vault.files.rm("h"))
        removal = b.push()
        c.pull(removal)  # a provider served B's chain before A's
        c.pull(first)
        assert c.vault.catalog.version_counts() == {}
        assert _merged(a.records + b.records)[0] == {}
        assert a.vault.catalog.version_counts() == {"h": 1}  # until A pulls the removal
        a.pull(removal)
        assert a.vault.catalog.version_counts() == {}
    finally:
        run(c.vault.close())


def test_a_catalog_recovered_from_a_snapshot_does_not_send_the_writers_ops(
    devices: tuple[Device, Device, Path],
) -> None:
    a, _b, tmp = devices
    _put(a, tmp / "unsent", b"u")
    run(a.vault.snapshot())  # the snapshot holds A's outbox row for the put
    ext = [p.url for p in a.vault.catalog.providers() if p.name.startswith("ext-")]
    run(recover_vault(tmp / "d", phrase_to_entropy(a.vault.keys.phrase), "d", ext, kdf=FAST_KDF))
    d = Vault.open(tmp / "d", "d")
    try:
        assert [r.op for r in a.vault.catalog.jns.outbox()] == ["put"]
        assert d.catalog.jns.outbox() == []
    finally:
        run(d.close())


def test_a_snapshot_era_vault_sends_its_versions_once_as_genesis_records(
    tmp_path: Path, vaults: Vaults, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The golden vault (schema 1) queues a put of each version and a tag of each tag on
    its first open; a copy of it (a device recovered from the same catalog) adopts those
    puts' dots instead of a second copy of each version."""
    golden = Path(__file__).parent.parent / "fixtures" / "golden" / "vault-v1"
    shutil.copytree(golden, tmp_path / "a")
    shutil.copytree(golden, tmp_path / "b")
    a_vault, b_vault = vaults.open(tmp_path / "a", "golden"), vaults.open(tmp_path / "b", "golden")
    b_vault.catalog.jns.drop_outbox()  # what recovery from a snapshot does
    outbox = a_vault.catalog.jns.outbox()
    puts = sum(a_vault.catalog.version_counts().values())
    assert [r.op for r in outbox] == ["put"] * puts + ["tag"] * (len(outbox) - puts)
    assert len(outbox) > puts  # the golden vault has a tag
    jkeys = JournalKeys.of(a_vault.keys)
    a = Device(a_vault, DeviceKey(bytes([1]) * 32), jkeys)
    monkeypatch.setattr("ownvault.engine.store.journalsync.MAX_OPS", 1)  # batches of one
    genesis = a.push()
    assert len(genesis) == len(outbox) and all(len(r.ops) == 1 for r in genesis)
    assert a.push() == []  # once
    b = Device(b_vault, DeviceKey(bytes([2]) * 32), jkeys)
    before = _view(b.vault)
    b.pull(a.records)
    assert _view(b.vault) == before == _view(a.vault)
    assert _cache_dots(b.vault) == _cache_dots(a.vault) == _merged(a.records)[0]


def test_a_rename_and_a_rename_over_a_name_are_journaled(
    devices: tuple[Device, Device, Path],
) -> None:
    a, b, tmp = devices
    _put(a, tmp / "old", b"old")
    _put(a, tmp / "other", b"other")
    run(a.vault.files.set_tags("old", add=["keep"]))
    b.pull(a.push())
    rename_objects(a.vault.catalog, [("old", "new")])
    rename_objects(a.vault.catalog, [("other", "new2")], replacing="new")
    out = a.push()
    assert {type(op).__name__ for r in out for op in r.ops} == {"Remove", "Put", "Untag"}
    b.pull(out)
    assert _view(b.vault) == _view(a.vault)
    assert [o.name for o in run(b.vault.files.ls()).objects] == ["new2"]  # type: ignore[union-attr]
    assert _cache_dots(b.vault) == _cache_dots(a.vault) == _merged(a.records + b.records)[0]
    assert _merged(a.records + b.records)[1] == {}  # the replaced name's tag went with it
