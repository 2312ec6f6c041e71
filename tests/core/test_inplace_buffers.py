"""The copy-free paths of the put pipeline give the bytes of the simple definitions.

Shares, Merkle leaves and sealed boxes are built in place (hashed over views, joined once,
sealed into a buffer) for speed; these tests hold them to the formats of docs/design.md by
comparing with the joined-bytes definitions and with BLAKE3 called directly."""

from __future__ import annotations

import os
import random

import blake3
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ownvault.core import crypto
from ownvault.core.chunking import Chunker, ChunkerParams
from ownvault.core.merkle import (
    BLOCK_SIZE,
    leaf_hash,
    merkle_leaves,
    merkle_leaves_parts,
    root_from_leaves,
)
from ownvault.core.pack import (
    MIN_PACK_SIZE,
    PACK_HEADER,
    PackBuilder,
    ShareHeader,
    attach_tree,
    build_share,
    encode_share,
    open_chunk,
    share_parts,
)
from ownvault.errors import UsageError

SMALL = ChunkerParams("test-small", 1024, 4096, 16384)
SIZES = st.integers(0, 3 * BLOCK_SIZE + 100)


def test_leaf_and_node_hashes_are_blake3_with_domain_bytes() -> None:
    block = os.urandom(1000)
    assert leaf_hash(memoryview(block)) == blake3.blake3(b"\x00" + block).digest()
    two = merkle_leaves(os.urandom(BLOCK_SIZE + 1))

    assert root_from_leaves(two) == blake3.blake3(b"\x01" + two[0] + two[1]).digest()


@settings(max_examples=60, deadline=None)
@given(st.lists(SIZES, max_size=5), st.integers(0, 2**32))
def test_leaves_of_parts_equal_leaves_of_the_joined_bytes(sizes: list[int], seed: int) -> None:
    parts = [os.urandom(n) for n in sizes]
    views: list[bytes | memoryview] = [memoryview(p) if i % 2 else p for i, p in enumerate(parts)]
    joined = b"".join(parts)
    spec = [
        blake3.blake3(b"\x00" + joined[i : i + BLOCK_SIZE]).digest()
        for i in range(0, max(1, len(joined)), BLOCK_SIZE)
    ]
    assert merkle_leaves_parts(views) == merkle_leaves(joined) == spec


@pytest.mark.parametrize(
    "size", [0, 1, BLOCK_SIZE - 24, BLOCK_SIZE - 23, BLOCK_SIZE - 25, 5 * BLOCK_SIZE + 7]
)
def test_build_share_is_attach_tree_of_encode_share(size: int) -> None:
    header = ShareHeader(3, 6, 4, os.urandom(16))
    fragment = os.urandom(size)
    built = build_share(header, memoryview(fragment))
    assert built == attach_tree(encode_share(header, fragment))
    cut = size // 3
    pieces = (fragment[:cut], memoryview(fragment)[cut : 2 * cut], fragment[2 * cut :])
    assert build_share(header, *pieces) == built
    parts, root = share_parts(header, *pieces)
    assert (b"".join(parts), root) == built
    # The fragment's pieces are handed on as they came (the objects, not copies).
    assert all(any(p is q for q in parts) for p in pieces)


def test_seal_into_writes_a_box_that_opens_and_has_the_seal_layout() -> None:
    key, ad, plain = os.urandom(32), b"ownvault/v1/chunk" + os.urandom(32), os.urandom(5000)
    buf = bytearray(b"\xee" * 6000)
    view = memoryview(buf)
    size = crypto.seal_into(key, memoryview(plain), ad, view[100:])
    assert size == len(plain) + crypto.AEAD_OVERHEAD == len(crypto.seal(key, plain, ad))
    box = bytes(buf[100 : 100 + size])
    assert box[0] == crypto.BOX_VERSION
    assert crypto.open_box(key, box, ad) == plain
    assert buf[:100] == b"\xee" * 100 and buf[100 + size :] == b"\xee" * (6000 - 100 - size)
    with pytest.raises(UsageError):
        crypto.seal_into(key, plain, ad, view[: len(plain) + crypto.AEAD_OVERHEAD - 1])


def test_a_reused_pack_buffer_holds_only_the_new_pack() -> None:
    """The builder's buffer is reused after ``seal()``: the second pack must not carry the
    first one's bytes in its padding, and every blob sealed into place must open."""
    builder = PackBuilder(MIN_PACK_SIZE * 4)
    key, first_id = os.urandom(32), os.urandom(32)
    builder.add_chunk(key, first_id, b"\xaa" * (MIN_PACK_SIZE * 3))
    first = builder.seal()
    assert len(first) == MIN_PACK_SIZE * 4
    chunk_id, plain = os.urandom(32), os.urandom(1000)
    offset, size = builder.add_chunk(key, chunk_id, memoryview(plain))
    raw = builder.add(b"raw blob")
    second = builder.seal()
    assert second[: len(PACK_HEADER)] == PACK_HEADER and offset == len(PACK_HEADER)
    assert open_chunk(key, chunk_id, second[offset : offset + size]) == plain
    assert second[raw : raw + 8] == b"raw blob"
    assert len(second) == MIN_PACK_SIZE and second[raw + 8 :] == bytes(len(second) - raw - 8)


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 300_000), st.integers(1, 70_000), st.integers(0, 2**32))
def test_cut_views_with_a_carried_tail_chunk_as_the_whole_stream(
    size: int, block: int, seed: int
) -> None:
    """Ingest's loop: cut a buffer, carry the uncut tail to the front of the next one."""
    data = random.Random(seed).randbytes(size)
    chunker = Chunker(SMALL)
    whole = [bytes(p) for p in chunker.cut(data, True)[0]]
    got: list[bytes] = []
    carry, pos = b"", 0
    while True:
        fresh = data[pos : pos + block]
        pos += len(fresh)
        final = pos >= size
        buf = bytearray(carry + fresh)
        pieces, used = chunker.cut(buf, final)
        got += [bytes(p) for p in pieces]
        carry = bytes(buf[used:])
        if final:
            break
    assert carry == b"" and got == whole and b"".join(whole) == data
