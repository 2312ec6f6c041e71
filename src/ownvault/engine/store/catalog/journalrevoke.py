"""What undoing a late revocation needs of the catalog (``engine.store.journalrevoke``).

* Revocations still to undo: ``journal_state`` rows ``late-revoke:<device hex>`` holding
  the cut-off and the revocation's record (device, seq), written in the transaction that applies the revocation (so a crash before
  the undo leaves the row, and the next pull undoes it) and deleted in the undo's.
* The versions and tag additions a device made after a cut-off (by their dots), and the
  removal marks (``journal_gone``) an undone removal takes back.

Everything runs inside the caller's transaction.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from ownvault.core.journalclock import Dot
from ownvault.engine.store.catalog.tables import Tables

__all__ = ["LateRevocations"]

_KEY = "late-revoke:"


class LateRevocations(Tables):
    """Late revocations to undo, and the rows they touch."""

    def note(self, device: bytes, cut: int, by: tuple[bytes, int]) -> None:
        """``device``'s records after ``cut`` were applied here before its revocation
        (record ``by``: device, seq) arrived; the lowest cut-off wins, as in the merge."""
        key = _KEY + device.hex()
        held = self.pending().get(device)
        if held is not None and held[0] <= cut:
            return
        self._conn.execute(
            "INSERT INTO journal_state(key, value) VALUES (?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, json.dumps([cut, by[0].hex(), by[1]])),
        )

    def pending(self) -> dict[bytes, tuple[int, tuple[bytes, int]]]:
        """Device -> (cut-off, the revocation's record) of every revocation to undo."""
        rows = self._conn.execute(
            "SELECT key, value FROM journal_state WHERE key LIKE ?", (_KEY + "%",)
        ).fetchall()
        out: dict[bytes, tuple[int, tuple[bytes, int]]] = {}
        for key, value in rows:
            cut, by, seq = json.loads(value)
            out[bytes.fromhex(str(key)[len(_KEY) :])] = (int(cut), (bytes.fromhex(by), int(seq)))
        return out

    def done(self, device: bytes) -> None:
        self._conn.execute("DELETE FROM journal_state WHERE key = ?", (_KEY + device.hex(),))

    def made_after(self, device: bytes, cut: int) -> list[Dot]:
        """The dots of the versions and tag additions held here that ``device`` made in
        its records after ``cut``."""
        rows = self._conn.execute(
            "SELECT dot_device, dot_seq, dot_index FROM versions "
            "WHERE dot_device = ? AND dot_seq > ? "
            "UNION SELECT device, seq, idx FROM tag_adds WHERE device = ? AND seq > ?",
            (device, cut, device, cut),
        ).fetchall()
        return sorted(Dot(bytes(r[0]), int(r[1]), int(r[2])) for r in rows)

    def gone(self, dots: Iterable[Dot]) -> list[Dot]:
        """Those of ``dots`` marked removed here."""
        q = self._conn.execute
        return [
            d
            for d in dots
            if q(
                "SELECT 1 FROM journal_gone WHERE device = ? AND seq = ? AND idx = ?",
                (d.device, d.seq, d.index),
            ).fetchone()
        ]

    def forget_again(self, dots: Iterable[Dot]) -> None:
        """Queue a ``forget`` of ``dots`` as this device's own op (sent with its next
        record, even while applying is muted): their data was destroyed."""
        self._conn.executemany(
            "INSERT INTO journal_out(op, device, seq, idx) VALUES ('forget', ?, ?, ?)",
            [(d.device, d.seq, d.index) for d in dots],
        )

    def unremove(self, dots: Iterable[Dot]) -> None:
        """Take back the removal marks of ``dots`` (their removal counted for nothing)."""
        self._conn.executemany(
            "DELETE FROM journal_gone WHERE device = ? AND seq = ? AND idx = ?",
            [(d.device, d.seq, d.index) for d in dots],
        )
