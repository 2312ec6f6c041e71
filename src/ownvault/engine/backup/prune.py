"""Forgetting versions by a retention policy, and giving their space back.

Retention is :func:`ownvault.core.retention.apply_policy` (restic's ``forget --keep-*``)
over the versions of one stored name, timed by their ``created_at`` in local time. What it
removes is deleted from the catalog; then packs no content refers to any more are deleted
(``engine.store.gc.reclaim``, as ``rm`` does: with several devices, once every device has
acknowledged the removal), and packs whose unreferenced chunk bytes reach
:data:`REPACK_WASTE` of the pack are rewritten without them (``engine.store.repack``, as
revocation and shredding do; not with several devices, whose catalogs name the old pack).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ownvault.core.retention import Decision, Item, RetentionPolicy, apply_policy
from ownvault.engine.store.context import PacksRewritten, VaultContext
from ownvault.engine.store.gc import reclaim, several_devices
from ownvault.engine.store.repack import rewrite_packs
from ownvault.errors import NotFoundError

__all__ = ["REPACK_WASTE", "ForgetResult", "forget_versions", "plan_forget", "reclaim_space"]

REPACK_WASTE = 0.25
"""A pack is rewritten when at least this fraction of its chunk bytes is unreferenced."""


@dataclass(frozen=True, slots=True)
class ForgetResult:
    name: str
    policy: str
    keep: tuple[dict[str, Any], ...]
    remove: tuple[dict[str, Any], ...]
    dry_run: bool
    packs_deleted: int = 0
    packs_repacked: int = 0
    bytes_freed: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "policy": self.policy,
            "keep": list(self.keep),
            "remove": list(self.remove),
            "dry_run": self.dry_run,
            "packs_deleted": self.packs_deleted,
            "packs_repacked": self.packs_repacked,
            "bytes_freed": self.bytes_freed,
        }


def plan_forget(
    ctx: VaultContext,
    name: str,
    policy: RetentionPolicy,
    now: float,
    among: set[int] | None = None,
) -> Decision:
    """Which versions of ``name`` (only those numbered in ``among``, if given: the ones a
    profile made) the policy keeps and removes (an empty policy keeps all)."""
    try:
        versions = ctx.catalog.versions(name)
    except NotFoundError:
        return Decision((), (), ())
    # Newest number first: the policy's sort by time is stable, so versions made within one
    # second (created_at has whole seconds) stay newest first, as their numbers say.
    items = [
        Item(v.number, datetime.fromtimestamp(v.created_at).astimezone())
        for v in sorted(versions, key=lambda v: v.number, reverse=True)
        if among is None or v.number in among
    ]
    if policy.empty:
        return Decision(tuple(sorted(items, key=lambda i: i.time, reverse=True)), (), ())
    return apply_policy(items, policy, datetime.fromtimestamp(now).astimezone())


def _item_json(item: Item, matches: tuple[str, ...] = ()) -> dict[str, Any]:
    out: dict[str, Any] = {"version": item.key, "time": item.time.timestamp()}
    if matches:
        out["reasons"] = list(matches)
    return out


async def forget_versions(
    ctx: VaultContext,
    name: str,
    policy: RetentionPolicy,
    now: float,
    *,
    among: set[int] | None = None,
    dry_run: bool = False,
) -> ForgetResult:
    """Apply ``policy`` to the versions of ``name`` (those in ``among``, if given; hold
    ``ctx.write()`` unless dry)."""
    decision = plan_forget(ctx, name, policy, now, among)
    keep = tuple(_item_json(r.item, r.matches) for r in decision.reasons) or tuple(
        _item_json(i) for i in decision.keep
    )
    remove = tuple(_item_json(i) for i in decision.remove)
    text = "keep every version" if policy.empty else policy.describe()
    if dry_run or not decision.remove:
        return ForgetResult(name, text, keep, remove, dry_run)
    before = ctx.catalog.usage.totals()["stored_bytes"]
    for item in decision.remove:
        ctx.catalog.delete_versions(name, int(item.key))
    deleted, repacked = await reclaim_space(ctx)
    freed = before - ctx.catalog.usage.totals()["stored_bytes"]
    return ForgetResult(name, text, keep, remove, False, deleted, repacked, freed)


async def reclaim_space(ctx: VaultContext) -> tuple[int, int]:
    """Delete unreferenced packs, rewrite the wasteful ones: (deleted, rewritten). Hold
    ``ctx.write()``."""
    deleted = await reclaim(ctx)
    if several_devices(ctx):
        return deleted, 0  # a rewrite deletes a pack other devices' catalogs still name
    wasteful = {w.pack for w in ctx.catalog.backups.pack_waste() if w.ratio >= REPACK_WASTE}
    if not wasteful:
        return deleted, 0
    await rewrite_packs(
        ctx,
        wasteful,
        lambda ch: "keep" if ch.referenced else "drop",
        reason="prune after forget",
    )
    await ctx.events.emit(PacksRewritten())
    return deleted, len(wasteful)
