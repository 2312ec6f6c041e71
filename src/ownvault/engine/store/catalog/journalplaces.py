"""Pack places in the catalog journal (``catalog.jplaces``, schema 13): the outbox of share
places, chunk moves, pack deletions and settings made here (``journal_keys_out``, filled
by triggers in the transaction of the change), and the clock of the last write of every
key merged last-writer-wins (``journal_lww``: shares, chunks, settings).

Outbox keys: ``share`` ``<pack id hex>:<index>``, ``chunk`` ``<chunk id hex>``, ``drop``
``<pack id hex>``, ``born`` ``<pack id hex>`` (a pack made live here: goes out with the
next record, as its put or chunk moves name it; no op of its own), ``set`` ``<table>:<key>`` (``wire``: the key as sent, when the local
one names a version by its row id). A key changed again after it was stamped for a record is unstamped by
its trigger, so it goes out again with the newer value (never settled with an old one).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ownvault.core.journalclock import Hlc
from ownvault.engine.store.catalog.tables import Tables

__all__ = ["ChunkAt", "JournalPlaces", "PackAt", "ShareAt"]


@dataclass(frozen=True, slots=True)
class PackAt:
    row: int
    pack_id: bytes
    size: int
    k: int
    n: int
    created_at: int


@dataclass(frozen=True, slots=True)
class ShareAt:
    idx: int
    provider: str
    size: int
    root: bytes


@dataclass(frozen=True, slots=True)
class ChunkAt:
    pack_id: bytes
    chunk_id: bytes
    offset: int
    length: int
    wrapped_key: bytes
    key_epoch: int


class JournalPlaces(Tables):
    """``journal_keys_out``, ``journal_lww``, and the pack rows they are about."""

    # -- the outbox ---------------------------------------------------------------------

    def unsent(self) -> list[tuple[str, str]]:
        return [
            (str(r[0]), str(r[1]))
            for r in self._conn.execute(
                "SELECT kind, key FROM journal_keys_out WHERE sent_seq IS NULL ORDER BY kind, key"
            )
        ]

    def stamp(self, keys: Iterable[tuple[str, str, str | None]], seq: int) -> None:
        """Mark outbox keys (kind, key, the key on the wire when it differs) as going out
        in record ``seq`` (own transaction)."""
        with self.transaction() as c:
            c.executemany(
                "UPDATE journal_keys_out SET sent_seq = ?, wire = ? WHERE kind = ? AND key = ?",
                [(seq, wire, kind, key) for kind, key, wire in keys],
            )

    def discard(self, keys: Iterable[tuple[str, str]]) -> None:
        """Drop outbox keys there is nothing to say about (what they named is gone again;
        own transaction)."""
        with self.transaction() as c:
            c.executemany("DELETE FROM journal_keys_out WHERE kind = ? AND key = ?", list(keys))

    def settle(self, device: bytes, seq: int, hlc: Hlc) -> None:
        """Record ``seq`` of this device carried the keys stamped with it: their clocks are
        its clock, the rows go (inside the caller's transaction)."""
        c = self._conn
        c.execute(
            "INSERT INTO journal_lww(kind, key, wall, counter, device) "
            "SELECT kind, coalesce(wire, key), ?, ?, ? FROM journal_keys_out "
            "WHERE sent_seq = ? AND kind != 'born' "
            "ON CONFLICT (kind, key) DO UPDATE SET wall = excluded.wall, "
            "counter = excluded.counter, device = excluded.device",
            (hlc.wall_ms, hlc.counter, device, seq),
        )
        c.execute("DELETE FROM journal_keys_out WHERE sent_seq = ?", (seq,))

    # -- last writer wins ----------------------------------------------------------------

    def wins(self, kind: str, key: str, hlc: Hlc, device: bytes) -> bool:
        """A write of ``key`` at (``hlc``, ``device``) is later than the last one held here
        (or none is held); if so it is now the last one (inside the caller's transaction)."""
        row = self._conn.execute(
            "SELECT wall, counter, device FROM journal_lww WHERE kind = ? AND key = ?",
            (kind, key),
        ).fetchone()
        if row is not None and (int(row[0]), int(row[1]), bytes(row[2])) >= (
            hlc.wall_ms,
            hlc.counter,
            device,
        ):
            return False
        self._conn.execute(
            "INSERT INTO journal_lww(kind, key, wall, counter, device) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (kind, key) DO UPDATE SET wall = excluded.wall, "
            "counter = excluded.counter, device = excluded.device",
            (kind, key, hlc.wall_ms, hlc.counter, device),
        )
        return True

    def dropped(self, pack_id: bytes) -> bool:
        """``pack_id`` was deleted, here or by a record applied here: it never comes back
        (pack ids are random; its shares are gone)."""
        row = self._conn.execute(
            "SELECT 1 FROM journal_lww WHERE kind = 'drop' AND key = ?", (pack_id.hex(),)
        ).fetchone()
        return row is not None

    # -- packs, shares, chunks by their ids ----------------------------------------------

    def pack(self, pack_id: bytes) -> PackAt | None:
        row = self._conn.execute(
            "SELECT id, pack_id, size, k, n, created_at FROM packs "
            "WHERE pack_id = ? AND state = 'live'",
            (pack_id,),
        ).fetchone()
        return None if row is None else PackAt(row[0], bytes(row[1]), *row[2:])

    def shares(self, pack: int) -> dict[int, ShareAt]:
        """Share places of pack row ``pack`` by index, providers by name."""
        return {
            int(r[0]): ShareAt(int(r[0]), str(r[1]), int(r[2]), bytes(r[3]))
            for r in self._conn.execute(
                "SELECT s.idx, p.name, s.size, s.root FROM shares s "
                "JOIN providers p ON p.id = s.provider WHERE s.pack = ? ORDER BY s.idx",
                (pack,),
            )
        }

    def chunk(self, chunk_id: bytes) -> ChunkAt | None:
        row = self._conn.execute(
            "SELECT p.pack_id, c.chunk_id, c.offset, c.length, c.wrapped_key, c.key_epoch "
            "FROM chunks c JOIN packs p ON p.id = c.pack WHERE c.chunk_id = ?",
            (chunk_id,),
        ).fetchone()
        return None if row is None else ChunkAt(bytes(row[0]), bytes(row[1]), *row[2:])

    def provider_ids(self) -> dict[str, int]:
        return {str(r[1]): int(r[0]) for r in self._conn.execute("SELECT id, name FROM providers")}

    # -- applying (inside the caller's transaction, muted) ---------------------------------

    def add_pack(self, pack_id: bytes, size: int, k: int, n: int, created_at: int) -> int:
        cur = self._conn.execute(
            "INSERT INTO packs(pack_id, size, k, n, state, created_at) "
            "VALUES (?, ?, ?, ?, 'live', ?)",
            (pack_id, size, k, n, created_at),
        )
        return int(cur.lastrowid or 0)

    def set_share(self, pack: int, idx: int, provider: int | None, size: int, root: bytes) -> None:
        """Share ``idx`` of pack row ``pack`` is on ``provider`` (None: nowhere)."""
        if provider is None:
            self._conn.execute("DELETE FROM shares WHERE pack = ? AND idx = ?", (pack, idx))
            return
        self._conn.execute(
            "INSERT INTO shares(pack, idx, provider, size, root) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (pack, idx) DO UPDATE SET provider = excluded.provider, "
            "size = excluded.size, root = excluded.root",
            (pack, idx, provider, size, root),
        )

    def move_chunk(self, chunk_id: bytes, pack: int, place: ChunkAt) -> bool:
        """Re-point a chunk held here into pack row ``pack``; False if it is not here."""
        cur = self._conn.execute(
            "UPDATE chunks SET pack = ?, offset = ?, length = ?, wrapped_key = ?, key_epoch = ? "
            "WHERE chunk_id = ?",
            (pack, place.offset, place.length, place.wrapped_key, place.key_epoch, chunk_id),
        )
        return cur.rowcount > 0

    def drop_pack(self, pack_id: bytes) -> int:
        """Delete a pack another device deleted, with its chunk rows that no content here
        uses; how many chunks here still use it (then the pack stays)."""
        c = self._conn
        row = c.execute("SELECT id FROM packs WHERE pack_id = ?", (pack_id,)).fetchone()
        if row is None:
            return 0
        c.execute(
            "DELETE FROM chunks WHERE pack = ? AND id NOT IN (SELECT chunk FROM content_chunks)",
            (row[0],),
        )
        left = int(c.execute("SELECT COUNT(*) FROM chunks WHERE pack = ?", (row[0],)).fetchone()[0])
        if not left:
            c.execute("DELETE FROM shares WHERE pack = ?", (row[0],))
            c.execute("DELETE FROM packs WHERE id = ?", (row[0],))
        return left
