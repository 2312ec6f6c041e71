"""The files cache on the put path: a file unchanged since a put last read it is not read.

Before a file is read its identity is taken with ``lstat`` -- (device, inode, size, mtime,
ctime), what borg and restic compare -- and looked up in ``catalog.filescache``: on a hit
the new version's entry refers to the content stored then, and not one byte of the file
is read. On a miss the file is read (``Ingestor.ingest_file``) and remembered, unless

- its identity after the read differs from before (it changed meanwhile), or the read
  was torn (``FileRecord.changed``);
- its mtime or ctime is within :data:`GRANULARITY_NS` of the time the put took the
  identity (borg's "ctime/mtime too recent"): a write in the same timestamp tick after
  the read would leave the identity as it is, and the stale content would be reused for
  ever. A later write always moves ctime past such an older identity.

Like borg's, the cache trusts the identity: content changed while size and mtime are
put back (``touch -d``) is still noticed, because that sets ctime; only a tool that
also forges ctime (changing the clock, raw disk writes) can hide a change.
``force_read`` bypasses the lookup (every file is read and remembered again). The rows
for a put are written in the transaction that inserts its version, so a crash leaves
both or neither. docs/design.md, "Files cache".
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ownvault.engine.store.catalog import Catalog
from ownvault.engine.store.catalog.filescache import MAX_PATHS, CachedContent, FileIdentity

if TYPE_CHECKING:  # the put pipeline: not for a put the cache finds unchanged (files.reput)
    from ownvault.core.chunking import ChunkerParams
    from ownvault.engine.store.ingest import FileRecord

__all__ = ["GRANULARITY_NS", "FilesCacheRun", "Known", "Probe", "cache_params", "key_of"]

# A file whose mtime or ctime is this close to "now" is not remembered: 2 s covers FAT's
# 2 s mtimes, ext3's and HFS+'s 1 s, and the coarse kernel clock ext4 and XFS stamp with.
GRANULARITY_NS = 2_000_000_000


def cache_params(profile: str, chunker: ChunkerParams) -> str:
    """What, besides the bytes, decided a stored content: its CID profile (by name) and
    chunker."""
    return f"{profile}|{chunker.name}:{chunker.min_size}:{chunker.avg_size}:{chunker.max_size}"


# What the cache has for a batch of files: key -> (identity row, content), see candidates().
Known = dict[bytes, tuple[tuple[int, int, int, int, int], CachedContent]]


def key_of(source: Path) -> bytes:
    """A source file's row key: its absolute path as bytes."""
    return os.fsencode(os.path.abspath(source))


def _identity(st: os.stat_result) -> FileIdentity:
    return FileIdentity(st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def _lstat(path: Path) -> os.stat_result | None:
    try:
        st = os.lstat(path)
    except OSError:
        return None
    return st if stat.S_ISREG(st.st_mode) else None


@dataclass(frozen=True, slots=True)
class Probe:
    """A file's identity before it is read, and the cache's answer for it."""

    key: bytes
    ident: FileIdentity | None  # None: not a regular file any more (the read will say why)
    taken_ns: int  # the clock when the identity was taken
    mode: int = 0
    hit: CachedContent | None = None

    def record(self) -> FileRecord:
        """The file as the hit stores it (its chunks stay where they are)."""
        from ownvault.engine.store.ingest import FileRecord  # noqa: PLC0415 - see above

        assert self.hit is not None and self.ident is not None
        h = self.hit
        return FileRecord(
            h.size, h.cid, h.cid_profile, h.tsize, [], [], self.mode, self.ident.mtime_ns
        )


@dataclass
class FilesCacheRun:
    """The files cache for one put of the file or tree at ``root``."""

    catalog: Catalog
    root: Path
    params: str
    clock: Callable[[], float]
    force_read: bool = False
    hits: int = 0
    _seen: list[bytes] = field(default_factory=list)
    _remember: dict[str, tuple[bytes, FileIdentity]] = field(default_factory=dict)
    _forget: list[bytes] = field(default_factory=list)

    def candidates(self, keys: Sequence[bytes]) -> Known:
        """What the cache has for these files (keys from :func:`key_of`), in one query per
        :data:`MAX_PATHS`; nothing with ``force_read``. Run on the catalog's thread."""
        if self.force_read:
            return {}
        out: Known = {}
        for i in range(0, len(keys), MAX_PATHS):
            out.update(self.catalog.filescache.candidates(keys[i : i + MAX_PATHS], self.params))
        return out

    def probe(self, key: bytes, source: Path, known: Known) -> Probe:
        """Take ``source``'s identity and compare it with what :meth:`candidates` found
        (no catalog access: any thread may probe). Count a hit with :meth:`hit`."""
        taken_ns = int(self.clock() * 1e9)
        st = _lstat(source)
        if st is None:
            return Probe(key, None, taken_ns)
        ident = _identity(st)
        mode = stat.S_IMODE(st.st_mode)
        cached = known.get(key)
        hit = cached[1] if cached is not None and cached[0] == ident.row() else None
        return Probe(key, ident, taken_ns, mode, hit)

    def hit(self, probe: Probe) -> None:
        """``probe`` was a hit and its content is reused: keep its row young."""
        self.hits += 1
        self._seen.append(probe.key)

    def read(self, path: str, probe: Probe, record: FileRecord) -> None:
        """``probe``'s file was read as ``record`` (the entry at ``path``): remember it if
        it held still and is old enough, else drop what the cache had for it."""
        self.read_as(path, probe, record, _lstat(Path(os.fsdecode(probe.key))))

    def read_as(
        self, path: str, probe: Probe, record: FileRecord, after: os.stat_result | None
    ) -> None:
        """:meth:`read`, given the file's ``lstat`` taken after the read finished."""
        ident = probe.ident
        if after is not None and not stat.S_ISREG(after.st_mode):
            after = None
        if (
            ident is not None
            and after is not None
            and _identity(after) == ident
            and not record.changed
            and record.size == ident.size
            and record.mtime_ns == ident.mtime_ns
            and max(ident.mtime_ns, ident.ctime_ns) < probe.taken_ns - GRANULARITY_NS
        ):
            self._remember[path] = (probe.key, ident)
        else:
            self._forget.append(probe.key)

    def commit(self, contents: dict[str, int]) -> None:
        """Write what this put learnt, given the content row of each entry path (inside
        the transaction that inserts the version)."""
        self.catalog.filescache.record(
            os.fsencode(os.path.abspath(self.root)),
            self._seen,
            [(key, ident, contents[p], self.params) for p, (key, ident) in self._remember.items()],
            self._forget,
        )
