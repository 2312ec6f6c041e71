"""The wire format of storage-audit answers (``POST /v1/audit``, docs/node-protocol.md).

A client challenges a node on blocks of shares it holds; the node answers each challenge
with the block and its Merkle path, computed from the leaf level stored with the share
(``core.pack``). Binary, because the blocks dominate the size::

    answers := "OVAP" || 0x01 || count (u16 BE) || answer_1 || ... || answer_count
    answer  := status (u8) || block_len (u32 BE) || block || depth (u8) || sibling_1 (32) || ... || sibling_depth (32)

``status``: 0 proof follows; 1 object not found; 2 not a share with a tree (trailer bad or
size inconsistent); 3 block index out of range. For a status other than 0, ``block_len``
and ``depth`` are 0. The decoder bounds everything (count, block length, depth) and
rejects trailing bytes; what it returns is still untrusted until ``verify_proof`` says so.
"""

from __future__ import annotations

from dataclasses import dataclass

from ownvault.core.merkle import BLOCK_SIZE, HASH_SIZE, MAX_DEPTH
from ownvault.errors import FormatError

__all__ = [
    "ANSWER_MAGIC",
    "MAX_CHALLENGES",
    "STATUS_BAD_SHARE",
    "STATUS_NOT_FOUND",
    "STATUS_OK",
    "STATUS_OUT_OF_RANGE",
    "Answer",
    "decode_answers",
    "encode_answers",
]

ANSWER_MAGIC = b"OVAP"
ANSWER_VERSION = 1
MAX_CHALLENGES = 256
STATUS_OK = 0
STATUS_NOT_FOUND = 1
STATUS_BAD_SHARE = 2
STATUS_OUT_OF_RANGE = 3
STATUS_TEXT = {
    STATUS_OK: "ok",
    STATUS_NOT_FOUND: "object not found",
    STATUS_BAD_SHARE: "not a share with a Merkle tree",
    STATUS_OUT_OF_RANGE: "block out of range",
}


@dataclass(frozen=True, slots=True)
class Answer:
    """A node's answer to one challenge: the block and its sibling path, or a status."""

    status: int
    block: bytes = b""
    path: tuple[bytes, ...] = ()

    @property
    def reason(self) -> str:
        return STATUS_TEXT.get(self.status, f"status {self.status}")


def encode_answers(answers: list[Answer]) -> bytes:
    if len(answers) > MAX_CHALLENGES:
        raise FormatError("too many answers")
    out = [ANSWER_MAGIC, bytes((ANSWER_VERSION,)), len(answers).to_bytes(2, "big")]
    for a in answers:
        if len(a.block) > BLOCK_SIZE or len(a.path) > MAX_DEPTH:
            raise FormatError("answer block or path too long")
        out.append(bytes((a.status,)) + len(a.block).to_bytes(4, "big"))
        out.append(a.block)
        out.append(bytes((len(a.path),)))
        out.extend(a.path)
    return b"".join(out)


def decode_answers(data: bytes, expected: int) -> list[Answer]:
    """Parse exactly ``expected`` answers (``FormatError`` on anything else)."""
    if len(data) < 7 or data[:4] != ANSWER_MAGIC or data[4] != ANSWER_VERSION:
        raise FormatError("not an audit answer (bad magic or version)")
    count = int.from_bytes(data[5:7], "big")
    if count != expected or count > MAX_CHALLENGES:
        raise FormatError(f"audit answer has {count} answers, expected {expected}")
    pos = 7
    answers = []
    for _ in range(count):
        if pos + 5 > len(data):
            raise FormatError("audit answer truncated")
        status = data[pos]
        block_len = int.from_bytes(data[pos + 1 : pos + 5], "big")
        pos += 5
        if block_len > BLOCK_SIZE or pos + block_len + 1 > len(data):
            raise FormatError("audit answer block too long or truncated")
        block = data[pos : pos + block_len]
        pos += block_len
        depth = data[pos]
        pos += 1
        if depth > MAX_DEPTH or pos + depth * HASH_SIZE > len(data):
            raise FormatError("audit answer path too long or truncated")
        path = tuple(data[pos + i * HASH_SIZE : pos + (i + 1) * HASH_SIZE] for i in range(depth))
        pos += depth * HASH_SIZE
        if status != STATUS_OK and (block_len or depth):
            raise FormatError("a failed audit answer carries no block")
        answers.append(Answer(status, block, path))
    if pos != len(data):
        raise FormatError("trailing bytes after the audit answers")
    return answers
