"""Completing under-replicated pieces: the shares a degraded write could not place.

``catalog.underrep`` records them (docs/design.md, "Degraded writes"); repair calls
:func:`complete_all` after it has regenerated damaged shares. Each pack is decoded and
re-encoded, each missing share is checked against its recorded root and size and written
where the policy places it next to the pack's holders (the provider last tried first, when
it is reachable and allowed); one transaction then moves its row from ``underrep`` to
``shares``. A provider still down leaves the row for the next run. A catalog snapshot with
missing shares is completed by writing a new snapshot.
"""

from __future__ import annotations

from ownvault.core.pack import ShareLayout
from ownvault.engine.health.survey import ProviderSurvey, RepairReport, caps_allow
from ownvault.engine.store.catalog.underrep import MissingShare
from ownvault.engine.store.context import VaultContext
from ownvault.engine.store.packwriter import PackWriter
from ownvault.engine.store.placement import Candidate, Policy, eligible, place_upto
from ownvault.engine.store.shares import DATA_PREFIX, data_share_name
from ownvault.errors import OwnvaultError, ProviderError

__all__ = ["complete_all"]


async def complete_all(
    ctx: VaultContext,
    world: ProviderSurvey,
    policy: Policy,
    report: RepairReport,
    dry_run: bool,
    max_bytes: int | None,
) -> None:
    """Place the shares degraded writes left out (``catalog.underrep``), then rewrite the
    catalog snapshot if its newest one is short of shares."""
    cat = ctx.catalog
    for pack in cat.underrep.packs():
        missing = cat.underrep.of_pack(pack)
        rows = cat.shares_of(pack)
        cost = sum(m.size for m in missing) + sum(s.size for s in rows[: cat.pack_info(pack)[2]])
        if max_bytes is not None and report.bytes_read + report.bytes_written + cost > max_bytes:
            report.budget_exhausted = True
            return
        try:
            await _complete_pack(ctx, pack, missing, world, policy, report, dry_run)
        except OwnvaultError as exc:
            report.failures.append(f"pack {missing[0].piece.hex()}: {exc.message}")
    if cat.underrep.snapshot_missing() and not dry_run:
        result = await ctx.push_catalog_safely()
        report.snapshot_rewritten = result is not None


def _completion_targets(
    policy: Policy,
    world: ProviderSurvey,
    missing: list[MissingShare],
    fixed: list[Candidate],
) -> dict[int, int]:
    """Where each missing share goes now (those with no usable provider are left out):
    back to the provider last tried when it is reachable, trusted, allowed and free under
    the caps; else where the policy places it, skipping unreachable (and, while others
    remain, distrusted) providers. ``fixed`` grows with each choice."""
    unreachable = {c for c in world.candidates if c not in world.reachable}
    held = {c.id for c in fixed}
    cands = list(world.candidates.values())
    out: dict[int, int] = {}
    for m in missing:
        tried = world.candidates.get(m.tried) if m.tried is not None else None
        target: int | None = None
        if (
            tried is not None
            and tried.id in world.reachable
            and tried.id not in world.distrusted
            and tried.id not in held
            and eligible(policy, [tried]).eligible
            and caps_allow(policy, fixed, tried)
        ):
            target = tried.id
        if target is None:
            avoid = unreachable | {c for c in world.candidates if c in world.distrusted}
            chosen = place_upto(policy, cands, fixed=fixed, count=1, unusable=avoid)
            if not chosen:
                chosen = place_upto(policy, cands, fixed=fixed, count=1, unusable=unreachable)
            target = chosen[0] if chosen else None
        if target is None:
            continue
        out[m.idx] = target
        fixed.append(world.candidates[target])
        held.add(target)
    return out


async def _complete_pack(
    ctx: VaultContext,
    pack: int,
    missing: list[MissingShare],
    world: ProviderSurvey,
    policy: Policy,
    report: RepairReport,
    dry_run: bool,
) -> None:
    cat, store = ctx.catalog, ctx.store
    pack_id, size, k, n = cat.pack_info(pack)
    rows = cat.shares_of(pack)
    fixed = [c for c in (world.candidates.get(s.provider) for s in rows) if c is not None]
    targets = _completion_targets(policy, world, missing, fixed)
    for m in missing:
        if m.idx in targets:
            report.actions.append(
                {
                    "pack": pack_id.hex(),
                    "share": m.idx,
                    "from": world.names.get(m.tried, "unplaced") if m.tried else "unplaced",
                    "to": world.names.get(targets[m.idx]),
                    "reason": f"under-replicated: {m.reason}",
                    "in_place": False,
                }
            )
    if dry_run or not targets:
        return
    before = len(store.problems)
    shares = [(s.idx, s.provider, s.size, s.root) for s in rows]
    data = await store.fetch_pack(DATA_PREFIX, pack_id, size, k, n, shares)
    for p in store.problems[before:]:
        report.failures.append(
            f"{p.provider}: {p.kind} share {p.share} while completing: {p.message}"
        )
    report.bytes_read += k * ShareLayout.for_total(rows[0].size).data_len
    enc = await store.encode(pack_id, data, k, n)
    writer = PackWriter(cat, store, policy, list(world.candidates.values()))
    writer.failed.update(c for c in world.candidates if c not in world.reachable)
    placed = [c for c in (world.candidates.get(s.provider) for s in rows) if c is not None]
    for m in missing:
        target = targets.get(m.idx)
        if target is None:
            continue
        if enc.roots[m.idx] != m.root or len(enc.shares[m.idx]) != m.size:
            raise OwnvaultError(
                f"regenerated share {m.idx} of pack {pack_id.hex()} does not match its record"
            )
        name = data_share_name(pack_id, m.idx)
        others = placed + [world.candidates[t] for i, t in targets.items() if i != m.idx]

        def claim(t: int, idx: int = m.idx) -> None:
            cat.underrep.set_tried(pack_id, idx, t)

        # Recorded before the write: an interrupted run finds (and can clean) the copy.
        cat.underrep.set_tried(pack_id, m.idx, target)
        try:
            final = await writer.put_share(
                pack, m.idx, enc.shares[m.idx], target, others, name=name, replace=True,
                claim=claim, resumes=m.tried,
            )  # fmt: skip
        except ProviderError as exc:
            report.failures.append(f"pack {pack_id.hex()} share {m.idx}: {exc.message}")
            continue
        cat.underrep.complete(pack, m.idx, final)
        placed.append(world.candidates[final])
        report.bytes_written += m.size
        report.shares_completed += 1
        if m.tried is not None and m.tried != final and m.tried in world.reachable:
            await store.delete_share(m.tried, name)
