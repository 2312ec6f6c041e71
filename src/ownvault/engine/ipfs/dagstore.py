"""DAG records as results, and the block reader: what publishing stores and the gateway reads.

``catalog.dags`` (:mod:`ownvault.engine.store.catalog.ipfs`) answers which DAGs exist and how
each block of a published DAG is regenerated; :class:`BlockReader` regenerates a block from
the stored data and re-hashes it against its CID before it is returned.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import asdict, dataclass

from ownvault.core.cid import CID
from ownvault.engine.store.catalog.ipfs import DagRow, DagSource
from ownvault.engine.store.context import VaultContext
from ownvault.engine.store.dag import BlockRef
from ownvault.engine.store.restore import PackReader
from ownvault.errors import IntegrityError, NotFoundError

__all__ = ["BlockReader", "DagInfo", "DagRow", "Publication"]


@dataclass(frozen=True, slots=True)
class DagInfo:
    """A DAG record as listed (``ownvault ipfs ls``, the API's publications)."""

    name: str
    version: int
    cid: str
    url: str
    profile: str
    source: DagSource
    published: bool
    published_at: int | None

    @classmethod
    def of(cls, row: DagRow) -> DagInfo:
        return cls(
            row.label,
            row.number,
            row.root,
            f"ipfs://{row.root}",
            row.profile,
            row.source,
            row.published_at is not None,
            row.published_at,
        )


@dataclass(frozen=True, slots=True)
class Publication:
    dag: DagRow
    blocks: int
    index_bytes: int
    seconds: float

    def to_json(self) -> dict[str, object]:
        return {
            **asdict(DagInfo.of(self.dag)),
            "blocks": self.blocks,
            "index_bytes": self.index_bytes,
            "seconds": round(self.seconds, 3),
        }


# -- regenerating blocks ----------------------------------------------------------------


class BlockReader:
    """Regenerates blocks from the stored data and verifies each against its CID.

    ``lookup`` maps a binary CID to its :class:`BlockRef` (the published index for the
    gateway, one DAG's index for an export). Reads of consecutive leaves of one content
    (a DAG walk) share one streaming read; others are range reads.
    """

    def __init__(self, ctx: VaultContext, lookup: Callable[[bytes], BlockRef | None]) -> None:
        self._packs = PackReader(ctx.catalog, ctx.keys, ctx.store)
        self._catalog = ctx.catalog
        self.lookup = lookup
        self._cursor: tuple[int, int, AsyncIterator[bytes]] | None = None
        self._carry = b""

    async def close(self) -> None:
        await self._drop_cursor()
        await self._packs.close()

    async def _drop_cursor(self) -> None:
        if self._cursor is not None:
            gen = self._cursor[2]
            self._cursor = None
            aclose = getattr(gen, "aclose", None)
            if aclose is not None:
                await aclose()
        self._carry = b""

    def plaintext(self, content: int, start: int, end: int) -> AsyncIterator[bytes]:
        """The stored plaintext ``[start, end)`` of a content (a file)."""
        return self._packs.read(self._catalog.content_chunks(content), start, end)

    async def _sequential(self, content: int, start: int, length: int) -> bytes:
        if self._cursor is None or self._cursor[0] != content or self._cursor[1] != start:
            await self._drop_cursor()
            gen = self._packs.read(self._catalog.content_chunks(content), start, None)
            self._cursor = (content, start, gen)
        _, _, gen = self._cursor
        parts = [self._carry]
        have = len(self._carry)
        while have < length:
            try:
                piece = await gen.__anext__()
            except StopAsyncIteration:
                break
            parts.append(piece)
            have += len(piece)
        data = b"".join(parts)
        self._carry = data[length:]
        self._cursor = (content, start + length, gen)
        return data[:length]

    async def get(self, cid: CID, *, sequential: bool = False) -> bytes:
        """The verified block for ``cid``; NotFoundError when the index does not have it."""
        if cid.hash_code == 0x00:  # identity: the data is the digest
            return cid.digest
        ref = self.lookup(cid.bytes)
        if ref is None:
            raise NotFoundError(f"block not found: {cid}", name=str(cid))
        if ref.kind != "leaf":
            block = ref.data
        else:
            if ref.content is None:
                raise IntegrityError(f"block {cid}: leaf without content")
            if sequential:
                data = await self._sequential(ref.content, ref.offset, ref.length)
            else:
                data = b"".join(
                    [
                        p
                        async for p in self.plaintext(
                            ref.content, ref.offset, ref.offset + ref.length
                        )
                    ]
                )
            if len(data) != ref.length:
                raise IntegrityError(f"block {cid}: stored content is shorter than its index says")
            block = ref.data + data + ref.tail
        if not cid.verify(block):
            raise IntegrityError(
                f"block {cid} regenerated from the vault does not match its CID", name=str(cid)
            )
        return block
