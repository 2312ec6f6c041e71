"""What the orphan sweep needs of the catalog (``catalog.sweep``, schema 14).

docs/design.md, "Catalog journal and multi-device merge", "The orphan sweep":

* ``sweep_marks``: share objects found on a provider that no share row here names, each
  with the seq of the record of this device that follows its listing (``mark``) and what
  this catalog said of the share's key when it was marked (``status``: ``unknown`` for a
  pack this catalog does not hold, else the last write of the key ``share <pack>:<idx>``).
* ``sweep_heads``: for each mark, the heads of every chain held here when it was made
  (this device's own entry is the mark itself): what every other device must have merged
  before the object may go.

The methods run no transaction of their own unless they say so.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from ownvault.engine.store.catalog.tables import Tables

__all__ = ["MIGRATION", "Mark", "SweepTables"]

MIGRATION = """
CREATE TABLE IF NOT EXISTS sweep_marks (
  provider INTEGER NOT NULL,
  name TEXT NOT NULL,
  size INTEGER NOT NULL,
  mark INTEGER NOT NULL,
  status TEXT NOT NULL,
  PRIMARY KEY (provider, name)
);
CREATE TABLE IF NOT EXISTS sweep_heads (
  mark INTEGER NOT NULL,
  device BLOB NOT NULL,
  seq INTEGER NOT NULL,
  PRIMARY KEY (mark, device)
);
"""
"""Schema 14."""


@dataclass(frozen=True, slots=True)
class Mark:
    """An object no share row named when it was listed."""

    provider: int
    name: str
    size: int
    mark: int
    status: str


class SweepTables(Tables):
    """``catalog.sweep``."""

    def referenced(self) -> set[tuple[int, bytes, int]]:
        """(provider, pack id, index) of every share row, of every pack in any state."""
        return {
            (int(r[0]), bytes(r[1]), int(r[2]))
            for r in self._conn.execute(
                "SELECT s.provider, p.pack_id, s.idx FROM shares s JOIN packs p ON p.id = s.pack "
                "WHERE s.provider IS NOT NULL"
            )
        }

    def status(self, pack_id: bytes, idx: int) -> str | None:
        """What this catalog says of share ``idx`` of ``pack_id`` now: ``unknown`` (no such
        pack here), None (the pack is here and that share has no place: a completion may be
        writing it), ``put`` (placed by the record that brought it, never written since) or
        the last write of its key as ``wall:counter:device``."""
        pack = self._conn.execute("SELECT id FROM packs WHERE pack_id = ?", (pack_id,)).fetchone()
        if pack is None:
            return "unknown"
        if (
            self._conn.execute(
                "SELECT 1 FROM shares WHERE pack = ? AND idx = ? AND provider IS NOT NULL",
                (pack[0], idx),
            ).fetchone()
            is None
        ):
            return None
        row = self._conn.execute(
            "SELECT wall, counter, device FROM journal_lww WHERE kind = 'share' AND key = ?",
            (f"{pack_id.hex()}:{idx}",),
        ).fetchone()
        if row is None:
            return "put"
        return f"{int(row[0])}:{int(row[1])}:{bytes(row[2]).hex()}"

    def marks(self) -> list[Mark]:
        return [
            Mark(int(r[0]), str(r[1]), int(r[2]), int(r[3]), str(r[4]))
            for r in self._conn.execute(
                "SELECT provider, name, size, mark, status FROM sweep_marks ORDER BY provider, name"
            )
        ]

    def heads_at(self) -> dict[int, dict[bytes, int]]:
        """Mark -> the heads held when it was made."""
        out: dict[int, dict[bytes, int]] = {}
        for mark, device, seq in self._conn.execute("SELECT mark, device, seq FROM sweep_heads"):
            out.setdefault(int(mark), {})[bytes(device)] = int(seq)
        return out

    def add(self, marks: Iterable[Mark], mark: int, heads: Mapping[bytes, int]) -> None:
        """Mark objects with ``mark`` (the seq of this device's next record), remembering
        ``heads`` (own transaction)."""
        with self.transaction() as c:
            c.executemany(
                "INSERT OR IGNORE INTO sweep_marks(provider, name, size, mark, status) "
                "VALUES (?, ?, ?, ?, ?)",
                [(m.provider, m.name, m.size, mark, m.status) for m in marks],
            )
            c.executemany(
                "INSERT OR IGNORE INTO sweep_heads(mark, device, seq) VALUES (?, ?, ?)",
                [(mark, d, s) for d, s in sorted(heads.items())],
            )

    def drop(self, marks: Iterable[tuple[int, str]]) -> None:
        """Forget marks (swept, gone, or named again; own transaction), and the heads no
        mark uses any more."""
        with self.transaction() as c:
            c.executemany("DELETE FROM sweep_marks WHERE provider = ? AND name = ?", list(marks))
            c.execute("DELETE FROM sweep_heads WHERE mark NOT IN (SELECT mark FROM sweep_marks)")
