"""The vault as a drive: the folder view that WebDAV (``/dav/`` in ``ownvault serve``) and
the FUSE mount (``ownvault mount``) both show, and the operations they both allow.

Names as paths: the stored name ``docs/2024/report.pdf`` is the file ``report.pdf`` in
the folders ``docs`` and ``docs/2024``; a stored tree is a folder holding its entries.
Each name shows its latest version. ``.versions/NAME/`` lists NAME's version numbers;
``.versions/NAME/N`` is version N (a file, or a folder for a tree), read-only.

What changes what (every change under the vault's write lock, held only while it commits):

=============  ==================================================================
write a file   spooled (:mod:`.driveio`), stored as a new version of its name with
               the normal put pipeline when it is flushed or closed
remove a file  ``ownvault rm NAME``: every version of the name goes
rename         the name (all its versions and tags) takes the new name; a folder
               renames every name under it, in one transaction
make a folder  an empty folder lives in this drive's memory (the vault stores
               names, not folders); so does a folder whose last file was removed
=============  ==================================================================

Files inside a stored tree, and everything under ``.versions``, are read-only here
(:class:`DriveError` with ``EROFS``): put the tree again to change it. Names are checked
as the CLI checks them (:func:`~ownvault.engine.store.layout.validate_object_name`, and
UTF-8), refused with ``EINVAL``.
"""

from __future__ import annotations

import errno
import time

from ownvault.engine.files.driveio import PackCache, ReadHandle, SpoolArea, remove_dead_spools
from ownvault.engine.files.drivetypes import (
    VERSIONS,
    DriveError,
    DriveOptions,
    Node,
    NodeKind,
    WriteHandle,
    split,
)
from ownvault.engine.store.catalog import EntryRow, VersionRow
from ownvault.engine.store.catalog.drive import catalog_generation, entry_at, rename_objects
from ownvault.engine.store.context import VaultContext
from ownvault.engine.store.gc import reclaim
from ownvault.engine.store.layout import validate_object_name
from ownvault.engine.store.versions import put_paths
from ownvault.errors import NotFoundError, UsageError

__all__ = ["VERSIONS", "Drive", "DriveError", "DriveOptions", "Node", "WriteHandle"]

COPY_STEP = 4 << 20
PEEK_SECONDS = 1.0


class Drive:
    """The drive over one open vault (see the module docstring). Every method runs on the
    vault's event loop; front ends in other threads hop there."""

    def __init__(self, ctx: VaultContext, options: DriveOptions | None = None) -> None:
        self.ctx = ctx
        self.options = options or DriveOptions()
        self.cache = PackCache(ctx, self.options.cache_mib << 20)
        self._spools: SpoolArea | None = None
        self._dirs: set[str] = set()
        self._writers: dict[str, WriteHandle] = {}
        # What the last listings showed, while the catalog and this drive are unchanged:
        # `ls -lR` stats every member it listed, each a few catalog queries otherwise.
        self._listed: dict[str, Node] = {}
        self._listed_at: tuple[int, int] = (-1, -1)
        self._listed_time = 0.0  # time.monotonic() of the last listing (see peek)
        remove_dead_spools(ctx.path)

    @property
    def spools(self) -> SpoolArea:
        if self._spools is None:
            self._spools = SpoolArea(self.ctx.path, self.options.spool_mib << 20)
        return self._spools

    async def close(self) -> None:
        for h in list(self._writers.values()):
            h.spool.close()
        self._writers.clear()
        await self.cache.close()
        if self._spools is not None:
            self._spools.close()

    # -- looking ----------------------------------------------------------------------------

    def _dir(self, path: str, writable: bool = True) -> Node:
        return Node(path, "dir", 0, 0, 0o755 if writable else 0o555, "", writable)

    def _object(self, path: str, v: VersionRow, writable: bool) -> Node:
        mtime = v.created_at * 1_000_000_000
        etag = v.cid or f"v{v.id}"
        if v.kind == "tree":
            return Node(
                path,
                "dir",
                0,
                mtime,
                0o755 if writable else 0o555,
                etag,
                writable,
                obj=v.name,
                version=v.id,
            )
        return Node(
            path,
            "file",
            v.size,
            mtime,
            0o644 if writable else 0o444,
            etag,
            writable,
            obj=v.name,
            version=v.id,
        )

    def _entry(self, path: str, v: VersionRow, e: EntryRow) -> Node:
        kind: NodeKind = e.kind
        mode = 0o555 if kind == "dir" else (0o555 if e.mode & 0o111 else 0o444)
        return Node(
            path,
            kind,
            e.size if kind == "file" else 0,
            e.mtime_ns,
            mode,
            e.cid or f"v{v.id}:{e.path}",
            False,
            version=v.id,
            inner=e.path,
            target=e.target,
        )

    def _writer_node(self, h: WriteHandle) -> Node:
        return Node(h.path, "file", h.spool.size, h.opened_ns, 0o644, f"w{id(h)}", True)

    def _has_under(self, prefix: str) -> bool:
        cat = self.ctx.catalog
        return (
            bool(cat.latest_versions(prefix + "/"))
            or any(d.startswith(prefix + "/") for d in self._dirs)
            or any(p.startswith(prefix + "/") for p in self._writers)
        )

    def _cached(self, path: str) -> Node | None:
        now = catalog_generation(self.ctx.catalog)
        if now != self._listed_at:
            self._listed.clear()
            self._listed_at = now
            return None
        return self._listed.get(path)

    def _changed(self) -> None:
        """This drive changed something the listings may show."""
        self._listed.clear()
        self._listed_time = 0.0

    def peek(self, path: str) -> Node | None:
        """What a listing in the last :data:`PEEK_SECONDS` showed at ``path``, without a
        catalog query: callable from any thread (FUSE answers ``ls -lR`` from it). A change
        by another process shows after at most that long, as the kernel's own attribute
        cache (1 s) would."""
        if time.monotonic() - self._listed_time > PEEK_SECONDS:
            return None
        name = path.strip("/")
        return None if name in self._writers else self._listed.get(name)

    async def stat(self, path: str) -> Node:
        parts = split(path)
        name = "/".join(parts)
        if name not in self._writers:
            hit = self._cached(name)
            if hit is not None:
                return hit
        node = self._lookup(parts)
        if node is None:
            raise NotFoundError(f"no such file or folder: {path}", name=path)
        return node

    def _lookup(self, parts: list[str]) -> Node | None:
        if not parts:
            return self._dir("")
        if parts[0] == VERSIONS:
            return self._lookup_version(parts[1:])
        name = "/".join(parts)
        writer = self._writers.get(name)
        if writer is not None:
            return self._writer_node(writer)
        cat = self.ctx.catalog
        try:
            return self._object(name, cat.version(name), True)
        except NotFoundError:
            pass
        inside = self._inside_tree(parts)
        if inside is not None:
            v, inner = inside
            e = entry_at(cat, v.id, inner)
            return None if e is None else self._entry(name, v, e)
        if name in self._dirs or self._has_under(name):
            return self._dir(name)
        return None

    def _inside_tree(self, parts: list[str]) -> tuple[VersionRow, str] | None:
        """The stored tree a path lies strictly inside, and the path in it."""
        cat = self.ctx.catalog
        for cut in range(len(parts) - 1, 0, -1):
            head = "/".join(parts[:cut])
            if cat.object_id(head) is None:
                continue
            v = cat.version(head)
            return (v, "/".join(parts[cut:])) if v.kind == "tree" else None
        return None

    def _version_target(self, parts: list[str]) -> tuple[str, list[str]] | None:
        """Under ``.versions``: the stored name a path names, and what follows it."""
        cat = self.ctx.catalog
        for cut in range(len(parts), 0, -1):
            head = "/".join(parts[:cut])
            if cat.object_id(head) is not None:
                return head, parts[cut:]
        return None

    def _lookup_version(self, parts: list[str]) -> Node | None:
        base = "/".join([VERSIONS, *parts])
        if not parts:
            return self._dir(VERSIONS, writable=False)
        found = self._version_target(parts)
        if found is None:
            prefix = "/".join(parts) + "/"
            hit = any(n.startswith(prefix) for n in self.ctx.catalog.version_counts())
            return self._dir(base, writable=False) if hit else None
        name, rest = found
        if not rest:
            return self._dir(base, writable=False)
        if not rest[0].isdigit():
            return None
        try:
            v = self.ctx.catalog.version(name, int(rest[0]))
        except NotFoundError:
            return None
        if len(rest) == 1:
            return self._object(base, v, False)
        if v.kind != "tree":
            return None
        inner = "/".join(rest[1:])
        e = entry_at(self.ctx.catalog, v.id, inner)
        return None if e is None else self._entry(base, v, e)

    async def listdir(self, path: str) -> list[Node]:
        """The members of a folder, sorted by name."""
        parts = split(path)
        node = self._lookup(parts)
        if node is None:
            raise NotFoundError(f"no such folder: {path}", name=path)
        if node.kind != "dir":
            raise DriveError(f"not a folder: {path}", errno.ENOTDIR)
        here = "/".join(parts)
        if node.version is not None:  # a stored tree (or a folder inside one)
            v = self.ctx.catalog.version_by_id(node.version)
            sub = node.inner + "/" if node.inner else ""
            return self._remember(
                [
                    self._entry(f"{here}/{e.path[len(sub) :]}", v, e)
                    for e in self.ctx.catalog.entries(v.id, sub)
                    if e.path != node.inner and e.path and "/" not in e.path[len(sub) :]
                ]
            )
        if parts and parts[0] == VERSIONS:
            return self._list_versions(parts[1:])
        prefix = here + "/" if here else ""
        out: dict[str, Node] = {}
        for v in self.ctx.catalog.latest_versions(prefix):
            rest = v.name[len(prefix) :]
            seg = rest.split("/", 1)[0]
            if seg == rest:
                out[seg] = self._object(v.name, v, True)
            else:
                out.setdefault(seg, self._dir(prefix + seg))
        for d in [*self._dirs, *self._writers]:
            if d.startswith(prefix) and d != here:
                seg = d[len(prefix) :].split("/", 1)[0]
                if d == prefix + seg and d in self._writers:
                    out[seg] = self._writer_node(self._writers[d])
                else:
                    out.setdefault(seg, self._dir(prefix + seg))
        if not here:
            out.pop(VERSIONS, None)
            out[VERSIONS] = self._dir(VERSIONS, writable=False)
        return self._remember([out[k] for k in sorted(out)])

    def _remember(self, nodes: list[Node]) -> list[Node]:
        self._cached("")  # drops what an older generation listed
        if len(self._listed) > 200_000:
            self._listed.clear()
        for n in nodes:
            if n.path not in self._writers:
                self._listed[n.path] = n
        self._listed_time = time.monotonic()
        return nodes

    def _list_versions(self, parts: list[str]) -> list[Node]:
        base = "/".join([VERSIONS, *parts])
        found = self._version_target(parts) if parts else None
        if found is not None and not found[1]:
            return [
                self._object(f"{base}/{v.number}", v, False)
                for v in self.ctx.catalog.versions(found[0])
            ]
        prefix = "/".join(parts) + "/" if parts else ""
        segs = sorted(
            {
                n[len(prefix) :].split("/", 1)[0]
                for n in self.ctx.catalog.version_counts()
                if n.startswith(prefix)
            }
        )
        return [self._dir(f"{base}/{s}", writable=False) for s in segs]

    # -- reading ----------------------------------------------------------------------------

    async def open_read(self, path: str) -> ReadHandle | WriteHandle:
        """A handle for :meth:`read`: the stored file, or the spool of one being written."""
        parts = split(path)
        writer = self._writers.get("/".join(parts))
        if writer is not None:
            writer.refs += 1
            return writer
        node = self._lookup(parts)
        if node is None:
            raise NotFoundError(f"no such file: {path}", name=path)
        return self._reader(node)

    def _reader(self, node: Node) -> ReadHandle:
        if node.kind != "file" or node.version is None:
            raise DriveError(f"not a file: {node.path}", errno.EISDIR)
        cat = self.ctx.catalog
        e = entry_at(cat, node.version, node.inner)
        if e is None or e.content is None:
            raise NotFoundError(f"{node.path} has no content", name=node.path)
        return ReadHandle(
            self.cache,
            self.ctx.keys,
            cat.content_chunks(e.content),
            e.size,
            self.options.readahead_mib << 20,
        )

    async def read(self, handle: ReadHandle | WriteHandle, offset: int, size: int) -> bytes:
        if isinstance(handle, WriteHandle):
            return handle.spool.read(offset, size)
        return await handle.read(offset, size)

    # -- writing ----------------------------------------------------------------------------

    def _writable_name(self, path: str) -> str:
        if self.options.read_only:
            raise DriveError("this drive is read-only", errno.EROFS)
        parts = split(path)
        if not parts:
            raise DriveError("the root is a folder", errno.EISDIR)
        if parts[0] == VERSIONS:
            raise DriveError(f"{VERSIONS} is read-only: {path}", errno.EROFS)
        inside = self._inside_tree(parts)
        if inside is not None:
            raise DriveError(
                f"{path} is inside the stored tree {inside[0].name}, which is read-only "
                "through the drive: put the tree again to change it",
                errno.EROFS,
            )
        try:
            return validate_object_name("/".join(parts))
        except UsageError as exc:
            raise DriveError(exc.message, errno.EINVAL) from None

    async def open_write(self, path: str, *, truncate: bool) -> WriteHandle:
        """Open a file for writing (created if absent; its stored bytes copied to the spool
        first unless ``truncate``). Stored as a new version on :meth:`flush`/:meth:`release`."""
        name = self._writable_name(path)
        h = self._writers.get(name)
        if h is not None:
            h.refs += 1
            if truncate:
                h.spool.truncate(0)
            return h
        node = self._lookup(split(name))
        if node is not None and node.kind != "file":
            raise DriveError(f"a folder is there: {path}", errno.EISDIR)
        spool = self.spools.new()
        try:
            if node is not None and not truncate:
                reader = self._reader(node)
                pos = 0
                while pos < reader.size:
                    data = await reader.read(pos, COPY_STEP)
                    spool.write(pos, data)
                    pos += len(data)
                spool.dirty = spool.written = False
        except BaseException:
            spool.close()
            raise
        h = WriteHandle(name, spool, stored=node is not None)
        self._writers[name] = h
        self._changed()
        return h

    async def write(self, handle: WriteHandle, offset: int, data: bytes) -> int:
        return handle.spool.write(offset, data)

    async def truncate(self, handle: WriteHandle, size: int) -> None:
        handle.spool.truncate(size)

    async def flush(self, handle: WriteHandle, *, final: bool = False) -> None:
        """Store what was written as a new version of the name. A file descriptor closed
        while another stays open (``echo x > f`` closes one before it writes) flushes too:
        only bytes written since the last store make a version then; the ``final`` flush
        (the last close, or fsync) also stores a truncation or a new empty file."""
        spool = handle.spool
        if spool.written or (final and (spool.dirty or not handle.stored)):
            await put_paths(self.ctx, [spool.path], name=handle.path, files_cache=False)
            spool.dirty = spool.written = False
            handle.stored = True
            self._changed()

    async def release(self, handle: ReadHandle | WriteHandle) -> None:
        """Close a handle; the last one of a path being written stores it (:meth:`flush`)."""
        if not isinstance(handle, WriteHandle):
            return
        handle.refs -= 1
        if handle.refs > 0:
            return
        try:
            await self.flush(handle, final=True)
        finally:
            self._writers.pop(handle.path, None)
            handle.spool.close()
            self._changed()

    async def abort(self, handle: WriteHandle) -> None:
        """Close a handle and forget what was written through the path (nothing is stored)."""
        handle.refs -= 1
        handle.spool.dirty = handle.spool.written = False
        handle.stored = True
        if handle.refs <= 0:
            self._writers.pop(handle.path, None)
            handle.spool.close()
            self._changed()

    # -- folders, removal, renames ------------------------------------------------------------

    async def mkdir(self, path: str) -> None:
        name = self._writable_name(path)
        if self._lookup(split(name)) is not None:
            raise DriveError(f"exists already: {path}", errno.EEXIST)
        parent = name.rsplit("/", 1)[0] if "/" in name else ""
        pnode = self._lookup(split(parent))
        if pnode is None or pnode.kind != "dir":
            raise NotFoundError(f"no such folder: {parent}", name=parent)
        self._dirs.add(name)
        self._changed()

    def _stored(self, path: str) -> Node:
        parts = split(path)
        node = self._lookup(parts)
        if node is None:
            raise NotFoundError(f"no such file or folder: {path}", name=path)
        self._writable_name(path)  # refuses read-only drives, .versions, inside trees
        if "/".join(parts) in self._writers:
            raise DriveError(f"{path} is being written", errno.EBUSY)
        return node

    async def remove(self, path: str) -> None:
        """Remove a file (every version of its name), like ``ownvault rm NAME``."""
        node = self._stored(path)
        if node.kind == "dir":
            raise DriveError(f"a folder: {path}", errno.EISDIR)
        await self._delete([node.path])
        self._keep_parent(node.path)

    def _keep_parent(self, path: str) -> None:
        """A folder stays when its last file goes or leaves, until it is removed itself."""
        self._changed()
        if "/" in path:
            self._dirs.add(path.rsplit("/", 1)[0])

    async def rmdir(self, path: str, *, recursive: bool = False) -> None:
        """Remove a folder: an empty one, or (``recursive``) every name under it too."""
        node = self._stored(path)
        if node.kind != "dir":
            raise DriveError(f"not a folder: {path}", errno.ENOTDIR)
        under = [v.name for v in self.ctx.catalog.latest_versions(node.path + "/")]
        if node.obj is not None:
            under.append(node.obj)
        if not recursive and (
            (node.obj is not None and await self.listdir(path))
            or (node.obj is None and self._has_under(node.path))
        ):
            raise DriveError(f"folder not empty: {path}", errno.ENOTEMPTY)
        if under:
            await self._delete(under)
        self._dirs = {d for d in self._dirs if d != node.path and not d.startswith(node.path + "/")}
        self._changed()

    async def _delete(self, names: list[str]) -> None:
        ctx = self.ctx
        async with ctx.write():
            for name in names:
                ctx.catalog.delete_versions(name, None)
            await reclaim(ctx)

    async def rename(self, old: str, new: str, *, replace: bool = True) -> None:
        """Rename a file or folder; an existing file at ``new`` is replaced if ``replace``."""
        node = self._stored(old)
        dest = self._writable_name(new)
        if dest == node.path or dest.startswith(node.path + "/"):
            raise DriveError(f"cannot move {old} into itself", errno.EINVAL)
        there = self._lookup(split(dest))
        if there is not None:
            if not replace:
                raise DriveError(f"exists already: {new}", errno.EEXIST)
            if there.kind == "dir" and (node.kind != "dir" or await self.listdir(dest)):
                raise DriveError(f"a folder is there: {new}", errno.EISDIR)
            if there.kind != "dir" and node.kind == "dir":
                raise DriveError(f"not a folder: {new}", errno.ENOTDIR)
        cat = self.ctx.catalog
        moves: list[tuple[str, str]] = []
        if node.obj is not None:
            moves.append((node.obj, dest))
        else:
            moves += [
                (v.name, dest + v.name[len(node.path) :])
                for v in cat.latest_versions(node.path + "/")
            ]
        replacing = there.obj if there is not None else None
        async with self.ctx.write():
            rename_objects(cat, moves, replacing)
            if replacing is not None:
                await reclaim(self.ctx)
        for d in list(self._dirs):
            if d == node.path or d.startswith(node.path + "/"):
                self._dirs.discard(d)
                self._dirs.add(dest + d[len(node.path) :])
        self._keep_parent(node.path)

    async def copy(self, old: str, new: str) -> None:
        """Copy a file to a new name: a new version of ``new`` with the same bytes (the
        chunks are deduplicated, so no pack is written again)."""
        node = await self.stat(old)
        reader = self._reader(node)
        h = await self.open_write(new, truncate=True)
        try:
            pos = 0
            while pos < reader.size:
                data = await reader.read(pos, COPY_STEP)
                h.spool.write(pos, data)
                pos += len(data)
            h.spool.dirty = True
        except BaseException:
            await self.abort(h)
            raise
        await self.release(h)
