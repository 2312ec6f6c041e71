"""Our HPKE (cryptography/OpenSSL) against an independent RFC 9180 implementation (pyhpke)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pyhpke import AEADId, CipherSuite, KDFId, KEMId

from ownvault.core import crypto
from ownvault.core.keys import VaultKeys
from ownvault.errors import IntegrityError

SUITE = CipherSuite.new(KEMId.DHKEM_X25519_HKDF_SHA256, KDFId.HKDF_SHA256, AEADId.AES256_GCM)
BOB = VaultKeys(bytes(range(32)))


@settings(max_examples=25, deadline=None)
@given(pt=st.binary(max_size=200), info=st.binary(max_size=80))
def test_both_directions_agree(pt: bytes, info: bytes) -> None:
    sealed = crypto.hpke_seal(BOB.agreement_public, pt, info)
    skr = SUITE.kem.deserialize_private_key(BOB.agreement)
    assert SUITE.create_recipient_context(sealed[:32], skr, info=info).open(sealed[32:]) == pt
    enc, sender = SUITE.create_sender_context(
        SUITE.kem.deserialize_public_key(BOB.agreement_public), info=info
    )
    assert crypto.hpke_open(BOB.agreement, enc + sender.seal(pt), info) == pt


def test_a_flipped_byte_is_refused() -> None:
    sealed = bytearray(crypto.hpke_seal(BOB.agreement_public, b"k" * 37, b"i"))
    for pos in (0, 31, 32, len(sealed) - 1):
        bad = bytearray(sealed)
        bad[pos] ^= 0x40
        with pytest.raises(IntegrityError):
            crypto.hpke_open(BOB.agreement, bytes(bad), b"i")
