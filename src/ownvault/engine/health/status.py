"""``status``: one document that says whether the vault is healthy, what is at risk, and
what to do. The verdict is ``engine.health.verdict`` (the one ``check``, the API and the
web UI show too); this adds a row per provider (reachable now, what it holds, its last
audit) and the last audit, deep check and repair. It never reads a share.
"""

from __future__ import annotations

from typing import Any

from ownvault.engine.health.verdict import AUDIT_STALE_AFTER, ProviderProbe, Verdict, assess
from ownvault.engine.store.catalog import Catalog
from ownvault.engine.store.context import VaultContext

__all__ = ["AUDIT_STALE_AFTER", "vault_status"]


async def vault_status(ctx: VaultContext, *, now: float | None = None) -> dict[str, Any]:
    """The status document (see the module docstring)."""
    cat = ctx.catalog
    verdict, probes = await assess(ctx, now=now)
    last_audit = cat.healthlog.last_run("audit")
    last_repair = cat.healthlog.last_run("repair")
    last_deep = cat.healthlog.last_run("deep")
    return {
        "verdict": verdict.legacy_name,
        "healthy": verdict.state == "healthy",
        "health": verdict.to_json(),
        "pieces": verdict.pieces,
        "pieces_degraded": verdict.pieces_degraded,
        "pieces_at_risk": verdict.pieces_at_risk,
        "pieces_lost": verdict.pieces_lost,
        "pieces_under_replicated": ctx.catalog.underrep.count(),  # degraded writes to complete
        "at_risk_names": list(verdict.at_risk_names),
        "lost_names": list(verdict.lost_names),
        "known_bad_shares": verdict.known_bad_shares,
        "providers": _provider_rows(cat, probes, verdict),
        "providers_failing_audits": list(verdict.providers_failing_audits),
        "providers_unreachable": list(verdict.providers_unreachable),
        "policy": ctx.policy.describe(),
        "last_audit": None
        if last_audit is None
        else {"at": last_audit.finished_at, **last_audit.summary},
        "last_deep_check": None
        if last_deep is None
        else {"at": last_deep.finished_at, **last_deep.summary},
        "last_repair": None
        if last_repair is None
        else {"at": last_repair.finished_at, **last_repair.summary},
        "machine_loss": verdict.machine_loss.to_json(),
        "backups": {
            "failing": list(verdict.backups_failing),
            "overdue": list(verdict.backups_overdue),
        },
        "advice": list(verdict.advice),
    }


def _provider_rows(
    cat: Catalog, probes: dict[int, ProviderProbe], verdict: Verdict
) -> list[dict[str, Any]]:
    """One row per active provider: reachable now, what it holds, its last audit."""
    audits = cat.healthlog.latest_audit_rows()
    usage = cat.usage.by_provider()
    bad_by: dict[int, int] = {}
    for f in cat.healthlog.faults():
        bad_by[f.provider] = bad_by.get(f.provider, 0) + 1
    stale = {s.name for s in verdict.stale_providers}
    providers: list[dict[str, Any]] = []
    for r in cat.providers():
        a = audits.get(r.id)
        shares, used = usage.get(r.id, (0, 0))
        probe = probes.get(r.id, ProviderProbe("not probed"))
        providers.append(
            {
                "name": r.name,
                "kind": r.kind,
                "state": r.state,
                "jurisdiction": r.jurisdiction,
                "reachable": probe.error is None,
                "error": probe.error,
                "stale": r.name in stale,
                "shares": shares,
                "bytes": used,
                "known_bad_shares": bad_by.get(r.id, 0),
                "last_audit": None
                if a is None
                else {
                    "at": a.finished_at,
                    "challenges": a.challenges,
                    "passed": a.passed,
                    "failed": a.failed,
                    "unreachable": a.unreachable,
                    "missing_shares": a.missing_shares,
                    "holds_at_least": a.holds_at_least,
                    "method": a.method,
                    "verdict": "failing"
                    if a.failed or a.missing_shares
                    else "unreachable"
                    if a.unreachable or a.error
                    else "ok",
                },
            }
        )
    return providers
