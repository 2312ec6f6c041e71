"""The plain check: per stored name, are its shares present (asked, not read) and placed
as the policy says; and the vault's verdict (``engine.health.verdict``, the one ``status``
shows). ``engine.health.deepcheck`` reads the shares whole.
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ownvault.engine.health.verdict import Verdict, assess
from ownvault.engine.store.catalog import ProviderRow, ShareRow
from ownvault.engine.store.catalog.healthlog import FaultKind
from ownvault.engine.store.context import VaultContext
from ownvault.engine.store.domains import candidate_of
from ownvault.engine.store.placement import THIS_MACHINE, Candidate, Policy, check_placement
from ownvault.engine.store.shares import data_share_name
from ownvault.errors import OwnvaultError

__all__ = ["BadShare", "CheckReport", "FileCheck", "MissingShare", "check", "gone_candidate"]


@dataclass(frozen=True, slots=True)
class MissingShare:
    """A share that did not answer a ``stat`` with its size, and why."""

    provider: str
    pack: str
    share: int
    reason: str


@dataclass(frozen=True, slots=True)
class BadShare:
    """A share a deep check read and found ``kind`` (missing, corrupt, unreachable)."""

    provider: str
    pack: str
    share: int
    kind: FaultKind
    reason: str


@dataclass(frozen=True, slots=True)
class FileCheck:
    """One stored name: its weakest pack's shares present / total / needed, the shares
    missing (a deep check: the ones that failed verification), the policy's verdict."""

    name: str
    version: int
    packs: int
    shares_present: int
    shares_total: int
    shares_needed: int
    healthy: bool
    readable: bool
    missing: list[MissingShare] | list[BadShare]
    policy_ok: bool
    policy_violations: list[str]
    survives_machine_loss: bool


@dataclass(frozen=True, slots=True)
class CheckReport:
    """What ``check`` found: per file, the totals, the policy in words, the vault's verdict
    and the pieces a degraded write left short of n. ``to_json`` is ``check --json``."""

    files: tuple[FileCheck, ...]
    healthy: bool
    readable: bool
    policy_ok: bool
    policy: str
    health: Verdict
    pieces_under_replicated: int

    def to_json(self) -> dict[str, Any]:
        return {
            "files": [asdict(f) for f in self.files],
            "healthy": self.healthy,
            "readable": self.readable,
            "policy_ok": self.policy_ok,
            "policy": self.policy,
            "health": self.health.to_json(),
            "machine_loss": self.health.machine_loss.to_json(),
            "pieces_under_replicated": self.pieces_under_replicated,
        }


async def check(ctx: VaultContext, name: str | None = None) -> CheckReport:
    """Per file: shares present / needed, healthy or not, which provider misses what."""
    if name is not None:
        v, _inner = ctx.resolve(name, None)
        versions = [v]
    else:
        versions = ctx.catalog.latest_versions("")
    probe = _Probe(ctx)
    files_out: list[FileCheck] = []
    policy = ctx.policy
    cands = {c.id: c for c in ctx.candidates()}
    rows_all = {r.id: r for r in ctx.catalog.providers(include_removed=True)}
    names = {r.id: r.name for r in ctx.catalog.providers(include_removed=True)}
    for v in versions:
        packs = ctx.catalog.packs_of_version(v.id)  # one query, not one per file
        await probe.stat_packs(packs)
        worst, total, needed, missing = _presence(ctx, packs, probe, names)
        violations = _violations(ctx, packs, policy, cands, rows_all)
        off_machine_ok = _off_machine_ok(ctx, packs, cands, rows_all)
        files_out.append(
            FileCheck(
                name=v.name,
                version=v.number,
                packs=len(packs),
                shares_present=worst,
                shares_total=total,
                shares_needed=needed,
                healthy=worst == total,
                readable=worst >= needed,
                missing=missing,
                policy_ok=not violations,
                policy_violations=violations,
                survives_machine_loss=off_machine_ok,
            )
        )
    verdict, _probes = await assess(ctx)
    return CheckReport(
        files=tuple(files_out),
        healthy=all(f.healthy for f in files_out),
        readable=all(f.readable for f in files_out),
        policy_ok=all(f.policy_ok for f in files_out),
        policy=policy.describe(),
        health=verdict,
        pieces_under_replicated=ctx.catalog.underrep.count(),  # degraded writes to complete
    )


class _Probe:
    """Which shares answered a ``stat`` with the right size, and why the others did not.
    Each share is asked once per check (16 at a time), whatever number of files use it."""

    def __init__(self, ctx: VaultContext) -> None:
        self.ctx = ctx
        self.present: dict[tuple[int, int], bool] = {}
        self.problems: dict[tuple[int, int], str] = {}
        self.sem = asyncio.Semaphore(16)

    async def stat_share(
        self, pack: int, pack_id: bytes, idx: int, provider: int, size: int
    ) -> None:
        sname = data_share_name(pack_id, idx)
        p = self.ctx.store.providers.get(provider)
        ok = False
        why = "provider cannot be opened"
        if p is not None:
            try:
                info = await asyncio.wait_for(p.stat(sname), 30)
                ok = info.size == size
                why = "" if ok else f"wrong size {info.size} (expected {size})"
            except (OwnvaultError, TimeoutError) as exc:
                why = getattr(exc, "message", "timed out")
        self.present[(pack, idx)] = ok
        if not ok:
            self.problems[(pack, idx)] = why

    async def stat_packs(self, packs: set[int]) -> None:
        todo = []
        for pack in packs:
            pack_id, _size, _k, _n = self.ctx.catalog.pack_info(pack)
            for s in self.ctx.catalog.shares_of(pack):
                if (pack, s.idx) not in self.present:

                    async def run(
                        pack: int = pack, pack_id: bytes = pack_id, s: ShareRow = s
                    ) -> None:
                        async with self.sem:
                            await self.stat_share(pack, pack_id, s.idx, s.provider, s.size)

                    todo.append(run())
        await asyncio.gather(*todo)


def _presence(
    ctx: VaultContext, packs: set[int], probe: _Probe, names: dict[int, str]
) -> tuple[int, int, int, list[MissingShare]]:
    """The worst pack's share count, its n and k, and every missing share."""
    worst_present = None
    needed = ctx.policy.k
    total = ctx.policy.n
    missing: list[MissingShare] = []
    for pack in sorted(packs):
        _pid, _size, k, n = ctx.catalog.pack_info(pack)
        shares = ctx.catalog.shares_of(pack)
        count = sum(1 for s in shares if probe.present.get((pack, s.idx)))
        if worst_present is None or count < worst_present:
            worst_present, needed, total = count, k, n
        for s in shares:
            if not probe.present.get((pack, s.idx)):
                missing.append(
                    MissingShare(
                        names.get(s.provider, str(s.provider)),
                        _pid.hex(),
                        s.idx,
                        probe.problems.get((pack, s.idx), ""),
                    )
                )
    worst = total if worst_present is None else worst_present
    return worst, total, needed, missing


def _violations(
    ctx: VaultContext,
    packs: set[int],
    policy: Policy,
    cands: dict[int, Candidate],
    rows_all: dict[int, ProviderRow],
) -> list[str]:
    """How the packs' placement breaks the policy (each reason once)."""
    violations: list[str] = []
    for pack in sorted(packs):
        _pid, _size, k, n = ctx.catalog.pack_info(pack)
        holders = [
            cands.get(s.provider) or gone_candidate(rows_all, s.provider, ctx.path)
            for s in ctx.catalog.shares_of(pack)
        ]
        for why in check_placement(policy, k, n, holders):
            if why not in violations:
                violations.append(why)
    return violations


def _off_machine_ok(
    ctx: VaultContext,
    packs: set[int],
    cands: dict[int, Candidate],
    rows_all: dict[int, ProviderRow],
) -> bool:
    """Every pack has k shares off this machine (counted as ``engine.health.machine`` does:
    a draining provider still holds its shares, a removed one does not)."""
    for pack in packs:
        _pid, _size, k, _n = ctx.catalog.pack_info(pack)
        holders = [
            cands.get(s.provider) or gone_candidate(rows_all, s.provider, ctx.path)
            for s in ctx.catalog.shares_of(pack)
        ]
        off = sum(
            1
            for h in holders
            if h is not None and rows_all[h.id].state != "removed" and h.zone != THIS_MACHINE
        )
        if off < k:
            return False
    return True


def gone_candidate(
    rows: dict[int, ProviderRow], provider: int, vault: Path | None = None
) -> Candidate | None:
    """A placement candidate for a provider that is no longer usable (or None if unknown)."""
    r = rows.get(provider)
    return None if r is None else candidate_of(r, vault, 0, False)
