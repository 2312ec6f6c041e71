"""A put that changes nothing, found without the keys: ``ownvault put`` of an unchanged tree.

A put whose every file the files cache knows unchanged, and whose tree is then exactly the
latest version of its name (``engine.store.putresult``), makes no version, reads no file
and writes nothing to the providers. Finding that out needs only what ``ls`` reads: the
local catalog (plaintext on disk, docs/design.md "Threat model") and the files' ``lstat``.
So :func:`unchanged_put` answers it from the catalog alone, as ``ls`` and ``du`` do
(``engine.files.listing``): no passphrase, no Argon2id, no crypto libraries, no event
loop, no put pipeline. Any doubt sends the put down the full path (unlock, pull, put):
a provider that is not a local folder or a journal record of another device not yet
pulled (:func:`~ownvault.engine.files.listing.journal_behind`), another process holding
the vault's write lock, a warning from the scan, a file the cache does not know unchanged,
a tree that differs from the latest version, a tag to add. What it does write is local:
the files cache's ages (``FilesCache.record``, as the full put does), under the write lock.
docs/design.md, "Files cache" (unchanged puts).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from ownvault.core.chunking import ChunkerParams
from ownvault.engine.files.listing import journal_behind, open_listing
from ownvault.engine.store.catalog import Catalog
from ownvault.engine.store.filescache import FilesCacheRun, cache_params, key_of
from ownvault.engine.store.layout import validate_object_name, validate_tag
from ownvault.engine.store.putresult import EntryKey, PutResult, latest_if_same
from ownvault.engine.store.treescan import TreeEntry, scan_path, utf8_ok
from ownvault.errors import NotFoundError, OwnvaultError

__all__ = ["unchanged_put"]


def unchanged_put(
    vault: str | os.PathLike[str],
    paths: Sequence[str | os.PathLike[str]],
    *,
    name: str | None = None,
    tags: Sequence[str] = (),
) -> list[PutResult] | None:
    """The results of ``put`` of ``paths`` if none of them changes anything (each its
    name's latest version, ``new_version`` False), found from the local catalog without
    the keys; None when the put must run in full (see the module docstring)."""
    if not paths or (name is not None and len(paths) != 1):
        return None
    try:
        for t in tags:
            validate_tag(t)
        with open_listing(vault) as catalog, _write_lock(Path(vault).absolute()) as mine:
            if not mine or journal_behind(catalog, Path(vault).absolute()) is not None:
                return None
            return _check(catalog, paths, name, tags)
    except (OwnvaultError, OSError):
        return None  # the full put says what is wrong, with the keys


@contextlib.contextmanager
def _write_lock(vault: Path) -> Iterator[bool]:
    """``VAULT/lock`` as the engine's ``WriteLock`` takes it (flock, not waiting); yields
    whether this process holds it."""
    fd = os.open(vault / "lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)


def _check(
    catalog: Catalog,
    paths: Sequence[str | os.PathLike[str]],
    name: str | None,
    tags: Sequence[str],
) -> list[PutResult] | None:
    profile = catalog.meta("cid_profile")  # set by Vault.create
    if profile is None:
        return None
    chunker = ChunkerParams.from_json(catalog.meta_json("chunker"))
    params = cache_params(profile, chunker)  # a name no put wrote matches no cache row
    found: list[tuple[PutResult, FilesCacheRun]] = []
    for p in paths:
        path = Path(p)
        base = path.absolute().name
        if name is None and not utf8_ok(base):
            return None
        obj_name = validate_object_name(name if name is not None else base)
        if not _may_be_unchanged(catalog, obj_name, tags):
            return None  # before the scan: the full put scans the tree again
        warnings: list[str] = []
        entries = scan_path(path, warnings.append)
        if warnings:
            return None
        cache = FilesCacheRun(catalog, path, params, time.time)
        keys = _hits(cache, entries)
        if keys is None:
            return None
        kind = "tree" if entries[0].kind == "dir" else "file"
        same = latest_if_same(catalog, obj_name, kind, keys, tags, profile)
        if same is None:
            return None
        v = same[0]
        result = PutResult(
            v.name, v.number, v.kind, v.size, v.file_count, v.cid, 0, 0, 0,
            unchanged=cache.hits, new_version=False,
        )  # fmt: skip
        found.append((result, cache))
    with catalog.transaction():
        for _result, cache in found:
            cache.commit({})
    return [result for result, _cache in found]


def _may_be_unchanged(catalog: Catalog, name: str, tags: Sequence[str]) -> bool:
    """Whether a put of ``name`` with ``tags`` can be unchanged at all, from the catalog
    alone: ``name`` has a version and every tag already (as ``latest_if_same`` asks).
    The first put of a name (of every name, in a new vault) or a put adding a tag is
    answered before the scan, which would otherwise list and ``lstat`` the whole tree
    for the full put to do it again (a third of a second on 10,000 files)."""
    try:
        catalog.version(name)
    except NotFoundError:
        return False
    obj = catalog.object_id(name)
    return obj is not None and set(tags) <= set(catalog.tags(obj))


def _hits(cache: FilesCacheRun, entries: list[TreeEntry]) -> list[EntryKey] | None:
    """Every entry as the latest version would hold it, each file from its files-cache
    hit; None if a file is not a hit."""
    files = [e for e in entries if e.kind == "file"]
    keys = [key_of(e.source) for e in files]
    known = cache.candidates(keys)
    out: list[EntryKey] = []
    it = iter(keys)
    for e in entries:
        if e.kind != "file":
            out.append((e.path, e.kind, e.mode, e.mtime_ns, e.size, e.target, None))
            continue
        probe = cache.probe(next(it), e.source, known)
        if probe.hit is None or probe.ident is None:
            return None
        cache.hit(probe)
        out.append(
            (e.path, "file", probe.mode, probe.ident.mtime_ns, probe.hit.size, None, probe.hit.cid)
        )
    return out
