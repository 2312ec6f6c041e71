"""Scanning a tree for a put, and reading its files: small files in batches.

:func:`scan_path` lists a file or tree (symlinks recorded, not followed). :func:`read_files`
reads every file of it through the put pipeline (``engine.store.ingest``), or finds it
unchanged in the files cache (``engine.store.filescache``). A file of less than
:data:`SMALL_FILE` bytes (by its scan) does not get a thread hop of its own: up to
:data:`BATCH_FILES` of them (:data:`BATCH_BYTES` in all) are probed, read, chunked, hashed
and sealed in one hop to a worker thread, after one files-cache query for the batch; a hop
and a query per file cost more than reading a file of a few KiB. Each file is still read
exactly as :meth:`Ingestor.ingest_file` reads it (open without following links, identity
before and after, re-read when it changed); one that changed or grew past a block is read
again on its own. docs/design.md, "Put pipeline" (many small files).
"""

from __future__ import annotations

import asyncio
import gc
import os
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from ownvault.engine.store.filescache import FilesCacheRun, Known, Probe, key_of
from ownvault.engine.store.ingest import (
    FILE_TRIES,
    FileRecord,
    Ingestor,
    SmallLoad,
    SmallRead,
)
from ownvault.engine.store.treescan import TreeEntry, scan_path

__all__ = ["BATCH_BYTES", "BATCH_FILES", "SMALL_FILE", "TreeEntry", "read_files", "scan_path"]

SMALL_FILE = 1 << 20  # files below this size (as scanned) are read in batches
BATCH_FILES = 256  # files per batch (one worker-thread hop, one files-cache query)
BATCH_BYTES = 8 << 20  # scanned bytes per batch: a batch fills at most about one pack
READERS = 6  # reader threads of a put: small files opened and read at once
SLICE = 16  # files one reader thread probes and reads in one go

Progress = Callable[[int], None]


@dataclass(slots=True)
class _Done:
    """One file of a batch as the worker thread left it: a files-cache hit, a read
    (:meth:`Ingestor.read_small`), or neither yet (``read`` None: a large file)."""

    entry: TreeEntry
    probe: Probe | None
    read: SmallRead | None


@dataclass(frozen=True, slots=True)
class _Loaded:
    """What a reader thread did with one small file: its probe, and its bytes (None: a
    files-cache hit, nothing read), or the error its read raised (raised again when the
    worker reaches the file, as a read of its own would have)."""

    probe: Probe | None
    load: SmallLoad | None
    error: BaseException | None = None


@dataclass(slots=True)
class _Slice:
    """Consecutive files of a batch, probed and read in order by one reader thread: one
    hand-off per :data:`SLICE` files, not per file (a future per file cost the worker more
    GIL hand-offs than the reads saved)."""

    future: Future[list[_Loaded]]
    size: int
    used: int = 0  # files of it the worker has taken


@dataclass(slots=True)
class _Readers:
    """The reader threads of one put, and the slices they started for files of the last
    batch that its hop did not reach (it stopped at a filled pack): the next batch starts
    with those files and takes them over instead of reading them again."""

    pool: ThreadPoolExecutor
    carried: list[_Slice] = field(default_factory=list)


async def read_files(
    ing: Ingestor,
    entries: list[TreeEntry],
    warn: Callable[[str], None],
    cache: FilesCacheRun | None,
    progress: Progress | None,
) -> tuple[dict[str, FileRecord], dict[str, int]]:
    """Every file of ``entries`` as stored: read, or found unchanged by the files cache
    (then also in the second map: entry path -> the contents row it refers to)."""
    records: dict[str, FileRecord] = {}
    reused: dict[str, int] = {}
    files = [e for e in entries if e.kind == "file"]
    # The collector's full passes skip what exists now (the reads make many more objects);
    # a heap someone else froze stays as it is.
    freeze = gc.get_freeze_count() == 0
    if freeze:
        gc.freeze()
    ing.known.expect(sum(1 + e.size // SMALL_FILE for e in files))  # ~ a chunk a MiB
    readers = _Readers(ThreadPoolExecutor(READERS, "reader"))
    try:
        i = advised = 0
        while i < len(files):
            ing.raise_failure()
            batch = _next_batch(files, i)
            upto = min(len(files), i + len(batch) + BATCH_FILES)
            ahead = [
                e.source for e in files[max(advised, i + len(batch)) : upto] if e.size < SMALL_FILE
            ]
            advised = max(advised, upto)
            keys = [key_of(e.source) for e in batch] if cache is not None else []
            known = cache.candidates(keys) if cache is not None else {}
            if batch[0].size >= SMALL_FILE:  # a batch of its own, read block by block
                e = batch[0]
                probe = cache.probe(keys[0], e.source, known) if cache is not None else None
                done = [_Done(e, probe, None)]
            else:
                done = await asyncio.to_thread(
                    _read_batch, ing, batch, keys, cache, known, ahead, readers
                )
            i += len(done)
            await ing.take_packs(
                [p for d in done if d.read for p in d.read.full],
                sum(d.read.nread for d in done if d.read),
            )
            for d in done:
                await _settle(ing, d, records, reused, warn, cache, progress)
    finally:
        for sl in readers.carried:
            sl.future.cancel()
        readers.pool.shutdown(wait=True, cancel_futures=True)
        if freeze:
            gc.unfreeze()
    return records, reused


def _hit(probe: Probe | None) -> bool:
    return probe is not None and probe.hit is not None


def _next_batch(files: list[TreeEntry], i: int) -> list[TreeEntry]:
    """``files[i:]``'s next batch: one large file, or small files up to the limits."""
    if files[i].size >= SMALL_FILE:
        return [files[i]]
    end, total = i, 0
    while (
        end < len(files)
        and end - i < BATCH_FILES
        and files[end].size < SMALL_FILE
        and (end == i or total + files[end].size <= BATCH_BYTES)
    ):
        total += files[end].size
        end += 1
    return files[i:end]


def _load(
    ing: Ingestor,
    files: list[TreeEntry],
    keys: list[bytes] | None,
    cache: FilesCacheRun | None,
    known: Known,
) -> list[_Loaded]:
    """In a reader thread, file after file: take the identity for the files cache, then
    (a miss) read the file; the identity comes first, so a write after it is never
    remembered as read."""
    out: list[_Loaded] = []
    for n, e in enumerate(files):
        probe = None
        try:
            if cache is not None and keys is not None:
                probe = cache.probe(keys[n], e.source, known)
                if _hit(probe):
                    out.append(_Loaded(probe, None))
                    continue
            out.append(_Loaded(probe, ing.load_small(e.source, e.size)))
        except Exception as exc:  # raised by the worker when it reaches this file
            out.append(_Loaded(probe, None, exc))
    return out


def _read_batch(
    ing: Ingestor,
    batch: list[TreeEntry],
    keys: list[bytes],
    cache: FilesCacheRun | None,
    known: Known,
    ahead: list[Path],
    readers: _Readers,
) -> list[_Done]:
    """In a worker thread: the reader threads probe and read the files of ``batch`` (up to
    :data:`READERS` slices at once: the read syscalls run without the GIL, and the disk
    gets many reads at a time), then ask the kernel to read ``ahead`` (the next batch)
    into the page cache; this thread chunks, hashes and seals the files in order as their
    reads finish, stopping after the first that fills a pack (the rest come in the next
    batch, their reads carried over: packs in flight stay bounded however much the files
    grew since the scan)."""
    slices, readers.carried = readers.carried, []
    have = sum(sl.size - sl.used for sl in slices)
    assert have <= len(batch)
    for j in range(have, len(batch), SLICE):
        part = batch[j : j + SLICE]
        part_keys = keys[j : j + len(part)] if cache is not None else None
        slices.append(
            _Slice(readers.pool.submit(_load, ing, part, part_keys, cache, known), len(part))
        )
    if ahead:
        readers.pool.submit(_advise, ahead)
    out: list[_Done] = []
    for k, sl in enumerate(slices):
        loads = sl.future.result()
        while sl.used < sl.size:
            loaded, e = loads[sl.used], batch[len(out)]
            sl.used += 1
            if loaded.error is not None:
                raise loaded.error
            if loaded.load is None:
                out.append(_Done(e, loaded.probe, None))
                continue
            got = ing.read_small(e.source, loaded.load)
            out.append(_Done(e, loaded.probe, got))
            if got.full:
                readers.carried = [x for x in slices[k:] if x.used < x.size]
                return out
    return out


def _advise(paths: list[Path]) -> None:
    """Start reading these files into the page cache (``POSIX_FADV_WILLNEED``), so that
    the disk has many small reads in flight instead of one at a time: a hint only, opened
    as the read opens them (no link followed, no FIFO waited on); errors are the read's
    to report. Reading 10,000 files of 1-16 KiB from a cold cache here: 4.0-5.5 s one
    at a time, 1.7-2.4 s with a window of 256 advised ahead."""
    if not hasattr(os, "posix_fadvise"):
        return
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    for path in paths:
        try:
            fd = os.open(path, flags)
        except OSError:
            continue
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_WILLNEED)
        except OSError:
            pass
        finally:
            os.close(fd)


async def _settle(
    ing: Ingestor,
    d: _Done,
    records: dict[str, FileRecord],
    reused: dict[str, int],
    warn: Callable[[str], None],
    cache: FilesCacheRun | None,
    progress: Progress | None,
) -> None:
    """Record one file of a batch: a hit, a read that held still, or a read (again) on its
    own: a large file, or one that changed or grew past one block (the remaining tries)."""
    e, probe, got = d.entry, d.probe, d.read
    if probe is not None and probe.hit is not None:
        assert cache is not None
        cache.hit(probe)
        records[e.path] = probe.record()
        reused[e.path] = probe.hit.content
        if progress is not None and probe.hit.size:
            progress(probe.hit.size)
        return
    if got is not None and got.record is not None and got.stable:
        rec = records[e.path] = got.record
        if cache is not None and probe is not None:
            cache.read_as(e.path, probe, rec, got.after)
        return
    tried = 0 if got is None else 1
    rec = records[e.path] = await ing.ingest_file(e.source, FILE_TRIES - tried)
    if rec.changed:
        warn(f"file changed while it was stored ({FILE_TRIES} tries): {e.source}")
    if cache is not None and probe is not None:
        cache.read(e.path, probe, rec)
