"""Storage audits on the node (``POST /v1/audit``), and the chaos modes that corrupt them.

For each challenged (share, block) the node reads the block and the Merkle leaf level
stored with the share (``core.pack``) and sends the block with its path
(``core.proofs``), so a proof costs a few KB whatever the share size.
"""

from __future__ import annotations

from collections.abc import Sequence

from ownvault.core import crypto
from ownvault.core.merkle import BLOCK_SIZE, proof_from_leaves
from ownvault.core.pack import TRAILER_SIZE, ShareLayout
from ownvault.core.proofs import (
    STATUS_BAD_SHARE,
    STATUS_NOT_FOUND,
    STATUS_OK,
    STATUS_OUT_OF_RANGE,
    Answer,
)
from ownvault.errors import FormatError, ObjectNotFoundError
from ownvault.server.node.config import chaos_dropped
from ownvault.server.node.store import Account

__all__ = ["answer_challenges", "drop_blocks", "share_layout"]


async def share_layout(account: Account, name: str) -> ShareLayout | None:
    """The share layout of a stored object, from its size and trailer (None: not a share)."""
    size = (await account.provider.stat(name)).size
    if size < TRAILER_SIZE:
        return None
    try:
        layout = ShareLayout.from_trailer(await account.provider.get(name, size - TRAILER_SIZE))
    except FormatError:
        return None
    return layout if layout.total == size else None


async def drop_blocks(
    account: Account, name: str, offset: int, data: bytes, fraction: float
) -> bytes:
    """Chaos ``drop-blocks``: the bytes of "lost" blocks read as 0xA5."""
    layout = await share_layout(account, name)
    if layout is None or not data:
        return data
    out = bytearray(data)
    end = min(offset + len(data), layout.data_len)
    first = offset // BLOCK_SIZE
    for index in range(first, -(-end // BLOCK_SIZE) if end > offset else first):
        if chaos_dropped(name, index, fraction):
            start, length = layout.block_range(index)
            lo, hi = max(start, offset), min(start + length, offset + len(data))
            out[lo - offset : hi - offset] = b"\xa5" * (hi - lo)
    return bytes(out)


async def answer_challenges(
    account: Account | None,
    challenges: Sequence[tuple[str, int]],
    *,
    lie: bool = False,
    drop_fraction: float = 0.0,
) -> list[Answer]:
    """One answer per challenge; with ``lie`` (or a dropped block) a plausible wrong block."""
    cache: dict[str, tuple[ShareLayout, list[bytes]] | int] = {}
    answers = []
    for name, index in challenges:
        if name not in cache:
            cache[name] = await _leaves(account, name)
        entry = cache[name]
        if isinstance(entry, int):
            answers.append(Answer(entry))
            continue
        layout, leaves = entry
        if not 0 <= index < layout.blocks:
            answers.append(Answer(STATUS_OUT_OF_RANGE))
            continue
        assert account is not None
        start, length = layout.block_range(index)
        block = await account.provider.get(name, start, length)
        path = tuple(proof_from_leaves(leaves, index))
        if lie or chaos_dropped(name, index, drop_fraction):
            # A node without the block: well-formed, plausible, wrong.
            block = crypto.random_bytes(len(block))
        answers.append(Answer(STATUS_OK, block, path))
    return answers


async def _leaves(account: Account | None, name: str) -> tuple[ShareLayout, list[bytes]] | int:
    """A share's layout and Merkle leaves, or the answer status when there is no share."""
    if account is None:
        return STATUS_NOT_FOUND
    try:
        layout = await share_layout(account, name)
    except ObjectNotFoundError:
        return STATUS_NOT_FOUND
    if layout is None:
        return STATUS_BAD_SHARE
    raw = await account.provider.get(name, layout.leaves_offset, layout.leaves_len)
    return layout, [raw[i : i + 32] for i in range(0, len(raw), 32)]
