"""The drive's own catalog queries (engine/files/drive.py): one entry of a version by its
exact path (the primary key, where ``Catalog.entries`` scans a prefix), renames, and a
generation number that says when what a listing showed may have changed."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ownvault.engine.store.catalog.rows import EntryRow
from ownvault.errors import NotFoundError, VaultStateError

if TYPE_CHECKING:
    from ownvault.engine.store.catalog import Catalog

__all__ = ["catalog_generation", "entry_at", "rename_objects"]


def catalog_generation(catalog: Catalog) -> tuple[int, int]:
    """Changes when anything in the catalog changed: a commit by another connection
    (``PRAGMA data_version``, e.g. a CLI command during a mount) or by this one."""
    (version,) = catalog.conn.execute("PRAGMA data_version").fetchone()
    return int(version), catalog.conn.total_changes


def entry_at(catalog: Catalog, version: int, path: str) -> EntryRow | None:
    """The entry at exactly ``path`` in ``version`` ("" for a file version), or None."""
    row = catalog.conn.execute(
        "SELECT e.path, e.kind, e.mode, e.mtime_ns, e.size, e.content, e.target, c.cid "
        "FROM entries e LEFT JOIN contents c ON c.id = e.content "
        "WHERE e.version = ? AND e.path = ?",
        (version, path),
    ).fetchone()
    return None if row is None else EntryRow(*row)


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
