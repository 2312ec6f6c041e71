"""Listing what a vault holds from its local catalog alone: ``ls`` and ``du``.

The local catalog is plaintext SQLite (docs/design.md, "Threat model": anyone who can read
the vault folder can read names, sizes, times, tags and CIDs), so listing it needs no key:
:func:`open_listing` opens the catalog of a vault folder without the passphrase, and imports
neither the crypto libraries nor the share store (a short command starts faster).
:class:`~ownvault.engine.files.service.Files` answers ``ls`` and ``du`` with the same
functions on an unlocked vault.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from ownvault.engine.files.results import (
    KN,
    EntryInfo,
    ObjectInfo,
    ObjectListing,
    TreeListing,
    Usage,
)
from ownvault.engine.store.catalog import Catalog
from ownvault.engine.store.layout import read_marker, secure_vault_dir
from ownvault.engine.store.names import resolve_version
from ownvault.engine.store.placement import Policy
from ownvault.errors import NotFoundError, UsageError

__all__ = ["list_objects", "open_listing", "usage"]


def list_objects(catalog: Catalog, prefix: str = "") -> ObjectListing | TreeListing:
    """Objects whose name starts with ``prefix``, or the entries of a tree path."""
    clean = prefix.strip("/")
    if clean:
        try:
            v, inner = resolve_version(catalog, clean, None)
        except (NotFoundError, UsageError):
            v = None
            inner = ""
        if v is not None and v.kind == "tree":
            sub = inner + "/" if inner else ""
            entries = [
                e
                for e in catalog.entries(v.id, sub)
                if e.path != inner and "/" not in e.path[len(sub) :]
            ]
            return TreeListing(v.name, v.number, inner, [EntryInfo.of(e) for e in entries])
    counts = catalog.version_counts()
    out = []
    for v in catalog.latest_versions(prefix):
        obj = catalog.object_id(v.name)
        tags = catalog.tags(obj) if obj else []
        out.append(ObjectInfo.of(v, tags, counts.get(v.name, 0)))
    return ObjectListing(out)


def usage(catalog: Catalog) -> Usage:
    """Usage. ``expansion`` is stored bytes per unique plaintext byte: everything a byte
    costs on the providers (encryption, pack padding, erasure coding, share headers and
    Merkle trees), not only the k/n ratio."""
    u = catalog.usage.totals()
    unique = u["unique_bytes"]
    policy = Policy.from_json(catalog.meta("policy") or "")
    return Usage(
        objects=u["objects"],
        versions=u["versions"],
        logical_bytes=u["logical_bytes"],
        latest_logical_bytes=u["latest_logical_bytes"],
        unique_bytes=unique,
        packed_bytes=u["packed_bytes"],
        stored_bytes=u["stored_bytes"],
        chunks=u["chunks"],
        packs=u["packs"],
        dedup_ratio=round(u["logical_bytes"] / unique, 4) if unique else 1.0,
        expansion=round(u["stored_bytes"] / unique, 4) if unique else 0.0,
        policy=KN(policy.k, policy.n),
    )


@contextlib.contextmanager
def open_listing(path: str | os.PathLike[str]) -> Iterator[Catalog]:
    """The catalog of the vault at ``path``, opened without its keys (the same checks of
    the folder as ``Vault.open``: the marker, private modes, no symlinked vault files)."""
    root = Path(path).absolute()
    read_marker(root)
    secure_vault_dir(root)
    catalog = Catalog.open(root / "catalog.db")
    try:
        yield catalog
    finally:
        catalog.close()
