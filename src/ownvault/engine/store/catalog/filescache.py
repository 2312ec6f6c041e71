"""The files cache (table ``filescache``, schema 9): which stored content a source file had
when a put last read it, so that an unchanged file is not read again.

One row per source file, keyed by its absolute path as bytes (``os.fsencode``: any name
the file system allows), with the file's identity as ``lstat`` gave it -- (device, inode,
size, mtime, ctime) -- the ``contents`` row its bytes were stored as, and the parameters
that decided that content (import profile and chunker). A row is used only if all of
these match, the content still exists (forgetting the last version that refers to it, or
shredding it, deletes the row: ``ON DELETE CASCADE``) and every chunk of it sits in a live
pack. ``age`` counts the puts of a tree holding the path that did not see it; a row older
than :data:`TTL` goes (borg's files cache TTL). docs/design.md, "Files cache".
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

__all__ = ["MAX_PATHS", "TTL", "CachedContent", "FileIdentity", "FilesCache"]

TTL = 20  # puts of a tree that may miss a path before its row goes (borg: BORG_FILES_CACHE_TTL)
MAX_PATHS = 500  # paths per candidates() query (SQLite allows 999 variables before 3.32)

_I64 = 1 << 64


def _signed(value: int) -> int:
    """An unsigned 64-bit value (``st_ino``, ``st_dev``) as SQLite's signed INTEGER."""
    return value - _I64 if value >= 1 << 63 else value


@dataclass(frozen=True, slots=True)
class FileIdentity:
    """What must be unchanged for a source file to be taken as unchanged."""

    device: int
    inode: int
    size: int
    mtime_ns: int
    ctime_ns: int

    def row(self) -> tuple[int, int, int, int, int]:
        return (
            _signed(self.device),
            _signed(self.inode),
            self.size,
            self.mtime_ns,
            self.ctime_ns,
        )


@dataclass(frozen=True, slots=True)
class CachedContent:
    """A ``contents`` row a cache hit refers to, with what a tree's CID needs of it."""

    content: int
    size: int
    cid: str
    cid_profile: str
    tsize: int


def _prefix_bounds(root: bytes) -> tuple[bytes, bytes]:
    """``[low, high)``: every path strictly below directory ``root`` (bytewise order)."""
    low = root if root.endswith(b"/") else root + b"/"
    return low, low[:-1] + b"0"  # "0" is the byte after "/"


class FilesCache:
    """Table group ``filescache``: ``catalog.filescache``. Writes run inside the caller's
    transaction (the one that inserts the version the rows refer to)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def lookup(self, path: bytes, ident: FileIdentity, params: str) -> CachedContent | None:
        """The content ``path`` had when it was last read, if its identity and the
        parameters are the same and all of that content's chunks are live; else None."""
        known = self.candidates([path], params).get(path)
        return known[1] if known is not None and known[0] == ident.row() else None

    def candidates(
        self, paths: Sequence[bytes], params: str
    ) -> dict[bytes, tuple[tuple[int, int, int, int, int], CachedContent]]:
        """For each of ``paths`` (at most :data:`MAX_PATHS`) that has a row with these
        parameters whose content still exists, is of the row's size and has every chunk
        in a live pack: the identity recorded (as :meth:`FileIdentity.row` gives it) and
        that content. A caller compares the identity it takes now (one query per batch
        of files instead of one per file)."""
        if len(paths) > MAX_PATHS:
            raise ValueError(f"at most {MAX_PATHS} paths per query")
        if not paths:
            return {}
        marks = ", ".join("?" * len(paths))
        rows = self._conn.execute(
            "SELECT f.path, f.device, f.inode, f.size, f.mtime_ns, f.ctime_ns, "
            "c.id, c.size, c.cid, c.cid_profile, c.tsize FROM filescache f "
            "JOIN contents c ON c.id = f.content "
            f"WHERE f.path IN ({marks}) AND f.params = ? AND c.size = f.size "
            "AND c.cid IS NOT NULL AND c.tsize IS NOT NULL AND NOT EXISTS ("
            " SELECT 1 FROM content_chunks cc JOIN chunks ch ON ch.id = cc.chunk"
            " JOIN packs p ON p.id = ch.pack WHERE cc.content = c.id AND p.state != 'live')",
            (*paths, params),
        ).fetchall()
        return {
            bytes(r[0]): (
                (int(r[1]), int(r[2]), int(r[3]), int(r[4]), int(r[5])),
                CachedContent(int(r[6]), int(r[7]), str(r[8]), str(r[9]), int(r[10])),
            )
            for r in rows
        }

    def record(
        self,
        root: bytes,
        seen: Iterable[bytes],
        remember: Iterable[tuple[bytes, FileIdentity, int, str]],
        forget: Iterable[bytes],
    ) -> None:
        """After a put of the tree (or file) at ``root``: every row below it ages by one,
        except the paths ``seen`` (back to 0); ``remember`` (path, identity, content,
        params) replaces rows; ``forget`` drops rows (files read that may not be cached);
        rows older than :data:`TTL` below ``root`` go. Inside the caller's transaction."""
        c = self._conn
        low, high = _prefix_bounds(root)
        below = "(path = ? OR (path >= ? AND path < ?))"
        c.execute(f"UPDATE filescache SET age = age + 1 WHERE {below}", (root, low, high))
        c.executemany("UPDATE filescache SET age = 0 WHERE path = ?", [(p,) for p in seen])
        c.executemany(
            "INSERT INTO filescache(path, device, inode, size, mtime_ns, ctime_ns, content, "
            "params, age) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0) ON CONFLICT(path) DO UPDATE SET "
            "device = excluded.device, inode = excluded.inode, size = excluded.size, "
            "mtime_ns = excluded.mtime_ns, ctime_ns = excluded.ctime_ns, "
            "content = excluded.content, params = excluded.params, age = 0",
            [(p, *ident.row(), content, params) for p, ident, content, params in remember],
        )
        c.executemany("DELETE FROM filescache WHERE path = ?", [(p,) for p in forget])
        c.execute(f"DELETE FROM filescache WHERE age > ? AND {below}", (TTL, root, low, high))

    def count(self) -> int:
        row = self._conn.execute("SELECT COUNT(*) FROM filescache").fetchone()
        return int(row[0])
