"""The values the drive (:mod:`ownvault.engine.files.drive`) hands its front ends: what a
path is (:class:`Node`), a file being written (:class:`WriteHandle`), its options and its
refusals (:class:`DriveError`, with an errno), and how a drive path splits into names."""

from __future__ import annotations

import errno
import time
from dataclasses import dataclass, field
from typing import Literal

from ownvault.engine.files.driveio import Spool
from ownvault.engine.store.ingest import utf8_ok
from ownvault.errors import UsageError

__all__ = ["VERSIONS", "DriveError", "DriveOptions", "Node", "NodeKind", "WriteHandle", "split"]

VERSIONS = ".versions"
NodeKind = Literal["file", "dir", "symlink"]


class DriveError(UsageError):
    """An operation the drive refuses; ``errno`` says which (EROFS, EEXIST, ENOTEMPTY,
    EISDIR, ENOTDIR, EINVAL, EBUSY)."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.errno = code


@dataclass(frozen=True, slots=True)
class DriveOptions:
    """``cache_mib``: decoded packs kept for reads; ``readahead_mib``: fetched ahead of a
    sequential reader; ``spool_mib``: bytes being written at once; ``read_only``."""

    cache_mib: int = 64
    readahead_mib: int = 8
    spool_mib: int = 1024
    read_only: bool = False


@dataclass(frozen=True, slots=True)
class Node:
    """One thing the drive shows. ``etag`` derives from the content (its CID when known)."""

    path: str
    kind: NodeKind
    size: int
    mtime_ns: int
    mode: int
    etag: str
    writable: bool
    obj: str | None = None  # the stored name, when this node is a whole stored object
    version: int | None = None  # the catalog version id holding it
    inner: str = ""  # its path inside that version ("" for the object itself)
    target: str | None = None


@dataclass
class WriteHandle:
    """A file open for writing; all handles of one path share one spool."""

    path: str
    spool: Spool
    refs: int = 1
    stored: bool = False  # has a version of this spool been stored yet
    opened_ns: int = field(default_factory=time.time_ns)


def split(path: str) -> list[str]:
    """A drive path as segments; "" or "/" is the root. Refuses what no name may hold."""
    clean = path.strip("/")
    if not clean:
        return []
    parts = clean.split("/")
    for seg in parts:
        if seg in ("", ".", ".."):
            raise DriveError(f"invalid path: {path!r:.80}", errno.EINVAL)
        if not utf8_ok(seg):
            raise DriveError(f"not valid UTF-8: {path!r:.80}", errno.EINVAL)
    return parts
