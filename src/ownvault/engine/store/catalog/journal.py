"""The catalog's record of the journal (tables ``journal_*``, schema 10).

What this device knows of every chain (docs/design.md, "Catalog journal and
multi-device merge", "The journal on the providers"):

* ``journal_devices``: each device whose first record was verified, with its certified
  public key and name, and the head of its chain held here (seq, hash, HLC). This
  device's own row is its own head: written in the same transaction as the provider
  write is acknowledged, so the next append knows its seq and previous hash.
* ``journal_revoked``: revocations (last accepted seq, membership signature), also of
  devices whose records have not arrived yet.
* ``journal_marks``: per provider and device, the highest seq the provider has listed
  (a later listing below it is a rollback by that provider).
* ``journal_state``: ``hlc`` (the device's hybrid clock, raised to every record
  merged) and ``pending`` (the own seq being written: a crash between the provider write
  and the head update leaves it, and the next append looks for that record first).

The methods run no transaction of their own unless they say so: the journal store calls
them inside one ``catalog.transaction()`` with the caller's changes.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from ownvault.core.journalclock import GENESIS, ChainHead, Hlc
from ownvault.engine.store.catalog.tables import Tables

__all__ = ["DeviceRow", "JournalTables"]


@dataclass(frozen=True, slots=True)
class DeviceRow:
    """A device of the vault as this catalog knows it."""

    device: bytes
    key: bytes
    name: str
    cert: bytes
    head: ChainHead
    revoked_after: int | None


def _head(seq: int, hash_: bytes, wall: int, counter: int) -> ChainHead:
    return ChainHead(int(seq), bytes(hash_), Hlc(int(wall), int(counter)))


class JournalTables(Tables):
    """``catalog.journal``."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        super().__init__(conn)

    # -- devices and heads ------------------------------------------------------------------

    def devices(self) -> list[DeviceRow]:
        rows = self._conn.execute(
            "SELECT d.device, d.key, d.name, d.cert, d.seq, d.hash, d.wall_ms, d.counter, "
            "r.last_seq FROM journal_devices d "
            "LEFT JOIN journal_revoked r ON r.device = d.device ORDER BY d.device"
        ).fetchall()
        return [
            DeviceRow(
                bytes(r[0]),
                bytes(r[1]),
                str(r[2]),
                bytes(r[3]),
                _head(r[4], r[5], r[6], r[7]),
                None if r[8] is None else int(r[8]),
            )
            for r in rows
        ]

    def head(self, device: bytes) -> ChainHead:
        """The head of ``device``'s chain held here (``GENESIS`` for an unknown device)."""
        r = self._conn.execute(
            "SELECT seq, hash, wall_ms, counter FROM journal_devices WHERE device = ?", (device,)
        ).fetchone()
        return GENESIS if r is None else _head(*r)

    def heads(self) -> dict[bytes, ChainHead]:
        return {d.device: d.head for d in self.devices()}

    def members(self) -> dict[bytes, bytes]:
        """Device id -> certified public key."""
        rows = self._conn.execute("SELECT device, key FROM journal_devices").fetchall()
        return {bytes(r[0]): bytes(r[1]) for r in rows}

    def revoked(self) -> dict[bytes, int]:
        """Revoked device id -> last accepted seq."""
        rows = self._conn.execute("SELECT device, last_seq FROM journal_revoked").fetchall()
        return {bytes(r[0]): int(r[1]) for r in rows}

    def add_device(self, device: bytes, key: bytes, name: str, cert: bytes) -> None:
        """A device whose certificate verified (its chain starts at GENESIS)."""
        self._conn.execute(
            "INSERT INTO journal_devices(device, key, name, cert, seq, hash, wall_ms, counter) "
            "VALUES (?, ?, ?, ?, 0, ?, 0, 0) ON CONFLICT(device) DO NOTHING",
            (device, key, name, cert, GENESIS.hash),
        )

    def set_head(self, device: bytes, head: ChainHead) -> None:
        """Move a known device's head (only forward: the chain check came first)."""
        self._conn.execute(
            "UPDATE journal_devices SET seq = ?, hash = ?, wall_ms = ?, counter = ? "
            "WHERE device = ? AND seq < ?",
            (head.seq, head.hash, head.hlc.wall_ms, head.hlc.counter, device, head.seq),
        )

    def revoke(self, device: bytes, last_seq: int, sig: bytes) -> None:
        """Record a verified revocation; the earliest cut-off wins (as in the merge)."""
        self._conn.execute(
            "INSERT INTO journal_revoked(device, last_seq, sig) VALUES (?, ?, ?) "
            "ON CONFLICT(device) DO UPDATE SET last_seq = excluded.last_seq, sig = excluded.sig "
            "WHERE excluded.last_seq < journal_revoked.last_seq",
            (device, last_seq, sig),
        )

    # -- per-provider listing marks ---------------------------------------------------------

    def marks(self, provider: int) -> dict[bytes, int]:
        rows = self._conn.execute(
            "SELECT device, seq FROM journal_marks WHERE provider = ?", (provider,)
        ).fetchall()
        return {bytes(r[0]): int(r[1]) for r in rows}

    def raise_marks(self, provider: int, marks: Mapping[bytes, int]) -> None:
        for device, seq in marks.items():
            self._conn.execute(
                "INSERT INTO journal_marks(provider, device, seq) VALUES (?, ?, ?) "
                "ON CONFLICT(provider, device) DO UPDATE SET seq = excluded.seq "
                "WHERE excluded.seq > journal_marks.seq",
                (provider, device, seq),
            )

    def raise_marks_all(self, providers: Iterable[int], marks: Mapping[bytes, int]) -> None:
        for provider in providers:
            self.raise_marks(provider, marks)

    # -- clock and the append in progress ---------------------------------------------------

    def _state(self, key: str) -> str | None:
        r = self._conn.execute("SELECT value FROM journal_state WHERE key = ?", (key,)).fetchone()
        return None if r is None else str(r[0])

    def _set_state(self, key: str, value: str | None) -> None:
        if value is None:
            self._conn.execute("DELETE FROM journal_state WHERE key = ?", (key,))
            return
        self._conn.execute(
            "INSERT INTO journal_state(key, value) VALUES (?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    def hlc(self) -> Hlc:
        """The device's clock: at least every record it wrote or merged."""
        raw = self._state("hlc")
        if raw is None:
            return Hlc(0, 0)
        wall, counter = json.loads(raw)
        return Hlc(int(wall), int(counter))

    def witness(self, readings: Iterable[Hlc]) -> None:
        """Raise the clock to the latest of ``readings``."""
        now = max([self.hlc(), *readings])
        self._set_state("hlc", json.dumps([now.wall_ms, now.counter]))

    def pending(self) -> tuple[bytes, int] | None:
        """(device, seq) of an own record whose write was started and not acknowledged."""
        raw = self._state("pending")
        if raw is None:
            return None
        device, seq = json.loads(raw)
        return bytes.fromhex(device), int(seq)

    def set_pending(self, value: tuple[bytes, int] | None) -> None:
        self._set_state(
            "pending", None if value is None else json.dumps([value[0].hex(), value[1]])
        )
