"""What a put reports, and when a put changes nothing.

A put whose tree is exactly the latest version of its name -- every entry's path, kind,
mode, mtime, size, symlink target and content CID the same -- and that adds no tag makes
no new version: it writes nothing to the catalog's namespace, so nothing to the journal
or the providers either, and reports that latest version (``new_version`` False). As
restic's ``backup --skip-if-unchanged``; docs/design.md, "Files cache" (unchanged puts).

Apart from :mod:`engine.store.versions` (the put pipeline) so that the put the files
cache finds unchanged (``engine.files.reput``) needs neither the pipeline nor the keys.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from ownvault.engine.store.catalog import Catalog, EntryRow, VersionRow
from ownvault.errors import NotFoundError

__all__ = ["EntryKey", "ObjectKind", "PutResult", "latest_if_same"]

ObjectKind = Literal["file", "tree"]

# What an entry of a version is compared by: path, kind, mode, mtime_ns, size, target and
# the CID of its content (None for directories and symlinks).
EntryKey = tuple[str, str, int, int, int, str | None, str | None]


@dataclass(frozen=True, slots=True)
class PutResult:
    name: str
    version: int
    kind: ObjectKind
    size: int
    files: int
    cid: str | None
    new_bytes: int
    new_chunks: int
    packs: int
    warnings: tuple[str, ...] = ()
    # Files the files cache knew unchanged (not read), and the bytes read from files.
    unchanged: int = 0
    read_bytes: int = 0
    # Pieces written with fewer than n shares (at least the policy's happy): {"pack",
    # "placed", "wanted", "missing"}; repair completes them (catalog.underrep).
    under_replicated: tuple[dict[str, Any], ...] = ()
    # False: the tree was the latest version already, and no version was made.
    new_version: bool = True

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "kind": self.kind,
            "size": self.size,
            "files": self.files,
            "cid": self.cid,
            "new_bytes": self.new_bytes,
            "new_chunks": self.new_chunks,
            "packs": self.packs,
            "unchanged": self.unchanged,
            "read_bytes": self.read_bytes,
            "new_version": self.new_version,
            "warnings": list(self.warnings),
            "under_replicated": list(self.under_replicated),
        }


def entry_key(e: EntryRow) -> EntryKey:
    return (e.path, e.kind, e.mode, e.mtime_ns, e.size, e.target, e.cid)


def latest_if_same(
    catalog: Catalog,
    name: str,
    kind: str,
    entries: Iterable[EntryKey],
    tags: Sequence[str],
    cid_profile: str,
) -> tuple[VersionRow, list[EntryRow]] | None:
    """The latest version of ``name`` and its entries if a put of ``entries`` (of an
    object of ``kind``, CIDs of ``cid_profile``) with ``tags`` would change nothing: the
    same entries, every file with a content CID, and every tag there already. Else None."""
    try:
        latest = catalog.version(name)
    except NotFoundError:
        return None
    if latest.kind != kind or (latest.cid is not None and latest.cid_profile != cid_profile):
        return None
    obj = catalog.object_id(name)
    if obj is None or not set(tags) <= set(catalog.tags(obj)):
        return None
    rows = catalog.entries(latest.id)
    have = {e.path: entry_key(e) for e in rows}
    count = 0
    for key in entries:
        count += 1
        if have.get(key[0]) != key or (key[1] == "file" and key[6] is None):
            return None
    return (latest, rows) if count == len(have) else None
