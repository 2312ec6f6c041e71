"""The catalog's record of under-replicated pieces (table ``underrep``, schema 8).

A write succeeds while at least ``Policy.happy`` shares of a piece are durably placed
(docs/design.md, "Degraded writes"); each share it could not place is a row here, with
the size and Merkle root it must have, until repair writes it and moves it to ``shares``.
A row names either a pack (``pack``, cascading with it) or a piece of catalog snapshot
``seq``. For a pack the row and the ``shares`` row of the same index never both exist:
:meth:`UnderReplicated.mark_missing` and :meth:`UnderReplicated.complete` switch one for
the other in one transaction.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

__all__ = ["MissingShare", "UnderReplicated"]


@dataclass(frozen=True, slots=True)
class MissingShare:
    """One share of a piece that is not placed yet."""

    piece: bytes  # the pack id, or the snapshot piece's id
    idx: int
    pack: int | None  # the catalog pack row (None: a catalog snapshot piece)
    seq: int | None  # the catalog snapshot's sequence number (None: a pack)
    size: int
    root: bytes
    tried: int | None  # the provider last tried: it may hold a partial or stale copy
    reason: str


_COLS = "piece, idx, pack, seq, size, root, tried, reason"


def _row(r: tuple[Any, ...]) -> MissingShare:
    return MissingShare(
        bytes(r[0]),
        int(r[1]),
        None if r[2] is None else int(r[2]),
        None if r[3] is None else int(r[3]),
        int(r[4]),
        bytes(r[5]),
        None if r[6] is None else int(r[6]),
        str(r[7]),
    )


class UnderReplicated:
    """Table group ``underrep``: ``catalog.underrep``."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        transaction: Callable[[], AbstractContextManager[sqlite3.Connection]],
    ) -> None:
        self.conn = conn
        self.transaction = transaction

    # -- packs ------------------------------------------------------------------------------

    def add(
        self, pack: int, pack_id: bytes, shares: Iterable[tuple[int, int, bytes]], reason: str
    ) -> None:
        """Record shares (idx, size, root) of ``pack`` that were never placed."""
        with self.transaction() as c:
            c.executemany(
                f"INSERT INTO underrep({_COLS}, since) VALUES (?, ?, ?, NULL, ?, ?, NULL, ?, ?)",
                [(pack_id, i, pack, size, root, reason, time.time()) for i, size, root in shares],
            )

    def mark_missing(self, pack: int, idx: int, reason: str) -> None:
        """Share ``idx`` of ``pack`` could not be written anywhere: its ``shares`` row (the
        provider last tried) becomes an ``underrep`` row, in one transaction."""
        with self.transaction() as c:
            row = c.execute(
                "SELECT p.pack_id, s.provider, s.size, s.root FROM shares s "
                "JOIN packs p ON p.id = s.pack WHERE s.pack = ? AND s.idx = ?",
                (pack, idx),
            ).fetchone()
            if row is None:
                return
            c.execute(
                f"INSERT INTO underrep({_COLS}, since) VALUES (?, ?, ?, NULL, ?, ?, ?, ?, ?)",
                (row[0], idx, pack, row[2], row[3], row[1], reason, time.time()),
            )
            c.execute("DELETE FROM shares WHERE pack = ? AND idx = ?", (pack, idx))

    def set_tried(self, piece: bytes, idx: int, provider: int) -> None:
        """Remember where a completion is about to write (before it writes)."""
        with self.transaction() as c:
            c.execute(
                "UPDATE underrep SET tried = ? WHERE piece = ? AND idx = ?", (provider, piece, idx)
            )

    def complete(self, pack: int, idx: int, provider: int) -> None:
        """Share ``idx`` of ``pack`` is now durable on ``provider``: move its row to ``shares``."""
        with self.transaction() as c:
            c.execute(
                "INSERT INTO shares(pack, idx, provider, size, root) "
                "SELECT pack, idx, ?, size, root FROM underrep WHERE pack = ? AND idx = ?",
                (provider, pack, idx),
            )
            c.execute("DELETE FROM underrep WHERE pack = ? AND idx = ?", (pack, idx))

    def of_pack(self, pack: int) -> list[MissingShare]:
        return [
            _row(r)
            for r in self.conn.execute(
                f"SELECT {_COLS} FROM underrep WHERE pack = ? ORDER BY idx", (pack,)
            )
        ]

    def packs(self) -> list[int]:
        """Live packs with shares still to place, oldest first."""
        return [
            int(r[0])
            for r in self.conn.execute(
                "SELECT DISTINCT u.pack FROM underrep u JOIN packs p ON p.id = u.pack "
                "WHERE p.state = 'live' ORDER BY u.pack"
            )
        ]

    def summary(self, packs: Iterable[int]) -> list[dict[str, object]]:
        """For a put's result: each of ``packs`` with shares missing, as
        ``{"pack", "placed", "wanted", "missing": [index, ...]}``."""
        out: list[dict[str, object]] = []
        for pack in sorted(set(packs)):
            missing = self.of_pack(pack)
            if not missing:
                continue
            row = self.conn.execute(
                "SELECT n, (SELECT COUNT(*) FROM shares WHERE pack = ?) FROM packs WHERE id = ?",
                (pack, pack),
            ).fetchone()
            out.append(
                {
                    "pack": missing[0].piece.hex(),
                    "placed": int(row[1]),
                    "wanted": int(row[0]),
                    "missing": [m.idx for m in missing],
                }
            )
        return out

    # -- catalog snapshots ------------------------------------------------------------------

    def set_snapshot(self, seq: int, shares: Iterable[tuple[bytes, int, int, bytes]]) -> None:
        """The newest snapshot is ``seq``; its unplaced shares (piece, idx, size, root). The
        rows of older snapshots go: a newer snapshot supersedes them."""
        with self.transaction() as c:
            c.execute("DELETE FROM underrep WHERE seq IS NOT NULL")
            c.executemany(
                f"INSERT INTO underrep({_COLS}, since) VALUES (?, ?, NULL, ?, ?, ?, NULL, ?, ?)",
                [
                    (piece, i, seq, size, root, "not placed when written", time.time())
                    for piece, i, size, root in shares
                ],
            )

    def snapshot_missing(self) -> int:
        """Shares of the newest catalog snapshot that are not placed."""
        row = self.conn.execute("SELECT COUNT(*) FROM underrep WHERE seq IS NOT NULL").fetchone()
        return int(row[0])

    # -- counts -----------------------------------------------------------------------------

    def count(self) -> int:
        """Under-replicated pieces: live packs and snapshot pieces with a share to place."""
        row = self.conn.execute(
            "SELECT COUNT(*) FROM (SELECT DISTINCT u.piece FROM underrep u "
            "LEFT JOIN packs p ON p.id = u.pack WHERE u.seq IS NOT NULL OR p.state = 'live')"
        ).fetchone()
        return int(row[0])
