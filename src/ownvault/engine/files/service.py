"""The files feature: put, get, read, list, stat, tag, restore a version, remove, usage."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ownvault.engine.files.listing import list_objects, usage
from ownvault.engine.files.results import (
    EntryInfo,
    ObjectListing,
    Removed,
    Restored,
    StatInfo,
    TreeListing,
    Usage,
    VersionInfo,
)
from ownvault.engine.store.context import VaultContext
from ownvault.engine.store.layout import validate_object_name, validate_tag
from ownvault.engine.store.putresult import PutResult
from ownvault.engine.store.restore import PackReader, write_file, write_tree
from ownvault.errors import NotFoundError, UsageError

if TYPE_CHECKING:
    from ownvault.engine.store.gc import GcResult

# The put pipeline (engine.store.versions, with the chunker, the pack builder and the
# share writer) and the collector (engine.store.gc) are imported by the methods that use
# them: a get or a listing starts without them.

__all__ = ["Files"]


class Files:
    """``vault.files``: what is stored under which name, in and out."""

    def __init__(self, ctx: VaultContext) -> None:
        self.ctx = ctx

    async def put(
        self,
        paths: Sequence[str | os.PathLike[str]],
        *,
        name: str | None = None,
        tags: Sequence[str] = (),
        progress: Callable[[int], None] | None = None,
        on_total: Callable[[int], None] | None = None,
        force_read: bool = False,
        if_changed: bool = False,
    ) -> list[PutResult]:
        """Store files or directory trees; each path becomes a new version of its name.
        A file the files cache knows unchanged since a put read it is not read again,
        unless ``force_read`` (docs/design.md, "Files cache"). ``if_changed``: a path
        whose tree is its name's latest version already (every entry and content the
        same, no tag to add) makes no version and writes nothing; its result is that
        version with ``new_version`` False (what ``ownvault put`` does)."""
        from ownvault.engine.store.versions import put_paths  # noqa: PLC0415 - see above

        return await put_paths(
            self.ctx,
            paths,
            name=name,
            tags=tags,
            progress=progress,
            on_total=on_total,
            force_read=force_read,
            if_changed=if_changed,
        )

    async def restore_version(self, name: str, version: int) -> PutResult:
        """A new (latest) version of ``name`` with the content of an older one."""
        from ownvault.engine.store.versions import restore_version  # noqa: PLC0415

        return await restore_version(self.ctx, name, version)

    async def get(
        self,
        name: str,
        out: str | os.PathLike[str] | None = None,
        *,
        version: int | None = None,
        byte_range: tuple[int, int | None] | None = None,
        progress: Callable[[int], None] | None = None,
        on_total: Callable[[int], None] | None = None,
        overwrite: bool = False,
    ) -> Restored:
        """Restore a file or tree (or a path inside a tree) to ``out``.

        Nothing existing is replaced or merged into unless ``overwrite`` (and even then no
        directory, device, FIFO or socket). ``byte_range`` ``(-N, None)``: the last N bytes."""
        ctx = self.ctx
        v, inner = ctx.resolve(name, version)
        entries = ctx.catalog.entries(v.id)
        if inner:
            chosen = [e for e in entries if e.path == inner or e.path.startswith(inner + "/")]
            if not chosen:
                raise NotFoundError(f"no such path in {v.name}: {inner}", name=name)
        else:
            chosen = entries
        top = chosen[0]
        base_name = (inner or v.name).rsplit("/", 1)[-1]
        dest = Path(out) if out is not None else Path(base_name)
        reader = PackReader(ctx.catalog, ctx.keys, ctx.store, reuse_buffers=True)
        try:
            if top.kind == "file" and len(chosen) == 1:
                if top.content is None:
                    raise NotFoundError(f"{name} has no content")
                start, end = (0, None) if byte_range is None else byte_range
                if start < 0 and end is None:  # a suffix, as in HTTP: the last -start bytes
                    start = max(0, top.size + start)
                if byte_range is not None and (start < 0 or (end is not None and end < start)):
                    raise UsageError("invalid --range")
                if dest.is_dir():
                    dest = dest / base_name
                dest.parent.mkdir(parents=True, exist_ok=True)
                if on_total is not None:
                    stop = top.size if end is None else min(end, top.size)
                    on_total(max(0, stop - start))
                written = await write_file(
                    reader,
                    ctx.catalog.content_chunks(top.content),
                    dest,
                    top if byte_range is None else None,
                    progress,
                    start,
                    end,
                    overwrite=overwrite,
                )
                return Restored(v.name, v.number, str(dest), 1, written)
            if byte_range is not None:
                raise UsageError("--range applies to a single file, not a tree")
            if not overwrite and (
                dest.is_symlink() or (dest.exists() and (not dest.is_dir() or any(dest.iterdir())))
            ):
                raise UsageError(f"{dest} exists already: not merging into it (use --overwrite)")
            if on_total is not None:
                on_total(sum(e.size for e in chosen if e.kind == "file"))
            files, written = await write_tree(
                reader, ctx.catalog, chosen, dest, inner, progress, overwrite=overwrite
            )
            return Restored(v.name, v.number, str(dest), files, written)
        finally:
            await reader.close()

    async def read(
        self, name: str, *, version: int | None = None, start: int = 0, end: int | None = None
    ) -> AsyncIterator[bytes]:
        """Stream the bytes of a stored file (or a file inside a stored tree)."""
        ctx = self.ctx
        v, inner = ctx.resolve(name, version)
        matches = [e for e in ctx.catalog.entries(v.id) if e.path == inner]
        if not matches or matches[0].kind != "file" or matches[0].content is None:
            raise UsageError(f"{name} is not a file")
        reader = PackReader(ctx.catalog, ctx.keys, ctx.store)
        try:
            async for piece in reader.read(
                ctx.catalog.content_chunks(matches[0].content), start, end
            ):
                yield piece
        finally:
            await reader.close()

    # -- listing --------------------------------------------------------------------------

    async def ls(self, prefix: str = "") -> ObjectListing | TreeListing:
        """Objects whose name starts with ``prefix``, or the entries of a tree path."""
        return list_objects(self.ctx.catalog, prefix)

    async def versions(self, name: str) -> list[VersionInfo]:
        ctx = self.ctx
        return [VersionInfo.of(v) for v in ctx.catalog.versions(validate_object_name(name))]

    async def stat(self, name: str, *, version: int | None = None) -> StatInfo:
        """One stored name, or a path inside a stored tree: its version and its entry."""
        ctx = self.ctx
        v, inner = ctx.resolve(name, version)
        match = next((e for e in ctx.catalog.entries(v.id, inner) if e.path == inner), None)
        if match is None:
            raise NotFoundError(f"no such path in {v.name}: {inner}", name=name)
        e = EntryInfo.of(match)
        return StatInfo(
            v.name,
            v.number,
            v.created_at,
            e.path,
            e.kind,
            e.mode,
            e.mtime_ns,
            e.size,
            e.cid,
            e.target,
        )

    async def set_tags(
        self,
        name: str,
        *,
        add: list[str] | tuple[str, ...] = (),
        remove: list[str] | tuple[str, ...] = (),
    ) -> list[str]:
        """Add and remove tags of a stored name; return its tags."""
        ctx = self.ctx
        for t in (*add, *remove):
            validate_tag(t)
        async with ctx.write():
            obj = ctx.catalog.object_id(validate_object_name(name))
            if obj is None:
                raise NotFoundError(f"no such file in the vault: {name}", name=name)
            with ctx.catalog.transaction():
                ctx.catalog.add_tags(obj, add)
                ctx.catalog.remove_tags(obj, remove)
            return ctx.catalog.tags(obj)

    async def rm(self, name: str, *, version: int | None = None) -> Removed:
        """Remove a name (or one version); shares no longer needed are deleted."""
        ctx = self.ctx
        async with ctx.write():
            removed = ctx.catalog.delete_versions(validate_object_name(name), version)
            freed = await self._prune_packs()
        return Removed(name, removed, freed)

    async def gc(self, *, dry_run: bool = False) -> GcResult:
        """Delete the packs of removed versions that no device's committed state references
        any more, and say which devices hold back the others (docs/design.md, "GC in the
        engine"); ``dry_run``: only say what would go."""
        from ownvault.engine.store.gc import collect  # noqa: PLC0415 - see the imports

        if dry_run:
            return await collect(self.ctx, dry_run=True, orphans=True)
        async with self.ctx.write():
            return await collect(self.ctx, orphans=True)

    async def _prune_packs(self) -> int:
        # With several devices a pack goes only when no device's state references it
        # (another device's put may reuse it): the journal's GC, engine.store.gc.
        from ownvault.engine.store.gc import reclaim  # noqa: PLC0415 - see the imports

        return await reclaim(self.ctx)

    async def du(self) -> Usage:
        """Usage (:func:`~ownvault.engine.files.listing.usage`)."""
        return usage(self.ctx.catalog)
