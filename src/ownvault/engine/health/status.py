"""``status``: one document that says whether the vault is healthy, what is at risk, and
what to do. The verdict is ``engine.health.verdict`` (the one ``check``, the API and the
web UI show too); this adds a row per provider (reachable now, what it holds, its last
audit) and the last audit, deep check and repair. It never reads a share.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

from ownvault.engine.health.verdict import AUDIT_STALE_AFTER, ProviderProbe, Verdict, assess
from ownvault.engine.store.catalog import Catalog
from ownvault.engine.store.catalog.healthlog import AuditRow, RunRow
from ownvault.engine.store.catalog.rows import ProviderState
from ownvault.engine.store.context import VaultContext

__all__ = ["AUDIT_STALE_AFTER", "ProviderAudit", "ProviderHealth", "VaultStatus", "vault_status"]


@dataclass(frozen=True, slots=True)
class ProviderAudit:
    """A provider's counts in the last audit, and what they say."""

    at: float
    challenges: int
    passed: int
    failed: int
    unreachable: int
    missing_shares: int
    holds_at_least: float | None
    method: str
    verdict: Literal["failing", "unreachable", "ok"]

    @classmethod
    def of(cls, a: AuditRow) -> ProviderAudit:
        verdict: Literal["failing", "unreachable", "ok"] = (
            "failing"
            if a.failed or a.missing_shares
            else "unreachable"
            if a.unreachable or a.error
            else "ok"
        )
        return cls(
            a.finished_at,
            a.challenges,
            a.passed,
            a.failed,
            a.unreachable,
            a.missing_shares,
            a.holds_at_least,
            a.method,
            verdict,
        )


@dataclass(frozen=True, slots=True)
class ProviderHealth:
    """One active provider in ``status``: reachable now, what it holds, its last audit."""

    name: str
    kind: str
    state: ProviderState
    jurisdiction: str | None
    reachable: bool
    error: str | None
    stale: bool
    shares: int
    bytes: int
    known_bad_shares: int
    last_audit: ProviderAudit | None


@dataclass(frozen=True, slots=True)
class VaultStatus:
    """The status (see the module docstring): the verdict, the pieces a degraded write left
    short of n (repair completes them), a row per provider, the policy in words and the last
    audit, deep check and repair runs. ``to_json`` is the document ``status --json`` and
    ``GET /status`` show."""

    health: Verdict
    pieces_under_replicated: int
    providers: tuple[ProviderHealth, ...]
    policy: str
    last_audit: RunRow | None
    last_deep_check: RunRow | None
    last_repair: RunRow | None

    def to_json(self) -> dict[str, Any]:
        v = self.health
        return {
            "verdict": v.legacy_name,
            "healthy": v.state == "healthy",
            "health": v.to_json(),
            "pieces": v.pieces,
            "pieces_degraded": v.pieces_degraded,
            "pieces_at_risk": v.pieces_at_risk,
            "pieces_lost": v.pieces_lost,
            "pieces_under_replicated": self.pieces_under_replicated,
            "at_risk_names": list(v.at_risk_names),
            "lost_names": list(v.lost_names),
            "known_bad_shares": v.known_bad_shares,
            "providers": [asdict(p) for p in self.providers],
            "providers_failing_audits": list(v.providers_failing_audits),
            "providers_unreachable": list(v.providers_unreachable),
            "policy": self.policy,
            "last_audit": _run_json(self.last_audit),
            "last_deep_check": _run_json(self.last_deep_check),
            "last_repair": _run_json(self.last_repair),
            "machine_loss": v.machine_loss.to_json(),
            "backups": {"failing": list(v.backups_failing), "overdue": list(v.backups_overdue)},
            "advice": list(v.advice),
        }


def _run_json(run: RunRow | None) -> dict[str, Any] | None:
    return None if run is None else {"at": run.finished_at, **run.summary}


async def vault_status(ctx: VaultContext, *, now: float | None = None) -> VaultStatus:
    """The vault's status (see the module docstring)."""
    cat = ctx.catalog
    verdict, probes = await assess(ctx, now=now)
    return VaultStatus(
        health=verdict,
        pieces_under_replicated=cat.underrep.count(),
        providers=_provider_rows(cat, probes, verdict),
        policy=ctx.policy.describe(),
        last_audit=cat.healthlog.last_run("audit"),
        last_deep_check=cat.healthlog.last_run("deep"),
        last_repair=cat.healthlog.last_run("repair"),
    )


def _provider_rows(
    cat: Catalog, probes: dict[int, ProviderProbe], verdict: Verdict
) -> tuple[ProviderHealth, ...]:
    """One row per active provider: reachable now, what it holds, its last audit."""
    audits = cat.healthlog.latest_audit_rows()
    usage = cat.usage.by_provider()
    bad_by: dict[int, int] = {}
    for f in cat.healthlog.faults():
        bad_by[f.provider] = bad_by.get(f.provider, 0) + 1
    stale = {s.name for s in verdict.stale_providers}
    rows: list[ProviderHealth] = []
    for r in cat.providers():
        a = audits.get(r.id)
        shares, used = usage.get(r.id, (0, 0))
        probe = probes.get(r.id, ProviderProbe("not probed"))
        rows.append(
            ProviderHealth(
                name=r.name,
                kind=r.kind,
                state=r.state,
                jurisdiction=r.jurisdiction,
                reachable=probe.error is None,
                error=probe.error,
                stale=r.name in stale,
                shares=shares,
                bytes=used,
                known_bad_shares=bad_by.get(r.id, 0),
                last_audit=None if a is None else ProviderAudit.of(a),
            )
        )
    return tuple(rows)
