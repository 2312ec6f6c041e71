"""Providers, the placement policy and health.

``/check``, ``/status`` and ``/health`` carry the same ``health`` verdict
(``engine.health.verdict``) and ``machine_loss`` as ``ownvault check`` and ``status``.

``GET /health`` is what the health view draws: every provider's status
(:meth:`Vault.provider_status`: kind, jurisdiction, reachability, shares, bytes) with the
shares a fresh :meth:`Vault.check` found missing on it and its result in the last audit
(``catalog.healthlog``; audits run as the ``audit`` job), the last audit and repair runs, the files with the ones at risk
(unreadable, then degraded, then out of policy) first, and the providers grouped by
jurisdiction.
"""

from __future__ import annotations

import time
from dataclasses import asdict
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, Field

from ownvault.engine.store.catalog.healthlog import AuditRow, RunRow
from ownvault.engine.store.placement import Policy
from ownvault.server.api.auth import require_session
from ownvault.server.api.state import ApiState

__all__ = ["router"]

ProviderName = Annotated[
    str, Path(min_length=1, max_length=63, pattern=r"^[a-z0-9][a-z0-9._-]{0,62}$")
]


class ProviderOut(BaseModel):
    name: str
    kind: str
    url: str
    location: str
    jurisdiction: str | None
    labels: dict[str, str]
    state: str
    shares: int
    bytes: int
    reachable: bool
    latency_ms: float | None
    free_bytes: int | None
    error: str | None


class ProviderList(BaseModel):
    providers: list[ProviderOut]


class ProviderIn(BaseModel):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]{0,62}$")
    url: str = Field(
        min_length=1, max_length=2048, description="file:///path, http(s)://node, s3://…, ipfs+…"
    )
    jurisdiction: str | None = Field(default=None, min_length=2, max_length=2)
    labels: dict[str, str] = Field(default_factory=dict, max_length=32)


class ProviderAdded(BaseModel):
    name: str
    kind: str
    url: str
    jurisdiction: str | None
    labels: dict[str, str]
    location: str
    free_bytes: int | None


class ProviderPatch(BaseModel):
    jurisdiction: str | None = Field(default=None, min_length=2, max_length=2)
    domain: str | None = Field(
        default=None, min_length=1, max_length=200, description="Failure-domain label."
    )
    default_domain: bool = Field(default=False, description="Drop the domain label.")
    labels: dict[str, str] = Field(
        default_factory=dict, max_length=32, description="Labels to set or replace."
    )
    unlabel: list[str] = Field(default_factory=list, max_length=32, description="Labels to drop.")


class ProviderSet(BaseModel):
    name: str
    jurisdiction: str | None
    domain: str
    domain_label: str | None
    labels: dict[str, str]
    packs_out_of_policy: int = Field(description="Stored pieces `rebalance` would now move.")


class ProviderRemoved(BaseModel):
    name: str
    removed: bool
    shares_moved: int | None = None
    shares_regenerated: int | None = None
    shares_abandoned: int | None = None
    degraded: list[str] | None = None
    unreadable: list[str] | None = None


class PolicyDoc(BaseModel):
    k: int = Field(ge=1, le=31)
    n: int = Field(ge=2, le=32)
    jurisdictions: list[str] = Field(default_factory=list, max_length=300)
    exclude: list[str] = Field(default_factory=list, max_length=300)
    max_per_jurisdiction: int | None = Field(default=None, ge=1, le=32)
    max_per_provider: int = Field(default=1, ge=1, le=32)
    survive_jurisdiction_loss: bool = False
    survive_domain_loss: bool = Field(
        default=False,
        description="Any k shares survive losing any one failure domain (machine, disk).",
    )
    happy: int | None = Field(
        default=None,
        ge=1,
        le=32,
        description="Shares of each piece a write must place (k..n); null: n-1.",
    )


class PolicyOut(BaseModel):
    policy: PolicyDoc
    describe: str


class PolicySetOut(PolicyOut):
    packs_out_of_policy: int


class Missing(BaseModel):
    provider: str
    pack: str
    share: int
    reason: str


class FileHealth(BaseModel):
    name: str
    version: int
    packs: int
    shares_present: int
    shares_total: int
    shares_needed: int
    healthy: bool
    readable: bool
    missing: list[Missing]
    policy_ok: bool
    policy_violations: list[str]
    survives_machine_loss: bool | None = None


class MachineLossOut(BaseModel):
    survives: bool = Field(
        description="Every piece and the newest catalog snapshot have k shares off this machine."
    )
    k: int
    pieces: int
    pieces_lost: int
    lost_names: list[str]
    catalog_survives: bool
    providers_elsewhere: int
    capacity_elsewhere: int
    advice: str | None = Field(description="What to add or run when it would not survive.")
    summary: str


class ChainLagOut(BaseModel):
    device: str = Field(description="The device id (hex).")
    device_name: str
    held_seq: int = Field(description="The top of the device's journal chain it lists.")
    known_seq: int = Field(description="The head of that chain this device wrote or pulled.")


class StaleProviderOut(BaseModel):
    name: str
    newest_snapshot: int | None = Field(
        description="The newest catalog snapshot it holds (null: it lists none)."
    )
    expected_snapshot: int | None = Field(description="The newest this vault wrote to it.")
    journal: list[ChainLagOut] = Field(
        description="The journal chains it holds less of than this device knows."
    )
    missing_shares: int
    shares: int
    summary: str


class VerdictOut(BaseModel):
    """The one verdict `ownvault check`, `ownvault status` and the web UI show."""

    state: Literal["healthy", "unverified", "degraded", "at-risk", "damaged"]
    summary: str
    reasons: list[str]
    advice: list[str]
    pieces: int
    pieces_degraded: int
    pieces_at_risk: int
    pieces_lost: int
    missing_shares: int = Field(description="Shares absent from their provider's listing.")
    known_bad_shares: int
    providers_unreachable: list[str]
    providers_failing_audits: list[str]
    stale_providers: list[StaleProviderOut]
    survives_machine_loss: bool
    to_add: str | None = Field(description="What to add so that losing this machine is survivable.")
    last_audit_at: float | None


class CheckOut(BaseModel):
    files: list[FileHealth]
    healthy: bool = Field(description="Every share of every file answered (see health.state).")
    readable: bool
    policy_ok: bool
    policy: str
    health: VerdictOut
    machine_loss: MachineLossOut


class LastAudit(BaseModel):
    at: float
    verdict: str = Field(
        description="ok | failing (a failed challenge or a missing share) | unreachable | empty (held no share)"
    )
    method: str
    challenges: int
    passed: int
    failed: int
    unreachable: int
    missing_shares: int
    holds_at_least: float | None = Field(
        description="Fraction of its blocks the provider holds at least (95% confidence)."
    )
    error: str | None


class ProviderHealth(ProviderOut):
    missing_shares: int
    status: str = Field(description="ok | degraded (holds missing shares) | down (unreachable)")
    last_audit: LastAudit | None = Field(
        description="This provider's result in the last audit that covered it."
    )


class LastRun(BaseModel):
    at: float
    summary: dict[str, Any]


class Region(BaseModel):
    jurisdiction: str
    providers: list[str]
    reachable: int
    shares: int
    bytes: int


class StatusProvider(BaseModel):
    name: str
    kind: str
    state: str
    jurisdiction: str | None
    reachable: bool
    error: str | None
    shares: int
    bytes: int
    known_bad_shares: int
    stale: bool = False
    last_audit: dict[str, Any] | None


class StatusOut(BaseModel):
    verdict: str = Field(
        description="health.state upper-cased: HEALTHY | UNVERIFIED | DEGRADED | AT RISK | DATA LOST"
    )
    healthy: bool
    health: VerdictOut
    machine_loss: MachineLossOut
    pieces: int
    pieces_degraded: int
    pieces_at_risk: int
    pieces_lost: int
    at_risk_names: list[str]
    lost_names: list[str]
    known_bad_shares: int
    providers: list[StatusProvider]
    providers_failing_audits: list[str]
    providers_unreachable: list[str]
    policy: str
    last_audit: dict[str, Any] | None
    last_deep_check: dict[str, Any] | None
    last_repair: dict[str, Any] | None
    advice: list[str]


class HealthOut(BaseModel):
    checked_at: float
    status: str = Field(description="Shares present: ok | degraded | unreadable")
    health: VerdictOut
    machine_loss: MachineLossOut
    healthy: bool
    readable: bool
    policy_ok: bool
    policy: str
    providers: list[ProviderHealth]
    regions: list[Region]
    files: list[FileHealth]
    last_audit: LastRun | None
    last_repair: LastRun | None


def _audit_json(a: AuditRow | None) -> dict[str, Any] | None:
    if a is None:
        return None
    verdict = (
        "failing"
        if a.failed or a.missing_shares
        else "unreachable"
        if a.unreachable or a.error
        else "ok"
        if a.shares
        else "empty"
    )
    return {
        "at": a.finished_at,
        "verdict": verdict,
        "method": a.method,
        "challenges": a.challenges,
        "passed": a.passed,
        "failed": a.failed,
        "unreachable": a.unreachable,
        "missing_shares": a.missing_shares,
        "holds_at_least": a.holds_at_least,
        "error": a.error,
    }


def _run_json(run: RunRow | None) -> dict[str, Any] | None:
    return None if run is None else {"at": run.finished_at, "summary": run.summary}


def router(state: ApiState) -> APIRouter:
    """The provider, policy and health routes, bound to ``state``.

    Long: small route handlers, each a closure over ``state`` and the router; one
    function keeps every route of the tag in one place.
    """
    r = APIRouter(
        tags=["providers and health"], dependencies=[Depends(require_session(state.sessions))]
    )
    vault = state.vault

    @r.get(
        "/providers",
        response_model=ProviderList,
        summary="Every provider: kind, jurisdiction, reachable, shares, bytes",
    )
    async def providers() -> ProviderList:
        provs = await vault.fleet.provider_status()
        return ProviderList(providers=[ProviderOut.model_validate(asdict(p)) for p in provs])

    @r.post(
        "/providers",
        response_model=ProviderAdded,
        status_code=201,
        summary="Add a provider (it must be reachable)",
    )
    async def add(body: ProviderIn) -> ProviderAdded:
        async with state.vault.ctx.write():
            added = await vault.fleet.add_provider(
                body.name, body.url, jurisdiction=body.jurisdiction, labels=body.labels
            )
        return ProviderAdded.model_validate(asdict(added))

    @r.patch(
        "/providers/{name}",
        response_model=ProviderSet,
        summary="Change a provider's jurisdiction, failure domain or labels (`provider set`)",
    )
    async def change(name: ProviderName, body: ProviderPatch) -> ProviderSet:
        changed = await vault.fleet.set_provider(
            name,
            jurisdiction=body.jurisdiction,
            domain=body.domain,
            default_domain_=body.default_domain,
            labels=body.labels,
            unlabel=body.unlabel,
        )
        return ProviderSet.model_validate(asdict(changed))

    @r.delete(
        "/providers/{name}",
        response_model=ProviderRemoved,
        summary="Remove a provider (moves its shares first unless force)",
    )
    async def remove(
        name: ProviderName, force: Annotated[bool, Query()] = False
    ) -> ProviderRemoved:
        async with state.vault.ctx.write():
            removed = await vault.fleet.remove_provider(name, force=force)
        return ProviderRemoved.model_validate(asdict(removed))

    @r.get("/policy", response_model=PolicyOut, summary="The placement policy")
    async def policy() -> dict[str, Any]:
        return {"policy": vault.policy.to_dict(), "describe": vault.policy.describe()}

    @r.put(
        "/policy",
        response_model=PolicySetOut,
        summary="Set the placement policy (rebalance applies it to stored data)",
    )
    async def set_policy(body: PolicyDoc) -> PolicySetOut:
        new = Policy(
            body.k,
            body.n,
            tuple(body.jurisdictions),
            tuple(body.exclude),
            body.max_per_jurisdiction,
            body.max_per_provider,
            body.survive_jurisdiction_loss,
            survive_domain_loss=body.survive_domain_loss,
            happy=body.happy,
        )
        async with state.vault.ctx.write():
            done = await vault.fleet.set_policy(new)
        return PolicySetOut.model_validate(done.to_json())

    @r.get(
        "/check",
        response_model=CheckOut,
        summary="Per file: shares present / needed, what is missing where",
    )
    async def check(
        name: Annotated[str | None, Query(min_length=1, max_length=1024)] = None,
    ) -> CheckOut:
        return CheckOut.model_validate((await vault.health.check(name)).to_json())

    @r.get(
        "/status",
        response_model=StatusOut,
        summary="`ownvault status`: healthy or not, what is at risk, what to do (no share is read)",
    )
    async def status() -> StatusOut:
        return StatusOut.model_validate((await vault.health.status()).to_json())

    @r.get(
        "/health",
        response_model=HealthOut,
        summary="Providers, regions and files, the ones at risk first",
    )
    async def health() -> dict[str, Any]:
        provs = [asdict(p) for p in await vault.fleet.provider_status()]
        chk = (await vault.health.check()).to_json()
        missing: dict[str, int] = {}
        for f in chk["files"]:
            for m in f["missing"]:
                missing[m["provider"]] = missing.get(m["provider"], 0) + 1
        regions: dict[str, dict[str, Any]] = {}
        audits = {a.provider_name: a for a in vault.catalog.healthlog.latest_audit_rows().values()}
        for p in provs:
            p["last_audit"] = _audit_json(audits.get(p["name"]))
            p["missing_shares"] = missing.get(p["name"], 0)
            p["status"] = (
                "down" if not p["reachable"] else "degraded" if p["missing_shares"] else "ok"
            )
            code = p["jurisdiction"] or "??"
            reg = regions.setdefault(
                code,
                {"jurisdiction": code, "providers": [], "reachable": 0, "shares": 0, "bytes": 0},
            )
            reg["providers"].append(p["name"])
            reg["reachable"] += int(p["reachable"])
            reg["shares"] += p["shares"]
            reg["bytes"] += p["bytes"]
        files = sorted(
            chk["files"], key=lambda f: (f["readable"], f["healthy"], f["policy_ok"], f["name"])
        )
        status = "ok" if chk["healthy"] else "degraded" if chk["readable"] else "unreadable"
        return {
            "checked_at": time.time(),
            "status": status,
            "healthy": chk["healthy"],
            "readable": chk["readable"],
            "policy_ok": chk["policy_ok"],
            "policy": chk["policy"],
            "health": chk["health"],
            "machine_loss": chk["machine_loss"],
            "providers": provs,
            "regions": sorted(regions.values(), key=lambda g: g["jurisdiction"]),
            "files": files,
            "last_audit": _run_json(vault.catalog.healthlog.last_run("audit")),
            "last_repair": _run_json(vault.catalog.healthlog.last_run("repair")),
        }

    return r
