"""core/nftmeta.py: token references, ABI, URIs, data: URIs, bounded JSON, rewriting, types."""

from __future__ import annotations

import base64
import contextlib
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ownvault.core.cid import CID
from ownvault.core.nftmeta import (
    INTERFACE_ERC721,
    SELECTOR_TOKEN_URI,
    SELECTOR_URI,
    TokenRef,
    check_media_type,
    decode_abi_bool,
    decode_abi_string,
    decode_data_uri,
    encode_supports_interface,
    encode_uint256_call,
    erc1155_uri,
    extract_uris,
    json_depth,
    parse_json_bounded,
    parse_metadata,
    parse_uri,
    rewrite_uris,
    sniff_media_type,
)
from ownvault.errors import FormatError, UsageError

CID1 = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
CID0 = "QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH"
ADDR = "0x" + "ab" * 20


def abi_string(s: bytes) -> bytes:
    return (32).to_bytes(32, "big") + len(s).to_bytes(32, "big") + s + bytes(-len(s) % 32)


# -- tokens and ABI -----------------------------------------------------------------------


def test_token_ref_parse_and_name() -> None:
    t = TokenRef.parse(f"eth:1:{ADDR.upper().replace('0X', '0x')}:42")
    assert (t.chain_id, t.contract, t.token_id) == (1, ADDR, 42)
    assert str(t) == f"eth:1:{ADDR}:42"
    assert t.vault_name == f"nft/eth-1/{ADDR}/42"
    assert TokenRef.parse(f"eth:137:{ADDR}:0x10").token_id == 16
    for bad in [
        "eth:1:0x12:1",
        f"btc:1:{ADDR}:1",
        f"eth:x:{ADDR}:1",
        f"eth:0:{ADDR}:1",
        f"eth:1:{ADDR}:-1",
        f"eth:1:{ADDR}:{1 << 256}",
        f"eth:1:{ADDR}",
    ]:
        with pytest.raises(UsageError):
            TokenRef.parse(bad)


def test_abi_calls_known_answers() -> None:
    # keccak-256 selectors (also checked against solc's output in tests/nft)
    assert encode_uint256_call(SELECTOR_TOKEN_URI, 1).hex() == "c87b56dd" + "00" * 31 + "01"
    assert encode_uint256_call(SELECTOR_URI, 255).hex() == "0e89341c" + "00" * 31 + "ff"
    assert encode_supports_interface(INTERFACE_ERC721).hex() == "01ffc9a7" + "80ac58cd" + "00" * 28
    with pytest.raises(UsageError):
        encode_uint256_call(SELECTOR_URI, 1 << 256)


def test_abi_string_and_bool_decoding() -> None:
    assert decode_abi_string(abi_string(b"ipfs://x"), max_bytes=100) == "ipfs://x"
    assert decode_abi_string(abi_string(b""), max_bytes=100) == ""
    assert decode_abi_string(abi_string(b"a" * 64), max_bytes=100) == "a" * 64
    assert decode_abi_bool(bytes(31) + b"\x01") is True
    assert decode_abi_bool(bytes(32)) is False
    good = abi_string(b"hello")
    hostile = {
        "short": good[:40],
        "unaligned": good + b"\x00",
        "bad offset": (64).to_bytes(32, "big") + good[32:],
        "huge length": good[:32] + (1 << 255).to_bytes(32, "big") + good[64:],
        "length past end": good[:32] + (40).to_bytes(32, "big") + good[64:],
        "dirty padding": good[:-1] + b"\x01",
        "not utf-8": abi_string(b"\xff\xfe"),
        "trailing word": good + bytes(32),
    }
    for why, data in hostile.items():
        with pytest.raises(FormatError):
            decode_abi_string(data, max_bytes=100)
        assert why
    with pytest.raises(FormatError):
        decode_abi_string(abi_string(b"x" * 101), max_bytes=100)
    for bad in [bytes(31) + b"\x02", b"\x01" + bytes(31), bytes(31), bytes(64)]:
        with pytest.raises(FormatError):
            decode_abi_bool(bad)


@given(st.binary(max_size=300))
def test_abi_string_never_crashes(data: bytes) -> None:
    with contextlib.suppress(FormatError):
        decode_abi_string(data, max_bytes=1000)


@given(st.text(max_size=200))
def test_abi_string_round_trip(text: str) -> None:
    assert decode_abi_string(abi_string(text.encode()), max_bytes=10_000) == text


def test_erc1155_id_substitution() -> None:
    assert erc1155_uri("https://x/{id}.json", 5) == "https://x/" + "0" * 63 + "5.json"
    assert erc1155_uri("ipfs://C/{id}", 0xABC) == "ipfs://C/" + "0" * 61 + "abc"
    assert erc1155_uri("no-id", 1) == "no-id"


# -- URIs --------------------------------------------------------------------------------------


def test_parse_uri_kinds() -> None:
    u = parse_uri(f"  ipfs://{CID1}/a%20b/c.png?x=1#f ")
    assert u is not None and u.kind == "ipfs" and str(u.cid) == CID1 and u.path == ("a b", "c.png")
    assert u.ipfs_uri == f"ipfs://{CID1}/a%20b/c.png"
    legacy = parse_uri(f"ipfs://ipfs/{CID0}")
    assert legacy is not None and legacy.cid == CID.parse(CID0) and legacy.path == ()
    gw = parse_uri(f"https://gw.example/ipfs/{CID1}/1.json")
    assert gw is not None and gw.kind == "ipfs" and gw.url is not None and gw.path == ("1.json",)
    plain = parse_uri("https://market.example/meta/1.json")
    assert plain is not None and plain.kind == "http"
    ar = parse_uri("ar://" + "A" * 43)
    assert ar is not None and ar.kind == "ar" and ar.url == "A" * 43
    assert parse_uri("data:,hi") is not None
    for other in [
        "ipns://k51abc",
        "file:///etc/passwd",
        "javascript:alert(1)",
        "ftp://x/y",
        "gopher://h/",
    ]:
        p = parse_uri(other)
        assert p is not None and p.kind == "other", other
    for text in ["just words", "note: hello", "12:30", "", "Tag: value"]:
        assert parse_uri(text) is None, text
    for bad in [
        "ipfs://notacid",
        f"ipfs://{CID1}/../x",
        "ar://short",
        "https:///nohost",
        "https://x/" + "a" * 9000,
    ]:
        with pytest.raises(FormatError):
            parse_uri(bad)


def test_data_uris() -> None:
    png = b"\x89PNG\r\n\x1a\n" + bytes(range(256))
    assert decode_data_uri(
        "data:image/png;base64," + base64.b64encode(png).decode(), max_bytes=1000
    ) == ("image/png", png)
    assert decode_data_uri("data:,Hello%2C%20World%21", max_bytes=100) == (
        "text/plain",
        b"Hello, World!",
    )
    assert decode_data_uri("data:text/plain;charset=utf-8,%E2%9C%93", max_bytes=100) == (
        "text/plain",
        "✓".encode(),
    )
    assert decode_data_uri("DATA:image/svg+xml;utf8,<svg/>", max_bytes=100) == (
        "image/svg+xml",
        b"<svg/>",
    )
    assert decode_data_uri("data:;base64,aGk", max_bytes=100) == ("text/plain", b"hi")  # no padding
    assert (
        decode_data_uri("data:application/json;base64,eyJh%0AIjoxfQ==", max_bytes=100)[1]
        == b'{"a":1}'
    )
    for bad in [
        "data:image/png;base64,@@@@",
        "data:nocomma",
        "data:bad type,x",
        "data:a/b;base64,a",
    ]:
        with pytest.raises(FormatError):
            decode_data_uri(bad, max_bytes=100)
    with pytest.raises(FormatError):  # decoded size over the limit
        decode_data_uri("data:;base64," + base64.b64encode(b"x" * 101).decode(), max_bytes=100)
    with pytest.raises(FormatError):  # refused on the encoded length, before decoding
        decode_data_uri("data:;base64," + "A" * 10_000_000, max_bytes=1000)
    with pytest.raises(FormatError):
        decode_data_uri("data:," + "%41" * 200, max_bytes=100)


@given(st.binary(max_size=500), st.sampled_from(["image/png", "application/json", "text/plain"]))
def test_data_uri_round_trip(data: bytes, media: str) -> None:
    uri = f"data:{media};base64,{base64.b64encode(data).decode()}"
    assert decode_data_uri(uri, max_bytes=500) == (media, data)


# -- JSON -------------------------------------------------------------------------------------


def test_bounded_json() -> None:
    assert json_depth('{"a": [1, {"b": "[[[["}]}') == 3
    assert parse_json_bounded(b'\xef\xbb\xbf{"a": 1}', max_bytes=100, max_depth=2) == {"a": 1}
    with pytest.raises(FormatError, match="deeper"):
        parse_json_bounded(b"[" * 100_000 + b"]" * 100_000, max_bytes=1 << 20, max_depth=32)
    with pytest.raises(FormatError, match="larger"):
        parse_json_bounded(b"[" + b"1," * 100 + b"1]", max_bytes=100, max_depth=32)
    for bad in [b'{"a": 1, "a": 2}', b"[NaN]", b"[Infinity]", b"\xff", b"{", b"1" * 5000, b"[1]x"]:
        with pytest.raises(FormatError):
            parse_json_bounded(bad, max_bytes=10_000, max_depth=32)
    with pytest.raises(FormatError, match="not a JSON object"):
        parse_metadata(b"[1]", max_bytes=100, max_depth=4)


@given(st.binary(max_size=200))
def test_bounded_json_never_crashes(raw: bytes) -> None:
    with contextlib.suppress(FormatError):
        parse_json_bounded(raw, max_bytes=1000, max_depth=8)


# -- extraction and rewriting -------------------------------------------------------------------

META = {
    "name": "Token #1",
    "description": "see https://example.com/about for more",  # prose, not a URI
    "image": f"ipfs://{CID1}",
    "animation_url": "https://market.example/a.mp4",
    "external_url": "https://market.example/t/1",
    "image_data": "<svg xmlns='http://www.w3.org/2000/svg'/>",
    "attributes": [
        {"trait_type": "bg", "value": "blue"},
        {"trait_type": "x/y~z", "value": "ar://" + "b" * 43},
    ],
    "properties": {
        "files": [{"uri": f"ipfs://{CID1}", "type": "image/png"}, {"uri": "data:,x"}],
        "note": "ipns://k51",
    },
}


def test_extract_uris_everywhere_in_order() -> None:
    refs = extract_uris(META, max_uris=100)
    got = [(r.pointer, r.role, r.uri.kind) for r in refs]
    assert got == [
        ("/image", "image", "ipfs"),
        ("/animation_url", "animation", "http"),
        ("/external_url", "external", "http"),
        ("/attributes/1/value", "other", "ar"),
        ("/properties/files/0/uri", "other", "ipfs"),
        ("/properties/files/1/uri", "other", "data"),
        ("/properties/note", "other", "other"),
    ]
    with pytest.raises(FormatError, match="more than 3"):
        extract_uris(META, max_uris=3)
    assert extract_uris({"a/b": {"~": "https://x.example/"}}, max_uris=5)[0].pointer == "/a~1b/~0"


def test_rewrite_uris_replaces_only_exact_values() -> None:
    mapping = {f"ipfs://{CID1}": "ipfs://NEW", "https://market.example/a.mp4": "ipfs://ANIM"}
    out = rewrite_uris(META, mapping)
    assert out["image"] == "ipfs://NEW" and out["animation_url"] == "ipfs://ANIM"
    assert out["properties"]["files"][0]["uri"] == "ipfs://NEW"
    assert out["description"] == META["description"] and out["external_url"] == META["external_url"]
    assert META["image"] == f"ipfs://{CID1}"  # the original is untouched
    assert json.loads(json.dumps(out))["attributes"] == META["attributes"]


def test_media_types() -> None:
    png = b"\x89PNG\r\n\x1a\nxxxx"
    assert sniff_media_type(png) == "image/png"
    assert sniff_media_type(b"  <svg xmlns=...>") == "image/svg+xml"
    assert sniff_media_type(b"<!DOCTYPE html><p>404") == "text/html"
    assert sniff_media_type(b"\x00\x00\x00\x18ftypmp42") == "video/mp4"
    assert check_media_type("image", "image/png", png) is None
    assert check_media_type("image", None, png) is None
    assert check_media_type("image", "application/octet-stream", png) is None
    assert check_media_type("image", "text/html; charset=utf-8", b"<html>") is not None
    assert check_media_type("image", "image/png", b"<!doctype html><p>not found") is not None
    assert check_media_type("image", "application/octet-stream", b'{"error": 1}') is not None
    assert check_media_type("animation", "text/html", b"<html>") is None
    assert check_media_type("animation", "application/zip", b"PK") is not None
    assert check_media_type("metadata", "application/json", b"{}") is None
    assert check_media_type("metadata", "application/vnd.api+json", b"{}") is None
    assert check_media_type("metadata", "text/html", b"<html>") is not None
    assert check_media_type("external", "text/html", b"<html>") is None
    assert check_media_type("other", "application/zip", b"PK") is None
