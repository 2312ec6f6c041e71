"""The health record, as the health feature's modules name it (kept while other branches
still import these names; new code calls ``catalog.healthlog`` directly).

The tables and their SQL are the catalog's (``engine.store.catalog.healthlog``, docs/
design.md "Audits and repair"); each function here hands its call to that table group.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ownvault.engine.store.catalog import Catalog
from ownvault.engine.store.catalog.healthlog import (
    KEEP_RUNS,
    AuditResultRow,
    AuditRow,
    FaultKind,
    FaultRow,
    RunKind,
    RunRow,
)

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


def record_run(
    catalog: Catalog,
    kind: RunKind,
    started_at: float,
    summary: Mapping[str, object],
    providers: Sequence[AuditResultRow] = (),
) -> int:
    return catalog.healthlog.record_run(kind, started_at, summary, providers)


def last_run(catalog: Catalog, kind: RunKind) -> RunRow | None:
    return catalog.healthlog.last_run(kind)


def latest_audit_rows(catalog: Catalog) -> dict[int, AuditRow]:
    return catalog.healthlog.latest_audit_rows()


def audit_history(
    catalog: Catalog, provider: int | None = None, limit: int = 100
) -> list[AuditRow]:
    return catalog.healthlog.audit_history(provider, limit)


def last_answered(catalog: Catalog, provider: int) -> float | None:
    return catalog.healthlog.last_answered(provider)


def add_fault(
    catalog: Catalog,
    pack: int,
    idx: int,
    provider: int,
    kind: FaultKind,
    detail: str,
    run: int | None = None,
) -> None:
    catalog.healthlog.add_fault(pack, idx, provider, kind, detail, run)


def clear_fault(catalog: Catalog, pack: int, idx: int) -> None:
    catalog.healthlog.clear_fault(pack, idx)


def faults(catalog: Catalog) -> list[FaultRow]:
    return catalog.healthlog.faults()
