"""providers/contentcoding.py: content codings decoded with a bound on the bytes produced."""

from __future__ import annotations

import gzip
import os
import zlib
from collections.abc import Iterator

import pytest

from ownvault.providers.contentcoding import (
    MAX_CODINGS,
    PIECE,
    BadContentCoding,
    BodyTooLarge,
    ContentDecoder,
)
from tests.nft.market import Market

from .bombs import MiB, bomb, fetch_in_child

PEAK_BOUND = 32 * MiB  # what one bounded fetch may add to the process's peak memory


def decode(header: str | None, raw: bytes, limit: int = 10 * MiB, step: int = 4096) -> bytes:
    d = ContentDecoder(header, limit)
    out = bytearray()
    for i in range(0, len(raw), step):
        for piece in d.decode(raw[i : i + step]):
            assert len(piece) <= PIECE
            out += piece
    d.finish()
    return bytes(out)


DATA = os.urandom(3000) + bytes(300_000) + b"tail"


def test_every_coding_and_stack_round_trips() -> None:
    raw_deflate = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
    cases = {
        None: DATA,
        "identity": DATA,
        "gzip": gzip.compress(DATA),
        "x-gzip": gzip.compress(DATA),
        "deflate": zlib.compress(DATA),
        "Deflate": raw_deflate.compress(DATA) + raw_deflate.flush(),  # raw, as some servers send
        "deflate, gzip": gzip.compress(zlib.compress(DATA)),
        "gzip, identity, gzip": gzip.compress(gzip.compress(DATA)),
    }
    for header, raw in cases.items():
        assert decode(header, raw) == DATA, header
        assert decode(header, raw, step=1) == DATA, header


@pytest.mark.parametrize("header", ["br", "zstd", "compress", "gzip, br", "exi"])
def test_unknown_codings_are_refused(header: str) -> None:
    with pytest.raises(BadContentCoding, match="unsupported"):
        ContentDecoder(header, MiB)


def test_too_many_codings_and_broken_streams_are_refused() -> None:
    with pytest.raises(BadContentCoding, match="stacked"):
        ContentDecoder(", ".join(["gzip"] * (MAX_CODINGS + 1)), MiB)
    with pytest.raises(BadContentCoding, match="ends early"):
        decode("gzip", gzip.compress(DATA)[:-20])
    with pytest.raises(BadContentCoding, match="corrupt"):
        decode("gzip", b"not gzip at all")


@pytest.mark.parametrize(
    ("codings", "header"),
    [
        (("gzip",), "gzip"),
        (("gzip", "gzip"), "gzip, gzip"),
        (("deflate",), "deflate"),
        (("raw-deflate", "gzip"), "deflate, gzip"),
        (("gzip",) * 5, "gzip, gzip, gzip, gzip, gzip"),
    ],
)
def test_bombs_stop_at_the_limit_piece_by_piece(codings: tuple[str, ...], header: str) -> None:
    d = ContentDecoder(header, MiB)
    seen = 0
    with pytest.raises(BodyTooLarge):
        for piece in d.decode(bomb(codings)):
            assert len(piece) <= PIECE
            seen += len(piece)
    assert MiB - PIECE < seen <= MiB  # stopped at the first piece past the limit


@pytest.fixture(scope="module")
def hostile() -> Iterator[Market]:
    with Market() as m:
        yield m


def test_ipfs_transport_bounds_a_bomb_by_bytes_decoded(hostile: Market) -> None:
    # A gateway or pinning service answering 1 KB that inflates to 256 MiB through two
    # gzip layers: refused at the 1 MiB limit, and the process's peak barely moves.
    raw = bomb(("gzip", "gzip"))
    assert len(raw) < 64 * 1024
    url = hostile.add("/ipfs/bomb", raw, headers={"Content-Encoding": "gzip, gzip"})
    got = fetch_in_child("ipfs", url, MiB)
    assert got.get("error") == "FormatError", got
    assert "over 1048576 bytes" in got["message"]
    assert got["peak_growth"] < PEAK_BOUND, got
    url = hostile.add("/ipfs/brotli", b"\x0b\x02\x80hi\x03", headers={"Content-Encoding": "br"})
    got = fetch_in_child("ipfs", url, MiB)
    assert got.get("error") == "ProviderPermanentError" and "unsupported" in got["message"], got
