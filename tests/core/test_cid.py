"""CIDs, multihashes, varints and multibase: known answers, round trips, fuzzing."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ownvault.core import multibase
from ownvault.core.cid import (
    CID,
    DAG_PB,
    IDENTITY,
    MAX_CID_STRING,
    RAW,
    SHA2_256,
    SHA2_512,
    decode_varint,
    encode_varint,
    read_cid,
)
from ownvault.errors import FormatError, OwnvaultError
from tests.core.ipfs_corpus import corpus_cases
from tests.core.ipfs_inputs import load_vectors

ALL_VECTOR_CIDS = sorted(
    {v[p] for v in load_vectors()["vectors"] for p in ("kubo-v1", "kubo-v0", "unixfs-v1-2025")}
)
EMPTY_RAW = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
EMPTY_DIR_V0 = "QmUNLLsPACCz1vLxQVkXqqLX5R1X345qqfHbsf67hvA3Nn"


@pytest.mark.parametrize("text", ALL_VECTOR_CIDS)
def test_vector_cids_round_trip(text: str) -> None:
    cid = CID.parse(text)
    assert str(cid) == text
    assert CID.from_bytes(cid.bytes) == cid
    assert read_cid(cid.bytes + b"tail", 0) == (cid, len(cid.bytes))
    if cid.version == 1:
        for base in ("base32", "base36", "base58btc"):
            assert CID.parse(cid.encode(base)) == cid
        assert CID.parse(text.upper()) == cid  # case-insensitive base32 "B..."
    else:
        assert cid.to_v1().version == 1 and cid.to_v1().digest == cid.digest
        assert CID.parse(str(cid.to_v1())).to_v1() == cid.to_v1()


def test_known_answers() -> None:
    cid = CID.for_block(RAW, b"")
    assert str(cid) == EMPTY_RAW
    assert cid.digest == hashlib.sha256(b"").digest()
    assert cid.codec_name == "raw"
    assert cid.multihash == b"\x12\x20" + cid.digest
    assert str(CID.for_block(DAG_PB, b"\x0a\x02\x08\x01", version=0)) == EMPTY_DIR_V0
    assert cid.verify(b"") and not cid.verify(b"x")
    ident = CID.for_block(RAW, b"hi", hash_code=IDENTITY)
    assert ident.digest == b"hi" and ident.verify(b"hi")
    assert CID.for_block(RAW, b"", hash_code=SHA2_512).verify(b"")


def test_encode_rules() -> None:
    v0 = CID.parse(EMPTY_DIR_V0)
    with pytest.raises(FormatError):
        v0.encode("base32")
    assert v0.encode("base58btc") == EMPTY_DIR_V0
    with pytest.raises(FormatError):
        CID.parse(EMPTY_RAW).encode("base2")
    with pytest.raises(FormatError, match="CIDv0"):
        CID(0, RAW, SHA2_256, bytes(32))


@given(st.integers(0, (1 << 63) - 1))
def test_varint_round_trip(value: int) -> None:
    raw = encode_varint(value)
    assert decode_varint(raw) == (value, len(raw))


def test_varint_limits() -> None:
    with pytest.raises(FormatError, match="non-minimal"):
        decode_varint(b"\x81\x00")
    with pytest.raises(FormatError, match="too long"):
        decode_varint(b"\xff" * 9 + b"\x01")
    with pytest.raises(FormatError, match="truncated"):
        decode_varint(b"\x80")
    with pytest.raises(ValueError):
        encode_varint(-1)


@given(
    st.sampled_from([RAW, DAG_PB]),
    st.binary(min_size=32, max_size=32),
    st.sampled_from(["base32", "base36", "base58btc"]),
)
def test_cid_round_trip(codec: int, digest: bytes, base: str) -> None:
    cid = CID(1, codec, SHA2_256, digest)
    assert CID.parse(cid.encode(base)) == cid
    assert CID.from_bytes(cid.bytes) == cid


@given(st.binary(max_size=80))
def test_multibase_round_trips(data: bytes) -> None:
    assert multibase.b36_decode(multibase.b36_encode(data)) == data
    assert multibase.b16_decode(multibase.b16_encode(data)) == data
    assert multibase.decode("k" + multibase.b36_encode(data)) == data


@given(st.text(max_size=120))
def test_fuzz_parse_text(text: str) -> None:
    try:
        CID.parse(text)
    except OwnvaultError as exc:
        assert isinstance(exc, FormatError)


@given(st.binary(max_size=200))
def test_fuzz_from_bytes(raw: bytes) -> None:
    try:
        cid = CID.from_bytes(raw)
    except FormatError:
        return
    assert cid.bytes == raw


def test_length_limits() -> None:
    with pytest.raises(FormatError, match="too long"):
        CID.parse("b" + "a" * MAX_CID_STRING)
    with pytest.raises(FormatError, match="too long"):
        CID.from_bytes(b"\x01" * 1000)
    with pytest.raises(FormatError, match="too long"):
        multibase.b36_decode("1" * (multibase.MAX_MULTIBASE_LENGTH + 1))


@pytest.mark.parametrize(("path", "error", "message"), corpus_cases("cid"))
def test_corrupt_corpus(path: Path, error: type[Exception], message: str) -> None:
    with pytest.raises(OwnvaultError) as info:
        CID.parse(path.read_bytes().decode())
    assert type(info.value) is error
    assert message in str(info.value)
