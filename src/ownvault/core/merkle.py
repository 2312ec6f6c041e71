"""Merkle trees over fixed-size blocks of a share (format ``merkle-blake3-16k-v1``).

leaf_i = BLAKE3(0x00 || block_i)         blocks of BLOCK_SIZE bytes, the last may be short
node   = BLAKE3(0x01 || left || right)
An odd node at the end of a level is carried up unchanged. The root of an empty share is
BLAKE3(0x00). The root is committed in the (authenticated) catalog at upload, so a
provider cannot substitute a consistent forgery; a proof for block i is the list of
sibling hashes from the leaf up, with the leaf count fixing each sibling's side.

The leaf level (one 32-byte hash per block) is stored with every share (``core.pack``), so
that anyone holding the share can answer a challenge on block i with the block and its
path (:func:`proof_from_leaves`), and a client that can only read byte ranges can check a
block against the root by fetching the block and the leaf level (:func:`root_from_leaves`).
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import repeat
from operator import add

from ownvault.core import crypto
from ownvault.errors import FormatError

__all__ = [
    "BLOCK_SIZE",
    "HASH_SIZE",
    "MERKLE_FORMAT",
    "block_count",
    "leaf_hash",
    "merkle_leaves",
    "merkle_leaves_parts",
    "merkle_proof",
    "merkle_root",
    "proof_from_leaves",
    "root_from_leaves",
    "verify_proof",
]

MERKLE_FORMAT = "merkle-blake3-16k-v1"
BLOCK_SIZE = 16 * 1024
MAX_DEPTH = 40
HASH_SIZE = 32


def _leaf(block: bytes | bytearray | memoryview) -> bytes:
    return crypto.blake3_hash(b"\x00" + block)


def _node(left: bytes, right: bytes) -> bytes:
    return crypto.blake3_hash(b"\x01" + left + right)


def block_count(size: int) -> int:
    return max(1, -(-size // BLOCK_SIZE))


def leaf_hash(block: bytes | memoryview) -> bytes:
    """The leaf hash of one block: BLAKE3(0x00 || block)."""
    return _leaf(block)


def merkle_leaves(data: bytes | memoryview) -> list[bytes]:
    """The leaf level: one hash per block of ``data`` (one leaf for empty data)."""
    return merkle_leaves_parts((data,))


def merkle_leaves_parts(parts: Sequence[bytes | memoryview]) -> list[bytes]:
    """:func:`merkle_leaves` of the concatenation of ``parts``, without joining them.

    The whole blocks inside one part are hashed by a chain of ``map`` calls, one
    ``0x00 || block`` concatenation and one hash each, with no Python-level loop per
    block (measured on a 5.6 MB share: 0.275 against 0.289 CPU-s per GiB for the
    per-block loop filling one reused buffer, and 0.52 for two ``update`` calls over
    views, which lose BLAKE3's many-chunk path to the one-byte offset). Only a block
    that straddles two parts is assembled in a small carry buffer."""
    leaves: list[bytes] = []
    carry = bytearray()
    for part in parts:
        with memoryview(part) as view:
            pos, size = 0, len(view)
            if carry:
                pos = min(BLOCK_SIZE - len(carry), size)
                carry += view[:pos]
                if len(carry) < BLOCK_SIZE:
                    continue
                leaves.append(_leaf(carry))
                carry.clear()
            end = pos + (size - pos) // BLOCK_SIZE * BLOCK_SIZE
            if end > pos:
                blocks = map(
                    view.__getitem__,
                    map(
                        slice,
                        range(pos, end, BLOCK_SIZE),
                        range(pos + BLOCK_SIZE, end + 1, BLOCK_SIZE),
                    ),
                )
                leaves.extend(crypto.blake3_hash_each(map(add, repeat(b"\x00"), blocks)))
            carry += view[end:]
    if carry or not leaves:
        leaves.append(_leaf(carry))
    return leaves


_leaves = merkle_leaves


def _up(level: list[bytes]) -> list[bytes]:
    out = [_node(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
    if len(level) % 2:
        out.append(level[-1])
    return out


def root_from_leaves(leaves: list[bytes]) -> bytes:
    """The root over a leaf level (as :func:`merkle_leaves` returns it)."""
    if not leaves:
        raise FormatError("a Merkle tree has at least one leaf")
    level = leaves
    while len(level) > 1:
        level = _up(level)
    return level[0]


def merkle_root(data: bytes | memoryview) -> bytes:
    return root_from_leaves(_leaves(data))


def merkle_proof(data: bytes, index: int) -> list[bytes]:
    """Sibling hashes for block ``index``, leaf level first (odd carries contribute none)."""
    return proof_from_leaves(_leaves(data), index)


def proof_from_leaves(leaves: list[bytes], index: int) -> list[bytes]:
    """The proof of block ``index`` from the leaf level alone (what a storage node does)."""
    level = leaves
    if not 0 <= index < len(level):
        raise FormatError("block index out of range")
    proof: list[bytes] = []
    while len(level) > 1:
        sibling = index ^ 1
        if sibling < len(level):
            proof.append(level[sibling])
        level = _up(level)
        index //= 2
    return proof


def verify_proof(root: bytes, size: int, index: int, block: bytes, proof: list[bytes]) -> bool:
    """True if ``block`` is block ``index`` of a share of ``size`` bytes with this root."""
    count = block_count(size)
    if not 0 <= index < count or len(proof) > MAX_DEPTH:
        return False
    expected_len = min(BLOCK_SIZE, size - index * BLOCK_SIZE) if size else 0
    if len(block) != expected_len:
        return False
    h = _leaf(block)
    width = count
    used = 0
    while width > 1:
        sibling = index ^ 1
        if sibling < width:
            if used >= len(proof):
                return False
            s = proof[used]
            used += 1
            h = _node(s, h) if index & 1 else _node(h, s)
        index //= 2
        width = (width + 1) // 2
    return used == len(proof) and crypto.constant_time_equal(h, root)
