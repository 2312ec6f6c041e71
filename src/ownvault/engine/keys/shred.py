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
import sqlite3
from typing import Any

from ownvault.core.snapshot import snapshot_prefix
from ownvault.engine.store.context import PacksRewritten, VaultContext
from ownvault.engine.store.layout import validate_object_name
from ownvault.engine.store.repack import drain_doomed, rewrite_packs
from ownvault.errors import NotFoundError, OwnvaultError, ProviderError

__all__ = ["forget"]


async def forget(ctx: VaultContext, name: str, *, version: int | None = None) -> dict[str, Any]:
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
        marks = ",".join("?" * len(vids))
        doomed_chunks, shared_kept, packs, grant_rows = _what_goes(cat.conn, vids)
        cat.conn.execute("PRAGMA secure_delete = ON")

        def finish(c: sqlite3.Connection) -> None:
            c.execute(f"DELETE FROM versions WHERE id IN ({marks})", vids)
            if not c.execute("SELECT 1 FROM versions WHERE object = ?", (obj,)).fetchone():
                c.execute("DELETE FROM objects WHERE id = ?", (obj,))
            c.execute(
                "DELETE FROM contents WHERE id NOT IN (SELECT content FROM entries WHERE content IS NOT NULL)"
            )

        rep = await rewrite_packs(
            ctx,
            packs,
            lambda ch: "drop" if ch.row in doomed_chunks or not ch.referenced else "keep",
            reason=f"forget {name}",
            finish=finish,
        )
        if grant_rows:
            await ctx.events.emit(PacksRewritten(frozenset(grant_rows)))
        await asyncio.to_thread(_scrub_local, cat.conn)
        snap = await ctx.push_catalog()
        old = await _delete_old_snapshots(ctx, snap.seq)
        deleted, failed = await drain_doomed(ctx)
    result = rep.to_json()
    result.update(
        {
            "name": name,
            "versions_forgotten": len(vids),
            "chunks_shredded": len(doomed_chunks),
            "chunks_shared_with_other_names": shared_kept,
            "grants_updated": len(grant_rows),
            "snapshot": snap.seq,
            "old_snapshot_objects_deleted": old["deleted"],
            "objects_deleted": rep.objects_deleted + deleted,
            "not_deleted": old["failed"] + failed,
        }
    )
    return result


def _what_goes(
    conn: sqlite3.Connection, vids: list[int]
) -> tuple[set[int], int, set[int], set[int]]:
    """For forgetting versions ``vids``: the chunks only they use (to shred), how many of
    their chunks other versions share (kept), the packs holding nothing another version
    needs, and the grants that cover them."""
    marks = ",".join("?" * len(vids))
    mine = {
        r[0]
        for r in conn.execute(
            f"SELECT cc.chunk FROM entries e JOIN content_chunks cc ON cc.content = e.content WHERE e.version IN ({marks})",
            vids,
        )
    }
    others = {
        r[0]
        for r in conn.execute(
            f"SELECT cc.chunk FROM entries e JOIN content_chunks cc ON cc.content = e.content WHERE e.version NOT IN ({marks})",
            vids,
        )
    }
    doomed_chunks = mine - others
    shared_kept = len(mine & others)
    packs = {
        r[0]
        for r in conn.execute(
            "SELECT DISTINCT c.pack FROM chunks c WHERE NOT EXISTS "
            f"(SELECT 1 FROM content_chunks cc JOIN entries e ON e.content = cc.content "
            f" WHERE cc.chunk = c.id AND e.version NOT IN ({marks}))",
            vids,
        )
    }
    grant_rows = {
        r[0]
        for r in conn.execute(
            f"SELECT DISTINCT grant_row FROM grant_versions WHERE version IN ({marks})", vids
        )
    }
    return doomed_chunks, shared_kept, packs, grant_rows


def _scrub_local(conn: sqlite3.Connection) -> None:
    """Overwrite freed pages (secure_delete was on), fold the WAL in and truncate it, vacuum."""
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.execute("VACUUM")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")


async def _delete_old_snapshots(ctx: VaultContext, keep_seq: int) -> dict[str, Any]:
    """Delete every catalog snapshot object older than ``keep_seq`` on every provider."""
    store = ctx.store
    deleted = 0
    failed: list[dict[str, str]] = []
    keep = snapshot_prefix(keep_seq) + "/"

    async def one(pid: int) -> None:
        nonlocal deleted
        p = store.providers[pid]
        pname = store.names.get(pid, str(pid))
        try:
            names = [o.name async for o in p.list("catalog/")]
        except ProviderError as exc:
            failed.append(
                {"provider": pname, "object": "catalog/", "reason": f"cannot list: {exc.message}"}
            )
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
                failed.append({"provider": pname, "object": n, "reason": exc.message})

    await asyncio.gather(*(one(pid) for pid in store.providers))
    return {"deleted": deleted, "failed": failed}
