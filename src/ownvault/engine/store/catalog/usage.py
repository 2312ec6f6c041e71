"""How much the vault holds: totals and per provider (``catalog.usage``)."""

from __future__ import annotations

from ownvault.engine.store.catalog.tables import Tables

__all__ = ["UsageTables"]


class UsageTables(Tables):
    """Read-only counts over ``objects``, ``versions``, ``chunks``, ``packs`` and ``shares``."""

    def totals(self) -> dict[str, int]:
        """Objects, versions, chunks and live packs, and bytes at each stage: logical (all
        versions, latest versions), unique plaintext, packed, stored (every share)."""
        q = self._conn.execute
        logical = q(
            "SELECT COALESCE(SUM(e.size), 0) FROM entries e WHERE e.kind = 'file'"
        ).fetchone()[0]
        latest_logical = q(
            "SELECT COALESCE(SUM(size), 0) FROM versions v "
            "WHERE v.number = (SELECT MAX(number) FROM versions WHERE object = v.object)"
        ).fetchone()[0]
        unique_plain = q("SELECT COALESCE(SUM(plain_len), 0) FROM chunks").fetchone()[0]
        packed = q("SELECT COALESCE(SUM(size), 0) FROM packs WHERE state = 'live'").fetchone()[0]
        stored = q(
            "SELECT COALESCE(SUM(s.size), 0) FROM shares s JOIN packs p ON p.id = s.pack "
            "WHERE p.state = 'live'"
        ).fetchone()[0]
        return {
            "objects": q("SELECT COUNT(*) FROM objects").fetchone()[0],
            "versions": q("SELECT COUNT(*) FROM versions").fetchone()[0],
            "logical_bytes": int(logical),
            "latest_logical_bytes": int(latest_logical),
            "unique_bytes": int(unique_plain),
            "packed_bytes": int(packed),
            "stored_bytes": int(stored),
            "chunks": q("SELECT COUNT(*) FROM chunks").fetchone()[0],
            "packs": q("SELECT COUNT(*) FROM packs WHERE state = 'live'").fetchone()[0],
        }

    def by_provider(self) -> dict[int, tuple[int, int]]:
        """Per provider id: (shares, bytes) of live packs it holds."""
        return {
            r[0]: (r[1], r[2])
            for r in self._conn.execute(
                "SELECT s.provider, COUNT(*), COALESCE(SUM(s.size), 0) FROM shares s "
                "JOIN packs p ON p.id = s.pack WHERE p.state = 'live' GROUP BY s.provider"
            )
        }
