"""Listing what a vault holds from its local catalog alone: ``ls`` and ``du``.

The local catalog is plaintext SQLite (docs/design.md, "Threat model": anyone who can read
the vault folder can read names, sizes, times, tags and CIDs), so listing it needs no key:
:func:`open_listing` opens the catalog of a vault folder without the passphrase, and imports
neither the crypto libraries nor the share store (a short command starts faster).
:class:`~ownvault.engine.files.service.Files` answers ``ls`` and ``du`` with the same
functions on an unlocked vault.

Every command first pulls what other devices committed (docs/design.md, "Catalog journal
and multi-device merge"), and a pull opens sealed records, which takes the keys. So
``ls`` and ``du`` first ask :func:`journal_behind`, which reads only names: when every
provider is a local folder and none holds a journal record past this device's heads, the
catalog is current and is listed without the passphrase; otherwise the command unlocks,
pulls and lists like any other.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from ownvault.engine.store.catalog import Catalog
from ownvault.engine.store.layout import read_marker, secure_vault_dir
from ownvault.engine.store.names import resolve_version
from ownvault.engine.store.placement import Policy
from ownvault.errors import NotFoundError, OwnvaultError, UsageError
from ownvault.providers.localnames import local_path_of, object_path

if TYPE_CHECKING:  # the result types: made by list_objects and usage, not by a put (reput)
    from ownvault.engine.files.results import ObjectListing, TreeListing, Usage

__all__ = ["journal_behind", "list_objects", "open_listing", "usage"]

_DEVICE = re.compile(r"[0-9a-f]{32}\Z")
_SEQ = re.compile(r"[0-9a-f]{16}\Z")


def list_objects(catalog: Catalog, prefix: str = "") -> ObjectListing | TreeListing:
    """Objects whose name starts with ``prefix``, or the entries of a tree path."""
    from ownvault.engine.files.results import (  # noqa: PLC0415 - see the imports
        EntryInfo,
        ObjectInfo,
        ObjectListing,
        TreeListing,
    )

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
    from ownvault.engine.files.results import KN, Usage  # noqa: PLC0415 - see the imports

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


def journal_behind(catalog: Catalog, vault: Path) -> str | None:
    """Why this catalog may be behind what the providers hold, or None when it is not.

    Names only, no key: a provider that is not a local folder (listing it takes the
    vault's keys or the network), an append of this device left pending, or a journal
    record of any device past the head held here."""
    rows = catalog.providers()
    remote = [p.name for p in rows if p.kind != "local"]
    if remote:
        return f"provider {remote[0]} is not a local folder"
    if catalog.journal.pending() is not None:
        return "an append of this device is pending"
    heads = catalog.journal.heads()
    for row in rows:
        try:
            top = _journal_tops(object_path(local_path_of(row.url, vault), "journal"))
        except (OSError, OwnvaultError) as exc:
            return f"provider {row.name} could not be listed ({exc})"
        for device, seq in top.items():
            head = heads.get(device)
            if head is None or seq > head.seq:
                return f"provider {row.name} holds newer journal records"
    return None


def _journal_tops(journal: Path) -> dict[bytes, int]:
    """Each device's highest record seq in a local folder's ``journal/`` (names only)."""
    tops: dict[bytes, int] = {}
    if not journal.is_dir():
        return tops
    with os.scandir(journal) as devices:
        for d in devices:
            if not (_DEVICE.match(d.name) and d.is_dir(follow_symlinks=False)):
                continue
            with os.scandir(d.path) as records:
                seqs = [int(r.name, 16) for r in records if _SEQ.match(r.name)]
            if seqs:
                tops[bytes.fromhex(d.name)] = max(seqs)
    return tops
