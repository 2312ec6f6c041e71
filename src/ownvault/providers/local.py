"""A provider on a local folder (a disk, a mounted drive, a synced folder).

Layout: ``ROOT/ownvault-provider.json`` marks a folder made by :meth:`LocalProvider.create`
(a missing marker means the folder is gone, unmounted or not ours, and every call fails
with ``ProviderUnavailableError`` rather than writing into the wrong place); objects live
at ``ROOT/objects/<name>``; writes go to ``ROOT/tmp/`` first.

Writes are atomic and durable: temp file, the object's parts written without joining them
(``O_DIRECT`` from reused aligned buffers, :mod:`ownvault.providers.directio`, or
``writev`` where the file system refuses it or ``direct=False``), fsync, ``link`` to the
final name (which fails if the name exists, so an object is never overwritten), fsync of
the directory (and of the parent of every directory the write had to create).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import errno
import fcntl
import json
import os
import secrets
import stat
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

from ownvault.errors import (
    ObjectExistsError,
    ObjectNotFoundError,
    ProviderError,
    ProviderPermanentError,
    ProviderUnavailableError,
    StorageFullError,
    UsageError,
)
from ownvault.providers.base import (
    ObjectInfo,
    ProviderInfo,
    PutData,
    as_parts,
    validate_name,
    validate_prefix,
)
from ownvault.providers.directio import (
    O_DIRECT,
    AlignedBuffers,
    DirectRefused,
    open_direct,
    write_direct,
)
from ownvault.providers.durable import fsync_dir, make_dirs
from ownvault.providers.localnames import OBJECTS, object_path

__all__ = ["LocalProvider"]

MARKER = "ownvault-provider.json"
MARKER_BODY = {"format": "ownvault-local-provider", "version": 1}


IOV_MAX = os.sysconf("SC_IOV_MAX") if hasattr(os, "sysconf") else 1024


def write_parts(fd: int, parts: list[memoryview]) -> None:
    """Write ``parts`` one after the other with ``writev`` (no join), resuming after a
    short write and at most ``IOV_MAX`` buffers per call."""
    i = 0
    while i < len(parts):
        batch = parts[i : i + IOV_MAX]
        written = os.writev(fd, batch)
        for part in batch:
            if written < len(part):
                break
            written -= len(part)
            i += 1
        else:
            continue
        if written:
            parts[i] = parts[i][written:]


class LocalProvider:
    """Objects as files under a folder. Thread-safe; blocking calls run in worker threads."""

    def __init__(
        self, root: str | os.PathLike[str], *, label: str | None = None, direct: bool = True
    ) -> None:
        self.root = Path(root).absolute()
        self._label = label or str(self.root)
        self._marker_seen: tuple[int, int, int, int, int] | None = None
        # O_DIRECT writes (``providers.directio``), until the file system refuses one.
        self.direct = direct
        self._aligned = AlignedBuffers() if direct else None

    @classmethod
    def create(cls, root: str | os.PathLike[str]) -> LocalProvider:
        """Make (or adopt) ``root`` as a provider folder and return the provider."""
        path = Path(root).absolute()
        path.mkdir(parents=True, exist_ok=True)
        marker = path / MARKER
        if marker.exists():
            cls._check_marker(marker)
        else:
            (path / OBJECTS).mkdir(exist_ok=True)
            (path / "tmp").mkdir(exist_ok=True)
            tmp = path / f".{MARKER}.{secrets.token_hex(4)}"
            tmp.write_text(json.dumps(MARKER_BODY) + "\n")
            os.replace(tmp, marker)
            fsync_dir(path)
        return cls(path)

    @staticmethod
    def _check_marker(marker: Path) -> None:
        try:
            body = json.loads(marker.read_text())
        except (OSError, ValueError) as exc:
            raise ProviderUnavailableError(f"provider folder marker unreadable: {marker}") from exc
        if not isinstance(body, dict) or body.get("format") != MARKER_BODY["format"]:
            raise ProviderPermanentError(f"not an ownvault provider folder: {marker.parent}")
        if body.get("version") != 1:
            raise ProviderPermanentError(f"unsupported provider folder version in {marker}")

    @property
    def kind(self) -> str:
        return "local"

    @property
    def location(self) -> str:
        return self.root.as_uri()

    # -- helpers ---------------------------------------------------------------------------

    def _ready(self) -> None:
        """The folder is there and ours: its marker file exists (one ``stat`` per call) and
        was checked since it last changed (parsed again when its identity changes)."""
        marker = self.root / MARKER
        try:
            st = os.stat(marker)
        except OSError:
            st = None
        if st is None or not stat.S_ISREG(st.st_mode):
            raise ProviderUnavailableError(
                f"provider folder missing or not initialised: {self.root}", provider=self._label
            )
        seen = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
        if seen != self._marker_seen:
            self._check_marker(marker)
            self._marker_seen = seen

    def _ensure_dir(self, directory: Path) -> None:
        """Make ``directory`` (and its missing parents) durably: a directory created here is
        fsynced into its parent, or an object linked into it could vanish with it after a
        crash even though the object's own directory was fsynced."""
        if not directory.is_dir():
            make_dirs(directory)

    def _path(self, name: str) -> Path:
        return object_path(self.root, name)

    def _wrap(self, exc: OSError, name: str | None = None) -> ProviderError:
        where = f" ({name})" if name else ""
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return StorageFullError(f"no space left on {self.root}{where}", provider=self._label)
        if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            return ProviderPermanentError(
                f"permission denied on {self.root}{where}", provider=self._label
            )
        return ProviderUnavailableError(
            f"I/O error on {self.root}{where}: {exc.strerror}", provider=self._label
        )

    @contextlib.contextmanager
    def _reading(self, name: str) -> Iterator[None]:
        """Errors of reading object ``name`` as the contract names them: a missing object
        (or a folder where it should be) is ``ObjectNotFoundError``, the rest ``_wrap``."""
        try:
            yield
        except (FileNotFoundError, IsADirectoryError):
            raise ObjectNotFoundError(
                f"object not found: {name}", provider=self._label, share=name
            ) from None
        except OSError as exc:
            raise self._wrap(exc, name) from exc

    # -- the contract ----------------------------------------------------------------------

    def _put_sync(self, name: str, data: PutData) -> None:
        self._ready()
        final = self._path(name)
        tmp = self.root / "tmp" / f"{secrets.token_hex(8)}.part"
        try:
            self._ensure_dir(final.parent)
            self._write_file(tmp, as_parts(data))
            try:
                os.link(tmp, final)
            except FileExistsError:
                raise ObjectExistsError(
                    f"object exists: {name}", provider=self._label, share=name
                ) from None
            fsync_dir(final.parent)
        except OSError as exc:
            raise self._wrap(exc, name) from exc
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)

    def _write_file(self, tmp: Path, parts: list[memoryview]) -> None:
        """Create ``tmp`` with the parts' bytes, its data and inode on disk when it returns."""
        if self.direct and self._aligned is not None:
            try:
                fd = open_direct(tmp)
            except DirectRefused:
                self.direct = False
            else:
                try:
                    write_direct(fd, parts, self._aligned)
                    os.fsync(fd)
                    return
                except DirectRefused:
                    self.direct = False  # nothing written: the same file, buffered
                    fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~O_DIRECT)
                    write_parts(fd, parts)
                    os.fsync(fd)
                    return
                finally:
                    os.close(fd)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            write_parts(fd, parts)
            os.fsync(fd)
        finally:
            os.close(fd)

    async def put(self, name: str, data: PutData) -> None:
        validate_name(name)
        await asyncio.to_thread(self._put_sync, name, data)

    def _get_sync(self, name: str, offset: int, length: int | None) -> bytes:
        self._ready()
        if offset < 0 or (length is not None and length < 0):
            raise UsageError("negative range")
        with self._reading(name), open(self._path(name), "rb") as f:
            f.seek(offset)
            return f.read() if length is None else f.read(length)

    async def get(self, name: str, offset: int = 0, length: int | None = None) -> bytes:
        validate_name(name)
        return await asyncio.to_thread(self._get_sync, name, offset, length)

    # -- reading into a caller's buffer (not part of the Provider contract) ---------------

    def _read_into_sync(self, name: str, offset: int, buffer: memoryview) -> int:
        self._ready()
        if offset < 0:
            raise UsageError("negative range")
        direct = _aligned(buffer, offset)
        with self._reading(name):
            fd = _open_read(self._path(name), direct=direct)
            try:
                got = 0
                while got < buffer.nbytes:
                    step = os.preadv(fd, [buffer[got:]], offset + got)
                    if step == 0:
                        break
                    got += step
                return got
            finally:
                os.close(fd)

    async def read_into(self, name: str, offset: int, buffer: memoryview) -> int:
        """Read object ``name`` from ``offset`` into ``buffer``; the number of bytes read
        (fewer than ``buffer`` holds only at the object's end). What :meth:`get` does,
        without a new ``bytes`` per read: the get path reuses its share buffers. When the
        offset, the buffer's address and its length are multiples of 4096, the read is
        ``O_DIRECT`` (where the file system allows it): no copy through the page cache, and
        a restore does not fill the cache with shares it reads once."""
        validate_name(name)
        return await asyncio.to_thread(self._read_into_sync, name, offset, buffer)

    def _stat_sync(self, name: str) -> ObjectInfo:
        self._ready()
        with self._reading(name):
            st = self._path(name).stat()
        if not os.path.isfile(self._path(name)):
            raise ObjectNotFoundError(f"object not found: {name}", provider=self._label)
        return ObjectInfo(name, st.st_size)

    async def stat(self, name: str) -> ObjectInfo:
        validate_name(name)
        return await asyncio.to_thread(self._stat_sync, name)

    def _list_sync(self, prefix: str) -> list[ObjectInfo]:
        self._ready()
        base = self.root / OBJECTS
        # Walk only the directory the prefix points into.
        head, _, _ = prefix.rpartition("/")
        start = base / head if head else base
        out: list[ObjectInfo] = []
        if not start.is_dir():
            return out
        try:
            for dirpath, _dirnames, filenames in os.walk(start):
                rel_dir = os.path.relpath(dirpath, base)
                for fn in filenames:
                    rel = fn if rel_dir == "." else f"{rel_dir}/{fn}"
                    if rel.startswith(prefix):
                        try:
                            size = os.stat(os.path.join(dirpath, fn)).st_size
                        except FileNotFoundError:
                            continue
                        out.append(ObjectInfo(rel, size))
        except OSError as exc:
            raise self._wrap(exc) from exc
        out.sort(key=lambda o: o.name)
        return out

    async def list(self, prefix: str = "") -> AsyncIterator[ObjectInfo]:
        validate_prefix(prefix)
        for item in await asyncio.to_thread(self._list_sync, prefix):
            yield item

    def _delete_sync(self, name: str) -> None:
        self._ready()
        path = self._path(name)
        try:
            os.unlink(path)
            fsync_dir(path.parent)
        except FileNotFoundError:
            return
        except OSError as exc:
            raise self._wrap(exc, name) from exc

    async def delete(self, name: str) -> None:
        validate_name(name)
        await asyncio.to_thread(self._delete_sync, name)

    def _info_sync(self) -> ProviderInfo:
        self._ready()
        try:
            st = os.statvfs(self.root)
        except OSError as exc:
            raise self._wrap(exc) from exc
        return ProviderInfo("local", self.location, st.f_bavail * st.f_frsize)

    async def info(self) -> ProviderInfo:
        return await asyncio.to_thread(self._info_sync)

    async def close(self) -> None:
        return None


_ALIGN = 4096


def _aligned(buffer: memoryview, offset: int) -> bool:
    """Whether ``buffer`` and ``offset`` suit an ``O_DIRECT`` read."""
    if offset % _ALIGN or buffer.nbytes % _ALIGN or buffer.readonly or not buffer.c_contiguous:
        return False
    address = ctypes.addressof(ctypes.c_char.from_buffer(buffer))
    return address % _ALIGN == 0


def _open_read(path: Path, *, direct: bool) -> int:
    flags = os.O_RDONLY | os.O_CLOEXEC
    if direct:
        try:
            return os.open(path, flags | os.O_DIRECT)
        except OSError as exc:
            if exc.errno != errno.EINVAL:  # EINVAL: no direct I/O on this file system
                raise
    return os.open(path, flags)
