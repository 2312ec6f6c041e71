"""Renaming stored names (the drive's rename): SQL kept in the catalog package."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ownvault.errors import NotFoundError, VaultStateError

if TYPE_CHECKING:
    from ownvault.engine.store.catalog import Catalog

__all__ = ["rename_objects"]


def rename_objects(
    catalog: Catalog, moves: list[tuple[str, str]], replacing: str | None = None
) -> None:
    """Give stored names (each with all its versions and tags) new names, in one
    transaction; ``replacing``: a name removed first (a rename over an existing file)."""
    with catalog.transaction() as c:
        if replacing is not None:
            c.execute("DELETE FROM objects WHERE name = ?", (replacing,))
        for old, new in moves:
            if catalog.object_id(new) is not None:
                raise VaultStateError(f"{new} exists already")
            if c.execute("UPDATE objects SET name = ? WHERE name = ?", (new, old)).rowcount != 1:
                raise NotFoundError(f"no such file in the vault: {old}", name=old)
        c.execute(
            "DELETE FROM contents WHERE id NOT IN "
            "(SELECT content FROM entries WHERE content IS NOT NULL)"
        )
