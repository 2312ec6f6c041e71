from __future__ import annotations

import hashlib

import pytest
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from hypothesis import given
from hypothesis import strategies as st

from ownvault.core import crypto
from ownvault.core.crypto import Argon2Params
from ownvault.core.keys import (
    KEY_LABELS,
    VaultKeys,
    did_key_from_ed25519,
    ed25519_from_did_key,
    entropy_to_phrase,
    phrase_to_entropy,
    phrase_to_seed,
)
from ownvault.core.keystore import Keystore
from ownvault.errors import AuthError, FormatError, IntegrityError

# Official BIP-39 test vectors (trezor/python-mnemonic vectors.json, passphrase "TREZOR").
BIP39 = [
    (
        "0000000000000000000000000000000000000000000000000000000000000000",
        "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon "
        "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon "
        "abandon art",
        "bda85446c68413707090a52022edd26a1c9462295029f2e60cd7c4f2bbd3097170af7a4d73245cafa9c3cca8d5"
        "61a7c3de6f5d4a10be8ed2a5e608d68f92fcc8",
    ),
    (
        "7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f",
        "legal winner thank year wave sausage worth useful legal winner thank year wave sausage "
        "worth useful legal winner thank year wave sausage worth title",
        "bc09fca1804f7e69da93c2f2028eb238c227f2e9dda30cd63699232578480a4021b146ad717fbb7e451ce9eb83"
        "5f43620bf5c514db0f8add49f5d121449d3e87",
    ),
    (
        "00000000000000000000000000000000",
        "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about",
        "c55257c360c07c72029aebc1b53c05ed0362ada38ead3e3e9efa3708e53495531f09a6987599d18264c1e1c92f"
        "2cf141630c7a3c4ab7c81b2f001698e7463b04",
    ),
]


@pytest.mark.parametrize(("entropy", "phrase", "seed"), BIP39)
def test_bip39_official_vectors(entropy: str, phrase: str, seed: str) -> None:
    assert entropy_to_phrase(bytes.fromhex(entropy)) == phrase
    assert phrase_to_entropy(phrase) == bytes.fromhex(entropy)
    assert phrase_to_seed(phrase, "TREZOR").hex() == seed


def test_phrase_errors_are_clear() -> None:
    good = BIP39[0][1]
    with pytest.raises(AuthError, match="checksum"):
        phrase_to_entropy(good.replace("art", "abandon"))
    with pytest.raises(AuthError, match="not a BIP-39 word"):
        phrase_to_entropy(good.replace("art", "artx"))
    with pytest.raises(AuthError, match="12 to 24 words"):
        phrase_to_entropy("abandon abandon")
    assert phrase_to_entropy("  " + good.upper() + " ") == bytes(32)


def test_derived_keys_are_distinct_and_stable() -> None:
    k1 = VaultKeys(bytes(32))
    k2 = VaultKeys.from_phrase(BIP39[0][1])
    values = {getattr(k1, n) for n in KEY_LABELS}
    assert len(values) == len(KEY_LABELS)
    assert all(getattr(k1, n) == getattr(k2, n) for n in KEY_LABELS)
    assert k1.did.startswith("did:key:z6Mk")
    assert "bda8" not in repr(k1) and k1.content.hex() not in repr(k1)


def test_derivation_matches_an_independent_computation() -> None:
    """The hierarchy of docs/design.md, recomputed here with hashlib/cryptography directly."""

    phrase = BIP39[0][1]
    seed = hashlib.pbkdf2_hmac("sha512", phrase.encode(), b"mnemonic", 2048)
    root = HKDF(SHA256(), 32, None, b"ownvault/v1/root").derive(seed)
    keys = VaultKeys.from_phrase(phrase)
    for name, label in KEY_LABELS.items():
        assert getattr(keys, name) == HKDF(SHA256(), 32, None, label).derive(root)
    # Known answer for the all-zero entropy (listed in docs/design.md, "Keys").
    assert keys.did == "did:key:z6MkprCfAH5r3NDEaG9bhop7iks7ohTeNRZKpNULharGqWRb"


def test_did_key_roundtrip_and_rejects() -> None:
    pub = crypto.ed25519_public(bytes(range(32)))
    did = did_key_from_ed25519(pub)
    assert ed25519_from_did_key(did) == pub
    for bad in ["did:key:zzzz", "did:web:x", "did:key:z" + "1" * 50, 5]:
        with pytest.raises(FormatError):
            ed25519_from_did_key(bad)  # type: ignore[arg-type]


@given(st.binary(max_size=2000), st.binary(max_size=64))
def test_seal_open_roundtrip(data: bytes, ad: bytes) -> None:
    key = bytes(32)
    assert crypto.open_box(key, crypto.seal(key, data, ad), ad) == data


def test_seal_detects_tampering() -> None:
    key = crypto.random_bytes(32)
    box = crypto.seal(key, b"secret data", b"ad")
    for i in range(len(box)):
        bad = bytearray(box)
        bad[i] ^= 1
        with pytest.raises((IntegrityError, FormatError)):
            crypto.open_box(key, bytes(bad), b"ad")
    with pytest.raises(IntegrityError):
        crypto.open_box(key, box, b"other ad")
    with pytest.raises(FormatError):
        crypto.open_box(key, box[:10], b"ad")


def test_keystore_roundtrip_and_wrong_passphrase() -> None:
    params = Argon2Params(1, 8192, 1)
    ks = Keystore.create(bytes(range(32)), "correct horse", b"v" * 16, "did:key:zX", params)
    text = ks.to_json()
    assert bytes(range(32)).hex() not in text
    back = Keystore.from_json(text)
    assert back.unlock("correct horse") == bytes(range(32))
    with pytest.raises(AuthError):
        back.unlock("wrong")
    for bad in ["{}", "[]", "not json", '{"format": "ownvault-keystore", "version": 9}']:
        with pytest.raises(FormatError):
            Keystore.from_json(bad)
    with pytest.raises(FormatError):
        Keystore.from_json("x" * 100_000)
