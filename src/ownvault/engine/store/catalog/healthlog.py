"""The health record: audit, deep-check and repair runs, and known bad shares.

Tables (catalog schema 2, docs/design.md "Audits and repair"): ``health_runs`` (one row per
run, with a JSON summary), ``audit_results`` (per provider, per audit run) and
``share_faults`` (shares found missing, corrupt or unreachable, until repair clears them).
The record travels in every catalog snapshot like the rest of the catalog; at most
``KEEP_RUNS`` runs of each kind are kept.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, get_args

from ownvault.core.jsonvalue import JSONValue
from ownvault.engine.store.catalog.tables import Tables

__all__ = [
    "KEEP_RUNS",
    "AuditResultRow",
    "AuditRow",
    "FaultKind",
    "FaultRow",
    "HealthLogTables",
    "RunKind",
    "RunRow",
]

KEEP_RUNS = 500
RunKind = Literal["audit", "deep", "repair"]
"""What a recorded health run was."""
FaultKind = Literal["missing", "corrupt", "unreachable"]
"""What is wrong with a share (CHECK on share_faults.kind)."""


@dataclass(frozen=True, slots=True)
class RunRow:
    id: int
    kind: RunKind
    started_at: float
    finished_at: float
    summary: dict[str, JSONValue]


@dataclass(frozen=True, slots=True)
class AuditResultRow:
    """One provider's counts in one audit run (what ``record_run`` stores)."""

    provider: int
    method: str
    shares: int
    blocks: int
    challenges: int
    passed: int
    failed: int
    unreachable: int
    missing_shares: int
    bytes: int
    seconds: float
    holds_at_least: float | None
    error: str | None


@dataclass(frozen=True, slots=True)
class AuditRow:
    run: int
    finished_at: float
    provider: int
    provider_name: str
    method: str
    shares: int
    blocks: int
    challenges: int
    passed: int
    failed: int
    unreachable: int
    missing_shares: int
    bytes: int
    seconds: float
    holds_at_least: float | None
    error: str | None


@dataclass(frozen=True, slots=True)
class FaultRow:
    pack: int
    pack_id: bytes
    idx: int
    provider: int
    kind: FaultKind
    detail: str
    found_at: float


_AUDIT_COLS = (
    "a.run, r.finished_at, a.provider, p.name, a.method, a.shares, a.blocks, a.challenges, "
    "a.passed, a.failed, a.unreachable, a.missing_shares, a.bytes, a.seconds, a.holds_at_least, a.error"
)
_AUDIT_FROM = (
    " FROM audit_results a JOIN health_runs r ON r.id = a.run JOIN providers p ON p.id = a.provider"
)


class HealthLogTables(Tables):
    """``health_runs``, ``audit_results`` and ``share_faults``."""

    def record_run(
        self,
        kind: RunKind,
        started_at: float,
        summary: Mapping[str, object],
        providers: Sequence[AuditResultRow] = (),
    ) -> int:
        """Store one run (and, for audits, its per-provider rows); prune old runs of that kind."""
        with self.transaction() as c:
            cur = c.execute(
                "INSERT INTO health_runs(kind, started_at, finished_at, summary) VALUES (?, ?, ?, ?)",
                (kind, started_at, time.time(), json.dumps(summary, sort_keys=True, default=str)),
            )
            run = int(cur.lastrowid or 0)
            for p in providers:
                c.execute(
                    "INSERT INTO audit_results(run, provider, method, shares, blocks, challenges, "
                    "passed, failed, unreachable, missing_shares, bytes, seconds, holds_at_least, "
                    "error) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        run, p.provider, p.method, p.shares, p.blocks, p.challenges, p.passed,
                        p.failed, p.unreachable, p.missing_shares, p.bytes, p.seconds,
                        p.holds_at_least, p.error,
                    ),
                )  # fmt: skip
            c.execute(
                "DELETE FROM health_runs WHERE kind = ? AND id <= ("
                " SELECT id FROM health_runs WHERE kind = ? ORDER BY id DESC LIMIT 1 OFFSET ?)",
                (kind, kind, KEEP_RUNS),
            )
        return run

    def last_run(self, kind: RunKind) -> RunRow | None:
        row = self._conn.execute(
            "SELECT id, kind, started_at, finished_at, summary FROM health_runs WHERE kind = ? "
            "ORDER BY id DESC LIMIT 1",
            (kind,),
        ).fetchone()
        return None if row is None else RunRow(row[0], row[1], row[2], row[3], json.loads(row[4]))

    def latest_audit_rows(self) -> dict[int, AuditRow]:
        """Per provider, its result in the most recent audit run that covered it."""
        rows = self._conn.execute(
            f"SELECT {_AUDIT_COLS}{_AUDIT_FROM} "
            "WHERE a.run = (SELECT MAX(run) FROM audit_results WHERE provider = a.provider)"
        ).fetchall()
        return {r[2]: AuditRow(*r) for r in rows}

    def audit_history(self, provider: int | None = None, limit: int = 100) -> list[AuditRow]:
        """Audit results, newest run first (of one provider, or all)."""
        sql = f"SELECT {_AUDIT_COLS}{_AUDIT_FROM}"
        args: tuple[int, ...] = ()
        if provider is not None:
            sql += " WHERE a.provider = ?"
            args = (provider,)
        sql += " ORDER BY a.run DESC, p.name LIMIT ?"
        return [AuditRow(*r) for r in self._conn.execute(sql, (*args, limit)).fetchall()]

    def last_answered(self, provider: int) -> float | None:
        """When the provider last answered an audit in full (no unreachable challenge, no error)."""
        row = self._conn.execute(
            "SELECT MAX(r.finished_at) FROM audit_results a JOIN health_runs r ON r.id = a.run "
            "WHERE a.provider = ? AND a.unreachable = 0 AND a.error IS NULL",
            (provider,),
        ).fetchone()
        return None if row is None or row[0] is None else float(row[0])

    def add_fault(
        self,
        pack: int,
        idx: int,
        provider: int,
        kind: FaultKind,
        detail: str,
        run: int | None = None,
    ) -> None:
        """Remember that share ``idx`` of ``pack`` at ``provider`` is bad (the newest finding wins)."""
        if kind not in get_args(FaultKind):
            raise ValueError(kind)
        with self.transaction() as c:
            c.execute(
                "INSERT INTO share_faults(pack, idx, provider, kind, detail, found_at, run) "
                "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(pack, idx) DO UPDATE SET "
                "provider = excluded.provider, kind = excluded.kind, detail = excluded.detail, "
                "found_at = excluded.found_at, run = excluded.run",
                (pack, idx, provider, kind, detail[:300], time.time(), run),
            )

    def clear_fault(self, pack: int, idx: int) -> None:
        with self.transaction() as c:
            c.execute("DELETE FROM share_faults WHERE pack = ? AND idx = ?", (pack, idx))

    def faults(self) -> list[FaultRow]:
        """Known bad shares whose catalog row still points at the provider they were found on."""
        rows = self._conn.execute(
            "SELECT f.pack, p.pack_id, f.idx, f.provider, f.kind, f.detail, f.found_at "
            "FROM share_faults f JOIN packs p ON p.id = f.pack "
            "JOIN shares s ON s.pack = f.pack AND s.idx = f.idx AND s.provider = f.provider "
            "WHERE p.state = 'live' ORDER BY f.pack, f.idx"
        ).fetchall()
        return [FaultRow(r[0], bytes(r[1]), r[2], r[3], r[4], r[5], r[6]) for r in rows]
