"""``ownvault mount``: the drive (:mod:`ownvault.engine.files.drive`) as a FUSE file system,
through mfusepy (libfuse 3 by ctypes; docs/design.md, "Drive: WebDAV and FUSE", says why
not pyfuse3).

libfuse calls these methods from its worker threads; each hops to the vault's event loop
(:class:`Loop`, one thread of its own), where the drive, the catalog and the providers'
clients live. Errors become errno values: a missing name ``ENOENT``, the drive's refusals
their own (``EROFS``, ``EINVAL``, ``ENOTEMPTY``, ...), a full spool ``ENOSPC``, anything
else ``EIO`` with a line on standard error. Modes, owners and times cannot be set through
the mount (the vault stores a new version only for new bytes): ``chmod``, ``chown`` and
``utimens`` succeed without effect, so ``cp -p`` and ``rsync -a`` still work.
"""

from __future__ import annotations

import asyncio
import errno
import itertools
import os
import stat
import sys
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

from ownvault.engine.files.drive import Drive, DriveError, Node, WriteHandle
from ownvault.engine.files.driveio import ReadHandle, SpoolFullError
from ownvault.errors import NotFoundError, OwnvaultError, VaultStateError
from ownvault.server.fuselib import mfusepy

__all__ = ["FILE_TYPES", "Loop", "VaultFS", "log_refusal", "mount"]

T = TypeVar("T")
FUSE_CAP_ATOMIC_O_TRUNC = 1 << 3  # fuse_common.h
# libfuse 3's fuse_main returns 8 when its loop ends with an error, and a session ended by
# SIGINT/SIGTERM records the signal as that error (libfuse 2 returned 0): after a mount that
# came up, 8 is the clean Ctrl-C end, not a refusal.
SESSION_ENDED_BY_SIGNAL = 8
FILE_TYPES = {
    "dir": stat.S_IFDIR,
    "symlink": stat.S_IFLNK,
    "file": stat.S_IFREG,
}  # st_mode type bits


def log_refusal(message: str) -> None:
    """The log line a refused or failed operation leaves (standard error)."""
    print(f"ownvault mount: {message}", file=sys.stderr, flush=True)


class Loop:
    """An event loop in a thread of its own, for code that lives in other threads."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="vault", daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(30)
        self.loop.close()


class VaultFS(mfusepy.Operations):  # type: ignore[misc]
    use_ns = True

    def __init__(self, drive: Drive, loop: Loop, ready: str | None = None) -> None:
        self.drive = drive
        self.loop = loop
        self.ready = ready  # printed on stdout once mounted
        self.mounted = False  # set by libfuse's init: the mount came up
        self.handles: dict[int, ReadHandle | WriteHandle] = {}
        self._ids = itertools.count(1)
        self.uid = os.getuid()
        self.gid = os.getgid()

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        try:
            return self.loop.run(coro)
        except NotFoundError:
            raise mfusepy.FuseOSError(errno.ENOENT) from None
        except SpoolFullError as exc:
            log_refusal(exc.message)
            raise mfusepy.FuseOSError(errno.ENOSPC) from None
        except DriveError as exc:
            log_refusal(exc.message)
            raise mfusepy.FuseOSError(exc.errno) from None
        except OwnvaultError as exc:
            log_refusal(exc.message)
            raise mfusepy.FuseOSError(errno.EIO) from None

    def init_with_config(self, conn: Any, config: Any) -> None:  # noqa: ANN401
        # O_TRUNC reaches open() (else the kernel opens, which copies the stored bytes to
        # the spool, then truncates)
        if conn is not None and conn.capable & FUSE_CAP_ATOMIC_O_TRUNC:
            conn.want |= FUSE_CAP_ATOMIC_O_TRUNC
        self.mounted = True
        if self.ready is not None:
            sys.stdout.write(self.ready + "\n")
            sys.stdout.flush()

    def _attrs(self, node: Node) -> dict[str, Any]:
        kind = FILE_TYPES.get(node.kind, stat.S_IFREG)
        mode = node.mode & ~0o222 if self.drive.options.read_only else node.mode
        return {
            "st_mode": kind | mode,
            "st_nlink": 2 if node.kind == "dir" else 1,
            "st_size": len(node.target or "") if node.kind == "symlink" else node.size,
            "st_mtime": node.mtime_ns,
            "st_ctime": node.mtime_ns,
            "st_atime": node.mtime_ns,
            "st_uid": self.uid,
            "st_gid": self.gid,
            "st_blksize": 1 << 20,
            "st_blocks": (node.size + 511) // 512,
        }

    def getattr(self, path: str, fh: int | None = None) -> dict[str, Any]:
        node = self.drive.peek(path)  # what a listing just showed: no hop to the loop
        return self._attrs(node if node is not None else self._run(self.drive.stat(path)))

    def readdir(self, path: str, fh: int) -> list[str | tuple[str, dict[str, int], int]]:
        # each entry with its type (the kernel's d_type): `ls -R` and `find` then need no
        # lookup per file (10,000 getattr calls for a 10,000-file tree otherwise)
        nodes = self._run(self.drive.listdir(path))
        return [
            ".",
            "..",
            *((n.path.rsplit("/", 1)[-1], {"st_mode": FILE_TYPES.get(n.kind, stat.S_IFREG)}, 0)
              for n in nodes),
        ]  # fmt: skip

    def readlink(self, path: str) -> str:
        return self._run(self.drive.stat(path)).target or ""

    def _keep(self, handle: ReadHandle | WriteHandle) -> int:
        fh = next(self._ids)
        self.handles[fh] = handle
        return fh

    def open(self, path: str, flags: int) -> int:
        if flags & os.O_ACCMODE == os.O_RDONLY:
            return self._keep(self._run(self.drive.open_read(path)))
        truncate = bool(flags & os.O_TRUNC)
        return self._keep(self._run(self.drive.open_write(path, truncate=truncate)))

    def create(self, path: str, mode: int, fi: Any = None) -> int:  # noqa: ANN401
        return self._keep(self._run(self.drive.open_write(path, truncate=True)))

    def read(self, path: str, size: int, offset: int, fh: int) -> bytes:
        return self._run(self.drive.read(self.handles[fh], offset, size))

    def _writer(self, fh: int) -> WriteHandle:
        h = self.handles[fh]
        if not isinstance(h, WriteHandle):
            raise mfusepy.FuseOSError(errno.EBADF)
        return h

    def write(self, path: str, data: bytes, offset: int, fh: int) -> int:
        try:  # straight to the spool (thread-safe), without a hop to the loop
            return self._writer(fh).spool.write(offset, data)
        except SpoolFullError as exc:
            log_refusal(exc.message)
            raise mfusepy.FuseOSError(errno.ENOSPC) from None

    def truncate(self, path: str, length: int, fh: int | None = None) -> int:
        drive = self.drive

        async def cut() -> None:
            h = await drive.open_write(path, truncate=length == 0)
            try:
                await drive.truncate(h, length)
            finally:
                await drive.release(h)

        if fh is not None and isinstance(self.handles.get(fh), WriteHandle):
            self._run(drive.truncate(self._writer(fh), length))
        else:
            self._run(cut())
        return 0

    def flush(self, path: str, fh: int) -> int:
        h = self.handles.get(fh)
        if isinstance(h, WriteHandle):
            self._run(self.drive.flush(h))
        return 0

    def fsync(self, path: str, datasync: int, fh: int) -> int:
        h = self.handles.get(fh)
        if isinstance(h, WriteHandle):
            self._run(self.drive.flush(h, final=True))
        return 0

    def release(self, path: str, fh: int) -> int:
        h = self.handles.pop(fh, None)
        if h is not None:
            self._run(self.drive.release(h))
        return 0

    def mkdir(self, path: str, mode: int) -> int:
        self._run(self.drive.mkdir(path))
        return 0

    def unlink(self, path: str) -> int:
        self._run(self.drive.remove(path))
        return 0

    def rmdir(self, path: str) -> int:
        self._run(self.drive.rmdir(path))
        return 0

    def rename(self, old: str, new: str) -> int:
        self._run(self.drive.rename(old, new))
        return 0

    def chmod(self, path: str, mode: int) -> int:
        self._run(self.drive.stat(path))
        return 0

    def chown(self, path: str, uid: int, gid: int) -> int:
        self._run(self.drive.stat(path))
        return 0

    def utimens(self, path: str, times: tuple[int, int] | None = None) -> int:
        self._run(self.drive.stat(path))
        return 0

    def statfs(self, path: str) -> dict[str, int]:
        spool = self.drive.options.spool_mib << 20
        return {"f_bsize": 1 << 20, "f_frsize": 1 << 20, "f_blocks": spool >> 20,
                "f_bfree": spool >> 20, "f_bavail": spool >> 20, "f_namemax": 255}  # fmt: skip


def mount(drive: Drive, loop: Loop, mountpoint: str, *, ready: str | None = None) -> None:
    """Serve ``drive`` at ``mountpoint`` until it is unmounted (``fusermount3 -u``, or
    SIGINT/SIGTERM, which libfuse turns into a clean unmount)."""
    serve_fuse(
        VaultFS(drive, loop, ready), mountpoint, read_only=drive.options.read_only, name="ownvault"
    )


def serve_fuse(fs: mfusepy.Operations, mountpoint: str, *, read_only: bool, name: str) -> None:
    """Run libfuse in the foreground; a mount libfuse refuses (no permission to mount
    here, a mount point in use, no /dev/fuse) is a clear error, not a traceback."""
    try:
        mfusepy.FUSE(
            fs,
            mountpoint,
            foreground=True,
            nothreads=False,
            ro=read_only,
            fsname=name,
            subtype="ownvault",
            default_permissions=True,
        )
    except RuntimeError as exc:  # mfusepy: fuse_main returned non-zero
        if getattr(fs, "mounted", False) and exc.args == (SESSION_ENDED_BY_SIGNAL,):
            return  # libfuse 3 unmounted on SIGINT/SIGTERM (Ctrl-C): a clean end
        raise VaultStateError(
            f"cannot mount at {mountpoint}: libfuse refused (code {exc}); its message is "
            "above. Is something mounted there already, and may this user mount FUSE "
            "file systems here (/dev/fuse, fusermount3)?"
        ) from None
