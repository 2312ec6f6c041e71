"""The IPFS tables: DAG records (``dags``) and their block indexes (``dag_blocks``).

``catalog.dags`` (:class:`DagTables`) answers which DAGs exist, how each block of a DAG is
regenerated, and which stored version or content carries a CID (docs/design.md, "IPFS").
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from ownvault.core.cid import CID
from ownvault.errors import NotFoundError

if TYPE_CHECKING:  # the DAG code (UnixFS, dag-pb): not for commands that only open a catalog
    from ownvault.engine.store.dag import BlockRef, DagIndex

__all__ = ["CidEntry", "DagRow", "DagSource", "DagTables"]

DagSource = Literal["profile", "car"]
"""How a DAG is regenerated: re-import with a named profile, or its kept CAR block index."""


@dataclass(frozen=True, slots=True)
class DagRow:
    id: int
    version: int
    name: str
    number: int
    path: str
    root: str
    profile: str
    source: DagSource
    created_at: int
    published_at: int | None

    @property
    def label(self) -> str:
        return f"{self.name}/{self.path}" if self.path else self.name


@dataclass(frozen=True, slots=True)
class CidEntry:
    """A version and the path inside it whose content has a given CID."""

    version: int
    path: str


_DAG_COLS = (
    "d.id, d.version, o.name, v.number, d.path, d.root, d.profile, d.source, d.created_at, "
    "d.published_at FROM dags d JOIN versions v ON v.id = d.version JOIN objects o ON o.id = v.object"
)


class DagTables:
    """The ``dags`` and ``dag_blocks`` tables."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def _rows(self, where: str, args: tuple[int | str, ...]) -> list[DagRow]:
        sql = f"SELECT {_DAG_COLS} WHERE {where} ORDER BY o.name, v.number, d.path, d.id"
        return [DagRow(*r) for r in self._conn.execute(sql, args)]

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
        self, version: int, path: str, root: CID, profile: str, source: DagSource, published: bool
    ) -> int:
        now = int(time.time())
        cur = self._conn.execute(
            "INSERT INTO dags(version, path, root, profile, source, created_at, published_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (version, path, str(root), profile, source, now, now if published else None),
        )
        return int(cur.lastrowid or 0)

    def put_blocks(self, dag: int, index: DagIndex) -> None:
        self._conn.execute("DELETE FROM dag_blocks WHERE dag = ?", (dag,))
        self._conn.executemany(
            "INSERT INTO dag_blocks(dag, cid, kind, content, offset, length, data, tail) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (dag, cid, r.kind, r.content, r.offset, r.length, r.data, r.tail)
                for cid, r in index.blocks.items()
            ],
        )

    def drop_blocks(self, dag: int) -> None:
        self._conn.execute("DELETE FROM dag_blocks WHERE dag = ?", (dag,))

    def set_published(self, dag: int, published: bool) -> None:
        self._conn.execute(
            "UPDATE dags SET published_at = ? WHERE id = ?",
            (int(time.time()) if published else None, dag),
        )

    def unindexed(self) -> list[DagRow]:
        """Published DAG records with no block index here: those another device published
        (an index never travels, ``engine.ipfs.dagindex`` rebuilds it)."""
        return self._rows(
            "d.published_at IS NOT NULL AND NOT EXISTS "
            "(SELECT 1 FROM dag_blocks b WHERE b.dag = d.id)",
            (),
        )

    def put_rebuilt(self, row: DagRow, index: DagIndex) -> bool:
        """Store a rebuilt index for ``row`` unless, meanwhile, the record changed (another
        process unpublished, removed or re-rooted it) or got an index; call in a
        transaction. Whether it was stored."""
        now = self._conn.execute(
            "SELECT root, source, published_at IS NOT NULL, "
            "EXISTS (SELECT 1 FROM dag_blocks WHERE dag = ?) FROM dags WHERE id = ?",
            (row.id, row.id),
        ).fetchone()
        if now is None or tuple(now) != (row.root, row.source, 1, 0):
            return False
        self.put_blocks(row.id, index)
        return True

    def block_count(self, dag: int) -> int:
        row = self._conn.execute("SELECT COUNT(*) FROM dag_blocks WHERE dag = ?", (dag,))
        return int(row.fetchone()[0])

    def load(self, dag: int) -> DagIndex:
        from ownvault.engine.store.dag import BlockRef, DagIndex  # noqa: PLC0415 (see above)

        row = self.get(dag)
        index = DagIndex(CID.parse(row.root), row.profile)
        for cid, kind, content, offset, length, data, tail in self._conn.execute(
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
            row = self._conn.execute(sql, (cid,)).fetchone()
        else:
            row = self._conn.execute(
                "SELECT kind, content, offset, length, data, tail FROM dag_blocks "
                "WHERE cid = ? AND dag = ?",
                (cid, dag),
            ).fetchone()
        if row is None:
            return None
        from ownvault.engine.store.dag import BlockRef  # noqa: PLC0415 (see the imports)

        return BlockRef(row[0], row[1], row[2], row[3], bytes(row[4]), bytes(row[5]))

    def content_cid(self, content: int) -> tuple[str | None, str | None]:
        """A content's recorded (CID, import profile), (None, None) when it has none."""
        row = self._conn.execute(
            "SELECT cid, cid_profile FROM contents WHERE id = ?", (content,)
        ).fetchone()
        return (None, None) if row is None else (row[0], row[1])

    def version_with_cid(self, cid: str) -> int | None:
        """The newest version whose recorded root CID is ``cid``."""
        row = self._conn.execute(
            "SELECT v.id FROM versions v WHERE v.cid = ? ORDER BY v.id DESC LIMIT 1", (cid,)
        ).fetchone()
        return None if row is None else int(row[0])

    def entry_with_cid(self, cid: str) -> CidEntry | None:
        """The newest stored entry whose content's CID is ``cid``."""
        row = self._conn.execute(
            "SELECT e.version, e.path FROM entries e JOIN contents c ON c.id = e.content "
            "WHERE c.cid = ? ORDER BY e.version DESC LIMIT 1",
            (cid,),
        ).fetchone()
        return None if row is None else CidEntry(int(row[0]), str(row[1]))
