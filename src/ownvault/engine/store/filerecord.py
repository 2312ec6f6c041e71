"""What the put pipeline (``engine.store.ingest``) makes of a file: its record for the
catalog, and the loads and reads of the small files batched by ``engine.store.treeread``."""

from __future__ import annotations

import os
from dataclasses import dataclass

from ownvault.core.cid import CID

__all__ = ["FileRecord", "SealedPack", "SmallLoad", "SmallRead", "identity"]

# a pack lent by the builder, and its chunks (chunk id, offset, blob length, plain
# length, wrapped key): ``engine.store.ingest``'s ``_SealedPack``
SealedPack = tuple[memoryview, list[tuple[bytes, int, int, int, bytes]]]


@dataclass(slots=True)
class FileRecord:
    """A stored byte stream, waiting to be inserted into the catalog.

    ``mode`` and ``mtime_ns`` are the file's as it was read (not as it was scanned);
    ``changed``: the file kept changing while it was read, on every try (stored torn)."""

    size: int
    cid: str
    cid_profile: str
    tsize: int
    chunk_ids: list[bytes]
    chunk_lens: list[int]
    mode: int = 0
    mtime_ns: int = 0
    changed: bool = False
    root: CID | None = None  # ``cid`` parsed, when it is at hand (a tree's CID needs it)


@dataclass(frozen=True, slots=True)
class SmallLoad:
    """A small file as :meth:`Ingestor.load_small` read it: ``fstat`` before and after the
    read, the bytes (None: not read, it grew since the scan), the name's ``lstat`` after."""

    before: os.stat_result
    data: bytes | None
    after: os.stat_result
    now: os.stat_result | None


@dataclass(slots=True)
class SmallRead:
    """What :meth:`Ingestor.read_small` left: the file as read (None: it grew past one
    block, read it on its own), whether it held still, the packs that filled up (to be
    uploaded by the event loop), the bytes read, and the ``lstat`` after the read."""

    record: FileRecord | None
    stable: bool
    full: list[SealedPack]
    nread: int
    after: os.stat_result | None


def identity(st: os.stat_result) -> tuple[int, int, int, int, int]:
    """What must not change while a file is read: (device, inode, size, mtime, ctime)."""
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
