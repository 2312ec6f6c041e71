"""The catalog's DAG records and the block reader: what publishing stores and what the gateway reads.

:class:`DagStore` answers which DAGs exist and how each block of a published DAG is
regenerated (catalog tables ``dags`` and ``dag_blocks``); :class:`BlockReader` regenerates a
block from the stored data and re-hashes it against its CID before it is returned.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from ownvault.core.cid import CID
from ownvault.engine.store.catalog import Catalog
from ownvault.engine.store.context import VaultContext
from ownvault.engine.store.dag import (
    BlockRef,
    DagIndex,
)
from ownvault.engine.store.restore import PackReader
from ownvault.errors import IntegrityError, NotFoundError

__all__ = ["BlockReader", "DagRow", "DagStore", "Publication"]


@dataclass(frozen=True, slots=True)
class DagRow:
    id: int
    version: int
    name: str
    number: int
    path: str
    root: str
    profile: str
    source: str
    created_at: int
    published_at: int | None

    @property
    def label(self) -> str:
        return f"{self.name}/{self.path}" if self.path else self.name

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.label,
            "version": self.number,
            "cid": self.root,
            "url": f"ipfs://{self.root}",
            "profile": self.profile,
            "source": self.source,
            "published": self.published_at is not None,
            "published_at": self.published_at,
        }


@dataclass(frozen=True, slots=True)
class Publication:
    dag: DagRow
    blocks: int
    index_bytes: int
    seconds: float

    def to_json(self) -> dict[str, Any]:
        return {
            **self.dag.to_json(),
            "blocks": self.blocks,
            "index_bytes": self.index_bytes,
            "seconds": round(self.seconds, 3),
        }


_DAG_COLS = (
    "d.id, d.version, o.name, v.number, d.path, d.root, d.profile, d.source, d.created_at, "
    "d.published_at FROM dags d JOIN versions v ON v.id = d.version JOIN objects o ON o.id = v.object"
)


class DagStore:
    """Catalog access for the ``dags`` and ``dag_blocks`` tables."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog

    def _rows(self, where: str, args: tuple[Any, ...]) -> list[DagRow]:
        sql = f"SELECT {_DAG_COLS} WHERE {where} ORDER BY o.name, v.number, d.path, d.id"
        return [DagRow(*r) for r in self.catalog.conn.execute(sql, args)]

    def of_version(self, version: int, path: str) -> list[DagRow]:
        return self._rows("d.version = ? AND d.path = ?", (version, path))

    def by_root(self, root: str) -> list[DagRow]:
        return self._rows("d.root = ?", (root,))

    def published(self) -> list[DagRow]:
        return self._rows("d.published_at IS NOT NULL", ())

    def all(self) -> list[DagRow]:
        return self._rows("1", ())

    def get(self, dag: int) -> DagRow:
        rows = self._rows("d.id = ?", (dag,))
        if not rows:
            raise NotFoundError(f"unknown DAG record {dag}")
        return rows[0]

    def insert(
        self, version: int, path: str, root: CID, profile: str, source: str, published: bool
    ) -> int:
        now = int(time.time())
        cur = self.catalog.conn.execute(
            "INSERT INTO dags(version, path, root, profile, source, created_at, published_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (version, path, str(root), profile, source, now, now if published else None),
        )
        return int(cur.lastrowid or 0)

    def put_blocks(self, dag: int, index: DagIndex) -> None:
        self.catalog.conn.execute("DELETE FROM dag_blocks WHERE dag = ?", (dag,))
        self.catalog.conn.executemany(
            "INSERT INTO dag_blocks(dag, cid, kind, content, offset, length, data, tail) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (dag, cid, r.kind, r.content, r.offset, r.length, r.data, r.tail)
                for cid, r in index.blocks.items()
            ],
        )

    def drop_blocks(self, dag: int) -> None:
        self.catalog.conn.execute("DELETE FROM dag_blocks WHERE dag = ?", (dag,))

    def set_published(self, dag: int, published: bool) -> None:
        self.catalog.conn.execute(
            "UPDATE dags SET published_at = ? WHERE id = ?",
            (int(time.time()) if published else None, dag),
        )

    def block_count(self, dag: int) -> int:
        row = self.catalog.conn.execute("SELECT COUNT(*) FROM dag_blocks WHERE dag = ?", (dag,))
        return int(row.fetchone()[0])

    def load(self, dag: int) -> DagIndex:
        row = self.get(dag)
        index = DagIndex(CID.parse(row.root), row.profile)
        for cid, kind, content, offset, length, data, tail in self.catalog.conn.execute(
            "SELECT cid, kind, content, offset, length, data, tail FROM dag_blocks WHERE dag = ?",
            (dag,),
        ):
            index.blocks[bytes(cid)] = BlockRef(
                kind, content, offset, length, bytes(data), bytes(tail)
            )
        return index

    def lookup(self, cid: bytes, *, dag: int | None = None) -> BlockRef | None:
        """A block of a published DAG (or of ``dag``, published or not)."""
        if dag is None:
            sql = (
                "SELECT b.kind, b.content, b.offset, b.length, b.data, b.tail FROM dag_blocks b "
                "JOIN dags d ON d.id = b.dag WHERE b.cid = ? AND d.published_at IS NOT NULL LIMIT 1"
            )
            row = self.catalog.conn.execute(sql, (cid,)).fetchone()
        else:
            row = self.catalog.conn.execute(
                "SELECT kind, content, offset, length, data, tail FROM dag_blocks "
                "WHERE cid = ? AND dag = ?",
                (cid, dag),
            ).fetchone()
        if row is None:
            return None
        return BlockRef(row[0], row[1], row[2], row[3], bytes(row[4]), bytes(row[5]))

    def content_cid(self, content: int) -> tuple[str | None, str | None]:
        row = self.catalog.conn.execute(
            "SELECT cid, cid_profile FROM contents WHERE id = ?", (content,)
        ).fetchone()
        return (None, None) if row is None else (row[0], row[1])


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
