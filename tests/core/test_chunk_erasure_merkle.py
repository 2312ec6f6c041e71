from __future__ import annotations

import itertools
import os
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ownvault.core.chunking import DEFAULT_CHUNKER, Chunker, ChunkerParams
from ownvault.core.erasure import ErasureCode
from ownvault.core.merkle import BLOCK_SIZE, merkle_proof, merkle_root, verify_proof
from ownvault.core.pack import (
    MAX_PACK_SIZE,
    PackBuilder,
    ShareHeader,
    decode_share,
    encode_share,
    pack_size_class,
)
from ownvault.errors import FormatError, UsageError

SMALL = ChunkerParams("test-small", 1024, 4096, 16384)


def chunk_all(params: ChunkerParams, data: bytes, blocks: list[int]) -> list[bytes]:
    c = Chunker(params)
    out: list[bytes] = []
    pos = 0
    for b in blocks:
        out += c.feed(data[pos : pos + b])
        pos += b
    out += c.feed(data[pos:])
    out += c.finish()
    return out


@settings(max_examples=40, deadline=None)
@given(
    st.integers(0, 200_000), st.lists(st.integers(1, 50_000), max_size=10), st.integers(0, 2**32)
)
def test_streaming_chunking_is_independent_of_block_sizes(
    size: int, blocks: list[int], seed: int
) -> None:
    data = random.Random(seed).randbytes(size)
    whole = chunk_all(SMALL, data, [])
    assert b"".join(whole) == data
    assert chunk_all(SMALL, data, blocks) == whole
    assert all(len(c) <= SMALL.max_size for c in whole)
    assert all(len(c) >= SMALL.min_size for c in whole[:-1])


def test_chunks_resynchronise_after_an_insert() -> None:
    data = random.Random(1).randbytes(40 * 1024 * 1024)
    edited = data[:5_000_000] + b"inserted bytes" + data[5_000_000:]
    a = set(chunk_all(DEFAULT_CHUNKER, data, []))
    b = chunk_all(DEFAULT_CHUNKER, edited, [8 << 20] * 5)
    changed = sum(len(c) for c in b if c not in a)
    assert changed < 3 * DEFAULT_CHUNKER.max_size


def test_chunker_params_validation() -> None:
    with pytest.raises(UsageError):
        ChunkerParams("x", 10, 5, 1)
    assert ChunkerParams.from_json(DEFAULT_CHUNKER.to_json()) == DEFAULT_CHUNKER


@pytest.mark.parametrize(("k", "n"), [(1, 2), (2, 3), (3, 6), (4, 9), (10, 16)])
def test_any_k_of_n_fragments_decode(k: int, n: int) -> None:
    data = os.urandom(100_003)
    code = ErasureCode(k, n)
    frags = code.encode(data)
    assert len(frags) == n
    subsets = list(itertools.combinations(range(n), k))
    random.Random(k * n).shuffle(subsets)
    for subset in subsets[:40]:
        assert code.decode({i: frags[i] for i in subset}) == data


def test_erasure_rejects_bad_parameters_and_too_few() -> None:
    for k, n in [(0, 2), (3, 3), (4, 2), (3, 40)]:
        with pytest.raises(UsageError):
            ErasureCode(k, n)
    code = ErasureCode(3, 6)
    frags = code.encode(b"x" * 1000)
    with pytest.raises(UsageError):
        code.decode({0: frags[0], 1: frags[1]})


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 12 * BLOCK_SIZE + 77), st.integers(0, 2**32))
def test_merkle_proofs_verify_every_block(size: int, seed: int) -> None:
    data = random.Random(seed).randbytes(size)
    root = merkle_root(data)
    count = max(1, -(-size // BLOCK_SIZE))
    for i in range(count):
        block = data[i * BLOCK_SIZE : (i + 1) * BLOCK_SIZE]
        proof = merkle_proof(data, i)
        assert verify_proof(root, size, i, block, proof)
        if block:
            bad = bytearray(block)
            bad[0] ^= 1
            assert not verify_proof(root, size, i, bytes(bad), proof)
        if proof:
            assert not verify_proof(root, size, i, block, proof[:-1])
        if count > 1:
            assert not verify_proof(root, size, (i + 1) % count, block, proof)


def test_merkle_root_changes_with_any_flip() -> None:
    data = bytearray(os.urandom(3 * BLOCK_SIZE + 5))
    root = merkle_root(bytes(data))
    for pos in (0, BLOCK_SIZE, len(data) - 1):
        data[pos] ^= 0x80
        assert merkle_root(bytes(data)) != root
        data[pos] ^= 0x80


def test_pack_size_classes_and_builder() -> None:
    assert pack_size_class(1) == 64 * 1024
    assert pack_size_class(64 * 1024 + 1) == 128 * 1024
    assert pack_size_class(MAX_PACK_SIZE) == MAX_PACK_SIZE
    with pytest.raises(FormatError):
        pack_size_class(MAX_PACK_SIZE + 1)
    b = PackBuilder()
    off = b.add(b"abc")
    assert off == 8
    sealed = b.seal()
    assert len(sealed) == 64 * 1024 and sealed[:4] == b"OVPK" and sealed[8:11] == b"abc"


def test_lent_packs_stay_untouched_until_given_back_then_are_reused() -> None:
    b = PackBuilder(64 * 1024, keep=1)
    b.add(b"x" * 1000)
    first = b.lend()
    kept = bytes(first)
    assert kept[:4] == b"OVPK" and kept[8:1008] == b"x" * 1000 and not any(kept[1008:])
    owner = first.obj
    for fill in (b"y", b"z"):  # two more packs while the first is lent
        b.add(fill * 5000)
        other = b.lend()
        assert other.obj is not owner and bytes(first) == kept
        assert bytes(other[8:5008]) == fill * 5000 and not any(other[5008:])
    b.give_back(first)
    with pytest.raises(ValueError, match="released"):
        bytes(first)
    b.add(b"w" * 10)
    again = b.lend()
    assert again.obj is owner  # the given-back buffer, its old blob padded over
    assert bytes(again[8:18]) == b"w" * 10 and not any(again[18:]) and again[:4] == b"OVPK"
    assert b.seal()[:8] == kept[:8]  # seal() still copies out (an empty pack)


def test_a_builder_makes_a_buffer_only_when_a_blob_comes() -> None:
    """A builder that stores nothing (an unchanged re-put) holds no buffer, and lending the
    last pack leaves none behind; a buffer given back is the next one filled."""
    b = PackBuilder(64 * 1024, keep=1)
    assert b.allocated == 0
    b.add_chunk(os.urandom(32), os.urandom(32), b"x" * 1000)
    assert b.allocated == 1
    first = b.lend()
    owner = first.obj
    assert b.allocated == 0
    b.give_back(first)
    assert b.allocated == 1
    b.add(b"y" * 10)
    again = b.lend()
    assert again.obj is owner and b.allocated == 0
    assert bytes(again[8:18]) == b"y" * 10 and not any(again[18:])


def test_share_header_roundtrip_and_rejects() -> None:
    h = ShareHeader(3, 6, 5, bytes(range(16)))
    data = encode_share(h, b"fragment")
    assert decode_share(data) == (h, b"fragment")
    for bad in [
        b"",
        b"OVSH",
        b"XXXX" + data[4:],
        data[:4] + b"\x09" + data[5:],
        data[:5] + bytes((6, 3, 0)) + data[8:],
        data[:5] + bytes((3, 6, 6)) + data[8:],
    ]:
        with pytest.raises(FormatError):
            decode_share(bad)
