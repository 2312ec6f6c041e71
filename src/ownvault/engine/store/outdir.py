"""Writing restored trees under one output directory, never through a symlink.

Every writer of files a user did not make themselves (``get``, ``open`` of a grant, the
grant reader behind the API) writes through :class:`OutputDir`. The rules:

- every path is walked from the output directory's file descriptor one component at a time
  with ``O_NOFOLLOW | O_DIRECTORY`` (``openat`` style), so a symlink anywhere below the
  output directory -- planted there beforehand, or created by this very restore from a
  hostile manifest -- is never followed: writing *through* it is refused;
- names are single path components: no ``""``, ``.``, ``..``, ``/`` or NUL;
- files are written to a temporary name created ``O_CREAT | O_EXCL | O_NOFOLLOW`` with mode
  0600 (never wider than the final mode while bytes arrive), then ``fchmod``/``futimens``
  by descriptor and renamed into place by ``renameat``: the rename replaces a directory
  entry and never writes through a link;
- directory modes and times are applied last, deepest first, by descriptor.

The output directory itself (``-o OUT``) is the user's choice and may be a symlink.

:func:`output_file` applies the same rules to the single files other commands write at a
path the user names (``car export OUT``, ``cid --car OUT``, ``identity --card``,
``share -o``): a temporary file beside it, then a rename that replaces a symlink at that
name instead of writing through it.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

from ownvault.engine.store.filewrite import StagedWriter
from ownvault.errors import IntegrityError, UsageError

__all__ = ["OutputDir", "output_file", "split_rel"]

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def split_rel(rel: str, what: str = "catalog") -> list[str]:
    """``a/b/c`` -> ``["a", "b", "c"]``, refusing anything that is not a plain relative path."""
    if rel == "":
        return []
    parts = rel.split("/")
    if any(p in ("", ".", "..") or "\0" in p for p in parts):
        raise IntegrityError(f"refusing unsafe path in {what}: {rel!r}")
    return parts


class OutputDir:
    """A restore target: a directory opened once, written below by descriptor only."""

    def __init__(self, root: str | os.PathLike[str], *, overwrite: bool = True) -> None:
        self.overwrite = overwrite
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        try:
            self._fd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except NotADirectoryError:
            raise UsageError(f"not a directory: {self.root}") from None
        self._dirs: list[tuple[tuple[str, ...], int, int | None]] = []
        self._kept: tuple[tuple[str, ...], int] | None = None  # see write_whole

    def __enter__(self) -> OutputDir:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self.release_dir()
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def _show(self, parts: Sequence[str]) -> str:
        return str(self.root.joinpath(*parts))

    def _open_dir(self, parts: Sequence[str], *, create: bool) -> int:
        """A descriptor of the directory ``parts`` below the root (caller closes it)."""
        fd = os.dup(self._fd)
        try:
            for i, name in enumerate(parts):
                if create:
                    with contextlib.suppress(FileExistsError):
                        os.mkdir(name, 0o700, dir_fd=fd)
                try:
                    nfd = os.open(name, _DIR_FLAGS, dir_fd=fd)
                except OSError as e:
                    if e.errno in (errno.ELOOP, errno.ENOTDIR):
                        st = os.stat(name, dir_fd=fd, follow_symlinks=False)
                        what = "symlink" if stat.S_ISLNK(st.st_mode) else "file"
                        raise UsageError(
                            f"refusing to write through a {what}: {self._show(parts[: i + 1])}"
                        ) from None
                    raise
                os.close(fd)
                fd = nfd
            return fd
        except BaseException:
            os.close(fd)
            raise

    def mkdir(self, parts: Sequence[str], mode: int, mtime_ns: int | None) -> None:
        """Create directory ``parts`` (and parents); its mode and time are set by ``finish``."""
        os.close(self._open_dir(parts, create=True))
        self._dirs.append((tuple(parts), mode & 0o7777, mtime_ns))

    def symlink(self, parts: Sequence[str], target: str, mtime_ns: int | None) -> None:
        """Create symlink ``parts`` -> ``target`` (replacing a symlink or file of that name)."""
        if not parts:
            raise IntegrityError("a symlink cannot be the restore root")
        if "\0" in target:
            raise IntegrityError(f"refusing symlink target with NUL: {self._show(parts)}")
        dfd = self._open_dir(parts[:-1], create=True)
        try:
            name = parts[-1]
            with contextlib.suppress(FileNotFoundError):
                self._may_replace(parts, os.stat(name, dir_fd=dfd, follow_symlinks=False))
                os.unlink(name, dir_fd=dfd)
            os.symlink(target, name, dir_fd=dfd)
            if mtime_ns is not None:
                with contextlib.suppress(NotImplementedError, OSError):
                    os.utime(name, ns=(mtime_ns, mtime_ns), dir_fd=dfd, follow_symlinks=False)
        finally:
            os.close(dfd)

    async def write_file(
        self,
        parts: Sequence[str],
        pieces: AsyncIterator[bytes] | Callable[[StagedWriter], AsyncIterator[int]],
        *,
        mode: int | None = None,
        mtime_ns: int | None = None,
        durable: bool = True,
        progress: Callable[[int], None] | None = None,
    ) -> int:
        """Write ``pieces`` to file ``parts`` atomically (temp + rename); bytes written.

        ``pieces``: the bytes in order, or a function that writes them into the file's
        :class:`StagedWriter` itself and yields how many it wrote at each step.

        ``mode`` None keeps the default mode of a new file (0666 less the umask)."""
        if not parts:
            raise UsageError(f"cannot write a file over the output directory {self.root}")
        dfd = self._open_dir(parts[:-1], create=True)
        name = parts[-1]
        tmp = _temp_name(name)
        written = 0
        try:
            fd = self._open_temp(parts, dfd)
            try:
                writer = StagedWriter(fd)
                try:
                    steps = pieces(writer) if callable(pieces) else _copy(pieces, writer)
                    async for step in steps:
                        written += step
                        if progress is not None:
                            progress(step)
                except BaseException:
                    await writer.abort()
                    raise
                await writer.close()
                _settle(fd, mode, mtime_ns)
                if durable:
                    os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, name, src_dir_fd=dfd, dst_dir_fd=dfd)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp, dir_fd=dfd)
            raise
        finally:
            os.close(dfd)
        return written

    def write_whole(
        self,
        parts: Sequence[str],
        pieces: Sequence[bytes | memoryview],
        mode: int | None,
        mtime_ns: int | None,
    ) -> int:
        """:meth:`write_file` of bytes at hand, synchronously (a worker thread writes many
        small files in one hop, ``engine.store.treewrite``), not fsynced: the same temp
        file, checks and rename. The directory's descriptor is kept for the next file in
        it until :meth:`release_dir` (files of one directory do not re-walk its path)."""
        if not parts:
            raise UsageError(f"cannot write a file over the output directory {self.root}")
        dfd = self._dir_for(parts[:-1])
        name = parts[-1]
        tmp = _temp_name(name)
        written = 0
        fd = self._open_temp(parts, dfd)
        try:
            try:
                for piece in pieces:
                    view = memoryview(piece)
                    while view.nbytes:
                        n = os.write(fd, view)
                        view = view[n:]
                        written += n
                _settle(fd, mode, mtime_ns)
            finally:
                os.close(fd)
            os.replace(tmp, name, src_dir_fd=dfd, dst_dir_fd=dfd)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp, dir_fd=dfd)
            raise
        return written

    def _open_temp(self, parts: Sequence[str], dfd: int) -> int:
        """The new 0600 temp file for ``parts`` in directory ``dfd`` (O_EXCL, no-follow),
        after checking what it will replace and removing this process id's leftover."""
        name = parts[-1]
        tmp = _temp_name(name)
        with contextlib.suppress(FileNotFoundError):
            self._may_replace(parts, os.stat(name, dir_fd=dfd, follow_symlinks=False))
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp, dir_fd=dfd)  # a leftover of a killed run of this process id
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        return os.open(tmp, flags, 0o600, dir_fd=dfd)

    def _dir_for(self, parts: Sequence[str]) -> int:
        """The kept descriptor of directory ``parts`` (opened and created as
        :meth:`_open_dir` does when it is not the one kept)."""
        key = tuple(parts)
        if self._kept is not None and self._kept[0] == key:
            return self._kept[1]
        self.release_dir()
        fd = self._open_dir(parts, create=True)
        self._kept = (key, fd)
        return fd

    def release_dir(self) -> None:
        """Close the directory descriptor :meth:`write_whole` kept."""
        if self._kept is not None:
            os.close(self._kept[1])
            self._kept = None

    def _may_replace(self, parts: Sequence[str], st: os.stat_result) -> None:
        """Refuse to replace what is at ``parts``: always a directory, a device, a FIFO or a
        socket; a file or symlink unless ``overwrite``."""
        if stat.S_ISDIR(st.st_mode):
            raise UsageError(f"a directory is in the way: {self._show(parts)}")
        if not (stat.S_ISREG(st.st_mode) or stat.S_ISLNK(st.st_mode)):
            raise UsageError(f"refusing to replace a device, FIFO or socket: {self._show(parts)}")
        if not self.overwrite:
            raise UsageError(f"exists already (use --overwrite to replace it): {self._show(parts)}")

    def finish(self) -> None:
        """Apply directory modes and times, deepest first, by descriptor."""
        for parts, mode, mtime_ns in sorted(self._dirs, key=lambda d: -len(d[0])):
            fd = self._open_dir(parts, create=False)
            try:
                os.fchmod(fd, mode)
                if mtime_ns is not None:
                    os.utime(fd, ns=(mtime_ns, mtime_ns))
            finally:
                os.close(fd)
        self._dirs.clear()


async def _copy(pieces: AsyncIterator[bytes], writer: StagedWriter) -> AsyncIterator[int]:
    async for piece in pieces:
        await writer.write(piece)
        yield len(piece)


@contextlib.contextmanager
def output_file(
    path: str | os.PathLike[str], *, mode: int | None = None, overwrite: bool = True
) -> Iterator[BinaryIO]:
    """Write one file at a path the user named, whole or not at all, never through a link.

    Yields a binary file open on ``.NAME.ownvault-RANDOM.part`` beside ``path``, created
    ``O_CREAT | O_EXCL | O_NOFOLLOW`` with mode 0600 in the parent directory (opened once;
    it may be a symlink: the user chose it). On a clean exit the file gets ``mode`` (None:
    0666 less the umask, what a plain ``open`` gives), is fsynced and renamed over NAME: a
    symlink at NAME is replaced, not followed; a directory, device, FIFO or socket there is
    refused, and so is anything with ``overwrite=False``. On an error the temp file is
    removed and NAME is untouched."""
    target = Path(path)
    if target.name in ("", ".", ".."):
        raise UsageError(f"not a file name: {target}")
    try:
        dfd = os.open(target.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise UsageError(f"no such directory: {target.parent}") from None
    except NotADirectoryError:
        raise UsageError(f"not a directory: {target.parent}") from None
    name = target.name
    tmp = f".{name}.ownvault-{secrets.token_hex(4)}.part"
    try:
        with contextlib.suppress(FileNotFoundError):
            st = os.stat(name, dir_fd=dfd, follow_symlinks=False)
            if stat.S_ISDIR(st.st_mode):
                raise UsageError(f"a directory is in the way: {target}")
            if not (stat.S_ISREG(st.st_mode) or stat.S_ISLNK(st.st_mode)):
                raise UsageError(f"refusing to replace a device, FIFO or socket: {target}")
            if not overwrite:
                raise UsageError(f"exists already: {target}")
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        fd = os.open(tmp, flags, 0o600, dir_fd=dfd)
        try:
            with os.fdopen(fd, "wb", closefd=False) as f:
                yield f
                f.flush()
            os.fchmod(fd, mode & 0o7777 if mode is not None else 0o666 & ~_umask())
            os.fsync(fd)
        except BaseException:
            os.close(fd)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp, dir_fd=dfd)
            raise
        os.close(fd)
        os.replace(tmp, name, src_dir_fd=dfd, dst_dir_fd=dfd)
        os.fsync(dfd)
    finally:
        os.close(dfd)


def _temp_name(name: str) -> str:
    return f".{name}.ownvault-{os.getpid()}.part"


def _settle(fd: int, mode: int | None, mtime_ns: int | None) -> None:
    """The restored file's final mode (``mode``, else 0666 less the umask) and mtime."""
    os.fchmod(fd, mode & 0o7777 if mode is not None else 0o666 & ~_umask())
    if mtime_ns is not None:
        os.utime(fd, ns=(mtime_ns, mtime_ns))


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
