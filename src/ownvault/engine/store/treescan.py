"""Scanning a file or directory tree for a put: its entries by path, symlinks recorded and
not followed. Apart from :mod:`engine.store.treeread` (which reads what a scan found through
the put pipeline) so that a put the files cache finds unchanged can scan without loading the
pipeline (``engine.files.reput``; docs/design.md, "Files cache").
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from ownvault.errors import UsageError

__all__ = ["SCANNERS", "TreeEntry", "scan_path", "utf8_ok"]

SCANNERS = 3  # threads listing directories for the scan


def utf8_ok(text: str) -> bool:
    """Whether a name from the file system is valid UTF-8 (``os`` decodes the others with
    surrogate escapes)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


@dataclass(frozen=True, slots=True)
class TreeEntry:
    path: str  # relative, "/"-separated; "" for the root of a tree or a single file
    kind: str  # file | dir | symlink
    source: Path
    mode: int
    mtime_ns: int
    size: int
    target: str | None = None


def _show(path: str) -> str:
    """A path for a message: bytes that are not UTF-8 shown as ``\\xNN``."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def scan_path(
    path: Path, warn: Callable[[str], None], skip: Callable[[str, bool], bool] | None = None
) -> list[TreeEntry]:
    """The entries of a file or a directory tree, sorted by path; symlinks not followed.
    ``skip(relative_path, is_dir)`` leaves an entry out (a directory with all below it).
    Directories are listed (``scandir``, an ``lstat`` per entry) by :data:`SCANNERS`
    threads, each as soon as its parent's listing is taken (the syscalls run without the
    GIL, and a cold cache gets many inode reads at a time); this thread takes the listings
    in order, so entries, warnings and errors come as from one walk."""
    try:
        st = path.lstat()
    except FileNotFoundError:
        raise UsageError(f"no such file or directory: {path}") from None
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from None
    if stat.S_ISREG(st.st_mode):
        return [TreeEntry("", "file", path, stat.S_IMODE(st.st_mode), st.st_mtime_ns, st.st_size)]
    if not stat.S_ISDIR(st.st_mode):
        raise UsageError(f"not a regular file or directory: {path}")
    out = [TreeEntry("", "dir", path, stat.S_IMODE(st.st_mode), st.st_mtime_ns, 0)]
    pool = ThreadPoolExecutor(SCANNERS, "scan")
    try:
        _walk(_Walk(pool, out, warn, skip), pool.submit(_listing, path), path, "")
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    return out


@dataclass(frozen=True, slots=True)
class _Item:
    """One entry of a directory as a scan thread found it: its ``lstat`` (or the error),
    and a symlink's target (or the error reading it)."""

    name: str
    path: str
    st: os.stat_result | None
    error: OSError | None
    target: str | None = None


@dataclass(frozen=True, slots=True)
class _Walk:
    pool: ThreadPoolExecutor
    out: list[TreeEntry]
    warn: Callable[[str], None]
    skip: Callable[[str, bool], bool] | None


def _listing(directory: Path) -> list[_Item]:
    """In a scan thread: ``directory``'s entries by name, each with its ``lstat``."""
    out: list[_Item] = []
    for item in sorted(os.scandir(directory), key=lambda e: e.name):
        try:
            st = item.stat(follow_symlinks=False)
        except OSError as exc:
            out.append(_Item(item.name, item.path, None, exc))
            continue
        if stat.S_ISLNK(st.st_mode):
            try:
                out.append(_Item(item.name, item.path, st, None, os.readlink(item.path)))
            except OSError as exc:
                out.append(_Item(item.name, item.path, st, exc))
            continue
        out.append(_Item(item.name, item.path, st, None))
    return out


def _walk(w: _Walk, listing: Future[list[_Item]], directory: Path, rel: str) -> None:
    """Take ``directory``'s listing: first decide what is skipped and start listing the
    subdirectories kept, then record the entries in order, descending into each."""
    try:
        items = listing.result()
    except OSError as exc:
        raise UsageError(f"cannot list {directory}: {exc.strerror}") from None
    rels = [f"{rel}/{item.name}" if rel else item.name for item in items]
    kept: list[bool] = []
    below: dict[int, Future[list[_Item]]] = {}
    for n, item in enumerate(items):
        st = item.st
        keep = st is not None and utf8_ok(item.name)
        if keep and st is not None and w.skip is not None:
            keep = not w.skip(rels[n], stat.S_ISDIR(st.st_mode))
        kept.append(keep)
        if keep and st is not None and stat.S_ISDIR(st.st_mode):
            below[n] = w.pool.submit(_listing, Path(item.path))
    for n, item in enumerate(items):
        if not utf8_ok(item.name):
            w.warn(f"skipped (name is not valid UTF-8; rename it to store it): {_show(item.path)}")
            continue
        if item.error is not None and item.st is None:
            raise item.error
        if not kept[n] or item.st is None:
            continue
        st, child_rel = item.st, rels[n]
        mode = stat.S_IMODE(st.st_mode)
        if stat.S_ISDIR(st.st_mode):
            w.out.append(TreeEntry(child_rel, "dir", Path(item.path), mode, st.st_mtime_ns, 0))
            _walk(w, below[n], Path(item.path), child_rel)
        elif stat.S_ISREG(st.st_mode):
            w.out.append(
                TreeEntry(child_rel, "file", Path(item.path), mode, st.st_mtime_ns, st.st_size)
            )
        elif stat.S_ISLNK(st.st_mode):
            if item.error is not None:
                raise item.error
            assert item.target is not None
            if not utf8_ok(item.target):
                w.warn(f"skipped (symlink target is not valid UTF-8): {_show(item.path)}")
                continue
            w.out.append(
                TreeEntry(
                    child_rel, "symlink", Path(item.path), mode, st.st_mtime_ns, 0, item.target
                )
            )
        else:
            w.warn(f"skipped (not a file, directory or symlink): {item.path}")
