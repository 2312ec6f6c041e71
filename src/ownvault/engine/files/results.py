"""What the files feature answers: stored names, versions, tree entries, restores, usage.

Frozen values whose fields are the JSON documents' keys (``ownvault ls --json``, the API's
``/files`` routes), so a result turns into its document field by field.
"""

from __future__ import annotations

from dataclasses import dataclass

from ownvault.engine.store.catalog import EntryRow, VersionRow
from ownvault.engine.store.catalog.rows import EntryKind, VersionKind

__all__ = [
    "KN",
    "EntryInfo",
    "ObjectInfo",
    "ObjectListing",
    "Removed",
    "Restored",
    "StatInfo",
    "TreeListing",
    "Usage",
    "VersionInfo",
]


@dataclass(frozen=True, slots=True)
class VersionInfo:
    """One version of a stored name; ``files`` counts the files of a tree (1 for a file)."""

    name: str
    version: int
    kind: VersionKind
    size: int
    files: int
    created: int
    cid: str | None
    cid_profile: str | None

    @classmethod
    def of(cls, v: VersionRow) -> VersionInfo:
        return cls(
            v.name, v.number, v.kind, v.size, v.file_count, v.created_at, v.cid, v.cid_profile
        )


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    """A stored name as listed: its latest version, its tags, how many versions it has."""

    name: str
    version: int
    kind: VersionKind
    size: int
    files: int
    created: int
    cid: str | None
    cid_profile: str | None
    tags: list[str]
    versions: int

    @classmethod
    def of(cls, v: VersionRow, tags: list[str], versions: int) -> ObjectInfo:
        return cls(
            v.name,
            v.number,
            v.kind,
            v.size,
            v.file_count,
            v.created_at,
            v.cid,
            v.cid_profile,
            tags,
            versions,
        )


@dataclass(frozen=True, slots=True)
class ObjectListing:
    objects: list[ObjectInfo]


@dataclass(frozen=True, slots=True)
class EntryInfo:
    """An entry of a stored tree; ``mode`` in octal text (``0o644``)."""

    path: str
    kind: EntryKind
    mode: str
    mtime_ns: int
    size: int
    cid: str | None
    target: str | None

    @classmethod
    def of(cls, e: EntryRow) -> EntryInfo:
        return cls(e.path, e.kind, oct(e.mode), e.mtime_ns, e.size, e.cid, e.target)


@dataclass(frozen=True, slots=True)
class TreeListing:
    """The entries directly under ``path`` in version ``version`` of the tree ``tree``."""

    tree: str
    version: int
    path: str
    entries: list[EntryInfo]


@dataclass(frozen=True, slots=True)
class StatInfo:
    """One stored name, or a path inside a stored tree: its version and its entry."""

    name: str
    version: int
    created: int
    path: str
    kind: EntryKind
    mode: str
    mtime_ns: int
    size: int
    cid: str | None
    target: str | None


@dataclass(frozen=True, slots=True)
class Restored:
    """Where ``get`` wrote a version (or a path in it): files and bytes written."""

    name: str
    version: int
    path: str
    files: int
    bytes: int


@dataclass(frozen=True, slots=True)
class Removed:
    name: str
    versions_removed: int
    packs_deleted: int


@dataclass(frozen=True, slots=True)
class KN:
    """The erasure-coding policy: any ``k`` of ``n`` shares restore a pack."""

    k: int
    n: int


@dataclass(frozen=True, slots=True)
class Usage:
    """Catalog totals; ``expansion`` is stored bytes per unique plaintext byte."""

    objects: int
    versions: int
    logical_bytes: int
    latest_logical_bytes: int
    unique_bytes: int
    packed_bytes: int
    stored_bytes: int
    chunks: int
    packs: int
    dedup_ratio: float
    expansion: float
    policy: KN
