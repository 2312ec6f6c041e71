"""Merkle trees over fixed-size blocks of a share (format ``merkle-blake3-16k-v1``).

leaf_i = BLAKE3(0x00 || block_i)         blocks of BLOCK_SIZE bytes, the last may be short
node   = BLAKE3(0x01 || left || right)
An odd node at the end of a level is carried up unchanged. The root of an empty share is
BLAKE3(0x00). The root is committed in the (authenticated) catalog at upload, so a
provider cannot substitute a consistent forgery; a proof for block i is the list of
sibling hashes from the leaf up, with the leaf count fixing each sibling's side.
"""

from __future__ import annotations

from ownvault.core import crypto
from ownvault.errors import FormatError

__all__ = ["BLOCK_SIZE", "MERKLE_FORMAT", "block_count", "merkle_proof", "merkle_root", "verify_proof"]

MERKLE_FORMAT = "merkle-blake3-16k-v1"
BLOCK_SIZE = 16 * 1024
MAX_DEPTH = 40


def _leaf(block: bytes | memoryview) -> bytes:
    return crypto.blake3_hash(b"\x00" + bytes(block))


def _node(left: bytes, right: bytes) -> bytes:
    return crypto.blake3_hash(b"\x01" + left + right)


def block_count(size: int) -> int:
    return max(1, -(-size // BLOCK_SIZE))


def _leaves(data: bytes) -> list[bytes]:
    view = memoryview(data)
    if not data:
        return [_leaf(b"")]
    return [_leaf(view[i : i + BLOCK_SIZE]) for i in range(0, len(data), BLOCK_SIZE)]


def _up(level: list[bytes]) -> list[bytes]:
    out = [_node(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
    if len(level) % 2:
        out.append(level[-1])
    return out


def merkle_root(data: bytes) -> bytes:
    level = _leaves(data)
    while len(level) > 1:
        level = _up(level)
    return level[0]


def merkle_proof(data: bytes, index: int) -> list[bytes]:
    """Sibling hashes for block ``index``, leaf level first (odd carries contribute none)."""
    level = _leaves(data)
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
