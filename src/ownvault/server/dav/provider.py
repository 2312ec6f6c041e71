"""WsgiDAV resources over the drive (:mod:`ownvault.engine.files.drive`).

WsgiDAV is synchronous (WSGI); it runs in a2wsgi's worker threads. Every drive call hops
to the server's event loop (:class:`Bridge`), where the vault lives: the catalog's SQLite
connection and the providers' clients are used from that loop only.
"""

from __future__ import annotations

import asyncio
import errno
import mimetypes
from collections.abc import Coroutine
from typing import Any, TypeVar

from wsgidav.dav_error import (
    HTTP_CONFLICT,
    HTTP_FORBIDDEN,
    HTTP_INTERNAL_ERROR,
    HTTP_LOCKED,
    HTTP_METHOD_NOT_ALLOWED,
    HTTP_NOT_FOUND,
    DAVError,
)
from wsgidav.dav_provider import DAVCollection, DAVNonCollection, DAVProvider

from ownvault.engine.files.drive import Drive, DriveError, Node, WriteHandle
from ownvault.engine.files.driveio import ReadHandle, SpoolFullError
from ownvault.errors import NotFoundError, OwnvaultError

__all__ = ["Bridge", "VaultDAVProvider"]

T = TypeVar("T")
HTTP_INSUFFICIENT_STORAGE = 507
_STATUS = {
    errno.EROFS: HTTP_FORBIDDEN,
    errno.EINVAL: HTTP_FORBIDDEN,
    errno.EEXIST: HTTP_METHOD_NOT_ALLOWED,
    errno.ENOTEMPTY: HTTP_CONFLICT,
    errno.EISDIR: HTTP_CONFLICT,
    errno.ENOTDIR: HTTP_CONFLICT,
    errno.EBUSY: HTTP_LOCKED,
}


class Bridge:
    """Runs drive coroutines on the server's loop from WsgiDAV's threads, and turns the
    drive's errors into WebDAV statuses."""

    def __init__(self, drive: Drive) -> None:
        self.drive = drive
        self.loop: asyncio.AbstractEventLoop | None = None

    def __call__(self, coro: Coroutine[Any, Any, T]) -> T:
        assert self.loop is not None, "the DAV app sets the loop on its first request"
        try:
            return asyncio.run_coroutine_threadsafe(coro, self.loop).result()
        except NotFoundError as exc:
            raise DAVError(HTTP_NOT_FOUND, exc.message) from None
        except SpoolFullError as exc:
            raise DAVError(HTTP_INSUFFICIENT_STORAGE, exc.message) from None
        except DriveError as exc:
            raise DAVError(_STATUS.get(exc.errno, HTTP_FORBIDDEN), exc.message) from None
        except OwnvaultError as exc:
            raise DAVError(HTTP_INTERNAL_ERROR, exc.message) from None


class VaultDAVProvider(DAVProvider):  # type: ignore[misc]
    """The share ``/`` of the WsgiDAV app: the drive's folders and files."""

    def __init__(self, bridge: Bridge) -> None:
        super().__init__()
        self.bridge = bridge

    def is_readonly(self) -> bool:
        return self.bridge.drive.options.read_only

    def get_resource_inst(
        self, path: str | None, environ: dict[str, Any]
    ) -> VaultCollection | VaultFile | None:
        if path is None:  # WsgiDAV asks for the parent of the root (DELETE /dav/)
            return None
        try:
            node = self.bridge(self.bridge.drive.stat(path))
        except DAVError as exc:
            if exc.value == HTTP_NOT_FOUND:
                return None
            raise
        return self.resource(node, environ)

    def resource(self, node: Node, environ: dict[str, Any]) -> VaultCollection | VaultFile:
        path = "/" + node.path
        if node.kind == "dir":
            return VaultCollection(path, environ, node, self.bridge)
        return VaultFile(path, environ, node, self.bridge)


def _last_modified(node: Node) -> float | None:
    return node.mtime_ns / 1e9 if node.mtime_ns else None


class VaultCollection(DAVCollection):  # type: ignore[misc]
    def __init__(self, path: str, environ: dict[str, Any], node: Node, bridge: Bridge) -> None:
        super().__init__(path, environ)
        self.node = node
        self.bridge = bridge
        self._members: list[Node] | None = None

    def _list(self) -> list[Node]:
        if self._members is None:
            self._members = self.bridge(self.bridge.drive.listdir(self.node.path))
        return self._members

    def get_member_names(self) -> list[str]:
        return [n.path.rsplit("/", 1)[-1] for n in self._list()]

    def get_member_list(self) -> list[VaultCollection | VaultFile]:
        provider: VaultDAVProvider = self.provider
        return [provider.resource(n, self.environ) for n in self._list()]

    def get_member(self, name: str) -> VaultCollection | VaultFile | None:
        provider: VaultDAVProvider = self.provider
        return provider.get_resource_inst(self._join(name), self.environ)

    def _join(self, name: str) -> str:
        return f"{self.node.path}/{name}" if self.node.path else name

    def get_last_modified(self) -> float | None:
        return _last_modified(self.node)

    def get_etag(self) -> str | None:
        return None

    def support_etag(self) -> bool:
        return False

    def create_empty_resource(self, name: str) -> VaultCollection | VaultFile:
        path = self._join(name)
        if self.environ.get("REQUEST_METHOD") == "LOCK":  # a lock on a new name: store it empty
            drive = self.bridge.drive

            async def touch() -> Node:
                h = await drive.open_write(path, truncate=True)
                await drive.release(h)
                return await drive.stat(path)

            return VaultFile("/" + path, self.environ, self.bridge(touch()), self.bridge)
        pending = Node(path, "file", 0, 0, 0o644, "", True)
        return VaultFile("/" + path, self.environ, pending, self.bridge)

    def create_collection(self, name: str) -> None:
        self.bridge(self.bridge.drive.mkdir(self._join(name)))

    def support_recursive_delete(self) -> bool:
        return True

    def delete(self) -> None:
        self.bridge(self.bridge.drive.rmdir(self.node.path, recursive=True))
        self.remove_all_locks(recursive=True)

    def support_recursive_move(self, dest_path: str) -> bool:
        return True

    def move_recursive(self, dest_path: str) -> None:
        _move(self, dest_path)

    def copy_move_single(self, dest_path: str, *, is_move: bool) -> None:
        if is_move:
            _move(self, dest_path)
        else:
            self.bridge(self.bridge.drive.mkdir(dest_path))


def _move(res: VaultCollection | VaultFile, dest_path: str) -> bool:
    drive = res.bridge.drive

    async def move() -> None:
        try:
            there = await drive.stat(dest_path)
        except NotFoundError:
            there = None
        if there is not None and there.kind == "dir":  # Overwrite: T (checked by WsgiDAV)
            await drive.rmdir(dest_path, recursive=True)
        await drive.rename(res.node.path, dest_path)

    res.bridge(move())
    res.remove_all_locks(recursive=True)
    return True


class VaultFile(DAVNonCollection):  # type: ignore[misc]
    def __init__(self, path: str, environ: dict[str, Any], node: Node, bridge: Bridge) -> None:
        super().__init__(path, environ)
        self.node = node
        self.bridge = bridge
        self._writer: Writer | None = None

    def get_content_length(self) -> int:
        return self.node.size

    def get_content_type(self) -> str:
        return mimetypes.guess_type(self.node.path)[0] or "application/octet-stream"

    def get_last_modified(self) -> float | None:
        return _last_modified(self.node)

    def get_etag(self) -> str | None:
        return self.node.etag or None

    def support_etag(self) -> bool:
        return bool(self.node.etag)

    def support_ranges(self) -> bool:
        return True

    def get_content(self) -> Reader:
        handle = self.bridge(self.bridge.drive.open_read(self.node.path))
        return Reader(self.bridge, handle)

    def begin_write(self, *, content_type: str | None = None) -> Writer:
        handle = self.bridge(self.bridge.drive.open_write(self.node.path, truncate=True))
        self._writer = Writer(self.bridge, handle)
        return self._writer

    def end_write(self, *, with_errors: bool) -> None:
        writer, self._writer = self._writer, None
        if writer is None:
            return
        drive = self.bridge.drive
        scope = self.environ.get("asgi.scope", {})
        declared = self.environ.get("CONTENT_LENGTH", "")
        cut = scope.get("ownvault.disconnected") or (
            declared.isdigit() and int(declared) != writer.written
        )
        if with_errors or cut:  # a body cut short is never stored as a version
            self.bridge(drive.abort(writer.handle))
            if cut and not with_errors:
                raise DAVError(HTTP_CONFLICT, "the request body ended early: nothing stored")
            return
        self.bridge(drive.release(writer.handle))
        self.node = self.bridge(drive.stat(self.node.path))

    def delete(self) -> None:
        self.bridge(self.bridge.drive.remove(self.node.path))
        self.remove_all_locks(recursive=True)

    def support_recursive_move(self, dest_path: str) -> bool:
        return True  # a rename, whatever it is

    def move_recursive(self, dest_path: str) -> None:
        _move(self, dest_path)

    def copy_move_single(self, dest_path: str, *, is_move: bool) -> None:
        if is_move:
            _move(self, dest_path)
        else:
            self.bridge(self.bridge.drive.copy(self.node.path, dest_path))


class Reader:
    """The file object WsgiDAV reads a GET from: ``seek`` (for Range) and ``read``."""

    def __init__(self, bridge: Bridge, handle: ReadHandle | WriteHandle) -> None:
        self.bridge = bridge
        self.handle = handle
        self.pos = 0

    def seek(self, pos: int, whence: int = 0) -> int:
        self.pos = pos
        return pos

    def read(self, size: int = -1) -> bytes:
        want = (1 << 62) if size < 0 else size
        data = self.bridge(self.bridge.drive.read(self.handle, self.pos, want))
        self.pos += len(data)
        return data

    def close(self) -> None:
        self.bridge(self.bridge.drive.release(self.handle))


class Writer:
    """The file object WsgiDAV streams a PUT body into: appends to the spool."""

    def __init__(self, bridge: Bridge, handle: WriteHandle) -> None:
        self.bridge = bridge
        self.handle = handle
        self.written = 0

    def write(self, data: bytes) -> int:
        # straight to the spool from this thread (it is thread-safe, as for FUSE): a hop to
        # the event loop for every block would cost more than the write
        try:
            n = self.handle.spool.write(self.written, data)
        except SpoolFullError as exc:
            raise DAVError(HTTP_INSUFFICIENT_STORAGE, exc.message) from None
        self.written += n
        return n

    def close(self) -> None:
        """Nothing: ``end_write`` stores the file (or drops it when the body was cut)."""
