"""The NFT table: one row per token the vault preserves or tried to (``nft_tokens``).

``catalog.nft`` (:class:`NftTables`) records each token's progress, its stored folder's root,
where it is pinned and its last health check (docs/design.md, "NFT preservation").
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

__all__ = ["NftTables", "NftTokenRow", "TokenState"]

TokenState = Literal["pending", "preserved", "failed"]
"""A token's progress (CHECK on nft_tokens.state)."""


@dataclass(frozen=True, slots=True)
class NftTokenRow:
    """A token's row; ``report``, ``pins`` and ``health`` are the stored JSON texts."""

    source: str
    name: str
    collection: str | None
    state: TokenState
    root: str | None
    report: str | None
    pins: str
    health: str | None
    error: str | None
    updated_at: int
    verified_at: int | None


_COLS = (
    "source, name, collection, state, root, report, pins, health, error, updated_at, verified_at"
)
_SETTABLE = frozenset(
    {"name", "state", "updated_at", "collection", "root", "report", "pins", "health", "error"}
)


class NftTables:
    """The ``nft_tokens`` table."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def add_pending(
        self, tokens: Iterable[tuple[str, str]], collection: str | None, now: int
    ) -> None:
        """A ``pending`` row for each (source, name) not known yet."""
        self._conn.executemany(
            "INSERT OR IGNORE INTO nft_tokens (source, name, collection, state, updated_at) "
            "VALUES (?, ?, ?, 'pending', ?)",
            [(source, name, collection, now) for source, name in tokens],
        )

    def mark(self, source: str, name: str, state: TokenState, cols: dict[str, object]) -> None:
        """Upsert a token's row with ``cols`` (column -> value). A ``failed`` or ``pending``
        mark never downgrades a ``preserved`` row: only its ``error`` and ``updated_at`` change."""
        unknown = set(cols) - _SETTABLE
        if unknown:
            raise ValueError(f"not a settable nft_tokens column: {sorted(unknown)}")
        now = cols["updated_at"]
        self._conn.execute(
            "INSERT OR IGNORE INTO nft_tokens (source, name, state, updated_at) VALUES (?, ?, ?, ?)",
            (source, name, state, now),
        )
        row = self._conn.execute(
            "SELECT state FROM nft_tokens WHERE source = ?", (source,)
        ).fetchone()
        if row[0] == "preserved" and state != "preserved":
            cols = {"error": cols.get("error"), "updated_at": now}
        sets = ", ".join(f"{k} = ?" for k in cols)
        self._conn.execute(
            f"UPDATE nft_tokens SET {sets} WHERE source = ?", (*cols.values(), source)
        )

    def name_of(self, source: str) -> str | None:
        row = self._conn.execute(
            "SELECT name FROM nft_tokens WHERE source = ?", (source,)
        ).fetchone()
        return None if row is None else str(row[0])

    def states(self) -> dict[str, TokenState]:
        return {r[0]: r[1] for r in self._conn.execute("SELECT source, state FROM nft_tokens")}

    def tokens(self, *, collection: str | None = None) -> list[NftTokenRow]:
        """Every token (of ``collection``), by name."""
        sql = f"SELECT {_COLS} FROM nft_tokens"
        args: tuple[str, ...] = ()
        if collection is not None:
            sql += " WHERE collection = ?"
            args = (collection,)
        return [NftTokenRow(*r) for r in self._conn.execute(sql + " ORDER BY name", args)]

    def preserved(self) -> list[NftTokenRow]:
        rows = self._conn.execute(
            f"SELECT {_COLS} FROM nft_tokens WHERE state = 'preserved' ORDER BY name"
        ).fetchall()
        return [NftTokenRow(*r) for r in rows]

    def set_health(self, source: str, health: str, verified_at: int) -> None:
        self._conn.execute(
            "UPDATE nft_tokens SET health = ?, verified_at = ? WHERE source = ?",
            (health, verified_at, source),
        )
