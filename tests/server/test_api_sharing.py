"""Sharing over the API between two vaults, each behind its own server: identity and cards,
contacts, never-share tags, grants (share, list, document, revoke as a job), the
recipient's side (open, read, tampered / misaddressed / expired / revoked grants, each a
JSON error with a stable code), and guardian shares in the recovery kit."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from ownvault.core.grants import ContactCard
from ownvault.core.guardians import combine_guardian_shares
from ownvault.engine.sharing.reader import open_grant
from ownvault.errors import DataUnavailableError
from tests.engine.helpers import PASS, make_vault, run
from tests.server.apiserver import Live, serve

API = "/api/v1"


@dataclass
class Pair:
    alice: httpx.Client
    bob: httpx.Client
    alice_live: Live
    bob_live: Live


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    base = tmp_path_factory.mktemp("sharing")
    alice = make_vault(base / "alice")
    bob = make_vault(base / "bob", providers=2, k=1, n=2)
    (base / "a.txt").write_text("alpha\n")
    (base / "b.txt").write_text("beta\n" * 1000)
    (base / "blood.csv").write_text("date,value\n")
    run(alice.files.put([base / "a.txt"], name="docs/a.txt", tags=["work"]))
    run(alice.files.put([base / "b.txt"], name="docs/b.txt"))
    run(alice.files.put([base / "blood.csv"], name="blood.csv", tags=["health"]))
    try:
        with serve(alice) as a, serve(bob) as b, a.client() as ca, b.client() as cb:
            yield Pair(ca, cb, a, b)
    finally:
        run(alice.close())
        run(bob.close())


def error(r: httpx.Response) -> tuple[int, str]:
    return r.status_code, r.json()["error"]["code"]


def add_bob(p: Pair) -> None:
    card = p.bob.get(f"{API}/identity/card", params={"name": "Bob"}).text
    r = p.alice.post(f"{API}/contacts", json={"card": card})
    assert r.status_code == 201, r.text


def test_identity_and_contact_card(pair: Pair) -> None:
    doc = pair.bob.get(f"{API}/identity", params={"name": "Bob"}).json()
    assert doc["did"].startswith("did:key:z6Mk") and doc["agreement"].startswith("z6LS")
    card = ContactCard.from_json(json.dumps(doc["card"]))  # signed, verifies
    assert (card.did, card.name) == (doc["did"], "Bob")
    r = pair.bob.get(f"{API}/identity/card")
    assert r.headers["content-disposition"].startswith("attachment")
    assert ContactCard.from_json(r.text).did == doc["did"]


def test_contacts_add_list_remove_and_bad_cards(pair: Pair) -> None:
    a = pair.alice
    card = pair.bob.get(f"{API}/identity/card", params={"name": "Bob"}).json()
    forged = {**card, "name": "Mallory"}
    assert error(a.post(f"{API}/contacts", json={"card": json.dumps(forged)})) == (400, "integrity")
    assert error(a.post(f"{API}/contacts", json={"card": "{not json"})) == (400, "format")
    own = a.get(f"{API}/identity/card").text
    assert error(a.post(f"{API}/contacts", json={"card": own})) == (400, "usage")
    r = a.post(f"{API}/contacts", json={"card": json.dumps(card), "name": "bobby"})
    assert r.status_code == 201 and r.json()["name"] == "bobby"
    assert [c["name"] for c in a.get(f"{API}/contacts").json()["contacts"]] == ["bobby"]
    assert a.delete(f"{API}/contacts", params={"who": "bobby"}).json() == {"removed": "bobby"}
    assert error(a.delete(f"{API}/contacts", params={"who": "bobby"})) == (404, "not_found")
    assert a.get(f"{API}/contacts").json() == {"contacts": []}


def test_never_share_tag_is_a_clear_error(pair: Pair) -> None:
    add_bob(pair)
    a = pair.alice
    r = a.put(f"{API}/tags/policies", json={"tag": "health", "never_share": True})
    assert r.json() == {"tag": "health", "never_share": True}
    assert {"tag": "health", "never_share": True} in a.get(f"{API}/tags/policies").json()[
        "policies"
    ]
    r = a.post(f"{API}/grants", json={"names": ["blood.csv"], "to": "Bob"})
    assert error(r) == (409, "share_policy")
    assert "blood.csv" in r.json()["error"]["message"] and "health" in r.json()["error"]["message"]
    assert error(a.post(f"{API}/grants", json={"tag": "health", "to": "Bob"})) == (
        409,
        "share_policy",
    )
    assert error(a.post(f"{API}/grants", json={"names": ["docs/a.txt"], "to": "Nobody"})) == (
        404,
        "not_found",
    )
    assert (
        error(
            a.post(f"{API}/grants", json={"names": ["docs/a.txt"], "to": "Bob", "read_only": False})
        )[0]
        == 400
    )
    assert (
        error(
            a.post(f"{API}/grants", json={"names": ["docs/a.txt"], "to": "Bob", "expires": 1000})
        )[0]
        == 400
    )
    assert all(
        g["state"] != "active" or "blood.csv v1" not in g["items"]
        for g in a.get(f"{API}/grants").json()["grants"]
    )


def test_share_open_read_tamper_misaddress(pair: Pair) -> None:
    add_bob(pair)
    a, b = pair.alice, pair.bob
    expires = int(time.time()) + 3600
    r = a.post(f"{API}/grants", json={"prefix": "docs", "to": "Bob", "expires": expires})
    assert r.status_code == 201, r.text
    g = r.json()
    assert g["token"].startswith("ovgrant1:") and g["expires"] == expires
    assert sorted(g["items"]) == ["docs/a.txt v1", "docs/b.txt v1"]
    assert g["document"]["id"] == g["grant"] and g["document"]["access"] == "read"
    row = next(x for x in a.get(f"{API}/grants").json()["grants"] if x["grant"] == g["grant"])
    assert (row["contact"], row["state"], row["expires"]) == ("Bob", "active", expires)
    doc = a.get(f"{API}/grants/{g['grant'][:10]}/document")
    assert (
        doc.headers["content-disposition"].startswith("attachment") and doc.json() == g["document"]
    )

    # Bob opens it in his own server, from the JSON file or the string, and reads the bytes.
    opened = b.post(f"{API}/received", json={"grant": doc.text})
    assert opened.status_code == 200, opened.text
    assert opened.json()["from"] == a.get(f"{API}/identity").json()["did"]
    assert sorted(i["name"] for i in opened.json()["items"]) == ["docs/a.txt", "docs/b.txt"]
    assert b.post(f"{API}/received", json={"grant": g["token"]}).status_code == 200
    assert [x["grant"] for x in b.get(f"{API}/received").json()["grants"]] == [g["grant"]]
    got = b.get(f"{API}/received/{g['grant']}/content", params={"name": "docs/b.txt"})
    assert got.status_code == 200 and got.content == b"beta\n" * 1000
    assert got.headers["content-disposition"].startswith("attachment")
    assert error(b.get(f"{API}/received/{g['grant']}/content", params={"name": "blood.csv"})) == (
        404,
        "not_found",
    )

    # Tampered: any changed byte breaks the sender's signature; garbage is not a grant.
    altered = {**g["document"], "expires": None}
    assert error(b.post(f"{API}/received", json={"grant": json.dumps(altered)})) == (
        400,
        "integrity",
    )
    raw = json.loads(base64.urlsafe_b64decode(g["token"][9:] + "=="))
    raw["to"] = raw["from"]
    assert error(b.post(f"{API}/received", json={"grant": json.dumps(raw)})) == (400, "integrity")
    assert error(b.post(f"{API}/received", json={"grant": "ovgrant1:AAAA"})) == (400, "format")
    # Made for Bob: Alice's own server cannot open it.
    assert error(a.post(f"{API}/received", json={"grant": g["token"]})) == (403, "grant_recipient")
    assert error(b.get(f"{API}/received/{'0' * 32}")) == (404, "not_found")


def test_expired_grant(pair: Pair) -> None:
    add_bob(pair)
    soon = int(time.time()) + 3600
    g = pair.alice.post(
        f"{API}/grants", json={"names": ["docs/a.txt"], "to": "Bob", "expires": soon}
    ).json()
    assert pair.bob.post(f"{API}/received", json={"grant": g["token"]}).status_code == 200
    later = float(soon + 1)
    alice, bob = pair.alice_live.vault, pair.bob_live.vault
    alice.clock = bob.clock = lambda: later  # both servers read the vaults' clocks
    try:
        r = pair.bob.post(f"{API}/received", json={"grant": g["token"]})
        assert error(r) == (410, "grant_expired")
        r = pair.bob.get(f"{API}/received/{g['grant']}")  # reopened with the clock too
        assert error(r) == (410, "grant_expired")
        row = next(
            x for x in pair.alice.get(f"{API}/grants").json()["grants"] if x["grant"] == g["grant"]
        )
        assert row["state"] == "expired"
        r = pair.alice.post(
            f"{API}/grants", json={"names": ["docs/a.txt"], "to": "Bob", "expires": soon}
        )
        assert r.status_code == 400  # already in the past by the vault's clock
    finally:
        alice.clock = bob.clock = time.time


def wait_job(c: httpx.Client, job: dict[str, Any]) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while job["state"] == "running":
        assert time.monotonic() < deadline
        time.sleep(0.1)
        job = c.get(f"{API}/jobs/{job['id']}").json()
    return job


def test_revoke_as_a_job_then_nothing_reads(pair: Pair) -> None:
    add_bob(pair)
    a, b = pair.alice, pair.bob
    g = a.post(f"{API}/grants", json={"names": ["docs/b.txt"], "to": "Bob"}).json()
    assert b.post(f"{API}/received", json={"grant": g["token"]}).status_code == 200
    assert (
        b.get(f"{API}/received/{g['grant']}/content", params={"name": "docs/b.txt"}).status_code
        == 200
    )
    # What a recipient who kept the manifest holds: every chunk key and share place.
    kept = run(open_grant(pair.bob_live.vault.keys, g["token"]))

    assert error(a.post(f"{API}/grants/{'f' * 32}/revoke")) == (404, "not_found")
    r = a.post(f"{API}/grants/{g['grant']}/revoke")
    assert (
        r.status_code == 202 and r.json()["kind"] == "revoke" and r.json()["subject"] == g["grant"]
    )
    job = wait_job(a, r.json())
    assert job["state"] == "done", job
    assert job["result"]["chunks_rekeyed"] >= 1 and job["result"]["not_deleted"] == []
    assert job["total"] is not None and job["done"] == job["total"]
    row = next(x for x in a.get(f"{API}/grants").json()["grants"] if x["grant"] == g["grant"])
    assert row["state"] == "revoked" and row["revoked"] is not None

    assert error(b.get(f"{API}/received/{g['grant']}")) == (410, "grant_revoked")
    assert error(b.get(f"{API}/received/{g['grant']}/content", params={"name": "docs/b.txt"})) == (
        410,
        "grant_revoked",
    )
    with pytest.raises(DataUnavailableError):  # the old shares are gone, the new ones have new keys

        async def read_old() -> bytes:
            try:
                return b"".join([piece async for piece in kept.read("docs/b.txt")])
            finally:
                await kept.close()

        run(read_old())
    # The owner still reads it (re-encrypted).
    assert a.get(f"{API}/files/content", params={"name": "docs/b.txt"}).content == b"beta\n" * 1000


def test_guardian_shares_need_the_passphrase(pair: Pair) -> None:
    a = pair.alice
    body = {"passphrase": "wrong", "threshold": 2, "shares": 3}
    assert error(a.post(f"{API}/recovery/guardians", json=body)) == (403, "auth")
    assert (
        error(
            a.post(f"{API}/recovery/guardians", json={**body, "threshold": 1, "passphrase": PASS})
        )[0]
        == 400
    )
    r = a.post(f"{API}/recovery/guardians", json={**body, "passphrase": PASS})
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
    [group] = r.json()["groups"]
    assert (group["threshold"], group["shares"], len(group["mnemonics"])) == (2, 3, 3)
    assert all(len(m.split()) == 33 for m in group["mnemonics"])
    entropy = combine_guardian_shares(group["mnemonics"][1:])
    assert entropy == pair.alice_live.vault.keys.entropy
