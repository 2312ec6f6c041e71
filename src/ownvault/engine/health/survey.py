"""What repair knows before it touches a share: the providers' answers and its report.

Shared by :mod:`ownvault.engine.health.repair` (damaged shares) and
:mod:`ownvault.engine.health.complete` (shares degraded writes left out).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from ownvault.engine.store.context import VaultContext
from ownvault.engine.store.placement import Candidate, Policy
from ownvault.engine.store.shares import DATA_PREFIX
from ownvault.errors import OwnvaultError

__all__ = ["REACH_TIMEOUT", "LostPiece", "ProviderSurvey", "RepairReport", "caps_allow", "survey"]

REACH_TIMEOUT = 10.0


@dataclass(frozen=True, slots=True)
class LostPiece:
    pack_id: str
    good: int
    k: int
    versions: list[dict[str, Any]]

    def to_json(self) -> dict[str, Any]:
        return {
            "pack_id": self.pack_id,
            "good_shares": self.good,
            "k": self.k,
            "versions": self.versions,
        }


@dataclass
class RepairReport:
    dry_run: bool = False
    packs_checked: int = 0
    packs_damaged: int = 0
    packs_repaired: int = 0
    shares_bad: int = 0
    shares_verified_ok: int = 0
    shares_regenerated: int = 0
    shares_rewritten_in_place: int = 0
    shares_moved: int = 0
    shares_completed: int = 0
    under_replicated_left: int = 0
    snapshot_rewritten: bool = False
    journal_records_copied: int = 0
    bytes_read: int = 0
    bytes_written: int = 0
    seconds: float = 0.0
    budget_exhausted: bool = False
    unreachable: list[str] = field(default_factory=list)
    actions: list[dict[str, Any]] = field(default_factory=list)
    lost: list[LostPiece] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    @property
    def lost_names(self) -> list[str]:
        return sorted({f"{v['name']} v{v['version']}" for p in self.lost for v in p.versions})

    def to_json(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "packs_checked": self.packs_checked,
            "packs_damaged": self.packs_damaged,
            "packs_repaired": self.packs_repaired,
            "shares_bad": self.shares_bad,
            "shares_verified_ok": self.shares_verified_ok,
            "shares_regenerated": self.shares_regenerated,
            "shares_rewritten_in_place": self.shares_rewritten_in_place,
            "shares_moved": self.shares_moved,
            "shares_completed": self.shares_completed,
            "under_replicated_left": self.under_replicated_left,
            "snapshot_rewritten": self.snapshot_rewritten,
            "journal_records_copied": self.journal_records_copied,
            "bytes_read": self.bytes_read,
            "bytes_written": self.bytes_written,
            "seconds": round(self.seconds, 3),
            "budget_exhausted": self.budget_exhausted,
            "unreachable": self.unreachable,
            "actions": self.actions[:200],
            "lost": [p.to_json() for p in self.lost],
            "lost_names": self.lost_names,
            "failures": self.failures,
        }


@dataclass
class ProviderSurvey:
    """What repair knows about the providers before it touches any share."""

    names: dict[int, str]
    reachable: set[int]
    grace: set[int]
    listed: dict[int, dict[str, int]]
    distrusted: set[int]
    candidates: dict[int, Candidate]


async def survey(ctx: VaultContext, unreachable_grace: float | None) -> ProviderSurvey:
    store = ctx.store
    rows = ctx.catalog.providers(include_removed=True)
    names = {r.id: r.name for r in rows}
    listed: dict[int, dict[str, int]] = {}

    async def probe(pid: int) -> None:
        p = store.providers.get(pid)
        if p is None:
            return
        try:
            async with asyncio.timeout(REACH_TIMEOUT * 3):
                await p.info()
                listed[pid] = {o.name: o.size async for o in p.list(DATA_PREFIX + "/")}
        except (OwnvaultError, TimeoutError):
            return

    await asyncio.gather(*(probe(r.id) for r in rows if r.state != "removed"))
    reachable = set(listed)
    # Providers that returned wrong bytes or proofs (not merely lost an object) are only
    # written to when no other provider can take a share.
    distrusted = {f.provider for f in ctx.catalog.healthlog.faults() if f.kind == "corrupt"}
    grace: set[int] = set()
    if unreachable_grace is not None:
        # Shares on a provider that is down now but answered an audit recently stay put.
        now = time.time()
        for r in rows:
            if r.id in reachable or r.state != "active":
                continue
            seen = ctx.catalog.healthlog.last_answered(r.id)
            if seen is not None and now - seen < unreachable_grace:
                grace.add(r.id)
    cands = {c.id: c for c in ctx.candidates()}
    return ProviderSurvey(names, reachable, grace, listed, distrusted, cands)


def caps_allow(policy: Policy, fixed: list[Candidate], c: Candidate) -> bool:
    cap = policy.jurisdiction_cap()
    same_region = sum(1 for f in fixed if f.region == c.region)
    same_provider = sum(1 for f in fixed if f.id == c.id)
    return bool(same_region < cap and same_provider < policy.max_per_provider)
