"""Rebalance: make every stored piece satisfy the current policy and provider list.

For each live pack, shares that sit on providers that are draining, removed, no longer
eligible, or over a per-jurisdiction / per-provider / per-domain cap are moved to providers
the policy allows. A piece with more than n-k shares in one failure domain (the embedded
folders: this machine) is spread out when the providers now allow a placement with fewer,
so that losing that machine leaves k shares. A share is copied from its current holder when that holder answers with bytes that
match the recorded Merkle root; otherwise it is regenerated from any k verified shares
(Reed-Solomon encoding is deterministic, so the regenerated share is byte-identical and is
checked against the same root). A pack coded with another k/n than the policy's is
re-encoded into a new pack. Every share is written through ``engine.store.packwriter`` (a
provider that fails is replaced by another the policy allows). Each move is committed on its own (new copy durable, catalog
row switched, then the old copy deleted), so an interrupted rebalance resumes where it
stopped and never loses a share.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from ownvault.engine.store.context import VaultContext
from ownvault.engine.store.domains import candidate_of
from ownvault.engine.store.packwriter import PackWriter
from ownvault.engine.store.placement import (
    Candidate,
    Policy,
    best_overflow,
    check_placement,
    domain_overflow,
    eligible,
    place,
)
from ownvault.engine.store.shares import DATA_PREFIX, data_share_name, share_problem
from ownvault.errors import OwnvaultError, PolicyError

__all__ = ["RebalanceReport", "rebalance", "regenerate_share"]


@dataclass(frozen=True, slots=True)
class RebalanceReport:
    """What a rebalance did (or, dry run, would do); ``failures``: one line per pack left
    as it was."""

    packs_checked: int = 0
    packs_changed: int = 0
    shares_moved: int = 0
    shares_regenerated: int = 0
    packs_reencoded: int = 0
    failures: tuple[str, ...] = ()

    def to_json(self) -> dict[str, object]:
        return {
            "packs_checked": self.packs_checked,
            "packs_changed": self.packs_changed,
            "shares_moved": self.shares_moved,
            "shares_regenerated": self.shares_regenerated,
            "packs_reencoded": self.packs_reencoded,
            "failures": list(self.failures),
        }


@dataclass
class _Tally:
    """The counts of a rebalance while it runs (frozen into a RebalanceReport at the end)."""

    packs_checked: int = 0
    packs_changed: int = 0
    shares_moved: int = 0
    shares_regenerated: int = 0
    packs_reencoded: int = 0
    failures: list[str] = field(default_factory=list)

    def report(self) -> RebalanceReport:
        return RebalanceReport(
            self.packs_checked, self.packs_changed, self.shares_moved,
            self.shares_regenerated, self.packs_reencoded, tuple(self.failures),
        )  # fmt: skip


def _keep(policy: Policy, holders: list[Candidate | None], *, spread: bool = False) -> list[int]:
    """Share indexes that may stay where they are (eligible holder, caps respected;
    ``spread``: also at most n-k per failure domain)."""
    ok = {c.id for c in eligible(policy, [h for h in holders if h is not None]).eligible}
    cap = policy.jurisdiction_cap()
    dcap = policy.n - policy.k if spread else policy.domain_cap()
    regions: Counter[str] = Counter()
    zones: Counter[str] = Counter()
    per_provider: Counter[int] = Counter()
    keep = []
    for idx, h in enumerate(holders):
        if h is None or h.id not in ok:
            continue
        if (
            regions[h.region] >= cap
            or zones[h.zone] >= dcap
            or per_provider[h.id] >= policy.max_per_provider
        ):
            continue
        regions[h.region] += 1
        zones[h.zone] += 1
        per_provider[h.id] += 1
        keep.append(idx)
    return keep


async def regenerate_share(ctx: VaultContext, pack: int, idx: int) -> bytes:
    """Share ``idx`` of a pack rebuilt from k other verified shares (checked against its root)."""
    pack_id, size, k, n = ctx.catalog.pack_info(pack)
    rows = ctx.catalog.shares_of(pack)
    shares = [(s.idx, s.provider, s.size, s.root) for s in rows if s.idx != idx]
    data = await ctx.store.fetch_pack(DATA_PREFIX, pack_id, size, k, n, shares)
    enc = await ctx.store.encode(pack_id, data, k, n)
    expected = next(s for s in rows if s.idx == idx)
    if enc.roots[idx] != expected.root or len(enc.shares[idx]) != expected.size:
        raise OwnvaultError(
            f"regenerated share {idx} of pack {pack_id.hex()} does not match its record"
        )
    return enc.shares[idx]


async def _read_share(
    ctx: VaultContext, pack: int, idx: int, provider: int | None
) -> tuple[bytes, bool]:
    """The verified bytes of a share: from its holder if possible, else regenerated."""
    pack_id, *_ = ctx.catalog.pack_info(pack)
    row = next(s for s in ctx.catalog.shares_of(pack) if s.idx == idx)
    name = data_share_name(pack_id, idx)
    p = ctx.store.providers.get(provider) if provider is not None else None
    if p is not None:
        try:
            data = await p.get(name, 0, row.size + 1)  # longer is wrong, not read whole
            why = await asyncio.to_thread(share_problem, data, row.size, row.root)
            if why is None:
                return data, False
            ctx.store.report(provider or 0, name, "corrupt", f"{why} (during rebalance)")
        except OwnvaultError as exc:
            ctx.store.report(provider or 0, name, "unavailable", exc.message)
    return await regenerate_share(ctx, pack, idx), True


async def _move_share(
    ctx: VaultContext,
    writer: PackWriter,
    pack: int,
    idx: int,
    old: int | None,
    new: int,
    fixed: list[Candidate],
    report: _Tally,
) -> None:
    """Copy (or regenerate) one share to ``new`` (or, if that fails, to another provider the
    policy allows next to ``fixed``), switch the catalog row, then delete the old copy."""
    pack_id, *_ = ctx.catalog.pack_info(pack)
    name = data_share_name(pack_id, idx)
    data, regenerated = await _read_share(ctx, pack, idx, old)
    placed = await writer.put_share(pack, idx, data, new, fixed, name=name, recorded=old)
    if old is not None and old != placed:
        await ctx.store.delete_share(old, name)
    holder = next((c for c in writer.candidates if c.id == placed), None)
    if holder is not None:
        fixed.append(holder)
    report.shares_moved += 1
    report.shares_regenerated += int(regenerated)


async def _reencode(ctx: VaultContext, writer: PackWriter, pack: int, report: _Tally) -> None:
    """Re-code a pack with the policy's k/n as a new pack, then retire the old one."""
    cat = ctx.catalog
    pack_id, size, k, n = cat.pack_info(pack)
    old_rows = cat.shares_of(pack)
    data = await ctx.store.fetch_pack(
        DATA_PREFIX, pack_id, size, k, n, [(s.idx, s.provider, s.size, s.root) for s in old_rows]
    )
    written = await writer.write_pack(data)
    cat.replace_pack(pack, written.pack)
    for s in old_rows:
        await ctx.store.delete_share(s.provider, data_share_name(pack_id, s.idx))
    report.packs_reencoded += 1


async def rebalance(
    ctx: VaultContext,
    *,
    policy: Policy | None = None,
    progress: Callable[[int, int], None] | None = None,
    dry_run: bool = False,
) -> RebalanceReport:
    """Bring every live pack in line with the policy (see the module docstring)."""
    policy = policy or ctx.policy
    cat = ctx.catalog
    report = _Tally()
    all_rows = {r.id: r for r in cat.providers(include_removed=True)}
    packs = cat.live_packs()
    writer = PackWriter(cat, ctx.store, policy, ctx.candidates())
    reachable_overflow = best_overflow(policy, ctx.candidates())
    for done, pack in enumerate(packs, 1):
        report.packs_checked += 1
        _pid, _size, k, n = cat.pack_info(pack)
        cands = {c.id: c for c in ctx.candidates()}
        rows = cat.shares_of(pack)
        holders: list[Candidate | None] = []
        for s in rows:
            c = cands.get(s.provider)
            if c is None and s.provider in all_rows:
                r = all_rows[s.provider]
                c = candidate_of(r, ctx.path, 0, False)
            holders.append(c)
        try:
            if (k, n) != (policy.k, policy.n):
                report.packs_changed += 1
                if not dry_run:
                    await _reencode(ctx, writer, pack, report)
                continue
            keep = _keep(policy, holders)
            over = domain_overflow(policy, holders)
            if len(keep) == len(rows) and not check_placement(policy, k, n, holders):
                if reachable_overflow is None or over <= reachable_overflow:
                    continue
                keep = _keep(policy, holders, spread=True)
            kept = [h for h in (holders[i] for i in keep) if h is not None]
            # ``keep`` holds positions in ``rows``: a pack a degraded write left short has
            # fewer rows than n, so positions and share indexes differ.
            moving = [s.idx for pos, s in enumerate(rows) if pos not in keep]
            targets = place(policy, list(cands.values()), fixed=kept, count=len(moving))
            if len(keep) < len(rows) and not check_placement(policy, k, n, holders):
                after = kept + [cands[t] for t in targets]
                if domain_overflow(policy, after) >= over:
                    continue  # spreading further is not possible with these providers
            report.packs_changed += 1
            if dry_run:
                report.shares_moved += len(moving)
                continue
            fixed = list(kept)
            by_idx = {s.idx: s for s in rows}
            for idx, new in zip(moving, targets, strict=True):
                await _move_share(ctx, writer, pack, idx, by_idx[idx].provider, new, fixed, report)
        except PolicyError:
            raise
        except OwnvaultError as exc:
            report.failures.append(f"pack {_pid.hex()}: {exc.message}")
        if progress is not None:
            progress(done, len(packs))
    return report.report()
