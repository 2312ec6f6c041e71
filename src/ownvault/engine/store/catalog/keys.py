"""Keys in the catalog: the wrapped chunk keys (content-key rotation) and crypto-shredding
(what forgetting versions destroys, and scrubbing the freed pages). See ``engine.keys``."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ownvault.engine.store.catalog.journalout import JournalNamespace
from ownvault.engine.store.catalog.tables import Tables

__all__ = ["REWRAP_MIGRATION", "ForgetPlan", "KeyTables", "WrappedKey"]

REWRAP_MIGRATION = """
CREATE TRIGGER IF NOT EXISTS places_chunk_rewrap AFTER UPDATE OF wrapped_key, key_epoch ON chunks
WHEN NOT EXISTS (SELECT 1 FROM journal_mute) AND NEW.pack = OLD.pack
AND (NEW.wrapped_key != OLD.wrapped_key OR NEW.key_epoch != OLD.key_epoch)
BEGIN
  INSERT INTO journal_keys_out(kind, key) VALUES ('chunk', lower(hex(NEW.chunk_id)))
  ON CONFLICT (kind, key) DO UPDATE SET sent_seq = NULL;
END;
"""
"""Schema 14: a chunk key wrapped again (``keys rotate --rewrap``) is queued like a chunk
moved (``places_chunk_move``), so its ``chunks`` op carries the new wrap to the other
devices (docs/design.md, "Content-key epochs")."""


@dataclass(frozen=True, slots=True)
class WrappedKey:
    """Chunk ``row``'s key, wrapped under the content key of ``key_epoch``."""

    row: int
    chunk_id: bytes
    wrapped_key: bytes
    key_epoch: int


@dataclass(frozen=True, slots=True)
class ForgetPlan:
    """What forgetting some versions destroys."""

    doomed_chunks: frozenset[int]
    """Chunks only those versions use (their keys are shredded)."""
    shared_kept: int
    """How many of their chunks other versions share (kept)."""
    packs: frozenset[int]
    """Packs holding nothing another version needs (rewritten)."""
    grant_rows: frozenset[int]
    """Grants that cover those versions (their manifests change)."""


class KeyTables(Tables):
    """``chunks.wrapped_key`` and ``key_epoch``; deleting versions for good."""

    def wrapped_keys(self) -> list[WrappedKey]:
        """Every chunk's wrapped key."""
        rows = self._conn.execute("SELECT id, chunk_id, wrapped_key, key_epoch FROM chunks")
        return [WrappedKey(r[0], bytes(r[1]), bytes(r[2]), int(r[3])) for r in rows.fetchall()]

    def set_wrapped_keys(self, keys: Iterable[WrappedKey]) -> None:
        """Store chunk keys wrapped again (inside the caller's transaction)."""
        self._conn.executemany(
            "UPDATE chunks SET wrapped_key = ?, key_epoch = ? WHERE id = ?",
            [(k.wrapped_key, k.key_epoch, k.row) for k in keys],
        )

    def forget_plan(self, versions: Sequence[int]) -> ForgetPlan:
        """What forgetting ``versions`` (ids) destroys; see :class:`ForgetPlan`."""
        marks = ",".join("?" * len(versions))
        q = self._conn.execute
        mine = {
            r[0]
            for r in q(
                f"SELECT cc.chunk FROM entries e JOIN content_chunks cc ON cc.content = e.content WHERE e.version IN ({marks})",
                versions,
            )
        }
        others = {
            r[0]
            for r in q(
                f"SELECT cc.chunk FROM entries e JOIN content_chunks cc ON cc.content = e.content WHERE e.version NOT IN ({marks})",
                versions,
            )
        }
        packs = {
            r[0]
            for r in q(
                "SELECT DISTINCT c.pack FROM chunks c WHERE NOT EXISTS "
                f"(SELECT 1 FROM content_chunks cc JOIN entries e ON e.content = cc.content "
                f" WHERE cc.chunk = c.id AND e.version NOT IN ({marks}))",
                versions,
            )
        }
        grant_rows = {
            r[0]
            for r in q(
                f"SELECT DISTINCT grant_row FROM grant_versions WHERE version IN ({marks})",
                versions,
            )
        }
        return ForgetPlan(
            frozenset(mine - others), len(mine & others), frozenset(packs), frozenset(grant_rows)
        )

    def delete_versions(self, obj: int, versions: Sequence[int]) -> None:
        """Delete ``versions`` (ids) of object ``obj``, the object if none is left, and every
        content no entry refers to any more (inside the caller's transaction)."""
        marks = ",".join("?" * len(versions))
        c = self._conn
        # The journal's op is a forget, not the rm the delete trigger would record.
        c.execute(
            "INSERT INTO journal_out(op, device, seq, idx) SELECT 'forget', dot_device, "
            f"dot_seq, dot_index FROM versions WHERE id IN ({marks}) AND dot_device IS NOT NULL "
            "AND NOT EXISTS (SELECT 1 FROM journal_mute) ORDER BY id",
            versions,
        )
        c.execute(
            "UPDATE versions SET dot_device = NULL, dot_seq = NULL, dot_index = NULL "
            f"WHERE id IN ({marks})",
            versions,
        )
        c.execute(f"DELETE FROM versions WHERE id IN ({marks})", versions)
        if not c.execute("SELECT 1 FROM versions WHERE object = ?", (obj,)).fetchone():
            c.execute("DELETE FROM objects WHERE id = ?", (obj,))
        elif c.execute("SELECT COUNT(*) FROM journal_devices").fetchone()[0] > 1:
            # Numbered as the forget applied on the other devices numbers them, like rm
            # (Catalog.delete_versions); a vault of one device keeps its numbers.
            JournalNamespace(c).renumber(obj)
        c.execute(
            "DELETE FROM contents WHERE id NOT IN (SELECT content FROM entries WHERE content IS NOT NULL)"
        )

    def secure_delete(self) -> None:
        """From now on SQLite overwrites the content of deleted rows (this connection)."""
        self._conn.execute("PRAGMA secure_delete = ON")

    def scrub(self) -> None:
        """Overwrite freed pages (after ``secure_delete``), fold the WAL in and truncate it,
        vacuum. Slow: run it in a thread."""
        self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self._conn.execute("VACUUM")
        self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
