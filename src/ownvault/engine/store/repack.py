"""Rewriting packs: move, re-key or drop chunks, then delete the old packs' shares.

Revocation (``engine.sharing.grants``) and crypto-shredding (``engine.keys.shred``) both come down to
this: read each affected pack from k verified shares, and for each chunk in it

* ``keep``  - copy the blob unchanged (same key) into a new pack;
* ``rekey`` - open it, seal it again under a fresh random key wrapped under the current
  content-key epoch (a different blob: nobody holding the old key can open it);
* ``drop``  - leave it out (its catalog row, and so its wrapped key, is deleted).

Crash safety (the same visibility rule as a put): new packs are recorded ``pending`` with
their planned shares before any share is written; then ONE transaction makes them live,
points the chunk rows at their new copies, deletes dropped rows and the old packs, runs the
caller's own changes (``finish``), and queues the old packs' shares in ``doomed_objects``.
Only after that commit are old shares deleted; a share that cannot be deleted stays queued
(retried by the next rewrite, ``drain_doomed``) and is reported. A crash before the commit
leaves the old state intact and pending packs for the next writer to clean up.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

from ownvault.core import crypto
from ownvault.core.pack import (
    PackBuilder,
    open_chunk,
    seal_chunk,
    unwrap_chunk_key,
    wrap_chunk_key,
)
from ownvault.engine.store.catalog.packs import ChunkMove, RewrittenPack
from ownvault.engine.store.context import VaultContext
from ownvault.engine.store.packwriter import PackWriter
from ownvault.engine.store.shares import DATA_PREFIX, data_share_name
from ownvault.errors import IntegrityError, OwnvaultError

__all__ = ["ChunkInfo", "NotDeleted", "RepackResult", "drain_doomed", "rewrite_packs"]


@dataclass(frozen=True, slots=True)
class NotDeleted:
    """A provider object that could not be deleted (it stays queued), and why."""

    provider: str
    object: str
    reason: str


@dataclass(frozen=True, slots=True)
class ChunkInfo:
    row: int
    chunk_id: bytes
    referenced: bool


@dataclass
class RepackResult:
    packs_read: int = 0
    packs_written: int = 0
    chunks_kept: int = 0
    chunks_rekeyed: int = 0
    chunks_dropped: int = 0
    objects_deleted: int = 0
    not_deleted: list[NotDeleted] = field(default_factory=list)

    def to_json(self) -> dict[str, object]:
        return {
            "packs_read": self.packs_read,
            "packs_written": self.packs_written,
            "chunks_kept": self.chunks_kept,
            "chunks_rekeyed": self.chunks_rekeyed,
            "chunks_dropped": self.chunks_dropped,
            "objects_deleted": self.objects_deleted,
            "not_deleted": [asdict(f) for f in self.not_deleted],
        }


Decide = Callable[[ChunkInfo], str]


async def rewrite_packs(
    ctx: VaultContext,
    packs: set[int],
    decide: Decide,
    *,
    reason: str,
    finish: Callable[[sqlite3.Connection], None] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> RepackResult:
    """Rewrite ``packs`` (catalog ids) chunk by chunk as ``decide`` says. Hold the writer lock.
    ``finish`` runs inside the transaction that makes the rewrite visible (the caller's own
    catalog changes, made through the catalog's methods that join the caller's transaction;
    its argument is that transaction's connection); ``progress(done, total)`` is called
    after each old pack."""
    rewriter = _Rewriter(ctx, decide)
    if progress is not None:
        progress(0, len(packs))
    for done, pack in enumerate(sorted(packs), 1):
        await rewriter.rewrite_pack(pack)
        if progress is not None:
            progress(done, len(packs))
    await rewriter.upload()
    ctx.catalog.packs.commit_rewrite(
        rewriter.new_packs,
        rewriter.dropped,
        packs,
        rewriter.old_shares,
        reason,
        finish,
    )
    result = rewriter.result
    deleted, failed = await drain_doomed(ctx)
    result.objects_deleted = deleted
    result.not_deleted = failed
    return result


class _Rewriter:
    """The new packs being filled, chunk by chunk, from the old ones."""

    def __init__(self, ctx: VaultContext, decide: Decide) -> None:
        self.ctx = ctx
        self.decide = decide
        self.epoch = int(ctx.catalog.meta("content_epoch") or "0")
        self.content_key = ctx.keys.content_key(self.epoch)
        self.writer = PackWriter(ctx.catalog, ctx.store, ctx.policy, ctx.candidates())
        self.result = RepackResult()
        self.new_packs: list[RewrittenPack] = []
        self.dropped: list[int] = []
        self.old_shares: list[tuple[int, str]] = []
        self.builder = PackBuilder()
        self.pending: list[tuple[int, int, bytes, int]] = []  # row, length, wrapped, epoch
        self.offsets: list[int] = []  # of the pending chunks, from the builder

    async def upload(self) -> None:
        """Write the pack being built (if it holds anything) and start a new one."""
        if not self.pending:
            return
        # The pack goes to the writer as a view of the builder's buffer (no copy out of
        # it); the buffer is given back for the next pack once its shares are written (a
        # write that fails leaves it to the collector: a thread may still read it).
        data = self.builder.lend()
        written = await self.writer.write_pack(data)
        self.builder.give_back(data)
        moves = tuple(
            ChunkMove(row, off, ln, wr, ep)
            for (row, ln, wr, ep), off in zip(self.pending, self.offsets, strict=True)
        )
        self.new_packs.append(RewrittenPack(written.pack, moves))
        self.result.packs_written += 1
        self.pending = []
        self.offsets = []

    async def rewrite_pack(self, pack: int) -> None:
        """Read one old pack (unless every chunk in it is dropped) and copy, re-key or drop
        each chunk; its shares are queued for deletion."""
        cat, store, result = self.ctx.catalog, self.ctx.store, self.result
        pack_id, size, k, n = cat.pack_info(pack)
        rows = cat.packs.chunks_in(pack)
        shares = cat.shares_of(pack)
        actions = [self.decide(ChunkInfo(r.row, r.chunk_id, r.referenced)) for r in rows]
        data = b""
        if any(a != "drop" for a in actions):
            data = await store.fetch_pack(
                DATA_PREFIX,
                pack_id,
                size,
                k,
                n,
                [(s.idx, s.provider, s.size, s.root) for s in shares],
            )
            result.packs_read += 1
        for r, action in zip(rows, actions, strict=True):
            row, chunk_id, offset, length, plain_len = (
                r.row,
                r.chunk_id,
                r.offset,
                r.length,
                r.plain_len,
            )
            wrapped, key_epoch = r.wrapped_key, r.key_epoch
            if action == "drop":
                self.dropped.append(row)
                result.chunks_dropped += 1
                continue
            blob = data[offset : offset + length]
            if len(blob) != length:
                raise IntegrityError(f"chunk {chunk_id.hex()} lies outside its pack")
            if action == "rekey":
                blob, wrapped, key_epoch = self._rekey(
                    chunk_id, blob, plain_len, wrapped, key_epoch
                )
                result.chunks_rekeyed += 1
            elif action == "keep":
                result.chunks_kept += 1
            else:
                raise ValueError(f"unknown repack action {action!r}")
            if not self.builder.fits(len(blob)):
                await self.upload()
            self.offsets.append(self.builder.add(blob))
            self.pending.append((row, len(blob), wrapped, key_epoch))
        self.old_shares.extend((s.provider, data_share_name(pack_id, s.idx)) for s in shares)

    def _rekey(
        self, chunk_id: bytes, blob: bytes, plain_len: int, wrapped: bytes, key_epoch: int
    ) -> tuple[bytes, bytes, int]:
        """The chunk sealed again under a fresh key: (blob, wrapped key, key epoch)."""
        old_key = unwrap_chunk_key(self.ctx.keys.content_key(key_epoch), chunk_id, wrapped)
        plain = open_chunk(old_key, chunk_id, blob)
        if len(plain) != plain_len:
            raise IntegrityError(f"chunk {chunk_id.hex()} has the wrong length")
        new_key = crypto.random_bytes(crypto.KEY_SIZE)
        blob = seal_chunk(new_key, chunk_id, plain)
        return blob, wrap_chunk_key(self.content_key, chunk_id, new_key), self.epoch


async def drain_doomed(ctx: VaultContext) -> tuple[int, list[NotDeleted]]:
    """Delete every queued provider object; return how many were deleted, and the others."""
    cat = ctx.catalog
    store = ctx.store
    names = {r.id: r.name for r in cat.providers(include_removed=True)}
    rows = cat.packs.doomed()
    sem = asyncio.Semaphore(16)
    done: list[tuple[int, str]] = []
    failed: list[NotDeleted] = []

    async def one(provider: int, name: str) -> None:
        async with sem:
            p = store.providers.get(provider)
            if p is None:
                failed.append(
                    NotDeleted(
                        names.get(provider, str(provider)), name, "provider cannot be opened"
                    )
                )
                return
            try:
                await p.delete(name)
            except OwnvaultError as exc:
                failed.append(NotDeleted(names.get(provider, str(provider)), name, exc.message))
                return
            done.append((provider, name))

    await asyncio.gather(*(one(r.provider, r.name) for r in rows))
    if done:
        cat.packs.undoom(done)
    return len(done), sorted(failed, key=lambda f: (f.provider, f.object))
