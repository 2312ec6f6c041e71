"""The chunks a put need not store again (``engine.store.ingest``)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from ownvault.engine.store.catalog import Catalog

__all__ = ["KnownChunks"]


@dataclass
class KnownChunks:
    """Chunks a put need not store again: in a live pack (looked up one by one as the put
    meets them: loading all ids made a one-file put O(vault)) or stored by this put."""

    catalog: Catalog
    referenced: bool = False  # ``PackTables.live_chunk``
    found: set[bytes] = field(default_factory=set)

    def __contains__(self, chunk_id: bytes) -> bool:
        if chunk_id in self.found:
            return True
        if self.catalog.packs.live_chunk(chunk_id, referenced=self.referenced):
            self.found.add(chunk_id)
            return True
        return False

    def update(self, ids: Iterable[bytes]) -> None:
        self.found.update(ids)
