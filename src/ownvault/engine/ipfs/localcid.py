"""The CID of a local file or directory tree, as ``ipfs add [-r]`` computes it.

The walk follows Kubo's ``ipfs add -r`` (boxo ``files.NewSerialFile``):

* entries of a directory are visited in sorted order (the directory node sorts links by
  UTF-8 name bytes anyway);
* names starting with ``.`` are skipped unless ``hidden=True`` (Kubo's ``--hidden``); the
  path given on the command line itself is always added;
* symbolic links are not followed: each becomes a UnixFS symlink node holding the link
  target (Kubo does the same, also for the top-level path);
* regular files are imported with :class:`~ownvault.core.unixfs.FileImporter`, reading
  in chunk-aligned slices without copying; directories, empty ones included, become
  UnixFS directories (HAMT above the profile's threshold);
* sockets, FIFOs and devices are refused (UsageError), as are names that are not UTF-8.

Synchronous and CPU-bound (hashing): async callers run it with ``asyncio.to_thread``.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from ownvault.core.cid import CID
from ownvault.core.unixfs import (
    BlockSink,
    DirEntry,
    FileImporter,
    ImportProfile,
    build_directory,
    symlink_block,
)
from ownvault.errors import UsageError

__all__ = ["MAX_DEPTH", "PathRoot", "cid_of_path", "import_file"]

MAX_DEPTH = 512
_READ = 4 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class PathRoot:
    """The root of an added path. ``size`` = total bytes of the regular files in it."""

    cid: CID
    tsize: int
    size: int
    kind: str  # "file", "directory" or "symlink"
    files: int
    directories: int
    profile: ImportProfile


@dataclass
class _Count:
    size: int = 0
    files: int = 0
    directories: int = 0


def import_file(
    path: Path | str, profile: ImportProfile, on_block: BlockSink | None = None
) -> tuple[CID, int, int]:
    """Import one regular file; return (CID, tsize, size)."""
    importer = FileImporter(profile, on_block)
    step = max(profile.chunk_size, (_READ // profile.chunk_size) * profile.chunk_size)
    buf = bytearray(step)
    view = memoryview(buf)
    with open(path, "rb", buffering=0) as fh:
        while True:
            n = fh.readinto(buf)
            if not n:
                break
            importer.update(view[:n])
    root = importer.finish()
    return root.cid, root.tsize, root.size


def _add(
    path: str,
    st: os.stat_result,
    profile: ImportProfile,
    hidden: bool,
    on_block: BlockSink | None,
    count: _Count,
    depth: int,
) -> tuple[CID, int, bool]:
    mode = st.st_mode
    if stat.S_ISLNK(mode):
        cid, block = symlink_block(os.fsencode(os.readlink(path)), profile)
        if on_block is not None:
            on_block(cid, block)
        return cid, len(block), False
    if stat.S_ISREG(mode):
        cid, tsize, size = import_file(path, profile, on_block)
        count.files += 1
        count.size += size
        return cid, tsize, False
    if stat.S_ISDIR(mode):
        if depth > MAX_DEPTH:
            raise UsageError(f"directory tree deeper than {MAX_DEPTH} levels at {path}")
        count.directories += 1
        entries = []
        with os.scandir(path) as it:
            children = sorted(it, key=lambda e: os.fsencode(e.name))
        for child in children:
            if not hidden and child.name.startswith("."):
                continue
            cst = child.stat(follow_symlinks=False)
            cid, tsize, is_dir = _add(child.path, cst, profile, hidden, on_block, count, depth + 1)
            entries.append(DirEntry(child.name, cid, tsize, is_dir))
        root = build_directory(entries, profile, on_block)
        return root.cid, root.tsize, True
    raise UsageError(f"cannot add {path}: not a regular file, directory or symlink")


def cid_of_path(
    path: Path | str,
    profile: ImportProfile,
    *,
    hidden: bool = False,
    on_block: BlockSink | None = None,
) -> PathRoot:
    """The CID ``ipfs add -r PATH`` (with ``profile``'s settings) would print."""
    text = os.fspath(path)
    try:
        st = os.lstat(text)
    except FileNotFoundError:
        raise UsageError(f"no such file or directory: {text}") from None
    except OSError as exc:
        raise UsageError(f"cannot read {text}: {exc.strerror}") from None
    count = _Count()
    try:
        cid, tsize, is_dir = _add(text, st, profile, hidden, on_block, count, 0)
    except OSError as exc:
        raise UsageError(f"cannot read {exc.filename or text}: {exc.strerror}") from None
    kind = "directory" if is_dir else "symlink" if stat.S_ISLNK(st.st_mode) else "file"
    return PathRoot(cid, tsize, count.size, kind, count.files, count.directories, profile)
