"""Directories made durably: what a local folder provider and a storage node both need
before they link an object into a directory (the object's own fsync does not keep a
directory that was created for it: that one must be fsynced into its parent)."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

__all__ = ["fsync_dir", "make_dirs"]


def fsync_dir(path: Path) -> None:
    """fsync the directory ``path`` (its entries: a link, a rename, a new subdirectory)."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def make_dirs(directory: Path) -> None:
    """Make ``directory`` and its missing parents, each one created fsynced into its parent:
    else an object linked into it could vanish with it after a crash, although the object's
    own directory was fsynced."""
    missing: list[Path] = []
    d = directory
    while not d.is_dir():
        missing.append(d)
        d = d.parent
    for d in reversed(missing):
        with contextlib.suppress(FileExistsError):
            os.mkdir(d)
        fsync_dir(d.parent)
