"""The health record in the catalog: audit, deep-check and repair runs, and known bad shares.

Tables (catalog schema 2, docs/design.md "Audits and repair"): ``health_runs`` (one row per
run, with a JSON summary), ``audit_results`` (per provider, per audit run) and
``share_faults`` (shares found missing, corrupt or unreachable, until repair clears them).
The record travels in every catalog snapshot like the rest of the catalog; at most
``KEEP_RUNS`` runs of each kind are kept.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from ownvault.engine.store.catalog import Catalog

__all__ = [
    "KEEP_RUNS",
    "AuditRow",
    "FaultRow",
    "RunRow",
    "add_fault",
    "audit_history",
    "clear_fault",
    "faults",
    "last_answered",
    "last_run",
    "latest_audit_rows",
    "record_run",
]

KEEP_RUNS = 500
FAULT_KINDS = ("missing", "corrupt", "unreachable")


@dataclass(frozen=True, slots=True)
class RunRow:
    id: int
    kind: str
    started_at: float
    finished_at: float
    summary: dict[str, Any]


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
    kind: str
    detail: str
    found_at: float


def record_run(
    catalog: Catalog,
    kind: str,
    started_at: float,
    summary: dict[str, Any],
    providers: list[dict[str, Any]] | None = None,
) -> int:
    """Store one run (and, for audits, its per-provider rows); prune old runs of that kind."""
    with catalog.transaction() as c:
        cur = c.execute(
            "INSERT INTO health_runs(kind, started_at, finished_at, summary) VALUES (?, ?, ?, ?)",
            (kind, started_at, time.time(), json.dumps(summary, sort_keys=True, default=str)),
        )
        run = int(cur.lastrowid or 0)
        for p in providers or []:
            c.execute(
                "INSERT INTO audit_results(run, provider, method, shares, blocks, challenges, passed, "
                "failed, unreachable, missing_shares, bytes, seconds, holds_at_least, error) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    run,
                    p["provider_id"],
                    p["method"],
                    p["shares"],
                    p["blocks"],
                    p["challenges"],
                    p["passed"],
                    p["failed"],
                    p["unreachable"],
                    p["missing_shares"],
                    p["bytes"],
                    p["seconds"],
                    p["holds_at_least"],
                    p["error"],
                ),
            )
        c.execute(
            "DELETE FROM health_runs WHERE kind = ? AND id <= ("
            " SELECT id FROM health_runs WHERE kind = ? ORDER BY id DESC LIMIT 1 OFFSET ?)",
            (kind, kind, KEEP_RUNS),
        )
    return run


def last_run(catalog: Catalog, kind: str) -> RunRow | None:
    row = catalog.conn.execute(
        "SELECT id, kind, started_at, finished_at, summary FROM health_runs WHERE kind = ? "
        "ORDER BY id DESC LIMIT 1",
        (kind,),
    ).fetchone()
    return None if row is None else RunRow(row[0], row[1], row[2], row[3], json.loads(row[4]))


_AUDIT_COLS = (
    "a.run, r.finished_at, a.provider, p.name, a.method, a.shares, a.blocks, a.challenges, "
    "a.passed, a.failed, a.unreachable, a.missing_shares, a.bytes, a.seconds, a.holds_at_least, a.error"
)


def latest_audit_rows(catalog: Catalog) -> dict[int, AuditRow]:
    """Per provider, its result in the most recent audit run that covered it."""
    rows = catalog.conn.execute(
        f"SELECT {_AUDIT_COLS} FROM audit_results a JOIN health_runs r ON r.id = a.run "
        "JOIN providers p ON p.id = a.provider "
        "WHERE a.run = (SELECT MAX(run) FROM audit_results WHERE provider = a.provider)"
    ).fetchall()
    return {r[2]: AuditRow(*r) for r in rows}


def audit_history(
    catalog: Catalog, provider: int | None = None, limit: int = 100
) -> list[AuditRow]:
    sql = (
        f"SELECT {_AUDIT_COLS} FROM audit_results a JOIN health_runs r ON r.id = a.run "
        "JOIN providers p ON p.id = a.provider"
    )
    args: tuple[Any, ...] = ()
    if provider is not None:
        sql += " WHERE a.provider = ?"
        args = (provider,)
    sql += " ORDER BY a.run DESC, p.name LIMIT ?"
    return [AuditRow(*r) for r in catalog.conn.execute(sql, (*args, limit)).fetchall()]


def last_answered(catalog: Catalog, provider: int) -> float | None:
    """When the provider last answered an audit in full (no unreachable challenge, no error)."""
    row = catalog.conn.execute(
        "SELECT MAX(r.finished_at) FROM audit_results a JOIN health_runs r ON r.id = a.run "
        "WHERE a.provider = ? AND a.unreachable = 0 AND a.error IS NULL",
        (provider,),
    ).fetchone()
    return None if row is None or row[0] is None else float(row[0])


def add_fault(
    catalog: Catalog,
    pack: int,
    idx: int,
    provider: int,
    kind: str,
    detail: str,
    run: int | None = None,
) -> None:
    """Remember that share ``idx`` of ``pack`` at ``provider`` is bad (the newest finding wins)."""
    if kind not in FAULT_KINDS:
        raise ValueError(kind)
    with catalog.transaction() as c:
        c.execute(
            "INSERT INTO share_faults(pack, idx, provider, kind, detail, found_at, run) "
            "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(pack, idx) DO UPDATE SET "
            "provider = excluded.provider, kind = excluded.kind, detail = excluded.detail, "
            "found_at = excluded.found_at, run = excluded.run",
            (pack, idx, provider, kind, detail[:300], time.time(), run),
        )


def clear_fault(catalog: Catalog, pack: int, idx: int) -> None:
    with catalog.transaction() as c:
        c.execute("DELETE FROM share_faults WHERE pack = ? AND idx = ?", (pack, idx))


def faults(catalog: Catalog) -> list[FaultRow]:
    """Known bad shares whose catalog row still points at the provider they were found on."""
    rows = catalog.conn.execute(
        "SELECT f.pack, p.pack_id, f.idx, f.provider, f.kind, f.detail, f.found_at "
        "FROM share_faults f JOIN packs p ON p.id = f.pack "
        "JOIN shares s ON s.pack = f.pack AND s.idx = f.idx AND s.provider = f.provider "
        "WHERE p.state = 'live' ORDER BY f.pack, f.idx"
    ).fetchall()
    return [FaultRow(r[0], bytes(r[1]), r[2], r[3], r[4], r[5], r[6]) for r in rows]
