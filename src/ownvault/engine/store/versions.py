"""New versions of stored names: from files and trees on disk (put), or from an older version.

A put scans each path (symlinks recorded, not followed), streams every file through the
ingest pipeline (``engine.store.ingest``: chunks -> sealed blobs -> packs -> shares) unless
the files cache knows it unchanged (``engine.store.filescache``), and inserts the version
with all its entries and the files cache's rows in one transaction once every pack is live
(one transaction per version, whatever its number of files). The tree's IPFS directory CID
is computed from its files' CIDs (``ipfs add -r --hidden``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

from ownvault.core.cid import CID
from ownvault.core.unixfs import PROFILES
from ownvault.engine.store.catalog import EntryRow, VersionRow
from ownvault.engine.store.context import VaultContext
from ownvault.engine.store.dag import TreeItem, build_tree
from ownvault.engine.store.filescache import FilesCacheRun, cache_params
from ownvault.engine.store.ingest import FileRecord, Ingestor
from ownvault.engine.store.journalsync import collector_paused
from ownvault.engine.store.layout import validate_object_name, validate_tag
from ownvault.engine.store.putresult import EntryKey, ObjectKind, PutResult, latest_if_same
from ownvault.engine.store.shares import data_share_name
from ownvault.engine.store.treeread import TreeEntry, read_files, scan_path
from ownvault.engine.store.treescan import utf8_ok
from ownvault.errors import FormatError, OwnvaultError, UsageError

__all__ = ["ObjectKind", "PutResult", "drop_unreferenced_packs", "put_paths", "restore_version"]


async def put_paths(
    ctx: VaultContext,
    paths: Sequence[str | os.PathLike[str]],
    *,
    name: str | None = None,
    tags: Sequence[str] = (),
    progress: Callable[[int], None] | None = None,
    on_total: Callable[[int], None] | None = None,
    skip: Callable[[str, bool], bool] | None = None,
    force_read: bool = False,
    files_cache: bool = True,
    if_changed: bool = False,
) -> list[PutResult]:
    """Store files or directory trees; each path becomes a new version of its name.
    ``skip(relative_path, is_dir)``: leave entries of a tree out (backup excludes).
    ``force_read``: read every file, even those the files cache knows unchanged;
    ``files_cache=False``: neither consult nor update it (temporary files);
    ``if_changed``: a path whose tree is the latest version already makes no version
    (``engine.store.putresult``)."""
    if not paths:
        raise UsageError("nothing to put")
    if name is not None and len(paths) != 1:
        raise UsageError("--as NAME needs exactly one path")
    for t in tags:
        validate_tag(t)
    plans: list[tuple[str, Path, list[TreeEntry], list[str]]] = []
    for p in paths:
        path = Path(p)
        base = path.absolute().name
        if name is None and not utf8_ok(base):
            raise UsageError(f"the name {base!r} is not valid UTF-8: give a name with --as NAME")
        notes: list[str] = []
        entries = scan_path(path, _collect(ctx, notes), skip)
        obj_name = validate_object_name(name if name is not None else base)
        plans.append((obj_name, path, entries, notes))
    if on_total is not None:
        on_total(sum(e.size for _n, _p, es, _w in plans for e in es if e.kind == "file"))
    results: list[PutResult] = []
    settings = ctx.settings
    params = cache_params(PROFILES[settings.cid_profile].name, settings.chunker)
    async with ctx.write():
        for obj_name, path, entries, notes in plans:
            cache = (
                FilesCacheRun(ctx.catalog, path, params, ctx.hooks.clock, force_read)
                if files_cache
                else None
            )
            results.append(
                await _put_one(
                    ctx, obj_name, entries, list(tags), progress, notes, cache, if_changed
                )
            )
    return results


def _collect(ctx: VaultContext, notes: list[str]) -> Callable[[str], None]:
    """A warning sink that reports at once (``ctx.warn``) and keeps the warning for the result."""

    def warn(message: str) -> None:
        notes.append(message)
        ctx.warn(message)

    return warn


async def _put_one(
    ctx: VaultContext,
    obj_name: str,
    entries: list[TreeEntry],
    tags: list[str],
    progress: Callable[[int], None] | None,
    notes: list[str],
    cache: FilesCacheRun | None,
    if_changed: bool = False,
) -> PutResult:
    """Store one scanned path as a new version. Whatever fails on the way (a provider, a
    vanished file, the catalog), the packs this put wrote that nothing refers to are
    removed, pending or live; only an interruption (Ctrl-C, kill) leaves its live packs
    for the next put to reuse (see "Crash safety" in docs/design.md)."""
    settings = ctx.settings
    warn = _collect(ctx, notes)
    read = [0]

    def reading(n: int) -> None:
        read[0] += n
        if progress is not None:
            progress(n)

    ing = Ingestor(
        ctx.catalog,
        ctx.keys,
        ctx.store,
        settings.policy,
        settings.chunker,
        PROFILES[settings.cid_profile],
        ctx.candidates(),
        reading,
    )
    try:
        result = await _ingest_and_record(
            ctx, ing, obj_name, entries, tags, warn, cache, progress, if_changed
        )
    except Exception:
        await ing.abort()
        await ctx.cleanup_pending()
        await drop_unreferenced_packs(ctx, ing.packs)
        raise
    except BaseException:
        await ing.abort()
        raise
    finally:
        ing.close()
    # Packs that only hold chunks of a file read again (it changed meanwhile) are dead.
    await drop_unreferenced_packs(ctx, ing.packs)
    return PutResult(
        result.name,
        result.version,
        result.kind,
        result.size,
        result.files,
        result.cid,
        result.new_bytes,
        result.new_chunks,
        result.packs,
        tuple(notes),
        result.unchanged,
        read[0],
        tuple(ctx.catalog.underrep.summary(ing.packs)),
        result.new_version,
    )


async def drop_unreferenced_packs(ctx: VaultContext, among: Sequence[int] | None = None) -> int:
    """Delete live packs none of whose chunks any content refers to (only those in
    ``among`` if given): their catalog rows first, with their shares queued in
    ``doomed_objects``, then their shares (a crash in between leaves the shares queued, never
    a row naming a deleted share; ``engine.store.gc`` and ``forget`` retry the queue). Hold
    ``ctx.write()``."""
    cat = ctx.catalog
    dead = cat.unreferenced_packs()
    if among is not None:
        wanted = set(among)
        dead = [p for p in dead if p in wanted]
    for pack in dead:
        pack_id, _size, _k, _n = cat.pack_info(pack)
        names = [(s.provider, data_share_name(pack_id, s.idx)) for s in cat.shares_of(pack)]
        cat.drop_chunks_of_packs([pack], names, "unreferenced pack")
        gone = [(p, n) for p, n in names if await ctx.store.delete_share(p, n)]
        cat.packs.undoom(gone)
    return len(dead)


async def _ingest_and_record(
    ctx: VaultContext,
    ing: Ingestor,
    obj_name: str,
    entries: list[TreeEntry],
    tags: list[str],
    warn: Callable[[str], None],
    cache: FilesCacheRun | None,
    progress: Callable[[int], None] | None,
    if_changed: bool = False,
) -> PutResult:
    settings = ctx.settings
    records, reused = await read_files(ing, entries, warn, cache, progress)
    await ing.flush()
    kind: ObjectKind = "tree" if entries[0].kind == "dir" else "file"
    total = sum(r.size for r in records.values())
    cat = ctx.catalog
    if if_changed:
        same = latest_if_same(
            cat, obj_name, kind, _keys(entries, records), tags, settings.cid_profile
        )
        if same is not None:
            return _unchanged(ctx, ing, same, cache, len(reused))
    # No await in the transaction; its rows and checks make many acyclic objects, each of
    # the collector's generations walked again (the rows' check took twice as long).
    with collector_paused(), cat.transaction():
        new = [(p, r) for p, r in records.items() if p not in reused]
        ids = cat.contents.add_many(
            [
                (r.size, r.cid, r.cid_profile, r.tsize, ing.chunk_rows(r.chunk_ids), r.chunk_lens)
                for _p, r in new
            ]
        )
        contents = dict(reused)
        contents.update(zip([p for p, _r in new], ids, strict=True))
        obj = cat.object_id(obj_name, create=True)
        assert obj is not None
        cid = records[""].cid if kind == "file" else _tree_cid(ctx, entries, records)
        version, number = cat.add_version(
            obj,
            kind,
            total,
            len(records),
            cid,
            settings.cid_profile if cid else None,
            int(ctx.hooks.clock()),
        )
        rows: list[tuple[str, str, int, int, int, int | None, str | None]] = []
        for e in entries:
            read = records.get(e.path)
            if read is None:
                rows.append((e.path, e.kind, e.mode, e.mtime_ns, e.size, None, e.target))
            else:  # a file's metadata as it was read, which may differ from the scan's
                rows.append(
                    (e.path, e.kind, read.mode, read.mtime_ns, read.size, contents[e.path], None)
                )
        cat.add_entries(version, rows)
        _fits_the_journal(ctx, obj_name, version)
        cat.add_tags(obj, tags)
        if cache is not None:
            cache.commit(contents)
    return PutResult(
        obj_name,
        number,
        kind,
        total,
        len(records),
        cid,
        ing.new_bytes,
        ing.new_chunks,
        ing.packs_written,
        unchanged=len(reused),
    )


def _keys(entries: list[TreeEntry], records: dict[str, FileRecord]) -> list[EntryKey]:
    """The entries of a put as :func:`latest_if_same` compares them (a file's metadata as
    it was read)."""
    out: list[EntryKey] = []
    for e in entries:
        r = records.get(e.path)
        if r is None:
            out.append((e.path, e.kind, e.mode, e.mtime_ns, e.size, e.target, None))
        else:
            out.append((e.path, e.kind, r.mode, r.mtime_ns, r.size, None, r.cid))
    return out


def _unchanged(
    ctx: VaultContext,
    ing: Ingestor,
    same: tuple[VersionRow, list[EntryRow]],
    cache: FilesCacheRun | None,
    reused: int,
) -> PutResult:
    """A put that changes nothing: no version; the files cache still learns what it read
    (as the content the latest version holds) and ages its rows."""
    latest, rows = same
    if cache is not None:
        with ctx.catalog.transaction():
            cache.commit({e.path: e.content for e in rows if e.content is not None})
    return PutResult(
        latest.name,
        latest.number,
        latest.kind,
        latest.size,
        latest.file_count,
        latest.cid,
        ing.new_bytes,
        ing.new_chunks,
        ing.packs_written,
        unchanged=reused,
        new_version=False,
    )


def _fits_the_journal(ctx: VaultContext, name: str, version: int) -> None:
    """Refuse (rolling the version back) a version whose rows one journal record cannot
    carry (docs/design.md, "Rows of a put": about 80,000 small files)."""
    try:
        ctx.encoded_rows.check(ctx.catalog, version)  # kept: the record reuses the bytes
    except FormatError as exc:
        raise UsageError(
            f"{name}: too many entries for one version of the catalog journal "
            f"({exc.message}); store its folders as separate names"
        ) from None


def _file_cid(record: FileRecord) -> CID:
    return record.root if record.root is not None else CID.parse(record.cid)


def _tree_cid(
    ctx: VaultContext, entries: list[TreeEntry], records: dict[str, FileRecord]
) -> str | None:
    """The tree's directory CID from its files' CIDs (``ipfs add -r --hidden``)."""
    items = [
        TreeItem(
            e.path,
            e.kind,
            _file_cid(records[e.path]) if e.kind == "file" else None,
            records[e.path].tsize if e.kind == "file" else 0,
            e.target,
        )
        for e in entries
    ]
    try:
        return str(build_tree(items, PROFILES[ctx.settings.cid_profile]).cid)
    except OwnvaultError as exc:  # e.g. a name that is not UTF-8: stored, but no CID
        ctx.warn(f"no IPFS CID for this tree: {exc.message}")
        return None


async def restore_version(ctx: VaultContext, name: str, version: int) -> PutResult:
    """A new (latest) version of ``name`` with the content of an older one.

    Nothing is read or stored again: the new version refers to the same contents.
    """
    cat = ctx.catalog
    async with ctx.write():
        v = cat.version(validate_object_name(name), version)
        obj = cat.object_id(v.name)
        assert obj is not None
        entries = cat.entries(v.id)
        with cat.transaction():
            new, number = cat.add_version(obj, v.kind, v.size, v.file_count, v.cid, v.cid_profile)
            cat.add_entries(
                new,
                [
                    (e.path, e.kind, e.mode, e.mtime_ns, e.size, e.content, e.target)
                    for e in entries
                ],
            )
    return PutResult(v.name, number, v.kind, v.size, v.file_count, v.cid, 0, 0, 0)
