"""Providers, the placement policy and health.

``GET /health`` is what the health view draws: every provider's status
(:meth:`Vault.provider_status`: kind, jurisdiction, reachability, shares, bytes) with the
shares a fresh :meth:`Vault.check` found missing on it, the files with the ones at risk
(unreadable, then degraded, then out of policy) first, and the providers grouped by
jurisdiction.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, Field

from ownvault.engine.placement import Policy

if TYPE_CHECKING:
    from ownvault.server.api_base import ApiState

__all__ = ["router"]

ProviderName = Annotated[str, Path(min_length=1, max_length=63, pattern=r"^[a-z0-9][a-z0-9._-]{0,62}$")]


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
    url: str = Field(min_length=1, max_length=2048, description="file:///path, http(s)://node, s3://…, ipfs+…")
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


class CheckOut(BaseModel):
    files: list[FileHealth]
    healthy: bool
    readable: bool
    policy_ok: bool
    policy: str


class ProviderHealth(ProviderOut):
    missing_shares: int
    status: str = Field(description="ok | degraded (holds missing shares) | down (unreachable)")


class Region(BaseModel):
    jurisdiction: str
    providers: list[str]
    reachable: int
    shares: int
    bytes: int


class HealthOut(BaseModel):
    checked_at: float
    status: str = Field(description="ok | degraded | unreadable")
    healthy: bool
    readable: bool
    policy_ok: bool
    policy: str
    providers: list[ProviderHealth]
    regions: list[Region]
    files: list[FileHealth]


def router(state: ApiState) -> APIRouter:
    r = APIRouter(tags=["providers and health"], dependencies=[Depends(state.sessions.dependency())])
    vault = state.vault

    @r.get("/providers", response_model=ProviderList, summary="Every provider: kind, jurisdiction, reachable, shares, bytes")
    async def providers() -> dict[str, Any]:
        return {"providers": await vault.provider_status()}

    @r.post("/providers", response_model=ProviderAdded, status_code=201, summary="Add a provider (it must be reachable)")
    async def add(body: ProviderIn) -> dict[str, Any]:
        async with state.writes:
            return await vault.add_provider(body.name, body.url, jurisdiction=body.jurisdiction, labels=body.labels)

    @r.delete("/providers/{name}", response_model=ProviderRemoved, summary="Remove a provider (moves its shares first unless force)")
    async def remove(name: ProviderName, force: Annotated[bool, Query()] = False) -> dict[str, Any]:
        async with state.writes:
            return await vault.remove_provider(name, force=force)

    @r.get("/policy", response_model=PolicyOut, summary="The placement policy")
    async def policy() -> dict[str, Any]:
        return {"policy": vault.policy.to_dict(), "describe": vault.policy.describe()}

    @r.put("/policy", response_model=PolicySetOut, summary="Set the placement policy (rebalance applies it to stored data)")
    async def set_policy(body: PolicyDoc) -> dict[str, Any]:
        new = Policy(
            body.k, body.n, tuple(body.jurisdictions), tuple(body.exclude), body.max_per_jurisdiction,
            body.max_per_provider, body.survive_jurisdiction_loss,
        )
        async with state.writes:
            return await vault.set_policy(new)

    @r.get("/check", response_model=CheckOut, summary="Per file: shares present / needed, what is missing where")
    async def check(name: Annotated[str | None, Query(min_length=1, max_length=1024)] = None) -> dict[str, Any]:
        return await vault.check(name)

    @r.get("/health", response_model=HealthOut, summary="Providers, regions and files, the ones at risk first")
    async def health() -> dict[str, Any]:
        provs = await vault.provider_status()
        chk = await vault.check()
        missing: dict[str, int] = {}
        for f in chk["files"]:
            for m in f["missing"]:
                missing[m["provider"]] = missing.get(m["provider"], 0) + 1
        regions: dict[str, dict[str, Any]] = {}
        for p in provs:
            p["missing_shares"] = missing.get(p["name"], 0)
            p["status"] = "down" if not p["reachable"] else "degraded" if p["missing_shares"] else "ok"
            code = p["jurisdiction"] or "??"
            reg = regions.setdefault(code, {"jurisdiction": code, "providers": [], "reachable": 0, "shares": 0, "bytes": 0})
            reg["providers"].append(p["name"])
            reg["reachable"] += int(p["reachable"])
            reg["shares"] += p["shares"]
            reg["bytes"] += p["bytes"]
        files = sorted(chk["files"], key=lambda f: (f["readable"], f["healthy"], f["policy_ok"], f["name"]))
        status = "ok" if chk["healthy"] else "degraded" if chk["readable"] else "unreadable"
        return {
            "checked_at": time.time(), "status": status, "healthy": chk["healthy"], "readable": chk["readable"],
            "policy_ok": chk["policy_ok"], "policy": chk["policy"], "providers": provs,
            "regions": sorted(regions.values(), key=lambda g: g["jurisdiction"]), "files": files,
        }

    return r
