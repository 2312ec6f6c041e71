"""Rewriting packs in the catalog: the chunks of a pack, the one commit of a rewrite, and
the queue of provider objects to delete (``doomed_objects``). See ``engine.store.repack``."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from ownvault.engine.store.catalog.tables import Tables
from ownvault.errors import OwnvaultError

__all__ = ["ChunkMove", "DoomedObject", "PackChunk", "PackTables", "PackUser", "RewrittenPack"]


@dataclass(frozen=True, slots=True)
class PackChunk:
    """A chunk stored in a pack, and whether any content still refers to it."""

    row: int
    chunk_id: bytes
    offset: int
    length: int
    plain_len: int
    wrapped_key: bytes
    key_epoch: int
    referenced: bool


@dataclass(frozen=True, slots=True)
class ChunkMove:
    """Chunk ``row`` now sits at ``offset`` in a new pack, its key wrapped under ``key_epoch``."""

    row: int
    offset: int
    length: int
    wrapped_key: bytes
    key_epoch: int


@dataclass(frozen=True, slots=True)
class RewrittenPack:
    """A pending pack written by a rewrite, and the chunks moved into it."""

    pack: int
    moves: tuple[ChunkMove, ...]


@dataclass(frozen=True, slots=True)
class DoomedObject:
    """A provider object queued for deletion."""

    provider: int
    name: str
    reason: str


@dataclass(frozen=True, slots=True)
class PackUser:
    """A version with files whose chunks sit in a pack (``paths``: at most 20 of them)."""

    name: str
    version: int
    paths: tuple[str, ...]


class PackTables(Tables):
    """``chunks`` and ``packs`` as a rewrite sees them, and ``doomed_objects``."""

    def users_of(self, pack: int) -> list[PackUser]:
        """Every version that needs ``pack`` (what is lost with it), by name and number."""
        rows = self._conn.execute(
            "SELECT DISTINCT o.name, v.number, e.path FROM chunks c "
            "JOIN content_chunks cc ON cc.chunk = c.id JOIN entries e ON e.content = cc.content "
            "JOIN versions v ON v.id = e.version JOIN objects o ON o.id = v.object "
            "WHERE c.pack = ? ORDER BY o.name, v.number, e.path",
            (pack,),
        ).fetchall()
        out: dict[tuple[str, int], list[str]] = {}
        for name, number, path in rows:
            out.setdefault((str(name), int(number)), []).append(str(path or ""))
        return [PackUser(n, v, tuple(p for p in paths if p)[:20]) for (n, v), paths in out.items()]

    def chunks_in(self, pack: int) -> list[PackChunk]:
        """The chunks stored in ``pack``, by offset."""
        rows = self._conn.execute(
            "SELECT c.id, c.chunk_id, c.offset, c.length, c.plain_len, c.wrapped_key, c.key_epoch, "
            "EXISTS (SELECT 1 FROM content_chunks cc WHERE cc.chunk = c.id) "
            "FROM chunks c WHERE c.pack = ? ORDER BY c.offset",
            (pack,),
        ).fetchall()
        return [
            PackChunk(r[0], bytes(r[1]), r[2], r[3], r[4], bytes(r[5]), int(r[6]), bool(r[7]))
            for r in rows
        ]

    def live_chunk(self, chunk_id: bytes, *, referenced: bool = False) -> bool:
        """Whether a live pack holds this chunk (what a put need not store again): one
        lookup in the unique index on ``chunk_id``; with ``referenced``, only if some
        content refers to it (in a vault of several devices: a chunk only removed versions
        held may be collected by another device's GC before this put's record reaches it,
        docs/design.md "GC in the engine"). A read only, so a put's worker thread may ask
        it on the shared connection; the cursor is read to its end, leaving no statement
        open across a commit of the event loop's thread."""
        sql = (
            "SELECT 1 FROM chunks c JOIN packs p ON p.id = c.pack "
            "WHERE c.chunk_id = ? AND p.state = 'live'"
        )
        if referenced:
            sql += " AND EXISTS (SELECT 1 FROM content_chunks cc WHERE cc.chunk = c.id)"
        return bool(self._conn.execute(sql, (chunk_id,)).fetchall())

    def chunk_bound(self) -> int:
        """At least the number of chunk rows (the largest row id: one lookup)."""
        return int(self._conn.execute("SELECT COALESCE(MAX(id), 0) FROM chunks").fetchone()[0])

    def live_chunk_ids(self, *, referenced: bool = False) -> set[bytes]:
        """Every chunk :meth:`live_chunk` would find, in one query."""
        sql = "SELECT c.chunk_id FROM chunks c JOIN packs p ON p.id = c.pack WHERE p.state = 'live'"
        if referenced:
            sql += " AND EXISTS (SELECT 1 FROM content_chunks cc WHERE cc.chunk = c.id)"
        return {bytes(r[0]) for r in self._conn.execute(sql).fetchall()}

    def commit_rewrite(
        self,
        new_packs: Sequence[RewrittenPack],
        dropped: Iterable[int],
        old_packs: Iterable[int],
        doomed: Iterable[tuple[int, str]],
        reason: str,
        finish: Callable[[sqlite3.Connection], None] | None = None,
    ) -> None:
        """In one transaction: make ``new_packs`` live with their moved chunks, run
        ``finish(conn)`` (the caller's own changes, inside the transaction),
        delete the ``dropped`` chunk rows and the ``old_packs`` (which must be empty by
        now), and queue the ``doomed`` (provider, object name) pairs for deletion."""
        now = int(time.time())
        with self.transaction() as c:
            for np in new_packs:
                c.execute("UPDATE packs SET state = 'live' WHERE id = ?", (np.pack,))
                c.executemany(
                    "UPDATE chunks SET pack = ?, offset = ?, length = ?, wrapped_key = ?, key_epoch = ? WHERE id = ?",
                    [
                        (np.pack, m.offset, m.length, m.wrapped_key, m.key_epoch, m.row)
                        for m in np.moves
                    ],
                )
            if finish is not None:
                finish(c)
            for row in dropped:
                c.execute("DELETE FROM chunks WHERE id = ?", (row,))
            for pack in old_packs:
                left = c.execute("SELECT COUNT(*) FROM chunks WHERE pack = ?", (pack,)).fetchone()[
                    0
                ]
                if left:
                    raise OwnvaultError(
                        f"internal error: pack {pack} still holds {left} chunk(s) after rewrite"
                    )
                c.execute("DELETE FROM shares WHERE pack = ?", (pack,))
                c.execute("DELETE FROM packs WHERE id = ?", (pack,))
            c.executemany(
                "INSERT OR IGNORE INTO doomed_objects(provider, name, reason, added_at) VALUES (?, ?, ?, ?)",
                [(p, name, reason, now) for p, name in doomed],
            )

    def doomed(self) -> list[DoomedObject]:
        """Every queued provider object, by provider and name."""
        rows = self._conn.execute(
            "SELECT provider, name, reason FROM doomed_objects ORDER BY provider, name"
        ).fetchall()
        return [DoomedObject(*r) for r in rows]

    def undoom(self, deleted: Iterable[tuple[int, str]]) -> None:
        """Take (provider, object name) pairs that were deleted off the queue."""
        with self.transaction() as c:
            c.executemany("DELETE FROM doomed_objects WHERE provider = ? AND name = ?", deleted)
