"""The exact errors for the crashes the fuzz campaign found in core decoders (one test per
fix; each failed before it with an exception outside the ownvault tree or a broken round
trip). The crashing inputs are also in the replayed corpus (``regress-*`` fixtures)."""

from __future__ import annotations

import base64
import zlib

import pytest

from ownvault.core import crypto, multibase, nftmeta
from ownvault.core.capability import CAPABILITY_LABEL, ReadCapability
from ownvault.core.cid import CID, RAW, encode_varint
from ownvault.core.dagpb import decode_node, decode_unixfs
from ownvault.core.grants import ContactCard, Grant, decode_revocation
from ownvault.core.keystore import Keystore
from ownvault.core.snapshot import LOCATOR_AD, decode_locator, decode_snapshot
from ownvault.errors import FormatError
from tests.fuzz import targets as t

DEEP = b"[" * 3000 + b"]" * 3000
OVER_64_BITS = b"\xff" * 9 + b"\x7f"  # a 10-byte varint of 2**70 - 1


def test_protobuf_varint_over_64_bits_is_refused() -> None:
    cid = CID.for_block(RAW, b"x").bytes
    inner = b"\x0a" + encode_varint(len(cid)) + cid + b"\x18" + OVER_64_BITS
    with pytest.raises(FormatError, match="overflows 64 bits"):
        decode_node(b"\x12" + encode_varint(len(inner)) + inner)
    with pytest.raises(FormatError, match="overflows 64 bits"):
        decode_unixfs(bytes.fromhex("080218ac0220ffff6420c801420b08fbffffffffffffffff07"))
    with pytest.raises(FormatError, match="overflows 64 bits"):
        decode_unixfs(b"\x08\x02\x18" + OVER_64_BITS)
    # the largest uint64 still decodes
    assert decode_unixfs(b"\x08\x02\x18" + b"\xff" * 9 + b"\x01").filesize == (1 << 64) - 1


def test_base16_with_whitespace_is_refused() -> None:
    with pytest.raises(FormatError, match="hex digits"):
        multibase.decode("f" + "\x0c" * 16)
    with pytest.raises(FormatError, match="hex digits"):
        multibase.decode("f01 02")
    assert multibase.decode("f0102") == b"\x01\x02"


def test_snapshot_plaintext_without_version_byte() -> None:
    ad = b"ownvault/v1/catalog-snapshot" + t.SEQ.to_bytes(8, "big")
    with pytest.raises(FormatError, match="unsupported catalog snapshot version missing"):
        decode_snapshot(t.KEY, t.SEQ, crypto.seal(t.KEY, b"OVCS", ad))
    sealed = crypto.seal(t.KEY, b"OVCS\x01" + zlib.compress(b"db"), ad)
    assert decode_snapshot(t.KEY, t.SEQ, sealed) == b"db"


def test_url_with_unbalanced_bracket() -> None:
    with pytest.raises(FormatError, match="malformed URL"):
        nftmeta.parse_uri("http://[::1/x")
    with pytest.raises(FormatError, match="malformed URL"):
        nftmeta.parse_uri("https://i]fs.io/ipfq/QmYwAP")


def test_uri_with_lone_surrogate() -> None:
    cid = "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy"
    with pytest.raises(FormatError, match="not valid Unicode"):
        nftmeta.parse_uri(f"ipfs://{cid}/\udcff\udcffa%1Fb")
    assert nftmeta.parse_uri("just text \udcff") is None  # not a URI: still plain text
    assert nftmeta.parse_uri(f"ipfs://{cid}/a%1Fb").ipfs_uri == f"ipfs://{cid}/a%1Fb"  # type: ignore[union-attr]


def test_data_uri_with_lone_surrogate() -> None:
    for text in ("data:,\udc80", "data:,%41\udc80"):
        with pytest.raises(FormatError, match="not valid Unicode"):
            nftmeta.decode_data_uri(text, max_bytes=4096)


@pytest.mark.parametrize("deep", [DEEP, b'{"a":' * 1500 + b"1" + b"}" * 1500])
def test_json_nested_too_deep(deep: bytes) -> None:
    alice = t.alice_keys()
    with pytest.raises(FormatError, match="contact card is not JSON"):
        ContactCard.from_json(deep)
    with pytest.raises(FormatError, match="grant is not JSON"):
        Grant.parse(deep)
    with pytest.raises(FormatError, match="keystore is malformed"):
        Keystore.from_json(deep)
    gid = t.GRANT_ID
    body = deep
    notice = b"OVGR\x01" + alice.sign(b"ownvault/v1/grant-revocation" + gid + body) + body
    with pytest.raises(FormatError, match="revocation notice is not JSON"):
        decode_revocation(alice.did, gid, notice)
    locator = b"OVLC\x01" + crypto.seal(t.KEY, deep, LOCATOR_AD + t.SEQ.to_bytes(8, "big"))
    with pytest.raises(FormatError, match="catalog locator is malformed"):
        decode_locator(t.KEY, t.SEQ, locator)


def _token(body: bytes) -> str:
    def b64(raw: bytes) -> str:
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    return b64(body) + "." + b64(t.alice_keys().sign(CAPABILITY_LABEL + body))


def test_capability_nested_too_deep_and_unhashable_ops() -> None:
    with pytest.raises(FormatError, match="capability is not JSON"):
        ReadCapability.parse(_token(b"[" * 1400 + b"]" * 1400))
    body = t.capability_seeds()[1][1:].replace(b'"ops":["get","list","stat"]', b'"ops":[[1]]')
    with pytest.raises(FormatError, match="capability ops malformed"):
        ReadCapability.parse(_token(body))


def test_keystore_infinite_cost() -> None:
    good = t.keystore_seeds()[0]
    with pytest.raises(FormatError, match="keystore is malformed"):
        Keystore.from_json(good.replace(b'"time_cost": 1', b'"time_cost": Infinity'))
