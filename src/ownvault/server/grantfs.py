"""``ownvault open GRANT --mount DIR``: what a grant shares, as a read-only FUSE mount.

The grant's manifest is fixed once opened, so the folder view is built once: each shared
name as a path (its version as shared), a shared tree as a folder of its entries. Reads go
through :meth:`GrantReader.read_range` (k verified shares per pack, each chunk opened with
its key and length-checked), hopping to the loop that opened the grant (:class:`Loop`).
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

from ownvault.engine.sharing.reader import GrantReader
from ownvault.errors import NotFoundError, OwnvaultError
from ownvault.server.fuse import FILE_TYPES, Loop, log_refusal, serve_fuse
from ownvault.server.fuselib import mfusepy

__all__ = ["GrantFS", "mount_grant"]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Entry:
    kind: str  # file, dir, symlink
    size: int
    mtime_ns: int
    mode: int
    name: str = ""  # what read_range is asked for (files)
    target: str = ""


def _int(value: object) -> int:
    return value if isinstance(value, int) and value >= 0 else 0


def folder_view(reader: GrantReader) -> tuple[dict[str, Entry], dict[str, list[str]]]:
    """Every path of the mount (``""`` the root) and each folder's members."""
    nodes: dict[str, Entry] = {"": Entry("dir", 0, 0, 0o555)}
    children: dict[str, list[str]] = {"": []}

    def add(path: str, entry: Entry) -> None:
        parts = path.split("/")
        for i in range(1, len(parts)):  # the folders above it
            folder = "/".join(parts[:i])
            if folder not in nodes:
                nodes[folder] = Entry("dir", 0, 0, 0o555)
                children.setdefault("/".join(parts[: i - 1]), []).append(parts[i - 1])
                children[folder] = []
        if path not in nodes:
            children.setdefault("/".join(parts[:-1]), []).append(parts[-1])
        nodes[path] = entry
        if entry.kind == "dir":
            children.setdefault(path, [])

    for item in reader.items:
        name = item.name.strip("/")
        created = _int(item.created) * 1_000_000_000
        if item.kind != "tree":
            add(name, Entry("file", _int(item.size), created, 0o444, name))
            continue
        add(name, Entry("dir", 0, created, 0o555))
        for e in reader.entries(name):
            if not e.path:
                continue
            path = f"{name}/{e.path}"
            mode = 0o555 if e.kind == "dir" or _int(e.mode) & 0o111 else 0o444
            add(path, Entry(e.kind, _int(e.size), _int(e.mtime_ns), mode, path, e.target or ""))
    return nodes, children


class GrantFS(mfusepy.Operations):  # type: ignore[misc]
    use_ns = True

    def __init__(self, reader: GrantReader, loop: Loop, ready: str | None = None) -> None:
        self.reader = reader
        self.loop = loop
        self.ready = ready
        self.mounted = False  # set by libfuse's init: the mount came up
        self.nodes, self.children = folder_view(reader)
        self.uid, self.gid = os.getuid(), os.getgid()

    def init(self, path: str) -> None:
        self.mounted = True
        if self.ready is not None:
            print(self.ready, flush=True)

    def _node(self, path: str) -> Entry:
        node = self.nodes.get(path.strip("/"))
        if node is None:
            raise mfusepy.FuseOSError(errno.ENOENT)
        return node

    def getattr(self, path: str, fh: int | None = None) -> dict[str, Any]:
        n = self._node(path)
        kind = FILE_TYPES.get(n.kind, stat.S_IFREG)
        size = len(n.target) if n.kind == "symlink" else n.size
        return {"st_mode": kind | n.mode, "st_nlink": 2 if n.kind == "dir" else 1,
                "st_size": size, "st_mtime": n.mtime_ns, "st_ctime": n.mtime_ns,
                "st_atime": n.mtime_ns, "st_uid": self.uid, "st_gid": self.gid}  # fmt: skip

    def readdir(self, path: str, fh: int) -> list[str | tuple[str, dict[str, int], int]]:
        if self._node(path).kind != "dir":
            raise mfusepy.FuseOSError(errno.ENOTDIR)
        here = path.strip("/")
        out: list[str | tuple[str, dict[str, int], int]] = [".", ".."]
        for name in sorted(self.children.get(here, [])):  # with d_type, as VaultFS
            kind = self.nodes[f"{here}/{name}" if here else name].kind
            out.append((name, {"st_mode": FILE_TYPES.get(kind, stat.S_IFREG)}, 0))
        return out

    def readlink(self, path: str) -> str:
        return self._node(path).target

    def open(self, path: str, flags: int) -> int:
        if flags & os.O_ACCMODE != os.O_RDONLY:
            raise mfusepy.FuseOSError(errno.EROFS)
        if self._node(path).kind != "file":
            raise mfusepy.FuseOSError(errno.EISDIR)
        return 0

    def read(self, path: str, size: int, offset: int, fh: int) -> bytes:
        n = self._node(path)
        end = min(n.size, offset + size)
        if offset >= end:
            return b""
        try:
            return self._run(self.reader.read_range(n.name, offset, end))
        except NotFoundError:
            raise mfusepy.FuseOSError(errno.ENOENT) from None
        except OwnvaultError as exc:
            log_refusal(exc.message)
            raise mfusepy.FuseOSError(errno.EIO) from None

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.loop.run(coro)


def mount_grant(reader: GrantReader, loop: Loop, mountpoint: str, *, ready: str | None) -> None:
    """Serve the grant read-only at ``mountpoint`` until it is unmounted."""
    serve_fuse(GrantFS(reader, loop, ready), mountpoint, read_only=True, name="ownvault-grant")
