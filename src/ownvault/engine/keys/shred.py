"""Forgetting a name (crypto-shredding): destroy its keys, delete its shares everywhere.

``forget(ctx, NAME)``:

1. the chunks only NAME's versions use (chunks shared with other names through dedup are
   kept: their keys are needed, and their bytes are other files' bytes) are *dropped*; so
   are dead chunks of earlier ``rm``s sitting in partly used packs;
2. every pack holding such a chunk is rewritten without it (other chunks move unchanged to
   new packs, ``engine.store.repack``) and the old pack's shares are deleted; in the same
   transaction NAME's versions, entries and contents disappear from the catalog;
3. the catalog is rewritten locally with SQLite ``secure_delete`` on, checkpointed and
   vacuumed, so the wrapped keys are not left in free pages or the WAL;
4. a new catalog snapshot is written and *every older snapshot* (which still holds the
   wrapped keys) is deleted from every provider;
5. grants that covered NAME get a new manifest without it; the old manifests (which hold
   the raw chunk keys) are deleted.

Anything that could not be deleted is reported by provider and object and stays queued
(``doomed_objects``) for the next forget/revoke to retry.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from ownvault.core.snapshot import snapshot_prefix
from ownvault.engine.store.context import PacksRewritten, VaultContext
from ownvault.engine.store.layout import validate_object_name
from ownvault.engine.store.repack import NotDeleted, drain_doomed, rewrite_packs
from ownvault.errors import NotFoundError, OwnvaultError, ProviderError

__all__ = ["ForgetResult", "forget"]


@dataclass(frozen=True, slots=True)
class ForgetResult:
    """What ``forget`` destroyed: the pack rewrite's counts, then the forgetting's own."""

    packs_read: int
    packs_written: int
    chunks_kept: int
    chunks_rekeyed: int
    chunks_dropped: int
    name: str
    versions_forgotten: int
    chunks_shredded: int
    chunks_shared_with_other_names: int
    grants_updated: int
    snapshot: int
    """The sequence number of the catalog snapshot written afterwards."""
    old_snapshot_objects_deleted: int
    objects_deleted: int
    not_deleted: list[NotDeleted]


async def forget(ctx: VaultContext, name: str, *, version: int | None = None) -> ForgetResult:
    """Crypto-shred ``name`` (or one version of it). See the module docstring."""
    name = validate_object_name(name)
    cat = ctx.catalog
    async with ctx.write():
        obj = cat.object_id(name)
        if obj is None:
            raise NotFoundError(f"no such file in the vault: {name}", name=name)
        vids = [v.id for v in cat.versions(name) if version is None or v.number == version]
        if not vids:
            raise NotFoundError(f"{name} has no version {version}", name=name)
        plan = cat.keys.forget_plan(vids)
        cat.keys.secure_delete()
        rep = await rewrite_packs(
            ctx,
            set(plan.packs),
            lambda ch: "drop" if ch.row in plan.doomed_chunks or not ch.referenced else "keep",
            reason=f"forget {name}",
            finish=lambda _c: cat.keys.delete_versions(obj, vids),
        )
        if plan.grant_rows:
            await ctx.events.emit(PacksRewritten(plan.grant_rows))
        await asyncio.to_thread(cat.keys.scrub)
        snap = await ctx.push_catalog()
        old_deleted, old_failed = await _delete_old_snapshots(ctx, snap.seq)
        deleted, failed = await drain_doomed(ctx)
    return ForgetResult(
        packs_read=rep.packs_read,
        packs_written=rep.packs_written,
        chunks_kept=rep.chunks_kept,
        chunks_rekeyed=rep.chunks_rekeyed,
        chunks_dropped=rep.chunks_dropped,
        name=name,
        versions_forgotten=len(vids),
        chunks_shredded=len(plan.doomed_chunks),
        chunks_shared_with_other_names=plan.shared_kept,
        grants_updated=len(plan.grant_rows),
        snapshot=snap.seq,
        old_snapshot_objects_deleted=old_deleted,
        objects_deleted=rep.objects_deleted + deleted,
        not_deleted=old_failed + failed,
    )


async def _delete_old_snapshots(ctx: VaultContext, keep_seq: int) -> tuple[int, list[NotDeleted]]:
    """Delete every catalog snapshot object older than ``keep_seq`` on every provider;
    return how many were deleted, and the others."""
    store = ctx.store
    deleted = 0
    failed: list[NotDeleted] = []
    keep = snapshot_prefix(keep_seq) + "/"

    async def one(pid: int) -> None:
        nonlocal deleted
        p = store.providers[pid]
        pname = store.names.get(pid, str(pid))
        try:
            names = [o.name async for o in p.list("catalog/")]
        except ProviderError as exc:
            failed.append(NotDeleted(pname, "catalog/", f"cannot list: {exc.message}"))
            return
        for n in names:
            if n.startswith(keep):
                continue
            try:
                int(n.split("/")[1], 16)
            except (IndexError, ValueError):
                continue
            try:
                await p.delete(n)
                deleted += 1
            except OwnvaultError as exc:
                failed.append(NotDeleted(pname, n, exc.message))

    await asyncio.gather(*(one(pid) for pid in store.providers))
    return deleted, failed
