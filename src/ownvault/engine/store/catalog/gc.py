"""What garbage collection across devices needs of the catalog (``catalog.gc``, schema 12).

docs/design.md, "Catalog journal and multi-device merge", "GC in the engine":

* ``journal_acks``: for each device, the ``seen`` vector of its latest record held here
  (written as records are noted, own records included): what that device had merged when
  it last wrote. Chains are pulled contiguously, so a device's vector here always comes
  with every record it wrote before it.
* ``gc_removed``: the packs of every version this catalog deleted (a trigger on
  ``versions``), each with the removal it waits for: ``(device, seq)`` rows, all of which
  every active device must have acknowledged (``seen[device] >= seq``) before the pack may
  go. A row is made unresolved (``device`` NULL); a removal applied from other devices'
  records is resolved as those records are noted (each device's highest seq in the pull:
  at least the record that removed it), one made here when this device's outbox has been
  sent (its own head: at least the record that carried the ``rm``). A version whose put
  never left this device waits for nothing (``device`` empty, ``seq`` 0): no other device
  knew it. A pack's rows go when the pack row does. A catalog copied from another device's
  snapshot resolves the writer's unresolved rows conservatively (:meth:`GcTables.copied`).

The methods run no transaction of their own unless they say so.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from ownvault.engine.store.catalog.tables import Tables

__all__ = ["MIGRATION", "Candidate", "GcTables"]

MIGRATION = """
CREATE TABLE journal_acks (
  device BLOB NOT NULL,
  other BLOB NOT NULL,
  seq INTEGER NOT NULL,
  PRIMARY KEY (device, other)
);
CREATE TABLE gc_removed (
  pack_id BLOB NOT NULL,
  local INTEGER NOT NULL CHECK (local IN (0, 1)),
  device BLOB,
  seq INTEGER
);
CREATE INDEX gc_removed_pack ON gc_removed(pack_id);
CREATE TRIGGER gc_version_removed BEFORE DELETE ON versions
WHEN OLD.dot_device IS NOT NULL OR NOT EXISTS (
  SELECT 1 FROM journal_out WHERE version = OLD.id AND sent_seq IS NULL)
BEGIN
  INSERT INTO gc_removed(pack_id, local)
  SELECT DISTINCT p.pack_id, NOT EXISTS (SELECT 1 FROM journal_mute)
  FROM entries e JOIN content_chunks cc ON cc.content = e.content
  JOIN chunks c ON c.id = cc.chunk JOIN packs p ON p.id = c.pack
  WHERE e.version = OLD.id;
END;
CREATE TRIGGER gc_unsent_removed BEFORE DELETE ON versions
WHEN OLD.dot_device IS NULL AND EXISTS (
  SELECT 1 FROM journal_out WHERE version = OLD.id AND sent_seq IS NULL)
BEGIN
  INSERT INTO gc_removed(pack_id, local, device, seq)
  SELECT DISTINCT p.pack_id, 1, X'', 0
  FROM entries e JOIN content_chunks cc ON cc.content = e.content
  JOIN chunks c ON c.id = cc.chunk JOIN packs p ON p.id = c.pack
  WHERE e.version = OLD.id;
END;
CREATE TRIGGER gc_pack_dropped AFTER DELETE ON packs
BEGIN DELETE FROM gc_removed WHERE pack_id = OLD.pack_id; END;
INSERT INTO gc_removed(pack_id, local)
SELECT p.pack_id, 1 FROM packs p WHERE p.state = 'live' AND NOT EXISTS (
  SELECT 1 FROM chunks c JOIN content_chunks cc ON cc.chunk = c.id WHERE c.pack = p.id);
INSERT INTO gc_removed(pack_id, local, device, seq)
SELECT g.pack_id, 0, d.device, d.seq FROM gc_removed g, journal_devices d WHERE d.seq > 0;
"""
"""Schema 12. Packs left unreferenced by removals made before it (a vault of several
devices kept them) wait for every device to acknowledge everything this catalog held."""


@dataclass(frozen=True, slots=True)
class Candidate:
    """A live pack some removed version referenced and no content here references now."""

    pack: int
    pack_id: bytes
    stored: int
    """Bytes of its shares on the providers."""
    waits: tuple[tuple[bytes, int], ...]
    """(device, seq): removals every active device must have seen."""
    unresolved: bool
    """A removal made here whose record is not written yet."""


class GcTables(Tables):
    """``catalog.gc``."""

    def note(self, records: Sequence[tuple[bytes, int, Iterable[tuple[bytes, int]]]]) -> None:
        """Verified records (device, seq, seen vector), oldest first per device: keep each
        device's latest vector, and resolve the removals just applied from them."""
        c = self._conn
        top: dict[bytes, int] = {}
        for device, seq, seen in records:
            top[device] = max(seq, top.get(device, 0))
            for other, at in seen:
                c.execute(
                    "INSERT INTO journal_acks(device, other, seq) VALUES (?, ?, ?) "
                    "ON CONFLICT(device, other) DO UPDATE SET seq = excluded.seq "
                    "WHERE excluded.seq > journal_acks.seq",
                    (device, other, at),
                )
        self._resolve(0, top)

    def resolve_local(self, device: bytes, seq: int) -> None:
        """This device's outbox is sent up to record ``seq``: its removals wait for it."""
        self._resolve(1, {device: seq})

    def _resolve(self, local: int, vector: Mapping[bytes, int]) -> None:
        if not vector:
            return
        c = self._conn
        c.executemany(
            "INSERT INTO gc_removed(pack_id, local, device, seq) SELECT DISTINCT pack_id, ?, ?, ? "
            "FROM gc_removed WHERE local = ? AND device IS NULL",
            [(local, d, s, local) for d, s in sorted(vector.items())],
        )
        c.execute("DELETE FROM gc_removed WHERE local = ? AND device IS NULL", (local,))

    def copied(self, unsent: int) -> None:
        """This catalog is a copy of another device's (recovered from its snapshot): the
        writer's own removals not resolved yet wait for every chain's head held, plus
        ``unsent`` (the writer's outbox: its unsent removals go in at most that many later
        records of its chain; which chain is the writer's is not known here). Own
        transaction."""
        with self.transaction() as c:
            c.execute(
                "INSERT INTO gc_removed(pack_id, local, device, seq) SELECT DISTINCT g.pack_id, "
                "0, d.device, d.seq + ? FROM gc_removed g, journal_devices d "
                "WHERE g.local = 1 AND g.device IS NULL",
                (unsent,),
            )
            c.execute("DELETE FROM gc_removed WHERE local = 1 AND device IS NULL")

    def revoked(self, device: bytes, cut: int, by: tuple[bytes, int]) -> None:
        """``device`` was revoked after ``cut`` by record ``by``: a removal waiting for one
        of its records after the cut waits for the revocation's record instead (no device
        that holds the revocation writes that chain further, and one that does not hold it
        yet may still deduplicate onto what that device's void records removed)."""
        c = self._conn
        c.execute(
            "INSERT INTO gc_removed(pack_id, local, device, seq) SELECT DISTINCT pack_id, "
            "local, ?, ? FROM gc_removed WHERE device = ? AND seq > ?",
            (by[0], by[1], device, cut),
        )
        c.execute("DELETE FROM gc_removed WHERE device = ? AND seq > ?", (device, cut))

    def acks(self) -> dict[bytes, dict[bytes, int]]:
        """Device -> the seen vector of its latest record held here."""
        out: dict[bytes, dict[bytes, int]] = {}
        for device, other, seq in self._conn.execute("SELECT device, other, seq FROM journal_acks"):
            out.setdefault(bytes(device), {})[bytes(other)] = int(seq)
        return out

    def candidates(self) -> list[Candidate]:
        """Live packs with removals recorded and no chunk any content references."""
        rows = self._conn.execute(
            "SELECT p.id, p.pack_id, (SELECT COALESCE(SUM(s.size), 0) FROM shares s "
            "WHERE s.pack = p.id), g.device, g.seq FROM packs p "
            "JOIN gc_removed g ON g.pack_id = p.pack_id WHERE p.state = 'live' AND NOT EXISTS ("
            "SELECT 1 FROM chunks c JOIN content_chunks cc ON cc.chunk = c.id "
            "WHERE c.pack = p.id) ORDER BY p.id"
        ).fetchall()
        waits: dict[int, set[tuple[bytes, int]]] = {}
        info: dict[int, tuple[bytes, int]] = {}
        open_: set[int] = set()
        for pack, pack_id, stored, device, seq in rows:
            info[int(pack)] = (bytes(pack_id), int(stored))
            w = waits.setdefault(int(pack), set())
            if device is None:
                open_.add(int(pack))
            else:
                w.add((bytes(device), int(seq)))
        return [
            Candidate(p, info[p][0], info[p][1], tuple(sorted(waits[p])), p in open_)
            for p in sorted(info)
        ]
