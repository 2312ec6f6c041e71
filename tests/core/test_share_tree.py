"""The share layout (data || leaves || trailer) and the audit answer wire format."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ownvault.core.merkle import (
    BLOCK_SIZE,
    leaf_hash,
    merkle_leaves,
    merkle_proof,
    merkle_root,
    proof_from_leaves,
    root_from_leaves,
    verify_proof,
)
from ownvault.core.pack import (
    ShareHeader,
    ShareLayout,
    attach_tree,
    decode_share,
    encode_share,
    split_share,
)
from ownvault.core.proofs import Answer, decode_answers, encode_answers
from ownvault.errors import FormatError


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 17 * 1024 * 1024))
def test_layout_size_is_invertible(data_len: int) -> None:
    layout = ShareLayout(data_len)
    assert ShareLayout.for_total(layout.total) == layout
    assert layout.total == data_len + 32 * layout.blocks + 16


def test_sizes_no_layout_has_are_refused() -> None:
    # Going from D = 16384 (1 leaf) to 16385 (2 leaves) skips 32 totals.
    gap = ShareLayout(BLOCK_SIZE).total + 1
    with pytest.raises(FormatError, match="no share layout"):
        ShareLayout.for_total(gap)
    with pytest.raises(FormatError):
        ShareLayout.for_total(10)


@settings(max_examples=30, deadline=None)
@given(st.binary(min_size=0, max_size=70_000))
def test_attach_split_and_prove_every_block(fragment: bytes) -> None:
    data = encode_share(ShareHeader(3, 6, 2, bytes(range(16))), fragment)
    stored, root = attach_tree(data)
    assert root == merkle_root(data)
    view, leaves = split_share(stored)
    assert bytes(view) == data and leaves == merkle_leaves(data)
    assert root_from_leaves(leaves) == root
    assert decode_share(bytes(view))[1] == fragment
    layout = ShareLayout.for_total(len(stored))
    assert stored[-4:] == b"OVMT" and int.from_bytes(stored[-16:-8], "big") == len(data)
    for i in range(layout.blocks):
        start, length = layout.block_range(i)
        block = stored[start : start + length]
        assert leaf_hash(block) == leaves[i]
        assert proof_from_leaves(leaves, i) == merkle_proof(data, i)
        assert verify_proof(root, len(data), i, block, proof_from_leaves(leaves, i))


def test_split_refuses_damaged_trailers() -> None:
    stored, _root = attach_tree(b"x" * 40_000)
    for bad, message in [
        (stored[:-1], "magic"),
        (stored[:-16] + b"\x00" * 16, "magic"),
        (stored[:-8] + bytes([2]) + stored[-7:], "unknown share tree format"),
        (stored[:100] + stored[-16:], "trailer says"),
        (b"OVMT", "too short"),
    ]:
        with pytest.raises(FormatError, match=message):
            split_share(bad)


def test_layout_example_in_the_design_doc() -> None:
    # docs/design.md: a 64 KiB pack coded 3-of-6 -> shares of 22,030 bytes, D = 21,950.
    layout = ShareLayout.for_total(22_030)
    assert (layout.data_len, layout.blocks, layout.leaves_len) == (21_950, 2, 64)
    assert layout.trailer().hex() == "00000000000055be010000004f564d54"


def test_answers_round_trip_and_bounds() -> None:
    answers = [Answer(0, b"b" * BLOCK_SIZE, (b"\x01" * 32, b"\x02" * 32)), Answer(1), Answer(3)]
    wire = encode_answers(answers)
    assert decode_answers(wire, 3) == answers
    for bad in [wire[:-1], wire + b"\x00", b"XXXX" + wire[4:], wire[:4] + b"\x02" + wire[5:]]:
        with pytest.raises(FormatError):
            decode_answers(bad, 3)
    with pytest.raises(FormatError, match="expected 2"):
        decode_answers(wire, 2)
    # A failed answer must not carry a block.
    with pytest.raises(FormatError):
        decode_answers(b"OVAP\x01\x00\x01" + b"\x01" + (3).to_bytes(4, "big") + b"abc" + b"\x00", 1)
    # A block longer than a block is refused before it is read.
    with pytest.raises(FormatError):
        decode_answers(b"OVAP\x01\x00\x01\x00" + (BLOCK_SIZE + 1).to_bytes(4, "big"), 1)
