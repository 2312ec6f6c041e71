"""Pack places through the catalog journal: what repair, rebalance, repack and deletions
change here goes out as ``places``, ``chunks`` and ``drop_packs`` ops
(:mod:`ownvault.core.journalplaces`), and other devices' ops change the cache
(docs/design.md, "Pack places and settings as ops").

Out (:func:`place_ops`): the outbox keys (``catalog.jplaces``) become, in this order, one
``places`` op per pack (the shares that changed, each with its place now or none; for a
pack chunks moved into, every share, so a device that lacks the pack can add it), one
``chunks`` op per destination pack, and one ``drop_packs`` op. They go after the namespace
ops of the same block (a put's rows are read when its record is made, so they already
name the newest places).

In (:func:`apply_places`): a share and a chunk are merged last-writer-wins by the clock of
the record (HLC, then device id); a pack is added only with the chunks that move into it
(a place of a pack this device does not hold otherwise waits for the put that brings the
pack, whose rows carry the newest places); a dropped pack goes with the chunk rows no
content here uses.
"""

from __future__ import annotations

from collections.abc import Callable

from ownvault.core.journal import Record
from ownvault.core.journalops import (
    MAX_REFS,
    ChunkPlace,
    DropPacks,
    MoveChunks,
    Op,
    Places,
    SharePlace,
)
from ownvault.engine.store.catalog import Catalog
from ownvault.engine.store.catalog.journalplaces import ChunkAt, PackAt

__all__ = ["Keyed", "apply_places", "born_keys", "place_ops"]

Keyed = tuple[Op, list[tuple[str, str, str | None]]]
"""An op and the outbox keys it carries (kind, key, key on the wire when it differs),
stamped with the record it goes out in."""


def _places(pack: PackAt, shares: list[SharePlace]) -> Places:
    return Places(pack.pack_id, pack.size, pack.k, pack.n, pack.created_at, tuple(shares))


def place_ops(catalog: Catalog) -> list[Keyed]:
    """The ops owed for the unsent outbox keys (see the module docstring)."""
    jp = catalog.jplaces
    share_keys: dict[bytes, list[tuple[int, str]]] = {}
    moves: dict[bytes, list[tuple[ChunkAt, str]]] = {}
    drops: list[tuple[bytes, str]] = []
    stale: list[tuple[str, str]] = []  # keys of what is gone again: nothing to say
    for kind, key in jp.unsent():
        if kind in ("set", "born"):
            continue  # engine.store.journalsettings; born_keys
        if kind == "share":
            pack_hex, index = key.split(":")
            share_keys.setdefault(bytes.fromhex(pack_hex), []).append((int(index), key))
        elif kind == "chunk":
            at = jp.chunk(bytes.fromhex(key))
            if at is None:
                stale.append((kind, key))
            else:
                moves.setdefault(at.pack_id, []).append((at, key))
        else:
            drops.append((bytes.fromhex(key), key))
    out: list[Keyed] = []
    for pack_id in sorted(set(share_keys) | set(moves)):
        pack = jp.pack(pack_id)
        keys: list[tuple[str, str, str | None]] = [
            ("share", k, None) for _i, k in share_keys.get(pack_id, [])
        ]
        if pack is None:  # deleted since: its drop says so
            stale += [(k[0], k[1]) for k in keys] + [
                ("chunk", k) for _c, k in moves.get(pack_id, [])
            ]
            continue
        now = jp.shares(pack.row)
        wanted = set(now) if pack_id in moves else set()
        wanted |= {i for i, _k in share_keys.get(pack_id, [])}
        shares = []
        for idx in sorted(wanted):
            s = now.get(idx)
            if s is not None:
                shares.append(SharePlace(idx, s.provider, s.size, s.root))
            elif (lost := _gone_share(catalog, pack, idx)) is not None:
                shares.append(lost)
        if shares:
            out.append((_places(pack, shares), keys))
        else:
            stale += [(k[0], k[1]) for k in keys]
    for pack_id, chunks in sorted(moves.items()):
        if jp.pack(pack_id) is None:
            continue
        chunks.sort(key=lambda c: c[0].chunk_id)
        for start in range(0, len(chunks), MAX_REFS):
            batch = chunks[start : start + MAX_REFS]
            places = tuple(
                ChunkPlace(c.chunk_id, c.offset, c.length, c.wrapped_key, c.key_epoch)
                for c, _k in batch
            )
            out.append((MoveChunks(pack_id, places), [("chunk", k, None) for _c, k in batch]))
    gone = sorted(p for p, _k in drops if jp.pack(p) is None)
    for start in range(0, len(gone), MAX_REFS):
        part = gone[start : start + MAX_REFS]
        out.append((DropPacks(tuple(part)), [("drop", p.hex(), None) for p in part]))
    if stale:
        jp.discard(stale)
    return out


def born_keys(catalog: Catalog) -> list[tuple[str, str, str | None]]:
    """The outbox keys of packs made live here since the last record: they say no op, but
    go out (stamped) with the next record, after which a deletion of one is announced."""
    return [("born", k, None) for kind, k in catalog.jplaces.unsent() if kind == "born"]


def _gone_share(catalog: Catalog, pack: PackAt, idx: int) -> SharePlace | None:
    """A share of ``pack`` with no place now (lost, waiting for repair): its size and root
    from the missing-share list (``underrep``), if it is there."""
    for m in catalog.underrep.of_pack(pack.row):
        if m.idx == idx:
            return SharePlace(idx, None, m.size, m.root)
    return None


def _forced(here: ChunkAt | None, into: bytes, dropped: set[bytes]) -> bool:
    """A move that lost to a later write still applies when the pack the chunk is in here
    is deleted by the same record: the later write (a key re-wrapped in place, say) names
    a pack that is gone, so the chunk follows its only copy left."""
    return here is not None and here.pack_id != into and here.pack_id in dropped


def apply_places(
    catalog: Catalog, record: Record, warn: Callable[[str], None] = lambda _m: None
) -> None:
    """Apply the place ops of another device's ``record`` (inside the caller's
    transaction, captures muted)."""
    jp = catalog.jplaces
    targets = {op.pack for op in record.ops if isinstance(op, MoveChunks)}
    dropped = {p for op in record.ops if isinstance(op, DropPacks) for p in op.packs}
    providers: dict[str, int] | None = None
    for op in record.ops:
        match op:
            case Places():
                pack = jp.pack(op.pack)
                if pack is None and (op.pack not in targets or jp.dropped(op.pack)):
                    continue
                providers = providers if providers is not None else jp.provider_ids()
                unknown = sorted({s.provider for s in op.shares if s.provider} - set(providers))
                if unknown:
                    warn(
                        f"journal: places of pack {op.pack.hex()} in {record} left out: "
                        f"provider(s) {', '.join(unknown)} not known here"
                    )
                    continue
                row = (
                    pack.row
                    if pack is not None
                    else jp.add_pack(op.pack, op.size, op.k, op.n, op.created_at)
                )
                for s in op.shares:
                    if jp.wins("share", f"{op.pack.hex()}:{s.idx}", record.hlc, record.device):
                        where = None if s.provider is None else providers[s.provider]
                        jp.set_share(row, s.idx, where, s.size, s.root)
            case MoveChunks():
                into = jp.pack(op.pack)
                if into is None:
                    warn(f"journal: chunk moves into unknown pack {op.pack.hex()} in {record}")
                    continue
                for c in op.chunks:
                    if jp.wins("chunk", c.chunk_id.hex(), record.hlc, record.device) or _forced(
                        jp.chunk(c.chunk_id), op.pack, dropped
                    ):
                        at = ChunkAt(
                            op.pack, c.chunk_id, c.offset, c.length, c.wrapped_key, c.key_epoch
                        )
                        jp.move_chunk(c.chunk_id, into.row, at)
            case DropPacks():
                for pack_id in op.packs:
                    jp.wins("drop", pack_id.hex(), record.hlc, record.device)  # for good
                    left = jp.drop_pack(pack_id)
                    if left:
                        warn(
                            f"journal: pack {pack_id.hex()} dropped by {record} is kept here: "
                            f"{left} chunk(s) of it are still used by versions here"
                        )
            case _:
                pass
