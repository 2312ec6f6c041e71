"""The fleet's view of the catalog: where a provider is, and the shares it holds."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ownvault.engine.store.catalog.tables import Tables

__all__ = ["FleetTables", "HeldShare", "ProviderMove"]


@dataclass(frozen=True, slots=True)
class ProviderMove:
    """Provider ``name`` now lives at ``url``, reached with adapter ``kind``."""

    name: str
    url: str
    kind: str


@dataclass(frozen=True, slots=True)
class HeldShare:
    """A share of a live pack, as the provider holding it should have it."""

    pack: int
    pack_id: bytes
    idx: int
    size: int
    root: bytes


class FleetTables(Tables):
    """``providers`` and ``shares``, per provider."""

    def held_shares(self, provider: int) -> list[HeldShare]:
        """The shares of live packs that ``provider`` holds, by pack and index."""
        rows = self._conn.execute(
            "SELECT s.pack, p.pack_id, s.idx, s.size, s.root FROM shares s "
            "JOIN packs p ON p.id = s.pack "
            "WHERE p.state = 'live' AND s.provider = ? ORDER BY s.pack, s.idx",
            (provider,),
        ).fetchall()
        return [HeldShare(r[0], bytes(r[1]), r[2], r[3], bytes(r[4])) for r in rows]

    def held_bytes(self, provider: int) -> int:
        """The total size of the shares of live packs that ``provider`` holds."""
        row = self._conn.execute(
            "SELECT COALESCE(SUM(s.size), 0) FROM shares s JOIN packs p ON p.id = s.pack "
            "WHERE p.state = 'live' AND s.provider = ?",
            (provider,),
        ).fetchone()
        return int(row[0])

    def relocate(self, moves: Iterable[ProviderMove]) -> None:
        """Record where providers moved (in one transaction; unknown names are ignored)."""
        with self.transaction() as c:
            for m in moves:
                c.execute(
                    "UPDATE providers SET url = ?, kind = ? WHERE name = ?", (m.url, m.kind, m.name)
                )
