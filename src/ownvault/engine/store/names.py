"""Resolving a name a user gives to a stored version: a stored name, or a path inside a
stored tree. Used by the vault context and by listing without keys."""

from __future__ import annotations

from ownvault.engine.store.catalog import Catalog, VersionRow
from ownvault.engine.store.layout import validate_object_name
from ownvault.errors import NotFoundError

__all__ = ["resolve_version"]


def resolve_version(
    catalog: Catalog, name: str, number: int | None = None
) -> tuple[VersionRow, str]:
    """The version holding ``name`` and the path inside it ("" for the whole object): a
    stored name, or a path inside a stored tree (the longest stored name before it)."""
    name = validate_object_name(name)
    try:
        return catalog.version(name, number), ""
    except NotFoundError:
        parts = name.split("/")
        for cut in range(len(parts) - 1, 0, -1):
            head = "/".join(parts[:cut])
            if catalog.object_id(head) is None:
                continue
            v = catalog.version(head, number)
            if v.kind == "tree":
                return v, "/".join(parts[cut:])
        raise
