"""Repair: regenerate missing or corrupt shares from k good ones and place them again.

What is damaged, found cheaply (no share is read to find it):

* shares on providers that are removed, cannot be opened, or do not answer now (with
  ``unreachable_grace``: only once the provider has been unreachable in every audit for
  that long, so a short outage does not move everything);
* shares absent from their provider's listing, or listed with the wrong size;
* shares recorded as bad by an audit or a deep check (``share_faults``). These are read
  and verified whole first: a share that turns out fine (a lying node's, say) is kept.

For each damaged piece, ``regenerate``: the pack is decoded from k verified shares of the
others (data shares first, so reading k shares is all the reading), re-encoded (the code is
deterministic, so each regenerated share is byte-identical and is checked against its
recorded root and size), and each bad share is written back:

* to the same provider, if it is reachable, still eligible under the policy, and has no
  share recorded corrupt (a share merely missing there is rewritten in place);
* else to a provider chosen by ``placement.place`` given the other holders, preferring
  providers with no share recorded corrupt, skipping unreachable ones (when nothing else
  fits, a provider with corrupt shares, even the same one: its bad object is deleted first).

Each share is committed alone (written durably, catalog row switched, fault cleared, old
copy deleted when reachable), so an interrupted repair resumes where it stopped. A piece
with fewer than k good shares is *lost*: the report names every version that needs it.

Then it *completes* under-replicated pieces (``catalog.underrep``: shares a degraded write
could not place, docs/design.md "Degraded writes"): each such pack is decoded and
re-encoded the same way and each missing share written where the policy places it next to
the pack's holders (the provider last tried first, when it is reachable and allowed). Only
once the share is durable does one transaction move its row from ``underrep`` to
``shares``; a provider still down leaves the row for the next run. A catalog snapshot with
missing shares is completed by writing a new snapshot.

Last, the journal: a provider that holds some device's chain of journal records only up to
a lower seq than this device knows (a stale provider, ``engine.health.journallag``) gets
copies of the records it lacks, each opened before it is written.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from ownvault.core.pack import ShareHeader, ShareLayout
from ownvault.engine.health.complete import complete_all
from ownvault.engine.health.journallag import copy_lagging_records
from ownvault.engine.health.survey import (
    LostPiece,
    ProviderSurvey,
    RepairReport,
    caps_allow,
    survey,
)
from ownvault.engine.store.catalog import ShareRow
from ownvault.engine.store.catalog.healthlog import FaultRow
from ownvault.engine.store.context import VaultContext
from ownvault.engine.store.packwriter import PackWriter
from ownvault.engine.store.placement import Candidate, Policy, eligible, place
from ownvault.engine.store.shares import DATA_PREFIX, data_share_name, share_problem
from ownvault.errors import (
    ObjectNotFoundError,
    OwnvaultError,
    PolicyError,
)

__all__ = ["LostPiece", "RepairReport", "repair"]


def _versions_of_pack(ctx: VaultContext, pack: int) -> list[dict[str, Any]]:
    return [
        {"name": u.name, "version": u.version, "paths": list(u.paths)}
        for u in ctx.catalog.packs.users_of(pack)
    ]


async def repair(
    ctx: VaultContext,
    *,
    dry_run: bool = False,
    unreachable_grace: float | None = None,
    max_bytes: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> RepairReport:
    """Regenerate every damaged share that can be (see the module docstring). Needs the
    writer lock: call through :meth:`Vault.repair` or hold ``ctx._writer()``."""
    t0 = time.monotonic()
    started = time.time()
    report = RepairReport(dry_run=dry_run)
    cat = ctx.catalog
    world = await survey(ctx, unreachable_grace)
    report.unreachable = sorted(
        world.names[r.id] for r in cat.providers() if r.id not in world.reachable
    )
    recorded = {(f.pack, f.idx): f for f in cat.healthlog.faults()}
    packs = cat.live_packs()
    policy = ctx.policy
    for done, pack in enumerate(packs, 1):
        report.packs_checked += 1
        pack_id, _size, k, n = cat.pack_info(pack)
        rows = cat.shares_of(pack)
        bad, suspect = _listed_damage(ctx, pack, pack_id, rows, world, recorded, dry_run)
        if not bad and not suspect:
            if progress is not None:
                progress(done, len(packs))
            continue
        bad |= await _suspect_damage(
            ctx, pack, (pack_id, k, n), rows, suspect, recorded, report, dry_run
        )
        if not bad:
            continue
        report.packs_damaged += 1
        report.shares_bad += len(bad)
        good = len(rows) - len(bad)
        if good < k:
            report.lost.append(LostPiece(pack_id.hex(), good, k, _versions_of_pack(ctx, pack)))
            continue
        layout = ShareLayout.for_total(rows[0].size)
        cost = k * layout.data_len + len(bad) * rows[0].size
        if max_bytes is not None and report.bytes_read + report.bytes_written + cost > max_bytes:
            report.budget_exhausted = True
            break
        try:
            await _repair_pack(ctx, pack, bad, world, policy, report, dry_run)
            report.packs_repaired += int(not dry_run)
        except PolicyError as exc:
            report.failures.append(f"pack {pack_id.hex()}: {exc.message}")
        except OwnvaultError as exc:
            report.failures.append(f"pack {pack_id.hex()}: {exc.message}")
        if progress is not None:
            progress(done, len(packs))
    if not report.budget_exhausted:
        await complete_all(ctx, world, policy, report, dry_run, max_bytes)
    copied, failed = await copy_lagging_records(ctx, dry_run=dry_run)
    report.journal_records_copied = copied
    report.failures += failed
    report.under_replicated_left = cat.underrep.count()
    report.seconds = time.monotonic() - t0
    if not dry_run:
        summary = {key: v for key, v in report.to_json().items() if key != "actions"}
        cat.healthlog.record_run("repair", started, summary)
    return report


def _listed_damage(
    ctx: VaultContext,
    pack: int,
    pack_id: bytes,
    rows: list[ShareRow],
    world: ProviderSurvey,
    recorded: dict[tuple[int, int], FaultRow],
    dry_run: bool,
) -> tuple[dict[int, str], list[int]]:
    """What the survey shows of one pack: its bad shares (unreachable, gone, missing or the
    wrong size; recorded as faults unless ``dry_run``), and the shares that look fine but
    have a recorded fault (to be read whole)."""
    bad: dict[int, str] = {}
    suspect: list[int] = []
    for s in rows:
        name = data_share_name(pack_id, s.idx)
        if s.provider in world.grace:
            continue
        if s.provider not in world.reachable:
            bad[s.idx] = "unreachable" if s.provider in world.candidates else "provider gone"
        elif s.provider in world.listed and world.listed[s.provider].get(name) != s.size:
            got = world.listed[s.provider].get(name)
            bad[s.idx] = "missing" if got is None else f"wrong size {got}"
            if not dry_run:  # remembered (for status) until repaired
                ctx.catalog.healthlog.add_fault(
                    pack,
                    s.idx,
                    s.provider,
                    "missing" if got is None else "corrupt",
                    bad[s.idx],
                )
        elif (pack, s.idx) in recorded:
            suspect.append(s.idx)
    return bad, suspect


async def _suspect_damage(
    ctx: VaultContext,
    pack: int,
    shape: tuple[bytes, int, int],
    rows: list[ShareRow],
    suspect: list[int],
    recorded: dict[tuple[int, int], FaultRow],
    report: RepairReport,
    dry_run: bool,
) -> dict[int, str]:
    """Which suspect shares are bad: in a dry run, those with a recorded fault; else those
    that fail a whole read (faults cleared for the ones that pass)."""
    pack_id, k, n = shape
    by_idx = {s.idx: s for s in rows}
    bad: dict[int, str] = {}
    if dry_run:
        for idx in suspect:
            bad[idx] = f"recorded {recorded[(pack, idx)].kind}: {recorded[(pack, idx)].detail}"
        return bad
    for idx in suspect:
        why = await _verify(
            ctx,
            pack_id,
            by_idx[idx].provider,
            by_idx[idx].size,
            by_idx[idx].root,
            ShareHeader(k, n, idx, pack_id),
            report,
        )
        if why is None:
            report.shares_verified_ok += 1
            ctx.catalog.healthlog.clear_fault(pack, idx)
        else:
            bad[idx] = why
            ctx.catalog.healthlog.add_fault(pack, idx, by_idx[idx].provider, "corrupt", why)
    return bad


async def _verify(
    ctx: VaultContext,
    pack_id: bytes,
    provider: int,
    size: int,
    root: bytes,
    header: ShareHeader,
    report: RepairReport,
) -> str | None:
    """Read one stored share whole and say what is wrong with it (None: nothing)."""
    p = ctx.store.providers.get(provider)
    name = data_share_name(pack_id, header.index)
    if p is None:
        return "provider cannot be opened"
    try:
        data = await p.get(name, 0, size + 1)  # a longer share is wrong: no need for all of it
    except ObjectNotFoundError:
        return "missing"
    except OwnvaultError as exc:
        return f"unreadable: {exc.message}"
    report.bytes_read += len(data)
    return await asyncio.to_thread(share_problem, data, size, root, header)


async def _repair_pack(
    ctx: VaultContext,
    pack: int,
    bad: dict[int, str],
    world: ProviderSurvey,
    policy: Policy,
    report: RepairReport,
    dry_run: bool,
) -> None:
    cat = ctx.catalog
    store = ctx.store
    pack_id, size, k, n = cat.pack_info(pack)
    rows = cat.shares_of(pack)
    by_idx = {s.idx: s for s in rows}
    holders = {s.idx: world.candidates.get(s.provider) for s in rows}
    kept = [holders[s.idx] for s in rows if s.idx not in bad]
    fixed: list[Candidate] = [c for c in kept if c is not None]
    targets = _targets(policy, world, by_idx, bad, holders, fixed)
    for idx, target in targets.items():
        report.actions.append(
            {
                "pack": pack_id.hex(),
                "share": idx,
                "from": world.names.get(by_idx[idx].provider),
                "to": world.names.get(target),
                "reason": bad[idx],
                "in_place": target == by_idx[idx].provider,
            }
        )
    if dry_run:
        return
    before = len(store.problems)
    shares = [(s.idx, s.provider, s.size, s.root) for s in rows if s.idx not in bad]
    data = await store.fetch_pack(DATA_PREFIX, pack_id, size, k, n, shares)
    for p in store.problems[before:]:
        report.failures.append(
            f"{p.provider}: {p.kind} share {p.share} while repairing: {p.message}"
        )
    report.bytes_read += k * ShareLayout.for_total(rows[0].size).data_len
    enc = await store.encode(pack_id, data, k, n)
    # Failover avoids unreachable providers, and distrusted ones while others remain.
    writer = PackWriter(cat, store, policy, list(world.candidates.values()))
    writer.failed.update(c for c in world.candidates if c not in world.reachable)
    for idx, target in targets.items():
        row = by_idx[idx]
        if enc.roots[idx] != row.root or len(enc.shares[idx]) != row.size:
            raise OwnvaultError(
                f"regenerated share {idx} of pack {pack_id.hex()} does not match its record"
            )
        name = data_share_name(pack_id, idx)
        blob = enc.shares[idx]
        others = [
            world.candidates[t] for i, t in targets.items() if i != idx and t in world.candidates
        ]
        others += [c for c in kept if c is not None]
        target = await writer.put_share(
            pack, idx, blob, target, others, name=name, replace=True, recorded=row.provider
        )
        report.bytes_written += len(blob)
        cat.healthlog.clear_fault(pack, idx)
        report.shares_regenerated += 1
        if target == row.provider:
            report.shares_rewritten_in_place += 1
        else:
            report.shares_moved += 1
            if row.provider in world.reachable:
                await store.delete_share(row.provider, name)


def _targets(
    policy: Policy,
    world: ProviderSurvey,
    rows: dict[int, ShareRow],
    bad: dict[int, str],
    holders: dict[int, Candidate | None],
    fixed: list[Candidate],
) -> dict[int, int]:
    """Where each bad share goes: back in place when its provider is reachable, trusted and
    still allowed by the policy; else where the policy places it, away from distrusted
    providers while others remain. ``fixed`` grows with each choice."""
    unreachable = {c for c in world.candidates if c not in world.reachable}
    targets: dict[int, int] = {}
    for idx in sorted(bad):
        old = rows[idx].provider
        target = None
        holder = holders[idx]
        if (
            holder is not None
            and old in world.reachable
            and old not in world.distrusted
            and eligible(policy, [holder]).eligible
            and caps_allow(policy, fixed, holder)
        ):
            target = old
        if target is None:
            avoid = {c for c in world.candidates if c in world.distrusted} | unreachable
            try:
                target = place(
                    policy, list(world.candidates.values()), fixed=fixed, count=1, unusable=avoid
                )[0]
            except PolicyError:
                target = place(
                    policy,
                    list(world.candidates.values()),
                    fixed=fixed,
                    count=1,
                    unusable=unreachable,
                )[0]
        targets[idx] = target
        fixed.append(world.candidates[target])
    return targets
