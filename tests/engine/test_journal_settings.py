"""Settings through the catalog journal (``engine.store.journalsettings``): providers, the
policy, contacts, tag policies, grants and publications changed on one device reach the
others as ``set`` ops, merged last-writer-wins per key by (HLC, device); a revoked grant
stays revoked; concurrent changes are merged, never refused."""

from __future__ import annotations

import json
import random
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from ownvault.core.journal import Record
from ownvault.core.journalops import Setting
from ownvault.core.journalplaces import SETTING_TABLES
from ownvault.engine.store.catalog.journalsettings import SIMPLE
from ownvault.engine.store.placement import Policy
from ownvault.engine.vault import Vault

from .helpers import Vaults, make_vault, run
from .test_journal_crash import kill_at
from .test_journalsync import _recover, two  # noqa: F401 - the fixture


@contextmanager
def offline(v: Vault, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """``v`` pulls nothing: what it writes is concurrent with what others wrote."""

    async def nothing(*_args: object) -> list[Record]:
        return []

    with monkeypatch.context() as m:
        m.setattr(v.ctx.journal, "pull", nothing)
        yield


def _policies(v: Vault) -> dict[str, bool]:
    return {p.tag: p.never_share for p in v.sharing.tag_policies()}


def _last(records: list[Record], v: Vault) -> Record:
    return [r for r in records if r.device == v.ctx.journal.device.id][-1]


def test_every_setting_table_on_the_wire_is_one_the_catalog_reads_and_writes() -> None:
    assert set(SETTING_TABLES) == set(SIMPLE) | {"grant", "publication"}


def test_different_settings_changed_concurrently_are_both_kept(
    two: tuple[Vault, Vault, Path],  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    a, b, _tmp = two
    with offline(a, monkeypatch):
        run(a.sharing.set_tag_policy("health", never_share=True))
    with offline(b, monkeypatch):
        run(b.sharing.set_tag_policy("work", never_share=True))  # no error
    run(a.ctx.pull())
    run(b.ctx.pull())
    assert _policies(a) == _policies(b) == {"health": True, "work": True}


def test_one_key_changed_concurrently_the_later_clock_wins_on_both_devices(
    two: tuple[Vault, Vault, Path],  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    a, b, _tmp = two
    with offline(a, monkeypatch):
        run(a.sharing.set_tag_policy("x", never_share=True))
    with offline(b, monkeypatch):
        run(b.sharing.set_tag_policy("x", never_share=False))
    history = run(a.ctx.journal.history())
    ra, rb = _last(history, a), _last(history, b)
    assert (
        Setting("tag_policy", "x", json.dumps({"never_share": 1}, separators=(",", ":"))) in ra.ops
    )
    later = max((ra.hlc, ra.device, True), (rb.hlc, rb.device, False))[2]
    run(a.ctx.pull())
    run(b.ctx.pull())
    assert _policies(a) == _policies(b) == {"x": later}
    # Applying the records again (another pull from scratch) changes nothing: an older
    # write never overwrites a newer one.
    run(b.ctx.pull())
    assert _policies(b) == {"x": later}


def test_a_provider_and_a_policy_added_on_one_device_are_used_on_the_other(
    two: tuple[Vault, Vault, Path],  # noqa: F811
) -> None:
    a, b, tmp = two
    extra = tmp / "extra"
    run(a.fleet.add_provider("extra", extra.as_uri(), jurisdiction="FR"))
    run(a.fleet.set_policy(Policy(2, 7)))
    data = random.Random(5).randbytes(200_000)
    (tmp / "doc").write_bytes(data)
    run(a.files.put([tmp / "doc"]))
    placed = {
        p.name
        for pack in a.catalog.live_packs()
        for s in a.catalog.shares_of(pack)
        for p in a.catalog.providers()
        if p.id == s.provider
    }
    assert "extra" in placed
    run(b.ctx.pull())
    assert "extra" in {p.name for p in b.catalog.providers()}
    assert (b.policy.k, b.policy.n) == (2, 7)

    async def read() -> bytes:
        return b"".join([p async for p in b.files.read("doc")])

    assert run(read()) == data


def test_a_publication_reaches_the_other_device_and_an_unpublish_too(
    two: tuple[Vault, Vault, Path],  # noqa: F811
) -> None:
    a, b, tmp = two
    (tmp / "page.html").write_bytes(b"<p>hello</p>")
    run(a.files.put([tmp / "page.html"]))
    pub = run(a.ipfs.publish("page.html"))
    run(b.ctx.pull())
    listed = b.ipfs.dags(published=True)
    assert [(d.name, d.cid, d.version) for d in listed] == [("page.html", pub.dag.root, 1)]
    run(a.ipfs.unpublish("page.html"))
    run(b.ctx.pull())
    assert b.ipfs.dags(published=True) == []


def test_a_grant_reaches_the_other_device_and_a_revocation_wins(
    two: tuple[Vault, Vault, Path],  # noqa: F811
    vaults: Vaults,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    a, b, tmp = two
    bob = vaults.track(make_vault(tmp / "bob", providers=2, k=1, n=2))
    run(a.sharing.add_contact(json.dumps(bob.sharing.contact_card("bob").to_json())))
    (tmp / "plan.txt").write_bytes(b"the plan")
    run(a.files.put([tmp / "plan.txt"]))
    info = run(a.sharing.share(names=["plan.txt"], to="bob"))
    run(b.ctx.pull())
    assert [c.name for c in b.sharing.contacts()] == ["bob"]
    granted = {g.grant: g for g in b.sharing.grants()}
    assert info.grant_id in granted and granted[info.grant_id].state == "active"
    row = a.catalog.conn.execute(
        "SELECT id FROM grants WHERE grant_id = ?", (bytes.fromhex(info.grant_id),)
    ).fetchone()[0]

    # B revokes it while A, not seeing that, changes the grant later (a new manifest).
    with offline(b, monkeypatch):
        run(b.sharing.revoke(info.grant_id))

    async def bump() -> None:
        async with a.ctx.write():
            with a.catalog.transaction():
                a.catalog.grants.set_generation(row, 7)

    with offline(a, monkeypatch):
        run(bump())
    run(a.ctx.pull())
    run(b.ctx.pull())
    for v in (a, b):
        states = {g.grant: g.state for g in v.sharing.grants()}
        assert states[info.grant_id] == "revoked", v


CHILD = textwrap.dedent(
    """
    import asyncio, sys, time
    from ownvault.engine.vault import Vault

    path, point, passphrase = sys.argv[1], sys.argv[2], sys.argv[3]
    vault = Vault.open(path, passphrase)
    js = vault.ctx.journal
    written = js._write_copies

    async def stop(targets, name, data):
        if point == "before":
            print("stopped", flush=True)
            time.sleep(600)
        out = await written(targets, name, data)
        print("stopped", flush=True)  # the record is durable; the head is not moved yet
        time.sleep(600)
        return out

    async def main():
        await vault.ctx.pull()
        js._write_copies = stop
        await vault.sharing.set_tag_policy("crash", never_share=True)

    asyncio.run(main())
    """
)


@pytest.mark.parametrize("point", ["before", "after"])
def test_a_settings_change_killed_mid_commit_reaches_the_other_device_once(
    two: tuple[Vault, Vault, Path],  # noqa: F811
    vaults: Vaults,
    point: str,
) -> None:
    """kill -9 of a real process changing a setting, before its record is written and
    after it is written but before the head moved: the next commit sends it (or adopts
    it), once; the other device then holds it."""
    a, b, _tmp = two
    path = a.path
    vaults.close(a)
    kill_at(path, point, CHILD)
    a = vaults.open(path)
    assert _policies(a) == {"crash": True}  # committed locally before the append
    run(a.sharing.set_tag_policy("after", never_share=False))
    run(b.ctx.pull())
    assert _policies(b) == {"crash": True, "after": False}
    sets = [
        op
        for r in run(a.ctx.journal.history())
        for op in r.ops
        if isinstance(op, Setting) and op.key == "crash"
    ]
    assert len(sets) == 1


def test_a_setting_that_is_not_a_row_of_its_table_is_left_out_with_a_warning(
    two: tuple[Vault, Vault, Path],  # noqa: F811
) -> None:
    """A member device writing malformed settings (signed, well-formed ops whose values are
    not rows of their table) does not stop the pull: each is left out, named."""
    a, b, _tmp = two
    journal = a.ctx.journal
    run(a.ctx.pull())
    bad = [
        Setting("tag_policy", "x", '{"bogus":1}'),
        Setting("tag_policy", "y", "[1, 2"),
        Setting("contact", "did:key:z", '{"name":{"a":1},"card":"c","added_at":1}'),
        Setting("meta", "schema_version", '{"value":"99"}'),
        Setting("grant", "not-hex", None),
        Setting("tag_policy", "good", '{"never_share":1}'),
    ]
    run(journal.append(journal.device, journal.body(bad)))
    warnings: list[str] = []
    b.warn = warnings.append
    run(b.ctx.pull())
    assert _policies(b) == {"good": True}
    assert b.catalog.meta("schema_version") != "99"
    left_out = [w for w in warnings if "left out" in w]
    assert len(left_out) == 5, warnings


def test_three_devices_setting_one_key_and_others_at_once_converge(
    two: tuple[Vault, Vault, Path],  # noqa: F811
    vaults: Vaults,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Three devices, none seeing the others: each sets the same tag policy its own way and
    one key of its own; after every device pulled, all three hold every own key and the
    same value for the shared one: the write of the latest (HLC, device)."""
    a, b, tmp = two
    c = _recover(a, tmp / "c", vaults)
    values = {a: True, b: False, c: True}
    for v, name in ((a, "a"), (b, "b"), (c, "c")):
        with offline(v, monkeypatch):
            run(v.sharing.set_tag_policy("shared", never_share=values[v]))
            run(v.sharing.set_tag_policy(f"own-{name}", never_share=True))
    history = run(a.ctx.journal.history())
    writes = []
    for v in (a, b, c):
        mine = [r for r in history if r.device == v.ctx.journal.device.id]
        shared = [r for r in mine if any(getattr(op, "key", None) == "shared" for op in r.ops)]
        writes.append((shared[-1].hlc, shared[-1].device, values[v]))
    winner = max(writes)[2]
    for _ in range(2):  # every device sees every record (the order of pulls varies)
        for v in (c, b, a):
            run(v.ctx.pull())
    want = {"shared": winner, "own-a": True, "own-b": True, "own-c": True}
    assert _policies(a) == _policies(b) == _policies(c) == want
