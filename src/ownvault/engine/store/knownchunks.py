"""The chunks a put need not store again (``engine.store.ingest``)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from ownvault.engine.store.catalog import Catalog

__all__ = ["PRELOAD_AFTER", "PRELOAD_MAX", "PRELOAD_RATIO", "KnownChunks"]

PRELOAD_AFTER = 256  # lookups one by one before a put considers loading every id
PRELOAD_RATIO = 4  # ... which it does if the vault has at most this many per lookup to come
PRELOAD_MAX = 250_000  # ... and at most this many chunk rows (about 25 MB of ids)


@dataclass
class KnownChunks:
    """Chunks a put need not store again: in a live pack (looked up one by one as the put
    meets them: loading all ids made a one-file put O(vault)) or stored by this put.

    A put that will look up about as many chunks as the vault holds (:meth:`expect`: the
    first put of a tree of many small files) loads every live chunk id in one query after
    ``PRELOAD_AFTER`` lookups, and then answers a miss without a query: under the write
    lock only this put makes a chunk live, and it adds each one (:meth:`update`) when its
    pack is. A put whose files the files cache knows looks nothing up and loads nothing."""

    catalog: Catalog
    referenced: bool = False  # ``PackTables.live_chunk``
    found: set[bytes] = field(default_factory=set)
    loaded: bool = False  # every live chunk is in ``found``
    expected: int = 0  # lookups the put expects in all (:meth:`expect`)
    asked: int = 0  # lookups made one by one

    def expect(self, lookups: int) -> None:
        """About ``lookups`` chunks will be looked up (at most: files the files cache knows
        are not)."""
        self.expected = lookups

    def __contains__(self, chunk_id: bytes) -> bool:
        if chunk_id in self.found:
            return True
        if self.loaded:
            return False
        self.asked += 1
        if self.asked == PRELOAD_AFTER and self._preload():
            return chunk_id in self.found
        if self.catalog.packs.live_chunk(chunk_id, referenced=self.referenced):
            self.found.add(chunk_id)
            return True
        return False

    def _preload(self) -> bool:
        """Load every live chunk id if the vault holds at most ``PRELOAD_RATIO`` times the
        lookups still to come (and at most ``PRELOAD_MAX``); whether it did."""
        bound = self.catalog.packs.chunk_bound()
        if bound > min(PRELOAD_MAX, PRELOAD_RATIO * (self.expected - self.asked)):
            return False
        self.found.update(self.catalog.packs.live_chunk_ids(referenced=self.referenced))
        self.loaded = True
        return True

    def update(self, ids: Iterable[bytes]) -> None:
        self.found.update(ids)
