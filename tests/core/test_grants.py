"""Contact cards, grants, manifests and revocation notices: formats, signatures, tampering."""

from __future__ import annotations

import base64
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ownvault.core import crypto
from ownvault.core.grants import (
    ContactCard,
    Grant,
    canonical,
    decode_manifest,
    decode_revocation,
    encode_manifest,
    encode_revocation,
)
from ownvault.core.keys import VaultKeys
from ownvault.errors import (
    FormatError,
    GrantExpiredError,
    GrantRecipientError,
    IntegrityError,
    OwnvaultError,
)

ALICE = VaultKeys(bytes(32))
BOB = VaultKeys(bytes(range(32)))
CAROL = VaultKeys(bytes([7]) * 32)
GID = bytes(range(16))
MK = bytes([9]) * 32
NOW = 1_800_000_000


def make_grant(expires: int | None = NOW + 3600) -> Grant:
    bob = ContactCard.create(BOB, "bob", NOW)
    return Grant.create(
        ALICE, bob, GID, MK, created=NOW, expires=expires, providers=[("local", "file:///srv/p1")]
    )


def test_card_round_trip_and_forgery() -> None:
    card = ContactCard.create(BOB, "Bob", NOW)
    text = json.dumps(card.to_json())
    back = ContactCard.from_json(text)
    assert back.did == BOB.did and back.agreement == BOB.agreement_public and back.name == "Bob"
    # Someone swaps in their own key-agreement key: the signature no longer verifies.
    forged = card.to_json() | {
        "agreement": ContactCard.create(CAROL, None, NOW).to_json()["agreement"]
    }
    with pytest.raises(IntegrityError, match="signature"):
        ContactCard.from_json(json.dumps(forged))
    with pytest.raises(FormatError):
        ContactCard.from_json(json.dumps(card.to_json() | {"extra": 1}))
    with pytest.raises(FormatError):
        ContactCard.from_json("[]")


def test_grant_round_trip_string_and_file() -> None:
    g = make_grant()
    assert g.to_string().startswith("ovgrant1:") and len(g.to_string()) < 1200
    for text in (g.to_string(), json.dumps(g.to_json(), indent=2)):
        back = Grant.parse(text)
        assert back == g
        assert back.open_key(BOB, NOW) == MK
    assert g.to_json()["from"] == ALICE.did and g.to_json()["to"] == BOB.did


def test_grant_for_someone_else_expired_and_tampered() -> None:
    g = make_grant()
    with pytest.raises(GrantRecipientError, match="not for this vault"):
        g.open_key(CAROL, NOW)
    with pytest.raises(GrantExpiredError, match="expired"):
        g.open_key(BOB, NOW + 3600)
    doc = g.to_json()
    for field, value in (
        ("expires", None),
        ("to", CAROL.did),
        ("providers", [{"kind": "local", "url": "file:///evil"}]),
    ):
        with pytest.raises(IntegrityError, match="signature"):
            Grant.parse(json.dumps(doc | {field: value}))
    # Re-signing with another key does not help: the signature must match "from".
    raw = bytearray(base64.urlsafe_b64decode(doc["key"] + "=="))
    raw[40] ^= 1
    with pytest.raises(IntegrityError):
        Grant.parse(
            json.dumps(doc | {"key": base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()})
        )


GRANT = make_grant()


@settings(max_examples=60, deadline=None)
@given(pos=st.integers(0, 10_000), bit=st.integers(0, 7))
def test_any_flipped_bit_in_the_grant_string_is_refused(pos: int, bit: int) -> None:
    s = bytearray(GRANT.to_string().encode())
    pos = len("ovgrant1:") + pos % (len(s) - len("ovgrant1:"))
    s[pos] ^= 1 << bit
    try:
        g = Grant.parse(bytes(s))
    except OwnvaultError:
        return
    # Only a flip that decodes to the very same bytes (unused base64 bits) may be accepted.
    assert g == GRANT


def test_manifest_and_revocation() -> None:
    body = {
        "grant": GID.hex(),
        "generation": 3,
        "items": [],
        "chunks": [],
        "packs": [],
        "providers": [],
    }
    data = encode_manifest(ALICE, MK, GID, 3, body)
    assert decode_manifest(ALICE.did, MK, GID, 3, data) == body
    with pytest.raises(IntegrityError):
        decode_manifest(ALICE.did, MK, GID, 4, data)  # another generation
    with pytest.raises(IntegrityError, match="signature"):
        decode_manifest(CAROL.did, MK, GID, 3, data)  # not from this sender
    flipped = bytearray(data)
    flipped[-1] ^= 1
    with pytest.raises(IntegrityError):
        decode_manifest(ALICE.did, MK, GID, 3, bytes(flipped))
    notice = encode_revocation(ALICE, GID, NOW)
    assert decode_revocation(ALICE.did, GID, notice) == NOW
    with pytest.raises(IntegrityError):
        decode_revocation(CAROL.did, GID, notice)


def test_hpke_is_bound_to_recipient_and_info() -> None:
    sealed = crypto.hpke_seal(BOB.agreement_public, b"secret", b"info")
    assert crypto.hpke_open(BOB.agreement, sealed, b"info") == b"secret"
    with pytest.raises(IntegrityError):
        crypto.hpke_open(CAROL.agreement, sealed, b"info")
    with pytest.raises(IntegrityError):
        crypto.hpke_open(BOB.agreement, sealed, b"other")


def test_canonical_json() -> None:
    assert canonical({"b": 1, "a": "é"}) == '{"a":"é","b":1}'.encode()
