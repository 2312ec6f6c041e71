"""Grants end to end: share, open as the recipient, policies, revocation, forget, rotation."""

from __future__ import annotations

import json
import random
import time
from pathlib import Path

import pytest

from ownvault.core.grants import Grant
from ownvault.core.pack import open_chunk
from ownvault.engine.keys.keyring import KeyRotation
from ownvault.engine.sharing.reader import GrantReader, open_grant
from ownvault.engine.store.shares import DATA_PREFIX
from ownvault.engine.vault import Vault
from ownvault.errors import (
    AuthError,
    DataUnavailableError,
    GrantExpiredError,
    GrantRecipientError,
    GrantRevokedError,
    IntegrityError,
    NotFoundError,
    SharePolicyError,
    UsageError,
)

from .external import vault_with_external
from .helpers import FAST_KDF, PASS, Vaults, make_vault, run, tree_state, write_random_tree


async def read_all(reader: GrantReader, name: str) -> bytes:
    return b"".join([piece async for piece in reader.read(name)])


@pytest.fixture
def people(tmp_path: Path) -> dict[str, Vault]:
    alice = make_vault(tmp_path / "alice")
    bob = make_vault(tmp_path / "bob", providers=3, k=1, n=2)
    carol = make_vault(tmp_path / "carol", providers=3, k=1, n=2)
    run(alice.sharing.add_contact(json.dumps(bob.sharing.contact_card("bob").to_json())))
    yield {"alice": alice, "bob": bob, "carol": carol}
    for v in (alice, bob, carol):
        run(v.close())


def test_share_open_policy_and_errors(people: dict[str, Vault], tmp_path: Path) -> None:
    alice, bob, carol = people["alice"], people["bob"], people["carol"]
    src = tmp_path / "docs"
    write_random_tree(src, 11, files=8)
    (tmp_path / "blood.csv").write_bytes(b"date,value\n" * 1000)
    run(alice.files.put([src], tags=["work"]))
    run(alice.files.put([tmp_path / "blood.csv"], tags=["health"]))
    run(alice.sharing.set_tag_policy("health", never_share=True))
    with pytest.raises(SharePolicyError, match="may never be shared"):
        run(alice.sharing.share(names=["blood.csv"], to="bob"))
    with pytest.raises(SharePolicyError):
        run(alice.sharing.share(tag="health", to="bob"))
    with pytest.raises(NotFoundError, match="contacts add"):
        run(alice.sharing.share(names=["docs"], to="carol"))
    assert alice.sharing.grants() == []

    info = run(alice.sharing.share(tag="work", to=bob.did, expires=int(time.time()) + 3600))
    assert info.items == ["docs v1"]
    reader = run(open_grant(bob.keys, info.token))
    try:
        assert [i.name for i in reader.items] == ["docs"]
        run(reader.get("docs", tmp_path / "got"))
        assert {k: v[3] for k, v in tree_state(tmp_path / "got").items()} == {
            k: v[3] for k, v in tree_state(src).items()
        }
        with pytest.raises(NotFoundError):
            run(read_all(reader, "blood.csv"))  # not covered: nothing else is reachable
    finally:
        run(reader.close())
    with pytest.raises(GrantRecipientError, match="not for this vault"):
        run(open_grant(carol.keys, info.token))
    with pytest.raises(GrantExpiredError):
        run(open_grant(bob.keys, info.token, now=int(time.time()) + 7200))
    doc = Grant.parse(info.token).to_json()
    doc["expires"] = None
    with pytest.raises(IntegrityError, match="signature"):
        run(open_grant(bob.keys, json.dumps(doc)))
    listed = alice.sharing.grants()
    assert [(g.grant, g.to, g.contact, g.state, g.items) for g in listed] == [
        (info.grant_id, bob.did, "bob", "active", ["docs v1"])
    ]
    # A provider that swaps in another manifest is caught by the sender's signature.
    shares_dir = tmp_path / "alice" / "providers"
    for m in shares_dir.glob(f"local-*/objects/grants/{info.grant_id}/m.*"):
        data = bytearray(m.read_bytes())
        data[-5] ^= 1
        m.chmod(0o600)
        m.write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match="no grant manifest verifies"):
        run(open_grant(bob.keys, info.token))


def test_revocation_reencrypts_and_later_versions_stay_private(
    people: dict[str, Vault], tmp_path: Path
) -> None:
    alice, bob = people["alice"], people["bob"]
    data = random.Random(5).randbytes(2_500_000)
    (tmp_path / "plan.bin").write_bytes(data)
    (tmp_path / "other.bin").write_bytes(random.Random(6).randbytes(200_000))
    run(alice.files.put([tmp_path / "plan.bin", tmp_path / "other.bin"]))  # same packs
    g1 = run(alice.sharing.share(names=["plan.bin"], to="bob"))
    g2 = run(alice.sharing.share(names=["plan.bin"], to="bob"))
    old = run(open_grant(bob.keys, g1.token))
    assert run(read_all(old, "plan.bin")) == data
    # A later version is not in the grant.
    (tmp_path / "plan.bin").write_bytes(data[:100] + b"secret v2" + data[109:])
    run(alice.files.put([tmp_path / "plan.bin"]))
    assert [i.version for i in old.items] == [1]

    result = run(alice.sharing.revoke(g1.grant_id[:10]))
    assert (
        result.chunks_rekeyed >= 2 and result.not_deleted == [] and result.revocation_notices == 6
    )
    with pytest.raises(GrantRevokedError, match="revoked"):
        run(open_grant(bob.keys, g1.token))
    # Bob kept the old manifest (all chunk keys and share places): the old shares are gone...
    old._cache.clear()  # noqa: SLF001  forget what Bob read, so he must fetch again
    with pytest.raises(DataUnavailableError):
        run(read_all(old, "plan.bin"))
    # ...and the new copies do not open with the old keys (new random chunk keys).
    cat = alice.catalog
    old_chunks = {c["id"]: bytes.fromhex(c["key"]) for c in old.manifest["chunks"]}
    v1 = cat.version("plan.bin", 1)
    refs = cat.content_chunks(cat.entries(v1.id)[0].content or 0)
    packdata = run(
        alice.store.fetch_pack(
            DATA_PREFIX,
            refs[0].pack_id,
            refs[0].pack_size,
            3,
            6,
            [(s.idx, s.provider, s.size, s.root) for s in cat.shares_of(refs[0].pack)],
        )
    )
    blob = packdata[refs[0].offset : refs[0].offset + refs[0].length]
    with pytest.raises(IntegrityError):
        open_chunk(old_chunks[refs[0].chunk_id.hex()], refs[0].chunk_id, blob)
    run(old.close())
    # The owner still reads everything; the overlapping grant was refreshed and still works.
    run(alice.files.get("plan.bin", tmp_path / "v1", version=1))
    assert (tmp_path / "v1").read_bytes() == data
    run(alice.files.get("other.bin", tmp_path / "o"))
    assert (tmp_path / "o").read_bytes() == (tmp_path / "other.bin").read_bytes()
    assert result.refreshed_grants == 1
    r2 = run(open_grant(bob.keys, g2.token))
    try:
        assert run(read_all(r2, "plan.bin")) == data
    finally:
        run(r2.close())
    states = {g.grant: g.state for g in alice.sharing.grants()}
    assert states == {g1.grant_id: "revoked", g2.grant_id: "active"}
    again = run(alice.sharing.revoke(g1.grant_id))
    assert again.already_revoked


def test_forget_shreds_keys_shares_and_old_snapshots(
    people: dict[str, Vault], tmp_path: Path
) -> None:
    alice, bob = people["alice"], people["bob"]
    secret = random.Random(8).randbytes(1_500_000)
    keep = random.Random(9).randbytes(300_000)
    (tmp_path / "diary.bin").write_bytes(secret)
    (tmp_path / "keep.bin").write_bytes(keep)
    run(alice.files.put([tmp_path / "diary.bin", tmp_path / "keep.bin"]))
    (tmp_path / "diary.bin").write_bytes(secret + b"more")
    run(alice.files.put([tmp_path / "diary.bin"]))
    g = run(alice.sharing.share(names=["diary.bin", "keep.bin"], to="bob"))
    chunk_ids = {bytes(r[0]) for r in alice.catalog.conn.execute("SELECT chunk_id FROM chunks")}
    result = run(alice.keyring.forget("diary.bin"))
    assert result.versions_forgotten == 2 and result.chunks_shredded >= 2
    assert result.not_deleted == []
    assert result.old_snapshot_objects_deleted > 0 and result.grants_updated == 1
    left = {bytes(r[0]) for r in alice.catalog.conn.execute("SELECT chunk_id FROM chunks")}
    assert len(chunk_ids - left) == result.chunks_shredded
    with pytest.raises(NotFoundError):
        run(alice.files.get("diary.bin", tmp_path / "x"))
    run(alice.files.get("keep.bin", tmp_path / "k"))
    assert (tmp_path / "k").read_bytes() == keep
    # Only the newest snapshot is left on the providers; no old copy of the wrapped keys.
    for prov in (tmp_path / "alice" / "providers").iterdir():
        seqs = {
            p.parent.name if p.name == "locator" else p.parent.parent.name
            for p in (prov / "objects" / "catalog").rglob("*")
            if p.is_file()
        }
        assert seqs == {f"{result.snapshot:016x}"}
    # No byte of any wrapped key of a forgotten chunk is left in the local catalog files.
    raw = b"".join(p.read_bytes() for p in (tmp_path / "alice").glob("catalog.db*"))
    for cid in chunk_ids - left:
        assert cid not in raw
    # The grant still opens, now without the forgotten name.
    reader = run(open_grant(bob.keys, g.token))
    try:
        assert [i.name for i in reader.items] == ["keep.bin"]
        assert run(read_all(reader, "keep.bin")) == keep
    finally:
        run(reader.close())


def test_rotation_and_passphrase_change(vaults: Vaults, tmp_path: Path) -> None:
    vault = make_vault(tmp_path / "v")
    (tmp_path / "a").write_bytes(b"a" * 100_000)
    (tmp_path / "b").write_bytes(b"b" * 100_000)
    run(vault.files.put([tmp_path / "a"]))
    assert run(vault.keyring.rotate_content_key()) == KeyRotation(1, 0)
    run(vault.files.put([tmp_path / "b"]))
    epochs = dict(
        vault.catalog.conn.execute("SELECT plain_len > 0, key_epoch FROM chunks").fetchall()
    )
    assert {r[0] for r in vault.catalog.conn.execute("SELECT key_epoch FROM chunks")} == {0, 1}, (
        epochs
    )
    assert run(vault.keyring.rotate_content_key(rewrap=True)) == KeyRotation(2, 2)
    assert {r[0] for r in vault.catalog.conn.execute("SELECT key_epoch FROM chunks")} == {2}
    for name in ("a", "b"):
        run(vault.files.get(name, tmp_path / f"{name}.out"))
        assert (tmp_path / f"{name}.out").read_bytes() == (tmp_path / name).read_bytes()
    run(vault.keyring.change_passphrase(PASS, "another one", FAST_KDF))
    run(vault.close())
    with pytest.raises(AuthError):
        Vault.open(tmp_path / "v", PASS)
    again = vaults.open(tmp_path / "v", "another one")
    with pytest.raises(AuthError):
        run(again.keyring.change_passphrase(PASS, "x", FAST_KDF))
    assert again.keys.entropy == vault.keys.entropy


def test_grants_follow_shares_moved_by_provider_rm(vaults: Vaults, tmp_path: Path) -> None:

    alice, _dirs = vault_with_external(tmp_path, external=3, k=2, n=3)
    vaults.track(alice)
    bob = vaults.create(tmp_path / "bob", providers=3, k=1, n=2)
    data = random.Random(12).randbytes(400_000)
    (tmp_path / "f.bin").write_bytes(data)
    run(alice.files.put([tmp_path / "f.bin"]))
    run(alice.sharing.add_contact(json.dumps(bob.sharing.contact_card("bob").to_json())))
    g = run(alice.sharing.share(names=["f.bin"], to="bob"))
    run(alice.fleet.remove_provider("ext-0"))
    assert alice.sharing.grants()[0].generation >= 1
    reader = run(open_grant(bob.keys, g.token))
    try:
        assert "ext-0" not in {s["provider"] for p in reader.manifest["packs"] for s in p["shares"]}
        assert run(read_all(reader, "f.bin")) == data
    finally:
        run(reader.close())


def test_grant_expiry_follows_the_vault_clock(people: dict[str, Vault], tmp_path: Path) -> None:
    """Expiry is checked against ``vault.clock``: a test moves the clock instead of sleeping."""
    alice, bob = people["alice"], people["bob"]
    (tmp_path / "a.txt").write_bytes(b"alpha\n")
    run(alice.files.put([tmp_path / "a.txt"]))
    now = [1_000_000_000.0]  # 2001: long past by the wall clock
    alice.clock = lambda: now[0]
    info = run(alice.sharing.share(names=["a.txt"], to=bob.did, expires=1_000_000_060))
    assert [g.state for g in alice.sharing.grants()] == ["active"]
    assert alice.sharing.grants()[0].created == 1_000_000_000
    now[0] += 61
    assert [g.state for g in alice.sharing.grants()] == ["expired"]
    with pytest.raises(UsageError, match="in the past"):
        run(alice.sharing.share(names=["a.txt"], to=bob.did, expires=1_000_000_060))
    with pytest.raises(GrantExpiredError):
        run(open_grant(bob.keys, info.token, now=int(alice.clock())))
